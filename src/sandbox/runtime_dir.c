/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/runtime_dir.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUNDIR_KEEP_LOGS 40  /* kept log files (two per failed sandbox) */
#define RUNDIR_GRACE_SEC 120 /* an owner-less directory younger than this is being created */

/* Field 22 of /proc/PID/stat: start time in clock ticks; with the pid it names a process. */
static int proc_starttime(long pid, unsigned long long *st)
{
        char path[64], *p;
        _cleanup_free_ char *text = NULL;
        int r;

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        r = fs_read_file(path, 4096, &text, NULL);
        if (r < 0)
                return r;
        /* comm may contain spaces and parentheses: skip to the last ')'. */
        p = strrchr(text, ')');
        if (p == NULL)
                return -EPROTO;
        for (int field = 2; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (p == NULL)
                        return -EPROTO;
        }
        *st = strtoull(p + 1, NULL, 10);
        return 0;
}

int rundir_create(const char *home, char *id, char *dir, size_t dirsz)
{
        char runroot[PATH_MAX], owner[PATH_MAX + 512], line[64];
        unsigned long long st = 0;
        unsigned char rnd[6];
        int r;

        if (snprintf(runroot, sizeof(runroot), "%s/run", home) >= (int)sizeof(runroot))
                return -ENAMETOOLONG;
        r = fs_mkdir_p(runroot, 0700);
        if (r < 0)
                return r;
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return -EIO;
        snprintf(id, RUNDIR_ID_LEN + 1, "sb-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5]);
        if (snprintf(dir, dirsz, "%s/%s", runroot, id) >= (int)dirsz)
                return -ENAMETOOLONG;
        if (mkdir(dir, 0700) < 0)
                return -errno;
        r = proc_starttime((long)getpid(), &st);
        if (r < 0)
                return r;
        snprintf(owner, sizeof(owner), "%s/owner", dir);
        snprintf(line, sizeof(line), "%ld %llu\n", (long)getpid(), st);
        return fs_write_file_atomic(owner, line, strlen(line), 0600);
}

/* 1 when the directory's owner still runs (or it is too young to judge). */
static int rundir_alive(const char *dir)
{
        char owner[PATH_MAX + 512];
        _cleanup_free_ char *text = NULL;
        unsigned long long want, have;
        long pid;
        struct stat s;

        snprintf(owner, sizeof(owner), "%s/owner", dir);
        if (fs_read_file(owner, 128, &text, NULL) < 0 ||
            sscanf(text, "%ld %llu", &pid, &want) != 2) {
                if (stat(dir, &s) < 0)
                        return 0;
                return time(NULL) - s.st_mtime < RUNDIR_GRACE_SEC;
        }
        if (proc_starttime(pid, &have) < 0)
                return 0;
        return have == want;
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
                if (fs_remove_tree(dir) == 0) {
                        log_info("removed leftovers of dead sandbox %s", de->d_name);
                        n++;
                }
        }
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
