/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench boot`: cold boot to "agent ready" and `run -- true` end
 * to end, against plain QEMU booting the same kernel and initramfs to a shell
 * prompt in the same run. Rows are interleaved so machine noise hits all of
 * them alike; the ratios are the figures to quote.
 */
#ifndef LG_BENCH_BENCH_BOOT_H
#define LG_BENCH_BENCH_BOOT_H

#include <stdio.h>

struct lg_err;

struct bench_boot_opts {
        unsigned runs;         /* samples per row (>= 1) */
        const char *json_path; /* also write JSON here; NULL = <home>/bench/boot-<time>.json */
};

int bench_boot(const char *home, const struct bench_boot_opts *o, FILE *out, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
