/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard mcp`: an MCP server exposing sandbox tools to any agent, over
 * stdio (JSON-RPC 2.0, one message a line) or Streamable HTTP on loopback.
 * Each tools/call runs on a worker of its own so that pings, listings and
 * notifications/cancelled are answered while commands run.
 */
#ifndef LG_MCP_MCP_H
#define LG_MCP_MCP_H

#include <stddef.h>
#include <stdint.h>

struct lg_err;
struct policy;

#define MCP_MAX_CALLS 8 /* tools/call in flight; more are answered with an error */

struct mcp_opts {
        const char *home;
        int in_fd, out_fd;       /* stdio */
        const char *http_addr;   /* --http HOST:PORT: Streamable HTTP instead of stdio */
        unsigned page_size;      /* tools/list page; 0 = all in one */
        uint64_t session_ttl_ms; /* idle session sandboxes go after this; 0 = default */
        char **workspace_roots;  /* --workspace-root, resolved; sessions may take dirs below */
        size_t n_roots;
        int approve;      /* enum approve_mode for workspace_apply and upstream calls */
        char **upstreams; /* --upstream commands (the gateway), n_upstreams of them */
        size_t n_upstreams;
        const struct policy *policy; /* the policy file's rules, or NULL */
        uint64_t approve_timeout_ms;
        const char *default_image; /* tools that name none: the config file's, "base" */
};

/*
 * Serve until stdin ends (or SIGINT/SIGTERM): then cancel what runs, wait
 * for it, and return 0. < 0 with *err only when the server cannot start.
 */
int mcp_serve(const struct mcp_opts *o, struct lg_err **err) __attribute__((warn_unused_result));

#endif
