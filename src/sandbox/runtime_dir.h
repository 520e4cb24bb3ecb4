/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-sandbox run directories: <home>/run/<id>/, mode 0700, holding the
 * console and VMM logs and an `owner` file that its creator keeps locked
 * (flock) for the sandbox's life, so a later process can recognise leftovers
 * of a luminaguard that was SIGKILLed.
 */
#ifndef LG_SANDBOX_RUNTIME_DIR_H
#define LG_SANDBOX_RUNTIME_DIR_H

#include <stddef.h>

#define RUNDIR_ID_LEN 15 /* "sb-" + 12 hex digits */

/*
 * Pick a fresh random id (id: RUNDIR_ID_LEN+1 bytes), create the directory
 * and its locked owner file. *lock_fd must stay open while the sandbox lives
 * and be closed after the directory is removed. On failure dir is "" or the
 * new directory (which the caller removes), never somebody else's.
 */
int rundir_create(const char *home, char *id, char *dir, size_t dirsz, int *lock_fd)
    __attribute__((warn_unused_result));

/* Remove run directories whose owner is dead. Returns the count, or -errno. */
int rundir_gc(const char *home);

/* Keep only the newest kept logs in dir (bounded disk use). */
void rundir_prune_logs(const char *dir);

#endif
