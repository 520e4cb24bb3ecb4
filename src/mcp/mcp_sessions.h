/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Session sandboxes for MCP clients: created by sandbox_create, used by
 * sandbox_exec and the file tools, gone on sandbox_destroy, after an idle
 * TTL, or when the server stops. One call at a time uses a session (a
 * second is told it is busy); at most a fixed number live at once.
 */
#ifndef LG_MCP_MCP_SESSIONS_H
#define LG_MCP_MCP_SESSIONS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/approver.h"

struct lg_err;
struct run_ws;
struct sandbox;

#define MCP_MAX_SESSIONS   4
#define MCP_SESSION_TTL_MS (10u * 60 * 1000)

struct mcp_session_thread;

struct mcp_session {
        char id[64];
        struct sandbox *sb;
        uint64_t last_used_ms;
        int busy;
        struct mcp_session_thread *thread; /* starts, keeps and destroys sb (mcp_sessions.c) */
        struct run_ws *ws; /* its host workspace (sandbox_create's `workspace`), or NULL */
};

struct mcp_sessions {
        const char *home;
        uint64_t ttl_ms;
        pthread_mutex_t lock;
        pthread_cond_t cv; /* session threads' states */
        struct mcp_session *s[MCP_MAX_SESSIONS];
        unsigned creating; /* slots reserved by sandbox_create calls still starting */
        /* Host directories a session may take as its workspace (resolved; borrowed). */
        char *const *roots;
        size_t n_roots;
        enum approve_mode approve; /* who decides workspace_apply */
        uint64_t approve_timeout_ms;
};

void mcp_sessions_init(struct mcp_sessions *ss, const char *home, uint64_t ttl_ms);
/* Destroy every session (the client is gone). */
void mcp_sessions_free(struct mcp_sessions *ss);

/*
 * Start a session sandbox; its id into id. workspace (or NULL): a host
 * directory inside one of the roots, copied in as /workspace. 0 or < 0 with
 * *err (LG_EK_USAGE when full, or for a workspace outside the roots).
 */
int mcp_session_create(struct mcp_sessions *ss, int intr_fd, const char *workspace,
                       const char *image, char *id, size_t idsz, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Take the session id for one call (busy until put back). NULL with *err: unknown or busy. */
struct mcp_session *mcp_session_take(struct mcp_sessions *ss, const char *id, struct lg_err **err);
void mcp_session_put(struct mcp_sessions *ss, struct mcp_session *s);

/* Destroy the session id (verified). 0 or < 0 with *err. */
int mcp_session_destroy(struct mcp_sessions *ss, const char *id, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Destroy sessions idle for longer than the TTL. */
void mcp_sessions_expire(struct mcp_sessions *ss);

/* Sessions alive or being created. */
unsigned mcp_sessions_count(struct mcp_sessions *ss);

#endif
