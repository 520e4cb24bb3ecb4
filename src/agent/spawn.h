/* SPDX-License-Identifier: Apache-2.0 */
/* Starting one EXEC request's process (spawn.c). */
#ifndef LG_AGENT_SPAWN_H
#define LG_AGENT_SPAWN_H

#include <sys/types.h>

struct proto_exec;

struct spawn_result {
        pid_t pid;         /* session leader: pid == pgid == sid */
        int in_fd;         /* write end of its stdin pipe, or -1 (stdin is /dev/null) */
        int out_fd[2];     /* read ends of stdout and stderr, non-blocking, close-on-exec */
        char message[512]; /* on failure: "exec <argv0>: <strerror>" etc. */
};

/*
 * fork + exec x->argv in a new session, with exactly x->env (plus a default
 * PATH when it has none), cwd x->cwd or "/", default signal dispositions and
 * an empty signal mask, and no descriptors but 0, 1, 2. Returns 0 once the
 * program runs, or -errno with r->message set when it could not be started
 * (the child is then already reaped).
 */
int spawn_exec(const struct proto_exec *x, struct spawn_result *r);

#endif
