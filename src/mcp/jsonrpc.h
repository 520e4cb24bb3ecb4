/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON-RPC 2.0 as MCP uses it over stdio: one message per line, UTF-8,
 * no batches (removed in MCP 2025-06-18; refused here in every version).
 *
 * Untrusted input is bounded before it is buffered: a line longer than
 * JSONRPC_MAX_LINE is discarded as it arrives and answered with an error,
 * and a parsed message deeper than JSONRPC_MAX_DEPTH is refused.
 */
#ifndef LG_MCP_JSONRPC_H
#define LG_MCP_JSONRPC_H

#include <jansson.h>
#include <stddef.h>

#define JSONRPC_MAX_LINE  (4u << 20) /* one message */
#define JSONRPC_MAX_DEPTH 64

/* The standard error codes. */
enum {
        JSONRPC_PARSE_ERROR = -32700,
        JSONRPC_INVALID_REQUEST = -32600,
        JSONRPC_METHOD_NOT_FOUND = -32601,
        JSONRPC_INVALID_PARAMS = -32602,
        JSONRPC_INTERNAL_ERROR = -32603,
};

/* A line reader over a descriptor that never holds more than one bounded line. */
struct jsonrpc_reader {
        int fd;
        char *buf;
        size_t len, cap;
        int discarding; /* inside a line that was too long */
        int eof;
        char *line; /* the line handed out last */
        /* The last bytes of a line that was too long, for whoever wants to know what it was. */
        char tail[256];
        size_t tail_len;
        int end_pending; /* a too-long line ended: -EMSGSIZE is due */
};

void jsonrpc_reader_init(struct jsonrpc_reader *r, int fd);
void jsonrpc_reader_free(struct jsonrpc_reader *r);

/*
 * The next complete line (NUL-terminated, without its newline) into
 * *line / *len, valid until the next call. Returns 1 for a line, 0 when no
 * complete line is buffered yet (read more with jsonrpc_reader_fill), -E2BIG
 * once for a line that was too long (it is skipped), -ENODATA at EOF.
 */
int jsonrpc_reader_next(struct jsonrpc_reader *r, char **line, size_t *len);
/* Read what the descriptor has (blocking or not, as it is). 0, -ENODATA at EOF, -errno. */
int jsonrpc_reader_fill(struct jsonrpc_reader *r);

/*
 * A message from a line: a JSON object (new reference) or NULL with the
 * error code and message to answer (parse error, invalid request, too deep).
 */
json_t *jsonrpc_parse(const char *line, size_t len, int *code, const char **why);

/* Is the id a valid JSON-RPC request id (string or integer)? */
int jsonrpc_id_valid(const json_t *id);

/* Responses and notifications as one line each (no newline inside), new references. */
json_t *jsonrpc_result(json_t *id, json_t *result);                             /* steals result */
json_t *jsonrpc_error(json_t *id, int code, const char *message, json_t *data); /* steals data */
json_t *jsonrpc_notification(const char *method, json_t *params);               /* steals params */

/* Write msg (stolen) as one line to fd, whole, under the caller's serialisation. 0 / -errno. */
int jsonrpc_write(int fd, json_t *msg);

#endif
