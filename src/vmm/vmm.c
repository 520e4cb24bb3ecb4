/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/vmm.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"

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
        if (syscall(SYS_pidfd_send_signal, v->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                return -errno;
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

/* In the child between fork and exec: only async-signal-safe calls, no return. */
static void vmm_child(const char *const argv[], int agent_fd, int extra_fd, int log_fd,
                      pid_t parent)
{
        sigset_t none;
        int devnull;

        setpgid(0, 0); /* a terminal's ^C goes to us; we decide how the VM ends */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127); /* parent already gone: do not leave an orphan VM */
        /* Move the fds clear of 0..4 first so the dup2 calls below cannot clobber them. */
        agent_fd = fcntl(agent_fd, F_DUPFD, 10);
        if (extra_fd >= 0)
                extra_fd = fcntl(extra_fd, F_DUPFD, 10);
        log_fd = fcntl(log_fd, F_DUPFD, 10);
        devnull = open("/dev/null", O_RDONLY);
        if (agent_fd < 0 || log_fd < 0 || devnull < 0 || dup2(devnull, 0) < 0 ||
            dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 || dup2(agent_fd, 3) < 0)
                _exit(127);
        if (extra_fd >= 0 && dup2(extra_fd, 4) < 0)
                _exit(127);
        /* Nothing else of ours may leak into the VMM. */
        syscall(SYS_close_range, extra_fd >= 0 ? 5 : 4, ~0u, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        /*
         * The guest controls what reaches its console log: cap every file the
         * VMM writes. With SIGXFSZ ignored (inherited across exec) a write past
         * the cap fails with EFBIG and QEMU drops the output instead of dying.
         */
        struct rlimit fsize = {VMM_MAX_FILE_BYTES, VMM_MAX_FILE_BYTES};

        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &fsize);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
}

int vmm_spawn(struct vmm *v, const char *const argv[], int agent_fd, int extra_fd,
              const char *log_path)
{
        pid_t parent = getpid(), pid;
        int log_fd, pidfd, saved;

        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (log_fd < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                saved = errno;
                close(log_fd);
                return -saved;
        }
        if (pid == 0)
                vmm_child(argv, agent_fd, extra_fd, log_fd, parent);
        close(log_fd);
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
