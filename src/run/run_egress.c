/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_egress.h"
#include "run/run_opts.h"
#include "common/err.h"
#include "common/log.h"
#include "policy/card.h"

#include <stdio.h>
#include <string.h>

/* A `deny egress HOST` rule matched (policy_classify() says so in its reason). */
static int denied_by_rule(const struct policy_decision *d)
{
        static const char prefix[] = "denied by the policy file";

        return d->verdict == POLICY_RED && strncmp(d->reason, prefix, sizeof(prefix) - 1) == 0;
}

/* The answer as the proxy counts it: a question nobody answered stops the asking. */
static enum net_ask answer_of(const struct approve_answer *a)
{
        switch (a->outcome) {
        case APPROVE_APPROVED:
                return NET_ASK_ALLOWED;
        case APPROVE_DENIED:
                return NET_ASK_DENIED;
        case APPROVE_TIMEOUT:
        case APPROVE_CANCELLED:
        case APPROVE_NO_APPROVER:
                break;
        }
        return NET_ASK_STOP;
}

enum net_ask run_egress_ask(void *v, const char *host, unsigned port, int tunnel)
{
        struct run_egress *e = v;
        struct policy_action act = {.kind = POLICY_EGRESS, .host = host, .in_allowlist = 0};
        const char *sandbox = e->sandbox_id ? *e->sandbox_id : NULL;
        struct policy_decision d;
        struct approve_answer a;
        struct lg_err *err = NULL;
        char title[NET_MAX_HOST + 64];
        struct card *c;
        json_t *detail;
        int r;

        policy_classify(e->ctx.policy, &act, &d);
        if (d.verdict == POLICY_GREEN) {
                log_info("egress to %s:%u: %s", host, port, d.reason);
                return NET_ASK_ALLOWED;
        }
        /* The operator said no in advance: nobody is asked (the proxy records the denial). */
        if (denied_by_rule(&d)) {
                log_info("egress to %s:%u: %s", host, port, d.reason);
                return NET_ASK_REFUSED;
        }
        if (e->ctx.mode == APPROVE_MODE_DENY)
                return NET_ASK_REFUSED; /* the proxy records the denial */
        snprintf(title, sizeof(title), "connect to %s:%u", host, port);
        c = card_new("egress", title, sandbox, &d);
        if (c == NULL)
                return NET_ASK_STOP;
        (void)card_add(c, CARD_TEXT, "destination: %s port %u (%s)", host, port,
                       tunnel ? "CONNECT tunnel, e.g. HTTPS" : "plain HTTP request");
        (void)card_add(c, CARD_TEXT, "asked by the command:");
        for (int i = 0; i < e->o->argc && i < 32; i++)
                (void)card_add(c, CARD_CONTEXT, "  %s", e->o->argv[i]);
        (void)card_add(c, CARD_TEXT, "its allow-list:");
        for (size_t i = 0; i < e->o->allow.n; i++)
                (void)card_add(c, CARD_CONTEXT, "  %s%s:%u",
                               e->o->allow.rules[i].wildcard ? "*." : "", e->o->allow.rules[i].host,
                               e->o->allow.rules[i].port);
        (void)card_add(c, CARD_NOTE,
                       "approving allows %s:%u for the rest of this run only; to allow it always, "
                       "add 'allow egress %s' to the policy file",
                       host, port, host);
        detail =
            json_pack("{s:s, s:I, s:b}", "host", host, "port", (json_int_t)port, "tunnel", tunnel);
        r = approve_ask(&e->ctx, &act, c, detail, &a, &err);
        json_decref(detail);
        card_free(c);
        if (r < 0) {
                log_error("%s: egress denied", err->msg);
                err_free(&err);
                return NET_ASK_STOP; /* unrecorded questions are not asked again */
        }
        return answer_of(&a);
}
