/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What `run` writes to the audit log (src/audit): the sandbox it got and
 * the command it starts — both before the command runs, and if either
 * cannot be recorded the command does not run — then how it ended and how
 * the sandbox went. Environment values are not recorded (they carry
 * secrets), only their names; argv is recorded up to a bound.
 */
#ifndef LG_RUN_RUN_AUDIT_H
#define LG_RUN_RUN_AUDIT_H

#include "run/run_opts.h"
#include "sandbox/exec.h"

struct lg_err;

/* sandbox.start. how: "pool-hit", "pool-miss", "restored", "built", "cold", "session". */
int run_audit_sandbox(const char *home, const char *sandbox, const struct run_opts *o,
                      const char *how, struct lg_err **err) __attribute__((warn_unused_result));

/* exec.start, fsync'd: the command does not run unless this returned 0. */
int run_audit_exec(const char *home, const char *sandbox, const struct run_opts *o,
                   struct lg_err **err) __attribute__((warn_unused_result));

/* Both of the above. */
int run_audit_start(const char *home, const char *sandbox, const struct run_opts *o,
                    const char *how, struct lg_err **err) __attribute__((warn_unused_result));

/* exec.end: the result, or the error that ended the command (exec_err). */
int run_audit_end(const char *home, const char *sandbox, const struct sandbox_exec_result *res,
                  const struct lg_err *exec_err, double ms, struct lg_err **err)
    __attribute__((warn_unused_result));

/* sandbox.destroy (verified or not) or, for a pooled one, sandbox.release. */
int run_audit_gone(const char *home, const char *sandbox, int pooled, const struct lg_err *why,
                   struct lg_err **err) __attribute__((warn_unused_result));

#endif
