/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's tar stream back into a change set. The stream is hostile:
 * names are cleaned or refused, sizes and counts bounded as they arrive
 * (hard links and refused entries included), only regular files,
 * directories and symbolic links that stay inside the tree — also when
 * followed through the tree's other links — are taken, and contents are
 * staged under the change set's store, never under the user's DIR. What is
 * refused is never applied, and never deletes what DIR holds at its path.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/fs.h"
#include "policy/card.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WS_BACKUP_PREFIX ".lg-apply-" /* ws_apply's names: never taken from a sandbox */

/* Path -> index of a regular file in nm, for hard links (open addressing, never shrinks). */
struct reg_index {
        size_t *slot; /* index + 1; 0 = empty */
        size_t cap, n;
};

struct unpack {
        struct archive *a;
        const struct ws_limits *lim;
        const struct ws_manifest *old;
        struct ws_manifest nm; /* what the sandbox left */
        struct ws_changeset *cs;
        struct reg_index regs;
        char **refused; /* paths refused: what DIR holds there is kept */
        size_t n_refused, cap_refused;
        int files_fd; /* <store>/files */
        unsigned long next_blob;
        unsigned char *blob_used; /* by blob number, after the compare */
};

static int hostile(struct lg_err **err, const char *what, const char *name)
{
        /* The name came from the guest: a bounded, sanitised rendering of it. */
        char safe[200];

        card_sanitise(name, strnlen(name, 120), safe, sizeof(safe));
        return err_set(err, LG_EK_LOST, EPROTO,
                       "the workspace that came back from the sandbox %s: %s", what, safe);
}

static size_t hash_path(const char *s)
{
        size_t h = 1469598103934665603ull; /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static int regs_add(struct unpack *u, size_t idx)
{
        struct reg_index *r = &u->regs;

        if ((r->n + 1) * 2 > r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 256;
                size_t *slot = calloc(cap, sizeof(*slot));

                if (slot == NULL)
                        return -1;
                for (size_t i = 0; i < r->cap; i++) {
                        if (r->slot[i] == 0)
                                continue;
                        size_t h = hash_path(u->nm.e[r->slot[i] - 1].path) & (cap - 1);

                        while (slot[h] != 0)
                                h = (h + 1) & (cap - 1);
                        slot[h] = r->slot[i];
                }
                free(r->slot);
                r->slot = slot;
                r->cap = cap;
        }
        size_t h = hash_path(u->nm.e[idx].path) & (r->cap - 1);

        while (r->slot[h] != 0)
                h = (h + 1) & (r->cap - 1);
        r->slot[h] = idx + 1;
        r->n++;
        return 0;
}

static const struct ws_entry *regs_find(const struct unpack *u, const char *path)
{
        const struct reg_index *r = &u->regs;

        if (r->cap == 0)
                return NULL;
        for (size_t h = hash_path(path) & (r->cap - 1); r->slot[h] != 0; h = (h + 1) & (r->cap - 1))
                if (strcmp(u->nm.e[r->slot[h] - 1].path, path) == 0)
                        return &u->nm.e[r->slot[h] - 1];
        return NULL;
}

/* Note a refused entry: why (for the card) and its path (so DIR's entry there is kept). */
static int refuse(struct unpack *u, const char *path, const char *why, struct lg_err **err)
{
        char line[WS_MAX_PATH + 160];

        if (u->nm.n + u->n_refused >= u->lim->max_entries)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "the sandbox left more than %zu entries in %s", u->lim->max_entries,
                               WS_GUEST_DIR);
        if (u->n_refused == u->cap_refused) {
                size_t cap = u->cap_refused ? u->cap_refused * 2 : 16;
                char **r = realloc(u->refused, cap * sizeof(*r));

                if (r == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
                u->refused = r;
                u->cap_refused = cap;
        }
        snprintf(line, sizeof(line), "%s: %s", path, why);
        if ((u->refused[u->n_refused] = strdup(path)) == NULL ||
            ws_changeset_refuse(u->cs, line) < 0)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        u->n_refused++;
        return 0;
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is path a refused path or below one? (u->refused sorted) */
static int under_refused(const struct unpack *u, const char *path)
{
        char prefix[WS_MAX_PATH + 1];
        const char *key = prefix;

        if (u->n_refused == 0)
                return 0;
        snprintf(prefix, sizeof(prefix), "%s", path);
        for (char *end = prefix + strlen(prefix);;) {
                *end = '\0';
                if (bsearch(&key, u->refused, u->n_refused, sizeof(*u->refused), str_cmp))
                        return 1;
                end = strrchr(prefix, '/');
                if (end == NULL)
                        return 0;
        }
}

/* Stage the content of the current entry as files/<n>, hashing it; size is bounded by the caller.
 */
static int unpack_data(struct unpack *u, struct ws_entry *e, struct lg_err **err)
{
        char name[32];
        char buf[64 * 1024];
        unsigned len = 0;
        uint64_t got = 0;
        EVP_MD_CTX *md;
        int r = 0;

        snprintf(name, sizeof(name), "%lu", u->next_blob++);
        _cleanup_fd_ int fd =
            openat(u->files_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "stage a file");
        if (asprintf(&e->blob, "files/%s", name) < 0) {
                e->blob = NULL;
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "stage");
        }
        md = EVP_MD_CTX_new();
        if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
                EVP_MD_CTX_free(md);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "sha256");
        }
        for (;;) {
                la_ssize_t n = archive_read_data(u->a, buf, sizeof(buf));

                if (n == 0)
                        break;
                if (n < 0) {
                        r = hostile(err, "is not a valid tar stream", archive_error_string(u->a));
                        break;
                }
                got += (uint64_t)n;
                if (got > e->size) {
                        r = hostile(err, "holds more data than its header says", e->path);
                        break;
                }
                EVP_DigestUpdate(md, buf, (size_t)n);
                r = fd_write_all(fd, buf, (size_t)n);
                if (r < 0) {
                        r = err_set(err, LG_EK_INTERNAL, -r, "stage a file");
                        break;
                }
        }
        if (r == 0 && got != e->size)
                r = hostile(err, "ended inside a file", e->path);
        if (r == 0 && !(EVP_DigestFinal_ex(md, e->sha, &len) && len == 32))
                r = err_set(err, LG_EK_INTERNAL, 0, "sha256");
        EVP_MD_CTX_free(md);
        return r;
}

static int add_bytes(struct unpack *u, uint64_t size, struct lg_err **err)
{
        if (size > u->lim->max_bytes || u->nm.bytes + size > u->lim->max_bytes)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "the sandbox left more than %llu MiB of files in %s "
                               "(--workspace-max)",
                               (unsigned long long)(u->lim->max_bytes >> 20), WS_GUEST_DIR);
        u->nm.bytes += size;
        return 0;
}

/* A second name of a file: busybox writes it as a hard link to the first. It is a copy here. */
static int unpack_hardlink(struct unpack *u, struct archive_entry *ae, const char *name,
                           struct lg_err **err)
{
        char target[WS_MAX_PATH + 1];
        const struct ws_entry *t;
        struct ws_entry *e;
        size_t ti;

        if (ws_clean_name(archive_entry_hardlink(ae), target, sizeof(target)) == NULL)
                return hostile(err, "holds an unsafe hard link", name);
        t = regs_find(u, target);
        if (t == NULL)
                return hostile(err, "holds a hard link to nothing before it", name);
        /* Every name of a file counts: a thousand links to one big file are a thousand files. */
        if (add_bytes(u, t->size, err) < 0)
                return -EFBIG;
        ti = (size_t)(t - u->nm.e);
        e = ws_manifest_push(&u->nm);
        t = &u->nm.e[ti]; /* the push may have moved it */
        if (e == NULL || (e->path = strdup(name)) == NULL || (e->blob = strdup(t->blob)) == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        e->type = WS_REG;
        e->size = t->size;
        e->mode = archive_entry_perm(ae) & 07777;
        memcpy(e->sha, t->sha, sizeof(e->sha));
        return regs_add(u, u->nm.n - 1) < 0 ? err_set(err, LG_EK_INTERNAL, ENOMEM, "change set")
                                            : 0;
}

/* One header from the stream into nm (or a refusal). */
static int unpack_entry(struct unpack *u, struct archive_entry *ae, struct lg_err **err)
{
        const char *raw = archive_entry_pathname(ae);
        char name[WS_MAX_PATH + 1];
        mode_t type = archive_entry_filetype(ae);
        const char *base;
        struct ws_entry *e;

        if (raw == NULL)
                return hostile(err, "has an entry without a name", "");
        if (ws_clean_name(raw, name, sizeof(name)) == NULL) {
                if (strcmp(raw, ".") == 0 || strcmp(raw, "./") == 0)
                        return 0; /* the workspace itself */
                return hostile(err, "holds an unsafe name", raw);
        }
        if (u->nm.n + u->n_refused >= u->lim->max_entries)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "the sandbox left more than %zu entries in %s", u->lim->max_entries,
                               WS_GUEST_DIR);
        base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        if (strncmp(base, WS_BACKUP_PREFIX, strlen(WS_BACKUP_PREFIX)) == 0)
                return refuse(u, name, "a name reserved for applying changes; not copied back",
                              err);
        if (archive_entry_hardlink(ae) != NULL)
                return unpack_hardlink(u, ae, name, err);
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
                return refuse(u, name,
                              "not a regular file, directory or symbolic link; not copied back",
                              err);
        if (type == AE_IFLNK) {
                const char *target = archive_entry_symlink(ae);

                if (target == NULL || strlen(target) >= 4096 || !ws_link_inside(name, target))
                        return refuse(u, name,
                                      "a symbolic link that points outside the workspace; not "
                                      "copied back",
                                      err);
        }
        e = ws_manifest_push(&u->nm);
        if (e == NULL || (e->path = strdup(name)) == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        e->mode = archive_entry_perm(ae) & 07777;
        if (type == AE_IFDIR) {
                e->type = WS_DIR;
                return 0;
        }
        if (type == AE_IFLNK) {
                e->type = WS_LNK;
                e->mode = 0777;
                e->link = strdup(archive_entry_symlink(ae));
                return e->link ? 0 : err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        }
        e->type = WS_REG;
        if (archive_entry_size(ae) < 0)
                return hostile(err, "holds a file of negative size", name);
        e->size = (uint64_t)archive_entry_size(ae);
        if (add_bytes(u, e->size, err) < 0)
                return -EFBIG;
        if (regs_add(u, u->nm.n - 1) < 0)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        return unpack_data(u, e, err);
}

/*
 * The new tree as a whole: every entry's parent is one of its directories,
 * no name is there twice, and every link stays inside when followed through
 * the tree's other links (those that do not are refused and dropped).
 */
static int unpack_check_tree(struct unpack *u, struct lg_err **err)
{
        size_t kept = 0;
        int r = 0;

        ws_manifest_sort(&u->nm);
        for (size_t i = 0; i < u->nm.n; i++) {
                const char *p = u->nm.e[i].path, *slash = strrchr(p, '/');

                if (i > 0 && strcmp(u->nm.e[i - 1].path, p) == 0)
                        return hostile(err, "holds one name twice", p);
                if (slash != NULL) {
                        char parent[WS_MAX_PATH + 1];
                        const struct ws_entry *d;

                        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - p), p);
                        d = ws_manifest_find(&u->nm, parent);
                        if (d == NULL || d->type != WS_DIR)
                                return hostile(err, "holds an entry whose parent is no directory",
                                               p);
                }
        }
        /* Links are judged against the whole tree, so the dropping comes after. */
        for (size_t i = 0; i < u->nm.n; i++) {
                struct ws_entry *e = &u->nm.e[i];

                if (e->type == WS_LNK && !ws_tree_link_ok(&u->nm, e->path, e->link))
                        e->type = 0; /* marked; refused below */
        }
        for (size_t i = 0; i < u->nm.n; i++) {
                struct ws_entry *e = &u->nm.e[i];

                if (e->type != 0) {
                        u->nm.e[kept++] = *e;
                        continue;
                }
                if (r == 0)
                        r = refuse(u, e->path,
                                   "a symbolic link that leads outside the workspace through "
                                   "another link; not copied back",
                                   err);
                ws_entry_free(e);
        }
        u->nm.n = kept;
        return r;
}

/* Move newp into a change (the change owns its strings afterwards; newp keeps its path). */
static int change(struct unpack *u, enum ws_op op, const struct ws_entry *oldp,
                  struct ws_entry *newp, struct lg_err **err)
{
        struct ws_change *c = ws_changeset_push(u->cs, op);

        if (c == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        if (oldp != NULL) {
                c->old = *oldp;
                c->old.path = strdup(oldp->path);
                c->old.link = oldp->link ? strdup(oldp->link) : NULL;
                c->old.blob = NULL;
                if (c->old.path == NULL || (oldp->link && c->old.link == NULL))
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        }
        if (newp != NULL) {
                c->new = *newp;
                memset(newp, 0, sizeof(*newp)); /* taken */
                newp->type = c->new.type;
                if ((newp->path = strdup(c->new.path)) == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
                if (c->new.blob != NULL)
                        u->blob_used[strtoul(c->new.blob + 6, NULL, 10)] = 1;
        }
        return 0;
}

/*
 * The setuid and setgid bits never come to DIR from a sandbox: a file keeps
 * them only when DIR's file had them and its content is unchanged, a
 * directory only when DIR's directory had them.
 */
static int unpack_drop_privileged_bits(struct unpack *u, struct ws_entry *n,
                                       const struct ws_entry *o, struct lg_err **err)
{
        char why[WS_MAX_PATH + 128];
        mode_t allowed = 0;

        if (!(n->mode & 06000))
                return 0;
        if (o != NULL && o->type == n->type &&
            (n->type == WS_DIR || memcmp(o->sha, n->sha, sizeof(o->sha)) == 0))
                allowed = o->mode & 06000;
        if ((n->mode & 06000 & ~allowed) == 0)
                return 0;
        n->mode &= ~(06000 & ~allowed);
        snprintf(why, sizeof(why), "%s: the setuid/setgid bits set in the sandbox were dropped",
                 n->path);
        return ws_changeset_refuse(u->cs, why) < 0
                   ? err_set(err, LG_EK_INTERNAL, ENOMEM, "change set")
                   : 0;
}

static int same_content(const struct ws_entry *o, const struct ws_entry *n)
{
        if (o->type == WS_REG)
                return o->size == n->size && memcmp(o->sha, n->sha, sizeof(o->sha)) == 0;
        if (o->type == WS_LNK)
                return strcmp(o->link, n->link) == 0;
        return 1;
}

/* Old and new trees into changes; staged contents nobody needs are removed. */
static int unpack_compare(struct unpack *u, struct lg_err **err)
{
        char why[WS_MAX_PATH + 128];
        int r = 0;

        u->blob_used = calloc(u->next_blob + 1, 1);
        if (u->blob_used == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        for (size_t i = 0; i < u->nm.n && r == 0; i++) {
                struct ws_entry *n = &u->nm.e[i];
                const struct ws_entry *o = ws_manifest_find(u->old, n->path);

                r = unpack_drop_privileged_bits(u, n, o, err);
                if (r < 0)
                        break;
                if (o == NULL) {
                        r = change(u, WS_ADD, NULL, n, err);
                } else if (o->type != n->type) {
                        /* A file became a directory, or the like: both halves, in that order. */
                        r = change(u, WS_DELETE, o, NULL, err);
                        if (r == 0)
                                r = change(u, WS_ADD, NULL, n, err);
                } else if (!same_content(o, n)) {
                        r = change(u, WS_MODIFY, o, n, err);
                } else if (o->mode != n->mode) {
                        r = change(u, WS_CHMOD, o, n, err);
                }
        }
        if (u->n_refused > 1)
                qsort(u->refused, u->n_refused, sizeof(*u->refused), str_cmp);
        for (size_t i = 0; i < u->old->n && r == 0; i++) {
                const struct ws_entry *o = &u->old->e[i];

                if (ws_manifest_find(&u->nm, o->path) != NULL)
                        continue;
                /* Replaced by something refused: DIR's entry is kept, not deleted. */
                if (under_refused(u, o->path)) {
                        snprintf(why, sizeof(why),
                                 "%s: kept as it is in the workspace (what replaced it in the "
                                 "sandbox is not copied back)",
                                 o->path);
                        if (ws_changeset_refuse(u->cs, why) < 0)
                                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
                        continue;
                }
                r = change(u, WS_DELETE, o, NULL, err);
        }
        for (unsigned long b = 0; b < u->next_blob; b++) {
                char name[32];

                if (u->blob_used[b])
                        continue;
                snprintf(name, sizeof(name), "%lu", b);
                (void)unlinkat(u->files_fd, name, 0); /* unchanged content */
        }
        return r;
}

int ws_unpack(int tar_fd, const struct ws_manifest *m, const char *dir, const char *store,
              const char *id, const struct ws_limits *lim, struct ws_changeset *cs,
              struct lg_err **err)
{
        struct unpack u = {.lim = lim, .old = m, .cs = cs, .files_fd = -1};
        struct archive_entry *ae;
        char files[4096];
        int r = 0, ar;

        memset(cs, 0, sizeof(*cs));
        cs->dir = strdup(dir);
        cs->store = strdup(store);
        cs->id = strdup(id);
        if (cs->dir == NULL || cs->store == NULL || cs->id == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
        snprintf(files, sizeof(files), "%s/files", store);
        r = fs_mkdir_p(files, 0700);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "create %s", files);
        u.files_fd = open(files, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (u.files_fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "open %s", files);
        u.a = archive_read_new();
        if (u.a == NULL || archive_read_support_format_tar(u.a) != ARCHIVE_OK ||
            archive_read_support_format_gnutar(u.a) != ARCHIVE_OK ||
            archive_read_open_fd(u.a, tar_fd, 64 * 1024) != ARCHIVE_OK) {
                r = u.a ? hostile(err, "is not a tar stream", archive_error_string(u.a))
                        : err_set(err, LG_EK_INTERNAL, ENOMEM, "tar");
                goto out;
        }
        while (r == 0 && (ar = archive_read_next_header(u.a, &ae)) != ARCHIVE_EOF) {
                if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
                        r = hostile(err, "is not a valid tar stream", archive_error_string(u.a));
                        break;
                }
                r = unpack_entry(&u, ae, err);
        }
        if (r == 0)
                r = unpack_check_tree(&u, err);
        if (r == 0)
                r = unpack_compare(&u, err);
out:
        if (u.a != NULL)
                archive_read_free(u.a);
        ws_manifest_free(&u.nm);
        for (size_t i = 0; i < u.n_refused; i++)
                free(u.refused[i]);
        free(u.refused);
        free(u.regs.slot);
        free(u.blob_used);
        close(u.files_fd);
        return r;
}
