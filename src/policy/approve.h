/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The approval flow (DESIGN.md §5): classify an action; GREEN goes ahead at
 * once; RED becomes a Diff Card that waits for the configured approver, and
 * both the request and the decision are in the audit log — fsync'd — before
 * the caller may act. The caller records the action's outcome afterwards
 * (e.g. "workspace.apply").
 */
#ifndef LG_POLICY_APPROVE_H
#define LG_POLICY_APPROVE_H

#include <jansson.h>

#include "policy/approver.h"
#include "policy/policy.h"

struct card;
struct lg_err;

struct approve_ctx {
        const char *home;            /* for the audit log */
        const struct policy *policy; /* NULL: built-in rules */
        enum approve_mode mode;
        int timeout_ms; /* <= 0: APPROVE_DEFAULT_TIMEOUT_MS */
        int intr_fd;    /* readable = cancel; -1 for none */
};

/*
 * Decide on act. c is the card to show for a RED action (its id and
 * decision are filled in here; NULL is an error for a RED action); detail
 * (borrowed, may be NULL) is added to the audit record of the request.
 * Returns 0 with *a filled — approved or not — or < 0 when the request or
 * the decision could not be recorded, or no random request id could be had:
 * then the action must not happen.
 */
int approve_ask(const struct approve_ctx *ctx, const struct policy_action *act, struct card *c,
                json_t *detail, struct approve_answer *a, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Is the answer a yes? */
static inline int approve_granted(const struct approve_answer *a)
{
        return a->outcome == APPROVE_APPROVED;
}

#endif
