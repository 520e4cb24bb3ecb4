/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench spawn`: how fast a sandbox becomes ready, by path —
 * warm-pool hit, restore from the template in a new QEMU process, cold boot —
 * next to plain QEMU restoring a snapshot whose RAM is streamed in the state
 * file (the peer), plus the pool's hit rate under a steady request stream and
 * the memory and CPU of idle pooled sandboxes. Measured, never assumed.
 */
#ifndef LG_BENCH_BENCH_SPAWN_H
#define LG_BENCH_BENCH_SPAWN_H

#include <stdio.h>

struct lg_err;

struct bench_spawn_opts {
        unsigned runs;        /* samples per fast row */
        unsigned cold_runs;   /* samples of the cold-boot row (seconds each under TCG) */
        unsigned pool_size;   /* idle sandboxes in the pool under test */
        unsigned rate;        /* requests per second of the steady stream */
        unsigned stream_secs; /* length of the stream */
        unsigned hold;        /* then hold this many idle sandboxes at once (0 = skip) */
        const char *json_path;
        const char *baseline; /* compare with this earlier report; NULL = none */
};

/* The process backend against bwrap (bench_process.c): 0 or < 0. */
int bench_process(const char *home, const struct bench_spawn_opts *o, FILE *out,
                  struct lg_err **err) __attribute__((warn_unused_result));

/* Returns 0, or 1 when a row is more than 10% worse than the baseline; < 0 on error. */
int bench_spawn(const char *home, const struct bench_spawn_opts *o, FILE *out, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
