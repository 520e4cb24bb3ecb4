/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Each session sandbox has a thread of its own, which starts it, waits, and
 * destroys it. Not for concurrency: a VMM is started with
 * PR_SET_PDEATHSIG, which fires when the *thread* that forked it ends —
 * started on a tools/call worker, the sandbox would die with that call.
 */
#include "mcp/mcp_sessions.h"
#include "common/err.h"
#include "common/log.h"
#include "common/monotime.h"
#include "run/run_audit.h"
#include "run/run_opts.h"
#include "run/run_workspace.h"
#include "sandbox/agent_conn.h"
#include "sandbox/sandbox.h"
#include "sandbox/spawn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_STARTING, S_READY, S_FAILED, S_ENDING, S_ENDED };

struct mcp_session_thread {
        struct mcp_sessions *ss;
        struct mcp_session *s;
        int intr_fd;
        const char *image; /* static storage (image names are literals) */
        int state;
        struct lg_err *err; /* why it failed to start, or to be destroyed */
        const char *why;    /* why it ends, for the log */
        pthread_t thread;
};

void mcp_sessions_init(struct mcp_sessions *ss, const char *home, uint64_t ttl_ms)
{
        memset(ss, 0, sizeof(*ss));
        ss->home = home;
        ss->ttl_ms = ttl_ms ? ttl_ms : MCP_SESSION_TTL_MS;
        pthread_mutex_init(&ss->lock, NULL);
        pthread_cond_init(&ss->cv, NULL);
}

static void set_state(struct mcp_sessions *ss, struct mcp_session_thread *t, int state)
{
        pthread_mutex_lock(&ss->lock);
        t->state = state;
        pthread_cond_broadcast(&ss->cv);
        pthread_mutex_unlock(&ss->lock);
}

static void wait_state(struct mcp_sessions *ss, struct mcp_session_thread *t, int from)
{
        pthread_mutex_lock(&ss->lock);
        while (t->state == from)
                pthread_cond_wait(&ss->cv, &ss->lock);
        pthread_mutex_unlock(&ss->lock);
}

static void *session_thread(void *arg)
{
        struct mcp_session_thread *t = arg;
        struct mcp_sessions *ss = t->ss;
        struct spawn_opts so = {.image = t->image,
                                .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
                                .cpus = SANDBOX_DEFAULT_CPUS,
                                .boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS,
                                .intr_fd = t->intr_fd,
                                /* base builds in seconds; others are the operator's (run.h). */
                                .build_image = strcmp(t->image, "base") == 0};
        struct run_opts o = {.image = t->image,
                             .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
                             .cpus = SANDBOX_DEFAULT_CPUS};
        struct lg_err *aerr = NULL, *derr = NULL;
        enum spawn_path how;

        if (sandbox_spawn(ss->home, &so, &t->s->sb, &how, &t->err) < 0) {
                set_state(ss, t, S_FAILED);
                return NULL;
        }
        snprintf(t->s->id, sizeof(t->s->id), "%s", sandbox_id(t->s->sb));
        if (run_audit_sandbox(ss->home, t->s->id, &o, "session", &t->err) < 0) {
                if (sandbox_destroy(t->s->sb, &derr) < 0)
                        log_error("%s", derr->msg);
                err_free(&derr);
                set_state(ss, t, S_FAILED);
                return NULL;
        }
        /* Its workspace goes in now, before any call can use it. */
        if (t->s->ws != NULL &&
            run_ws_copy_in(t->s->ws, ss->home, sandbox_agent(t->s->sb), sandbox_vmm_pidfd(t->s->sb),
                           t->s->id, t->intr_fd, &t->err) < 0) {
                if (sandbox_destroy(t->s->sb, &derr) < 0)
                        log_error("%s", derr->msg);
                err_free(&derr);
                if (run_audit_gone(ss->home, t->s->id, 0, NULL, &aerr) < 0)
                        err_free(&aerr);
                set_state(ss, t, S_FAILED);
                return NULL;
        }
        set_state(ss, t, S_READY);
        /* Alive for as long as the session: the sandbox lives as long as this thread. */
        wait_state(ss, t, S_READY);
        if (sandbox_destroy(t->s->sb, &derr) < 0) {
                t->err = derr;
                derr = NULL;
        }
        if (run_audit_gone(ss->home, t->s->id, 0, t->err, &aerr) < 0) {
                log_error("%s", aerr->msg);
                err_free(&aerr);
        }
        log_info("mcp: session sandbox %s destroyed (%s)", t->s->id, t->why);
        set_state(ss, t, S_ENDED);
        return NULL;
}

/* End a session that is out of the table: its thread destroys, verifies, records. */
static int session_end(struct mcp_sessions *ss, struct mcp_session *s, const char *why,
                       struct lg_err **err)
{
        struct mcp_session_thread *t = s->thread;
        int r = 0;

        t->why = why;
        set_state(ss, t, S_ENDING);
        pthread_join(t->thread, NULL);
        if (t->err != NULL) {
                r = err_code(t->err);
                if (err != NULL) {
                        *err = t->err;
                        t->err = NULL;
                }
        }
        err_free(&t->err);
        free(t);
        if (s->ws != NULL)
                run_ws_free(s->ws);
        free(s->ws);
        free(s);
        return r;
}

void mcp_sessions_free(struct mcp_sessions *ss)
{
        for (int i = 0; i < MCP_MAX_SESSIONS; i++) {
                if (ss->s[i] != NULL)
                        (void)session_end(ss, ss->s[i], "the client is gone", NULL);
                ss->s[i] = NULL;
        }
        pthread_cond_destroy(&ss->cv);
        pthread_mutex_destroy(&ss->lock);
}

/* A workspace the operator allowed: inside (or equal to) one of the roots, once resolved. */
static int workspace_allowed(const struct mcp_sessions *ss, const char *dir, char *real)
{
        if (realpath(dir, real) == NULL)
                return -errno;
        for (size_t i = 0; i < ss->n_roots; i++) {
                size_t n = strlen(ss->roots[i]);

                if (strncmp(real, ss->roots[i], n) == 0 &&
                    (real[n] == '\0' || real[n] == '/' || (n == 1 && ss->roots[i][0] == '/')))
                        return 0;
        }
        return -EACCES;
}

int mcp_session_create(struct mcp_sessions *ss, int intr_fd, const char *workspace,
                       const char *image, char *id, size_t idsz, struct lg_err **err)
{
        struct mcp_session *s;
        struct mcp_session_thread *t;
        unsigned live = 0;
        int r = 0, slot = -1;

        struct run_ws *ws = NULL;

        if (workspace != NULL) {
                char real[PATH_MAX];
                struct run_opts o = {.workspace = real, .workspace_max = WS_DEFAULT_MAX_BYTES};

                r = workspace_allowed(ss, workspace, real);
                if (r == -EACCES)
                        return err_set(err, LG_EK_USAGE, 0,
                                       "workspace %.200s is not inside a directory this server "
                                       "was given (luminaguard mcp --workspace-root DIR)",
                                       workspace);
                if (r < 0)
                        return err_set(err, LG_EK_USAGE, -r, "workspace %.200s", workspace);
                ws = calloc(1, sizeof(*ws));
                if (ws == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "workspace");
                /* Packed now: what cannot go in is said before a sandbox starts. */
                r = run_ws_init(ws, ss->home, &o, err);
                if (r < 0) {
                        run_ws_free(ws);
                        free(ws);
                        return r;
                }
        }
        pthread_mutex_lock(&ss->lock);
        for (int i = 0; i < MCP_MAX_SESSIONS; i++)
                live += ss->s[i] != NULL;
        if (live + ss->creating >= MCP_MAX_SESSIONS) {
                if (ws != NULL) {
                        run_ws_free(ws);
                        free(ws);
                }
                pthread_mutex_unlock(&ss->lock);
                return err_set(err, LG_EK_USAGE, 0,
                               "at most %d session sandboxes at once: destroy one first",
                               MCP_MAX_SESSIONS);
        }
        ss->creating++;
        pthread_mutex_unlock(&ss->lock);
        s = calloc(1, sizeof(*s));
        t = calloc(1, sizeof(*t));
        if (s == NULL || t == NULL) {
                if (ws != NULL) {
                        run_ws_free(ws);
                        free(ws);
                }
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "session");
        } else {
                t->ss = ss;
                t->s = s;
                s->ws = ws;
                ws = NULL;
                t->intr_fd = intr_fd;
                t->image = image ? image : "base";
                s->thread = t;
                if (pthread_create(&t->thread, NULL, session_thread, t) != 0)
                        r = err_set(err, LG_EK_INTERNAL, EAGAIN, "session thread");
        }
        if (r == 0) {
                wait_state(ss, t, S_STARTING);
                if (t->state == S_FAILED) {
                        pthread_join(t->thread, NULL);
                        r = t->err ? err_code(t->err) : -EIO;
                        *err = t->err;
                        t->err = NULL;
                }
        }
        pthread_mutex_lock(&ss->lock);
        ss->creating--;
        for (int i = 0; r == 0 && i < MCP_MAX_SESSIONS && slot < 0; i++)
                if (ss->s[i] == NULL)
                        slot = i;
        if (r == 0) {
                s->last_used_ms = mono_ms();
                ss->s[slot] = s; /* a slot was reserved by creating */
        }
        pthread_mutex_unlock(&ss->lock);
        if (r < 0) {
                free(t);
                if (s != NULL && s->ws != NULL) {
                        run_ws_free(s->ws);
                        free(s->ws);
                }
                free(s);
                return r;
        }
        snprintf(id, idsz, "%s", s->id);
        return 0;
}

struct mcp_session *mcp_session_take(struct mcp_sessions *ss, const char *id, struct lg_err **err)
{
        struct mcp_session *found = NULL;

        pthread_mutex_lock(&ss->lock);
        for (int i = 0; i < MCP_MAX_SESSIONS && found == NULL; i++)
                if (ss->s[i] != NULL && strcmp(ss->s[i]->id, id) == 0)
                        found = ss->s[i];
        if (found != NULL && found->busy) {
                pthread_mutex_unlock(&ss->lock);
                err_set(err, LG_EK_USAGE, EBUSY,
                        "sandbox %s is busy with another call; one call at a time", id);
                return NULL;
        }
        if (found != NULL)
                found->busy = 1;
        pthread_mutex_unlock(&ss->lock);
        if (found == NULL)
                err_set(err, LG_EK_USAGE, ENOENT,
                        "no session sandbox %.64s (it may have expired after %llu s idle)", id,
                        (unsigned long long)(ss->ttl_ms / 1000));
        return found;
}

void mcp_session_put(struct mcp_sessions *ss, struct mcp_session *s)
{
        pthread_mutex_lock(&ss->lock);
        s->busy = 0;
        s->last_used_ms = mono_ms();
        pthread_mutex_unlock(&ss->lock);
}

int mcp_session_destroy(struct mcp_sessions *ss, const char *id, struct lg_err **err)
{
        struct mcp_session *s = mcp_session_take(ss, id, err);

        if (s == NULL)
                return -ENOENT;
        pthread_mutex_lock(&ss->lock);
        for (int i = 0; i < MCP_MAX_SESSIONS; i++)
                if (ss->s[i] == s)
                        ss->s[i] = NULL;
        pthread_mutex_unlock(&ss->lock);
        return session_end(ss, s, "sandbox_destroy", err);
}

void mcp_sessions_expire(struct mcp_sessions *ss)
{
        uint64_t now = mono_ms();

        for (int i = 0; i < MCP_MAX_SESSIONS; i++) {
                struct mcp_session *s = NULL;

                pthread_mutex_lock(&ss->lock);
                if (ss->s[i] != NULL && !ss->s[i]->busy &&
                    now - ss->s[i]->last_used_ms > ss->ttl_ms) {
                        s = ss->s[i];
                        ss->s[i] = NULL;
                }
                pthread_mutex_unlock(&ss->lock);
                if (s != NULL)
                        (void)session_end(ss, s, "idle past its TTL", NULL);
        }
}

unsigned mcp_sessions_count(struct mcp_sessions *ss)
{
        unsigned n;

        pthread_mutex_lock(&ss->lock);
        n = ss->creating;
        for (int i = 0; i < MCP_MAX_SESSIONS; i++)
                n += ss->s[i] != NULL;
        pthread_mutex_unlock(&ss->lock);
        return n;
}
