/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_workspace.h"
#include "audit/audit.h"
#include "run/run_opts.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "policy/approve.h"
#include "policy/card.h"
#include "proto/proto.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WS_COPY_TIMEOUT_MS (10 * 60 * 1000) /* a big tree under TCG is slow; a stuck tar is not */
#define WS_REFUSED_SHOWN   20               /* refused entries named on the terminal */

/*
 * Names in an error message may come from the sandbox (a conflict on its
 * file, a hostile entry): the message is made safe for a terminal before it
 * leaves this file, the same way as card lines.
 */
static void err_sanitise(struct lg_err **err)
{
        char out[sizeof((*err)->msg)];

        if (err == NULL || *err == NULL)
                return;
        card_sanitise((*err)->msg, strnlen((*err)->msg, sizeof((*err)->msg)), out, sizeof(out));
        memcpy((*err)->msg, out, sizeof(out));
}

/* s for the terminal: a sanitised copy in out. */
static const char *safe(const char *s, char *out, size_t outsz)
{
        card_sanitise(s, strlen(s), out, outsz);
        return out;
}

/* s as a JSON string for an audit record: as is when valid UTF-8, else sanitised ("\xNN"). */
static json_t *jtext(const char *s)
{
        size_t n = strlen(s);
        json_t *j = json_string(s);
        char *esc;

        if (j != NULL)
                return j;
        esc = malloc(4 * n + 1);
        if (esc == NULL)
                return NULL;
        card_sanitise(s, n, esc, 4 * n + 1);
        j = json_string(esc);
        free(esc);
        return j;
}

/* What tar said on stderr, bounded and printable, for an error message. */
static void tail_text(int fd, char *out, size_t outsz)
{
        ssize_t n = pread(fd, out, outsz - 1, 0);

        if (n < 0)
                n = 0;
        out[n] = '\0';
        for (ssize_t i = 0; i < n; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                        out[i] = ' ';
}

/* Run a shell line in the guest with in_fd / out_fd as its stdin / stdout; tar's stderr kept. */
static int guest_tar(struct agent_conn *c, int vmm_pidfd, const char *line, int in_fd, int out_fd,
                     uint64_t out_limit, int intr_fd, const char *what, struct lg_err **err)
{
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)line, NULL};
        char *env[] = {(char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        struct proto_exec x = {
            .argv = argv, .argc = 3, .env = env, .envc = 1, .timeout_ms = WS_COPY_TIMEOUT_MS};
        struct sandbox_exec_result res;
        char said[512];
        int errfd = memfd_create("lg-tar-stderr", MFD_CLOEXEC), nullfd = -1, r;

        if (errfd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "memfd");
        if (out_fd < 0)
                out_fd = nullfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        struct sandbox_exec_io io = {.in_fd = in_fd,
                                     .out_fd = out_fd,
                                     .err_fd = errfd,
                                     .intr_fd = intr_fd,
                                     .out_limit = out_limit};

        r = agent_exec(c, vmm_pidfd, &x, &io, &res, err);
        if (r < 0)
                err_wrap(err, "%s", what);
        else if (res.out_limited == 2)
                r = err_set(err, LG_EK_LOST, EFBIG, "%s: tar in the sandbox wrote endless errors",
                            what);
        else if (res.out_limited)
                r = err_set(err, LG_EK_USAGE, EFBIG,
                            "%s: the sandbox's workspace is larger than --workspace-max (%llu "
                            "MiB)",
                            what, (unsigned long long)(out_limit >> 20));
        else if (res.spawn_errno || res.signo || res.timed_out || res.exit_code != 0) {
                tail_text(errfd, said, sizeof(said));
                r = err_set(err, LG_EK_LOST, 0, "%s: tar in the sandbox failed (%s%d)%s%s", what,
                            res.signo ? "signal " : "exit ", res.signo ? res.signo : res.exit_code,
                            said[0] ? ": " : "", said);
        }
        close(errfd);
        if (nullfd >= 0)
                close(nullfd);
        return r;
}

static int tmpfile_in(const char *home, struct lg_err **err)
{
        char dir[PATH_MAX];
        int r, fd;

        snprintf(dir, sizeof(dir), "%s/changes", home);
        r = fs_mkdir_p(dir, 0700);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "create %s", dir);
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        return fd < 0 ? err_set(err, LG_EK_INTERNAL, errno, "temporary file in %s", dir) : fd;
}

static int same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Is the directory st path itself or one of its ancestors (path resolved)? */
static int at_or_above(const char *path, const struct stat *st)
{
        char p[PATH_MAX];
        struct stat s;

        snprintf(p, sizeof(p), "%s", path);
        for (;;) {
                char *slash = strrchr(p, '/');

                if (stat(p[0] ? p : "/", &s) == 0 && same_file(&s, st))
                        return 1;
                if (slash == NULL || p[0] == '\0')
                        return 0;
                *slash = '\0';
        }
}

/*
 * DIR must be apart from $LUMINAGUARD_HOME: a workspace that holds it would
 * give the sandbox the audit log and the kept change sets to rewrite (and
 * applying would write into them); one inside it is luminaguard's own
 * state. By name (both resolved) and by identity, walking up from each (a
 * bind mount is the same directory by another name).
 */
static int apart_from_home(const char *dir, const char *home, struct lg_err **err)
{
        char h[PATH_MAX];
        struct stat sd, sh;
        size_t nh, nd = strlen(dir);
        int holds, inside;

        if (realpath(home, h) == NULL)
                return err_set(err, LG_EK_INTERNAL, errno, "resolve %s", home);
        if (stat(dir, &sd) < 0 || stat(h, &sh) < 0)
                return err_set(err, LG_EK_USAGE, errno, "--workspace %s", dir);
        nh = strlen(h);
        holds = (strncmp(h, dir, nd) == 0 && h[nd] == '/') || at_or_above(h, &sd);
        inside = (strncmp(dir, h, nh) == 0 && (dir[nh] == '\0' || dir[nh] == '/')) ||
                 at_or_above(dir, &sh);
        if (inside)
                return err_set(err, LG_EK_USAGE, 0,
                               "--workspace %s is inside $LUMINAGUARD_HOME (%s), luminaguard's "
                               "own state: choose a directory outside it",
                               dir, h);
        if (holds)
                return err_set(err, LG_EK_USAGE, 0,
                               "--workspace %s holds $LUMINAGUARD_HOME (%s): the sandbox would "
                               "get the audit log and the kept change sets to rewrite; choose a "
                               "directory that does not contain it, or set LUMINAGUARD_HOME "
                               "elsewhere",
                               dir, h);
        return 0;
}

int run_ws_init(struct run_ws *w, const char *home, const struct run_opts *o, struct lg_err **err)
{
        int r;

        memset(w, 0, sizeof(*w));
        w->tar_fd = -1;
        w->lock_fd = -1;
        w->lim.max_bytes = o->workspace_max;
        w->lim.max_entries = WS_MAX_ENTRIES;
        w->in_only = o->workspace_in_only;
        if (realpath(o->workspace, w->dir) == NULL)
                return err_set(err, LG_EK_USAGE, errno, "--workspace %s", o->workspace);
        if (strcmp(w->dir, "/") == 0)
                return err_set(err, LG_EK_USAGE, 0,
                               "--workspace /: the whole host is not a workspace");
        r = apart_from_home(w->dir, home, err);
        if (r < 0)
                return r;
        /* Packed now: what the user got wrong is said before a sandbox starts. */
        w->tar_fd = tmpfile_in(home, err);
        if (w->tar_fd < 0)
                return w->tar_fd;
        return ws_pack(w->dir, w->tar_fd, &w->lim, &w->m, err);
}

static int audit(const char *home, const char *event, const char *sandbox, json_t *f, int sync,
                 struct lg_err **err)
{
        int r;

        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "audit record %s", event);
        r = audit_append(home, event, sandbox, f, sync, err);
        json_decref(f);
        return r;
}

int run_ws_copy_in(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                   const char *sandbox, int intr_fd, struct lg_err **err)
{
        int r = 0;

        snprintf(w->sandbox, sizeof(w->sandbox), "%s", sandbox);
        if (lseek(w->tar_fd, 0, SEEK_SET) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "rewind the workspace tar stream");
        /* -o: the guest's user owns what it unpacks (the process backend is not root). */
        if (r == 0)
                r = guest_tar(c, vmm_pidfd,
                              "umask 0 && mkdir -p " WS_GUEST_DIR " && cd " WS_GUEST_DIR
                              " && exec tar -x -o -f -",
                              w->tar_fd, -1, 0, intr_fd, "copy the workspace into the sandbox",
                              err);
        if (r < 0) {
                struct lg_err *aerr = NULL;

                /* The command never starts: this record, not an exec.end, says why. */
                err_sanitise(err);
                if (audit(home, "workspace.copy_in", sandbox,
                          json_pack("{s:o, s:b, s:s}", "dir", jtext(w->dir), "ok", 0, "error",
                                    *err ? (*err)->msg : ""),
                          0, &aerr) < 0)
                        log_error("%s", aerr->msg);
                err_free(&aerr);
                return r;
        }
        return audit(home, "workspace.copy_in", sandbox,
                     json_pack("{s:o, s:b, s:I, s:I}", "dir", jtext(w->dir), "ok", 1, "entries",
                               (json_int_t)w->m.n, "bytes", (json_int_t)w->m.bytes),
                     0, err);
}

int run_ws_copy_out(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                    int intr_fd, struct lg_err **err)
{
        char store[PATH_MAX];
        /* File bytes plus tar's own: a header (and pax record) per entry, padding. */
        uint64_t limit = w->lim.max_bytes + (uint64_t)w->lim.max_entries * 2048 + (1u << 20);
        int fd = tmpfile_in(home, err), r;

        char id[80];

        if (fd < 0)
                return fd;
        /* A session may copy out again: the last change set was decided, a new one starts. */
        ws_changeset_free(&w->cs);
        w->have_changes = 0;
        if (w->outs++ == 0)
                snprintf(id, sizeof(id), "%s", w->sandbox);
        else
                snprintf(id, sizeof(id), "%s-%u", w->sandbox, w->outs);
        r = guest_tar(c, vmm_pidfd, "cd " WS_GUEST_DIR " && exec tar -c -f - .", -1, fd, limit,
                      intr_fd, "copy the workspace out of the sandbox", err);
        if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "rewind the workspace tar stream");
        snprintf(store, sizeof(store), "%s/changes/%s", home, id);
        if (r == 0) {
                r = ws_unpack(fd, &w->m, w->dir, store, id, &w->lim, &w->cs, err);
                w->have_changes = r == 0;
                if (r < 0 && fs_remove_tree(store) < 0)
                        log_warn("could not remove %s", store);
        }
        close(fd);
        if (r < 0) {
                err_sanitise(err);
                return r;
        }
        return audit(home, "workspace.copy_out", w->sandbox,
                     json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "dir", jtext(w->dir), "added",
                               (json_int_t)w->cs.added, "modified", (json_int_t)w->cs.modified,
                               "deleted", (json_int_t)w->cs.deleted, "chmodded",
                               (json_int_t)w->cs.chmodded, "refused", (json_int_t)w->cs.n_refused,
                               "store", jtext(store)),
                     0, err);
}

static void say_kept(const struct ws_changeset *cs)
{
        char store[PATH_MAX * 4];

        fprintf(stderr,
                "luminaguard: the change set is kept at %s\n"
                "luminaguard: to apply it later: luminaguard changes apply %s\n",
                safe(cs->store, store, sizeof(store)), cs->id);
}

int run_ws_lock(const char *store, const char *id, int wait, struct lg_err **err)
{
        char path[PATH_MAX + 16], holder[32];
        ssize_t n;
        int fd, r;

        snprintf(path, sizeof(path), "%s/.lock", store);
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(err, errno == ENOENT ? LG_EK_USAGE : LG_EK_INTERNAL, errno,
                               "change set %s: lock %s", id, path);
        while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR)
                ;
        if (r < 0 && errno == EWOULDBLOCK) {
                n = pread(fd, holder, sizeof(holder) - 1, 0);
                holder[n > 0 ? n : 0] = '\0';
                holder[strspn(holder, "0123456789")] = '\0'; /* a pid, nothing else */
                close(fd);
                return err_set(err, LG_EK_USAGE, 0,
                               "change set %s is being decided by another luminaguard (pid %s); "
                               "try again when it is done",
                               id, holder[0] ? holder : "unknown");
        }
        if (r < 0) {
                r = errno;
                close(fd);
                return err_set(err, LG_EK_INTERNAL, r, "change set %s: lock %s", id, path);
        }
        /* Who holds it, for the message the next one prints. */
        n = snprintf(holder, sizeof(holder), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, holder, (size_t)n, 0) != n)
                log_debug("could not note our pid in %s", path);
        return fd;
}

int run_ws_decide(const char *home, const struct ws_changeset *cs, const char *sandbox,
                  const struct approve_ctx *ctx, struct lg_err **err)
{
        struct policy_action act = {.kind = POLICY_WORKSPACE_APPLY,
                                    .files_changed = cs->added + cs->modified + cs->chmodded,
                                    .files_deleted = cs->deleted};
        struct approve_answer a;
        struct lg_err *aerr = NULL;
        struct card *c;
        char title[PATH_MAX + 64], id[sizeof(c->id)], dir[PATH_MAX * 4], why[1024];
        json_t *detail;
        int r;

        snprintf(title, sizeof(title), "apply %zu change%s to %s", cs->n, cs->n == 1 ? "" : "s",
                 cs->dir);
        safe(cs->dir, dir, sizeof(dir));
        c = card_new("workspace.apply", title, sandbox, NULL);
        if (c == NULL) {
                say_kept(cs);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "diff card");
        }
        r = ws_card(cs, c, err);
        if (r < 0) {
                card_free(c);
                say_kept(cs);
                err_sanitise(err);
                return r;
        }
        detail = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I}", "dir", jtext(cs->dir), "store",
                           jtext(cs->store), "added", (json_int_t)cs->added, "modified",
                           (json_int_t)cs->modified, "deleted", (json_int_t)cs->deleted, "chmodded",
                           (json_int_t)cs->chmodded);
        r = approve_ask(ctx, &act, c, detail, &a, err);
        json_decref(detail);
        snprintf(id, sizeof(id), "%s", c->id);
        card_free(c);
        if (r <
            0) { /* the question or its answer is not on record (or had no id): nothing happens */
                err_sanitise(err);
                say_kept(cs);
                return RUN_WS_UNAUDITED;
        }
        if (!approve_granted(&a)) {
                fprintf(stderr, "luminaguard: workspace changes not applied: %s%s%s\n",
                        approve_outcome_name(a.outcome), a.reason[0] ? ": " : "",
                        safe(a.reason, why, sizeof(why)));
                if (a.outcome == APPROVE_NO_APPROVER)
                        fprintf(stderr, "luminaguard: to be asked, run from a terminal with "
                                        "--approve prompt or --approve tui\n");
                say_kept(cs);
                return RUN_WS_NOT_APPLIED;
        }
        r = ws_apply(cs, &aerr);
        err_sanitise(&aerr);
        /* The outcome is recorded, durably, whatever it was. */
        if (audit(home, "workspace.apply", sandbox,
                  json_pack("{s:s, s:s, s:o, s:s, s:I}", "request", id, "outcome",
                            r == 0 ? "applied" : "failed", "dir", jtext(cs->dir), "error",
                            aerr ? aerr->msg : "", "changes", (json_int_t)cs->n),
                  1, err) < 0) {
                if (r == 0)
                        err_wrap(err,
                                 "the %zu change%s ARE applied to %s, but the audit log could not "
                                 "record it (request %s); the change set stays at %s as the "
                                 "record of what was applied (luminaguard changes drop %s when "
                                 "done)",
                                 cs->n, cs->n == 1 ? "" : "s", cs->dir, id, cs->store, cs->id);
                else
                        err_wrap(err,
                                 "workspace changes not applied (%s), and the audit log could "
                                 "not record that (request %s); the change set is kept at %s",
                                 aerr->msg, id, cs->store);
                err_sanitise(err);
                err_free(&aerr);
                return RUN_WS_UNAUDITED;
        }
        if (r < 0) {
                fprintf(stderr, "luminaguard: workspace changes not applied: %s\n", aerr->msg);
                err_free(&aerr);
                say_kept(cs);
                return RUN_WS_NOT_APPLIED;
        }
        fprintf(stderr,
                "luminaguard: applied %zu change%s to %s (%zu added, %zu modified, %zu "
                "deleted, %zu mode changes)\n",
                cs->n, cs->n == 1 ? "" : "s", dir, cs->added, cs->modified, cs->deleted,
                cs->chmodded);
        if (fs_remove_tree(cs->store) < 0)
                log_warn("could not remove %s", safe(cs->store, dir, sizeof(dir)));
        return RUN_WS_DONE;
}

int run_ws_settle(struct run_ws *w, const char *home, const struct run_opts *o,
                  const struct policy *p, int intr_fd, struct lg_err **err)
{
        struct approve_ctx ctx = {.home = home,
                                  .policy = p,
                                  .mode = o->approve,
                                  .timeout_ms = (int)o->approve_timeout_ms,
                                  .intr_fd = intr_fd};
        char line[1024];
        int r;

        if (!w->have_changes)
                return RUN_WS_DONE;
        /* Each line names an entry the sandbox made: sanitised, and a flood is counted. */
        for (size_t i = 0; i < w->cs.n_refused && i < WS_REFUSED_SHOWN; i++)
                log_warn("workspace: %s", safe(w->cs.refused[i], line, sizeof(line)));
        if (w->cs.n_refused > WS_REFUSED_SHOWN)
                log_warn("workspace: ... and %zu more entries not applied",
                         w->cs.n_refused - WS_REFUSED_SHOWN);
        if (w->cs.n == 0) {
                log_info("workspace %s: no changes", safe(w->dir, line, sizeof(line)));
                if (fs_remove_tree(w->cs.store) < 0)
                        log_warn("could not remove %s", w->cs.store);
                return RUN_WS_DONE;
        }
        /*
         * Locked from before changes.json exists until the decision is made
         * and acted on: `luminaguard changes apply|drop` cannot take the same
         * change set from under us.
         */
        w->lock_fd = run_ws_lock(w->cs.store, w->cs.id, 1, err);
        r = w->lock_fd < 0 ? w->lock_fd : ws_changeset_save(&w->cs, err);
        if (r < 0) {
                /* A store without its changes.json is debris nobody could use. */
                if (fs_remove_tree(w->cs.store) < 0)
                        log_warn("could not remove %s", w->cs.store);
                err_wrap(err, "workspace changes not applied, and not kept");
        } else {
                r = run_ws_decide(home, &w->cs, w->sandbox, &ctx, err);
        }
        if (w->lock_fd >= 0)
                close(w->lock_fd);
        w->lock_fd = -1;
        err_sanitise(err);
        return r;
}

int run_ws_repack(struct run_ws *w, const char *home, struct lg_err **err)
{
        int fd = tmpfile_in(home, err), r;

        if (fd < 0)
                return fd;
        ws_manifest_free(&w->m);
        r = ws_pack(w->dir, fd, &w->lim, &w->m, err);
        if (w->tar_fd >= 0)
                close(w->tar_fd);
        w->tar_fd = fd;
        return r;
}

void run_ws_free(struct run_ws *w)
{
        if (w->tar_fd >= 0)
                close(w->tar_fd);
        w->tar_fd = -1;
        if (w->lock_fd >= 0)
                close(w->lock_fd);
        w->lock_fd = -1;
        ws_manifest_free(&w->m);
        ws_changeset_free(&w->cs);
}
