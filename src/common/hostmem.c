/* SPDX-License-Identifier: Apache-2.0 */
#include "common/hostmem.h"

#include "common/cleanup.h"
#include "common/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

void hostmem_process(int pid, long *pss, long *priv)
{
        char path[64], *line, *save = NULL;
        _cleanup_free_ char *text = NULL;

        *pss = *priv = -1;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
        if (fs_read_file(path, 16384, &text, NULL) < 0)
                return;
        *pss = *priv = 0;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                long kib;

                if (sscanf(line, "Pss: %ld kB", &kib) == 1)
                        *pss = kib;
                else if (sscanf(line, "Private_Clean: %ld kB", &kib) == 1 ||
                         sscanf(line, "Private_Dirty: %ld kB", &kib) == 1)
                        *priv += kib;
        }
}
