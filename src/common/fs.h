/* SPDX-License-Identifier: Apache-2.0 */
/* Filesystem helpers. All return 0 / -errno and never print. */
#ifndef LG_COMMON_FS_H
#define LG_COMMON_FS_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for created components. */
int fs_mkdir_p(const char *path, mode_t mode) __attribute__((warn_unused_result));

/*
 * rm -rf that never follows symlinks and never crosses into another
 * filesystem (a mount left inside a run directory is reported as -EBUSY
 * rather than emptied). A missing path is success.
 */
int fs_remove_tree(const char *path) __attribute__((warn_unused_result));

/* Read a whole file of at most max bytes into a NUL-terminated malloc'd buffer. */
int fs_read_file(const char *path, size_t max, char **out, size_t *len)
    __attribute__((warn_unused_result));

/* Write data to path atomically: temp file in the same directory, fsync, rename. */
int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
    __attribute__((warn_unused_result));

/* True if path exists (any type, symlinks not followed). */
int fs_exists(const char *path);

#endif
