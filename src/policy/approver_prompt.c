/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The line prompt: the card printed on the terminal, then one question,
 * asked again until it gets an answer, the time runs out or intr_fd fires.
 * Only a typed answer approves: an empty line, a line too long to read
 * whole, a line ended by EOF instead of Enter, anything typed before the
 * card was on the screen — none of them counts.
 */
#include "policy/approver.h"
#include "policy/card.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/monotime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#define ANSWER_MAX 512 /* one typed line, newline included; longer lines are refused whole */

/* Lines from the terminal; bytes past the first newline wait for the next call. */
struct line_reader {
        int fd;
        size_t len;   /* bytes in buf */
        int overlong; /* the line being read outgrew buf: drop it up to its newline */
        char buf[ANSWER_MAX];
};

enum got { GOT_LINE, GOT_OVERLONG, GOT_EOF, GOT_TIMEOUT, GOT_INTR };

/*
 * The next line into line (ANSWER_MAX bytes, newline stripped): a got
 * value, or < 0 with *err when the terminal fails. intr_fd wins over input
 * that arrived at the same time: a cancel must not lose to typeahead.
 */
static int read_line(struct line_reader *r, int intr_fd, uint64_t deadline, char *line,
                     struct lg_err **err)
{
        for (;;) {
                char *nl = memchr(r->buf, '\n', r->len);
                struct pollfd p[2] = {{.fd = r->fd, .events = POLLIN},
                                      {.fd = intr_fd, .events = POLLIN}};
                int left, n;
                ssize_t got;

                if (nl != NULL) {
                        size_t k = (size_t)(nl - r->buf);
                        int overlong = r->overlong;

                        memcpy(line, r->buf, k);
                        line[k] = '\0';
                        memmove(r->buf, nl + 1, r->len - k - 1);
                        r->len -= k + 1;
                        r->overlong = 0;
                        return overlong ? GOT_OVERLONG : GOT_LINE;
                }
                if (r->len == sizeof(r->buf)) {
                        r->overlong = 1;
                        r->len = 0;
                }
                left = mono_left_ms(deadline);
                if (left == 0)
                        return GOT_TIMEOUT;
                n = poll(p, intr_fd >= 0 ? 2 : 1, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(err, LG_EK_INTERNAL, errno, "wait for the terminal");
                }
                if (intr_fd >= 0 && p[1].revents != 0)
                        return GOT_INTR;
                if (p[0].revents & POLLNVAL)
                        return err_set(err, LG_EK_INTERNAL, EBADF, "wait for the terminal");
                if (p[0].revents == 0)
                        continue;
                got = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
                /* EIO: the terminal hung up (a pty's master closed). */
                if (got == 0 || (got < 0 && errno == EIO))
                        return GOT_EOF;
                if (got < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return err_set(err, LG_EK_INTERNAL, errno, "read the terminal");
                }
                r->len += (size_t)got;
        }
}

static int say(int fd, struct lg_err **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(int fd, struct lg_err **err, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return err_set(err, LG_EK_INTERNAL, EINVAL, "format a prompt");
        r = fd_write_all(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
        return r < 0 ? err_set(err, LG_EK_INTERNAL, -r, "write to the terminal") : 0;
}

/* What was decided, shown best-effort: the answer stands whether or not the terminal shows it. */
static void tell(int fd, const char *msg)
{
        if (fd_write_all(fd, msg, strlen(msg)) < 0)
                return;
}

static int show_card(const struct card *c, int fd, struct lg_err **err)
{
        _cleanup_fd_ int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        _cleanup_file_ FILE *f = NULL;
        int bad;

        if (dfd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "duplicate the terminal");
        f = fdopen(dfd, "w");
        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, errno, "open the terminal");
        steal_fd(&dfd);
        card_render(c, f, isatty(fd));
        bad = fflush(f) != 0 || ferror(f);
        if (fclose(steal_pointer(&f)) != 0 || bad)
                return err_set(err, LG_EK_INTERNAL, EIO, "write the card to the terminal");
        return 0;
}

/* The terminal's mode as we found it, put back on every return. */
struct tty_mode {
        int fd; /* -1: nothing to restore */
        struct termios saved;
};

static void tty_mode_restore(struct tty_mode *m)
{
        if (m->fd >= 0)
                tcsetattr(m->fd, TCSADRAIN, &m->saved);
}

/*
 * Line editing and echo, and Enter ending a line: what the prompt needs.
 * A terminal normally has all three; one left raw by a crashed program
 * does not. Not a terminal (a socket in tests): left alone.
 */
static void tty_mode_canonical(struct tty_mode *m, int fd)
{
        struct termios t;

        if (tcgetattr(fd, &m->saved) < 0)
                return;
        t = m->saved;
        t.c_lflag |= ICANON | ECHO;
        t.c_iflag |= ICRNL;
        if ((t.c_lflag != m->saved.c_lflag || t.c_iflag != m->saved.c_iflag) &&
            tcsetattr(fd, TCSADRAIN, &t) == 0)
                m->fd = fd;
}

/* The answer without surrounding blanks (in place). */
static char *trim(char *s)
{
        size_t n;

        s += strspn(s, " \t");
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = '\0';
        return s;
}

static int is(const char *word, const char *a, const char *b)
{
        return strcasecmp(word, a) == 0 || strcasecmp(word, b) == 0;
}

/* A human's answer without words. */
static int decide(struct approve_answer *a, enum approve_outcome o, int fd)
{
        a->outcome = o;
        a->reason[0] = '\0';
        tell(fd, o == APPROVE_APPROVED    ? "approved\n"
                 : o == APPROVE_CANCELLED ? "cancelled\n"
                                          : "denied\n");
        return 0;
}

/* The end without a human's answer: timeout, EOF or interrupt. */
static int finish(struct approve_answer *a, int got, int timeout_ms, int fd)
{
        switch (got) {
        case GOT_TIMEOUT:
                a->outcome = APPROVE_TIMEOUT;
                snprintf(a->reason, sizeof(a->reason), "no answer in %d s",
                         timeout_ms / 1000 + (timeout_ms % 1000 != 0));
                tell(fd, "\nno answer in time: denied\n");
                break;
        case GOT_INTR:
                a->outcome = APPROVE_CANCELLED;
                snprintf(a->reason, sizeof(a->reason), "interrupted");
                tell(fd, "\ninterrupted: cancelled\n");
                break;
        case GOT_EOF:
        default:
                a->outcome = APPROVE_DENIED;
                snprintf(a->reason, sizeof(a->reason), "terminal closed");
                break;
        }
        return 0;
}

/* After "r": the reason, then a deny. 0, or < 0 with *err. */
static int ask_reason(struct line_reader *rd, int intr_fd, uint64_t deadline, int timeout_ms,
                      struct approve_answer *a, struct lg_err **err)
{
        char line[ANSWER_MAX];

        for (;;) {
                char *words;
                int r = say(rd->fd, err, "reason: ");

                if (r < 0)
                        return r;
                r = read_line(rd, intr_fd, deadline, line, err);
                if (r < 0)
                        return r;
                if (r == GOT_OVERLONG) {
                        r = say(rd->fd, err, "too long: at most %zu bytes\n",
                                sizeof(a->reason) - 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r != GOT_LINE)
                        return finish(a, r, timeout_ms, rd->fd);
                words = trim(line);
                a->outcome = APPROVE_DENIED;
                card_sanitise(words, strlen(words), a->reason, sizeof(a->reason));
                tell(rd->fd, "denied\n");
                return 0;
        }
}

int approver_prompt(const struct card *c, int tty_fd, int timeout_ms, int intr_fd,
                    struct approve_answer *a, struct lg_err **err)
{
        __attribute__((cleanup(tty_mode_restore))) struct tty_mode mode = {.fd = -1};
        uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        struct line_reader rd = {.fd = tty_fd};
        char line[ANSWER_MAX];
        int r;

        approve_answer_init(a, tty_fd, "prompt");
        if (tty_fd < 0)
                return err_set(err, LG_EK_INTERNAL, EBADF, "no terminal to ask on");
        tty_mode_canonical(&mode, tty_fd);
        r = show_card(c, tty_fd, err);
        if (r < 0)
                return r;
        /* Keys pressed before the card was on the screen answer nothing. */
        tcflush(tty_fd, TCIFLUSH);
        for (;;) {
                int left = mono_left_ms(deadline);
                char *word;

                if (left > 0) {
                        r = say(tty_fd, err,
                                "approve? [y]es / [n]o / [r] deny with reason / [c]ancel (%ds "
                                "left): ",
                                (left + 999) / 1000);
                        if (r < 0)
                                return r;
                }
                r = read_line(&rd, intr_fd, deadline, line, err);
                if (r < 0)
                        return r;
                if (r != GOT_LINE && r != GOT_OVERLONG)
                        return finish(a, r, timeout_ms, tty_fd);
                word = trim(line);
                if (r == GOT_LINE && is(word, "y", "yes"))
                        return decide(a, APPROVE_APPROVED, tty_fd);
                if (r == GOT_LINE && is(word, "n", "no"))
                        return decide(a, APPROVE_DENIED, tty_fd);
                if (r == GOT_LINE && is(word, "r", "reason"))
                        return ask_reason(&rd, intr_fd, deadline, timeout_ms, a, err);
                if (r == GOT_LINE && is(word, "c", "cancel"))
                        return decide(a, APPROVE_CANCELLED, tty_fd);
                r = say(tty_fd, err, "%s\n",
                        r == GOT_OVERLONG ? "answer too long" : "please answer y, n, r or c");
                if (r < 0)
                        return r;
        }
}
