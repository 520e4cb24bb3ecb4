/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Run one command in a ready sandbox and stream its I/O: the host half of
 * the EXEC exchange (docs/protocol.md).
 */
#ifndef LG_SANDBOX_EXEC_H
#define LG_SANDBOX_EXEC_H

#include <stdint.h>

struct lg_err;
struct sandbox;
struct agent_conn;
struct proto_exec;
struct net_proxy;

struct sandbox_exec_io {
        int in_fd;   /* forwarded as the command's stdin when >= 0, else /dev/null */
        int out_fd;  /* the command's stdout goes here */
        int err_fd;  /* and its stderr here */
        int intr_fd; /* readable = stop (a signalfd); -1 for none */
        /*
         * The sandbox's egress proxy (net/proxy.h), NULL for none: the agent
         * is asked to listen for it before the command starts, and its
         * streams are served for as long as the command runs.
         */
        struct net_proxy *net;
        /*
         * Stop at this many bytes of stdout, or of stderr (0 = no limit): the
         * command is killed and out_limited set. For output that lands on the
         * host's disk or in its memory.
         */
        uint64_t out_limit;
};

struct sandbox_exec_result {
        int exit_code;      /* when !signo and !spawn_errno */
        int signo;          /* the signal that ended it, or 0 */
        int timed_out;      /* the agent killed it at its timeout */
        int spawn_errno;    /* it never started: ENOENT, EACCES, ... */
        char message[512];  /* the agent's message when spawn_errno is set */
        uint64_t out_bytes; /* stdout bytes received */
        uint64_t err_bytes; /* stderr bytes received */
        int out_limited;    /* 1 stdout or 2 stderr passed io->out_limit: the command was killed */
};

/*
 * Run req (argv, env, cwd, timeout; PROTO_EXEC_STDIN is set here from io)
 * and wait for it to end. Returns 0 when the command ran to an end (exit,
 * signal, timeout) or could not be spawned — see *res; or an error:
 * LG_EK_LOST (the VM died or the agent misbehaved), LG_EK_TIMEOUT (the guest
 * stopped answering past the timeout), LG_EK_INTERRUPTED.
 */
int sandbox_exec(struct sandbox *sb, const struct proto_exec *req, const struct sandbox_exec_io *io,
                 struct sandbox_exec_result *res, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * The same exchange on a bare agent connection; vmm_pidfd (or -1) is polled
 * and its readability ends the call as LG_EK_LOST. sandbox_exec() is this
 * plus a better message when the VM itself died. Exposed for tests that play
 * a hostile guest on a socketpair.
 */
int agent_exec(struct agent_conn *c, int vmm_pidfd, const struct proto_exec *req,
               const struct sandbox_exec_io *io, struct sandbox_exec_result *res,
               struct lg_err **err) __attribute__((warn_unused_result));

#endif
