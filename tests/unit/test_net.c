/* SPDX-License-Identifier: Apache-2.0 */
/* The egress policy's parsers: allow-list, request heads, TLS SNI (src/net). */
#include "net/allowlist.h"
#include "net/http_head.h"
#include "net/tls_sni.h"
#include "unit.h"

#include <errno.h>
#include <stdint.h>

static struct net_allowlist al;

static int allowed(const char *spec, const char *host, unsigned port)
{
        char why[256];

        if (net_allowlist_parse(spec, &al, why, sizeof(why)) < 0)
                return -1;
        return net_allowed(&al, host, port);
}

TEST(allowlist_parse_accepts_and_refuses)
{
        static const char *const good[] = {
            "example.com", "registry.npmjs.org:443", "*.npmjs.org", "10.0.0.1:8080",
            "[::1]:3128",  "Example.COM.",           "a-b.c_d.io",  "a.com,b.org:81,*.c.net",
        };
        static const char *const bad[] = {
            "",
            "example.com,",
            ",example.com",
            "exa mple.com",
            "user@example.com",
            "ex%41.com",
            "example.com:0",
            "example.com:65536",
            "example.com:08",
            "*.",
            "*.10.0.0.1",
            "*.[::1]",
            "1.2.3",
            "01.2.3.4",
            "a..b",
            "-a.com",
            "a-.com",
            "[::1",
            "[::1]x",
            "*",
            "*example.com",
            "exa/mple.com",
            "example.com:",
            "256.1.1.1",
        };
        char why[256];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                int r = net_allowlist_parse(good[i], &al, why, sizeof(why));

                if (r != 0)
                        fprintf(stderr, "    refused good '%s': %s\n", good[i], why);
                CHECK_EQ_INT(r, 0);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = net_allowlist_parse(bad[i], &al, why, sizeof(why));

                if (r == 0)
                        fprintf(stderr, "    accepted bad '%s'\n", bad[i]);
                CHECK(r < 0 && why[0] != '\0');
        }
}

TEST(allowlist_matching_traps)
{
        static const struct {
                const char *spec, *host;
                unsigned port;
                int want;
        } cases[] = {
            {"example.com", "example.com", 443, 1},
            {"example.com", "example.com", 80, 1},
            {"example.com", "example.com", 22, 0}, /* no port: web ports only */
            {"example.com:22", "example.com", 22, 1},
            {"example.com:22", "example.com", 443, 0},
            {"example.com", "www.example.com", 443, 0}, /* exact means exact */
            {"*.example.com", "www.example.com", 443, 1},
            {"*.example.com", "a.b.example.com", 443, 1},
            {"*.example.com", "example.com", 443, 0},          /* the apex is not below itself */
            {"*.example.com", "badexample.com", 443, 0},       /* label boundary */
            {"*.example.com", "example.com.evil.net", 443, 0}, /* suffix, not prefix */
            {"example.com", "example.com.evil.net", 443, 0},
            {"Example.COM.", "example.com", 443, 1}, /* normalised on both sides */
            {"10.0.0.1", "10.0.0.1", 80, 1},
            {"10.0.0.1", "10.0.0.10", 80, 0},
            {"[::1]:3128", "[::1]", 3128, 1},
            {"a.com,b.org:81", "b.org", 81, 1},
            {"a.com,b.org:81", "b.org", 80, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int got = allowed(cases[i].spec, cases[i].host, cases[i].port);

                if (got != cases[i].want)
                        fprintf(stderr, "    %s vs %s:%u: got %d\n", cases[i].spec, cases[i].host,
                                cases[i].port, got);
                CHECK_EQ_INT(got, cases[i].want);
        }
}

static int parse(const char *head, struct net_req *r)
{
        return net_http_parse(head, strlen(head), r);
}

TEST(request_heads)
{
        static const struct {
                const char *head;
                int want;
                const char *host;
                unsigned port;
                enum net_req_kind kind;
        } cases[] = {
            {"CONNECT registry.npmjs.org:443 HTTP/1.1\r\nHost: registry.npmjs.org:443\r\n\r\n", 0,
             "registry.npmjs.org", 443, NET_REQ_CONNECT},
            {"CONNECT Example.Com.:8443 HTTP/1.1\r\n\r\n", 0, "example.com", 8443, NET_REQ_CONNECT},
            {"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", 0, "[::1]", 443, NET_REQ_CONNECT},
            {"GET http://deb.debian.org/debian/ HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n", 0,
             "deb.debian.org", 80, NET_REQ_PLAIN},
            {"GET http://h.io:8080 HTTP/1.0\r\n\r\n", 0, "h.io", 8080, NET_REQ_PLAIN},
            {"CONNECT example.com HTTP/1.1\r\n\r\n", -EINVAL, NULL, 0, 0},      /* port required */
            {"GET /path HTTP/1.1\r\nHost: a.com\r\n\r\n", -EINVAL, NULL, 0, 0}, /* origin form */
            {"GET https://a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET ftp://a.com/ HTTP/1.1\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\r\n\r\n", -EINVAL, NULL, 0, 0}, /* 1.1 needs Host */
            {"GET http://a.com/ HTTP/1.1\r\nHost: b.com\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\r\nHost: a.com:81\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\r\nHost: a.com\r\nHost: a.com\r\n\r\n", -EINVAL, NULL, 0,
             0},
            {"GET http://allowed.com@evil.com/ HTTP/1.1\r\nHost: evil.com\r\n\r\n", -EINVAL, NULL,
             0, 0},
            {"GET http://evil.com?.allowed.com/ HTTP/1.0\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://evil.com#.allowed.com/ HTTP/1.0\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://ev%69l.com/ HTTP/1.0\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/2.0\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET  http://a.com/ HTTP/1.0\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\r\nHost: a.com\r\n folded\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\r\nHost: a.com\r\nX: a\x01\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"GET http://a.com/ HTTP/1.1\nHost: a.com\n\n", -EAGAIN, NULL, 0, 0}, /* bare LF */
            {"CONNECT a.com:443 HTTP/1.1\r\n", -EAGAIN, NULL, 0, 0},
            {"CONNECT [::1] HTTP/1.1\r\n\r\n", -EINVAL, NULL, 0, 0}, /* found by fuzzing */
            {"CONNECT [:.3]:443 HTTP/1.1\r\n\r\n", -EINVAL, NULL, 0, 0},
            {"POST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nTransfer-Encoding: chunked\r\n\r\n",
             -EINVAL, NULL, 0, 0},
            {"POST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nContent-Length: 1\r\n"
             "Content-Length: 2\r\n\r\n",
             -EINVAL, NULL, 0, 0},
            {"POST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nContent-Length: 1x\r\n\r\n", -EINVAL,
             NULL, 0, 0},
        };
        struct net_req r;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int got = parse(cases[i].head, &r);

                if (got != cases[i].want)
                        fprintf(stderr, "    case %zu: got %d want %d\n", i, got, cases[i].want);
                CHECK_EQ_INT(got, cases[i].want);
                if (got == 0 && cases[i].want == 0) {
                        CHECK_EQ_STR(r.host, cases[i].host);
                        CHECK_EQ_INT(r.port, cases[i].port);
                        CHECK_EQ_INT(r.kind, cases[i].kind);
                        CHECK_EQ_INT(r.head_len, strlen(cases[i].head));
                }
        }
}

TEST(content_length_is_read)
{
        struct net_req r;

        CHECK_EQ_INT(
            parse("POST http://a.com/ HTTP/1.1\r\nHost: a.com\r\nContent-Length: 12\r\n\r\n", &r),
            0);
        CHECK_EQ_INT(r.content_length, 12);
        CHECK_EQ_INT(parse("GET http://a.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n", &r), 0);
        CHECK_EQ_INT(r.content_length, -1);
}

TEST(oversized_head_is_refused)
{
        static char big[NET_MAX_HEAD + 64];
        struct net_req r;

        memset(big, 'a', sizeof(big));
        memcpy(big, "GET http://a.com/ HTTP/1.1\r\nX: ", 31);
        CHECK_EQ_INT(net_http_parse(big, sizeof(big), &r), -EMSGSIZE);
        CHECK_EQ_INT(net_http_parse(big, 100, &r), -EAGAIN);
}

TEST(plain_request_rewritten_to_origin_form)
{
        const char *head = "GET http://a.com:8080/x?y=1 HTTP/1.1\r\nHost: a.com:8080\r\n"
                           "Proxy-Authorization: secret\r\nProxy-Connection: keep-alive\r\n"
                           "Connection: keep-alive\r\nAccept: */*\r\n\r\n";
        const char *bare = "GET http://a.com HTTP/1.0\r\n\r\n";
        char out[512];
        struct net_req r;
        int n;

        CHECK_EQ_INT(parse(head, &r), 0);
        n = net_http_rewrite(head, &r, out, sizeof(out));
        CHECK(n > 0);
        out[n > 0 ? n : 0] = '\0';
        CHECK_EQ_STR(out, "GET /x?y=1 HTTP/1.1\r\nHost: a.com:8080\r\nAccept: */*\r\n"
                          "Connection: close\r\n\r\n");
        CHECK_EQ_INT(parse(bare, &r), 0);
        n = net_http_rewrite(bare, &r, out, sizeof(out));
        out[n > 0 ? n : 0] = '\0';
        CHECK_EQ_STR(out, "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
        CHECK_EQ_INT(net_http_rewrite(head, &r, out, 10), -ENOSPC);
}

/* A minimal ClientHello carrying `name` as SNI (or none when NULL). */
static size_t client_hello(uint8_t *b, const char *name)
{
        size_t n = 0, hs, ext, exts;
        size_t nl = name ? strlen(name) : 0;

        b[n++] = 22, b[n++] = 3, b[n++] = 1, n += 2; /* record header, length later */
        hs = n;
        b[n++] = 1, n += 3;                                /* ClientHello, length later */
        b[n++] = 3, b[n++] = 3;                            /* version */
        memset(b + n, 7, 32), n += 32;                     /* random */
        b[n++] = 0;                                        /* session id */
        b[n++] = 0, b[n++] = 2, b[n++] = 0x13, b[n++] = 1; /* one cipher suite */
        b[n++] = 1, b[n++] = 0;                            /* null compression */
        exts = n, n += 2;
        b[n++] = 0, b[n++] = 23, b[n++] = 0, b[n++] = 0; /* an extension before SNI */
        if (name) {
                b[n++] = 0, b[n++] = 0; /* server_name */
                ext = n, n += 2;
                b[n++] = (uint8_t)((nl + 3) >> 8), b[n++] = (uint8_t)(nl + 3);
                b[n++] = 0, b[n++] = (uint8_t)(nl >> 8), b[n++] = (uint8_t)nl;
                memcpy(b + n, name, nl), n += nl;
                b[ext] = (uint8_t)((n - ext - 2) >> 8), b[ext + 1] = (uint8_t)(n - ext - 2);
        }
        b[exts] = (uint8_t)((n - exts - 2) >> 8), b[exts + 1] = (uint8_t)(n - exts - 2);
        b[hs + 1] = 0, b[hs + 2] = (uint8_t)((n - hs - 4) >> 8), b[hs + 3] = (uint8_t)(n - hs - 4);
        b[3] = (uint8_t)((n - 5) >> 8), b[4] = (uint8_t)(n - 5);
        return n;
}

TEST(tls_sni)
{
        uint8_t b[512];
        char host[300];
        size_t n = client_hello(b, "Registry.NPMJS.org");

        CHECK_EQ_INT(net_tls_sni(b, n, host, sizeof(host)), 0);
        CHECK_EQ_STR(host, "registry.npmjs.org");
        CHECK_EQ_INT(net_tls_sni(b, n - 1, host, sizeof(host)), -EAGAIN);
        CHECK_EQ_INT(net_tls_sni(b, 3, host, sizeof(host)), -EAGAIN);
        n = client_hello(b, NULL);
        CHECK_EQ_INT(net_tls_sni(b, n, host, sizeof(host)), -ENOENT);
        n = client_hello(b, "evil.com/x");
        CHECK_EQ_INT(net_tls_sni(b, n, host, sizeof(host)), -EINVAL);
        CHECK_EQ_INT(net_tls_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, host, sizeof(host)),
                     -EINVAL);
        /* The same hello split across two records (RFC 8446 5.1): still read. */
        {
                uint8_t split[600];
                size_t m = client_hello(b, "Split.Example"), body = m - 5;

                memcpy(split, "\x16\x03\x01\x00\x04", 5);
                memcpy(split + 5, b + 5, 4); /* the handshake header alone */
                split[9] = 0x16, split[10] = 3, split[11] = 1;
                split[12] = (uint8_t)((body - 4) >> 8), split[13] = (uint8_t)(body - 4);
                memcpy(split + 14, b + 9, body - 4);
                CHECK_EQ_INT(net_tls_sni(split, 14 + body - 4, host, sizeof(host)), 0);
                CHECK_EQ_STR(host, "split.example");
                CHECK_EQ_INT(net_tls_sni(split, 14 + body - 5, host, sizeof(host)), -EAGAIN);
        }
        /* An extension claiming more bytes than there are. */
        n = client_hello(b, "a.com");
        b[n - 8 - 2] = 0xff;
        CHECK_EQ_INT(net_tls_sni(b, n, host, sizeof(host)), -EINVAL);
}
