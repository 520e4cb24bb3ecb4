/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench mcp`, measured as a client sees it: this binary's
 * `mcp` server is started as a child and spoken to over stdio by the same
 * MCP client the gateway uses for its upstreams (mcp/upstream.c).
 *
 * Rows:
 *   tools/call run {command: true}, warm pool (a pool of 2 started here),
 *     over stdio and over Streamable HTTP (`mcp --http`), calls alternating
 *   ping over both (the transports alone)
 *   tools/call <tool> on the upstream directly            (peer)
 *   tools/call <prefix>__<tool> through `mcp --upstream`  (the gateway)
 * The gateway's cost is the difference of the last two, measured in the
 * same run, alternating calls so that noise hits both alike.
 */
#include "bench/bench_mcp.h"
#include "bench/bench_exec.h"
#include "bench/bench_http.h"
#include "bench/stats.h"
#include "common/err.h"
#include "common/monotime.h"
#include "mcp/upstream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALL_MS 120000

/* One call; its round trip in ms, or < 0 with *err (also for a result with isError). */
static int timed_call(struct upstream *u, const char *tool, json_t *args, double *ms,
                      struct lg_err **err)
{
        uint64_t t0 = mono_ns();
        json_t *res = upstream_request(u, "tools/call",
                                       json_pack("{s:s, s:O}", "name", tool, "arguments", args),
                                       CALL_MS, -1, err);

        *ms = (double)(mono_ns() - t0) / 1e6;
        if (res == NULL)
                return -EIO;
        if (json_is_true(json_object_get(res, "isError"))) {
                json_t *t =
                    json_object_get(json_array_get(json_object_get(res, "content"), 0), "text");

                err_set(err, LG_EK_INTERNAL, 0, "%s: %.300s", tool,
                        json_string_value(t) ? json_string_value(t) : "isError");
                json_decref(res);
                return -EIO;
        }
        json_decref(res);
        return 0;
}

static int start(struct upstream *u, const char *home, const char *cmd, const char *name,
                 struct lg_err **err)
{
        char log[PATH_MAX];

        snprintf(log, sizeof(log), "%s/logs/bench-mcp-%s.log", home, name);
        upstream_init(u, cmd, name, log);
        return upstream_ensure(u, err);
}

/*
 * `self mcp --http 127.0.0.1:0` as a child, its stderr in a log; the URL it
 * listens on into url. The child's pid, or < 0 with *err.
 */
static pid_t start_http(const char *self, const char *home, char *url, size_t urlsz,
                        struct lg_err **err)
{
        char log[PATH_MAX], *text = NULL;
        pid_t pid;
        int fd;

        snprintf(log, sizeof(log), "%s/logs/bench-mcp-http.log", home);
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "%s", log);
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);

                dup2(null, 0);
                dup2(null, 1);
                dup2(fd, 2);
                execl(self, self, "mcp", "--http", "127.0.0.1:0", (char *)NULL);
                _exit(127);
        }
        close(fd);
        if (pid < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "fork");
        for (int i = 0; i < 300; i++) {
                FILE *f = fopen(log, "r");
                char line[512];

                while (f != NULL && fgets(line, sizeof(line), f) != NULL)
                        if ((text = strstr(line, "listening on ")) != NULL) {
                                text += strlen("listening on ");
                                text[strcspn(text, " \n")] = '\0';
                                snprintf(url, urlsz, "%s", text);
                                break;
                        }
                if (f != NULL)
                        fclose(f);
                if (text != NULL)
                        return pid;
                usleep(20000);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return err_set(err, LG_EK_START, ETIMEDOUT, "mcp --http never listened (see %s)", log);
}

static int timed_http_call(struct bench_http *c, json_t *args, double *ms, struct lg_err **err)
{
        uint64_t t0 = mono_ns();
        json_t *res = bench_http_request(
            c, "tools/call", json_pack("{s:s, s:O}", "name", "run", "arguments", args), err);
        int bad = res == NULL || json_is_true(json_object_get(res, "isError"));

        *ms = (double)(mono_ns() - t0) / 1e6;
        if (res != NULL && bad)
                err_set(err, LG_EK_INTERNAL, 0, "run over HTTP: isError");
        json_decref(res);
        return bad ? -EIO : 0;
}

static void row(FILE *out, const char *what, double *s, size_t n)
{
        struct stats st;

        stats_compute(s, n, &st);
        fprintf(out, "  %-48s %6zu %9.3f %9.3f %9.3f\n", what, n, st.p50, st.p95, st.p99);
}

int bench_mcp(const char *home, const struct bench_mcp_opts *o, FILE *out, struct lg_err **err)
{
        char self[PATH_MAX], cmd[PATH_MAX * 2 + 256], *quoted = NULL;
        double *a = calloc(o->runs, sizeof(double)), *b = calloc(o->runs, sizeof(double));
        json_t *run_args = json_pack("{s:s}", "command", "true"), *targs = NULL;
        struct upstream server, direct, gw;
        struct bench_http *http = NULL;
        char url[256], token[128] = "", tpath[PATH_MAX];
        pid_t pool = -1, httpd = -1;
        int r = 0, have_server = 0, have_direct = 0, have_gw = 0;

        if (a == NULL || b == NULL || run_args == NULL || bench_self(self, sizeof(self)) < 0) {
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "bench mcp");
                goto out;
        }
        fprintf(out, "bench mcp: %u calls per row, ms\n", o->runs);
        fprintf(out, "  %-48s %6s %9s %9s %9s\n", "row", "n", "p50", "p95", "p99");

        /* Row 1: run through our server, on a warm pool. */
        {
                const char *args[] = {self, "pool", "serve", "--size", "2", NULL};
                int p = bench_exec(args, 0, NULL, NULL);

                if (p < 0) {
                        r = err_set(err, LG_EK_INTERNAL, -p, "start a pool");
                        goto out;
                }
                pool = (pid_t)p;
                if (bench_pool_wait_idle(home, 2, 120000) < 0) {
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not fill");
                        goto out;
                }
        }
        snprintf(cmd, sizeof(cmd), "'%s' mcp", self);
        r = start(&server, home, cmd, "server", err);
        have_server = 1;
        if (r == 0 && (httpd = start_http(self, home, url, sizeof(url), err)) < 0)
                r = -1;
        if (r == 0) {
                FILE *f;

                snprintf(tpath, sizeof(tpath), "%s/mcp-http.token", home);
                f = fopen(tpath, "r");
                if (f == NULL || fgets(token, sizeof(token), f) == NULL)
                        r = err_set(err, LG_EK_INTERNAL, errno, "%s", tpath);
                if (f != NULL)
                        fclose(f);
                token[strcspn(token, "\n")] = '\0';
        }
        if (r == 0 && (http = bench_http_open(url, token, err)) == NULL)
                r = -1;
        /* Alternating, so that the machine's noise falls on both transports alike. */
        for (unsigned i = 0; r == 0 && i < o->runs; i++) {
                r = timed_call(&server, "run", run_args, &a[i], err);
                /* The pool refills behind each hit; a steady rate keeps it warm. */
                if (r == 0 && bench_pool_wait_idle(home, 2, 60000) < 0)
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
                if (r == 0)
                        r = timed_http_call(http, run_args, &b[i], err);
                if (r == 0 && bench_pool_wait_idle(home, 2, 60000) < 0)
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
        }
        if (r < 0)
                goto out;
        row(out, "tools/call run {command: true}, warm pool, stdio", a, o->runs);
        row(out, "same, Streamable HTTP (SSE answer)", b, o->runs);
        /* The transports alone: ping, answered by the server without a sandbox. */
        for (unsigned i = 0; r == 0 && i < o->runs; i++) {
                uint64_t t0 = mono_ns();
                json_t *res = upstream_request(&server, "ping", json_object(), CALL_MS, -1, err);

                a[i] = (double)(mono_ns() - t0) / 1e6;
                t0 = mono_ns();
                if (res != NULL) {
                        json_decref(res);
                        res = bench_http_request(http, "ping", json_object(), err);
                }
                b[i] = (double)(mono_ns() - t0) / 1e6;
                if (res == NULL)
                        r = -EIO;
                json_decref(res);
        }
        if (r < 0)
                goto out;
        row(out, "ping, stdio", a, o->runs);
        row(out, "ping, Streamable HTTP (JSON answer)", b, o->runs);

        if (o->upstream == NULL) {
                fprintf(out, "  (gateway rows skipped: give --upstream 'CMD' --tool NAME "
                             "[--args JSON] for a GREEN tool of that server)\n");
                goto out;
        }
        targs = json_loads(o->args ? o->args : "{}", 0, NULL);
        if (!json_is_object(targs)) {
                r = err_set(err, LG_EK_USAGE, 0, "--args must be a JSON object");
                goto out;
        }
        r = start(&direct, home, o->upstream, "direct", err);
        have_direct = 1;
        /* The gateway is our server with the same upstream behind it; quoting for /bin/sh. */
        quoted = malloc(strlen(o->upstream) * 4 + 3);
        if (r == 0 && quoted == NULL)
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "bench mcp");
        if (r == 0) {
                char *q = quoted;

                *q++ = '\'';
                for (const char *p = o->upstream; *p; p++) {
                        if (*p == '\'') {
                                memcpy(q, "'\\''", 4);
                                q += 4;
                        } else {
                                *q++ = *p;
                        }
                }
                *q++ = '\'';
                *q = '\0';
                snprintf(cmd, sizeof(cmd), "'%s' mcp --upstream %s", self, quoted);
                r = start(&gw, home, cmd, "gateway", err);
                have_gw = 1;
        }
        if (r < 0)
                goto out;
        /* The gateway lists the upstream's tools as <its prefix>__<tool>: find ours. */
        char gname[256] = "";
        size_t k;
        json_t *t;

        json_array_foreach(gw.tools, k, t)
        {
                const char *n = json_string_value(json_object_get(t, "name"));
                const char *sep = n ? strstr(n, "__") : NULL;

                if (sep != NULL && strcmp(sep + 2, o->tool) == 0)
                        snprintf(gname, sizeof(gname), "%s", n);
        }
        if (gname[0] == '\0') {
                r = err_set(err, LG_EK_USAGE, 0, "the gateway does not list %s", o->tool);
                goto out;
        }
        /* Warm both, then alternate. */
        for (unsigned i = 0; r == 0 && i < 5; i++) {
                double x;

                r = timed_call(&direct, o->tool, targs, &x, err);
                if (r == 0)
                        r = timed_call(&gw, gname, targs, &x, err);
        }
        for (unsigned i = 0; r == 0 && i < o->runs; i++) {
                r = timed_call(&direct, o->tool, targs, &a[i], err);
                if (r == 0)
                        r = timed_call(&gw, gname, targs, &b[i], err);
        }
        if (r < 0)
                goto out;
        {
                struct stats sd, sg;
                double *copy_a = malloc(o->runs * sizeof(double)),
                       *copy_b = malloc(o->runs * sizeof(double));

                if (copy_a && copy_b) {
                        memcpy(copy_a, a, o->runs * sizeof(double));
                        memcpy(copy_b, b, o->runs * sizeof(double));
                        stats_compute(copy_a, o->runs, &sd);
                        stats_compute(copy_b, o->runs, &sg);
                }
                free(copy_a);
                free(copy_b);
                snprintf(cmd, sizeof(cmd), "tools/call %.40s, upstream directly (peer)", o->tool);
                row(out, cmd, a, o->runs);
                snprintf(cmd, sizeof(cmd), "tools/call %.40s, through the gateway", o->tool);
                row(out, cmd, b, o->runs);
                fprintf(out, "  gateway overhead, p50: %.3f ms (target < 1 ms)\n", sg.p50 - sd.p50);
        }
out:
        if (have_gw)
                upstream_free(&gw);
        if (have_direct)
                upstream_free(&direct);
        if (have_server)
                upstream_free(&server);
        bench_http_close(http);
        if (httpd > 0) {
                kill(httpd, SIGTERM);
                while (waitpid(httpd, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (pool > 0) {
                kill(pool, SIGTERM);
                while (waitpid(pool, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        json_decref(run_args);
        json_decref(targs);
        free(quoted);
        free(a);
        free(b);
        return r;
}
