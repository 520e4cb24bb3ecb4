/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machinery of one `run`, shared by the CLI (which streams) and by
 * run_capture() (which captures, for MCP): a sandbox from the pool or
 * started here, the job with its audit records and workspace sync, the
 * policy file.
 */
#ifndef LG_RUN_RUN_JOB_H
#define LG_RUN_RUN_JOB_H

#include <stddef.h>

struct agent_conn;
struct lg_err;
struct policy;
struct proto_exec;
struct run_opts;
struct run_ws;
struct sandbox;
struct sandbox_exec_io;
struct sandbox_exec_result;

/*
 * One sandbox's whole job, with its records: the command recorded before it
 * runs, the workspace in, the command, its end, the workspace out. sb is the
 * sandbox when the caller started it (for better messages), NULL for a
 * pool's. 0 or < 0 with *err.
 */
int run_job(const char *home, const struct run_opts *o, const char *id, const char *how,
            struct agent_conn *c, int pidfd, struct sandbox *sb, const struct proto_exec *x,
            const struct sandbox_exec_io *io, struct run_ws *ws, struct sandbox_exec_result *res,
            struct lg_err **err) __attribute__((warn_unused_result));

/*
 * run_in_pool() found no pool to serve it (none running, another shape):
 * start a sandbox yourself. Any other failure, whatever its errno, ends the
 * run: once a pool handed a sandbox over, the command must not run twice.
 */
#define RUN_NO_POOL 1

/*
 * The job in a sandbox from a running pool: 0, RUN_NO_POOL, or < 0 with
 * *err. The sandbox's id goes to id_out (may be NULL) once it is known.
 */
int run_in_pool(const char *home, const struct run_opts *o, const struct proto_exec *x,
                const struct sandbox_exec_io *io, struct run_ws *ws,
                struct sandbox_exec_result *res, char *id_out, size_t id_outsz, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * A sandbox of the shape o asks for, started here (no pool): restored from
 * its template, or built, or cold-booted. *how names the path for the audit
 * log ("restored", "built", "cold"). 0 or < 0 with *err.
 */
int run_spawn(const char *home, const struct run_opts *o, int intr_fd, struct sandbox **sb,
              const char **how, struct lg_err **err) __attribute__((warn_unused_result));

/*
 * The policy file: o->policy_file, else <home>/policy when it exists, else
 * none (*out = NULL: the built-in rules). A file that is there but wrong is
 * an error, not a silent fallback to the defaults.
 */
int run_load_policy(const char *home, const struct run_opts *o, struct policy *p,
                    const struct policy **out, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
