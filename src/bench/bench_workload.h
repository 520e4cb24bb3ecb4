/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard bench workload`: real agent work in sandboxes of the full image. */
#ifndef LG_BENCH_BENCH_WORKLOAD_H
#define LG_BENCH_BENCH_WORKLOAD_H

#include <stdio.h>

struct lg_err;

struct bench_workload_opts {
        unsigned runs;    /* timed runs per workload, each in a fresh pooled sandbox */
        unsigned ops;     /* operations in one sandbox for the memory-stability check */
        const char *only; /* one workload by name, or NULL for all */
};

/*
 * Start a pool of the full image, run each workload `runs` times (a fresh
 * sandbox each, as `run` would get it), check every result, and print
 * p50/p95 of spawn-to-result; then run them once more and `ops` small
 * operations in one sandbox, sampling its VMM's PSS and the guest's used
 * memory. A wrong result or a bound exceeded is an error, not a figure.
 */
int bench_workload(const char *home, const struct bench_workload_opts *o, FILE *out,
                   struct lg_err **err) __attribute__((warn_unused_result));

#endif
