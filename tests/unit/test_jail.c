/* SPDX-License-Identifier: Apache-2.0 */
/* The jailer's plan (src/jail/jail.h): validation, order, and what it lets in. */
#include "common/err.h"
#include "jail/jail.h"
#include "jail/seccomp_policy.h"
#include "unit.h"

#include <limits.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/lg-unit-jail.XXXXXX";
static const char *const procs[] = {"/sys/fs/cgroup/pids/x/sb-1/cgroup.procs", NULL};

static void remove_root(void)
{
        rmdir(root);
}

static struct jail_config cfg(void)
{
        static int made;

        if (!made) {
                made = 1;
                CHECK(mkdtemp(root) != NULL);
                atexit(remove_root);
        }
        return (struct jail_config){.id = "sb-0123456789ab",
                                    .root = root,
                                    .binary = "/bin/sh",
                                    .kvm = 0,
                                    .cgroup_procs = procs};
}

static int plan(const struct jail_config *c, struct jail *j)
{
        struct lg_err *err = NULL;
        int r = jail_plan(j, c, &err);

        err_free(&err);
        return r;
}

static long find(const struct jail *j, enum jail_op op, const char *a)
{
        for (size_t i = 0; i < j->nsteps; i++) {
                if (j->steps[i].op == op && (a == NULL || strcmp(j->steps[i].a, a) == 0))
                        return (long)i;
        }
        return -1;
}

TEST(bad_configurations_are_refused)
{
        static struct jail j;
        struct jail_config c = cfg();

        c.id = "sb-../../etc";
        CHECK(plan(&c, &j) < 0);
        c = cfg();
        c.id = "xx-0123";
        CHECK(plan(&c, &j) < 0);
        c = cfg();
        c.root = "relative/root";
        CHECK(plan(&c, &j) < 0);
        c = cfg();
        c.root = "/nonexistent/lg-root";
        CHECK(plan(&c, &j) < 0);
        c = cfg();
        c.binary = "sh"; /* not absolute */
        CHECK(plan(&c, &j) < 0);
        c = cfg();
        CHECK_EQ_INT(plan(&c, &j), 0);
}

TEST(steps_come_in_the_safe_order)
{
        static struct jail j;
        struct jail_config c = cfg();

        CHECK_EQ_INT(plan(&c, &j), 0);
        long cg = find(&j, JAIL_JOIN_CGROUP, procs[0]), priv = find(&j, JAIL_PRIVATE_MOUNTS, NULL),
             tmpfs = find(&j, JAIL_MOUNT_TMPFS, root), proc = find(&j, JAIL_MOUNT_PROC, NULL),
             pivot = find(&j, JAIL_PIVOT, root), ro = find(&j, JAIL_ROOT_RO, NULL),
             drop = find(&j, JAIL_DROP_PRIVILEGES, NULL), nnp = find(&j, JAIL_NO_NEW_PRIVS, NULL);

        CHECK(cg == 0);                      /* while the host's /sys is still there */
        CHECK(priv > cg && tmpfs > priv);    /* nothing propagates back to the host */
        CHECK(proc > tmpfs && pivot > proc); /* everything is built before the pivot */
        CHECK(ro > pivot && drop > ro);      /* privileges last: mounts need them */
        CHECK(nnp == (long)j.nsteps - 1);
        for (size_t i = (size_t)pivot + 1; i < j.nsteps; i++)
                CHECK(j.steps[i].op != JAIL_BIND_RO && j.steps[i].op != JAIL_MOUNT_TMPFS);
}

TEST(only_system_files_and_three_devices_are_bound)
{
        static const char *const allowed[] = {
            "/usr/lib",           "/usr/lib64", "/lib",      "/lib64",    "/usr/share/qemu",
            "/usr/share/seabios", "/bin/sh",    "/dev/null", "/dev/zero", "/dev/urandom"};
        static struct jail j;
        struct jail_config c = cfg();
        char real[PATH_MAX];
        int devices = 0;

        CHECK(realpath("/bin/sh", real) != NULL);
        c.binary = real;
        CHECK_EQ_INT(plan(&c, &j), 0);
        for (size_t i = 0; i < j.nsteps; i++) {
                const struct jail_step *s = &j.steps[i];
                int ok = 0;

                if (s->op != JAIL_BIND_RO)
                        continue;
                for (size_t k = 0; k < sizeof(allowed) / sizeof(allowed[0]); k++)
                        ok |= strcmp(s->a, allowed[k]) == 0;
                ok |= strcmp(s->a, real) == 0;
                if (!ok)
                        fprintf(stderr, "    unexpected bind of %s\n", s->a);
                CHECK(ok);
                /* Every bind lands inside the jail's root. */
                CHECK(strncmp(s->b, root, strlen(root)) == 0);
                devices += s->dev;
        }
        CHECK_EQ_INT(devices, 3);
        CHECK(find(&j, JAIL_BIND_RO, "/dev/kvm") < 0);
        c.kvm = 1;
        if (access("/dev/kvm", F_OK) == 0) {
                CHECK_EQ_INT(plan(&c, &j), 0);
                CHECK(find(&j, JAIL_BIND_RO, "/dev/kvm") >= 0);
        }
}

TEST(uids_are_unprivileged_and_spread)
{
        uid_t a = jail_uid("sb-0000aaaaaaaa"), b = jail_uid("sb-ffffaaaaaaaa"),
              c = jail_uid("sb-0001aaaaaaaa");

        CHECK(a > JAIL_ID_BASE && b > JAIL_ID_BASE && c > JAIL_ID_BASE);
        CHECK(a != b && a != c && b != c);
        CHECK(a != JAIL_GID);
}

TEST(process_plan_overlays_the_image_and_ends_with_seccomp)
{
        static struct jail j;
        struct sock_fprog prog;
        struct lg_err *err = NULL;
        struct jail_config c = cfg();

        CHECK_EQ_INT(seccomp_policy_build(&prog, &err), 0);
        err_free(&err);
        CHECK(prog.len > seccomp_policy_size()); /* a check per allowed call, at least */
        /* A stand-in for the image tree: it needs real dev/ and proc/ directories. */
        static char tree[] = "/tmp/lg-unit-tree.XXXXXX";
        char sub[PATH_MAX];

        CHECK(mkdtemp(tree) != NULL);
        snprintf(sub, sizeof(sub), "%s/dev", tree);
        CHECK(mkdir(sub, 0755) == 0);
        snprintf(sub, sizeof(sub), "%s/proc", tree);
        CHECK(symlink("/proc", sub) == 0); /* first as a link: refused */
        c.rootfs = tree;
        c.binary = "/sbin/lg-agent"; /* inside the tree: not checked on the host */
        c.disk_bytes = 4 << 20;
        c.nproc = 32;
        c.seccomp = &prog;
        CHECK(plan(&c, &j) < 0); /* proc/ is a link: the jail would follow it as root */
        CHECK(unlink(sub) == 0 && mkdir(sub, 0755) == 0);
        CHECK_EQ_INT(plan(&c, &j), 0);
        long ov = find(&j, JAIL_MOUNT_OVERLAY, NULL), tm = find(&j, JAIL_MOUNT_TMPFS, NULL);
        char lower[PATH_MAX + 16];

        snprintf(lower, sizeof(lower), "lowerdir=%s,", tree);
        CHECK(ov > tm && tm >= 0);
        CHECK(ov >= 0 && strstr(j.steps[ov].b, lower) != NULL);
        CHECK(tm >= 0 && strstr(j.steps[tm].b, "size=4194304") != NULL);
        CHECK(find(&j, JAIL_ROOT_RO, NULL) < 0); /* the overlay is the writable layer */
        CHECK(find(&j, JAIL_BIND_RO, "/usr/lib") < 0);
        CHECK_EQ_INT(find(&j, JAIL_SECCOMP, NULL), (long)j.nsteps - 1);
        CHECK(find(&j, JAIL_NO_NEW_PRIVS, NULL) < find(&j, JAIL_SECCOMP, NULL));
        CHECK_EQ_INT(j.nproc, 32);
        /* Without a policy, no process sandbox. */
        c.seccomp = NULL;
        CHECK(plan(&c, &j) < 0);
        /* A path that would break the overlay's option string. */
        c.seccomp = &prog;
        c.rootfs = "/tmp/a,b";
        CHECK(plan(&c, &j) < 0);
        free(prog.filter);
        snprintf(sub, sizeof(sub), "%s/dev", tree);
        rmdir(sub);
        snprintf(sub, sizeof(sub), "%s/proc", tree);
        rmdir(sub);
        rmdir(tree);
}
