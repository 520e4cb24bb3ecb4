/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/exec.h"
#include "sandbox/agent_conn.h"
#include "sandbox/sandbox.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/monotime.h"
#include "net/proxy.h"
#include "proto/proto.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The agent enforces the timeout; the host waits this much longer before giving up on it. */
#define EXEC_HOST_GRACE_MS 10000
/* Stop reading our stdin while this much is queued for the guest (backpressure). */
#define EXEC_STDIN_HIGH (1u << 20)
/*
 * Output waiting for our stdout/stderr. Past this the guest channel is not
 * read, so a slow reader slows the command down (through the agent's own
 * backpressure) instead of growing our memory.
 */
#define EXEC_OUT_HIGH (4u << 20)
/*
 * At most this much per write after POLLOUT: a blocking pipe write of more
 * than PIPE_BUF may block until the reader drains it, and a blocked write
 * would stall timeouts and Ctrl-C. We never change the user's descriptors'
 * O_NONBLOCK flag: the open file description is shared with other processes.
 */
#define EXEC_WRITE_CHUNK 4096u
/* The egress proxy reads its destinations only while less than this waits for the guest. */
#define EXEC_NET_OUT_HIGH (1u << 20)
/*
 * And the guest is not read while more than this waits for it: a guest that
 * does not read its channel cannot make the proxy queue answers without end.
 */
#define EXEC_CHAN_OUT_HIGH (4u << 20)

struct exec_out {
        int fd;
        struct buf q; /* received from the guest, not yet written */
        int broken;   /* the reader went away: discard from now on */
};

struct exec_state {
        struct agent_conn *c;
        const struct sandbox_exec_io *io;
        struct sandbox_exec_result *res;
        uint32_t id;
        int stdin_open;         /* io->in_fd still being forwarded */
        struct exec_out out[2]; /* [0] stdout, [1] stderr */
        int merged; /* stdout and stderr are one terminal or pipe: one queue keeps their order */
        int sigpipe_sent;
        int done;
        uint32_t net_id; /* the NET_ENABLE request, 0 when the sandbox has no egress */
};

/* Same terminal, pipe or socket behind both descriptors (e.g. an interactive shell, 2>&1)? */
static int same_stream(int a, int b)
{
        struct stat sa, sb;

        if (a == b)
                return 1;
        if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0 || S_ISREG(sa.st_mode))
                return 0;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && sa.st_rdev == sb.st_rdev;
}

static int exec_lost(struct lg_err **err, const char *what, int errnum)
{
        return err_set(err, LG_EK_LOST, errnum, "%s", what);
}

static int exec_output(struct exec_state *s, unsigned stream, const uint8_t *p, size_t n)
{
        struct exec_out *o = &s->out[stream == 2 && !s->merged];

        if (stream == 2)
                s->res->err_bytes += n;
        else
                s->res->out_bytes += n;
        uint64_t total = stream == 2 ? s->res->err_bytes : s->res->out_bytes;

        if (s->io->out_limit && total > s->io->out_limit && !s->res->out_limited) {
                /* Not one byte past the limit reaches the descriptor, and the command stops. */
                size_t room = (size_t)(s->io->out_limit - (total - n));

                s->res->out_limited = stream;
                if (!o->broken && buf_append(&o->q, p, room) < 0)
                        return -ENOMEM;
                o->broken = 1;
                return proto_encode_u64_msg(agent_conn_out(s->c), PROTO_SIGNAL, s->id, PT_SIGNO,
                                            SIGKILL);
        }
        if (s->res->out_limited)
                return 0; /* the command is being killed: the rest is dropped */
        if (o->broken)
                return 0;
        return buf_append(&o->q, p, n);
}

static size_t exec_queued(const struct exec_state *s)
{
        return buf_size(&s->out[0].q) + buf_size(&s->out[1].q);
}

/*
 * Write some queued output. EAGAIN (a non-blocking descriptor) keeps it
 * queued; EPIPE means the reader is gone (`| head`): like a local pipe, the
 * command gets SIGPIPE, and what it writes from now on is dropped.
 */
static int exec_flush_out(struct exec_state *s, struct exec_out *o)
{
        size_t n = buf_size(&o->q) < EXEC_WRITE_CHUNK ? buf_size(&o->q) : EXEC_WRITE_CHUNK;
        ssize_t w = write(o->fd, buf_head(&o->q), n);

        if (w >= 0) {
                buf_consume(&o->q, (size_t)w);
                return 0;
        }
        if (errno == EINTR || errno == EAGAIN)
                return 0;
        o->broken = 1;
        buf_reset(&o->q);
        if (!s->sigpipe_sent) {
                s->sigpipe_sent = 1;
                return proto_encode_u64_msg(agent_conn_out(s->c), PROTO_SIGNAL, s->id, PT_SIGNO,
                                            SIGPIPE);
        }
        return 0;
}

/* Handle one frame from the agent. 0, or an error that ends the exec. */
static int exec_frame(struct exec_state *s, const struct proto_hdr *h, const uint8_t *payload,
                      struct lg_err **err)
{
        struct proto_exit ex;
        struct proto_error pe;
        const uint8_t *data;
        unsigned stream;
        size_t n;

        /* The egress tunnel's frames belong to the proxy, whatever their id (a stream's). */
        if (h->type == PROTO_NET_OPEN || h->type == PROTO_NET_RECV ||
            h->type == PROTO_NET_RECV_ACK) {
                /*
                 * No proxy for this command, but an earlier one in this live
                 * sandbox had one: its listener and clients are still there.
                 * They get an EOF, not the sandbox a verdict of lost.
                 */
                if (s->io->net == NULL) {
                        if (h->type == PROTO_NET_OPEN ||
                            (h->type == PROTO_NET_RECV &&
                             !(h->flags & (PROTO_F_EOF | PROTO_F_RST))))
                                net_proxy_refuse(agent_conn_out(s->c), h->id);
                        return 0;
                }
                if (net_proxy_frame(s->io->net, h, payload, agent_conn_out(s->c)) < 0)
                        return exec_lost(err,
                                         "unexpected or malformed network frame from the "
                                         "guest agent",
                                         EPROTO);
                return 0;
        }
        if (s->net_id != 0 && h->id == s->net_id) {
                if (h->type == PROTO_OK)
                        return 0;
                if (h->type == PROTO_ERROR && proto_decode_error(payload, h->len, &pe) == 0)
                        return err_set(err, LG_EK_START, pe.errnum,
                                       "the sandbox could not start its egress proxy: %s",
                                       pe.message);
                return exec_lost(err, "unexpected reply to NET_ENABLE", EPROTO);
        }
        if (h->id != s->id)
                return 0; /* not ours (nothing else is in flight today) */
        switch ((enum proto_type)h->type) {
        case PROTO_STARTED:
                return 0;
        case PROTO_DATA:
                if (proto_decode_data(payload, h->len, &stream, &data, &n) < 0 ||
                    (stream != 1 && stream != 2))
                        return exec_lost(err, "malformed output frame from the guest agent",
                                         EPROTO);
                if (exec_output(s, stream, data, n) < 0)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "buffer command output");
                return 0;
        case PROTO_EXIT:
                if (proto_decode_exit(payload, h->len, &ex) < 0)
                        return exec_lost(err, "malformed EXIT frame from the guest agent", EPROTO);
                s->res->timed_out = (ex.flags & PROTO_EXIT_TIMEOUT) != 0;
                if (ex.flags & PROTO_EXIT_SIGNALED)
                        s->res->signo = ex.signo;
                else
                        s->res->exit_code = ex.exit_code;
                s->done = 1;
                return 0;
        case PROTO_ERROR:
                if (proto_decode_error(payload, h->len, &pe) < 0)
                        return exec_lost(err, "malformed ERROR frame from the guest agent", EPROTO);
                s->res->spawn_errno = pe.errnum > 0 ? pe.errnum : EIO;
                snprintf(s->res->message, sizeof(s->res->message), "%s", pe.message);
                s->done = 1;
                return 0;
        case PROTO_HELLO:
        case PROTO_EXEC:
        case PROTO_STDIN:
        case PROTO_SIGNAL:
        case PROTO_READ_FILE:
        case PROTO_WRITE_FILE:
        case PROTO_STAT:
        case PROTO_LIST:
        case PROTO_SHUTDOWN:
        case PROTO_RESEED:
        case PROTO_NET_ENABLE:
        case PROTO_NET_SEND:
        case PROTO_NET_ACK:
        case PROTO_NET_OPEN:
        case PROTO_NET_RECV:
        case PROTO_NET_RECV_ACK:
        case PROTO_READY:
        case PROTO_OK:
        case PROTO_ENTRIES:
                break;
        }
        return exec_lost(err, "unexpected frame from the guest agent", EPROTO);
}

/* Forward a chunk of our stdin; at EOF send the EOF flag and stop. */
static int exec_forward_stdin(struct exec_state *s)
{
        uint8_t tmp[PROTO_MAX_CHUNK];
        ssize_t n;

        do {
                n = read(s->io->in_fd, tmp, sizeof(tmp));
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return 0;
        if (n <= 0) {
                /* Read error or EOF: either way the command sees the end of its input. */
                s->stdin_open = 0;
                return proto_encode_stdin(agent_conn_out(s->c), s->id, NULL, 0, 1);
        }
        return proto_encode_stdin(agent_conn_out(s->c), s->id, tmp, (size_t)n, 0);
}

/* One pass of the loop: wait for something, then move data. 1 = go on, 0 = done, < 0 error. */
static int exec_step(struct exec_state *s, int vmm_pidfd, uint64_t deadline, struct lg_err **err)
{
        const struct sandbox_exec_io *io = s->io;
        struct proto_hdr h;
        const uint8_t *payload;
        int r, timeout;

        r = agent_conn_flush(s->c);
        if (r < 0)
                return exec_lost(err, "write to the guest agent", -r);
        struct pollfd p[6 + PROTO_NET_MAX_STREAMS] = {
            /* The guest is not read while our own readers lag behind (backpressure). */
            {.fd = s->c->fd,
             .events = (short)(agent_conn_events(s->c) &
                               (exec_queued(s) < EXEC_OUT_HIGH &&
                                        buf_size(agent_conn_out(s->c)) < EXEC_CHAN_OUT_HIGH
                                    ? (POLLIN | POLLOUT)
                                    : POLLOUT))},
            {.fd = vmm_pidfd, .events = POLLIN},
            {.fd = io->intr_fd, .events = POLLIN},
            {.fd =
                 s->stdin_open && buf_size(agent_conn_out(s->c)) < EXEC_STDIN_HIGH ? io->in_fd : -1,
             .events = POLLIN},
            {.fd = buf_size(&s->out[0].q) ? s->out[0].fd : -1, .events = POLLOUT},
            {.fd = buf_size(&s->out[1].q) ? s->out[1].fd : -1, .events = POLLOUT},
        };
        size_t nnet = 0;

        /* Two streams on one descriptor (2>&1): poll it once. */
        if (p[5].fd == p[4].fd)
                p[5].fd = -1;
        if (io->net != NULL)
                nnet = net_proxy_poll(io->net, p + 6, PROTO_NET_MAX_STREAMS,
                                      buf_size(agent_conn_out(s->c)) > EXEC_NET_OUT_HIGH);
        timeout = deadline ? mono_left_ms(deadline) : -1;
        if (io->net != NULL && net_proxy_pending(io->net))
                timeout = 0; /* a destination waits for the resolver */
        r = poll(p, 6 + nnet, timeout);
        if (r < 0 && errno != EINTR)
                return err_set(err, LG_EK_INTERNAL, errno, "poll");
        if (r < 0)
                return 1;
        /* An interrupt wins over everything, including an expired deadline. */
        if (p[2].revents & POLLIN)
                return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted");
        if (deadline && mono_left_ms(deadline) == 0)
                return err_set(err, LG_EK_TIMEOUT, 0,
                               "the guest did not end the command %d ms after its timeout",
                               EXEC_HOST_GRACE_MS);
        for (int i = 0; i < 2; i++) {
                if (p[4 + i].revents & (POLLOUT | POLLERR | POLLHUP)) {
                        r = exec_flush_out(s, &s->out[i]);
                        if (r < 0)
                                return err_set(err, LG_EK_INTERNAL, -r, "signal the command");
                }
        }
        if (nnet > 0)
                net_proxy_events(io->net, p + 6, nnet, agent_conn_out(s->c));
        if (io->net != NULL)
                net_proxy_work(io->net, agent_conn_out(s->c));
        if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
                r = exec_forward_stdin(s);
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "forward stdin");
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR) && exec_queued(s) < EXEC_OUT_HIGH) {
                r = agent_conn_fill(s->c);
                if (r < 0 && r != -ECONNRESET)
                        return exec_lost(err, "read from the guest agent", -r);
        }
        while (!s->done && (r = agent_conn_next(s->c, &h, &payload)) != 0) {
                if (r == -EMSGSIZE)
                        return exec_lost(err, "oversized frame from the guest agent", EMSGSIZE);
                if (r < 0)
                        return exec_lost(err, "corrupt stream from the guest agent", -r);
                r = exec_frame(s, &h, payload, err);
                if (r < 0)
                        return r;
        }
        if (s->done)
                return 0;
        if (s->c->eof)
                return exec_lost(err, "the guest agent closed the channel", 0);
        if (p[1].revents & POLLIN)
                return exec_lost(err, "the sandbox VM exited", 0);
        return 1;
}

/* After EXIT: hand the user what is still queued (blocking is fine now; Ctrl-C still works). */
static int exec_drain(struct exec_state *s, struct lg_err **err)
{
        while (exec_queued(s) > 0) {
                struct pollfd p[3] = {
                    {.fd = s->io->intr_fd, .events = POLLIN},
                    {.fd = buf_size(&s->out[0].q) ? s->out[0].fd : -1, .events = POLLOUT},
                    {.fd = buf_size(&s->out[1].q) ? s->out[1].fd : -1, .events = POLLOUT},
                };

                if (p[2].fd == p[1].fd)
                        p[2].fd = -1;
                if (poll(p, 3, -1) < 0 && errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "poll");
                if (p[0].revents & POLLIN)
                        return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted");
                for (int i = 0; i < 2; i++) {
                        if (p[1 + i].revents & (POLLOUT | POLLERR | POLLHUP))
                                (void)exec_flush_out(s, &s->out[i]); /* the command is gone */
                }
        }
        return 0;
}

int agent_exec(struct agent_conn *c, int vmm_pidfd, const struct proto_exec *req,
               const struct sandbox_exec_io *io, struct sandbox_exec_result *res,
               struct lg_err **err)
{
        struct proto_exec x = *req;
        struct exec_state s = {
            .c = c,
            .io = io,
            .res = res,
            .stdin_open = io->in_fd >= 0,
            .out = {{.fd = io->out_fd, .q = BUF_INIT}, {.fd = io->err_fd, .q = BUF_INIT}},
        };
        uint64_t deadline = 0;
        int r;

        memset(res, 0, sizeof(*res));
        s.merged = same_stream(io->out_fd, io->err_fd);
        x.flags = s.stdin_open ? PROTO_EXEC_STDIN : 0;
        /* Egress first: the command may connect at once. */
        if (io->net != NULL) {
                s.net_id = agent_conn_new_id(s.c);
                r = proto_encode_u64_msg(agent_conn_out(s.c), PROTO_NET_ENABLE, s.net_id, PT_PORT,
                                         NET_PROXY_PORT);
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "NET_ENABLE");
        }
        s.id = agent_conn_new_id(s.c);
        r = proto_encode_exec(agent_conn_out(s.c), s.id, &x);
        if (r < 0)
                return err_set(err, LG_EK_USAGE, -r, "command too large for the sandbox protocol");
        if (req->timeout_ms > 0 &&
            (__builtin_add_overflow(req->timeout_ms, EXEC_HOST_GRACE_MS, &deadline) ||
             __builtin_add_overflow(deadline, mono_ms(), &deadline)))
                deadline = UINT64_MAX;
        while ((r = exec_step(&s, vmm_pidfd, deadline, err)) > 0)
                ;
        if (r == 0)
                r = exec_drain(&s, err);
        buf_free(&s.out[0].q);
        buf_free(&s.out[1].q);
        return r;
}

int sandbox_exec(struct sandbox *sb, const struct proto_exec *req, const struct sandbox_exec_io *io,
                 struct sandbox_exec_result *res, struct lg_err **err)
{
        struct pollfd p = {.fd = sandbox_vmm_pidfd(sb), .events = POLLIN};
        char how[96];
        int r;

        r = agent_exec(sandbox_agent(sb), sandbox_vmm_pidfd(sb), req, io, res, err);
        if (r == 0 || (*err)->kind != LG_EK_LOST)
                return r;
        /* A lost channel usually means a dying VM: give it a moment so we can say how it ended. */
        if (poll(&p, 1, 500) != 1)
                return r;
        sandbox_vmm_exit(sb, how, sizeof(how));
        if (strcmp(how, "exited with status 0") == 0)
                return err_set(err, LG_EK_LOST, 0,
                               "the guest shut down during the command (power-off, reboot or "
                               "kernel panic)");
        return err_set(err, LG_EK_LOST, 0, "the sandbox VM %s during the command", how);
}
