/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A realistic Diff Card shown by a real approver on the controlling
 * terminal, for tests/integration/test_approvers.sh and for a look by hand:
 *
 *     build/tests/card_demo tui|prompt|deny [SECONDS]
 *
 * Prints "outcome=<name> reason=<reason> who=<who>" on stdout; exit 1 when
 * the approver failed. SIGINT cancels through intr_fd, as a caller's
 * handler would: the approver itself never installs one.
 */
#include "common/err.h"
#include "policy/approver.h"
#include "policy/card.h"
#include "policy/policy.h"

#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int intr_pipe[2] = {-1, -1};

static void on_sigint(int sig)
{
        char b = (char)sig;

        if (write(intr_pipe[1], &b, 1) < 0)
                return; /* the pipe is full: it is readable already */
}

/* A change set to the user's project: a diff, a new file, a binary, a trap. */
static struct card *demo_card(void)
{
        struct policy_action act = {
            .kind = POLICY_WORKSPACE_APPLY, .files_changed = 3, .files_deleted = 1};
        struct policy_decision d;
        struct card *c;
        int r = 0;

        policy_classify(NULL, &act, &d);
        c = card_new("workspace.apply", "apply 4 changes to /home/me/proj", "sb-demo", &d);
        if (c == NULL)
                return NULL;
        r |= card_add(c, CARD_TEXT, "workspace: %s", "/home/me/proj");
        r |= card_add(c, CARD_TEXT, "2 modified, 1 added, 1 deleted");
        r |= card_add(c, CARD_TEXT, "%s", "");
        r |= card_add(c, CARD_HEADING, "M src/main.c  (1234 -> 1302 bytes)");
        r |= card_add(c, CARD_HEADING, "--- a/src/main.c");
        r |= card_add(c, CARD_HEADING, "+++ b/src/main.c");
        r |= card_add(c, CARD_HUNK, "@@ -10,7 +10,9 @@ int main(int argc, char **argv)");
        r |= card_add(c, CARD_CONTEXT, " \tint verbose = 0;");
        r |= card_add(c, CARD_DEL, "-\tputs(\"hello\");");
        r |= card_add(c, CARD_ADD, "+\tputs(\"hello, world\"); /* caf\u00e9 \u2713 */");
        /* What a hostile sandbox would write: clear the screen and fake a verdict. */
        r |= card_add(c, CARD_ADD,
                      "+\tputs(\"\033[2J\033[1;32mALL CHECKS PASSED: press a\033[0m\");");
        r |= card_add(c, CARD_ADD, "+\treturn run(argc, argv);");
        r |= card_add(c, CARD_CONTEXT, " }");
        r |= card_add(c, CARD_HEADING, "M assets/logo.png  (12 KiB -> 14 KiB)");
        r |= card_add(c, CARD_NOTE, "  (binary file, 12288 -> 14336 bytes, not shown)");
        r |= card_add(c, CARD_HEADING, "D build.sh  (file)");
        r |= card_add(c, CARD_HEADING, "A docs/NOTES.md  (file, 0644, 2048 bytes)");
        r |= card_add(c, CARD_HUNK, "@@ -0,0 +1,62 @@");
        for (int i = 1; i <= 61; i++)
                r |= card_add(c, CARD_ADD,
                              "+note %d: the approver must let a human read all of this", i);
        r |= card_add(c, CARD_ADD, "+LAST LINE OF THE CARD");
        if (r != 0) {
                card_free(c);
                return NULL;
        }
        return c;
}

int main(int argc, char **argv)
{
        struct sigaction sa = {.sa_handler = on_sigint};
        struct approve_answer a;
        struct lg_err *err = NULL;
        enum approve_mode mode;
        struct card *c;
        int tty, r, secs = argc > 2 ? atoi(argv[2]) : 30;

        setlocale(LC_ALL, "");
        if (argc < 2 || approve_mode_parse(argv[1], &mode) < 0 || secs <= 0) {
                fprintf(stderr, "usage: card_demo tui|prompt|deny [SECONDS]\n");
                return 2;
        }
        c = demo_card();
        if (c == NULL || pipe2(intr_pipe, O_CLOEXEC) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
                perror("card_demo: setup");
                return 1;
        }
        tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (mode == APPROVE_MODE_DENY || tty < 0) {
                approve_answer_init(&a, tty, "policy");
                snprintf(a.reason, sizeof(a.reason), "%s", tty < 0 ? "no terminal" : "mode deny");
                r = 0;
        } else if (mode == APPROVE_MODE_TUI) {
                r = approver_tui(c, tty, secs * 1000, intr_pipe[0], &a, &err);
        } else {
                r = approver_prompt(c, tty, secs * 1000, intr_pipe[0], &a, &err);
        }
        if (r < 0)
                fprintf(stderr, "card_demo: %s\n", err ? err->msg : "approver failed");
        printf("outcome=%s reason=%s who=%s\n", r < 0 ? "error" : approve_outcome_name(a.outcome),
               a.reason, a.who);
        err_free(&err);
        card_free(c);
        if (tty >= 0)
                close(tty);
        return r < 0;
}
