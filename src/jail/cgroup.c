/* SPDX-License-Identifier: Apache-2.0 */
#include "jail/cgroup.h"
#include "common/err.h"
#include "common/cleanup.h"
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

static const char *const v1_controllers[CGROUP_MAX_DIRS] = {"memory", "cpu", "pids"};

static int is_v2(void)
{
        return access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

/*
 * Our own cgroup in the hierarchy holding `controller` (v1), or in the
 * unified one (controller NULL), from /proc/self/cgroup.
 */
static int own_path(const char *controller, char *out, size_t outsz)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[PATH_MAX + 128];
        int r = -ENOENT;

        if (f == NULL)
                return -errno;
        while (r == -ENOENT && fgets(line, sizeof(line), f) != NULL) {
                char *ctrls = strchr(line, ':'), *path;

                if (ctrls == NULL || (path = strchr(++ctrls, ':')) == NULL)
                        continue;
                *path++ = '\0';
                path[strcspn(path, "\n")] = '\0';
                if (controller == NULL && ctrls[0] != '\0')
                        continue; /* v2: the line with no controllers, "0::/path" */
                if (controller != NULL) {
                        char *save = NULL;
                        int found = 0;

                        for (char *c = strtok_r(ctrls, ",", &save); c && !found;
                             c = strtok_r(NULL, ",", &save))
                                found = strcmp(c, controller) == 0;
                        if (!found)
                                continue;
                }
                r = snprintf(out, outsz, "%s", strcmp(path, "/") == 0 ? "" : path) < (int)outsz
                        ? 0
                        : -ENAMETOOLONG;
        }
        fclose(f);
        return r;
}

/* The directory sandboxes are created in, for one hierarchy: <own>/<LUMINAGUARD_CGROUP>. */
static int parent_dir(const char *controller, char *out, size_t outsz)
{
        const char *name = getenv("LUMINAGUARD_CGROUP");
        char own[PATH_MAX];
        int r, n;

        if (name == NULL || name[0] == '\0')
                name = "luminaguard";
        if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return -EINVAL;
        r = own_path(controller, own, sizeof(own));
        if (r < 0)
                return r;
        n = snprintf(out, outsz, "%s%s%s%s/%s", CGROUP_ROOT, controller ? "/" : "",
                     controller ? controller : "", own, name);
        return n < (int)outsz ? 0 : -ENAMETOOLONG;
}

/* The sandbox's directories, without creating anything. */
static int cgroup_paths(const char *id, struct cgroup *cg, char parents[][PATH_MAX])
{
        memset(cg, 0, sizeof(*cg));
        cg->v2 = is_v2();
        cg->ndirs = cg->v2 ? 1 : CGROUP_MAX_DIRS;
        for (unsigned i = 0; i < cg->ndirs; i++) {
                int r = parent_dir(cg->v2 ? NULL : v1_controllers[i], parents[i], PATH_MAX);

                if (r < 0)
                        return r;
                if (snprintf(cg->dirs[i], sizeof(cg->dirs[i]), "%s/%s", parents[i], id) >=
                    (int)sizeof(cg->dirs[i]))
                        return -ENAMETOOLONG;
                snprintf(cg->procs[i], sizeof(cg->procs[i]), "%s/%s/cgroup.procs", parents[i], id);
                cg->procs_list[i] = cg->procs[i];
        }
        cg->procs_list[cg->ndirs] = NULL;
        return 0;
}

static int put(const char *dir, const char *file, const char *value)
{
        char path[PATH_MAX + 64];
        int fd, r = 0;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, value, strlen(value)) < 0)
                r = -errno;
        close(fd);
        return r;
}

#define V2_CONTROLLERS "+memory +cpu +pids"

/*
 * v2: the controllers must be enabled in the subtree_control of every
 * ancestor of the sandboxes' cgroups, from the root down. The kernel refuses
 * that in a non-root cgroup with processes of its own ("no internal
 * processes"): when our own cgroup is such, we move ourselves into a leaf
 * below it (<own>/luminaguard-self) first — enough when luminaguard is the
 * only process there (a delegated service cgroup); a shared one (a login
 * session) cannot be fixed from here.
 */
static int v2_enable(const char *parent, struct lg_err **err)
{
        char up[PATH_MAX], leaf[PATH_MAX + 32];
        char *slash;
        int r = 0;

        snprintf(up, sizeof(up), "%s", parent);
        slash = strrchr(up, '/');
        if (slash == NULL)
                return err_set(err, LG_EK_START, EINVAL, "cgroup %s", parent);
        *slash = '\0';
        /* Ancestors above our own cgroup: best effort (they are somebody else's). */
        for (char *p = up + strlen(CGROUP_ROOT); (p = strchr(p + 1, '/')) != NULL;) {
                *p = '\0';
                (void)put(up, "cgroup.subtree_control", V2_CONTROLLERS);
                *p = '/';
        }
        (void)put(CGROUP_ROOT, "cgroup.subtree_control", V2_CONTROLLERS);
        r = put(up, "cgroup.subtree_control", V2_CONTROLLERS);
        if (r == -EBUSY) {
                snprintf(leaf, sizeof(leaf), "%s/luminaguard-self", up);
                if ((mkdir(leaf, 0755) == 0 || errno == EEXIST) &&
                    put(leaf, "cgroup.procs", "0") == 0)
                        r = put(up, "cgroup.subtree_control", V2_CONTROLLERS);
        }
        if (r == 0)
                r = put(parent, "cgroup.subtree_control", V2_CONTROLLERS);
        if (r < 0)
                return err_set(err, LG_EK_START, -r,
                               "enable the memory, cpu and pids controllers below %s (cgroup v2 "
                               "allows that only in a cgroup without other processes: run "
                               "luminaguard in a cgroup delegated to it, e.g. a systemd service "
                               "with Delegate=yes)",
                               up);
        return 0;
}

static int remove_dir(const char *dir)
{
        struct timespec ts = {0, 10 * 1000 * 1000};

        for (int i = 0; i < 100; i++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        return -errno;
                nanosleep(&ts, NULL); /* the last task is still being torn down */
        }
        return -EBUSY;
}

int cgroup_create(const char *id, const struct cgroup_limits *l, struct cgroup *cg,
                  struct lg_err **err)
{
        char parents[CGROUP_MAX_DIRS][PATH_MAX], v[64];
        int r = cgroup_paths(id, cg, parents);

        if (r < 0)
                return err_set(err, LG_EK_START, -r, "find the cgroup for sandbox %s", id);
        for (unsigned i = 0; i < cg->ndirs; i++) {
                r = fs_mkdir_p(parents[i], 0755);
                if (r < 0) {
                        err_set(err, LG_EK_START, -r, "create cgroup %s%s", parents[i],
                                cg->v2 ? "" : " (is that cgroup v1 controller mounted?)");
                        goto fail;
                }
                if (cg->v2 && v2_enable(parents[i], err) < 0) {
                        r = err_code(*err);
                        goto fail;
                }
                if (mkdir(cg->dirs[i], 0755) < 0) {
                        r = err_set(err, LG_EK_START, errno, "create cgroup %s", cg->dirs[i]);
                        cg->dirs[i][0] = '\0'; /* not ours to remove */
                        goto fail;
                }
        }
        for (unsigned i = 0; i < cg->ndirs; i++) {
                const char *ctrl = cg->v2 ? NULL : v1_controllers[i];
                const char *what = "";

                r = 0;
                if (ctrl == NULL || strcmp(ctrl, "memory") == 0) {
                        snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
                        what = cg->v2 ? "memory.max" : "memory.limit_in_bytes";
                        r = put(cg->dirs[i], what, v);
                        /* No way around the limit through swap (absent without swap accounting). */
                        if (r == 0) {
                                int s = cg->v2 ? put(cg->dirs[i], "memory.swap.max", "0")
                                               : put(cg->dirs[i], "memory.memsw.limit_in_bytes", v);

                                if (s < 0 && s != -ENOENT)
                                        r = s, what = cg->v2 ? "memory.swap.max"
                                                             : "memory.memsw.limit_in_bytes";
                        }
                }
                if (r == 0 && (ctrl == NULL || strcmp(ctrl, "cpu") == 0)) {
                        if (cg->v2) {
                                snprintf(v, sizeof(v), "%u 100000", l->cpu_millis * 100);
                                what = "cpu.max";
                                r = put(cg->dirs[i], what, v);
                        } else {
                                snprintf(v, sizeof(v), "%u", l->cpu_millis * 100);
                                what = "cpu.cfs_quota_us"; /* of the default 100 ms period */
                                r = put(cg->dirs[i], what, v);
                        }
                }
                if (r == 0 && (ctrl == NULL || strcmp(ctrl, "pids") == 0)) {
                        snprintf(v, sizeof(v), "%u", l->pids);
                        what = "pids.max";
                        r = put(cg->dirs[i], what, v);
                }
                if (r < 0) {
                        err_set(err, LG_EK_START, -r, "set %s of cgroup %s", what, cg->dirs[i]);
                        goto fail;
                }
        }
        return 0;
fail:
        for (unsigned i = 0; i < cg->ndirs; i++) {
                if (cg->dirs[i][0] != '\0')
                        (void)remove_dir(cg->dirs[i]);
        }
        cg->ndirs = 0;
        return r;
}

int cgroup_destroy(struct cgroup *cg, char *left, size_t leftsz)
{
        int ret = 0;

        for (unsigned i = 0; i < cg->ndirs; i++) {
                int r = remove_dir(cg->dirs[i]);

                if (r < 0 && ret == 0) {
                        ret = r;
                        snprintf(left, leftsz, "%s", cg->dirs[i]);
                }
        }
        if (ret == 0)
                cg->ndirs = 0;
        return ret;
}

int cgroup_remove_id(const char *id)
{
        char parents[CGROUP_MAX_DIRS][PATH_MAX];
        struct cgroup cg;
        int r = cgroup_paths(id, &cg, parents), ret = 0;

        for (unsigned i = 0; r == 0 && i < cg.ndirs; i++) {
                /* Once, without waiting: a cgroup still in use is not garbage. */
                if (rmdir(cg.dirs[i]) < 0 && errno != ENOENT && ret == 0)
                        ret = -errno;
        }
        return r < 0 ? r : ret;
}

int cgroup_probe(char *what, size_t whatsz)
{
        char parent[PATH_MAX];
        int r;

        if (is_v2()) {
                r = parent_dir(NULL, parent, sizeof(parent));
                snprintf(what, whatsz, "v2, sandboxes under %s", r == 0 ? parent : "?");
                return r;
        }
        for (unsigned i = 0; i < CGROUP_MAX_DIRS; i++) {
                char dir[PATH_MAX];

                snprintf(dir, sizeof(dir), CGROUP_ROOT "/%s", v1_controllers[i]);
                if (access(dir, W_OK) < 0) {
                        r = -errno;
                        snprintf(what, whatsz, "v1, but %s is not writable or not mounted", dir);
                        return r;
                }
        }
        r = parent_dir("memory", parent, sizeof(parent));
        snprintf(what, whatsz, "v1 (memory, cpu, pids), sandboxes under %s", r == 0 ? parent : "?");
        return r;
}

int cgroup_gc(int grace_sec)
{
        char parents[CGROUP_MAX_DIRS][PATH_MAX];
        struct cgroup cg;
        int n = 0;

        if (cgroup_paths("sb-0", &cg, parents) < 0)
                return 0;
        for (unsigned i = 0; i < cg.ndirs; i++) {
                _cleanup_dir_ DIR *d = opendir(parents[i]);
                struct dirent *de;

                while (d != NULL && (de = readdir(d)) != NULL) {
                        char dir[PATH_MAX + 300];
                        struct stat st;

                        if (strncmp(de->d_name, "sb-", 3) != 0)
                                continue;
                        snprintf(dir, sizeof(dir), "%s/%s", parents[i], de->d_name);
                        /* Young: perhaps a sandbox between mkdir and its VMM joining. */
                        if (stat(dir, &st) < 0 || time(NULL) - st.st_mtime < grace_sec)
                                continue;
                        n += rmdir(dir) == 0; /* a cgroup in use refuses (EBUSY) */
                }
        }
        return n;
}
