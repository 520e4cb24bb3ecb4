/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The first thing a sandbox says to its egress proxy: an HTTP/1.x request
 * head, either "CONNECT host:port" (a tunnel, usually TLS) or a request in
 * absolute form ("GET http://host[:port]/path"). Parsed strictly, bounded,
 * without allocation: whatever the destination is must be unambiguous,
 * because the allow-list decides on it.
 */
#ifndef LG_NET_HTTP_HEAD_H
#define LG_NET_HTTP_HEAD_H

#include <stddef.h>

#include "net/allowlist.h"

#define NET_MAX_HEAD 16384 /* request line + headers */

enum net_req_kind {
        NET_REQ_CONNECT, /* tunnel to host:port; the client speaks TLS next */
        NET_REQ_PLAIN,   /* forward this request, rewritten to origin form */
};

struct net_req {
        enum net_req_kind kind;
        char host[NET_MAX_HOST + 3]; /* normalised (net_host_normalise) */
        unsigned port;
        size_t head_len; /* bytes of the head, final CRLF CRLF included */
        size_t line_len; /* bytes of the request line, CRLF included */
        size_t path_off; /* PLAIN: where the origin-form path starts in the request line */
        size_t path_len; /* and its length */
        size_t method_len;
        long long content_length; /* PLAIN: the body's length, -1 when none is declared */
};

/*
 * Parse the head at buf[0..n). 0: *req filled; -EAGAIN: no complete head
 * yet (read more); -EMSGSIZE: no head within NET_MAX_HEAD bytes; -EINVAL:
 * malformed, ambiguous (Host differs from the target, two Host headers, two
 * Content-Length headers), a Transfer-Encoding (a plain request's body must
 * have a declared length: the proxy forwards exactly that much), a scheme
 * other than http, or a destination that is not a plain name.
 */
int net_http_parse(const char *buf, size_t n, struct net_req *req);

/*
 * PLAIN: the head to send to the origin server — the request line in origin
 * form ("GET /path HTTP/1.1"), every header except Proxy-* ones, and
 * "Connection: close" (one request per connection). Returns its length, or
 * -ENOSPC if out (outsz bytes) is too small.
 */
int net_http_rewrite(const char *buf, const struct net_req *req, char *out, size_t outsz);

#endif
