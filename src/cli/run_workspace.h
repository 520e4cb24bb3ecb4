/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `run --workspace DIR`: the three moments of workspace sync around one
 * command — copy in before it runs, copy out after it ends (both while the
 * sandbox lives), and, once the sandbox is gone, show the change set as a
 * Diff Card, ask for approval and apply it (src/workspace, src/policy).
 */
#ifndef LG_CLI_RUN_WORKSPACE_H
#define LG_CLI_RUN_WORKSPACE_H

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
        int tar_fd; /* DIR as packed, unlinked (O_TMPFILE) */
        int have_changes;
        char sandbox[64];
};

/*
 * Resolve DIR and pack it (ws_pack) into a temporary file under home,
 * before a sandbox is started: a DIR that cannot go in fails early.
 * run_ws_free() afterwards either way. 0 / < 0 with *err.
 */
int run_ws_init(struct run_ws *w, const char *home, const struct run_opts *o, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Pack DIR and unpack it as /workspace in the sandbox behind c. */
int run_ws_copy_in(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                   const char *sandbox, int intr_fd, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Take /workspace back out as a change set under <home>/changes/<sandbox>. */
int run_ws_copy_out(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                    int intr_fd, struct lg_err **err) __attribute__((warn_unused_result));

/*
 * After the sandbox is gone: nothing changed, or card + approval + apply.
 * Prints the outcome for the user. Returns 0 when DIR now holds the
 * sandbox's result (or nothing changed), 1 when the changes were not
 * applied (denied, timed out, conflict: said, and where they are kept),
 * < 0 with *err when the audit log could not record a step.
 */
int run_ws_settle(struct run_ws *w, const char *home, const struct run_opts *o,
                  const struct policy *p, int intr_fd, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * The decision on a saved change set: Diff Card, approval (ctx), apply,
 * the outcome in the audit log; the store is removed once applied. Used by
 * run_ws_settle() and by `luminaguard changes apply`. Same returns.
 */
struct approve_ctx;
int run_ws_decide(const char *home, const struct ws_changeset *cs, const char *sandbox,
                  const struct approve_ctx *ctx, struct lg_err **err)
    __attribute__((warn_unused_result));

void run_ws_free(struct run_ws *w);

#endif
