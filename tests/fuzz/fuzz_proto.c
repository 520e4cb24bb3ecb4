/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the frame codec. The input is a byte stream as a
 * peer would send it; it is fed to proto_rx in pieces whose sizes are drawn
 * from the input itself, and every frame that comes out is run through every
 * typed decoder (whatever its type: a hostile peer picks the type too). What
 * decodes is encoded again and decoded again, and must come back equal.
 * Any crash, sanitizer report or __builtin_trap() is a finding.
 */
#include "common/buf.h"
#include "proto/proto.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
        do {                                                                                       \
                if (!(c))                                                                          \
                        __builtin_trap();                                                          \
        } while (0)

static int str_eq(const char *a, const char *b)
{
        return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Encoded output of one re-encode step: a whole frame; returns its payload. */
static const uint8_t *frame_payload(struct buf *b, size_t *len)
{
        struct proto_hdr h;

        REQUIRE(proto_hdr_decode(buf_head(b), buf_size(b), &h) == 0);
        REQUIRE(PROTO_HDR_SIZE + h.len == buf_size(b));
        *len = h.len;
        return buf_head(b) + PROTO_HDR_SIZE;
}

static void check_exec(const uint8_t *p, size_t n, struct buf *b)
{
        struct proto_exec x, y;
        const uint8_t *q;
        size_t qn;

        if (proto_decode_exec(p, n, &x) != 0)
                return;
        REQUIRE(x.argc >= 1 && x.argv[x.argc] == NULL && x.env[x.envc] == NULL);
        REQUIRE(proto_encode_exec(b, 1, &x) == 0);
        q = frame_payload(b, &qn);
        REQUIRE(qn <= n);
        REQUIRE(proto_decode_exec(q, qn, &y) == 0);
        REQUIRE(x.argc == y.argc && x.envc == y.envc && str_eq(x.cwd, y.cwd));
        REQUIRE(x.timeout_ms == y.timeout_ms && x.flags == y.flags);
        for (size_t i = 0; i < x.argc; i++)
                REQUIRE(str_eq(x.argv[i], y.argv[i]));
        for (size_t i = 0; i < x.envc; i++)
                REQUIRE(str_eq(x.env[i], y.env[i]));
        proto_exec_free(&x);
        proto_exec_free(&y);
}

static void check_small(const uint8_t *p, size_t n, struct buf *b)
{
        struct proto_exit e, e2;
        struct proto_error er, er2;
        struct proto_hello h, h2;
        struct proto_stat st, st2;
        const uint8_t *q;
        size_t qn;

        if (proto_decode_exit(p, n, &e) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_exit(b, 1, &e) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_exit(q, qn, &e2) == 0);
                REQUIRE(e.exit_code == e2.exit_code && e.signo == e2.signo && e.flags == e2.flags);
        }
        if (proto_decode_error(p, n, &er) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_error(b, 1, er.errnum, er.message) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_error(q, qn, &er2) == 0);
                REQUIRE(er.errnum == er2.errnum && strcmp(er.message, er2.message) == 0);
        }
        if (proto_decode_hello_reply(p, n, &h) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_hello_reply(b, PROTO_OK, 1, &h) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_hello_reply(q, qn, &h2) == 0);
                REQUIRE(h.version == h2.version && strcmp(h.name, h2.name) == 0 &&
                        strcmp(h.kernel, h2.kernel) == 0);
        }
        if (proto_decode_stat(p, n, &st) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_stat(b, 1, &st) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_stat(q, qn, &st2) == 0);
                REQUIRE(st.file_type == st2.file_type && st.mode == st2.mode &&
                        st.size == st2.size && st.mtime_ns == st2.mtime_ns);
        }
        for (uint16_t tag = PT_VERSION; tag <= PT_COUNT; tag++) {
                uint64_t v, v2;

                if (proto_decode_u64_msg(p, n, tag, &v) != 0)
                        continue;
                buf_reset(b);
                REQUIRE(proto_encode_u64_msg(b, PROTO_OK, 1, tag, v) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_u64_msg(q, qn, tag, &v2) == 0 && v == v2);
        }
}

static void check_data_and_paths(const uint8_t *p, size_t n, struct buf *b)
{
        static struct proto_path_req r, r2;
        static struct proto_write_file w, w2;
        const uint8_t *d, *d2, *q;
        unsigned s, s2;
        size_t dn, dn2, qn;

        if (proto_decode_data(p, n, &s, &d, &dn) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_data(b, 1, s, d, dn) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_data(q, qn, &s2, &d2, &dn2) == 0);
                REQUIRE(s == s2 && dn == dn2 && (dn == 0 || memcmp(d, d2, dn) == 0));
        }
        if (proto_decode_path_req(p, n, &r) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_path_req(b, PROTO_READ_FILE, 1, &r) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_path_req(q, qn, &r2) == 0);
                REQUIRE(strcmp(r.path, r2.path) == 0 && r.offset == r2.offset &&
                        r.length == r2.length);
        }
        if (proto_decode_write_file(p, n, &w) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_write_file(b, 1, &w) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_write_file(q, qn, &w2) == 0);
                REQUIRE(strcmp(w.path, w2.path) == 0 && w.mode == w2.mode && w.len == w2.len &&
                        (w.len == 0 || memcmp(w.data, w2.data, w.len) == 0));
        }
        static struct proto_reseed rs, rs2;
        if (proto_decode_reseed(p, n, &rs) == 0) {
                buf_reset(b);
                REQUIRE(proto_encode_reseed(b, 1, &rs) == 0);
                q = frame_payload(b, &qn);
                REQUIRE(proto_decode_reseed(q, qn, &rs2) == 0);
                REQUIRE(rs.entropy_len == rs2.entropy_len && rs.time_ns == rs2.time_ns &&
                        strcmp(rs.id, rs2.id) == 0 &&
                        memcmp(rs.entropy, rs2.entropy, rs.entropy_len) == 0);
        }
}

static void check_entries(const uint8_t *p, size_t n, struct buf *b)
{
        struct proto_reader rd, rd2;
        struct proto_writer w;
        struct proto_stat st, st2;
        const uint8_t *q;
        size_t qn, count = 0;
        int r;

        buf_reset(b);
        proto_begin(&w, b, PROTO_ENTRIES, 0, 1);
        proto_reader_init(&rd, p, n);
        while ((r = proto_next_entry(&rd, &st)) == 1) {
                proto_put_entry(&w, &st);
                count++;
        }
        /* Name-only groups grow when re-encoded; past the frame limit there is nothing to compare.
         */
        if (proto_end(&w) != 0 || r != 0)
                return;
        q = frame_payload(b, &qn);
        proto_reader_init(&rd, p, n);
        proto_reader_init(&rd2, q, qn);
        while (count-- > 0) {
                REQUIRE(proto_next_entry(&rd, &st) == 1 && proto_next_entry(&rd2, &st2) == 1);
                REQUIRE(strcmp(st.name, st2.name) == 0 && st.file_type == st2.file_type &&
                        st.mode == st2.mode && st.size == st2.size);
        }
        REQUIRE(proto_next_entry(&rd2, &st2) == 0);
}

static void check_frame(const struct proto_hdr *h, const uint8_t *p, struct buf *b)
{
        struct proto_reader rd;
        struct proto_field f;
        char s[PROTO_MAX_STR + 1];
        uint64_t v;

        /* The raw field walk must stay inside the payload. */
        proto_reader_init(&rd, p, h->len);
        while (proto_next(&rd, &f) == 1) {
                REQUIRE(f.val >= p && f.val + f.len <= p + h->len);
                (void)proto_field_u64(&f, &v);
                (void)proto_field_str(&f, s, sizeof(s));
        }
        buf_reset(b);
        check_exec(p, h->len, b);
        check_small(p, h->len, b);
        check_data_and_paths(p, h->len, b);
        check_entries(p, h->len, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct buf b = BUF_INIT;
        struct proto_rx rx;
        struct proto_hdr h;
        const uint8_t *p;
        uint32_t rng;
        size_t off = 0;
        int r;

        if (size < 1 || proto_rx_init(&rx) != 0)
                return 0;
        rng = data[0] * 2654435761u + 1; /* split points: a function of the input, so replayable */
        while (off < size) {
                size_t n = 1 + (rng >> 24) % 64, room = proto_rx_room(&rx);

                rng = rng * 1103515245u + 12345u;
                if (n > size - off)
                        n = size - off;
                if (n > room)
                        n = room;
                REQUIRE(n > 0);
                REQUIRE(proto_rx_feed(&rx, data + off, n) == 0);
                off += n;
                while ((r = proto_rx_next(&rx, &h, &p)) != 0) {
                        if (r == -EPROTO) {
                                proto_rx_reset(&rx);
                                break;
                        }
                        if (r == 1)
                                check_frame(&h, p, &b);
                        else
                                REQUIRE(r == -EMSGSIZE && h.len > PROTO_MAX_PAYLOAD);
                }
        }
        proto_rx_free(&rx);
        buf_free(&b);
        return 0;
}
