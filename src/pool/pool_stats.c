/* SPDX-License-Identifier: Apache-2.0 */
#include "pool/pool_stats.h"
#include "bench/stats.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/hostmem.h"
#include "sandbox/sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pool_stats_add(struct pool_samples *s, double v)
{
        s->v[s->n % POOL_SAMPLES] = v;
        s->n++;
}

static json_t *samples_json(const struct pool_samples *s)
{
        size_t n = s->n < POOL_SAMPLES ? (size_t)s->n : POOL_SAMPLES;
        _cleanup_free_ double *v = malloc((n ? n : 1) * sizeof(double));
        struct stats st;

        if (v == NULL)
                return NULL;
        memcpy(v, s->v, n * sizeof(double));
        stats_compute(v, n, &st);
        return json_pack("{s:I,s:f,s:f,s:f,s:f}", "n", (json_int_t)s->n, "p50", st.p50, "p95",
                         st.p95, "p99", st.p99, "max", st.max);
}

/* utime + stime of a process, in clock ticks. */
static long vmm_cpu_ticks(int pid)
{
        char path[64], *p;
        _cleanup_free_ char *text = NULL;
        unsigned long ut, st;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (fs_read_file(path, 4096, &text, NULL) < 0 || (p = strrchr(text, ')')) == NULL)
                return -1;
        /* After "(comm)": state is field 3; utime and stime are fields 14 and 15. */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (long)(ut + st);
}

json_t *pool_stats_json(const struct pool_stats *st, struct sandbox *const *idle, unsigned nidle)
{
        json_t *o, *mem = json_array();
        uint64_t total = st->hits + st->misses;

        for (unsigned i = 0; mem != NULL && i < nidle; i++) {
                int pid = sandbox_vmm_pid(idle[i]);
                long pss, priv;

                hostmem_process(pid, &pss, &priv);
                json_array_append_new(
                    mem, json_pack("{s:s,s:i,s:I,s:I,s:I}", "id", sandbox_id(idle[i]), "pid", pid,
                                   "pss_kib", (json_int_t)pss, "private_kib", (json_int_t)priv,
                                   "cpu_ticks", (json_int_t)vmm_cpu_ticks(pid)));
        }
        o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:b,s:f,s:o?,s:o?,s:o?,s:o?,s:I}", "hits",
                      (json_int_t)st->hits, "misses", (json_int_t)st->misses, "misses_prestarted",
                      (json_int_t)st->misses_prestarted, "replaced", (json_int_t)st->replaced,
                      "held_back", (json_int_t)st->held_back, "low_memory", st->low_memory,
                      "hit_rate", total ? (double)st->hits / (double)total : 0.0, "restore_ms",
                      samples_json(&st->restore_ms), "resume_ms", samples_json(&st->resume_ms),
                      "handover_ms", samples_json(&st->handover_ms), "idle_sandboxes", mem,
                      "clock_ticks_per_s", (json_int_t)sysconf(_SC_CLK_TCK));
        return o;
}
