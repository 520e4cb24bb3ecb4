/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard doctor`: one line per host property LuminaGuard depends on,
 *     OK|WARN|FAIL  what — detail (fix: hint)
 * Exit status 0 when nothing FAILed, 1 otherwise. Checks only read: the one
 * side effect is the accelerator probe's per-boot cache file.
 */
#include "cli/cli.h"
#include "common/err.h"
#include "common/hostmem.h"
#include "common/paths.h"
#include "jail/cgroup.h"
#include "jail/jail.h"
#include "image/image.h"
#include "vmm/accel.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

enum level { L_OK, L_WARN, L_FAIL };

static int failures;

static void report(enum level lv, const char *what, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(enum level lv, const char *what, const char *fix, const char *fmt, ...)
{
        static const char *const names[] = {"OK", "WARN", "FAIL"};
        char detail[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        printf("%-5s %s \u2014 %s", names[lv], what, detail);
        if (fix != NULL && lv != L_OK)
                printf(" (fix: %s)", fix);
        putchar('\n');
        failures += lv == L_FAIL;
}

/* First line printed by a fixed command line, "" when it fails. */
static int first_line(const char *cmd, char *out, size_t outsz)
{
        FILE *p = popen(cmd, "re");
        int st;

        out[0] = '\0';
        if (p == NULL)
                return -errno;
        if (fgets(out, (int)outsz, p) != NULL)
                out[strcspn(out, "\n")] = '\0';
        while (fgetc(p) != EOF) /* drain so the child is not killed by SIGPIPE */
                ;
        st = pclose(p);
        return st == 0 ? 0 : -ECHILD;
}

static void check_accel(const char *home)
{
        const char *env = getenv("LUMINAGUARD_ACCEL");
        struct accel_probe p;
        char why[512];
        enum accel_kind k;

        /* The same cached verdict `run` uses; probes once per host boot. */
        accel_probe_get(home, &p);
        k = accel_choose(home, why, sizeof(why));
        if (p.hw_speed)
                report(L_OK, "accelerator", NULL, "%s \u2192 using %s", p.detail, accel_name(k));
        else if (p.kvm_usable)
                report(L_WARN, "accelerator",
                       "a host with VT-x/AMD-V or nested virtualisation runs guests at full speed",
                       "%s \u2192 using %s (guest kernel runs emulated)", p.detail, accel_name(k));
        else
                report(L_WARN, "accelerator",
                       "load kvm_intel/kvm_amd and give this user access to /dev/kvm",
                       "no usable KVM (%s) \u2192 using %s", p.detail, accel_name(k));
        if (env != NULL && env[0] != '\0')
                report(k == ACCEL_KVM && !p.hw_speed ? L_WARN : L_OK, "accelerator override",
                       "unset LUMINAGUARD_ACCEL to let the probe choose", "%s", why);
}

static void check_qemu(void)
{
        char ver[256], line[256];

        if (first_line("qemu-system-x86_64 --version 2>/dev/null", ver, sizeof(ver)) < 0 ||
            ver[0] == '\0') {
                report(L_FAIL, "qemu", "apt-get install qemu-system-x86",
                       "qemu-system-x86_64 not found or not runnable");
                return;
        }
        if (first_line("qemu-system-x86_64 -M help 2>/dev/null | grep -m1 '^microvm '", line,
                       sizeof(line)) < 0 ||
            line[0] == '\0')
                report(L_FAIL, "qemu", "install a QEMU with the microvm machine (>= 4.2)",
                       "%s has no -M microvm", ver);
        else
                report(L_OK, "qemu", NULL, "%s, -M microvm supported", ver);
}

static void check_image(const char *home)
{
        struct image_info info;
        struct lg_err *err = NULL;

        if (image_inspect(home, "base", &info, &err) < 0) {
                report(L_FAIL, "base image", NULL, "%s", err ? err->msg : "cannot inspect");
                err_free(&err);
                return;
        }
        if (info.present && info.recipe_key[0] == '\0')
                report(L_WARN, "base image", "reinstall luminaguard",
                       "%s present, but its recipe is missing: cannot tell if it is fresh",
                       info.paths.dir);
        else if (info.present && !info.stale)
                report(L_OK, "base image", NULL, "%s is up to date", info.paths.dir);
        else if (info.present)
                report(L_WARN, "base image", "luminaguard image build",
                       "%s is stale (recipe changed); rebuilt on first run", info.paths.dir);
        else if (info.recipe_key[0] == '\0')
                report(L_FAIL, "base image", "run 'make', or reinstall luminaguard",
                       "not built and its recipe (images/base, lg-agent) is not found");
        else
                report(L_WARN, "base image", "luminaguard image build",
                       "not built yet (%s); built on first run", info.problem);
}

/* A static binary has no PT_INTERP program header. 1 static, 0 dynamic, -errno. */
static int elf_is_static(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 1;
        Elf64_Ehdr eh;
        Elf64_Phdr ph;

        if (fd < 0)
                return -errno;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
            memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
                ret = -ENOEXEC;
        for (unsigned i = 0; ret == 1 && i < eh.e_phnum; i++) {
                if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
                    (ssize_t)sizeof(ph))
                        ret = -ENOEXEC;
                else if (ph.p_type == PT_INTERP)
                        ret = 0;
        }
        close(fd);
        return ret;
}

static void check_busybox(void)
{
        int r = elf_is_static("/bin/busybox");

        if (r == 1)
                report(L_OK, "busybox-static", NULL, "/bin/busybox is static (image builds)");
        else if (r == 0)
                report(L_WARN, "busybox-static", "apt-get install busybox-static",
                       "/bin/busybox is dynamically linked: image builds will fail");
        else
                report(L_WARN, "busybox-static", "apt-get install busybox-static",
                       "/bin/busybox: %s: image builds will fail", strerror(-r));
}

/* The jailer's cgroups: which version, and whether a sandbox's limits can really be set. */
static void check_cgroup(void)
{
        struct cgroup_limits l = {.memory_bytes = 64 << 20, .cpu_millis = 500, .pids = 8};
        struct lg_err *err = NULL;
        struct cgroup cg;
        char what[PATH_MAX + 64], left[PATH_MAX], id[32];

        if (cgroup_probe(what, sizeof(what)) < 0) {
                report(L_FAIL, "cgroups",
                       "mount the memory, cpu and pids controllers (v1) or cgroup2", "%s", what);
                return;
        }
        if (geteuid() != 0) {
                report(L_WARN, "cgroups", "run as root to jail VMMs", "%s; not root: no limits",
                       what);
                return;
        }
        snprintf(id, sizeof(id), "sb-d0c%08x", (unsigned)getpid());
        if (cgroup_create(id, &l, &cg, &err) < 0) {
                report(L_FAIL, "cgroups", "see docs/operations.md#cgroups", "%s", err->msg);
                err_free(&err);
                return;
        }
        if (cgroup_destroy(&cg, left, sizeof(left)) < 0)
                report(L_WARN, "cgroups", NULL, "%s; the probe's cgroup %s remains", what, left);
        else
                report(L_OK, "cgroups", NULL, "%s: memory, cpu and pids limits can be set", what);
}

static void check_seccomp(void)
{
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        int found = 0;

        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
                found |= strncmp(line, "Seccomp:", 8) == 0;
        if (f != NULL)
                fclose(f);
        if (found && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0)
                report(L_OK, "seccomp", NULL, "available (filter mode)");
        else
                report(L_FAIL, "seccomp", "use a kernel built with CONFIG_SECCOMP_FILTER",
                       "not available in this kernel");
}

static void check_memory(void)
{
        uint64_t avail = 0;
        int r = hostmem_available_mib(&avail);
        unsigned long long mib = avail;

        if (r < 0)
                report(L_WARN, "memory", NULL, "MemAvailable not found in /proc/meminfo");
        else if (mib < (unsigned long long)SANDBOX_DEFAULT_MEMORY_MIB)
                report(L_FAIL, "memory", "free memory or run fewer sandboxes",
                       "%llu MiB available, one sandbox needs %llu MiB", mib,
                       (unsigned long long)SANDBOX_DEFAULT_MEMORY_MIB);
        else
                report(mib < 2 * (unsigned long long)SANDBOX_DEFAULT_MEMORY_MIB ? L_WARN : L_OK,
                       "memory", "free memory for more than one sandbox",
                       "%llu MiB available: room for %llu sandboxes of %llu MiB", mib,
                       mib / (unsigned long long)SANDBOX_DEFAULT_MEMORY_MIB,
                       (unsigned long long)SANDBOX_DEFAULT_MEMORY_MIB);
}

static void check_disk(const char *home)
{
        char dir[PATH_MAX];
        struct statvfs vfs;
        unsigned long long mib;
        char *slash;

        /* The home may not exist yet: measure the filesystem it will be created on. */
        snprintf(dir, sizeof(dir), "%s", home);
        while (statvfs(dir, &vfs) < 0) {
                slash = strrchr(dir, '/');
                if (slash == NULL || slash == dir) {
                        snprintf(dir, sizeof(dir), "/");
                        if (statvfs(dir, &vfs) == 0)
                                break;
                        report(L_WARN, "disk", NULL, "cannot statvfs /: %s", strerror(errno));
                        return;
                }
                *slash = '\0';
        }
        mib = (unsigned long long)vfs.f_bavail * vfs.f_frsize / (1024 * 1024);
        /* The base image takes ~70 MiB (the uncompressed kernel is most of it). */
        if (mib < 100)
                report(L_FAIL, "disk", "free space or set LUMINAGUARD_HOME elsewhere",
                       "%llu MiB free under %s", mib, dir);
        else
                report(mib < 1024 ? L_WARN : L_OK, "disk",
                       "free space or set LUMINAGUARD_HOME elsewhere", "%llu MiB free under %s",
                       mib, dir);
}

static void check_user(void)
{
        const char *env = getenv("LUMINAGUARD_JAIL");
        char why[128];

        if (env != NULL && strcmp(env, "off") == 0)
                report(L_WARN, "jail", "unset LUMINAGUARD_JAIL",
                       "LUMINAGUARD_JAIL=off: VMMs run with our privileges, unconfined");
        else if (jail_available(why, sizeof(why)))
                report(L_OK, "jail", NULL,
                       "VMMs run jailed: own namespaces, read-only root, cgroup, uid %u+, no "
                       "capabilities",
                       JAIL_ID_BASE);
        else
                report(L_WARN, "jail", "run luminaguard as root",
                       "VMMs run unjailed, with uid %u's privileges (%s)", (unsigned)geteuid(),
                       why);
}

int cmd_doctor(int argc, char **argv)
{
        char home[PATH_MAX];

        if (argc > 1) {
                int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;

                fprintf(help ? stdout : stderr,
                        "usage: luminaguard doctor\n\nChecks the host: accelerator, QEMU, "
                        "base image, busybox-static,\ncgroups, seccomp, memory, disk, "
                        "the jail. Exit status 1 when a check FAILs.\n");
                return help ? 0 : LG_EXIT_USAGE;
        }
        if (paths_home(home, sizeof(home)) < 0) {
                fprintf(stderr, "luminaguard: error: cannot tell the state directory: set "
                                "LUMINAGUARD_HOME or HOME\n");
                return LG_EXIT_USAGE;
        }
        failures = 0;
        check_accel(home);
        check_qemu();
        check_image(home);
        check_busybox();
        check_cgroup();
        check_seccomp();
        check_memory();
        check_disk(home);
        check_user();
        return failures ? 1 : 0;
}
