/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard validate security`: the attack suite of tests/security,
 * run by this binary against this host, so that a user can see the
 * boundary hold where it will be used rather than take CI's word for it.
 * Each suite prints its table; the exit status is 0 only if all held.
 */
#include "cli/cli.h"
#include "common/paths.h"
#include "pool/pool.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char validate_usage[] =
    "usage: luminaguard validate security [--backend vm|process|all]\n"
    "\n"
    "Attack this host's sandboxes from inside and check every attempt is contained:\n"
    "host files, our state, host loopback services, egress, fork/memory/disk/CPU bombs\n"
    "(with another sandbox's response time bounded meanwhile), forbidden system calls\n"
    "of the process backend, and the VMM jail seen from the host. Uses the state\n"
    "directory's image; run it while no pool or other sandbox is running (it checks\n"
    "that nothing is left behind). Needs root for the jail and the process backend.\n";

struct suite {
        const char *script; /* under tests/security/ */
        const char *backend;
        int vm, process; /* which --backend selections include it */
};

static int run_suite(const struct suite *s, const char *self, const char *home)
{
        char rel[PATH_MAX], path[PATH_MAX];
        int status;
        pid_t pid;

        snprintf(rel, sizeof(rel), "tests/security/%s", s->script);
        if (paths_find_data(rel, path, sizeof(path)) < 0) {
                fprintf(stderr,
                        "luminaguard: error: %s not found (installed with 'make install')\n", rel);
                return -ENOENT;
        }
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                setenv("LG_BIN", self, 1);
                setenv("LG_TEST_HOME", home, 1);
                setenv("LG_BACKEND", s->backend, 1);
                execlp("bash", "bash", path, (char *)NULL);
                perror("luminaguard: error: bash");
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return -errno;
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int cmd_validate(int argc, char **argv)
{
        static const struct suite suites[] = {
            {"test_attacks.sh", "vm", 1, 0},
            {"test_jail.sh", "vm", 1, 0},
            {"test_attacks.sh", "process", 0, 1},
            {"test_process.sh", "process", 0, 1},
        };
        char home[PATH_MAX], self[PATH_MAX], sock[PATH_MAX];
        int want_vm = 1, want_process = 1, failed = 0, ran = 0;
        ssize_t n;

        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                fputs(validate_usage, stdout);
                return 0;
        }
        if (argc < 2 || strcmp(argv[1], "security") != 0)
                goto usage;
        if (argc == 4 && strcmp(argv[2], "--backend") == 0) {
                want_vm = strcmp(argv[3], "vm") == 0 || strcmp(argv[3], "all") == 0;
                want_process = strcmp(argv[3], "process") == 0 || strcmp(argv[3], "all") == 0;
                if (!want_vm && !want_process)
                        goto usage;
        } else if (argc != 2) {
                goto usage;
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        /* A pool's idle sandboxes would read as leftovers. */
        if (pool_socket_path(home, sock, sizeof(sock)) == 0 && access(sock, F_OK) == 0) {
                fprintf(stderr,
                        "luminaguard: error: a pool socket exists in %s: stop the pool "
                        "before validating\n",
                        home);
                return LG_EXIT_USAGE;
        }
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
                return LG_EXIT_INTERNAL;
        self[n] = '\0';
        for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
                const struct suite *s = &suites[i];
                int r;

                if (!((s->vm && want_vm) || (s->process && want_process)))
                        continue;
                printf("== %s (%s)\n", s->script, s->backend);
                r = run_suite(s, self, home);
                if (r < 0)
                        return LG_EXIT_INTERNAL;
                failed += r;
                ran++;
        }
        printf("validate security: %d of %d suites held%s\n", ran - failed, ran,
               failed ? " -- see FAIL lines above" : "");
        return failed ? 1 : 0;
usage:
        fprintf(stderr, "luminaguard: error: bad arguments for 'validate'\n%s", validate_usage);
        return LG_EXIT_USAGE;
}
