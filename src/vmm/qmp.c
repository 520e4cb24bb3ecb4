/* SPDX-License-Identifier: Apache-2.0 */
#include "vmm/qmp.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/fdio.h"
#include "common/fdpass.h"
#include "common/monotime.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct qmp {
        int fd;
        struct buf in;
};

/* Read one newline-terminated JSON message before the deadline. */
static int qmp_read_msg(struct qmp *q, uint64_t deadline, json_t **out)
{
        for (;;) {
                /* An empty buffer may have no storage yet: memchr(NULL, ...) is undefined. */
                uint8_t *nl =
                    buf_size(&q->in) ? memchr(buf_head(&q->in), '\n', buf_size(&q->in)) : NULL;

                if (nl != NULL) {
                        size_t n = (size_t)(nl - buf_head(&q->in)) + 1;
                        json_error_t jerr;
                        json_t *j = json_loadb((const char *)buf_head(&q->in), n, 0, &jerr);

                        buf_consume(&q->in, n);
                        if (j == NULL || !json_is_object(j)) {
                                json_decref(j);
                                return -EPROTO;
                        }
                        *out = j;
                        return 0;
                }
                struct pollfd p = {.fd = q->fd, .events = POLLIN};
                int r = poll(&p, 1, mono_left_ms(deadline));

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                r = buf_reserve(&q->in, 4096);
                if (r < 0)
                        return r == -ENOBUFS ? -EMSGSIZE : r;
                ssize_t got = read(q->fd, buf_tail(&q->in), 4096);
                if (got < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                if (got == 0)
                        return -ECONNRESET;
                buf_commit(&q->in, (size_t)got);
        }
}

/* Wait for a reply, skipping any events that arrive first. */
static int qmp_read_reply(struct qmp *q, uint64_t deadline, json_t **out)
{
        for (;;) {
                json_t *j = NULL;
                int r = qmp_read_msg(q, deadline, &j);
                json_t *ev;

                if (r < 0)
                        return r;
                ev = json_object_get(j, "event");
                if (json_is_string(ev)) {
                        json_decref(j);
                        continue;
                }
                *out = j;
                return 0;
        }
}

static int qmp_send(struct qmp *q, const char *cmd, json_t *args, int fd)
{
        json_t *msg = json_pack("{s:s}", "execute", cmd);
        _cleanup_free_ char *text = NULL;
        int r;

        if (msg == NULL)
                return -ENOMEM;
        if (args != NULL && json_object_set(msg, "arguments", args) < 0) {
                json_decref(msg);
                return -ENOMEM;
        }
        text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        if (text == NULL)
                return -ENOMEM;
        r = fd >= 0 ? fdpass_send(q->fd, text, strlen(text), &fd, 1)
                    : fd_write_all(q->fd, text, strlen(text));
        if (r == 0)
                r = fd_write_all(q->fd, "\n", 1);
        return r;
}

static int qmp_run(struct qmp *q, const char *cmd, json_t *args, int fd, json_t **ret,
                   int timeout_ms, char *errbuf, size_t errsz)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
        json_t *reply = NULL, *v;
        int r;

        if (errbuf != NULL && errsz > 0)
                errbuf[0] = '\0';
        r = qmp_send(q, cmd, args, fd);
        if (r < 0)
                return r;
        r = qmp_read_reply(q, deadline, &reply);
        if (r < 0)
                return r;
        v = json_object_get(reply, "return");
        if (v != NULL) {
                if (ret != NULL)
                        *ret = json_incref(v);
                json_decref(reply);
                return 0;
        }
        v = json_object_get(json_object_get(reply, "error"), "desc");
        if (errbuf != NULL && errsz > 0)
                snprintf(errbuf, errsz, "%s", json_is_string(v) ? json_string_value(v) : "?");
        json_decref(reply);
        return v != NULL ? -EREMOTEIO : -EPROTO;
}

int qmp_execute(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
                char *errbuf, size_t errsz)
{
        return qmp_run(q, cmd, args, -1, ret, timeout_ms, errbuf, errsz);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
                   char *errbuf, size_t errsz)
{
        return qmp_run(q, cmd, args, fd, NULL, timeout_ms, errbuf, errsz);
}

int qmp_open(int fd, int timeout_ms, struct qmp **out)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
        struct qmp *q;
        json_t *greeting = NULL;
        int r;

        q = calloc(1, sizeof(*q));
        if (q == NULL) {
                close(fd);
                return -ENOMEM;
        }
        q->fd = fd;
        q->in.limit = QMP_MAX_LINE;
        r = qmp_read_msg(q, deadline, &greeting);
        if (r == 0 && json_object_get(greeting, "QMP") == NULL)
                r = -EPROTO;
        json_decref(greeting);
        if (r == 0)
                r = qmp_execute(q, "qmp_capabilities", NULL, NULL, mono_left_ms(deadline), NULL, 0);
        if (r < 0) {
                qmp_close(q);
                return r;
        }
        *out = q;
        return 0;
}

void qmp_close(struct qmp *q)
{
        if (q == NULL)
                return;
        if (q->fd >= 0)
                close(q->fd);
        buf_free(&q->in);
        free(q);
}
