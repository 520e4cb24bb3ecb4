/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU engine: the `microvm` machine (virtio-mmio, no PCI, no firmware),
 * TCG or KVM, the guest agent on a virtio-serial port, the serial console
 * to a per-sandbox file, QMP on a socketpair.
 *
 * Both channels are socketpairs created here and inherited as fds 3 and 4,
 * so no socket path ever exists on disk (nothing to race for, nothing to
 * clean up) and nobody but us can connect to the VM's control plane.
 */
#include "vmm/vmm.h"
#include "vmm/qmp.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/monotime.h"
#include "jail/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU_QMP_TIMEOUT_MS 10000
/* TCG's translation buffer: bounded, so the VMM's cgroup limit is (sandbox.h). */
#define QEMU_TB_MIB 256

struct qemu_vmm {
        struct vmm base; /* first: the generic code casts between the two */
        struct qmp *qmp;
        int file_ram; /* guest RAM is a file: snapshots leave it out of the state */
};

/* Descriptors the VMM inherits (vmm_spawn places fds[i] at 3 + i). */
enum { FD_AGENT = 3, FD_QMP, FD_MEM, FD_KERNEL, FD_INITRD, FD_CONSOLE, FD_DISK, FD_END };

/*
 * The QEMU binary as an absolute path without symbolic links (the jail
 * binds exactly that file): LUMINAGUARD_QEMU, or qemu-system-x86_64 on PATH.
 */
static int qemu_binary(char *out, size_t outsz)
{
        const char *b = getenv("LUMINAGUARD_QEMU");
        const char *path = getenv("PATH");
        char cand[PATH_MAX], real[PATH_MAX];

        if (b == NULL || b[0] == '\0')
                b = "qemu-system-x86_64";
        if (strchr(b, '/') != NULL) {
                if (realpath(b, real) == NULL)
                        return -errno;
                snprintf(out, outsz, "%s", real);
                return 0;
        }
        if (path == NULL)
                path = "/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");

                if (n > 0 &&
                    snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, p, b) < (int)sizeof(cand) &&
                    access(cand, X_OK) == 0 && realpath(cand, real) != NULL) {
                        snprintf(out, outsz, "%s", real);
                        return 0;
                }
                p += n + (p[n] == ':');
        }
        return -ENOENT;
}

/*
 * The kernel command line for this accelerator. Under TCG the guest's TSC
 * ticks at the host's TSC rate (QEMU reads the host counter), but microvm
 * gives the guest no way to calibrate it and the guest hangs without
 * tsc_early_khz; a wrong value makes guest time run fast or slow by the same
 * ratio. Under KVM the real TSC frequency is known, so the engine, not the
 * image, owns this parameter.
 */
static int qemu_cmdline(const char *base, enum accel_kind accel, char *out, size_t outsz)
{
        size_t used = 0;
        _cleanup_free_ char *copy = strdup(base);
        char *save = NULL;

        if (copy == NULL)
                return -ENOMEM;
        out[0] = '\0';
        for (char *tok = strtok_r(copy, " \t\n", &save); tok;
             tok = strtok_r(NULL, " \t\n", &save)) {
                if (strncmp(tok, "tsc_early_khz=", 14) == 0)
                        continue;
                int n = snprintf(out + used, outsz - used, "%s%s", used ? " " : "", tok);
                if (n < 0 || (size_t)n >= outsz - used)
                        return -E2BIG;
                used += (size_t)n;
        }
        if (accel == ACCEL_TCG) {
                int n = snprintf(out + used, outsz - used, "%stsc_early_khz=%u", used ? " " : "",
                                 vmm_host_tsc_khz());
                if (n < 0 || (size_t)n >= outsz - used)
                        return -E2BIG;
        }
        return 0;
}

/* A bounded argv under construction; strings are copied into arena. */
struct qemu_argv {
        const char *v[64];
        size_t n;
        char arena[8192];
        size_t used;
        int overflow;
};

static void arg(struct qemu_argv *a, const char *s)
{
        if (a->n + 1 >= sizeof(a->v) / sizeof(a->v[0])) {
                a->overflow = 1;
                return;
        }
        a->v[a->n++] = s;
        a->v[a->n] = NULL;
}

/* Two arguments, the second formatted into the arena. */
static void argf(struct qemu_argv *a, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void argf(struct qemu_argv *a, const char *opt, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(a->arena + a->used, sizeof(a->arena) - a->used, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(a->arena) - a->used) {
                a->overflow = 1;
                return;
        }
        arg(a, opt);
        arg(a, a->arena + a->used);
        a->used += (size_t)n + 1;
}

static int qemu_build_argv(const struct vmm_config *c, const char *binary, struct qemu_argv *a)
{
        char cmdline[2048];
        int r;

        a->n = a->used = 0;
        a->overflow = 0;
        arg(a, binary);
        argf(a, "-name", "lg-%s,debug-threads=off", c->id);
        /* microvm: ACPI stays on (the guest finds virtio-mmio devices through it). */
        argf(a, "-M", "microvm,x-option-roms=off%s", c->mem_path ? ",memory-backend=mem" : "");
        /*
         * TCG's translation buffer is reserved, and only what is used is
         * touched (~11 MiB in a warmed clone); 256 MiB rather than the
         * default 1 GiB bounds it under the cgroup limit. Tried by hand:
         * tb-size=8 lowered a warmed clone's memory but slowed warm runs
         * badly by re-translating.
         */
        if (c->accel == ACCEL_TCG)
                argf(a, "-accel", "tcg,tb-size=%u", QEMU_TB_MIB);
        else
                argf(a, "-accel", "%s", accel_name(c->accel));
        argf(a, "-cpu", "%s", c->accel == ACCEL_KVM ? "host" : "max");
        argf(a, "-m", "%lluM", (unsigned long long)c->memory_mib);
        argf(a, "-smp", "%u", c->cpus);
        if (c->mem_path != NULL) {
                /*
                 * Template: guest RAM lives in the file (share=on), so a paused
                 * template is its RAM file plus a small device state. Clone:
                 * the same file mapped private: copy-on-write, clones share the
                 * clean pages and their writes never reach the file. (QEMU 7.2's
                 * readonly=on would make guest RAM itself read-only, and its
                 * rom= property that separates the two came later.)
                 */
                argf(a, "-object",
                     "memory-backend-file,id=mem,size=%lluM,mem-path=/proc/self/fd/%d,%s",
                     (unsigned long long)c->memory_mib, FD_MEM,
                     c->mem_shared ? "share=on" : "share=off");
        }
        /* Nothing we did not ask for: no default NIC, VGA, floppy, CD, monitor. */
        arg(a, "-nodefaults");
        arg(a, "-no-user-config");
        argf(a, "-display", "none");
        argf(a, "-net", "none");
        /* The guest clock starts from host UTC; nothing is ever written back. */
        argf(a, "-rtc", "base=utc,clock=host");
        if (c->incoming) {
                /* A clone gets its state over QMP; it needs no kernel (~14 MiB less per process).
                 */
                argf(a, "-incoming", "defer");
        } else {
                r = qemu_cmdline(c->cmdline, c->accel, cmdline, sizeof(cmdline));
                if (r < 0)
                        return r;
                /* Files of ours reach the VMM as descriptors: the jail holds no path to them. */
                argf(a, "-kernel", "/proc/self/fd/%d", FD_KERNEL);
                argf(a, "-initrd", "/proc/self/fd/%d", FD_INITRD);
                argf(a, "-append", "%s", cmdline);
        }
        if (c->disk != NULL) {
                /*
                 * The image's root filesystem, shared by every sandbox of the
                 * image and never written (the guest overlays a tmpfs): read-only
                 * for QEMU too. A clone needs the device as its template had it.
                 */
                argf(a, "-drive",
                     "file=/proc/self/fd/%d,if=none,id=root,format=raw,readonly=on,"
                     "cache=writeback,aio=threads",
                     FD_DISK);
                argf(a, "-device", "virtio-blk-device,drive=root");
        }
        argf(a, "-chardev", "file,id=con,path=/proc/self/fd/%d", FD_CONSOLE);
        argf(a, "-serial", "chardev:con");
        argf(a, "-device", "virtio-serial-device,max_ports=2");
        argf(a, "-chardev", "socket,id=agent,fd=3");
        argf(a, "-device", "virtserialport,chardev=agent,name=lg.agent,nr=1");
        argf(a, "-chardev", "socket,id=qmp,fd=4");
        argf(a, "-mon", "chardev=qmp,mode=control");
        /* A guest reboot ends the VM instead of booting it again. */
        arg(a, "-no-reboot");
        /* QEMU's own seccomp filter; fd-passing migration keeps working under it. */
        argf(a, "-sandbox",
             "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        argf(a, "-msg", "timestamp=on");
        return a->overflow ? -E2BIG : 0;
}

/*
 * The descriptors the VMM gets besides the two channels: guest RAM, kernel
 * and initrd (a cold boot), console log. The console log belongs to the
 * jailed VMM's uid: QEMU reopens it through /proc/self/fd to write it.
 */
static int qemu_open_files(const struct vmm_config *c, uid_t uid, int fds[FD_END - 3],
                           struct lg_err **err)
{
        char path[PATH_MAX];

        fds[FD_MEM - 3] = c->mem_path != NULL ? c->mem_fd : -1;
        if (c->mem_path != NULL && c->mem_fd < 0)
                return err_set(err, LG_EK_INTERNAL, EINVAL, "guest RAM file without descriptor");
        if (!c->incoming) {
                fds[FD_KERNEL - 3] = open(c->kernel, O_RDONLY | O_CLOEXEC);
                if (fds[FD_KERNEL - 3] < 0)
                        return err_set(err, LG_EK_IMAGE, errno, "open kernel %s", c->kernel);
                fds[FD_INITRD - 3] = open(c->initrd, O_RDONLY | O_CLOEXEC);
                if (fds[FD_INITRD - 3] < 0)
                        return err_set(err, LG_EK_IMAGE, errno, "open initrd %s", c->initrd);
        }
        if (c->disk != NULL) {
                fds[FD_DISK - 3] = open(c->disk, O_RDONLY | O_CLOEXEC);
                if (fds[FD_DISK - 3] < 0)
                        return err_set(err, LG_EK_IMAGE, errno, "open disk %s", c->disk);
        }
        snprintf(path, sizeof(path), "%s/console.log", c->run_dir);
        fds[FD_CONSOLE - 3] =
            open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fds[FD_CONSOLE - 3] < 0 || (c->jail && fchown(fds[FD_CONSOLE - 3], uid, JAIL_GID) < 0))
                return err_set(err, LG_EK_START, errno, "create %s", path);
        return 0;
}

static int qemu_start(const struct vmm_config *c, struct vmm **out, struct lg_err **err)
{
        char log[PATH_MAX], binary[PATH_MAX], root[PATH_MAX + 8], why[PATH_MAX + 128] = "";
        _cleanup_fd_ int qmp_ours = -1, qmp_theirs = -1;
        _cleanup_free_ struct qemu_argv *a = NULL;
        _cleanup_free_ struct jail *jail = NULL;
        _cleanup_free_ struct qemu_vmm *q = NULL;
        int files[FD_END - 3] = {-1, -1, -1, -1, -1, -1, -1};
        int sv[2], r;

        r = qemu_binary(binary, sizeof(binary));
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "find %s",
                               getenv("LUMINAGUARD_QEMU") ? getenv("LUMINAGUARD_QEMU")
                                                          : "qemu-system-x86_64 on PATH");
        a = calloc(1, sizeof(*a));
        q = calloc(1, sizeof(*q));
        if (a == NULL || q == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate QEMU arguments");
        r = qemu_build_argv(c, binary, a);
        if (r < 0)
                return err_set(err, LG_EK_IMAGE, -r, "QEMU command line too long");
        if (c->jail) {
                struct jail_config jc = {.id = c->id,
                                         .root = root,
                                         .binary = binary,
                                         .kvm = c->accel == ACCEL_KVM,
                                         .cgroup_procs = c->cgroup_procs};

                snprintf(root, sizeof(root), "%s/root", c->run_dir);
                jail = malloc(sizeof(*jail));
                if (jail == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate jail");
                if (mkdir(root, 0700) < 0)
                        return err_set(err, LG_EK_START, errno, "create %s", root);
                r = jail_plan(jail, &jc, err);
                if (r < 0)
                        return r;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return err_set(err, LG_EK_START, errno, "create QMP socketpair");
        qmp_ours = sv[0];
        qmp_theirs = sv[1];
        snprintf(log, sizeof(log), "%s/vmm.log", c->run_dir);
        q->base.ops = &qemu_vmm_ops;
        q->file_ram = c->mem_path != NULL;
        q->base.pidfd = -1;
        q->base.reaped = 1;

        r = qemu_open_files(c, jail_uid(c->id), files, err);
        if (r == 0) {
                int fds[FD_END - 3] = {c->agent_fd,          qmp_theirs,
                                       files[FD_MEM - 3],    files[FD_KERNEL - 3],
                                       files[FD_INITRD - 3], files[FD_CONSOLE - 3],
                                       files[FD_DISK - 3]};
                struct vmm_spawn_opts so = {.max_file_bytes = c->max_file_bytes,
                                            .no_thp = c->mem_path != NULL,
                                            .jail = jail,
                                            .errbuf = why,
                                            .errsz = sizeof(why)};

                r = vmm_spawn(&q->base, a->v, fds, FD_END - 3, log, &so);
                if (r < 0)
                        err_set(err, LG_EK_START, -r, "start %s%s%s", binary, why[0] ? ": " : "",
                                why);
        }
        /* The VMM has its copies now (the RAM descriptor is the caller's). */
        for (int i = FD_KERNEL - 3; i < FD_END - 3; i++) {
                if (files[i] >= 0)
                        close(files[i]);
        }
        if (r < 0)
                return err_code(*err);
        close(steal_fd(&qmp_theirs));

        r = qmp_open(steal_fd(&qmp_ours), QEMU_QMP_TIMEOUT_MS, &q->qmp);
        if (r < 0) {
                char how[96], said[256];

                (void)vmm_stop(&q->base, 0);
                vmm_describe_exit(&q->base, how, sizeof(how));
                vmm_log_first_line(log, said, sizeof(said));
                /* The run directory (and the log) go away with the failed sandbox: quote it. */
                return err_set(err, LG_EK_START, -r, "QEMU did not come up (%s%s%s)", how,
                               said[0] ? "; it said: " : "", said);
        }
        log_debug("qemu %d started for %s (accel %s%s%s)", (int)q->base.pid, c->id,
                  accel_name(c->accel), c->incoming ? ", incoming" : "", jail ? ", jailed" : "");
        *out = &q->base;
        q = NULL;
        return 0;
}

/* Wait until query-migrate reports an end state. */
static int qemu_wait_migration(struct qemu_vmm *q, int timeout_ms, char *errbuf, size_t errsz)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

        for (;;) {
                json_t *ret = NULL;
                const char *st;
                int r = qmp_execute(q->qmp, "query-migrate", NULL, &ret, mono_left_ms(deadline),
                                    errbuf, errsz);

                if (r < 0)
                        return r;
                st = json_string_value(json_object_get(ret, "status"));
                if (st != NULL && strcmp(st, "completed") == 0) {
                        json_decref(ret);
                        return 0;
                }
                if (st != NULL && (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)) {
                        const char *why = json_string_value(json_object_get(ret, "error-desc"));

                        snprintf(errbuf, errsz, "migration %s%s%s", st, why ? ": " : "",
                                 why ? why : "");
                        json_decref(ret);
                        return -EIO;
                }
                json_decref(ret);
                if (mono_left_ms(deadline) == 0)
                        return -ETIMEDOUT;
                /* The state is ~60 KB: a save takes milliseconds; poll finely. */
                usleep(500);
        }
}

static int qemu_ignore_shared(struct qemu_vmm *q, char *errbuf, size_t errsz)
{
        json_t *args = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "x-ignore-shared",
                                 "state", 1);
        int r;

        if (args == NULL)
                return -ENOMEM;
        r = qmp_execute(q->qmp, "migrate-set-capabilities", args, NULL, QEMU_QMP_TIMEOUT_MS, errbuf,
                        errsz);
        json_decref(args);
        return r;
}

/* Hand QEMU a descriptor by name (SCM_RIGHTS on the QMP socket). */
static int qemu_getfd(struct qemu_vmm *q, int fd, const char *name, char *errbuf, size_t errsz)
{
        json_t *args = json_pack("{s:s}", "fdname", name);
        int r;

        if (args == NULL)
                return -ENOMEM;
        r = qmp_execute_fd(q->qmp, "getfd", args, fd, QEMU_QMP_TIMEOUT_MS, errbuf, errsz);
        json_decref(args);
        return r;
}

/*
 * "migrate" or "migrate-incoming" to/from state_fd. With RAM in a file the
 * state leaves it out (x-ignore-shared); with anonymous RAM the state carries
 * all of it (the streamed-RAM baseline of bench spawn).
 */
static int qemu_migrate_fd(struct qemu_vmm *q, const char *cmd, int state_fd, char *errbuf,
                           size_t errsz)
{
        json_t *args;
        int r;

        r = q->file_ram ? qemu_ignore_shared(q, errbuf, errsz) : 0;
        if (r == 0)
                r = qemu_getfd(q, state_fd, "lgstate", errbuf, errsz);
        if (r < 0)
                return r;
        args = json_pack("{s:s}", "uri", "fd:lgstate");
        if (args == NULL)
                return -ENOMEM;
        r = qmp_execute(q->qmp, cmd, args, NULL, QEMU_QMP_TIMEOUT_MS, errbuf, errsz);
        json_decref(args);
        return r;
}

static int qemu_save(struct vmm *v, int state_fd, char *errbuf, size_t errsz)
{
        struct qemu_vmm *q = (struct qemu_vmm *)v;
        int r;

        r = qmp_execute(q->qmp, "stop", NULL, NULL, QEMU_QMP_TIMEOUT_MS, errbuf, errsz);
        if (r == 0)
                r = qemu_migrate_fd(q, "migrate", state_fd, errbuf, errsz);
        if (r == 0)
                r = qemu_wait_migration(q, QEMU_QMP_TIMEOUT_MS, errbuf, errsz);
        return r;
}

static int qemu_restore(struct vmm *v, int state_fd, char *errbuf, size_t errsz)
{
        struct qemu_vmm *q = (struct qemu_vmm *)v;
        uint64_t deadline = mono_ms() + QEMU_QMP_TIMEOUT_MS;
        int r;

        r = qemu_migrate_fd(q, "migrate-incoming", state_fd, errbuf, errsz);
        /* Incoming migration runs in the background; it is done when the VM leaves inmigrate. */
        while (r == 0) {
                json_t *ret = NULL;
                const char *st;

                r = qmp_execute(q->qmp, "query-status", NULL, &ret, mono_left_ms(deadline), errbuf,
                                errsz);
                if (r < 0)
                        break;
                st = json_string_value(json_object_get(ret, "status"));
                if (st != NULL && strcmp(st, "inmigrate") != 0) {
                        int ok = strcmp(st, "paused") == 0 || strcmp(st, "prelaunch") == 0;

                        if (!ok)
                                snprintf(errbuf, errsz, "state after restore is \"%s\"", st);
                        json_decref(ret);
                        if (!ok)
                                return -EIO;
                        break;
                }
                json_decref(ret);
                if (mono_left_ms(deadline) == 0)
                        return -ETIMEDOUT;
                usleep(250);
        }
        if (r == 0)
                r = qmp_execute(q->qmp, "cont", NULL, NULL, QEMU_QMP_TIMEOUT_MS, errbuf, errsz);
        return r;
}

static int qemu_quit(struct vmm *v)
{
        struct qemu_vmm *q = (struct qemu_vmm *)v;

        if (q->qmp == NULL)
                return -ENOTCONN;
        return qmp_execute(q->qmp, "quit", NULL, NULL, 1000, NULL, 0);
}

static void qemu_release(struct vmm *v)
{
        struct qemu_vmm *q = (struct qemu_vmm *)v;

        qmp_close(q->qmp);
        free(q);
}

const struct vmm_ops qemu_vmm_ops = {
    .name = "qemu",
    .start = qemu_start,
    .quit = qemu_quit,
    .save = qemu_save,
    .restore = qemu_restore,
    .release = qemu_release,
};
