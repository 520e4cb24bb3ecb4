/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/run_workspace.h"
#include "audit/audit.h"
#include "cli/run_opts.h"
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
#include <sys/mman.h>
#include <unistd.h>

#define WS_COPY_TIMEOUT_MS (10 * 60 * 1000) /* a big tree under TCG is slow; a stuck tar is not */

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

int run_ws_init(struct run_ws *w, const char *home, const struct run_opts *o, struct lg_err **err)
{
        memset(w, 0, sizeof(*w));
        w->tar_fd = -1;
        w->lim.max_bytes = o->workspace_max;
        w->lim.max_entries = WS_MAX_ENTRIES;
        if (realpath(o->workspace, w->dir) == NULL)
                return err_set(err, LG_EK_USAGE, errno, "--workspace %s", o->workspace);
        if (strcmp(w->dir, "/") == 0)
                return err_set(err, LG_EK_USAGE, 0,
                               "--workspace /: the whole host is not a workspace");
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
        if (r < 0)
                return r;
        return audit(home, "workspace.copy_in", sandbox,
                     json_pack("{s:s, s:I, s:I}", "dir", w->dir, "entries", (json_int_t)w->m.n,
                               "bytes", (json_int_t)w->m.bytes),
                     0, err);
}

int run_ws_copy_out(struct run_ws *w, const char *home, struct agent_conn *c, int vmm_pidfd,
                    int intr_fd, struct lg_err **err)
{
        char store[PATH_MAX];
        /* File bytes plus tar's own: a header (and pax record) per entry, padding. */
        uint64_t limit = w->lim.max_bytes + (uint64_t)w->lim.max_entries * 2048 + (1u << 20);
        int fd = tmpfile_in(home, err), r;

        if (fd < 0)
                return fd;
        r = guest_tar(c, vmm_pidfd, "cd " WS_GUEST_DIR " && exec tar -c -f - .", -1, fd, limit,
                      intr_fd, "copy the workspace out of the sandbox", err);
        if (r == 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "rewind the workspace tar stream");
        snprintf(store, sizeof(store), "%s/changes/%s", home, w->sandbox);
        if (r == 0) {
                r = ws_unpack(fd, &w->m, w->dir, store, w->sandbox, &w->lim, &w->cs, err);
                w->have_changes = r == 0;
                if (r < 0 && fs_remove_tree(store) < 0)
                        log_warn("could not remove %s", store);
        }
        close(fd);
        if (r < 0)
                return r;
        return audit(home, "workspace.copy_out", w->sandbox,
                     json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "dir", w->dir, "added",
                               (json_int_t)w->cs.added, "modified", (json_int_t)w->cs.modified,
                               "deleted", (json_int_t)w->cs.deleted, "chmodded",
                               (json_int_t)w->cs.chmodded, "refused", (json_int_t)w->cs.n_refused,
                               "store", store),
                     0, err);
}

static void say_kept(const struct ws_changeset *cs)
{
        fprintf(stderr,
                "luminaguard: the change set is kept at %s\n"
                "luminaguard: to apply it later: luminaguard changes apply %s\n",
                cs->store, cs->id);
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
        char title[PATH_MAX + 64];
        json_t *detail;
        int r;

        snprintf(title, sizeof(title), "apply %zu change%s to %s", cs->n, cs->n == 1 ? "" : "s",
                 cs->dir);
        c = card_new("workspace.apply", title, sandbox, NULL);
        if (c == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "diff card");
        r = ws_card(cs, c, err);
        detail =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "dir", cs->dir, "store", cs->store, "added",
                      (json_int_t)cs->added, "modified", (json_int_t)cs->modified, "deleted",
                      (json_int_t)cs->deleted, "chmodded", (json_int_t)cs->chmodded);
        if (r == 0)
                r = approve_ask(ctx, &act, c, detail, &a, err);
        json_decref(detail);
        if (r < 0) {
                card_free(c);
                say_kept(cs);
                return r;
        }
        if (!approve_granted(&a)) {
                fprintf(stderr, "luminaguard: workspace changes not applied: %s%s%s\n",
                        approve_outcome_name(a.outcome), a.reason[0] ? ": " : "", a.reason);
                if (a.outcome == APPROVE_NO_APPROVER)
                        fprintf(stderr, "luminaguard: to be asked, run from a terminal with "
                                        "--approve prompt or --approve tui\n");
                card_free(c);
                say_kept(cs);
                return 1;
        }
        r = ws_apply(cs, &aerr);
        /* The outcome is recorded, durably, whatever it was. */
        {
                json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:I}", "request", c->id, "outcome",
                                      r == 0 ? "applied" : "failed", "dir", cs->dir, "error",
                                      aerr ? aerr->msg : "", "changes", (json_int_t)cs->n);

                card_free(c);
                if (audit(home, "workspace.apply", sandbox, f, 1, err) < 0) {
                        err_free(&aerr);
                        return -1;
                }
        }
        if (r < 0) {
                fprintf(stderr, "luminaguard: workspace changes not applied: %s\n", aerr->msg);
                err_free(&aerr);
                say_kept(cs);
                return 1;
        }
        fprintf(stderr,
                "luminaguard: applied %zu change%s to %s (%zu added, %zu modified, %zu "
                "deleted, %zu mode changes)\n",
                cs->n, cs->n == 1 ? "" : "s", cs->dir, cs->added, cs->modified, cs->deleted,
                cs->chmodded);
        if (fs_remove_tree(cs->store) < 0)
                log_warn("could not remove %s", cs->store);
        return 0;
}

int run_ws_settle(struct run_ws *w, const char *home, const struct run_opts *o,
                  const struct policy *p, int intr_fd, struct lg_err **err)
{
        struct approve_ctx ctx = {.home = home,
                                  .policy = p,
                                  .mode = o->approve,
                                  .timeout_ms = (int)o->approve_timeout_ms,
                                  .intr_fd = intr_fd};
        int r;

        if (!w->have_changes)
                return 0;
        for (size_t i = 0; i < w->cs.n_refused; i++)
                log_warn("workspace: %s", w->cs.refused[i]);
        if (w->cs.n == 0) {
                log_info("workspace %s: no changes", w->dir);
                if (fs_remove_tree(w->cs.store) < 0)
                        log_warn("could not remove %s", w->cs.store);
                return 0;
        }
        r = ws_changeset_save(&w->cs, err);
        if (r < 0)
                return r;
        return run_ws_decide(home, &w->cs, w->sandbox, &ctx, err);
}

void run_ws_free(struct run_ws *w)
{
        if (w->tar_fd >= 0)
                close(w->tar_fd);
        w->tar_fd = -1;
        ws_manifest_free(&w->m);
        ws_changeset_free(&w->cs);
}
