/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/agent_conn.h"
#include "common/fdio.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int agent_conn_init(struct agent_conn *c, int fd)
{
        int r;

        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->out.limit = AGENT_CONN_OUT_LIMIT;
        c->next_id = 1;
        r = proto_rx_init(&c->rx);
        if (r < 0)
                return r;
        return fd_set_nonblock(fd, 1);
}

void agent_conn_free(struct agent_conn *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        proto_rx_free(&c->rx);
        buf_free(&c->out);
}

uint32_t agent_conn_new_id(struct agent_conn *c)
{
        uint32_t id = c->next_id++;

        if (c->next_id == 0)
                c->next_id = 1;
        return id;
}

short agent_conn_events(const struct agent_conn *c)
{
        return (short)(POLLIN | (buf_size(&c->out) > 0 ? POLLOUT : 0));
}

int agent_conn_flush(struct agent_conn *c)
{
        while (buf_size(&c->out) > 0) {
                /* MSG_NOSIGNAL: a dead guest must be an error, not a SIGPIPE. */
                ssize_t w = send(c->fd, buf_head(&c->out), buf_size(&c->out), MSG_NOSIGNAL);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                buf_consume(&c->out, (size_t)w);
        }
        return 0;
}

int agent_conn_fill(struct agent_conn *c)
{
        uint8_t tmp[64 << 10];

        for (;;) {
                /* Never more than reassembly accepts: a near-complete 1 MiB frame leaves less. */
                size_t room = proto_rx_room(&c->rx);
                ssize_t r;

                if (room == 0)
                        return 0;
                r = read(c->fd, tmp, room < sizeof(tmp) ? room : sizeof(tmp));

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                if (r == 0) {
                        c->eof = 1;
                        return -ECONNRESET;
                }
                int f = proto_rx_feed(&c->rx, tmp, (size_t)r);
                if (f < 0)
                        return f;
                /* Leave the rest in the socket until the caller drained frames. */
                return 0;
        }
}

int agent_conn_next(struct agent_conn *c, struct proto_hdr *h, const uint8_t **payload)
{
        return proto_rx_next(&c->rx, h, payload);
}
