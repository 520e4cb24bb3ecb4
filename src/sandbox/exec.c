/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/exec.h"
#include "sandbox/agent_conn.h"
#include "sandbox/sandbox.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/monotime.h"
#include "proto/proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The agent enforces the timeout; the host waits this much longer before giving up on it. */
#define EXEC_HOST_GRACE_MS 10000
/* Stop reading our stdin while this much is queued for the guest (backpressure). */
#define EXEC_STDIN_HIGH (1u << 20)

struct exec_state {
        struct agent_conn *c;
        const struct sandbox_exec_io *io;
        struct sandbox_exec_result *res;
        uint32_t id;
        int stdin_open; /* io->in_fd still being forwarded */
        int out_broken; /* our stdout reader went away: discard further output */
        int err_broken;
        int done;
};

static int exec_lost(struct lg_err **err, const char *what, int errnum)
{
        return err_set(err, LG_EK_LOST, errnum, "%s", what);
}

static void exec_output(struct exec_state *s, unsigned stream, const uint8_t *p, size_t n)
{
        int fd = stream == 2 ? s->io->err_fd : s->io->out_fd;
        int *broken = stream == 2 ? &s->err_broken : &s->out_broken;

        if (stream == 2)
                s->res->err_bytes += n;
        else
                s->res->out_bytes += n;
        /* A reader that went away (`| head`) loses the rest, as with a local pipe. */
        if (*broken || fd_write_all(fd, p, n) < 0)
                *broken = 1;
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
                exec_output(s, stream, data, n);
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
        };
        uint64_t deadline = 0;
        int r;

        memset(res, 0, sizeof(*res));
        x.flags = s.stdin_open ? PROTO_EXEC_STDIN : 0;
        s.id = agent_conn_new_id(s.c);
        r = proto_encode_exec(agent_conn_out(s.c), s.id, &x);
        if (r < 0)
                return err_set(err, LG_EK_USAGE, -r, "command too large for the sandbox protocol");
        if (req->timeout_ms > 0)
                deadline = mono_ms() + req->timeout_ms + EXEC_HOST_GRACE_MS;

        while (!s.done) {
                struct proto_hdr h;
                const uint8_t *payload;

                r = agent_conn_flush(s.c);
                if (r < 0)
                        return exec_lost(err, "write to the guest agent", -r);

                struct pollfd p[4] = {
                    {.fd = s.c->fd, .events = agent_conn_events(s.c)},
                    {.fd = vmm_pidfd, .events = POLLIN},
                    {.fd = io->intr_fd, .events = POLLIN},
                    {.fd = s.stdin_open && buf_size(agent_conn_out(s.c)) < EXEC_STDIN_HIGH
                               ? io->in_fd
                               : -1,
                     .events = POLLIN},
                };
                int timeout = deadline ? mono_left_ms(deadline) : -1;

                if (deadline && timeout == 0)
                        return err_set(err, LG_EK_TIMEOUT, 0,
                                       "the guest did not end the command %llu ms after its "
                                       "timeout",
                                       (unsigned long long)EXEC_HOST_GRACE_MS);
                r = poll(p, 4, timeout);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(err, LG_EK_INTERNAL, errno, "poll");
                }
                if (p[2].revents & POLLIN)
                        return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted");
                if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = exec_forward_stdin(&s);
                        if (r < 0)
                                return err_set(err, LG_EK_INTERNAL, -r, "forward stdin");
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = agent_conn_fill(s.c);
                        if (r < 0 && r != -ECONNRESET)
                                return exec_lost(err, "read from the guest agent", -r);
                }
                while (!s.done && (r = agent_conn_next(s.c, &h, &payload)) != 0) {
                        if (r == -EMSGSIZE)
                                return exec_lost(err, "oversized frame from the guest agent",
                                                 EMSGSIZE);
                        if (r < 0)
                                return exec_lost(err, "corrupt stream from the guest agent", -r);
                        r = exec_frame(&s, &h, payload, err);
                        if (r < 0)
                                return r;
                }
                if (s.done)
                        break;
                if (s.c->eof)
                        return exec_lost(err, "the guest agent closed the channel", 0);
                if (p[1].revents & POLLIN)
                        return exec_lost(err, "the sandbox VM exited", 0);
        }
        return 0;
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
