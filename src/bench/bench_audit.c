/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench audit`: appends per second to the audit log, with and
 * without fsync, and verify throughput on a log of N records; then the cost
 * of the approval path for a GREEN action against a whole `run -- true`
 * measured in the same run (the bound: under 1%). Works on a
 * scratch home under <home>/bench, never on the real log.
 */
#include "bench/bench_audit.h"
#include "audit/audit.h"
#include "bench/bench_exec.h"
#include "bench/stats.h"
#include "policy/approve.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/monotime.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int appends(const char *home, unsigned n, int sync, double *per_s, struct lg_err **err)
{
        json_t *f = json_pack("{s:s,s:[s,s,s],s:i}", "what", "a benchmark record", "argv", "sh",
                              "-c", "true", "exit_code", 0);
        uint64_t t0 = mono_ns();
        int r = 0;

        for (unsigned i = 0; r == 0 && i < n; i++)
                r = audit_append(home, "bench.append", "sb-0123456789ab", f, sync, err);
        json_decref(f);
        *per_s = (double)n / ((double)(mono_ns() - t0) / 1e9);
        return r;
}

#define GREEN_SAMPLES 20000
#define RUN_SAMPLES   20

/*
 * What every command of `run` goes through before it may start: classify
 * it (a sandbox exec) and take the GREEN answer. Per call, in microseconds.
 */
static void green_path(const char *home, struct stats *st)
{
        static double us[GREEN_SAMPLES];
        struct approve_ctx ctx = {.home = home, .mode = APPROVE_MODE_DENY, .intr_fd = -1};
        struct policy_action act = {.kind = POLICY_SANDBOX_EXEC};
        struct approve_answer a;
        struct lg_err *err = NULL;

        for (size_t i = 0; i < GREEN_SAMPLES; i++) {
                uint64_t t0 = mono_ns();

                /* A GREEN action never builds a card, so none is passed. */
                if (approve_ask(&ctx, &act, NULL, NULL, &a, &err) < 0 || !approve_granted(&a))
                        err_free(&err);
                us[i] = (double)(mono_ns() - t0) / 1e3;
        }
        stats_compute(us, GREEN_SAMPLES, st);
}

/* `luminaguard run -- true` end to end (a pool serves it when one runs), in ms. */
static int run_true(struct stats *st, struct lg_err **err)
{
        static double ms[RUN_SAMPLES];
        char self[4096];
        const char *argv[] = {self, "run", "--", "true", NULL};
        int status;

        if (bench_self(self, sizeof(self)) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "/proc/self/exe");
        for (size_t i = 0; i < RUN_SAMPLES; i++) {
                int r = bench_exec(argv, 1, &ms[i], &status);

                if (r < 0 || status != 0)
                        return err_set(err, LG_EK_START, r < 0 ? -r : 0,
                                       "`luminaguard run -- true` failed (status %d)", status);
        }
        stats_compute(ms, RUN_SAMPLES, st);
        return 0;
}

int bench_audit(const char *home, unsigned records, FILE *out, struct lg_err **err)
{
        char scratch[PATH_MAX];
        struct audit_report rep;
        double plain = 0, synced = 0, secs = 1;
        FILE *null = fopen("/dev/null", "we");
        uint64_t t0;
        int r;

        snprintf(scratch, sizeof(scratch), "%s/bench/audit.%d", home, (int)getpid());
        if (fs_remove_tree(scratch) < 0)
                return err_set(err, LG_EK_INTERNAL, EIO, "clear %s", scratch);
        fprintf(out, "bench audit: %u records without fsync, 200 with, then verify\n", records);
        r = appends(scratch, records, 0, &plain, err);
        if (r == 0)
                r = appends(scratch, 200, 1, &synced, err);
        if (r == 0) {
                t0 = mono_ns();
                r = audit_verify(scratch, null ? null : stderr, &rep, err);
                secs = (double)(mono_ns() - t0) / 1e9;
                if (r > 0)
                        r = err_set(err, LG_EK_INTERNAL, EBADMSG,
                                    "the benchmark's own log is broken");
        }
        if (null != NULL)
                fclose(null);
        if (fs_remove_tree(scratch) < 0)
                fprintf(out, "warning: could not remove %s\n", scratch);
        if (r < 0)
                return r;
        fprintf(out, "appends, no fsync (exec/egress records):   %10.0f /s\n", plain);
        fprintf(out, "appends, fsync (approval decisions):       %10.0f /s\n", synced);
        fprintf(out, "verify: %llu records in %.3f s:            %10.0f records/s\n",
                (unsigned long long)rep.records, secs, (double)rep.records / secs);

        struct stats green, run;

        green_path(home, &green);
        fprintf(out, "approval path, GREEN action (%u calls):  p50 %.2f us  p99 %.2f us\n",
                GREEN_SAMPLES, green.p50, green.p99);
        r = run_true(&run, err);
        if (r < 0)
                return r;
        fprintf(out, "run -- true, same run (%u runs):          p50 %.2f ms  p95 %.2f ms\n",
                RUN_SAMPLES, run.p50, run.p95);
        fprintf(out, "GREEN approval path / run -- true (p50):   %.6f %%  (bound: < 1 %%)\n",
                100.0 * green.p50 / 1e3 / run.p50);
        return 0;
}
