/* SPDX-License-Identifier: Apache-2.0 */
#include "net/allowlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A dotted IPv4 address: four decimal numbers 0..255 without leading zeros. */
static int is_ipv4(const char *s)
{
        int parts = 0;

        while (*s) {
                unsigned v = 0, digits = 0;

                while (*s >= '0' && *s <= '9') {
                        v = v * 10 + (unsigned)(*s++ - '0');
                        if (++digits > 3 || v > 255)
                                return 0;
                }
                if (digits == 0 || (digits > 1 && s[-(int)digits] == '0'))
                        return 0;
                parts++;
                if (*s == '.')
                        s++;
                else if (*s != '\0')
                        return 0;
                if (*s == '\0' && s[-1] == '.')
                        return 0;
        }
        return parts == 4;
}

int net_host_normalise(const char *host, size_t len, char *out, size_t outsz)
{
        size_t n = 0, label = 0;

        if (len == 0 || len >= outsz || len > NET_MAX_HOST + 2)
                return -EINVAL;
        if (host[0] == '[') { /* an IPv6 literal, bracketed, that inet_pton accepts */
                char inner[64];
                struct in6_addr a;

                if (host[len - 1] != ']' || len < 4 || len - 2 >= sizeof(inner))
                        return -EINVAL;
                memcpy(inner, host + 1, len - 2);
                inner[len - 2] = '\0';
                if (inet_pton(AF_INET6, inner, &a) != 1)
                        return -EINVAL;
                for (size_t i = 0; i < len; i++) {
                        char c = host[i];

                        if (c >= 'A' && c <= 'F')
                                c = (char)(c - 'A' + 'a');
                        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' ||
                              c == '.' || ((i == 0 || i == len - 1) && (c == '[' || c == ']'))))
                                return -EINVAL;
                        out[n++] = c;
                }
                out[n] = '\0';
                return 0;
        }
        if (host[len - 1] == '.') /* the root label: "example.com." is "example.com" */
                len--;
        if (len == 0 || len > NET_MAX_HOST)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char c = host[i];

                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (c == '.') {
                        if (label == 0 || out[n - 1] == '-')
                                return -EINVAL; /* empty label, or one ending in '-' */
                        label = 0;
                } else if (is_lower_alnum(c) || (c == '-' && label > 0) ||
                           (c == '_' && label > 0)) {
                        if (++label > 63)
                                return -EINVAL;
                } else {
                        return -EINVAL; /* '@', '%', '/', ':', spaces, control bytes... */
                }
                out[n++] = c;
        }
        if (label == 0 || out[n - 1] == '-')
                return -EINVAL;
        out[n] = '\0';
        /* All-numeric labels are an IPv4 address or nothing (no "1.2.3", no octal). */
        if (strspn(out, "0123456789.") == n && !is_ipv4(out))
                return -EINVAL;
        /*
         * Nor what the resolver would read as a number anyway ("0x7f.1",
         * "1.2.3.0x10"): a name that is an address in disguise.
         */
        struct in_addr a;

        if (!is_ipv4(out) && inet_aton(out, &a) != 0)
                return -EINVAL;
        return 0;
}

static int parse_port(const char *s, size_t len, unsigned *port)
{
        unsigned v = 0;

        if (len == 0 || len > 5)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v == 0 || v > 65535 || s[0] == '0')
                return -EINVAL;
        *port = v;
        return 0;
}

/* One entry "HOST[:PORT]" of len bytes into r. */
static int parse_rule(const char *e, size_t len, struct net_rule *r)
{
        const char *colon = NULL;
        size_t hlen = len;

        memset(r, 0, sizeof(*r));
        if (len > 0 && e[0] == '[') {
                const char *close = memchr(e, ']', len);

                if (close == NULL)
                        return -EINVAL;
                hlen = (size_t)(close - e) + 1;
                if (hlen < len) {
                        if (e[hlen] != ':')
                                return -EINVAL;
                        colon = e + hlen;
                }
        } else {
                colon = memchr(e, ':', len);
                if (colon != NULL)
                        hlen = (size_t)(colon - e);
        }
        if (colon != NULL && parse_port(colon + 1, len - hlen - 1, &r->port) < 0)
                return -EINVAL;
        if (hlen > 2 && e[0] == '*' && e[1] == '.') {
                r->wildcard = 1;
                e += 2;
                hlen -= 2;
        }
        if (net_host_normalise(e, hlen, r->host, sizeof(r->host)) < 0)
                return -EINVAL;
        /* "*.1.2.3.4" or "*.[::1]" means nothing. */
        if (r->wildcard && (r->host[0] == '[' || strspn(r->host, "0123456789.") == strlen(r->host)))
                return -EINVAL;
        return 0;
}

int net_allowlist_parse(const char *spec, struct net_allowlist *al, char *why, size_t whysz)
{
        const char *p = spec;

        memset(al, 0, sizeof(*al));
        why[0] = '\0';
        if (*p == '\0') {
                snprintf(why, whysz, "empty allow-list");
                return -EINVAL;
        }
        while (*p) {
                size_t len = strcspn(p, ",");

                if (al->n == NET_MAX_RULES) {
                        snprintf(why, whysz, "more than %d entries", NET_MAX_RULES);
                        return -EINVAL;
                }
                if (parse_rule(p, len, &al->rules[al->n]) < 0) {
                        snprintf(why, whysz,
                                 "'%.*s': expected HOST, *.DOMAIN, an IPv4 address or [IPv6], "
                                 "optionally :PORT (1-65535)",
                                 (int)(len > 80 ? 80 : len), p);
                        return -EINVAL;
                }
                al->n++;
                p += len;
                if (*p == ',' && *++p == '\0') {
                        snprintf(why, whysz, "trailing ','");
                        return -EINVAL;
                }
        }
        return 0;
}

/* host is below domain: "a.b.example.com" below "example.com", on a label boundary. */
static int below(const char *host, const char *domain)
{
        size_t h = strlen(host), d = strlen(domain);

        return h > d + 1 && host[h - d - 1] == '.' && strcmp(host + h - d, domain) == 0;
}

int net_allowed(const struct net_allowlist *al, const char *host, unsigned port)
{
        for (size_t i = 0; i < al->n; i++) {
                const struct net_rule *r = &al->rules[i];
                int port_ok = r->port ? port == r->port : (port == 80 || port == 443);
                int host_ok = r->wildcard ? below(host, r->host) : strcmp(host, r->host) == 0;

                if (port_ok && host_ok)
                        return 1;
        }
        return 0;
}
