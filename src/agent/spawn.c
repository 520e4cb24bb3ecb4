/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/proto.h"
#include "agent/agent.h"
#include "agent/spawn.h"
#include "common/cleanup.h"
#include "common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Which step failed in the child; sent back over the report pipe. */
enum spawn_stage {
        STAGE_SETUP = 1,
        STAGE_CHDIR,
        STAGE_EXEC,
};

struct child_report {
        int stage;
        int err;
};

/*
 * Pointer array of x->env plus PATH and HOME when missing (HOME: the
 * agent's own, main.c); *path gets PATH's value.
 */
static char **build_env(const struct proto_exec *x, const char **path)
{
        static char home[PATH_MAX + 8];
        char **envp = calloc(x->envc + 3, sizeof(char *));
        size_t n = 0;
        int has_home = 0;

        if (envp == NULL)
                return NULL;
        *path = NULL;
        for (size_t i = 0; i < x->envc; i++) {
                envp[n++] = x->env[i];
                if (*path == NULL && strncmp(x->env[i], "PATH=", 5) == 0)
                        *path = x->env[i] + 5;
                has_home |= strncmp(x->env[i], "HOME=", 5) == 0;
        }
        if (*path == NULL) {
                envp[n++] = (char *)"PATH=" AGENT_DEFAULT_PATH;
                *path = AGENT_DEFAULT_PATH;
        }
        if (!has_home && getenv("HOME") != NULL) {
                snprintf(home, sizeof(home), "HOME=%s", getenv("HOME"));
                envp[n++] = home;
        }
        envp[n] = NULL;
        return envp;
}

static void mark_all_cloexec(void)
{
        struct rlimit rl;

        if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
                return;
        /* Kernels before 5.11: walk the table. */
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > 65536)
                rl.rlim_cur = 65536;
        for (int fd = 3; fd < (int)rl.rlim_cur; fd++)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* In the child; only returns by exec. fds: stdin (or -1), stdout, stderr. */
static void __attribute__((noreturn))
child(const struct proto_exec *x, char **envp, const char *path, int fds[3], int report)
{
        struct child_report rep = {STAGE_SETUP, 0};
        sigset_t none;

        /* The agent blocks and ignores signals for its own loop; the command must not inherit that.
         */
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0)
                goto fail;
        if (fds[0] < 0) {
                fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fds[0] < 0) {
                        /* No /dev/null (a bare jail): an empty pipe reads the same. */
                        int p[2];

                        if (pipe2(p, O_CLOEXEC) < 0)
                                goto fail;
                        close(p[1]);
                        fds[0] = p[0];
                }
        }
        /* Lift all three above 2 first so no dup2 below clobbers a source. */
        for (int i = 0; i < 3; i++) {
                fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (fds[i] < 0)
                        goto fail;
        }
        for (int i = 0; i < 3; i++) {
                if (dup2(fds[i], i) < 0)
                        goto fail;
        }
        mark_all_cloexec();
        rep.stage = STAGE_CHDIR;
        if (chdir(x->cwd != NULL ? x->cwd : "/") < 0)
                goto fail;
        rep.stage = STAGE_EXEC;
        /* execvpe() searches the caller's PATH, not envp's: make them agree. */
        if (setenv("PATH", path, 1) < 0)
                goto fail;
        execvpe(x->argv[0], x->argv, envp);
fail:
        rep.err = errno;
        if (write(report, &rep, sizeof(rep)) < 0) {
                /* nothing left to tell anyone */
        }
        _exit(127);
}

static void fail_message(struct spawn_result *r, const struct proto_exec *x,
                         const struct child_report *rep)
{
        const char *what = rep->stage == STAGE_CHDIR ? "chdir" : "exec";
        const char *obj = rep->stage == STAGE_CHDIR ? x->cwd : x->argv[0];

        snprintf(r->message, sizeof(r->message), "%s %.400s: %s%s", what, obj ? obj : "/",
                 rep->stage == STAGE_SETUP ? "setup: " : "", strerror(rep->err));
}

int spawn_exec(const struct proto_exec *x, struct spawn_result *r)
{
        _cleanup_free_ char **envp = NULL;
        _cleanup_fd_ int in_rd = -1, in_wr = -1, out_rd = -1, out_wr = -1;
        _cleanup_fd_ int err_rd = -1, err_wr = -1, rep_rd = -1, rep_wr = -1;
        struct child_report rep;
        const char *path;
        int p[2], fds[3], status;
        ssize_t n;
        pid_t pid = 0;

        memset(r, 0, sizeof(*r));
        r->pid = -1;
        envp = build_env(x, &path);
        if (envp == NULL) {
                snprintf(r->message, sizeof(r->message), "exec %.400s: out of memory", x->argv[0]);
                return -ENOMEM;
        }
        if ((x->flags & PROTO_EXEC_STDIN) && pipe2(p, O_CLOEXEC) == 0) {
                in_rd = p[0];
                in_wr = p[1];
        } else if (x->flags & PROTO_EXEC_STDIN) {
                goto sys_fail;
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                goto sys_fail;
        out_rd = p[0];
        out_wr = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                goto sys_fail;
        err_rd = p[0];
        err_wr = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                goto sys_fail;
        rep_rd = p[0];
        rep_wr = p[1];

        pid = fork();
        if (pid < 0)
                goto sys_fail;
        if (pid == 0) {
                fds[0] = in_rd;
                fds[1] = out_wr;
                fds[2] = err_wr;
                child(x, envp, path, fds, rep_wr);
        }
        close(steal_fd(&rep_wr)); /* so the read below sees EOF at exec */
        /*
         * Blocking read: the child runs only our own setup code (a chdir at
         * worst) before exec, so this returns within microseconds.
         */
        do {
                n = read(rep_rd, &rep, sizeof(rep));
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof(rep)) {
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                fail_message(r, x, &rep);
                return rep.err > 0 ? -rep.err : -EIO;
        }
        r->pid = pid;
        fd_set_nonblock(out_rd, 1);
        fd_set_nonblock(err_rd, 1);
        if (in_wr >= 0)
                fd_set_nonblock(in_wr, 1);
        r->in_fd = steal_fd(&in_wr);
        r->out_fd[0] = steal_fd(&out_rd);
        r->out_fd[1] = steal_fd(&err_rd);
        return 0;

sys_fail:
        status = errno;
        snprintf(r->message, sizeof(r->message), "%s: %s", pid < 0 ? "fork" : "pipe",
                 strerror(status));
        return -status;
}
