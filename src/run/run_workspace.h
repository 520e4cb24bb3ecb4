/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `run --workspace DIR`: the three moments of workspace sync around one
 * command — copy in before it runs, copy out after it ends (both while the
 * sandbox lives), and, once the sandbox is gone, show the change set as a
 * Diff Card, ask for approval and apply it (src/workspace, src/policy).
 */
#ifndef LG_RUN_RUN_WORKSPACE_H
#define LG_RUN_RUN_WORKSPACE_H

#include <limits.h>

#include "workspace/workspace.h"

struct agent_conn;
struct lg_err;
struct run_opts;
struct policy;

struct run_ws {
        char dir[PATH_MAX]; /* DIR, resolved */
        struct ws_limits lim;
        struct ws_manifest m;
        struct ws_changeset cs;
        int tar_fd;  /* DIR as packed, unlinked (O_TMPFILE) */
        int lock_fd; /* the change set's lock (run_ws_lock) while it is decided, else -1 */
        int have_changes;
        char sandbox[64];
        unsigned outs; /* copy-outs so far: the second and later name their store <sandbox>-<n> */
        int in_only;   /* --workspace-in: nothing comes back */
};

/* What run_ws_settle() and run_ws_decide() report (>= 0), besides < 0 with *err. */
enum run_ws_result {
        RUN_WS_DONE = 0,        /* DIR holds the sandbox's result, or nothing changed */
        RUN_WS_NOT_APPLIED = 1, /* denied, timed out, cancelled, in conflict: said, and kept */
        /*
         * The audit log could not record a step (approve_ask() failed: its
         * request or decision is not on record, so nothing was applied; or
         * the workspace.apply record after the apply): *err says which, and
         * whether DIR was changed — an apply that is done stays done.
         */
        RUN_WS_UNAUDITED = 2,
};

/*
 * Resolve DIR and pack it (ws_pack) into a temporary file under home,
 * before a sandbox is started: a DIR that cannot go in fails early, and so
 * does one that holds home or lies inside it (LG_EK_USAGE). run_ws_free()
 * afterwards either way. 0 / < 0 with *err.
 */
int run_ws_init(struct run_ws *w, const char *home, const struct run_opts *o, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Unpack the packed DIR as /workspace in the sandbox behind c, recorded as
 * workspace.copy_in — with "ok": false and the error when it failed, in
 * which case the command must not run (and has no exec.end).
 */
int run_ws_copy_in(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                   const char *sandbox, int intr_fd, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Take /workspace back out as a change set under <home>/changes/<sandbox>.
 * *err's message is safe to print (names from the sandbox are sanitised).
 */
int run_ws_copy_out(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                    int intr_fd, struct lg_err **err) __attribute__((warn_unused_result));

/*
 * After the sandbox is gone: nothing changed, or save, card, approval and
 * apply, under the change set's lock (run_ws_lock) from before it is saved
 * until the decision is acted on. Prints the outcome for the user. Returns
 * an enum run_ws_result, or < 0 with *err when the change set could not be
 * saved (its store is then removed) or shown: nothing was applied. *err's
 * message is safe to print.
 */
int run_ws_settle(struct run_ws *w, const char *home, const struct run_opts *o,
                  const struct policy *p, int intr_fd, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * The decision on a saved change set whose lock the caller holds: Diff
 * Card, approval (ctx), apply, the outcome in the audit log; the store is
 * removed once applied. Used by run_ws_settle() and by `luminaguard changes
 * apply`. Same returns.
 */
struct approve_ctx;
int run_ws_decide(const char *home, const struct ws_changeset *cs, const char *sandbox,
                  const struct approve_ctx *ctx, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Take the lock of the change set in store (flock LOCK_EX on <store>/.lock,
 * which then holds our pid): waiting for it, or, without wait, failing at
 * once with LG_EK_USAGE "change set ID is being decided by another
 * luminaguard (pid N)". The descriptor (closing it releases the lock), or
 * < 0 with *err (LG_EK_USAGE when there is no such store).
 */
int run_ws_lock(const char *store, const char *id, int wait, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * After an apply, DIR holds the sandbox's workspace: pack it again so that
 * the next change set (a long-lived MCP session) is against what DIR is now.
 */
int run_ws_repack(struct run_ws *w, const char *home, struct lg_err **err)
    __attribute__((warn_unused_result));

void run_ws_free(struct run_ws *w);

#endif
