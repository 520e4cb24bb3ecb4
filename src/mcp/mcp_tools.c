/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tools. Annotations tell the client the truth about the host: `run` works
 * in a throwaway micro-VM and changes nothing outside it (readOnlyHint in
 * MCP's sense: its environment, the host, is not modified).
 */
#include "mcp/mcp_tools.h"
#include "common/err.h"
#include "proto/proto.h"
#include "run/run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_DEFAULT_TIMEOUT_MS 30000
#define MCP_MAX_TIMEOUT_MS     (3600u * 1000)

static json_t *run_tool(void)
{
        return json_pack(
            "{s:s, s:s, s:s,"
            " s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:{s:s}, s:s}, s:{s:s, s:i, s:i, s:s},"
            "            s:{s:s, s:{s:s}, s:s}, s:{s:s, s:s}, s:{s:s, s:s}},"
            "    s:b},"
            " s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:[s,s]}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s},"
            "            s:{s:s}, s:{s:s}},"
            "    s:[s,s,s,s,s]},"
            " s:{s:b, s:b, s:b, s:b}}",
            "name", "run", "title", "Run a command in a throwaway micro-VM", "description",
            "Runs one command in a fresh sandbox (a micro-VM with no network and nothing of the "
            "host) and destroys it afterwards. Give either `command` (run by /bin/sh -c) or "
            "`argv`. Returns the exit code and the captured stdout and stderr (each cut at 1 "
            "MiB). Nothing the command does survives it.",
            "inputSchema", "type", "object", "properties", "command", "type", "string",
            "description", "a shell command line, run by /bin/sh -c", "argv", "type", "array",
            "items", "type", "string", "description", "the program and its arguments", "timeout_ms",
            "type", "integer", "minimum", 0, "maximum", (int)MCP_MAX_TIMEOUT_MS, "description",
            "kill the command after this long (default 30000; 0 = 1 hour)", "env", "type", "object",
            "additionalProperties", "type", "string", "description",
            "environment variables (nothing of the host's is passed)", "workdir", "type", "string",
            "description", "absolute working directory in the sandbox (default /)", "stdin", "type",
            "string", "description", "text given to the command on stdin", "additionalProperties",
            0,
            /* outputSchema */
            "outputSchema", "type", "object", "properties", "exit_code", "type", "integer",
            "signal", "type", "integer", "exit", "type", "string", "null", "stdout", "type",
            "string", "stderr", "type", "string", "stdout_truncated", "type", "boolean",
            "stderr_truncated", "type", "boolean", "sandbox", "type", "string", "duration_ms",
            "type", "number", "required", "exit_code", "signal", "stdout", "stderr", "sandbox",
            "annotations", "readOnlyHint", 1, "destructiveHint", 0, "idempotentHint", 0,
            "openWorldHint", 0);
}

json_t *mcp_tools_list(void)
{
        json_t *a = json_array();

        if (a != NULL)
                json_array_append_new(a, run_tool());
        return a;
}

int mcp_tool_exists(const char *name)
{
        return strcmp(name, "run") == 0;
}

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", msg, "isError",
                         1);
}

/* A string array argument into a NULL-terminated vector (borrowing the strings). */
static int str_vector(json_t *arr, char ***out, size_t *n)
{
        size_t i;
        json_t *v;

        *n = json_array_size(arr);
        if (*n == 0 || *n > PROTO_MAX_ARGS)
                return -EINVAL;
        *out = calloc(*n + 1, sizeof(char *));
        if (*out == NULL)
                return -ENOMEM;
        json_array_foreach(arr, i, v)
        {
                if (!json_is_string(v) || json_string_length(v) > PROTO_MAX_STR ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return -EINVAL;
                (*out)[i] = (char *)json_string_value(v);
        }
        return 0;
}

static json_t *run_call(const char *home, json_t *args, int intr_fd)
{
        json_t *command = json_object_get(args, "command"), *argv = json_object_get(args, "argv");
        json_t *env = json_object_get(args, "env"), *tmo = json_object_get(args, "timeout_ms");
        const char *workdir = json_string_value(json_object_get(args, "workdir"));
        json_t *in = json_object_get(args, "stdin"), *res_json, *v;
        struct run_request rq = {.timeout_ms = MCP_DEFAULT_TIMEOUT_MS, .via = "mcp"};
        struct run_result res = {0};
        struct lg_err *err = NULL;
        char *shargv[4] = {(char *)"/bin/sh", (char *)"-c", NULL, NULL};
        char **envv = NULL, text[256];
        const char *k;
        size_t i = 0;
        int r;

        if ((command != NULL) == (argv != NULL))
                return tool_error("give either `command` (a string) or `argv` (an array of "
                                  "strings), not both, not neither");
        if (command != NULL) {
                if (!json_is_string(command) || json_string_length(command) == 0 ||
                    json_string_length(command) > PROTO_MAX_STR)
                        return tool_error("`command` must be a non-empty string of at most %u "
                                          "bytes",
                                          PROTO_MAX_STR);
                shargv[2] = (char *)json_string_value(command);
                rq.argv = shargv;
                rq.argc = 3;
        } else if (!json_is_array(argv) || str_vector(argv, &rq.argv, &rq.argc) < 0) {
                free(rq.argv);
                return tool_error("`argv` must be an array of 1 to %u strings", PROTO_MAX_ARGS);
        }
        if (tmo != NULL) {
                if (!json_is_integer(tmo) || json_integer_value(tmo) < 0 ||
                    json_integer_value(tmo) > MCP_MAX_TIMEOUT_MS) {
                        if (argv)
                                free(rq.argv);
                        return tool_error("`timeout_ms` must be an integer from 0 to %u",
                                          MCP_MAX_TIMEOUT_MS);
                }
                rq.timeout_ms = (uint64_t)json_integer_value(tmo);
                if (rq.timeout_ms == 0)
                        rq.timeout_ms = MCP_MAX_TIMEOUT_MS;
        }
        if (workdir != NULL && workdir[0] != '/') {
                if (argv)
                        free(rq.argv);
                return tool_error("`workdir` must be an absolute path");
        }
        rq.workdir = workdir;
        if (env != NULL) {
                if (!json_is_object(env) || json_object_size(env) > 256) {
                        if (argv)
                                free(rq.argv);
                        return tool_error("`env` must be an object of at most 256 strings");
                }
                envv = calloc(json_object_size(env) + 1, sizeof(char *));
                json_object_foreach(env, k, v)
                {
                        if (envv == NULL || !json_is_string(v) || k[0] == '\0' ||
                            strchr(k, '=') != NULL ||
                            asprintf(&envv[i++], "%s=%s", k, json_string_value(v)) < 0) {
                                for (size_t j = 0; envv && j < i; j++)
                                        free(envv[j]);
                                free(envv);
                                if (argv)
                                        free(rq.argv);
                                return tool_error("`env`: each entry NAME (no '=') to a string");
                        }
                }
                rq.env = envv;
                rq.envc = i;
        }
        if (in != NULL) {
                if (!json_is_string(in)) {
                        for (size_t j = 0; j < i; j++)
                                free(envv[j]);
                        free(envv);
                        if (argv)
                                free(rq.argv);
                        return tool_error("`stdin` must be a string");
                }
                rq.stdin_data = json_string_value(in);
                rq.stdin_len = json_string_length(in);
        }
        r = run_capture(home, &rq, intr_fd, &res, &err);
        for (size_t j = 0; j < i; j++)
                free(envv[j]);
        free(envv);
        if (argv)
                free(rq.argv);
        if (r < 0) {
                res_json = tool_error("the sandbox failed: %s", err ? err->msg : "unknown error");
                err_free(&err);
                run_result_free(&res);
                return res_json;
        }
        if (res.spawn_errno) {
                res_json = tool_error("the command could not be started: %s", res.message);
                run_result_free(&res);
                return res_json;
        }
        if (res.timed_out)
                snprintf(text, sizeof(text), "timed out after %llu ms and was killed",
                         (unsigned long long)rq.timeout_ms);
        else if (res.signo)
                snprintf(text, sizeof(text), "killed by signal %d", res.signo);
        else
                snprintf(text, sizeof(text), "exit code %d", res.exit_code);
        /* Output is bytes; JSON strings are UTF-8: invalid sequences are replaced. */
        json_t *out = json_stringn_nocheck(res.out, res.out_len);
        json_t *errs = json_stringn_nocheck(res.err, res.err_len);
        char *summary = NULL;

        if (asprintf(&summary, "%s\n--- stdout ---\n%s\n--- stderr ---\n%s", text,
                     json_string_value(out), json_string_value(errs)) < 0)
                summary = NULL;
        res_json = json_pack(
            "{s:[{s:s, s:s}], s:{s:i, s:i, s:s, s:o, s:o, s:b, s:b, s:s, s:f}, s:b}", "content",
            "type", "text", "text", summary ? summary : text, "structuredContent", "exit_code",
            res.signo || res.timed_out ? -1 : res.exit_code, "signal", res.signo, "exit", text,
            "stdout", out, "stderr", errs, "stdout_truncated", res.out_total > res.out_len,
            "stderr_truncated", res.err_total > res.err_len, "sandbox", res.sandbox, "duration_ms",
            res.ms, "isError", 0);
        free(summary);
        run_result_free(&res);
        return res_json ? res_json : tool_error("out of memory");
}

json_t *mcp_tool_call(const char *home, const char *name, json_t *args, int intr_fd)
{
        if (strcmp(name, "run") == 0)
                return run_call(home, args, intr_fd);
        return tool_error("unknown tool %s", name);
}
