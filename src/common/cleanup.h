/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mechanical cleanup with __attribute__((cleanup)).
 *
 *     _cleanup_free_ char *p = malloc(n);
 *     _cleanup_fd_ int fd = open(...);
 *     ...
 *     *out = steal_pointer(&p);   // hand ownership over; cleanup sees NULL
 *
 * close() is never retried on EINTR: on Linux the descriptor is gone either way.
 */
#ifndef LG_COMMON_CLEANUP_H
#define LG_COMMON_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void cleanup_freep(void *p)
{
        free(*(void **)p);
}

static inline void cleanup_fdp(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}

static inline void cleanup_filep(FILE **f)
{
        if (*f != NULL)
                fclose(*f);
}

static inline void cleanup_dirp(DIR **d)
{
        if (*d != NULL)
                closedir(*d);
}

#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))
#define _cleanup_fd_   __attribute__((cleanup(cleanup_fdp)))
#define _cleanup_file_ __attribute__((cleanup(cleanup_filep)))
#define _cleanup_dir_  __attribute__((cleanup(cleanup_dirp)))

/* Take the pointer out of *pp, leaving NULL behind for the cleanup handler. */
static inline void *steal_pointer_impl(void *pp)
{
        void **p = pp, *v = *p;

        *p = NULL;
        return v;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))steal_pointer_impl(pp))

/* Take the descriptor out of *fd, leaving -1 behind. */
static inline int steal_fd(int *fd)
{
        int v = *fd;

        *fd = -1;
        return v;
}

#endif
