/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DIR into a tar stream for the sandbox, and a manifest of what was sent:
 * the manifest is what the change set is computed against and what apply
 * re-checks, so it is built from the very bytes that were packed.
 */
#include "workspace/ws_internal.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WS_MAX_DEPTH 64

struct pack {
        struct archive *a;
        const struct ws_limits *lim;
        struct ws_manifest *m;
        const char *dir;
        char path[WS_MAX_PATH + 256]; /* the relative name being walked */
};

static int pack_fail(struct pack *p, struct lg_err **err)
{
        return err_set(err, LG_EK_INTERNAL, 0, "write the workspace tar stream: %s",
                       archive_error_string(p->a) ? archive_error_string(p->a) : "unknown error");
}

/* Header of one entry, taken from st. */
static int pack_header(struct pack *p, const struct stat *st, const struct ws_entry *e,
                       struct lg_err **err)
{
        struct archive_entry *ae = archive_entry_new();
        int r;

        if (ae == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "tar entry");
        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_perm(ae, e->mode);
        archive_entry_set_mtime(ae, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        /* Owned by whoever runs in the sandbox: host uids mean nothing there. */
        archive_entry_set_uid(ae, 0);
        archive_entry_set_gid(ae, 0);
        switch (e->type) {
        case WS_REG:
                archive_entry_set_filetype(ae, AE_IFREG);
                archive_entry_set_size(ae, (la_int64_t)e->size);
                break;
        case WS_DIR:
                archive_entry_set_filetype(ae, AE_IFDIR);
                break;
        case WS_LNK:
                archive_entry_set_filetype(ae, AE_IFLNK);
                archive_entry_set_symlink(ae, e->link);
                break;
        }
        r = archive_write_header(p->a, ae);
        archive_entry_free(ae);
        return r == ARCHIVE_OK ? 0 : pack_fail(p, err);
}

/* The content of a regular file, hashed as it is written; it must not change size meanwhile. */
static int pack_data(struct pack *p, int fd, struct ws_entry *e, struct lg_err **err)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char buf[64 * 1024];
        uint64_t left = e->size;
        unsigned len = 0;
        int r = 0;

        if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
                EVP_MD_CTX_free(md);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "sha256");
        }
        while (left > 0 && r == 0) {
                ssize_t n = read(fd, buf, left < sizeof(buf) ? (size_t)left : sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = err_set(err, LG_EK_INTERNAL, errno, "read %s/%s", p->dir, e->path);
                else if (n == 0)
                        r = err_set(err, LG_EK_USAGE, 0,
                                    "%s/%s shrank while it was being copied; try again", p->dir,
                                    e->path);
                else if (archive_write_data(p->a, buf, (size_t)n) != n)
                        r = pack_fail(p, err);
                else {
                        EVP_DigestUpdate(md, buf, (size_t)n);
                        left -= (uint64_t)n;
                }
        }
        if (r == 0 && !(EVP_DigestFinal_ex(md, e->sha, &len) && len == 32))
                r = err_set(err, LG_EK_INTERNAL, 0, "sha256");
        EVP_MD_CTX_free(md);
        return r;
}

static int pack_dir(struct pack *p, int dfd, size_t plen, int depth, struct lg_err **err);

/* One directory entry named name inside the directory dfd. */
static int pack_one(struct pack *p, int dfd, size_t plen, const char *name, int depth,
                    struct lg_err **err)
{
        struct stat st;
        struct ws_entry *e;
        size_t n = strlen(name);
        int r;

        if (plen + n + 2 > WS_MAX_PATH)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "%s: a name under it is too long",
                               p->dir);
        if (plen > 0)
                p->path[plen++] = '/';
        memcpy(p->path + plen, name, n + 1);
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "stat %s/%s", p->dir, p->path);
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                return err_set(err, LG_EK_USAGE, 0,
                               "%s/%s: only regular files, directories and symbolic links can "
                               "go into a sandbox (this is a device, FIFO or socket)",
                               p->dir, p->path);
        if (p->m->n >= p->lim->max_entries)
                return err_set(err, LG_EK_USAGE, EFBIG, "%s holds more than %zu entries", p->dir,
                               p->lim->max_entries);
        e = ws_manifest_push(p->m);
        if (e == NULL || (e->path = strdup(p->path)) == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "manifest");
        e->mode = st.st_mode & 07777;
        if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);

                if (len < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "readlink %s/%s", p->dir,
                                       p->path);
                target[len] = '\0';
                e->type = WS_LNK;
                e->mode = 0777;
                if ((e->link = strdup(target)) == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "manifest");
                if (!ws_link_inside(e->path, target))
                        return err_set(err, LG_EK_USAGE, 0,
                                       "%s/%s is a symbolic link to %s, outside the workspace: "
                                       "it is not copied into a sandbox",
                                       p->dir, p->path, target);
                return pack_header(p, &st, e, err);
        }
        if (S_ISDIR(st.st_mode)) {
                e->type = WS_DIR;
                r = pack_header(p, &st, e, err);
                if (r < 0)
                        return r;
                if (depth >= WS_MAX_DEPTH)
                        return err_set(err, LG_EK_USAGE, ELOOP, "%s: nested deeper than %d", p->dir,
                                       WS_MAX_DEPTH);
                int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (sub < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "open %s/%s", p->dir, p->path);
                return pack_dir(p, sub, strlen(p->path), depth + 1, err);
        }
        e->type = WS_REG;
        e->size = (uint64_t)st.st_size;
        if (p->m->bytes + e->size > p->lim->max_bytes)
                return err_set(err, LG_EK_USAGE, EFBIG,
                               "%s holds more than %llu MiB of files (--workspace-max)", p->dir,
                               (unsigned long long)(p->lim->max_bytes >> 20));
        p->m->bytes += e->size;
        {
                /* O_NONBLOCK: a FIFO swapped in since the stat must not hang us. */
                _cleanup_fd_ int fd =
                    openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                struct stat fst;

                if (fd < 0)
                        return err_set(err, LG_EK_USAGE, errno, "open %s/%s", p->dir, p->path);
                if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino ||
                    fst.st_dev != st.st_dev)
                        return err_set(err, LG_EK_USAGE, 0,
                                       "%s/%s changed while it was being copied; try again", p->dir,
                                       p->path);
                r = pack_header(p, &st, e, err);
                return r < 0 ? r : pack_data(p, fd, e, err);
        }
}

/* Every entry of the directory dfd (taken over), in name order. */
static int pack_dir(struct pack *p, int dfd, size_t plen, int depth, struct lg_err **err)
{
        DIR *d = fdopendir(dfd);
        struct dirent **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        int r = 0;

        if (d == NULL) {
                close(dfd);
                return err_set(err, LG_EK_INTERNAL, errno, "read %s/%s", p->dir, p->path);
        }
        /* Names first, so the directory stream is not held open across the recursion's depth. */
        while ((de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == cap) {
                        struct dirent **nn =
                            realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nn));

                        if (nn == NULL) {
                                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "directory listing");
                                break;
                        }
                        names = nn;
                }
                names[n] = malloc(sizeof(*de));
                if (names[n] == NULL) {
                        r = err_set(err, LG_EK_INTERNAL, ENOMEM, "directory listing");
                        break;
                }
                memcpy(names[n++], de, sizeof(*de));
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                r = pack_one(p, dirfd(d), plen, names[i]->d_name, depth, err);
                p->path[plen] = '\0';
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        closedir(d);
        return r;
}

int ws_pack(const char *dir, int tar_fd, const struct ws_limits *lim, struct ws_manifest *m,
            struct lg_err **err)
{
        struct pack p = {.lim = lim, .m = m, .dir = dir};
        int dfd, r;

        memset(m, 0, sizeof(*m));
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return err_set(err, LG_EK_USAGE, errno, "--workspace %s", dir);
        p.a = archive_write_new();
        if (p.a == NULL || archive_write_set_format_pax_restricted(p.a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(p.a, 1) != ARCHIVE_OK ||
            /* Names are bytes on Linux: kept as they are, not translated (or refused) as UTF-8. */
            archive_write_set_format_option(p.a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
            archive_write_open_fd(p.a, tar_fd) != ARCHIVE_OK) {
                close(dfd);
                r = p.a ? pack_fail(&p, err) : err_set(err, LG_EK_INTERNAL, ENOMEM, "tar");
                archive_write_free(p.a);
                return r;
        }
        r = pack_dir(&p, dfd, 0, 0, err);
        if (r == 0 && archive_write_close(p.a) != ARCHIVE_OK)
                r = pack_fail(&p, err);
        archive_write_free(p.a);
        ws_manifest_sort(m);
        /* Each link was checked alone; now through the others ("l -> .", "x -> l/.."). */
        for (size_t i = 0; r == 0 && i < m->n; i++)
                if (m->e[i].type == WS_LNK && !ws_tree_link_ok(m, m->e[i].path, m->e[i].link))
                        r = err_set(err, LG_EK_USAGE, 0,
                                    "%s/%s is a symbolic link to %s, which leads outside the "
                                    "workspace through another link: it is not copied into a "
                                    "sandbox",
                                    dir, m->e[i].path, m->e[i].link);
        return r;
}
