/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard bench WHAT`: benchmarks that print measured figures. */
#include "bench/bench_boot.h"
#include "bench/bench_audit.h"
#include "bench/bench_mcp.h"
#include "bench/bench_spawn.h"
#include "bench/bench_workload.h"
#include "pool/pool.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/parse.h"
#include "common/paths.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char bench_usage[] =
    "usage: luminaguard bench boot [--runs N] [--json FILE]\n"
    "       luminaguard bench spawn [--runs N] [--cold-runs N] [--pool-size N] [--rate R]\n"
    "                               [--seconds S] [--hold N] [--json FILE] [--baseline FILE]\n"
    "       luminaguard bench spawn --backend process [--runs N] [--json FILE]\n"
    "       luminaguard bench audit [--records N]\n"
    "       luminaguard bench mcp [--runs N] [--upstream 'CMD' --tool NAME [--args JSON]]\n"
    "       luminaguard bench workload [--runs N] [--ops N] [--only NAME]\n"
    "\n"
    "  boot   cold boot to agent ready and 'run -- true' end to end, against plain\n"
    "         QEMU booting the same kernel and initramfs to a shell, interleaved.\n"
    "         --runs N (default 10), --json FILE (default $LUMINAGUARD_HOME/bench/).\n"
    "  spawn  time to a ready sandbox by path: warm-pool hit, 'run -- true' on a warm\n"
    "         pool, restore from the template in a new process, cold boot, and plain QEMU\n"
    "         restoring with the RAM streamed in its state file (the peer); the pool's hit\n"
    "         rate under R requests/s for S s; memory and CPU of idle pooled sandboxes.\n"
    "         --hold N then holds N idle sandboxes at once and reports their memory and CPU.\n"
    "         --runs 100, --cold-runs 100, --pool-size 4, --rate 5, --seconds 20 by default.\n"
    "         --baseline FILE flags rows more than 10% slower (p50) and exits 1.\n"
    "         --backend process: a jailed process sandbox to agent ready, created and\n"
    "         destroyed, and 'run --backend process -- true', against bwrap --unshare-all.\n"
    "  audit  audit-log appends per second without and with fsync, and verify throughput\n"
    "         on a log of N records (default 100000), in a scratch directory.\n";

static int bench_boot_cmd(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"runs", required_argument, NULL, 'n'},
            {"json", required_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct bench_boot_opts o = {.runs = 10, .json_path = NULL};
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        uint64_t v;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+n:j:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        if (parse_uint(optarg, 1, 10000, &v) < 0) {
                                fprintf(stderr,
                                        "luminaguard: error: --runs %s: expected 1..10000\n",
                                        optarg);
                                return LG_EXIT_USAGE;
                        }
                        o.runs = (unsigned)v;
                        break;
                case 'j':
                        o.json_path = optarg;
                        break;
                case 'h':
                        fputs(bench_usage, stdout);
                        return 0;
                default:
                        fprintf(stderr, "luminaguard: error: bad option %s\n%s", argv[optind - 1],
                                bench_usage);
                        return LG_EXIT_USAGE;
                }
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        if (bench_boot(home, &o, stdout, &err) < 0) {
                r = cli_report(err);
                err_free(&err);
                return r;
        }
        return 0;
}

static int bench_spawn_cmd(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"runs", required_argument, NULL, 'n'},
            {"cold-runs", required_argument, NULL, 'c'},
            {"pool-size", required_argument, NULL, 'p'},
            {"rate", required_argument, NULL, 'r'},
            {"seconds", required_argument, NULL, 's'},
            {"json", required_argument, NULL, 'j'},
            {"baseline", required_argument, NULL, 'b'},
            {"hold", required_argument, NULL, 'H'},
            {"backend", required_argument, NULL, 'K'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct bench_spawn_opts o = {
            .runs = 100, .cold_runs = 100, .pool_size = 4, .rate = 5, .stream_secs = 20};
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        uint64_t v;
        int c, r, process = 0;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
                switch (c) {
                case 'K':
                        if (strcmp(optarg, "vm") != 0 && strcmp(optarg, "process") != 0) {
                                fprintf(stderr, "luminaguard: error: --backend %s: vm or process\n",
                                        optarg);
                                return LG_EXIT_USAGE;
                        }
                        process = strcmp(optarg, "process") == 0;
                        break;
                case 'n':
                case 'c':
                case 'p':
                case 'r':
                case 's':
                        if (parse_uint(optarg, 1, c == 'p' ? POOL_MAX_SIZE : 100000, &v) < 0) {
                                fprintf(stderr, "luminaguard: error: %s %s: out of range\n",
                                        argv[optind - 2], optarg);
                                return LG_EXIT_USAGE;
                        }
                        *(c == 'n'   ? &o.runs
                          : c == 'c' ? &o.cold_runs
                          : c == 'p' ? &o.pool_size
                          : c == 'r' ? &o.rate
                                     : &o.stream_secs) = (unsigned)v;
                        break;
                case 'H':
                        if (parse_uint(optarg, 0, POOL_MAX_SIZE, &v) < 0) {
                                fprintf(stderr, "luminaguard: error: --hold %s: 0 to %d\n", optarg,
                                        POOL_MAX_SIZE);
                                return LG_EXIT_USAGE;
                        }
                        o.hold = (unsigned)v;
                        break;
                case 'j':
                        o.json_path = optarg;
                        break;
                case 'b':
                        o.baseline = optarg;
                        break;
                case 'h':
                        fputs(bench_usage, stdout);
                        return 0;
                default:
                        fprintf(stderr, "luminaguard: error: bad option %s\n%s", argv[optind - 1],
                                bench_usage);
                        return LG_EXIT_USAGE;
                }
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        r = process ? bench_process(home, &o, stdout, &err) : bench_spawn(home, &o, stdout, &err);
        if (r < 0) {
                r = cli_report(err);
                err_free(&err);
                return r;
        }
        return r; /* 1: a regression against the baseline */
}

/* The home, with its logs directory (the benchmarks' children log there). 0 / -1. */
static int bench_home(char home[PATH_MAX])
{
        char logs[PATH_MAX + 8];

        if (cli_home(home, PATH_MAX) < 0)
                return -1;
        snprintf(logs, sizeof(logs), "%s/logs", home);
        return fs_mkdir_p(logs, 0700) < 0 ? -1 : 0;
}

/* A benchmark's result as the exit status, its error said. */
static int bench_status(int r, struct lg_err **err)
{
        if (r >= 0)
                return r;
        r = cli_report(*err);
        err_free(err);
        return r;
}

static int bench_mcp_cmd(int argc, char **argv)
{
        struct bench_mcp_opts o = {.runs = 50};
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        uint64_t n;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc &&
                    parse_uint(argv[i + 1], 1, 100000, &n) == 0) {
                        o.runs = (unsigned)n;
                        i++;
                } else if (strcmp(argv[i], "--upstream") == 0 && i + 1 < argc) {
                        o.upstream = argv[++i];
                } else if (strcmp(argv[i], "--tool") == 0 && i + 1 < argc) {
                        o.tool = argv[++i];
                } else if (strcmp(argv[i], "--args") == 0 && i + 1 < argc) {
                        o.args = argv[++i];
                } else {
                        fprintf(stderr, "luminaguard: error: bad option %s\n%s", argv[i],
                                bench_usage);
                        return LG_EXIT_USAGE;
                }
        }
        if ((o.upstream == NULL) != (o.tool == NULL)) {
                fprintf(stderr, "luminaguard: error: --upstream and --tool go together\n");
                return LG_EXIT_USAGE;
        }
        if (bench_home(home) < 0)
                return LG_EXIT_INTERNAL;
        return bench_status(bench_mcp(home, &o, stdout, &err), &err);
}

static int bench_workload_cmd(int argc, char **argv)
{
        struct bench_workload_opts o = {.runs = 5, .ops = 1000};
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        uint64_t n;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc &&
                    parse_uint(argv[i + 1], 1, 10000, &n) == 0) {
                        o.runs = (unsigned)n;
                        i++;
                } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc &&
                           parse_uint(argv[i + 1], 0, 1000000, &n) == 0) {
                        o.ops = (unsigned)n;
                        i++;
                } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
                        o.only = argv[++i];
                } else {
                        fprintf(stderr, "luminaguard: error: bad option %s\n%s", argv[i],
                                bench_usage);
                        return LG_EXIT_USAGE;
                }
        }
        if (bench_home(home) < 0)
                return LG_EXIT_INTERNAL;
        return bench_status(bench_workload(home, &o, stdout, &err), &err);
}

static int bench_audit_cmd(int argc, char **argv)
{
        struct lg_err *err = NULL;
        char home[PATH_MAX];
        uint64_t n = 100000;
        int r;

        if (argc == 3 && strcmp(argv[1], "--records") == 0) {
                if (parse_uint(argv[2], 1000, 10000000, &n) < 0) {
                        fprintf(stderr, "luminaguard: error: --records %s: 1000 to 10000000\n",
                                argv[2]);
                        return LG_EXIT_USAGE;
                }
        } else if (argc != 1) {
                fprintf(stderr, "luminaguard: error: bad option\n%s", bench_usage);
                return LG_EXIT_USAGE;
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        r = bench_audit(home, (unsigned)n, stdout, &err);
        if (r < 0) {
                r = cli_report(err);
                err_free(&err);
        }
        return r;
}

int cmd_bench(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "spawn") == 0)
                return bench_spawn_cmd(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "boot") == 0)
                return bench_boot_cmd(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "audit") == 0)
                return bench_audit_cmd(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "mcp") == 0)
                return bench_mcp_cmd(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "workload") == 0)
                return bench_workload_cmd(argc - 1, argv + 1);
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(bench_usage, stdout);
                return 0;
        }
        fprintf(stderr, "luminaguard: error: %s\n%s",
                argc < 2 ? "missing benchmark name" : "unknown benchmark", bench_usage);
        return LG_EXIT_USAGE;
}
