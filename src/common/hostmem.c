/* SPDX-License-Identifier: Apache-2.0 */
#include "common/hostmem.h"

#include <errno.h>
#include <stdio.h>

int hostmem_available_mib(uint64_t *mib)
{
        FILE *f = fopen("/proc/meminfo", "re");
        unsigned long long kib;
        char line[256];

        if (f == NULL)
                return -errno;
        while (fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
                        fclose(f);
                        *mib = kib / 1024;
                        return 0;
                }
        }
        fclose(f);
        return -ENOENT; /* kernels before 3.14 */
}
