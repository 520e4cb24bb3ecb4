/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subcommands. Each cmd_*() gets argv with argv[0] = the subcommand name,
 * prints its own output and errors (it is the top layer), and returns the
 * process exit status.
 */
#ifndef LG_CLI_CLI_H
#define LG_CLI_CLI_H

#include <stddef.h>

struct lg_err;

/*
 * Exit statuses of `luminaguard` itself (docs/error-handling.md). `run`
 * otherwise exits with the command's own status, 128+N for signal N.
 * Chosen in the 120s so they do not collide with common tool statuses
 * (1, 2), and next to the shell's 126/127 and timeout(1)'s 124.
 */
#define LG_EXIT_NOT_APPLIED 119 /* run: the command ran, its workspace changes were not applied */
#define LG_EXIT_USAGE       120 /* bad options or arguments */
#define LG_EXIT_IMAGE       121 /* guest image missing, unreadable, or build failed */
#define LG_EXIT_START       122 /* sandbox failed to start / never became ready */
#define LG_EXIT_LOST        123 /* sandbox died or misbehaved mid-call */
#define LG_EXIT_TIMEOUT     124 /* command timed out (as timeout(1)) */
#define LG_EXIT_INTERNAL    125 /* anything else (a bug, a host failure) */
#define LG_EXIT_NOEXEC      126 /* command found but not executable (as sh) */
#define LG_EXIT_NOTFOUND    127 /* command not found (as sh) */
#define LG_EXIT_INTERRUPTED 130 /* interrupted by SIGINT/SIGTERM (128+2) */

/*
 * The state directory, created 0700 if missing. On failure prints why and
 * returns -1 (the caller exits LG_EXIT_INTERNAL).
 */
int cli_home(char *home, size_t sz);

/* Print "luminaguard: error: <msg>" once and return the exit status for its kind. */
int cli_report(const struct lg_err *err);

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_pool(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_changes(int argc, char **argv);
int cmd_mcp(int argc, char **argv);

#endif
