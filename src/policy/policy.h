/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Approval Cliff's classifier (DESIGN.md §5): is an action GREEN (runs
 * at once) or RED (waits for a human)? A pure function of the action and
 * the policy rules, table-tested (tests/unit/test_policy.c).
 *
 * Built in:
 *  - anything inside a sandbox is GREEN (the sandbox is the point);
 *  - applying changes to the host's workspace is RED;
 *  - egress inside the allow-list is GREEN, outside it RED;
 *  - an upstream tool call is GREEN only when its name says it only reads:
 *    the name is split into words (snake, kebab, dotted, camelCase), never
 *    matched by substring ("thread" holds no "read"), every verb in it must
 *    be a reading one and no word may be a changing one ("get_and_delete"
 *    is RED); arguments can make it RED (force/delete/overwrite flags, SQL
 *    that writes); MCP annotations are hints that can only make it RED
 *    (destructiveHint), never GREEN; anything unknown is RED.
 *
 * A policy file can change that per tool or destination, one rule a line:
 *     allow tool GLOB        (fnmatch; trusted by its operator)
 *     deny tool GLOB
 *     allow egress HOST      (exact, lower-case)
 *     # comments and blank lines
 * The first matching rule wins; deny rules are checked before allow rules.
 */
#ifndef LG_POLICY_POLICY_H
#define LG_POLICY_POLICY_H

#include <jansson.h>
#include <stddef.h>

enum policy_kind {
        POLICY_SANDBOX_EXEC,    /* a command inside a sandbox */
        POLICY_WORKSPACE_APPLY, /* a change set applied to a host directory */
        POLICY_EGRESS,          /* a connection out of a sandbox */
        POLICY_TOOL_CALL,       /* an upstream MCP tool call */
};

enum policy_verdict { POLICY_GREEN, POLICY_RED };
enum policy_risk { POLICY_RISK_NONE, POLICY_RISK_LOW, POLICY_RISK_MEDIUM, POLICY_RISK_HIGH };

/* An MCP tool annotation: -1 absent, 0 false, 1 true. */
struct policy_hints {
        int read_only, destructive, idempotent, open_world;
};

struct policy_action {
        enum policy_kind kind;
        const char *tool; /* TOOL_CALL: its name */
        json_t *args;     /* TOOL_CALL: its arguments (may be NULL) */
        struct policy_hints hints;
        const char *host;     /* EGRESS: destination name or address */
        int in_allowlist;     /* EGRESS: the sandbox's allow-list admits it */
        size_t files_deleted; /* WORKSPACE_APPLY: what the change set does */
        size_t files_changed;
};

struct policy_decision {
        enum policy_verdict verdict;
        enum policy_risk risk;
        char reason[256];
};

#define POLICY_MAX_RULES 256

struct policy_rule {
        int allow;  /* else deny */
        int egress; /* else tool */
        char pattern[256];
};

struct policy {
        struct policy_rule rules[POLICY_MAX_RULES];
        size_t n;
};

/* Parse a policy file's text. 0, or -EINVAL with why naming the line. */
int policy_parse(const char *text, struct policy *p, char *why, size_t whysz);

/* Classify a; p may be NULL (built-in rules only). Never fails: unknown is RED. */
void policy_classify(const struct policy *p, const struct policy_action *a,
                     struct policy_decision *d);

const char *policy_verdict_name(enum policy_verdict v);
const char *policy_risk_name(enum policy_risk r);

#endif
