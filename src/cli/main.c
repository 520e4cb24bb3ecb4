/* SPDX-License-Identifier: Apache-2.0 */
/* luminaguard: dispatch to one subcommand per file (src/cli/cmd_*.c). */
#include "cli/cli.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/paths.h"

#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: luminaguard [-v] [--home DIR] COMMAND [ARGS...]\n"
    "\n"
    "Run AI-agent actions in throwaway micro-VMs.\n"
    "\n"
    "Commands:\n"
    "  run -- CMD...   run one command in a fresh micro-VM (see 'run --help');\n"
    "                  --backend process: in a jail on this host's kernel instead\n"
    "  doctor          check what this host offers and what is missing\n"
    "  image build     build the guest image (done automatically on first use)\n"
    "  image info      show the guest image and whether it is current\n"
    "  pool serve      keep sandboxes restored and idle for instant 'run'\n"
    "  pool status     the pool's counters, latencies and memory\n"
    "  bench boot      measure cold boot and 'run -- true' against plain QEMU\n"
    "  bench spawn     time to a ready sandbox by path, pool hit rate, memory\n"
    "  validate security  attack this host's sandboxes from inside; all must hold\n"
    "  audit verify|tail|show  the tamper-evident log of everything sandboxes did\n"
    "  changes list|show|apply|drop  workspace change sets that were not applied\n"
    "  mcp                    an MCP server on stdio whose tools run in micro-VMs\n"
    "\n"
    "Options:\n"
    "  -v, --verbose   more diagnostics (repeat for debug)\n"
    "      --home DIR  state directory (default $LUMINAGUARD_HOME, else /var/lib/luminaguard\n"
    "                  for root, else ~/.local/share/luminaguard)\n"
    "      --version   print the version\n";

int cli_home(char *home, size_t sz)
{
        int r = paths_home(home, sz);

        if (r < 0) {
                fprintf(stderr,
                        "luminaguard: error: no state directory (%s): set "
                        "LUMINAGUARD_HOME\n",
                        strerror(-r));
                return -1;
        }
        r = fs_mkdir_p(home, 0700);
        if (r < 0) {
                fprintf(stderr, "luminaguard: error: create %s: %s\n", home, strerror(-r));
                return -1;
        }
        return 0;
}

int cli_report(const struct lg_err *err)
{
        if (err == NULL) {
                fprintf(stderr, "luminaguard: error: unknown failure\n");
                return LG_EXIT_INTERNAL;
        }
        fprintf(stderr, "luminaguard: error: %s\n", err->msg);
        switch (err->kind) {
        case LG_EK_USAGE:
                return LG_EXIT_USAGE;
        case LG_EK_IMAGE:
                return LG_EXIT_IMAGE;
        case LG_EK_START:
                return LG_EXIT_START;
        case LG_EK_LOST:
                return LG_EXIT_LOST;
        case LG_EK_TIMEOUT:
                return LG_EXIT_TIMEOUT;
        case LG_EK_INTERRUPTED:
                return LG_EXIT_INTERRUPTED;
        case LG_EK_INTERNAL:
                break;
        }
        return LG_EXIT_INTERNAL;
}

/*
 * With 0, 1 or 2 closed, the next descriptor we open (a signalfd, the agent
 * socket) would take its place and the command's output would be written
 * into the protocol stream. Fill the gaps with /dev/null first.
 */
static void ensure_stdio(void)
{
        for (;;) {
                int fd = open("/dev/null", O_RDWR);

                if (fd < 0 || fd > 2) {
                        if (fd > 2)
                                close(fd);
                        return;
                }
        }
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {
            {"run", cmd_run},     {"doctor", cmd_doctor},   {"image", cmd_image},
            {"bench", cmd_bench}, {"pool", cmd_pool},       {"validate", cmd_validate},
            {"audit", cmd_audit}, {"changes", cmd_changes}, {"mcp", cmd_mcp},
        };
        int level = LG_LOG_WARN, i;

        ensure_stdio();
        /*
         * The character set only (UTF-8 for the card viewer's curses): numbers in
         * reports and JSON keep the C locale's decimal point.
         */
        setlocale(LC_CTYPE, "");
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
                        level = level < LG_LOG_DEBUG ? level + 1 : level;
                } else if (strcmp(argv[i], "-vv") == 0) {
                        level = LG_LOG_DEBUG;
                } else if (strcmp(argv[i], "--home") == 0) {
                        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                                fprintf(stderr, "luminaguard: error: --home needs a directory\n");
                                return LG_EXIT_USAGE;
                        }
                        setenv("LUMINAGUARD_HOME", argv[++i], 1);
                } else if (strcmp(argv[i], "--version") == 0) {
                        printf("luminaguard %s\n", LG_VERSION);
                        return 0;
                } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        fputs(usage, stdout);
                        return 0;
                } else {
                        fprintf(stderr, "luminaguard: error: unknown option %s\n%s", argv[i],
                                usage);
                        return LG_EXIT_USAGE;
                }
        }
        log_init("luminaguard", (enum log_level)level);
        if (i >= argc) {
                fprintf(stderr, "luminaguard: error: missing command\n%s", usage);
                return LG_EXIT_USAGE;
        }
        for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
                if (strcmp(argv[i], cmds[c].name) == 0)
                        return cmds[c].fn(argc - i, argv + i);
        }
        fprintf(stderr, "luminaguard: error: unknown command '%s'\n%s", argv[i], usage);
        return LG_EXIT_USAGE;
}
