/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MCP server's protocol half: lifecycle (initialize and version
 * negotiation), ping, tools/list with pagination, tools/call on worker
 * threads with cancellation and progress, logging/setLevel. Transport:
 * newline-delimited JSON-RPC on two descriptors (stdio).
 */
#include "mcp/mcp.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/jsonrpc.h"
#include "mcp/gateway.h"
#include "mcp/upstream.h"
#include "mcp/mcp_sessions.h"
#include "mcp/mcp_tools.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* Newest first: what we answer when the client asks for a version we do not know. */
static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

struct mcp_call {
        struct mcp_server *srv;
        json_t *id;       /* the request's id */
        json_t *name;     /* tool name (string) */
        json_t *args;     /* arguments (object) */
        json_t *progress; /* the client's progress token, or NULL */
        int cancel_fd;    /* eventfd: written by notifications/cancelled */
        int cancelled;
        int done;
        pthread_t thread;
};

struct mcp_server {
        const struct mcp_opts *o;
        pthread_mutex_t lock; /* output, calls[], state */
        struct mcp_call *calls[MCP_MAX_CALLS];
        int initialized;
        char version[16];
        int log_level; /* index into levels[]; messages at or above it are sent */
        struct mcp_sessions sessions;
        struct gateway gw;
};

static const char *const levels[] = {"debug", "info",     "notice", "warning",
                                     "error", "critical", "alert",  "emergency"};

/* One line out, whole: every writer holds the lock. */
static void send_locked(struct mcp_server *s, json_t *msg)
{
        if (jsonrpc_write(s->o->out_fd, msg) < 0)
                log_debug("mcp: the client's end of stdout is gone");
}

static void send_msg(struct mcp_server *s, json_t *msg)
{
        pthread_mutex_lock(&s->lock);
        send_locked(s, msg);
        pthread_mutex_unlock(&s->lock);
}

static void send_error(struct mcp_server *s, json_t *id, int code, const char *message)
{
        send_msg(s, jsonrpc_error(id, code, message, NULL));
}

/* A log message to the client, if it asked for this level (logging/setLevel). */
static void client_log(struct mcp_server *s, int level, const char *text)
{
        int wanted;

        pthread_mutex_lock(&s->lock);
        wanted = level >= s->log_level;
        pthread_mutex_unlock(&s->lock);
        if (!wanted)
                return;
        send_msg(s, jsonrpc_notification("notifications/message",
                                         json_pack("{s:s, s:s, s:s}", "level", levels[level],
                                                   "logger", "luminaguard", "data", text)));
}

static json_t *initialize(struct mcp_server *s, json_t *params)
{
        const char *want = json_string_value(json_object_get(params, "protocolVersion"));
        const char *v = versions[0];

        for (size_t i = 0; want != NULL && i < sizeof(versions) / sizeof(versions[0]); i++)
                if (strcmp(want, versions[i]) == 0)
                        v = versions[i];
        snprintf(s->version, sizeof(s->version), "%s", v);
        s->initialized = 1;
        return json_pack("{s:s, s:{s:{s:b}, s:{}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion", v,
                         "capabilities", "tools", "listChanged", 0, "logging", "serverInfo", "name",
                         "luminaguard", "title", "LuminaGuard", "version", LG_VERSION,
                         "instructions",
                         "Every tool runs in a throwaway micro-VM: nothing a command does "
                         "survives it, and it cannot reach the host or the network.");
}

/* tools/list: the cursor is the index of the next tool, as a decimal string. */
static void tools_list(struct mcp_server *s, json_t *id, json_t *params)
{
        json_t *all = mcp_tools_list(), *page = json_array(), *res;

        gateway_list(&s->gw, all);
        const char *cursor = json_string_value(json_object_get(params, "cursor"));
        size_t start = 0, n = json_array_size(all), size = s->o->page_size ? s->o->page_size : n;
        char *end = NULL, next[32];

        if (json_object_get(params, "cursor") != NULL) {
                unsigned long v = cursor ? strtoul(cursor, &end, 10) : 0;

                if (cursor == NULL || end == cursor || *end != '\0' || v == 0 || v >= n) {
                        json_decref(all);
                        json_decref(page);
                        send_error(s, id, JSONRPC_INVALID_PARAMS, "invalid cursor");
                        return;
                }
                start = v;
        }
        for (size_t i = start; i < n && i < start + size; i++)
                json_array_append(page, json_array_get(all, i));
        res = json_pack("{s:o}", "tools", page);
        if (start + size < n) {
                snprintf(next, sizeof(next), "%zu", start + size);
                json_object_set_new(res, "nextCursor", json_string(next));
        }
        json_decref(all);
        send_msg(s, jsonrpc_result(id, res));
}

/* While a call runs and the client gave a token: elapsed seconds, every second. */
static void *call_worker(void *arg);

static void call_free(struct mcp_call *c)
{
        json_decref(c->id);
        json_decref(c->name);
        json_decref(c->args);
        json_decref(c->progress);
        close(c->cancel_fd);
        free(c);
}

static void *call_worker(void *arg)
{
        struct mcp_call *c = arg;
        struct mcp_server *s = c->srv;
        json_t *result;

        client_log(s, 0, json_string_value(c->name));
        if (gateway_has(&s->gw, json_string_value(c->name)))
                result = gateway_call(&s->gw, json_string_value(c->name), c->args, c->cancel_fd);
        else
                result = mcp_tool_call(s->o->home, &s->sessions, json_string_value(c->name),
                                       c->args, c->cancel_fd);
        pthread_mutex_lock(&s->lock);
        /* A cancelled request gets no answer (the client has forgotten it). */
        if (c->cancelled)
                json_decref(result);
        else if (result == NULL)
                send_locked(s, jsonrpc_error(c->id, JSONRPC_INTERNAL_ERROR,
                                             "the result could not be built", NULL));
        else
                send_locked(s, jsonrpc_result(c->id, result));
        c->done = 1;
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* Progress for calls that asked: sent from the main loop once a second. */
static void progress_tick(struct mcp_server *s, uint64_t started_ms[])
{
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                struct mcp_call *c = s->calls[i];

                if (c == NULL || c->done || c->cancelled || c->progress == NULL)
                        continue;
                double secs = (double)(mono_ms() - started_ms[i]) / 1000.0;
                char msg[64];

                snprintf(msg, sizeof(msg), "running for %.0f s", secs);
                send_locked(s, jsonrpc_notification("notifications/progress",
                                                    json_pack("{s:O, s:f, s:s}", "progressToken",
                                                              c->progress, "progress", secs,
                                                              "message", msg)));
        }
        pthread_mutex_unlock(&s->lock);
}

/* Join the calls that are done. */
static void reap_calls(struct mcp_server *s)
{
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                struct mcp_call *c;

                pthread_mutex_lock(&s->lock);
                c = s->calls[i];
                if (c != NULL && c->done)
                        s->calls[i] = NULL;
                else
                        c = NULL;
                pthread_mutex_unlock(&s->lock);
                if (c != NULL) {
                        pthread_join(c->thread, NULL);
                        call_free(c);
                }
        }
}

static void tools_call(struct mcp_server *s, json_t *id, json_t *params, uint64_t started_ms[])
{
        json_t *name = json_object_get(params, "name"),
               *args = json_object_get(params, "arguments");
        json_t *meta = json_object_get(params, "_meta");
        struct mcp_call *c;
        int slot = -1;

        if (!json_is_string(name) || (args != NULL && !json_is_object(args))) {
                send_error(s, id, JSONRPC_INVALID_PARAMS,
                           "tools/call needs a tool name and an arguments object");
                return;
        }
        if (!mcp_tool_exists(json_string_value(name)) &&
            !gateway_has(&s->gw, json_string_value(name))) {
                send_error(s, id, JSONRPC_INVALID_PARAMS, "unknown tool");
                return;
        }
        /* A call answered a moment ago frees its slot now, not at the next loop pass. */
        reap_calls(s);
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < MCP_MAX_CALLS && slot != -2; i++) {
                if (s->calls[i] == NULL) {
                        if (slot < 0)
                                slot = i;
                } else if (!s->calls[i]->done && json_equal(s->calls[i]->id, id)) {
                        slot = -2; /* ids must be unique among requests in flight */
                }
        }
        pthread_mutex_unlock(&s->lock);
        if (slot == -2) {
                send_error(s, id, JSONRPC_INVALID_REQUEST, "a request with this id is running");
                return;
        }
        if (slot < 0) {
                send_error(s, id, JSONRPC_INTERNAL_ERROR,
                           "too many tool calls at once; wait for one to finish");
                return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
                send_error(s, id, JSONRPC_INTERNAL_ERROR, "out of memory");
                return;
        }
        c->srv = s;
        c->id = json_incref(id);
        c->name = json_incref(name);
        c->args = args ? json_incref(args) : json_object();
        c->progress = json_object_get(meta, "progressToken");
        /* A token is a string or an integer; anything else is not one. */
        c->progress = json_is_string(c->progress) || json_is_integer(c->progress)
                          ? json_incref(c->progress)
                          : NULL;
        c->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        started_ms[slot] = mono_ms();
        pthread_mutex_lock(&s->lock);
        s->calls[slot] = c;
        pthread_mutex_unlock(&s->lock);
        if (c->cancel_fd < 0 || pthread_create(&c->thread, NULL, call_worker, c) != 0) {
                pthread_mutex_lock(&s->lock);
                s->calls[slot] = NULL;
                pthread_mutex_unlock(&s->lock);
                send_error(s, id, JSONRPC_INTERNAL_ERROR, "cannot start the call");
                call_free(c);
        }
}

/* notifications/cancelled: the running call with that id is stopped and never answered. */
static void cancel(struct mcp_server *s, json_t *params)
{
        json_t *rid = json_object_get(params, "requestId");
        uint64_t one = 1;

        pthread_mutex_lock(&s->lock);
        for (int i = 0; rid != NULL && i < MCP_MAX_CALLS; i++) {
                struct mcp_call *c = s->calls[i];

                if (c != NULL && !c->done && json_equal(c->id, rid)) {
                        c->cancelled = 1;
                        if (write(c->cancel_fd, &one, sizeof(one)) < 0)
                                log_debug("mcp: cancel: %s", strerror(errno));
                }
        }
        pthread_mutex_unlock(&s->lock);
}

static void set_level(struct mcp_server *s, json_t *id, json_t *params)
{
        const char *l = json_string_value(json_object_get(params, "level"));

        for (int i = 0; l != NULL && i < (int)(sizeof(levels) / sizeof(levels[0])); i++)
                if (strcmp(l, levels[i]) == 0) {
                        pthread_mutex_lock(&s->lock);
                        s->log_level = i;
                        pthread_mutex_unlock(&s->lock);
                        send_msg(s, jsonrpc_result(id, json_object()));
                        return;
                }
        send_error(s, id, JSONRPC_INVALID_PARAMS, "unknown log level");
}

static void dispatch(struct mcp_server *s, json_t *msg, uint64_t started_ms[])
{
        json_t *id = json_object_get(msg, "id"), *params = json_object_get(msg, "params");
        const char *method = json_string_value(json_object_get(msg, "method"));

        if (method == NULL) {
                /* A response to us (we send no requests) or garbage with an id. */
                if (json_object_get(msg, "result") == NULL && json_object_get(msg, "error") == NULL)
                        send_error(s, jsonrpc_id_valid(id) ? id : NULL, JSONRPC_INVALID_REQUEST,
                                   "a request needs a method");
                return;
        }
        if (params != NULL && !json_is_object(params)) {
                if (id != NULL)
                        send_error(s, jsonrpc_id_valid(id) ? id : NULL, JSONRPC_INVALID_PARAMS,
                                   "params must be an object");
                return;
        }
        if (id == NULL) { /* a notification: never answered */
                if (strcmp(method, "notifications/cancelled") == 0)
                        cancel(s, params);
                return;
        }
        if (!jsonrpc_id_valid(id)) {
                send_error(s, NULL, JSONRPC_INVALID_REQUEST,
                           "the id must be a string or an integer");
                return;
        }
        /* The lifecycle: initialize once, first; ping is always allowed. */
        if (strcmp(method, "initialize") == 0 && s->initialized) {
                send_error(s, id, JSONRPC_INVALID_REQUEST, "already initialized");
                return;
        }
        if (!s->initialized && strcmp(method, "initialize") != 0 && strcmp(method, "ping") != 0) {
                send_error(s, id, JSONRPC_INVALID_REQUEST,
                           "not initialized: send initialize first");
                return;
        }
        if (strcmp(method, "initialize") == 0)
                send_msg(s, jsonrpc_result(id, initialize(s, params)));
        else if (strcmp(method, "ping") == 0)
                send_msg(s, jsonrpc_result(id, json_object()));
        else if (strcmp(method, "tools/list") == 0)
                tools_list(s, id, params);
        else if (strcmp(method, "tools/call") == 0)
                tools_call(s, id, params, started_ms);
        else if (strcmp(method, "logging/setLevel") == 0)
                set_level(s, id, params);
        else
                /* server/discover (the stateless revision) included: we speak initialize. */
                send_error(s, id, JSONRPC_METHOD_NOT_FOUND, "method not found");
}

int mcp_serve(const struct mcp_opts *o, struct lg_err **err)
{
        struct mcp_server s = {.o = o, .log_level = 1};
        struct jsonrpc_reader rd;
        uint64_t started_ms[MCP_MAX_CALLS] = {0}, last_tick = mono_ms();
        sigset_t set;
        int sfd, r = 0;

        /* Blocked here, so every worker inherits it: only this loop sees them. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
            (sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "signalfd");
        /* Responses are written whole: a non-blocking stdout would cut lines at EAGAIN. */
        (void)fd_set_nonblock(o->out_fd, 0);
        pthread_mutex_init(&s.lock, NULL);
        mcp_sessions_init(&s.sessions, o->home, o->session_ttl_ms);
        s.sessions.roots = o->workspace_roots; /* owned by the sessions from here */
        s.sessions.n_roots = o->n_roots;
        s.sessions.approve = (enum approve_mode)o->approve;
        s.sessions.approve_timeout_ms = o->approve_timeout_ms;
        s.gw.ctx = (struct approve_ctx){.home = o->home,
                                        .policy = o->policy,
                                        .mode = (enum approve_mode)o->approve,
                                        .timeout_ms = (int)o->approve_timeout_ms,
                                        .intr_fd = -1};
        for (size_t i = 0; i < o->n_upstreams; i++) {
                if (gateway_add(&s.gw, o->upstreams[i], err) < 0) {
                        gateway_free(&s.gw);
                        mcp_sessions_free(&s.sessions);
                        pthread_mutex_destroy(&s.lock);
                        close(sfd);
                        return -1;
                }
                log_info("mcp: upstream %s: %zu tools", s.gw.up[i]->prefix,
                         json_array_size(s.gw.up[i]->tools));
        }
        jsonrpc_reader_init(&rd, o->in_fd);
        for (;;) {
                struct pollfd p[2] = {{.fd = o->in_fd, .events = POLLIN},
                                      {.fd = sfd, .events = POLLIN}};
                char *line;
                size_t len;
                int code;
                const char *why;

                while ((r = jsonrpc_reader_next(&rd, &line, &len)) != 0) {
                        json_t *msg;

                        if (r == -ENODATA)
                                break;
                        if (r == -E2BIG) {
                                send_error(&s, NULL, JSONRPC_INVALID_REQUEST,
                                           "message larger than 4 MiB");
                                continue;
                        }
                        if (r == -EMSGSIZE)
                                continue; /* the end of that message: already answered */
                        if (r < 0)
                                break;
                        if (len == 0)
                                continue;
                        msg = jsonrpc_parse(line, len, &code, &why);
                        if (msg == NULL) {
                                send_error(&s, NULL, code, why);
                                continue;
                        }
                        dispatch(&s, msg, started_ms);
                        json_decref(msg);
                }
                reap_calls(&s);
                if (r == -ENODATA || (r < 0 && r != -E2BIG && r != -EMSGSIZE))
                        break;
                if (poll(p, 2, 250) < 0 && errno != EINTR)
                        break;
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof(si)) < 0)
                                log_debug("mcp: signalfd: %s", strerror(errno));
                        r = -EINTR; /* cancel what runs, below */
                        break;
                }
                if (p[0].revents & POLLNVAL)
                        break; /* stdin was never open */
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = jsonrpc_reader_fill(&rd);
                        if (r < 0 && r != -ENODATA)
                                break;
                }
                if (mono_ms() - last_tick >= 1000) {
                        last_tick = mono_ms();
                        progress_tick(&s, started_ms);
                        mcp_sessions_expire(&s.sessions);
                }
        }
        /*
         * Input is over (or a signal came): running calls are answered when
         * input simply ended — `printf ... | luminaguard mcp` gets its results —
         * and cancelled on a signal, which also cuts the wait short.
         */
        for (int stop = r != -ENODATA;;) {
                /* A client that closed its end of stdout cannot be answered: stop too. */
                struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                                      {.fd = o->out_fd, .events = 0}};
                struct signalfd_siginfo si;
                int busy = 0;

                pthread_mutex_lock(&s.lock);
                for (int i = 0; i < MCP_MAX_CALLS; i++) {
                        uint64_t one = 1;
                        struct mcp_call *c = s.calls[i];

                        if (c == NULL || c->done)
                                continue;
                        busy = 1;
                        if (stop && !c->cancelled) {
                                c->cancelled = 1;
                                if (write(c->cancel_fd, &one, sizeof(one)) < 0)
                                        log_debug("mcp: cancel: %s", strerror(errno));
                        }
                }
                pthread_mutex_unlock(&s.lock);
                reap_calls(&s);
                if (!busy)
                        break;
                if (poll(p, 2, 250) <= 0)
                        continue;
                if (p[1].revents & (POLLERR | POLLHUP))
                        stop = 1;
                if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
                        /*
                         * A second signal while the first one's cancellations run: go
                         * now. Our VMMs die with us (PR_SET_PDEATHSIG); the next run
                         * collects their run directories and cgroups.
                         */
                        if (stop)
                                _exit(128 + (int)si.ssi_signo);
                        stop = 1;
                }
        }
        reap_calls(&s);
        /* Every session sandbox goes with the server: destroyed and verified. */
        mcp_sessions_free(&s.sessions);
        gateway_free(&s.gw);
        jsonrpc_reader_free(&rd);
        pthread_mutex_destroy(&s.lock);
        close(sfd);
        return 0;
}
