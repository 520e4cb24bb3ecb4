/* SPDX-License-Identifier: Apache-2.0 */
#include "policy/card.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAB_STOP 8

/* "\033[...m" by line kind; plain text and context keep the terminal's colours. */
static const char *const line_sgr[] = {
    [CARD_TEXT] = "",         [CARD_HEADING] = "\033[1m", [CARD_HUNK] = "\033[36m",
    [CARD_ADD] = "\033[32m",  [CARD_DEL] = "\033[31m",    [CARD_CONTEXT] = "",
    [CARD_NOTE] = "\033[33m",
};

/*
 * The length of the valid UTF-8 sequence at s (1 to 4), or 0 when there is
 * none: a stray continuation byte, an overlong form (C0, C1, E0 80..9F,
 * F0 80..8F), a surrogate (ED A0..BF), past U+10FFFF (F4 90.., F5..FF) or
 * a sequence cut short. *cp receives the code point.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t need;

        if (s[0] < 0x80) {
                *cp = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                need = 2;
                *cp = s[0] & 0x1fu;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                need = 3;
                lo = s[0] == 0xe0 ? 0xa0 : 0x80;
                hi = s[0] == 0xed ? 0x9f : 0xbf;
                *cp = s[0] & 0x0fu;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                need = 4;
                lo = s[0] == 0xf0 ? 0x90 : 0x80;
                hi = s[0] == 0xf4 ? 0x8f : 0xbf;
                *cp = s[0] & 0x07u;
        } else {
                return 0;
        }
        if (n < need || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 1; i < need; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                *cp = (*cp << 6) | (s[i] & 0x3fu);
        }
        return need;
}

/*
 * Valid, yet not to be shown as is: C1 controls (some terminals act on
 * U+009B as CSI) and the bidirectional overrides and isolates, which can
 * make a line display in an order other than the one it has (the "Trojan
 * Source" trick: code that reads as a comment but runs).
 */
static int cp_hidden(uint32_t cp)
{
        return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
               (cp >= 0x2066 && cp <= 0x2069);
}

size_t card_sanitise(const char *s, size_t len, char *out, size_t outsz)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, o = 0, col = 0;

        while (i < len) {
                uint32_t cp = 0;
                size_t n = utf8_seq(u + i, len - i, &cp);

                if (n == 1 && u[i] == '\t') {
                        size_t pad = TAB_STOP - col % TAB_STOP;

                        if (o + pad >= outsz)
                                break;
                        memset(out + o, ' ', pad);
                        o += pad;
                        col += pad;
                        i++;
                } else if (n == 0 || (n == 1 && (u[i] < 0x20 || u[i] == 0x7f)) || cp_hidden(cp)) {
                        /* Every byte of it escaped, so the reader sees exactly what came. */
                        size_t bytes = n ? n : 1;

                        if (o + 4 * bytes >= outsz)
                                break;
                        for (size_t k = 0; k < bytes; k++)
                                snprintf(out + o + 4 * k, 5, "\\x%02x", u[i + k]);
                        o += 4 * bytes;
                        col += 4 * bytes;
                        i += bytes;
                } else {
                        if (o + n >= outsz)
                                break;
                        memcpy(out + o, u + i, n);
                        o += n;
                        col++;
                        i += n;
                }
        }
        if (outsz > 0)
                out[o] = '\0';
        return i;
}

/* A sanitised, capped, owned copy of s[0..len); a cut says how much is missing. */
static char *line_dup(const char *s, size_t len)
{
        char buf[CARD_LINE_MAX + 64];
        size_t took = card_sanitise(s, len, buf, CARD_LINE_MAX + 1);

        if (took < len) {
                size_t o = strlen(buf);

                snprintf(buf + o, sizeof(buf) - o, " [cut: %zu more bytes]", len - took);
        }
        return strdup(buf);
}

struct card *card_new(const char *action, const char *title, const char *sandbox,
                      const struct policy_decision *d)
{
        static unsigned long seq;
        unsigned long n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
        struct card *c = calloc(1, sizeof(*c));
        char reason[sizeof(c->decision.reason)];

        if (c == NULL)
                return NULL;
        c->title = line_dup(title ? title : "", title ? strlen(title) : 0);
        c->sandbox = sandbox ? line_dup(sandbox, strlen(sandbox)) : NULL;
        if (c->title == NULL || (sandbox != NULL && c->sandbox == NULL)) {
                card_free(c);
                return NULL;
        }
        if (action != NULL)
                card_sanitise(action, strlen(action), c->action, sizeof(c->action));
        if (d != NULL) {
                c->decision = *d;
        } else {
                c->decision.verdict = POLICY_RED;
                c->decision.risk = POLICY_RISK_HIGH;
        }
        /* The reason often names what the sandbox asked for (a host, a tool). */
        card_sanitise(c->decision.reason, strnlen(c->decision.reason, sizeof(reason)), reason,
                      sizeof(reason));
        memcpy(c->decision.reason, reason, sizeof(reason));
        if (c->sandbox != NULL)
                snprintf(c->id, sizeof(c->id), "ap-%.40s-%lu", c->sandbox, n);
        else
                snprintf(c->id, sizeof(c->id), "ap-%ld-%lu", (long)getpid(), n);
        return c;
}

void card_free(struct card *c)
{
        if (c == NULL)
                return;
        for (size_t i = 0; i < c->n_lines; i++)
                free(c->lines[i].text);
        free(c->lines);
        free(c->title);
        free(c->sandbox);
        free(c);
}

/* Append text (owned, already sanitised). */
static int push_line(struct card *c, enum card_line_kind kind, char *text)
{
        if (c->n_lines == c->cap_lines) {
                size_t cap = c->cap_lines ? 2 * c->cap_lines : 64;
                struct card_line *l = reallocarray(c->lines, cap, sizeof(*l));

                if (l == NULL) {
                        free(text);
                        return -ENOMEM;
                }
                c->lines = l;
                c->cap_lines = cap;
        }
        c->lines[c->n_lines].kind = kind;
        c->lines[c->n_lines].text = text;
        c->n_lines++;
        return 0;
}

int card_add_raw(struct card *c, enum card_line_kind kind, const char *s, size_t len)
{
        char *text;

        if (c->truncated)
                return 0;
        if (c->n_lines >= CARD_MAX_LINES) {
                char note[96];

                snprintf(note, sizeof(note), "(card cut at %d lines: the rest is not shown)",
                         CARD_MAX_LINES);
                text = strdup(note);
                if (text == NULL)
                        return -ENOMEM;
                c->truncated = 1;
                return push_line(c, CARD_NOTE, text);
        }
        text = line_dup(s, len);
        if (text == NULL)
                return -ENOMEM;
        if (strstr(text, " [cut: ") != NULL && len > CARD_LINE_MAX)
                c->line_cut = 1;
        return push_line(c, kind, text);
}

int card_add(struct card *c, enum card_line_kind kind, const char *fmt, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        if (c->truncated)
                return 0;
        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0) {
                s = NULL; /* undefined after a failure */
                return -ENOMEM;
        }
        return card_add_raw(c, kind, s, (size_t)n);
}

/* "label: value", the value sanitised again: callers may fill id and reason directly. */
static void put_field(FILE *out, const char *label, const char *value, size_t len, const char *sgr)
{
        char buf[CARD_LINE_MAX + 128];

        card_sanitise(value, len, buf, sizeof(buf));
        fprintf(out, "%-9s%s%s%s\n", label, sgr, buf, *sgr ? "\033[0m" : "");
}

static const char *risk_sgr(enum policy_risk r)
{
        switch (r) {
        case POLICY_RISK_HIGH:
                return "\033[1;31m";
        case POLICY_RISK_MEDIUM:
                return "\033[33m";
        case POLICY_RISK_LOW:
        case POLICY_RISK_NONE:
                return "";
        }
        return "";
}

void card_render(const struct card *c, FILE *out, int colour)
{
        const char *bold = colour ? "\033[1m" : "";
        const char *sandbox = c->sandbox ? c->sandbox : "(none)";
        const char *title = c->title ? c->title : "";
        char risk[64];

        fprintf(out, "%s== Diff Card ==%s\n", bold, colour ? "\033[0m" : "");
        put_field(out, "id:", c->id, strnlen(c->id, sizeof(c->id)), "");
        put_field(out, "action:", c->action, strnlen(c->action, sizeof(c->action)), "");
        snprintf(risk, sizeof(risk), "%s (%s)", policy_risk_name(c->decision.risk),
                 policy_verdict_name(c->decision.verdict));
        put_field(out, "risk:", risk, strlen(risk), colour ? risk_sgr(c->decision.risk) : "");
        put_field(out, "reason:", c->decision.reason,
                  strnlen(c->decision.reason, sizeof(c->decision.reason)), "");
        put_field(out, "sandbox:", sandbox, strlen(sandbox), "");
        put_field(out, "title:", title, strlen(title), bold);
        fputs("--\n", out);
        for (size_t i = 0; i < c->n_lines; i++) {
                const struct card_line *l = &c->lines[i];
                const char *sgr = (unsigned)l->kind < sizeof(line_sgr) / sizeof(line_sgr[0]) &&
                                          line_sgr[l->kind] != NULL
                                      ? line_sgr[l->kind]
                                      : "";

                if (colour && *sgr)
                        fprintf(out, "%s%s\033[0m\n", sgr, l->text);
                else
                        fprintf(out, "%s\n", l->text);
        }
        fputs("--\n", out);
}
