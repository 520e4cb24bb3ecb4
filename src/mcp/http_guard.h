/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who may talk to the Streamable HTTP transport. It listens on loopback
 * only, and every request must carry the server's bearer token (a local
 * user or a web page must not run commands through us), a Host header
 * naming loopback and our port, and, if it has an Origin, a loopback one
 * (DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own).
 * Pure functions of their arguments, except the token file.
 */
#ifndef LG_MCP_HTTP_GUARD_H
#define LG_MCP_HTTP_GUARD_H

#include <stddef.h>
#include <sys/socket.h>

struct lg_err;

#define HTTP_TOKEN_LEN 64 /* hex characters: 32 random bytes */

/*
 * The token in <home>/mcp-http.token (mode 0600), made on first use.
 * tok gets HTTP_TOKEN_LEN characters and a NUL. 0 or < 0 with *err.
 */
int http_guard_token(const char *home, char tok[HTTP_TOKEN_LEN + 1], struct lg_err **err)
    __attribute__((warn_unused_result));

/* "Bearer <token>", compared in constant time. 1 = yes. */
int http_guard_bearer_ok(const char *authorization, const char *token);

/* A Host header naming loopback (127.0.0.1, localhost, [::1]) with our port. 1 = yes. */
int http_guard_host_ok(const char *host, unsigned port);

/* No Origin, or an http(s) origin on a loopback name (any port). 1 = yes. */
int http_guard_origin_ok(const char *origin);

/* Does an Accept header list the media type (or a wildcard covering it)? NULL = accepts all. */
int http_guard_accepts(const char *accept, const char *type);

/*
 * "HOST:PORT" (127.0.0.1, localhost, [::1]; port 0 = any free one) into a
 * socket address. Anything but loopback is refused with LG_EK_USAGE.
 */
int http_guard_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                          struct lg_err **err) __attribute__((warn_unused_result));

#endif
