/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workspace sync (`run --workspace DIR`): DIR goes into the sandbox as a tar
 * stream, the command changes it there, and what comes back is a change set
 * — added, modified and deleted files and mode changes — that reaches DIR
 * only after a human approves it (DESIGN.md §5).
 *
 *   ws_pack()      DIR -> manifest (what DIR held) + tar stream for the guest
 *   ws_unpack()    the guest's tar stream -> change set against the manifest,
 *                  file contents staged under <home>/changes/<id>/
 *   ws_card()      the change set as a Diff Card (file list, unified diffs)
 *   ws_apply()     re-check DIR, then apply all or nothing
 *
 * Trust: DIR is the user's; the tar stream from the guest is hostile. Every
 * name in it is checked (relative, no "..", no NUL, bounded), only regular
 * files, directories and symbolic links that stay inside DIR are taken,
 * sizes and counts are bounded before anything is buffered, and nothing is
 * written under DIR before approval. Applying never follows a symbolic link
 * on the way to a target (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH).
 */
#ifndef LG_WORKSPACE_WORKSPACE_H
#define LG_WORKSPACE_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lg_err;
struct card;

#define WS_GUEST_DIR         "/workspace"
#define WS_DEFAULT_MAX_BYTES (512ull << 20) /* file bytes each way */
#define WS_MAX_ENTRIES       100000
#define WS_MAX_PATH          1024 /* bytes of one relative name */

enum ws_type { WS_REG = 1, WS_DIR = 2, WS_LNK = 3 };

struct ws_entry {
        char *path; /* relative to DIR, no "./", never empty */
        enum ws_type type;
        mode_t mode;           /* permission bits, 07777 */
        uint64_t size;         /* REG: bytes */
        unsigned char sha[32]; /* REG: of the content */
        char *link;            /* LNK: the target, as written */
        char *blob;            /* REG from a sandbox: its staged content, relative to the store */
};

/* What DIR held when it was packed, sorted by path. */
struct ws_manifest {
        struct ws_entry *e;
        size_t n, cap;
        uint64_t bytes; /* sum of regular file sizes */
};

enum ws_op { WS_ADD, WS_MODIFY, WS_DELETE, WS_CHMOD };

struct ws_change {
        enum ws_op op;
        struct ws_entry old; /* MODIFY, DELETE, CHMOD: what DIR held (old.path = the path) */
        struct ws_entry new; /* ADD, MODIFY, CHMOD: what the sandbox left (new.blob: content) */
};

struct ws_changeset {
        char *dir;   /* the host DIR, absolute */
        char *store; /* <home>/changes/<id>: changes.json, files/, card.txt */
        char *id;
        struct ws_change *c;
        size_t n, cap;
        size_t added, modified, deleted, chmodded;
        /* Entries from the sandbox that are never applied, each said in the card. */
        char **refused;
        size_t n_refused;
};

struct ws_limits {
        uint64_t max_bytes;
        size_t max_entries;
};

/*
 * Walk dir (not following symbolic links) into *m and write it as a tar
 * stream to tar_fd. Refused with a clear error: a symbolic link that points
 * outside dir (absolute, or climbing above it), a device, FIFO or socket,
 * more than the limits allow. 0 or < 0 with *err (LG_EK_USAGE for the user's
 * DIR, LG_EK_INTERNAL for I/O).
 */
int ws_pack(const char *dir, int tar_fd, const struct ws_limits *lim, struct ws_manifest *m,
            struct lg_err **err) __attribute__((warn_unused_result));

/*
 * Read the guest's tar stream from tar_fd (at its start) and compare it
 * with m: the change set goes to *cs, the new contents are staged under
 * store (created; removed by the caller when not wanted). Hostile input is
 * an LG_EK_LOST error naming the entry; nothing under the host DIR is touched.
 */
int ws_unpack(int tar_fd, const struct ws_manifest *m, const char *dir, const char *store,
              const char *id, const struct ws_limits *lim, struct ws_changeset *cs,
              struct lg_err **err) __attribute__((warn_unused_result));

/* Write <store>/changes.json (with fsync) so `luminaguard changes` can find it later. */
int ws_changeset_save(const struct ws_changeset *cs, struct lg_err **err)
    __attribute__((warn_unused_result));
/* Read <store>/changes.json back. */
int ws_changeset_load(const char *store, struct ws_changeset *cs, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Add the change set to a card: counts, the file list, and per text file a
 * unified diff (cut at a few thousand lines); binary and large files are
 * summarised. The "before" side is read from DIR as it is now.
 */
int ws_card(const struct ws_changeset *cs, struct card *c, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Apply cs to its DIR: first check that every path it touches still holds
 * what was packed (else LG_EK_USAGE "conflict: ..." and nothing is changed),
 * then stage every new file beside its target, then rename into place; any
 * failure rolls back what was done. 0 or < 0 with *err.
 */
int ws_apply(const struct ws_changeset *cs, struct lg_err **err)
    __attribute__((warn_unused_result));

void ws_manifest_free(struct ws_manifest *m);
void ws_changeset_free(struct ws_changeset *cs);
/* The entry of m at path, or NULL. */
const struct ws_entry *ws_manifest_find(const struct ws_manifest *m, const char *path);
/* A symbolic link at path (relative) with this target stays inside the tree? */
int ws_link_inside(const char *path, const char *target);
/* A name from a tar stream made safe: "./a/b" -> "a/b"; NULL when unsafe or the root itself. */
const char *ws_clean_name(const char *name, char *buf, size_t bufsz);
const char *ws_op_name(enum ws_op op);

#endif
