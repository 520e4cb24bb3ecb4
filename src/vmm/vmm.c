/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vmm.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/monotime.h"

#include <errno.h>
#include <fcntl.h>
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

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
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

/*
 * In the child between fork and exec: only async-signal-safe calls, no
 * return. A failure is reported as its errno on err_fd (close-on-exec, so a
 * successful exec reports nothing).
 */
static void vmm_child(const char *const argv[], const int *fds, size_t nfds, int log_fd, int err_fd,
                      pid_t parent, const struct vmm_spawn_opts *o)
{
        rlim_t max_file = o->max_file_bytes ? (rlim_t)o->max_file_bytes : VMM_MAX_FILE_BYTES;
        int moved[VMM_MAX_FDS], devnull, e, first_free = 3 + (int)nfds;
        sigset_t none;

        setpgid(0, 0); /* a terminal's ^C goes to us; we decide how the VM ends */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127); /* parent already gone: do not leave an orphan VM */
        if (o->no_thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
                goto fail;
        /* Move every fd clear of 0..9 first so the dup2 calls below cannot clobber them. */
        for (size_t i = 0; i < nfds; i++) {
                moved[i] = fcntl(fds[i], F_DUPFD, 10);
                if (moved[i] < 0)
                        goto fail;
        }
        log_fd = fcntl(log_fd, F_DUPFD, 10);
        err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
        devnull = open("/dev/null", O_RDONLY);
        if (log_fd < 0 || err_fd < 0 || devnull < 0 || dup2(devnull, 0) < 0 ||
            dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                goto fail;
        for (size_t i = 0; i < nfds; i++) {
                if (dup2(moved[i], 3 + (int)i) < 0)
                        goto fail;
        }
        /*
         * Nothing else of ours may leak into the VMM: keep err_fd (close-on-
         * exec) at the lowest free slot above the VMM's descriptors, close
         * everything else.
         */
        {
                int keep = fcntl(err_fd, F_DUPFD_CLOEXEC, first_free);

                if (keep < 0)
                        goto fail;
                err_fd = keep;
                if (close_from(err_fd + 1) < 0)
                        goto fail;
                for (int fd = first_free; fd < err_fd; fd++)
                        close(fd);
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
                goto fail;
        execvp(argv[0], (char *const *)argv);
fail:
        e = errno;
        if (write(err_fd, &e, sizeof(e)) < 0)
                _exit(126);
        _exit(127);
}

int vmm_spawn(struct vmm *v, const char *const argv[], const int *fds, size_t nfds,
              const char *log_path, const struct vmm_spawn_opts *o)
{
        pid_t parent = getpid(), pid;
        int log_fd, pidfd, saved, ep[2], child_errno = 0;
        ssize_t n;

        if (nfds > VMM_MAX_FDS)
                return -EINVAL;
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (log_fd < 0)
                return -errno;
        if (pipe2(ep, O_CLOEXEC) < 0) {
                saved = errno;
                close(log_fd);
                return -saved;
        }
        pid = fork();
        if (pid < 0) {
                saved = errno;
                close(log_fd);
                close(ep[0]);
                close(ep[1]);
                return -saved;
        }
        if (pid == 0)
                vmm_child(argv, fds, nfds, log_fd, ep[1], parent, o);
        close(log_fd);
        close(ep[1]);
        /* EOF: the exec happened. An int: it failed, and this is why. */
        do {
                n = read(ep[0], &child_errno, sizeof(child_errno));
        } while (n < 0 && errno == EINTR);
        close(ep[0]);
        if (n == (ssize_t)sizeof(child_errno)) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return child_errno > 0 ? -child_errno : -EIO;
        }
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                saved = errno;
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -saved;
        }
        v->pid = pid;
        v->pidfd = pidfd;
        v->reaped = 0;
        return 0;
}
