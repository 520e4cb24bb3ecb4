/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vmm.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/monotime.h"
#include "jail/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

int vmm_start(const struct vmm_ops *ops, const struct vmm_config *c, struct vmm **out,
              struct lg_err **err)
{
        return ops->start(c, out, err);
}

int vmm_wait(struct vmm *v, int timeout_ms)
{
        struct pollfd p = {.fd = v->pidfd, .events = POLLIN};
        int r;

        if (v->reaped)
                return 0;
        do {
                r = poll(&p, 1, timeout_ms);
        } while (r < 0 && errno == EINTR);
        if (r == 0)
                return -ETIMEDOUT;
        if (r < 0)
                return -errno;
        while (waitpid(v->pid, &v->status, 0) < 0) {
                if (errno != EINTR)
                        return -errno;
        }
        v->reaped = 1;
        close(v->pidfd);
        v->pidfd = -1;
        return 0;
}

int vmm_stop(struct vmm *v, int grace_ms)
{
        if (v->reaped)
                return 0;
        if (grace_ms > 0 && v->ops->quit(v) == 0 && vmm_wait(v, grace_ms) == 0)
                return 0;
        /* The pidfd pins the process identity: no risk of signalling a reused pid. */
        int r = vmm_pidfd_kill(v->pidfd);

        if (r < 0 && r != -ESRCH)
                return r;
        return vmm_wait(v, -1);
}

void vmm_free(struct vmm *v)
{
        if (v == NULL)
                return;
        if (!v->reaped)
                (void)vmm_stop(v, 0);
        v->ops->release(v);
}

unsigned vmm_host_tsc_khz(void)
{
        static unsigned khz;
        uint64_t t0, c0, t1, c1;

        if (khz != 0)
                return khz;
        t0 = mono_ns();
        c0 = __rdtsc();
        while ((t1 = mono_ns()) - t0 < 5000000u)
                ;
        c1 = __rdtsc();
        if (c1 <= c0 || t1 <= t0) {
                khz = 2500000;
                return khz;
        }
        /* cycles per ms, to the nearest 25 MHz (25000 kHz). */
        double k = (double)(c1 - c0) * 1e6 / (double)(t1 - t0);
        khz = (unsigned)((k + 12500) / 25000) * 25000;
        if (khz < 100000)
                khz = 2500000;
        return khz;
}

int vmm_pidfd_kill(int pidfd)
{
        return syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 ? -errno : 0;
}

void vmm_log_first_line(const char *path, char *out, size_t outsz)
{
        _cleanup_free_ char *text = NULL;

        out[0] = '\0';
        if (fs_read_file(path, 64 << 10, &text, NULL) < 0)
                return;
        snprintf(out, outsz, "%.*s", (int)strcspn(text, "\n"), text);
}

void vmm_describe_exit(const struct vmm *v, char *out, size_t outsz)
{
        if (!v->reaped)
                snprintf(out, outsz, "running");
        else if (WIFSIGNALED(v->status))
                snprintf(out, outsz, "killed by signal %d (%s)", WTERMSIG(v->status),
                         strsignal(WTERMSIG(v->status)));
        else
                snprintf(out, outsz, "exited with status %d", WEXITSTATUS(v->status));
}

/* Close every descriptor from `from` up; close_range needs Linux 5.9. */
static int close_from(int from)
{
        struct rlimit rl;

        if (syscall(SYS_close_range, from, ~0u, 0) == 0)
                return 0;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -1;
        for (rlim_t fd = (rlim_t)from; fd < rl.rlim_cur && fd < (1u << 20); fd++)
                close((int)fd);
        return 0;
}

/* What the child reports on err_fd when it fails before exec. */
struct child_failure {
        int err;  /* errno */
        int step; /* the jail step that failed, -1 outside the jail */
};

static void child_fail(int err_fd, int step)
{
        struct child_failure f = {errno, step};

        if (write(err_fd, &f, sizeof(f)) < 0)
                _exit(126);
        _exit(127);
}

/*
 * In the child between clone and exec: only async-signal-safe calls, no
 * return. A failure is reported on err_fd (close-on-exec, so a successful
 * exec reports nothing).
 */
static void vmm_child(const char *const argv[], const int *fds, size_t nfds, int log_fd, int err_fd,
                      const struct vmm_spawn_opts *o)
{
        static char path_env[] = "PATH=/usr/bin:/bin";
        static char *const clean_env[] = {path_env, NULL};
        rlim_t max_file = o->max_file_bytes ? (rlim_t)o->max_file_bytes : VMM_MAX_FILE_BYTES;
        int moved[VMM_MAX_FDS], devnull, first_free = 3 + (int)nfds;
        struct pollfd parent = {.fd = err_fd, .events = POLLOUT};
        sigset_t none;

        /*
         * A session of its own: no controlling terminal to reach (TIOCSTI),
         * and a terminal's ^C goes to us; we decide how the VM ends.
         */
        if (setsid() < 0)
                setpgid(0, 0);
        /*
         * Die with the parent. It may have died before the prctl: then the
         * read end of err_fd is closed, which poll reports as POLLERR.
         * (getppid() cannot tell: in a new pid namespace it is always 0.)
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&parent, 1, 0) < 0 ||
            (parent.revents & POLLERR))
                _exit(127);
        if (o->no_thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
                child_fail(err_fd, -1);
        /* Move every fd clear of 0..9 first so the dup2 calls below cannot clobber them. */
        for (size_t i = 0; i < nfds; i++) {
                moved[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD, 10);
                if (fds[i] >= 0 && moved[i] < 0)
                        child_fail(err_fd, -1);
        }
        log_fd = fcntl(log_fd, F_DUPFD, 10);
        err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
        devnull = open("/dev/null", O_RDONLY);
        if (log_fd < 0 || err_fd < 0 || devnull < 0 || dup2(devnull, 0) < 0 ||
            dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                child_fail(err_fd, -1);
        for (size_t i = 0; i < nfds; i++) {
                if (moved[i] >= 0 && dup2(moved[i], 3 + (int)i) < 0)
                        child_fail(err_fd, -1);
        }
        /*
         * Nothing else of ours may leak into the VMM: keep err_fd (close-on-
         * exec) at the lowest free slot above the VMM's descriptors, close
         * everything else, and the slots of absent descriptors.
         */
        {
                int keep = fcntl(err_fd, F_DUPFD_CLOEXEC, first_free);

                if (keep < 0)
                        child_fail(err_fd, -1);
                err_fd = keep;
                if (close_from(err_fd + 1) < 0)
                        child_fail(err_fd, -1);
                for (int fd = first_free; fd < err_fd; fd++)
                        close(fd);
                for (size_t i = 0; i < nfds; i++) {
                        if (fds[i] < 0)
                                close(3 + (int)i);
                }
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        /*
         * The guest controls what reaches its console log: cap every file the
         * VMM writes. With SIGXFSZ ignored (inherited across exec) a write past
         * the cap fails with EFBIG and QEMU drops the output instead of dying.
         */
        struct rlimit fsize = {max_file, max_file};

        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &fsize) < 0)
                child_fail(err_fd, -1);
        if (o->jail != NULL) {
                size_t step = 0;

                if (jail_enter(o->jail, &step) < 0)
                        child_fail(err_fd, (int)step);
                /* Changing credentials cleared the parent-death signal: set it again. */
                parent.fd = err_fd; /* moved since */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || poll(&parent, 1, 0) < 0 ||
                    (parent.revents & POLLERR))
                        _exit(127);
        }
        execve(argv[0], (char *const *)argv, clean_env);
        child_fail(err_fd, -1);
}

/* clone3's arguments, version 0 (Linux 5.3); defined here to keep <linux/sched.h> out. */
struct vmm_clone_args {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

int vmm_spawn(struct vmm *v, const char *const argv[], const int *fds, size_t nfds,
              const char *log_path, const struct vmm_spawn_opts *o)
{
        int log_fd, pidfd = -1, saved, ep[2];
        struct child_failure f = {0, -1};
        struct vmm_clone_args ca = {
            .flags = CLONE_PIDFD,
            .exit_signal = SIGCHLD,
        };
        pid_t pid;
        ssize_t n;

        if (nfds > VMM_MAX_FDS || argv[0][0] != '/')
                return -EINVAL;
        /* A jailed VMM gets namespaces of its own, and a network namespace with nothing in it. */
        if (o->jail != NULL)
                ca.flags |= CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                            CLONE_NEWNET | CLONE_NEWCGROUP;
        ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (log_fd < 0)
                return -errno;
        if (pipe2(ep, O_CLOEXEC) < 0) {
                saved = errno;
                close(log_fd);
                return -saved;
        }
        pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid < 0) {
                saved = errno;
                close(log_fd);
                close(ep[0]);
                close(ep[1]);
                snprintf(o->errbuf, o->errsz, "clone3: %s", strerror(saved));
                return -saved;
        }
        if (pid == 0) {
                close(ep[0]);
                vmm_child(argv, fds, nfds, log_fd, ep[1], o);
        }
        close(log_fd);
        close(ep[1]);
        /* EOF: the exec happened. A record: it failed, and this is why. */
        do {
                n = read(ep[0], &f, sizeof(f));
        } while (n < 0 && errno == EINTR);
        close(ep[0]);
        if (n == (ssize_t)sizeof(f)) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                close(pidfd);
                if (f.step >= 0 && o->jail != NULL) {
                        char what[PATH_MAX + 64];

                        jail_step_name(o->jail, (size_t)f.step, what, sizeof(what));
                        snprintf(o->errbuf, o->errsz, "jail: %s: %s", what, strerror(f.err));
                } else {
                        snprintf(o->errbuf, o->errsz, "exec %s: %s", argv[0], strerror(f.err));
                }
                return f.err > 0 ? -f.err : -EIO;
        }
        v->pid = pid;
        v->pidfd = pidfd;
        v->reaped = 0;
        return 0;
}
