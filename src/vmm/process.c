/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process backend as an engine: no VM. lg-agent runs directly in the
 * jail (jail.h, process flavour): the image's tree read-only under a tmpfs
 * overlay, its own namespaces and cgroup, an unprivileged uid, no network,
 * and the seccomp allow-list (seccomp_policy.h). The agent channel is the
 * same socketpair as a VM's, inherited as descriptor 3 ("lg-agent --fd 3"),
 * so everything above this engine — protocol, sandbox lifecycle, run — is
 * unchanged. It shares the host's kernel: the jail and the filter are the
 * whole boundary, hence root is required and no unjailed mode exists.
 */
#include "vmm/vmm.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "jail/jail.h"
#include "jail/seccomp_policy.h"

#include <errno.h>
#include <linux/filter.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct process_vmm {
        struct vmm base; /* first: the generic code casts between the two */
};

/* The policy is the same for every sandbox: built once per process. */
static struct sock_fprog policy;
static pthread_once_t policy_once = PTHREAD_ONCE_INIT;
static char policy_error[1024 + 8];

static void policy_build(void)
{
        struct lg_err *err = NULL;

        if (seccomp_policy_build(&policy, &err) < 0) {
                snprintf(policy_error, sizeof(policy_error), "%s", err->msg);
                err_free(&err);
        }
}

static int process_start(const struct vmm_config *c, struct vmm **out, struct lg_err **err)
{
        static const char *const argv[] = {"/sbin/lg-agent", "--fd", "3", NULL};
        char root[PATH_MAX + 8], log[PATH_MAX + 16], why[PATH_MAX + 128] = "";
        _cleanup_free_ struct process_vmm *p = NULL;
        _cleanup_free_ struct jail *jail = NULL;
        int r;

        if (!c->jail)
                return err_set(err, LG_EK_START, EPERM,
                               "the process backend runs only jailed (as root, without "
                               "LUMINAGUARD_JAIL=off): it shares the host's kernel");
        pthread_once(&policy_once, policy_build);
        if (policy.filter == NULL)
                return err_set(err, LG_EK_INTERNAL, EINVAL, "seccomp policy: %s", policy_error);
        p = calloc(1, sizeof(*p));
        jail = malloc(sizeof(*jail));
        if (p == NULL || jail == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "allocate process sandbox");
        snprintf(root, sizeof(root), "%s/root", c->run_dir);
        snprintf(log, sizeof(log), "%s/vmm.log", c->run_dir);
        if (mkdir(root, 0700) < 0)
                return err_set(err, LG_EK_START, errno, "create %s", root);
        struct jail_config jc = {
            .id = c->id,
            .root = root,
            .binary = argv[0],
            .cgroup_procs = c->cgroup_procs,
            .rootfs = c->rootfs,
            .disk_bytes = c->disk_bytes,
            .nproc = c->pids,
            .seccomp = &policy,
        };
        r = jail_plan(jail, &jc, err);
        if (r < 0)
                return r;
        p->base.ops = &process_vmm_ops;
        p->base.pidfd = -1;
        p->base.reaped = 1;
        /* The files commands write are bounded by the writable layer, not the VMM log cap. */
        struct vmm_spawn_opts so = {
            .max_file_bytes = c->disk_bytes, .jail = jail, .errbuf = why, .errsz = sizeof(why)};

        r = vmm_spawn(&p->base, argv, &c->agent_fd, 1, log, &so);
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "start lg-agent%s%s", why[0] ? ": " : "", why);
        log_debug("lg-agent %d started for %s (process backend)", (int)p->base.pid, c->id);
        *out = &p->base;
        p = NULL;
        return 0;
}

/* The agent ends its commands' process groups and exits on SIGTERM. */
static int process_quit(struct vmm *v)
{
        return syscall(SYS_pidfd_send_signal, v->pidfd, SIGTERM, NULL, 0) < 0 ? -errno : 0;
}

static int process_no_snapshot(struct vmm *v, int state_fd, char *errbuf, size_t errsz)
{
        (void)v;
        (void)state_fd;
        snprintf(errbuf, errsz, "the process backend has no snapshots");
        return -EOPNOTSUPP;
}

static void process_release(struct vmm *v)
{
        free(v);
}

const struct vmm_ops process_vmm_ops = {
    .name = "process",
    .start = process_start,
    .quit = process_quit,
    .save = process_no_snapshot,
    .restore = process_no_snapshot,
    .release = process_release,
};
