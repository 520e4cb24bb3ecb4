/* SPDX-License-Identifier: Apache-2.0 */
/* Frame codec: round trips, limits, writer errors, stream reassembly. */
#include "common/buf.h"
#include "proto/proto.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>

/* Decode the single frame in b; returns its payload, checks the header. */
static const uint8_t *one_frame(const struct buf *b, uint8_t type, uint32_t id, struct proto_hdr *h)
{
        CHECK_EQ_INT(proto_hdr_decode(buf_head(b), buf_size(b), h), 0);
        CHECK_EQ_INT(h->type, type);
        CHECK_EQ_INT(h->id, id);
        CHECK_EQ_INT(PROTO_HDR_SIZE + h->len, buf_size(b));
        return buf_head(b) + PROTO_HDR_SIZE;
}

static void put_field(struct buf *b, uint16_t tag, uint32_t len, const void *p, size_t n)
{
        uint8_t h[6] = {(uint8_t)tag,        (uint8_t)(tag >> 8),  (uint8_t)len,
                        (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};

        CHECK_EQ_INT(buf_append(b, h, sizeof(h)), 0);
        CHECK_EQ_INT(buf_append(b, p, n), 0);
}

TEST(header)
{
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        uint8_t raw[12] = {0x4c, 0x47, 2, 1, 0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0};

        CHECK_EQ_INT(proto_hdr_decode(raw, 11, &h), -EAGAIN);
        CHECK_EQ_INT(proto_hdr_decode(raw, 12, &h), 0);
        CHECK_EQ_INT(h.type, 2);
        CHECK_EQ_INT(h.flags, 1);
        CHECK_EQ_INT(h.id, 0x12345678);
        CHECK_EQ_INT(h.len, 0);
        raw[10] = 0x10; /* len = 1 MiB exactly: allowed */
        CHECK_EQ_INT(proto_hdr_decode(raw, 12, &h), 0);
        raw[8] = 1; /* one more: too big, but h is filled for skipping */
        CHECK_EQ_INT(proto_hdr_decode(raw, 12, &h), -EMSGSIZE);
        CHECK_EQ_INT(h.len, PROTO_MAX_PAYLOAD + 1);
        CHECK_EQ_INT(h.id, 0x12345678);
        raw[0] = 0x4d;
        CHECK_EQ_INT(proto_hdr_decode(raw, 12, &h), -EPROTO);

        CHECK_EQ_INT(proto_encode_empty(&b, PROTO_HELLO, 9), 0);
        one_frame(&b, PROTO_HELLO, 9, &h);
        CHECK_EQ_INT(h.len, 0);
        buf_free(&b);
}

TEST(exec_round_trip)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo \"$X\"", (char *)"", NULL};
        char *env[] = {(char *)"X=1", (char *)"EMPTY=", NULL};
        struct proto_exec x = {argv, 4, env, 2, (char *)"/tmp", 1500, PROTO_EXEC_STDIN, NULL}, y;
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        const uint8_t *p;

        CHECK_EQ_INT(proto_encode_exec(&b, 42, &x), 0);
        p = one_frame(&b, PROTO_EXEC, 42, &h);
        CHECK_EQ_INT(proto_decode_exec(p, h.len, &y), 0);
        CHECK_EQ_INT(y.argc, 4);
        for (int i = 0; i < 4; i++)
                CHECK_EQ_STR(y.argv[i], argv[i]);
        CHECK(y.argv[4] == NULL);
        CHECK_EQ_INT(y.envc, 2);
        CHECK_EQ_STR(y.env[0], "X=1");
        CHECK_EQ_STR(y.env[1], "EMPTY=");
        CHECK(y.env[2] == NULL);
        CHECK_EQ_STR(y.cwd, "/tmp");
        CHECK_EQ_INT(y.timeout_ms, 1500);
        CHECK_EQ_INT(y.flags, PROTO_EXEC_STDIN);
        proto_exec_free(&y);

        /* Defaults: no cwd, no env, no timeout. */
        buf_reset(&b);
        x.envc = 0;
        x.env = NULL;
        x.cwd = NULL;
        x.timeout_ms = x.flags = 0;
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), 0);
        p = one_frame(&b, PROTO_EXEC, 1, &h);
        CHECK_EQ_INT(proto_decode_exec(p, h.len, &y), 0);
        CHECK(y.cwd == NULL);
        CHECK_EQ_INT(y.envc, 0);
        CHECK(y.env != NULL && y.env[0] == NULL);
        proto_exec_free(&y);
        buf_free(&b);
}

TEST(exec_limits)
{
        static char *many[PROTO_MAX_ARGS + 2];
        static char longstr[PROTO_MAX_STR + 2];
        struct proto_exec x = {0}, y;
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        const uint8_t *p;

        for (size_t i = 0; i < PROTO_MAX_ARGS + 1; i++)
                many[i] = (char *)"a";
        x.argv = many;
        x.argc = PROTO_MAX_ARGS + 1;
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), -E2BIG);
        CHECK_EQ_INT(buf_size(&b), 0);
        x.argc = PROTO_MAX_ARGS;
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), 0);
        buf_reset(&b);
        x.argc = 0;
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), -EINVAL);

        /* A string of exactly PROTO_MAX_STR passes, one more fails. */
        memset(longstr, 'x', PROTO_MAX_STR);
        x.argv = (char *[]){longstr, NULL};
        x.argc = 1;
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), 0);
        p = one_frame(&b, PROTO_EXEC, 1, &h);
        CHECK_EQ_INT(proto_decode_exec(p, h.len, &y), 0);
        CHECK_EQ_INT(strlen(y.argv[0]), PROTO_MAX_STR);
        proto_exec_free(&y);
        buf_reset(&b);
        longstr[PROTO_MAX_STR] = 'x';
        CHECK_EQ_INT(proto_encode_exec(&b, 1, &x), -ENAMETOOLONG);
        CHECK_EQ_INT(buf_size(&b), 0); /* rolled back */

        /* Hand-made payloads the encoder refuses to make. */
        buf_reset(&b);
        for (size_t i = 0; i < PROTO_MAX_ARGS + 1; i++)
                put_field(&b, PT_ENV, 3, "A=1", 3);
        put_field(&b, PT_ARG, 2, "ls", 2);
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), -E2BIG);
        buf_reset(&b);
        put_field(&b, PT_ARG, PROTO_MAX_STR + 1, longstr, PROTO_MAX_STR + 1);
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), -ENAMETOOLONG);
        buf_reset(&b);
        put_field(&b, PT_ARG, 3, "l\0s", 3);
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), -EPROTO);
        buf_reset(&b);
        put_field(&b, PT_ARG, 2, "ls", 2);
        put_field(&b, PT_TIMEOUT_MS, 4, "\1\0\0\0", 4); /* u64 must be 8 bytes */
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), -EPROTO);
        buf_reset(&b);
        put_field(&b, PT_ARG, 2, "ls", 2);
        put_field(&b, PT_CWD, 1, "/", 1);
        put_field(&b, PT_CWD, 4, "/tmp", 4); /* single field twice */
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), -EPROTO);
        buf_reset(&b);
        put_field(&b, 999, 3, "new", 3); /* unknown tags are skipped */
        put_field(&b, PT_ARG, 2, "ls", 2);
        CHECK_EQ_INT(proto_decode_exec(buf_head(&b), buf_size(&b), &y), 0);
        CHECK_EQ_STR(y.argv[0], "ls");
        proto_exec_free(&y);
        CHECK_EQ_INT(proto_decode_exec(NULL, 0, &y), -EPROTO); /* no argv */
        buf_free(&b);
}

TEST(truncated_fields)
{
        struct buf b = BUF_INIT;
        struct proto_reader r;
        struct proto_field f;
        struct proto_exec y;

        put_field(&b, PT_ARG, 2, "ls", 2);
        /* Every strict prefix that cuts a field is malformed. */
        for (size_t n = 1; n < buf_size(&b); n++) {
                proto_reader_init(&r, buf_head(&b), n);
                CHECK_EQ_INT(proto_next(&r, &f), -EPROTO);
                CHECK_EQ_INT(proto_decode_exec(buf_head(&b), n, &y), -EPROTO);
        }
        proto_reader_init(&r, buf_head(&b), buf_size(&b));
        CHECK_EQ_INT(proto_next(&r, &f), 1);
        CHECK_EQ_INT(f.tag, PT_ARG);
        CHECK_EQ_INT(f.len, 2);
        CHECK_EQ_INT(proto_next(&r, &f), 0);
        /* A length that claims more than is there, including near 4 GiB. */
        buf_reset(&b);
        put_field(&b, PT_ARG, 0xfffffffau, "ls", 2);
        proto_reader_init(&r, buf_head(&b), buf_size(&b));
        CHECK_EQ_INT(proto_next(&r, &f), -EPROTO);
        buf_free(&b);
}

TEST(field_str_and_u64)
{
        struct proto_field f = {PT_PATH, 3, (const uint8_t *)"abc"};
        char out[4];
        uint64_t v;

        CHECK_EQ_INT(proto_field_str(&f, out, sizeof(out)), 0);
        CHECK_EQ_STR(out, "abc");
        CHECK_EQ_INT(proto_field_str(&f, out, 3), -ENAMETOOLONG);
        f.val = (const uint8_t *)"a\0c";
        CHECK_EQ_INT(proto_field_str(&f, out, sizeof(out)), -EPROTO);
        f.len = 0;
        CHECK_EQ_INT(proto_field_str(&f, out, sizeof(out)), 0);
        CHECK_EQ_STR(out, "");
        f.val = (const uint8_t *)"\x01\x02\x03\x04\x05\x06\x07\x08";
        f.len = 8;
        CHECK_EQ_INT(proto_field_u64(&f, &v), 0);
        CHECK(v == 0x0807060504030201ull);
        f.len = 7;
        CHECK_EQ_INT(proto_field_u64(&f, &v), -EPROTO);
}

TEST(exit_error_data_round_trip)
{
        struct proto_exit e = {3, 0, 0}, e2, sig = {0, 9, PROTO_EXIT_SIGNALED | PROTO_EXIT_TIMEOUT};
        struct proto_error er;
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        const uint8_t *p, *d;
        unsigned stream;
        size_t n;
        char longmsg[2000];

        CHECK_EQ_INT(proto_encode_exit(&b, 5, &e), 0);
        p = one_frame(&b, PROTO_EXIT, 5, &h);
        CHECK_EQ_INT(proto_decode_exit(p, h.len, &e2), 0);
        CHECK_EQ_INT(e2.exit_code, 3);
        CHECK_EQ_INT(e2.flags, 0);
        buf_reset(&b);
        CHECK_EQ_INT(proto_encode_exit(&b, 5, &sig), 0);
        p = one_frame(&b, PROTO_EXIT, 5, &h);
        CHECK_EQ_INT(proto_decode_exit(p, h.len, &e2), 0);
        CHECK_EQ_INT(e2.signo, 9);
        CHECK_EQ_INT(e2.flags, PROTO_EXIT_SIGNALED | PROTO_EXIT_TIMEOUT);
        buf_reset(&b);
        e.exit_code = 256;
        CHECK_EQ_INT(proto_encode_exit(&b, 5, &e), -EINVAL);
        CHECK_EQ_INT(proto_decode_exit(NULL, 0, &e2), -EPROTO); /* neither code nor signal */

        CHECK_EQ_INT(proto_encode_error(&b, 0, EPROTO, "bad magic"), 0);
        p = one_frame(&b, PROTO_ERROR, 0, &h);
        CHECK_EQ_INT(proto_decode_error(p, h.len, &er), 0);
        CHECK_EQ_INT(er.errnum, EPROTO);
        CHECK_EQ_STR(er.message, "bad magic");
        buf_reset(&b);
        memset(longmsg, 'm', sizeof(longmsg) - 1);
        longmsg[sizeof(longmsg) - 1] = '\0';
        CHECK_EQ_INT(proto_encode_error(&b, 1, ENOENT, longmsg), 0);
        p = one_frame(&b, PROTO_ERROR, 1, &h);
        CHECK_EQ_INT(proto_decode_error(p, h.len, &er), 0);
        CHECK_EQ_INT(strlen(er.message), sizeof(er.message) - 1); /* truncated */
        buf_reset(&b);
        CHECK_EQ_INT(proto_encode_error(&b, 1, 0, "x"), -EINVAL);

        CHECK_EQ_INT(proto_encode_data(&b, 8, 2, "err", 3), 0);
        p = one_frame(&b, PROTO_DATA, 8, &h);
        CHECK_EQ_INT(proto_decode_data(p, h.len, &stream, &d, &n), 0);
        CHECK_EQ_INT(stream, 2);
        CHECK(n == 3 && memcmp(d, "err", 3) == 0);
        buf_reset(&b);
        CHECK_EQ_INT(proto_encode_stdin(&b, 8, "in", 2, 1), 0);
        p = one_frame(&b, PROTO_STDIN, 8, &h);
        CHECK_EQ_INT(h.flags, PROTO_F_EOF);
        CHECK_EQ_INT(proto_decode_data(p, h.len, &stream, &d, &n), 0);
        CHECK(stream == 0 && n == 2 && memcmp(d, "in", 2) == 0);
        buf_reset(&b);
        CHECK_EQ_INT(proto_encode_data(&b, 8, 1, longmsg, PROTO_MAX_CHUNK + 1), -EMSGSIZE);
        CHECK_EQ_INT(proto_encode_data(&b, 8, 3, "x", 1), -EINVAL);
        CHECK_EQ_INT(buf_size(&b), 0);
        buf_free(&b);
}

TEST(path_write_stat_hello_round_trip)
{
        struct proto_path_req r = {.offset = 10, .length = 20}, r2;
        struct proto_write_file w = {.mode = 0600, .data = (const uint8_t *)"hi", .len = 2}, w2;
        struct proto_stat st = {"", PROTO_FT_DIR, 01755, 4096, 123456789}, st2;
        struct proto_hello he = {PROTO_VERSION, "lg-agent", "6.1.0-cloud"}, he2;
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        const uint8_t *p;
        uint64_t v;

        snprintf(r.path, sizeof(r.path), "/etc/hostname");
        CHECK_EQ_INT(proto_encode_path_req(&b, PROTO_READ_FILE, 3, &r), 0);
        p = one_frame(&b, PROTO_READ_FILE, 3, &h);
        CHECK_EQ_INT(proto_decode_path_req(p, h.len, &r2), 0);
        CHECK_EQ_STR(r2.path, "/etc/hostname");
        CHECK(r2.offset == 10 && r2.length == 20);
        CHECK_EQ_INT(proto_decode_path_req(NULL, 0, &r2), -EPROTO); /* no path */

        buf_reset(&b);
        snprintf(w.path, sizeof(w.path), "/work/a.txt");
        CHECK_EQ_INT(proto_encode_write_file(&b, 4, &w), 0);
        p = one_frame(&b, PROTO_WRITE_FILE, 4, &h);
        CHECK_EQ_INT(proto_decode_write_file(p, h.len, &w2), 0);
        CHECK_EQ_STR(w2.path, "/work/a.txt");
        CHECK(w2.mode == 0600 && w2.len == 2 && memcmp(w2.data, "hi", 2) == 0);
        buf_reset(&b);
        w.len = PROTO_MAX_FILE + 1;
        CHECK_EQ_INT(proto_encode_write_file(&b, 4, &w), -EMSGSIZE);

        CHECK_EQ_INT(proto_encode_stat(&b, 6, &st), 0);
        p = one_frame(&b, PROTO_OK, 6, &h);
        CHECK_EQ_INT(proto_decode_stat(p, h.len, &st2), 0);
        CHECK(st2.file_type == PROTO_FT_DIR && st2.mode == 01755 && st2.size == 4096 &&
              st2.mtime_ns == 123456789);
        CHECK_EQ_INT(proto_decode_u64_msg(p, h.len, PT_SIZE, &v), 0);
        CHECK_EQ_INT(v, 4096);
        CHECK_EQ_INT(proto_decode_u64_msg(p, h.len, PT_COUNT, &v), -EPROTO);

        buf_reset(&b);
        CHECK_EQ_INT(proto_encode_hello_reply(&b, PROTO_OK, 1, &he), 0);
        p = one_frame(&b, PROTO_OK, 1, &h);
        CHECK_EQ_INT(proto_decode_hello_reply(p, h.len, &he2), 0);
        CHECK_EQ_INT(he2.version, PROTO_VERSION);
        CHECK_EQ_STR(he2.name, "lg-agent");
        CHECK_EQ_STR(he2.kernel, "6.1.0-cloud");
        buf_free(&b);
}

TEST(entries_round_trip_and_hostile_names)
{
        static const char *const bad[] = {"", ".", "..", "a/b"};
        struct proto_stat e = {"file.txt", PROTO_FT_REG, 0644, 12, 0}, got;
        struct proto_writer w;
        struct proto_reader r;
        struct buf b = BUF_INIT;
        struct proto_hdr h;
        const uint8_t *p;

        proto_begin(&w, &b, PROTO_ENTRIES, 0, 2);
        proto_put_entry(&w, &e);
        snprintf(e.name, sizeof(e.name), "sub");
        e.file_type = PROTO_FT_DIR;
        e.mode = 0755;
        e.size = 0;
        proto_put_entry(&w, &e);
        CHECK(proto_payload_len(&w) <= 2 * PROTO_ENTRY_MAX);
        CHECK_EQ_INT(proto_end(&w), 0);
        p = one_frame(&b, PROTO_ENTRIES, 2, &h);
        proto_reader_init(&r, p, h.len);
        CHECK_EQ_INT(proto_next_entry(&r, &got), 1);
        CHECK_EQ_STR(got.name, "file.txt");
        CHECK(got.file_type == PROTO_FT_REG && got.mode == 0644 && got.size == 12);
        CHECK_EQ_INT(proto_next_entry(&r, &got), 1);
        CHECK_EQ_STR(got.name, "sub");
        CHECK(got.file_type == PROTO_FT_DIR && got.mode == 0755);
        CHECK_EQ_INT(proto_next_entry(&r, &got), 0);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                buf_reset(&b);
                snprintf(e.name, sizeof(e.name), "%s", bad[i]);
                proto_begin(&w, &b, PROTO_ENTRIES, 0, 2);
                proto_put_entry(&w, &e);
                CHECK_EQ_INT(proto_end(&w), -EINVAL);
                CHECK_EQ_INT(buf_size(&b), 0);
                /* And the decoder refuses them from a hostile peer. */
                put_field(&b, PT_NAME, (uint32_t)strlen(bad[i]), bad[i], strlen(bad[i]));
                proto_reader_init(&r, buf_head(&b), buf_size(&b));
                CHECK_EQ_INT(proto_next_entry(&r, &got), -EPROTO);
        }
        buf_reset(&b);
        put_field(&b, PT_SIZE, 8, "\0\0\0\0\0\0\0\0", 8); /* metadata without a name */
        proto_reader_init(&r, buf_head(&b), buf_size(&b));
        CHECK_EQ_INT(proto_next_entry(&r, &got), -EPROTO);
        buf_free(&b);
}

TEST(writer_sticky_error_and_rollback)
{
        static uint8_t big[PROTO_MAX_PAYLOAD];
        struct buf b = BUF_INIT;
        struct proto_writer w;
        struct proto_hdr h;
        size_t before;

        /* A complete frame already in the buffer must survive a failed one. */
        CHECK_EQ_INT(proto_encode_empty(&b, PROTO_HELLO, 1), 0);
        before = buf_size(&b);
        proto_begin(&w, &b, PROTO_DATA, 0, 2);
        proto_put_u64(&w, PT_STREAM, 1);
        proto_put_bytes(&w, PT_DATA, big, sizeof(big)); /* 6 + 1 MiB > the limit */
        CHECK_EQ_INT(w.err, -EMSGSIZE);
        proto_put_u64(&w, PT_SIZE, 1); /* no-op after the error */
        CHECK_EQ_INT(proto_end(&w), -EMSGSIZE);
        CHECK_EQ_INT(buf_size(&b), before);
        one_frame(&b, PROTO_HELLO, 1, &h);

        /* Exactly at the limit is fine. */
        buf_reset(&b);
        proto_begin(&w, &b, PROTO_DATA, 0, 3);
        proto_put_bytes(&w, PT_DATA, big, sizeof(big) - 6);
        CHECK_EQ_INT(proto_end(&w), 0);
        one_frame(&b, PROTO_DATA, 3, &h);
        CHECK_EQ_INT(h.len, PROTO_MAX_PAYLOAD);

        /* A buffer limit: -ENOBUFS, rolled back. */
        buf_free(&b);
        b.limit = 64;
        CHECK_EQ_INT(proto_encode_empty(&b, PROTO_HELLO, 1), 0);
        CHECK_EQ_INT(proto_encode_data(&b, 2, 1, big, 100), -ENOBUFS);
        CHECK_EQ_INT(buf_size(&b), PROTO_HDR_SIZE);
        /* With consumed bytes at the head, offsets stay relative to the head. */
        buf_consume(&b, 4);
        CHECK_EQ_INT(proto_encode_data(&b, 2, 1, big, 100), -ENOBUFS);
        CHECK_EQ_INT(buf_size(&b), PROTO_HDR_SIZE - 4);
        buf_free(&b);
}

/* Feed a stream byte by byte; collect frame ids and results. */
TEST(rx_reassembly_byte_by_byte)
{
        char *argv[] = {(char *)"echo", (char *)"hi", NULL};
        struct proto_exec x = {argv, 2, NULL, 0, NULL, 0, 0, NULL};
        struct buf s = BUF_INIT;
        struct proto_rx rx;
        struct proto_hdr h;
        const uint8_t *p;
        uint32_t ids[8];
        int n = 0, r;

        CHECK_EQ_INT(proto_encode_empty(&s, PROTO_HELLO, 1), 0);
        CHECK_EQ_INT(proto_encode_exec(&s, 2, &x), 0);
        CHECK_EQ_INT(proto_encode_data(&s, 3, 1, "abc", 3), 0);
        CHECK_EQ_INT(proto_encode_empty(&s, PROTO_SHUTDOWN, 4), 0);
        CHECK_EQ_INT(proto_rx_init(&rx), 0);
        for (size_t i = 0; i < buf_size(&s); i++) {
                CHECK_EQ_INT(proto_rx_feed(&rx, buf_head(&s) + i, 1), 0);
                while ((r = proto_rx_next(&rx, &h, &p)) == 1) {
                        if (n < 8)
                                ids[n++] = h.id;
                        if (h.type == PROTO_EXEC) {
                                struct proto_exec y;

                                CHECK_EQ_INT(proto_decode_exec(p, h.len, &y), 0);
                                CHECK_EQ_STR(y.argv[1], "hi");
                                proto_exec_free(&y);
                        }
                }
                CHECK_EQ_INT(r, 0);
        }
        CHECK_EQ_INT(n, 4);
        for (int i = 0; i < n; i++)
                CHECK_EQ_INT(ids[i], (uint32_t)i + 1);
        proto_rx_free(&rx);
        buf_free(&s);
}

TEST(rx_oversized_skip_and_bad_magic)
{
        static uint8_t junk[PROTO_MAX_PAYLOAD + 5000];
        uint8_t hdr[12] = {0x4c, 0x47, PROTO_EXEC, 0, 7, 0, 0, 0};
        uint32_t len = sizeof(junk);
        struct buf s = BUF_INIT;
        struct proto_rx rx;
        struct proto_hdr h;
        const uint8_t *p;
        size_t off = 0;
        int got_err = 0, got_hello = 0, r;

        memcpy(hdr + 8, &len, 4);         /* little-endian host */
        memset(junk, 0x4c, sizeof(junk)); /* looks like magic: must still be skipped */
        CHECK_EQ_INT(buf_append(&s, hdr, sizeof(hdr)), 0);
        CHECK_EQ_INT(buf_append(&s, junk, sizeof(junk)), 0);
        CHECK_EQ_INT(proto_encode_empty(&s, PROTO_HELLO, 8), 0);
        CHECK_EQ_INT(proto_rx_init(&rx), 0);
        /* Feed in awkward pieces, never more than the reassembler has room for. */
        while (off < buf_size(&s)) {
                size_t room = proto_rx_room(&rx), n = buf_size(&s) - off;

                if (n > 7777)
                        n = 7777;
                if (n > room)
                        n = room;
                CHECK(n > 0);
                CHECK_EQ_INT(proto_rx_feed(&rx, buf_head(&s) + off, n), 0);
                off += n;
                while ((r = proto_rx_next(&rx, &h, &p)) != 0) {
                        if (r == -EMSGSIZE) {
                                CHECK_EQ_INT(h.id, 7);
                                got_err++;
                        } else if (r == 1) {
                                CHECK_EQ_INT(h.id, 8);
                                got_hello++;
                        } else {
                                CHECK(!"unexpected");
                                break;
                        }
                }
                CHECK(buf_size(rx.in) <= PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
        }
        CHECK_EQ_INT(got_err, 1);
        CHECK_EQ_INT(got_hello, 1);

        /* Bad magic is reported until the caller resets. */
        CHECK_EQ_INT(proto_rx_feed(&rx, "XXXXXXXXXXXXXX", 14), 0);
        CHECK_EQ_INT(proto_rx_next(&rx, &h, &p), -EPROTO);
        CHECK_EQ_INT(proto_rx_next(&rx, &h, &p), -EPROTO);
        proto_rx_reset(&rx);
        CHECK_EQ_INT(proto_rx_next(&rx, &h, &p), 0);
        buf_reset(&s);
        CHECK_EQ_INT(proto_encode_empty(&s, PROTO_HELLO, 9), 0);
        CHECK_EQ_INT(proto_rx_feed(&rx, buf_head(&s), buf_size(&s)), 0);
        CHECK_EQ_INT(proto_rx_next(&rx, &h, &p), 1);
        CHECK_EQ_INT(h.id, 9);

        /* The bound: more than one maximal frame cannot be buffered. */
        proto_rx_reset(&rx);
        CHECK_EQ_INT(proto_rx_feed(&rx, junk, PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD + 1), -ENOBUFS);
        proto_rx_free(&rx);
        buf_free(&s);
}

TEST(reseed_round_trip_and_limits)
{
        static struct proto_reseed r, d;
        struct buf b = BUF_INIT;
        struct proto_hdr h;

        for (size_t i = 0; i < 64; i++)
                r.entropy[i] = (uint8_t)(i * 7);
        r.entropy_len = 64;
        r.time_ns = 1795333000123456789ull;
        snprintf(r.id, sizeof(r.id), "sb-0123456789ab");
        CHECK_EQ_INT(proto_encode_reseed(&b, 9, &r), 0);
        CHECK_EQ_INT(proto_hdr_decode(buf_head(&b), buf_size(&b), &h), 0);
        CHECK_EQ_INT(h.type, PROTO_RESEED);
        CHECK_EQ_INT(proto_decode_reseed(buf_head(&b) + PROTO_HDR_SIZE, h.len, &d), 0);
        CHECK_EQ_INT(d.entropy_len, 64);
        CHECK(memcmp(d.entropy, r.entropy, 64) == 0);
        CHECK_EQ_INT(d.time_ns, r.time_ns);
        CHECK_EQ_STR(d.id, "sb-0123456789ab");

        /* Too little entropy is refused on both sides. */
        r.entropy_len = PROTO_RESEED_MIN - 1;
        CHECK_EQ_INT(proto_encode_reseed(&b, 9, &r), -EINVAL);
        buf_reset(&b);
        struct proto_writer w;
        proto_begin(&w, &b, PROTO_RESEED, 0, 9);
        proto_put_bytes(&w, PT_DATA, r.entropy, PROTO_RESEED_MIN - 1);
        proto_put_u64(&w, PT_TIME_NS, 1);
        proto_put_str(&w, PT_NAME, "x");
        CHECK_EQ_INT(proto_end(&w), 0);
        CHECK_EQ_INT(
            proto_decode_reseed(buf_head(&b) + PROTO_HDR_SIZE, buf_size(&b) - PROTO_HDR_SIZE, &d),
            -EPROTO);
        /* A missing id is refused. */
        buf_reset(&b);
        proto_begin(&w, &b, PROTO_RESEED, 0, 9);
        proto_put_bytes(&w, PT_DATA, r.entropy, PROTO_RESEED_MIN);
        proto_put_u64(&w, PT_TIME_NS, 1);
        CHECK_EQ_INT(proto_end(&w), 0);
        CHECK_EQ_INT(
            proto_decode_reseed(buf_head(&b) + PROTO_HDR_SIZE, buf_size(&b) - PROTO_HDR_SIZE, &d),
            -EPROTO);
        buf_free(&b);
}
