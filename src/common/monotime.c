/* SPDX-License-Identifier: Apache-2.0 */
#include "common/monotime.h"

#include <stdint.h>
#include <time.h>

uint64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mono_left_ms(uint64_t deadline_ms)
{
        uint64_t now = mono_ms();

        if (now >= deadline_ms)
                return 0;
        if (deadline_ms - now > INT32_MAX)
                return INT32_MAX;
        return (int)(deadline_ms - now);
}
