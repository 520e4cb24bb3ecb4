/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench audit`: appends per second to the audit log, with and
 * without fsync, and verify throughput on a log of N records. Works on a
 * scratch home under <home>/bench, never on the real log.
 */
#include "bench/bench_audit.h"
#include "audit/audit.h"
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
        return 0;
}
