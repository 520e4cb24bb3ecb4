/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The card viewer (approver.h): the card's header, its body in a window
 * that scrolls, a status bar with the keys and a countdown.
 *
 * It runs on its own curses screen over the terminal the caller opened
 * (newterm, never initscr): stdin and stdout may be pipes to an agent, and
 * the caller may have a screen of its own, which is made current again on
 * return. Text non-ASCII shows as such only if the program set a UTF-8
 * locale (setlocale in main); otherwise curses shows its bytes escaped.
 */
#include "policy/approver.h"
#include "policy/card.h"
#include "common/err.h"
#include "common/monotime.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#define HEADER_ROWS 6   /* title bar, action and risk, reason, sandbox, title, rule */
#define TICK_MS     250 /* the countdown is redrawn at least this often */
#define REASON_IN   200 /* bytes typed for a reason: room for some escapes in a->reason */
#define ESC_MS      100 /* Esc alone, not the start of an arrow key's sequence, after this */

enum { P_ADD = 1, P_DEL, P_HUNK, P_NOTE, P_HIGH, P_MEDIUM, P_LOW };

struct tui {
        SCREEN *screen, *prev;
        FILE *in, *out;
        const struct card *c;
        size_t top, left; /* first body line shown, columns scrolled right */
        int colour, utf8;
        int typing; /* the reason line is open */
        size_t reason_len;
        char reason[REASON_IN + 1];
};

static FILE *dup_file(int fd, const char *mode)
{
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        FILE *f = d >= 0 ? fdopen(d, mode) : NULL;

        if (f == NULL && d >= 0)
                close(d);
        return f;
}

static int tui_open(struct tui *t, int tty_fd, struct lg_err **err)
{
        const char *term = getenv("TERM");

        t->in = dup_file(tty_fd, "r");
        t->out = dup_file(tty_fd, "w");
        if (t->in == NULL || t->out == NULL)
                return err_set(err, LG_EK_INTERNAL, errno, "open the terminal");
        t->screen = newterm(NULL, t->out, t->in);
        if (t->screen == NULL)
                return err_set(err, LG_EK_INTERNAL, 0,
                               "terminal type '%.64s' has no curses support",
                               term ? term : "(TERM unset)");
        t->prev = set_term(t->screen);
        cbreak();
        noecho();
        keypad(stdscr, TRUE);
        curs_set(0);
        set_escdelay(ESC_MS);
        t->utf8 = MB_CUR_MAX > 1;
        if (has_colors() && start_color() == OK) {
                short bg = use_default_colors() == OK ? -1 : COLOR_BLACK;

                t->colour = 1;
                init_pair(P_ADD, COLOR_GREEN, bg);
                init_pair(P_DEL, COLOR_RED, bg);
                init_pair(P_HUNK, COLOR_CYAN, bg);
                init_pair(P_NOTE, COLOR_YELLOW, bg);
                init_pair(P_HIGH, COLOR_RED, bg);
                init_pair(P_MEDIUM, COLOR_YELLOW, bg);
                init_pair(P_LOW, COLOR_GREEN, bg);
        }
        /* Keys pressed before the card was on the screen answer nothing. */
        flushinp();
        return 0;
}

/* Put the terminal back as it was, on every return. */
static void tui_close(struct tui *t)
{
        if (t->screen != NULL) {
                endwin();
                delscreen(t->screen);
                if (t->prev != NULL)
                        set_term(t->prev);
        }
        if (t->out != NULL)
                fclose(t->out);
        if (t->in != NULL)
                fclose(t->in);
}

/* Bytes of the character at s and its width in columns (1 when unknown). */
static size_t char_at(const char *s, mbstate_t *st, int *width)
{
        wchar_t wc;
        size_t n = mbrtowc(&wc, s, MB_CUR_MAX, st); /* stops at the NUL: never reads past it */

        if (n == 0 || n == (size_t)-1 || n == (size_t)-2) {
                memset(st, 0, sizeof(*st));
                *width = 1;
                return 1;
        }
        *width = wcwidth(wc) > 0 ? wcwidth(wc) : 1;
        return n;
}

/* s at (y, x) from column skip on, at most width columns: never wraps to the next row. */
static void put_cut(int y, int x, const char *s, size_t skip, int width, attr_t attr)
{
        mbstate_t st;
        size_t used = 0;
        int w, cols = 0;

        memset(&st, 0, sizeof(st));
        for (size_t col = 0; *s != '\0' && col < skip; col += (size_t)w)
                s += char_at(s, &st, &w);
        while (s[used] != '\0') {
                size_t n = char_at(s + used, &st, &w);

                if (cols + w > width)
                        break;
                used += n;
                cols += w;
        }
        attrset(attr);
        mvaddnstr(y, x, s, (int)used);
        attrset(A_NORMAL);
}

static attr_t line_attr(const struct tui *t, enum card_line_kind k)
{
        switch (k) {
        case CARD_ADD:
                return t->colour ? COLOR_PAIR(P_ADD) : A_NORMAL;
        case CARD_DEL:
                return t->colour ? COLOR_PAIR(P_DEL) : A_NORMAL;
        case CARD_HUNK:
                return t->colour ? COLOR_PAIR(P_HUNK) : A_BOLD;
        case CARD_NOTE:
                return t->colour ? COLOR_PAIR(P_NOTE) : A_DIM;
        case CARD_HEADING:
                return A_BOLD;
        case CARD_TEXT:
        case CARD_CONTEXT:
                return A_NORMAL;
        }
        return A_NORMAL;
}

static attr_t risk_attr(const struct tui *t, enum policy_risk r)
{
        if (!t->colour)
                return r == POLICY_RISK_HIGH ? A_BOLD | A_REVERSE : A_BOLD;
        return r == POLICY_RISK_HIGH     ? COLOR_PAIR(P_HIGH) | A_BOLD
               : r == POLICY_RISK_MEDIUM ? COLOR_PAIR(P_MEDIUM) | A_BOLD
                                         : COLOR_PAIR(P_LOW);
}

/* A header row "label value"; the value sanitised again, as card_render does. */
static void put_field(int y, const char *label, const char *value, size_t len, attr_t attr)
{
        char buf[CARD_LINE_MAX + 128];

        card_sanitise(value, len, buf, sizeof(buf));
        put_cut(y, 0, label, 0, COLS, A_BOLD);
        put_cut(y, 9, buf, 0, COLS - 9, attr);
}

static size_t body_rows(void)
{
        return LINES > HEADER_ROWS + 1 ? (size_t)(LINES - HEADER_ROWS - 1) : 0;
}

static void draw(struct tui *t, int secs)
{
        const struct card *c = t->c;
        size_t rows = body_rows(), max_top = c->n_lines > rows ? c->n_lines - rows : 0;
        char risk[64], bar[REASON_IN * 4 + 256], typed[REASON_IN * 4 + 1], right[96];
        int n, x;

        if (t->top > max_top)
                t->top = max_top;
        erase();
        snprintf(bar, sizeof(bar), " LuminaGuard: approve this action?  %.64s", c->id);
        mvhline(0, 0, ' ' | A_REVERSE, COLS);
        put_cut(0, 0, bar, 0, COLS, A_REVERSE | A_BOLD);
        put_field(1, "action:", c->action, strnlen(c->action, sizeof(c->action)), A_NORMAL);
        snprintf(risk, sizeof(risk), "%s (%s)", policy_risk_name(c->decision.risk),
                 policy_verdict_name(c->decision.verdict));
        /* Right after the action: on a narrow terminal the risk must not be the part cut. */
        x = 9 + (int)strnlen(c->action, sizeof(c->action)) + 4;
        put_cut(1, x, "risk:", 0, COLS - x, A_BOLD);
        put_cut(1, x + 6, risk, 0, COLS - x - 6, risk_attr(t, c->decision.risk));
        put_field(2, "reason:", c->decision.reason,
                  strnlen(c->decision.reason, sizeof(c->decision.reason)), A_NORMAL);
        put_field(3, "sandbox:", c->sandbox ? c->sandbox : "(none)",
                  strlen(c->sandbox ? c->sandbox : "(none)"), A_NORMAL);
        put_field(4, "title:", c->title ? c->title : "", c->title ? strlen(c->title) : 0, A_BOLD);
        mvhline(5, 0, ACS_HLINE, COLS);
        /* Body lines are sanitised when added (card.h): shown as they are. */
        for (size_t r = 0; r < rows && t->top + r < c->n_lines; r++) {
                const struct card_line *l = &c->lines[t->top + r];

                put_cut(HEADER_ROWS + (int)r, 0, l->text, t->left, COLS, line_attr(t, l->kind));
        }
        /* What was typed is shown as it will be recorded. */
        card_sanitise(t->reason, t->reason_len, typed, sizeof(typed));
        if (t->typing)
                snprintf(bar, sizeof(bar), " reason: %s   Enter deny  Esc back", typed);
        else
                snprintf(bar, sizeof(bar),
                         " a approve  d deny  r deny with reason  c cancel   %s scroll",
                         t->utf8 ? "\u2191\u2193" : "up/down");
        /* The countdown at the right edge, where narrowing the terminal never cuts it. */
        n = snprintf(right, sizeof(right), "   %ds left   %zu-%zu/%zu ", secs,
                     c->n_lines ? t->top + 1 : 0,
                     t->top + rows < c->n_lines ? t->top + rows : c->n_lines, c->n_lines);
        x = COLS > n ? COLS - n : 0;
        mvhline(LINES - 1, 0, ' ' | A_REVERSE, COLS);
        put_cut(LINES - 1, 0, bar, 0, x - 1, A_REVERSE);
        put_cut(LINES - 1, x, right, 0, COLS - x, A_REVERSE | A_BOLD);
        if (t->typing) { /* the cursor where the next key goes */
                int cx = 9 + (int)strlen(typed);

                move(LINES - 1, cx < x - 1 ? cx : x - 1);
        }
        refresh();
}

/* Scrolling keys, in both modes. 1 if ch was one. */
static int scroll_key(struct tui *t, int ch)
{
        size_t page = body_rows() > 1 ? body_rows() - 1 : 1;

        switch (ch) {
        case KEY_UP:
                t->top -= t->top > 0;
                return 1;
        case KEY_DOWN:
                t->top++; /* draw() clamps */
                return 1;
        case KEY_PPAGE:
                t->top = t->top > page ? t->top - page : 0;
                return 1;
        case KEY_NPAGE:
                t->top += page;
                return 1;
        case KEY_HOME:
                t->top = 0;
                return 1;
        case KEY_END:
                t->top = t->c->n_lines;
                return 1;
        case KEY_LEFT:
                t->left = t->left > 8 ? t->left - 8 : 0;
                return 1;
        case KEY_RIGHT:
                t->left += t->left < CARD_LINE_MAX ? 8 : 0;
                return 1;
        }
        return 0;
}

/* The typed reason: Enter denies with it, Esc goes back. 1 once decided. */
static int reason_key(struct tui *t, int ch, struct approve_answer *a)
{
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
                a->outcome = APPROVE_DENIED;
                card_sanitise(t->reason, t->reason_len, a->reason, sizeof(a->reason));
                return 1;
        }
        if (ch == 27) {
                t->typing = 0;
                curs_set(0);
        } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
                /* One character back: its continuation bytes, then its first byte. */
                while (t->reason_len > 0 && (t->reason[t->reason_len - 1] & 0xc0) == 0x80)
                        t->reason_len--;
                t->reason_len -= t->reason_len > 0;
        } else if (ch >= 0x20 && ch < 0x100 && ch != 0x7f && t->reason_len < REASON_IN) {
                t->reason[t->reason_len++] = (char)ch;
        }
        t->reason[t->reason_len] = '\0';
        return 0;
}

/* The viewer's letters for scrolling, as the keys they stand for (less, vi). */
static int letter_key(int ch)
{
        static const char letters[] = "kjb gGhl";
        static const int keys[] = {KEY_UP,   KEY_DOWN, KEY_PPAGE, KEY_NPAGE,
                                   KEY_HOME, KEY_END,  KEY_LEFT,  KEY_RIGHT};
        const char *p = ch > 0 && ch < 0x80 ? strchr(letters, ch) : NULL;

        return p != NULL ? keys[p - letters] : ch;
}

/* One key in the viewer. 1 once decided. */
static int view_key(struct tui *t, int ch, struct approve_answer *a)
{
        if (ch == 'r') {
                t->typing = 1;
                t->reason_len = 0;
                t->reason[0] = '\0';
                curs_set(1);
        }
        if (ch != 'a' && ch != 'd' && ch != 'c')
                return 0;
        a->outcome = ch == 'a' ? APPROVE_APPROVED : ch == 'd' ? APPROVE_DENIED : APPROVE_CANCELLED;
        a->reason[0] = '\0';
        return 1;
}

/* What poll() says of fd now; 0 for -1. */
static short revents(int fd)
{
        struct pollfd p = {.fd = fd, .events = POLLIN};

        return fd >= 0 && poll(&p, 1, 0) > 0 ? p.revents : 0;
}

/* An end without a key: our reason. */
static int ended(struct approve_answer *a, enum approve_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ended(struct approve_answer *a, enum approve_outcome o, const char *fmt, ...)
{
        va_list ap;

        a->outcome = o;
        va_start(ap, fmt);
        vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
        va_end(ap);
        return 0;
}

int approver_tui(const struct card *c, int tty_fd, int timeout_ms, int intr_fd,
                 struct approve_answer *a, struct lg_err **err)
{
        __attribute__((cleanup(tui_close))) struct tui t = {.c = c};
        uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        int r;

        approve_answer_init(a, tty_fd, "tui");
        if (tty_fd < 0)
                return err_set(err, LG_EK_INTERNAL, EBADF, "no terminal to ask on");
        r = tui_open(&t, tty_fd, err);
        if (r < 0)
                return r;
        for (;;) {
                int left = mono_left_ms(deadline), ch;

                /* Before any key: a cancel must not lose to typeahead. */
                if (revents(intr_fd) != 0)
                        return ended(a, APPROVE_CANCELLED, "interrupted");
                if (left == 0)
                        return ended(a, APPROVE_TIMEOUT, "no answer in %d s",
                                     timeout_ms / 1000 + (timeout_ms % 1000 != 0));
                draw(&t, left / 1000 + (left % 1000 != 0));
                timeout(left < TICK_MS ? left : TICK_MS);
                ch = getch();
                /* A hung-up terminal: curses says only ERR, as for a timeout. */
                if (ch == ERR && (revents(tty_fd) & (POLLHUP | POLLERR | POLLNVAL)))
                        return ended(a, APPROVE_DENIED, "terminal closed");
                if (ch == ERR)
                        continue;
                if (!t.typing)
                        ch = letter_key(ch);
                if (ch == KEY_RESIZE || scroll_key(&t, ch))
                        continue;
                if (t.typing ? reason_key(&t, ch, a) : view_key(&t, ch, a))
                        return 0;
        }
}
