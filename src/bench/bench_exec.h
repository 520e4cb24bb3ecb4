/* SPDX-License-Identifier: Apache-2.0 */
/* What the benchmarks share: running a command and timing it, and watching a pool fill. */
#ifndef LG_BENCH_BENCH_EXEC_H
#define LG_BENCH_BENCH_EXEC_H

#include <jansson.h>
#include <sys/types.h>

/*
 * Run argv (PATH searched) with stdin and stdout on /dev/null, and stderr
 * too when quiet. status NULL: do not wait, return the pid. Otherwise wait:
 * *ms is the time to its exit, *status its wait status. -errno on failure.
 */
int bench_exec(const char *const argv[], int quiet, double *ms, int *status);

/* This binary's path (/proc/self/exe) into out. */
int bench_self(char *out, size_t outsz);

/* The running pool's status as a JSON object (new reference), NULL if none answers. */
json_t *bench_pool_json(const char *home);

/* Wait until the pool holds n idle sandboxes. 0, or -ETIMEDOUT. */
int bench_pool_wait_idle(const char *home, unsigned n, int timeout_ms);

#endif
