/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The MCP server's protocol half: lifecycle (initialize and version
 * negotiation), ping, tools/list with pagination, tools/call on worker
 * threads with cancellation and progress, logging/setLevel. One struct
 * mcp_conn per client; the transports (mcp_stdio.c, mcp_http.c) feed it.
 */
#include "mcp/mcp_proto.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/jsonrpc.h"
#include "mcp/mcp.h"
#include "mcp/mcp_sessions.h"
#include "mcp/mcp_tools.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Newest first: what we answer when the client asks for a version we do not know. */
static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

static const char *const levels[] = {"debug", "info",     "notice", "warning",
                                     "error", "critical", "alert",  "emergency"};

struct mcp_call {
        struct mcp_conn *conn;
        struct mcp_out *out; /* where its progress and its answer go (held) */
        json_t *id;          /* the request's id */
        json_t *name;        /* tool name (string) */
        json_t *args;        /* arguments (object) */
        json_t *progress;    /* the client's progress token, or NULL */
        int cancel_fd;       /* eventfd: written by notifications/cancelled */
        int cancelled;
        int done;
        uint64_t started_ms;
        pthread_t thread;
};

struct mcp_conn {
        struct mcp_shared *sh;
        pthread_mutex_t lock; /* calls[], state; held while a message is sent */
        struct mcp_call *calls[MCP_MAX_CALLS];
        int initialized;
        char version[16];
        int log_level; /* index into levels[]; messages at or above it are sent */
        struct mcp_sessions sessions;
};

int mcp_version_known(const char *v)
{
        for (size_t i = 0; v != NULL && i < sizeof(versions) / sizeof(versions[0]); i++)
                if (strcmp(v, versions[i]) == 0)
                        return 1;
        return 0;
}

static void out_hold(struct mcp_out *o)
{
        if (o != NULL && o->hold != NULL)
                o->hold(o);
}

static void out_release(struct mcp_out *o)
{
        if (o != NULL && o->release != NULL)
                o->release(o);
}

static void send_msg(struct mcp_conn *c, struct mcp_out *out, json_t *msg)
{
        pthread_mutex_lock(&c->lock);
        out->send(out, msg);
        pthread_mutex_unlock(&c->lock);
}

static void send_error(struct mcp_conn *c, struct mcp_out *out, json_t *id, int code,
                       const char *message)
{
        send_msg(c, out, jsonrpc_error(id, code, message, NULL));
}

/* A log message to the client, if it asked for this level (logging/setLevel). */
static void client_log(struct mcp_conn *c, struct mcp_out *out, int level, const char *text)
{
        pthread_mutex_lock(&c->lock);
        if (level >= c->log_level)
                out->send(out,
                          jsonrpc_notification("notifications/message",
                                               json_pack("{s:s, s:s, s:s}", "level", levels[level],
                                                         "logger", "luminaguard", "data", text)));
        pthread_mutex_unlock(&c->lock);
}

struct mcp_conn *mcp_conn_new(struct mcp_shared *sh)
{
        struct mcp_conn *c = calloc(1, sizeof(*c));
        const struct mcp_opts *o = sh->o;

        if (c == NULL)
                return NULL;
        c->sh = sh;
        c->log_level = 1;
        pthread_mutex_init(&c->lock, NULL);
        mcp_sessions_init(&c->sessions, o->home, o->session_ttl_ms);
        c->sessions.roots = o->workspace_roots;
        c->sessions.n_roots = o->n_roots;
        c->sessions.approve = (enum approve_mode)o->approve;
        c->sessions.approve_timeout_ms = o->approve_timeout_ms;
        return c;
}

void mcp_conn_send(struct mcp_conn *c, struct mcp_out *out, json_t *msg)
{
        send_msg(c, out, msg);
}

unsigned mcp_conn_sandboxes(struct mcp_conn *c)
{
        return mcp_sessions_count(&c->sessions);
}

int mcp_conn_initialized(struct mcp_conn *c)
{
        int r;

        pthread_mutex_lock(&c->lock);
        r = c->initialized;
        pthread_mutex_unlock(&c->lock);
        return r;
}

const char *mcp_conn_version(struct mcp_conn *c)
{
        return c->version; /* written once, by initialize, before anyone asks */
}

static json_t *initialize(struct mcp_conn *c, json_t *params)
{
        const char *want = json_string_value(json_object_get(params, "protocolVersion"));
        const char *v = mcp_version_known(want) ? want : versions[0];

        pthread_mutex_lock(&c->lock);
        snprintf(c->version, sizeof(c->version), "%s", v);
        c->initialized = 1;
        pthread_mutex_unlock(&c->lock);
        return json_pack("{s:s, s:{s:{s:b}, s:{}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion", v,
                         "capabilities", "tools", "listChanged", 0, "logging", "serverInfo", "name",
                         "luminaguard", "title", "LuminaGuard", "version", LG_VERSION,
                         "instructions",
                         "Every tool runs in a throwaway micro-VM: nothing a command does "
                         "survives it, and it cannot reach the host or the network.");
}

/* tools/list: the cursor is the index of the next tool, as a decimal string. */
static void tools_list(struct mcp_conn *c, struct mcp_out *out, json_t *id, json_t *params)
{
        json_t *all = mcp_tools_list(), *page = json_array(), *res;
        unsigned psize = c->sh->o->page_size;

        gateway_list(&c->sh->gw, all);
        const char *cursor = json_string_value(json_object_get(params, "cursor"));
        size_t start = 0, n = json_array_size(all), size = psize ? psize : n;
        char *end = NULL, next[32];

        if (json_object_get(params, "cursor") != NULL) {
                unsigned long v = cursor ? strtoul(cursor, &end, 10) : 0;

                if (cursor == NULL || end == cursor || *end != '\0' || v == 0 || v >= n) {
                        json_decref(all);
                        json_decref(page);
                        send_error(c, out, id, JSONRPC_INVALID_PARAMS, "invalid cursor");
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
        send_msg(c, out, jsonrpc_result(id, res));
}

static void call_free(struct mcp_call *k)
{
        out_release(k->out);
        json_decref(k->id);
        json_decref(k->name);
        json_decref(k->args);
        json_decref(k->progress);
        if (k->cancel_fd >= 0)
                close(k->cancel_fd);
        free(k);
}

static void *call_worker(void *arg)
{
        struct mcp_call *k = arg;
        struct mcp_conn *c = k->conn;
        struct gateway *gw = &c->sh->gw;
        const char *name = json_string_value(k->name);
        json_t *result;

        client_log(c, k->out, 0, name);
        if (gateway_has(gw, name))
                result = gateway_call(gw, name, k->args, k->cancel_fd);
        else
                result = mcp_tool_call(c->sh->o->home, c->sh->o->default_image, &c->sessions, name,
                                       k->args, k->cancel_fd);
        pthread_mutex_lock(&c->lock);
        /* A cancelled request gets no answer (the client has forgotten it), only an end. */
        if (k->cancelled) {
                json_decref(result);
                if (k->out->end != NULL)
                        k->out->end(k->out);
        } else if (result == NULL)
                k->out->send(k->out, jsonrpc_error(k->id, JSONRPC_INTERNAL_ERROR,
                                                   "the result could not be built", NULL));
        else
                k->out->send(k->out, jsonrpc_result(k->id, result));
        k->done = 1;
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* Join the calls that are done. */
static void reap_calls(struct mcp_conn *c)
{
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                struct mcp_call *k;

                pthread_mutex_lock(&c->lock);
                k = c->calls[i];
                if (k != NULL && k->done)
                        c->calls[i] = NULL;
                else
                        k = NULL;
                pthread_mutex_unlock(&c->lock);
                if (k != NULL) {
                        pthread_join(k->thread, NULL);
                        call_free(k);
                }
        }
}

static void tools_call(struct mcp_conn *c, struct mcp_out *out, json_t *id, json_t *params)
{
        json_t *name = json_object_get(params, "name"),
               *args = json_object_get(params, "arguments");
        json_t *meta = json_object_get(params, "_meta");
        struct mcp_call *k;
        int slot = -1;

        if (!json_is_string(name) || (args != NULL && !json_is_object(args))) {
                send_error(c, out, id, JSONRPC_INVALID_PARAMS,
                           "tools/call needs a tool name and an arguments object");
                return;
        }
        if (!mcp_tool_exists(json_string_value(name)) &&
            !gateway_has(&c->sh->gw, json_string_value(name))) {
                send_error(c, out, id, JSONRPC_INVALID_PARAMS, "unknown tool");
                return;
        }
        /* A call answered a moment ago frees its slot now, not at the next tick. */
        reap_calls(c);
        k = calloc(1, sizeof(*k));
        if (k == NULL) {
                send_error(c, out, id, JSONRPC_INTERNAL_ERROR, "out of memory");
                return;
        }
        k->conn = c;
        k->id = json_incref(id);
        k->name = json_incref(name);
        k->args = args ? json_incref(args) : json_object();
        k->progress = json_object_get(meta, "progressToken");
        /* A token is a string or an integer; anything else is not one. */
        k->progress = json_is_string(k->progress) || json_is_integer(k->progress)
                          ? json_incref(k->progress)
                          : NULL;
        k->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        k->started_ms = mono_ms();
        if (k->cancel_fd < 0) {
                call_free(k);
                send_error(c, out, id, JSONRPC_INTERNAL_ERROR, "cannot start the call");
                return;
        }
        out_hold(out);
        k->out = out;
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < MCP_MAX_CALLS && slot != -2; i++) {
                if (c->calls[i] == NULL) {
                        if (slot < 0)
                                slot = i;
                } else if (!c->calls[i]->done && json_equal(c->calls[i]->id, id)) {
                        slot = -2; /* ids must be unique among requests in flight */
                }
        }
        if (slot == -2)
                out->send(out, jsonrpc_error(id, JSONRPC_INVALID_REQUEST,
                                             "a request with this id is running", NULL));
        else if (slot < 0)
                out->send(out, jsonrpc_error(id, JSONRPC_INTERNAL_ERROR,
                                             "too many tool calls at once; wait for one to finish",
                                             NULL));
        else if (pthread_create(&k->thread, NULL, call_worker, k) != 0)
                out->send(out,
                          jsonrpc_error(id, JSONRPC_INTERNAL_ERROR, "cannot start the call", NULL));
        else
                c->calls[slot] = k, k = NULL;
        pthread_mutex_unlock(&c->lock);
        if (k != NULL)
                call_free(k);
}

void mcp_conn_cancel(struct mcp_conn *c, json_t *id)
{
        uint64_t one = 1;

        pthread_mutex_lock(&c->lock);
        for (int i = 0; id != NULL && i < MCP_MAX_CALLS; i++) {
                struct mcp_call *k = c->calls[i];

                if (k != NULL && !k->done && json_equal(k->id, id)) {
                        k->cancelled = 1;
                        if (write(k->cancel_fd, &one, sizeof(one)) < 0)
                                log_debug("mcp: cancel: %s", strerror(errno));
                }
        }
        pthread_mutex_unlock(&c->lock);
}

static void set_level(struct mcp_conn *c, struct mcp_out *out, json_t *id, json_t *params)
{
        const char *l = json_string_value(json_object_get(params, "level"));

        for (int i = 0; l != NULL && i < (int)(sizeof(levels) / sizeof(levels[0])); i++)
                if (strcmp(l, levels[i]) == 0) {
                        pthread_mutex_lock(&c->lock);
                        c->log_level = i;
                        out->send(out, jsonrpc_result(id, json_object()));
                        pthread_mutex_unlock(&c->lock);
                        return;
                }
        send_error(c, out, id, JSONRPC_INVALID_PARAMS, "unknown log level");
}

void mcp_conn_handle(struct mcp_conn *c, json_t *msg, struct mcp_out *out)
{
        json_t *id = json_object_get(msg, "id"), *params = json_object_get(msg, "params");
        const char *method = json_string_value(json_object_get(msg, "method"));
        int initialized = mcp_conn_initialized(c);

        if (method == NULL) {
                /* A response to us (we send no requests) or garbage with an id. */
                if (json_object_get(msg, "result") == NULL && json_object_get(msg, "error") == NULL)
                        send_error(c, out, jsonrpc_id_valid(id) ? id : NULL,
                                   JSONRPC_INVALID_REQUEST, "a request needs a method");
                return;
        }
        if (params != NULL && !json_is_object(params)) {
                if (id != NULL)
                        send_error(c, out, jsonrpc_id_valid(id) ? id : NULL, JSONRPC_INVALID_PARAMS,
                                   "params must be an object");
                return;
        }
        if (id == NULL) { /* a notification: never answered */
                if (strcmp(method, "notifications/cancelled") == 0)
                        mcp_conn_cancel(c, json_object_get(params, "requestId"));
                return;
        }
        if (!jsonrpc_id_valid(id)) {
                send_error(c, out, NULL, JSONRPC_INVALID_REQUEST,
                           "the id must be a string or an integer");
                return;
        }
        /* The lifecycle: initialize once, first; ping is always allowed. */
        if (strcmp(method, "initialize") == 0 && initialized) {
                send_error(c, out, id, JSONRPC_INVALID_REQUEST, "already initialized");
                return;
        }
        if (!initialized && strcmp(method, "initialize") != 0 && strcmp(method, "ping") != 0) {
                send_error(c, out, id, JSONRPC_INVALID_REQUEST,
                           "not initialized: send initialize first");
                return;
        }
        if (strcmp(method, "initialize") == 0)
                send_msg(c, out, jsonrpc_result(id, initialize(c, params)));
        else if (strcmp(method, "ping") == 0)
                send_msg(c, out, jsonrpc_result(id, json_object()));
        else if (strcmp(method, "tools/list") == 0)
                tools_list(c, out, id, params);
        else if (strcmp(method, "tools/call") == 0)
                tools_call(c, out, id, params);
        else if (strcmp(method, "logging/setLevel") == 0)
                set_level(c, out, id, params);
        else
                /* server/discover (the stateless revision) included: we speak initialize. */
                send_error(c, out, id, JSONRPC_METHOD_NOT_FOUND, "method not found");
}

/* Progress for calls that asked, and idle session sandboxes expired. */
void mcp_conn_tick(struct mcp_conn *c)
{
        reap_calls(c);
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                struct mcp_call *k = c->calls[i];

                if (k == NULL || k->done || k->cancelled || k->progress == NULL)
                        continue;
                double secs = (double)(mono_ms() - k->started_ms) / 1000.0;
                char msg[64];

                snprintf(msg, sizeof(msg), "running for %.0f s", secs);
                k->out->send(k->out, jsonrpc_notification(
                                         "notifications/progress",
                                         json_pack("{s:O, s:f, s:s}", "progressToken", k->progress,
                                                   "progress", secs, "message", msg)));
        }
        pthread_mutex_unlock(&c->lock);
        mcp_sessions_expire(&c->sessions);
}

int mcp_conn_busy(struct mcp_conn *c, int cancel)
{
        int busy = 0;

        reap_calls(c);
        pthread_mutex_lock(&c->lock);
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                uint64_t one = 1;
                struct mcp_call *k = c->calls[i];

                if (k == NULL || k->done)
                        continue;
                busy++;
                if (cancel && !k->cancelled) {
                        k->cancelled = 1;
                        if (write(k->cancel_fd, &one, sizeof(one)) < 0)
                                log_debug("mcp: cancel: %s", strerror(errno));
                }
        }
        pthread_mutex_unlock(&c->lock);
        return busy;
}

void mcp_conn_free(struct mcp_conn *c)
{
        if (c == NULL)
                return;
        (void)mcp_conn_busy(c, 1);
        for (int i = 0; i < MCP_MAX_CALLS; i++) {
                if (c->calls[i] != NULL) {
                        pthread_join(c->calls[i]->thread, NULL);
                        call_free(c->calls[i]);
                        c->calls[i] = NULL;
                }
        }
        /* Every session sandbox goes with its client: destroyed and verified. */
        mcp_sessions_free(&c->sessions);
        pthread_mutex_destroy(&c->lock);
        free(c);
}
