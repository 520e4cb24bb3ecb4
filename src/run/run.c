/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/monotime.h"
#include "net/proxy.h"
#include "proto/proto.h"
#include "run/run_audit.h"
#include "run/run_job.h"
#include "run/run_opts.h"
#include "run/run_workspace.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"
#include "sandbox/spawn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Output is captured into memory files; past RUN_CAPTURE_KILL the command
 * is killed (what it printed is kept up to RUN_CAPTURE_MAX): a command
 * cannot make the server hold gigabytes for it.
 */

void run_result_free(struct run_result *res)
{
        free(res->out);
        free(res->err);
        res->out = res->err = NULL;
}

/* The first RUN_CAPTURE_MAX bytes of a memory file, NUL-terminated. */
static int slurp(int fd, char **out, size_t *len)
{
        off_t size = lseek(fd, 0, SEEK_END);
        size_t n = size < 0 ? 0 : (size_t)size > RUN_CAPTURE_MAX ? RUN_CAPTURE_MAX : (size_t)size;
        ssize_t got;

        *out = malloc(n + 1);
        if (*out == NULL)
                return -ENOMEM;
        got = n ? pread(fd, *out, n, 0) : 0;
        if (got < 0) {
                free(*out);
                *out = NULL;
                return -errno;
        }
        (*out)[got] = '\0';
        *len = (size_t)got;
        return 0;
}

static int fill_opts(const struct run_request *rq, struct run_opts *o, struct lg_err **err)
{
        memset(o, 0, sizeof(*o));
        o->timeout_ms = rq->timeout_ms;
        o->memory_mib = SANDBOX_DEFAULT_MEMORY_MIB;
        o->cpus = SANDBOX_DEFAULT_CPUS;
        o->boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS;
        o->image = rq->image ? rq->image : "base";
        o->no_image_build = rq->no_image_build;
        o->workdir = rq->workdir ? rq->workdir : rq->ws ? WS_GUEST_DIR : NULL;
        o->backend = rq->backend;
        /*
         * Nobody to ask: a destination outside the allow-list is refused, and
         * a workspace's change set is the caller's to decide on.
         */
        o->approve = APPROVE_MODE_DENY;
        o->argv = rq->argv;
        o->argc = (int)rq->argc;
        if (rq->envc > RUN_MAX_ENV)
                return err_set(err, LG_EK_USAGE, 0, "at most %d environment variables",
                               RUN_MAX_ENV);
        for (size_t i = 0; i < rq->envc; i++) {
                if ((o->env[i] = strdup(rq->env[i])) == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "environment");
                o->envc = i + 1;
        }
        o->env[o->envc] = NULL;
        if (rq->allow != NULL) {
                o->net = 1;
                o->allow = *rq->allow;
        }
        return run_opts_proxy_env(o, err);
}

/* The three memory files of a captured command. */
struct capture {
        int in, out, err;
};

static int capture_open(const struct run_request *rq, struct capture *k, struct lg_err **err)
{
        k->in = -1;
        k->out = memfd_create("lg-run-stdout", MFD_CLOEXEC);
        k->err = memfd_create("lg-run-stderr", MFD_CLOEXEC);
        if (k->out < 0 || k->err < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "memfd");
        if (rq->stdin_data != NULL) {
                k->in = memfd_create("lg-run-stdin", MFD_CLOEXEC);
                if (k->in < 0 || fd_write_all(k->in, rq->stdin_data, rq->stdin_len) < 0 ||
                    lseek(k->in, 0, SEEK_SET) < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "stdin");
        }
        return 0;
}

static void capture_close(struct capture *k)
{
        if (k->in >= 0)
                close(k->in);
        if (k->out >= 0)
                close(k->out);
        if (k->err >= 0)
                close(k->err);
}

static int capture_result(struct capture *k, const struct sandbox_exec_result *er,
                          struct run_result *res, struct lg_err **err)
{
        res->exit_code = er->exit_code;
        res->signo = er->signo;
        res->timed_out = er->timed_out;
        res->spawn_errno = er->spawn_errno;
        res->output_killed = er->out_limited != 0;
        snprintf(res->message, sizeof(res->message), "%s", er->message);
        res->out_total = er->out_bytes;
        res->err_total = er->err_bytes;
        if (slurp(k->out, &res->out, &res->out_len) < 0 ||
            slurp(k->err, &res->err, &res->err_len) < 0)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "captured output");
        return 0;
}

/* rq's egress proxy, or *p = NULL without an allow-list. */
static int proxy_open(const char *home, const struct run_request *rq, const char *sandbox,
                      struct net_proxy **p, struct lg_err **err)
{
        *p = NULL;
        if (rq->allow == NULL)
                return 0;
        /* Its streams hold 16 KiB heads each: not on a worker thread's stack. */
        *p = malloc(sizeof(**p));
        if (*p == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "egress proxy");
        net_proxy_init(*p, rq->allow, sandbox);
        (*p)->audit_home = home;
        return 0;
}

static void proxy_close(struct net_proxy *p)
{
        if (p == NULL)
                return;
        net_proxy_free(p);
        free(p);
}

static void exec_of(const struct run_opts *o, struct proto_exec *x)
{
        memset(x, 0, sizeof(*x));
        x->argv = o->argv;
        x->argc = (size_t)o->argc;
        x->env = (char **)o->env;
        x->envc = o->envc;
        x->cwd = (char *)o->workdir;
        x->timeout_ms = o->timeout_ms;
}

int run_exec_on(const char *home, const char *sandbox, struct agent_conn *c, int vmm_pidfd,
                const struct run_request *rq, int intr_fd, struct run_result *res,
                struct lg_err **err)
{
        struct sandbox_exec_result er;
        struct capture k = {-1, -1, -1};
        struct lg_err *aerr = NULL;
        struct run_opts o;
        struct proto_exec x;
        struct net_proxy *proxy = NULL;
        uint64_t t0 = mono_ns();
        int r;

        memset(res, 0, sizeof(*res));
        snprintf(res->sandbox, sizeof(res->sandbox), "%s", sandbox);
        /* A live sandbox's workspace goes in when it is made (mcp_sessions.c). */
        if (rq->ws != NULL)
                return err_set(err, LG_EK_USAGE, 0,
                               "a workspace is given when a sandbox is made, not per command");
        r = fill_opts(rq, &o, err);
        if (r == 0)
                r = proxy_open(home, rq, sandbox, &proxy, err);
        if (r == 0)
                r = capture_open(rq, &k, err);
        if (r == 0)
                r = run_audit_exec(home, sandbox, &o, err);
        if (r == 0) {
                struct sandbox_exec_io io = {.in_fd = k.in,
                                             .out_fd = k.out,
                                             .err_fd = k.err,
                                             .intr_fd = intr_fd,
                                             .out_limit = RUN_CAPTURE_KILL,
                                             .net = proxy};

                exec_of(&o, &x);
                r = agent_exec(c, vmm_pidfd, &x, &io, &er, err);
                if (run_audit_end(home, sandbox, &er, r < 0 ? *err : NULL,
                                  (double)(mono_ns() - t0) / 1e6, &aerr) < 0 &&
                    r == 0) {
                        *err = aerr;
                        aerr = NULL;
                        r = err_code(*err);
                }
                if (r == 0)
                        r = capture_result(&k, &er, res, err);
        }
        res->ms = (double)(mono_ns() - t0) / 1e6;
        /* The sandbox lives on: a client the command left behind hears the end (next exec). */
        if (proxy != NULL)
                net_proxy_end_all(proxy, agent_conn_out(c));
        proxy_close(proxy);
        err_free(&aerr);
        run_opts_free(&o);
        capture_close(&k);
        return r;
}

int run_capture(const char *home, const struct run_request *rq, int intr_fd, struct run_result *res,
                struct lg_err **err)
{
        struct sandbox_exec_result er;
        struct capture k = {-1, -1, -1};
        struct run_opts o;
        struct proto_exec x;
        struct sandbox *sb = NULL;
        struct net_proxy *proxy = NULL;
        struct lg_err *derr = NULL, *aerr = NULL;
        uint64_t t0 = mono_ns();
        int r;

        memset(res, 0, sizeof(*res));
        r = fill_opts(rq, &o, err);
        if (r == 0)
                r = capture_open(rq, &k, err);
        if (r < 0)
                goto out;
        exec_of(&o, &x);
        struct sandbox_exec_io io = {.in_fd = k.in,
                                     .out_fd = k.out,
                                     .err_fd = k.err,
                                     .intr_fd = intr_fd,
                                     .out_limit = RUN_CAPTURE_KILL};

        r = proxy_open(home, rq, "(starting)", &proxy, err);
        if (r < 0)
                goto out;
        io.net = proxy;
        r = run_in_pool(home, &o, &x, &io, rq->ws, &er, res->sandbox, sizeof(res->sandbox), err);
        if (r == RUN_NO_POOL) {
                const char *how;

                r = run_spawn(home, &o, intr_fd, &sb, &how, err);
                if (r == 0) {
                        snprintf(res->sandbox, sizeof(res->sandbox), "%s", sandbox_id(sb));
                        if (proxy != NULL)
                                proxy->sandbox_id = sandbox_id(sb);
                        r = run_job(home, &o, sandbox_id(sb), how, sandbox_agent(sb),
                                    sandbox_vmm_pidfd(sb), sb, &x, &io, rq->ws, &er, err);
                        /* Gone, and verified, before the answer: the caller may count on it. */
                        int d = sandbox_destroy(sb, &derr);

                        if (run_audit_gone(home, res->sandbox, 0, derr, &aerr) < 0 && r == 0) {
                                r = err_code(aerr);
                                *err = aerr;
                                aerr = NULL;
                        }
                        if (d < 0 && r == 0) {
                                r = err_code(derr);
                                *err = derr;
                                derr = NULL;
                        }
                }
        }
        if (r == 0)
                r = capture_result(&k, &er, res, err);
out:
        proxy_close(proxy);
        res->ms = (double)(mono_ns() - t0) / 1e6;
        err_free(&derr);
        err_free(&aerr);
        run_opts_free(&o);
        capture_close(&k);
        return r;
}
