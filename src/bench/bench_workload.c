/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench workload` (see bench_workload.h): the measuring. What
 * runs, and what it must give, is in workloads.c.
 */
#include "bench/bench_workload.h"
#include "bench/bench_exec.h"
#include "bench/stats.h"
#include "bench/workloads.h"
#include "common/err.h"
#include "common/hostmem.h"
#include "common/monotime.h"
#include "run/run.h"
#include "sandbox/files.h"
#include "sandbox/sandbox.h"
#include "sandbox/spawn.h"
#include "vmm/accel.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_SIZE 2
/* Bounds of the stability check: growth over the second half of the operations. */
/*
 * The VMM's PSS moves by ±15 MiB between samples under TCG once it has
 * settled (the translation buffer is flushed and refilled). Growth is the
 * median of the last three samples against the median of the three around
 * the middle, which that noise barely moves; 32 MiB over 500 operations
 * still catches a leak of 64 KiB per operation.
 */
#define VMM_GROWTH_MAX_MIB   32.0
#define GUEST_GROWTH_MAX_MIB 8.0

/* A run of w in a fresh sandbox of this backend, as `run` would get it. */
static int run_one(const char *home, struct workloads *wl, const struct workload *w,
                   enum sandbox_backend backend, double *ms, struct lg_err **err)
{
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)w->line, NULL};
        struct run_request rq = {.argv = argv,
                                 .argc = 3,
                                 .timeout_ms = 600000,
                                 .image = "full",
                                 .backend = backend,
                                 .allow = w->allow,
                                 .stdin_data = w->stdin_data,
                                 .stdin_len = w->stdin_data ? strlen(w->stdin_data) : 0,
                                 .ws = w->workspace ? &wl->ws : NULL};
        struct run_result res = {0};
        uint64_t t0 = mono_ns();
        int r;

        r = run_capture(home, &rq, -1, &res, err);
        *ms = (double)(mono_ns() - t0) / 1e6;
        if (r == 0)
                r = workload_check(wl, w, &res, err);
        workload_drop_changes(wl); /* copied out, looked at or not: never applied */
        run_result_free(&res);
        return r;
}

/* The guest's used memory (MemTotal - MemAvailable) in MiB, read through the agent. */
static double guest_used_mib(struct sandbox *sb)
{
        char *text = NULL;
        size_t len = 0;
        int trunc = 0;
        long total = -1, avail = -1;
        struct lg_err *err = NULL;

        if (sandbox_read_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, "/proc/meminfo", 16384,
                              &text, &len, &trunc, &err) < 0) {
                err_free(&err);
                return -1;
        }
        for (char *p = text; p != NULL && p < text + len; p = strchr(p, '\n'), p = p ? p + 1 : p) {
                sscanf(p, "MemTotal: %ld kB", &total);
                sscanf(p, "MemAvailable: %ld kB", &avail);
        }
        free(text);
        return total > 0 && avail >= 0 ? (double)(total - avail) / 1024.0 : -1;
}

static double median3(const double *v)
{
        double a = v[0], b = v[1], c = v[2];

        return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

static double vmm_pss_mib(struct sandbox *sb)
{
        long pss, priv;

        hostmem_process(sandbox_vmm_pid(sb), &pss, &priv);
        return pss >= 0 ? (double)pss / 1024.0 : -1;
}

/* One small operation, number i: a file written, read back, or a command. */
static int small_op(const char *home, struct sandbox *sb, unsigned i, struct lg_err **err)
{
        char path[64], data[4096], *back = NULL, line[64], want[32];
        size_t len = 0;
        int trunc = 0, r;

        snprintf(path, sizeof(path), "/tmp/op%u", i % 10);
        memset(data, 'a' + (int)(i % 26), sizeof(data));
        switch (i % 3) {
        case 0:
                return sandbox_write_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, path, data,
                                          sizeof(data), 0644, err);
        case 1:
                snprintf(path, sizeof(path), "/tmp/op%u", (i - 1) % 10);
                r = sandbox_read_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, path,
                                      sizeof(data), &back, &len, &trunc, err);
                if (r == 0 && (len != sizeof(data) || back[0] != 'a' + (int)((i - 1) % 26)))
                        r = err_set(err, LG_EK_INTERNAL, 0, "op %u: %s read back wrong", i, path);
                free(back);
                return r;
        default: {
                char *argv[] = {(char *)"/bin/sh", (char *)"-c", line, NULL};
                struct run_request rq = {.argv = argv, .argc = 3, .timeout_ms = 60000};
                struct run_result res = {0};

                snprintf(line, sizeof(line), "echo $((%u * %u))", i, i);
                snprintf(want, sizeof(want), "%llu\n", (unsigned long long)i * i);
                r = run_exec_on(home, sandbox_id(sb), sandbox_agent(sb), sandbox_vmm_pidfd(sb), &rq,
                                -1, &res, err);
                if (r == 0 && strcmp(res.out ? res.out : "", want) != 0)
                        r = err_set(err, LG_EK_INTERNAL, 0, "op %u: [%s] want [%s]", i,
                                    res.out ? res.out : "", want);
                run_result_free(&res);
                return r;
        }
        }
}

/*
 * w in the live sandbox sb, as a session would run it: the workspace, if
 * any, copied in before and out after.
 */
static int exec_in(const char *home, struct workloads *wl, const struct workload *w,
                   struct sandbox *sb, struct lg_err **err)
{
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)w->line, NULL};
        struct run_request rq = {.argv = argv,
                                 .argc = 3,
                                 .timeout_ms = 600000,
                                 .image = "full",
                                 .allow = w->allow,
                                 .stdin_data = w->stdin_data,
                                 .stdin_len = w->stdin_data ? strlen(w->stdin_data) : 0,
                                 .workdir = w->workspace ? WS_GUEST_DIR : NULL};
        struct run_result res = {0};
        struct agent_conn *c = sandbox_agent(sb);
        int pidfd = sandbox_vmm_pidfd(sb), r = 0;

        /* A second copy-in lands on the first one's leftovers: start from none. */
        if (w->workspace) {
                struct run_request clean = rq;
                char *rm[] = {(char *)"rm", (char *)"-rf", (char *)WS_GUEST_DIR, NULL};

                clean.argv = rm, clean.argc = 3, clean.workdir = NULL, clean.allow = NULL;
                clean.stdin_data = NULL, clean.stdin_len = 0;
                r = run_exec_on(home, sandbox_id(sb), c, pidfd, &clean, -1, &res, err);
                run_result_free(&res);
                if (r == 0)
                        r = run_ws_copy_in(&wl->ws, home, c, pidfd, sandbox_id(sb), -1, err);
        }
        if (r == 0)
                r = run_exec_on(home, sandbox_id(sb), c, pidfd, &rq, -1, &res, err);
        if (r == 0 && w->workspace)
                r = run_ws_copy_out(&wl->ws, home, c, pidfd, -1, err);
        if (r == 0)
                r = workload_check(wl, w, &res, err);
        workload_drop_changes(wl);
        run_result_free(&res);
        return r;
}

/* Each workload once more, and then the small operations, in one sandbox. */
static int stability(const char *home, struct workloads *wl, const struct bench_workload_opts *o,
                     FILE *out, struct lg_err **err)
{
        struct spawn_opts so = {.image = "full",
                                .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
                                .cpus = SANDBOX_DEFAULT_CPUS,
                                .boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS,
                                .intr_fd = -1,
                                .build_image = 1};
        struct sandbox *sb = NULL;
        enum spawn_path how;
        struct lg_err *derr = NULL;
        int r;

        if (sandbox_spawn(home, &so, &sb, &how, err) < 0)
                return -1;
        fprintf(out, "\n  memory after each workload, in one sandbox (MiB):\n");
        fprintf(out, "  %-14s %12s %12s\n", "workload", "VMM PSS", "guest used");
        fprintf(out, "  %-14s %12.1f %12.1f\n", "(idle)", vmm_pss_mib(sb), guest_used_mib(sb));
        r = 0;
        for (size_t k = 0; r == 0 && k < wl->n; k++) {
                const struct workload *w = &wl->w[k];

                if (w->skip[0] != '\0')
                        continue;
                r = exec_in(home, wl, w, sb, err);
                if (r == 0)
                        fprintf(out, "  %-14s %12.1f %12.1f\n", w->name, vmm_pss_mib(sb),
                                guest_used_mib(sb));
        }
        /*
         * Sampled every tenth. A VMM's memory grows while the guest first
         * touches its RAM and TCG translates new code, up to the guest's
         * size plus the translation buffer; a leak keeps growing. So the
         * bound is on the second half, after that first touch settles.
         */
        double pss[11], used[11], t0 = (double)mono_ns();
        unsigned step = o->ops / 10 ? o->ops / 10 : 1, s = 0;

        pss[0] = vmm_pss_mib(sb);
        used[0] = guest_used_mib(sb);
        for (unsigned i = 0; r == 0 && i < o->ops; i++) {
                r = small_op(home, sb, i, err);
                if (r == 0 && (i + 1) % step == 0 && s < 10) {
                        s++;
                        pss[s] = vmm_pss_mib(sb);
                        used[s] = guest_used_mib(sb);
                }
        }
        if (r == 0 && s < 4)
                r = err_set(err, LG_EK_USAGE, 0, "--ops %u: too few to judge (at least 4)", o->ops);
        for (unsigned k = 0; r == 0 && k <= s; k++)
                if (pss[k] < 0 || used[k] < 0)
                        r = err_set(err, LG_EK_INTERNAL, 0,
                                    "the sandbox's memory could not be read (sample %u)", k);
        if (r == 0) {
                double secs = ((double)mono_ns() - t0) / 1e9;
                unsigned h = s / 2;
                double dp = median3(&pss[s - 2]) - median3(&pss[h - 1]),
                       du = median3(&used[s - 2]) - median3(&used[h - 1]);

                fprintf(out,
                        "\n  stability: %u operations in one sandbox (file write, read back, "
                        "command; %.1f ops/s)\n  VMM PSS every %u ops (MiB):",
                        o->ops, (double)o->ops / (secs > 0 ? secs : 1), step);
                for (unsigned k = 0; k <= s; k++)
                        fprintf(out, " %.0f", pss[k]);
                fprintf(out, "\n  guest used every %u ops (MiB):", step);
                for (unsigned k = 0; k <= s; k++)
                        fprintf(out, " %.0f", used[k]);
                fprintf(out,
                        "\n  second half (ops %u to %u, medians of 3 samples): VMM PSS %+.1f "
                        "MiB (bound %.0f), guest used %+.1f MiB (bound %.0f)\n",
                        h * step, s * step, dp, VMM_GROWTH_MAX_MIB, du, GUEST_GROWTH_MAX_MIB);
                if (dp > VMM_GROWTH_MAX_MIB || du > GUEST_GROWTH_MAX_MIB)
                        r = err_set(err, LG_EK_INTERNAL, 0,
                                    "memory grew past its bound over the second half of %u "
                                    "operations",
                                    o->ops);
        }
        if (sandbox_destroy(sb, &derr) < 0) {
                if (r == 0)
                        r = err_code(derr), *err = derr, derr = NULL;
                err_free(&derr);
        }
        return r;
}

int bench_workload(const char *home, const struct bench_workload_opts *o, FILE *out,
                   struct lg_err **err)
{
        char self[PATH_MAX];
        double *vm = calloc(o->runs, sizeof(double)), *proc = calloc(o->runs, sizeof(double));
        /* The peer runs the same line with no VM, in the same root filesystem: root only. */
        int peer = geteuid() == 0;
        struct workloads wl;
        pid_t pool = -1;
        int r;

        memset(&wl, 0, sizeof(wl));
        if (vm == NULL || proc == NULL || bench_self(self, sizeof(self)) < 0) {
                r = err_set(err, LG_EK_INTERNAL, ENOMEM, "bench workload");
                goto out;
        }
        r = workloads_init(&wl, home, o->only, err);
        if (r < 0)
                goto out;
        {
                const char *args[] = {self,   "pool",   "serve", "--image",
                                      "full", "--size", "2",     NULL};
                int p = bench_exec(args, 0, NULL, NULL);

                if (p < 0) {
                        r = err_set(err, LG_EK_INTERNAL, -p, "start a pool");
                        goto out;
                }
                pool = (pid_t)p;
                /* The first pool of the full image may build it (~2 min) and its template. */
                if (bench_pool_wait_idle(home, POOL_SIZE, 900000) < 0) {
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not fill");
                        goto out;
                }
        }
        fprintf(out,
                "bench workload: full image, %u runs each, spawn to checked result (ms).\n"
                "  vm: a micro-VM from a warm pool of %d. process: the peer, the same line in "
                "the same root\n  filesystem with no VM (the process backend, started per "
                "run), alternating with vm.\n",
                o->runs, POOL_SIZE);
        fprintf(out, "  %-12s %4s %9s %9s %9s %9s %7s   %s\n", "workload", "n", "vm p50", "vm p95",
                "proc p50", "proc p95", "vm/proc", "what");
        for (size_t k = 0; r == 0 && k < wl.n; k++) {
                const struct workload *w = &wl.w[k];
                struct stats sv, sp;

                if (w->skip[0] != '\0') {
                        fprintf(out, "  %-12s skipped: %s\n", w->name, w->skip);
                        continue;
                }
                for (unsigned i = 0; r == 0 && i < o->runs; i++) {
                        r = run_one(home, &wl, w, SANDBOX_VM, &vm[i], err);
                        if (r == 0 && peer)
                                r = run_one(home, &wl, w, SANDBOX_PROCESS, &proc[i], err);
                        /* Each run gets a pool hit, as a steady stream of requests would. */
                        if (r == 0 && bench_pool_wait_idle(home, POOL_SIZE, 120000) < 0)
                                r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
                }
                if (r < 0) {
                        err_wrap(err, "workload %s", w->name);
                        break;
                }
                stats_compute(vm, o->runs, &sv);
                if (peer) {
                        stats_compute(proc, o->runs, &sp);
                        fprintf(out, "  %-12s %4u %9.1f %9.1f %9.1f %9.1f %7.1f   %s\n", w->name,
                                o->runs, sv.p50, sv.p95, sp.p50, sp.p95,
                                sp.p50 > 0 ? sv.p50 / sp.p50 : 0, w->what);
                } else {
                        fprintf(out, "  %-12s %4u %9.1f %9.1f %9s %9s %7s   %s\n", w->name, o->runs,
                                sv.p50, sv.p95, "-", "-", "-", w->what);
                }
        }
        if (r == 0 && !peer)
                fprintf(out, "  (no process column: the process backend needs root)\n");
        if (r == 0 && o->ops > 0)
                r = stability(home, &wl, o, out, err);
        if (r == 0) {
                char why[256];

                fprintf(out,
                        "\n  accelerator: %s. Under TCG every guest instruction is "
                        "emulated and the interpreters'\n  start-up dominates these "
                        "figures; they hold for this host only.\n",
                        accel_name(accel_choose(home, why, sizeof(why))));
        }
out:
        if (pool > 0) {
                kill(pool, SIGTERM);
                while (waitpid(pool, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        workloads_free(&wl);
        free(vm);
        free(proc);
        return r;
}
