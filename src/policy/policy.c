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
    "get",     "list",    "read",    "fetch",     "search",    "find",      "query",    "describe",
    "show",    "view",    "stat",    "head",      "count",     "check",     "lookup",   "inspect",
    "echo",    "ping",    "status",  "info",      "browse",    "peek",      "explain",  "validate",
    "preview", "diff",    "compare", "summarize", "summarise", "translate", "watch",    "wait",
    "tail",    "cat",     "ls",      "grep",      "print",     "sample",    "estimate", "tree",
    "whoami",  "version", "help",
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
    "upsert",
    "fix",
    "mark",
    "close",
    "reopen",
    "assign",
    "submit",
    "click",
    "fill",
    "type",
    "press",
    "navigate",
    "fork",
    "star",
    "unstar",
    "follow",
    "unfollow",
    "comment",
    "label",
    "dismiss",
    "accept",
    "reject",
    "block",
    "mute",
    "pin",
    "revert",
    "rollback",
    "attach",
    "detach",
    "resolve",
    "watch",
    "unwatch",
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
 * In the list as it is or as the verb it is a form of: "deletes",
 * "deleting", "deleted", "removal", "writer" count as their verbs.
 */
static int in_forms(const char *w, const char *const *list, size_t n)
{
        static const char *const suffixes[] = {"ing", "ed", "es",  "s",    "er",
                                               "ers", "al", "ion", "ions", "ment"};
        char base[72];
        size_t len = strlen(w);

        if (in(w, list, n))
                return 1;
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
                size_t sl = strlen(suffixes[i]);

                if (len <= sl + 1 || len - sl + 2 > sizeof(base) ||
                    strcmp(w + len - sl, suffixes[i]) != 0)
                        continue;
                memcpy(base, w, len - sl);
                base[len - sl] = '\0';
                if (in(base, list, n))
                        return 1;
                base[len - sl] = 'e'; /* delet-ing -> delete, remov-al -> remove */
                base[len - sl + 1] = '\0';
                if (in(base, list, n))
                        return 1;
                /* stopp-ed -> stop: a doubled last consonant */
                if (len - sl >= 3 && w[len - sl - 1] == w[len - sl - 2]) {
                        base[len - sl - 1] = '\0';
                        if (in(base, list, n))
                                return 1;
                }
        }
        return 0;
}

#define IN_FORMS(w, list) in_forms((w), (list), sizeof(list) / sizeof((list)[0]))

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
                    /* the end of an acronym: "HTTPDelete" is http + delete */
                    (len > 0 && isupper(c) && isupper((unsigned char)p[-1]) &&
                     islower((unsigned char)p[1])) ||
                    (len > 0 && (isdigit(c) != 0) != (isdigit((unsigned char)p[-1]) != 0));

                if (c >= 0x80 || (c != '\0' && c < 0x20))
                        return -1; /* look-alike letters and control bytes: not a name we read */

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

/* Set: anything but false, null, 0, 0.0, "", "false", "no", "0", [] and {}. */
static int truthy(json_t *v)
{
        if (v == NULL || json_is_false(v) || json_is_null(v))
                return 0;
        if (json_is_number(v))
                return json_number_value(v) != 0.0;
        if (json_is_string(v))
                return json_string_length(v) > 0 &&
                       strcasecmp(json_string_value(v), "false") != 0 &&
                       strcmp(json_string_value(v), "0") != 0 &&
                       strcasecmp(json_string_value(v), "no") != 0;
        if (json_is_array(v))
                return json_array_size(v) > 0;
        if (json_is_object(v))
                return json_object_size(v) > 0;
        return 1;
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

/* A statement a query tool may run without asking: one read-only SQL statement. */
static int sql_reads_only(const char *s)
{
        static const char *const first[] = {"select", "show", "explain", "describe",
                                            "desc",   "with", "values"};
        static const char *const never[] = {
            "into",   "copy",     "attach",    "detach",  "pragma",     "call",   "execute",
            "exec",   "do",       "set",       "load",    "lock",       "vacuum", "begin",
            "commit", "rollback", "savepoint", "prepare", "deallocate", "listen", "notify",
            "import", "install",  "program",   "outfile", "dumpfile"};
        size_t n = strlen(s), count = 0;
        char w[64];

        /* Comments hide what a reader of words would miss; a second statement too. */
        if (strstr(s, "/*") != NULL || strstr(s, "--") != NULL || strchr(s, '#') != NULL)
                return 0;
        for (const char *semi = strchr(s, ';'); semi != NULL; semi = strchr(semi + 1, ';')) {
                if (semi[1 + strspn(semi + 1, " \t\r\n;")] != '\0')
                        return 0;
        }
        for (size_t i = 0; i < n;) {
                size_t len = 0;

                while (i < n && !isalnum((unsigned char)s[i]) && s[i] != '_')
                        i++;
                while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_')) {
                        if (len < sizeof(w) - 1)
                                w[len++] = (char)tolower((unsigned char)s[i]);
                        i++;
                }
                if (len == 0)
                        break;
                w[len] = '\0';
                if (count++ == 0 && !IN(w, first))
                        return 0;
                if (IN(w, never) || IN(w, writing_statements))
                        return 0;
        }
        return count > 0;
}

/* Does the string start like SQL (so that it must be read as SQL)? */
static int looks_like_sql(const char *s)
{
        static const char *const keywords[] = {
            "select", "show",    "explain", "describe", "desc",   "with",     "values", "insert",
            "update", "delete",  "drop",    "create",   "alter",  "truncate", "grant",  "revoke",
            "merge",  "replace", "copy",    "attach",   "pragma", "call",     "exec",   "execute",
            "do",     "set",     "load",    "lock",     "vacuum", "begin",    "commit", "upsert"};
        char w[32];
        size_t len = 0;

        s += strspn(s, " \t\r\n(");
        while (isalpha((unsigned char)*s) && len < sizeof(w) - 1)
                w[len++] = (char)tolower((unsigned char)*s++);
        w[len] = '\0';
        return len > 0 && IN(w, keywords);
}

#define ARGS_MAX_DEPTH 8

/*
 * Walk the arguments: a flag that destroys, set; an HTTP method or action
 * that changes; a command to run; SQL that writes. 1 with why filled when
 * one is found (or the arguments are too deep to be sure).
 */
static int args_change(json_t *v, const char *key, int depth, int query_tool, char *why,
                       size_t whysz)
{
        char kw[MAX_WORDS][64];
        int kn = key ? words(key, kw) : 0, sql_key = 0, cmd_key = 0, action_key = 0;
        size_t i;
        const char *k;
        json_t *e;

        if (depth > ARGS_MAX_DEPTH) {
                snprintf(why, whysz, "arguments nested deeper than %d", ARGS_MAX_DEPTH);
                return 1;
        }
        if (kn < 0) {
                snprintf(why, whysz, "an argument name that is not a plain name");
                return 1;
        }
        for (int w = 0; w < kn; w++) {
                if (IN(kw[w], dangerous_args) && truthy(v)) {
                        snprintf(why, whysz, "argument %.150s is set", key);
                        return 1;
                }
                sql_key |= !strcmp(kw[w], "sql") || !strcmp(kw[w], "query") ||
                           !strcmp(kw[w], "statement") || !strcmp(kw[w], "statements");
                cmd_key |= !strcmp(kw[w], "cmd") || !strcmp(kw[w], "command") ||
                           !strcmp(kw[w], "commands") || !strcmp(kw[w], "script") ||
                           !strcmp(kw[w], "shell");
                action_key |= !strcmp(kw[w], "method") || !strcmp(kw[w], "verb") ||
                              !strcmp(kw[w], "action") || !strcmp(kw[w], "op") ||
                              !strcmp(kw[w], "operation") || !strcmp(kw[w], "mode");
        }
        if (json_is_string(v)) {
                const char *s = json_string_value(v);

                if (cmd_key && s[0] != '\0') {
                        snprintf(why, whysz, "argument %.150s is a command to run", key);
                        return 1;
                }
                if (action_key) {
                        char aw[MAX_WORDS][64];
                        int an = words(s, aw);

                        if (an < 0 ||
                            (an > 0 && strcmp(aw[0], "get") != 0 && strcmp(aw[0], "head") != 0 &&
                             strcmp(aw[0], "options") != 0 && !IN(aw[0], reading))) {
                                snprintf(why, whysz, "argument %.100s asks for %.60s", key, s);
                                return 1;
                        }
                }
                /* Where SQL is expected (a sql/query/statement argument, a query tool). */
                if ((sql_key || query_tool) && looks_like_sql(s) && !sql_reads_only(s)) {
                        snprintf(why, whysz, "argument %.150s holds SQL that may write", key);
                        return 1;
                }
                if ((sql_key || query_tool) && s[0] != '\0' && !looks_like_sql(s) &&
                    writes_something(s)) {
                        snprintf(why, whysz, "argument %.150s holds a statement that writes", key);
                        return 1;
                }
                return 0;
        }
        json_array_foreach(v, i, e)
        {
                if (args_change(e, key, depth + 1, query_tool, why, whysz))
                        return 1;
        }
        json_object_foreach(v, k, e)
        {
                if (args_change(e, k, depth + 1, query_tool, why, whysz))
                        return 1;
        }
        return 0;
}

static void classify_tool(const struct policy_action *a, struct policy_decision *d)
{
        char w[MAX_WORDS][64], why[256];
        int n = a->tool ? words(a->tool, w) : -1, reads = 0, query = 0;

        if (n <= 0) {
                decide(d, POLICY_RED, POLICY_RISK_MEDIUM, "tool name '%.200s' is not one we read",
                       a->tool ? a->tool : "");
                return;
        }
        for (int i = 0; i < n; i++) {
                if (IN_FORMS(w[i], changing) ||
                    (!strcmp(w[i], "check") && i + 1 < n &&
                     (!strcmp(w[i + 1], "in") || !strcmp(w[i + 1], "out")))) {
                        decide(d, POLICY_RED, POLICY_RISK_HIGH, "tool name has a changing word: %s",
                               w[i]);
                        return;
                }
                reads += IN(w[i], reading);
                query |= strcmp(w[i], "query") == 0 || strcmp(w[i], "sql") == 0;
        }
        if (a->hints.destructive == 1) {
                decide(d, POLICY_RED, POLICY_RISK_HIGH, "the tool declares itself destructive");
                return;
        }
        if (a->args != NULL && args_change(a->args, NULL, 0, query, why, sizeof(why))) {
                decide(d, POLICY_RED, POLICY_RISK_HIGH, "%s", why);
                return;
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
                        /* Deny rules ignore case: "*delete*" must catch "DeleteRepo". */
                        if (r->egress
                                ? strcasecmp(subject, r->pattern) == 0
                                : fnmatch(r->pattern, subject, r->allow ? 0 : FNM_CASEFOLD) == 0) {
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
