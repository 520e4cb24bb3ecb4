/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error objects for orchestration code (see docs/error-handling.md).
 *
 * Low-level helpers return 0 or -errno and never print. Code that orchestrates
 * several steps takes a `struct lg_err **err`, fills it on failure with
 * err_set() and adds context on the way up with err_wrap(). Only the top
 * layer (a CLI subcommand) prints it, once, and maps its kind to an exit code.
 */
#ifndef LG_COMMON_ERR_H
#define LG_COMMON_ERR_H

/* What went wrong, from the user's point of view; selects the exit code. */
enum lg_errkind {
        LG_EK_INTERNAL = 0, /* a bug or an unexpected host failure */
        LG_EK_USAGE,        /* bad options or arguments */
        LG_EK_IMAGE,        /* guest image missing, unreadable or unbuildable */
        LG_EK_START,        /* the sandbox could not be started or never became ready */
        LG_EK_LOST,         /* the sandbox died or spoke garbage mid-call */
        LG_EK_TIMEOUT,      /* the command exceeded its time limit */
        LG_EK_INTERRUPTED,  /* the user interrupted us (SIGINT, SIGTERM, SIGHUP) */
};

struct lg_err {
        enum lg_errkind kind;
        int errnum;     /* positive errno, or 0 when none applies */
        char msg[1024]; /* complete, human-readable, without a trailing newline */
};

/*
 * Record an error in *err (allocated here; an earlier error is replaced) and
 * return -errnum, or -EIO when errnum is 0, so callers can `return err_set(...)`.
 * When errnum is not 0, ": strerror(errnum)" is appended to the message.
 */
int err_set(struct lg_err **err, enum lg_errkind kind, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Prefix the message in *err with "context: ". Returns the same value err_set
 * returned. If *err is NULL (a callee forgot to set it) an internal error is
 * created so that no failure is ever reported without a message.
 */
int err_wrap(struct lg_err **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Return the negative code that err_set() returned for this error. */
int err_code(const struct lg_err *err);

void err_free(struct lg_err **err);

/* Name of an error kind, for logs and JSON ("usage", "timeout", ...). */
const char *err_kind_name(enum lg_errkind kind);

#endif
