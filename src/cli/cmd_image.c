/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard image build|info`: the guest images under $LUMINAGUARD_HOME/images. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/monotime.h"
#include "common/paths.h"
#include "image/image.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char image_usage[] =
    "usage: luminaguard image build [--force] [NAME]\n"
    "       luminaguard image info [NAME]\n"
    "\n"
    "Guest images live in $LUMINAGUARD_HOME/images/NAME (default NAME: base).\n"
    "\n"
    "  build   build the image from its recipe (images/NAME/build.sh, init and\n"
    "          lg-agent) unless it is already up to date; --force rebuilds anyway.\n"
    "          The kernel .deb is cached in $LUMINAGUARD_HOME/cache.\n"
    "  info    show paths, recipe key, manifest, and whether the image is stale.\n";

/* Parse "[--force] [NAME]". 0 to go on, 1 after --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, int allow_force, int *force, const char **name)
{
        int have_name = 0;

        *name = "base";
        for (int i = 2; i < argc; i++) {
                if (allow_force && strcmp(argv[i], "--force") == 0) {
                        *force = 1;
                } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        fputs(image_usage, stdout);
                        return 1;
                } else if (argv[i][0] != '-' && !have_name) {
                        *name = argv[i];
                        have_name = 1;
                } else {
                        fprintf(stderr,
                                "luminaguard: error: image %s: unexpected argument '%s'\n%s",
                                argv[1], argv[i], image_usage);
                        return -1;
                }
        }
        return 0;
}

static void print_file(const char *label, const char *path)
{
        struct stat st;

        if (stat(path, &st) == 0)
                printf("%-12s %s (%.1f MiB)\n", label, path, (double)st.st_size / (1 << 20));
        else
                printf("%-12s %s (%s)\n", label, path, strerror(errno));
}

static int image_info_cmd(const char *home, const char *name)
{
        struct image_info info;
        struct lg_err *err = NULL;
        const char *m;

        if (image_inspect(home, name, &info, &err) < 0) {
                int rc = cli_report(err);

                err_free(&err);
                return rc;
        }
        printf("%-12s %s\n", "image:", name);
        printf("%-12s %s\n", "directory:", info.paths.dir);
        print_file("kernel:", info.paths.kernel);
        print_file("initramfs:", info.paths.initrd);
        if (info.present)
                printf("%-12s %s\n", "cmdline:", info.paths.cmdline);
        printf("%-12s %s\n", "image key:", info.paths.key[0] ? info.paths.key : "-");
        printf("%-12s %s\n",
               "recipe key:", info.recipe_key[0] ? info.recipe_key : "- (recipe not found)");
        if (!info.present)
                printf("%-12s missing or unreadable: %s (fix: luminaguard image build)\n",
                       "status:", info.problem);
        else if (info.stale)
                printf("%-12s stale: the recipe changed since this build (rebuilt on first "
                       "use, or: luminaguard image build)\n",
                       "status:");
        else
                printf("%-12s %s\n", "status:",
                       info.recipe_key[0] ? "up to date" : "present (no recipe to compare)");
        if (info.manifest[0] != '\0') {
                printf("manifest:\n");
                for (m = info.manifest; *m != '\0';) {
                        size_t n = strcspn(m, "\n");

                        printf("  %.*s\n", (int)n, m);
                        m += n + (m[n] == '\n');
                }
        }
        return 0;
}

static int image_build_cmd(const char *home, const char *name, int force)
{
        struct image_info info;
        struct lg_err *err = NULL;
        uint64_t t0 = mono_ms();
        int rc;

        if (image_inspect(home, name, &info, &err) < 0)
                goto fail;
        if (!force && info.present && !info.stale && info.recipe_key[0] != '\0') {
                printf("image %s is up to date (%s); use --force to rebuild\n", name,
                       info.paths.dir);
                return 0;
        }
        if (image_build(home, name, force, 1, &err) < 0)
                goto fail;
        printf("image %s built in %.1f s: %s\n", name, (double)(mono_ms() - t0) / 1000.0,
               info.paths.dir);
        return 0;
fail:
        rc = cli_report(err);
        err_free(&err);
        return rc;
}

int cmd_image(int argc, char **argv)
{
        char home[PATH_MAX];
        const char *name;
        int force = 0, r;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                fputs(image_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? LG_EXIT_USAGE : 0;
        }
        if (strcmp(argv[1], "build") != 0 && strcmp(argv[1], "info") != 0) {
                fprintf(stderr, "luminaguard: error: unknown image command '%s'\n%s", argv[1],
                        image_usage);
                return LG_EXIT_USAGE;
        }
        r = parse_args(argc, argv, strcmp(argv[1], "build") == 0, &force, &name);
        if (r != 0)
                return r > 0 ? 0 : LG_EXIT_USAGE;
        if (paths_home(home, sizeof(home)) < 0) {
                fprintf(stderr, "luminaguard: error: cannot tell the state directory: set "
                                "LUMINAGUARD_HOME or HOME\n");
                return LG_EXIT_USAGE;
        }
        if (strcmp(argv[1], "build") == 0)
                return image_build_cmd(home, name, force);
        return image_info_cmd(home, name);
}
