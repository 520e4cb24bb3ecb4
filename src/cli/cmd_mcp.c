/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard mcp`: the MCP server on stdio (src/mcp). */
#include "common/config.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "mcp/mcp.h"
#include "policy/approver.h"
#include "policy/policy.h"
#include "run/run_job.h"
#include "run/run_opts.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char mcp_usage[] =
    "usage: luminaguard mcp [--http HOST:PORT] [--upstream 'CMD ARGS']...\n"
    "                       [--workspace-root DIR]...\n"
    "                       [--approve deny|prompt|tui] [--policy FILE]\n"
    "                       [--session-ttl DUR] [--page-size N]\n"
    "\n"
    "An MCP server on stdin/stdout (JSON-RPC 2.0, one message a line; protocol\n"
    "versions 2024-11-05 to 2025-11-25), or on Streamable HTTP with --http.\n"
    "Its tools run in throwaway micro-VMs:\n"
    "  run                 one command in a fresh sandbox: exit code, stdout, stderr\n"
    "  sandbox_create      a sandbox that stays for several calls (at most 4)\n"
    "  sandbox_exec        a command in it\n"
    "  sandbox_read_file, sandbox_write_file, sandbox_list_files\n"
    "  workspace_apply     a session's /workspace back to its host directory, after a\n"
    "                      human approves (RED; kept for `luminaguard changes` if not)\n"
    "  sandbox_destroy     gone, and checked\n"
    "Diagnostics go to stderr. A client configuration:\n"
    "  {\"mcpServers\": {\"luminaguard\": {\"command\": \"luminaguard\", \"args\": [\"mcp\"]}}}\n"
    "\n"
    "  --http HOST:PORT   Streamable HTTP on http://HOST:PORT/mcp instead of stdio;\n"
    "                     HOST is 127.0.0.1, localhost or [::1] (port 0: any free\n"
    "                     one, logged). Requests need Authorization: Bearer <token>,\n"
    "                     the token being in $LUMINAGUARD_HOME/mcp-http.token\n"
    "  --upstream 'CMD ARGS'  a gateway in front of another MCP server (stdio; repeatable):\n"
    "                     its tools are listed as <name>__<tool>; calls that change\n"
    "                     anything wait for approval, every call is audited\n"
    "  --isolate          run every upstream inside a sandbox of its own (a micro-VM\n"
    "                     of --isolate-image, no network unless --isolate-net):\n"
    "                     its stdio crosses the agent channel, and it cannot touch\n"
    "                     this host. Restarted like any upstream when it dies\n"
    "  --isolate-image NAME  the image those sandboxes run (default full: node, python3)\n"
    "  --isolate-dir DIR  copied into each as /workspace, its cwd (an npm prefix with\n"
    "                     the server installed, say); nothing comes back\n"
    "  --isolate-net SPEC  their egress allow-list, as run's --net\n"
    "  --workspace-root DIR  sandbox_create may take directories below DIR as its\n"
    "                     workspace (repeatable; default: none)\n"
    "  --policy FILE      policy rules (allow|deny tool GLOB); default\n"
    "                     $LUMINAGUARD_HOME/policy when it exists\n"
    "  --approve MODE     who approves workspace_apply: deny (default), prompt or tui\n"
    "                     on the server's controlling terminal\n"
    "  --session-ttl DUR  destroy a session sandbox idle this long (default 10m)\n"
    "  --page-size N      tools per tools/list page (default: all)\n";

/* s in single quotes for /bin/sh, onto f. */
static void sh_quote(FILE *f, const char *s)
{
        fputc('\'', f);
        for (; *s != '\0'; s++) {
                if (*s == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*s, f);
        }
        fputc('\'', f);
}

/*
 * --isolate: the upstream command, run by `luminaguard run` in a sandbox of
 * its own, stdin and stdout relayed over the agent channel. exec, so that
 * the gateway's SIGTERM reaches run, which destroys the sandbox. NULL when
 * out of memory.
 */
static char *isolated(const char *cmd, const char *image, const char *dir, const char *net)
{
        char self[PATH_MAX], *b = NULL;
        size_t len = 0;
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        FILE *f;

        if (n <= 0 || (f = open_memstream(&b, &len)) == NULL)
                return NULL;
        self[n] = '\0';
        fputs("exec ", f);
        sh_quote(f, self);
        fputs(" run --timeout 0 --image ", f);
        sh_quote(f, image);
        if (dir != NULL) {
                fputs(" --workspace-in ", f);
                sh_quote(f, dir);
        }
        if (net != NULL) {
                fputs(" --net ", f);
                sh_quote(f, net);
        }
        fputs(" -- sh -c ", f);
        sh_quote(f, cmd);
        if (fclose(f) != 0) {
                free(b);
                return NULL;
        }
        return b;
}

int cmd_mcp(int argc, char **argv)
{
        struct mcp_opts o = {.in_fd = STDIN_FILENO,
                             .out_fd = STDOUT_FILENO,
                             .approve = APPROVE_MODE_DENY,
                             .approve_timeout_ms = APPROVE_DEFAULT_TIMEOUT_MS};
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        const char *policy_file = NULL, *iso_image = "full", *iso_dir = NULL, *iso_net = NULL;
        char iso_dir_real[PATH_MAX];
        int isolate = 0;
        uint64_t v;
        int st;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        fputs(mcp_usage, stdout);
                        return 0;
                }
                if (strcmp(argv[i], "--workspace-root") == 0 && i + 1 < argc) {
                        char real[PATH_MAX], **roots;

                        if (realpath(argv[i + 1], real) == NULL) {
                                fprintf(stderr, "luminaguard: error: --workspace-root %s: %s\n",
                                        argv[i + 1], strerror(errno));
                                return LG_EXIT_USAGE;
                        }
                        roots = realloc(o.workspace_roots, (o.n_roots + 1) * sizeof(*roots));
                        if (roots == NULL || (roots[o.n_roots] = strdup(real)) == NULL)
                                return LG_EXIT_INTERNAL;
                        o.workspace_roots = roots;
                        o.n_roots++;
                        i++;
                        continue;
                }
                if (strcmp(argv[i], "--isolate") == 0) {
                        isolate = 1;
                        continue;
                }
                if (strcmp(argv[i], "--isolate-image") == 0 && i + 1 < argc) {
                        iso_image = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--isolate-dir") == 0 && i + 1 < argc) {
                        if (realpath(argv[i + 1], iso_dir_real) == NULL) {
                                fprintf(stderr, "luminaguard: error: --isolate-dir %s: %s\n",
                                        argv[i + 1], strerror(errno));
                                return LG_EXIT_USAGE;
                        }
                        iso_dir = iso_dir_real;
                        i++;
                        continue;
                }
                if (strcmp(argv[i], "--isolate-net") == 0 && i + 1 < argc) {
                        iso_net = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--http") == 0 && i + 1 < argc) {
                        o.http_addr = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
                        policy_file = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--upstream") == 0 && i + 1 < argc) {
                        char **u = realloc(o.upstreams, (o.n_upstreams + 1) * sizeof(*u));

                        if (u == NULL)
                                return LG_EXIT_INTERNAL;
                        o.upstreams = u;
                        o.upstreams[o.n_upstreams++] = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--approve") == 0 && i + 1 < argc) {
                        enum approve_mode m;

                        if (approve_mode_parse(argv[i + 1], &m) < 0) {
                                fprintf(stderr,
                                        "luminaguard: error: --approve %s: deny, prompt "
                                        "or tui\n",
                                        argv[i + 1]);
                                return LG_EXIT_USAGE;
                        }
                        o.approve = (int)m;
                        i++;
                        continue;
                }
                if (strcmp(argv[i], "--session-ttl") == 0 && i + 1 < argc &&
                    parse_duration_ms(argv[i + 1], &v) == 0 && v > 0) {
                        o.session_ttl_ms = v;
                        i++;
                        continue;
                }
                if (strcmp(argv[i], "--page-size") == 0 && i + 1 < argc &&
                    parse_uint(argv[i + 1], 1, 1000, &v) == 0) {
                        o.page_size = (unsigned)v;
                        i++;
                        continue;
                }
                fprintf(stderr, "luminaguard: error: mcp: bad option %s\n%s", argv[i], mcp_usage);
                return LG_EXIT_USAGE;
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        o.home = home;
        {
                static struct lg_config config; /* o.default_image points into it */

                if (config_load(home, &config, &err) < 0) {
                        st = cli_report(err);
                        err_free(&err);
                        return st;
                }
                o.default_image = config.image;
        }
        if ((iso_dir != NULL || iso_net != NULL) && !isolate) {
                fprintf(stderr, "luminaguard: error: --isolate-dir and --isolate-net go with "
                                "--isolate\n");
                return LG_EXIT_USAGE;
        }
        /* The gateway's upstreams, as given or wrapped in a sandbox each (kept until exit). */
        for (size_t i = 0; isolate && i < o.n_upstreams; i++) {
                o.upstreams[i] = isolated(o.upstreams[i], iso_image, iso_dir, iso_net);
                if (o.upstreams[i] == NULL) {
                        fprintf(stderr, "luminaguard: error: --isolate: out of memory\n");
                        return LG_EXIT_USAGE;
                }
        }
        /* The operator's rules for upstream tools: <home>/policy when it exists. */
        {
                static struct policy rules;
                struct run_opts ro = {.policy_file = policy_file};

                if (run_load_policy(home, &ro, &rules, &o.policy, &err) < 0) {
                        st = cli_report(err);
                        err_free(&err);
                        return st;
                }
        }
        /* The HTTP server is a daemon: it says what it does (sessions opened, ended, cancelled). */
        if (o.http_addr != NULL && log_get_level() < LG_LOG_INFO)
                log_set_level(LG_LOG_INFO);
        st = 0;
        if (mcp_serve(&o, &err) < 0) {
                st = cli_report(err);
                err_free(&err);
        }
        for (size_t i = 0; isolate && i < o.n_upstreams; i++)
                free(o.upstreams[i]); /* ours; otherwise they are argv's */
        free(o.upstreams);
        for (size_t i = 0; i < o.n_roots; i++)
                free(o.workspace_roots[i]);
        free(o.workspace_roots);
        return st;
}
