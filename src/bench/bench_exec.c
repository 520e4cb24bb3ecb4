/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/bench_exec.h"
#include "common/err.h"
#include "common/monotime.h"
#include "pool/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_exec(const char *const argv[], int quiet, double *ms, int *status)
{
        uint64_t t0 = mono_ns();
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);

                dup2(null, 0);
                dup2(null, 1);
                if (quiet)
                        dup2(null, 2);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        if (status == NULL)
                return (int)pid;
        while (waitpid(pid, status, 0) < 0) {
                if (errno != EINTR)
                        return -errno;
        }
        *ms = (double)(mono_ns() - t0) / 1e6;
        return 0;
}

int bench_self(char *out, size_t outsz)
{
        ssize_t n = readlink("/proc/self/exe", out, outsz - 1);

        if (n < 0)
                return -errno;
        out[n] = '\0';
        return 0;
}

json_t *bench_pool_json(const char *home)
{
        struct lg_err *err = NULL;
        char *text = NULL;
        json_t *j;

        if (pool_status(home, &text, &err) < 0) {
                err_free(&err);
                return NULL;
        }
        j = json_loads(text, 0, NULL);
        free(text);
        return j;
}

int bench_pool_wait_idle(const char *home, unsigned n, int timeout_ms)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

        while (mono_left_ms(deadline) > 0) {
                json_t *j = bench_pool_json(home);
                json_int_t idle = json_integer_value(json_object_get(j, "idle"));

                json_decref(j);
                if (idle == (json_int_t)n)
                        return 0;
                usleep(2000);
        }
        return -ETIMEDOUT;
}
