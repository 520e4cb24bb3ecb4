/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pool daemon (pool.h). Two threads:
 *  - the main thread runs one poll loop over the listening socket, client
 *    connections (each at most one lease), the pidfds of idle sandboxes and
 *    the interrupt descriptor; it never waits for a VM except on a pool miss;
 *  - a worker thread restores and warms replacements and destroys sandboxes
 *    whose lease ended, so a hit is never queued behind that work.
 * They share the idle list, the destroy queue and the counters under p->mu;
 * the worker wakes the main loop through a pipe when a sandbox becomes idle.
 */
#include "pool/pool.h"
#include "pool/pool_stats.h"
#include "bench/stats.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fdpass.h"
#include "common/hostmem.h"
#include "common/log.h"
#include "common/monotime.h"
#include "image/image.h"
#include "proto/proto.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"
#include "sandbox/sandbox.h"
#include "sandbox/template.h"
#include "sandbox/template_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_CLIENTS 64

struct pool_client {
        int fd;
        char line[POOL_MAX_LINE];
        size_t have;
        struct sandbox *lease; /* handed over to this client; destroyed when it goes */
};

struct pool {
        const char *home;
        const struct pool_config *cfg;
        struct image_paths img;
        struct template tpl;
        struct template_shape shape;
        struct sandbox *idle[POOL_MAX_SIZE]; /* FIFO: idle[0] is the oldest */
        unsigned nidle;
        /* Clones' QEMU processes started, waiting for their state: a miss restores into one. */
        struct sandbox *pre[POOL_MAX_PRESTART];
        unsigned npre;
        struct pool_client clients[POOL_MAX_CLIENTS];
        unsigned nclients;
        struct pool_stats st;

        pthread_mutex_t mu;  /* guards idle, pre, filling, prefilling, building, dead, stop, st */
        pthread_cond_t work; /* the worker has something to do */
        pthread_mutex_t tpl_mu; /* rebuilding the template; loaded, loaded_st */
        /* The template as clones get it: one sealed RAM copy shared by all (template_ram.h). */
        struct template_loaded loaded;
        struct stat loaded_st; /* of the RAM file it was loaded from */
        int building;          /* the worker is building the template (holds tpl_mu long) */
        unsigned filling;      /* restores under way in the worker */
        unsigned prefilling;   /* pre-starts under way in the worker */
        struct sandbox *dead[POOL_MAX_CLIENTS + POOL_MAX_SIZE + POOL_MAX_PRESTART]; /* to destroy */
        unsigned ndead;
        int stop;
        int wake[2]; /* worker -> main loop: "the idle list changed" */
};

/*
 * Under TCG every code path the guest runs for the first time in a QEMU
 * process is translated first: a restored clone's first fork+exec costs
 * ~100 ms, its second a few. Pay that here, while the sandbox waits in the
 * pool, by running `true` once (the guest's pid counter is all it changes).
 */
static int pool_warm(struct sandbox *sb, struct lg_err **err)
{
        static char cmd[] = "true";
        char *argv[] = {cmd, NULL};
        struct proto_exec x = {.argv = argv, .argc = 1, .timeout_ms = 10000};
        struct sandbox_exec_result res;
        _cleanup_fd_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        struct sandbox_exec_io io = {.in_fd = -1, .out_fd = null, .err_fd = null, .intr_fd = -1};
        int r;

        if (null < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "/dev/null");
        r = sandbox_exec(sb, &x, &io, &res, err);
        if (r == 0 && (res.spawn_errno || res.signo || res.exit_code))
                r = err_set(err, LG_EK_START, res.spawn_errno, "warm-up command failed in %s",
                            sandbox_id(sb));
        return r;
}

static void pool_kill(struct sandbox *sb)
{
        struct lg_err *err = NULL;

        if (sandbox_destroy(sb, &err) < 0)
                log_warn("%s", err->msg);
        err_free(&err);
}

static void retire_locked(struct pool *p, struct sandbox *sb);

/*
 * The template to clone, into a local copy (p->tpl is written once at
 * startup and only read afterwards). The worker (may_build) rebuilds it when
 * it aged out or went missing; the main thread, serving a miss, never waits
 * for a build: -EAGAIN instead, and the client starts its own sandbox.
 */
static int pool_template(struct pool *p, int may_build, struct template *t,
                         struct template_loaded *l, struct lg_err **err)
{
        struct stat st;
        int r;

        if (may_build) {
                pthread_mutex_lock(&p->tpl_mu);
                r = template_ensure(p->home, &p->img, &p->shape, 0, 0, -1, t, err);
                if (r == -ENOENT) { /* aged out or missing: build, and say so to misses */
                        pthread_mutex_lock(&p->mu);
                        p->building = 1;
                        pthread_mutex_unlock(&p->mu);
                        r = template_ensure(p->home, &p->img, &p->shape, 1, p->cfg->boot_timeout_ms,
                                            -1, t, err);
                        pthread_mutex_lock(&p->mu);
                        p->building = 0;
                        /* Processes holding the old template's files go: their disk space too. */
                        while (r == 0 && p->npre > 0)
                                retire_locked(p, p->pre[--p->npre]);
                        pthread_mutex_unlock(&p->mu);
                }
        } else {
                /*
                 * The worker holds tpl_mu briefly for every refill and long
                 * only while building: wait out the former, never the latter.
                 */
                while (pthread_mutex_trylock(&p->tpl_mu) != 0) {
                        int building;

                        pthread_mutex_lock(&p->mu);
                        building = p->building;
                        pthread_mutex_unlock(&p->mu);
                        if (building)
                                return err_set(err, LG_EK_START, EAGAIN,
                                               "the pool is rebuilding its template");
                        usleep(200);
                }
                r = template_ensure(p->home, &p->img, &p->shape, 0, 0, -1, t, err);
        }
        /* (Re)load when the RAM file is another than the one loaded: a rebuild. */
        if (r == 0 && (stat(t->ram, &st) < 0 || st.st_ino != p->loaded_st.st_ino ||
                       st.st_mtim.tv_sec != p->loaded_st.st_mtim.tv_sec ||
                       st.st_mtim.tv_nsec != p->loaded_st.st_mtim.tv_nsec || p->loaded.memfd < 0)) {
                template_unload(&p->loaded);
                r = template_load(t->ram, t->state, &p->loaded);
                if (r == 0 && fstat(p->loaded.ram_fd, &p->loaded_st) < 0)
                        r = -errno;
                if (r < 0)
                        r = err_set(err, LG_EK_START, -r, "load template %s", t->dir);
        }
        if (r == 0 && template_loaded_dup(&p->loaded, l) < 0)
                r = err_set(err, LG_EK_INTERNAL, errno, "duplicate template descriptors");
        pthread_mutex_unlock(&p->tpl_mu);
        if (r == -ENOENT)
                return err_set(err, LG_EK_START, EAGAIN, "the pool's template is being rebuilt");
        return r;
}

static struct sandbox_opts clone_opts(const struct pool *p, const struct template *t,
                                      const struct template_loaded *l, int *bad)
{
        return (struct sandbox_opts){
            .image = &p->img, /* an image with a disk: the clone needs it as its template had it */
            .ram_file = t->ram,
            .restore_state = t->state,
            .loaded = l,
            .accel = p->shape.accel,
            .memory_mib = p->shape.memory_mib,
            .cpus = p->shape.cpus,
            .boot_timeout_ms = p->cfg->boot_timeout_ms,
            .intr_fd = -1,
            .template_failed = bad,
        };
}

/*
 * A template that failed to restore is discarded and rebuilt; the clones
 * already started from it are retired with it.
 */
static int pool_rebuild(struct pool *p, struct template *t, struct lg_err **err)
{
        int r;

        pthread_mutex_lock(&p->tpl_mu);
        template_discard(t);
        template_unload(&p->loaded);
        r = template_ensure(p->home, &p->img, &p->shape, 1, p->cfg->boot_timeout_ms, -1, t, err);
        pthread_mutex_unlock(&p->tpl_mu);
        pthread_mutex_lock(&p->mu);
        while (p->npre > 0)
                retire_locked(p, p->pre[--p->npre]);
        pthread_mutex_unlock(&p->mu);
        return r;
}

/*
 * Restore one sandbox (reseeded) from the template; the worker also warms it
 * and, when the template will not restore, rebuilds the template once.
 */
static int pool_restore(struct pool *p, int may_build, struct sandbox **out, struct lg_err **err)
{
        struct template t;
        struct template_loaded l;
        int bad = 0, r;
        uint64_t t0 = mono_ns();

        /* Process sandboxes start in milliseconds from the image itself: no template. */
        if (p->cfg->backend == SANDBOX_PROCESS) {
                struct sandbox_opts so = {
                    .image = &p->img,
                    .backend = SANDBOX_PROCESS,
                    .memory_mib = p->shape.memory_mib,
                    .cpus = p->shape.cpus,
                    .boot_timeout_ms = p->cfg->boot_timeout_ms,
                    .intr_fd = -1,
                };

                r = sandbox_create(p->home, &so, out, err);
                if (r == 0) {
                        pthread_mutex_lock(&p->mu);
                        pool_stats_add(&p->st.restore_ms, (double)(mono_ns() - t0) / 1e6);
                        pthread_mutex_unlock(&p->mu);
                }
                return r;
        }

        r = pool_template(p, may_build, &t, &l, err);
        if (r < 0)
                return r;
        struct sandbox_opts so = clone_opts(p, &t, &l, &bad);

        r = sandbox_create(p->home, &so, out, err);
        if (r < 0 && bad && may_build) {
                log_warn("%s; rebuilding the template", (*err)->msg);
                err_free(err);
                template_unload(&l);
                r = pool_rebuild(p, &t, err);
                if (r == 0)
                        r = pool_template(p, may_build, &t, &l, err);
                if (r == 0)
                        r = sandbox_create(p->home, &so, out, err);
        }
        template_unload(&l);
        if (r < 0)
                return r;
        pthread_mutex_lock(&p->mu);
        pool_stats_add(&p->st.restore_ms, (double)(mono_ns() - t0) / 1e6);
        pthread_mutex_unlock(&p->mu);
        /* A miss is handed over at once: its first command pays the translation either way. */
        if (may_build && pool_warm(*out, err) < 0) {
                pool_kill(*out);
                *out = NULL;
                return err_code(*err);
        }
        return 0;
}

/* The worker: start one clone's QEMU process, to wait for a miss. */
static int pool_prestart(struct pool *p, struct sandbox **out, struct lg_err **err)
{
        struct template t;
        struct template_loaded l;
        int r = pool_template(p, 1, &t, &l, err);

        if (r < 0)
                return r;
        struct sandbox_opts so = clone_opts(p, &t, &l, NULL);

        r = sandbox_prestart(p->home, &so, out, err);
        template_unload(&l); /* the sandbox holds what it needs */
        return r;
}

/*
 * A miss with a pre-started process: restore into it. NULL when none is
 * left or the one taken failed (the caller restores from scratch).
 */
static struct sandbox *pop_alive(struct pool *p, struct sandbox **list, unsigned *n);

static struct sandbox *pool_resume_pre(struct pool *p)
{
        struct lg_err *err = NULL;
        struct sandbox *sb;
        struct template t = {0};
        int bad = 0;

        sb = pop_alive(p, p->pre, &p->npre);
        if (sb == NULL)
                return NULL;
        /* The template's names for messages; the process holds the files it was started with. */
        snprintf(t.ram, sizeof(t.ram), "%s", p->tpl.ram);
        snprintf(t.state, sizeof(t.state), "%s", p->tpl.state);
        struct sandbox_opts so = clone_opts(p, &t, NULL, &bad);

        if (sandbox_resume(sb, &so, &err) < 0) { /* sb is gone */
                log_warn("pool: pre-started sandbox failed: %s", err->msg);
                err_free(&err);
                return NULL;
        }
        pthread_mutex_lock(&p->mu);
        pool_stats_add(&p->st.resume_ms, sandbox_ready_ms(sb));
        p->st.misses_prestarted++;
        pthread_mutex_unlock(&p->mu);
        return sb;
}

static int reply(int fd, json_t *msg, const int *fds, size_t nfds)
{
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
        size_t n;

        json_decref(msg);
        if (text == NULL)
                return -ENOMEM;
        n = strlen(text);
        text[n] = '\n'; /* json_dumps left room for the NUL we overwrite */
        return fdpass_send(fd, text, n + 1, fds, nfds);
}

static int reply_error(int fd, const char *why, int shape_mismatch)
{
        return reply(
            fd, json_pack("{s:b,s:s,s:b}", "ok", 0, "error", why, "shape_mismatch", shape_mismatch),
            NULL, 0);
}

/*
 * Hand a sandbox to the worker for destruction. Caller holds p->mu. When the
 * queue is full (a worker stuck on slow VMs) the VM is killed right here:
 * SIGKILL through its pidfd never blocks; the worker reaps it later.
 */
static void retire_locked(struct pool *p, struct sandbox *sb)
{
        if (p->ndead == sizeof(p->dead) / sizeof(p->dead[0])) {
                sandbox_kill_now(sb);
                pool_kill(sb);
        } else {
                p->dead[p->ndead++] = sb;
        }
        pthread_cond_signal(&p->work);
}

/*
 * Take the oldest member of a list (idle or pre-started) that is still
 * alive; the dead ones met on the way are retired. The worker is woken to
 * refill. NULL when none is left.
 */
static struct sandbox *pop_alive(struct pool *p, struct sandbox **list, unsigned *n)
{
        struct sandbox *sb = NULL;

        pthread_mutex_lock(&p->mu);
        while (sb == NULL && *n > 0) {
                struct pollfd pf;

                sb = list[0];
                memmove(list, list + 1, --*n * sizeof(list[0]));
                pf = (struct pollfd){.fd = sandbox_vmm_pidfd(sb), .events = POLLIN};
                if (poll(&pf, 1, 0) != 0) { /* died while pooled */
                        p->st.replaced++;
                        retire_locked(p, sb);
                        sb = NULL;
                }
        }
        pthread_cond_signal(&p->work); /* one fewer: refill */
        pthread_mutex_unlock(&p->mu);
        return sb;
}

static struct sandbox *pop_idle(struct pool *p)
{
        return pop_alive(p, p->idle, &p->nidle);
}

static int handle_acquire(struct pool *p, struct pool_client *c, json_t *req)
{
        const char *image = json_string_value(json_object_get(req, "image"));
        const char *key = json_string_value(json_object_get(req, "image_key"));
        json_int_t mem = json_integer_value(json_object_get(req, "memory_mib"));
        json_int_t cpus = json_integer_value(json_object_get(req, "cpus"));
        const char *backend = json_string_value(json_object_get(req, "backend"));
        const char *ours = p->cfg->backend == SANDBOX_PROCESS ? "process" : "vm";
        uint64_t t0 = mono_ns();
        struct lg_err *err = NULL;
        struct sandbox *sb;
        int fds[2], hit, r;

        if (c->lease != NULL)
                return reply_error(c->fd, "this connection already holds a sandbox", 0);
        /* Another image, a rebuilt one (other key) or another shape: not ours to serve. */
        if (image == NULL || strcmp(image, p->cfg->image) != 0 || key == NULL ||
            strcmp(key, p->img.key) != 0 || (uint64_t)mem != p->shape.memory_mib ||
            (unsigned)cpus != p->shape.cpus || strcmp(backend ? backend : "vm", ours) != 0)
                return reply_error(c->fd, "the pool serves another image, shape or backend", 1);
        sb = pop_idle(p);
        hit = sb != NULL;
        if (!hit)
                sb = pool_resume_pre(p);
        if (sb == NULL && pool_restore(p, 0, &sb, &err) < 0) {
                r = reply_error(c->fd, err->msg, 0);
                err_free(&err);
                return r;
        }
        pthread_mutex_lock(&p->mu);
        if (hit)
                p->st.hits++;
        else
                p->st.misses++;
        pthread_mutex_unlock(&p->mu);
        c->lease = sb;
        fds[0] = sandbox_agent(sb)->fd;
        fds[1] = sandbox_vmm_pidfd(sb);
        double ms = (double)(mono_ns() - t0) / 1e6;
        pthread_mutex_lock(&p->mu);
        pool_stats_add(&p->st.handover_ms, ms);
        pthread_mutex_unlock(&p->mu);
        return reply(c->fd,
                     json_pack("{s:b,s:s,s:b,s:f}", "ok", 1, "id", sandbox_id(sb), "hit", hit,
                               "wait_ms", ms),
                     fds, 2);
}

static int handle_status(struct pool *p, struct pool_client *c)
{
        unsigned leased = 0, nidle, npre;
        json_t *st, *pre = json_array();

        pthread_mutex_lock(&p->mu);
        st = pool_stats_json(&p->st, p->idle, p->nidle);
        nidle = p->nidle;
        npre = p->npre;
        for (unsigned i = 0; i < npre; i++)
                json_array_append_new(pre, json_pack("{s:s,s:i}", "id", sandbox_id(p->pre[i]),
                                                     "pid", sandbox_vmm_pid(p->pre[i])));
        pthread_mutex_unlock(&p->mu);
        for (unsigned i = 0; i < p->nclients; i++)
                leased += p->clients[i].lease != NULL;
        if (st == NULL || pre == NULL) {
                json_decref(st);
                json_decref(pre);
                return -ENOMEM;
        }
        json_object_set_new(st, "ok", json_true());
        json_object_set_new(st, "image", json_string(p->cfg->image));
        json_object_set_new(st, "template", json_string(p->tpl.key));
        json_object_set_new(st, "memory_mib", json_integer((json_int_t)p->shape.memory_mib));
        json_object_set_new(st, "cpus", json_integer(p->shape.cpus));
        json_object_set_new(st, "accel", json_string(accel_name(p->shape.accel)));
        json_object_set_new(st, "backend",
                            json_string(p->cfg->backend == SANDBOX_PROCESS ? "process" : "vm"));
        json_object_set_new(st, "size", json_integer(p->cfg->size));
        json_object_set_new(st, "idle", json_integer(nidle));
        json_object_set_new(st, "prestart", json_integer(p->cfg->prestart));
        json_object_set_new(st, "prestarted", json_integer(npre));
        json_object_set_new(st, "prestarted_sandboxes", pre);
        json_object_set_new(st, "leased", json_integer(leased));
        return reply(c->fd, st, NULL, 0);
}

/* A complete request line from a client. A bad one closes the connection. */
static int handle_line(struct pool *p, struct pool_client *c, const char *line)
{
        json_t *req = json_loads(line, 0, NULL);
        const char *op = json_string_value(json_object_get(req, "op"));
        int r;

        if (op != NULL && strcmp(op, "acquire") == 0)
                r = handle_acquire(p, c, req);
        else if (op != NULL && strcmp(op, "status") == 0)
                r = handle_status(p, c);
        else {
                (void)reply_error(c->fd, "unknown or malformed request", 0);
                r = -EPROTO; /* and the connection is closed */
        }
        json_decref(req);
        return r;
}

static void drop_client(struct pool *p, unsigned i)
{
        struct pool_client *c = &p->clients[i];

        if (c->lease != NULL) { /* the lease ended: the sandbox goes with it */
                pthread_mutex_lock(&p->mu);
                retire_locked(p, c->lease);
                pthread_mutex_unlock(&p->mu);
        }
        close(c->fd);
        p->clients[i] = p->clients[--p->nclients];
}

/* Read from client i. Returns 1 if it was dropped. */
static int client_input(struct pool *p, unsigned i)
{
        struct pool_client *c = &p->clients[i];
        ssize_t n = read(c->fd, c->line + c->have, sizeof(c->line) - 1 - c->have);
        char *nl;

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n <= 0) {
                drop_client(p, i);
                return 1;
        }
        c->have += (size_t)n;
        c->line[c->have] = '\0';
        while ((nl = strchr(c->line, '\n')) != NULL) {
                *nl = '\0';
                if (handle_line(p, c, c->line) < 0) {
                        drop_client(p, i);
                        return 1;
                }
                c->have -= (size_t)(nl + 1 - c->line);
                memmove(c->line, nl + 1, c->have + 1);
        }
        if (c->have == sizeof(c->line) - 1) { /* an over-long line: not a client of ours */
                drop_client(p, i);
                return 1;
        }
        return 0;
}

static void accept_client(struct pool *p, int lfd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0)
                return;
        /* The socket is 0600 in a 0700 directory; this is the second lock on the door. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid() ||
            p->nclients == POOL_MAX_CLIENTS) {
                close(fd);
                return;
        }
        /*
         * Replies are written blocking from the main loop; a client that
         * sends but never reads must not stall it: after 1 s a write fails
         * and that client is dropped.
         */
        struct timeval tv = {.tv_sec = 1};

        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                close(fd);
                return;
        }
        p->clients[p->nclients++] = (struct pool_client){.fd = fd};
}

static int pool_listen(const char *home, int *lock_fd, struct lg_err **err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char lock[PATH_MAX];
        int fd, probe, r;

        /* One pool per home, for its whole life: the socket dance below is not atomic. */
        snprintf(lock, sizeof(lock), "%s/pool.lock", home);
        *lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (*lock_fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "open %s", lock);
        if (flock(*lock_fd, LOCK_EX | LOCK_NB) < 0)
                return err_set(err, LG_EK_USAGE, EADDRINUSE, "a pool already serves %s", home);

        r = pool_socket_path(home, sa.sun_path, sizeof(sa.sun_path));
        if (r < 0)
                return err_set(err, LG_EK_USAGE, -r, "socket path under %s", home);
        /* A socket nobody answers on is a leftover of a pool that died: replace it. */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                close(probe);
                return err_set(err, LG_EK_USAGE, EADDRINUSE, "a pool already serves %s",
                               sa.sun_path);
        }
        if (probe >= 0)
                close(probe);
        unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "socket");
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(fd, 64) < 0) {
                r = errno;
                close(fd);
                return err_set(err, LG_EK_INTERNAL, r, "listen on %s", sa.sun_path);
        }
        return fd;
}

/* Room on the host for one more clone (pool_config.reserve_mib)? Unknown counts as room. */
static int pool_has_room(const struct pool *p, uint64_t *avail)
{
        *avail = 0;
        return hostmem_available_mib(avail) < 0 ||
               *avail >= p->shape.memory_mib + p->cfg->reserve_mib;
}

/* Restore and warm replacements, destroy retired sandboxes, until told to stop. */
static void *pool_worker(void *arg)
{
        struct pool *p = arg;
        unsigned backoff = 1; /* seconds before retrying a failed refill; doubles to 64 */

        pthread_mutex_lock(&p->mu);
        for (;;) {
                struct sandbox *sb = NULL;
                struct lg_err *err = NULL;

                while (!p->stop && p->ndead == 0 && p->nidle + p->filling >= p->cfg->size &&
                       p->npre + p->prefilling >= p->cfg->prestart)
                        pthread_cond_wait(&p->work, &p->mu);
                if (p->stop)
                        break;
                if (p->ndead > 0) {
                        sb = p->dead[--p->ndead];
                        pthread_mutex_unlock(&p->mu);
                        pool_kill(sb);
                        pthread_mutex_lock(&p->mu);
                        continue;
                }
                /* Ready sandboxes first: a hit beats the fastest miss. */
                int pre = p->nidle + p->filling >= p->cfg->size;
                uint64_t avail;
                int r;

                if (!pool_has_room(p, &avail)) {
                        if (!p->st.low_memory)
                                log_warn("pool: %llu MiB of host memory available, below %llu MiB "
                                         "of guest memory + %llu MiB reserve: no new sandboxes "
                                         "until that changes",
                                         (unsigned long long)avail,
                                         (unsigned long long)p->shape.memory_mib,
                                         (unsigned long long)p->cfg->reserve_mib);
                        p->st.low_memory = 1;
                        p->st.held_back++;
                        struct timespec until;

                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_sec += 1;
                        pthread_cond_timedwait(&p->work, &p->mu, &until);
                        continue;
                }
                if (p->st.low_memory)
                        log_info("pool: %llu MiB of host memory available: refilling again",
                                 (unsigned long long)avail);
                p->st.low_memory = 0;

                if (pre) {
                        p->prefilling++;
                        pthread_mutex_unlock(&p->mu);
                        r = pool_prestart(p, &sb, &err);
                        pthread_mutex_lock(&p->mu);
                        p->prefilling--;
                } else {
                        p->filling++;
                        pthread_mutex_unlock(&p->mu);
                        r = pool_restore(p, 1, &sb, &err);
                        pthread_mutex_lock(&p->mu);
                        p->filling--;
                }
                if (r == 0 && pre) {
                        backoff = 1;
                        p->pre[p->npre++] = sb;
                        continue;
                }
                if (r == 0) {
                        backoff = 1;
                        p->idle[p->nidle++] = sb;
                        if (write(p->wake[1], "", 1) < 0)
                                log_debug("pool: wake pipe full"); /* the loop is awake anyway */
                        continue;
                }
                log_error("pool: refill failed: %s (retrying in %u s)", err->msg, backoff);
                err_free(&err);
                /* Do not spin on a persistent failure; a stop still ends the wait. */
                struct timespec until;

                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += backoff;
                pthread_cond_timedwait(&p->work, &p->mu, &until);
                backoff = backoff < 32 ? backoff * 2 : 64;
                continue;
        }
        pthread_mutex_unlock(&p->mu);
        return NULL;
}

static void pool_shutdown(struct pool *p, int lfd, pthread_t worker)
{
        char path[PATH_MAX];

        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
        pthread_join(worker, NULL);
        close(lfd);
        if (pool_socket_path(p->home, path, sizeof(path)) == 0)
                unlink(path);
        while (p->nclients > 0)
                drop_client(p, 0);
        while (p->nidle > 0)
                pool_kill(p->idle[--p->nidle]);
        while (p->npre > 0)
                pool_kill(p->pre[--p->npre]);
        while (p->ndead > 0)
                pool_kill(p->dead[--p->ndead]);
        close(p->wake[0]);
        close(p->wake[1]);
        template_unload(&p->loaded);
}

/* Take sb out of the idle or pre-started list, if it is still there, and replace it. */
static void retire_dead(struct pool *p, struct sandbox *sb)
{
        struct sandbox **lists[2] = {p->idle, p->pre};
        unsigned *counts[2] = {&p->nidle, &p->npre};

        pthread_mutex_lock(&p->mu);
        for (unsigned l = 0; l < 2; l++) {
                for (unsigned j = 0; j < *counts[l]; j++) {
                        if (lists[l][j] != sb)
                                continue;
                        log_info("pool: %s sandbox %s died; replacing it",
                                 l == 0 ? "idle" : "pre-started", sandbox_id(sb));
                        memmove(lists[l] + j, lists[l] + j + 1,
                                (*counts[l] - j - 1) * sizeof(lists[l][0]));
                        --*counts[l];
                        p->st.replaced++;
                        retire_locked(p, sb);
                        pthread_mutex_unlock(&p->mu);
                        return;
                }
        }
        pthread_mutex_unlock(&p->mu); /* taken by a client meanwhile: its problem now */
}

int pool_serve(const char *home, const struct pool_config *c, int intr_fd, struct lg_err **err)
{
        static struct pool pool; /* ~300 KB of client buffers: not on the stack */
        struct pool *p = &pool;
        int lock_fd = -1;
        pthread_t worker;
        char why[256];
        int lfd, r;

        memset(p, 0, sizeof(*p));
        p->loaded = (struct template_loaded){-1, -1, -1};
        p->home = home;
        p->cfg = c;
        r = image_ensure(home, c->image, 1, 1, &p->img, err);
        if (r < 0)
                return r;
        p->shape.memory_mib = c->memory_mib;
        p->shape.cpus = c->cpus;
        p->shape.accel = accel_choose(home, why, sizeof(why));
        if (c->backend == SANDBOX_VM) {
                r = template_ensure(home, &p->img, &p->shape, 1, c->boot_timeout_ms, intr_fd,
                                    &p->tpl, err);
                if (r < 0)
                        return r;
        }
        lfd = pool_listen(home, &lock_fd, err);
        if (lfd < 0) {
                if (lock_fd >= 0)
                        close(lock_fd);
                return lfd;
        }
        if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
                close(lfd);
                close(lock_fd);
                return err_set(err, LG_EK_INTERNAL, errno, "pipe");
        }
        pthread_mutex_init(&p->mu, NULL);
        pthread_mutex_init(&p->tpl_mu, NULL);
        pthread_cond_init(&p->work, NULL);
        r = pthread_create(&worker, NULL, pool_worker, p);
        if (r != 0) {
                close(lfd);
                close(lock_fd);
                close(p->wake[0]);
                close(p->wake[1]);
                return err_set(err, LG_EK_INTERNAL, r, "start the pool worker");
        }
        log_info("pool: serving %s (%llu MiB, %u vCPU, %s) with %u idle sandboxes and %u "
                 "pre-started processes",
                 c->image, (unsigned long long)c->memory_mib, c->cpus, accel_name(p->shape.accel),
                 c->size, c->prestart);

        for (;;) {
                struct pollfd pf[3 + POOL_MAX_CLIENTS + POOL_MAX_SIZE + POOL_MAX_PRESTART];
                struct sandbox *watched[POOL_MAX_SIZE + POOL_MAX_PRESTART];
                int pidfds[POOL_MAX_SIZE + POOL_MAX_PRESTART];
                unsigned n = 0, ncl = p->nclients, nw = 0;

                /*
                 * The worker may retire and free a watched sandbox while we
                 * poll: watch duplicates of the pidfds taken under the lock, so
                 * no freed (and reused) descriptor number is polled, and
                 * retire_dead() checks the pointer against the lists again.
                 */
                pthread_mutex_lock(&p->mu);
                for (unsigned i = 0; i < p->nidle + p->npre; i++) {
                        struct sandbox *sb = i < p->nidle ? p->idle[i] : p->pre[i - p->nidle];
                        int fd = fcntl(sandbox_vmm_pidfd(sb), F_DUPFD_CLOEXEC, 3);

                        if (fd < 0)
                                continue;
                        watched[nw] = sb;
                        pidfds[nw++] = fd;
                }
                pthread_mutex_unlock(&p->mu);

                pf[n++] = (struct pollfd){.fd = intr_fd, .events = POLLIN};
                pf[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
                pf[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
                for (unsigned i = 0; i < ncl; i++)
                        pf[n++] = (struct pollfd){.fd = p->clients[i].fd, .events = POLLIN};
                for (unsigned i = 0; i < nw; i++)
                        pf[n++] = (struct pollfd){.fd = pidfds[i], .events = POLLIN};
                int pr = poll(pf, n, -1), perr = errno;

                for (unsigned i = 0; i < nw; i++)
                        close(pidfds[i]);
                if (pr < 0 && perr != EINTR) {
                        r = err_set(err, LG_EK_INTERNAL, perr, "poll");
                        break;
                }
                if (pf[0].revents & POLLIN) {
                        r = 0;
                        break;
                }
                if (pf[2].revents & POLLIN) {
                        char drain[64];

                        while (read(p->wake[0], drain, sizeof(drain)) > 0)
                                ;
                }
                /* Idle or pre-started sandboxes that died while pooled are retired and replaced. */
                for (unsigned i = 0; i < nw; i++) {
                        if (pf[3 + ncl + i].revents & POLLIN)
                                retire_dead(p, watched[i]);
                }
                /* Clients, backwards: a dropped one is replaced by the last, already seen. */
                for (unsigned i = ncl; i-- > 0;) {
                        if (pf[3 + i].revents & (POLLIN | POLLHUP | POLLERR))
                                (void)client_input(p, i);
                }
                if (pf[1].revents & POLLIN)
                        accept_client(p, lfd);
        }
        pool_shutdown(p, lfd, worker);
        close(lock_fd); /* last: the next pool may start once everything is gone */
        return r;
}
