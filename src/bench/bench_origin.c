/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/bench_origin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **state)
{
        const struct bench_origin *o = cls;
        struct MHD_Response *r;
        enum MHD_Result ret;
        int found = strcmp(method, "GET") == 0 && strcmp(url, "/blob") == 0;

        (void)version, (void)upload, (void)upload_len, (void)state;
        r = found ? MHD_create_response_from_buffer(ORIGIN_BLOB_BYTES, o->blob,
                                                    MHD_RESPMEM_PERSISTENT)
                  : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
                return MHD_NO;
        ret = MHD_queue_response(c, found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r);
        MHD_destroy_response(r);
        return ret;
}

static char *pem_of(BIO *b)
{
        char *data, *s;
        long n = BIO_get_mem_data(b, &data);

        s = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (s != NULL) {
                memcpy(s, data, (size_t)n);
                s[n] = '\0';
        }
        return s;
}

/* A P-256 key and a self-signed certificate for IP 127.0.0.1, valid for a day. */
static int make_cert(struct bench_origin *o)
{
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
        X509_EXTENSION *san = NULL, *bc = NULL;
        X509V3_CTX ctx;
        int ok = 0;

        if (k != NULL && x != NULL && cb != NULL && kb != NULL && X509_set_version(x, 2) &&
            ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
            X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
            X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, k) &&
            X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                       (const unsigned char *)"luminaguard bench origin", -1, -1,
                                       0) &&
            X509_set_issuer_name(x, X509_get_subject_name(x))) {
                X509V3_set_ctx_nodb(&ctx);
                X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
                san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
                bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
                ok = san != NULL && bc != NULL && X509_add_ext(x, san, -1) &&
                     X509_add_ext(x, bc, -1) && X509_sign(x, k, EVP_sha256()) > 0 &&
                     PEM_write_bio_X509(cb, x) &&
                     PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL);
        }
        if (ok) {
                o->cert_pem = pem_of(cb);
                o->key_pem = pem_of(kb);
                ok = o->cert_pem != NULL && o->key_pem != NULL;
        }
        X509_EXTENSION_free(san);
        X509_EXTENSION_free(bc);
        BIO_free(cb);
        BIO_free(kb);
        X509_free(x);
        EVP_PKEY_free(k);
        return ok ? 0 : -ENOMEM;
}

static struct MHD_Daemon *serve(struct bench_origin *o, int tls, unsigned *port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

        if (tls)
                d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, on_request, o,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                     MHD_OPTION_HTTPS_MEM_KEY, o->key_pem,
                                     MHD_OPTION_HTTPS_MEM_CERT, o->cert_pem, MHD_OPTION_END);
        else
                d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, o, MHD_OPTION_SOCK_ADDR,
                                     (struct sockaddr *)&sa, MHD_OPTION_END);
        info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
        if (info == NULL || info->port == 0) {
                if (d != NULL)
                        MHD_stop_daemon(d);
                return NULL;
        }
        *port = info->port;
        return d;
}

int bench_origin_start(struct bench_origin *o)
{
        unsigned char d[32];
        unsigned dl = 0;

        memset(o, 0, sizeof(*o));
        o->blob = malloc(ORIGIN_BLOB_BYTES);
        if (o->blob == NULL)
                return -ENOMEM;
        /* Bytes that do not repeat within a block, so a mangled relay cannot go unseen. */
        for (uint32_t i = 0, x = 2463534242u; i < ORIGIN_BLOB_BYTES; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                o->blob[i] = (unsigned char)x;
        }
        if (!EVP_Digest(o->blob, ORIGIN_BLOB_BYTES, d, &dl, EVP_sha256(), NULL) || dl != 32 ||
            make_cert(o) < 0) {
                bench_origin_stop(o);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < dl; i++)
                snprintf(o->blob_sha + 2 * i, 3, "%02x", d[i]);
        o->http = serve(o, 0, &o->http_port);
        o->https = o->http ? serve(o, 1, &o->https_port) : NULL;
        if (o->https == NULL) {
                bench_origin_stop(o);
                return -EADDRNOTAVAIL;
        }
        return 0;
}

void bench_origin_stop(struct bench_origin *o)
{
        if (o->http != NULL)
                MHD_stop_daemon(o->http);
        if (o->https != NULL)
                MHD_stop_daemon(o->https);
        free(o->cert_pem);
        free(o->key_pem);
        free(o->blob);
        memset(o, 0, sizeof(*o));
}
