/* SPDX-License-Identifier: Apache-2.0 */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The error handed out when there is no memory for one (never freed). */
static struct lg_err err_oom = {LG_EK_INTERNAL, ENOMEM, "out of memory"};

int err_code(const struct lg_err *err)
{
        if (err == NULL || err->errnum == 0)
                return -EIO;
        return -err->errnum;
}

int err_set(struct lg_err **err, enum lg_errkind kind, int errnum, const char *fmt, ...)
{
        struct lg_err *e;
        va_list ap;
        int n;

        if (err == NULL)
                return errnum ? -errnum : -EIO;
        e = *err;
        if (e == NULL) {
                e = calloc(1, sizeof(*e));
                if (e == NULL) {
                        /* Callers may rely on *err being set: hand out the static one. */
                        *err = &err_oom;
                        return -ENOMEM;
                }
                *err = e;
        } else if (e == &err_oom) {
                return -ENOMEM;
        }
        e->kind = kind;
        e->errnum = errnum;
        va_start(ap, fmt);
        n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if (errnum != 0 && (size_t)n < sizeof(e->msg) &&
            snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", strerror(errnum)) < 0)
                e->msg[n] = '\0';
        return err_code(e);
}

int err_wrap(struct lg_err **err, const char *fmt, ...)
{
        char prefix[512], old[sizeof((*err)->msg)];
        va_list ap;

        if (err == NULL)
                return -EIO;
        if (*err == NULL)
                err_set(err, LG_EK_INTERNAL, 0, "unknown error (no message was recorded)");
        if (*err == &err_oom)
                return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        memcpy(old, (*err)->msg, sizeof(old));
        /* Truncation keeps the start of the chain, which names the operation. */
        if (snprintf((*err)->msg, sizeof((*err)->msg), "%s: %s", prefix, old) < 0)
                (*err)->msg[0] = '\0';
        return err_code(*err);
}

void err_free(struct lg_err **err)
{
        if (err == NULL)
                return;
        if (*err != &err_oom)
                free(*err);
        *err = NULL;
}

const char *err_kind_name(enum lg_errkind kind)
{
        switch (kind) {
        case LG_EK_INTERNAL:
                return "internal";
        case LG_EK_USAGE:
                return "usage";
        case LG_EK_IMAGE:
                return "image";
        case LG_EK_START:
                return "start";
        case LG_EK_LOST:
                return "lost";
        case LG_EK_TIMEOUT:
                return "timeout";
        case LG_EK_INTERRUPTED:
                return "interrupted";
        }
        return "internal";
}
