/* SPDX-License-Identifier: Apache-2.0 */
#include "common/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fmt(char *out, size_t outsz, const char *f, const char *a, const char *b)
{
        int n = snprintf(out, outsz, f, a, b);

        return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

int paths_home(char *out, size_t outsz)
{
        const char *env = getenv("LUMINAGUARD_HOME");

        if (env != NULL && env[0] != '\0')
                return fmt(out, outsz, "%s%s", env, "");
        if (geteuid() == 0)
                return fmt(out, outsz, "%s%s", "/var/lib/luminaguard", "");
        env = getenv("XDG_DATA_HOME");
        if (env != NULL && env[0] == '/')
                return fmt(out, outsz, "%s%s", env, "/luminaguard");
        env = getenv("HOME");
        if (env == NULL || env[0] != '/')
                return -ENOENT;
        return fmt(out, outsz, "%s%s", env, "/.local/share/luminaguard");
}

int paths_find_data(const char *rel, char *out, size_t outsz)
{
        /* Relative to the directory holding the running binary. */
        static const char *const rel_dirs[] = {
                "",                         /* build/bin/lg-agent */
                "/../../",                  /* source tree: build/bin -> images/ */
                "/../libexec/luminaguard/", /* installed agent */
                "/../share/luminaguard/",   /* installed recipes */
        };
        char exe[PATH_MAX], *slash;
        const char *env = getenv("LUMINAGUARD_DATADIR");
        ssize_t n;

        if (env != NULL && env[0] != '\0') {
                if (fmt(out, outsz, "%s/%s", env, rel) == 0 && access(out, F_OK) == 0)
                        return 0;
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                return -errno;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash == NULL)
                return -ENOENT;
        *slash = '\0';
        for (size_t i = 0; i < sizeof(rel_dirs) / sizeof(rel_dirs[0]); i++) {
                char dir[PATH_MAX];

                if (fmt(dir, sizeof(dir), "%s%s", exe, i == 0 ? "/" : rel_dirs[i]) < 0)
                        continue;
                if (fmt(out, outsz, "%s%s", dir, rel) == 0 && access(out, F_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}
