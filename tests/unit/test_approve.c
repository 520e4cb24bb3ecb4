/* SPDX-License-Identifier: Apache-2.0 */
/* The approval flow (src/policy/approve.c): what is recorded, and that failing to record stops it.
 */
#include "audit/audit.h"
#include "common/err.h"
#include "common/fs.h"
#include "policy/approve.h"
#include "policy/card.h"
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char base[] = "/tmp/lg-unit-approve.XXXXXX";

static void cleanup(void)
{
        if (fs_remove_tree(base) < 0)
                fprintf(stderr, "    could not remove %s\n", base);
}

static void home_for(char *home, size_t sz, const char *name)
{
        static int done;

        if (!done) {
                done = 1;
                CHECK(mkdtemp(base) != NULL);
                atexit(cleanup);
        }
        snprintf(home, sz, "%s/%s", base, name);
        CHECK(fs_mkdir_p(home, 0700) == 0);
}

static char *log_text(const char *home)
{
        char path[PATH_MAX], *text = NULL;
        size_t len;

        CHECK(audit_log_path(home, path, sizeof(path)) == 0);
        if (fs_read_file(path, 1 << 20, &text, &len) < 0)
                return NULL;
        return text;
}

TEST(green_goes_ahead_and_writes_nothing)
{
        char home[PATH_MAX];
        struct approve_ctx ctx = {.mode = APPROVE_MODE_DENY, .intr_fd = -1};
        struct policy_action act = {.kind = POLICY_SANDBOX_EXEC};
        struct approve_answer a;
        struct lg_err *err = NULL;

        home_for(home, sizeof(home), "green");
        ctx.home = home;
        CHECK(approve_ask(&ctx, &act, NULL, NULL, &a, &err) == 0);
        CHECK(approve_granted(&a));
        CHECK_EQ_STR(a.who, "policy");
        CHECK(log_text(home) == NULL); /* no log was even created */
}

TEST(red_without_approver_is_denied_and_both_halves_recorded)
{
        char home[PATH_MAX], *text;
        struct approve_ctx ctx = {.mode = APPROVE_MODE_DENY, .intr_fd = -1};
        struct policy_action act = {.kind = POLICY_WORKSPACE_APPLY, .files_changed = 2};
        struct approve_answer a;
        struct lg_err *err = NULL;
        struct card *c =
            card_new("workspace.apply", "apply 2 changes to /x", "sb-0123456789ab", NULL);
        FILE *null = fopen("/dev/null", "w");
        struct audit_report rep;

        home_for(home, sizeof(home), "red");
        ctx.home = home;
        CHECK(c != NULL && card_add(c, CARD_ADD, "+new line") == 0);
        json_t *detail = json_pack("{s:s}", "dir", "/x");

        CHECK(approve_ask(&ctx, &act, c, detail, &a, &err) == 0);
        json_decref(detail); /* borrowed */
        CHECK(!approve_granted(&a));
        CHECK_EQ_INT(a.outcome, APPROVE_NO_APPROVER);
        CHECK(strncmp(c->id, "ap-", 3) == 0 && strlen(c->id) == 19);
        CHECK_EQ_INT(c->decision.verdict, POLICY_RED);
        text = log_text(home);
        CHECK(text != NULL);
        if (text != NULL) {
                char *req = strstr(text, "\"event\":\"approval.request\"");
                char *dec = strstr(text, "\"event\":\"approval.decision\"");

                CHECK(req != NULL && dec != NULL && req < dec);
                CHECK(strstr(text, c->id) != NULL);
                CHECK(strstr(text, "\"card_sha256\":\"") != NULL);
                CHECK(strstr(text, "\"outcome\":\"no-approver\"") != NULL);
                CHECK(strstr(text, "\"detail\":{\"dir\":\"/x\"}") != NULL);
                CHECK(strstr(text, "\"sandbox\":\"sb-0123456789ab\"") != NULL);
        }
        free(text);
        CHECK(audit_verify(home, null, &rep, &err) == 0);
        CHECK_EQ_INT(rep.records, 2);
        fclose(null);
        card_free(c);
        err_free(&err);
}

TEST(unrecordable_request_is_an_error_and_a_no)
{
        char home[PATH_MAX], logdir[PATH_MAX + 8];
        struct approve_ctx ctx = {.mode = APPROVE_MODE_DENY, .intr_fd = -1};
        struct policy_action act = {.kind = POLICY_EGRESS, .host = "example.com"};
        struct approve_answer a;
        struct lg_err *err = NULL;
        struct card *c = card_new("egress", "connect", NULL, NULL);

        home_for(home, sizeof(home), "broken");
        ctx.home = home;
        /* The log's directory is a file: nothing can be appended. */
        snprintf(logdir, sizeof(logdir), "%s/audit", home);
        CHECK(fs_write_file_atomic(logdir, "x", 1, 0600) == 0);
        CHECK(approve_ask(&ctx, &act, c, NULL, &a, &err) < 0);
        CHECK(!approve_granted(&a));
        CHECK(err != NULL && strstr(err->msg, "record approval request") != NULL);
        err_free(&err);
        /* A RED action without a card is refused too. */
        CHECK(approve_ask(&ctx, &act, NULL, NULL, &a, &err) < 0);
        CHECK(!approve_granted(&a));
        err_free(&err);
        card_free(c);
}
