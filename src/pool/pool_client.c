/* SPDX-License-Identifier: Apache-2.0 */
/* Client side of the pool socket (pool.h): what `run` and `pool status` use. */
#include "pool/pool.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/fdpass.h"
#include "common/monotime.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int pool_socket_path(const char *home, char *out, size_t outsz)
{
        int n = snprintf(out, outsz, "%s/%s", home, POOL_SOCKET);

        return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static int pool_connect(const char *home)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd, r;

        r = pool_socket_path(home, sa.sun_path, sizeof(sa.sun_path));
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/*
 * Send one request line, read one reply line (with any descriptors it
 * carries). Bounded: POOL_CALL_TIMEOUT_MS in all, and intr_fd (>= 0) becoming
 * readable ends the wait with -EINTR, so a wedged pool never hangs `run`.
 */
static int pool_call(int fd, json_t *req, int intr_fd, json_t **reply, int *fds, size_t maxfds,
                     size_t *nfds)
{
        uint64_t deadline = mono_ms() + POOL_CALL_TIMEOUT_MS;
        _cleanup_free_ char *text = json_dumps(req, JSON_COMPACT);
        _cleanup_free_ char *line = malloc(POOL_MAX_REPLY + 1);
        size_t have = 0, got, n = 0;
        int r;

        *nfds = 0;
        if (text == NULL || line == NULL)
                return -ENOMEM;
        r = fd_write_all(fd, text, strlen(text));
        if (r == 0)
                r = fd_write_all(fd, "\n", 1);
        if (r < 0)
                return r;
        while (have == 0 || memchr(line, '\n', have) == NULL) {
                struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                                      {.fd = intr_fd, .events = POLLIN}};
                int left = mono_left_ms(deadline);

                if (have == POOL_MAX_REPLY)
                        return -EMSGSIZE;
                if (left == 0)
                        return -ETIMEDOUT;
                if (poll(p, 2, left) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents & POLLIN)
                        return -EINTR;
                if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                r = fdpass_recv(fd, line + have, POOL_MAX_REPLY - have, &got, fds + *nfds,
                                maxfds - *nfds, &n);
                *nfds += n;
                if (r < 0)
                        return r;
                if (got == 0)
                        return -ECONNRESET;
                have += got;
        }
        line[have] = '\0';
        *reply = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
        return *reply != NULL && json_is_object(*reply) ? 0 : -EPROTO;
}

int pool_acquire(const char *home, const struct pool_request *rq, int intr_fd, struct pool_lease *l,
                 struct lg_err **err)
{
        int fds[FDPASS_MAX], conn, r;
        json_t *req, *reply = NULL;
        size_t nfds = 0;

        memset(l, 0, sizeof(*l));
        l->conn = l->agent_fd = l->pidfd = -1;
        conn = pool_connect(home);
        if (conn < 0)
                return conn; /* no pool: not an error the user needs to see */
        req = json_pack("{s:s,s:s,s:s,s:I,s:i,s:s}", "op", "acquire", "image", rq->image,
                        "image_key", rq->image_key, "memory_mib", (json_int_t)rq->memory_mib,
                        "cpus", (int)rq->cpus, "backend", rq->backend);
        r = req ? pool_call(conn, req, intr_fd, &reply, fds, FDPASS_MAX, &nfds) : -ENOMEM;
        json_decref(req);
        if (r == 0 && !json_is_true(json_object_get(reply, "ok"))) {
                const char *why = json_string_value(json_object_get(reply, "error"));

                r = json_is_true(json_object_get(reply, "shape_mismatch"))
                        ? -EMEDIUMTYPE
                        : err_set(err, LG_EK_START, 0, "the pool could not serve: %s",
                                  why ? why : "no reason given");
        } else if (r == 0 && nfds != 2) {
                r = err_set(err, LG_EK_START, EPROTO, "the pool sent %zu descriptors, not 2", nfds);
        } else if (r == -EINTR) {
                r = err_set(err, LG_EK_INTERRUPTED, 0, "interrupted while waiting for the pool");
        } else if (r < 0) {
                r = err_set(err, LG_EK_START, -r, "talk to the pool");
        }
        if (r < 0) {
                for (size_t i = 0; i < nfds; i++)
                        close(fds[i]);
                json_decref(reply);
                close(conn);
                return r;
        }
        l->conn = conn;
        l->agent_fd = fds[0];
        l->pidfd = fds[1];
        snprintf(l->id, sizeof(l->id), "%s",
                 json_string_value(json_object_get(reply, "id")) ?: "?");
        l->hit = json_is_true(json_object_get(reply, "hit"));
        l->wait_ms = json_number_value(json_object_get(reply, "wait_ms"));
        json_decref(reply);
        return 0;
}

void pool_release(struct pool_lease *l)
{
        if (l->agent_fd >= 0)
                close(l->agent_fd);
        if (l->pidfd >= 0)
                close(l->pidfd);
        if (l->conn >= 0)
                close(l->conn); /* the pool sees EOF and destroys the sandbox */
        l->conn = l->agent_fd = l->pidfd = -1;
}

int pool_status(const char *home, char **json, struct lg_err **err)
{
        _cleanup_fd_ int conn = pool_connect(home);
        json_t *req, *reply = NULL;
        size_t nfds;
        int fds[1], r;

        if (conn < 0)
                return err_set(err, LG_EK_START, -conn,
                               "no pool is running (start one with "
                               "'luminaguard pool serve')");
        req = json_pack("{s:s}", "op", "status");
        r = req ? pool_call(conn, req, -1, &reply, fds, 0, &nfds) : -ENOMEM;
        json_decref(req);
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "ask the pool for its status");
        *json = json_dumps(reply, JSON_INDENT(2));
        json_decref(reply);
        return *json ? 0 : err_set(err, LG_EK_INTERNAL, ENOMEM, "status");
}
