/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_opts.h"
#include "common/err.h"
#include "common/parse.h"
#include "net/proxy.h"
#include "proto/proto.h"
#include "sandbox/sandbox.h"
#include "workspace/workspace.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char run_opts_usage[] =
    "usage: luminaguard run [OPTIONS] -- CMD [ARGS...]\n"
    "\n"
    "Run CMD in a fresh micro-VM, stream its output, exit with its status.\n"
    "\n"
    "  -t, --timeout DUR       kill the command after DUR (default 30s; 0 = never)\n"
    "  -m, --memory SIZE       guest memory (default 256M)\n"
    "  -c, --cpus N            virtual CPUs (default 1)\n"
    "  -e, --env K=V           set an environment variable (repeatable);\n"
    "                          --env K passes the host's value of K\n"
    "  -w, --workdir DIR       working directory inside the sandbox (default /, or\n"
    "                          /workspace with --workspace)\n"
    "      --workspace DIR     copy DIR into the sandbox as /workspace; afterwards its\n"
    "                          changes are shown as a Diff Card and applied to DIR\n"
    "                          only if approved (all or nothing)\n"
    "      --workspace-in DIR  copy DIR in as /workspace, and nothing back: whatever\n"
    "                          the command does to it dies with the sandbox\n"
    "      --workspace-max SIZE  refuse workspaces larger than SIZE either way\n"
    "                          (default 512M)\n"
    "      --approve deny|prompt|tui\n"
    "                          who approves RED actions: nobody (deny), a line prompt\n"
    "                          or the full-screen card viewer on this terminal.\n"
    "                          Default: prompt when there is a terminal, else deny\n"
    "      --approve-timeout DUR  deny when nobody answers within DUR (default 5m)\n"
    "      --policy FILE       policy rules (docs/policy.md); default\n"
    "                          $LUMINAGUARD_HOME/policy when it exists\n"
    "      --image NAME        guest image (default: image in $LUMINAGUARD_HOME/config,\n"
    "                          else base)\n"
    "      --boot-timeout DUR  give up if the sandbox is not ready within DUR (default 60s)\n"
    "      --cold              boot the VM from scratch instead of restoring the image's\n"
    "                          template (slower; the template is built on first use)\n"
    "      --backend vm|process  vm (default): a micro-VM. process: no VM, the command\n"
    "                          runs on the host's kernel in a jail with a seccomp\n"
    "                          allow-list (faster, a weaker boundary; root only)\n"
    "      --net allow=HOST[:PORT],...\n"
    "                          egress through an HTTP proxy in the sandbox\n"
    "                          (http_proxy=http://127.0.0.1:3128) to these\n"
    "                          destinations only: HOST, *.DOMAIN, an IP; without\n"
    "                          :PORT, 80 and 443. Default: no network at all\n"
    "      --pids N            process backend: at most N tasks (default 256)\n"
    "      --disk SIZE         process backend: writable space (default 64M)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: the command's, 128+N if signal N ended it, 124 timed out,\n"
    "120 usage, 121 image, 122 sandbox failed to start, 123 sandbox lost,\n"
    "125 internal error, 126 not executable, 127 not found, 130 interrupted;\n"
    "119 the command ran but its workspace changes were not applied (denied,\n"
    "timed out, conflict).\n";

static int add_env(struct run_opts *o, const char *arg, struct lg_err **err)
{
        const char *eq = strchr(arg, '=');
        char *entry;

        if (eq == arg || arg[0] == '\0')
                return err_set(err, LG_EK_USAGE, 0, "--env %s: expected KEY=VALUE or KEY", arg);
        if (o->envc >= RUN_MAX_ENV)
                return err_set(err, LG_EK_USAGE, 0, "too many --env options (at most %d)",
                               RUN_MAX_ENV);
        if (eq != NULL) {
                entry = strdup(arg);
        } else {
                const char *v = getenv(arg);

                if (v == NULL)
                        return 0; /* like docker: an unset host variable is simply not passed */
                if (asprintf(&entry, "%s=%s", arg, v) < 0)
                        entry = NULL;
        }
        if (entry == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "--env");
        o->env[o->envc++] = entry;
        o->env[o->envc] = NULL;
        return 0;
}

/* The command finds the proxy the way most tools look for one. */
int run_opts_proxy_env(struct run_opts *o, struct lg_err **err)
{
        static const char *const vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY",
                                           "HTTPS_PROXY"};

        if (!o->net)
                return 0;
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
                char entry[64];
                size_t k, n = strlen(vars[i]);
                int r;

                for (k = 0; k < o->envc; k++) {
                        if (strncmp(o->env[k], vars[i], n) == 0 && o->env[k][n] == '=')
                                break;
                }
                if (k < o->envc)
                        continue; /* the user's own setting wins */
                snprintf(entry, sizeof(entry), "%s=http://127.0.0.1:%d", vars[i], NET_PROXY_PORT);
                r = add_env(o, entry, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int run_opts_parse(int argc, char **argv, struct run_opts *o, struct lg_err **err)
{
        static const struct option longopts[] = {
            {"timeout", required_argument, NULL, 't'},
            {"memory", required_argument, NULL, 'm'},
            {"cpus", required_argument, NULL, 'c'},
            {"env", required_argument, NULL, 'e'},
            {"workdir", required_argument, NULL, 'w'},
            {"image", required_argument, NULL, 'I'},
            {"boot-timeout", required_argument, NULL, 'B'},
            {"cold", no_argument, NULL, 'C'},
            {"backend", required_argument, NULL, 'K'},
            {"pids", required_argument, NULL, 'P'},
            {"disk", required_argument, NULL, 'D'},
            {"net", required_argument, NULL, 'N'},
            {"workspace", required_argument, NULL, 'W'},
            {"workspace-max", required_argument, NULL, 'X'},
            {"workspace-in", required_argument, NULL, 'Y'},
            {"approve", required_argument, NULL, 'A'},
            {"approve-timeout", required_argument, NULL, 'T'},
            {"policy", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        uint64_t v;
        int c, r;

        memset(o, 0, sizeof(*o));
        o->timeout_ms = RUN_DEFAULT_TIMEOUT_MS;
        o->memory_mib = SANDBOX_DEFAULT_MEMORY_MIB;
        o->cpus = SANDBOX_DEFAULT_CPUS;
        o->boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS;
        o->image = NULL; /* the config file's default (common/config.h) */
        o->workspace_max = WS_DEFAULT_MAX_BYTES;
        o->approve = isatty(STDERR_FILENO) ? APPROVE_MODE_PROMPT : APPROVE_MODE_DENY;
        o->approve_timeout_ms = APPROVE_DEFAULT_TIMEOUT_MS;

        optind = 0; /* full re-initialisation: parse may run more than once per process */
        opterr = 0; /* we report errors ourselves, once */
        while ((c = getopt_long(argc, argv, "+:t:m:c:e:w:h", longopts, NULL)) != -1) {
                switch (c) {
                case 't':
                        if (parse_duration_ms(optarg, &o->timeout_ms) < 0 ||
                            o->timeout_ms > RUN_MAX_TIMEOUT_MS)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--timeout %s: expected a duration like 30s, "
                                               "500ms, 2m (at most 7 days)",
                                               optarg);
                        break;
                case 'B':
                        if (parse_duration_ms(optarg, &o->boot_timeout_ms) < 0 ||
                            o->boot_timeout_ms == 0 || o->boot_timeout_ms > 3600000)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--boot-timeout %s: expected a duration between "
                                               "1ms and 1h",
                                               optarg);
                        break;
                case 'm':
                        if (parse_size(optarg, &v) < 0 || v < (64ull << 20) || v > (64ull << 30))
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--memory %s: expected a size from 64M to 64G",
                                               optarg);
                        o->memory_mib = v >> 20;
                        break;
                case 'c':
                        if (parse_uint(optarg, 1, 64, &v) < 0)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--cpus %s: expected a number from 1 to 64", optarg);
                        o->cpus = (unsigned)v;
                        break;
                case 'e':
                        r = add_env(o, optarg, err);
                        if (r < 0)
                                return r;
                        break;
                case 'w':
                        if (optarg[0] != '/' || strlen(optarg) > 4096)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--workdir %s: expected an absolute path", optarg);
                        o->workdir = optarg;
                        break;
                case 'I':
                        if (optarg[0] == '\0' || strpbrk(optarg, "/.") != NULL)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--image %s: expected an image name such as base",
                                               optarg);
                        o->image = optarg;
                        break;
                case 'C':
                        o->cold = 1;
                        break;
                case 'K':
                        if (strcmp(optarg, "vm") == 0)
                                o->backend = SANDBOX_VM;
                        else if (strcmp(optarg, "process") == 0)
                                o->backend = SANDBOX_PROCESS;
                        else
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--backend %s: expected vm or process", optarg);
                        break;
                case 'P':
                        if (parse_uint(optarg, 8, 65536, &v) < 0)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--pids %s: expected a number from 8 to 65536",
                                               optarg);
                        o->pids = (unsigned)v;
                        break;
                case 'N': {
                        char why[256];

                        if (strcmp(optarg, "none") == 0) {
                                o->net = 0;
                                break;
                        }
                        if (strncmp(optarg, "allow=", 6) != 0 ||
                            net_allowlist_parse(optarg + 6, &o->allow, why, sizeof(why)) < 0)
                                return err_set(err, LG_EK_USAGE, 0, "--net %.200s: %s", optarg,
                                               strncmp(optarg, "allow=", 6) != 0
                                                   ? "expected allow=HOST[:PORT],... or none"
                                                   : why);
                        o->net = 1;
                        break;
                }
                case 'D':
                        if (parse_size(optarg, &v) < 0 || v < (1ull << 20) || v > (64ull << 30))
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--disk %s: expected a size from 1M to 64G", optarg);
                        o->disk_bytes = v;
                        break;
                case 'W':
                        if (optarg[0] == '\0')
                                return err_set(err, LG_EK_USAGE, 0, "--workspace: empty path");
                        o->workspace = optarg;
                        o->workspace_in_only = 0;
                        break;
                case 'Y':
                        if (optarg[0] == '\0')
                                return err_set(err, LG_EK_USAGE, 0, "--workspace-in: empty path");
                        o->workspace = optarg;
                        o->workspace_in_only = 1;
                        break;
                case 'X':
                        if (parse_size(optarg, &v) < 0 || v < (1ull << 20) || v > (64ull << 30))
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--workspace-max %s: expected a size from 1M to "
                                               "64G",
                                               optarg);
                        o->workspace_max = v;
                        break;
                case 'A':
                        if (approve_mode_parse(optarg, &o->approve) < 0)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--approve %s: expected deny, prompt or tui",
                                               optarg);
                        break;
                case 'T':
                        if (parse_duration_ms(optarg, &o->approve_timeout_ms) < 0 ||
                            o->approve_timeout_ms == 0 || o->approve_timeout_ms > 24 * 3600 * 1000)
                                return err_set(err, LG_EK_USAGE, 0,
                                               "--approve-timeout %s: expected a duration from "
                                               "1ms to 24h",
                                               optarg);
                        break;
                case 'L':
                        o->policy_file = optarg;
                        break;
                case 'h':
                        o->help = 1;
                        return 0;
                case ':':
                        return err_set(err, LG_EK_USAGE, 0, "option %s needs a value",
                                       argv[optind - 1]);
                default:
                        return err_set(err, LG_EK_USAGE, 0, "unknown option %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return err_set(err, LG_EK_USAGE, 0,
                               "missing command: luminaguard run [OPTIONS] -- CMD [ARGS...]");
        r = run_opts_proxy_env(o, err);
        if (r < 0)
                return r;
        /* Not silently ignored: a VM's limits are its memory and vCPUs. */
        if (o->backend == SANDBOX_VM && (o->pids || o->disk_bytes))
                return err_set(err, LG_EK_USAGE, 0,
                               "--pids and --disk apply to --backend process only (a VM is "
                               "bounded by --memory and --cpus)");
        if (argv[optind][0] == '\0')
                return err_set(err, LG_EK_USAGE, 0, "the command is an empty string");
        o->argv = argv + optind;
        o->argc = argc - optind;
        /* The protocol's limits, checked before a VM is started for nothing. */
        if ((size_t)o->argc > PROTO_MAX_ARGS)
                return err_set(err, LG_EK_USAGE, 0, "too many arguments (at most %u)",
                               PROTO_MAX_ARGS);
        for (int i = 0; i < o->argc; i++) {
                if (strlen(o->argv[i]) > PROTO_MAX_STR)
                        return err_set(err, LG_EK_USAGE, 0, "argument %d is longer than %u bytes",
                                       i + 1, PROTO_MAX_STR);
        }
        for (size_t i = 0; i < o->envc; i++) {
                if (strlen(o->env[i]) > PROTO_MAX_STR)
                        return err_set(err, LG_EK_USAGE, 0, "--env %.40s...: longer than %u bytes",
                                       o->env[i], PROTO_MAX_STR);
        }
        return 0;
}

void run_opts_free(struct run_opts *o)
{
        for (size_t i = 0; i < o->envc; i++)
                free(o->env[i]);
        o->envc = 0;
}
