/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jailer (DESIGN.md §2): every VMM process starts through it. The
 * parent plans (jail_plan: validate, resolve, compute every path, allocate);
 * the child, between clone and exec, only replays the plan as a linear list
 * of system calls (jail_enter) — no allocation, no formatting, nothing that
 * is not async-signal-safe:
 *
 *   1. join the sandbox's cgroups (cgroup.h)
 *   2. make every mount private, so nothing below propagates to the host
 *   3. a small tmpfs at run/<id>/root: the VMM's whole world
 *   4. bind read-only into it what the VMM needs and nothing else: its
 *      binary, the system's libraries (/usr/lib*, /lib*), QEMU's firmware
 *      (/usr/share/qemu), /dev/null, /dev/urandom, /dev/kvm only for KVM;
 *      a fresh /proc (a new pid namespace: it shows the VMM alone)
 *   5. pivot_root into it and detach the old root; root read-only
 *   6. hostname, rlimits
 *   7. drop every capability (bounding and ambient sets too), lock the
 *      securebits, setgroups/setresgid/setresuid to an unprivileged id
 *   8. no_new_privs; then the caller execs the VMM with a clean environment
 *
 * The namespaces (mount, pid, ipc, uts, cgroup, and net: an empty network namespace,
 * since no sandbox has network yet) come from clone3 in vmm_spawn. Files
 * the VMM needs from our state directory (image, template RAM, console
 * log) are passed as open descriptors and named /proc/self/fd/N, so no
 * part of $LUMINAGUARD_HOME exists inside the jail.
 */
#ifndef LG_JAIL_JAIL_H
#define LG_JAIL_JAIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_fprog;

struct lg_err;

/* The id range of jailed VMMs: uid = JAIL_ID_BASE + 1 + 28 bits of the sandbox id. */
#define JAIL_ID_BASE 0x10000000u
/* Group of every jailed VMM: templates and logs it must open are group-accessible. */
#define JAIL_GID JAIL_ID_BASE

#define JAIL_MAX_STEPS 64

struct jail_config {
        const char *id;                  /* sandbox id: sb-<hex> */
        const char *root;                /* an empty directory of ours: run/<id>/root */
        const char *binary;              /* the VMM executable (resolved to an absolute path) */
        int kvm;                         /* bind /dev/kvm */
        const char *const *cgroup_procs; /* cgroup.procs files to join; NULL-terminated */
        /*
         * The process backend instead of a VMM: the jail's root is an
         * overlay of this directory (read-only) and a tmpfs of disk_bytes
         * (the sandbox's writable layer, gone with it); binary is a path
         * inside it; the seccomp program is loaded last. Writable /, no
         * system libraries, hostname "sandbox".
         */
        const char *rootfs;
        uint64_t disk_bytes;
        unsigned nproc; /* RLIMIT_NPROC of the jailed uid */
        const struct sock_fprog *seccomp;
};

enum jail_op {
        JAIL_JOIN_CGROUP,
        JAIL_PRIVATE_MOUNTS,
        JAIL_MOUNT_TMPFS,   /* a: where, b: options */
        JAIL_MOUNT_OVERLAY, /* a: where, b: options */
        JAIL_MKDIR,
        JAIL_MKDIR_OWNED, /* a directory the sandbox's uid owns (its /workspace) */
        JAIL_TOUCH,
        JAIL_SYMLINK,
        JAIL_BIND_RO, /* bind + remount read-only, nosuid (and nodev unless dev) */
        JAIL_MOUNT_PROC,
        JAIL_PIVOT,
        JAIL_ROOT_RO,
        JAIL_HOSTNAME,
        JAIL_LOOPBACK_UP, /* the new network namespace's lo, for the egress proxy */
        JAIL_RLIMITS,
        JAIL_DROP_PRIVILEGES,
        JAIL_NO_NEW_PRIVS,
        JAIL_SECCOMP,
};

struct jail_step {
        enum jail_op op;
        const char *a, *b; /* paths; meaning per op */
        int dev;           /* JAIL_BIND_RO of a device node */
};

struct jail {
        struct jail_step steps[JAIL_MAX_STEPS];
        size_t nsteps;
        uid_t uid;
        gid_t gid;
        gid_t kvm_gid;          /* supplementary group for /dev/kvm; 0 = none */
        unsigned nofile, nproc; /* rlimits */
        const struct sock_fprog *seccomp;
        char arena[8192]; /* the strings the steps point into */
        size_t used;
};

/* In the parent: validate the configuration and plan every step. */
int jail_plan(struct jail *j, const struct jail_config *c, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * In the child: carry out the plan. Returns 0, or -errno with *failed set to
 * the index of the step that failed (jail_step_name() says what it was).
 */
int jail_enter(const struct jail *j, size_t *failed);

/* "bind /usr/lib", "drop privileges", ... for error messages (parent side). */
void jail_step_name(const struct jail *j, size_t step, char *out, size_t outsz);

/* The uid a sandbox's VMM runs as. */
uid_t jail_uid(const char *id);

/* 1 if this process can jail VMMs (it is root); otherwise why not, in why. */
int jail_available(char *why, size_t whysz);

#endif
