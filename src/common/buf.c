/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
        size_t need, ncap;
        uint8_t *p;

        if (__builtin_add_overflow(buf_size(b), extra, &need))
                return -ENOBUFS;
        if (b->limit != 0 && need > b->limit)
                return -ENOBUFS;
        if (b->len + extra <= b->cap)
                return 0;
        /* Reclaim consumed space before growing. */
        if (b->off > 0) {
                memmove(b->data, b->data + b->off, buf_size(b));
                b->len -= b->off;
                b->off = 0;
                if (b->len + extra <= b->cap)
                        return 0;
        }
        ncap = b->cap ? b->cap : 4096;
        while (ncap < need) {
                if (__builtin_mul_overflow(ncap, 2, &ncap))
                        return -ENOMEM;
        }
        p = realloc(b->data, ncap);
        if (p == NULL)
                return -ENOMEM;
        b->data = p;
        b->cap = ncap;
        return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
        int r;

        if (n == 0)
                return 0;
        r = buf_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

void buf_commit(struct buf *b, size_t n)
{
        b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
        b->off += n;
        if (b->off >= b->len)
                b->off = b->len = 0;
}

void buf_reset(struct buf *b)
{
        b->off = b->len = 0;
}

void buf_free(struct buf *b)
{
        free(b->data);
        b->data = NULL;
        b->off = b->len = b->cap = 0;
}
