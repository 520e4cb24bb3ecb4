/* SPDX-License-Identifier: Apache-2.0 */
/* The disk root under a tmpfs overlay (see rootfs.h). */
#include "agent/rootfs.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int rootfs_from_cmdline(const char *cmdline, char *dev, size_t devsz)
{
        for (const char *p = cmdline; p != NULL && *p != '\0';) {
                size_t n;

                p += strspn(p, " \t\n");
                n = strcspn(p, " \t\n");
                if (n > 8 && strncmp(p, "lg.root=", 8) == 0 && n - 8 < devsz &&
                    strncmp(p + 8, "/dev/", 5) == 0) {
                        memcpy(dev, p + 8, n - 8);
                        dev[n - 8] = '\0';
                        return 1;
                }
                p += n;
        }
        return 0;
}

static int step(int r, const char *what, const char *where)
{
        if (r < 0) {
                int e = errno;

                log_error("root: %s %s: %s", what, where, strerror(e));
                return -e;
        }
        return 0;
}

int rootfs_switch(const char *dev)
{
        static const char *const moved[] = {"/proc", "/sys", "/dev", "/tmp", "/run"};
        char to[64];
        int r;

        (void)mkdir("/mnt", 0755);
        (void)mkdir("/mnt/lower", 0755);
        (void)mkdir("/mnt/rw", 0755);
        (void)mkdir("/mnt/root", 0755);
        /*
         * Read-only, and the image is made without a journal (mke2fs -O
         * ^has_journal): nothing to replay, nothing ever written to the
         * file every clone shares.
         */
        if ((r = step(mount(dev, "/mnt/lower", "ext4", MS_RDONLY | MS_NOATIME, NULL), "mount",
                      dev)) < 0 ||
            (r = step(mount("tmpfs", "/mnt/rw", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"),
                      "mount tmpfs on", "/mnt/rw")) < 0 ||
            (r = step(mkdir("/mnt/rw/upper", 0755), "mkdir", "/mnt/rw/upper")) < 0 ||
            (r = step(mkdir("/mnt/rw/work", 0755), "mkdir", "/mnt/rw/work")) < 0 ||
            (r = step(mount("overlay", "/mnt/root", "overlay", 0,
                            "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work"),
                      "mount overlay on", "/mnt/root")) < 0)
                return r;
        for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
                snprintf(to, sizeof(to), "/mnt/root%s", moved[i]);
                (void)mkdir(to, 0755);
                if ((r = step(mount(moved[i], to, NULL, MS_MOVE, NULL), "move", moved[i])) < 0)
                        return r;
        }
        /* switch_root's steps, without deleting the initramfs (its pages are few). */
        if ((r = step(chdir("/mnt/root"), "chdir", "/mnt/root")) < 0 ||
            (r = step(mount(".", "/", NULL, MS_MOVE, NULL), "move the root to", "/")) < 0 ||
            (r = step(chroot("."), "chroot", "/mnt/root")) < 0 ||
            (r = step(chdir("/"), "chdir", "/")) < 0)
                return r;
        log_info("root: %s under a tmpfs overlay", dev);
        return 0;
}
