/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An upstream MCP server behind the gateway (`luminaguard mcp --upstream
 * 'CMD ARGS'`): a child process spoken to over its stdin/stdout as an MCP
 * client. A reader thread matches responses to requests, so calls from
 * several workers share one connection.
 *
 * A crashed upstream is restarted on the next call, with a backoff (1 s,
 * doubling to 30 s); after 3 crashes within a minute the circuit opens and
 * calls fail at once for 30 s instead of hammering it.
 *
 * Trust: the upstream is the operator's program, but what it says is data:
 * its messages are bounded like any client's (mcp/jsonrpc.h), its tool
 * names and annotations are only hints to the policy.
 */
#ifndef LG_MCP_UPSTREAM_H
#define LG_MCP_UPSTREAM_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

struct lg_err;

#define UPSTREAM_MAX_PENDING 64

struct upstream_pending {
        uint64_t id; /* 0 = free */
        json_t *reply;
};

struct upstream {
        char *cmd;             /* as given: run by /bin/sh -c */
        char prefix[48];       /* its tools are listed as <prefix>__<name> */
        pthread_mutex_t lock;  /* state, pending, tools: never held across I/O */
        pthread_mutex_t wlock; /* one writer at a time on to_fd */
        pthread_cond_t cv;
        char *log_path; /* its stderr, appended (never our terminal) */
        pid_t pid;
        int to_fd, from_fd;
        int alive;    /* initialized and not seen to die */
        int ready;    /* initialized and its tools listed: calls may go */
        int starting; /* a (re)start is under way */
        pthread_t reader;
        int reader_running;
        uint64_t next_id;
        struct upstream_pending pend[UPSTREAM_MAX_PENDING];
        json_t *tools;        /* its tools/list, as it sent them (array) */
        char server_name[64]; /* serverInfo.name from its initialize */
        /* Restarts and the circuit breaker. */
        unsigned crashes;
        uint64_t died_ms; /* when the reader saw it die (backoff counts from then) */
        uint64_t first_crash_ms, next_start_ms, open_until_ms, backoff_ms;
};

/*
 * Prepare (no process yet). prefix: the name its tools are listed under;
 * log_path: where its stderr goes (it could otherwise draw on the terminal
 * an approver reads).
 */
void upstream_init(struct upstream *u, const char *cmd, const char *prefix, const char *log_path);

/* Start it if it is not running (respecting backoff and breaker): spawn, initialize, list tools. */
int upstream_ensure(struct upstream *u, struct lg_err **err) __attribute__((warn_unused_result));

/*
 * One request; returns its result (new reference) or NULL with *err (a
 * JSON-RPC error from upstream is LG_EK_USAGE with its message; a dead or
 * silent upstream LG_EK_LOST). intr_fd readable = cancelled (the upstream
 * is told with notifications/cancelled).
 */
json_t *upstream_request(struct upstream *u, const char *method, json_t *params, int timeout_ms,
                         int intr_fd, struct lg_err **err);

/* Stop the process (SIGTERM, then SIGKILL) and the reader. */
void upstream_stop(struct upstream *u);
void upstream_free(struct upstream *u);

#endif
