/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The warm pool (DESIGN.md §4): a long-running owner (`luminaguard pool
 * serve`) keeps N sandboxes restored from the image's template, reseeded and
 * idle, and hands one over per request on a unix socket in $LUMINAGUARD_HOME.
 *
 * Hand-over: the reply to "acquire" carries the sandbox's agent socket and the
 * VMM's pidfd (SCM_RIGHTS); the client talks to the agent directly. The client
 * connection is the lease: when it is closed — after the command, on Ctrl-C,
 * or because the client died — the pool destroys that sandbox (and verifies
 * it is gone) and restores a replacement. A sandbox is never handed out twice.
 *
 * Wire format: one JSON object per line; requests at most POOL_MAX_LINE
 * bytes, replies at most POOL_MAX_REPLY.
 *   -> {"op":"acquire","image":"base","image_key":"<sha256>","memory_mib":256,"cpus":1,
 *       "backend":"vm"}
 *   <- {"ok":true,"id":"sb-…","hit":true,"wait_ms":0.3}   + fds [agent, pidfd]
 *   <- {"ok":false,"error":"…","shape_mismatch":true}
 *   -> {"op":"status"}        <- {"ok":true, …counters, latencies, memory…}
 * Only the daemon's own uid may connect (SO_PEERCRED).
 */
#ifndef LG_POOL_POOL_H
#define LG_POOL_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

struct lg_err;

#define POOL_MAX_LINE     4096       /* a request */
#define POOL_MAX_REPLY    (1u << 20) /* a reply: status lists every idle sandbox */
#define POOL_MAX_SIZE     128
#define POOL_MAX_PRESTART 16
#define POOL_SOCKET       "pool.sock"

struct pool_config {
        const char *image;
        uint64_t memory_mib;
        unsigned cpus;
        unsigned size;     /* idle sandboxes to keep, 1..POOL_MAX_SIZE */
        unsigned prestart; /* QEMU processes kept waiting for a clone's state, for misses */
        /*
         * The memory bound: no new sandbox or pre-started process while the
         * host's MemAvailable is below guest memory + reserve_mib (each clone
         * may come to use all of its guest RAM). Misses are still served.
         */
        uint64_t reserve_mib;
        int boot_timeout_ms;
        enum sandbox_backend backend; /* SANDBOX_PROCESS: jailed agents, no template */
};

/* Serve until intr_fd is readable (SIGINT/SIGTERM); then destroy everything. */
int pool_serve(const char *home, const struct pool_config *c, int intr_fd, struct lg_err **err)
    __attribute__((warn_unused_result));

struct pool_lease {
        int conn;     /* the lease; close it (pool_release) to end the sandbox */
        int agent_fd; /* the sandbox's agent channel */
        int pidfd;    /* its VMM: readable once the VM is gone */
        char id[32];
        int hit;        /* an idle sandbox was ready */
        double wait_ms; /* pool-side time from request to hand-over */
};

#define POOL_CALL_TIMEOUT_MS 30000 /* a miss may restore; a wedged pool must not hang us */

/* What a client asks for; a pool serves one of each. */
struct pool_request {
        const char *image;     /* name, "base" */
        const char *image_key; /* its current key: a pool serving an older build does not match */
        uint64_t memory_mib;
        unsigned cpus;
        const char *backend; /* "vm" or "process" */
};

/*
 * Ask the pool for a sandbox matching rq.
 * -ENOENT or -ECONNREFUSED: no pool runs (use another way); -EMEDIUMTYPE: it
 * serves another image, key, shape or backend; other -errno: the pool failed
 * or the wait was interrupted through intr_fd (message and kind in *err).
 */
int pool_acquire(const char *home, const struct pool_request *rq, int intr_fd, struct pool_lease *l,
                 struct lg_err **err) __attribute__((warn_unused_result));

/* End the lease: the pool destroys the sandbox. Closes every descriptor of l. */
void pool_release(struct pool_lease *l);

/* The pool's status object as JSON text (malloc'd). */
int pool_status(const char *home, char **json, struct lg_err **err)
    __attribute__((warn_unused_result));

/* <home>/pool.sock into out (sun_path sized). */
int pool_socket_path(const char *home, char *out, size_t outsz);

#endif
