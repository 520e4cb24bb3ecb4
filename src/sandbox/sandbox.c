/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/sandbox.h"
#include "sandbox/agent_conn.h"
#include "sandbox/runtime_dir.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/monotime.h"
#include "image/image.h"
#include "jail/cgroup.h"
#include "jail/jail.h"
#include "sandbox/template_ram.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct sandbox {
        char id[RUNDIR_ID_LEN + 1];
        char home[PATH_MAX];
        char run_dir[PATH_MAX];
        char kept_log[PATH_MAX + 64];
        struct vmm *vmm;
        struct agent_conn agent;
        int agent_open;
        int owner_fd;     /* flock on run/<id>/owner: "this sandbox is alive" */
        int state_fd;     /* a clone's template state, until restored */
        struct cgroup cg; /* jailed VMMs only (cg.ndirs 0 otherwise) */
        /* A clone's template RAM file and how it looked before: it must not change. */
        char tpl_ram[PATH_MAX + 8];
        struct stat tpl_st;
        uint64_t t_start_ns;
        uint64_t t_ready_ns;
};

const char *sandbox_id(const struct sandbox *sb)
{
        return sb->id;
}

struct agent_conn *sandbox_agent(struct sandbox *sb)
{
        return &sb->agent;
}

void sandbox_kill_now(struct sandbox *sb)
{
        if (sb->vmm != NULL && !sb->vmm->reaped)
                (void)vmm_pidfd_kill(sb->vmm->pidfd);
}

int sandbox_vmm_pid(const struct sandbox *sb)
{
        return (int)sb->vmm->pid;
}

int sandbox_vmm_pidfd(const struct sandbox *sb)
{
        return sb->vmm->pidfd;
}

void sandbox_vmm_exit(struct sandbox *sb, char *out, size_t outsz)
{
        (void)vmm_wait(sb->vmm, 1000);
        vmm_describe_exit(sb->vmm, out, outsz);
}

double sandbox_ready_ms(const struct sandbox *sb)
{
        return (double)(sb->t_ready_ns - sb->t_start_ns) / 1e6;
}

/*
 * Wait for the next frame from the agent. The VMM dying, the deadline and
 * the interrupt descriptor each end the wait with their own error; `what`
 * names the step for messages ("boot", "restore").
 */
static int sandbox_wait_frame(struct sandbox *sb, const struct sandbox_opts *o, uint64_t deadline,
                              const char *what, struct proto_hdr *h, const uint8_t **payload,
                              struct lg_err **err)
{
        for (;;) {
                int r = agent_conn_next(&sb->agent, h, payload);

                if (r == 1)
                        return 0;
                if (r < 0)
                        return err_set(err, LG_EK_START, -r, "guest agent channel");

                struct pollfd p[3] = {
                    {.fd = sb->agent.fd, .events = agent_conn_events(&sb->agent)},
                    {.fd = sb->vmm->pidfd, .events = POLLIN},
                    {.fd = o->intr_fd, .events = POLLIN},
                };
                int left = mono_left_ms(deadline);

                if (left == 0)
                        return err_set(err, LG_EK_START, ETIMEDOUT,
                                       "the guest agent was not ready after %d ms (%s)",
                                       o->boot_timeout_ms, what);
                r = poll(p, o->intr_fd >= 0 ? 3 : 2, left);
                if (r < 0 && errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "poll");
                if (o->intr_fd >= 0 && (p[2].revents & POLLIN))
                        return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted during %s", what);
                if (p[0].revents & POLLOUT) {
                        r = agent_conn_flush(&sb->agent);
                        if (r < 0)
                                return err_set(err, LG_EK_START, -r, "write to guest agent");
                }
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        r = agent_conn_fill(&sb->agent);
                        if (r < 0 && r != -ECONNRESET)
                                return err_set(err, LG_EK_START, -r, "read from guest agent");
                        if (r == 0)
                                continue;
                }
                if (p[1].revents & POLLIN) {
                        char how[96], said[256], log[PATH_MAX + 16];

                        sandbox_vmm_exit(sb, how, sizeof(how));
                        snprintf(log, sizeof(log), "%s/vmm.log", sb->run_dir);
                        vmm_log_first_line(log, said, sizeof(said));
                        return err_set(err, LG_EK_START, 0, "the VM %s during %s%s%s", how, what,
                                       said[0] ? "; QEMU said: " : "", said);
                }
                if (sb->agent.eof)
                        return err_set(err, LG_EK_START, 0,
                                       "the guest closed the agent channel during %s", what);
        }
}

/* Cold boot: the agent announces itself with READY once the guest is up. */
static int sandbox_wait_ready(struct sandbox *sb, const struct sandbox_opts *o, uint64_t deadline,
                              struct lg_err **err)
{
        struct proto_hello hello;
        struct proto_hdr h;
        const uint8_t *payload;
        int r;

        r = sandbox_wait_frame(sb, o, deadline, "boot", &h, &payload, err);
        if (r < 0)
                return r;
        if (h.type != PROTO_READY)
                return err_set(err, LG_EK_START, EPROTO,
                               "guest agent sent frame type %u instead of READY", h.type);
        if (proto_decode_hello_reply(payload, h.len, &hello) < 0)
                return err_set(err, LG_EK_START, EPROTO, "guest agent sent a malformed READY");
        if (hello.version != PROTO_VERSION)
                return err_set(err, LG_EK_START, EPROTONOSUPPORT,
                               "guest agent speaks protocol %llu, we speak %u (rebuild the image)",
                               (unsigned long long)hello.version, PROTO_VERSION);
        return 0;
}

/*
 * Restored clone: it never says READY (it said so to the template's host).
 * Give it its own entropy, clock and id before anything else runs in it.
 */
static int sandbox_reseed(struct sandbox *sb, const struct sandbox_opts *o, uint64_t deadline,
                          struct lg_err **err)
{
        struct proto_reseed rs;
        struct proto_error pe;
        struct proto_hdr h;
        struct timespec ts;
        const uint8_t *payload;
        uint32_t id;
        int r;

        memset(&rs, 0, sizeof(rs));
        rs.entropy_len = 64;
        if (getrandom(rs.entropy, rs.entropy_len, 0) != (ssize_t)rs.entropy_len)
                return err_set(err, LG_EK_INTERNAL, errno, "getrandom");
        clock_gettime(CLOCK_REALTIME, &ts);
        rs.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        snprintf(rs.id, sizeof(rs.id), "%s", sb->id);
        id = agent_conn_new_id(&sb->agent);
        r = proto_encode_reseed(agent_conn_out(&sb->agent), id, &rs);
        explicit_bzero(&rs, sizeof(rs));
        if (r == 0)
                r = agent_conn_flush(&sb->agent);
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "send RESEED");
        r = sandbox_wait_frame(sb, o, deadline, "restore", &h, &payload, err);
        if (r < 0)
                return r;
        if (h.id == id && h.type == PROTO_OK)
                return 0;
        if (h.id == id && h.type == PROTO_ERROR && proto_decode_error(payload, h.len, &pe) == 0)
                return err_set(err, LG_EK_START, pe.errnum, "guest refused RESEED: %.200s",
                               pe.message);
        return err_set(err, LG_EK_START, EPROTO, "unexpected frame type %u in reply to RESEED",
                       h.type);
}

/* Load the template's device state (state_fd) into the paused clone and let it run. */
static int sandbox_restore(struct sandbox *sb, const struct sandbox_opts *o, int state_fd,
                           struct lg_err **err)
{
        char why[256];
        int r;

        r = sb->vmm->ops->restore(sb->vmm, state_fd, why, sizeof(why));
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "restore %s%s%s", o->restore_state,
                               why[0] ? ": " : "", why);
        return 0;
}

/*
 * Jail VMMs when we can (root) unless LUMINAGUARD_JAIL=off (debugging, and
 * the benchmark's unjailed peer); say once per process when not.
 */
static int sandbox_jailed(void)
{
        static int warned;
        const char *env = getenv("LUMINAGUARD_JAIL");
        char why[128];

        if (env != NULL && strcmp(env, "off") == 0)
                snprintf(why, sizeof(why), "LUMINAGUARD_JAIL=off");
        else if (jail_available(why, sizeof(why)))
                return 1;
        if (!warned)
                log_warn("VMMs run without the jail (%s): see SECURITY.md", why);
        warned = 1;
        return 0;
}

/*
 * First half of a sandbox: run directory, template files (a clone), VMM
 * process and agent channel. A clone's VMM waits in `-incoming defer` for
 * sandbox_finish(); a cold-booting VMM is already booting.
 */
static int sandbox_start(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                         struct lg_err **err)
{
        struct vmm_config vc;
        struct sandbox *sb;
        _cleanup_fd_ int ram_fd = -1, mem_fd = -1;
        int sv[2] = {-1, -1}, jailed, r;

        sb = calloc(1, sizeof(*sb));
        if (sb == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate sandbox");
        sb->t_start_ns = mono_ns();
        sb->agent.fd = -1;
        sb->owner_fd = -1;
        sb->state_fd = -1;
        snprintf(sb->home, sizeof(sb->home), "%s", home);
        (void)rundir_gc(home); /* leftovers of a luminaguard that was SIGKILLed */

        r = rundir_create(home, sb->id, sb->run_dir, sizeof(sb->run_dir), &sb->owner_fd);
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "create run directory under %s/run", home);
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                err_set(err, LG_EK_START, errno, "create agent socketpair");
                goto fail;
        }
        jailed = sandbox_jailed();
        if (jailed) {
                struct cgroup_limits l = {
                    .memory_bytes = (o->memory_mib + SANDBOX_VMM_OVERHEAD_MIB) << 20,
                    .cpu_millis = o->cpus * 1000 + 500,
                    .pids = SANDBOX_VMM_PIDS,
                };

                /* No VMM: the limits are the commands' own (the tmpfs counts as memory). */
                if (o->backend == SANDBOX_PROCESS)
                        l = (struct cgroup_limits){
                            .memory_bytes = o->memory_mib << 20,
                            .cpu_millis = o->cpus * 1000,
                            .pids = o->pids ? o->pids : SANDBOX_DEFAULT_PIDS,
                        };

                r = cgroup_create(sb->id, &l, &sb->cg, err);
                if (r < 0)
                        goto fail;
        }
        if (o->restore_state != NULL) {
                const char *failed = NULL;

                /*
                 * Both halves of the template are opened before QEMU starts and
                 * used through these descriptors: a rebuild renaming a new
                 * template into place meanwhile cannot mix two builds. No RAM
                 * file: a state with RAM in it (the benchmark's streamed peer).
                 */
                if (o->loaded != NULL) {
                        char state[64];

                        snprintf(state, sizeof(state), "/proc/self/fd/%d", o->loaded->state_fd);
                        ram_fd = fcntl(o->loaded->ram_fd, F_DUPFD_CLOEXEC, 3);
                        mem_fd = fcntl(o->loaded->memfd, F_DUPFD_CLOEXEC, 3);
                        sb->state_fd = open(state, O_RDONLY | O_CLOEXEC);
                        if (ram_fd < 0 || mem_fd < 0 || sb->state_fd < 0)
                                failed = o->restore_state;
                } else if (o->ram_file != NULL &&
                           (ram_fd = open(o->ram_file, O_RDONLY | O_CLOEXEC)) < 0) {
                        failed = o->ram_file;
                } else if ((sb->state_fd = open(o->restore_state, O_RDONLY | O_CLOEXEC)) < 0) {
                        failed = o->restore_state;
                }
                if (failed != NULL) {
                        err_set(err, LG_EK_START, errno, "open template %s", failed);
                        goto fail;
                }
                if (ram_fd >= 0 && fstat(ram_fd, &sb->tpl_st) == 0)
                        snprintf(sb->tpl_ram, sizeof(sb->tpl_ram), "%s", o->ram_file);
                if (ram_fd >= 0 && mem_fd < 0) {
                        mem_fd = template_ram_memfd(ram_fd);
                        if (mem_fd < 0) {
                                err_set(err, LG_EK_START, -mem_fd, "copy template RAM %s",
                                        o->ram_file);
                                goto fail;
                        }
                }
        } else if (o->ram_file != NULL) {
                /* Building a template: its VMM writes the RAM file (ours again afterwards). */
                mem_fd = open(o->ram_file, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (mem_fd < 0 || (jailed && fchown(mem_fd, jail_uid(sb->id), JAIL_GID) < 0)) {
                        err_set(err, LG_EK_START, errno, "open %s", o->ram_file);
                        goto fail;
                }
        }

        memset(&vc, 0, sizeof(vc));
        vc.id = sb->id;
        vc.run_dir = sb->run_dir;
        if (o->image != NULL) {
                vc.kernel = o->image->kernel;
                vc.initrd = o->image->initrd;
                vc.cmdline = o->image->cmdline;
                vc.disk = o->image->disk[0] != '\0' ? o->image->disk : NULL;
        }
        /* A clone must find the very disk its template booted from (image_paths.disk_id). */
        if (vc.disk != NULL && o->restore_state != NULL) {
                char now[sizeof(o->image->disk_id)];

                if (image_disk_id(vc.disk, now, sizeof(now)) < 0 ||
                    strcmp(now, o->image->disk_id) != 0) {
                        err_set(err, LG_EK_START, ESTALE,
                                "%s changed since its template was made (the image was "
                                "rebuilt): restart what holds the old template (a pool)",
                                vc.disk);
                        goto fail;
                }
        }
        vc.memory_mib = o->memory_mib;
        vc.cpus = o->cpus;
        vc.accel = o->accel;
        vc.agent_fd = sv[1];
        vc.mem_path = o->ram_file;
        vc.mem_fd = mem_fd;
        vc.jail = jailed;
        vc.cgroup_procs = sb->cg.procs_list;
        if (o->backend == SANDBOX_PROCESS) {
                vc.rootfs = o->image != NULL ? o->image->rootfs : NULL;
                vc.disk_bytes = o->disk_bytes ? o->disk_bytes : SANDBOX_DEFAULT_DISK;
                vc.pids = o->pids ? o->pids : SANDBOX_DEFAULT_PIDS;
                if (vc.rootfs == NULL || o->restore_state != NULL) {
                        err_set(err, LG_EK_INTERNAL, EINVAL,
                                "process sandbox: an image to start, no template");
                        goto fail;
                }
        }
        vc.mem_shared = o->restore_state == NULL; /* booting a template writes its RAM file */
        vc.incoming = o->restore_state != NULL;
        if (o->full_ram_snapshot)
                vc.max_file_bytes = (o->memory_mib << 20) + ((uint64_t)VMM_MAX_FILE_BYTES << 2);

        r = vmm_start(o->backend == SANDBOX_PROCESS ? &process_vmm_ops : &qemu_vmm_ops, &vc,
                      &sb->vmm, err);
        close(sv[1]);
        sv[1] = -1;
        if (r < 0)
                goto fail;
        r = agent_conn_init(&sb->agent, sv[0]);
        sv[0] = -1;
        sb->agent_open = 1;
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "agent channel");
                goto fail;
        }
        *out = sb;
        return 0;

fail:
        if (sv[0] >= 0)
                close(sv[0]);
        if (sv[1] >= 0)
                close(sv[1]);
        {
                struct lg_err *derr = NULL;

                /* The first error is the one to report; a failed cleanup is worth a warning. */
                if (sandbox_destroy(sb, &derr) < 0)
                        log_warn("%s", derr->msg);
                err_free(&derr);
        }
        return err_code(*err);
}

/*
 * Second half: restore + RESEED (a clone) or wait for READY (a boot). On
 * failure the sandbox is destroyed, its console log kept.
 */
static int sandbox_finish(struct sandbox *sb, const struct sandbox_opts *o, struct lg_err **err)
{
        uint64_t deadline = mono_ms() + (uint64_t)o->boot_timeout_ms;
        int r;

        if (sb->state_fd >= 0) {
                r = sandbox_restore(sb, o, sb->state_fd, err);
                close(sb->state_fd);
                sb->state_fd = -1;
                if (r == 0)
                        r = sandbox_reseed(sb, o, deadline, err);
                /* Blame the template only for what a template can cause. */
                if (r < 0 && o->template_failed != NULL && (*err)->kind == LG_EK_START &&
                    (*err)->errnum != ETIMEDOUT)
                        *o->template_failed = 1;
        } else {
                r = sandbox_wait_ready(sb, o, deadline, err);
        }
        if (r < 0) {
                struct lg_err *derr = NULL;

                if ((*err)->kind != LG_EK_INTERRUPTED) {
                        const char *log;

                        log = sandbox_save_logs(sb);
                        err_wrap(err, "sandbox %s (console log kept at %s)", sb->id,
                                 log ? log : "nowhere: it could not be saved");
                }
                /* The first error is the one to report; a failed cleanup is worth a warning. */
                if (sandbox_destroy(sb, &derr) < 0)
                        log_warn("%s", derr->msg);
                err_free(&derr);
                return r;
        }
        sb->t_ready_ns = mono_ns();
        log_debug("sandbox %s %s in %.1f ms", sb->id, o->restore_state ? "restored" : "booted",
                  sandbox_ready_ms(sb));
        return 0;
}

int sandbox_create(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                   struct lg_err **err)
{
        struct sandbox *sb;
        int r = sandbox_start(home, o, &sb, err);

        if (r < 0)
                return r;
        r = sandbox_finish(sb, o, err);
        if (r < 0)
                return r;
        *out = sb;
        return 0;
}

int sandbox_prestart(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                     struct lg_err **err)
{
        if (o->restore_state == NULL || o->ram_file == NULL)
                return err_set(err, LG_EK_INTERNAL, EINVAL, "only a clone can be pre-started");
        return sandbox_start(home, o, out, err);
}

int sandbox_resume(struct sandbox *sb, const struct sandbox_opts *o, struct lg_err **err)
{
        if (sb->state_fd < 0) { /* a caller's bug; still, consume sb as promised */
                int r =
                    err_set(err, LG_EK_INTERNAL, EINVAL, "sandbox %s was not pre-started", sb->id);

                if (sandbox_destroy(sb, NULL) < 0)
                        log_warn("pre-started sandbox: cleanup failed");
                return r;
        }
        sb->t_start_ns = mono_ns(); /* ready_ms counts from here: the process already ran */
        return sandbox_finish(sb, o, err);
}

int sandbox_snapshot(struct sandbox *sb, const char *state_path, struct lg_err **err)
{
        _cleanup_fd_ int fd = open(state_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char why[256];
        int r;

        if (fd < 0)
                return err_set(err, LG_EK_START, errno, "create %s", state_path);
        r = sb->vmm->ops->save(sb->vmm, fd, why, sizeof(why));
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "save sandbox %s%s%s", sb->id,
                               why[0] ? ": " : "", why);
        return 0;
}

const char *sandbox_save_logs(struct sandbox *sb)
{
        /* The VMM must be gone so that nothing writes to the files being moved. */
        (void)vmm_stop(sb->vmm, 0);
        static const char *const names[] = {"console", "vmm"};
        char logs[PATH_MAX];

        if (snprintf(logs, sizeof(logs), "%s/logs", sb->home) >= (int)sizeof(logs) ||
            fs_mkdir_p(logs, 0700) < 0)
                return NULL;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                char from[PATH_MAX + 32], to[PATH_MAX + 64];

                snprintf(from, sizeof(from), "%s/%s.log", sb->run_dir, names[i]);
                snprintf(to, sizeof(to), "%s/%s.%s.log", logs, sb->id, names[i]);
                if (rename(from, to) == 0 && i == 0)
                        snprintf(sb->kept_log, sizeof(sb->kept_log), "%s", to);
        }
        rundir_prune_logs(logs);
        return sb->kept_log[0] ? sb->kept_log : NULL;
}

int sandbox_destroy(struct sandbox *sb, struct lg_err **err)
{
        char run_dir[PATH_MAX];
        int r, ret = 0;

        if (sb == NULL)
                return 0;
        if (sb->vmm != NULL) {
                r = vmm_stop(sb->vmm, 1000);
                if (r < 0)
                        ret = err_set(err, LG_EK_INTERNAL, -r, "stop VMM of sandbox %s", sb->id);
        }
        if (sb->agent_open)
                agent_conn_free(&sb->agent);
        /* Only once the VMM is reaped: a cgroup with a task in it cannot go. */
        if (sb->cg.ndirs > 0 && (sb->vmm == NULL || sb->vmm->reaped)) {
                char left[PATH_MAX];

                r = cgroup_destroy(&sb->cg, left, sizeof(left));
                if (r < 0 && ret == 0)
                        ret = err_set(err, LG_EK_INTERNAL, -r, "cgroup %s of sandbox %s remains",
                                      left, sb->id);
        }
        snprintf(run_dir, sizeof(run_dir), "%s", sb->run_dir);
        if (run_dir[0] != '\0') {
                r = fs_remove_tree(run_dir);
                if (r < 0 && ret == 0)
                        ret = err_set(err, LG_EK_INTERNAL, -r, "remove %s", run_dir);
        }
        /* Ephemerality is checked, not assumed. */
        if (ret == 0 && sb->vmm != NULL && !sb->vmm->reaped)
                ret = err_set(err, LG_EK_INTERNAL, EBUSY, "VMM %d of sandbox %s still runs",
                              (int)sb->vmm->pid, sb->id);
        if (ret == 0 && run_dir[0] != '\0' && fs_exists(run_dir))
                ret = err_set(err, LG_EK_INTERNAL, EBUSY, "%s still exists", run_dir);
        /*
         * The clone mapped its template private: nothing it did may reach the
         * file. Size, inode and mtime are the cheap witnesses (a full hash is
         * the integration tests' job).
         */
        if (ret == 0 && sb->tpl_ram[0] != '\0') {
                struct stat now;

                /* A different inode is a template rebuilt meanwhile: not ours to judge. */
                if (stat(sb->tpl_ram, &now) == 0 && now.st_ino == sb->tpl_st.st_ino &&
                    (now.st_size != sb->tpl_st.st_size ||
                     now.st_mtim.tv_sec != sb->tpl_st.st_mtim.tv_sec ||
                     now.st_mtim.tv_nsec != sb->tpl_st.st_mtim.tv_nsec))
                        ret = err_set(err, LG_EK_INTERNAL, EBUSY,
                                      "template RAM file %s changed while sandbox %s ran",
                                      sb->tpl_ram, sb->id);
        }
        if (sb->vmm != NULL)
                vmm_free(sb->vmm);
        if (sb->state_fd >= 0)
                close(sb->state_fd);
        if (sb->owner_fd >= 0)
                close(sb->owner_fd); /* only now may a GC consider it gone */
        free(sb);
        return ret;
}
