/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host side of the agent channel: a non-blocking stream socket with an
 * outbound queue and frame reassembly (src/proto). Callers encode requests
 * straight into agent_conn_out() and run their own poll loop with the
 * helpers below, so one connection can carry many requests at once.
 *
 * Trust: frames come from the guest and are untrusted; the codec bounds
 * them, callers must check types and ids.
 */
#ifndef LG_SANDBOX_AGENT_CONN_H
#define LG_SANDBOX_AGENT_CONN_H

#include <stdint.h>

#include "common/buf.h"
#include "proto/proto.h"

#define AGENT_CONN_OUT_LIMIT (8u << 20) /* queued bytes towards the guest */

struct agent_conn {
        int fd;
        struct proto_rx rx;
        struct buf out;
        uint32_t next_id;
        int eof; /* the guest closed the channel */
};

/* Take ownership of fd (made non-blocking). 0 / -errno. */
int agent_conn_init(struct agent_conn *c, int fd) __attribute__((warn_unused_result));
void agent_conn_free(struct agent_conn *c);

/* A fresh request id (never 0). */
uint32_t agent_conn_new_id(struct agent_conn *c);

/* The outbound queue; encode frames into it, then agent_conn_flush(). */
static inline struct buf *agent_conn_out(struct agent_conn *c)
{
        return &c->out;
}

/* poll() events to ask for: POLLIN, plus POLLOUT while output is queued. */
short agent_conn_events(const struct agent_conn *c);

/* Write as much queued output as the socket takes. 0 / -errno (-EPIPE: guest gone). */
int agent_conn_flush(struct agent_conn *c);

/* Read what is available into the reassembly buffer. 0, -ECONNRESET on EOF, -errno. */
int agent_conn_fill(struct agent_conn *c);

/* Next complete frame: as proto_rx_next(). */
int agent_conn_next(struct agent_conn *c, struct proto_hdr *h, const uint8_t **payload);

#endif
