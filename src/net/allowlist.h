/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The egress allow-list (`--net allow=HOST[:PORT],...`, issue 4's network
 * policy): which destinations a sandbox's proxy may connect to. Pure
 * parsing and matching, shared by the proxy and its tests.
 *
 * A rule is a host name, "*." + a domain (any name below it, not the domain
 * itself), an IPv4 address or a bracketed IPv6 address, with an optional
 * port; without one, ports 80 and 443. Names are compared lower-case,
 * without a trailing dot, label by label: "*.example.com" never matches
 * "badexample.com" nor "example.com.evil.net".
 */
#ifndef LG_NET_ALLOWLIST_H
#define LG_NET_ALLOWLIST_H

#include <stddef.h>

#define NET_MAX_RULES 64
#define NET_MAX_HOST  253 /* a DNS name's limit; longer is refused */

struct net_rule {
        char host[NET_MAX_HOST + 1]; /* normalised; for a wildcard, the domain after "*." */
        int wildcard;
        unsigned port; /* 0: 80 and 443 */
};

struct net_allowlist {
        struct net_rule rules[NET_MAX_RULES];
        size_t n;
};

/*
 * Parse "HOST[:PORT],HOST[:PORT]..." (the part after "allow="). 0, or
 * -EINVAL with why saying which entry is wrong and how.
 */
int net_allowlist_parse(const char *spec, struct net_allowlist *al, char *why, size_t whysz);

/*
 * Normalise a destination host as a request names it (lower-case, no
 * trailing dot, brackets kept for IPv6) into out; -EINVAL if it is not a
 * plain name or address (userinfo, percent-encoding, empty labels...).
 */
int net_host_normalise(const char *host, size_t len, char *out, size_t outsz);

/* 1 if host (normalised) and port are allowed. */
int net_allowed(const struct net_allowlist *al, const char *host, unsigned port);

#endif
