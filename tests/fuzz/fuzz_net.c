/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the egress policy's parsers (src/net): the first
 * bytes a sandbox sends its proxy go through the request-head parser, the
 * rewrite and the SNI parser; the same bytes are also read as an
 * allow-list spec and a host. Every result that claims success is checked
 * for what it promises (a normalised host, a head within the input).
 */
#include "net/allowlist.h"
#include "net/http_head.h"
#include "net/tls_sni.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
        do {                                                                                       \
                if (!(c))                                                                          \
                        __builtin_trap();                                                          \
        } while (0)

/* A normalised host: lower-case, no '@', '%', '/', spaces or trailing dot. */
static void check_host(const char *h)
{
        size_t n = strlen(h);

        REQUIRE(n > 0 && n <= NET_MAX_HOST + 2);
        REQUIRE(strpbrk(h, "@%/ \t\r\n?#ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL);
        REQUIRE(h[n - 1] != '.');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct net_allowlist al;
        char *s = malloc(size + 1), host[NET_MAX_HOST + 3], why[256], out[NET_MAX_HEAD + 64];
        struct net_req req;

        if (s == NULL)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if (net_http_parse(s, size, &req) == 0) {
                REQUIRE(req.head_len <= size && req.line_len <= req.head_len);
                check_host(req.host);
                REQUIRE(req.port > 0 && req.port <= 65535);
                if (req.kind == NET_REQ_PLAIN) {
                        int n = net_http_rewrite(s, &req, out, sizeof(out));

                        REQUIRE(n == -ENOSPC || (n > 0 && (size_t)n < sizeof(out)));
                }
        }
        if (net_tls_sni(data, size, host, sizeof(host)) == 0)
                check_host(host);
        if (net_host_normalise(s, strlen(s), host, sizeof(host)) == 0)
                check_host(host);
        if (net_allowlist_parse(s, &al, why, sizeof(why)) == 0) {
                REQUIRE(al.n > 0 && al.n <= NET_MAX_RULES);
                for (size_t i = 0; i < al.n; i++) {
                        check_host(al.rules[i].host);
                        REQUIRE(net_allowed(&al, al.rules[i].host, 443) == 1 ||
                                al.rules[i].wildcard || al.rules[i].port != 0);
                }
        }
        free(s);
        return 0;
}
