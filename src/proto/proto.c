/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frame codec core: header, field writer, field reader. The typed messages
 * live in proto_msg.c, stream reassembly in proto_rx.c.
 */
#include "proto/proto.h"
#include "common/buf.h"

#include <errno.h>
#include <string.h>

/* Field header: u16 tag, u32 len. */
#define FIELD_HDR 6u

static void put_le16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int proto_hdr_decode(const uint8_t *p, size_t n, struct proto_hdr *h)
{
        if (n < PROTO_HDR_SIZE)
                return -EAGAIN;
        if (get_le16(p) != PROTO_MAGIC)
                return -EPROTO;
        h->type = p[2];
        h->flags = p[3];
        h->id = get_le32(p + 4);
        h->len = get_le32(p + 8);
        if (h->len > PROTO_MAX_PAYLOAD)
                return -EMSGSIZE;
        return 0;
}

/* ---- Encoding ----------------------------------------------------------- */

void proto_begin(struct proto_writer *w, struct buf *b, uint8_t type, uint8_t flags, uint32_t id)
{
        uint8_t hdr[PROTO_HDR_SIZE];

        w->b = b;
        w->start = buf_size(b);
        put_le16(hdr, PROTO_MAGIC);
        hdr[2] = type;
        hdr[3] = flags;
        put_le32(hdr + 4, id);
        put_le32(hdr + 8, 0); /* patched by proto_end() */
        w->err = buf_append(b, hdr, sizeof(hdr));
}

size_t proto_payload_len(const struct proto_writer *w)
{
        if (w->err != 0)
                return 0;
        return buf_size(w->b) - w->start - PROTO_HDR_SIZE;
}

/* Append a field header for n value bytes, checking the payload bound first. */
static uint8_t *put_field(struct proto_writer *w, uint16_t tag, size_t n)
{
        size_t need;
        uint8_t *p;
        int r;

        if (w->err != 0)
                return NULL;
        if (__builtin_add_overflow(proto_payload_len(w), FIELD_HDR, &need) ||
            __builtin_add_overflow(need, n, &need) || need > PROTO_MAX_PAYLOAD) {
                w->err = -EMSGSIZE;
                return NULL;
        }
        r = buf_reserve(w->b, FIELD_HDR + n);
        if (r < 0) {
                w->err = r;
                return NULL;
        }
        p = buf_tail(w->b);
        put_le16(p, tag);
        put_le32(p + 2, (uint32_t)n); /* n <= PROTO_MAX_PAYLOAD, checked above */
        buf_commit(w->b, FIELD_HDR + n);
        return p + FIELD_HDR;
}

void proto_put_u64(struct proto_writer *w, uint16_t tag, uint64_t v)
{
        uint8_t *p = put_field(w, tag, 8);

        if (p == NULL)
                return;
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

void proto_put_bytes(struct proto_writer *w, uint16_t tag, const void *data, size_t n)
{
        uint8_t *p = put_field(w, tag, n);

        if (p != NULL && n > 0)
                memcpy(p, data, n);
}

void proto_put_str(struct proto_writer *w, uint16_t tag, const char *s)
{
        size_t n = strlen(s);

        if (w->err != 0)
                return;
        /* The peer's decoder would reject it; fail here where the caller can see why. */
        if (n > PROTO_MAX_STR) {
                w->err = -ENAMETOOLONG;
                return;
        }
        proto_put_bytes(w, tag, s, n);
}

int proto_end(struct proto_writer *w)
{
        struct buf *b = w->b;

        if (w->err != 0) {
                /* Roll back: buf_append is all-or-nothing, so nothing past start is ours. */
                if (buf_size(b) > w->start)
                        b->len = b->off + w->start;
                return w->err;
        }
        put_le32(buf_head(b) + w->start + 8, (uint32_t)proto_payload_len(w));
        return 0;
}

/* ---- Decoding ----------------------------------------------------------- */

void proto_reader_init(struct proto_reader *r, const uint8_t *payload, size_t len)
{
        r->p = payload;
        r->n = len;
        r->off = 0;
}

int proto_next(struct proto_reader *r, struct proto_field *f)
{
        size_t left = r->n - r->off;
        uint32_t len;

        if (left == 0)
                return 0;
        if (left < FIELD_HDR)
                return -EPROTO;
        len = get_le32(r->p + r->off + 2);
        if (len > left - FIELD_HDR)
                return -EPROTO;
        f->tag = get_le16(r->p + r->off);
        f->len = len;
        f->val = r->p + r->off + FIELD_HDR;
        r->off += FIELD_HDR + len;
        return 1;
}

int proto_field_u64(const struct proto_field *f, uint64_t *v)
{
        uint64_t x = 0;

        if (f->len != 8)
                return -EPROTO;
        for (int i = 7; i >= 0; i--)
                x = x << 8 | f->val[i];
        *v = x;
        return 0;
}

int proto_field_str(const struct proto_field *f, char *out, size_t outsz)
{
        if (f->len > PROTO_MAX_STR || f->len >= outsz)
                return -ENAMETOOLONG;
        if (f->len > 0 && memchr(f->val, '\0', f->len) != NULL)
                return -EPROTO;
        if (f->len > 0)
                memcpy(out, f->val, f->len);
        out[f->len] = '\0';
        return 0;
}
