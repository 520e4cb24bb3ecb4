/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Templates (DESIGN.md §4): an image booted once to "agent ready", paused and
 * saved as <home>/templates/<key>/{ram,state,meta}. The RAM file holds guest
 * memory (clones map it private: copy-on-write); the state file is the ~60 KB
 * of device state. The key covers the image key, the VM shape, the
 * accelerator and the protocol version, so any change gives a new template.
 */
#ifndef LG_SANDBOX_TEMPLATE_H
#define LG_SANDBOX_TEMPLATE_H

#include <limits.h>
#include <stdint.h>

#include "vmm/accel.h"

struct lg_err;
struct image_paths;

#define TEMPLATE_DEFAULT_MAX_AGE_S (24 * 3600)

struct template
{
        char key[65];
        char dir[PATH_MAX];
        char ram[PATH_MAX + 8];
        char state[PATH_MAX + 8];
};

struct template_shape {
        uint64_t memory_mib;
        unsigned cpus;
        enum accel_kind accel;
};

/*
 * Find the template for this image and shape; build it when missing
 * (boot, wait for the agent, save: one cold boot) unless build is 0, in which
 * case -ENOENT. Concurrent callers build it once (flock on templates/.lock).
 * boot_timeout_ms and intr_fd bound the build as they bound a boot.
 */
int template_ensure(const char *home, const struct image_paths *img,
                    const struct template_shape *shape, int build, int boot_timeout_ms, int intr_fd,
                    struct template *t, struct lg_err **err) __attribute__((warn_unused_result));

/* Remove a template that failed to restore, so the next use rebuilds it. */
void template_discard(const struct template *t);

/*
 * Remove the templates that the template `key`, just built from image `name`
 * (image_key) in `shape`, supersedes: those of older builds of the image, and
 * those of the same image and shape under another key. They can never be used
 * again. Templates of other images and shapes stay. Returns how many went.
 */
int template_prune(const char *home, const char *key, const char *name, const char *image_key,
                   const struct template_shape *shape);

#endif
