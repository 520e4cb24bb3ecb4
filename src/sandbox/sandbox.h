/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sandbox lifecycle (DESIGN.md §4): create = run directory + image + VMM +
 * agent ready; destroy = stop VMM, reap, remove everything, then verify that
 * nothing is left. A sandbox is single-owner and not thread-safe.
 */
#ifndef LG_SANDBOX_SANDBOX_H
#define LG_SANDBOX_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/accel.h"

struct lg_err;
struct sandbox;
struct agent_conn;
struct image_paths;
struct template_loaded;

enum sandbox_backend {
        SANDBOX_VM,      /* a QEMU micro-VM (the default) */
        SANDBOX_PROCESS, /* lg-agent in the jail on the host's kernel (vmm/process.c) */
};

struct sandbox_opts {
        /* What to cold-boot; a clone of an image with a disk needs it too (image->disk). */
        const struct image_paths *image;
        enum sandbox_backend backend;
        unsigned pids;       /* process backend: tasks (default SANDBOX_DEFAULT_PIDS) */
        uint64_t disk_bytes; /* process backend: writable layer (default SANDBOX_DEFAULT_DISK) */
        /*
         * Guest RAM file, or NULL for anonymous RAM. When cold-booting, the
         * guest writes it (a template is being built); when restoring, it is
         * the template's RAM, mapped private and read-only.
         */
        const char *ram_file;
        const char *restore_state; /* restore this template state instead of booting */
        /*
         * A clone's template already opened (template_ram.h), shared by the
         * clones given the same one (the pool); ram_file and restore_state
         * then only name it. NULL: open them and copy the RAM for this one.
         */
        const struct template_loaded *loaded;
        enum accel_kind accel;
        uint64_t memory_mib;   /* guest RAM */
        unsigned cpus;         /* vCPUs */
        int boot_timeout_ms;   /* bound on "agent ready" */
        int intr_fd;           /* readable = give up (a signalfd); -1 for none */
        int full_ram_snapshot; /* to be saved with all of RAM in its state (benchmark peer) */
        /*
         * Out, may be NULL: set to 1 when the template itself is at fault —
         * QEMU refused its state, or the restored guest died or misbehaved —
         * as opposed to an interrupt, a timeout or a host-side failure, which
         * say nothing about the template and must not get it discarded.
         */
        int *template_failed;
};

#define SANDBOX_DEFAULT_MEMORY_MIB 256
#define SANDBOX_DEFAULT_CPUS       1
#define SANDBOX_DEFAULT_BOOT_MS    60000
/*
 * A jailed VMM's cgroup: guest memory plus this much for QEMU itself (TCG's
 * translation buffer is capped at 256 MiB of it), and this many tasks.
 */
#define SANDBOX_VMM_OVERHEAD_MIB 512
#define SANDBOX_VMM_PIDS         64
/* A process sandbox: its commands' tasks, and its writable layer (tmpfs, counted in memory). */
#define SANDBOX_DEFAULT_PIDS 256
#define SANDBOX_DEFAULT_DISK (64ull << 20)

/*
 * Start a sandbox — cold boot, or restore from a template followed by RESEED
 * — and wait until its agent is ready. On failure nothing is left behind
 * except, when the guest started but never became ready, its console log
 * under <home>/logs/ (named in the error). Most callers want sandbox_spawn().
 */
int sandbox_create(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                   struct lg_err **err) __attribute__((warn_unused_result));

/*
 * sandbox_create() of a clone in two halves, for callers that start VMMs
 * ahead of need (the pool). prestart: the run directory, the template's
 * files opened, QEMU started and waiting for its state. resume: restore,
 * RESEED, agent ready; ready_ms counts from here. resume consumes sb on
 * failure (destroyed, like a failed create); o must describe the same clone.
 */
int sandbox_prestart(const char *home, const struct sandbox_opts *o, struct sandbox **out,
                     struct lg_err **err) __attribute__((warn_unused_result));
int sandbox_resume(struct sandbox *sb, const struct sandbox_opts *o, struct lg_err **err)
    __attribute__((warn_unused_result));

/* Pause the sandbox and write its device state to state_path (new file): a template. */
int sandbox_snapshot(struct sandbox *sb, const char *state_path, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * Stop and remove the sandbox, free sb, and verify that no process, file or
 * descriptor of it remains (-EBUSY + message otherwise). NULL is fine.
 */
int sandbox_destroy(struct sandbox *sb, struct lg_err **err) __attribute__((warn_unused_result));

/*
 * Stop the VMM and move its console and VMM logs to <home>/logs/<id>.*.log so
 * a failure can be diagnosed after destroy (the newest 40 files are kept).
 * Returns the console log's new path (valid until destroy), or NULL.
 */
const char *sandbox_save_logs(struct sandbox *sb);

const char *sandbox_id(const struct sandbox *sb);
struct agent_conn *sandbox_agent(struct sandbox *sb);
/* SIGKILL the VMM now, without waiting (destroy still reaps and cleans up). */
void sandbox_kill_now(struct sandbox *sb);
/* The VMM's process id (for /proc accounting). */
int sandbox_vmm_pid(const struct sandbox *sb);
/* Readable once the VMM process has exited. */
int sandbox_vmm_pidfd(const struct sandbox *sb);
/* "killed by signal 9" etc., after the VMM exited (reaps it). */
void sandbox_vmm_exit(struct sandbox *sb, char *out, size_t outsz);
/* Milliseconds from sandbox_create() entry to agent ready. */
double sandbox_ready_ms(const struct sandbox *sb);

#endif
