/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fs.h"
#include "sandbox/runtime_dir.h"
#include "unit.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char home[] = "/tmp/lg-unit-rundir.XXXXXX";

static void setup(void)
{
        static int done;

        if (!done) {
                done = 1;
                CHECK(mkdtemp(home) != NULL);
        }
}

TEST(live_owner_is_kept_dead_owner_is_collected)
{
        char id[RUNDIR_ID_LEN + 1], dir[PATH_MAX];
        int lock = -1;

        setup();
        CHECK_EQ_INT(rundir_create(home, id, dir, sizeof(dir), &lock), 0);
        CHECK(lock >= 0);
        CHECK(strncmp(id, "sb-", 3) == 0 && strlen(id) == RUNDIR_ID_LEN);
        CHECK_EQ_INT(rundir_gc(home), 0);
        CHECK(fs_exists(dir));
        /* Owner gone (its lock released): the next GC removes the directory. */
        close(lock);
        CHECK_EQ_INT(rundir_gc(home), 1);
        CHECK(!fs_exists(dir));
}

TEST(owner_in_another_process_is_alive_until_it_dies)
{
        char id[RUNDIR_ID_LEN + 1], dir[PATH_MAX];
        int p[2], status;
        char c;
        pid_t pid;

        setup();
        CHECK_EQ_INT(pipe(p), 0);
        pid = fork();
        if (pid == 0) {
                int lock;

                if (rundir_create(home, id, dir, sizeof(dir), &lock) < 0)
                        _exit(1);
                if (write(p[1], dir, strlen(dir) + 1) < 0)
                        _exit(1);
                pause(); /* holds the lock until killed */
                _exit(0);
        }
        close(p[1]);
        memset(dir, 0, sizeof(dir));
        for (size_t n = 0; n < sizeof(dir) - 1 && read(p[0], &c, 1) == 1 && c; n++)
                dir[n] = c;
        close(p[0]);
        CHECK_EQ_INT(rundir_gc(home), 0);
        CHECK(fs_exists(dir));
        kill(pid, SIGKILL); /* like a SIGKILLed luminaguard */
        waitpid(pid, &status, 0);
        CHECK_EQ_INT(rundir_gc(home), 1);
        CHECK(!fs_exists(dir));
}

TEST(young_directory_without_owner_is_kept)
{
        char dir[PATH_MAX];

        setup();
        snprintf(dir, sizeof(dir), "%s/run/sb-000000000000", home);
        CHECK_EQ_INT(fs_mkdir_p(dir, 0700), 0);
        CHECK_EQ_INT(rundir_gc(home), 0);
        CHECK(fs_exists(dir));
        CHECK_EQ_INT(fs_remove_tree(home), 0);
}
