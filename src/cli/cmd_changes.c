/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard changes`: change sets that were not applied (denied, timed
 * out, in conflict), kept under $LUMINAGUARD_HOME/changes/<sandbox>/ —
 * listed, shown as their Diff Card, applied after approval, or dropped.
 */
#include "cli/cli.h"
#include "run/run_workspace.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/parse.h"
#include "policy/approve.h"
#include "policy/card.h"
#include "workspace/workspace.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static const char changes_usage[] =
    "usage: luminaguard changes [list]\n"
    "       luminaguard changes show ID\n"
    "       luminaguard changes apply ID [--approve prompt|tui|deny] [--approve-timeout DUR]\n"
    "       luminaguard changes drop ID\n"
    "\n"
    "Workspace change sets from `run --workspace` that were not applied.\n"
    "  list   each kept change set: its id, workspace and counts\n"
    "  show   its Diff Card (file list and diffs)\n"
    "  apply  ask again (default: a prompt on this terminal) and apply it if approved;\n"
    "         refused as a conflict if the workspace changed since\n"
    "  drop   delete it\n";

/* An id names a directory under changes/: a sandbox id, nothing that could climb out. */
static int store_of(const char *home, const char *id, char *out, size_t outsz)
{
        if (id[0] == '\0' || strlen(id) > 64 ||
            strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(id))
                return -EINVAL;
        snprintf(out, outsz, "%s/changes/%s", home, id);
        return 0;
}

static int load(const char *home, const char *id, struct ws_changeset *cs)
{
        char store[PATH_MAX + 96];
        struct lg_err *err = NULL;

        if (store_of(home, id, store, sizeof(store)) < 0) {
                err_set(&err, LG_EK_USAGE, 0,
                        "'%s' is not a change set id (see luminaguard changes list)", id);
                return cli_report(err) + (err_free(&err), 0);
        }
        if (ws_changeset_load(store, cs, &err) < 0) {
                int st = cli_report(err);

                err_free(&err);
                return st;
        }
        return 0;
}

/*
 * The change set's lock, not waiting: a `run` that is still deciding it, or
 * another `changes apply|drop`, holds it. The descriptor, or minus the exit
 * status (said).
 */
static int lock_store(const char *home, const char *id)
{
        char store[PATH_MAX + 96];
        struct lg_err *err = NULL;
        int fd;

        if (store_of(home, id, store, sizeof(store)) < 0 || !fs_exists(store)) {
                err_set(&err, LG_EK_USAGE, 0,
                        "'%s' is not a change set id (see luminaguard changes list)", id);
                fd = -cli_report(err);
                err_free(&err);
                return fd;
        }
        fd = run_ws_lock(store, id, 0, &err);
        if (fd < 0) {
                fd = -cli_report(err);
                err_free(&err);
        }
        return fd;
}

static int changes_list(const char *home)
{
        char dir[PATH_MAX + 16];
        struct dirent *de;
        DIR *d;
        int n = 0;

        snprintf(dir, sizeof(dir), "%s/changes", home);
        d = opendir(dir);
        if (d != NULL) {
                while ((de = readdir(d)) != NULL) {
                        struct ws_changeset cs;
                        char store[PATH_MAX + 96];
                        struct lg_err *err = NULL;

                        if (de->d_name[0] == '.' ||
                            store_of(home, de->d_name, store, sizeof(store)) < 0)
                                continue;
                        if (ws_changeset_load(store, &cs, &err) < 0) {
                                err_free(&err);
                                continue; /* a run still in progress, or debris */
                        }
                        printf("%-18s %3zu added %3zu modified %3zu deleted %3zu chmod  %s\n",
                               de->d_name, cs.added, cs.modified, cs.deleted, cs.chmodded, cs.dir);
                        ws_changeset_free(&cs);
                        n++;
                }
                closedir(d);
        }
        if (n == 0)
                printf("no change sets kept in %s\n", dir);
        return 0;
}

static int changes_show(const char *home, const char *id)
{
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        struct card *c;
        int st = load(home, id, &cs);

        if (st != 0)
                return st;
        c = card_new("workspace.apply", "kept change set", id, NULL);
        if (c == NULL || ws_card(&cs, c, &err) < 0) {
                st = err ? cli_report(err) : LG_EXIT_INTERNAL;
                err_free(&err);
        } else {
                card_render(c, stdout, isatty(STDOUT_FILENO));
        }
        card_free(c);
        ws_changeset_free(&cs);
        return st;
}

static int changes_apply(const char *home, int argc, char **argv)
{
        static const struct option longopts[] = {
            {"approve", required_argument, NULL, 'A'},
            {"approve-timeout", required_argument, NULL, 'T'},
            {NULL, 0, NULL, 0},
        };
        struct approve_ctx ctx = {.home = home,
                                  .mode = isatty(STDERR_FILENO) ? APPROVE_MODE_PROMPT
                                                                : APPROVE_MODE_DENY,
                                  .timeout_ms = APPROVE_DEFAULT_TIMEOUT_MS,
                                  .intr_fd = -1};
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        uint64_t ms;
        sigset_t set, old;
        int c, st, r, lock;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
                if (c == 'A' && approve_mode_parse(optarg, &ctx.mode) == 0)
                        continue;
                if (c == 'T' && parse_duration_ms(optarg, &ms) == 0 && ms > 0 && ms <= 86400000) {
                        ctx.timeout_ms = (int)ms;
                        continue;
                }
                fputs(changes_usage, stderr);
                return LG_EXIT_USAGE;
        }
        if (optind != argc - 1) {
                fputs(changes_usage, stderr);
                return LG_EXIT_USAGE;
        }
        lock = lock_store(home, argv[optind]);
        if (lock < 0)
                return -lock;
        st = load(home, argv[optind], &cs);
        if (st != 0) {
                close(lock);
                return st;
        }
        /* Ctrl-C while the card is up cancels it (recorded), never kills us mid-apply. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &set, &old) == 0) {
                ctx.intr_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
                if (ctx.intr_fd < 0) /* then Ctrl-C keeps its default: it ends us */
                        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        }
        r = run_ws_decide(home, &cs, cs.id, &ctx, &err);
        if (r < 0 || r == RUN_WS_UNAUDITED)
                st = cli_report(err);
        else
                st = r == RUN_WS_DONE ? 0 : LG_EXIT_NOT_APPLIED;
        close(lock);
        err_free(&err);
        ws_changeset_free(&cs);
        if (ctx.intr_fd >= 0)
                close(ctx.intr_fd);
        return st;
}

int cmd_changes(int argc, char **argv)
{
        char home[PATH_MAX], store[PATH_MAX + 96];
        const char *sub = argc > 1 ? argv[1] : "list";

        if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
                fputs(changes_usage, stdout);
                return 0;
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        if (strcmp(sub, "list") == 0 && argc <= 2)
                return changes_list(home);
        if (strcmp(sub, "show") == 0 && argc == 3)
                return changes_show(home, argv[2]);
        if (strcmp(sub, "apply") == 0 && argc >= 3)
                return changes_apply(home, argc - 1, argv + 1);
        if (strcmp(sub, "drop") == 0 && argc == 3) {
                struct ws_changeset cs;
                int lock = lock_store(home, argv[2]), st;

                if (lock < 0)
                        return -lock;
                st = load(home, argv[2], &cs);
                if (st != 0) {
                        close(lock);
                        return st;
                }
                ws_changeset_free(&cs);
                store_of(home, argv[2], store, sizeof(store));
                st = fs_remove_tree(store) < 0 ? LG_EXIT_INTERNAL : 0;
                close(lock);
                if (st != 0) {
                        fprintf(stderr, "luminaguard: error: could not remove %s\n", store);
                        return st;
                }
                printf("dropped %s\n", argv[2]);
                return 0;
        }
        fputs(changes_usage, stderr);
        return LG_EXIT_USAGE;
}
