/* SPDX-License-Identifier: Apache-2.0 */
/* Counters and latency samples of the pool, and its status object. */
#ifndef LG_POOL_POOL_STATS_H
#define LG_POOL_POOL_STATS_H

#include <jansson.h>
#include <stdint.h>

struct sandbox;

#define POOL_SAMPLES 4096 /* the most recent samples are kept */

struct pool_samples {
        double v[POOL_SAMPLES];
        uint64_t n; /* total ever added; v is a ring */
};

struct pool_stats {
        uint64_t hits, misses, replaced;
        uint64_t misses_prestarted;      /* misses served by a pre-started process */
        uint64_t held_back;              /* refills put off for want of host memory */
        int low_memory;                  /* refills are being put off now */
        struct pool_samples restore_ms;  /* restore + reseed of one sandbox, new process */
        struct pool_samples resume_ms;   /* restore + reseed into a pre-started process */
        struct pool_samples handover_ms; /* request received -> descriptors sent */
};

void pool_stats_add(struct pool_samples *s, double v);

/*
 * Counters, p50/p95/p99 of the samples, and per idle sandbox the VMM's PSS
 * and private memory (smaps_rollup) and CPU time. New reference or NULL.
 */
json_t *pool_stats_json(const struct pool_stats *st, struct sandbox *const *idle, unsigned nidle);

#endif
