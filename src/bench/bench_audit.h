/* SPDX-License-Identifier: Apache-2.0 */
#ifndef LG_BENCH_BENCH_AUDIT_H
#define LG_BENCH_BENCH_AUDIT_H

#include <stdio.h>

struct lg_err;

/* Append and verify throughput of the audit log (bench_audit.c). */
int bench_audit(const char *home, unsigned records, FILE *out, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
