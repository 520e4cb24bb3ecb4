/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MCP protocol, apart from any transport: one client's connection
 * (lifecycle, version, log level, its tool calls and its session
 * sandboxes). A transport hands it parsed messages together with the
 * place their replies go (struct mcp_out): stdout for stdio, the POST's
 * response stream for Streamable HTTP.
 */
#ifndef LG_MCP_MCP_PROTO_H
#define LG_MCP_MCP_PROTO_H

#include <jansson.h>
#include <stdint.h>

#include "mcp/gateway.h"

struct mcp_opts;
struct mcp_conn;

/* Where messages for a client go. */
struct mcp_out {
        /* Deliver msg (stolen). Called under the connection's lock: must not call back into it. */
        void (*send)(struct mcp_out *o, json_t *msg);
        /* A tool call holds its out until it has answered (NULL: a static out). */
        void (*hold)(struct mcp_out *o);
        void (*release)(struct mcp_out *o);
        /* A cancelled call will never answer (NULL: nothing to do). Under the connection's lock. */
        void (*end)(struct mcp_out *o);
};

/* What every connection of one server shares. */
struct mcp_shared {
        const struct mcp_opts *o;
        struct gateway gw;
};

/* Versions we speak, newest first. Is v one of them? */
int mcp_version_known(const char *v);

/* A new connection; NULL when out of memory. */
struct mcp_conn *mcp_conn_new(struct mcp_shared *sh);

/* Send msg (stolen) to out under the connection's lock, so lines and events stay whole. */
void mcp_conn_send(struct mcp_conn *c, struct mcp_out *out, json_t *msg);

/*
 * Handle one message from the client (borrowed). Replies go to out, at once
 * or, for tools/call, from a worker thread later; out is held until then.
 */
void mcp_conn_handle(struct mcp_conn *c, json_t *msg, struct mcp_out *out);

/* Cancel the running call with this request id, as notifications/cancelled does. */
void mcp_conn_cancel(struct mcp_conn *c, json_t *id);

/* Once a second: progress notifications, finished calls joined, idle sandboxes expired. */
void mcp_conn_tick(struct mcp_conn *c);

/* Calls still running (after joining finished ones); cancel them all first if asked. */
int mcp_conn_busy(struct mcp_conn *c, int cancel);

/* Session sandboxes it holds (alive or starting). */
unsigned mcp_conn_sandboxes(struct mcp_conn *c);

int mcp_conn_initialized(struct mcp_conn *c);
/* The negotiated protocol version ("" before initialize). */
const char *mcp_conn_version(struct mcp_conn *c);

/* Cancel and join every call, destroy the session sandboxes, free. */
void mcp_conn_free(struct mcp_conn *c);

#endif
