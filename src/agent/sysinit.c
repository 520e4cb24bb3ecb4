/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/sysinit.h"
#include "agent/rootfs.h"
#include "common/cleanup.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MODULE_DIR "/lib/modules"

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                     const char *data)
{
        mkdir(dst, 0755); /* most exist in the initramfs; EEXIST is fine */
        if (mount(src, dst, type, flags, data) < 0)
                log_error("mount %s on %s: %s", type, dst, strerror(errno));
}

static void load_modules(void)
{
        _cleanup_file_ FILE *order = fopen(MODULE_DIR "/order", "re");
        char name[256];

        if (order == NULL) {
                log_error("%s/order: %s", MODULE_DIR, strerror(errno));
                return;
        }
        while (fgets(name, sizeof(name), order) != NULL) {
                char path[sizeof(MODULE_DIR) + sizeof(name)];
                _cleanup_fd_ int fd = -1;

                name[strcspn(name, "\n")] = '\0';
                if (name[0] == '\0' || strchr(name, '/') != NULL)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", MODULE_DIR, name);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                /* finit_module: the kernel reads the file itself, no copy through us. */
                if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST))
                        log_error("load module %s: %s", name, strerror(errno));
        }
}

static void loopback_up(void)
{
        _cleanup_fd_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr;

        if (s < 0)
                return;
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                log_error("bring up lo: %s", strerror(errno));
}

/* An image with a disk root (lg.root= on the command line) switches to it now. */
static void disk_root(void)
{
        _cleanup_file_ FILE *f = fopen("/proc/cmdline", "re");
        char cmdline[2048] = "", dev[64];
        struct stat st;

        if (f == NULL || fgets(cmdline, sizeof(cmdline), f) == NULL ||
            !rootfs_from_cmdline(cmdline, dev, sizeof(dev)))
                return;
        /* The driver's probe creates the node before finit_module returns; a moment's grace. */
        for (int i = 0; i < 100 && stat(dev, &st) < 0; i++)
                usleep(10000);
        /*
         * Half a switch (some mounts moved, or still the initramfs) would run
         * commands in a broken or wrong root: stop instead. The host sees a
         * guest that never became ready, and keeps its console log.
         */
        if (rootfs_switch(dev) < 0) {
                log_error("root: cannot switch to %s: powering off", dev);
                sync();
                reboot(RB_POWER_OFF);
        }
}

void sysinit_run(void)
{
        static const char hostname[] = "sandbox";

        do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
        do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                 "gid=5,mode=620,ptmxmode=666");
        do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
        load_modules();
        disk_root();
        if (sethostname(hostname, sizeof(hostname) - 1) < 0)
                log_error("sethostname: %s", strerror(errno));
        loopback_up();
        setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin", 1);
        setenv("HOME", "/root", 1);
        log_info("system ready");
}
