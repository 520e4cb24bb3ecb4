/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where LuminaGuard keeps things (DESIGN.md §8) and where its own files are
 * installed. All functions write a NUL-terminated path into out (PATH_MAX
 * bytes) and return 0 or -errno (-ENAMETOOLONG, -ENOENT when not found).
 */
#ifndef LG_COMMON_PATHS_H
#define LG_COMMON_PATHS_H

#include <stddef.h>

/*
 * State directory: $LUMINAGUARD_HOME, else /var/lib/luminaguard for root,
 * else $XDG_DATA_HOME/luminaguard or ~/.local/share/luminaguard. Not created.
 */
int paths_home(char *out, size_t outsz);

/*
 * A file shipped with LuminaGuard, by relative name ("images/base/init",
 * "lg-agent"): looked up in $LUMINAGUARD_DATADIR, then next to the running
 * binary (build tree: build/bin/lg-agent; source tree: ../../images), then in
 * the install tree (../libexec/luminaguard, ../share/luminaguard).
 */
int paths_find_data(const char *rel, char *out, size_t outsz);

#endif
