/* SPDX-License-Identifier: Apache-2.0 */
/* What the host has left (MemAvailable, the kernel's own estimate), and what a process uses. */
#ifndef LG_COMMON_HOSTMEM_H
#define LG_COMMON_HOSTMEM_H

#include <stdint.h>

/* MemAvailable from /proc/meminfo in MiB; -errno if it cannot be read. */
int hostmem_available_mib(uint64_t *mib) __attribute__((warn_unused_result));

/* A process's PSS and private memory (smaps_rollup), in KiB; both -1 if unreadable. */
void hostmem_process(int pid, long *pss_kib, long *private_kib);

#endif
