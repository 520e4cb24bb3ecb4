/* SPDX-License-Identifier: Apache-2.0 */
#include "jail/jail.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT                      (1 << 0)
#define SECBIT_NOROOT_LOCKED               (1 << 1)
#define SECBIT_NO_SETUID_FIXUP             (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED      (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED            (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE        (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

/* Limits of a VMM process; the guest's own are the guest kernel's business. */
#define JAIL_VMM_NOFILE 256 /* QEMU holds a few dozen descriptors */
#define JAIL_VMM_NPROC  64  /* threads of this uid: QEMU runs ~6 */
/* A process sandbox runs commands: ordinary limits (the cgroup bounds the total). */
#define JAIL_PROC_NOFILE 1024

uid_t jail_uid(const char *id)
{
        unsigned v = 0;

        /*
         * sb-<12 hex>: the first seven hex digits (28 random bits) pick the
         * uid; per-uid kernel limits (RLIMIT_NPROC, inotify, pipe buffers)
         * are shared by sandboxes only if those collide (~1 in 10^4 pairs at
         * 300 concurrent sandboxes).
         */
        for (int i = 3; i < 10 && id[i] != '\0'; i++) {
                char c = id[i];

                v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c - '0');
        }
        return (uid_t)(JAIL_ID_BASE + 1 + (v & 0xfffffff)); /* never the group's own id */
}

int jail_available(char *why, size_t whysz)
{
        if (geteuid() != 0) {
                snprintf(why, whysz, "not root: namespaces, cgroups and uid changes need it");
                return 0;
        }
        why[0] = '\0';
        return 1;
}

static const char *keep(struct jail *j, const char *s)
{
        size_t n = strlen(s) + 1;
        char *out;

        if (j->used + n > sizeof(j->arena))
                return NULL;
        out = j->arena + j->used;
        memcpy(out, s, n);
        j->used += n;
        return out;
}

/* root + path, kept in the arena. */
static const char *under(struct jail *j, const char *root, const char *path)
{
        char buf[PATH_MAX];

        if (snprintf(buf, sizeof(buf), "%s%s", root, path) >= (int)sizeof(buf))
                return NULL;
        return keep(j, buf);
}

/* Add a step. A NULL path where one is due means the arena overflowed. */
static int step(struct jail *j, enum jail_op op, const char *a, const char *b, int dev)
{
        int needs_a = op != JAIL_PRIVATE_MOUNTS && op != JAIL_RLIMITS &&
                      op != JAIL_DROP_PRIVILEGES && op != JAIL_NO_NEW_PRIVS && op != JAIL_SECCOMP &&
                      op != JAIL_LOOPBACK_UP;
        int needs_b = op == JAIL_SYMLINK || op == JAIL_BIND_RO || op == JAIL_MOUNT_TMPFS ||
                      op == JAIL_MOUNT_OVERLAY;

        if (j->nsteps == JAIL_MAX_STEPS || (needs_a && a == NULL) || (needs_b && b == NULL))
                return -ENOMEM;
        j->steps[j->nsteps++] = (struct jail_step){.op = op, .a = a, .b = b, .dev = dev};
        return 0;
}

/* Every parent directory of path (below root) first. */
static int mkdirs(struct jail *j, const char *root, const char *path)
{
        char buf[PATH_MAX];
        int r = 0;

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; r == 0 && (p = strchr(p, '/')) != NULL; p++) {
                *p = '\0';
                r = step(j, JAIL_MKDIR, under(j, root, buf), NULL, 0);
                *p = '/';
        }
        return r;
}

/*
 * Bring a host path into the jail the way it is on the host: a symbolic
 * link stays a link (merged-/usr systems: /lib -> usr/lib), a directory or
 * file is bound read-only, a missing one is skipped.
 */
static int mirror(struct jail *j, const char *root, const char *path, int dev)
{
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;
        int r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        r = mkdirs(j, root, path);
        if (r < 0)
                return r;
        if (S_ISLNK(st.st_mode)) {
                n = readlink(path, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                return step(j, JAIL_SYMLINK, keep(j, target), under(j, root, path), 0);
        }
        r = step(j, S_ISDIR(st.st_mode) ? JAIL_MKDIR : JAIL_TOUCH, under(j, root, path), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_BIND_RO, keep(j, path), under(j, root, path), dev);
        return r;
}

/* dir + sub exists and is a directory, not a symbolic link. */
static int real_dir(const char *dir, const char *sub)
{
        char p[PATH_MAX];
        struct stat st;

        snprintf(p, sizeof(p), "%s%s", dir, sub);
        return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int valid_id(const char *id)
{
        size_t n = strlen(id);

        if (n < 4 || n > 32 || strncmp(id, "sb-", 3) != 0)
                return 0;
        for (size_t i = 3; i < n; i++) {
                if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
                        return 0;
        }
        return 1;
}

/* A path that goes into a mount option string: no separators of its syntax. */
static int option_safe(const char *path)
{
        return strpbrk(path, ",:\\") == NULL;
}

/* The VMM's world: system libraries, its binary and firmware, three devices. */
static int plan_vmm(struct jail *j, const struct jail_config *c)
{
        static const char *const system[] = {"/lib",       "/lib64",          "/usr/lib",
                                             "/usr/lib64", "/usr/share/qemu", "/usr/share/seabios"};
        static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
        int r = step(j, JAIL_MOUNT_TMPFS, keep(j, c->root),
                     keep(j, "size=1m,nr_inodes=256,mode=0755"), 0);

        for (size_t i = 0; r == 0 && i < sizeof(system) / sizeof(system[0]); i++)
                r = mirror(j, c->root, system[i], 0);
        if (r == 0)
                r = mirror(j, c->root, c->binary, 0);
        for (size_t i = 0; r == 0 && i < sizeof(devices) / sizeof(devices[0]); i++)
                r = mirror(j, c->root, devices[i], 1);
        if (r == 0 && c->kvm) {
                struct stat kvm;

                r = mirror(j, c->root, "/dev/kvm", 1);
                /* Typically 0660 root:kvm: the group, not the uid, opens it. */
                if (r == 0 && stat("/dev/kvm", &kvm) == 0 && kvm.st_gid != 0)
                        j->kvm_gid = kvm.st_gid;
        }
        if (r == 0)
                r = step(j, JAIL_MKDIR, under(j, c->root, "/proc"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_MOUNT_PROC, under(j, c->root, "/proc"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_PIVOT, keep(j, c->root), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_ROOT_RO, keep(j, "/"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_HOSTNAME, keep(j, "lg-vmm"), NULL, 0);
        j->nofile = JAIL_VMM_NOFILE;
        j->nproc = JAIL_VMM_NPROC;
        return r;
}

/*
 * A process sandbox's world: the image's tree read-only under a tmpfs of
 * disk_bytes (overlayfs), so every sandbox starts pristine and what it
 * writes is bounded and vanishes with it; three devices; its own /proc.
 */
static int plan_process(struct jail *j, const struct jail_config *c)
{
        static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
        char opts[PATH_MAX * 3 + 64];
        const char *merged = under(j, c->root, "/merged");
        int r;

        if (!option_safe(c->rootfs) || !option_safe(c->root))
                return -EINVAL;
        snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=65536,mode=0755",
                 (unsigned long long)c->disk_bytes);
        r = step(j, JAIL_MOUNT_TMPFS, keep(j, c->root), keep(j, opts), 0);
        if (r == 0)
                r = step(j, JAIL_MKDIR, under(j, c->root, "/upper"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_MKDIR, under(j, c->root, "/work"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_MKDIR, merged, NULL, 0);
        snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", c->rootfs,
                 c->root, c->root);
        if (r == 0)
                r = step(j, JAIL_MOUNT_OVERLAY, merged, keep(j, opts), 0);
        for (size_t i = 0; r == 0 && merged != NULL && i < sizeof(devices) / sizeof(devices[0]);
             i++)
                r = mirror(j, merged, devices[i], 1);
        if (r == 0)
                r = step(j, JAIL_MKDIR, under(j, c->root, "/merged/proc"), NULL, 0);
        /* Where `run --workspace` unpacks: the root is root's, the workspace the sandbox's. */
        if (r == 0)
                r = step(j, JAIL_MKDIR_OWNED, under(j, c->root, "/merged/workspace"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_MOUNT_PROC, under(j, c->root, "/merged/proc"), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_PIVOT, merged, NULL, 0);
        if (r == 0)
                r = step(j, JAIL_HOSTNAME, keep(j, "sandbox"), NULL, 0);
        /* The agent's egress proxy listens on 127.0.0.1; a VM's guest brings up its own lo. */
        if (r == 0)
                r = step(j, JAIL_LOOPBACK_UP, NULL, NULL, 0);
        j->nofile = JAIL_PROC_NOFILE;
        j->nproc = c->nproc;
        return r;
}

int jail_plan(struct jail *j, const struct jail_config *c, struct lg_err **err)
{
        struct stat st;
        int r = 0;

        memset(j, 0, sizeof(*j));
        if (!valid_id(c->id))
                return err_set(err, LG_EK_INTERNAL, EINVAL, "jail: bad sandbox id '%s'", c->id);
        if (c->root[0] != '/' || strstr(c->root, "/../") != NULL || lstat(c->root, &st) < 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return err_set(err, LG_EK_INTERNAL, EINVAL,
                               "jail: root %s is not a directory of ours", c->root);
        if (c->rootfs != NULL && (!real_dir(c->rootfs, "/dev") || !real_dir(c->rootfs, "/proc")))
                return err_set(err, LG_EK_IMAGE, EINVAL,
                               "jail: %s/dev and %s/proc must be directories, not links: the "
                               "jail builds on them as root before entering it",
                               c->rootfs, c->rootfs);
        if (c->rootfs != NULL &&
            (c->rootfs[0] != '/' || stat(c->rootfs, &st) < 0 || !S_ISDIR(st.st_mode) ||
             c->seccomp == NULL || c->disk_bytes == 0 || c->nproc == 0))
                return err_set(err, LG_EK_INTERNAL, EINVAL,
                               "jail: process sandbox needs a root tree, a disk size, a task "
                               "limit and a seccomp policy");
        if (c->rootfs == NULL && (c->binary[0] != '/' || access(c->binary, X_OK) < 0))
                return err_set(err, LG_EK_START, errno ? errno : EINVAL,
                               "jail: VMM binary %s is not an executable absolute path", c->binary);
        j->uid = jail_uid(c->id);
        j->gid = JAIL_GID;
        j->seccomp = c->seccomp;

        for (const char *const *p = c->cgroup_procs; r == 0 && p != NULL && *p != NULL; p++)
                r = step(j, JAIL_JOIN_CGROUP, keep(j, *p), NULL, 0);
        if (r == 0)
                r = step(j, JAIL_PRIVATE_MOUNTS, NULL, NULL, 0);
        if (r == 0)
                r = c->rootfs != NULL ? plan_process(j, c) : plan_vmm(j, c);
        if (r == 0)
                r = step(j, JAIL_RLIMITS, NULL, NULL, 0);
        if (r == 0)
                r = step(j, JAIL_DROP_PRIVILEGES, NULL, NULL, 0);
        if (r == 0)
                r = step(j, JAIL_NO_NEW_PRIVS, NULL, NULL, 0);
        if (r == 0 && c->seccomp != NULL)
                r = step(j, JAIL_SECCOMP, NULL, NULL, 0);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "jail: plan for %s", c->id);
        return 0;
}

void jail_step_name(const struct jail *j, size_t i, char *out, size_t outsz)
{
        static const char *const names[] = {
            [JAIL_JOIN_CGROUP] = "join cgroup",
            [JAIL_PRIVATE_MOUNTS] = "make mounts private",
            [JAIL_MOUNT_TMPFS] = "mount the root tmpfs on",
            [JAIL_MOUNT_OVERLAY] = "mount the root overlay on",
            [JAIL_MKDIR] = "mkdir",
            [JAIL_MKDIR_OWNED] = "mkdir (owned by the sandbox)",
            [JAIL_TOUCH] = "create",
            [JAIL_SYMLINK] = "symlink",
            [JAIL_BIND_RO] = "bind read-only",
            [JAIL_MOUNT_PROC] = "mount proc on",
            [JAIL_PIVOT] = "pivot_root into",
            [JAIL_ROOT_RO] = "remount read-only",
            [JAIL_HOSTNAME] = "set hostname",
            [JAIL_LOOPBACK_UP] = "bring up lo",
            [JAIL_RLIMITS] = "set rlimits",
            [JAIL_DROP_PRIVILEGES] = "drop privileges",
            [JAIL_NO_NEW_PRIVS] = "set no_new_privs",
            [JAIL_SECCOMP] = "load the seccomp policy",
        };
        const struct jail_step *s;

        if (i >= j->nsteps) {
                snprintf(out, outsz, "step %zu", i);
                return;
        }
        s = &j->steps[i];
        snprintf(out, outsz, "%s%s%s%s%s", names[s->op], s->a ? " " : "", s->a ? s->a : "",
                 s->b ? " -> " : "", s->b ? s->b : "");
}

/* ---- the child side: system calls only ---- */

static int write_str(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, s, strlen(s));
        if (n < 0) {
                int e = errno;

                close(fd);
                return -e;
        }
        close(fd);
        return 0;
}

static int bind_ro(const struct jail_step *s)
{
        unsigned long fl = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | (s->dev ? 0 : MS_NODEV);

        /* Not recursive: a mount below the source would keep its own (writable) flags. */
        if (mount(s->a, s->b, NULL, MS_BIND, NULL) < 0)
                return -errno;
        /* A bind mount takes its flags only on remount. */
        if (mount(NULL, s->b, NULL, fl, NULL) < 0)
                return -errno;
        return 0;
}

static int set_rlimits(const struct jail *j)
{
        const struct {
                int res;
                rlim_t v;
        } lim[] = {
            {RLIMIT_NOFILE, j->nofile},
            {RLIMIT_NPROC, j->nproc},
            {RLIMIT_CORE, 0}, /* guest memory must not land in a core file */
        };

        for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
                struct rlimit rl = {lim[i].v, lim[i].v};

                if (setrlimit(lim[i].res, &rl) < 0)
                        return -errno;
        }
        return 0;
}

static int drop_privileges(const struct jail *j)
{
        /* Bounding set and ambient set first, while CAP_SETPCAP is still ours. */
        for (int cap = 0; cap <= 63; cap++) {
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        /* No way back to root's powers, even through a setuid binary or an exec as uid 0. */
        if (prctl(PR_SET_SECUREBITS,
                  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                      SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                      SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                  0, 0, 0) < 0)
                return -errno;
        /*
         * Raw system calls: glibc's setres[ug]id would synchronise the
         * credentials of every thread of the parent's (stale) thread list —
         * after clone3 from a threaded process that can hang. The only
         * supplementary group is /dev/kvm's, when the VMM needs it.
         */
        if (syscall(SYS_setgroups, j->kvm_gid ? 1 : 0, j->kvm_gid ? &j->kvm_gid : NULL) < 0 ||
            syscall(SYS_setresgid, j->gid, j->gid, j->gid) < 0 ||
            syscall(SYS_setresuid, j->uid, j->uid, j->uid) < 0)
                return -errno;
        /* setresuid away from 0 cleared the permitted and effective sets; make sure. */
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        if (d[0].permitted | d[0].effective | d[0].inheritable | d[1].permitted | d[1].effective |
            d[1].inheritable)
                return -EPERM;
        return 0;
}

static int loopback_up(void)
{
        struct ifreq ifr;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

        if (fd < 0)
                return -errno;
        memset(&ifr, 0, sizeof(ifr));
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        ifr.ifr_flags |= IFF_UP;
        if (r == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                r = -errno;
        close(fd);
        return r;
}

static int run_step(const struct jail *j, const struct jail_step *s)
{
        switch (s->op) {
        case JAIL_JOIN_CGROUP:
                return write_str(s->a, "0");
        case JAIL_PRIVATE_MOUNTS:
                return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? -errno : 0;
        case JAIL_MOUNT_TMPFS:
                /* noexec for a VMM's (binds bring their own flags); a sandbox runs its files. */
                return mount("luminaguard", s->a, "tmpfs",
                             MS_NOSUID | MS_NODEV | (j->seccomp ? 0 : MS_NOEXEC), s->b) < 0
                           ? -errno
                           : 0;
        case JAIL_MOUNT_OVERLAY:
                return mount("luminaguard", s->a, "overlay", MS_NOSUID | MS_NODEV, s->b) < 0
                           ? -errno
                           : 0;
        case JAIL_MKDIR:
                return mkdir(s->a, 0755) < 0 && errno != EEXIST ? -errno : 0;
        case JAIL_MKDIR_OWNED:
                /* Still root here; lchown: an image cannot make this follow a link. */
                if (mkdir(s->a, 0755) < 0 && errno != EEXIST)
                        return -errno;
                return lchown(s->a, j->uid, j->gid) < 0 ? -errno : 0;
        case JAIL_TOUCH: {
                /* An image may ship the file already; a symbolic link is refused. */
                int fd = open(s->a, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

                if (fd < 0)
                        return -errno;
                close(fd);
                return 0;
        }
        case JAIL_SYMLINK:
                return symlink(s->a, s->b) < 0 ? -errno : 0;
        case JAIL_BIND_RO:
                return bind_ro(s);
        case JAIL_MOUNT_PROC:
                /* A new pid namespace: this /proc shows the VMM and nothing else. */
                return mount("proc", s->a, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0
                           ? -errno
                           : 0;
        case JAIL_PIVOT:
                /* pivot_root(".", "."): the old root ends up on top, then goes. */
                if (chdir(s->a) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
                    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                        return -errno;
                return 0;
        case JAIL_ROOT_RO:
                return mount(NULL, s->a, NULL,
                             MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                             NULL) < 0
                           ? -errno
                           : 0;
        case JAIL_HOSTNAME:
                return sethostname(s->a, strlen(s->a)) < 0 ? -errno : 0;
        case JAIL_LOOPBACK_UP:
                return loopback_up();
        case JAIL_RLIMITS:
                return set_rlimits(j);
        case JAIL_DROP_PRIVILEGES:
                return drop_privileges(j);
        case JAIL_NO_NEW_PRIVS:
                return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
        case JAIL_SECCOMP:
                /* Last: every call above would be one more the policy must allow. */
                return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, j->seccomp, 0, 0) < 0 ? -errno
                                                                                        : 0;
        }
        return -EINVAL;
}

int jail_enter(const struct jail *j, size_t *failed)
{
        for (size_t i = 0; i < j->nsteps; i++) {
                int r = run_step(j, &j->steps[i]);

                if (r < 0) {
                        *failed = i;
                        return r;
                }
        }
        return 0;
}
