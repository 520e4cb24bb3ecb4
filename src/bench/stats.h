/* SPDX-License-Identifier: Apache-2.0 */
/* Order statistics for benchmark samples (nearest-rank percentiles). */
#ifndef LG_BENCH_STATS_H
#define LG_BENCH_STATS_H

#include <stddef.h>

struct stats {
        size_t n;
        double min, p50, p95, p99, max, mean;
};

/* Sorts samples in place. n == 0 gives all zeros. */
void stats_compute(double *samples, size_t n, struct stats *out);

/* Nearest-rank percentile (0 < p <= 100) of sorted samples. */
double stats_percentile(const double *sorted, size_t n, double p);

#endif
