/* SPDX-License-Identifier: Apache-2.0 */
#include "mcp/gateway.h"
#include "audit/audit.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/mcp_tools.h"
#include "mcp/upstream.h"
#include "policy/card.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY_CALL_MS (10 * 60 * 1000) /* an upstream call that never answers */
#define SEP             "__"

/*
 * A prefix from the server's name: "mcp-servers/everything" -> "everything".
 * Never with "__" or a trailing "_": <prefix>__<tool> must split one way only.
 */
static void make_prefix(const char *name, size_t idx, char *out, size_t outsz)
{
        const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        size_t j = 0;

        for (; *base && j + 1 < outsz && j < 32; base++) {
                char ch =
                    isalnum((unsigned char)*base) || *base == '-' ? (char)tolower(*base) : '_';

                if (ch == '_' && (j == 0 || out[j - 1] == '_'))
                        continue;
                out[j++] = ch;
        }
        while (j > 0 && out[j - 1] == '_')
                j--;
        out[j] = '\0';
        if (j == 0)
                snprintf(out, outsz, "upstream%zu", idx + 1);
}

static int prefix_taken(const struct gateway *g, const char *prefix)
{
        for (size_t i = 0; i < g->n; i++)
                if (strcmp(g->up[i]->prefix, prefix) == 0)
                        return 1;
        return 0;
}

int gateway_add(struct gateway *g, const char *cmd, struct lg_err **err)
{
        struct upstream *u;
        char prefix[48];
        int r;

        if (g->n >= GATEWAY_MAX_UPSTREAMS)
                return err_set(err, LG_EK_USAGE, 0, "at most %d --upstream servers",
                               GATEWAY_MAX_UPSTREAMS);
        u = calloc(1, sizeof(*u));
        if (u == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "upstream");
        snprintf(prefix, sizeof(prefix), "upstream%zu", g->n + 1);
        {
                char log[4096];

                snprintf(log, sizeof(log), "%s/logs", g->ctx.home);
                if (fs_mkdir_p(log, 0700) < 0)
                        log_warn("cannot create %s: upstream stderr is lost", log);
                snprintf(log, sizeof(log), "%s/logs/upstream%zu.log", g->ctx.home, g->n + 1);
                upstream_init(u, cmd, prefix, log);
        }
        r = upstream_ensure(u, err);
        if (r < 0) {
                upstream_free(u);
                free(u);
                return r;
        }
        /* Named after what it says it is, unique among the upstreams. */
        make_prefix(u->server_name, g->n, prefix, sizeof(prefix));
        {
                char base[40];

                snprintf(base, sizeof(base), "%.32s", prefix);
                for (unsigned k = 2; prefix_taken(g, prefix); k++)
                        snprintf(prefix, sizeof(prefix), "%s-%u", base, k);
        }
        pthread_mutex_lock(&u->lock);
        snprintf(u->prefix, sizeof(u->prefix), "%s", prefix);
        pthread_mutex_unlock(&u->lock);
        g->up[g->n++] = u;
        return 0;
}

void gateway_list(struct gateway *g, json_t *tools)
{
        for (size_t i = 0; i < g->n; i++) {
                struct upstream *u = g->up[i];
                size_t k;
                json_t *t;

                /*
                 * The last list it gave, even while it is down: a call restarts it
                 * (on a worker, never here on the main loop).
                 */
                pthread_mutex_lock(&u->lock);
                json_array_foreach(u->tools, k, t)
                {
                        const char *name = json_string_value(json_object_get(t, "name"));
                        const char *desc = json_string_value(json_object_get(t, "description"));
                        char full[256], *d = NULL;
                        json_t *c;

                        if (name == NULL || strlen(name) > 128)
                                continue;
                        c = json_deep_copy(t);
                        snprintf(full, sizeof(full), "%s" SEP "%s", u->prefix, name);
                        json_object_set_new(c, "name", json_string(full));
                        if (asprintf(&d,
                                     "[%s, through the LuminaGuard gateway: calls that change "
                                     "anything wait for a human's approval] %s",
                                     u->prefix, desc ? desc : "") >= 0) {
                                json_object_set_new(c, "description", json_string(d));
                                free(d);
                        }
                        json_array_append_new(tools, c);
                }
                pthread_mutex_unlock(&u->lock);
        }
}

/*
 * The upstream and its tool definition (*def: a new reference) for a
 * gateway name, or NULL. The list may be replaced by a restart: read locked.
 */
static struct upstream *find(struct gateway *g, const char *name, json_t **def, const char **tool)
{
        for (size_t i = 0; i < g->n; i++) {
                struct upstream *u = g->up[i];
                size_t n = strlen(u->prefix), k;
                json_t *t;

                if (strncmp(name, u->prefix, n) != 0 || strncmp(name + n, SEP, 2) != 0)
                        continue;
                *tool = name + n + 2;
                pthread_mutex_lock(&u->lock);
                json_array_foreach(u->tools, k, t)
                {
                        const char *tn = json_string_value(json_object_get(t, "name"));

                        if (tn != NULL && strcmp(tn, *tool) == 0) {
                                *def = json_incref(t);
                                pthread_mutex_unlock(&u->lock);
                                return u;
                        }
                }
                pthread_mutex_unlock(&u->lock);
        }
        return NULL;
}

int gateway_has(struct gateway *g, const char *name)
{
        json_t *def = NULL;
        const char *tool;
        struct upstream *u = find(g, name, &def, &tool);

        json_decref(def);
        return u != NULL;
}

static int hint(json_t *ann, const char *key)
{
        json_t *v = json_object_get(ann, key);

        return json_is_boolean(v) ? json_is_true(v) : -1;
}

static void sha256_hex(const char *s, char out[65])
{
        unsigned char d[32];
        unsigned len = 0;

        if (!EVP_Digest(s, strlen(s), d, &len, EVP_sha256(), NULL))
                memset(d, 0, sizeof(d));
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A RED call as a card: the tool, where it goes, every argument, the annotations it claims. */
static struct card *call_card(const struct upstream *u, const char *tool, json_t *ann,
                              const char *argtext)
{
        char title[300];
        struct card *c;

        snprintf(title, sizeof(title), "call %.128s on upstream %s", tool, u->prefix);
        c = card_new("tool.call", title, NULL, NULL);
        if (c == NULL)
                return NULL;
        (void)card_add(c, CARD_TEXT, "upstream: %s (%s)", u->prefix, u->cmd);
        (void)card_add(c, CARD_TEXT, "tool: %s", tool);
        if (ann != NULL) {
                char *a = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);

                (void)card_add(c, CARD_NOTE, "annotations (the upstream's own claims): %s",
                               a ? a : "?");
                free(a);
        }
        (void)card_add(c, CARD_HEADING, "arguments:");
        for (const char *p = argtext; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);

                (void)card_add_raw(c, CARD_CONTEXT, p, n);
                p += n + (nl != NULL);
        }
        return c;
}

json_t *gateway_call(struct gateway *g, const char *name, json_t *args, int intr_fd)
{
        json_t *def = NULL, *ann, *res, *detail;
        const char *tool = NULL;
        struct upstream *u = find(g, name, &def, &tool);
        struct approve_ctx ctx = g->ctx;
        struct approve_answer a;
        struct lg_err *err = NULL;
        char *argtext, digest[65];
        struct card *c = NULL;
        uint64_t t0 = mono_ns();
        int r;

        if (u == NULL)
                return mcp_tool_error("unknown tool %s", name);
        ann = json_object_get(def, "annotations"); /* def is ours (a reference) until the end */
        struct policy_action act = {
            .kind = POLICY_TOOL_CALL,
            .tool = tool,
            .args = args,
            .hints = {.read_only = hint(ann, "readOnlyHint"),
                      .destructive = hint(ann, "destructiveHint"),
                      .idempotent = hint(ann, "idempotentHint"),
                      .open_world = hint(ann, "openWorldHint")},
        };
        struct policy_decision d;

        ctx.intr_fd = intr_fd;
        argtext = json_dumps(args, JSON_INDENT(2) | JSON_SORT_KEYS);
        sha256_hex(argtext ? argtext : "", digest);
        policy_classify(ctx.policy, &act, &d);
        if (d.verdict == POLICY_RED) {
                c = call_card(u, tool, ann, argtext);
                if (c == NULL) {
                        free(argtext);
                        json_decref(def);
                        return mcp_tool_error("out of memory");
                }
        }
        detail = json_pack("{s:s, s:s, s:s}", "upstream", u->prefix, "tool", tool, "args_sha256",
                           digest);
        r = approve_ask(&ctx, &act, c, detail, &a, &err);
        card_free(c);
        /* The call itself, recorded before it goes out (GREEN ones too). */
        if (r == 0) {
                json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s}", "upstream", u->prefix, "tool",
                                      tool, "verdict", policy_verdict_name(d.verdict), "decision",
                                      approve_outcome_name(a.outcome), "args_sha256", digest);

                /* Durable before a RED call goes out (its decision already is); a read needs no
                 * fsync. */
                r = audit_append(ctx.home, "tool.call", NULL, f,
                                 d.verdict == POLICY_RED && approve_granted(&a), &err);
                json_decref(f);
        }
        json_decref(detail);
        free(argtext);
        if (r < 0) {
                res = mcp_tool_error("the call was not made: it could not be recorded (%s)",
                                     err ? err->msg : "?");
                err_free(&err);
                json_decref(def);
                return res;
        }
        if (!approve_granted(&a)) {
                json_decref(def);
                return mcp_tool_error(
                    "denied by the LuminaGuard approval cliff: %s (%s%s%s). A human "
                    "approves such calls when the gateway runs with --approve "
                    "prompt|tui on a terminal, or a policy file allows the tool.",
                    d.reason, approve_outcome_name(a.outcome), a.reason[0] ? ": " : "", a.reason);
        }
        if (upstream_ensure(u, &err) < 0) {
                res = mcp_tool_error("%s", err->msg);
                err_free(&err);
        } else {
                res = upstream_request(u, "tools/call",
                                       json_pack("{s:s, s:O}", "name", tool, "arguments", args),
                                       GATEWAY_CALL_MS, intr_fd, &err);
                if (res == NULL) {
                        res = mcp_tool_error("%s", err ? err->msg : "the upstream failed");
                        err_free(&err);
                }
        }
        {
                json_t *f = json_pack("{s:s, s:s, s:b, s:f}", "upstream", u->prefix, "tool", tool,
                                      "is_error", json_is_true(json_object_get(res, "isError")),
                                      "ms", (double)(mono_ns() - t0) / 1e6);

                if (audit_append(ctx.home, "tool.result", NULL, f, 0, &err) < 0) {
                        log_error("%s", err->msg);
                        err_free(&err);
                }
                json_decref(f);
        }
        json_decref(def);
        return res;
}

void gateway_free(struct gateway *g)
{
        for (size_t i = 0; i < g->n; i++) {
                upstream_free(g->up[i]);
                free(g->up[i]);
        }
        g->n = 0;
}
