/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Apply an approved change set to the user's DIR, all or nothing.
 *
 * POSIX has no multi-file transaction, so this keeps a journal instead:
 * every step (loosen a directory's mode, delete, mkdir, replace, create,
 * chmod) is done so that it can be undone — a deleted entry is first moved
 * aside under a hidden backup name beside it, a replaced one is swapped
 * with its replacement (RENAME_EXCHANGE) — and any failure undoes the steps
 * already taken, in reverse. Only when every step succeeded are the backups
 * removed.
 *
 * Before the first step, every path the change set touches is compared with
 * what was packed, and a directory to delete may hold nothing but what the
 * change set deletes: if the user (or anything else) changed one meanwhile,
 * the apply is refused as a conflict and DIR is left as it is. The same
 * check is repeated right before each delete and replace.
 *
 * Every directory on the way to a target is opened with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, and every step works relative to
 * such a descriptor: a symbolic link in DIR can never redirect a write or a
 * removal outside it, whatever raced in since the check.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum undo_kind {
        UNDO_RESTORE,  /* rename backup back to base (a delete) */
        UNDO_EXCHANGE, /* swap backup and base back, then remove backup (a replace) */
        UNDO_REMOVE,   /* remove base (a created file, link or directory) */
        UNDO_CHMOD,    /* chmod base back to mode */
};

struct undo {
        enum undo_kind kind;
        char *path; /* relative to DIR */
        char backup[64];
        mode_t mode;
        int is_dir;
};

/* A change set's paths, sorted, for the lookups the checks need. */
struct ix {
        const char *path;
        const struct ws_change *c;
};

struct apply {
        const struct ws_changeset *cs;
        int root;
        struct undo *u;
        size_t n, cap;
        unsigned long seq;
        struct ix *ix; /* by path */
        size_t *depth; /* of each change's path */
        int as_root;   /* files get the owner DIR gave them, not ours */
};

static const char *change_path(const struct ws_change *c)
{
        return c->op == WS_ADD ? c->new.path : c->old.path;
}

static int ix_cmp(const void *a, const void *b)
{
        return strcmp(((const struct ix *)a)->path, ((const struct ix *)b)->path);
}

/* The change of kind op on path, or NULL. */
static const struct ws_change *ix_find(const struct apply *a, const char *path, enum ws_op op)
{
        struct ix key = {.path = path};
        const struct ix *hit = bsearch(&key, a->ix, a->cs->n, sizeof(*a->ix), ix_cmp);

        if (hit == NULL)
                return NULL;
        /* A path has at most a DELETE and an ADD: look around the hit. */
        for (const struct ix *p = hit; p >= a->ix && strcmp(p->path, path) == 0; p--)
                if (p->c->op == op)
                        return p->c;
        for (const struct ix *p = hit; p < a->ix + a->cs->n && strcmp(p->path, path) == 0; p++)
                if (p->c->op == op)
                        return p->c;
        return NULL;
}

/* The directory holding path (relative), never through a symbolic link. */
static int open_parent(int root, const char *path, char *base, size_t basesz)
{
        const char *slash = strrchr(path, '/');
        char dir[WS_MAX_PATH + 1];
        int fd;

        if ((size_t)snprintf(base, basesz, "%s", slash ? slash + 1 : path) >= basesz)
                return -ENAMETOOLONG;
        if (slash == NULL) {
                fd = fcntl(root, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? -errno : fd;
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
        char base[NAME_MAX + 1], target[4096];
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
                struct stat fst;
                /* O_NONBLOCK: a FIFO swapped in since the stat must not hang us. */
                _cleanup_fd_ int fd =
                    openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

                r = fd < 0 || fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode)
                        ? -EINVAL
                        : sha_of_fd(fd, sha, &size);
                if (r < 0 || size != e->size || memcmp(sha, e->sha, 32) != 0) {
                        snprintf(why, whysz, "its content changed");
                        return 0;
                }
        }
        return 1;
}

/* A directory to delete may hold only what this change set deletes (and our own backups). */
static int dir_holds_only_deletes(struct apply *a, const char *path, char *why, size_t whysz)
{
        char prefix[64], child[WS_MAX_PATH + NAME_MAX + 2];
        struct dirent *de;
        int fd = ws_open_beneath(a->root, path, O_RDONLY | O_DIRECTORY);
        DIR *d;

        if (fd < 0) {
                snprintf(why, whysz, "it cannot be opened (%s)", strerror(-fd));
                return 0;
        }
        d = fdopendir(fd);
        if (d == NULL) {
                close(fd);
                snprintf(why, whysz, "it cannot be read");
                return 0;
        }
        snprintf(prefix, sizeof(prefix), ".lg-apply-%d-", (int)getpid());
        while ((de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        continue;
                snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
                if (ix_find(a, child, WS_DELETE) == NULL) {
                        snprintf(why, whysz, "it holds %.200s, which the sandbox never saw",
                                 de->d_name);
                        closedir(d);
                        return 0;
                }
        }
        closedir(d);
        return 1;
}

/* An ADD below a directory this change set creates (or turns a file into) needs no check. */
static int below_added_dir(const struct apply *a, const char *path)
{
        char p[WS_MAX_PATH + 1];

        snprintf(p, sizeof(p), "%s", path);
        for (char *slash = strrchr(p, '/'); slash != NULL; slash = strrchr(p, '/')) {
                const struct ws_change *c;

                *slash = '\0';
                c = ix_find(a, p, WS_ADD);
                if (c != NULL && c->new.type == WS_DIR)
                        return 1;
        }
        return 0;
}

/* One change's precondition: 1 holds, 0 a conflict (why filled). */
static int precondition(struct apply *a, const struct ws_change *c, char *why, size_t whysz)
{
        const char *path = change_path(c);

        if (c->op == WS_ADD && (ix_find(a, path, WS_DELETE) || below_added_dir(a, path)))
                return 1; /* the DELETE, or the new directory, is checked */
        if (!holds(a->root, path, c->op == WS_ADD ? NULL : &c->old, why, whysz))
                return 0;
        if (c->op == WS_DELETE && c->old.type == WS_DIR)
                return dir_holds_only_deletes(a, path, why, whysz);
        return 1;
}

static int conflict(struct apply *a, const struct ws_change *c, const char *why,
                    struct lg_err **err)
{
        return err_set(err, LG_EK_USAGE, 0,
                       "conflict: %s/%s changed in the workspace since the sandbox got its copy "
                       "(%s); nothing was applied",
                       a->cs->dir, change_path(c), why);
}

static int check_conflicts(struct apply *a, struct lg_err **err)
{
        char why[320];

        for (size_t i = 0; i < a->cs->n; i++)
                if (!precondition(a, &a->cs->c[i], why, sizeof(why)))
                        return conflict(a, &a->cs->c[i], why, err);
        return 0;
}

static struct undo *journal(struct apply *a, enum undo_kind kind, const char *path)
{
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
        if ((u->path = strdup(path)) == NULL)
                return NULL;
        a->n++;
        return u;
}

static void backup_name(struct apply *a, char *out, size_t outsz)
{
        snprintf(out, outsz, ".lg-apply-%d-%lu", (int)getpid(), a->seq++);
}

/* Delete: the entry moves aside under a backup name (a directory with its backups in it). */
static int step_delete(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        char base[NAME_MAX + 1], bak[64], why[320];
        _cleanup_fd_ int pfd = open_parent(a->root, c->old.path, base, sizeof(base));
        struct undo *u;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", c->old.path);
        /* Again, now: the user may have written since the check. */
        if (!holds(a->root, c->old.path, &c->old, why, sizeof(why)) ||
            (c->old.type == WS_DIR && !dir_holds_only_deletes(a, c->old.path, why, sizeof(why))))
                return conflict(a, c, why, err);
        backup_name(a, bak, sizeof(bak));
        if (renameat2(pfd, base, pfd, bak, RENAME_NOREPLACE) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "delete %s", c->old.path);
        u = journal(a, UNDO_RESTORE, c->old.path);
        if (u == NULL) {
                (void)renameat(pfd, bak, pfd, base);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        }
        snprintf(u->backup, sizeof(u->backup), "%s", bak);
        u->is_dir = c->old.type == WS_DIR;
        return 0;
}

/* Run as root: what we create belongs to whoever owns what it replaces, or its directory. */
static int give_owner(struct apply *a, int pfd, const char *name, const struct stat *owner)
{
        if (!a->as_root)
                return 0;
        return fchownat(pfd, name, owner->st_uid, owner->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
                                                                                          : 0;
}

static int step_mkdir(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        char base[NAME_MAX + 1];
        _cleanup_fd_ int pfd = open_parent(a->root, c->new.path, base, sizeof(base));
        struct stat pst;
        int r;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", c->new.path);
        /* Owner-writable until the end: the chmod steps set the final mode. */
        if (mkdirat(pfd, base, 0700) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "create %s", c->new.path);
        if (journal(a, UNDO_REMOVE, c->new.path) == NULL) {
                (void)unlinkat(pfd, base, AT_REMOVEDIR);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        }
        a->u[a->n - 1].is_dir = 1;
        r = fstat(pfd, &pst) < 0 ? -errno : give_owner(a, pfd, base, &pst);
        return r < 0 ? err_set(err, LG_EK_INTERNAL, -r, "chown %s", c->new.path) : 0;
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

/*
 * Create or replace a file or link: staged beside the target under a
 * temporary name, then renamed into place (create) or exchanged with the
 * old entry, which stays under the temporary name until the end (replace).
 */
static int step_put(struct apply *a, const struct ws_change *c, struct lg_err **err)
{
        const struct ws_entry *e = &c->new;
        char base[NAME_MAX + 1], tmp[64], why[320];
        _cleanup_fd_ int pfd = open_parent(a->root, e->path, base, sizeof(base));
        struct stat owner;
        struct undo *u;
        int r;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", e->path);
        if (c->op == WS_MODIFY && !holds(a->root, e->path, &c->old, why, sizeof(why)))
                return conflict(a, c, why, err);
        /* The owner to keep: the replaced entry's, or the directory's for a new one. */
        if (c->op == WS_MODIFY ? fstatat(pfd, base, &owner, AT_SYMLINK_NOFOLLOW) < 0
                               : fstat(pfd, &owner) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "stat %s", e->path);
        backup_name(a, tmp, sizeof(tmp));
        if (e->type == WS_LNK)
                r = symlinkat(e->link, pfd, tmp) < 0
                        ? err_set(err, LG_EK_INTERNAL, errno, "create %s", e->path)
                        : 0;
        else
                r = stage_file(a, pfd, tmp, e, err);
        if (r == 0) {
                r = give_owner(a, pfd, tmp, &owner);
                if (r < 0)
                        r = err_set(err, LG_EK_INTERNAL, -r, "chown %s", e->path);
        }
        if (r == 0 && c->op == WS_MODIFY && renameat2(pfd, tmp, pfd, base, RENAME_EXCHANGE) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "replace %s", e->path);
        if (r == 0 && c->op != WS_MODIFY && renameat2(pfd, tmp, pfd, base, RENAME_NOREPLACE) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "create %s", e->path);
        if (r < 0) {
                (void)unlinkat(pfd, tmp, 0); /* the new content: nothing was swapped */
                return r;
        }
        u = journal(a, c->op == WS_MODIFY ? UNDO_EXCHANGE : UNDO_REMOVE, e->path);
        if (u == NULL) {
                if (c->op == WS_MODIFY)
                        (void)renameat2(pfd, tmp, pfd, base, RENAME_EXCHANGE);
                (void)unlinkat(pfd, c->op == WS_MODIFY ? tmp : base, 0);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        }
        if (c->op == WS_MODIFY)
                snprintf(u->backup, sizeof(u->backup), "%s", tmp);
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
        char base[NAME_MAX + 1];
        _cleanup_fd_ int pfd = open_parent(a->root, path, base, sizeof(base));
        mode_t old = 0;
        struct undo *u;
        int r;

        if (pfd < 0)
                return err_set(err, LG_EK_INTERNAL, -pfd, "open the directory of %s", path);
        r = chmod_at(pfd, base, mode, &old);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "chmod %s", path);
        u = journal(a, UNDO_CHMOD, path);
        if (u == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "journal");
        u->mode = old;
        return 0;
}

/* rm -r of name in the directory dfd, never following a link. 0 / -errno. */
static int remove_at(int dfd, const char *name, int depth)
{
        struct dirent *de;
        int fd, r = 0;
        DIR *d;

        if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if ((errno != EISDIR && errno != EPERM) || depth > 64)
                return -errno;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || (d = fdopendir(fd)) == NULL) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                return r;
        }
        while (r == 0 && (de = readdir(d)) != NULL)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        r = remove_at(dirfd(d), de->d_name, depth + 1);
        closedir(d);
        if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
                r = -errno;
        return r;
}

/* Undo every step taken, newest first. What cannot be undone is said. */
static void rollback(struct apply *a, struct lg_err **err)
{
        for (size_t i = a->n; i-- > 0;) {
                struct undo *u = &a->u[i];
                char base[NAME_MAX + 1];
                _cleanup_fd_ int pfd = open_parent(a->root, u->path, base, sizeof(base));
                int r;

                if (pfd < 0)
                        r = pfd;
                else if (u->kind == UNDO_RESTORE)
                        r = renameat(pfd, u->backup, pfd, base) < 0 ? -errno : 0;
                else if (u->kind == UNDO_EXCHANGE)
                        r = renameat2(pfd, u->backup, pfd, base, RENAME_EXCHANGE) < 0
                                ? -errno
                                : remove_at(pfd, u->backup, 0);
                else if (u->kind == UNDO_REMOVE)
                        r = unlinkat(pfd, base, u->is_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
                else
                        r = chmod_at(pfd, base, u->mode, NULL);
                if (r < 0)
                        err_wrap(err, "(and undoing the change to %s failed: %s)", u->path,
                                 strerror(-r));
        }
}

/* Every step succeeded: the backups go, and the directories' entries are made durable. */
static void commit(struct apply *a)
{
        for (size_t i = a->n; i-- > 0;) {
                struct undo *u = &a->u[i];
                char base[NAME_MAX + 1];
                int r;

                if (u->kind != UNDO_RESTORE && u->kind != UNDO_EXCHANGE)
                        continue;
                _cleanup_fd_ int pfd = open_parent(a->root, u->path, base, sizeof(base));

                /* A backup inside a deleted directory's backup: its parent is gone, and so is it.
                 */
                if (pfd == -ENOENT)
                        continue;
                r = pfd < 0 ? pfd : remove_at(pfd, u->backup, 0);
                if (r < 0)
                        log_warn("applied, but the previous version of %s/%s is left as %s: %s",
                                 a->cs->dir, u->path, u->backup, strerror(-r));
        }
        for (size_t i = 0; i < a->n; i++) {
                char base[NAME_MAX + 1];
                _cleanup_fd_ int pfd = open_parent(a->root, a->u[i].path, base, sizeof(base));

                if (pfd >= 0)
                        (void)fsync(pfd);
        }
}

static size_t depth_of(const char *p)
{
        size_t d = 0;

        for (; *p; p++)
                d += *p == '/';
        return d;
}

/* The steps, in an order where each one can work: see the comments. */
static int apply_steps(struct apply *a, size_t maxd, struct lg_err **err)
{
        const struct ws_changeset *cs = a->cs;
        int r = 0;

        /* Directories whose new mode adds rights: added first (old | new), set exactly at the end.
         */
        for (size_t i = 0; r == 0 && i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];

                if (c->op == WS_CHMOD && c->new.type == WS_DIR && (c->new.mode & ~c->old.mode))
                        r = step_chmod(a, c->new.path, c->old.mode | c->new.mode, err);
        }
        /* Deletes, deepest first. */
        for (size_t d = maxd + 1; r == 0 && d-- > 0;)
                for (size_t i = 0; r == 0 && i < cs->n; i++)
                        if (cs->c[i].op == WS_DELETE && a->depth[i] == d)
                                r = step_delete(a, &cs->c[i], err);
        /* New directories, shallowest first; then files and links. */
        for (size_t d = 0; r == 0 && d <= maxd; d++)
                for (size_t i = 0; r == 0 && i < cs->n; i++)
                        if (cs->c[i].op == WS_ADD && cs->c[i].new.type == WS_DIR &&
                            a->depth[i] == d)
                                r = step_mkdir(a, &cs->c[i], err);
        for (size_t i = 0; r == 0 && i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];

                if ((c->op == WS_ADD && c->new.type != WS_DIR) || c->op == WS_MODIFY)
                        r = step_put(a, c, err);
        }
        /* Files' modes, then directories' deepest first: one made read-only stops nothing. */
        for (size_t i = 0; r == 0 && i < cs->n; i++)
                if (cs->c[i].op == WS_CHMOD && cs->c[i].new.type == WS_REG)
                        r = step_chmod(a, cs->c[i].new.path, cs->c[i].new.mode, err);
        for (size_t d = maxd + 1; r == 0 && d-- > 0;)
                for (size_t i = 0; r == 0 && i < cs->n; i++) {
                        const struct ws_change *c = &cs->c[i];

                        if (a->depth[i] == d && c->new.type == WS_DIR &&
                            (c->op == WS_CHMOD || c->op == WS_ADD))
                                r = step_chmod(a, c->new.path, c->new.mode, err);
                }
        return r;
}

int ws_apply(const struct ws_changeset *cs, struct lg_err **err)
{
        struct apply a = {.cs = cs, .root = -1, .as_root = geteuid() == 0};
        size_t maxd = 0;
        int r;

        a.root = open(cs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (a.root < 0)
                return err_set(err, LG_EK_USAGE, errno, "workspace %s", cs->dir);
        r = ws_open_beneath(a.root, ".", O_RDONLY | O_DIRECTORY);
        if (r < 0) {
                close(a.root);
                return err_set(err, LG_EK_INTERNAL, -r,
                               r == -ENOSYS ? "applying changes needs openat2 (Linux 5.6 or later)"
                                            : "open %s",
                               cs->dir);
        }
        close(r);
        a.ix = calloc(cs->n + 1, sizeof(*a.ix));
        a.depth = calloc(cs->n + 1, sizeof(*a.depth));
        if (a.ix == NULL || a.depth == NULL) {
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "apply");
                goto out;
        }
        for (size_t i = 0; i < cs->n; i++) {
                a.ix[i] = (struct ix){.path = change_path(&cs->c[i]), .c = &cs->c[i]};
                a.depth[i] = depth_of(change_path(&cs->c[i]));
                maxd = a.depth[i] > maxd ? a.depth[i] : maxd;
        }
        if (cs->n > 1)
                qsort(a.ix, cs->n, sizeof(*a.ix), ix_cmp);
        r = check_conflicts(&a, err);
        if (r == 0)
                r = apply_steps(&a, maxd, err);
        if (r < 0 && a.n > 0) {
                err_wrap(err, "applying to %s failed, every step taken was undone", cs->dir);
                rollback(&a, err);
        } else if (r == 0) {
                commit(&a);
        }
out:
        for (size_t i = 0; i < a.n; i++)
                free(a.u[i].path);
        free(a.u);
        free(a.ix);
        free(a.depth);
        close(a.root);
        return r;
}
