/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image module with a fake recipe: a build.sh that writes small files, so the
 * key, staleness, locking and error paths run without a kernel download. The
 * real recipe is exercised by the integration tests.
 */
#include "common/err.h"
#include "common/fs.h"
#include "image/image.h"
#include "unit.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[] = "/tmp/lg-test-image.XXXXXX";
static char home[256], data[256]; /* short, so every path built from them fits */

/* Writes the four image files; counts its runs; fails when FAIL exists. */
static const char fake_build[] =
    "#!/bin/bash\n"
    "set -e\n"
    "echo 'step 1/2: pretending'\n"
    "D=$(dirname \"$0\")\n"
    "echo run >>\"$D/runs\"\n"
    "[ -e \"$D/FAIL\" ] && { echo 'build.sh: error: told to fail' >&2; "
    "exit 1; }\n"
    "[ -e \"$D/SLOW\" ] && sleep 0.3\n"
    "echo kernel >\"$1/vmlinux\"; echo initrd >\"$1/initramfs.cpio.gz\"\n"
    "mkdir -p \"$1/rootfs/sbin\"; echo agent >\"$1/rootfs/sbin/lg-agent\"\n"
    "echo 'console=ttyS0 quiet' >\"$1/cmdline\"\n"
    "echo kernel_version=fake >\"$1/manifest\"\n"
    "echo 'step 2/2: done'\n";

static void put(const char *rel, const char *content)
{
        char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/%s", data, rel);
        CHECK_EQ_INT(fs_write_file_atomic(p, content, strlen(content), 0755), 0);
}

static int count_runs(void)
{
        char p[PATH_MAX], *s = NULL;
        int n = 0;

        snprintf(p, sizeof(p), "%s/images/fake/runs", data);
        if (fs_read_file(p, 4096, &s, NULL) < 0)
                return 0;
        for (char *c = s; *c; c++)
                n += *c == '\n';
        free(s);
        return n;
}

static void setup(void)
{
        static int done;
        char p[PATH_MAX];

        if (done)
                return;
        done = 1;
        CHECK(mkdtemp(root) != NULL);
        snprintf(home, sizeof(home), "%s/home", root);
        snprintf(data, sizeof(data), "%s/data", root);
        snprintf(p, sizeof(p), "%s/images/fake", data);
        CHECK_EQ_INT(fs_mkdir_p(p, 0755), 0);
        put("images/fake/build.sh", fake_build);
        put("lg-agent", "agent v1");
        setenv("LUMINAGUARD_DATADIR", data, 1);
}

static void key_of(char key[65])
{
        struct image_recipe r;
        struct lg_err *err = NULL;

        key[0] = '\0';
        CHECK_EQ_INT(image_recipe_find("fake", &r, &err), 0);
        CHECK_EQ_INT(image_recipe_key(&r, key, &err), 0);
        CHECK_EQ_INT(strlen(key), 64);
        err_free(&err);
}

TEST(recipe_key_tracks_every_input)
{
        char k0[65], k1[65], k2[65], k3[65], again[65];

        setup();
        key_of(k0);
        key_of(again);
        CHECK_EQ_STR(k0, again);
        put("lg-agent", "agent v2");
        key_of(k1);
        put("images/fake/build.sh", "#!/bin/bash\n# changed\n");
        key_of(k2);
        put("lg-agent", "agent v1");
        key_of(k3);
        CHECK(strcmp(k0, k1) != 0 && strcmp(k1, k2) != 0 && strcmp(k2, k3) != 0);
        /* Moving bytes from one file to the next is a different recipe too. */
        put("images/fake/build.sh", "#!/bin/bash\n# changed\nagent v");
        put("lg-agent", "1");
        key_of(again);
        CHECK(strcmp(again, k3) != 0);
        put("images/fake/build.sh", fake_build);
        put("lg-agent", "agent v1");
        key_of(again);
        CHECK_EQ_STR(again, k0);
}

/* host-inputs: the files of the directories it names are part of the key; absent is a state too. */
TEST(recipe_key_tracks_host_inputs)
{
        char k0[65], k1[65], k2[65], k3[65], k4[65], again[65], dir[PATH_MAX], list[PATH_MAX + 8],
            f[PATH_MAX + 16], hi[PATH_MAX];

        setup();
        key_of(k0);
        snprintf(dir, sizeof(dir), "%s/host-ca", root);
        snprintf(list, sizeof(list), "# CAs\n%s\n", dir);
        put("images/fake/host-inputs", list);
        key_of(k1); /* the directory does not exist yet */
        CHECK_EQ_INT(fs_mkdir_p(dir, 0755), 0);
        key_of(k2); /* it exists, empty */
        snprintf(f, sizeof(f), "%s/a.crt", dir);
        CHECK_EQ_INT(fs_write_file_atomic(f, "one", 3, 0644), 0);
        key_of(k3);
        CHECK_EQ_INT(fs_write_file_atomic(f, "two", 3, 0644), 0);
        key_of(k4);
        CHECK(strcmp(k0, k1) != 0 && strcmp(k1, k2) != 0 && strcmp(k2, k3) != 0 &&
              strcmp(k3, k4) != 0);
        CHECK_EQ_INT(fs_write_file_atomic(f, "one", 3, 0644), 0);
        key_of(again);
        CHECK_EQ_STR(again, k3);
        /* A relative path is a recipe error, not a silent skip. */
        {
                struct image_recipe r;
                struct lg_err *err = NULL;

                put("images/fake/host-inputs", "relative/dir\n");
                CHECK_EQ_INT(image_recipe_find("fake", &r, &err), 0);
                CHECK(image_recipe_key(&r, again, &err) < 0);
                CHECK(err != NULL && strstr(err->msg, "not an absolute path") != NULL);
                err_free(&err);
        }
        unlink(f);
        rmdir(dir);
        snprintf(hi, sizeof(hi), "%s/images/fake/host-inputs", data);
        CHECK_EQ_INT(unlink(hi), 0);
        key_of(again);
        CHECK_EQ_STR(again, k0);
}

TEST(missing_recipe_and_image_errors)
{
        struct image_paths p;
        struct lg_err *err = NULL;
        struct image_recipe r;

        setup();
        CHECK(image_recipe_find("nosuch", &r, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_IMAGE &&
              strstr(err->msg, "images/nosuch/build.sh"));
        err_free(&err);
        CHECK(image_ensure(home, "fake", 0, 0, &p, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_IMAGE);
        CHECK(err != NULL && strstr(err->msg, "run 'luminaguard image build'") != NULL);
        CHECK(err != NULL && strstr(err->msg, "vmlinux") != NULL);
        err_free(&err);
        CHECK(image_ensure(home, "../etc", 1, 0, &p, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_USAGE);
        err_free(&err);
}

TEST(build_then_stale_then_rebuild)
{
        struct image_paths p;
        struct image_info info;
        struct lg_err *err = NULL;
        int runs;

        setup();
        CHECK_EQ_INT(image_build(home, "fake", 0, 0, &err), 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        CHECK_EQ_INT(image_ensure(home, "fake", 0, 0, &p, &err), 0);
        CHECK_EQ_STR(p.cmdline, "console=ttyS0 quiet");
        CHECK(strstr(p.kernel, "/images/fake/vmlinux") != NULL);
        runs = count_runs();
        /* Fresh: neither ensure nor a plain build runs the recipe again. */
        CHECK_EQ_INT(image_ensure(home, "fake", 1, 0, &p, &err), 0);
        CHECK_EQ_INT(image_build(home, "fake", 0, 0, &err), 0);
        CHECK_EQ_INT(count_runs(), runs);
        CHECK_EQ_INT(image_build(home, "fake", 1, 0, &err), 0);
        CHECK_EQ_INT(count_runs(), runs + 1);

        put("lg-agent", "agent v3");
        CHECK_EQ_INT(image_inspect(home, "fake", &info, &err), 0);
        CHECK(info.present && info.stale);
        CHECK(strstr(info.manifest, "kernel_version=fake") != NULL);
        CHECK(image_ensure(home, "fake", 0, 0, &p, &err) < 0);
        CHECK(err != NULL && strstr(err->msg, "stale") != NULL);
        err_free(&err);
        CHECK_EQ_INT(image_ensure(home, "fake", 1, 0, &p, &err), 0);
        CHECK_EQ_INT(count_runs(), runs + 2);
        CHECK_EQ_INT(image_inspect(home, "fake", &info, &err), 0);
        CHECK(info.present && !info.stale);
        CHECK_EQ_STR(info.paths.key, info.recipe_key);
}

TEST(corrupt_image_names_the_file)
{
        struct image_paths p;
        struct lg_err *err = NULL;
        char f[PATH_MAX];

        setup();
        CHECK_EQ_INT(image_ensure(home, "fake", 1, 0, &p, &err), 0);
        snprintf(f, sizeof(f), "%s/images/fake/initramfs.cpio.gz", home);
        CHECK_EQ_INT(truncate(f, 0), 0);
        CHECK(image_ensure(home, "fake", 0, 0, &p, &err) < 0);
        CHECK(err != NULL && strstr(err->msg, "initramfs.cpio.gz: empty file") != NULL);
        err_free(&err);
        /* A manifest without a key is corrupt, not fresh. */
        snprintf(f, sizeof(f), "%s/images/fake/manifest", home);
        CHECK_EQ_INT(fs_write_file_atomic(f, "x=y\n", 4, 0644), 0);
        CHECK_EQ_INT(image_build(home, "fake", 0, 0, &err), 0);
        CHECK_EQ_INT(image_ensure(home, "fake", 0, 0, &p, &err), 0);
}

TEST(failed_build_keeps_old_image_and_names_log)
{
        struct image_paths p;
        struct lg_err *err = NULL;
        char f[PATH_MAX];

        setup();
        CHECK_EQ_INT(image_ensure(home, "fake", 1, 0, &p, &err), 0);
        put("images/fake/FAIL", "");
        CHECK(image_build(home, "fake", 1, 0, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_IMAGE);
        CHECK(err != NULL && strstr(err->msg, "told to fail") != NULL);
        CHECK(err != NULL && strstr(err->msg, "images/.fake.build.log") != NULL);
        err_free(&err);
        snprintf(f, sizeof(f), "%s/images/fake/FAIL", data);
        CHECK_EQ_INT(unlink(f), 0);
        CHECK_EQ_INT(image_ensure(home, "fake", 0, 0, &p, &err), 0);
        snprintf(f, sizeof(f), "%s/images/.fake.tmp.%d", home, (int)getpid());
        CHECK(!fs_exists(f));
}

TEST(concurrent_first_use_builds_once)
{
        char dir[PATH_MAX];
        pid_t kids[3];
        int runs, status;

        setup();
        snprintf(dir, sizeof(dir), "%s/images/fake", home);
        CHECK_EQ_INT(fs_remove_tree(dir), 0);
        put("images/fake/SLOW", "");
        runs = count_runs();
        fflush(stdout); /* or the children print our buffered lines again */
        for (int i = 0; i < 3; i++) {
                kids[i] = fork();
                if (kids[i] == 0) {
                        struct image_paths p;
                        struct lg_err *err = NULL;

                        _exit(image_ensure(home, "fake", 1, 0, &p, &err) == 0 ? 0 : 1);
                }
        }
        for (int i = 0; i < 3; i++) {
                CHECK(waitpid(kids[i], &status, 0) == kids[i]);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        CHECK_EQ_INT(count_runs(), runs + 1);
        snprintf(dir, sizeof(dir), "%s/images/fake/SLOW", data);
        unlink(dir);
}

TEST(zz_cleanup)
{
        CHECK_EQ_INT(fs_remove_tree(root), 0);
}
