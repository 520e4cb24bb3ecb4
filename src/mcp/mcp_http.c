/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Streamable HTTP transport (MCP 2025-03-26 and later) on
 * libmicrohttpd, one thread per connection, one endpoint (/mcp):
 *   POST   a JSON-RPC message. A request is answered with one JSON body,
 *          or, when the answer comes later (tools/call), with an SSE stream
 *          carrying its progress and logs and ending with the answer.
 *          Notifications and responses get 202.
 *   GET    an SSE stream for what belongs to no request.
 *   DELETE the end of the session: its calls cancelled, its sandboxes gone.
 * initialize opens a session (Mcp-Session-Id); every other request names
 * it. Access is checked first (http_guard.h). A stream the client drops
 * before its answer cancels the call: there is no resuming, so nobody
 * could ever read the answer.
 */
#include "common/err.h"
#include "common/log.h"
#include "common/monotime.h"
#include "mcp/http_guard.h"
#include "mcp/jsonrpc.h"
#include "mcp/mcp.h"
#include "mcp/mcp_proto.h"
#include "mcp/mcp_sessions.h"
#include "mcp/mcp_transport.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#define HTTP_MAX_SESSIONS    16 /* MCP sessions, each with its own calls and sandboxes */
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_KEEPALIVE_MS    15000 /* an SSE comment this often keeps proxies and timers quiet */
#define HTTP_ENDPOINT        "/mcp"

struct http_session {
        char id[33]; /* 16 random bytes in hex: unguessable, so a session is its own secret */
        struct mcp_conn *conn;
        struct http_stream *get; /* the open GET stream, or NULL */
        int refs;                /* requests and streams using it (srv->lock) */
        int closed;              /* DELETEd, expired or shut down: freed once refs are 0 */
        uint64_t last_ms;        /* the client's last request */
};

struct http_server {
        struct mcp_shared *sh;
        struct MHD_Daemon *d;
        pthread_mutex_t lock; /* s[] and every session's refs, closed, get */
        struct http_session *s[HTTP_MAX_SESSIONS];
        char token[HTTP_TOKEN_LEN + 1];
        unsigned port;
        int stop_fd; /* eventfd, written once at shutdown: every stream ends */
        int stopping;
};

/* One response stream: an SSE body fed by mcp_out sends. */
struct http_stream {
        struct mcp_out out;
        pthread_mutex_t lock;
        int refs;
        json_t *queue;  /* messages not yet written */
        json_t *req_id; /* POST: the request whose answer ends the stream; NULL: the GET stream */
        int final;      /* that answer is queued (or the GET stream is to end) */
        int gone;       /* the HTTP side is done: messages are dropped */
        int efd;        /* eventfd: something was queued */
        int sock;       /* the client's socket, to notice it hang up */
        struct http_server *srv;
        struct http_session *sess; /* held */
        char *pending;             /* formatted bytes not yet handed to MHD */
        size_t plen, poff;
};

struct http_req {
        char *body;
        size_t len;
        int too_big;
        int answered; /* a response went out on the first call */
};

static void session_put(struct http_server *srv, struct http_session *s)
{
        pthread_mutex_lock(&srv->lock);
        s->refs--;
        pthread_mutex_unlock(&srv->lock);
}

/* The open session with this id, held; NULL if none. */
static struct http_session *session_find(struct http_server *srv, const char *id)
{
        struct http_session *found = NULL;

        pthread_mutex_lock(&srv->lock);
        for (int i = 0; id != NULL && i < HTTP_MAX_SESSIONS; i++)
                if (srv->s[i] != NULL && !srv->s[i]->closed && strcmp(srv->s[i]->id, id) == 0) {
                        found = srv->s[i];
                        found->refs++;
                        found->last_ms = mono_ms();
                }
        pthread_mutex_unlock(&srv->lock);
        return found;
}

/* ---- streams ---- */

static void stream_hold(struct mcp_out *o)
{
        struct http_stream *st = (struct http_stream *)o;

        pthread_mutex_lock(&st->lock);
        st->refs++;
        pthread_mutex_unlock(&st->lock);
}

static void stream_release(struct mcp_out *o)
{
        struct http_stream *st = (struct http_stream *)o;
        int last;

        pthread_mutex_lock(&st->lock);
        last = --st->refs == 0;
        pthread_mutex_unlock(&st->lock);
        if (!last)
                return;
        session_put(st->srv, st->sess);
        json_decref(st->queue);
        json_decref(st->req_id);
        close(st->efd);
        free(st->pending);
        pthread_mutex_destroy(&st->lock);
        free(st);
}

static void stream_wake(struct http_stream *st)
{
        uint64_t one = 1;

        if (write(st->efd, &one, sizeof(one)) < 0)
                log_debug("mcp: http: wake: %s", strerror(errno));
}

static void stream_send(struct mcp_out *o, json_t *msg)
{
        struct http_stream *st = (struct http_stream *)o;
        int answer = json_object_get(msg, "method") == NULL;

        pthread_mutex_lock(&st->lock);
        if (st->gone || st->final) {
                json_decref(msg);
        } else {
                /* The answer to our request, or an error for a request without a usable id. */
                if (answer && st->req_id != NULL &&
                    (json_equal(json_object_get(msg, "id"), st->req_id) ||
                     json_is_null(json_object_get(msg, "id"))))
                        st->final = 1;
                json_array_append_new(st->queue, msg);
        }
        pthread_mutex_unlock(&st->lock);
        stream_wake(st);
}

/* Its call was cancelled: no answer will come, so the stream ends. */
static void stream_end(struct mcp_out *o)
{
        struct http_stream *st = (struct http_stream *)o;

        pthread_mutex_lock(&st->lock);
        st->final = 1;
        pthread_mutex_unlock(&st->lock);
        stream_wake(st);
}

/* A new stream (one reference) for sess (held by the stream from here). */
static struct http_stream *stream_new(struct http_server *srv, struct http_session *sess,
                                      json_t *req_id)
{
        struct http_stream *st = calloc(1, sizeof(*st));

        if (st == NULL)
                return NULL;
        st->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        st->queue = json_array();
        if (st->efd < 0 || st->queue == NULL) {
                if (st->efd >= 0)
                        close(st->efd);
                json_decref(st->queue);
                free(st);
                return NULL;
        }
        st->out = (struct mcp_out){
            .send = stream_send, .hold = stream_hold, .release = stream_release, .end = stream_end};
        pthread_mutex_init(&st->lock, NULL);
        st->refs = 1;
        st->req_id = req_id ? json_incref(req_id) : NULL;
        st->sock = -1;
        st->srv = srv;
        st->sess = sess;
        pthread_mutex_lock(&srv->lock);
        sess->refs++;
        pthread_mutex_unlock(&srv->lock);
        return st;
}

/* The next SSE event into st->pending: 1, or 0 when nothing is queued. */
static int stream_next_event(struct http_stream *st)
{
        json_t *msg;
        char *text;
        int n;

        pthread_mutex_lock(&st->lock);
        msg = json_array_size(st->queue) > 0 ? json_incref(json_array_get(st->queue, 0)) : NULL;
        if (msg != NULL)
                json_array_remove(st->queue, 0);
        pthread_mutex_unlock(&st->lock);
        if (msg == NULL)
                return 0;
        /* Compact JSON has no raw newline (strings escape theirs): one data line. */
        text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        free(st->pending);
        st->pending = NULL;
        st->plen = st->poff = 0;
        if (text == NULL)
                return 1;
        n = asprintf(&st->pending, "event: message\ndata: %s\n\n", text);
        free(text);
        if (n < 0)
                st->pending = NULL; /* undefined after a failure */
        st->plen = n > 0 ? (size_t)n : 0;
        return 1;
}

/* MHD asks for body bytes: block until there are some (one thread per connection). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct http_stream *st = cls;

        (void)pos;
        for (;;) {
                struct pollfd p[3] = {{.fd = st->efd, .events = POLLIN},
                                      {.fd = st->srv->stop_fd, .events = POLLIN},
                                      {.fd = st->sock, .events = POLLRDHUP}};
                uint64_t v;
                int fin, r;

                if (st->poff < st->plen) {
                        size_t n = st->plen - st->poff < max ? st->plen - st->poff : max;

                        memcpy(buf, st->pending + st->poff, n);
                        st->poff += n;
                        return (ssize_t)n;
                }
                if (stream_next_event(st))
                        continue;
                pthread_mutex_lock(&st->lock);
                fin = st->final;
                pthread_mutex_unlock(&st->lock);
                if (fin)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                r = poll(p, 3, HTTP_KEEPALIVE_MS);
                if (r < 0 && errno != EINTR)
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                if (p[1].revents & POLLIN)
                        return MHD_CONTENT_READER_END_OF_STREAM; /* the server stops */
                if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR))
                        return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left */
                if (p[0].revents & POLLIN) {
                        if (read(st->efd, &v, sizeof(v)) < 0)
                                log_debug("mcp: http: %s", strerror(errno));
                } else if (r == 0) {
                        free(st->pending);
                        st->pending = strdup(": keepalive\n\n");
                        st->plen = st->pending ? strlen(st->pending) : 0;
                        st->poff = 0;
                }
        }
}

/* MHD is done with the stream (sent whole, or the client went away). */
static void stream_done(void *cls)
{
        struct http_stream *st = cls;
        struct http_session *sess = st->sess;
        struct http_server *srv = st->srv;
        int answered;

        pthread_mutex_lock(&st->lock);
        st->gone = 1;
        answered = st->final;
        pthread_mutex_unlock(&st->lock);
        if (st->req_id != NULL && !answered) {
                log_info("mcp: http: session %.8s: the client left before the answer to its "
                         "request; the call is cancelled",
                         sess->id);
                mcp_conn_cancel(sess->conn, st->req_id);
        }
        pthread_mutex_lock(&srv->lock);
        if (sess->get == st)
                sess->get = NULL;
        pthread_mutex_unlock(&srv->lock);
        stream_release(&st->out);
}

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *mc, unsigned status, const char *type,
                             const char *body, const char *session_id)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(
            body ? strlen(body) : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
        enum MHD_Result ret;

        if (r == NULL)
                return MHD_NO;
        if (type != NULL)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (session_id != NULL)
                MHD_add_response_header(r, "Mcp-Session-Id", session_id);
        if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        "Bearer realm=\"luminaguard\"");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, POST, DELETE");
        ret = MHD_queue_response(mc, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *mc, unsigned status, json_t *msg,
                                  const char *session_id)
{
        char *text = json_dumps(msg, JSON_COMPACT);
        enum MHD_Result ret;

        json_decref(msg);
        if (text == NULL)
                return MHD_NO;
        ret = reply(mc, status, "application/json", text, session_id);
        free(text);
        return ret;
}

/* An HTTP-level refusal, with a JSON-RPC error body saying why. */
static enum MHD_Result refuse(struct MHD_Connection *mc, unsigned status, int code, const char *why)
{
        return reply_json(mc, status, jsonrpc_error(NULL, code, why, NULL), NULL);
}

static enum MHD_Result reply_stream(struct MHD_Connection *mc, struct http_stream *st,
                                    const char *session_id)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct MHD_Response *r;
        enum MHD_Result ret;

        st->sock = ci ? ci->connect_fd : -1;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                              stream_done);
        if (r == NULL) {
                stream_done(st);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        if (session_id != NULL)
                MHD_add_response_header(r, "Mcp-Session-Id", session_id);
        ret = MHD_queue_response(mc, MHD_HTTP_OK, r);
        MHD_destroy_response(r); /* the stream is released by stream_done */
        return ret;
}

/* ---- sessions ---- */

/*
 * The table is full. Clients often never DELETE their session (a CLI that
 * exits, an agent that restarts): the one idle longest, with no request,
 * stream, call or sandbox of its own, loses nothing by going. Its slot is
 * freed here; if no session is that idle, there is none to give.
 */
static int session_evict(struct http_server *srv)
{
        struct http_session *victim = NULL;
        int slot = -1;

        pthread_mutex_lock(&srv->lock);
        for (int i = 0; i < HTTP_MAX_SESSIONS; i++) {
                struct http_session *s = srv->s[i];

                /* No refs: no request, no stream, so no call (each holds its stream). */
                if (s != NULL && !s->closed && s->refs == 0 &&
                    (victim == NULL || s->last_ms < victim->last_ms) &&
                    mcp_conn_sandboxes(s->conn) == 0) {
                        victim = s;
                        slot = i;
                }
        }
        if (victim != NULL) {
                victim->closed = 1;
                srv->s[slot] = NULL;
        }
        pthread_mutex_unlock(&srv->lock);
        if (victim == NULL)
                return 0;
        log_info("mcp: http: session %.8s ends: the oldest idle one, and a new client needs "
                 "its place",
                 victim->id);
        mcp_conn_free(victim->conn);
        free(victim);
        return 1;
}

static struct http_session *session_open(struct http_server *srv)
{
        struct http_session *s = calloc(1, sizeof(*s));
        unsigned char rnd[16];
        int slot = -1;

        if (s == NULL || getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                free(s);
                return NULL;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
        s->conn = mcp_conn_new(srv->sh);
        if (s->conn == NULL) {
                free(s);
                return NULL;
        }
        s->refs = 1;
        s->last_ms = mono_ms();
        for (int tries = 0; tries < 2 && slot < 0; tries++) {
                if (tries == 1 && !session_evict(srv))
                        break;
                pthread_mutex_lock(&srv->lock);
                for (int i = 0; i < HTTP_MAX_SESSIONS && slot < 0 && !srv->stopping; i++)
                        if (srv->s[i] == NULL)
                                slot = i;
                if (slot >= 0)
                        srv->s[slot] = s;
                pthread_mutex_unlock(&srv->lock);
        }
        if (slot < 0) {
                mcp_conn_free(s->conn);
                free(s);
                return NULL;
        }
        return s;
}

/*
 * Under srv->lock: no more requests. Its GET stream, held (s->get is only
 * a pointer, and MHD may finish the stream as soon as the lock is dropped),
 * into *get for session_wind_down to end. 1 if the session was open.
 */
static int session_mark_closed(struct http_session *s, struct http_stream **get)
{
        if (s->closed)
                return 0;
        s->closed = 1;
        *get = s->get;
        s->get = NULL;
        if (*get != NULL)
                stream_hold(&(*get)->out);
        return 1;
}

/* After session_mark_closed: its GET stream ends and its calls are cancelled. */
static void session_wind_down(struct http_session *s, struct http_stream *get, const char *why)
{
        log_info("mcp: http: session %.8s ends: %s", s->id, why);
        if (get != NULL) {
                pthread_mutex_lock(&get->lock);
                get->final = 1;
                pthread_mutex_unlock(&get->lock);
                stream_wake(get);
                stream_release(&get->out);
        }
        (void)mcp_conn_busy(s->conn, 1);
}

/* No more requests: its GET stream ends and its calls are cancelled. Freed by the sweep. */
static void session_close(struct http_server *srv, struct http_session *s, const char *why)
{
        struct http_stream *get = NULL;
        int now;

        pthread_mutex_lock(&srv->lock);
        now = session_mark_closed(s, &get);
        pthread_mutex_unlock(&srv->lock);
        if (now)
                session_wind_down(s, get, why);
}

/*
 * Once a second: progress and expiry in every session; closed ones whose
 * streams are gone are freed here, never from inside one of their own calls.
 */
static void sessions_tick(struct http_server *srv, int all)
{
        struct http_session *held[HTTP_MAX_SESSIONS], *dead[HTTP_MAX_SESSIONS];
        uint64_t ttl = srv->sh->o->session_ttl_ms ? srv->sh->o->session_ttl_ms : MCP_SESSION_TTL_MS;
        int nd = 0;

        pthread_mutex_lock(&srv->lock);
        for (int i = 0; i < HTTP_MAX_SESSIONS; i++)
                if ((held[i] = srv->s[i]) != NULL)
                        held[i]->refs++;
        pthread_mutex_unlock(&srv->lock);
        for (int i = 0; i < HTTP_MAX_SESSIONS; i++) {
                struct http_session *s = held[i];
                struct http_stream *get = NULL;
                int idle;

                if (s == NULL)
                        continue;
                if (s->closed || all) {
                        session_close(srv, s, "the server stops");
                        (void)mcp_conn_busy(s->conn, 1); /* joins what ended, frees its streams */
                        continue;
                }
                mcp_conn_tick(s->conn);
                /*
                 * Only our ref: no request, no stream, so no call (each holds its
                 * stream). Decided and marked in one go, or a request could slip in.
                 */
                pthread_mutex_lock(&srv->lock);
                idle = s->refs == 1 && mono_ms() - s->last_ms > ttl && session_mark_closed(s, &get);
                pthread_mutex_unlock(&srv->lock);
                if (idle)
                        session_wind_down(s, get, "idle");
        }
        pthread_mutex_lock(&srv->lock);
        for (int i = 0; i < HTTP_MAX_SESSIONS; i++) {
                struct http_session *s = held[i];

                if (s == NULL)
                        continue;
                s->refs--;
                if (s->closed && s->refs == 0) {
                        dead[nd++] = s;
                        srv->s[i] = NULL;
                }
        }
        pthread_mutex_unlock(&srv->lock);
        for (int i = 0; i < nd; i++) {
                /* Calls were cancelled at close; their streams are gone, so are they. */
                mcp_conn_free(dead[i]->conn);
                free(dead[i]);
        }
}

static int sessions_left(struct http_server *srv)
{
        int n = 0;

        pthread_mutex_lock(&srv->lock);
        for (int i = 0; i < HTTP_MAX_SESSIONS; i++)
                n += srv->s[i] != NULL;
        pthread_mutex_unlock(&srv->lock);
        return n;
}

/* ---- requests ---- */

static void drop_send(struct mcp_out *o, json_t *msg)
{
        (void)o;
        json_decref(msg);
}

static enum MHD_Result post_initialize(struct http_server *srv, struct MHD_Connection *mc,
                                       json_t *msg)
{
        struct http_session *s = session_open(srv);
        struct http_stream *st;
        json_t *answer;
        enum MHD_Result ret;

        if (s == NULL)
                return refuse(mc, MHD_HTTP_SERVICE_UNAVAILABLE, JSONRPC_INTERNAL_ERROR,
                              "too many sessions: end one (DELETE) or let one expire");
        st = stream_new(srv, s, json_object_get(msg, "id"));
        if (st == NULL) {
                session_close(srv, s, "out of memory");
                session_put(srv, s);
                return MHD_NO;
        }
        mcp_conn_handle(s->conn, msg, &st->out);
        answer = json_array_size(st->queue) == 1 ? json_incref(json_array_get(st->queue, 0)) : NULL;
        stream_release(&st->out);
        if (answer == NULL || json_object_get(answer, "result") == NULL) {
                session_close(srv, s, "initialize failed");
                session_put(srv, s);
                if (answer == NULL)
                        return refuse(mc, MHD_HTTP_BAD_REQUEST, JSONRPC_INVALID_REQUEST,
                                      "initialize is a request: it needs an id");
                return reply_json(mc, MHD_HTTP_BAD_REQUEST, answer, NULL);
        }
        log_info("mcp: http: session %.8s opened (%s)", s->id, mcp_conn_version(s->conn));
        ret = reply_json(mc, MHD_HTTP_OK, answer, s->id);
        session_put(srv, s);
        return ret;
}

static enum MHD_Result post_message(struct http_server *srv, struct MHD_Connection *mc,
                                    struct http_session *s, json_t *msg)
{
        int request = json_object_get(msg, "id") != NULL || json_object_get(msg, "method") == NULL;
        struct mcp_out drop = {.send = drop_send};
        struct http_stream *st;
        json_t *answer = NULL;

        if (!request || json_object_get(msg, "result") != NULL ||
            json_object_get(msg, "error") != NULL) {
                /* A notification, or a response to a request of ours: nothing comes back. */
                mcp_conn_handle(s->conn, msg, &drop);
                return reply(mc, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
        }
        /* No usable id: its error answer carries id null, which ends the stream too. */
        st = stream_new(srv, s,
                        json_object_get(msg, "id") ? json_object_get(msg, "id") : json_null());
        if (st == NULL)
                return MHD_NO;
        mcp_conn_handle(s->conn, msg, &st->out);
        /* Answered at once and alone: a plain JSON body. Otherwise the answer is streamed. */
        pthread_mutex_lock(&st->lock);
        if (st->final && json_array_size(st->queue) == 1)
                answer = json_incref(json_array_get(st->queue, 0));
        pthread_mutex_unlock(&st->lock);
        if (answer != NULL) {
                stream_release(&st->out);
                return reply_json(mc, MHD_HTTP_OK, answer, NULL);
        }
        return reply_stream(mc, st, NULL);
}

/*
 * MCP-Protocol-Version, when sent, must be the session's (absent: the
 * client predates the header, as the spec allows). NULL, or why not.
 */
static const char *version_refused(struct MHD_Connection *mc, struct http_session *s, char *text,
                                   size_t n)
{
        const char *pv = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "MCP-Protocol-Version");

        if (pv == NULL || strcmp(pv, mcp_conn_version(s->conn)) == 0)
                return NULL;
        snprintf(text, n, "MCP-Protocol-Version %.32s%s: this session speaks %s", pv,
                 mcp_version_known(pv) ? "" : " is unsupported", mcp_conn_version(s->conn));
        return text;
}

static enum MHD_Result on_post(struct http_server *srv, struct MHD_Connection *mc,
                               struct http_req *rq)
{
        const char *sid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Mcp-Session-Id");
        const char *method, *why;
        struct http_session *s;
        enum MHD_Result ret;
        char text[160];
        json_t *msg;
        int code;

        if (rq->too_big)
                return refuse(mc, MHD_HTTP_CONTENT_TOO_LARGE, JSONRPC_INVALID_REQUEST,
                              "message larger than 4 MiB");
        msg = jsonrpc_parse(rq->body ? rq->body : "", rq->len, &code, &why);
        if (msg == NULL)
                return refuse(mc, MHD_HTTP_BAD_REQUEST, code, why);
        method = json_string_value(json_object_get(msg, "method"));
        if (method != NULL && strcmp(method, "initialize") == 0) {
                if (sid != NULL)
                        ret = refuse(mc, MHD_HTTP_BAD_REQUEST, JSONRPC_INVALID_REQUEST,
                                     "initialize opens a session: send it without "
                                     "Mcp-Session-Id");
                else
                        ret = post_initialize(srv, mc, msg);
                json_decref(msg);
                return ret;
        }
        if (sid == NULL) {
                json_decref(msg);
                return refuse(mc, MHD_HTTP_BAD_REQUEST, JSONRPC_INVALID_REQUEST,
                              "no Mcp-Session-Id: send initialize first");
        }
        s = session_find(srv, sid);
        if (s == NULL) {
                json_decref(msg);
                /* 404 tells the client to start a new session (the spec's rule). */
                return refuse(mc, MHD_HTTP_NOT_FOUND, JSONRPC_INVALID_REQUEST,
                              "no such session (ended or expired): initialize again");
        }
        if (version_refused(mc, s, text, sizeof(text)) != NULL)
                ret = refuse(mc, MHD_HTTP_BAD_REQUEST, JSONRPC_INVALID_REQUEST, text);
        else
                ret = post_message(srv, mc, s, msg);
        json_decref(msg);
        session_put(srv, s);
        return ret;
}

/*
 * GET and DELETE: the session their Mcp-Session-Id names, held, with the
 * version header checked. NULL when refused (*ret is the refusal).
 */
static struct http_session *session_of(struct http_server *srv, struct MHD_Connection *mc,
                                       enum MHD_Result *ret)
{
        const char *sid = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Mcp-Session-Id");
        struct http_session *s = session_find(srv, sid);
        char text[160];

        if (s == NULL) {
                *ret = refuse(mc, sid ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST,
                              JSONRPC_INVALID_REQUEST,
                              sid ? "no such session (ended or expired)" : "no Mcp-Session-Id");
                return NULL;
        }
        if (version_refused(mc, s, text, sizeof(text)) != NULL) {
                session_put(srv, s);
                *ret = refuse(mc, MHD_HTTP_BAD_REQUEST, JSONRPC_INVALID_REQUEST, text);
                return NULL;
        }
        return s;
}

static enum MHD_Result on_get(struct http_server *srv, struct MHD_Connection *mc)
{
        enum MHD_Result ret = MHD_NO;
        struct http_session *s = session_of(srv, mc, &ret);
        struct http_stream *st;
        int taken;

        if (s == NULL)
                return ret;
        st = stream_new(srv, s, NULL);
        if (st == NULL) {
                session_put(srv, s);
                return MHD_NO;
        }
        /* A DELETE may have closed it since it was found: nobody would end this stream. */
        pthread_mutex_lock(&srv->lock);
        taken = s->closed ? 2 : s->get != NULL;
        if (!taken)
                s->get = st;
        pthread_mutex_unlock(&srv->lock);
        if (taken) {
                stream_release(&st->out);
                session_put(srv, s);
                return taken == 2 ? refuse(mc, MHD_HTTP_NOT_FOUND, JSONRPC_INVALID_REQUEST,
                                           "no such session (ended or expired)")
                                  : refuse(mc, MHD_HTTP_CONFLICT, JSONRPC_INVALID_REQUEST,
                                           "this session already has a GET stream");
        }
        session_put(srv, s);
        return reply_stream(mc, st, NULL);
}

static enum MHD_Result on_delete(struct http_server *srv, struct MHD_Connection *mc)
{
        enum MHD_Result ret = MHD_NO;
        struct http_session *s = session_of(srv, mc, &ret);

        if (s == NULL)
                return ret;
        session_close(srv, s, "the client ended it");
        session_put(srv, s);
        return reply(mc, MHD_HTTP_OK, NULL, NULL, NULL);
}

/* Checks made before any body is read: 0, or the status to refuse with (why set). */
static unsigned check(struct http_server *srv, struct MHD_Connection *mc, const char *url,
                      const char *method, const char **why)
{
        const char *host = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Host");
        const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
        const char *auth = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
        const char *accept = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Accept");
        const char *ctype = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Type");
        const char *clen = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");

        if (srv->port == 0) /* not known yet: no Host could be checked */
                return *why = "the server is starting", MHD_HTTP_SERVICE_UNAVAILABLE;
        if (!http_guard_host_ok(host, srv->port))
                return *why = "the Host header must name loopback and this port",
                       MHD_HTTP_FORBIDDEN;
        if (!http_guard_origin_ok(origin))
                return *why = "requests from this Origin are refused", MHD_HTTP_FORBIDDEN;
        if (!http_guard_bearer_ok(auth, srv->token))
                return *why = "send Authorization: Bearer <the token in "
                              "$LUMINAGUARD_HOME/mcp-http.token>",
                       MHD_HTTP_UNAUTHORIZED;
        if (strcmp(url, HTTP_ENDPOINT) != 0)
                return *why = "the MCP endpoint is " HTTP_ENDPOINT, MHD_HTTP_NOT_FOUND;
        if (srv->stopping)
                return *why = "the server is stopping", MHD_HTTP_SERVICE_UNAVAILABLE;
        if (strcmp(method, "GET") == 0)
                return http_guard_accepts(accept, "text/event-stream")
                           ? 0
                           : (*why = "GET opens an event stream: Accept text/event-stream",
                              MHD_HTTP_NOT_ACCEPTABLE);
        if (strcmp(method, "DELETE") == 0)
                return 0;
        if (strcmp(method, "POST") != 0)
                return *why = "use POST, GET or DELETE", MHD_HTTP_METHOD_NOT_ALLOWED;
        if (!http_guard_accepts(accept, "application/json") ||
            !http_guard_accepts(accept, "text/event-stream"))
                return *why = "Accept both application/json and text/event-stream",
                       MHD_HTTP_NOT_ACCEPTABLE;
        if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
            (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' '))
                return *why = "the body must be application/json", MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        if (clen != NULL && strtoull(clen, NULL, 10) > JSONRPC_MAX_LINE)
                return *why = "message larger than 4 MiB", MHD_HTTP_CONTENT_TOO_LARGE;
        return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
        struct http_server *srv = cls;
        struct http_req *rq = *con_cls;
        const char *why = NULL;
        unsigned status;

        (void)version;
        if (rq == NULL) {
                rq = calloc(1, sizeof(*rq));
                if (rq == NULL)
                        return MHD_NO;
                *con_cls = rq;
                status = check(srv, mc, url, method, &why);
                if (status != 0) {
                        rq->answered = 1;
                        return refuse(mc, status, JSONRPC_INVALID_REQUEST, why);
                }
                return MHD_YES;
        }
        if (rq->answered)
                return MHD_NO; /* refused above; the body is not wanted */
        if (*data_size > 0) {
                /* Bounded before it is buffered: past the limit, the rest is counted, not kept. */
                if (!rq->too_big && rq->len + *data_size <= JSONRPC_MAX_LINE) {
                        char *b = realloc(rq->body, rq->len + *data_size + 1);

                        if (b == NULL)
                                return MHD_NO;
                        memcpy(b + rq->len, data, *data_size);
                        rq->body = b;
                        rq->len += *data_size;
                        rq->body[rq->len] = '\0';
                } else if (!rq->too_big) {
                        rq->too_big = 1;
                        free(rq->body);
                        rq->body = NULL;
                        rq->len = 0;
                }
                *data_size = 0;
                return MHD_YES;
        }
        rq->answered = 1;
        if (strcmp(method, "POST") == 0)
                return on_post(srv, mc, rq);
        if (strcmp(method, "GET") == 0)
                return on_get(srv, mc);
        return on_delete(srv, mc);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct http_req *rq = *con_cls;

        (void)cls;
        (void)mc;
        (void)toe;
        if (rq != NULL) {
                free(rq->body);
                free(rq);
                *con_cls = NULL;
        }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char text[512];

        (void)cls;
        vsnprintf(text, sizeof(text), fmt, ap);
        text[strcspn(text, "\n")] = '\0';
        log_debug("mcp: http: %s", text);
}

int mcp_http_serve(struct mcp_shared *sh, int sfd, struct lg_err **err)
{
        const struct mcp_opts *o = sh->o;
        struct http_server srv = {.sh = sh};
        struct sockaddr_storage ss;
        socklen_t sslen;
        const union MHD_DaemonInfo *di;
        uint64_t one = 1;
        MHD_socket lsock;

        if (http_guard_parse_addr(o->http_addr, &ss, &sslen, err) < 0 ||
            http_guard_token(o->home, srv.token, err) < 0)
                return -1;
        srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (srv.stop_fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "eventfd");
        pthread_mutex_init(&srv.lock, NULL);
        srv.d = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                MHD_USE_ITC | /* MHD_quiesce_daemon needs it */
                (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
            0, NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
            MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &srv, MHD_OPTION_END);
        if (srv.d == NULL) {
                close(srv.stop_fd);
                pthread_mutex_destroy(&srv.lock);
                return err_set(err, LG_EK_USAGE, EADDRINUSE,
                               "--http %s: cannot listen there (in use?)", o->http_addr);
        }
        di = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
        srv.port = di ? di->port : 0;
        /* What the operator needs to connect a client: always said, whatever the log level. */
        fprintf(stderr,
                "luminaguard: mcp: listening on http://%s:%u" HTTP_ENDPOINT
                " (bearer token in %s/mcp-http.token)\n",
                ss.ss_family == AF_INET6 ? "[::1]" : "127.0.0.1", srv.port, o->home);
        for (;;) {
                struct pollfd p = {.fd = sfd, .events = POLLIN};

                if (poll(&p, 1, 1000) < 0 && errno != EINTR)
                        break;
                if (p.revents & POLLIN)
                        break;
                sessions_tick(&srv, 0);
        }
        /* Stop taking requests, end every stream, cancel every call, then wait for them. */
        mcp_second_signal(sfd, 0);
        pthread_mutex_lock(&srv.lock);
        srv.stopping = 1;
        pthread_mutex_unlock(&srv.lock);
        if (write(srv.stop_fd, &one, sizeof(one)) < 0)
                log_debug("mcp: http: stop: %s", strerror(errno));
        lsock = MHD_quiesce_daemon(srv.d); /* no new connections; the socket is ours to close */
        sessions_tick(&srv, 1);
        while (sessions_left(&srv) > 0) {
                struct pollfd p = {.fd = sfd, .events = POLLIN};

                if (poll(&p, 1, 250) > 0)
                        mcp_second_signal(sfd, 1);
                sessions_tick(&srv, 1);
        }
        MHD_stop_daemon(srv.d);
        if (lsock >= 0)
                close(lsock);
        close(srv.stop_fd);
        pthread_mutex_destroy(&srv.lock);
        return 0;
}
