/* SPDX-License-Identifier: Apache-2.0 */
#include "net/proxy.h"
#include "audit/audit.h"
#include "common/err.h"
#include "net/http_head.h"
#include "net/tls_sni.h"
#include "common/buf.h"
#include "common/log.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define NET_PROXY_CHUNK (64u << 10)
#define NET_PROXY_MAX   (sizeof(((struct net_proxy *)0)->s) / sizeof(struct net_pstream *))

enum pstate {
        P_HEAD,       /* reading the request head from the guest */
        P_RESOLVE,    /* allowed; waiting for its turn at the resolver (net_proxy_work) */
        P_CONNECTING, /* non-blocking connect to the destination under way */
        P_RELAY,      /* bytes both ways */
};

struct net_pstream {
        uint32_t id;
        enum pstate state;
        char head[NET_MAX_HEAD];
        size_t have;
        struct net_req req;
        int up;              /* the destination, -1 before connect */
        struct buf to_up;    /* for the destination: [rewritten head] + guest bytes */
        size_t prefix;       /* bytes at the front of to_up that are ours, not the guest's */
        uint64_t unacked;    /* NET_SEND bytes the agent has not acknowledged */
        int guest_eof;       /* the guest client half-closed */
        int up_shut;         /* passed on to the destination (shutdown SHUT_WR) */
        int sni_pending;     /* CONNECT: the first client bytes are checked before relaying */
        long long body_left; /* PLAIN: request body bytes still to forward; more is refused */
};

void net_proxy_init(struct net_proxy *p, const struct net_allowlist *al, const char *sandbox_id)
{
        struct ifaddrs *ifs = NULL;

        memset(p, 0, sizeof(*p));
        p->al = *al;
        p->sandbox_id = sandbox_id;
        /* This host's own addresses: a name must not lead back to its services. */
        if (getifaddrs(&ifs) == 0) {
                for (struct ifaddrs *i = ifs; i != NULL && p->nown < NET_PROXY_MAX_OWN;
                     i = i->ifa_next) {
                        if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
                                                    i->ifa_addr->sa_family != AF_INET6))
                                continue;
                        memcpy(&p->own[p->nown++], i->ifa_addr,
                               i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                                 : sizeof(struct sockaddr_in6));
                }
                freeifaddrs(ifs);
        }
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
        for (size_t i = 0; i < p->nrefused; i++)
                free(p->refused[i]);
        free(p->refused);
        p->refused = NULL;
        p->nrefused = p->caprefused = 0;
}

static void send_chunk(struct buf *out, uint32_t id, const void *d, size_t n, int eof)
{
        if (proto_encode_chunk(out, PROTO_NET_SEND, id, d, n, eof) < 0)
                log_error("net: cannot queue %zu bytes for stream %u", n, id);
}

void net_proxy_end_all(struct net_proxy *p, struct buf *out)
{
        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                if (p->s[i] != NULL) {
                        send_chunk(out, p->s[i]->id, NULL, 0, 1);
                        forget(p, p->s[i]);
                }
        }
}

void net_proxy_refuse(struct buf *out, uint32_t id)
{
        send_chunk(out, id, NULL, 0, 1);
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

/* A decision in the audit log (when there is one). -1 when it could not be recorded. */
static int audit_decision(struct net_proxy *p, const char *event, json_t *f)
{
        struct lg_err *err = NULL;
        int r = 0;

        if (p->audit_home == NULL) {
                json_decref(f);
                return 0;
        }
        if (f == NULL || audit_append(p->audit_home, event, p->sandbox_id, f, 0, &err) < 0) {
                log_error("sandbox %s: %s: %s", p->sandbox_id, event,
                          err ? err->msg : "cannot build the audit record");
                err_free(&err);
                r = -1;
        }
        json_decref(f);
        return r;
}

/*
 * Denials are logged and audited, but a sandbox must not flood either: the
 * first 32, then every 1000th (with the running count).
 */
static void log_denial(struct net_proxy *p, const char *why)
{
        p->denied++;
        if (p->denied > 32 && p->denied % 1000 != 0)
                return;
        log_warn("sandbox %s: egress denied: %s%s", p->sandbox_id, why,
                 p->denied == 32 ? " (further denials: every 1000th is logged)" : "");
        audit_decision(
            p, "egress.deny",
            json_pack("{s:s,s:I}", "reason", why, "denied_so_far", (json_int_t)p->denied));
}

static void deny(struct net_proxy *p, struct net_pstream *st, struct buf *out, const char *why)
{
        log_denial(p, why);
        answer_and_close(p, st, out, 403, "Forbidden", why);
}

static int internal_v4(uint32_t a)
{
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || /* this, private, loop */
               (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||             /* 172.16/12, 192.168/16 */
               (a >> 16) == 0xa9fe ||                                   /* link-local */
               (a >> 22) == (100u << 2 | 1) ||                          /* CGNAT 100.64/10 */
               (a >> 8) == 0xc00000 ||                                  /* 192.0.0/24 */
               (a >> 17) == (0xc612u >> 1) ||                           /* 198.18/15 */
               (a >> 28) >= 0xe || /* multicast, reserved, broadcast */
               a == 0xa83f8110u;   /* 168.63.129.16, a cloud's own */
}

/* One of this host's own addresses (its services may listen on all of them). */
static int own_address(const struct net_proxy *p, const struct sockaddr *sa)
{
        for (size_t i = 0; i < p->nown; i++) {
                if (sa->sa_family == AF_INET && p->own[i].ss_family == AF_INET &&
                    ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
                        ((const struct sockaddr_in *)&p->own[i])->sin_addr.s_addr)
                        return 1;
                if (sa->sa_family == AF_INET6 && p->own[i].ss_family == AF_INET6 &&
                    memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
                           &((const struct sockaddr_in6 *)&p->own[i])->sin6_addr, 16) == 0)
                        return 1;
        }
        return 0;
}

/*
 * Not the internet: loopback, private, link-local, CGNAT, reserved,
 * multicast, this host's own addresses, and IPv6 forms that embed or lead
 * to an IPv4 address that is any of those (mapped, compatible, NAT64, 6to4).
 */
static int internal_address(const struct net_proxy *p, const struct sockaddr *sa)
{
        if (own_address(p, sa))
                return 1;
        if (sa->sa_family == AF_INET)
                return internal_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
        if (sa->sa_family == AF_INET6) {
                const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
                static const uint8_t zero[12], nat64[12] = {0, 0x64, 0xff, 0x9b};
                uint32_t v4;

                /* ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), 64:ff9b::a.b.c.d (NAT64) */
                if (memcmp(b, zero, 10) == 0 &&
                    ((b[10] == 0 && b[11] == 0) || (b[10] == 0xff && b[11] == 0xff))) {
                        memcpy(&v4, b + 12, 4);
                        return internal_v4(ntohl(v4));
                }
                if (memcmp(b, nat64, 12) == 0 || (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff &&
                                                  b[3] == 0x9b && b[4] == 0 && b[5] == 1))
                        return 1; /* NAT64, including the local-use 64:ff9b:1::/48: refused whole */
                if (b[0] == 0x20 && b[1] == 0x02) { /* 6to4: 2002:a.b.c.d::/48 */
                        memcpy(&v4, b + 2, 4);
                        return internal_v4(ntohl(v4));
                }
                return b[0] == 0xff ||                            /* multicast */
                       (b[0] & 0xfe) == 0xfc ||                   /* unique local fc00::/7 */
                       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* link-local fe80::/10 */
                       (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0);   /* site-local fec0::/10 */
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
 * Resolve and start a non-blocking connect. 0, or -errno with why filled
 * (-EACCES: the name resolves only to internal addresses).
 */
static int start_connect(struct net_proxy *p, struct net_pstream *st, char *why, size_t whysz)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV},
                        *res = NULL, *ai;
        char host[NET_MAX_HOST + 4], port[8];
        const char *h = st->req.host;
        int r, internal = 0, lit = literal(h);

        if (h[0] == '[') /* getaddrinfo wants the address without brackets */
                snprintf(host, sizeof(host), "%.*s", (int)strlen(h) - 2, h + 1);
        else
                snprintf(host, sizeof(host), "%s", h);
        if (lit)
                hints.ai_flags |= AI_NUMERICHOST;
        /*
         * The name as given, never with the resolver's search domains
         * appended: "x.example.com" must not become "x.example.com.corp".
         * (A trailing dot would do the same but miss /etc/hosts.)
         */
        if (!(_res.options & RES_INIT))
                res_init();
        _res.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
        snprintf(port, sizeof(port), "%u", st->req.port);
        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0) {
                snprintf(why, whysz, "cannot resolve %s: %s", st->req.host, gai_strerror(r));
                return -EHOSTUNREACH;
        }
        for (ai = res; ai != NULL; ai = ai->ai_next) {
                if (!lit && internal_address(p, ai->ai_addr)) {
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
                snprintf(why, whysz,
                         "%s resolves to a loopback, private, link-local or this host's address",
                         st->req.host);
        else
                snprintf(why, whysz, "cannot connect to %s:%u", st->req.host, st->req.port);
        return internal ? -EACCES : -ECONNREFUSED;
}

static int host_refused(const struct net_proxy *p, const char *host)
{
        for (size_t i = 0; i < p->nrefused; i++)
                if (strcasecmp(p->refused[i], host) == 0)
                        return 1;
        return 0;
}

/* Remember a refused host; when the memory is full (or out of it), ask nothing more. */
static void remember_refusal(struct net_proxy *p, const char *host)
{
        char *copy;

        if (p->nrefused == p->caprefused) {
                size_t cap = p->caprefused ? 2 * p->caprefused : 16;
                char **r =
                    cap <= NET_PROXY_MAX_REFUSED ? reallocarray(p->refused, cap, sizeof(*r)) : NULL;

                if (r == NULL) {
                        p->stop_asking = 1;
                        return;
                }
                p->refused = r;
                p->caprefused = cap;
        }
        copy = strdup(host);
        if (copy == NULL) {
                p->stop_asking = 1;
                return;
        }
        p->refused[p->nrefused++] = copy;
}

static void stop_asking(struct net_proxy *p, const char *why)
{
        if (p->stop_asking)
                return;
        p->stop_asking = 1;
        log_warn("sandbox %s: egress: %s; every other destination outside the allow-list is "
                 "denied without asking for the rest of this run",
                 p->sandbox_id, why);
}

/*
 * Outside the allow-list: ask, once per host, while somebody can be asked
 * and has not had enough. 1 when allowed — then it is a rule of this run's
 * allow-list.
 */
static int ask_human(struct net_proxy *p, struct net_pstream *st)
{
        struct net_rule *rule;
        char why[64];

        if (p->ask == NULL || p->stop_asking || host_refused(p, st->req.host))
                return 0;
        if (p->al.n >= NET_MAX_RULES)
                return 0; /* nowhere to keep a yes: no */
        switch (p->ask(p->ask_ctx, st->req.host, st->req.port, st->req.kind == NET_REQ_CONNECT)) {
        case NET_ASK_ALLOWED:
                break;
        case NET_ASK_DENIED:
                remember_refusal(p, st->req.host);
                if (++p->nos >= NET_PROXY_MAX_NOS) {
                        snprintf(why, sizeof(why), "%u destinations were denied", p->nos);
                        stop_asking(p, why);
                }
                return 0;
        case NET_ASK_REFUSED:
                remember_refusal(p, st->req.host);
                return 0;
        case NET_ASK_STOP:
        default:
                remember_refusal(p, st->req.host);
                stop_asking(p, "a question was not answered (timeout, cancel or no approver)");
                return 0;
        }
        rule = &p->al.rules[p->al.n++];
        memset(rule, 0, sizeof(*rule));
        snprintf(rule->host, sizeof(rule->host), "%.*s", NET_MAX_HOST, st->req.host);
        rule->port = st->req.port;
        return 1;
}

/* The head is complete: decide. Allowed streams wait for the resolver (net_proxy_work). */
static void decide(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        char why[NET_MAX_HOST + 128];
        int r = net_http_parse(st->head, st->have, &st->req);

        if (r == -EAGAIN)
                return;
        if (r < 0) {
                log_denial(p, r == -EMSGSIZE ? "a request head over 16 KiB"
                                             : "a request the proxy cannot read unambiguously");
                answer_and_close(p, st, out, 400, "Bad Request",
                                 "only CONNECT host:port and absolute http:// requests (one "
                                 "destination; a body only with Content-Length) go through this "
                                 "proxy");
                return;
        }
        if (!net_allowed(&p->al, st->req.host, st->req.port) && !ask_human(p, st)) {
                snprintf(why, sizeof(why), "%s:%u is not in the allow-list", st->req.host,
                         st->req.port);
                deny(p, st, out, why);
                return;
        }
        st->body_left = st->req.content_length > 0 ? st->req.content_length : 0;
        st->state = P_RESOLVE;
}

int net_proxy_pending(const struct net_proxy *p)
{
        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                if (p->s[i] != NULL && p->s[i]->state == P_RESOLVE)
                        return 1;
        }
        return 0;
}

void net_proxy_work(struct net_proxy *p, struct buf *out)
{
        char why[2 * NET_MAX_HOST + 64];

        for (size_t i = 0; i < NET_PROXY_MAX; i++) {
                struct net_pstream *st = p->s[i];
                int r;

                if (st == NULL || st->state != P_RESOLVE)
                        continue;
                /* Recorded before any connection is made, or none is. */
                if (audit_decision(p, "egress.allow",
                                   json_pack("{s:s,s:i,s:s}", "host", st->req.host, "port",
                                             (int)st->req.port, "kind",
                                             st->req.kind == NET_REQ_CONNECT ? "tunnel" : "http")) <
                    0) {
                        answer_and_close(p, st, out, 502, "Bad Gateway",
                                         "the connection could not be recorded in the audit log");
                        return;
                }
                r = start_connect(p, st, why, sizeof(why));
                if (r == -EACCES) {
                        deny(p, st, out, why);
                } else if (r < 0) {
                        log_warn("sandbox %s: egress to %s:%u failed: %s", p->sandbox_id,
                                 st->req.host, st->req.port, why);
                        answer_and_close(p, st, out, 502, "Bad Gateway", why);
                } else {
                        st->state = P_CONNECTING;
                }
                return; /* one resolution per round: the exec loop checks Ctrl-C in between */
        }
}

/*
 * Connected: greet the guest (CONNECT) or put the rewritten request first
 * (plain); whatever the guest sent meanwhile goes after it, in order.
 */
static void connected(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        char rewritten[NET_MAX_HEAD + 64];
        size_t extra = st->have - st->req.head_len;
        struct buf q = BUF_INIT;
        int n = 0;

        p->allowed++;
        log_info("sandbox %s: egress to %s:%u (%s)", p->sandbox_id, st->req.host, st->req.port,
                 st->req.kind == NET_REQ_CONNECT ? "tunnel" : "http");

        if (st->req.kind == NET_REQ_CONNECT) {
                send_chunk(out, st->id, ok, sizeof(ok) - 1, 0);
                st->unacked += sizeof(ok) - 1;
                st->sni_pending = 1;
        } else {
                n = net_http_rewrite(st->head, &st->req, rewritten, sizeof(rewritten));
                if (n < 0) {
                        answer_and_close(p, st, out, 400, "Bad Request", "request head too large");
                        return;
                }
        }
        if ((n > 0 && buf_append(&q, rewritten, (size_t)n) < 0) ||
            (extra > 0 && buf_append(&q, st->head + st->req.head_len, extra) < 0) ||
            (buf_size(&st->to_up) > 0 &&
             buf_append(&q, buf_head(&st->to_up), buf_size(&st->to_up)) < 0)) {
                buf_free(&q);
                answer_and_close(p, st, out, 502, "Bad Gateway", "out of memory");
                return;
        }
        buf_free(&st->to_up);
        st->to_up = q;
        st->prefix = (size_t)n;
        /* The head itself is consumed; the bytes after it are acknowledged as they go out. */
        ack(out, st->id, st->req.head_len);
        st->state = P_RELAY;
}

/*
 * CONNECT: before the first byte goes out, the client must have said, in a
 * TLS ClientHello, the name that was allowed (an allowed name must not
 * carry a connection for another). No TLS, no server name, a name that
 * differs: refused — unless the allow-list named an address, which is
 * allowed whatever name rides on it. 1 go on, 0 wait, -1 denied (st gone).
 */
static int sni_ok(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        char sni[NET_MAX_HOST + 3], why[2 * NET_MAX_HOST + 64];
        const uint8_t *d = buf_head(&st->to_up) + st->prefix;
        size_t n = buf_size(&st->to_up) - st->prefix;
        int r;

        if (literal(st->req.host)) {
                st->sni_pending = 0;
                return 1;
        }
        if (n == 0)
                return 0;
        r = net_tls_sni(d, n, sni, sizeof(sni));
        if (r == -EAGAIN && !st->guest_eof && n < NET_TLS_MAX_HELLO + 64)
                return 0; /* the rest of the ClientHello is on its way */
        if (r == 0 && strcmp(sni, st->req.host) == 0) {
                st->sni_pending = 0;
                return 1;
        }
        if (r == 0)
                snprintf(why, sizeof(why), "TLS server name %s does not match the tunnel to %s",
                         sni, st->req.host);
        else
                snprintf(why, sizeof(why),
                         "the tunnel to %s did not start with a TLS ClientHello naming it",
                         st->req.host);
        deny(p, st, out, why);
        return -1;
}

/* Past the head: guest bytes for the destination. 0, -1 stream gone, -EPROTO. */
static int body_bytes(struct net_proxy *p, struct net_pstream *st, const uint8_t *d, size_t n,
                      struct buf *out)
{
        /* A plain request forwards its declared body and nothing more (no pipelining). */
        if (st->req.kind == NET_REQ_PLAIN) {
                if ((long long)n > st->body_left) {
                        log_denial(p, "bytes after a plain HTTP request and its body (a second "
                                      "request on one connection is not relayed)");
                        send_chunk(out, st->id, NULL, 0, 1);
                        forget(p, st);
                        return -1;
                }
                st->body_left -= (long long)n;
        }
        /* The agent stays within its window, or it breaks the protocol. */
        if (buf_size(&st->to_up) + n > PROTO_NET_WINDOW + NET_MAX_HEAD + 64)
                return -EPROTO;
        if (buf_append(&st->to_up, d, n) < 0) {
                answer_and_close(p, st, out, 502, "Bad Gateway", "out of memory");
                return -1;
        }
        /*
         * Checked now, not at the next event: until it passes the
         * destination is not polled for writing, and a client that sends
         * its whole ClientHello and waits (node does) would wake nothing.
         */
        if (st->state == P_RELAY && st->sni_pending && sni_ok(p, st, out) < 0)
                return -1;
        return 0;
}

/* Guest bytes (NET_RECV) for stream st. 0, or -EPROTO. */
static int guest_bytes(struct net_proxy *p, struct net_pstream *st, const uint8_t *d, size_t n,
                       struct buf *out)
{
        size_t before, take, from;
        long long extra;

        if (st->state != P_HEAD)
                return body_bytes(p, st, d, n, out) == -EPROTO ? -EPROTO : 0;
        before = st->have;
        take = n < sizeof(st->head) - st->have ? n : sizeof(st->head) - st->have;
        memcpy(st->head + st->have, d, take);
        st->have += take;
        /* Parse only once the end of the head can be there: no rescanning per byte. */
        from = before > 3 ? before - 3 : 0;
        if (memmem(st->head + from, st->have - from, "\r\n\r\n", 4) == NULL) {
                if (st->have == sizeof(st->head)) {
                        log_denial(p, "a request head over 16 KiB");
                        answer_and_close(p, st, out, 400, "Bad Request", "request head too large");
                }
                return 0;
        }
        {
                uint32_t id = st->id; /* decide() may free st */

                decide(p, st, out);
                if (find(p, id) != st || st->state == P_HEAD)
                        return 0;
        }
        /* Bytes after the head that were in this frame: body, counted like any other. */
        extra = (long long)(st->have - st->req.head_len);
        if (st->req.kind == NET_REQ_PLAIN && extra > st->body_left) {
                log_denial(p, "bytes after a plain HTTP request and its body");
                answer_and_close(p, st, out, 400, "Bad Request",
                                 "one request per connection, with its declared body");
                return 0;
        }
        if (st->req.kind == NET_REQ_PLAIN)
                st->body_left -= extra;
        if (take < n)
                return body_bytes(p, st, d + take, n - take, out) == -EPROTO ? -EPROTO : 0;
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
                        else if (st->state == P_RELAY && st->sni_pending)
                                (void)sni_ok(p, st, out); /* no more is coming: decide now */
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
                if (st->state == P_CONNECTING) {
                        ev = POLLOUT;
                } else {
                        if (buf_size(&st->to_up) > 0 && !st->sni_pending)
                                ev |= POLLOUT;
                        if (!out_full && st->unacked < PROTO_NET_WINDOW)
                                ev |= POLLIN;
                }
                /*
                 * Nothing wanted (window full, output backed up): leave it out.
                 * poll() would still report a hang-up on it, over and over.
                 */
                fds[n++] = (struct pollfd){.fd = ev ? st->up : -1, .events = ev};
        }
        return n;
}

/* Write what the destination takes; acknowledge the guest's share. 1 if st is gone. */
static int flush_up(struct net_proxy *p, struct net_pstream *st, struct buf *out)
{
        ssize_t w = write(st->up, buf_head(&st->to_up), buf_size(&st->to_up));
        size_t ours;

        if (w < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                answer_and_close(p, st, out, 502, "Bad Gateway", "the destination closed");
                return 1;
        }
        ours = (size_t)w < st->prefix ? (size_t)w : st->prefix;
        st->prefix -= ours;
        buf_consume(&st->to_up, (size_t)w);
        ack(out, st->id, (uint64_t)w - ours);
        return 0;
}

static void stream_event(struct net_proxy *p, struct net_pstream *st, short revents,
                         struct buf *out)
{
        uint8_t tmp[NET_PROXY_CHUNK];
        size_t want;
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
        if (st->state != P_RELAY)
                return;
        if (st->sni_pending && sni_ok(p, st, out) <= 0)
                return; /* waiting for the ClientHello, or denied and gone */
        if ((revents & POLLOUT) && buf_size(&st->to_up) > 0 && flush_up(p, st, out))
                return;
        if (st->guest_eof && !st->up_shut && buf_size(&st->to_up) == 0) {
                shutdown(st->up, SHUT_WR); /* pass the client's half-close on */
                st->up_shut = 1;
        }
        want = PROTO_NET_WINDOW - st->unacked;
        if (!(revents & (POLLIN | POLLHUP | POLLERR)) || want == 0)
                return; /* a full window is read once the agent acknowledges */
        r = read(st->up, tmp, want < sizeof(tmp) ? want : sizeof(tmp));
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (r <= 0) { /* the destination is done (or failed): so is the stream */
                send_chunk(out, st->id, NULL, 0, 1);
                forget(p, st);
                return;
        }
        send_chunk(out, st->id, tmp, (size_t)r, 0);
        st->unacked += (uint64_t)r;
}

void net_proxy_events(struct net_proxy *p, const struct pollfd *fds, size_t n, struct buf *out)
{
        for (size_t i = 0; i < n; i++) {
                if (fds[i].fd < 0)
                        continue;
                for (size_t k = 0; k < NET_PROXY_MAX; k++) {
                        struct net_pstream *st = p->s[k];

                        if (st != NULL && st->up == fds[i].fd) {
                                stream_event(p, st, fds[i].revents, out);
                                break;
                        }
                }
        }
        /* Streams waiting for their ClientHello check: it may have arrived in a frame. */
        for (size_t k = 0; k < NET_PROXY_MAX; k++) {
                struct net_pstream *st = p->s[k];

                if (st != NULL && st->state == P_RELAY && st->sni_pending)
                        (void)sni_ok(p, st, out);
        }
}
