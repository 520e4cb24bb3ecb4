/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stream reassembly: bytes in, whole frames out. The buffer never holds more
 * than one maximal frame; the payload of an oversized frame is discarded as it
 * arrives instead of being buffered, so a peer announcing 4 GiB costs nothing.
 */
#include "proto/proto.h"
#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>

#define RX_LIMIT (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)

int proto_rx_init(struct proto_rx *rx)
{
        rx->in = calloc(1, sizeof(*rx->in));
        if (rx->in == NULL)
                return -ENOMEM;
        rx->in->limit = RX_LIMIT;
        rx->skip = 0;
        rx->consumed = 0;
        return 0;
}

void proto_rx_free(struct proto_rx *rx)
{
        if (rx->in != NULL)
                buf_free(rx->in);
        free(rx->in);
        rx->in = NULL;
}

/* The frame handed out last is now released. */
static void rx_release(struct proto_rx *rx)
{
        if (rx->consumed > 0) {
                buf_consume(rx->in, rx->consumed);
                rx->consumed = 0;
        }
}

void proto_rx_reset(struct proto_rx *rx)
{
        buf_reset(rx->in);
        rx->skip = 0;
        rx->consumed = 0;
}

size_t proto_rx_room(const struct proto_rx *rx)
{
        size_t used = buf_size(rx->in) - rx->consumed;

        /* Bytes that will be skipped never reach the buffer. */
        if (rx->skip > 0)
                return RX_LIMIT - used + (rx->skip > RX_LIMIT ? RX_LIMIT : (size_t)rx->skip);
        return RX_LIMIT - used;
}

int proto_rx_feed(struct proto_rx *rx, const void *p, size_t n)
{
        const uint8_t *c = p;

        rx_release(rx);
        if (rx->skip > 0) {
                size_t d = rx->skip < n ? (size_t)rx->skip : n;

                rx->skip -= d;
                c += d;
                n -= d;
        }
        return buf_append(rx->in, c, n);
}

int proto_rx_next(struct proto_rx *rx, struct proto_hdr *h, const uint8_t **payload)
{
        size_t have, d;
        int r;

        rx_release(rx);
        if (rx->skip > 0)
                return 0; /* feed() discards skipped bytes before they are buffered */
        have = buf_size(rx->in);
        r = proto_hdr_decode(buf_head(rx->in), have, h);
        if (r == -EAGAIN)
                return 0;
        if (r == -EPROTO)
                return -EPROTO;
        if (r == -EMSGSIZE) {
                /* Drop the header and whatever part of the payload is already here. */
                buf_consume(rx->in, PROTO_HDR_SIZE);
                have -= PROTO_HDR_SIZE;
                d = have < h->len ? have : h->len;
                buf_consume(rx->in, d);
                rx->skip = (uint64_t)h->len - d;
                return -EMSGSIZE;
        }
        if (have - PROTO_HDR_SIZE < h->len)
                return 0;
        *payload = buf_head(rx->in) + PROTO_HDR_SIZE;
        rx->consumed = PROTO_HDR_SIZE + (size_t)h->len;
        return 1;
}
