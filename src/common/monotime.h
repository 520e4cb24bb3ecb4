/* SPDX-License-Identifier: Apache-2.0 */
/* Monotonic time. CLOCK_MONOTONIC never jumps with the wall clock. */
#ifndef LG_COMMON_MONOTIME_H
#define LG_COMMON_MONOTIME_H

#include <stdint.h>

uint64_t mono_ns(void);

static inline uint64_t mono_ms(void)
{
        return mono_ns() / 1000000u;
}

/* Milliseconds left until deadline_ms (a mono_ms() value), clamped to [0, INT32_MAX]. */
int mono_left_ms(uint64_t deadline_ms);

#endif
