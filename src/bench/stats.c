/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y ? 1 : 0;
}

double stats_percentile(const double *sorted, size_t n, double p)
{
        size_t rank;

        if (n == 0)
                return 0;
        rank = (size_t)ceil(p / 100.0 * (double)n);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return sorted[rank - 1];
}

void stats_compute(double *samples, size_t n, struct stats *out)
{
        double sum = 0;

        memset(out, 0, sizeof(*out));
        if (n == 0)
                return;
        qsort(samples, n, sizeof(*samples), cmp_double);
        for (size_t i = 0; i < n; i++)
                sum += samples[i];
        out->n = n;
        out->min = samples[0];
        out->max = samples[n - 1];
        out->mean = sum / (double)n;
        out->p50 = stats_percentile(samples, n, 50);
        out->p95 = stats_percentile(samples, n, 95);
        out->p99 = stats_percentile(samples, n, 99);
}
