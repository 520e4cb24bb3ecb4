/* SPDX-License-Identifier: Apache-2.0 */
/* The sandbox tools the MCP server offers: their definitions and their calls. */
#ifndef LG_MCP_MCP_TOOLS_H
#define LG_MCP_MCP_TOOLS_H

#include <jansson.h>

struct mcp_sessions;

/* Every tool's definition (name, title, description, schemas, annotations), in order. */
json_t *mcp_tools_list(void); /* new reference: an array */

/* Is name a tool of ours? */
int mcp_tool_exists(const char *name);

/*
 * Run the tool with args (an object); returns the CallToolResult (new
 * reference). intr_fd readable = cancelled (the caller then discards the
 * result). default_image: the image when args name none. Never NULL:
 * failures are results with isError.
 */
json_t *mcp_tool_call(const char *home, const char *default_image, struct mcp_sessions *ss,
                      const char *name, json_t *args, int intr_fd);

/* A CallToolResult with isError and this message (made valid UTF-8); never NULL but on ENOMEM. */
json_t *mcp_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
