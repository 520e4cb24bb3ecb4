/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gateway: upstream MCP servers' tools, listed as <prefix>__<tool>,
 * behind the approval cliff. A call is classified (src/policy: the tool's
 * name, its arguments, its annotations as hints that can only make it RED);
 * GREEN is forwarded at once, RED becomes a Diff Card for the approver and
 * is forwarded only on a yes. Every call is in the audit log before it is
 * forwarded, and its outcome after.
 */
#ifndef LG_MCP_GATEWAY_H
#define LG_MCP_GATEWAY_H

#include <jansson.h>
#include <stddef.h>

#include "policy/approve.h"

struct upstream;

#define GATEWAY_MAX_UPSTREAMS 8

struct gateway {
        struct upstream *up[GATEWAY_MAX_UPSTREAMS];
        size_t n;
        struct approve_ctx ctx; /* home, policy, approver, timeout (intr_fd set per call) */
};

/* Add an upstream command; started (and its tools listed) at once. 0 or < 0 with *err. */
int gateway_add(struct gateway *g, const char *cmd, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Append every upstream's tools, renamed and described as ours, to tools (an array). */
void gateway_list(struct gateway *g, json_t *tools);

/* Is name one of the gateway's tools? */
int gateway_has(struct gateway *g, const char *name);

/* Call it; the CallToolResult (new reference; failures are results with isError). */
json_t *gateway_call(struct gateway *g, const char *name, json_t *args, int intr_fd);

void gateway_free(struct gateway *g);

#endif
