/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's system setup when lg-agent is PID 1 (the initramfs's /init).
 * Doing it here instead of in a shell script saves a fork+exec of busybox per
 * step: about 100 ms of every cold boot under TCG (measured with
 * `luminaguard bench boot`).
 */
#ifndef LG_AGENT_SYSINIT_H
#define LG_AGENT_SYSINIT_H

/*
 * Mount /proc, /sys, /dev (devtmpfs), /dev/pts, /tmp, /run; load the kernel
 * modules listed in /lib/modules/order (dependency order, one file name per
 * line); switch to the disk root if the command line names one (rootfs.h);
 * set the hostname; bring up lo. Failures are logged to the console
 * and setup goes on: the host notices a missing channel by its boot timeout.
 */
void sysinit_run(void);

#endif
