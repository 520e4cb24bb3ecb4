/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal Streamable HTTP MCP client (libcurl) for `bench mcp`: one
 * session, one kept-alive connection, requests answered with JSON or SSE.
 */
#ifndef LG_BENCH_BENCH_HTTP_H
#define LG_BENCH_BENCH_HTTP_H

#include <jansson.h>

struct lg_err;
struct bench_http;

/* initialize and notifications/initialized at url with the bearer token. NULL with *err. */
struct bench_http *bench_http_open(const char *url, const char *token, struct lg_err **err);

/* A request (method, params stolen); its answer's result (new reference), NULL with *err. */
json_t *bench_http_request(struct bench_http *c, const char *method, json_t *params,
                           struct lg_err **err);

/* DELETE the session, free. */
void bench_http_close(struct bench_http *c);

#endif
