/* SPDX-License-Identifier: Apache-2.0 */
#include "net/proxy.h"
#include "net/http_head.h"
#include "net/tls_sni.h"
#include "common/buf.h"
#include "common/log.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_PROXY_CHUNK (64u << 10)
#define NET_PROXY_MAX   (sizeof(((struct net_proxy *)0)->s) / sizeof(struct net_pstream *))

enum pstate {
        P_HEAD,       /* reading the request head from the guest */
        P_CONNECTING, /* non-blocking connect to the destination under way */
        P_RELAY,      /* bytes both ways */
};

struct net_pstream {
        uint32_t id;
        enum pstate state;
        char head[NET_MAX_HEAD];
        size_t have;
        struct net_req req;
        int up;           /* the destination, -1 before connect */
        struct buf to_up; /* for the destination: [rewritten head] + guest bytes */
        size_t prefix;    /* bytes at the front of to_up that are ours, not the guest's */
        uint64_t unacked; /* NET_SEND bytes the agent has not acknowledged */
        int guest_eof;    /* the guest client half-closed */
        int up_shut;      /* passed on to the destination (shutdown SHUT_WR) */
        int sni_pending;  /* CONNECT: the first client bytes are checked before relaying */
};

void net_proxy_init(struct net_proxy *p, const struct net_allowlist *al, const char *sandbox_id)
{
        memset(p, 0, sizeof(*p));
        p->al = *al;
        p->sandbox_id = sandbox_id;
}

static struct net_pstream *find(struct net_proxy *p, uint32_t id)
{
        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                if (p->s[i] != NULL && p->s[i]->id == id)
                        return p->s[i];
        }
        return NULL;
}

static void forget(struct net_proxy *p, struct net_pstream *st)
{
        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                if (p->s[i] == st)
                        p->s[i] = NULL;
        }
        if (st->up >= 0)
                close(st->up);
        buf_free(&st->to_up);
        free(st);
}

void net_proxy_free(struct net_proxy *p)
{
        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                if (p->s[i] != NULL)
                        forget(p, p->s[i]);
        }
}

static void send_chunk(struct buf *out, uint32_t id, const void *d, size_t n, int eof)
{
        if (proto_encode_chunk(out, PROTO_NET_SEND, id, d, n, eof) < 0)
                log_error("net: cannot queue %zu bytes for stream %u", n, id);
}

/* The guest consumed-by-us count: lets the agent read more of its client. */
static void ack(struct buf *out, uint32_t id, uint64_t n)
{
        if (n > 0 && proto_encode_u64_msg(out, PROTO_NET_ACK, id, PT_SIZE, n) < 0)
                log_error("net: cannot queue an ack for stream %u", id);
}

/* Answer the guest with an HTTP status, end the stream (the agent flushes, then closes). */
static void answer_and_close(struct net_proxy *p, struct net_pstream *st, struct buf *out, int code,
                             const char *reason, const char *why)
{
        char text[1024];
        int n = snprintf(text, sizeof(text),
                         "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                         "\r\nluminaguard: %s\n",
                         code, reason, why);

        send_chunk(out, st->id, text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0, 1);
        forget(p, st);
}

static void deny(struct net_proxy *p, struct net_pstream *st, struct buf *out, const char *why)
{
        p->denied++;
        log_warn("sandbox %s: egress denied: %s", p->sandbox_id, why);
        answer_and_close(p, st, out, 403, "Forbidden", why);
}

/* Loopback, private, link-local, CGNAT, unspecified, multicast: not the internet. */
static int internal_address(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET) {
                uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);

                return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
                       (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 || (a >> 16) == 0xa9fe ||
                       (a >> 22) == (100u << 2 | 1) || (a >> 28) == 0xe || a == 0xffffffffu;
        }
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        struct sockaddr_in v4 = {.sin_family = AF_INET};

                        memcpy(&v4.sin_addr, a6->s6_addr + 12, 4);
                        return internal_address((const struct sockaddr *)&v4);
                }
                return IN6_IS_ADDR_LOOPBACK(a6) || IN6_IS_ADDR_UNSPECIFIED(a6) ||
                       IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_MULTICAST(a6) ||
                       (a6->s6_addr[0] & 0xfe) == 0xfc; /* unique local fc00::/7 */
        }
        return 1;
}

/* An address given literally ("10.0.0.1", "[::1]"): the allow-list named it on purpose. */
static int literal(const char *host)
{
        struct in_addr a;

        return host[0] == '[' || inet_pton(AF_INET, host, &a) == 1;
}

/*
 * Resolve and start a non-blocking connect. A name is resolved here, in the
 * exec loop (a slow resolver delays the command's output by as much; the
 * proxy has nothing else to do meanwhile). 0, or -errno with why filled.
 */
static int start_connect(struct net_pstream *st, char *why, size_t whysz)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV},
                        *res = NULL, *ai;
        char host[NET_MAX_HOST + 3], port[8];
        const char *h = st->req.host;
        int r, internal = 0, lit = literal(h);

        if (h[0] == '[') { /* getaddrinfo wants the address without brackets */
                snprintf(host, sizeof(host), "%.*s", (int)strlen(h) - 2, h + 1);
                h = host;
        }
        snprintf(port, sizeof(port), "%u", st->req.port);
        r = getaddrinfo(h, port, &hints, &res);
        if (r != 0) {
                snprintf(why, whysz, "cannot resolve %s: %s", st->req.host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (ai = res; ai != NULL; ai = ai->ai_next) {
                if (!lit && internal_address(ai->ai_addr)) {
                        internal = 1;
                        continue; /* a name must not lead back to the host or the LAN */
                }
                st->up = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (st->up < 0)
                        continue;
                if (connect(st->up, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
                        break;
                close(st->up);
                st->up = -1;
        }
        freeaddrinfo(res);
        if (st->up >= 0)
                return 0;
        if (internal)
                snprintf(why, whysz, "%s resolves to a loopback, private or link-local address",
                         st->req.host);
        else
                snprintf(why, whysz, "cannot connect to %s:%u", st->req.host, st->req.port);
        return internal ? -EACCES : -ECONNREFUSED;
}

/* The head is complete: decide. */
static void decide(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        char why[NET_MAX_HOST + 128];
        int r = net_http_parse(st->head, st->have, &st->req);

        if (r == -EAGAIN)
                return;
        if (r < 0) {
                p->denied++;
                log_warn("sandbox %s: egress denied: a request the proxy cannot read (%s)",
                         p->sandbox_id, r == -EMSGSIZE ? "head too large" : "malformed");
                answer_and_close(p, st, out, 400, "Bad Request",
                                 "only CONNECT host:port and absolute http:// requests, "
                                 "naming one plain destination, go through this proxy");
                return;
        }
        if (!net_allowed(&p->al, st->req.host, st->req.port)) {
                snprintf(why, sizeof(why), "%s:%u is not in the allow-list", st->req.host,
                         st->req.port);
                deny(p, st, out, why);
                return;
        }
        r = start_connect(st, why, sizeof(why));
        if (r == -EACCES) {
                deny(p, st, out, why);
                return;
        }
        if (r < 0) {
                log_warn("sandbox %s: egress to %s:%u failed: %s", p->sandbox_id, st->req.host,
                         st->req.port, why);
                answer_and_close(p, st, out, 502, "Bad Gateway", why);
                return;
        }
        st->state = P_CONNECTING;
}

/* Connected: greet the guest (CONNECT) or queue the rewritten request (plain). */
static void connected(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        char rewritten[NET_MAX_HEAD + 64];
        size_t extra = st->have - st->req.head_len;
        int n;

        p->allowed++;
        log_info("sandbox %s: egress to %s:%u (%s)", p->sandbox_id, st->req.host, st->req.port,
                 st->req.kind == NET_REQ_CONNECT ? "tunnel" : "http");
        if (st->req.kind == NET_REQ_CONNECT) {
                send_chunk(out, st->id, ok, sizeof(ok) - 1, 0);
                st->unacked += sizeof(ok) - 1;
                st->sni_pending = 1;
        } else {
                n = net_http_rewrite(st->head, &st->req, rewritten, sizeof(rewritten));
                if (n < 0 || buf_append(&st->to_up, rewritten, (size_t)n) < 0) {
                        answer_and_close(p, st, out, 400, "Bad Request", "request head too large");
                        return;
                }
                st->prefix = (size_t)n;
        }
        /* The head itself is consumed; bytes after it wait in to_up like any other. */
        ack(out, st->id, st->req.head_len);
        if (extra > 0 && buf_append(&st->to_up, st->head + st->req.head_len, extra) < 0) {
                answer_and_close(p, st, out, 502, "Bad Gateway", "out of memory");
                return;
        }
        st->state = P_RELAY;
}

/*
 * CONNECT: before the first byte goes out, a TLS ClientHello's SNI must name
 * the host that was allowed (an allowed address must not carry a connection
 * for another name). Not TLS, or TLS without SNI: nothing to compare.
 */
static int sni_ok(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        char sni[NET_MAX_HOST + 3], why[2 * NET_MAX_HOST + 64];
        const uint8_t *d = buf_head(&st->to_up) + st->prefix;
        size_t n = buf_size(&st->to_up) - st->prefix;
        int r;

        if (n == 0)
                return 0; /* nothing to check yet */
        r = net_tls_sni(d, n, sni, sizeof(sni));
        if (r == -EAGAIN && !st->guest_eof && n < 16384 + 5)
                return 0; /* wait for the rest of the first record */
        st->sni_pending = 0;
        if (r == 0 && strcmp(sni, st->req.host) != 0 && !literal(st->req.host)) {
                snprintf(why, sizeof(why), "TLS server name %s does not match the tunnel to %s",
                         sni, st->req.host);
                deny(p, st, out, why);
                return -1;
        }
        return 1;
}

/* Guest bytes (NET_RECV) for stream st. */
static int guest_bytes(struct net_proxy *p, struct net_pstream *st, const uint8_t *d, size_t n,
                       struct buf *out)
{
        if (st->state == P_HEAD) {
                size_t take = n < sizeof(st->head) - st->have ? n : sizeof(st->head) - st->have;

                memcpy(st->head + st->have, d, take);
                st->have += take;
                if (take < n) {
                        answer_and_close(p, st, out, 400, "Bad Request", "request head too large");
                        return 0;
                }
                decide(p, st, out);
                return 0;
        }
        /* Past the head: the agent stays within its window, or it breaks the protocol. */
        if (buf_size(&st->to_up) + n > PROTO_NET_WINDOW + NET_MAX_HEAD + 64)
                return -EPROTO;
        if (buf_append(&st->to_up, d, n) < 0) {
                answer_and_close(p, st, out, 502, "Bad Gateway", "out of memory");
                return 0;
        }
        return 0;
}

int net_proxy_frame(struct net_proxy *p, const struct proto_hdr *h, const uint8_t *payload,
                    struct buf *out)
{
        struct net_pstream *st = find(p, h->id);
        const uint8_t *d;
        unsigned stream;
        size_t n, i;
        uint64_t v;

        switch (h->type) {
        case PROTO_NET_OPEN:
                if (st != NULL || h->id == 0)
                        return -EPROTO;
                for (i = 0; i < NET_PROXY_MAX && p->s[i] != NULL; i++)
                        ;
                st = i < NET_PROXY_MAX ? calloc(1, sizeof(*st)) : NULL;
                if (st == NULL) { /* more than the agent may open: refuse this one */
                        send_chunk(out, h->id, NULL, 0, 1);
                        return 0;
                }
                st->id = h->id;
                st->up = -1;
                st->to_up = (struct buf)BUF_INIT;
                p->s[i] = st;
                return 0;
        case PROTO_NET_RECV:
                if (st == NULL)
                        return 0; /* we already ended it; these crossed our EOF */
                if (h->flags & PROTO_F_RST) {
                        forget(p, st);
                        return 0;
                }
                if (proto_decode_data(payload, h->len, &stream, &d, &n) < 0)
                        return -EPROTO;
                if (n > 0 && guest_bytes(p, st, d, n, out) < 0)
                        return -EPROTO;
                st = find(p, h->id); /* it may have ended */
                if (st != NULL && (h->flags & PROTO_F_EOF)) {
                        st->guest_eof = 1;
                        if (st->state == P_HEAD) /* the client gave up before asking */
                                forget(p, st), send_chunk(out, h->id, NULL, 0, 1);
                }
                return 0;
        case PROTO_NET_RECV_ACK:
                if (st == NULL)
                        return 0;
                if (proto_decode_u64_msg(payload, h->len, PT_SIZE, &v) < 0 || v > st->unacked)
                        return -EPROTO;
                st->unacked -= v;
                return 0;
        default:
                return -EPROTO;
        }
}

size_t net_proxy_poll(struct net_proxy *p, struct pollfd *fds, size_t max, int out_full)
{
        size_t n = 0;

        for (size_t i = 0; i < NET_PROXY_MAX && n < max; i++) {
                struct net_pstream *st = p->s[i];
                short ev = 0;

                if (st == NULL || st->up < 0)
                        continue;
                if (st->state == P_CONNECTING)
                        ev = POLLOUT;
                else {
                        if (buf_size(&st->to_up) > 0 && !st->sni_pending)
                                ev |= POLLOUT;
                        if (!out_full && st->unacked < PROTO_NET_WINDOW)
                                ev |= POLLIN;
                }
                fds[n++] = (struct pollfd){.fd = st->up, .events = ev};
        }
        return n;
}

/* Write what the destination takes; acknowledge the guest's share of it. */
static void flush_up(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        ssize_t w = write(st->up, buf_head(&st->to_up), buf_size(&st->to_up));
        size_t ours;

        if (w < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        answer_and_close(p, st, out, 502, "Bad Gateway", "the destination closed");
                return;
        }
        ours = (size_t)w < st->prefix ? (size_t)w : st->prefix;
        st->prefix -= ours;
        buf_consume(&st->to_up, (size_t)w);
        ack(out, st->id, (uint64_t)w - ours);
}

static void stream_event(struct net_proxy *p, struct net_pstream *st, short revents,
                         struct buf *out)
{
        uint8_t tmp[NET_PROXY_CHUNK];
        ssize_t r;

        if (st->state == P_CONNECTING) {
                int e = 0;
                socklen_t len = sizeof(e);

                if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
                        return;
                if (getsockopt(st->up, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e != 0) {
                        char why[NET_MAX_HOST + 64];

                        snprintf(why, sizeof(why), "cannot connect to %s:%u: %s", st->req.host,
                                 st->req.port, strerror(e ? e : errno));
                        log_warn("sandbox %s: egress failed: %s", p->sandbox_id, why);
                        answer_and_close(p, st, out, 502, "Bad Gateway", why);
                        return;
                }
                connected(p, st, out);
                return;
        }
        if (st->sni_pending && sni_ok(p, st, out) < 0)
                return; /* denied and gone */
        if ((revents & POLLOUT) && buf_size(&st->to_up) > 0 && !st->sni_pending)
                flush_up(p, st, out);
        if (find(p, st->id) != st)
                return;
        if (st->guest_eof && !st->up_shut && buf_size(&st->to_up) == 0) {
                shutdown(st->up, SHUT_WR); /* pass the client's half-close on */
                st->up_shut = 1;
        }
        if (revents & (POLLIN | POLLHUP | POLLERR)) {
                size_t want = PROTO_NET_WINDOW - st->unacked;

                r = read(st->up, tmp, want < sizeof(tmp) ? want : sizeof(tmp));
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (r <= 0) { /* the destination is done: so is the stream */
                        send_chunk(out, st->id, NULL, 0, 1);
                        forget(p, st);
                        return;
                }
                send_chunk(out, st->id, tmp, (size_t)r, 0);
                st->unacked += (uint64_t)r;
        }
}

void net_proxy_events(struct net_proxy *p, const struct pollfd *fds, size_t n, struct buf *out)
{
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < NET_PROXY_MAX; k++) {
                        struct net_pstream *st = p->s[k];

                        if (st != NULL && st->up == fds[i].fd) {
                                /* Data that arrived meanwhile may need the SNI check too. */
                                if (fds[i].revents != 0 ||
                                    (st->sni_pending && st->state == P_RELAY))
                                        stream_event(p, st, fds[i].revents, out);
                                break;
                        }
                }
        }
}
