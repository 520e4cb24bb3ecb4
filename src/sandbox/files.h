/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host half of the agent's file operations (docs/protocol.md:
 * READ_FILE, WRITE_FILE, LIST), for front-ends that work on a live sandbox
 * (MCP's session sandboxes). Every reply is untrusted and bounded: reads and
 * listings stop at the caller's maximum, names come through the codec's
 * checks. The guest's refusals (no such file, a directory...) are
 * LG_EK_USAGE errors carrying its errno and sanitised message; a dead or
 * misbehaving guest is LG_EK_LOST.
 */
#ifndef LG_SANDBOX_FILES_H
#define LG_SANDBOX_FILES_H

#include <stddef.h>
#include <stdint.h>

struct agent_conn;
struct lg_err;
struct proto_stat;

#define FILES_TIMEOUT_MS 60000 /* a guest that does not answer a file request */

/*
 * Up to max bytes of path into *data (malloc'd, NUL-terminated) / *len;
 * *truncated when the file holds more. vmm_pidfd (or -1) and intr_fd (or
 * -1) end the wait as lost / interrupted.
 */
int sandbox_read_file(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path,
                      size_t max, char **data, size_t *len, int *truncated, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Write len bytes (<= PROTO_MAX_FILE) to path atomically with mode (0 = 0644). */
int sandbox_write_file(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path,
                       const void *data, size_t len, unsigned mode, struct lg_err **err)
    __attribute__((warn_unused_result));

/* At most max entries of the directory path into *ents (malloc'd) / *n; *truncated if more. */
int sandbox_list(struct agent_conn *c, int vmm_pidfd, int intr_fd, const char *path, size_t max,
                 struct proto_stat **ents, size_t *n, int *truncated, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
