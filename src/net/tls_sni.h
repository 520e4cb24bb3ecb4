/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server name a TLS client asks for (SNI, in its ClientHello): the
 * proxy checks it against the CONNECT target, so an allowed name cannot
 * carry a connection meant for another (domain fronting through an allowed
 * address). Bounded parser of untrusted bytes; no allocation.
 */
#ifndef LG_NET_TLS_SNI_H
#define LG_NET_TLS_SNI_H

#include <stddef.h>
#include <stdint.h>

/*
 * From the first bytes a client sent, p[0..n): 0 and the name (normalised,
 * net_host_normalise) in host; -EAGAIN: the first record is incomplete;
 * -ENOENT: a ClientHello without SNI; -EINVAL: not a TLS ClientHello, or
 * malformed.
 */
int net_tls_sni(const uint8_t *p, size_t n, char *host, size_t hostsz);

#endif
