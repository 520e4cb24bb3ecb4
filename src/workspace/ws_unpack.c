/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's tar stream back into a change set. The stream is hostile:
 * names are cleaned or refused, sizes and counts bounded as they arrive,
 * only regular files, directories and symbolic links that stay inside the
 * tree are taken, and contents are staged under the change set's store —
 * never under the user's DIR.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/fs.h"

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

struct unpack {
        struct archive *a;
        const struct ws_limits *lim;
        const struct ws_manifest *old;
        struct ws_manifest nm; /* what the sandbox left */
        struct ws_changeset *cs;
        int files_fd; /* <store>/files */
        unsigned long next_blob;
};

static int hostile(struct lg_err **err, const char *what, const char *name)
{
        /* The name came from the guest: at most a bounded, printable rendering of it. */
        char safe[160];
        size_t j = 0;

        for (size_t i = 0; name[i] && j + 1 < sizeof(safe); i++)
                safe[j++] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
        safe[j] = '\0';
        return err_set(err, LG_EK_LOST, EPROTO,
                       "the workspace that came back from the sandbox %s: %s", what, safe);
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
                return err_set(err, LG_EK_INTERNAL, errno, "stage %s", e->path);
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
                if (fd_write_all(fd, buf, (size_t)n) < 0) {
                        r = err_set(err, LG_EK_INTERNAL, errno, "stage %s", e->path);
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

/* One header from the stream into nm (or a refusal note). */
static int unpack_entry(struct unpack *u, struct archive_entry *ae, struct lg_err **err)
{
        const char *raw = archive_entry_pathname(ae);
        char name[WS_MAX_PATH + 1], why[WS_MAX_PATH + 128];
        mode_t type = archive_entry_filetype(ae);
        struct ws_entry *e;

        if (raw == NULL)
                return hostile(err, "has an entry without a name", "");
        if (ws_clean_name(raw, name, sizeof(name)) == NULL) {
                if (strcmp(raw, ".") == 0 || strcmp(raw, "./") == 0)
                        return 0; /* the workspace itself */
                return hostile(err, "holds an unsafe name", raw);
        }
        if (u->nm.n >= u->lim->max_entries)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "the sandbox left more than %zu entries in %s", u->lim->max_entries,
                               WS_GUEST_DIR);
        if (archive_entry_hardlink(ae) != NULL) {
                /* busybox writes a second name of a file as a link to the first: copy it. */
                char target[WS_MAX_PATH + 1];
                const struct ws_entry *t = NULL;

                if (ws_clean_name(archive_entry_hardlink(ae), target, sizeof(target)) == NULL)
                        return hostile(err, "holds an unsafe hard link", raw);
                for (size_t i = 0; i < u->nm.n && t == NULL; i++)
                        if (u->nm.e[i].type == WS_REG && strcmp(u->nm.e[i].path, target) == 0)
                                t = &u->nm.e[i];
                if (t == NULL)
                        return hostile(err, "holds a hard link to nothing before it", raw);
                size_t ti = (size_t)(t - u->nm.e);

                e = ws_manifest_push(&u->nm);
                t = &u->nm.e[ti]; /* the push may have moved it */
                if (e == NULL || (e->path = strdup(name)) == NULL ||
                    (e->blob = strdup(t->blob)) == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set");
                e->type = WS_REG;
                e->size = t->size;
                e->mode = archive_entry_perm(ae) & 07777;
                memcpy(e->sha, t->sha, sizeof(e->sha));
                return 0;
        }
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
                snprintf(why, sizeof(why),
                         "%s: not a regular file, directory or symbolic link; not copied back",
                         name);
                return ws_changeset_refuse(u->cs, why) < 0
                           ? err_set(err, LG_EK_INTERNAL, ENOMEM, "change set")
                           : 0;
        }
        if (type == AE_IFLNK) {
                const char *target = archive_entry_symlink(ae);

                if (target == NULL || strlen(target) >= 4096 || !ws_link_inside(name, target)) {
                        snprintf(why, sizeof(why),
                                 "%s: a symbolic link that points outside the workspace; "
                                 "not copied back",
                                 name);
                        return ws_changeset_refuse(u->cs, why) < 0
                                   ? err_set(err, LG_EK_INTERNAL, ENOMEM, "change set")
                                   : 0;
                }
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
        if (u->nm.bytes + e->size > u->lim->max_bytes)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "the sandbox left more than %llu MiB of files in %s "
                               "(--workspace-max)",
                               (unsigned long long)(u->lim->max_bytes >> 20), WS_GUEST_DIR);
        u->nm.bytes += e->size;
        return unpack_data(u, e, err);
}

/* Every entry's parent is a directory of the new tree, and no name is there twice. */
static int unpack_check_tree(struct unpack *u, struct lg_err **err)
{
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
        return 0;
}

/* Move e into a change (the change owns its strings afterwards). */
static int change(struct unpack *u, enum ws_op op, struct ws_entry *oldp, struct ws_entry *newp,
                  struct lg_err **err)
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
        }
        return 0;
}

/* The setuid and setgid bits never come back from a sandbox unless DIR already had them there. */
static int unpack_drop_privileged_bits(struct unpack *u, struct ws_entry *n,
                                       const struct ws_entry *o, struct lg_err **err)
{
        char why[WS_MAX_PATH + 128];

        if (!(n->mode & 06000))
                return 0;
        if (o != NULL && o->type == n->type && o->mode == n->mode &&
            memcmp(o->sha, n->sha, sizeof(o->sha)) == 0)
                return 0;
        n->mode &= ~(mode_t)06000;
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
        int r = 0;

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
                        r = change(u, WS_DELETE, (struct ws_entry *)o, NULL, err);
                        if (r == 0)
                                r = change(u, WS_ADD, NULL, n, err);
                } else if (!same_content(o, n)) {
                        r = change(u, WS_MODIFY, (struct ws_entry *)o, n, err);
                } else if (o->mode != n->mode) {
                        r = change(u, WS_CHMOD, (struct ws_entry *)o, n, err);
                }
        }
        for (size_t i = 0; i < u->old->n && r == 0; i++) {
                const struct ws_entry *o = &u->old->e[i];

                if (ws_manifest_find(&u->nm, o->path) == NULL)
                        r = change(u, WS_DELETE, (struct ws_entry *)o, NULL, err);
        }
        /* Whatever blobs are still owned by nm are unchanged content. */
        for (size_t i = 0; i < u->nm.n; i++)
                if (u->nm.e[i].blob != NULL) {
                        int used = 0;

                        for (size_t j = 0; j < u->cs->n && !used; j++)
                                used = u->cs->c[j].new.blob &&strcmp(u->cs->c[j].new.blob,
                                                                     u->nm.e[i].blob) == 0;
                        if (!used)
                                (void)unlinkat(u->files_fd, u->nm.e[i].blob + 6, 0);
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
        close(u.files_fd);
        return r;
}
