/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host end of the egress tunnel: an HTTP proxy for one sandbox that
 * applies its allow-list. Streams arrive over the agent channel (NET_OPEN,
 * NET_RECV, docs/protocol.md); for each, the request head decides:
 *
 *   CONNECT host:port     allowed: connect, answer 200, relay; a TLS
 *                         ClientHello's SNI must then name the same host
 *   GET http://host/...   allowed: connect, forward the request in origin
 *                         form with "Connection: close", relay the answer
 *   anything else         400; not in the allow-list: 403; a name that
 *                         resolves only to internal addresses (loopback,
 *                         private, link-local, this host's...) unless the
 *                         rule is that address: 403;
 *                         connection failure: 502
 *
 * Every decision is logged (warning for a denial) with the destination.
 * The proxy lives inside the host's exec loop (sandbox/exec.c): it adds its
 * descriptors to the poll set and appends frames to the agent channel's
 * output, reading upstream only while that output is below a bound and the
 * stream's window allows.
 */
#ifndef LG_NET_PROXY_H
#define LG_NET_PROXY_H

#include <poll.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "net/allowlist.h"

struct buf;
struct proto_hdr;
struct net_pstream;

#define NET_PROXY_PORT 3128 /* inside the sandbox: http_proxy=http://127.0.0.1:3128 */

#define NET_PROXY_MAX_OWN 32

#define NET_PROXY_MAX_NOS     3   /* human denials in a run before asking stops */
#define NET_PROXY_MAX_REFUSED 256 /* refused hosts remembered; past that nothing is asked */

/* What the ask hook answers for a destination outside the allow-list. */
enum net_ask {
        NET_ASK_DENIED,  /* a human said no: counted towards NET_PROXY_MAX_NOS */
        NET_ASK_ALLOWED, /* yes: the host and port join this run's allow-list */
        NET_ASK_REFUSED, /* refused without asking anybody (a deny rule, no approver) */
        NET_ASK_STOP,    /* no, and ask nothing more in this run (timeout, cancel, failure) */
};

struct net_proxy {
        struct net_allowlist al;
        const char *sandbox_id; /* for the log */
        struct net_pstream *s[64];
        uint64_t allowed, denied;                       /* decisions so far */
        struct sockaddr_storage own[NET_PROXY_MAX_OWN]; /* this host's addresses */
        size_t nown;
        const char *audit_home; /* decisions go to this home's audit log; NULL = none */
        /*
         * A destination outside the allow-list is RED (DESIGN.md §5): when
         * ask is set it is asked (it may block on a human) instead of
         * denying at once. An allowed destination joins the allow-list for
         * the rest of the run (exact host and port). A refused HOST is
         * remembered, whatever its port, and not asked about again; after
         * NET_PROXY_MAX_NOS human denials, any timeout or cancel, or
         * NET_PROXY_MAX_REFUSED remembered hosts, nothing more is asked in
         * the run: every other destination is denied at once, so a sandbox
         * cannot flood the human with questions.
         */
        enum net_ask (*ask)(void *ctx, const char *host, unsigned port, int tunnel);
        void *ask_ctx;
        char **refused; /* hosts refused (malloc'd, grown), compared ignoring case */
        size_t nrefused, caprefused;
        unsigned nos; /* NET_ASK_DENIED answers so far */
        int stop_asking;
};

void net_proxy_init(struct net_proxy *p, const struct net_allowlist *al, const char *sandbox_id);
/* Close every stream and connection, and forget the refused hosts. */
void net_proxy_free(struct net_proxy *p);

/*
 * For a proxy that serves one command of a live sandbox: end every stream
 * at the guest (an EOF each, queued on out) before net_proxy_free(), so a
 * client the command left behind is not left waiting for an answer.
 */
void net_proxy_end_all(struct net_proxy *p, struct buf *out);

/*
 * End guest stream id (an EOF on out): the answer to a stream's frame when
 * no proxy serves the running command (an earlier command in the same
 * sandbox had one, and a client of it is still there).
 */
void net_proxy_refuse(struct buf *out, uint32_t id);

/*
 * A NET_OPEN, NET_RECV or NET_RECV_ACK frame from the agent; replies go to
 * out. 0, or -EPROTO for a frame that breaks the protocol (the sandbox is
 * then treated as lost).
 */
int net_proxy_frame(struct net_proxy *p, const struct proto_hdr *h, const uint8_t *payload,
                    struct buf *out);

/*
 * Allowed streams wait for the resolver: net_proxy_work() resolves one
 * and starts its connect (a blocking lookup, so one per round of the exec
 * loop, which checks interrupts and deadlines in between); while
 * net_proxy_pending() is true the loop should not sleep in poll.
 */
int net_proxy_pending(const struct net_proxy *p);
void net_proxy_work(struct net_proxy *p, struct buf *out);

/* Add descriptors to watch (at most 64 into fds); out_full: the channel is backed up. */
size_t net_proxy_poll(struct net_proxy *p, struct pollfd *fds, size_t max, int out_full);
/* Handle what poll reported for those descriptors (same order, same count). */
void net_proxy_events(struct net_proxy *p, const struct pollfd *fds, size_t n, struct buf *out);

#endif
