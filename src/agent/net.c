/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest end of the egress tunnel (docs/protocol.md, "Network"): a
 * listener on 127.0.0.1:PORT inside the sandbox, where commands find their
 * HTTP proxy; every connection becomes a stream relayed over the channel to
 * the host, which decides where (and whether) it goes. The agent makes no
 * decision and opens no connection of its own: it has no network to open
 * one on.
 */
#include "agent/agent.h"
#include "common/fdio.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_CHUNK (64u << 10)

struct net_stream {
        uint32_t id;
        int fd;
        struct buf out;   /* NET_SEND bytes for the guest client, at most a window */
        uint64_t unacked; /* NET_RECV bytes the host has not acknowledged */
        int closing;      /* the host is done: flush out, then close */
        int rd_eof;       /* the client half-closed; the host was told */
};

static struct net_stream *find(struct agent *a, uint32_t id)
{
        for (size_t i = 0; i < PROTO_NET_MAX_STREAMS; i++) {
                if (a->net.s[i] != NULL && a->net.s[i]->id == id)
                        return a->net.s[i];
        }
        return NULL;
}

static void stream_free(struct agent *a, struct net_stream *st)
{
        for (size_t i = 0; i < PROTO_NET_MAX_STREAMS; i++) {
                if (a->net.s[i] == st)
                        a->net.s[i] = NULL;
        }
        close(st->fd);
        buf_free(&st->out);
        free(st);
}

/* The client is gone or the stream is broken: tell the host (F_RST), forget it. */
static void stream_reset(struct agent *a, struct net_stream *st)
{
        struct proto_writer w;

        proto_begin(&w, &a->ch.out, PROTO_NET_RECV, PROTO_F_RST, st->id);
        agent_check(proto_end(&w), "NET_RECV");
        stream_free(a, st);
}

void net_enable(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        uint64_t port;
        int fd, one = 1;

        if (proto_decode_u64_msg(p, n, PT_PORT, &port) < 0 || port == 0 || port > 65535) {
                agent_error(a, id, EINVAL, "NET_ENABLE needs a port");
                return;
        }
        if (a->net.lfd >= 0) { /* once per agent; a second host session reuses it */
                agent_check(proto_encode_empty(&a->ch.out, PROTO_OK, id), "OK");
                return;
        }
        sin.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 64) < 0) {
                int e = errno;

                if (fd >= 0)
                        close(fd);
                agent_error(a, id, e, "listen on 127.0.0.1:%u: %s", (unsigned)port, strerror(e));
                return;
        }
        a->net.lfd = fd;
        log_info("egress proxy listening on 127.0.0.1:%u", (unsigned)port);
        agent_check(proto_encode_empty(&a->ch.out, PROTO_OK, id), "OK");
}

/* NET_SEND: bytes for the guest client (or, with F_EOF, the host closed). */
void net_send(struct agent *a, uint32_t id, uint8_t flags, const uint8_t *p, size_t n)
{
        struct net_stream *st = find(a, id);
        const uint8_t *data;
        unsigned stream;
        size_t len;

        if (st == NULL)
                return; /* closed here meanwhile: its RECV EOF is on its way */
        if (proto_decode_data(p, n, &stream, &data, &len) < 0 ||
            buf_size(&st->out) + len > PROTO_NET_WINDOW) {
                /* A host past its window or speaking nonsense: end the stream, not the agent. */
                log_warn("net: bad NET_SEND on stream %u", id);
                stream_reset(a, st);
                return;
        }
        if (len > 0 && buf_append(&st->out, data, len) < 0) {
                stream_reset(a, st);
                return;
        }
        if (flags & PROTO_F_EOF)
                st->closing = 1;
        if (st->closing && buf_size(&st->out) == 0)
                stream_free(a, st);
}

/* NET_ACK: the host consumed n more bytes of our NET_RECV. */
void net_ack(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct net_stream *st = find(a, id);
        uint64_t v;

        if (st == NULL || proto_decode_u64_msg(p, n, PT_SIZE, &v) < 0)
                return;
        st->unacked = v > st->unacked ? 0 : st->unacked - v;
}

static void on_listen(struct agent *a, void *obj, int which, short revents)
{
        int fd;

        (void)obj;
        (void)which;
        (void)revents;
        fd = accept4(a->net.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        for (size_t i = 0; i < PROTO_NET_MAX_STREAMS; i++) {
                struct net_stream *st;

                if (a->net.s[i] != NULL)
                        continue;
                st = calloc(1, sizeof(*st));
                if (st == NULL)
                        break;
                st->fd = fd;
                st->out = (struct buf)BUF_INIT;
                /* Odd ids from us; never 0, never one still in use. */
                do {
                        a->net.next_id += 2;
                } while (a->net.next_id == 0 || find(a, a->net.next_id | 1) != NULL);
                st->id = a->net.next_id | 1;
                a->net.s[i] = st;
                agent_check(proto_encode_empty(&a->ch.out, PROTO_NET_OPEN, st->id), "NET_OPEN");
                return;
        }
        close(fd); /* too many streams: the client sees the connection close */
}

static void on_stream(struct agent *a, void *obj, int which, short revents)
{
        struct net_stream *st = obj;
        uint8_t tmp[NET_CHUNK];
        ssize_t r;

        (void)which;
        if (revents & POLLOUT) {
                r = write(st->fd, buf_head(&st->out), buf_size(&st->out));
                if (r < 0 && errno != EAGAIN && errno != EINTR) {
                        stream_reset(a, st);
                        return;
                }
                if (r > 0) {
                        buf_consume(&st->out, (size_t)r);
                        agent_check(proto_encode_u64_msg(&a->ch.out, PROTO_NET_RECV_ACK, st->id,
                                                         PT_SIZE, (uint64_t)r),
                                    "NET_RECV_ACK");
                }
                if (st->closing && buf_size(&st->out) == 0) {
                        stream_free(a, st);
                        return;
                }
        }
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
                size_t want = PROTO_NET_WINDOW - st->unacked;

                r = read(st->fd, tmp, want < sizeof(tmp) ? want : sizeof(tmp));
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (r < 0) {
                        stream_reset(a, st);
                        return;
                }
                if (r == 0) { /* half-close: the answer may still come */
                        st->rd_eof = 1;
                        agent_check(
                            proto_encode_chunk(&a->ch.out, PROTO_NET_RECV, st->id, NULL, 0, 1),
                            "NET_RECV");
                        return;
                }
                st->unacked += (uint64_t)r;
                agent_check(
                    proto_encode_chunk(&a->ch.out, PROTO_NET_RECV, st->id, tmp, (size_t)r, 0),
                    "NET_RECV");
        }
}

void net_poll(struct agent *a, struct pollset *ps)
{
        size_t open = 0;

        for (size_t i = 0; i < PROTO_NET_MAX_STREAMS; i++) {
                struct net_stream *st = a->net.s[i];
                short ev = 0;

                if (st == NULL)
                        continue;
                open++;
                if (buf_size(&st->out) > 0)
                        ev |= POLLOUT;
                /* Read the guest client only within the window and while the host keeps up. */
                if (!st->closing && !st->rd_eof && st->unacked < PROTO_NET_WINDOW &&
                    !chan_out_full(&a->ch))
                        ev |= POLLIN;
                if (ev)
                        pollset_add(ps, st->fd, ev, on_stream, st, 0);
        }
        if (a->net.lfd >= 0 && open < PROTO_NET_MAX_STREAMS && !chan_out_full(&a->ch))
                pollset_add(ps, a->net.lfd, POLLIN, on_listen, NULL, 0);
}

void net_drop_all(struct agent *a)
{
        for (size_t i = 0; i < PROTO_NET_MAX_STREAMS; i++) {
                if (a->net.s[i] != NULL)
                        stream_free(a, a->net.s[i]);
        }
}
