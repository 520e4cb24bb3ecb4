/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const char *log_prog = "luminaguard";
static enum log_level log_level = LG_LOG_WARN;

void log_init(const char *prog, enum log_level level)
{
        log_prog = prog;
        log_level = level;
}

void log_set_level(enum log_level level)
{
        log_level = level;
}

enum log_level log_get_level(void)
{
        return log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        static const char *const names[] = {"error", "warning", "info", "debug"};
        int saved = errno; /* logging must not disturb the caller's errno */
        char line[2048];
        va_list ap;
        int n;

        if (level > log_level)
                return;
        n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, names[level]);
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof(line))
                vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        /* One fputs of a whole line so concurrent writers do not interleave mid-line. */
        fprintf(stderr, "%s\n", line);
        errno = saved;
}
