/* SPDX-License-Identifier: Apache-2.0 */
/* Small descriptor helpers. All return 0 / -errno. */
#ifndef LG_COMMON_FDIO_H
#define LG_COMMON_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all n bytes, retrying on EINTR and short writes (blocking fds only). */
int fd_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));

/* Read until EOF or n bytes; *got receives the count. */
int fd_read_full(int fd, void *p, size_t n, size_t *got) __attribute__((warn_unused_result));

int fd_set_nonblock(int fd, int on);
int fd_set_cloexec(int fd, int on);

#endif
