/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/runtime_dir.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "jail/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUNDIR_KEEP_LOGS 40  /* kept log files (two per failed sandbox) */
#define RUNDIR_GRACE_SEC 120 /* an owner-less directory younger than this is being created */

/* mkdir a fresh random run directory; fills id and dir only on success. */
static int rundir_mkdir(const char *runroot, char *id, char *dir, size_t dirsz)
{
        char tid[RUNDIR_ID_LEN + 1], tdir[PATH_MAX];

        for (int attempt = 0; attempt < 8; attempt++) {
                unsigned char rnd[6];

                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return -EIO;
                snprintf(tid, sizeof(tid), "sb-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                         rnd[3], rnd[4], rnd[5]);
                if (snprintf(tdir, sizeof(tdir), "%s/%s", runroot, tid) >= (int)sizeof(tdir) ||
                    strlen(tdir) >= dirsz)
                        return -ENAMETOOLONG;
                if (mkdir(tdir, 0700) == 0) {
                        memcpy(id, tid, sizeof(tid));
                        snprintf(dir, dirsz, "%s", tdir);
                        return 0;
                }
                /* A collision must never hand us someone else's directory. */
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int rundir_create(const char *home, char *id, char *dir, size_t dirsz, int *lock_fd)
{
        char runroot[PATH_MAX], tmp[PATH_MAX + 32], owner[PATH_MAX + 32], line[32];
        _cleanup_fd_ int fd = -1;
        int r;

        dir[0] = '\0';
        if (snprintf(runroot, sizeof(runroot), "%s/run", home) >= (int)sizeof(runroot))
                return -ENAMETOOLONG;
        r = fs_mkdir_p(runroot, 0700);
        if (r < 0)
                return r;
        r = rundir_mkdir(runroot, id, dir, dirsz);
        if (r < 0)
                return r;
        /*
         * Liveness is a lock, not a pid: the owner holds an exclusive flock on
         * `owner` for the sandbox's whole life and the kernel drops it when
         * the owner dies, however it dies and in whatever pid namespace it
         * runs. The file is locked before it gets its name, so the GC never
         * sees an unlocked owner of a live sandbox.
         */
        snprintf(tmp, sizeof(tmp), "%s/.owner", dir);
        snprintf(owner, sizeof(owner), "%s/owner", dir);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                return -errno;
        snprintf(line, sizeof(line), "%ld\n", (long)getpid()); /* for people reading it */
        if (write(fd, line, strlen(line)) < 0 || rename(tmp, owner) < 0)
                return -errno;
        *lock_fd = steal_fd(&fd);
        return 0;
}

/* 1 when the directory's owner still runs (or it is too young to judge). */
static int rundir_alive(const char *dir)
{
        char owner[PATH_MAX + 512];
        _cleanup_fd_ int fd = -1;
        struct stat s;

        snprintf(owner, sizeof(owner), "%s/owner", dir);
        fd = open(owner, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                /* No owner yet: being created right now, unless it is old. */
                if (stat(dir, &s) < 0)
                        return 0;
                return time(NULL) - s.st_mtime < RUNDIR_GRACE_SEC;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        return 0; /* we got the lock: its owner is gone (closing fd releases it) */
}

int rundir_gc(const char *home)
{
        char runroot[PATH_MAX];
        _cleanup_dir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        if (snprintf(runroot, sizeof(runroot), "%s/run", home) >= (int)sizeof(runroot))
                return -ENAMETOOLONG;
        d = opendir(runroot);
        if (d == NULL)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)) != NULL) {
                char dir[PATH_MAX + 300];

                if (strncmp(de->d_name, "sb-", 3) != 0)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s", runroot, de->d_name);
                if (rundir_alive(dir))
                        continue;
                /* Its VMM died with its owner (PR_SET_PDEATHSIG): the cgroup is empty. */
                (void)cgroup_remove_id(de->d_name);
                if (fs_remove_tree(dir) == 0) {
                        log_info("removed leftovers of dead sandbox %s", de->d_name);
                        n++;
                }
        }
        /* Cgroups whose VMM outlived its run directory (killed later): no id to go by. */
        (void)cgroup_gc(RUNDIR_GRACE_SEC);
        return n;
}

struct logent {
        char name[256];
        time_t mtime;
};

static int logent_newer_first(const void *a, const void *b)
{
        const struct logent *x = a, *y = b;

        return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : strcmp(x->name, y->name);
}

void rundir_prune_logs(const char *dir)
{
        _cleanup_dir_ DIR *d = opendir(dir);
        _cleanup_free_ struct logent *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                struct stat s;

                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &s, 0) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct logent *nv = realloc(v, ncap * sizeof(*v));

                        if (nv == NULL)
                                return;
                        v = nv;
                        cap = ncap;
                }
                snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
                v[n].mtime = s.st_mtime;
                n++;
        }
        qsort(v, n, sizeof(*v), logent_newer_first);
        for (size_t i = RUNDIR_KEEP_LOGS; i < n; i++)
                unlinkat(dirfd(d), v[i].name, 0);
}
