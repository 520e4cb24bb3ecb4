/* SPDX-License-Identifier: Apache-2.0 */
#include "mcp/upstream.h"
#include "common/err.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/jsonrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UPSTREAM_START_MS    30000 /* spawn to initialized (npx may download first) */
#define UPSTREAM_BACKOFF0    1000
#define UPSTREAM_BACKOFF_MAX 30000
#define UPSTREAM_TRIP        3     /* crashes ... */
#define UPSTREAM_WINDOW_MS   60000 /* ... within this long open the circuit ... */
#define UPSTREAM_OPEN_MS     30000 /* ... for this long */

extern char **environ;

void upstream_init(struct upstream *u, const char *cmd, const char *prefix, const char *log_path)
{
        memset(u, 0, sizeof(*u));
        u->cmd = strdup(cmd);
        u->log_path = strdup(log_path);
        snprintf(u->prefix, sizeof(u->prefix), "%s", prefix);
        u->pid = -1;
        u->to_fd = u->from_fd = -1;
        u->next_id = 1;
        u->backoff_ms = UPSTREAM_BACKOFF0;
        pthread_mutex_init(&u->lock, NULL);
        pthread_mutex_init(&u->wlock, NULL);
        pthread_cond_init(&u->cv, NULL);
}

/*
 * One message to the upstream, whole. A dead upstream's pipe raises SIGPIPE
 * at the writing thread; it is blocked there and taken back here, so it is
 * never read as a request to stop (mcp_server.c's signalfd).
 */
static int upstream_write(struct upstream *u, json_t *msg)
{
        static const struct timespec zero = {0, 0};
        sigset_t pipe_set;
        int r;

        pthread_mutex_lock(&u->wlock);
        r = u->to_fd >= 0 ? jsonrpc_write(u->to_fd, msg) : (json_decref(msg), -EPIPE);
        pthread_mutex_unlock(&u->wlock);
        if (r == -EPIPE) {
                sigemptyset(&pipe_set);
                sigaddset(&pipe_set, SIGPIPE);
                (void)sigtimedwait(&pipe_set, NULL, &zero);
        }
        return r;
}

/*
 * A reply over the message limit was dropped: find `"id":N` near its end
 * (where the TypeScript SDK and most others write it) and give that caller
 * an error instead of a wait until its timeout.
 */
static void oversized(struct upstream *u, const char *tail, size_t n)
{
        uint64_t id = 0;
        int found = 0;

        for (size_t i = n; i-- > 0 && !found;) {
                if (i + 5 <= n && memcmp(tail + i, "\"id\":", 5) == 0) {
                        size_t j = i + 5;

                        while (j < n && tail[j] == ' ')
                                j++;
                        for (; j < n && tail[j] >= '0' && tail[j] <= '9'; j++, found = 1)
                                id = id * 10 + (uint64_t)(tail[j] - '0');
                }
        }
        if (!found) {
                log_warn("upstream %s sent a message over 4 MiB; dropped", u->prefix);
                return;
        }
        pthread_mutex_lock(&u->lock);
        for (int i = 0; i < UPSTREAM_MAX_PENDING; i++)
                if (u->pend[i].id == id && u->pend[i].reply == NULL) {
                        u->pend[i].reply = json_pack(
                            "{s:s, s:I, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", (json_int_t)id,
                            "error", "code", JSONRPC_INTERNAL_ERROR, "message",
                            "its reply was larger than 4 MiB and was dropped by the gateway");
                        pthread_cond_broadcast(&u->cv);
                }
        pthread_mutex_unlock(&u->lock);
}

/* The reader: responses to their waiters, pings answered, the rest ignored; EOF is death. */
static void *reader(void *arg)
{
        struct upstream *u = arg;
        struct jsonrpc_reader rd;
        char *line;
        size_t len;
        int r;

        jsonrpc_reader_init(&rd, u->from_fd);
        for (;;) {
                r = jsonrpc_reader_next(&rd, &line, &len);
                if (r == 0) {
                        r = jsonrpc_reader_fill(&rd);
                        if (r < 0 && r != -ENODATA)
                                break;
                        if (r == -ENODATA && rd.len == 0)
                                break;
                        continue;
                }
                if (r == -E2BIG)
                        continue; /* bounded: an oversized message is dropped... */
                if (r == -EMSGSIZE) {
                        /* ...but its caller is told, when its id can be seen at the end. */
                        oversized(u, rd.tail, rd.tail_len);
                        continue;
                }
                if (r < 0)
                        break;
                int code;
                const char *why;
                json_t *m = jsonrpc_parse(line, len, &code, &why), *id;

                if (m == NULL)
                        continue;
                id = json_object_get(m, "id");
                if (json_object_get(m, "method") != NULL) {
                        /* A request to us: only ping is ours to answer. */
                        if (id != NULL) {
                                const char *method =
                                    json_string_value(json_object_get(m, "method"));

                                if (method && strcmp(method, "ping") == 0)
                                        (void)upstream_write(u, jsonrpc_result(id, json_object()));
                                else
                                        (void)upstream_write(
                                            u, jsonrpc_error(id, JSONRPC_METHOD_NOT_FOUND,
                                                             "not supported by the gateway", NULL));
                        }
                        json_decref(m);
                        continue;
                }
                pthread_mutex_lock(&u->lock);
                for (int i = 0; json_is_integer(id) && i < UPSTREAM_MAX_PENDING; i++)
                        if (u->pend[i].id != 0 &&
                            u->pend[i].id == (uint64_t)json_integer_value(id) &&
                            u->pend[i].reply == NULL) {
                                u->pend[i].reply = json_incref(m);
                                pthread_cond_broadcast(&u->cv);
                        }
                pthread_mutex_unlock(&u->lock);
                json_decref(m);
        }
        jsonrpc_reader_free(&rd);
        pthread_mutex_lock(&u->lock);
        u->alive = 0;
        u->died_ms = mono_ms();
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->lock);
        return NULL;
}

/* Reap a dead or stopped process and its reader; count a crash. Caller holds no lock. */
static void upstream_reap(struct upstream *u, int crashed)
{
        int st, to, from;

        if (u->pid > 0) {
                /* Its own session: the group is /bin/sh and whatever it started (npx, node). */
                kill(-u->pid, SIGTERM);
                for (int i = 0; i < 20 && waitpid(u->pid, &st, WNOHANG) == 0; i++)
                        usleep(50000);
                kill(-u->pid, SIGKILL);
                if (waitpid(u->pid, &st, WNOHANG) == 0)
                        waitpid(u->pid, &st, 0);
        }
        /* Writers look at to_fd under wlock: it is never closed under them. */
        pthread_mutex_lock(&u->wlock);
        to = u->to_fd;
        u->to_fd = -1;
        pthread_mutex_unlock(&u->wlock);
        if (to >= 0)
                close(to);
        if (u->reader_running)
                pthread_join(u->reader, NULL);
        pthread_mutex_lock(&u->lock);
        from = u->from_fd;
        u->from_fd = -1;
        u->pid = -1;
        u->reader_running = 0;
        pthread_mutex_unlock(&u->lock);
        if (from >= 0)
                close(from);
        if (crashed) {
                uint64_t now = u->died_ms ? u->died_ms : mono_ms();

                if (u->crashes == 0 || now - u->first_crash_ms > UPSTREAM_WINDOW_MS) {
                        u->crashes = 0;
                        u->first_crash_ms = now;
                }
                u->crashes++;
                u->next_start_ms = now + u->backoff_ms;
                u->backoff_ms = u->backoff_ms * 2 > UPSTREAM_BACKOFF_MAX ? UPSTREAM_BACKOFF_MAX
                                                                         : u->backoff_ms * 2;
                if (u->crashes >= UPSTREAM_TRIP) {
                        u->open_until_ms = now + UPSTREAM_OPEN_MS;
                        log_warn("upstream %s failed %u times in a minute: not called for %d s",
                                 u->prefix, u->crashes, UPSTREAM_OPEN_MS / 1000);
                }
        }
}

static int spawn(struct upstream *u, struct lg_err **err)
{
        int in[2], out[2], r;
        posix_spawn_file_actions_t fa;
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", u->cmd, NULL};

        if (pipe2(in, O_CLOEXEC) < 0)
                return err_set(err, LG_EK_START, errno, "pipe");
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(in[0]);
                close(in[1]);
                return err_set(err, LG_EK_START, errno, "pipe");
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, u->log_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0600);
        /* Its own session: our signals are not its, and its whole group can be killed. */
        posix_spawnattr_t at;
        sigset_t none;

        posix_spawnattr_init(&at);
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
        r = posix_spawn(&u->pid, "/bin/sh", &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        close(in[0]);
        close(out[1]);
        if (r != 0) {
                close(in[1]);
                close(out[0]);
                u->pid = -1;
                return err_set(err, LG_EK_START, r, "start upstream %s", u->prefix);
        }
        pthread_mutex_lock(&u->lock);
        u->to_fd = in[1];
        u->from_fd = out[0];
        u->alive = 1; /* until the reader sees it die: set before the reader can */
        pthread_mutex_unlock(&u->lock);
        if (pthread_create(&u->reader, NULL, reader, u) != 0) {
                u->alive = 0;
                upstream_reap(u, 0);
                return err_set(err, LG_EK_START, EAGAIN, "upstream reader");
        }
        u->reader_running = 1;
        return 0;
}

int upstream_ensure(struct upstream *u, struct lg_err **err)
{
        uint64_t now = mono_ms();
        json_t *res;
        int r;

        pthread_mutex_lock(&u->lock);
        for (;;) {
                if (u->alive && u->ready) {
                        pthread_mutex_unlock(&u->lock);
                        return 0;
                }
                if (!u->starting)
                        break;
                pthread_cond_wait(&u->cv, &u->lock); /* someone else starts it */
        }
        u->starting = 1;
        u->ready = 0; /* nobody calls it until it is initialized again */
        int dead = u->pid > 0;
        pthread_mutex_unlock(&u->lock);

        /* A death is counted first: it decides the backoff and the breaker below. */
        if (dead) {
                log_warn("upstream %s died", u->prefix);
                upstream_reap(u, 1);
        }
        now = mono_ms();
        r = 0;
        if (now < u->open_until_ms)
                r = err_set(err, LG_EK_LOST, 0,
                            "upstream %s keeps failing: not called for another %llu s", u->prefix,
                            (unsigned long long)((u->open_until_ms - now) / 1000 + 1));
        else if (now < u->next_start_ms)
                r = err_set(err, LG_EK_LOST, 0, "upstream %s failed; restarting in %llu ms",
                            u->prefix, (unsigned long long)(u->next_start_ms - now));
        if (r < 0) {
                pthread_mutex_lock(&u->lock);
                u->starting = 0;
                pthread_cond_broadcast(&u->cv);
                pthread_mutex_unlock(&u->lock);
                return r;
        }
        /* The last good tool list stays (calls still route here) until a start succeeds. */
        r = spawn(u, err);
        if (r == 0) {
                res = upstream_request(u, "initialize",
                                       json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion",
                                                 "2025-06-18", "capabilities", "clientInfo", "name",
                                                 "luminaguard-gateway", "version", LG_VERSION),
                                       UPSTREAM_START_MS, -1, err);
                r = res ? 0 : -EIO;
                if (res != NULL)
                        snprintf(u->server_name, sizeof(u->server_name), "%s",
                                 json_string_value(
                                     json_object_get(json_object_get(res, "serverInfo"), "name"))
                                     ?: "");
                json_decref(res);
        }
        if (r == 0) {
                pthread_mutex_lock(&u->lock);
                r = upstream_write(u, jsonrpc_notification("notifications/initialized", NULL));
                pthread_mutex_unlock(&u->lock);
                if (r < 0)
                        r = err_set(err, LG_EK_LOST, -r, "upstream %s", u->prefix);
        }
        /* Every page of its tools. */
        json_t *all = json_array(), *cursor = NULL;

        for (int page = 0; r == 0 && page < 100; page++) {
                json_t *params = cursor ? json_pack("{s:O}", "cursor", cursor) : json_object();

                res = upstream_request(u, "tools/list", params, UPSTREAM_START_MS, -1, err);
                if (res == NULL || !json_is_array(json_object_get(res, "tools"))) {
                        json_decref(res);
                        r = *err ? err_code(*err)
                                 : err_set(err, LG_EK_LOST, EPROTO, "upstream %s: bad tools/list",
                                           u->prefix);
                        break;
                }
                json_array_extend(all, json_object_get(res, "tools"));
                json_decref(cursor);
                cursor = json_incref(json_object_get(res, "nextCursor"));
                json_decref(res);
                if (!json_is_string(cursor))
                        break;
        }
        json_decref(cursor);
        if (r < 0) {
                json_decref(all);
                upstream_reap(u, 1);
        }
        pthread_mutex_lock(&u->lock);
        if (r == 0) {
                json_decref(u->tools); /* readers hold the lock while they look at it */
                u->tools = all;
                u->backoff_ms = UPSTREAM_BACKOFF0;
                u->ready = 1;
        }
        u->starting = 0;
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->lock);
        if (r < 0)
                return err_wrap(err, "upstream %s (%s)", u->prefix, u->cmd);
        return 0;
}

json_t *upstream_request(struct upstream *u, const char *method, json_t *params, int timeout_ms,
                         int intr_fd, struct lg_err **err)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms, id;
        json_t *reply = NULL, *res = NULL, *msg;
        int slot = -1, r;

        pthread_mutex_lock(&u->lock);
        for (int i = 0; i < UPSTREAM_MAX_PENDING && slot < 0; i++)
                if (u->pend[i].id == 0)
                        slot = i;
        if (slot < 0 || !u->alive) {
                pthread_mutex_unlock(&u->lock);
                json_decref(params);
                err_set(err, LG_EK_LOST, 0, "upstream %s is %s", u->prefix,
                        slot < 0 ? "busy with too many calls" : "not running");
                return NULL;
        }
        id = u->next_id++;
        u->pend[slot].id = id;
        pthread_mutex_unlock(&u->lock);
        /* Written without the state lock: a full pipe must not stop the reader delivering. */
        msg = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t)id, "method",
                        method, "params", params ? params : json_object());
        r = upstream_write(u, msg);
        pthread_mutex_lock(&u->lock);
        while (r == 0 && u->pend[slot].reply == NULL && u->alive) {
                struct timespec ts;
                struct pollfd p = {.fd = intr_fd, .events = POLLIN};

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 200 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&u->cv, &u->lock, &ts);
                if (u->pend[slot].reply != NULL)
                        break;
                if (intr_fd >= 0 && poll(&p, 1, 0) == 1) {
                        pthread_mutex_unlock(&u->lock);
                        (void)upstream_write(
                            u, jsonrpc_notification("notifications/cancelled",
                                                    json_pack("{s:I, s:s}", "requestId",
                                                              (json_int_t)id, "reason",
                                                              "cancelled by the client")));
                        pthread_mutex_lock(&u->lock);
                        r = -ECANCELED;
                } else if (mono_ms() >= deadline) {
                        r = -ETIMEDOUT;
                }
        }
        reply = u->pend[slot].reply;
        u->pend[slot].reply = NULL;
        u->pend[slot].id = 0;
        pthread_mutex_unlock(&u->lock);
        if (reply == NULL) {
                err_set(err, r == -ECANCELED ? LG_EK_INTERRUPTED : LG_EK_LOST,
                        r == -ETIMEDOUT ? ETIMEDOUT : 0, "upstream %s %s", u->prefix,
                        r == -ECANCELED   ? "call cancelled"
                        : r == -ETIMEDOUT ? "did not answer in time"
                        : r < 0           ? "could not be written to"
                                          : "died during the call");
                return NULL;
        }
        res = json_incref(json_object_get(reply, "result"));
        if (res == NULL) {
                const char *m =
                    json_string_value(json_object_get(json_object_get(reply, "error"), "message"));

                err_set(err, LG_EK_USAGE, 0, "upstream %s: %.300s", u->prefix, m ? m : "error");
        }
        json_decref(reply);
        return res;
}

void upstream_stop(struct upstream *u)
{
        pthread_mutex_lock(&u->lock);
        u->alive = 0;
        pthread_mutex_unlock(&u->lock);
        upstream_reap(u, 0);
}

void upstream_free(struct upstream *u)
{
        upstream_stop(u);
        json_decref(u->tools);
        free(u->log_path);
        pthread_mutex_destroy(&u->wlock);
        for (int i = 0; i < UPSTREAM_MAX_PENDING; i++)
                json_decref(u->pend[i].reply);
        free(u->cmd);
        pthread_cond_destroy(&u->cv);
        pthread_mutex_destroy(&u->lock);
}
