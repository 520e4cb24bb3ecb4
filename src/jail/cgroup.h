/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox's cgroup: memory, CPU and pids limits on its VMM. cgroup v1
 * (one directory per controller, as on this project's build machines) and
 * v2 (one unified directory) are both handled; the directories are created
 * under the cgroup luminaguard itself runs in, in a "luminaguard" child, so
 * a service manager's delegation is respected:
 *   v1: /sys/fs/cgroup/{memory,cpu,pids}/<own path>/luminaguard/<id>
 *   v2: /sys/fs/cgroup/<own path>/luminaguard/<id>
 * LUMINAGUARD_CGROUP=NAME replaces "luminaguard" (the tests use their own).
 */
#ifndef LG_JAIL_CGROUP_H
#define LG_JAIL_CGROUP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

struct lg_err;

#define CGROUP_MAX_DIRS 3

struct cgroup_limits {
        uint64_t memory_bytes; /* hard limit: the VMM is OOM-killed beyond it */
        unsigned cpu_millis;   /* CPU time per second of wall time, 1000 = one core */
        unsigned pids;         /* tasks (the VMM's threads) */
};

struct cgroup {
        int v2;
        unsigned ndirs;
        char dirs[CGROUP_MAX_DIRS][PATH_MAX];
        char procs[CGROUP_MAX_DIRS][PATH_MAX + 16];  /* <dir>/cgroup.procs, for the jail */
        const char *procs_list[CGROUP_MAX_DIRS + 1]; /* NULL-terminated, into procs */
};

/* Create the sandbox's cgroup(s) and set the limits. */
int cgroup_create(const char *id, const struct cgroup_limits *l, struct cgroup *cg,
                  struct lg_err **err) __attribute__((warn_unused_result));

/*
 * Remove the cgroup(s) once the VMM is gone (a cgroup with a task in it
 * cannot be removed: retried for up to a second while the kernel finishes
 * tearing the process down). 0, or -EBUSY / -errno with the directory left.
 */
int cgroup_destroy(struct cgroup *cg, char *left, size_t leftsz);

/* Remove a dead sandbox's cgroups by id (garbage collection after a crash); no waiting. */
int cgroup_remove_id(const char *id);

/*
 * Remove every sandbox cgroup below our parent that is empty and older than
 * grace_sec, whatever home it belonged to: one whose VMM died after its run
 * directory was collected. Returns how many went.
 */
int cgroup_gc(int grace_sec);

/* "v1" or "v2" and whether limits can be set here; for doctor. 0 ok, -errno not. */
int cgroup_probe(char *what, size_t whatsz);

#endif
