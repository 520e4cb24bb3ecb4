/* SPDX-License-Identifier: Apache-2.0 */
#include "policy/approve.h"
#include "audit/audit.h"
#include "common/err.h"
#include "policy/card.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/*
 * A request id nobody can guess or reuse: "ap-" and 64 random bits in hex
 * (card_new()'s id is only a placeholder). Without random bits there is no
 * such id, and an approval tied to a guessable one is not given: 0 / -errno.
 */
static int card_id(struct card *c)
{
        unsigned char r[8];
        ssize_t n;

        while ((n = getrandom(r, sizeof(r), 0)) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t)sizeof(r))
                return n < 0 ? -errno : -EIO;
        snprintf(c->id, sizeof(c->id), "ap-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
                 r[3], r[4], r[5], r[6], r[7]);
        return 0;
}

/* SHA-256 of the card as the human sees it (without colour): ties the decision to its content. */
static void card_digest(const struct card *c, char out[65])
{
        unsigned char d[32];
        unsigned len = 0;
        char *text = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&text, &n);
        int ok = f != NULL;

        if (ok) {
                card_render(c, f, 0);
                ok = fclose(f) == 0;
        }
        ok = ok && EVP_Digest(text, n, d, &len, EVP_sha256(), NULL) && len == 32;
        free(text);
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", ok ? d[i] : 0);
}

static int audit_request(const struct approve_ctx *ctx, const struct card *c, json_t *detail,
                         struct lg_err **err)
{
        char digest[65];
        json_t *f;
        int r;

        card_digest(c, digest);
        f = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "request", c->id, "action",
                      c->action, "title", c->title ? c->title : "", "risk",
                      policy_risk_name(c->decision.risk), "reason", c->decision.reason,
                      "card_sha256", digest, "card_lines", (json_int_t)c->n_lines, "approver",
                      approve_mode_name(ctx->mode));
        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "approval request record");
        if (detail != NULL)
                json_object_set(f, "detail", detail);
        r = audit_append(ctx->home, "approval.request", c->sandbox, f, 1, err);
        json_decref(f);
        return r;
}

static int audit_decision(const struct approve_ctx *ctx, const struct card *c,
                          const struct approve_answer *a, struct lg_err **err)
{
        json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "request", c->id, "outcome",
                              approve_outcome_name(a->outcome), "who", a->who, "reason", a->reason);
        int r;

        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "approval decision record");
        r = audit_append(ctx->home, "approval.decision", c->sandbox, f, 1, err);
        json_decref(f);
        return r;
}

/* Ask the human, on the controlling terminal only. Never fails: trouble is a deny, with why. */
static void ask_one(const struct approve_ctx *ctx, const struct card *c, struct approve_answer *a);

/*
 * One card at a time on the terminal: with several RED actions at once (the
 * MCP gateway's concurrent calls), an answer must go to the card that was
 * on the screen when it was typed.
 */
static void ask(const struct approve_ctx *ctx, const struct card *c, struct approve_answer *a)
{
        static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;

        pthread_mutex_lock(&one_at_a_time);
        ask_one(ctx, c, a);
        pthread_mutex_unlock(&one_at_a_time);
}

static void ask_one(const struct approve_ctx *ctx, const struct card *c, struct approve_answer *a)
{
        int timeout = ctx->timeout_ms > 0 ? ctx->timeout_ms : APPROVE_DEFAULT_TIMEOUT_MS;
        struct lg_err *aerr = NULL;
        int tty, r;

        if (ctx->mode == APPROVE_MODE_DENY) {
                a->outcome = APPROVE_NO_APPROVER;
                snprintf(a->reason, sizeof(a->reason),
                         "no approver (--approve deny): RED actions are denied");
                return;
        }
        /* Not stdin: whatever runs in the sandbox may be feeding it. */
        tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty < 0) {
                a->outcome = APPROVE_NO_APPROVER;
                snprintf(a->reason, sizeof(a->reason),
                         "no terminal to ask on (--approve %s needs one): denied",
                         approve_mode_name(ctx->mode));
                return;
        }
        if (ctx->mode == APPROVE_MODE_TUI)
                r = approver_tui(c, tty, timeout, ctx->intr_fd, a, &aerr);
        else
                r = approver_prompt(c, tty, timeout, ctx->intr_fd, a, &aerr);
        close(tty);
        if (r < 0) {
                a->outcome = APPROVE_NO_APPROVER;
                snprintf(a->reason, sizeof(a->reason), "the approver failed: %.200s; denied",
                         aerr ? aerr->msg : "unknown error");
        }
        err_free(&aerr);
}

int approve_ask(const struct approve_ctx *ctx, const struct policy_action *act, struct card *c,
                json_t *detail, struct approve_answer *a, struct lg_err **err)
{
        struct policy_decision d;
        int r;

        memset(a, 0, sizeof(*a));
        a->outcome = APPROVE_DENIED; /* until somebody or something says otherwise */
        policy_classify(ctx->policy, act, &d);
        if (d.verdict == POLICY_GREEN) {
                a->outcome = APPROVE_APPROVED;
                snprintf(a->who, sizeof(a->who), "policy");
                snprintf(a->reason, sizeof(a->reason), "%s", d.reason);
                return 0;
        }
        if (c == NULL) /* a caller that was sure it would be GREEN */
                return err_set(err, LG_EK_INTERNAL, EINVAL, "a RED action (%s) without a Diff Card",
                               d.reason);
        /*
         * A card cut at CARD_MAX_LINES hides part of what is approved (for a
         * workspace, part of its very file list): whatever the classifier
         * said, that is high risk, and the human is told why.
         */
        if ((c->truncated || c->line_cut) && d.risk < POLICY_RISK_HIGH) {
                size_t len = strlen(d.reason);

                d.risk = POLICY_RISK_HIGH;
                snprintf(d.reason + len, sizeof(d.reason) - len, "%s",
                         "; the card is cut: not everything is shown");
        }
        c->decision = d;
        r = card_id(c);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "random bits for a request id");
        /* The request is on disk before anyone sees it, the decision before anything acts on it. */
        r = audit_request(ctx, c, detail, err);
        if (r < 0)
                return err_wrap(err, "record approval request %s", c->id);
        ask(ctx, c, a);
        if (a->who[0] == '\0')
                snprintf(a->who, sizeof(a->who), "%s",
                         a->outcome == APPROVE_NO_APPROVER ? "nobody" : "unknown");
        r = audit_decision(ctx, c, a, err);
        if (r < 0) {
                a->outcome = APPROVE_DENIED; /* unrecorded means it did not happen */
                return err_wrap(err, "record approval decision %s", c->id);
        }
        return 0;
}
