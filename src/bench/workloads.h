/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What `bench workload` runs (bench_workload.c measures it): each workload
 * is a shell line run in the sandbox as an agent would run it, with what it
 * needs from the host — a packed workspace, an egress allow-list, origin
 * servers, a certificate on stdin — and the one result it must give, known
 * here in advance, so a figure is only printed for work that was done right.
 */
#ifndef LG_BENCH_WORKLOADS_H
#define LG_BENCH_WORKLOADS_H

#include <limits.h>
#include <stddef.h>

#include "bench/bench_origin.h"
#include "net/allowlist.h"
#include "run/run_workspace.h"

struct lg_err;
struct run_result;

struct workload {
        const char *name;
        const char *what;
        char line[1024];   /* run by /bin/sh -c in the guest */
        char expect[4096]; /* its whole stdout */
        const struct net_allowlist *allow;
        const char *stdin_data;
        int workspace;  /* runs with the fixture workspace copied in, and out */
        char skip[256]; /* why it cannot run on this host, or "" */
};

struct workloads {
        struct workload *w;
        size_t n;
        struct bench_origin origin;
        struct net_allowlist npm_allow, http_allow;
        char ws_dir[PATH_MAX];
        struct run_ws ws;           /* ws_dir, packed */
        unsigned char f000_sha[32]; /* f000 as the workspace workload leaves it */
        int origin_up, ws_packed;
};

/*
 * Build every workload's line and expected result, and its fixtures: the
 * 10 MiB workspace (under TMPDIR), the origin servers, the allow-lists.
 * only: set up that workload alone (NULL: all). 0, or < 0 with *err;
 * workloads_free() either way.
 */
int workloads_init(struct workloads *wl, const char *home, const char *only, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Whether res is the right result of w (and, for the workspace workload,
 * whether wl->ws holds the right change set). 0, or LG_EK_INTERNAL saying
 * what was wrong.
 */
int workload_check(struct workloads *wl, const struct workload *w, const struct run_result *res,
                   struct lg_err **err) __attribute__((warn_unused_result));

/* Remove the workspace's last change set, if any: the benchmark never applies one. */
void workload_drop_changes(struct workloads *wl);

void workloads_free(struct workloads *wl);

#endif
