/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Apply an approved change set to the user's DIR, all or nothing.
 *
 * POSIX has no multi-file transaction, so this keeps a journal instead:
 * every step (delete, mkdir, replace, create, chmod) is done so that it can
 * be undone — a deleted or replaced entry is first kept under a hidden
 * backup name beside it — and any failure undoes the steps already taken,
 * in reverse. Only when every step succeeded are the backups removed.
 *
 * Before the first step, every path the change set touches is compared with
 * what was packed: if the user (or anything else) changed one meanwhile,
 * the apply is refused as a conflict and DIR is left as it is.
 *
 * Every directory on the way to a target is opened with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: a symbolic link in DIR can never
 * redirect a write outside it, whatever raced in since the check.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum undo_kind {
        UNDO_RESTORE, /* rename backup back to base (a delete or a replace) */
        UNDO_REMOVE,  /* remove base (a created file, link or directory) */
        UNDO_CHMOD,   /* chmod base back to mode */
};

struct undo {
        enum undo_kind kind;
        char *parent; /* relative to DIR, "" for DIR itself */
        char base[256];
        char backup[64];
        mode_t mode;
        int is_dir;
};

struct apply {
        const struct ws_changeset *cs;
        int root;
        struct undo *u;
        size_t n, cap;
        unsigned long seq;
};

/* The directory holding path (relative), never through a symbolic link. */
static int open_parent(int root, const char *path, char *base, size_t basesz)
{
        const char *slash = strrchr(path, '/');
        char dir[WS_MAX_PATH + 1];
        long fd;

        snprintf(base, basesz, "%s", slash ? slash + 1 : path);
        if (slash == NULL) {
                fd = fcntl(root, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? -errno : (int)fd;
        }
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        return ws_open_beneath(root, dir, O_RDONLY | O_DIRECTORY);
}

static int sha_of_fd(int fd, unsigned char out[32], uint64_t *size)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char buf[64 * 1024];
        unsigned len = 0;
        ssize_t n;
        int r = 0;

        *size = 0;
        if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
                EVP_MD_CTX_free(md);
                return -ENOMEM;
        }
        while ((n = read(fd, buf, sizeof(buf))) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                EVP_DigestUpdate(md, buf, (size_t)n);
                *size += (uint64_t)n;
        }
        if (r == 0 && !(EVP_DigestFinal_ex(md, out, &len) && len == 32))
                r = -EIO;
        EVP_MD_CTX_free(md);
        return r;
}

/* Does path in DIR hold exactly e (or nothing, when e is NULL)? 1 yes, 0 no (why in why). */
static int holds(int root, const char *path, const struct ws_entry *e, char *why, size_t whysz)
{
        char base[256], target[4096];
        struct stat st;
        int r;
        _cleanup_fd_ int pfd = open_parent(root, path, base, sizeof(base));

        if (pfd < 0) {
                if (e == NULL && pfd == -ENOENT)
                        return 1;
                snprintf(why, whysz, "its directory cannot be opened (%s)", strerror(-pfd));
                return 0;
        }
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT && e == NULL)
                        return 1;
                snprintf(why, whysz, "%s", errno == ENOENT ? "it was deleted" : strerror(errno));
                return 0;
        }
        if (e == NULL) {
                snprintf(why, whysz, "it was created");
                return 0;
        }
        if ((e->type == WS_REG && !S_ISREG(st.st_mode)) ||
            (e->type == WS_DIR && !S_ISDIR(st.st_mode)) ||
            (e->type == WS_LNK && !S_ISLNK(st.st_mode))) {
                snprintf(why, whysz, "its type changed");
                return 0;
        }
        if (e->type != WS_LNK && (st.st_mode & 07777) != e->mode) {
                snprintf(why, whysz, "its mode changed (%04o, was %04o)", st.st_mode & 07777,
                         e->mode);
                return 0;
        }
        if (e->type == WS_LNK) {
                ssize_t n = readlinkat(pfd, base, target, sizeof(target) - 1);

                if (n < 0 || (target[n] = '\0', strcmp(target, e->link) != 0)) {
                        snprintf(why, whysz, "the link's target changed");
                        return 0;
                }
        }
        if (e->type == WS_REG) {
                unsigned char sha[32];
                uint64_t size = 0;
                _cleanup_fd_ int fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

                r = fd < 0 ? -errno : sha_of_fd(fd, sha, &size);
                if (r < 0 || size != e->size || memcmp(sha, e->sha, 32) != 0) {
                        snprintf(why, whysz, "its content changed");
                        return 0;
                }
        }
        return 1;
}

/* Is there a DELETE of path in the change set (a type change: delete, then add)? */
static int deleted_first(const struct ws_changeset *cs, const char *path)
{
        for (size_t i = 0; i < cs->n; i++)
                if (cs->c[i].op == WS_DELETE && strcmp(cs->c[i].old.path, path) == 0)
                        return 1;
        return 0;
}

static int check_conflicts(struct apply *a, struct lg_err **err)
{
        char why[256];

        for (size_t i = 0; i < a->cs->n; i++) {
                const struct ws_change *c = &a->cs->c[i];

                if (c->op == WS_ADD && deleted_first(a->cs, c->new.path))
                        continue; /* the DELETE checks the old entry */
                if (!holds(a->root, c->op == WS_ADD ? c->new.path : c->old.path,
                           c->op == WS_ADD ? NULL : &c->old, why, sizeof(why)))
                        return err_set(err, LG_EK_USAGE, 0,
                                       "conflict: %s/%s changed in the workspace since the "
                                       "sandbox got its copy (%s); nothing was applied",
                                       a->cs->dir, c->op == WS_ADD ? c->new.path : c->old.path,
                                       why);
        }
        return 0;
}

static struct undo *journal(struct apply *a, enum undo_kind kind, const char *path,
                            const char *base)
{
        const char *slash = strrchr(path, '/');
        struct undo *u;

        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 32;
                struct undo *nu = realloc(a->u, cap * sizeof(*nu));

                if (nu == NULL)
                        return NULL;
                a->u = nu;
                a->cap = cap;
        }
        u = &a->u[a->n];
        memset(u, 0, sizeof(*u));
        u->kind = kind;
        u->parent = strndup(path, slash ? (size_t)(slash - path) : 0);
        if (u->parent == NULL)
                return NULL;
        snprintf(u->base, sizeof(u->base), "%s", base);
        a->n++;
        return u;
}

static void backup_name(struct apply *a, char *out, size_t outsz)
{
        snprintf(out, outsz, ".lg-apply-%d-%lu", (int)getpid(), a->seq++);
}

/* Delete: the entry moves aside under a backup name (a directory with what is left in it). */
static int step_delete(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        char base[256], bak[64];
        _cleanup_fd_ int pfd = open_parent(a->root, c->old.path, base, sizeof(base));
        struct undo *u;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", c->old.path);
        backup_name(a, bak, sizeof(bak));
        if (renameat2(pfd, base, pfd, bak, RENAME_NOREPLACE) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "delete %s", c->old.path);
        u = journal(a, UNDO_RESTORE, c->old.path, base);
        if (u == NULL) {
                (void)renameat(pfd, bak, pfd, base);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        }
        snprintf(u->backup, sizeof(u->backup), "%s", bak);
        u->is_dir = c->old.type == WS_DIR;
        return 0;
}

static int step_mkdir(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        char base[256];
        _cleanup_fd_ int pfd = open_parent(a->root, c->new.path, base, sizeof(base));

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", c->new.path);
        /* Owner-writable until the end: the chmod steps set the final mode. */
        if (mkdirat(pfd, base, 0700) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "create %s", c->new.path);
        if (journal(a, UNDO_REMOVE, c->new.path, base) == NULL) {
                (void)unlinkat(pfd, base, AT_REMOVEDIR);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        }
        a->u[a->n - 1].is_dir = 1;
        return 0;
}

/* The staged content into a new file beside the target, checked against its hash on the way. */
static int stage_file(struct apply *a, int pfd, const char *tmp, const struct ws_entry *e,
                      struct lg_err **err)
{
        char blob[4096];
        unsigned char sha[32];
        uint64_t size;
        int r;

        snprintf(blob, sizeof(blob), "%s/%s", a->cs->store, e->blob);
        _cleanup_fd_ int in = open(blob, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_fd_ int out =
            openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (in < 0 || out < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "stage %s", e->path);
        r = sha_of_fd(in, sha, &size);
        if (r < 0 || size != e->size || memcmp(sha, e->sha, 32) != 0)
                return err_set(err, LG_EK_INTERNAL, r < 0 ? -r : 0,
                               "the staged content of %s (%s) does not match its change set",
                               e->path, blob);
        if (lseek(in, 0, SEEK_SET) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "stage %s", e->path);
        for (;;) {
                char buf[64 * 1024];
                ssize_t n = read(in, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "read %s", blob);
                if (n == 0)
                        break;
                r = fd_write_all(out, buf, (size_t)n);
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "write %s", e->path);
        }
        if (fchmod(out, e->mode) < 0 || fsync(out) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "write %s", e->path);
        return 0;
}

/* Create or replace a file or link: staged beside the target, the old one kept as a backup. */
static int step_put(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        const struct ws_entry *e = &c->new;
        char base[256], tmp[64], bak[64];
        _cleanup_fd_ int pfd = open_parent(a->root, e->path, base, sizeof(base));
        struct undo *u;
        int r;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", e->path);
        backup_name(a, tmp, sizeof(tmp));
        if (e->type == WS_LNK)
                r = symlinkat(e->link, pfd, tmp) < 0
                        ? err_set(err, LG_EK_INTERNAL, errno, "create %s", e->path)
                        : 0;
        else
                r = stage_file(a, pfd, tmp, e, err);
        if (r < 0) {
                (void)unlinkat(pfd, tmp, 0);
                return r;
        }
        if (c->op == WS_MODIFY) {
                /* The old entry stays reachable under the backup name until the end. */
                backup_name(a, bak, sizeof(bak));
                if (linkat(pfd, base, pfd, bak, 0) < 0) {
                        r = err_set(err, LG_EK_INTERNAL, errno, "keep a backup of %s", e->path);
                        (void)unlinkat(pfd, tmp, 0);
                        return r;
                }
                u = journal(a, UNDO_RESTORE, e->path, base);
                if (u == NULL) {
                        (void)unlinkat(pfd, bak, 0);
                        (void)unlinkat(pfd, tmp, 0);
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
                }
                snprintf(u->backup, sizeof(u->backup), "%s", bak);
                if (renameat(pfd, tmp, pfd, base) < 0) {
                        r = err_set(err, LG_EK_INTERNAL, errno, "replace %s", e->path);
                        (void)unlinkat(pfd, tmp, 0);
                        /* The journal's restore puts the same inode back: harmless. */
                        return r;
                }
                return 0;
        }
        if (renameat2(pfd, tmp, pfd, base, RENAME_NOREPLACE) < 0) {
                r = err_set(err, LG_EK_INTERNAL, errno, "create %s", e->path);
                (void)unlinkat(pfd, tmp, 0);
                return r;
        }
        if (journal(a, UNDO_REMOVE, e->path, base) == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        return 0;
}

/* chmod without following a link: through an O_PATH descriptor. */
static int chmod_at(int pfd, const char *base, mode_t mode, mode_t *old)
{
        char proc[64];
        struct stat st;
        _cleanup_fd_ int fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (old != NULL)
                *old = st.st_mode & 07777;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        return chmod(proc, mode) < 0 ? -errno : 0;
}

static int step_chmod(struct apply *a, const char *path, mode_t mode, struct lg_err **err)
{
        char base[256];
        _cleanup_fd_ int pfd = open_parent(a->root, path, base, sizeof(base));
        mode_t old = 0;
        struct undo *u;
        int r;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", path);
        r = chmod_at(pfd, base, mode, &old);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "chmod %s", path);
        u = journal(a, UNDO_CHMOD, path, base);
        if (u == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        u->mode = old;
        return 0;
}

/* Undo every step taken, newest first. What cannot be undone is said. */
static void rollback(struct apply *a, struct lg_err **err)
{
        for (size_t i = a->n; i-- > 0;) {
                struct undo *u = &a->u[i];
                char base[256], rel[WS_MAX_PATH + 300];
                int r;

                snprintf(rel, sizeof(rel), "%s%s%s", u->parent, u->parent[0] ? "/" : "", u->base);
                _cleanup_fd_ int pfd = open_parent(a->root, rel, base, sizeof(base));

                if (pfd < 0)
                        r = pfd;
                else if (u->kind == UNDO_RESTORE)
                        r = renameat(pfd, u->backup, pfd, base) < 0 ? -errno : 0;
                else if (u->kind == UNDO_REMOVE)
                        r = unlinkat(pfd, base, u->is_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
                else
                        r = chmod_at(pfd, base, u->mode, NULL);
                if (r < 0)
                        err_wrap(err, "(and undoing the change to %s failed: %s)", rel,
                                 strerror(-r));
        }
}

/* Every step succeeded: the backups go, and the directories' entries are made durable. */
static void commit(struct apply *a)
{
        for (size_t i = a->n; i-- > 0;) {
                struct undo *u = &a->u[i];
                char path[WS_MAX_PATH * 2 + 400];

                if (u->kind != UNDO_RESTORE)
                        continue;
                snprintf(path, sizeof(path), "%s/%s%s%s", a->cs->dir, u->parent,
                         u->parent[0] ? "/" : "", u->backup);
                /* A backup inside a deleted directory's backup is already gone: fine. */
                if (fs_remove_tree(path) < 0)
                        continue; /* left as a hidden .lg-apply-* entry; the apply stands */
        }
        for (size_t i = 0; i < a->n; i++) {
                char base[256], rel[WS_MAX_PATH + 300];

                snprintf(rel, sizeof(rel), "%s%s%s", a->u[i].parent, a->u[i].parent[0] ? "/" : "",
                         a->u[i].base);
                _cleanup_fd_ int pfd = open_parent(a->root, rel, base, sizeof(base));

                if (pfd >= 0)
                        (void)fsync(pfd);
        }
}

static size_t depth(const char *p)
{
        size_t d = 0;

        for (; *p; p++)
                d += *p == '/';
        return d;
}

int ws_apply(const struct ws_changeset *cs, struct lg_err **err)
{
        struct apply a = {.cs = cs, .root = -1};
        size_t maxd = 0;
        int r;

        a.root = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (a.root < 0)
                return err_set(err, LG_EK_USAGE, errno, "workspace %s", cs->dir);
        r = check_conflicts(&a, err);
        for (size_t i = 0; i < cs->n; i++)
                maxd = depth(cs->c[i].op == WS_ADD ? cs->c[i].new.path : cs->c[i].old.path) > maxd
                           ? depth(cs->c[i].op == WS_ADD ? cs->c[i].new.path : cs->c[i].old.path)
                           : maxd;
        /* Deletes, deepest first. */
        for (size_t d = maxd + 1; r == 0 && d-- > 0;)
                for (size_t i = 0; r == 0 && i < cs->n; i++)
                        if (cs->c[i].op == WS_DELETE && depth(cs->c[i].old.path) == d)
                                r = step_delete(&a, &cs->c[i], err);
        /* New directories, shallowest first; then files and links. */
        for (size_t d = 0; r == 0 && d <= maxd; d++)
                for (size_t i = 0; r == 0 && i < cs->n; i++)
                        if (cs->c[i].op == WS_ADD &&
                            cs->c[i].new.type == WS_DIR &&depth(cs->c[i].new.path) == d)
                                r = step_mkdir(&a, &cs->c[i], err);
        for (size_t i = 0; r == 0 && i < cs->n; i++)
                if ((cs->c[i].op == WS_ADD && cs->c[i].new.type != WS_DIR) ||
                    cs->c[i].op == WS_MODIFY)
                        r = step_put(&a, &cs->c[i], err);
        /* Modes last, deepest first: a directory made read-only must not stop a step inside it. */
        for (size_t d = maxd + 1; r == 0 && d-- > 0;)
                for (size_t i = 0; r == 0 && i < cs->n; i++) {
                        const struct ws_change *c = &cs->c[i];

                        if (depth(c->new.path ? c->new.path : "") != d || c->new.type != WS_DIR ||
                            (c->op != WS_CHMOD && c->op != WS_ADD))
                                continue;
                        r = step_chmod(&a, c->new.path, c->new.mode, err);
                }
        for (size_t i = 0; r == 0 && i < cs->n; i++)
                if (cs->c[i].op == WS_CHMOD && cs->c[i].new.type == WS_REG)
                        r = step_chmod(&a, cs->c[i].new.path, cs->c[i].new.mode, err);
        if (r < 0) {
                if (a.n > 0) {
                        err_wrap(err, "applying to %s failed, every step taken was undone",
                                 cs->dir);
                        rollback(&a, err);
                }
        } else {
                commit(&a);
        }
        for (size_t i = 0; i < a.n; i++)
                free(a.u[i].parent);
        free(a.u);
        close(a.root);
        return r;
}
