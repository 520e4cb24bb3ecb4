/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tools, their schemas as JSON text (reviewable as what the client sees),
 * and their calls. Annotations tell the client the truth about the host:
 * every tool works inside a throwaway micro-VM, none changes anything
 * outside it; readOnlyHint is about the tool's own environment (a session
 * sandbox is changed by sandbox_exec and sandbox_write_file).
 */
#include "mcp/mcp_tools.h"
#include "common/err.h"
#include "mcp/mcp_sessions.h"
#include "proto/proto.h"
#include "run/run.h"
#include "run/run_opts.h"
#include "run/run_workspace.h"
#include "sandbox/files.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_DEFAULT_TIMEOUT_MS 30000
#define MCP_MAX_TIMEOUT_MS     (3600u * 1000)
#define MCP_MAX_READ           (1u << 20)
#define MCP_MAX_LIST           10000

/* What a command gets: shared by run and sandbox_exec. */
#define CMD_PROPS                                                                                  \
        "\"command\": {\"type\": \"string\", \"description\": \"a shell command line, run by "     \
        "/bin/sh -c\"},"                                                                           \
        "\"argv\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"description\": "     \
        "\"the program and its arguments\"},"                                                      \
        "\"timeout_ms\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 3600000, "           \
        "\"description\": \"kill the command after this long (default 30000; 0 = 1 hour)\"},"      \
        "\"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}, "       \
        "\"description\": \"environment variables (nothing of the host's is passed)\"},"           \
        "\"workdir\": {\"type\": \"string\", \"description\": \"absolute working directory "       \
        "(default /)\"},"                                                                          \
        "\"stdin\": {\"type\": \"string\", \"description\": \"text given to the command on "       \
        "stdin\"}"

#define CMD_OUTPUT                                                                                 \
        "\"outputSchema\": {\"type\": \"object\", \"properties\": {"                               \
        "\"exit_code\": {\"type\": \"integer\"}, \"signal\": {\"type\": \"integer\"},"             \
        "\"exit\": {\"type\": \"string\"}, \"stdout\": {\"type\": \"string\"},"                    \
        "\"stderr\": {\"type\": \"string\"}, \"stdout_truncated\": {\"type\": \"boolean\"},"       \
        "\"stderr_truncated\": {\"type\": \"boolean\"}, \"sandbox\": {\"type\": \"string\"},"      \
        "\"output_limit_killed\": {\"type\": \"boolean\"},"                                        \
        "\"duration_ms\": {\"type\": \"number\"}},"                                                \
        "\"required\": [\"exit_code\", \"signal\", \"stdout\", \"stderr\", \"sandbox\"]}"

/* The guest image: the names of images/ in the source tree. */
#define IMAGE_PROP                                                                                 \
        "\"image\": {\"type\": \"string\", \"enum\": [\"base\", \"full\"], \"description\": "      \
        "\"guest image: base (busybox; starts fastest) or full (Debian 12 with python3, node, "    \
        "npm, git, curl, gcc). Default: the server's configured image, else base\"}"

#define SANDBOX_PROP                                                                               \
        "\"sandbox\": {\"type\": \"string\", \"description\": \"the id sandbox_create returned\"}"

static const char *const tool_defs[] = {
    "{\"name\": \"run\", \"title\": \"Run a command in a throwaway micro-VM\","
    "\"description\": \"Runs one command in a fresh sandbox (a micro-VM with no network and "
    "nothing of the host) and destroys it afterwards. Give either `command` (run by /bin/sh -c) "
    "or `argv`. Returns the exit code and the captured stdout and stderr (each cut at 1 MiB; a "
    "command printing more than 8 MiB is killed). Nothing the command does survives it.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" CMD_PROPS "," IMAGE_PROP "},"
    "\"additionalProperties\": false}," CMD_OUTPUT ","
    "\"annotations\": {\"readOnlyHint\": true, \"destructiveHint\": false, "
    "\"idempotentHint\": false, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_create\", \"title\": \"Create a session sandbox\","
    "\"description\": \"Starts a micro-VM that stays for several calls (sandbox_exec, "
    "sandbox_read_file, sandbox_write_file, sandbox_list_files) until sandbox_destroy, or until "
    "it is idle for 10 minutes. At most 4 at once. No network, nothing of the host — unless "
    "`workspace` names a host directory (one the server was started with --workspace-root "
    "for): it is copied in as /workspace, and workspace_apply brings changes back after a "
    "human approves them.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {\"workspace\": {\"type\": "
    "\"string\", \"description\": \"a host directory to copy in as /workspace\"}, " IMAGE_PROP "}, "
    "\"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"sandbox\": {\"type\": "
    "\"string\"}, \"idle_ttl_s\": {\"type\": \"integer\"}}, \"required\": [\"sandbox\"]},"
    "\"annotations\": {\"readOnlyHint\": false, \"destructiveHint\": false, "
    "\"idempotentHint\": false, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_exec\", \"title\": \"Run a command in a session sandbox\","
    "\"description\": \"Runs one command in the session sandbox; what it changes there stays "
    "for the next calls. Same arguments and result as run, plus `sandbox`.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP "," CMD_PROPS "},"
    "\"required\": [\"sandbox\"], \"additionalProperties\": false}," CMD_OUTPUT ","
    "\"annotations\": {\"readOnlyHint\": false, \"destructiveHint\": true, "
    "\"idempotentHint\": false, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_read_file\", \"title\": \"Read a file of a session sandbox\","
    "\"description\": \"Returns up to 1 MiB of the file: as text when it is UTF-8, else base64 "
    "(see `encoding`).\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP ","
    "\"path\": {\"type\": \"string\", \"description\": \"absolute path in the sandbox\"}},"
    "\"required\": [\"sandbox\", \"path\"], \"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"path\": {\"type\": "
    "\"string\"}, \"content\": {\"type\": \"string\"}, \"encoding\": {\"enum\": [\"utf-8\", "
    "\"base64\"]}, \"bytes\": {\"type\": \"integer\"}, \"truncated\": {\"type\": "
    "\"boolean\"}}, \"required\": [\"path\", \"content\", \"encoding\", \"bytes\", "
    "\"truncated\"]},"
    "\"annotations\": {\"readOnlyHint\": true, \"destructiveHint\": false, "
    "\"idempotentHint\": true, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_write_file\", \"title\": \"Write a file in a session sandbox\","
    "\"description\": \"Writes the whole file atomically (at most 1 MiB). `encoding` base64 "
    "for binary content.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP ","
    "\"path\": {\"type\": \"string\", \"description\": \"absolute path; its directory must "
    "exist\"}, \"content\": {\"type\": \"string\"}, \"encoding\": {\"enum\": [\"utf-8\", "
    "\"base64\"], \"default\": \"utf-8\"}, \"mode\": {\"type\": \"integer\", \"minimum\": 0, "
    "\"maximum\": 4095, \"description\": \"permission bits (default 420 = 0644)\"}},"
    "\"required\": [\"sandbox\", \"path\", \"content\"], \"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"path\": {\"type\": "
    "\"string\"}, \"bytes\": {\"type\": \"integer\"}}, \"required\": [\"path\", \"bytes\"]},"
    "\"annotations\": {\"readOnlyHint\": false, \"destructiveHint\": true, "
    "\"idempotentHint\": true, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_list_files\", \"title\": \"List a directory of a session sandbox\","
    "\"description\": \"Names, types, modes and sizes of a directory's entries (at most "
    "10000).\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP ","
    "\"path\": {\"type\": \"string\", \"description\": \"absolute directory path\"}},"
    "\"required\": [\"sandbox\", \"path\"], \"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"path\": {\"type\": "
    "\"string\"}, \"entries\": {\"type\": \"array\", \"items\": {\"type\": \"object\", "
    "\"properties\": {\"name\": {\"type\": \"string\"}, \"type\": {\"enum\": [\"file\", "
    "\"directory\", \"symlink\", \"other\"]}, \"mode\": {\"type\": \"integer\"}, \"size\": "
    "{\"type\": \"integer\"}}}}, \"truncated\": {\"type\": \"boolean\"}}, \"required\": "
    "[\"path\", \"entries\", \"truncated\"]},"
    "\"annotations\": {\"readOnlyHint\": true, \"destructiveHint\": false, "
    "\"idempotentHint\": true, \"openWorldHint\": false}}",

    "{\"name\": \"workspace_apply\", \"title\": \"Apply a session's workspace to the host\","
    "\"description\": \"Compares the session's /workspace with the host directory it came from "
    "and, after a human approves the Diff Card (files added, modified, deleted; unified diffs), "
    "applies the changes all or nothing. Without an approver the answer is no: the change set "
    "is kept and a human can apply it with `luminaguard changes apply ID`.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP "},"
    "\"required\": [\"sandbox\"], \"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"applied\": {\"type\": "
    "\"boolean\"}, \"changes\": {\"type\": \"integer\"}, \"added\": {\"type\": "
    "\"integer\"}, \"modified\": {\"type\": \"integer\"}, \"deleted\": {\"type\": "
    "\"integer\"}, \"mode_changes\": {\"type\": \"integer\"}, \"kept\": {\"type\": "
    "\"string\", \"description\": \"the change set's id when it was not applied\"}}, "
    "\"required\": [\"applied\", \"changes\"]},"
    "\"annotations\": {\"readOnlyHint\": false, \"destructiveHint\": true, "
    "\"idempotentHint\": false, \"openWorldHint\": false}}",

    "{\"name\": \"sandbox_destroy\", \"title\": \"Destroy a session sandbox\","
    "\"description\": \"Destroys the session sandbox and everything in it, and checks that "
    "nothing of it is left.\","
    "\"inputSchema\": {\"type\": \"object\", \"properties\": {" SANDBOX_PROP "},"
    "\"required\": [\"sandbox\"], \"additionalProperties\": false},"
    "\"outputSchema\": {\"type\": \"object\", \"properties\": {\"sandbox\": {\"type\": "
    "\"string\"}, \"destroyed\": {\"type\": \"boolean\"}}, \"required\": [\"sandbox\", "
    "\"destroyed\"]},"
    "\"annotations\": {\"readOnlyHint\": false, \"destructiveHint\": true, "
    "\"idempotentHint\": false, \"openWorldHint\": false}}",
};

#define N_TOOLS (sizeof(tool_defs) / sizeof(tool_defs[0]))

json_t *mcp_tools_list(void)
{
        json_t *a = json_array();

        for (size_t i = 0; a != NULL && i < N_TOOLS; i++) {
                json_error_t je;
                json_t *t = json_loads(tool_defs[i], 0, &je);

                /* A definition that does not parse is a bug: said loudly, never hidden. */
                if (t == NULL) {
                        fprintf(stderr, "luminaguard: bug: tool definition %zu: %s (column %d)\n",
                                i, je.text, je.column);
                        abort();
                }
                json_array_append_new(a, t);
        }
        return a;
}

int mcp_tool_exists(const char *name)
{
        static const char *const names[] = {"run",
                                            "sandbox_create",
                                            "sandbox_exec",
                                            "sandbox_read_file",
                                            "sandbox_write_file",
                                            "sandbox_list_files",
                                            "workspace_apply",
                                            "sandbox_destroy"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(name, names[i]) == 0)
                        return 1;
        return 0;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
        size_t len;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        /* No overlong forms, surrogates, or code points past U+10FFFF. */
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/*
 * Bytes as a JSON string: what a command prints need not be UTF-8, JSON
 * strings must be. Invalid bytes become U+FFFD (as a terminal would show
 * them); NUL bytes are kept (JSON escapes them).
 */
static json_t *lossy_string(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *)s;
        char *out = malloc(n * 3 + 1), *o = out;
        json_t *j;

        if (out == NULL)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t len = utf8_seq(p + i, n - i);

                if (len == 0) {
                        memcpy(o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(o, p + i, len);
                o += len;
                i += len;
        }
        j = json_stringn(out, (size_t)(o - out));
        free(out);
        return j;
}

json_t *mcp_tool_error(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* The message may quote a guest or a log: made valid UTF-8, never lost. */
        return json_pack("{s:[{s:s, s:o}], s:b}", "content", "type", "text", "text",
                         lossy_string(msg, strlen(msg)), "isError", 1);
}

/* A result: structured content, and its JSON as the text content (for clients without it). */
static json_t *tool_ok(json_t *structured)
{
        char *text = json_dumps(structured, JSON_COMPACT);
        json_t *r = json_pack("{s:[{s:s, s:s}], s:o, s:b}", "content", "type", "text", "text",
                              text ? text : "", "structuredContent", structured, "isError", 0);

        free(text);
        return r ? r : mcp_tool_error("out of memory");
}

/* A command's arguments, parsed; strings borrowed from the request's JSON. */
struct cmd_args {
        struct run_request rq;
        char *shargv[4];
        char **argv; /* from `argv`: the vector, not its strings */
        char **env;  /* "K=V", owned */
        size_t nenv;
};

static void cmd_args_free(struct cmd_args *a)
{
        free(a->argv);
        for (size_t i = 0; i < a->nenv; i++)
                free(a->env[i]);
        free(a->env);
}

/* NULL when the arguments are good, else the tool error to return. */
static json_t *cmd_args_parse(json_t *args, struct cmd_args *a)
{
        json_t *command = json_object_get(args, "command"), *argv = json_object_get(args, "argv");
        json_t *env = json_object_get(args, "env"), *tmo = json_object_get(args, "timeout_ms");
        json_t *wd = json_object_get(args, "workdir"), *in = json_object_get(args, "stdin"), *v;
        const char *k;
        size_t i;

        memset(a, 0, sizeof(*a));
        a->rq.timeout_ms = MCP_DEFAULT_TIMEOUT_MS;
        if ((command != NULL) == (argv != NULL))
                return mcp_tool_error("give either `command` (a string) or `argv` (an array of "
                                      "strings), not both, not neither");
        if (command != NULL) {
                if (!json_is_string(command) || json_string_length(command) == 0 ||
                    json_string_length(command) > PROTO_MAX_STR ||
                    strlen(json_string_value(command)) != json_string_length(command))
                        return mcp_tool_error("`command` must be a non-empty string of at most %u "
                                              "bytes",
                                              PROTO_MAX_STR);
                a->shargv[0] = (char *)"/bin/sh";
                a->shargv[1] = (char *)"-c";
                a->shargv[2] = (char *)json_string_value(command);
                a->rq.argv = a->shargv;
                a->rq.argc = 3;
        } else {
                size_t n = json_array_size(argv);

                if (!json_is_array(argv) || n == 0 || n > PROTO_MAX_ARGS ||
                    (a->argv = calloc(n + 1, sizeof(char *))) == NULL)
                        return mcp_tool_error("`argv` must be an array of 1 to %u strings",
                                              PROTO_MAX_ARGS);
                json_array_foreach(argv, i, v)
                {
                        if (!json_is_string(v) || json_string_length(v) > PROTO_MAX_STR ||
                            strlen(json_string_value(v)) != json_string_length(v))
                                return mcp_tool_error("`argv` must be an array of 1 to %u strings",
                                                      PROTO_MAX_ARGS);
                        a->argv[i] = (char *)json_string_value(v);
                }
                a->rq.argv = a->argv;
                a->rq.argc = n;
        }
        if (tmo != NULL) {
                if (!json_is_integer(tmo) || json_integer_value(tmo) < 0 ||
                    json_integer_value(tmo) > MCP_MAX_TIMEOUT_MS)
                        return mcp_tool_error("`timeout_ms` must be an integer from 0 to %u",
                                              MCP_MAX_TIMEOUT_MS);
                a->rq.timeout_ms = (uint64_t)json_integer_value(tmo);
                if (a->rq.timeout_ms == 0)
                        a->rq.timeout_ms = MCP_MAX_TIMEOUT_MS;
        }
        if (wd != NULL) {
                if (!json_is_string(wd) || json_string_value(wd)[0] != '/' ||
                    json_string_length(wd) > PROTO_MAX_STR)
                        return mcp_tool_error("`workdir` must be an absolute path");
                a->rq.workdir = json_string_value(wd);
        }
        if (env != NULL) {
                if (!json_is_object(env) || json_object_size(env) > 256 ||
                    (a->env = calloc(json_object_size(env) + 1, sizeof(char *))) == NULL)
                        return mcp_tool_error("`env` must be an object of at most 256 strings");
                json_object_foreach(env, k, v)
                {
                        if (!json_is_string(v) || k[0] == '\0' || strchr(k, '=') != NULL ||
                            strlen(json_string_value(v)) != json_string_length(v) ||
                            asprintf(&a->env[a->nenv], "%s=%s", k, json_string_value(v)) < 0 ||
                            strlen(a->env[a->nenv++]) > PROTO_MAX_STR)
                                return mcp_tool_error(
                                    "`env`: each entry NAME (no '=') to a string");
                }
                a->rq.env = a->env;
                a->rq.envc = a->nenv;
        }
        if (in != NULL) {
                if (!json_is_string(in))
                        return mcp_tool_error("`stdin` must be a string");
                a->rq.stdin_data = json_string_value(in);
                a->rq.stdin_len = json_string_length(in);
        }
        return NULL;
}

/* A finished command as a result: text for people, structured for programs. */
static json_t *cmd_result(const struct run_request *rq, struct run_result *res)
{
        char text[256], *summary = NULL;
        size_t summary_len = 0;
        json_t *r, *out, *errs;

        if (res->spawn_errno)
                return mcp_tool_error("the command could not be started: %s", res->message);
        if (res->timed_out)
                snprintf(text, sizeof(text), "timed out after %llu ms and was killed",
                         (unsigned long long)rq->timeout_ms);
        else if (res->output_killed)
                snprintf(text, sizeof(text), "killed: it printed more than %u MiB",
                         RUN_CAPTURE_KILL >> 20);
        else if (res->signo)
                snprintf(text, sizeof(text), "killed by signal %d", res->signo);
        else
                snprintf(text, sizeof(text), "exit code %d", res->exit_code);
        /* Output is bytes; JSON strings are UTF-8: invalid sequences are replaced. */
        out = lossy_string(res->out, res->out_len);
        errs = lossy_string(res->err, res->err_len);
        if (out == NULL || errs == NULL) {
                json_decref(out);
                json_decref(errs);
                return mcp_tool_error("out of memory");
        }
        /* Built with lengths: the output may hold NUL bytes. */
        summary =
            json_string_length(out) + json_string_length(errs) < SIZE_MAX / 2
                ? malloc(strlen(text) + json_string_length(out) + json_string_length(errs) + 64)
                : NULL;
        if (summary != NULL) {
                char *q = summary + sprintf(summary, "%s\n--- stdout ---\n", text);

                memcpy(q, json_string_value(out), json_string_length(out));
                q += json_string_length(out);
                q += sprintf(q, "\n--- stderr ---\n");
                memcpy(q, json_string_value(errs), json_string_length(errs));
                q += json_string_length(errs);
                *q = '\0';
                summary_len = (size_t)(q - summary);
        }
        r = json_pack(
            "{s:[{s:s, s:s%}], s:{s:i, s:i, s:s, s:o, s:o, s:b, s:b, s:b, s:s, s:f}, s:b}",
            "content", "type", "text", "text", summary ? summary : text,
            summary ? summary_len : strlen(text), "structuredContent", "exit_code",
            res->signo || res->timed_out ? -1 : res->exit_code, "signal", res->signo, "exit", text,
            "stdout", out, "stderr", errs, "stdout_truncated", res->out_total > res->out_len,
            "stderr_truncated", res->err_total > res->err_len, "output_limit_killed",
            res->output_killed, "sandbox", res->sandbox, "duration_ms", res->ms, "isError", 0);
        free(summary);
        return r ? r : mcp_tool_error("out of memory");
}

/*
 * `image`: absent (the operator's default, from the config file), or one of
 * the names the schema lists. NULL, or the tool error.
 */
static json_t *image_arg(json_t *args, const char *default_image, const char **image)
{
        json_t *v = json_object_get(args, "image");
        const char *s = json_string_value(v);

        *image = default_image;
        if (v == NULL)
                return NULL;
        if (s == NULL || (strcmp(s, "base") != 0 && strcmp(s, "full") != 0))
                return mcp_tool_error("`image` is base or full");
        *image = strcmp(s, "full") == 0 ? "full" : "base"; /* literals: they outlive args */
        return NULL;
}

static json_t *run_call(const char *home, const char *default_image, json_t *args, int intr_fd)
{
        struct cmd_args a;
        struct run_result res = {0};
        struct lg_err *err = NULL;
        json_t *r = cmd_args_parse(args, &a);

        if (r == NULL && (r = image_arg(args, default_image, &a.rq.image)) == NULL) {
                /* base builds in seconds from what is here; others are the operator's to build. */
                a.rq.no_image_build = strcmp(a.rq.image, "base") != 0;
                if (run_capture(home, &a.rq, intr_fd, &res, &err) < 0)
                        r = mcp_tool_error("the sandbox failed: %s",
                                           err ? err->msg : "unknown error");
                else
                        r = cmd_result(&a.rq, &res);
        }
        err_free(&err);
        run_result_free(&res);
        cmd_args_free(&a);
        return r;
}

/* The session named by args.sandbox, taken for this call; NULL with *r set to the error. */
static struct mcp_session *session_of(struct mcp_sessions *ss, json_t *args, json_t **r)
{
        const char *id = json_string_value(json_object_get(args, "sandbox"));
        struct lg_err *err = NULL;
        struct mcp_session *s;

        if (id == NULL) {
                *r = mcp_tool_error("`sandbox` (the id sandbox_create returned) is required");
                return NULL;
        }
        s = mcp_session_take(ss, id, &err);
        if (s == NULL)
                *r = mcp_tool_error("%s", err ? err->msg : "no such sandbox");
        err_free(&err);
        return s;
}

static const char *path_arg(json_t *args, json_t **r)
{
        json_t *p = json_object_get(args, "path");

        if (!json_is_string(p) || json_string_value(p)[0] != '/' ||
            json_string_length(p) > PROTO_MAX_STR ||
            strlen(json_string_value(p)) != json_string_length(p)) {
                *r = mcp_tool_error("`path` must be an absolute path");
                return NULL;
        }
        return json_string_value(p);
}

/*
 * RED: the sandbox's /workspace against the host directory it came from,
 * as a change set, through the approval cliff (src/run/run_workspace.c),
 * applied all or nothing. Nobody to ask means no, and the set is kept.
 */
static json_t *workspace_apply(const char *home, struct mcp_sessions *ss, struct mcp_session *s,
                               struct agent_conn *c, int pidfd, int intr_fd)
{
        struct run_opts o = {.approve = ss->approve, .approve_timeout_ms = ss->approve_timeout_ms};
        struct lg_err *err = NULL;
        json_t *r;
        size_t n;
        int st;

        if (s->ws == NULL)
                return mcp_tool_error("sandbox %s has no workspace: create it with `workspace`",
                                      s->id);
        if (run_ws_copy_out(s->ws, home, c, pidfd, intr_fd, &err) < 0) {
                r = mcp_tool_error("%s", err ? err->msg : "copy out failed");
                err_free(&err);
                return r;
        }
        n = s->ws->cs.n;
        st = run_ws_settle(s->ws, home, &o, NULL, intr_fd, &err);
        if (st < 0 || st == RUN_WS_UNAUDITED) {
                r = mcp_tool_error("%s", err ? err->msg : "the change set could not be decided");
                err_free(&err);
                return r;
        }
        r = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "applied", st == RUN_WS_DONE && n > 0,
                      "changes", (json_int_t)n, "added", (json_int_t)s->ws->cs.added, "modified",
                      (json_int_t)s->ws->cs.modified, "deleted", (json_int_t)s->ws->cs.deleted,
                      "mode_changes", (json_int_t)s->ws->cs.chmodded);
        if (st == RUN_WS_NOT_APPLIED) {
                json_object_set_new(r, "kept", json_string(s->ws->cs.id));
                json_object_set_new(r, "how",
                                    json_string("not approved (nobody to ask, denied, timed out "
                                                "or in conflict): a human can review and apply "
                                                "it with `luminaguard changes show|apply ID`"));
        } else if (n > 0 && run_ws_repack(s->ws, home, &err) < 0) {
                /* Applied; later applies of this session would compare against stale state. */
                json_object_set_new(r, "warning", json_string(err->msg));
                err_free(&err);
        }
        return tool_ok(r);
}

static json_t *session_call(const char *home, const char *default_image, struct mcp_sessions *ss,
                            const char *name, json_t *args, int intr_fd)
{
        struct lg_err *err = NULL;
        struct mcp_session *s;
        json_t *r = NULL;
        char id[64];

        if (strcmp(name, "sandbox_create") == 0) {
                json_t *wsj = json_object_get(args, "workspace");

                const char *image;

                if (wsj != NULL && (!json_is_string(wsj) || json_string_length(wsj) == 0))
                        return mcp_tool_error("`workspace` must be a host directory's path");
                if ((r = image_arg(args, default_image, &image)) != NULL)
                        return r;
                if (mcp_session_create(ss, intr_fd, json_string_value(wsj), image, id, sizeof(id),
                                       &err) < 0)
                        r = mcp_tool_error("%s", err ? err->msg : "cannot create a sandbox");
                else
                        r = tool_ok(json_pack("{s:s, s:I}", "sandbox", id, "idle_ttl_s",
                                              (json_int_t)(ss->ttl_ms / 1000)));
                err_free(&err);
                return r;
        }
        if (strcmp(name, "sandbox_destroy") == 0) {
                const char *sid = json_string_value(json_object_get(args, "sandbox"));

                if (sid == NULL)
                        return mcp_tool_error("`sandbox` is required");
                if (mcp_session_destroy(ss, sid, &err) < 0)
                        r = mcp_tool_error("%s", err ? err->msg : "cannot destroy it");
                else
                        r = tool_ok(json_pack("{s:s, s:b}", "sandbox", sid, "destroyed", 1));
                err_free(&err);
                return r;
        }
        s = session_of(ss, args, &r);
        if (s == NULL)
                return r;
        struct agent_conn *c = sandbox_agent(s->sb);
        int pidfd = sandbox_vmm_pidfd(s->sb);

        if (strcmp(name, "sandbox_exec") == 0) {
                struct cmd_args a;
                struct run_result res = {0};

                r = cmd_args_parse(args, &a);
                /* A session with a workspace works in it unless told otherwise. */
                if (r == NULL && a.rq.workdir == NULL && s->ws != NULL)
                        a.rq.workdir = WS_GUEST_DIR;
                if (r == NULL) {
                        if (run_exec_on(home, s->id, c, pidfd, &a.rq, intr_fd, &res, &err) < 0)
                                r = mcp_tool_error("%s", err ? err->msg : "the sandbox failed");
                        else
                                r = cmd_result(&a.rq, &res);
                }
                run_result_free(&res);
                cmd_args_free(&a);
        } else if (strcmp(name, "sandbox_read_file") == 0) {
                const char *path = path_arg(args, &r);
                char *data = NULL;
                size_t len = 0;
                int cut = 0;

                if (path != NULL && sandbox_read_file(c, pidfd, intr_fd, path, MCP_MAX_READ, &data,
                                                      &len, &cut, &err) < 0)
                        r = mcp_tool_error("%s", err ? err->msg : "read failed");
                else if (path != NULL) {
                        json_t *text = json_stringn(data, len);

                        if (text == NULL) { /* not UTF-8: base64 */
                                char *b64 = malloc(4 * ((len + 2) / 3) + 1);

                                if (b64 != NULL)
                                        EVP_EncodeBlock((unsigned char *)b64,
                                                        (const unsigned char *)data, (int)len);
                                text = b64 ? json_string(b64) : NULL;
                                free(b64);
                                r = tool_ok(json_pack("{s:s, s:o, s:s, s:I, s:b}", "path", path,
                                                      "content", text, "encoding", "base64",
                                                      "bytes", (json_int_t)len, "truncated", cut));
                        } else {
                                r = tool_ok(json_pack("{s:s, s:o, s:s, s:I, s:b}", "path", path,
                                                      "content", text, "encoding", "utf-8", "bytes",
                                                      (json_int_t)len, "truncated", cut));
                        }
                }
                free(data);
        } else if (strcmp(name, "sandbox_write_file") == 0) {
                const char *path = path_arg(args, &r);
                json_t *content = json_object_get(args, "content"),
                       *mode = json_object_get(args, "mode");
                const char *enc = json_string_value(json_object_get(args, "encoding"));
                unsigned char *bin = NULL;
                const void *data = NULL;
                size_t len = 0;

                if (path != NULL && !json_is_string(content))
                        r = mcp_tool_error("`content` must be a string");
                else if (path != NULL && mode != NULL &&
                         (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
                          json_integer_value(mode) > 07777))
                        r = mcp_tool_error("`mode` must be permission bits, 0 to 4095");
                else if (path != NULL && enc != NULL && strcmp(enc, "base64") == 0) {
                        size_t n = json_string_length(content);
                        int got;

                        bin = malloc(n / 4 * 3 + 3);
                        got = bin && n % 4 == 0
                                  ? EVP_DecodeBlock(
                                        bin, (const unsigned char *)json_string_value(content),
                                        (int)n)
                                  : -1;
                        if (got < 0)
                                r = mcp_tool_error("`content` is not valid base64");
                        else {
                                /* EVP_DecodeBlock counts the padding's zero bytes too. */
                                len = (size_t)got;
                                for (size_t i = n;
                                     i > 0 && json_string_value(content)[i - 1] == '='; i--)
                                        len--;
                                data = bin;
                        }
                } else if (path != NULL && enc != NULL && strcmp(enc, "utf-8") != 0) {
                        r = mcp_tool_error("`encoding` is utf-8 or base64");
                } else if (path != NULL) {
                        data = json_string_value(content);
                        len = json_string_length(content);
                }
                if (r == NULL && path != NULL) {
                        if (sandbox_write_file(c, pidfd, intr_fd, path, data, len,
                                               mode ? (unsigned)json_integer_value(mode) : 0644,
                                               &err) < 0)
                                r = mcp_tool_error("%s", err ? err->msg : "write failed");
                        else
                                r = tool_ok(json_pack("{s:s, s:I}", "path", path, "bytes",
                                                      (json_int_t)len));
                }
                free(bin);
        } else if (strcmp(name, "workspace_apply") == 0) {
                r = workspace_apply(home, ss, s, c, pidfd, intr_fd);
        } else if (strcmp(name, "sandbox_list_files") == 0) {
                static const char *const types[] = {"other", "file", "directory", "symlink"};
                const char *path = path_arg(args, &r);
                struct proto_stat *ents = NULL;
                size_t n = 0;
                int cut = 0;

                if (path != NULL &&
                    sandbox_list(c, pidfd, intr_fd, path, MCP_MAX_LIST, &ents, &n, &cut, &err) < 0)
                        r = mcp_tool_error("%s", err ? err->msg : "list failed");
                else if (path != NULL) {
                        json_t *arr = json_array();

                        for (size_t i = 0; arr != NULL && i < n; i++)
                                json_array_append_new(
                                    arr,
                                    json_pack("{s:s%, s:s, s:i, s:I}", "name", ents[i].name,
                                              strlen(ents[i].name), "type",
                                              types[ents[i].file_type < 4 ? ents[i].file_type : 0],
                                              "mode", (int)ents[i].mode, "size",
                                              (json_int_t)ents[i].size));
                        r = tool_ok(json_pack("{s:s, s:o, s:b}", "path", path, "entries", arr,
                                              "truncated", cut));
                }
                free(ents);
        }
        err_free(&err);
        mcp_session_put(ss, s);
        return r ? r : mcp_tool_error("unknown tool %s", name);
}

json_t *mcp_tool_call(const char *home, const char *default_image, struct mcp_sessions *ss,
                      const char *name, json_t *args, int intr_fd)
{
        if (strcmp(name, "run") == 0)
                return run_call(home, default_image, args, intr_fd);
        if (mcp_tool_exists(name)) /* every other tool works on a session */
                return session_call(home, default_image, ss, name, args, intr_fd);
        return mcp_tool_error("unknown tool %s", name);
}
