/* SPDX-License-Identifier: Apache-2.0 */
/* What the host has left: MemAvailable, the kernel's own estimate. */
#ifndef LG_COMMON_HOSTMEM_H
#define LG_COMMON_HOSTMEM_H

#include <stdint.h>

/* MemAvailable from /proc/meminfo in MiB; -errno if it cannot be read. */
int hostmem_available_mib(uint64_t *mib) __attribute__((warn_unused_result));

#endif
