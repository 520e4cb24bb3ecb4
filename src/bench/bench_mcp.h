/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard bench mcp`: tool-call round trips through our MCP server and the gateway. */
#ifndef LG_BENCH_BENCH_MCP_H
#define LG_BENCH_BENCH_MCP_H

#include <stdio.h>

struct lg_err;

struct bench_mcp_opts {
        unsigned runs;        /* calls per row */
        const char *upstream; /* an MCP server command for the gateway rows, or NULL */
        const char *tool;     /* its GREEN tool to call */
        const char *args;     /* that tool's arguments (JSON object) */
};

int bench_mcp(const char *home, const struct bench_mcp_opts *o, FILE *out, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
