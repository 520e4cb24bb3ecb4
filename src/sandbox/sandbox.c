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
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct sandbox {
        char id[RUNDIR_ID_LEN + 1];
        char home[PATH_MAX];
        char run_dir[PATH_MAX];
        char kept_log[PATH_MAX + 64];
        struct vmm *vmm;
        struct agent_conn agent;
        int agent_open;
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
 * Wait for the agent's READY frame. The VMM dying, the deadline and the
 * interrupt descriptor each end the wait with their own error.
 */
static int sandbox_wait_ready(struct sandbox *sb, const struct sandbox_opts *o, struct lg_err **err)
{
        uint64_t deadline = mono_ms() + (uint64_t)o->boot_timeout_ms;

        for (;;) {
                struct proto_hdr h;
                const uint8_t *payload;
                int r = agent_conn_next(&sb->agent, &h, &payload);

                if (r == 1) {
                        struct proto_hello hello;

                        if (h.type != PROTO_READY ||
                            proto_decode_hello_reply(payload, h.len, &hello) < 0)
                                return err_set(err, LG_EK_START, EPROTO,
                                               "guest agent sent frame type %u instead of READY",
                                               h.type);
                        if (hello.version != PROTO_VERSION)
                                return err_set(err, LG_EK_START, EPROTONOSUPPORT,
                                               "guest agent speaks protocol %llu, we speak %u "
                                               "(rebuild the image)",
                                               (unsigned long long)hello.version, PROTO_VERSION);
                        return 0;
                }
                if (r < 0)
                        return err_set(err, LG_EK_START, -r, "guest agent channel");

                struct pollfd p[3] = {
                    {.fd = sb->agent.fd, .events = POLLIN},
                    {.fd = sb->vmm->pidfd, .events = POLLIN},
                    {.fd = o->intr_fd, .events = POLLIN},
                };
                int left = mono_left_ms(deadline);

                if (left == 0)
                        return err_set(err, LG_EK_START, 0,
                                       "the guest agent was not ready after %d ms",
                                       o->boot_timeout_ms);
                r = poll(p, o->intr_fd >= 0 ? 3 : 2, left);
                if (r < 0 && errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "poll");
                if (o->intr_fd >= 0 && (p[2].revents & POLLIN))
                        return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted while booting");
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        r = agent_conn_fill(&sb->agent);
                        if (r < 0 && r != -ECONNRESET)
                                return err_set(err, LG_EK_START, -r, "read from guest agent");
                        if (r == 0)
                                continue;
                }
                if (p[1].revents & POLLIN) {
                        char how[96], said[256];

                        char log[PATH_MAX + 16];

                        sandbox_vmm_exit(sb, how, sizeof(how));
                        snprintf(log, sizeof(log), "%s/vmm.log", sb->run_dir);
                        vmm_log_first_line(log, said, sizeof(said));
                        return err_set(err, LG_EK_START, 0, "the VM %s during boot%s%s", how,
                                       said[0] ? "; QEMU said: " : "", said);
                }
                if (sb->agent.eof)
                        return err_set(err, LG_EK_START, 0,
                                       "the guest closed the agent channel during boot");
        }
}

int sandbox_create(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                   struct lg_err **err)
{
        struct image_paths img;
        struct vmm_config vc;
        struct sandbox *sb;
        char why[256];
        int sv[2] = {-1, -1}, r;

        sb = calloc(1, sizeof(*sb));
        if (sb == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate sandbox");
        sb->t_start_ns = mono_ns();
        sb->agent.fd = -1;
        snprintf(sb->home, sizeof(sb->home), "%s", home);
        (void)rundir_gc(home); /* leftovers of a luminaguard that was SIGKILLed */

        r = image_ensure(home, o->image, o->build_image, 1, &img, err);
        if (r < 0)
                goto fail;

        r = rundir_create(home, sb->id, sb->run_dir, sizeof(sb->run_dir));
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "create run directory under %s/run", home);
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                err_set(err, LG_EK_START, errno, "create agent socketpair");
                goto fail;
        }

        memset(&vc, 0, sizeof(vc));
        vc.id = sb->id;
        vc.run_dir = sb->run_dir;
        vc.kernel = img.kernel;
        vc.initrd = img.initrd;
        vc.cmdline = img.cmdline;
        vc.memory_mib = o->memory_mib;
        vc.cpus = o->cpus;
        vc.accel = accel_choose(home, why, sizeof(why));
        vc.agent_fd = sv[1];
        log_debug("sandbox %s: accelerator %s (%s)", sb->id, accel_name(vc.accel), why);

        r = vmm_start(&qemu_vmm_ops, &vc, &sb->vmm, err);
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
        r = sandbox_wait_ready(sb, o, err);
        if (r < 0) {
                struct lg_err *derr = NULL;

                if ((*err)->kind != LG_EK_INTERRUPTED) {
                        const char *log;

                        log = sandbox_save_logs(sb);
                        err_wrap(err, "sandbox %s (console log kept at %s)", sb->id,
                                 log ? log : "nowhere: it could not be saved");
                }
                sandbox_destroy(sb, &derr);
                err_free(&derr);
                return r;
        }
        sb->t_ready_ns = mono_ns();
        log_debug("sandbox %s ready in %.1f ms", sb->id, sandbox_ready_ms(sb));
        *out = sb;
        return 0;

fail:
        if (sv[0] >= 0)
                close(sv[0]);
        if (sv[1] >= 0)
                close(sv[1]);
        {
                struct lg_err *derr = NULL;

                sandbox_destroy(sb, &derr);
                err_free(&derr);
        }
        return err_code(*err);
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
        if (sb->vmm != NULL)
                vmm_free(sb->vmm);
        free(sb);
        return ret;
}

int sandbox_gc(const char *home)
{
        return rundir_gc(home);
}
