/* SPDX-License-Identifier: Apache-2.0 */
/* The small pieces every part of workspace sync shares: names, links, the manifest. */
#include "workspace/ws_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *ws_op_name(enum ws_op op)
{
        switch (op) {
        case WS_ADD:
                return "add";
        case WS_MODIFY:
                return "modify";
        case WS_DELETE:
                return "delete";
        case WS_CHMOD:
                return "chmod";
        }
        return "?";
}

/*
 * Lexically, with no file system in sight: a link's target may not be
 * absolute, and following its ".." may never climb above the tree's root.
 * (A target through another link of the tree is checked where that link is.)
 */
int ws_link_inside(const char *path, const char *target)
{
        long depth = 0;

        if (target[0] == '\0' || target[0] == '/')
                return 0;
        /* The link's own directory. */
        for (const char *p = path; *p; p++)
                if (*p == '/')
                        depth++;
        for (const char *p = target; *p;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);

                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (--depth < 0)
                                return 0;
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        depth++;
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        return 1;
}

const char *ws_clean_name(const char *name, char *buf, size_t bufsz)
{
        size_t n;

        while (name[0] == '.' && name[1] == '/')
                name += 2;
        if (name[0] == '/')
                return NULL; /* absolute: never */
        n = strlen(name);
        while (n > 0 && name[n - 1] == '/')
                n--; /* directories end in "/" in tar */
        if (n == 0 || (n == 1 && name[0] == '.') || n >= bufsz || n > WS_MAX_PATH)
                return NULL;
        memcpy(buf, name, n);
        buf[n] = '\0';
        /* Every component a plain name: no "", ".", "..", nothing a file system would cut. */
        for (char *p = buf;;) {
                char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (len == 0 || len > NAME_MAX || (len == 1 && p[0] == '.') ||
                    (len == 2 && p[0] == '.' && p[1] == '.'))
                        return NULL;
                if (slash == NULL)
                        break;
                p = slash + 1;
        }
        return buf;
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct ws_entry *)a)->path, ((const struct ws_entry *)b)->path);
}

const struct ws_entry *ws_manifest_find(const struct ws_manifest *m, const char *path)
{
        struct ws_entry key = {.path = (char *)path};

        if (m->n == 0)
                return NULL;
        return bsearch(&key, m->e, m->n, sizeof(*m->e), entry_cmp);
}

void ws_manifest_sort(struct ws_manifest *m)
{
        if (m->n > 1)
                qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
}

void ws_entry_free(struct ws_entry *e)
{
        free(e->path);
        free(e->link);
        free(e->blob);
        e->path = e->link = e->blob = NULL;
}

void ws_manifest_free(struct ws_manifest *m)
{
        for (size_t i = 0; i < m->n; i++)
                ws_entry_free(&m->e[i]);
        free(m->e);
        memset(m, 0, sizeof(*m));
}

/* A new zeroed slot at the end of m, or NULL. */
struct ws_entry *ws_manifest_push(struct ws_manifest *m)
{
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                struct ws_entry *e = realloc(m->e, cap * sizeof(*e));

                if (e == NULL)
                        return NULL;
                m->e = e;
                m->cap = cap;
        }
        memset(&m->e[m->n], 0, sizeof(m->e[0]));
        return &m->e[m->n++];
}

void ws_changeset_free(struct ws_changeset *cs)
{
        for (size_t i = 0; i < cs->n; i++) {
                ws_entry_free(&cs->c[i].old);
                ws_entry_free(&cs->c[i].new);
        }
        for (size_t i = 0; i < cs->n_refused; i++)
                free(cs->refused[i]);
        free(cs->refused);
        free(cs->c);
        free(cs->dir);
        free(cs->store);
        free(cs->id);
        memset(cs, 0, sizeof(*cs));
}

struct ws_change *ws_changeset_push(struct ws_changeset *cs, enum ws_op op)
{
        if (cs->n == cs->cap) {
                size_t cap = cs->cap ? cs->cap * 2 : 32;
                struct ws_change *c = realloc(cs->c, cap * sizeof(*c));

                if (c == NULL)
                        return NULL;
                cs->c = c;
                cs->cap = cap;
        }
        memset(&cs->c[cs->n], 0, sizeof(cs->c[0]));
        cs->c[cs->n].op = op;
        switch (op) {
        case WS_ADD:
                cs->added++;
                break;
        case WS_MODIFY:
                cs->modified++;
                break;
        case WS_DELETE:
                cs->deleted++;
                break;
        case WS_CHMOD:
                cs->chmodded++;
                break;
        }
        return &cs->c[cs->n++];
}

int ws_changeset_refuse(struct ws_changeset *cs, const char *why)
{
        /* Grown by doubling: a hostile stream may bring many. */
        size_t n = cs->n_refused;

        if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
                char **r = realloc(cs->refused, (n ? n * 2 : 8) * sizeof(*r));

                if (r == NULL)
                        return -1;
                cs->refused = r;
        }
        char **r = cs->refused;

        if ((r[cs->n_refused] = strdup(why)) == NULL)
                return -1;
        cs->n_refused++;
        return 0;
}

int ws_open_beneath(int root, const char *path, int flags)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, root, path, &how, sizeof(how));

        return fd < 0 ? -errno : (int)fd;
}

int ws_tree_link_ok(const struct ws_manifest *m, const char *path, const char *target)
{
        char cur[WS_MAX_PATH + 1];
        size_t len;
        const char *slash = strrchr(path, '/');
        int through_other = 0; /* a component was not a directory of the tree */

        if (!ws_link_inside(path, target))
                return 0;
        /* Start in the link's own directory, a directory of the tree. */
        len = slash ? (size_t)(slash - path) : 0;
        memcpy(cur, path, len);
        cur[len] = '\0';
        for (const char *p = target; *p;) {
                const char *end = strchr(p, '/');
                size_t n = end ? (size_t)(end - p) : strlen(p);

                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        /* Lexically inside (checked above), but ".." is only honest after real
                         * directories. */
                        if (through_other)
                                return 0;
                        char *up = strrchr(cur, '/');

                        len = up ? (size_t)(up - cur) : 0;
                        cur[len] = '\0';
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        const struct ws_entry *e;

                        if (len + n + 2 > sizeof(cur))
                                return 0;
                        if (len > 0)
                                cur[len++] = '/';
                        memcpy(cur + len, p, n);
                        len += n;
                        cur[len] = '\0';
                        e = through_other ? NULL : ws_manifest_find(m, cur);
                        if (e == NULL || e->type != WS_DIR)
                                through_other = 1; /* a link, a file, or nothing (yet) */
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        return 1;
}
