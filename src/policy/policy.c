/* SPDX-License-Identifier: Apache-2.0 */
#include "policy/policy.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_WORDS 16

/* Verbs of tools that only look. */
static const char *const reading[] = {
    "get",     "list",   "read",    "fetch",     "search",    "find",      "query",   "describe",
    "show",    "view",   "stat",    "head",      "count",     "check",     "lookup",  "inspect",
    "echo",    "ping",   "status",  "info",      "browse",    "peek",      "explain", "validate",
    "preview", "diff",   "compare", "summarize", "summarise", "translate", "resolve", "watch",
    "wait",    "tail",   "cat",     "ls",        "grep",      "print",     "sample",  "estimate",
    "tree",    "whoami", "version", "help",
};

/* Words that change something, here or elsewhere (a dangerous noun counts too). */
static const char *const changing[] = {
    /* destroying */
    "delete",
    "del",
    "remove",
    "rm",
    "rmdir",
    "drop",
    "destroy",
    "purge",
    "truncate",
    "wipe",
    "erase",
    "kill",
    "terminate",
    "revoke",
    "reset",
    "overwrite",
    "unlink",
    "format",
    "shred",
    "clear",
    "clean",
    "prune",
    "evict",
    "cancel",
    "disable",
    "uninstall",
    "unpublish",
    "archive",
    /* writing, sending, paying, running */
    "write",
    "create",
    "update",
    "upload",
    "put",
    "patch",
    "set",
    "insert",
    "add",
    "append",
    "edit",
    "modify",
    "move",
    "mv",
    "rename",
    "copy",
    "cp",
    "save",
    "store",
    "commit",
    "push",
    "merge",
    "rebase",
    "tag",
    "publish",
    "deploy",
    "release",
    "install",
    "upgrade",
    "apply",
    "send",
    "post",
    "email",
    "mail",
    "message",
    "notify",
    "reply",
    "forward",
    "tweet",
    "sms",
    "call",
    "pay",
    "payment",
    "transfer",
    "charge",
    "refund",
    "purchase",
    "buy",
    "order",
    "sell",
    "invoice",
    "withdraw",
    "deposit",
    "exec",
    "execute",
    "run",
    "eval",
    "shell",
    "spawn",
    "start",
    "stop",
    "restart",
    "launch",
    "trigger",
    "invoke",
    "schedule",
    "enable",
    "grant",
    "invite",
    "share",
    "approve",
    "sign",
    "login",
    "logout",
    "register",
    "subscribe",
    "chmod",
    "chown",
    "mkdir",
    "touch",
    "lock",
    "unlock",
    "import",
    "sync",
    "restore",
    "migrate",
    "replace",
    "substitute",
    "swap",
    "exit",
    "quit",
    "shutdown",
    "reboot",
};

/* Argument names that turn a call into a changing one when set. */
static const char *const dangerous_args[] = {"force",   "delete", "overwrite", "recursive", "purge",
                                             "destroy", "drop",   "wipe",      "rm"};

/* SQL and shell words that write, in a string argument of a query-like tool. */
static const char *const writing_statements[] = {
    "drop",   "delete", "truncate", "alter", "insert", "update", "grant",
    "revoke", "create", "replace",  "merge", "rm",     "mv",     "chmod"};

static int in(const char *w, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (strcmp(w, list[i]) == 0)
                        return 1;
        }
        return 0;
}

#define IN(w, list) in((w), (list), sizeof(list) / sizeof((list)[0]))

/*
 * Split a name into lower-case words: on any non-alphanumeric byte, between
 * a lower-case letter and an upper-case one (camelCase), and between letters
 * and digits. Returns the number of words (at most MAX_WORDS; more is -1).
 */
static int words(const char *s, char w[MAX_WORDS][64])
{
        int n = 0;
        size_t len = 0;

        for (const char *p = s;; p++) {
                unsigned char c = (unsigned char)*p;
                int boundary =
                    !isalnum(c) || (len > 0 && isupper(c) && islower((unsigned char)p[-1])) ||
                    (len > 0 && (isdigit(c) != 0) != (isdigit((unsigned char)p[-1]) != 0));

                if (boundary && len > 0) {
                        w[n][len] = '\0';
                        if (++n == MAX_WORDS)
                                return -1;
                        len = 0;
                }
                if (c == '\0')
                        break;
                if (isalnum(c)) {
                        if (len + 1 >= 64)
                                return -1;
                        w[n][len++] = (char)tolower(c);
                }
        }
        return n;
}

static int truthy(json_t *v)
{
        return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0) ||
               (json_is_string(v) && json_string_length(v) > 0 &&
                strcasecmp(json_string_value(v), "false") != 0 &&
                strcmp(json_string_value(v), "0") != 0 &&
                strcasecmp(json_string_value(v), "no") != 0);
}

/* A string that contains a writing statement as a word ("DROP TABLE", "rm -rf"). */
static int writes_something(const char *s)
{
        char w[MAX_WORDS][64];
        char chunk[1024];
        size_t off = 0, len = strlen(s);

        /* In chunks, so a long argument is searched whole (words() caps its count). */
        while (off < len) {
                size_t take = len - off < sizeof(chunk) - 1 ? len - off : sizeof(chunk) - 1;
                int n;

                /* Cut on a space when possible, so no word is split between chunks. */
                if (off + take < len) {
                        const char *sp = memrchr(s + off, ' ', take);

                        if (sp != NULL && sp > s + off)
                                take = (size_t)(sp - (s + off));
                }
                memcpy(chunk, s + off, take);
                chunk[take] = '\0';
                off += take ? take : 1;
                for (char *t = chunk, *end; *t; t = end) {
                        char piece[512];
                        size_t plen;

                        end = t + strcspn(t, " \t\n;");
                        plen = (size_t)(end - t) < sizeof(piece) - 1 ? (size_t)(end - t)
                                                                     : sizeof(piece) - 1;
                        memcpy(piece, t, plen);
                        piece[plen] = '\0';
                        n = words(piece, w);
                        for (int i = 0; i < n; i++) {
                                if (IN(w[i], writing_statements))
                                        return 1;
                        }
                        if (*end)
                                end++;
                }
        }
        return 0;
}

static void decide(struct policy_decision *d, enum policy_verdict v, enum policy_risk r,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void decide(struct policy_decision *d, enum policy_verdict v, enum policy_risk r,
                   const char *fmt, ...)
{
        va_list ap;

        d->verdict = v;
        d->risk = r;
        va_start(ap, fmt);
        vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
        va_end(ap);
}

static void classify_tool(const struct policy_action *a, struct policy_decision *d)
{
        char w[MAX_WORDS][64];
        int n = a->tool ? words(a->tool, w) : -1, reads = 0, query = 0;
        const char *key;
        json_t *v;

        if (n <= 0) {
                decide(d, POLICY_RED, POLICY_RISK_MEDIUM, "tool name '%.200s' says nothing",
                       a->tool ? a->tool : "");
                return;
        }
        for (int i = 0; i < n; i++) {
                if (IN(w[i], changing)) {
                        decide(d, POLICY_RED, POLICY_RISK_HIGH, "tool name has a changing word: %s",
                               w[i]);
                        return;
                }
                reads += IN(w[i], reading);
                query |= strcmp(w[i], "query") == 0 || strcmp(w[i], "sql") == 0 ||
                         strcmp(w[i], "exec") == 0 || strcmp(w[i], "command") == 0 ||
                         strcmp(w[i], "cmd") == 0 || strcmp(w[i], "script") == 0;
        }
        if (a->hints.destructive == 1) {
                decide(d, POLICY_RED, POLICY_RISK_HIGH, "the tool declares itself destructive");
                return;
        }
        json_object_foreach(a->args, key, v)
        {
                char kw[MAX_WORDS][64];
                int kn = words(key, kw);

                for (int i = 0; i < kn; i++) {
                        if (IN(kw[i], dangerous_args) && truthy(v)) {
                                decide(d, POLICY_RED, POLICY_RISK_HIGH, "argument %.200s is set",
                                       key);
                                return;
                        }
                }
                if (query && json_is_string(v) && writes_something(json_string_value(v))) {
                        decide(d, POLICY_RED, POLICY_RISK_HIGH,
                               "argument %.180s holds a statement that writes", key);
                        return;
                }
        }
        if (reads == 0) {
                decide(d, POLICY_RED, POLICY_RISK_MEDIUM,
                       "no verb in '%.160s' is known to only read: unknown is RED", a->tool);
                return;
        }
        decide(d, POLICY_GREEN, POLICY_RISK_NONE, "'%.200s' only reads", a->tool);
}

void policy_classify(const struct policy *p, const struct policy_action *a,
                     struct policy_decision *d)
{
        memset(d, 0, sizeof(*d));
        /* The operator's rules first: deny before allow. */
        for (int pass = 0; p != NULL && pass < 2; pass++) {
                for (size_t i = 0; i < p->n; i++) {
                        const struct policy_rule *r = &p->rules[i];
                        const char *subject = r->egress
                                                  ? (a->kind == POLICY_EGRESS ? a->host : NULL)
                                                  : (a->kind == POLICY_TOOL_CALL ? a->tool : NULL);

                        if (r->allow != pass || subject == NULL)
                                continue;
                        if (r->egress ? strcasecmp(subject, r->pattern) == 0
                                      : fnmatch(r->pattern, subject, 0) == 0) {
                                if (r->allow)
                                        decide(d, POLICY_GREEN, POLICY_RISK_NONE,
                                               "allowed by the policy file (%.200s)", r->pattern);
                                else
                                        decide(d, POLICY_RED, POLICY_RISK_HIGH,
                                               "denied by the policy file (%.200s)", r->pattern);
                                return;
                        }
                }
        }
        switch (a->kind) {
        case POLICY_SANDBOX_EXEC:
                decide(d, POLICY_GREEN, POLICY_RISK_NONE, "inside the sandbox");
                return;
        case POLICY_WORKSPACE_APPLY:
                decide(d, POLICY_RED,
                       a->files_deleted > 0    ? POLICY_RISK_HIGH
                       : a->files_changed > 20 ? POLICY_RISK_MEDIUM
                                               : POLICY_RISK_LOW,
                       "changes files on the host");
                return;
        case POLICY_EGRESS:
                if (a->in_allowlist)
                        decide(d, POLICY_GREEN, POLICY_RISK_NONE, "%s is in the allow-list",
                               a->host);
                else
                        decide(d, POLICY_RED, POLICY_RISK_MEDIUM,
                               "%.200s is outside the allow-list", a->host);
                return;
        case POLICY_TOOL_CALL:
                classify_tool(a, d);
                return;
        }
        decide(d, POLICY_RED, POLICY_RISK_HIGH, "unknown action");
}

int policy_parse(const char *text, struct policy *p, char *why, size_t whysz)
{
        int lineno = 0;

        memset(p, 0, sizeof(*p));
        why[0] = '\0';
        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                char buf[512], verb[16], what[16], pat[300];
                int got;

                lineno++;
                if (len >= sizeof(buf)) {
                        snprintf(why, whysz, "line %d: too long", lineno);
                        return -EINVAL;
                }
                memcpy(buf, line, len);
                buf[len] = '\0';
                line = nl ? nl + 1 : NULL;
                if (buf[strspn(buf, " \t")] == '\0' || buf[strspn(buf, " \t")] == '#')
                        continue;
                got = sscanf(buf, " %15s %15s %299s", verb, what, pat);
                if (got != 3 || (strcmp(verb, "allow") != 0 && strcmp(verb, "deny") != 0) ||
                    (strcmp(what, "tool") != 0 && strcmp(what, "egress") != 0) ||
                    strlen(pat) >= sizeof(p->rules[0].pattern)) {
                        snprintf(why, whysz,
                                 "line %d: expected 'allow|deny tool GLOB' or 'allow|deny egress "
                                 "HOST'",
                                 lineno);
                        return -EINVAL;
                }
                if (p->n == POLICY_MAX_RULES) {
                        snprintf(why, whysz, "line %d: more than %d rules", lineno,
                                 POLICY_MAX_RULES);
                        return -EINVAL;
                }
                p->rules[p->n].allow = strcmp(verb, "allow") == 0;
                p->rules[p->n].egress = strcmp(what, "egress") == 0;
                memcpy(p->rules[p->n].pattern, pat, strlen(pat) + 1); /* length checked above */
                p->n++;
        }
        return 0;
}

const char *policy_verdict_name(enum policy_verdict v)
{
        return v == POLICY_GREEN ? "GREEN" : "RED";
}

const char *policy_risk_name(enum policy_risk r)
{
        static const char *const names[] = {"none", "low", "medium", "high"};

        return (unsigned)r < 4 ? names[r] : "?";
}
