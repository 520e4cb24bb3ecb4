/* SPDX-License-Identifier: Apache-2.0 */
#include "net/tls_sni.h"
#include "net/allowlist.h"

#include <errno.h>

/* A cursor over untrusted bytes: every read is checked against the end. */
struct cur {
        const uint8_t *p, *end;
};

static int take(struct cur *c, size_t n, const uint8_t **out)
{
        if ((size_t)(c->end - c->p) < n)
                return -EINVAL;
        if (out != NULL)
                *out = c->p;
        c->p += n;
        return 0;
}

static int u8(struct cur *c, unsigned *v)
{
        const uint8_t *b;

        if (take(c, 1, &b) < 0)
                return -EINVAL;
        *v = b[0];
        return 0;
}

static int u16(struct cur *c, unsigned *v)
{
        const uint8_t *b;

        if (take(c, 2, &b) < 0)
                return -EINVAL;
        *v = (unsigned)b[0] << 8 | b[1];
        return 0;
}

static int u24(struct cur *c, unsigned *v)
{
        const uint8_t *b;

        if (take(c, 3, &b) < 0)
                return -EINVAL;
        *v = (unsigned)b[0] << 16 | (unsigned)b[1] << 8 | b[2];
        return 0;
}

/* A vector with a length prefix of `width` bytes: a sub-cursor over it. */
static int vec(struct cur *c, int width, struct cur *sub)
{
        unsigned len;

        if ((width == 1 ? u8(c, &len) : u16(c, &len)) < 0 || take(c, len, &sub->p) < 0)
                return -EINVAL;
        sub->end = sub->p + len;
        return 0;
}

int net_tls_sni(const uint8_t *p, size_t n, char *host, size_t hostsz)
{
        struct cur rec = {p, p + n}, hs, v, exts;
        unsigned type, version, len, hlen;

        /* Record header: handshake (22), version 3.x, length. */
        if (n < 5)
                return n > 0 && p[0] != 22 ? -EINVAL : -EAGAIN;
        if (u8(&rec, &type) < 0 || u16(&rec, &version) < 0 || u16(&rec, &len) < 0)
                return -EINVAL;
        if (type != 22 || (version >> 8) != 3 || len < 4 || len > 16384)
                return -EINVAL;
        if (n - 5 < len)
                return -EAGAIN;
        hs = (struct cur){rec.p, rec.p + len};
        /* Handshake header: ClientHello (1), length within this record. */
        if (u8(&hs, &type) < 0 || type != 1 || u24(&hs, &hlen) < 0 ||
            hlen > (size_t)(hs.end - hs.p))
                return -EINVAL;
        hs.end = hs.p + hlen;
        /* version, random, session id, cipher suites, compression methods */
        if (take(&hs, 2 + 32, NULL) < 0 || vec(&hs, 1, &v) < 0 || vec(&hs, 2, &v) < 0 ||
            vec(&hs, 1, &v) < 0)
                return -EINVAL;
        if (hs.p == hs.end)
                return -ENOENT; /* no extensions at all */
        if (vec(&hs, 2, &exts) < 0)
                return -EINVAL;
        while (exts.p < exts.end) {
                unsigned etype;
                struct cur ext, names, name;

                if (u16(&exts, &etype) < 0 || vec(&exts, 2, &ext) < 0)
                        return -EINVAL;
                if (etype != 0) /* server_name */
                        continue;
                if (vec(&ext, 2, &names) < 0)
                        return -EINVAL;
                while (names.p < names.end) {
                        unsigned ntype;

                        if (u8(&names, &ntype) < 0 || vec(&names, 2, &name) < 0)
                                return -EINVAL;
                        if (ntype != 0) /* host_name */
                                continue;
                        return net_host_normalise((const char *)name.p, (size_t)(name.end - name.p),
                                                  host, hostsz) < 0
                                   ? -EINVAL
                                   : 0;
                }
                return -ENOENT;
        }
        return -ENOENT;
}
