/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diagnostics on stderr. Library code logs only at debug level (the error
 * object carries failures up); warnings are for degraded-but-working paths.
 */
#ifndef LG_COMMON_LOG_H
#define LG_COMMON_LOG_H

enum log_level {
        LG_LOG_ERROR = 0,
        LG_LOG_WARN,
        LG_LOG_INFO,
        LG_LOG_DEBUG,
};

/* Program name used as prefix ("luminaguard", "lg-agent"). Not copied. */
void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LG_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LG_LOG_DEBUG, __VA_ARGS__)

#endif
