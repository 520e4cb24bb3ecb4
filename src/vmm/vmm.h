/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VMM engine interface (DESIGN.md §2). An engine starts one VMM process for
 * one sandbox; this module owns the process lifecycle common to all engines
 * (pidfd, polite stop, kill, reap). QEMU is the only engine today; a
 * Firecracker engine would implement the same vmm_ops.
 */
#ifndef LG_VMM_VMM_H
#define LG_VMM_VMM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/accel.h"

struct lg_err;
struct vmm;

/* Largest file a VMM may write (console and VMM logs). */
#define VMM_MAX_FILE_BYTES (8u << 20)

struct vmm_config {
        const char *id;      /* sandbox id, used in the process name */
        const char *run_dir; /* per-sandbox directory: console.log, vmm.log, root/ (the jail) */
        const char *kernel;
        const char *initrd;
        const char *cmdline;
        const char *disk; /* the image's read-only root filesystem (virtio-blk), or NULL */
        uint64_t memory_mib;
        unsigned cpus;
        enum accel_kind accel;
        int agent_fd; /* VMM's end of the agent channel; borrowed, inherited by the VMM */
        /*
         * Guest RAM in a file (templates and clones; NULL = anonymous RAM).
         * mem_shared: the guest writes the file (building a template);
         * otherwise it is mapped private and read-only (a copy-on-write clone).
         */
        const char *mem_path;
        int mem_shared;
        /*
         * The guest RAM itself, required with mem_path: an open descriptor
         * handed to the VMM, which maps it through /proc/self/fd/N. For a
         * clone, a sealed memfd holding the template's RAM (template.h): the
         * VMM must open it read-write (QEMU 7.2 does, even for a private
         * mapping), and the seal is what keeps the VMM from writing it.
         */
        int mem_fd;
        /*
         * Jail the VMM (jail.h) in these cgroups (cgroup.procs files,
         * NULL-terminated). Not jailed: jail 0 (not root).
         */
        int jail;
        const char *const *cgroup_procs;
        /* The process engine: the image's tree, the writable layer's size, tasks. */
        const char *rootfs;
        uint64_t disk_bytes;
        unsigned pids;
        /* Start paused, waiting for ops->restore (a clone); kernel/initrd/cmdline unused. */
        int incoming;
        /* Cap on any file the VMM writes; 0 = VMM_MAX_FILE_BYTES. Raised only for a snapshot
         * that streams all of guest RAM into its state (the benchmark's peer). */
        uint64_t max_file_bytes;
};

struct vmm_ops {
        const char *name;
        /* Spawn the VMM; on success the VMM runs and *out owns it. */
        int (*start)(const struct vmm_config *c, struct vmm **out, struct lg_err **err);
        /* Ask the VMM to exit (e.g. QMP "quit"); does not wait. 0 / -errno. */
        int (*quit)(struct vmm *v);
        /*
         * Pause the VM and write its device state to state_fd (RAM stays in
         * the shared memory file). 0 / -errno; errbuf gets the VMM's words.
         */
        int (*save)(struct vmm *v, int state_fd, char *errbuf, size_t errsz);
        /* Load device state from state_fd into an `incoming` VMM and run it. */
        int (*restore)(struct vmm *v, int state_fd, char *errbuf, size_t errsz);
        /* Release engine resources (sockets); the process is already reaped. */
        void (*release)(struct vmm *v);
};

/* State common to every engine; engines embed it first in their own struct. */
struct vmm {
        const struct vmm_ops *ops;
        pid_t pid;
        int pidfd;  /* readable once the process has exited; -1 after reap */
        int status; /* waitpid status, valid when reaped */
        int reaped;
};

extern const struct vmm_ops qemu_vmm_ops;
extern const struct vmm_ops process_vmm_ops; /* no VM: lg-agent in the jail (process.c) */

int vmm_start(const struct vmm_ops *ops, const struct vmm_config *c, struct vmm **out,
              struct lg_err **err) __attribute__((warn_unused_result));

/* Reap the process if it has exited within timeout_ms. 0 reaped, -ETIMEDOUT still running. */
int vmm_wait(struct vmm *v, int timeout_ms);

/*
 * Stop the VMM: ops->quit, wait up to grace_ms, then SIGKILL and reap.
 * Always leaves the process reaped. Returns 0, or -errno for a kill failure.
 */
int vmm_stop(struct vmm *v, int grace_ms);

/* Stop (with no grace if still running), release and free. NULL is fine. */
void vmm_free(struct vmm *v);

/*
 * SIGKILL the process behind a pidfd (ours or one passed to us): never
 * blocks, never hits a reused pid. 0 / -errno (-ESRCH: already gone).
 */
int vmm_pidfd_kill(int pidfd);

/*
 * The host's TSC frequency in kHz, measured once per process against
 * CLOCK_MONOTONIC (5 ms) and rounded to 25 MHz so that it is the same
 * number from run to run (templates are keyed by it). 2500000 if it cannot
 * be measured.
 */
unsigned vmm_host_tsc_khz(void);

/* First line of a VMM log file, "" if none (for error messages). */
void vmm_log_first_line(const char *path, char *out, size_t outsz);

/* "exited with status 1", "killed by signal 9", "running". */
void vmm_describe_exit(const struct vmm *v, char *out, size_t outsz);

struct jail;

/*
 * Spawn helper for engines: clone + exec argv (argv[0] an absolute path)
 * with a clean environment and fds[0..nfds) (at most VMM_MAX_FDS; -1 leaves
 * that slot closed) placed at descriptors 3, 4, ..., stdin from /dev/null,
 * stdout/stderr appended to log_path, in its own process group, killed if
 * we die (PR_SET_PDEATHSIG). With o->jail: in new mount, pid, ipc, uts and
 * net namespaces, through the jail's steps (jail.h). Fills v->pid and
 * v->pidfd; on failure o->errbuf says which step failed.
 *
 * Threads: PR_SET_PDEATHSIG fires when the *thread* that forked exits, so
 * only call this from threads that live as long as the VMMs they start.
 */
#define VMM_MAX_FDS 8
struct vmm_spawn_opts {
        uint64_t max_file_bytes; /* cap on every file the VMM writes; 0 = VMM_MAX_FILE_BYTES */
        /*
         * No transparent huge pages in the VMM (PR_SET_THP_DISABLE, kept
         * across exec). For VMs whose guest RAM is a file: their anonymous
         * memory is the VMM's own, where THP rounds every touched 4 KiB up
         * to 2 MiB — TCG's translation buffer above all.
         */
        int no_thp;
        const struct jail *jail; /* NULL: not jailed (not root) */
        char *errbuf;            /* out: why it failed */
        size_t errsz;
};
int vmm_spawn(struct vmm *v, const char *const argv[], const int *fds, size_t nfds,
              const char *log_path, const struct vmm_spawn_opts *o)
    __attribute__((warn_unused_result));

#endif
