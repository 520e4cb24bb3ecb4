/* SPDX-License-Identifier: Apache-2.0 */
#include "common/err.h"
#include "mcp/http_guard.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(host_must_name_loopback_and_our_port)
{
        CHECK(http_guard_host_ok("127.0.0.1:8080", 8080));
        CHECK(http_guard_host_ok("localhost:8080", 8080));
        CHECK(http_guard_host_ok("LOCALHOST:8080", 8080));
        CHECK(http_guard_host_ok("[::1]:8080", 8080));
        CHECK(!http_guard_host_ok(NULL, 8080));
        CHECK(!http_guard_host_ok("127.0.0.1", 8080)); /* no port: not what a client sends us */
        CHECK(!http_guard_host_ok("127.0.0.1:8081", 8080));
        CHECK(!http_guard_host_ok("127.0.0.10:8080", 8080));
        CHECK(!http_guard_host_ok("localhost.evil.example:8080", 8080));
        CHECK(!http_guard_host_ok("evil.example:8080", 8080));
        CHECK(!http_guard_host_ok("127.0.0.1:8080x", 8080));
        CHECK(!http_guard_host_ok("127.0.0.1:", 8080));
        CHECK(!http_guard_host_ok("127.0.0.1:+8080", 8080));
}

TEST(origin_is_absent_or_loopback)
{
        CHECK(http_guard_origin_ok(NULL));
        CHECK(http_guard_origin_ok("http://localhost"));
        CHECK(http_guard_origin_ok("http://localhost:5173"));
        CHECK(http_guard_origin_ok("https://127.0.0.1:8443"));
        CHECK(http_guard_origin_ok("http://[::1]:1"));
        CHECK(!http_guard_origin_ok("null"));
        CHECK(!http_guard_origin_ok(""));
        CHECK(!http_guard_origin_ok("http://evil.example"));
        CHECK(!http_guard_origin_ok("http://localhost.evil.example"));
        CHECK(!http_guard_origin_ok("http://127.0.0.1.nip.io"));
        CHECK(!http_guard_origin_ok("file://localhost"));
        CHECK(!http_guard_origin_ok("http://localhost:99999"));
}

TEST(bearer_token)
{
        const char *tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char h[128];

        snprintf(h, sizeof(h), "Bearer %s", tok);
        CHECK(http_guard_bearer_ok(h, tok));
        snprintf(h, sizeof(h), "bearer %s", tok);
        CHECK(http_guard_bearer_ok(h, tok));
        CHECK(!http_guard_bearer_ok(NULL, tok));
        CHECK(!http_guard_bearer_ok("Bearer ", tok));
        CHECK(!http_guard_bearer_ok("Basic 0123", tok));
        snprintf(h, sizeof(h), "Bearer %sx", tok);
        CHECK(!http_guard_bearer_ok(h, tok));
        snprintf(h, sizeof(h), "Bearer %.63s", tok);
        CHECK(!http_guard_bearer_ok(h, tok));
        snprintf(h, sizeof(h), "Bearer %.63sx", tok);
        CHECK(!http_guard_bearer_ok(h, tok));
}

TEST(accept_lists)
{
        CHECK(http_guard_accepts(NULL, "application/json"));
        CHECK(http_guard_accepts("application/json, text/event-stream", "text/event-stream"));
        CHECK(http_guard_accepts("text/event-stream;q=0.9,application/json", "application/json"));
        CHECK(http_guard_accepts("*/*", "text/event-stream"));
        CHECK(http_guard_accepts("text/*", "text/event-stream"));
        CHECK(!http_guard_accepts("text/*", "application/json"));
        CHECK(!http_guard_accepts("application/json", "text/event-stream"));
        CHECK(!http_guard_accepts("application/jsonx", "application/json"));
        CHECK(!http_guard_accepts("", "application/json"));
}

TEST(listen_address_is_loopback_only)
{
        struct sockaddr_storage ss;
        socklen_t len;
        struct lg_err *err = NULL;

        CHECK_EQ_INT(http_guard_parse_addr("127.0.0.1:8080", &ss, &len, &err), 0);
        CHECK_EQ_INT(ss.ss_family, AF_INET);
        CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
        CHECK_EQ_INT(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);
        CHECK_EQ_INT(http_guard_parse_addr("localhost:0", &ss, &len, &err), 0);
        CHECK_EQ_INT(http_guard_parse_addr("[::1]:9", &ss, &len, &err), 0);
        CHECK_EQ_INT(ss.ss_family, AF_INET6);
        CHECK_EQ_INT(len, sizeof(struct sockaddr_in6));
        const char *bad[] = {"0.0.0.0:80",      "192.168.1.2:80", "127.0.0.1", "127.0.0.1:",
                             "127.0.0.1:65536", "127.0.0.1:80x",  "[::]:80",   "evil:80"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK(http_guard_parse_addr(bad[i], &ss, &len, &err) < 0);
                CHECK(err != NULL && err->kind == LG_EK_USAGE);
                err_free(&err);
        }
}

TEST(token_made_once_private_and_checked)
{
        char dir[] = "/tmp/lg-guard-XXXXXX", path[64], a[HTTP_TOKEN_LEN + 1], b[HTTP_TOKEN_LEN + 1];
        struct lg_err *err = NULL;
        struct stat st;
        FILE *f;

        CHECK(mkdtemp(dir) != NULL);
        CHECK_EQ_INT(http_guard_token(dir, a, &err), 0);
        CHECK_EQ_INT(strlen(a), HTTP_TOKEN_LEN);
        snprintf(path, sizeof(path), "%s/mcp-http.token", dir);
        CHECK_EQ_INT(stat(path, &st), 0);
        CHECK_EQ_INT(st.st_mode & 0777, 0600);
        CHECK_EQ_INT(http_guard_token(dir, b, &err), 0);
        CHECK_EQ_STR(a, b);
        /* A file that is not a token is an error, never a weak token. */
        f = fopen(path, "w");
        CHECK(f != NULL);
        fputs("hunter2\n", f);
        fclose(f);
        CHECK(http_guard_token(dir, b, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_USAGE);
        err_free(&err);
        unlink(path);
        rmdir(dir);
}
