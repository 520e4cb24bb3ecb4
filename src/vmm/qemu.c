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

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QEMU_QMP_TIMEOUT_MS 10000

struct qemu_vmm {
        struct vmm base; /* first: the generic code casts between the two */
        struct qmp *qmp;
};

static const char *qemu_binary(void)
{
        const char *b = getenv("LUMINAGUARD_QEMU");

        return b != NULL && b[0] != '\0' ? b : "qemu-system-x86_64";
}

/*
 * The kernel command line for this accelerator. tsc_early_khz is needed under
 * TCG (microvm has no calibration source and the guest hangs without it) and
 * wrong under KVM (it would override the real TSC frequency), so the engine,
 * not the image, owns it.
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
                int n =
                    snprintf(out + used, outsz - used, "%stsc_early_khz=2500000", used ? " " : "");
                if (n < 0 || (size_t)n >= outsz - used)
                        return -E2BIG;
        }
        return 0;
}

static int qemu_start(const struct vmm_config *c, struct vmm **out, struct lg_err **err)
{
        char machine[128], mem[32], smp[16], name[96], console[PATH_MAX + 32], log[PATH_MAX],
            cmdline[2048];
        _cleanup_fd_ int qmp_ours = -1, qmp_theirs = -1;
        struct qemu_vmm *q;
        int sv[2], r;

        r = qemu_cmdline(c->cmdline, c->accel, cmdline, sizeof(cmdline));
        if (r < 0)
                return err_set(err, LG_EK_IMAGE, -r, "kernel command line too long");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return err_set(err, LG_EK_START, errno, "create QMP socketpair");
        qmp_ours = sv[0];
        qmp_theirs = sv[1];

        /* microvm: ACPI stays on (the guest finds virtio-mmio devices through it). */
        snprintf(machine, sizeof(machine), "microvm,accel=%s,x-option-roms=off",
                 accel_name(c->accel));
        snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)c->memory_mib);
        snprintf(smp, sizeof(smp), "%u", c->cpus);
        snprintf(name, sizeof(name), "lg-%s,debug-threads=off", c->id);
        snprintf(console, sizeof(console), "file,id=con,path=%s/console.log", c->run_dir);
        snprintf(log, sizeof(log), "%s/vmm.log", c->run_dir);

        const char *argv[] = {
            qemu_binary(),
            "-name",
            name,
            "-M",
            machine,
            "-cpu",
            c->accel == ACCEL_KVM ? "host" : "max",
            "-m",
            mem,
            "-smp",
            smp,
            /* Nothing we did not ask for: no default NIC, VGA, floppy, CD, monitor. */
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-net",
            "none",
            /* The guest clock starts from host UTC; nothing is ever written back. */
            "-rtc",
            "base=utc,clock=host",
            "-kernel",
            c->kernel,
            "-initrd",
            c->initrd,
            "-append",
            cmdline,
            "-chardev",
            console,
            "-serial",
            "chardev:con",
            "-device",
            "virtio-serial-device,max_ports=2",
            "-chardev",
            "socket,id=agent,fd=3",
            "-device",
            "virtserialport,chardev=agent,name=lg.agent,nr=1",
            "-chardev",
            "socket,id=qmp,fd=4",
            "-mon",
            "chardev=qmp,mode=control",
            /* A guest reboot ends the VM instead of booting it again. */
            "-no-reboot",
            /* QEMU's own seccomp filter; fd-passing keeps working under it. */
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-msg",
            "timestamp=on",
            NULL,
        };

        q = calloc(1, sizeof(*q));
        if (q == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate VMM");
        q->base.ops = &qemu_vmm_ops;
        q->base.pidfd = -1;
        q->base.reaped = 1;
        r = vmm_spawn(&q->base, argv, c->agent_fd, qmp_theirs, log);
        if (r < 0) {
                free(q);
                return err_set(err, LG_EK_START, -r, "start %s", argv[0]);
        }
        close(steal_fd(&qmp_theirs));

        r = qmp_open(steal_fd(&qmp_ours), QEMU_QMP_TIMEOUT_MS, &q->qmp);
        if (r < 0) {
                char how[96];

                char said[256];

                (void)vmm_stop(&q->base, 0);
                vmm_describe_exit(&q->base, how, sizeof(how));
                vmm_log_first_line(log, said, sizeof(said));
                /* The run directory (and the log) go away with the failed sandbox: quote it. */
                err_set(err, LG_EK_START, -r, "QEMU did not come up (%s%s%s)", how,
                        said[0] ? "; it said: " : "", said);
                free(q);
                return err_code(*err);
        }
        log_debug("qemu %d started for %s (accel %s)", (int)q->base.pid, c->id,
                  accel_name(c->accel));
        *out = &q->base;
        return 0;
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
    .release = qemu_release,
};
