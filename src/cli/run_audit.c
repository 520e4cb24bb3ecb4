/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/run_audit.h"
#include "audit/audit.h"
#include "common/err.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#define AUDIT_ARGV_BYTES 4096 /* argv beyond this is recorded as truncated */

static int record(const char *home, const char *event, const char *sandbox, json_t *f,
                  struct lg_err **err)
{
        int r;

        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "audit record");
        r = audit_append(home, event, sandbox, f, 0, err);
        json_decref(f);
        return r;
}

int run_audit_start(const char *home, const char *sandbox, const struct run_opts *o,
                    const char *how, struct lg_err **err)
{
        json_t *argv = json_array(), *env = json_array();
        size_t bytes = 0;
        int truncated = 0, r;

        for (int i = 0; argv != NULL && i < o->argc; i++) {
                bytes += strlen(o->argv[i]) + 1;
                if (bytes > AUDIT_ARGV_BYTES) {
                        truncated = 1;
                        break;
                }
                json_array_append_new(argv, json_string(o->argv[i]));
        }
        for (size_t i = 0; env != NULL && i < o->envc; i++)
                json_array_append_new(env, json_stringn(o->env[i], strcspn(o->env[i], "=")));
        r = record(home, "sandbox.start", sandbox,
                   json_pack("{s:s,s:s,s:s,s:I,s:i,s:b}", "backend",
                             o->backend == SANDBOX_PROCESS ? "process" : "vm", "image", o->image,
                             "how", how, "memory_mib", (json_int_t)o->memory_mib, "cpus",
                             (int)o->cpus, "network", o->net),
                   err);
        if (r == 0)
                r = record(home, "exec.start", sandbox,
                           json_pack("{s:o,s:b,s:o,s:s,s:I}", "argv", argv, "argv_truncated",
                                     truncated, "env_names", env, "cwd",
                                     o->workdir ? o->workdir : "/", "timeout_ms",
                                     (json_int_t)o->timeout_ms),
                           err);
        else {
                json_decref(argv);
                json_decref(env);
        }
        return r;
}

int run_audit_end(const char *home, const char *sandbox, const struct sandbox_exec_result *res,
                  const struct lg_err *exec_err, double ms, struct lg_err **err)
{
        json_t *f;

        if (exec_err != NULL)
                f = json_pack("{s:s,s:f}", "error", exec_err->msg, "ms", ms);
        else if (res->spawn_errno)
                f = json_pack("{s:i,s:s,s:f}", "spawn_errno", res->spawn_errno, "message",
                              res->message, "ms", ms);
        else
                f = json_pack("{s:i,s:i,s:b,s:f,s:I,s:I}", "exit_code", res->exit_code, "signal",
                              res->signo, "timed_out", res->timed_out, "ms", ms, "out_bytes",
                              (json_int_t)res->out_bytes, "err_bytes", (json_int_t)res->err_bytes);
        return record(home, "exec.end", sandbox, f, err);
}

int run_audit_gone(const char *home, const char *sandbox, int pooled, const struct lg_err *why,
                   struct lg_err **err)
{
        return record(home, pooled ? "sandbox.release" : "sandbox.destroy", sandbox,
                      why ? json_pack("{s:b,s:s}", "verified", 0, "error", why->msg)
                          : json_pack("{s:b}", "verified", !pooled),
                      err);
}
