/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EXEC: spawning commands and shepherding them to their EXIT frame.
 *
 * Each command runs in its own session (so its pid is also its process
 * group id, and a timeout or SIGNAL reaches its whole tree) with stdin,
 * stdout and stderr on pipes the agent polls. The child's exec failure
 * travels back over a close-on-exec pipe, so a missing binary is a clean
 * ERROR{ENOENT} instead of an exit status of 127 the host must guess about.
 */
#include "agent/agent.h"
#include "agent/spawn.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/monotime.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FINAL_DRAIN_MAX (1u << 20) /* per pipe, when an escaped grandchild holds it open */

struct exec_job {
        uint32_t id;
        pid_t pid;     /* also its session and process group id */
        int in_fd;     /* our end of its stdin; -1 when closed or never there */
        int out_fd[2]; /* our ends of stdout and stderr; -1 at EOF */
        struct buf in; /* stdin bytes not yet written */
        int in_eof;    /* close stdin once `in` is empty */
        int exited;
        int status; /* wait status, valid when exited */
        int timed_out;
        uint64_t deadline_ms;       /* timeout, 0 = none */
        uint64_t drain_deadline_ms; /* when exited: stop waiting for pipe EOF */
};

static struct exec_job **find_slot(struct agent *a, uint32_t id)
{
        for (size_t i = 0; i < AGENT_MAX_EXECS; i++) {
                if (a->execs[i] != NULL && a->execs[i]->id == id)
                        return &a->execs[i];
        }
        return NULL;
}

int exec_id_busy(const struct agent *a, uint32_t id)
{
        return find_slot((struct agent *)a, id) != NULL;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static void close_stdin(struct agent *a, struct exec_job *j)
{
        close_fd(&j->in_fd);
        a->stdin_pending -= buf_size(&j->in);
        buf_free(&j->in);
}

static void job_free(struct agent *a, struct exec_job **slot)
{
        struct exec_job *j = *slot;

        close_stdin(a, j);
        close_fd(&j->out_fd[0]);
        close_fd(&j->out_fd[1]);
        free(j);
        *slot = NULL;
}

void exec_start(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_exec x;
        struct spawn_result sr;
        struct exec_job *j, **slot = NULL;
        int r;

        for (size_t i = 0; i < AGENT_MAX_EXECS && slot == NULL; i++) {
                if (a->execs[i] == NULL)
                        slot = &a->execs[i];
        }
        if (slot == NULL) {
                agent_error(a, id, EAGAIN, "too many processes (limit %d)", AGENT_MAX_EXECS);
                return;
        }
        r = proto_decode_exec(p, n, &x);
        if (r < 0) {
                agent_error(a, id, -r, "malformed EXEC: %s", strerror(-r));
                return;
        }
        r = spawn_exec(&x, &sr);
        if (r < 0) {
                agent_error(a, id, -r, "%s", sr.message);
                proto_exec_free(&x);
                return;
        }
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
                /* Cannot track it: do not leave it running unseen. */
                kill(-sr.pid, SIGKILL);
                close_fd(&sr.in_fd);
                close_fd(&sr.out_fd[0]);
                close_fd(&sr.out_fd[1]);
                agent_error(a, id, ENOMEM, "exec %s: out of memory", x.argv[0]);
                proto_exec_free(&x);
                return;
        }
        j->id = id;
        j->pid = sr.pid;
        j->in_fd = sr.in_fd;
        j->out_fd[0] = sr.out_fd[0];
        j->out_fd[1] = sr.out_fd[1];
        if (x.timeout_ms > 0)
                j->deadline_ms =
                    mono_ms() + (x.timeout_ms > UINT32_MAX ? UINT32_MAX : x.timeout_ms);
        *slot = j;
        log_debug("request %u: started %s as pid %d", id, x.argv[0], (int)sr.pid);
        proto_exec_free(&x);
        agent_check(proto_encode_u64_msg(&a->ch.out, PROTO_STARTED, id, PT_PID, (uint64_t)j->pid),
                    "STARTED");
}

void exec_stdin(struct agent *a, uint32_t id, uint8_t flags, const uint8_t *p, size_t n)
{
        struct exec_job **slot = find_slot(a, id), *j;
        const uint8_t *data;
        unsigned stream;
        size_t len;
        int r;

        r = proto_decode_data(p, n, &stream, &data, &len);
        if (r < 0) {
                /* STDIN has no reply of its own; an ERROR for its id would end the EXEC. */
                agent_error(a, 0, -r, "malformed STDIN for request %u", id);
                return;
        }
        if (slot == NULL)
                return; /* already finished or never existed: not an error (races with EXIT) */
        j = *slot;
        if (j->in_fd < 0 || j->in_eof)
                return;
        r = buf_append(&j->in, data, len);
        if (r < 0) {
                log_warn("request %u: stdin dropped: %s", id, strerror(-r));
                close_stdin(a, j);
                return;
        }
        a->stdin_pending += len;
        if (flags & PROTO_F_EOF) {
                j->in_eof = 1;
                if (buf_size(&j->in) == 0)
                        close_stdin(a, j);
        }
}

int exec_signal(struct agent *a, uint32_t id, int signo)
{
        struct exec_job **slot = find_slot(a, id);

        if (slot == NULL)
                return 0;
        if (!(*slot)->exited && kill(-(*slot)->pid, signo) < 0)
                log_debug("request %u: kill: %s", id, strerror(errno));
        return 1;
}

void exec_reap(struct agent *a)
{
        for (;;) {
                siginfo_t si;
                struct exec_job *j = NULL;
                int status;

                /*
                 * Look before reaping: while the leader is a zombie its pid
                 * (= its process group id) cannot be reused, so the group kill
                 * below cannot hit a stranger.
                 */
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                        return;
                for (size_t i = 0; i < AGENT_MAX_EXECS && j == NULL; i++) {
                        if (a->execs[i] != NULL && !a->execs[i]->exited &&
                            a->execs[i]->pid == si.si_pid)
                                j = a->execs[i];
                }
                if (j != NULL)
                        kill(-j->pid, SIGKILL); /* leftovers of its tree would hold the pipes */
                while (waitpid(si.si_pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (j == NULL)
                        continue; /* a reparented grandchild (we are init or a subreaper) */
                j->exited = 1;
                j->status = status;
                j->drain_deadline_ms = mono_ms() + AGENT_DRAIN_MS;
                close_stdin(a, j);
        }
}

/* Move one chunk from a child's pipe into a DATA frame. */
static void pump_pipe(struct agent *a, struct exec_job *j, int which)
{
        uint8_t tmp[PROTO_MAX_CHUNK];
        ssize_t n;

        do {
                n = read(j->out_fd[which], tmp, sizeof(tmp));
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return;
        if (n <= 0) {
                close_fd(&j->out_fd[which]);
                return;
        }
        agent_check(proto_encode_data(&a->ch.out, j->id, (unsigned)which + 1, tmp, (size_t)n),
                    "DATA");
}

static void on_output(struct agent *a, void *obj, int which, short revents)
{
        struct exec_job *j = obj;

        (void)revents;
        if (j->out_fd[which] >= 0 && !chan_out_full(&a->ch))
                pump_pipe(a, j, which);
}

static void on_stdin(struct agent *a, void *obj, int which, short revents)
{
        struct exec_job *j = obj;
        ssize_t w;

        (void)which;
        if (j->in_fd < 0)
                return;
        if (revents & (POLLERR | POLLHUP)) {
                close_stdin(a, j); /* the child closed its stdin: drop what it will never read */
                return;
        }
        w = write(j->in_fd, buf_head(&j->in), buf_size(&j->in));
        if (w < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        close_stdin(a, j);
                return;
        }
        buf_consume(&j->in, (size_t)w);
        a->stdin_pending -= (size_t)w;
        if (buf_size(&j->in) == 0 && j->in_eof)
                close_stdin(a, j);
}

void exec_poll(struct agent *a, struct pollset *ps)
{
        int full = chan_out_full(&a->ch);

        for (size_t i = 0; i < AGENT_MAX_EXECS; i++) {
                struct exec_job *j = a->execs[i];

                if (j == NULL)
                        continue;
                for (int w = 0; w < 2; w++) {
                        if (j->out_fd[w] >= 0 && !full)
                                pollset_add(ps, j->out_fd[w], POLLIN, on_output, j, w);
                }
                if (j->in_fd >= 0 && buf_size(&j->in) > 0)
                        pollset_add(ps, j->in_fd, POLLOUT, on_stdin, j, 0);
                if (!j->exited && j->deadline_ms != 0 && !j->timed_out)
                        pollset_deadline(ps, j->deadline_ms);
                /* Under backpressure the drain waits too: the host will read eventually. */
                if (j->exited && !full && (j->out_fd[0] >= 0 || j->out_fd[1] >= 0))
                        pollset_deadline(ps, j->drain_deadline_ms);
        }
}

static void send_exit(struct agent *a, struct exec_job *j)
{
        struct proto_exit e = {0};

        if (WIFSIGNALED(j->status)) {
                e.flags = PROTO_EXIT_SIGNALED;
                e.signo = WTERMSIG(j->status);
        } else {
                e.exit_code = WEXITSTATUS(j->status);
        }
        if (j->timed_out)
                e.flags |= PROTO_EXIT_TIMEOUT;
        agent_check(proto_encode_exit(&a->ch.out, j->id, &e), "EXIT");
}

/* An escaped grandchild holds the pipes: take what is there now and stop. */
static void final_drain(struct agent *a, struct exec_job *j)
{
        for (int w = 0; w < 2; w++) {
                for (size_t got = 0; j->out_fd[w] >= 0 && got < FINAL_DRAIN_MAX;
                     got += PROTO_MAX_CHUNK)
                        pump_pipe(a, j, w);
                close_fd(&j->out_fd[w]);
        }
}

void exec_tick(struct agent *a)
{
        uint64_t now = mono_ms();

        for (size_t i = 0; i < AGENT_MAX_EXECS; i++) {
                struct exec_job *j = a->execs[i];

                if (j == NULL)
                        continue;
                if (!j->exited && j->deadline_ms != 0 && !j->timed_out && now >= j->deadline_ms) {
                        log_debug("request %u: timeout, killing group %d", j->id, (int)j->pid);
                        kill(-j->pid, SIGKILL);
                        j->timed_out = 1;
                }
                if (!j->exited)
                        continue;
                if ((j->out_fd[0] >= 0 || j->out_fd[1] >= 0) && now >= j->drain_deadline_ms &&
                    !chan_out_full(&a->ch))
                        final_drain(a, j);
                /* All output is queued before EXIT: the queue is FIFO. */
                if (j->out_fd[0] < 0 && j->out_fd[1] < 0) {
                        send_exit(a, j);
                        job_free(a, &a->execs[i]);
                }
        }
}

void exec_kill_all(struct agent *a)
{
        for (size_t i = 0; i < AGENT_MAX_EXECS; i++) {
                if (a->execs[i] != NULL && !a->execs[i]->exited)
                        kill(-a->execs[i]->pid, SIGKILL);
        }
}

void exec_drop_all(struct agent *a)
{
        exec_kill_all(a);
        for (size_t i = 0; i < AGENT_MAX_EXECS; i++) {
                if (a->execs[i] != NULL)
                        job_free(a, &a->execs[i]);
        }
}
