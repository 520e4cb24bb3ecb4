/* SPDX-License-Identifier: Apache-2.0 */
#include "common/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* out = a + b + c, or -ENAMETOOLONG. */
static int join(char *out, size_t outsz, const char *a, const char *b, const char *c)
{
        int n = snprintf(out, outsz, "%s%s%s", a, b, c);

        return n < 0 || (size_t)n >= outsz ? -ENAMETOOLONG : 0;
}

static int ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

int paths_home(char *out, size_t outsz)
{
        const char *env = getenv("LUMINAGUARD_HOME");

        if (env != NULL && env[0] != '\0')
                return join(out, outsz, env, "", "");
        if (geteuid() == 0)
                return join(out, outsz, "/var/lib/luminaguard", "", "");
        env = getenv("XDG_DATA_HOME");
        if (env != NULL && env[0] == '/')
                return join(out, outsz, env, "/luminaguard", "");
        env = getenv("HOME");
        if (env == NULL || env[0] != '/')
                return -ENOENT;
        return join(out, outsz, env, "/.local/share/luminaguard", "");
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
                if (join(out, outsz, env, "/", rel) == 0 && access(out, F_OK) == 0)
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

                /*
                 * The source tree is only consulted from a build tree: an
                 * installed /usr/local/bin/luminaguard must not pick up
                 * /usr/images/... (build.sh runs on the host as root).
                 */
                if (i == 1 && !ends_with(exe, "/build/bin") && !ends_with(exe, "/build-san/bin"))
                        continue;
                if (join(dir, sizeof(dir), exe, i == 0 ? "/" : rel_dirs[i], "") < 0)
                        continue;
                if (join(out, outsz, dir, rel, "") == 0 && access(out, F_OK) == 0)
                        return 0;
        }
        return -ENOENT;
}
