/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard pool serve|status`: the warm pool (src/pool). */
#include "common/config.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/paths.h"
#include "pool/pool.h"
#include "sandbox/sandbox.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static const char pool_usage[] =
    "usage: luminaguard pool serve [--size N] [--prestart N] [--reserve SIZE] [--image NAME]\n"
    "                              [--memory SIZE] [--cpus N] [--backend vm|process]\n"
    "       luminaguard pool status\n"
    "\n"
    "  serve   keep N sandboxes (default 4) restored from the image's template, reseeded\n"
    "          and idle; 'luminaguard run' with the same image and shape takes one in\n"
    "          milliseconds. Runs in the foreground until SIGINT/SIGTERM, then destroys\n"
    "          every sandbox it holds. --prestart N (default 1, 0..16) more QEMU processes\n"
    "          wait for a clone's state: a request that finds no idle sandbox (a miss)\n"
    "          restores into one instead of starting a process. No sandbox is added while\n"
    "          the host has less than guest memory + --reserve (default 1G) available.\n"
    "          --backend process keeps jailed process sandboxes instead (no VM; see\n"
    "          'run --help'), for 'run --backend process'. --image: default from\n"
    "          $LUMINAGUARD_HOME/config (image = NAME), else base.\n"
    "  status  counters (hits, misses, replaced), restore and hand-over latencies, and\n"
    "          memory and CPU time of each idle sandbox, as JSON.\n";

static int pool_serve_cmd(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"size", required_argument, NULL, 'n'},
            {"image", required_argument, NULL, 'I'},
            {"prestart", required_argument, NULL, 'p'},
            {"reserve", required_argument, NULL, 'r'},
            {"backend", required_argument, NULL, 'K'},
            {"memory", required_argument, NULL, 'm'},
            {"cpus", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct pool_config cfg = {
            .image = NULL, /* the config file's default */
            .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
            .cpus = SANDBOX_DEFAULT_CPUS,
            .size = 4,
            .prestart = 1,
            .reserve_mib = 1024,
            .boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS,
        };
        struct lg_err *err = NULL;
        struct lg_config config;
        char home[PATH_MAX];
        sigset_t set;
        uint64_t v;
        int c, r, sfd;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+n:p:r:m:c:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'n':
                        if (parse_uint(optarg, 1, POOL_MAX_SIZE, &v) < 0)
                                goto usage;
                        cfg.size = (unsigned)v;
                        break;
                case 'p':
                        if (parse_uint(optarg, 0, POOL_MAX_PRESTART, &v) < 0)
                                goto usage;
                        cfg.prestart = (unsigned)v;
                        break;
                case 'r':
                        if (parse_size(optarg, &v) < 0)
                                goto usage;
                        cfg.reserve_mib = v >> 20;
                        break;
                case 'K':
                        if (strcmp(optarg, "vm") == 0)
                                cfg.backend = SANDBOX_VM;
                        else if (strcmp(optarg, "process") == 0)
                                cfg.backend = SANDBOX_PROCESS;
                        else
                                goto usage;
                        break;
                case 'I':
                        if (optarg[0] == '\0' || strpbrk(optarg, "/.") != NULL)
                                goto usage;
                        cfg.image = optarg;
                        break;
                case 'm':
                        if (parse_size(optarg, &v) < 0 || v < (64ull << 20) || v > (64ull << 30))
                                goto usage;
                        cfg.memory_mib = v >> 20;
                        break;
                case 'c':
                        if (parse_uint(optarg, 1, 64, &v) < 0)
                                goto usage;
                        cfg.cpus = (unsigned)v;
                        break;
                case 'h':
                        fputs(pool_usage, stdout);
                        return 0;
                default:
                        goto usage;
                }
        }
        if (optind != argc)
                goto usage;
        if (cfg.backend == SANDBOX_PROCESS)
                cfg.prestart = 0; /* nothing to pre-start: a process sandbox starts whole */
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        if (cfg.image == NULL) {
                if (config_load(home, &config, &err) < 0)
                        return cli_report(err);
                cfg.image = config.image;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        if (sfd < 0) {
                perror("luminaguard: error: signalfd");
                return LG_EXIT_INTERNAL;
        }
        if (log_get_level() < LG_LOG_INFO)
                log_set_level(LG_LOG_INFO); /* a daemon says what it does */
        r = pool_serve(home, &cfg, sfd, &err);
        close(sfd);
        if (r < 0) {
                r = cli_report(err);
                err_free(&err);
                return r;
        }
        return 0;
usage:
        fprintf(stderr, "luminaguard: error: bad arguments for 'pool serve'\n%s", pool_usage);
        return LG_EXIT_USAGE;
}

int cmd_pool(int argc, char **argv)
{
        struct lg_err *err = NULL;
        char home[PATH_MAX], *json = NULL;
        int r;

        if (argc >= 2 && strcmp(argv[1], "serve") == 0)
                return pool_serve_cmd(argc - 1, argv + 1);
        if (argc == 2 && strcmp(argv[1], "status") == 0) {
                if (cli_home(home, sizeof(home)) < 0)
                        return LG_EXIT_INTERNAL;
                if (pool_status(home, &json, &err) < 0) {
                        r = cli_report(err);
                        err_free(&err);
                        return r;
                }
                puts(json);
                free(json);
                return 0;
        }
        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(pool_usage, stdout);
                return 0;
        }
        fprintf(stderr, "luminaguard: error: %s\n%s",
                argc < 2 ? "missing pool command" : "unknown pool command", pool_usage);
        return LG_EXIT_USAGE;
}
