/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg-agent internals: the guest side of docs/protocol.md. One thread, one
 * poll() loop (main.c) over the channel (chan.c), the children's pipes
 * (exec.c), open file and directory streams (fileops.c) and a signalfd.
 *
 * Flow control, in one place:
 *  - Outbound: every reply goes to one queue (struct chan.out). While it holds
 *    more than AGENT_OUT_HIGH bytes the agent stops reading child pipes, file
 *    and directory streams and the channel itself, so a host that does not read
 *    makes the children block on their own writes; output is never dropped.
 *  - Inbound stdin: see AGENT_STDIN_HIGH.
 */
#ifndef LG_AGENT_AGENT_H
#define LG_AGENT_AGENT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "proto/proto.h"

#define AGENT_MAX_EXECS   64
#define AGENT_MAX_STREAMS 16 /* READ_FILE and LIST in progress */
#define AGENT_OUT_HIGH    (4u << 20)
/*
 * Stdin bytes buffered for all children together. Above this the agent stops
 * reading the channel until children have consumed some. That is a deliberate
 * head-of-line block: STDIN frames have no acknowledgement, so the only other
 * choices are unbounded memory or dropping input. A child that never reads its
 * stdin therefore stalls later requests until its timeout fires or the host
 * tears the sandbox down; hosts should not send more stdin than a child is
 * known to consume.
 */
#define AGENT_STDIN_HIGH (1u << 20)
#define AGENT_DRAIN_MS   500 /* pipe drain after the main child exited */
#define AGENT_POLL_MAX   (2 + 3 * AGENT_MAX_EXECS + 1 + PROTO_NET_MAX_STREAMS)

#define AGENT_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct exec_job;
struct stream_job;
struct net_stream;

struct chan {
        int fd;
        int exit_on_eof; /* socketpair (--fd): EOF is the end; virtio: the host went away */
        int connected;
        struct proto_rx rx;
        struct buf out; /* encoded frames not yet written */
};

struct agent {
        struct chan ch;
        int sigfd;
        int poweroff; /* power off on SHUTDOWN (also when PID 1) */
        struct exec_job *execs[AGENT_MAX_EXECS];
        struct stream_job *streams[AGENT_MAX_STREAMS];
        size_t stdin_pending; /* sum of all exec stdin buffers */
        struct {
                int lfd; /* the egress proxy's listener, -1 until NET_ENABLE */
                uint32_t next_id;
                struct net_stream *s[PROTO_NET_MAX_STREAMS];
        } net;
};

/* What poll() watches this round, and who handles each descriptor. */
struct pollset {
        struct pollfd fds[AGENT_POLL_MAX];
        void (*cb[AGENT_POLL_MAX])(struct agent *a, void *obj, int which, short revents);
        void *obj[AGENT_POLL_MAX];
        int which[AGENT_POLL_MAX];
        size_t n;
        int timeout_ms; /* -1 = none */
};

void pollset_add(struct pollset *ps, int fd, short events,
                 void (*cb)(struct agent *, void *, int, short), void *obj, int which);
/* Wake up by deadline_ms (a mono_ms() value) at the latest. */
void pollset_deadline(struct pollset *ps, uint64_t deadline_ms);

/* ---- chan.c ---- */
/* Find the virtio-serial port named lg.agent and open it (waits up to 5 s). */
int chan_find_virtio(int *fd);
int chan_init(struct chan *c, int fd, int exit_on_eof);
static inline int chan_out_full(const struct chan *c)
{
        return buf_size(&c->out) > AGENT_OUT_HIGH;
}
/* Write what the socket takes. 0, -EAGAIN (more left), -EPIPE (peer gone) or -errno. */
int chan_flush(struct chan *c);
/* Read into rx: >0 bytes, 0 EOF / host disconnected, -EAGAIN, -errno. */
ssize_t chan_read(struct chan *c);
/* Best effort: write everything within timeout_ms (used before power-off). */
void chan_drain(struct chan *c, int timeout_ms);

/* Queue replies. Encoding failures are logged (they are agent bugs). */
void agent_check(int r, const char *what);

/* RESEED request (reseed.c). */
#define AGENT_ID_FILE "/run/sandbox-id"
void agent_reseed(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void agent_error(struct agent *a, uint32_t id, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void agent_ok_u64(struct agent *a, uint32_t id, uint16_t tag, uint64_t v);
/* A request id that names a running EXEC or stream cannot be reused. */
int agent_id_busy(const struct agent *a, uint32_t id);

/* ---- dispatch.c ---- */
/* Handle one request frame from the host. */
void agent_dispatch(struct agent *a, const struct proto_hdr *h, const uint8_t *payload);
/* Queue READY (at start and for every new host connection). */
void agent_ready(struct agent *a);
/* Kill children, flush, sync; power off if PID 1 or --poweroff, else exit(code). */
void agent_exit(struct agent *a, int code) __attribute__((noreturn));

/* ---- exec.c ---- */
void exec_start(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void exec_stdin(struct agent *a, uint32_t id, uint8_t flags, const uint8_t *p, size_t n);
/* 1 if id named an exec (signalled or already exited), 0 if unknown. */
int exec_signal(struct agent *a, uint32_t id, int signo);
void exec_reap(struct agent *a);
void exec_poll(struct agent *a, struct pollset *ps);
/* Timeouts, post-exit drains and EXIT replies. */
void exec_tick(struct agent *a);
void exec_kill_all(struct agent *a);
/* Forget every exec (after SIGKILL) without replying: the host is gone. */
void exec_drop_all(struct agent *a);
int exec_id_busy(const struct agent *a, uint32_t id);

/* ---- fileops.c ---- */
void fileops_read(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void fileops_write(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void fileops_stat(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void fileops_list(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
/* Advance streams by one chunk each; 1 if some stream can go on at once. */
int fileops_step(struct agent *a);
/* Cancel a stream with ERROR ECANCELED; 1 if id was a stream. */
int fileops_cancel(struct agent *a, uint32_t id);
void fileops_drop_all(struct agent *a);
int fileops_id_busy(const struct agent *a, uint32_t id);

/* ---- net.c: the egress tunnel's guest end ---- */
void net_enable(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void net_send(struct agent *a, uint32_t id, uint8_t flags, const uint8_t *p, size_t n);
void net_ack(struct agent *a, uint32_t id, const uint8_t *p, size_t n);
void net_poll(struct agent *a, struct pollset *ps);
/* Close every stream (the host went away); the listener stays. */
void net_drop_all(struct agent *a);

#endif
