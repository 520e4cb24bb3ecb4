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

/* The largest ClientHello accepted (it may span several records). */
#define NET_TLS_MAX_HELLO 32768

/*
 * From the first bytes a client sent, p[0..n): 0 and the name (normalised,
 * net_host_normalise) in host; -EAGAIN: the ClientHello is not complete
 * yet (it may be split across records); -ENOENT: a ClientHello without
 * SNI; -EINVAL: not a TLS ClientHello, malformed, or over NET_TLS_MAX_HELLO.
 */
int net_tls_sni(const uint8_t *p, size_t n, char *host, size_t hostsz);

#endif
