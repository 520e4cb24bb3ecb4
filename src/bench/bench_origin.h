/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The origin servers of `bench workload`'s http workload: one HTTP and one
 * HTTPS server on 127.0.0.1 (libmicrohttpd), each serving a fixed blob at
 * /blob. The HTTPS one presents a certificate made for the run (P-256,
 * self-signed, for IP 127.0.0.1), which the guest is given to trust. A
 * sandbox reaches them only through its egress proxy, which connects to
 * them on the host: an allow-list naming the address lets it through.
 */
#ifndef LG_BENCH_BENCH_ORIGIN_H
#define LG_BENCH_BENCH_ORIGIN_H

#include <stddef.h>

#define ORIGIN_BLOB_BYTES (1u << 20)

struct MHD_Daemon;

struct bench_origin {
        struct MHD_Daemon *http, *https;
        unsigned http_port, https_port;
        char *cert_pem, *key_pem; /* the HTTPS server's certificate and key */
        unsigned char *blob;      /* ORIGIN_BLOB_BYTES */
        char blob_sha[65];        /* hex SHA-256 of the blob */
};

/* Start both servers. 0, or -errno with o cleaned up. */
int bench_origin_start(struct bench_origin *o);
void bench_origin_stop(struct bench_origin *o);

#endif
