/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Approvers: who answers a Diff Card. Each one shows the card to a human on
 * a terminal and waits, at most timeout_ms, for approve / deny / deny with a
 * reason / cancel. Silence is a deny (APPROVE_TIMEOUT).
 *
 * Trust: the terminal is opened by the caller from /dev/tty, never taken
 * from stdin — a sandboxed agent that writes "y" to our stdin must not be
 * able to approve its own request.
 */
#ifndef LG_POLICY_APPROVER_H
#define LG_POLICY_APPROVER_H

struct card;
struct lg_err;

enum approve_mode {
        APPROVE_MODE_DENY,   /* no human: every RED action is denied */
        APPROVE_MODE_PROMPT, /* a line prompt on the controlling terminal */
        APPROVE_MODE_TUI,    /* the ncurses card viewer on the controlling terminal */
};

enum approve_outcome {
        APPROVE_APPROVED,
        APPROVE_DENIED,      /* a human said no (reason may be set) */
        APPROVE_TIMEOUT,     /* nobody answered in time: deny */
        APPROVE_CANCELLED,   /* the human cancelled the whole action: deny */
        APPROVE_NO_APPROVER, /* mode deny, or no terminal: deny */
};

struct approve_answer {
        enum approve_outcome outcome;
        char reason[256]; /* the human's words, or ours ("no terminal") */
        char who[128];    /* "alice on /dev/pts/3 (prompt)", "policy" */
};

#define APPROVE_DEFAULT_TIMEOUT_MS (5 * 60 * 1000)

/*
 * Line prompt: print the card (card_render, colour if tty is a terminal)
 * to tty_fd, then ask "approve? [y]es / [n]o / [r]eason / [c]ancel" with the
 * seconds left, reading lines from tty_fd. intr_fd (or -1) readable ends the
 * wait as APPROVE_CANCELLED. Fills *a. 0, or < 0 with *err when the terminal
 * fails (the caller denies).
 */
int approver_prompt(const struct card *c, int tty_fd, int timeout_ms, int intr_fd,
                    struct approve_answer *a, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * ncurses viewer (src/tui/): header, scrollable coloured body, a visible
 * countdown, keys a approve, d deny, r deny with reason, c cancel. Same
 * contract as approver_prompt(). The terminal is restored on every return.
 */
int approver_tui(const struct card *c, int tty_fd, int timeout_ms, int intr_fd,
                 struct approve_answer *a, struct lg_err **err) __attribute__((warn_unused_result));

const char *approve_outcome_name(enum approve_outcome o); /* "approved", "denied", ... */
const char *approve_mode_name(enum approve_mode m);       /* "deny", "prompt", "tui" */
/* "deny" | "prompt" | "tui" into *m: 0 / -EINVAL. */
int approve_mode_parse(const char *s, enum approve_mode *m);

/*
 * For approvers, before they ask: *a becomes a deny (APPROVE_NO_APPROVER,
 * "the terminal failed", what a failing approver leaves behind) with who
 * "<user> on <ttyname(tty_fd)> (<via>)".
 */
void approve_answer_init(struct approve_answer *a, int tty_fd, const char *via);

#endif
