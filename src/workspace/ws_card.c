/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A change set as a Diff Card: counts, the entries that will not be
 * applied, then the file list — one line per entry, every entry before any
 * diff, so the list is the last thing a long card loses — then, for text
 * files, unified diffs from diff(1) (diffutils, essential on Debian).
 * Binary and large files are summarised; the whole card is bounded so a
 * sandbox that rewrites a million lines cannot bury the human in them, and
 * when even the file list does not fit, the card says so at its top.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "policy/card.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CARD_TEXT_MAX   (1u << 20) /* larger files are summarised */
#define CARD_FILE_LINES 400        /* diff lines shown per file */
#define CARD_ALL_LINES  4000       /* and in all */
#define CARD_REFUSED    20         /* refused entries named; the rest are counted */

/* Text is what has no NUL in it; the diff's lines are sanitised by the card anyway. */
static int is_text(int fd, uint64_t size)
{
        char buf[8192];
        ssize_t n;

        if (size > CARD_TEXT_MAX)
                return 0;
        n = pread(fd, buf, sizeof(buf), 0);
        return n >= 0 && memchr(buf, '\0', (size_t)n) == NULL;
}

static enum card_line_kind diff_kind(const char *l)
{
        if (strncmp(l, "+++", 3) == 0 || strncmp(l, "---", 3) == 0)
                return CARD_HEADING;
        if (l[0] == '@')
                return CARD_HUNK;
        if (l[0] == '+')
                return CARD_ADD;
        if (l[0] == '-')
                return CARD_DEL;
        if (l[0] == '\\')
                return CARD_NOTE;
        return CARD_CONTEXT;
}

/*
 * diff -u between two descriptors (-1 = /dev/null), its lines into c, at
 * most *budget of them. The old side is the user's file, opened beneath DIR;
 * the new side the staged blob. Both are handed over as /dev/fd/N.
 */
static int card_diff(struct card *c, const char *path, int old_fd, int new_fd, size_t *budget)
{
        char a[64], b[64], la[WS_MAX_PATH + 8], lb[WS_MAX_PATH + 8];
        int pipefd[2], status = 0;
        size_t shown = 0, cut = 0, cap = *budget < CARD_FILE_LINES ? *budget : CARD_FILE_LINES;
        char *line = NULL;
        size_t linecap = 0;
        ssize_t n;
        FILE *in;
        pid_t pid, w;

        snprintf(a, sizeof(a), old_fd >= 0 ? "/dev/fd/%d" : "/dev/null", old_fd);
        snprintf(b, sizeof(b), new_fd >= 0 ? "/dev/fd/%d" : "/dev/null", new_fd);
        snprintf(la, sizeof(la), "a/%s", path);
        snprintf(lb, sizeof(lb), "b/%s", path);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }
        if (pid == 0) {
                /* Child: only the two files and the pipe survive the exec. */
                if (dup2(pipefd[1], STDOUT_FILENO) < 0 ||
                    (old_fd >= 0 && fcntl(old_fd, F_SETFD, 0) < 0) ||
                    (new_fd >= 0 && fcntl(new_fd, F_SETFD, 0) < 0))
                        _exit(127);
                execl("/usr/bin/diff", "diff", "-u", "--label", la, "--label", lb, a, b,
                      (char *)NULL);
                _exit(127);
        }
        close(pipefd[1]);
        in = fdopen(pipefd[0], "r");
        if (in == NULL) {
                close(pipefd[0]);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                return -ENOMEM;
        }
        while ((n = getline(&line, &linecap, in)) > 0) {
                if (line[n - 1] == '\n')
                        line[--n] = '\0';
                if (shown >= cap) {
                        cut++;
                        continue;
                }
                if (card_add_raw(c, diff_kind(line), line, (size_t)n) < 0)
                        break;
                shown++;
        }
        free(line);
        fclose(in);
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
                ;
        *budget -= shown;
        if (cut > 0)
                (void)card_add(c, CARD_NOTE, "(%zu more diff lines of %s not shown)", cut, path);
        if (w < 0)
                (void)card_add(c, CARD_NOTE, "(no diff: waiting for diff(1) on %s: %s)", path,
                               strerror(errno));
        else if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
                (void)card_add(c, CARD_NOTE, "(no diff: diff(1) failed on %s)", path);
        return 0;
}

static const char *type_word(enum ws_type t)
{
        return t == WS_REG ? "file" : t == WS_DIR ? "directory" : "symlink";
}

static void card_entry_header(struct card *c, const struct ws_change *ch)
{
        const struct ws_entry *o = &ch->old, *n = &ch->new;

        switch (ch->op) {
        case WS_ADD:
                if (n->type == WS_LNK)
                        (void)card_add(c, CARD_HEADING, "A %s  (symlink -> %s)", n->path, n->link);
                else if (n->type == WS_DIR)
                        (void)card_add(c, CARD_HEADING, "A %s/  (directory, %04o)", n->path,
                                       n->mode);
                else
                        (void)card_add(c, CARD_HEADING, "A %s  (file, %04o, %llu bytes)", n->path,
                                       n->mode, (unsigned long long)n->size);
                break;
        case WS_MODIFY:
                if (n->type == WS_LNK)
                        (void)card_add(c, CARD_HEADING, "M %s  (symlink: %s -> %s)", n->path,
                                       o->link, n->link);
                else
                        (void)card_add(c, CARD_HEADING, "M %s  (%llu -> %llu bytes%s)", n->path,
                                       (unsigned long long)o->size, (unsigned long long)n->size,
                                       o->mode != n->mode ? ", mode changes too" : "");
                if (o->mode != n->mode && n->type == WS_REG)
                        (void)card_add(c, CARD_NOTE, "  mode %04o -> %04o", o->mode, n->mode);
                break;
        case WS_DELETE:
                (void)card_add(c, CARD_HEADING, "D %s%s  (%s)", o->path,
                               o->type == WS_DIR ? "/" : "", type_word(o->type));
                break;
        case WS_CHMOD:
                (void)card_add(c, CARD_HEADING, "C %s  (mode %04o -> %04o)", n->path, o->mode,
                               n->mode);
                break;
        }
}

/* How many lines card_entry_header() adds for ch. */
static size_t header_lines(const struct ws_change *ch)
{
        return ch->op == WS_MODIFY && ch->new.type == WS_REG && ch->old.mode != ch->new.mode ? 2
                                                                                             : 1;
}

/* The diff (or why there is none) of one change to a regular file; nothing for other changes. */
static void card_change_diff(const struct ws_changeset *cs, struct card *c, int root,
                             const struct ws_change *ch, size_t *budget, size_t *not_shown)
{
        int old_reg = ch->op != WS_ADD && ch->old.type == WS_REG;
        int new_reg = (ch->op == WS_ADD || ch->op == WS_MODIFY) && ch->new.type == WS_REG;
        const char *path = ch->op == WS_ADD ? ch->new.path : ch->old.path;
        char blob[4096];
        int r;

        if (!old_reg && !new_reg)
                return;
        if (ch->op == WS_MODIFY && ch->old.type != WS_REG)
                return;
        _cleanup_fd_ int ofd = old_reg ? ws_open_beneath(root, ch->old.path, O_RDONLY) : -1;
        snprintf(blob, sizeof(blob), "%s/%s", cs->store, new_reg ? ch->new.blob : "");
        _cleanup_fd_ int nfd = new_reg ? open(blob, O_RDONLY | O_CLOEXEC) : -1;

        if ((old_reg && ofd < 0) || (new_reg && nfd < 0)) {
                (void)card_add(c, CARD_NOTE, "(%s: content not readable now)", path);
                return;
        }
        if ((old_reg && !is_text(ofd, ch->old.size)) || (new_reg && !is_text(nfd, ch->new.size))) {
                (void)card_add(c, CARD_NOTE,
                               "(%s: binary or large file, %llu -> %llu bytes, not shown)", path,
                               (unsigned long long)(old_reg ? ch->old.size : 0),
                               (unsigned long long)(new_reg ? ch->new.size : 0));
                return;
        }
        if (*budget == 0) {
                (*not_shown)++;
                return;
        }
        r = card_diff(c, path, ofd, nfd, budget);
        if (r < 0)
                (void)card_add(c, CARD_NOTE, "(%s: no diff: %s)", path, strerror(-r));
}

int ws_card(const struct ws_changeset *cs, struct card *c, struct lg_err **err)
{
        size_t budget = CARD_ALL_LINES, not_shown = 0, list = 0, before;
        size_t named = cs->n_refused < CARD_REFUSED ? cs->n_refused : CARD_REFUSED;
        _cleanup_fd_ int root = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (root < 0)
                return err_set(err, LG_EK_USAGE, errno, "workspace %s", cs->dir);
        for (size_t i = 0; i < cs->n; i++)
                list += header_lines(&cs->c[i]);
        /* Lines up to the end of the file list: when they do not fit, that is said first. */
        before = 3 + (cs->n_refused ? 1 + named + (cs->n_refused > named) : 0) + 1 + list;
        if (before > CARD_MAX_LINES)
                (void)card_add(c, CARD_NOTE,
                               "the file list is longer than the card: only part of its %zu "
                               "entries is shown; every one is in %s/changes.json",
                               cs->n, cs->store);
        (void)card_add(c, CARD_TEXT, "workspace: %s", cs->dir);
        (void)card_add(c, CARD_TEXT, "%zu added, %zu modified, %zu deleted, %zu mode changes",
                       cs->added, cs->modified, cs->deleted, cs->chmodded);
        (void)card_add(c, CARD_TEXT, "change set kept at %s", cs->store);
        if (cs->n_refused > 0) {
                (void)card_add(c, CARD_NOTE,
                               "%zu entr%s from the sandbox will not be applied:", cs->n_refused,
                               cs->n_refused == 1 ? "y" : "ies");
                for (size_t i = 0; i < named; i++)
                        (void)card_add(c, CARD_NOTE, "  not applied: %s", cs->refused[i]);
                if (cs->n_refused > named)
                        (void)card_add(c, CARD_NOTE, "  ... and %zu more", cs->n_refused - named);
        }
        (void)card_add(c, CARD_TEXT, "%s", "");
        /* Every entry's line first, then the diffs. */
        for (size_t i = 0; i < cs->n; i++)
                card_entry_header(c, &cs->c[i]);
        (void)card_add(c, CARD_TEXT, "%s", "");
        for (size_t i = 0; i < cs->n; i++)
                card_change_diff(cs, c, root, &cs->c[i], &budget, &not_shown);
        if (not_shown > 0)
                (void)card_add(c, CARD_NOTE,
                               "(%zu more diff%s not shown: the card's limit of %u diff lines is "
                               "reached)",
                               not_shown, not_shown == 1 ? "" : "s", CARD_ALL_LINES);
        return 0;
}
