/* SPDX-License-Identifier: Apache-2.0 */
#include "jail/seccomp_policy.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECCOMP_NS_FLAGS                                                                           \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
         CLONE_NEWCGROUP)

/* Each call allowed without conditions, and who needs it. */
static const struct {
        const char *name;
        const char *why;
} allowed[] = {
    /* I/O on descriptors: the agent's channel and pipes, every command. */
    {"read", "all I/O"},
    {"write", "all I/O"},
    {"readv", "busybox, libc stdio"},
    {"writev", "busybox, libc stdio"},
    {"pread64", "file reads at an offset (agent file API)"},
    {"pwrite64", "file writes at an offset (agent file API)"},
    {"lseek", "files"},
    {"close", "everything"},
    {"close_range", "agent: closing inherited descriptors before exec"},
    {"dup", "shells"},
    {"dup2", "shells, agent: stdio of commands"},
    {"dup3", "shells, agent"},
    {"fcntl", "descriptor flags (O_NONBLOCK, FD_CLOEXEC), locks"},
    /* ioctl: a short list of requests, below */
    {"pipe", "shells"},
    {"pipe2", "agent: command stdio, shells"},
    {"sendfile", "cp"},
    {"copy_file_range", "cp"},
    {"splice", "cat, cp"},
    {"fsync", "agent: atomic file writes"},
    {"fdatasync", "programs that sync"},
    {"ftruncate", "file writes"},
    {"truncate", "truncate(1)"},
    {"flock", "programs that lock files"},
    /* Waiting. */
    {"poll", "agent event loop"},
    {"ppoll", "agent event loop, busybox"},
    {"select", "shells"},
    {"pselect6", "shells"},
    {"epoll_create1", "event loops"},
    {"epoll_ctl", "event loops"},
    {"epoll_wait", "event loops"},
    {"epoll_pwait", "event loops"},
    {"eventfd2", "event loops"},
    {"signalfd4", "agent: SIGCHLD"},
    {"nanosleep", "sleep(1)"},
    {"clock_nanosleep", "sleep(1), libc"},
    {"sched_yield", "libc spinning"},
    {"futex", "threads, libc locks"},
    {"timerfd_create", "event loops"},
    {"timerfd_settime", "event loops"},
    {"timerfd_gettime", "event loops"},
    {"alarm", "timeout(1)"},
    {"setitimer", "timeout(1), shells"},
    {"getitimer", "shells"},
    /* Files and directories (inside the sandbox's own root). */
    {"open", "legacy open"},
    {"openat", "every file"},
    {"creat", "legacy create"},
    {"stat", "files"},
    {"fstat", "files"},
    {"lstat", "files"},
    {"newfstatat", "files"},
    {"statx", "files (ls, stat)"},
    {"statfs", "df"},
    {"fstatfs", "df, libc"},
    {"access", "shells: PATH search"},
    {"faccessat", "shells: PATH search"},
    {"faccessat2", "shells: PATH search"},
    {"getdents64", "ls, find, agent file API"},
    {"getcwd", "pwd, shells"},
    {"chdir", "cd, agent: --workdir"},
    {"fchdir", "find"},
    {"mkdir", "mkdir"},
    {"mkdirat", "mkdir, agent file API"},
    {"rmdir", "rmdir"},
    {"rename", "mv"},
    {"renameat", "mv"},
    {"renameat2", "mv, agent: atomic writes"},
    {"link", "ln"},
    {"linkat", "ln"},
    {"unlink", "rm"},
    {"unlinkat", "rm, agent"},
    {"symlink", "ln -s"},
    {"symlinkat", "ln -s"},
    {"readlink", "ls -l, realpath"},
    {"readlinkat", "ls -l, realpath"},
    {"chmod", "chmod"},
    {"fchmod", "chmod, agent file API"},
    {"fchmodat", "chmod"},
    {"chown", "chown (only to ourselves: no capabilities)"},
    {"fchown", "chown"},
    {"lchown", "chown"},
    {"fchownat", "chown"},
    {"umask", "shells"},
    {"utimensat", "touch"},
    {"utimes", "touch"},
    {"utime", "touch"},
    {"futimesat", "touch"},
    /* fallocate: mode 0 only (below) */
    {"fadvise64", "cat, cp"},
    {"mknod", "mkfifo (a device node needs a capability we do not have)"},
    {"mknodat", "mkfifo"},
    /* Memory. */
    {"brk", "malloc"},
    {"mmap", "malloc, loading programs"},
    {"munmap", "malloc"},
    {"mremap", "realloc"},
    {"mprotect", "loading programs"},
    {"madvise", "malloc"},
    {"msync", "programs that map files"},
    {"mincore", "libc"},
    {"memfd_create", "programs that want anonymous files"},
    /* Processes. */
    {"fork", "shells"},
    {"vfork", "shells, busybox"},
    /* clone: only without namespace flags (below); clone3's flags cannot be inspected. */
    {"execve", "running commands"},
    {"execveat", "running commands"},
    {"exit", "threads"},
    {"exit_group", "every process"},
    {"wait4", "shells, agent"},
    {"waitid", "agent, shells"},
    {"kill", "kill(1), agent: signals to commands (our own processes only)"},
    {"tgkill", "raise(), abort()"},
    {"tkill", "raise()"},
    {"getpid", "everything"},
    {"getppid", "shells"},
    {"gettid", "libc"},
    {"getpgid", "shells"},
    {"getpgrp", "shells"},
    {"setpgid", "shells, agent: process group per command"},
    {"getsid", "ps"},
    {"setsid", "setsid(1), agent"},
    {"getuid", "id, shells"},
    {"geteuid", "id, shells"},
    {"getgid", "id, shells"},
    {"getegid", "id, shells"},
    {"getgroups", "id"},
    {"getresuid", "libc"},
    {"getresgid", "libc"},
    {"getrlimit", "ulimit, libc"},
    {"prlimit64", "ulimit (raising past the jail's limits needs a capability)"},
    {"setrlimit", "ulimit"},
    {"getrusage", "time(1)"},
    {"times", "time(1), shells"},
    {"getpriority", "nice"},
    {"setpriority", "nice (only lowering priority without capabilities)"},
    {"sched_getaffinity", "nproc"},
    {"sched_getparam", "libc"},
    {"sched_getscheduler", "libc"},
    /* prctl: a short list of options, below */
    {"arch_prctl", "thread-local storage (every program)"},
    {"set_tid_address", "libc start-up"},
    {"set_robust_list", "libc start-up"},
    {"get_robust_list", "libc"},
    {"rseq", "glibc 2.35+ start-up"},
    {"capget", "programs that check their capabilities"},
    /* Identity: without CAP_SETUID/CAP_SETGID these can only re-set the ids we have. */
    {"setuid", "busybox drops set-id privileges at start-up"},
    {"setgid", "busybox drops set-id privileges at start-up"},
    {"setreuid", "libc"},
    {"setregid", "libc"},
    {"setresuid", "libc"},
    {"setresgid", "libc"},
    {"setgroups", "libc (fails without CAP_SETGID)"},
    {"setfsuid", "libc"},
    {"setfsgid", "libc"},
    /* Signals. */
    {"rt_sigaction", "everything"},
    {"rt_sigprocmask", "everything"},
    {"rt_sigreturn", "signal handlers"},
    {"rt_sigsuspend", "shells"},
    {"rt_sigtimedwait", "programs that wait for signals"},
    {"rt_sigpending", "shells"},
    {"sigaltstack", "runtimes"},
    {"pause", "programs that wait"},
    /* Time and identity of the machine (reading only). */
    {"clock_gettime", "date, libc"},
    {"clock_getres", "libc"},
    {"gettimeofday", "date"},
    {"time", "date"},
    {"uname", "uname, libc"},
    {"sysinfo", "free, uptime"},
    {"getrandom", "libc, programs that need randomness"},
    {"getcpu", "libc"},
    /* Sockets: only local ones are ever reachable (empty network namespace); socket()
       itself is restricted to AF_UNIX, AF_INET and AF_INET6 below. */
    /* socketpair: AF_UNIX only (below) */
    {"connect", "loopback only"},
    {"bind", "loopback only"},
    {"listen", "loopback only"},
    {"accept", "loopback only"},
    {"accept4", "loopback only"},
    {"sendto", "loopback only"},
    {"recvfrom", "loopback only"},
    {"sendmsg", "loopback only"},
    {"recvmsg", "loopback only"},
    {"shutdown", "loopback only"},
    {"getsockname", "loopback only"},
    {"getpeername", "loopback only"},
    {"getsockopt", "loopback only"},
    {"setsockopt", "loopback only"},
};

unsigned seccomp_policy_size(void)
{
        return sizeof(allowed) / sizeof(allowed[0]) +
               6; /* + clone, socket(pair), fallocate, ioctl, prctl */
}

static void release(scmp_filter_ctx *ctx)
{
        if (*ctx != NULL)
                seccomp_release(*ctx);
}

int seccomp_policy_build(struct sock_fprog *prog, struct lg_err **err)
{
        __attribute__((cleanup(release))) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        _cleanup_fd_ int mfd = -1;
        struct stat st;
        int r;

        prog->filter = NULL;
        prog->len = 0;
        if (ctx == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "seccomp_init");
        /* Another architecture's calls (x32, int 0x80) get the default action: kill. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        /* no_new_privs is the jail's own step, in its place. */
        if (r == 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        for (size_t i = 0; r == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
                int nr = seccomp_syscall_resolve_name(allowed[i].name);

                if (nr == __NR_SCMP_ERROR)
                        continue; /* not a call of this architecture (e.g. a legacy one) */
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        }
        /*
         * fork and threads: clone, only without namespace flags (a user
         * namespace would hand the command capabilities inside it, and with
         * them mount and much more of the kernel). clone3 passes its flags
         * in memory, which seccomp cannot read: ENOSYS, and glibc falls
         * back to clone.
         */
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, SECCOMP_NS_FLAGS, 0));
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        /*
         * Memory protection keys: V8 (node) asks for one at start and does
         * without when the kernel has none. Not needed, so not given: ENOSYS
         * rather than a kill, or every node program would die.
         */
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(pkey_alloc), 0);
        /*
         * Sockets: AF_UNIX of any type; AF_INET and AF_INET6 only as plain TCP
         * or UDP (the socket type masked of SOCK_NONBLOCK/SOCK_CLOEXEC, the
         * protocol 0 or the matching one). Everything else — raw, packet,
         * netlink, other families, other protocols such as SCTP, whose
         * modules the kernel would load on demand — kills. socketpair()
         * creates both sockets before it checks the family: AF_UNIX only.
         */
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                                     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
        /*
         * Netlink stays shut, but politely: node's os.networkInterfaces() (npm
         * calls it) asks NETLINK_ROUTE for the interfaces, and an error there
         * is survivable where a kill is not. The call never reaches the kernel.
         */
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
        static const int inet[] = {AF_INET, AF_INET6};
        static const struct {
                int type, proto;
        } kinds[] = {{SOCK_STREAM, 0},
                     {SOCK_STREAM, IPPROTO_TCP},
                     {SOCK_DGRAM, 0},
                     {SOCK_DGRAM, IPPROTO_UDP}};

        for (size_t f = 0; r == 0 && f < sizeof(inet) / sizeof(inet[0]); f++) {
                for (size_t k = 0; r == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++)
                        r = seccomp_rule_add(
                            ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
                            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)inet[f]),
                            SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)kinds[k].type),
                            SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)kinds[k].proto));
        }
        /*
         * fallocate only as plain allocation (mode 0), which RLIMIT_FSIZE
         * bounds; FALLOC_FL_KEEP_SIZE would allocate past it on any file
         * descriptor the sandbox holds.
         */
        if (r == 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fallocate), 1,
                                     SCMP_A1(SCMP_CMP_EQ, 0));
        /* ioctl: terminal and descriptor queries that programs make as a matter of course. */
        static const unsigned long ioctls[] = {
            TCGETS,     /* isatty() */
            TIOCGWINSZ, /* terminal size */
            TIOCGPGRP,  /* shells: the foreground group */
            FIONREAD,   /* bytes waiting */
            FIONBIO,    /* non-blocking */
            FIOCLEX,    /* close-on-exec */
            FIONCLEX,
        };

        for (size_t i = 0; r == 0 && i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                     SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)ioctls[i]));
        /*
         * Any other request kills, like any other call: libseccomp cannot say
         * "these arguments allow, all others fail with ENOTTY" for one call
         * (a rule without arguments would override the list).
         */
        /* prctl: naming, parent-death signal, subreaper, no_new_privs and the PR_GET_* queries. */
        static const int prctls[] = {PR_SET_NAME,
                                     PR_GET_NAME,
                                     PR_SET_PDEATHSIG,
                                     PR_GET_PDEATHSIG,
                                     PR_SET_CHILD_SUBREAPER,
                                     PR_GET_CHILD_SUBREAPER,
                                     PR_SET_NO_NEW_PRIVS,
                                     PR_GET_NO_NEW_PRIVS,
                                     PR_GET_DUMPABLE,
                                     PR_CAPBSET_READ,
                                     PR_GET_SECCOMP,
                                     PR_GET_SECUREBITS,
                                     PR_GET_KEEPCAPS,
                                     PR_GET_TIMERSLACK,
                                     PR_GET_THP_DISABLE};

        for (size_t i = 0; r == 0 && i < sizeof(prctls) / sizeof(prctls[0]); i++)
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]));

        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "build the seccomp policy");
        mfd = memfd_create("lg-seccomp", MFD_CLOEXEC);
        if (mfd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "memfd_create");
        r = seccomp_export_bpf(ctx, mfd);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "export the seccomp policy");
        if (fstat(mfd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
            st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return err_set(err, LG_EK_INTERNAL, EINVAL, "seccomp policy of %lld bytes",
                               (long long)st.st_size);
        prog->filter = malloc((size_t)st.st_size);
        if (prog->filter == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "seccomp policy");
        if (pread(mfd, prog->filter, (size_t)st.st_size, 0) != st.st_size) {
                free(prog->filter);
                prog->filter = NULL;
                return err_set(err, LG_EK_INTERNAL, errno ? errno : EIO, "read the seccomp policy");
        }
        prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
        return 0;
}
