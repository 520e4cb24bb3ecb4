/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One command in a fresh, throwaway sandbox, with everything `run` means:
 * a pooled sandbox when a pool serves, else one started here; the command
 * recorded before it runs; output captured with bounds; the sandbox
 * destroyed (or handed back to its pool to be destroyed) and verified; the
 * end recorded. For front-ends that are not a terminal (MCP, later the HTTP
 * API); the CLI streams instead (src/cli/cmd_run.c).
 */
#ifndef LG_RUN_RUN_H
#define LG_RUN_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

struct lg_err;
struct net_allowlist;
struct run_ws;

#define RUN_CAPTURE_MAX  (1u << 20)             /* bytes kept of stdout and of stderr each */
#define RUN_CAPTURE_KILL (8u * RUN_CAPTURE_MAX) /* printed past this, the command is killed */

struct run_request {
        char **argv; /* NULL-terminated */
        size_t argc;
        char **env; /* "K=V", NULL-terminated, may be NULL */
        size_t envc;
        const char *workdir;    /* NULL = "/" */
        uint64_t timeout_ms;    /* 0 = none */
        const char *stdin_data; /* NULL = /dev/null */
        size_t stdin_len;
        enum sandbox_backend backend;
        const char *image; /* NULL = base */
        /*
         * A missing or stale image is an error rather than a build: building
         * `full` runs debootstrap and apt as root for minutes, which is the
         * operator's to start, not an MCP client's.
         */
        int no_image_build;
        /*
         * Egress through the sandbox's proxy to these destinations only
         * (NULL: no network). Nobody is asked about any other: it is
         * refused with a 403, logged and audited.
         */
        const struct net_allowlist *allow;
        /*
         * A workspace the caller packed (run_ws_init()): copied in as
         * /workspace before the command (its default directory), and out as
         * a change set (ws->cs) after, which the caller decides on. NULL:
         * none.
         */
        struct run_ws *ws;
};

struct run_result {
        char *out, *err; /* NUL-terminated, malloc'd, at most RUN_CAPTURE_MAX bytes */
        size_t out_len, err_len;
        uint64_t out_total, err_total; /* bytes the command wrote */
        int exit_code, signo, timed_out;
        int spawn_errno;   /* it never started: ENOENT (not found), EACCES... */
        int output_killed; /* killed for printing more than RUN_CAPTURE_KILL */
        char message[512];
        char sandbox[64];
        double ms;
};

/*
 * Run rq; intr_fd (or -1) readable cancels it (the sandbox is killed).
 * 0 when the command ran to an end or could not be spawned (see *res), or
 * < 0 with *err (LG_EK_START, LG_EK_LOST, LG_EK_INTERRUPTED, ...).
 */
int run_capture(const char *home, const struct run_request *rq, int intr_fd, struct run_result *res,
                struct lg_err **err) __attribute__((warn_unused_result));

/*
 * The same for one command in a live sandbox (MCP's session sandboxes): c
 * and vmm_pidfd are the sandbox's, sandbox its id for the audit log
 * (exec.start before, exec.end after). The sandbox stays. rq->ws must be
 * NULL: a live sandbox's workspace goes in when it is made.
 */
struct agent_conn;
int run_exec_on(const char *home, const char *sandbox, struct agent_conn *c, int vmm_pidfd,
                const struct run_request *rq, int intr_fd, struct run_result *res,
                struct lg_err **err) __attribute__((warn_unused_result));

void run_result_free(struct run_result *res);

#endif
