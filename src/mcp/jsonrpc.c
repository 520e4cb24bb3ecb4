/* SPDX-License-Identifier: Apache-2.0 */
#include "mcp/jsonrpc.h"
#include "common/fdio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void jsonrpc_reader_init(struct jsonrpc_reader *r, int fd)
{
        memset(r, 0, sizeof(*r));
        r->fd = fd;
}

void jsonrpc_reader_free(struct jsonrpc_reader *r)
{
        free(r->buf);
        free(r->line);
        memset(r, 0, sizeof(*r));
        r->fd = -1;
}

int jsonrpc_reader_fill(struct jsonrpc_reader *r)
{
        ssize_t n;

        if (r->eof)
                return -ENODATA;
        if (r->cap - r->len < 64 * 1024) {
                size_t cap = r->cap ? r->cap * 2 : 128 * 1024;
                char *b;

                /* Never more than one maximal line and one read. */
                if (cap > JSONRPC_MAX_LINE + 128 * 1024)
                        cap = JSONRPC_MAX_LINE + 128 * 1024;
                if (cap <= r->len)
                        return -E2BIG; /* cannot happen: next() trims long lines */
                b = realloc(r->buf, cap + 1);
                if (b == NULL)
                        return -ENOMEM;
                r->buf = b;
                r->cap = cap;
        }
        do {
                n = read(r->fd, r->buf + r->len, r->cap - r->len);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (n == 0) {
                r->eof = 1;
                return r->len > 0 ? 0 : -ENODATA;
        }
        r->len += (size_t)n;
        return 0;
}

/* Keep the last sizeof(tail) bytes of what a too-long line has shown so far. */
static void keep_tail(struct jsonrpc_reader *r, const char *p, size_t n)
{
        size_t cap = sizeof(r->tail);

        if (n >= cap) {
                memcpy(r->tail, p + n - cap, cap);
                r->tail_len = cap;
                return;
        }
        if (r->tail_len + n > cap) {
                size_t drop = r->tail_len + n - cap;

                memmove(r->tail, r->tail + drop, r->tail_len - drop);
                r->tail_len -= drop;
        }
        memcpy(r->tail + r->tail_len, p, n);
        r->tail_len += n;
}

int jsonrpc_reader_next(struct jsonrpc_reader *r, char **line, size_t *len)
{
        char *nl;

        if (r->end_pending) {
                r->end_pending = 0;
                return -EMSGSIZE;
        }
        for (;;) {
                nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
                if (r->discarding) {
                        if (nl == NULL) {
                                keep_tail(r, r->buf, r->len);
                                r->len = 0; /* still inside the long line */
                                return r->eof ? -ENODATA : 0;
                        }
                        keep_tail(r, r->buf, (size_t)(nl - r->buf));
                        r->discarding = 0;
                        memmove(r->buf, nl + 1, r->len - (size_t)(nl + 1 - r->buf));
                        r->len -= (size_t)(nl + 1 - r->buf);
                        return -EMSGSIZE;
                }
                if (nl == NULL) {
                        if (r->len > JSONRPC_MAX_LINE) {
                                r->discarding = 1;
                                r->tail_len = 0;
                                keep_tail(r, r->buf, r->len);
                                r->len = 0;
                                return -E2BIG;
                        }
                        if (r->eof && r->len > 0) {
                                nl = r->buf + r->len; /* a last line without its newline */
                                r->len++;
                        } else {
                                return r->eof ? -ENODATA : 0;
                        }
                }
                if ((size_t)(nl - r->buf) > JSONRPC_MAX_LINE) {
                        r->tail_len = 0;
                        keep_tail(r, r->buf, (size_t)(nl - r->buf));
                        r->end_pending = 1;
                        memmove(r->buf, nl + 1, r->len - (size_t)(nl + 1 - r->buf));
                        r->len -= (size_t)(nl + 1 - r->buf);
                        return -E2BIG;
                }
                break;
        }
        *nl = '\0';
        *len = (size_t)(nl - r->buf);
        if (*len > 0 && r->buf[*len - 1] == '\r')
                r->buf[--*len] = '\0';
        /* Hand out a copy at the front, and drop the line from the buffer. */
        {
                size_t take = (size_t)(nl + 1 - r->buf);
                char *copy = malloc(*len + 1);

                if (copy == NULL)
                        return -ENOMEM;
                memcpy(copy, r->buf, *len + 1);
                memmove(r->buf, r->buf + take, r->len - take);
                r->len -= take;
                free(r->line);
                r->line = copy;
                *line = copy;
        }
        return 1;
}

static size_t depth_of(const json_t *j, size_t limit)
{
        size_t d = 0, i;
        const char *k;
        json_t *v;

        if (limit == 0)
                return 1;
        if (json_is_object(j)) {
                json_object_foreach((json_t *)j, k, v)
                {
                        size_t c = depth_of(v, limit - 1);

                        d = c > d ? c : d;
                }
                return d + 1;
        }
        if (json_is_array(j)) {
                json_array_foreach(j, i, v)
                {
                        size_t c = depth_of(v, limit - 1);

                        d = c > d ? c : d;
                }
                return d + 1;
        }
        return 0;
}

json_t *jsonrpc_parse(const char *line, size_t len, int *code, const char **why)
{
        json_error_t je;
        json_t *j;

        /* Depth is checked before parsing too: jansson recurses per level. */
        size_t open = 0, maxopen = 0;
        int in_str = 0;

        for (size_t i = 0; i < len; i++) {
                char c = line[i];

                if (in_str) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_str = 0;
                } else if (c == '"') {
                        in_str = 1;
                } else if (c == '{' || c == '[') {
                        if (++open > maxopen)
                                maxopen = open;
                } else if (c == '}' || c == ']') {
                        open = open ? open - 1 : 0;
                }
        }
        if (maxopen > JSONRPC_MAX_DEPTH) {
                *code = JSONRPC_INVALID_REQUEST;
                *why = "message nested too deeply";
                return NULL;
        }
        j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
        if (j == NULL) {
                *code = JSONRPC_PARSE_ERROR;
                *why = "parse error: not valid JSON";
                return NULL;
        }
        if (json_is_array(j)) {
                json_decref(j);
                *code = JSONRPC_INVALID_REQUEST;
                *why = "batches are not supported";
                return NULL;
        }
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "jsonrpc")) ||
            strcmp(json_string_value(json_object_get(j, "jsonrpc")), "2.0") != 0 ||
            depth_of(j, JSONRPC_MAX_DEPTH + 1) > JSONRPC_MAX_DEPTH) {
                json_decref(j);
                *code = JSONRPC_INVALID_REQUEST;
                *why = "not a JSON-RPC 2.0 message";
                return NULL;
        }
        return j;
}

int jsonrpc_id_valid(const json_t *id)
{
        return json_is_string(id) || json_is_integer(id);
}

json_t *jsonrpc_result(json_t *id, json_t *result)
{
        return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                         result);
}

json_t *jsonrpc_error(json_t *id, int code, const char *message, json_t *data)
{
        json_t *e = json_pack("{s:i, s:s}", "code", code, "message", message);

        if (e != NULL && data != NULL)
                json_object_set_new(e, "data", data);
        else
                json_decref(data);
        return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error",
                         e);
}

json_t *jsonrpc_notification(const char *method, json_t *params)
{
        if (params == NULL)
                return json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
        return json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method, "params", params);
}

int jsonrpc_write(int fd, json_t *msg)
{
        char *text;
        size_t n;
        int r;

        if (msg == NULL)
                return -ENOMEM;
        /* Compact, and no raw newline can appear: JSON escapes it inside strings. */
        text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        if (text == NULL)
                return -ENOMEM;
        n = strlen(text);
        text[n] = '\n';
        r = fd_write_all(fd, text, n + 1);
        free(text);
        return r;
}
