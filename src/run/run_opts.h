/* SPDX-License-Identifier: Apache-2.0 */
/* Options of `luminaguard run`, parsed apart from running so they can be unit-tested. */
#ifndef LG_RUN_RUN_OPTS_H
#define LG_RUN_RUN_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "net/allowlist.h"
#include "policy/approver.h"
#include "sandbox/sandbox.h"

struct lg_err;

#define RUN_DEFAULT_TIMEOUT_MS 30000 /* the seeds' default tool timeout */
#define RUN_MAX_ENV            256
#define RUN_MAX_TIMEOUT_MS     (7ull * 24 * 3600 * 1000)

struct run_opts {
        uint64_t timeout_ms; /* 0 = none */
        uint64_t memory_mib;
        unsigned cpus;
        uint64_t boot_timeout_ms;
        const char *image;          /* NULL: not given, the config file's default */
        const char *workdir;        /* guest cwd, absolute; NULL = "/" */
        char *env[RUN_MAX_ENV + 1]; /* "K=V", NULL-terminated; owned */
        size_t envc;
        char **argv; /* the command: points into the caller's argv */
        int argc;
        int cold; /* always cold-boot, no template */
        enum sandbox_backend backend;
        unsigned pids;       /* 0 = default */
        uint64_t disk_bytes; /* 0 = default */
        int net;             /* --net allow=...: egress through the proxy */
        struct net_allowlist allow;
        const char *workspace;  /* --workspace DIR (as given), NULL for none */
        uint64_t workspace_max; /* bytes each way */
        int workspace_in_only;  /* --workspace-in: copied in, never back (no change set) */
        int no_image_build;     /* a missing image is an error, not a build (MCP clients) */
        enum approve_mode approve;
        uint64_t approve_timeout_ms;
        const char *policy_file; /* --policy FILE, NULL: <home>/policy if it exists */
        int help;
};

/*
 * Parse `run` options (argv[0] = "run"). The command starts after "--" or at
 * the first non-option. On error (LG_EK_USAGE) the message says what was
 * wrong. run_opts_free() releases owned strings either way.
 */
int run_opts_parse(int argc, char **argv, struct run_opts *o, struct lg_err **err)
    __attribute__((warn_unused_result));
void run_opts_free(struct run_opts *o);

/*
 * With o->net: add http_proxy, https_proxy, HTTP_PROXY and HTTPS_PROXY
 * naming the sandbox's proxy to o->env, each unless the caller set it.
 */
int run_opts_proxy_env(struct run_opts *o, struct lg_err **err) __attribute__((warn_unused_result));

extern const char run_opts_usage[];

#endif
