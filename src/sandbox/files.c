/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/files.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/monotime.h"
#include "proto/proto.h"
#include "sandbox/agent_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one request collects from its frames. */
struct files_req {
        uint32_t id;
        uint8_t type;
        struct buf data; /* READ_FILE */
        size_t max;      /* READ_FILE bytes, LIST entries */
        int truncated;
        struct proto_stat *ents; /* LIST */
        size_t n, cap;
        int done;
};

static void printable(char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
}

static int frame(struct files_req *q, const struct proto_hdr *h, const uint8_t *payload,
                 const char *path, struct lg_err **err)
{
        struct proto_error pe;
        struct proto_reader rd;
        struct proto_stat st;
        const uint8_t *data;
        unsigned stream;
        size_t n;
        int r;

        switch (h->type) {
        case PROTO_DATA:
                if (q->type != PROTO_READ_FILE ||
                    proto_decode_data(payload, h->len, &stream, &data, &n) < 0 || stream != 0)
                        break;
                if (buf_size(&q->data) + n > q->max) {
                        n = q->max - buf_size(&q->data);
                        q->truncated = 1;
                }
                return buf_append(&q->data, data, n) < 0
                           ? err_set(err, LG_EK_INTERNAL, ENOMEM, "read %s", path)
                           : 0;
        case PROTO_ENTRIES:
                if (q->type != PROTO_LIST)
                        break;
                proto_reader_init(&rd, payload, h->len);
                while ((r = proto_next_entry(&rd, &st)) == 1) {
                        if (q->n >= q->max) {
                                q->truncated = 1;
                                continue;
                        }
                        if (q->n == q->cap) {
                                size_t cap = q->cap ? q->cap * 2 : 64;
                                struct proto_stat *e = realloc(q->ents, cap * sizeof(*e));

                                if (e == NULL)
                                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "list");
                                q->ents = e;
                                q->cap = cap;
                        }
                        q->ents[q->n++] = st;
                }
                if (r < 0)
                        return err_set(err, LG_EK_LOST, EPROTO,
                                       "a malformed directory listing from the guest agent");
                return 0;
        case PROTO_OK:
                q->done = 1;
                return 0;
        case PROTO_ERROR:
                if (proto_decode_error(payload, h->len, &pe) < 0)
                        break;
                printable(pe.message);
                q->done = 1;
                return err_set(err, LG_EK_USAGE, 0, "%s: %s", path,
                               pe.message[0] ? pe.message : strerror(pe.errnum));
        default:
                break;
        }
        return err_set(err, LG_EK_LOST, EPROTO, "an unexpected frame from the guest agent");
}

/* Send what is queued and collect q's frames until its final reply. */
static int files_wait(struct agent_conn *c, int vmm_pidfd, int intr_fd, struct files_req *q,
                      const char *path, struct lg_err **err)
{
        uint64_t deadline = mono_ms() + FILES_TIMEOUT_MS;
        struct proto_hdr h;
        const uint8_t *payload;
        int r;

        while (!q->done) {
                struct pollfd p[3] = {{.fd = c->fd, .events = agent_conn_events(c)},
                                      {.fd = vmm_pidfd, .events = POLLIN},
                                      {.fd = intr_fd, .events = POLLIN}};

                r = agent_conn_flush(c);
                if (r < 0)
                        return err_set(err, LG_EK_LOST, -r, "write to the guest agent");
                while (!q->done && (r = agent_conn_next(c, &h, &payload)) != 0) {
                        if (r < 0)
                                return err_set(err, LG_EK_LOST, -r,
                                               "a corrupt stream from the guest agent");
                        if (h.id != q->id)
                                continue; /* nothing else is in flight on a session sandbox */
                        r = frame(q, &h, payload, path, err);
                        if (r < 0)
                                return r;
                }
                if (q->done)
                        break;
                if (c->eof)
                        return err_set(err, LG_EK_LOST, 0, "the guest agent closed the channel");
                r = poll(p, 3, (int)mono_left_ms(deadline));
                if (r < 0 && errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "poll");
                if (r == 0)
                        return err_set(err, LG_EK_LOST, ETIMEDOUT,
                                       "the guest agent did not answer within %d s",
                                       FILES_TIMEOUT_MS / 1000);
                if (p[2].revents & POLLIN)
                        return err_set(err, LG_EK_INTERRUPTED, 0, "interrupted");
                if (p[1].revents & POLLIN)
                        return err_set(err, LG_EK_LOST, 0, "the sandbox VM exited");
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = agent_conn_fill(c);
                        if (r < 0 && r != -ECONNRESET)
                                return err_set(err, LG_EK_LOST, -r, "read from the guest agent");
                }
        }
        return 0;
}

int sandbox_read_file(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path,
                      size_t max, char **data, size_t *len, int *truncated, struct lg_err **err)
{
        struct files_req q = {.type = PROTO_READ_FILE, .max = max, .data = BUF_INIT};
        struct proto_path_req rq = {.offset = 0, .length = (uint64_t)max + 1};
        int r;

        *data = NULL;
        if (strlen(path) > PROTO_MAX_STR)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "path too long");
        snprintf(rq.path, sizeof(rq.path), "%s", path);
        q.id = agent_conn_new_id(c);
        r = proto_encode_path_req(agent_conn_out(c), PROTO_READ_FILE, q.id, &rq);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "READ_FILE");
        r = files_wait(c, vmm_pidfd, intr_fd, &q, path, err);
        if (r == 0 && buf_append(&q.data, "", 1) < 0)
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "read %s", path);
        if (r == 0) {
                *len = buf_size(&q.data) - 1;
                *truncated = q.truncated;
                *data = malloc(*len + 1);
                if (*data == NULL)
                        r = err_set(err, LG_EK_INTERNAL, ENOMEM, "read %s", path);
                else
                        memcpy(*data, buf_head(&q.data), *len + 1);
        }
        buf_free(&q.data);
        return r;
}

int sandbox_write_file(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path,
                       const void *data, size_t len, unsigned mode, struct lg_err **err)
{
        struct files_req q = {.type = PROTO_WRITE_FILE, .data = BUF_INIT};
        struct proto_write_file w = {.mode = mode, .data = data, .len = len};
        int r;

        if (strlen(path) > PROTO_MAX_STR)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "path too long");
        if (len > PROTO_MAX_FILE)
                return err_set(err, LG_EK_USAGE, EFBIG, "%s: at most %u bytes in one write", path,
                               PROTO_MAX_FILE);
        snprintf(w.path, sizeof(w.path), "%s", path);
        q.id = agent_conn_new_id(c);
        r = proto_encode_write_file(agent_conn_out(c), q.id, &w);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "WRITE_FILE");
        return files_wait(c, vmm_pidfd, intr_fd, &q, path, err);
}

int sandbox_list(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path, size_t max,
                 struct proto_stat **ents, size_t *n, int *truncated, struct lg_err **err)
{
        struct files_req q = {.type = PROTO_LIST, .max = max, .data = BUF_INIT};
        struct proto_path_req rq = {0};
        int r;

        *ents = NULL;
        *n = 0;
        if (strlen(path) > PROTO_MAX_STR)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "path too long");
        snprintf(rq.path, sizeof(rq.path), "%s", path);
        q.id = agent_conn_new_id(c);
        r = proto_encode_path_req(agent_conn_out(c), PROTO_LIST, q.id, &rq);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "LIST");
        r = files_wait(c, vmm_pidfd, intr_fd, &q, path, err);
        if (r < 0) {
                free(q.ents);
                return r;
        }
        *ents = q.ents;
        *n = q.n;
        *truncated = q.truncated;
        return 0;
}
