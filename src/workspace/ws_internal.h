/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the workspace sync files only (see workspace.h for the module's contract). */
#ifndef LG_WORKSPACE_WS_INTERNAL_H
#define LG_WORKSPACE_WS_INTERNAL_H

#include "workspace/workspace.h"

void ws_manifest_sort(struct ws_manifest *m);
struct ws_entry *ws_manifest_push(struct ws_manifest *m);
void ws_entry_free(struct ws_entry *e);
struct ws_change *ws_changeset_push(struct ws_changeset *cs, enum ws_op op);
/* Note one entry from the sandbox that will not be applied. 0 / -1 (ENOMEM). */
int ws_changeset_refuse(struct ws_changeset *cs, const char *why);

/*
 * path (relative) under the directory root, opened with flags | O_CLOEXEC,
 * never through a symbolic link or out of root (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS). A descriptor or -errno.
 */
int ws_open_beneath(int root, const char *path, int flags);

/*
 * A link's target stays inside the tree m (sorted) even when followed
 * through the tree's own links: lexically inside (ws_link_inside), and a
 * ".." only ever after components that are directories of m — "l/.."
 * with l a link to "." would otherwise climb out.
 */
int ws_tree_link_ok(const struct ws_manifest *m, const char *path, const char *target);

#endif
