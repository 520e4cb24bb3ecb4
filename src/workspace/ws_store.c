/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A change set on disk: <store>/changes.json beside the staged contents in
 * <store>/files/. Written before anyone is asked to approve, so a denied or
 * timed-out change set can still be looked at and applied later
 * (`luminaguard changes`). The file is ours, but it lives on disk: it is
 * read back as carefully as anything else (names cleaned, types checked).
 */
#include "workspace/ws_internal.h"
#include "common/err.h"
#include "common/fs.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_STORE_MAX (256u << 20) /* changes.json */

static const char *type_name(enum ws_type t)
{
        return t == WS_REG ? "file" : t == WS_DIR ? "dir" : "symlink";
}

static void hex(const unsigned char *sha, char out[65])
{
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

static json_t *entry_json(const struct ws_entry *e)
{
        char h[65];
        json_t *j =
            json_pack("{s:s, s:I}", "type", type_name(e->type), "mode", (json_int_t)e->mode);

        if (j == NULL)
                return NULL;
        if (e->type == WS_REG) {
                hex(e->sha, h);
                json_object_set_new(j, "size", json_integer((json_int_t)e->size));
                json_object_set_new(j, "sha256", json_string(h));
                if (e->blob)
                        json_object_set_new(j, "blob", json_string(e->blob));
        }
        if (e->type == WS_LNK)
                json_object_set_new(j, "target", json_string(e->link));
        return j;
}

int ws_changeset_save(const struct ws_changeset *cs, struct lg_err **err)
{
        json_t *root = json_pack("{s:i, s:s, s:s, s:[], s:[]}", "version", 1, "id", cs->id, "dir",
                                 cs->dir, "changes", "refused");
        json_t *list = root ? json_object_get(root, "changes") : NULL;
        json_t *refused = root ? json_object_get(root, "refused") : NULL;
        char path[4096], *text = NULL;
        int r, ok = root != NULL;

        for (size_t i = 0; ok && i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];
                json_t *j = json_pack("{s:s, s:s}", "op", ws_op_name(c->op), "path",
                                      c->op == WS_ADD ? c->new.path : c->old.path);

                ok = j != NULL && json_array_append_new(list, j) == 0;
                if (ok && c->op != WS_ADD)
                        ok = json_object_set_new(j, "old", entry_json(&c->old)) == 0;
                if (ok && c->op != WS_DELETE)
                        ok = json_object_set_new(j, "new", entry_json(&c->new)) == 0;
        }
        for (size_t i = 0; ok && i < cs->n_refused; i++)
                ok = json_array_append_new(refused, json_string(cs->refused[i])) == 0;
        if (ok)
                text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        json_decref(root);
        if (text == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "change set as JSON");
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
        const char *target = json_string_value(json_object_get(j, "target"));
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
                if (target == NULL || !ws_link_inside(path, target) ||
                    (e->link = strdup(target)) == NULL)
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
        cs->dir = json_string_value(json_object_get(root, "dir"))
                      ? strdup(json_string_value(json_object_get(root, "dir")))
                      : NULL;
        r = 0;
        if (cs->store == NULL || cs->id == NULL || cs->dir == NULL || cs->dir[0] != '/' ||
            json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(list))
                r = -1;
        json_array_foreach(list, i, j)
        {
                enum ws_op op;
                const char *p = json_string_value(json_object_get(j, "path"));
                struct ws_change *c;

                if (r < 0 || op_parse(json_string_value(json_object_get(j, "op")), &op) < 0 ||
                    p == NULL || ws_clean_name(p, clean, sizeof(clean)) == NULL ||
                    strcmp(clean, p) != 0 || (c = ws_changeset_push(cs, op)) == NULL) {
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
        }
        json_array_foreach(refused, i, j)
        {
                if (r == 0 && json_is_string(j) &&
                    ws_changeset_refuse(cs, json_string_value(j)) < 0)
                        r = -1;
        }
        json_decref(root);
        if (r < 0) {
                ws_changeset_free(cs);
                return err_set(err, LG_EK_USAGE, EINVAL, "%s is not a valid change set", path);
        }
        return 0;
}
