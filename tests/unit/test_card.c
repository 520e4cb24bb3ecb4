/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diff Cards (src/policy/card.c): sanitising, caps, rendering; approver
 * names; and the line prompt (approver_prompt.c) driven through a pty: the
 * prompt runs in a child on the slave, the test types on the master.
 */
#include "common/err.h"
#include "common/monotime.h"
#include "policy/approver.h"
#include "policy/card.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static struct card *new_card(void)
{
        struct policy_decision d = {POLICY_RED, POLICY_RISK_HIGH, "changes files on the host"};

        return card_new("workspace.apply", "apply 2 changes to /p", "sb-1", &d);
}

/* The sanitised text of one raw line. */
static const char *san(struct card *c, const char *s, size_t len)
{
        if (card_add_raw(c, CARD_TEXT, s, len) < 0)
                return "(ENOMEM)";
        return c->lines[c->n_lines - 1].text;
}
#define SAN(c, lit) san((c), (lit), sizeof(lit) - 1)

TEST(sanitise_controls)
{
        struct card *c = new_card();

        CHECK_EQ_STR(SAN(c, "plain text"), "plain text");
        CHECK_EQ_STR(SAN(c, "a\x1b[31mred\x1b[0m"), "a\\x1b[31mred\\x1b[0m");
        CHECK_EQ_STR(SAN(c, "bell\a cr\r lf\n del\x7f"), "bell\\x07 cr\\x0d lf\\x0a del\\x7f");
        CHECK_EQ_STR(SAN(c, "nul\0here"), "nul\\x00here");
        CHECK_EQ_STR(SAN(c, "a\tb"), "a       b"); /* to the next multiple of 8 */
        CHECK_EQ_STR(SAN(c, "\tx\ty"), "        x       y");
        CHECK_EQ_STR(SAN(c, "back\\slash"), "back\\slash"); /* left alone */
        card_free(c);
}

TEST(sanitise_utf8)
{
        struct card *c = new_card();

        /* Valid UTF-8 passes: 2, 3 and 4 bytes. */
        CHECK_EQ_STR(SAN(c, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9d\x84\x9e"),
                     "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9d\x84\x9e");
        CHECK_EQ_STR(SAN(c, "\xff"), "\\xff");
        CHECK_EQ_STR(SAN(c, "x\x80y"), "x\\x80y");                        /* stray continuation */
        CHECK_EQ_STR(SAN(c, "\xc0\xaf"), "\\xc0\\xaf");                   /* overlong '/' */
        CHECK_EQ_STR(SAN(c, "\xe0\x80\xaf"), "\\xe0\\x80\\xaf");          /* overlong, 3 bytes */
        CHECK_EQ_STR(SAN(c, "\xed\xa0\x80"), "\\xed\\xa0\\x80");          /* surrogate */
        CHECK_EQ_STR(SAN(c, "\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
        CHECK_EQ_STR(SAN(c, "\xe2\x9c"), "\\xe2\\x9c");                   /* cut short at the end */
        CHECK_EQ_STR(SAN(c, "\xe2\x9cx"), "\\xe2\\x9cx");                 /* cut short by ASCII */
        /* Valid but hidden: C1 CSI, and a right-to-left override (Trojan Source). */
        CHECK_EQ_STR(SAN(c, "\xc2\x9b[2J"), "\\xc2\\x9b[2J");
        CHECK_EQ_STR(SAN(c, "a\xe2\x80\xae-b"), "a\\xe2\\x80\\xae-b");
        CHECK_EQ_STR(SAN(c, "\xe2\x81\xa6"), "\\xe2\\x81\\xa6");
        card_free(c);
}

TEST(card_add_formats_and_sanitises)
{
        struct card *c = new_card();

        CHECK_EQ_INT(card_add(c, CARD_ADD, "+%s %d", "x\x1b", 42), 0);
        CHECK_EQ_INT(c->n_lines, 1);
        CHECK_EQ_INT(c->lines[0].kind, CARD_ADD);
        CHECK_EQ_STR(c->lines[0].text, "+x\\x1b 42");
        card_free(c);
}

TEST(card_new_sanitises_header)
{
        struct policy_decision d = {POLICY_RED, POLICY_RISK_MEDIUM,
                                    "evil\x1b]0;t\x07.com is outside"};
        struct card *c = card_new("egress", "connect to \x1b[2J", "sb\x1b", &d);
        struct card *none = card_new("tool.call", NULL, NULL, NULL);

        CHECK(c != NULL && none != NULL);
        CHECK_EQ_STR(c->title, "connect to \\x1b[2J");
        CHECK_EQ_STR(c->sandbox, "sb\\x1b");
        CHECK_EQ_STR(c->decision.reason, "evil\\x1b]0;t\\x07.com is outside");
        CHECK(strncmp(c->id, "ap-sb\\x1b-", 9) == 0);
        CHECK_EQ_STR(none->title, "");
        CHECK(none->sandbox == NULL);
        CHECK_EQ_INT(none->decision.verdict, POLICY_RED);
        CHECK_EQ_INT(none->decision.risk, POLICY_RISK_HIGH);
        CHECK(strncmp(none->id, "ap-", 3) == 0 && strcmp(none->id, c->id) != 0);
        card_free(c);
        card_free(none);
}

TEST(line_cap)
{
        struct card *c = new_card();
        size_t n = 10000;
        char *big = malloc(n);
        const char *t;

        memset(big, 'x', n);
        t = san(c, big, n);
        CHECK(strspn(t, "x") == CARD_LINE_MAX);
        CHECK_EQ_STR(t + CARD_LINE_MAX, " [cut: 5904 more bytes]");
        /* An escape that does not fit whole is cut before it, not in it. */
        big[CARD_LINE_MAX - 2] = '\x1b';
        t = san(c, big, n);
        CHECK(strspn(t, "x") == CARD_LINE_MAX - 2);
        CHECK_EQ_STR(t + CARD_LINE_MAX - 2, " [cut: 5906 more bytes]");
        /* Exactly at the cap: no note. */
        t = san(c, big + n - CARD_LINE_MAX, CARD_LINE_MAX);
        CHECK_EQ_INT(strlen(t), CARD_LINE_MAX);
        free(big);
        card_free(c);
}

TEST(card_sanitise_fits_the_buffer)
{
        char out[8];

        CHECK_EQ_INT(card_sanitise("abc", 3, out, sizeof(out)), 3);
        CHECK_EQ_STR(out, "abc");
        CHECK_EQ_INT(card_sanitise("abcd\x01z", 6, out, sizeof(out)), 4); /* "\x01" needs 4 */
        CHECK_EQ_STR(out, "abcd");
        CHECK_EQ_INT(card_sanitise("ab\xe2\x9c\x93xyz", 8, out, 6), 5);
        CHECK_EQ_STR(out, "ab\xe2\x9c\x93");
        CHECK_EQ_INT(card_sanitise("\t", 1, out, 4), 0); /* 8 spaces do not fit */
        CHECK_EQ_STR(out, "");
}

TEST(max_lines)
{
        struct card *c = new_card();
        int r = 0;

        for (int i = 0; i < CARD_MAX_LINES + 10; i++)
                r |= card_add(c, CARD_ADD, "+%d", i);
        CHECK_EQ_INT(r, 0);
        CHECK_EQ_INT(c->n_lines, CARD_MAX_LINES + 1);
        CHECK(c->truncated);
        CHECK_EQ_STR(c->lines[CARD_MAX_LINES - 1].text, "+19999");
        CHECK_EQ_INT(c->lines[CARD_MAX_LINES].kind, CARD_NOTE);
        CHECK(strstr(c->lines[CARD_MAX_LINES].text, "20000 lines") != NULL);
        card_free(c);
}

static char *render(const struct card *c, int colour)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (f == NULL)
                return strdup("");
        card_render(c, f, colour);
        fclose(f);
        return text;
}

TEST(render)
{
        struct card *c = new_card();
        char *plain, *colour;

        CHECK_EQ_INT(card_add(c, CARD_HEADING, "--- a/x"), 0);
        CHECK_EQ_INT(card_add(c, CARD_HUNK, "@@ -1 +1 @@"), 0);
        CHECK_EQ_INT(card_add(c, CARD_DEL, "-old"), 0);
        CHECK_EQ_INT(card_add(c, CARD_ADD, "+new\x1b[2J"), 0);
        CHECK_EQ_INT(card_add(c, CARD_NOTE, "(binary)"), 0);
        /* A caller writing a field directly still cannot reach the terminal. */
        snprintf(c->id, sizeof(c->id), "ap-\x1b[5m");
        plain = render(c, 0);
        colour = render(c, 1);
        CHECK(strstr(plain, "action:  workspace.apply\n") != NULL);
        CHECK(strstr(plain, "risk:    high (RED)\n") != NULL);
        CHECK(strstr(plain, "reason:  changes files on the host\n") != NULL);
        CHECK(strstr(plain, "sandbox: sb-1\n") != NULL);
        CHECK(strstr(plain, "title:   apply 2 changes to /p\n") != NULL);
        CHECK(strstr(plain, "id:      ap-\\x1b[5m\n") != NULL);
        CHECK(strstr(plain, "\n-old\n+new\\x1b[2J\n(binary)\n") != NULL);
        CHECK(strchr(plain, '\033') == NULL);
        CHECK(strstr(colour, "\033[32m+new\\x1b[2J\033[0m\n") != NULL);
        CHECK(strstr(colour, "\033[31m-old\033[0m") != NULL);
        CHECK(strstr(colour, "\033[36m@@ -1 +1 @@\033[0m") != NULL);
        CHECK(strstr(colour, "\033[1m--- a/x\033[0m") != NULL);
        CHECK(strstr(colour, "\033[33m(binary)\033[0m") != NULL);
        CHECK(strstr(colour, "\033[1;31mhigh (RED)\033[0m") != NULL);
        free(plain);
        free(colour);
        card_free(c);
}

TEST(mode_and_outcome_names)
{
        enum approve_mode m = APPROVE_MODE_TUI;

        CHECK(approve_mode_parse("deny", &m) == 0 && m == APPROVE_MODE_DENY);
        CHECK(approve_mode_parse("prompt", &m) == 0 && m == APPROVE_MODE_PROMPT);
        CHECK(approve_mode_parse("tui", &m) == 0 && m == APPROVE_MODE_TUI);
        CHECK_EQ_INT(approve_mode_parse("TUI", &m), -EINVAL);
        CHECK_EQ_INT(approve_mode_parse("", &m), -EINVAL);
        CHECK_EQ_INT(approve_mode_parse("yes", &m), -EINVAL);
        CHECK_EQ_INT(approve_mode_parse(NULL, &m), -EINVAL);
        CHECK_EQ_INT(m, APPROVE_MODE_TUI); /* untouched on error */
        CHECK_EQ_STR(approve_mode_name(APPROVE_MODE_PROMPT), "prompt");
        CHECK_EQ_STR(approve_outcome_name(APPROVE_APPROVED), "approved");
        CHECK_EQ_STR(approve_outcome_name(APPROVE_DENIED), "denied");
        CHECK_EQ_STR(approve_outcome_name(APPROVE_TIMEOUT), "timeout");
        CHECK_EQ_STR(approve_outcome_name(APPROVE_CANCELLED), "cancelled");
        CHECK_EQ_STR(approve_outcome_name(APPROVE_NO_APPROVER), "no-approver");
}

/* --- the line prompt on a pty --- */

enum act { SEND, HANGUP, INTERRUPT };

struct step {
        const char *expect; /* wait for this in the output, after the last match */
        enum act act;
        const char *send;
};

struct session {
        struct approve_answer a;
        int rc;            /* approver_prompt's return */
        char out[1 << 16]; /* what the terminal showed */
        size_t len;
        int raw_after; /* the terminal was left without ICANON */
        uint64_t ms;
};

/* Read what the master has within wait_ms: 1 got some, 0 none, -1 the slave side is gone. */
static int drain(int master, struct session *s, int wait_ms)
{
        struct pollfd p = {.fd = master, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, wait_ms) <= 0)
                return 0;
        n = read(master, s->out + s->len, sizeof(s->out) - 1 - s->len);
        if (n <= 0)
                return -1;
        s->len += (size_t)n;
        s->out[s->len] = '\0';
        return 1;
}

typedef int approver_fn(const struct card *c, int tty_fd, int timeout_ms, int intr_fd,
                        struct approve_answer *a, struct lg_err **err);

/*
 * An approver in a child on a pty slave (which the test keeps open too,
 * to read its mode afterwards), steps played on the master;
 * pre is typed before the prompt starts, raw puts the terminal in raw mode
 * first. 0, or -1 when the child hung (killed after 10 s).
 */
static int session_run(approver_fn *fn, struct session *s, int timeout_ms, const char *pre, int raw,
                       const struct step *steps, size_t nsteps)
{
        struct winsize ws = {.ws_row = 40, .ws_col = 120};
        struct card *c = new_card();
        int master, slave, ans[2], intr[2], st, alive = 1;
        size_t step = 0, pos = 0;
        uint64_t t0 = mono_ms();
        struct termios tio;
        pid_t pid;

        memset(s, 0, sizeof(*s));
        if (c == NULL || openpty(&master, &slave, NULL, NULL, &ws) < 0 || pipe(ans) < 0 ||
            pipe(intr) < 0)
                return -1;
        card_add(c, CARD_ADD, "+added line");
        if (raw && tcgetattr(slave, &tio) == 0) {
                cfmakeraw(&tio);
                tcsetattr(slave, TCSANOW, &tio);
        }
        if (pre != NULL && write(master, pre, strlen(pre)) < 0)
                return -1;
        fflush(NULL);
        pid = fork();
        if (pid == 0) {
                struct lg_err *err = NULL;
                struct approve_answer a;

                close(master);
                close(ans[0]);
                close(intr[1]);
                setenv("TERM", "xterm", 1); /* for the TUI, whatever runs the tests */
                s->rc = fn(c, slave, timeout_ms, intr[0], &a, &err);
                if (write(ans[1], &a, sizeof(a)) < 0 || write(ans[1], &s->rc, sizeof(int)) < 0)
                        _exit(2);
                _exit(0);
        }
        close(ans[1]);
        close(intr[0]);
        while (mono_ms() - t0 < 10000) {
                struct pollfd p = {.fd = ans[0], .events = POLLIN};

                if (step < nsteps && strstr(s->out + pos, steps[step].expect) != NULL) {
                        const struct step *sp = &steps[step++];

                        pos = (size_t)(strstr(s->out + pos, sp->expect) - s->out) +
                              strlen(sp->expect);
                        if (sp->act == SEND && write(master, sp->send, strlen(sp->send)) < 0)
                                break;
                        if (sp->act == INTERRUPT && write(intr[1], "x", 1) < 0)
                                break;
                        if (sp->act == HANGUP) {
                                close(master);
                                alive = 0;
                        }
                        continue;
                }
                if (poll(&p, 1, 0) > 0)
                        break;
                if (alive)
                        alive = drain(master, s, 20) >= 0;
                else
                        usleep(20000);
        }
        if (read(ans[0], &s->a, sizeof(s->a)) != (ssize_t)sizeof(s->a) ||
            read(ans[0], &s->rc, sizeof(int)) != (ssize_t)sizeof(int)) {
                kill(pid, SIGKILL);
                s->rc = -1000;
        }
        s->ms = mono_ms() - t0;
        waitpid(pid, &st, 0);
        while (alive && drain(master, s, 100) > 0) /* the last words: "approved", "denied" */
                ;
        if (tcgetattr(slave, &tio) == 0)
                s->raw_after = !(tio.c_lflag & ICANON);
        close(slave);
        if (alive)
                close(master);
        close(ans[0]);
        close(intr[1]);
        card_free(c);
        return s->rc == -1000 ? -1 : 0;
}

#define PROMPT "approve? [y]es / [n]o / [r] deny with reason / [c]ancel ("
#define RUN_WITH(fn, s, ms, pre, raw, ...)                                                         \
        do {                                                                                       \
                const struct step st_[] = {__VA_ARGS__};                                           \
                CHECK_EQ_INT(                                                                      \
                    session_run((fn), (s), (ms), (pre), (raw), st_, sizeof(st_) / sizeof(st_[0])), \
                    0);                                                                            \
        } while (0)
#define RUN(...)     RUN_WITH(approver_prompt, __VA_ARGS__)
#define RUN_TUI(...) RUN_WITH(approver_tui, __VA_ARGS__)

static struct session sess;

TEST(prompt_yes)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "y\n"});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_APPROVED);
        CHECK_EQ_STR(sess.a.reason, "");
        CHECK(strstr(sess.a.who, " on /dev/pts/") != NULL);
        CHECK(strstr(sess.a.who, "(prompt)") != NULL);
        /* The card, in colour (a pty is a terminal), then the question with the time left. */
        CHECK(strstr(sess.out, "\033[32m+added line\033[0m") != NULL);
        CHECK(strstr(sess.out, "reason:  changes files on the host") != NULL);
        CHECK(strstr(sess.out, "(10s left): ") != NULL);
}

TEST(prompt_yes_word_and_no)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "  YES \n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_APPROVED);
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "n\n"});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "");
}

TEST(prompt_reason)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "r\n"}, {"reason: ", SEND, "because\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "because");
        /* Typed control characters are recorded escaped. */
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "r\n"}, {"reason: ", SEND, "bad\x1b[2Jidea\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "bad\\x1b[2Jidea");
}

TEST(prompt_cancel)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "c\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_CANCELLED);
}

TEST(prompt_garbage_is_asked_again)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "maybe\n"}, {PROMPT, SEND, "\n"},
            {PROMPT, SEND, "y\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_APPROVED);
        CHECK(strstr(sess.out, "please answer y, n, r or c") != NULL);
}

TEST(prompt_overlong_line_is_refused_whole)
{
        char line[700];

        /* "y" and blanks: read by its start or trimmed, it would approve. */
        memset(line, ' ', sizeof(line));
        line[0] = 'y';
        line[sizeof(line) - 2] = '\n';
        line[sizeof(line) - 1] = '\0';
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, line}, {PROMPT, SEND, "n\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK(strstr(sess.out, "answer too long") != NULL);
}

TEST(prompt_typeahead_does_not_answer)
{
        RUN(&sess, 10000, "y\n", 0, {PROMPT, SEND, "n\n"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
}

TEST(prompt_eof)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "\x04"});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "terminal closed");
        /* "y" ended by EOF instead of Enter is no answer. */
        RUN(&sess, 10000, NULL, 0, {PROMPT, SEND, "y\x04"}, {"y", SEND, "\x04"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "terminal closed");
}

TEST(prompt_hangup)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, HANGUP, NULL});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "terminal closed");
}

TEST(prompt_timeout)
{
        RUN(&sess, 1000, NULL, 0, {"no such text", SEND, ""});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_TIMEOUT);
        CHECK_EQ_STR(sess.a.reason, "no answer in 1 s");
        CHECK(sess.ms >= 1000 && sess.ms < 5000);
        CHECK(strstr(sess.out, "no answer in time: denied") != NULL);
}

TEST(prompt_interrupt)
{
        RUN(&sess, 10000, NULL, 0, {PROMPT, INTERRUPT, NULL});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_CANCELLED);
        CHECK_EQ_STR(sess.a.reason, "interrupted");
        CHECK(sess.ms < 5000);
}

TEST(prompt_raw_terminal_is_made_canonical_and_restored)
{
        /* Raw: Enter sends "\r", which only a terminal with ICRNL ends a line with. */
        RUN(&sess, 10000, NULL, 1, {PROMPT, SEND, "y\r"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_APPROVED);
        CHECK(sess.raw_after);
}

TEST(prompt_no_terminal)
{
        struct approve_answer a;
        struct lg_err *err = NULL;
        struct card *c = new_card();

        CHECK(approver_prompt(c, -1, 1000, -1, &a, &err) < 0);
        CHECK(err != NULL);
        CHECK(a.outcome != APPROVE_APPROVED);
        err_free(&err);
        card_free(c);
}

/* The TUI on the same pty: its keys, its end without a key; the tmux test looks at the screen. */
TEST(tui_keys)
{
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", SEND, "a"});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_APPROVED);
        CHECK(strstr(sess.a.who, " on /dev/pts/") != NULL && strstr(sess.a.who, "(tui)") != NULL);
        CHECK(!sess.raw_after); /* the terminal's mode is back as it was */
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", SEND, "d"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", SEND, "c"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_CANCELLED);
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", SEND, "r"}, {"reason:", SEND, "no\x01 way\r"});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "no way"); /* control keys are not typed into the reason */
}

TEST(tui_typeahead_does_not_answer)
{
        RUN_TUI(&sess, 1000, "a", 0, {"no such text", SEND, ""});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_TIMEOUT);
        CHECK_EQ_STR(sess.a.reason, "no answer in 1 s");
}

TEST(tui_hangup_and_interrupt)
{
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", HANGUP, NULL});
        CHECK_EQ_INT(sess.rc, 0);
        CHECK_EQ_INT(sess.a.outcome, APPROVE_DENIED);
        CHECK_EQ_STR(sess.a.reason, "terminal closed");
        CHECK(sess.ms < 5000);
        RUN_TUI(&sess, 10000, NULL, 0, {"s left", INTERRUPT, NULL});
        CHECK_EQ_INT(sess.a.outcome, APPROVE_CANCELLED);
        CHECK_EQ_STR(sess.a.reason, "interrupted");
}
