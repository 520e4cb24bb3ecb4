/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stdio transport: one client, newline-delimited JSON-RPC on stdin and
 * stdout. Messages are read on this thread; replies are written whole, one
 * line each (every send happens under the connection's lock).
 */
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/jsonrpc.h"
#include "mcp/mcp.h"
#include "mcp/mcp_proto.h"
#include "mcp/mcp_transport.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct stdio_out {
        struct mcp_out out;
        int fd;
};

static void stdio_send(struct mcp_out *o, json_t *msg)
{
        struct stdio_out *so = (struct stdio_out *)o;

        if (jsonrpc_write(so->fd, msg) < 0)
                log_debug("mcp: the client's end of stdout is gone");
}

/* Read and handle what stdin has. 0 to go on, -ENODATA at its end, other < 0 on a read error. */
static int take_input(struct jsonrpc_reader *rd, struct mcp_conn *c, struct mcp_out *out)
{
        char *line;
        size_t len;
        int r, code;
        const char *why;

        while ((r = jsonrpc_reader_next(rd, &line, &len)) != 0) {
                json_t *msg;

                if (r == -E2BIG) {
                        mcp_conn_send(c, out,
                                      jsonrpc_error(NULL, JSONRPC_INVALID_REQUEST,
                                                    "message larger than 4 MiB", NULL));
                        continue;
                }
                if (r == -EMSGSIZE)
                        continue; /* the end of that message: already answered */
                if (r < 0)
                        return r;
                if (len == 0)
                        continue;
                msg = jsonrpc_parse(line, len, &code, &why);
                if (msg == NULL) {
                        mcp_conn_send(c, out, jsonrpc_error(NULL, code, why, NULL));
                        continue;
                }
                mcp_conn_handle(c, msg, out);
                json_decref(msg);
        }
        return 0;
}

int mcp_stdio_serve(struct mcp_shared *sh, int sfd, struct lg_err **err)
{
        const struct mcp_opts *o = sh->o;
        struct stdio_out so = {.out = {.send = stdio_send}, .fd = o->out_fd};
        struct jsonrpc_reader rd;
        struct mcp_conn *c;
        uint64_t last_tick = mono_ms();
        int r = 0;

        /* Responses are written whole: a non-blocking stdout would cut lines at EAGAIN. */
        (void)fd_set_nonblock(o->out_fd, 0);
        c = mcp_conn_new(sh);
        if (c == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "mcp");
        jsonrpc_reader_init(&rd, o->in_fd);
        for (;;) {
                struct pollfd p[2] = {{.fd = o->in_fd, .events = POLLIN},
                                      {.fd = sfd, .events = POLLIN}};

                r = take_input(&rd, c, &so.out);
                if (r < 0)
                        break;
                if (poll(p, 2, 250) < 0 && errno != EINTR)
                        break;
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof(si)) < 0)
                                log_debug("mcp: signalfd: %s", strerror(errno));
                        r = -EINTR; /* cancel what runs, below */
                        break;
                }
                if (p[0].revents & POLLNVAL)
                        break; /* stdin was never open */
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = jsonrpc_reader_fill(&rd);
                        if (r < 0 && r != -ENODATA)
                                break;
                }
                if (mono_ms() - last_tick >= 1000) {
                        last_tick = mono_ms();
                        mcp_conn_tick(c);
                }
        }
        /*
         * Input is over (or a signal came): running calls are answered when
         * input simply ended — `printf ... | luminaguard mcp` gets its results —
         * and cancelled on a signal, which also cuts the wait short.
         */
        for (int stop = r != -ENODATA; mcp_conn_busy(c, stop) > 0;) {
                /* A client that closed its end of stdout cannot be answered: stop too. */
                struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                                      {.fd = o->out_fd, .events = 0}};

                if (poll(p, 2, 250) <= 0)
                        continue;
                if (p[1].revents & (POLLERR | POLLHUP))
                        stop = 1;
                if (p[0].revents & POLLIN) {
                        mcp_second_signal(sfd, stop);
                        stop = 1;
                }
        }
        mcp_conn_free(c);
        jsonrpc_reader_free(&rd);
        return 0;
}
