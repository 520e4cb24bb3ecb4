/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest images (DESIGN.md §4). An image lives in $LUMINAGUARD_HOME/images/<name>/:
 *
 *     vmlinux            Debian cloud kernel (ELF, booted via PVH), from `apt-get download`
 *     initramfs.cpio.gz  busybox-static, virtio modules, lg-agent (also /init)
 *     cmdline            kernel command line the image needs (one line)
 *     manifest           key=value lines: recipe key, kernel package/version, build time
 *
 * The recipe is images/<name>/ in the source tree (build.sh) plus the
 * lg-agent binary; its SHA-256 is the image key. An image whose key differs
 * from the recipe's is stale and rebuilt on first use.
 */
#ifndef LG_IMAGE_IMAGE_H
#define LG_IMAGE_IMAGE_H

#include <limits.h>
#include <stddef.h>

struct lg_err;

struct image_paths {
        char dir[PATH_MAX];
        char kernel[PATH_MAX];
        char initrd[PATH_MAX];
        char rootfs[PATH_MAX]; /* the root tree, for the process backend */
        char disk[PATH_MAX];   /* the root filesystem for VMs (rootfs.ext4), or "" when none */
        /*
         * Which disk file that is (device, inode, size, mtime), "" with no
         * disk: part of a template's key, and checked again before a clone
         * starts, since a guest restored onto another disk than the one it
         * booted from would read garbage through its cached filesystem.
         */
        char disk_id[96];
        char cmdline[1024]; /* content of the cmdline file, no newline */
        char key[65];       /* recipe key, hex SHA-256 */
};

/*
 * Fill *out for image `name` ("base") under home. When the image is missing or
 * stale and build_if_needed is set, build it first (progress on stderr when
 * progress is set). Errors: LG_EK_IMAGE with a message saying what is missing
 * and how to fix it.
 */
int image_ensure(const char *home, const char *name, int build_if_needed, int progress,
                 struct image_paths *out, struct lg_err **err) __attribute__((warn_unused_result));

/* The identity of a disk file (image_paths.disk_id) into id. 0 / -errno. */
int image_disk_id(const char *disk, char *id, size_t idsz);

/* Build (or rebuild when force, or when stale) image `name` under home, atomically. */
int image_build(const char *home, const char *name, int force, int progress, struct lg_err **err)
    __attribute__((warn_unused_result));

/* The files an image is built from, found with paths_find_data(). */
struct image_recipe {
        char build_sh[PATH_MAX]; /* images/<name>/build.sh */
        char agent[PATH_MAX];    /* lg-agent (static binary) */
        /*
         * images/<parent>/build.sh when images/<name>/extends names a parent
         * whose build.sh ours runs first (full extends base), else "".
         */
        char parent_sh[PATH_MAX];
        /*
         * images/<name>/host-inputs, or "": host directories (one absolute
         * path a line) whose files the build copies in — the host's own
         * CA additions for a TLS-inspecting network. Their content is part
         * of the key, so the image follows the host's changes.
         */
        char host_inputs[PATH_MAX];
};

/* Locate the recipe of `name`. LG_EK_IMAGE naming the missing file. */
int image_recipe_find(const char *name, struct image_recipe *r, struct lg_err **err)
    __attribute__((warn_unused_result));

/*
 * key = hex SHA-256 over each recipe file as (role, size, content), so that
 * any change to any input, or moving bytes between inputs, changes the key.
 */
int image_recipe_key(const struct image_recipe *r, char key[65], struct lg_err **err)
    __attribute__((warn_unused_result));

/* What `luminaguard image info` shows; filled as far as it can be. */
struct image_info {
        struct image_paths paths;     /* paths.key: the key the image was built with */
        char recipe_key[65];          /* key of the recipe now, "" when no recipe found */
        int present;                  /* every image file exists and is readable */
        int stale;                    /* present, recipe found, and the keys differ */
        char problem[PATH_MAX + 256]; /* why it is not present (or ""), for humans */
        char manifest[2048];          /* the manifest file as written */
};

/* Inspect image `name` without building. Fails only for a bad name or no memory. */
int image_inspect(const char *home, const char *name, struct image_info *info, struct lg_err **err)
    __attribute__((warn_unused_result));

#endif
