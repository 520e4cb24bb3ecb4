/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer used as a FIFO: append at the tail, consume at the
 * head. The readable bytes are data[off .. len). Growth is bounded by the
 * caller-visible `limit` (0 = no limit) so untrusted peers cannot make us
 * buffer without bound.
 */
#ifndef LG_COMMON_BUF_H
#define LG_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
        uint8_t *data;
        size_t off;   /* first unread byte */
        size_t len;   /* one past the last byte */
        size_t cap;   /* allocated size */
        size_t limit; /* max readable bytes, 0 = unbounded */
};

#define BUF_INIT                                                                                   \
        {                                                                                          \
                NULL, 0, 0, 0, 0                                                                   \
        }

/* Readable bytes and their start. */
static inline size_t buf_size(const struct buf *b)
{
        return b->len - b->off;
}
static inline uint8_t *buf_head(const struct buf *b)
{
        return b->data + b->off;
}

/* Make room for `extra` more bytes at the tail. 0, -ENOBUFS over the limit, -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra) __attribute__((warn_unused_result));

/* Append n bytes. 0, -ENOBUFS, -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Tail space after buf_reserve(); commit what was written with buf_commit(). */
static inline uint8_t *buf_tail(const struct buf *b)
{
        return b->data + b->len;
}
void buf_commit(struct buf *b, size_t n);

/* Drop n bytes from the head (n <= buf_size()). */
void buf_consume(struct buf *b, size_t n);

void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
