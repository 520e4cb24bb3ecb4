/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Diff Card (DESIGN.md §5): everything a human needs to judge one RED
 * action — what it is, why it was stopped, how risky it is, and the exact
 * change (file list, unified diff, command, destination). Built by the code
 * that wants to act (workspace apply, egress, tool calls), shown by an
 * approver (approver.h), summarised into the audit log.
 *
 * The body is a list of typed lines, so every approver can colour and
 * scroll it the same way without parsing text. Line text is sanitised when
 * added: control characters and invalid UTF-8 become "\xNN", so content
 * from a sandbox can never drive the approver's terminal.
 */
#ifndef LG_POLICY_CARD_H
#define LG_POLICY_CARD_H

#include <stddef.h>
#include <stdio.h>

#include "policy/policy.h"

enum card_line_kind {
        CARD_TEXT,    /* plain text: summaries, file lists */
        CARD_HEADING, /* a section or file header ("--- a/x", "+++ b/x", "== file") */
        CARD_HUNK,    /* "@@ -1,3 +1,4 @@" */
        CARD_ADD,     /* "+line" */
        CARD_DEL,     /* "-line" */
        CARD_CONTEXT, /* " line" */
        CARD_NOTE,    /* "(binary file, 12 KiB -> 14 KiB)", "(diff cut at 2000 lines)" */
};

struct card_line {
        enum card_line_kind kind;
        char *text; /* sanitised, owned */
};

/* Past this, card_add() appends one CARD_NOTE and then drops lines. */
#define CARD_MAX_LINES 20000
/* Sanitised bytes kept of one line; a longer one ends in a note saying how much was cut. */
#define CARD_LINE_MAX 4096

struct card {
        char id[64];     /* request id: "ap-" + 16 hex digits (64 random bits), set by
                            approve_ask(); until then a placeholder */
        char action[32]; /* "workspace.apply", "egress", "tool.call" */
        char *title;     /* one line: "apply 3 changes to /home/me/proj" */
        char *sandbox;   /* the sandbox that asks, or NULL */
        struct policy_decision decision; /* verdict, risk and reason */
        struct card_line *lines;
        size_t n_lines, cap_lines;
        int truncated; /* lines were dropped at CARD_MAX_LINES: approve_ask() makes it high risk */
        int line_cut;  /* a line was cut at CARD_LINE_MAX: high risk too (bytes not shown) */
};

/*
 * A new, empty card; NULL on ENOMEM. title and sandbox are copied,
 * sanitised like body lines; so are action and d->reason (d may be NULL:
 * RED, high risk). id gets only a placeholder ("ap-<sandbox>-<n>",
 * or "ap-<pid>-<n>", n counting cards in this process): approve_ask() gives the card its real,
 * unguessable request id ("ap-" + 16 hex digits) before it is recorded or
 * shown.
 */
struct card *card_new(const char *action, const char *title, const char *sandbox,
                      const struct policy_decision *d);
void card_free(struct card *c);

/*
 * Append one line (sanitised copy of the formatted text). 0 / -ENOMEM.
 * The line after the first CARD_MAX_LINES is replaced by one CARD_NOTE
 * (c->truncated is set; n_lines is then CARD_MAX_LINES + 1); later lines
 * are dropped and still return 0.
 */
int card_add(struct card *c, enum card_line_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append len raw bytes as one line, sanitised (for file content). 0 / -ENOMEM. */
int card_add_raw(struct card *c, enum card_line_kind kind, const char *s, size_t len);

/*
 * The whole card as text: a header (id, action, risk, reason, sandbox,
 * title) and the body; with colour, ANSI SGR codes by line kind. For the
 * line prompt and for saved change sets.
 */
void card_render(const struct card *c, FILE *out, int colour);

/*
 * The sanitiser card lines go through, for other text bound for a terminal
 * (a typed reason, header fields): s[0..len) into out, always terminated,
 * cut at a character or escape boundary to fit outsz (> 0). Tabs become
 * spaces to the next multiple of 8; C0 controls, DEL, C1 controls,
 * bidirectional overrides and bytes that are not valid UTF-8 (overlong,
 * surrogate, truncated, past U+10FFFF) become "\xNN" per byte. A backslash
 * stays itself. Returns how many bytes of s were taken (len if all fit).
 */
size_t card_sanitise(const char *s, size_t len, char *out, size_t outsz);

#endif
