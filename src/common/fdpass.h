/* SPDX-License-Identifier: Apache-2.0 */
/* Passing descriptors over unix sockets (SCM_RIGHTS). 0 / -errno. */
#ifndef LG_COMMON_FDPASS_H
#define LG_COMMON_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX 4

/*
 * Send all n bytes; the first chunk carries nfds descriptors (<= FDPASS_MAX).
 * MSG_NOSIGNAL: a peer that went away is -EPIPE, not SIGPIPE.
 */
int fdpass_send(int sock, const void *p, size_t n, const int *fds, size_t nfds)
    __attribute__((warn_unused_result));

/*
 * One recvmsg: up to cap bytes into p (*got), descriptors into fds (*nfds,
 * received close-on-exec). Descriptors beyond maxfds, or arriving when none
 * were expected, are closed, never leaked. 0 / -errno; *got == 0 is EOF.
 */
int fdpass_recv(int sock, void *p, size_t cap, size_t *got, int *fds, size_t maxfds, size_t *nfds)
    __attribute__((warn_unused_result));

#endif
