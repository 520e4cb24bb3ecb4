/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Getting a ready sandbox the fastest way available (DESIGN.md §4): from the
 * image's template (a restore: ~50 ms from a new process under TCG), building
 * the template on first use, and falling back to a cold boot with a warning
 * when the template cannot be built or restored.
 */
#ifndef LG_SANDBOX_SPAWN_H
#define LG_SANDBOX_SPAWN_H

#include <stdint.h>

#include "sandbox/sandbox.h"

struct lg_err;
struct sandbox;

struct spawn_opts {
        const char *image; /* image name, "base" */
        uint64_t memory_mib;
        unsigned cpus;
        int boot_timeout_ms;          /* bound on each boot or restore */
        int intr_fd;                  /* readable = give up; -1 for none */
        int build_image;              /* build the image when missing or stale */
        int cold;                     /* skip templates: always cold-boot */
        enum sandbox_backend backend; /* SANDBOX_PROCESS: never a template (no VM) */
        unsigned pids;                /* process backend limits (sandbox.h) */
        uint64_t disk_bytes;
};

/* How the sandbox came to be, for logs and benchmarks. */
enum spawn_path {
        SPAWN_RESTORED = 0, /* from an existing template */
        SPAWN_BUILT,        /* template built now, then restored */
        SPAWN_COLD,         /* cold boot (asked for, or fallback) */
};

int sandbox_spawn(const char *home, const struct spawn_opts *o, struct sandbox **out,
                  enum spawn_path *how, struct lg_err **err) __attribute__((warn_unused_result));

#endif
