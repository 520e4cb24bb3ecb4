/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small replies and events: READY / HELLO's OK, one-integer messages
 * (STARTED, OK{size}, OK{count}, SIGNAL), STAT's OK and LIST's ENTRIES.
 */
#include "proto/proto.h"
#include "common/buf.h"

#include <errno.h>
#include <string.h>

static int mark_once(unsigned *seen, uint16_t tag)
{
        unsigned bit = 1u << (tag & 31);

        if (*seen & bit)
                return -EPROTO;
        *seen |= bit;
        return 0;
}

int proto_encode_hello_reply(struct buf *b, uint8_t type, uint32_t id, const struct proto_hello *h)
{
        struct proto_writer w;

        proto_begin(&w, b, type, 0, id);
        proto_put_u64(&w, PT_VERSION, h->version);
        if (h->name[0] != '\0')
                proto_put_str(&w, PT_NAME, h->name);
        if (h->kernel[0] != '\0')
                proto_put_str(&w, PT_KERNEL, h->kernel);
        return proto_end(&w);
}

int proto_decode_hello_reply(const uint8_t *payload, size_t len, struct proto_hello *h)
{
        struct proto_reader rd;
        struct proto_field f;
        unsigned seen = 0;
        int r;

        memset(h, 0, sizeof(*h));
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag != PT_VERSION && f.tag != PT_NAME && f.tag != PT_KERNEL)
                        continue;
                r = mark_once(&seen, f.tag);
                if (r == 0 && f.tag == PT_VERSION)
                        r = proto_field_u64(&f, &h->version);
                else if (r == 0 && f.tag == PT_NAME)
                        r = proto_field_str(&f, h->name, sizeof(h->name));
                else if (r == 0)
                        r = proto_field_str(&f, h->kernel, sizeof(h->kernel));
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return (seen & (1u << PT_VERSION)) ? 0 : -EPROTO;
}

int proto_encode_u64_msg(struct buf *b, uint8_t type, uint32_t id, uint16_t tag, uint64_t v)
{
        struct proto_writer w;

        proto_begin(&w, b, type, 0, id);
        proto_put_u64(&w, tag, v);
        return proto_end(&w);
}

int proto_decode_u64_msg(const uint8_t *payload, size_t len, uint16_t tag, uint64_t *v)
{
        struct proto_reader rd;
        struct proto_field f;
        int r, found = 0;

        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag != tag)
                        continue;
                if (found++)
                        return -EPROTO;
                r = proto_field_u64(&f, v);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return found ? 0 : -EPROTO;
}

/* ---- STAT and LIST metadata ---------------------------------------------- */

static void put_meta(struct proto_writer *w, const struct proto_stat *st)
{
        proto_put_u64(w, PT_FILE_TYPE, st->file_type);
        proto_put_u64(w, PT_MODE, st->mode);
        proto_put_u64(w, PT_SIZE, st->size);
}

int proto_encode_stat(struct buf *b, uint32_t id, const struct proto_stat *st)
{
        struct proto_writer w;

        if (st->file_type > PROTO_FT_LNK || st->mode > 07777)
                return -EINVAL;
        proto_begin(&w, b, PROTO_OK, 0, id);
        put_meta(&w, st);
        proto_put_u64(&w, PT_MTIME_NS, st->mtime_ns);
        return proto_end(&w);
}

/* One metadata field into st; 1 = it was one, 0 = some other tag. */
static int get_meta(const struct proto_field *f, unsigned *seen, struct proto_stat *st)
{
        uint64_t v;
        int r;

        if (f->tag != PT_FILE_TYPE && f->tag != PT_MODE && f->tag != PT_SIZE &&
            f->tag != PT_MTIME_NS)
                return 0;
        r = mark_once(seen, f->tag);
        if (r == 0)
                r = proto_field_u64(f, &v);
        if (r < 0)
                return r;
        switch (f->tag) {
        case PT_FILE_TYPE:
                if (v > PROTO_FT_LNK)
                        return -EPROTO;
                st->file_type = (unsigned)v;
                break;
        case PT_MODE:
                if (v > 07777)
                        return -EPROTO;
                st->mode = (uint32_t)v;
                break;
        case PT_SIZE:
                st->size = v;
                break;
        default:
                st->mtime_ns = v;
                break;
        }
        return 1;
}

int proto_decode_stat(const uint8_t *payload, size_t len, struct proto_stat *st)
{
        const unsigned all = 1u << PT_FILE_TYPE | 1u << PT_MODE | 1u << PT_SIZE | 1u << PT_MTIME_NS;
        struct proto_reader rd;
        struct proto_field f;
        unsigned seen = 0;
        int r;

        memset(st, 0, sizeof(*st));
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                r = get_meta(&f, &seen, st);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return (seen & all) == all ? 0 : -EPROTO;
}

/* A directory entry name the host can safely join to the listed path. */
static int name_ok(const char *s, size_t n)
{
        if (n == 0 || memchr(s, '/', n) != NULL)
                return 0;
        return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

void proto_put_entry(struct proto_writer *w, const struct proto_stat *st)
{
        size_t n = strnlen(st->name, sizeof(st->name));

        if (w->err != 0)
                return;
        if (n >= sizeof(st->name)) {
                w->err = -ENAMETOOLONG;
                return;
        }
        if (!name_ok(st->name, n) || st->file_type > PROTO_FT_LNK || st->mode > 07777) {
                w->err = -EINVAL;
                return;
        }
        proto_put_bytes(w, PT_NAME, st->name, n);
        put_meta(w, st);
}

int proto_next_entry(struct proto_reader *r, struct proto_stat *st)
{
        struct proto_field f;
        unsigned seen = 0;
        size_t mark;
        int ret;

        /* Skip unknown fields up to the group's name. */
        do {
                ret = proto_next(r, &f);
                if (ret <= 0)
                        return ret;
                if (f.tag == PT_FILE_TYPE || f.tag == PT_MODE || f.tag == PT_SIZE)
                        return -EPROTO; /* metadata without a name */
        } while (f.tag != PT_NAME);
        memset(st, 0, sizeof(*st));
        ret = proto_field_str(&f, st->name, sizeof(st->name));
        if (ret < 0)
                return ret;
        if (!name_ok(st->name, f.len))
                return -EPROTO;
        /* Metadata up to the next name, which is left for the next call. */
        for (;;) {
                mark = r->off;
                ret = proto_next(r, &f);
                if (ret < 0)
                        return ret;
                if (ret == 0)
                        return 1;
                if (f.tag == PT_NAME) {
                        r->off = mark;
                        return 1;
                }
                if (f.tag == PT_MTIME_NS)
                        continue; /* not part of an entry; tolerated like any unknown tag */
                ret = get_meta(&f, &seen, st);
                if (ret < 0)
                        return ret;
        }
}
