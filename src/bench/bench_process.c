/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench spawn --backend process`: a jailed process sandbox
 * against its nearest peer, bubblewrap with every namespace, in one run,
 * interleaved sample by sample so that the machine's noise hits both.
 */
#include "bench/bench_spawn.h"
#include "bench/bench_exec.h"
#include "bench/stats.h"
#include "common/err.h"
#include "common/monotime.h"
#include "image/image.h"
#include "pool/pool.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum prow {
        PROW_HIT,   /* pool hit: request -> descriptors of a ready process sandbox */
        PROW_READY, /* sandbox_create -> agent READY (hello answered) */
        PROW_CYCLE, /* create + destroy, verified: a whole throwaway sandbox */
        PROW_RUN,   /* `luminaguard run --backend process -- true`, new process */
        PROW_BWRAP, /* peer: bwrap --unshare-all --ro-bind / / true */
        PROW_COUNT,
};

static const char *const prow_key[PROW_COUNT] = {"pool_hit_process", "process_ready",
                                                 "process_create_destroy", "run_true_process",
                                                 "bwrap_peer"};
static const char *const prow_name[PROW_COUNT] = {
    "pool hit -> agent ready (process pool)", "process sandbox -> agent ready",
    "process sandbox create + destroy",       "run --backend process -- true",
    "peer: bwrap --unshare-all true",
};

/* A command of the benchmark, quiet. */
static int bench_exec_q(const char *const argv[], double *ms, int *status)
{
        return bench_exec(argv, 1, ms, status);
}

static int one_sandbox(const char *home, const struct image_paths *img, double *ready,
                       double *cycle, struct lg_err **err)
{
        struct sandbox_opts so = {
            .image = img,
            .backend = SANDBOX_PROCESS,
            .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
            .cpus = SANDBOX_DEFAULT_CPUS,
            .boot_timeout_ms = 10000,
            .intr_fd = -1,
        };
        struct sandbox *sb = NULL;
        uint64_t t0 = mono_ns();
        int r = sandbox_create(home, &so, &sb, err);

        if (r < 0)
                return r;
        *ready = sandbox_ready_ms(sb);
        r = sandbox_destroy(sb, err);
        *cycle = (double)(mono_ns() - t0) / 1e6;
        return r;
}

/* A process pool of 4, started as a child; each sample starts from a full pool. */
static int pool_hits(const char *home, const char *self, const char *key, unsigned runs, double *v,
                     struct lg_err **err)
{
        const char *const serve[] = {self,      "pool",   "serve", "--backend",
                                     "process", "--size", "4",     NULL};
        struct pool_request rq = {"base", key, SANDBOX_DEFAULT_MEMORY_MIB, SANDBOX_DEFAULT_CPUS,
                                  "process"};
        pid_t pid = bench_exec(serve, 0, NULL, NULL);
        int r = 0;

        if (pid < 0)
                return err_set(err, LG_EK_INTERNAL, -pid, "start the process pool");
        for (unsigned i = 0; r == 0 && i < runs; i++) {
                struct pool_lease l;
                uint64_t t0;

                if (bench_pool_wait_idle(home, 4, 30000) < 0) {
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the process pool did not fill");
                        break;
                }
                t0 = mono_ns();
                r = pool_acquire(home, &rq, -1, &l, err);
                if (r == 0 && !l.hit)
                        r = err_set(err, LG_EK_START, 0, "a pool miss from a full pool");
                if (r == 0)
                        v[i] = (double)(mono_ns() - t0) / 1e6;
                if (r == 0)
                        pool_release(&l);
        }
        kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return r;
}

int bench_process(const char *home, const struct bench_spawn_opts *o, FILE *out,
                  struct lg_err **err)
{
        static const char *const bwrap[] = {"bwrap", "--unshare-all", "--ro-bind", "/",
                                            "/",     "--dev",         "/dev",      "--proc",
                                            "/proc", "true",          NULL};
        char self[PATH_MAX], path[PATH_MAX + 64];
        const char *run[] = {self, "run", "--backend", "process", "--", "true", NULL};
        struct image_paths img;
        struct stats st[PROW_COUNT];
        double *v[PROW_COUNT] = {NULL};
        json_t *rows = NULL, *root = NULL;
        int r = bench_self(self, sizeof(self)), status;

        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "/proc/self/exe");
        if (bench_exec_q(bwrap, &(double){0}, &status) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
                return err_set(err, LG_EK_USAGE, ENOENT,
                               "the peer, bwrap, does not run here (apt-get install bubblewrap)");
        r = image_ensure(home, "base", 1, 1, &img, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PROW_COUNT; i++) {
                v[i] = calloc(o->runs, sizeof(double));
                if (v[i] == NULL) {
                        r = err_set(err, LG_EK_INTERNAL, ENOMEM, "samples");
                        goto out;
                }
        }
        fprintf(out,
                "bench spawn --backend process: %u samples per row; pool hits first, then the "
                "rest interleaved...\n",
                o->runs);
        r = pool_hits(home, self, img.key, o->runs, v[PROW_HIT], err);
        if (r < 0)
                goto out;
        for (unsigned i = 0; i < o->runs; i++) {
                r = one_sandbox(home, &img, &v[PROW_READY][i], &v[PROW_CYCLE][i], err);
                if (r == 0 && (bench_exec_q(run, &v[PROW_RUN][i], &status) < 0 ||
                               !WIFEXITED(status) || WEXITSTATUS(status) != 0))
                        r = err_set(err, LG_EK_START, 0, "'run --backend process -- true' failed");
                if (r == 0 && (bench_exec_q(bwrap, &v[PROW_BWRAP][i], &status) < 0 ||
                               !WIFEXITED(status) || WEXITSTATUS(status) != 0))
                        r = err_set(err, LG_EK_START, 0, "bwrap failed");
                if (r < 0)
                        goto out;
        }
        rows = json_object();
        fprintf(out, "\n%-40s %5s %8s %8s %8s %8s %8s\n", "row (ms)", "n", "min", "p50", "p95",
                "p99", "max");
        for (int i = 0; i < PROW_COUNT; i++) {
                stats_compute(v[i], o->runs, &st[i]);
                fprintf(out, "%-40s %5zu %8.2f %8.2f %8.2f %8.2f %8.2f\n", prow_name[i], st[i].n,
                        st[i].min, st[i].p50, st[i].p95, st[i].p99, st[i].max);
                json_object_set_new(rows, prow_key[i],
                                    json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)st[i].n,
                                              "min_ms", st[i].min, "p50_ms", st[i].p50, "p95_ms",
                                              st[i].p95, "p99_ms", st[i].p99, "max_ms", st[i].max));
        }
        fprintf(out, "\nready / bwrap (p50):            %.3f   (p95: %.3f)\n",
                st[PROW_READY].p50 / st[PROW_BWRAP].p50, st[PROW_READY].p95 / st[PROW_BWRAP].p95);
        fprintf(out, "create+destroy / bwrap (p50):   %.3f\n",
                st[PROW_CYCLE].p50 / st[PROW_BWRAP].p50);
        fprintf(out, "pool hit / bwrap (p50):         %.3f   (p95: %.3f)\n",
                st[PROW_HIT].p50 / st[PROW_BWRAP].p50, st[PROW_HIT].p95 / st[PROW_BWRAP].p95);
        root = json_pack("{s:s,s:s,s:I,s:O}", "bench", "spawn", "backend", "process", "time",
                         (json_int_t)time(NULL), "rows", rows);
        if (o->json_path != NULL)
                snprintf(path, sizeof(path), "%s", o->json_path);
        else
                snprintf(path, sizeof(path), "%s/bench/spawn-process-%lld.json", home,
                         (long long)time(NULL));
        if (json_dump_file(root, path, JSON_INDENT(2)) < 0)
                fprintf(out, "could not write %s\n", path);
        else
                fprintf(out, "JSON report: %s\n", path);
out:
        json_decref(rows);
        json_decref(root);
        for (int i = 0; i < PROW_COUNT; i++)
                free(v[i]);
        return r;
}
