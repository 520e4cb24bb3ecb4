/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A disk root for images that have one (the `full` image): the kernel
 * command line names it (lg.root=/dev/vda); the read-only ext4 filesystem
 * on it becomes the lower layer of an overlay whose upper layer is a tmpfs,
 * and the overlay becomes / for the agent and everything it runs. So every
 * sandbox starts from the pristine image and its writes die with it.
 */
#ifndef LG_AGENT_ROOTFS_H
#define LG_AGENT_ROOTFS_H

#include <stddef.h>

/* The device of lg.root= in cmdline (NUL-terminated /proc/cmdline text) into dev. 1 / 0. */
int rootfs_from_cmdline(const char *cmdline, char *dev, size_t devsz);

/*
 * Mount dev read-only under a tmpfs overlay and make it the root, moving
 * /proc, /sys, /dev, /tmp and /run along. 0 or -errno (the initramfs stays
 * the root, and what failed is logged).
 */
int rootfs_switch(const char *dev);

#endif
