/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two ways a client reaches the server: stdio (one client, newline-
 * delimited JSON-RPC) and Streamable HTTP (many, each an Mcp-Session-Id).
 * Both return when their input ends or a signal arrives on sfd (a
 * signalfd for SIGINT, SIGTERM, SIGHUP and SIGPIPE), after every call has
 * been answered or cancelled.
 */
#ifndef LG_MCP_MCP_TRANSPORT_H
#define LG_MCP_MCP_TRANSPORT_H

struct lg_err;
struct mcp_shared;

int mcp_stdio_serve(struct mcp_shared *sh, int sfd, struct lg_err **err)
    __attribute__((warn_unused_result));
int mcp_http_serve(struct mcp_shared *sh, int sfd, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * While calls still run after the loop ended: 1 = a second signal came,
 * go now. Our VMMs die with us (PR_SET_PDEATHSIG); the next run collects
 * their run directories and cgroups.
 */
void mcp_second_signal(int sfd, int stopping);

#endif
