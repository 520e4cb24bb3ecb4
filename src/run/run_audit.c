/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_audit.h"
#include "audit/audit.h"
#include "workspace/workspace.h"
#include "common/err.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_ARGV_BYTES 4096 /* argv beyond this is recorded as truncated */

static int record(const char *home, const char *event, const char *sandbox, json_t *f, int sync,
                  struct lg_err **err)
{
        int r;

        if (f == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "audit record for %s", event);
        r = audit_append(home, event, sandbox, f, sync, err);
        json_decref(f);
        return r;
}

/*
 * Bytes as a JSON string, losslessly: as they are when they are UTF-8,
 * otherwise with every byte outside printable ASCII (and the backslash)
 * written as \xNN and the string marked with a leading "\x!" — so a
 * command cannot hide from its record behind one invalid byte.
 */
static json_t *text(const char *s, size_t n)
{
        json_t *j = json_stringn(s, n);
        char *esc, *p;

        if (j != NULL)
                return j;
        esc = malloc(n * 4 + 4);
        if (esc == NULL)
                return NULL;
        p = esc + sprintf(esc, "\\x!");
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c < 0x7f && c != '\\')
                        *p++ = (char)c;
                else
                        p += sprintf(p, "\\x%02x", c);
        }
        j = json_stringn(esc, (size_t)(p - esc));
        free(esc);
        return j;
}

static void sha256_argv(const struct run_opts *o, char out[65])
{
        unsigned char d[32];
        unsigned len = 0;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL);

        for (int i = 0; ok && i < o->argc; i++)
                ok = EVP_DigestUpdate(c, o->argv[i], strlen(o->argv[i]) + 1);
        ok = ok && EVP_DigestFinal_ex(c, d, &len) && len == 32;
        EVP_MD_CTX_free(c);
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", ok ? d[i] : 0);
}

int run_audit_sandbox(const char *home, const char *sandbox, const struct run_opts *o,
                      const char *how, struct lg_err **err)
{
        return record(home, "sandbox.start", sandbox,
                      json_pack("{s:s,s:s,s:s,s:I,s:i,s:b}", "backend",
                                o->backend == SANDBOX_PROCESS ? "process" : "vm", "image", o->image,
                                "how", how, "memory_mib", (json_int_t)o->memory_mib, "cpus",
                                (int)o->cpus, "network", o->net),
                      0, err);
}

int run_audit_exec(const char *home, const char *sandbox, const struct run_opts *o,
                   struct lg_err **err)
{
        json_t *argv = json_array(), *env = json_array(), *f;
        char digest[65];
        size_t bytes = 0;
        int truncated = 0, ok = argv != NULL && env != NULL;

        /* Every element, or the command does not run: nothing is dropped quietly. */
        for (int i = 0; ok && i < o->argc; i++) {
                size_t n = strlen(o->argv[i]);

                if (bytes + n > AUDIT_ARGV_BYTES) {
                        n = AUDIT_ARGV_BYTES - bytes; /* cut; the digest covers all of it */
                        truncated = 1;
                }
                bytes += n;
                ok = json_array_append_new(argv, text(o->argv[i], n)) == 0;
                if (truncated)
                        break;
        }
        for (size_t i = 0; ok && i < o->envc; i++)
                ok = json_array_append_new(env, text(o->env[i], strcspn(o->env[i], "="))) == 0;
        if (!ok) {
                json_decref(argv);
                json_decref(env);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "audit record of the command");
        }
        sha256_argv(o, digest);
        f = json_pack("{s:o,s:b,s:s,s:o,s:o?,s:I}", "argv", argv, "argv_truncated", truncated,
                      "argv_sha256", digest, "env_names", env, "cwd",
                      o->workdir     ? text(o->workdir, strlen(o->workdir))
                      : o->workspace ? json_string(WS_GUEST_DIR)
                                     : json_string("/"),
                      "timeout_ms", (json_int_t)o->timeout_ms);
        /* Durable before the command runs: its effects must never outlive its record. */
        return record(home, "exec.start", sandbox, f, 1, err);
}

int run_audit_start(const char *home, const char *sandbox, const struct run_opts *o,
                    const char *how, struct lg_err **err)
{
        int r = run_audit_sandbox(home, sandbox, o, how, err);

        return r < 0 ? r : run_audit_exec(home, sandbox, o, err);
}

int run_audit_end(const char *home, const char *sandbox, const struct sandbox_exec_result *res,
                  const struct lg_err *exec_err, double ms, struct lg_err **err)
{
        json_t *f;

        if (exec_err != NULL)
                f = json_pack("{s:o,s:f}", "error", text(exec_err->msg, strlen(exec_err->msg)),
                              "ms", ms);
        else if (res->spawn_errno) /* the guest's words: any bytes */
                f = json_pack("{s:i,s:o,s:f}", "spawn_errno", res->spawn_errno, "message",
                              text(res->message, strlen(res->message)), "ms", ms);
        else
                f = json_pack("{s:i,s:i,s:b,s:f,s:I,s:I}", "exit_code", res->exit_code, "signal",
                              res->signo, "timed_out", res->timed_out, "ms", ms, "out_bytes",
                              (json_int_t)res->out_bytes, "err_bytes", (json_int_t)res->err_bytes);
        return record(home, "exec.end", sandbox, f, 0, err);
}

int run_audit_gone(const char *home, const char *sandbox, int pooled, const struct lg_err *why,
                   struct lg_err **err)
{
        return record(
            home, pooled ? "sandbox.release" : "sandbox.destroy", sandbox,
            why ? json_pack("{s:b,s:o}", "verified", 0, "error", text(why->msg, strlen(why->msg)))
                : json_pack("{s:b}", "verified", !pooled),
            0, err);
}
