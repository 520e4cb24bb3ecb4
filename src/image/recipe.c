/* SPDX-License-Identifier: Apache-2.0 */
/* Image recipe: where its files are and the key that identifies a build of them. */
#include "common/cleanup.h"
#include "common/err.h"
#include "common/paths.h"
#include "image/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void cleanup_md_ctx(EVP_MD_CTX **c)
{
        EVP_MD_CTX_free(*c);
}

/* images/<name>/extends: one image name whose build.sh is part of this recipe. */
static int recipe_parent(const char *name, struct image_recipe *r, struct lg_err **err)
{
        char rel[256], path[PATH_MAX], parent[64] = "";
        _cleanup_file_ FILE *f = NULL;

        r->parent_sh[0] = '\0';
        snprintf(rel, sizeof(rel), "images/%s/extends", name);
        if (paths_find_data(rel, path, sizeof(path)) < 0)
                return 0;
        f = fopen(path, "re");
        if (f == NULL || fgets(parent, sizeof(parent), f) == NULL)
                return err_set(err, LG_EK_IMAGE, errno, "read %s", path);
        parent[strcspn(parent, "\n")] = '\0';
        if (parent[0] == '\0' ||
            strspn(parent, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(parent) ||
            strcmp(parent, name) == 0)
                return err_set(err, LG_EK_IMAGE, 0, "%s: not an image name: '%s'", path, parent);
        snprintf(rel, sizeof(rel), "images/%s/build.sh", parent);
        if (paths_find_data(rel, r->parent_sh, sizeof(r->parent_sh)) < 0)
                return err_set(err, LG_EK_IMAGE, 0, "%s not found (%s extends it)", rel, name);
        return 0;
}

int image_recipe_find(const char *name, struct image_recipe *r, struct lg_err **err)
{
        struct {
                const char *rel;
                char *out;
        } files[] = {{"build.sh", r->build_sh}, {NULL, r->agent}};

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                char rel[256];
                int n;

                if (files[i].rel == NULL)
                        n = snprintf(rel, sizeof(rel), "lg-agent");
                else
                        n = snprintf(rel, sizeof(rel), "images/%s/%s", name, files[i].rel);
                if (n < 0 || (size_t)n >= sizeof(rel))
                        return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "image name %s", name);
                if (paths_find_data(rel, files[i].out, PATH_MAX) < 0)
                        return err_set(
                            err, LG_EK_IMAGE, 0,
                            "%s not found (looked in $LUMINAGUARD_DATADIR, next to the "
                            "luminaguard binary and in the install tree)%s",
                            rel, files[i].rel == NULL ? "; run 'make' to build lg-agent" : "");
        }
        {
                char rel[256];

                snprintf(rel, sizeof(rel), "images/%s/host-inputs", name);
                if (paths_find_data(rel, r->host_inputs, sizeof(r->host_inputs)) < 0)
                        r->host_inputs[0] = '\0';
        }
        return recipe_parent(name, r, err);
}

/* Feed one recipe file to the digest as role NUL size(8, LE) content. */
static int hash_file(EVP_MD_CTX *md, const char *role, const char *path, struct lg_err **err)
{
        _cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        unsigned char buf[65536], size_le[8];
        struct stat st;
        uint64_t left;

        if (fd < 0 || fstat(fd, &st) < 0)
                return err_set(err, LG_EK_IMAGE, errno, "recipe file %s", path);
        left = (uint64_t)st.st_size;
        for (int i = 0; i < 8; i++)
                size_le[i] = (unsigned char)(left >> (8 * i));
        if (!EVP_DigestUpdate(md, role, strlen(role) + 1) ||
            !EVP_DigestUpdate(md, size_le, sizeof(size_le)))
                return err_set(err, LG_EK_INTERNAL, 0, "SHA-256 update failed");
        /* Hash exactly the size announced above, so a file growing under us is an error. */
        while (left > 0) {
                ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_set(err, LG_EK_IMAGE, errno, "read recipe file %s", path);
                if (n == 0)
                        return err_set(err, LG_EK_IMAGE, 0, "recipe file %s shrank while read",
                                       path);
                if (!EVP_DigestUpdate(md, buf, (size_t)n))
                        return err_set(err, LG_EK_INTERNAL, 0, "SHA-256 update failed");
                left -= (uint64_t)n;
        }
        return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name); /* bytes, not the locale's order */
}

/*
 * The regular files below dir (links followed, as the build copies them),
 * depth first in name order, each as ("host " path, size, content).
 */
static int hash_tree(EVP_MD_CTX *md, const char *dir, unsigned depth, struct lg_err **err)
{
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, by_name), r = 0;

        if (n < 0)
                return err_set(err, LG_EK_IMAGE, errno, "host input %s", dir);
        for (int i = 0; i < n; i++) {
                const char *name = names[i]->d_name;
                char path[PATH_MAX], role[PATH_MAX + 8];
                struct stat st;

                if (r == 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
                        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
                                r = err_set(err, LG_EK_IMAGE, ENAMETOOLONG, "host input %s", dir);
                        else if (stat(path, &st) < 0)
                                r = err_set(err, LG_EK_IMAGE, errno, "host input %s", path);
                        else if (S_ISDIR(st.st_mode) && depth >= 8)
                                r = err_set(err, LG_EK_IMAGE, ELOOP, "host input %s: too deep",
                                            path);
                        else if (S_ISDIR(st.st_mode))
                                r = hash_tree(md, path, depth + 1, err);
                        else if (S_ISREG(st.st_mode)) {
                                snprintf(role, sizeof(role), "host %s", path);
                                r = hash_file(md, role, path, err);
                        }
                }
                free(names[i]);
        }
        free(names);
        return r;
}

/* Each directory host-inputs names, as hash_tree(); one that does not exist as ("host-absent "
 * path). */
static int hash_host_inputs(EVP_MD_CTX *md, const char *list, struct lg_err **err)
{
        _cleanup_file_ FILE *f = fopen(list, "re");
        char dir[PATH_MAX];

        if (f == NULL)
                return err_set(err, LG_EK_IMAGE, errno, "recipe file %s", list);
        while (fgets(dir, sizeof(dir), f) != NULL) {
                char role[PATH_MAX + 16];
                struct stat st;
                int r;

                dir[strcspn(dir, "\n")] = '\0';
                if (dir[0] == '\0' || dir[0] == '#')
                        continue;
                if (dir[0] != '/')
                        return err_set(err, LG_EK_IMAGE, 0, "%s: not an absolute path: %s", list,
                                       dir);
                if (stat(dir, &st) < 0 && errno == ENOENT) {
                        snprintf(role, sizeof(role), "host-absent %s", dir);
                        if (!EVP_DigestUpdate(md, role, strlen(role) + 1))
                                return err_set(err, LG_EK_INTERNAL, 0, "SHA-256 update failed");
                        continue;
                }
                r = hash_tree(md, dir, 0, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int image_recipe_key(const struct image_recipe *r, char key[65], struct lg_err **err)
{
        __attribute__((cleanup(cleanup_md_ctx))) EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        int ret;

        if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "SHA-256 init");
        if ((ret = hash_file(md, "build.sh", r->build_sh, err)) < 0 ||
            (ret = hash_file(md, "lg-agent", r->agent, err)) < 0 ||
            (r->parent_sh[0] != '\0' && (ret = hash_file(md, "parent", r->parent_sh, err)) < 0) ||
            (r->host_inputs[0] != '\0' &&
             ((ret = hash_file(md, "host-inputs", r->host_inputs, err)) < 0 ||
              (ret = hash_host_inputs(md, r->host_inputs, err)) < 0)))
                return ret;
        if (!EVP_DigestFinal_ex(md, digest, &len) || len != 32)
                return err_set(err, LG_EK_INTERNAL, 0, "SHA-256 final failed");
        for (unsigned i = 0; i < len; i++)
                snprintf(key + 2 * i, 3, "%02x", digest[i]);
        return 0;
}
