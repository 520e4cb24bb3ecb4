/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small QMP (QEMU Machine Protocol) client over an already-connected
 * stream socket. QMP is newline-delimited JSON: a greeting, then
 * {"execute": ...} commands answered by {"return": ...} or {"error": ...},
 * with asynchronous {"event": ...} messages interleaved at any time.
 *
 * Trust: QEMU runs on behalf of a guest we do not trust, so replies are
 * bounded (QMP_MAX_LINE) and parsed with jansson, never by hand.
 */
#ifndef LG_VMM_QMP_H
#define LG_VMM_QMP_H

#include <jansson.h>

#define QMP_MAX_LINE (1u << 20)

struct qmp;

/*
 * Take ownership of fd, read the greeting and negotiate capabilities, all
 * within timeout_ms. 0 / -errno (-ETIMEDOUT, -EPROTO, -ECONNRESET).
 */
int qmp_open(int fd, int timeout_ms, struct qmp **out) __attribute__((warn_unused_result));

/*
 * Run one command. args is borrowed (may be NULL). On success *ret (if not
 * NULL) receives a new reference to the "return" value. On a QMP error,
 * returns -EREMOTEIO and copies its "desc" into errbuf. Events received
 * meanwhile are skipped.
 */
int qmp_execute(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
                char *errbuf, size_t errsz) __attribute__((warn_unused_result));

/* As qmp_execute(), passing fd along with the command (SCM_RIGHTS), e.g. for "getfd". */
int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
                   char *errbuf, size_t errsz) __attribute__((warn_unused_result));

/* Close the socket and free. NULL is fine. */
void qmp_close(struct qmp *q);

#endif
