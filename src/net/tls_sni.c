/* SPDX-License-Identifier: Apache-2.0 */
#include "net/tls_sni.h"
#include "net/allowlist.h"

#include <errno.h>
#include <string.h>

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

/*
 * The handshake bytes of the leading handshake records, concatenated: a
 * ClientHello may be split across records (RFC 8446 5.1), and a parser that
 * gave up on that would let a split hello through unchecked. -EAGAIN until
 * want bytes (or the whole first message) are there.
 */
static int gather(const uint8_t *p, size_t n, uint8_t *hs, size_t hssz, size_t *got)
{
        size_t off = 0, need = 4; /* the handshake header first, then its length */

        *got = 0;
        while (*got < need) {
                unsigned len;

                if (n - off < 5)
                        return -EAGAIN;
                if (p[off] != 22 || p[off + 1] != 3)
                        return -EINVAL; /* only handshake records before the hello is whole */
                len = (unsigned)p[off + 3] << 8 | p[off + 4];
                if (len == 0 || len > 16384)
                        return -EINVAL;
                if (n - off - 5 < len)
                        return -EAGAIN;
                if (*got + len > hssz)
                        return -EINVAL;
                memcpy(hs + *got, p + off + 5, len);
                *got += len;
                off += 5 + len;
                if (*got >= 4) {
                        need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
                        if (hs[0] != 1 || need > hssz)
                                return -EINVAL; /* not a ClientHello, or absurdly long */
                }
        }
        return 0;
}

int net_tls_sni(const uint8_t *p, size_t n, char *host, size_t hostsz)
{
        static __thread uint8_t buf[NET_TLS_MAX_HELLO];
        struct cur hs, v, exts;
        unsigned type, hlen;
        size_t got;
        int r;

        if (n == 0)
                return -EAGAIN;
        if (p[0] != 22)
                return -EINVAL;
        r = gather(p, n, buf, sizeof(buf), &got);
        if (r < 0)
                return r;
        hs = (struct cur){buf, buf + got};
        /* Handshake header: ClientHello (1), its length within what was gathered. */
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
