/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A change set on disk: <store>/changes.json beside the staged contents in
 * <store>/files/. Written before anyone is asked to approve, so a denied or
 * timed-out change set can still be looked at and applied later
 * (`luminaguard changes`). The file is ours, but it lives on disk: it is
 * read back as carefully as anything else (names cleaned, types checked).
 *
 * Names, link targets, DIR and the refused lines are kept byte-exact: a
 * JSON string when they are valid UTF-8 (all jansson accepts), otherwise
 * {"hex": "..."} with every byte. A Linux name is any bytes but "/" and
 * NUL, and a Latin-1 "caf\xe9.txt" made in a sandbox must be applied as
 * exactly those bytes, never refused or re-encoded.
 */
#include "workspace/ws_internal.h"
#include "common/err.h"
#include "common/fs.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_STORE_MAX (256u << 20) /* changes.json */
#define WS_TEXT_MAX  8192         /* bytes of one refused line, as decoded */

static const char *type_name(enum ws_type t)
{
        return t == WS_REG ? "file" : t == WS_DIR ? "dir" : "symlink";
}

static void hex(const unsigned char *sha, char out[65])
{
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* s, byte-exact: a string when it is valid UTF-8, else {"hex": "..."}. NULL on ENOMEM. */
static json_t *bytes_json(const char *s)
{
        static const char digits[] = "0123456789abcdef";
        json_t *j = json_string(s);
        size_t n = strlen(s);
        char *h;

        if (j != NULL)
                return j;
        h = malloc(2 * n + 1);
        if (h == NULL)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                h[2 * i] = digits[(unsigned char)s[i] >> 4];
                h[2 * i + 1] = digits[(unsigned char)s[i] & 0xf];
        }
        h[2 * n] = '\0';
        j = json_pack("{s:s}", "hex", h);
        free(h);
        return j;
}

static int hexval(char c)
{
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The other way: a malloc'd copy of at most max bytes, or NULL when j is
 * neither form, too long, or would hold a NUL.
 */
static char *bytes_load(json_t *j, size_t max)
{
        const char *h = json_string_value(json_object_get(j, "hex"));
        size_t n;
        char *s;

        if (json_is_string(j)) {
                n = json_string_length(j);
                if (n > max || strlen(json_string_value(j)) != n)
                        return NULL;
                return strdup(json_string_value(j));
        }
        if (!json_is_object(j) || json_object_size(j) != 1 || h == NULL)
                return NULL;
        n = strlen(h);
        if (n % 2 != 0 || n / 2 > max || (s = malloc(n / 2 + 1)) == NULL)
                return NULL;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);

                if (hi < 0 || lo < 0 || (hi | lo) == 0) { /* not hex, or a NUL */
                        free(s);
                        return NULL;
                }
                s[i] = (char)(hi << 4 | lo);
        }
        s[n / 2] = '\0';
        return s;
}

/* Adds key: value to o, consuming value; -1 when value is NULL (ENOMEM) or it cannot be added. */
static int put(json_t *o, const char *key, json_t *value)
{
        return value != NULL && json_object_set_new(o, key, value) == 0 ? 0 : -1;
}

static json_t *entry_json(const struct ws_entry *e)
{
        char h[65];
        json_t *j =
            json_pack("{s:s, s:I}", "type", type_name(e->type), "mode", (json_int_t)e->mode);
        int r = 0;

        if (j == NULL)
                return NULL;
        if (e->type == WS_REG) {
                hex(e->sha, h);
                r |= put(j, "size", json_integer((json_int_t)e->size));
                r |= put(j, "sha256", json_string(h));
                if (e->blob)
                        r |= put(j, "blob", json_string(e->blob));
        }
        if (e->type == WS_LNK)
                r |= put(j, "target", bytes_json(e->link));
        if (r != 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

int ws_changeset_save(const struct ws_changeset *cs, struct lg_err **err)
{
        json_t *root = json_pack("{s:i, s:s, s:o, s:[], s:[]}", "version", 1, "id", cs->id, "dir",
                                 bytes_json(cs->dir), "changes", "refused");
        json_t *list = root ? json_object_get(root, "changes") : NULL;
        json_t *refused = root ? json_object_get(root, "refused") : NULL;
        char path[4096], *text = NULL;
        int r, ok = root != NULL;

        for (size_t i = 0; ok && i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];
                json_t *j = json_pack("{s:s, s:o}", "op", ws_op_name(c->op), "path",
                                      bytes_json(c->op == WS_ADD ? c->new.path : c->old.path));

                ok = j != NULL && json_array_append_new(list, j) == 0;
                if (ok && c->op != WS_ADD)
                        ok = put(j, "old", entry_json(&c->old)) == 0;
                if (ok && c->op != WS_DELETE)
                        ok = put(j, "new", entry_json(&c->new)) == 0;
        }
        for (size_t i = 0; ok && i < cs->n_refused; i++) {
                json_t *j = bytes_json(cs->refused[i]);

                ok = j != NULL && json_array_append_new(refused, j) == 0;
        }
        if (ok)
                text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        json_decref(root);
        /* Every name has a form now: what is left is memory. */
        if (text == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set %s as JSON", cs->id);
        snprintf(path, sizeof(path), "%s/changes.json", cs->store);
        r = fs_write_file_atomic(path, text, strlen(text), 0600);
        free(text);
        return r < 0 ? err_set(err, LG_EK_INTERNAL, -r, "write %s", path) : 0;
}

static int unhex(const char *s, unsigned char *out)
{
        if (s == NULL || strlen(s) != 64)
                return -1;
        for (int i = 0; i < 32; i++) {
                unsigned v;

                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -1;
                out[i] = (unsigned char)v;
        }
        return 0;
}

static int entry_load(json_t *j, const char *path, struct ws_entry *e)
{
        const char *type = json_string_value(json_object_get(j, "type"));
        json_int_t mode = json_integer_value(json_object_get(j, "mode"));
        const char *blob = json_string_value(json_object_get(j, "blob"));
        char clean[WS_MAX_PATH + 1];

        if (!json_is_object(j) || type == NULL || mode < 0 || mode > 07777)
                return -1;
        if ((e->path = strdup(path)) == NULL)
                return -1;
        e->mode = (mode_t)mode;
        if (strcmp(type, "file") == 0) {
                json_int_t size = json_integer_value(json_object_get(j, "size"));

                e->type = WS_REG;
                if (size < 0 || unhex(json_string_value(json_object_get(j, "sha256")), e->sha) < 0)
                        return -1;
                e->size = (uint64_t)size;
                /* A blob is a file directly under files/, nothing else. */
                if (blob != NULL) {
                        if (strncmp(blob, "files/", 6) != 0 || strchr(blob + 6, '/') ||
                            ws_clean_name(blob, clean, sizeof(clean)) == NULL ||
                            (e->blob = strdup(blob)) == NULL)
                                return -1;
                }
        } else if (strcmp(type, "dir") == 0) {
                e->type = WS_DIR;
        } else if (strcmp(type, "symlink") == 0) {
                e->type = WS_LNK;
                e->link = bytes_load(json_object_get(j, "target"), PATH_MAX);
                if (e->link == NULL || !ws_link_inside(path, e->link))
                        return -1;
        } else {
                return -1;
        }
        return 0;
}

static int op_parse(const char *s, enum ws_op *op)
{
        static const enum ws_op ops[] = {WS_ADD, WS_MODIFY, WS_DELETE, WS_CHMOD};

        for (size_t i = 0; s != NULL && i < sizeof(ops) / sizeof(ops[0]); i++)
                if (strcmp(s, ws_op_name(ops[i])) == 0) {
                        *op = ops[i];
                        return 0;
                }
        return -1;
}

int ws_changeset_load(const char *store, struct ws_changeset *cs, struct lg_err **err)
{
        char path[4096], clean[WS_MAX_PATH + 1], *text = NULL;
        json_error_t je;
        json_t *root, *list, *refused, *j;
        size_t len, i;
        int r;

        memset(cs, 0, sizeof(*cs));
        snprintf(path, sizeof(path), "%s/changes.json", store);
        r = fs_read_file(path, WS_STORE_MAX, &text, &len);
        if (r < 0)
                return err_set(err, r == -ENOENT ? LG_EK_USAGE : LG_EK_INTERNAL, -r, "read %s",
                               path);
        root = json_loadb(text, len, 0, &je);
        free(text);
        if (root == NULL)
                return err_set(err, LG_EK_USAGE, 0, "%s: line %d: %s", path, je.line, je.text);
        list = json_object_get(root, "changes");
        refused = json_object_get(root, "refused");
        cs->store = strdup(store);
        cs->id = json_string_value(json_object_get(root, "id"))
                     ? strdup(json_string_value(json_object_get(root, "id")))
                     : NULL;
        cs->dir = bytes_load(json_object_get(root, "dir"), PATH_MAX);
        r = 0;
        if (cs->store == NULL || cs->id == NULL || cs->dir == NULL || cs->dir[0] != '/' ||
            json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(list))
                r = -1;
        json_array_foreach(list, i, j)
        {
                enum ws_op op;
                char *p = r == 0 ? bytes_load(json_object_get(j, "path"), WS_MAX_PATH) : NULL;
                struct ws_change *c;

                if (r < 0 || op_parse(json_string_value(json_object_get(j, "op")), &op) < 0 ||
                    p == NULL || ws_clean_name(p, clean, sizeof(clean)) == NULL ||
                    strcmp(clean, p) != 0 || (c = ws_changeset_push(cs, op)) == NULL) {
                        free(p);
                        r = -1;
                        break;
                }
                if (op != WS_ADD && entry_load(json_object_get(j, "old"), p, &c->old) < 0)
                        r = -1;
                if (op != WS_DELETE && entry_load(json_object_get(j, "new"), p, &c->new) < 0)
                        r = -1;
                if (r == 0 && (op == WS_ADD || op == WS_MODIFY) && c->new.type == WS_REG &&
                    c->new.blob == NULL)
                        r = -1;
                free(p);
        }
        json_array_foreach(refused, i, j)
        {
                char *why = r == 0 ? bytes_load(j, WS_TEXT_MAX) : NULL;

                if (r == 0 && (why == NULL || ws_changeset_refuse(cs, why) < 0))
                        r = -1;
                free(why);
        }
        json_decref(root);
        if (r < 0) {
                ws_changeset_free(cs);
                return err_set(err, LG_EK_USAGE, EINVAL, "%s is not a valid change set", path);
        }
        return 0;
}
