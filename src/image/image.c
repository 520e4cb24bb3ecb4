/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest images: inspect, build atomically, ensure fresh before use.
 *
 * A build runs the recipe's build.sh into images/.<name>.tmp.<pid>, appends
 * recipe_key= to its manifest and swaps the directory in with one rename, so
 * a reader sees the old image or the new one, never half of one. Builders
 * serialise on flock(images/.lock) and re-check freshness once they hold it:
 * of two `luminaguard run` on a fresh machine, the second finds the image the
 * first built.
 */
#include "image/image.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/monotime.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The manifest last: it is written last, so its presence means the rest is there. */
static const char *const image_files[] = {"vmlinux", "initramfs.cpio.gz", "rootfs/sbin/lg-agent",
                                          "cmdline", "manifest"};

int image_disk_id(const char *disk, char *id, size_t idsz)
{
        struct stat st;

        id[0] = '\0';
        if (stat(disk, &st) < 0)
                return -errno;
        snprintf(id, idsz, "%llx:%llx:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec);
        return 0;
}

/* Names become path components: keep them boring. */
static int check_name(const char *name, struct lg_err **err)
{
        size_t n = name != NULL ? strlen(name) : 0;

        if (n == 0 || n > 32 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n ||
            name[0] == '-')
                return err_set(err, LG_EK_USAGE, 0,
                               "bad image name '%s' (lower-case letters, digits, '-', '_')",
                               name != NULL ? name : "");
        return 0;
}

static int path_in(char *out, const char *dir, const char *file)
{
        int n = snprintf(out, PATH_MAX, "%s/%s", dir, file);

        return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Value of `key=` in manifest text, "" when absent. */
static void manifest_get(const char *text, const char *key, char *out, size_t outsz)
{
        size_t klen = strlen(key);

        out[0] = '\0';
        for (const char *l = text; *l != '\0';) {
                size_t len = strcspn(l, "\n");

                if (len > klen && strncmp(l, key, klen) == 0 && l[klen] == '=') {
                        snprintf(out, outsz, "%.*s", (int)(len - klen - 1), l + klen + 1);
                        return;
                }
                l += len + (l[len] == '\n');
        }
}

/* 0 when path opens for reading and is a non-empty regular file; else -errno. */
static int check_readable(const char *path)
{
        _cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        return st.st_size > 0 ? 0 : -ENODATA;
}

int image_inspect(const char *home, const char *name, struct image_info *info, struct lg_err **err)
{
        struct image_paths *p = &info->paths;
        struct image_recipe recipe;
        struct lg_err *rerr = NULL;
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        int r;

        memset(info, 0, sizeof(*info));
        if ((r = check_name(name, err)) < 0)
                return r;
        if (snprintf(p->dir, sizeof(p->dir), "%s/images/%s", home, name) >= (int)sizeof(p->dir) ||
            path_in(p->kernel, p->dir, "vmlinux") < 0 ||
            path_in(p->initrd, p->dir, "initramfs.cpio.gz") < 0 ||
            path_in(p->rootfs, p->dir, "rootfs") < 0 || path_in(p->disk, p->dir, "rootfs.ext4") < 0)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "image directory under %s", home);
        /* Optional: only images with a disk root have one. */
        if (check_readable(p->disk) < 0)
                p->disk[0] = '\0';
        else
                image_disk_id(p->disk, p->disk_id, sizeof(p->disk_id));

        if (image_recipe_find(name, &recipe, &rerr) < 0 ||
            image_recipe_key(&recipe, info->recipe_key, &rerr) < 0)
                info->recipe_key[0] = '\0';
        err_free(&rerr);

        for (size_t i = 0; i < sizeof(image_files) / sizeof(image_files[0]); i++) {
                if (path_in(path, p->dir, image_files[i]) < 0)
                        return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "image file path");
                r = check_readable(path);
                if (r < 0) {
                        snprintf(info->problem, sizeof(info->problem), "%s: %s", path,
                                 r == -ENODATA ? "empty file" : strerror(-r));
                        return 0;
                }
        }
        if (path_in(path, p->dir, "manifest") < 0 ||
            fs_read_file(path, sizeof(info->manifest) - 1, &text, NULL) < 0) {
                snprintf(info->problem, sizeof(info->problem), "%s: unreadable or too large", path);
                return 0;
        }
        snprintf(info->manifest, sizeof(info->manifest), "%s", text);
        manifest_get(text, "recipe_key", p->key, sizeof(p->key));
        if (strlen(p->key) != 64) {
                snprintf(info->problem, sizeof(info->problem), "%s: no recipe_key (corrupt)", path);
                return 0;
        }
        free(steal_pointer(&text));
        if (path_in(path, p->dir, "cmdline") < 0 || fs_read_file(path, 1023, &text, NULL) < 0) {
                snprintf(info->problem, sizeof(info->problem), "%s: unreadable or too large", path);
                return 0;
        }
        text[strcspn(text, "\n")] = '\0';
        snprintf(p->cmdline, sizeof(p->cmdline), "%s", text);
        /* An image that boots from a disk is not there without it. */
        if (strstr(p->cmdline, "lg.root=") != NULL && p->disk[0] == '\0') {
                snprintf(info->problem, sizeof(info->problem), "%s/rootfs.ext4: missing", p->dir);
                return 0;
        }
        info->present = 1;
        /* Without a recipe (a bare install) the image cannot be judged stale. */
        info->stale = info->recipe_key[0] != '\0' && strcmp(info->recipe_key, p->key) != 0;
        return 0;
}

/* Take images/.lock exclusively; waits for a concurrent builder. */
static int lock_images(const char *images, int progress, int *lock_fd, struct lg_err **err)
{
        char path[PATH_MAX];
        int fd;

        if (path_in(path, images, ".lock") < 0)
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "lock path");
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return err_set(err, LG_EK_IMAGE, errno, "open %s", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (progress)
                        fprintf(stderr, "image: waiting for another build to finish\n");
                while (flock(fd, LOCK_EX) < 0) {
                        if (errno != EINTR) {
                                int e = errno;

                                close(fd);
                                return err_set(err, LG_EK_IMAGE, e, "lock %s", path);
                        }
                }
        }
        *lock_fd = fd;
        return 0;
}

/* Remove leftovers of builds that died (we hold the lock, so none is running). */
static void remove_leftovers(const char *images, const char *name)
{
        _cleanup_dir_ DIR *d = opendir(images);
        char prefix[64], path[PATH_MAX];
        struct dirent *de;

        snprintf(prefix, sizeof(prefix), ".%s.tmp.", name);
        while (d != NULL && (de = readdir(d)) != NULL) {
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
                    path_in(path, images, de->d_name) == 0)
                        (void)!fs_remove_tree(path);
        }
}

struct progress {
        int on, tty;
        const char *name;
        char last_error[512]; /* last "error:" line of the builder */
};

static void progress_line(struct progress *pg, const char *line)
{
        const char *e = strstr(line, "error: ");

        if (e != NULL)
                snprintf(pg->last_error, sizeof(pg->last_error), "%s", e + 7);
        if (!pg->on || strncmp(line, "step ", 5) != 0)
                return;
        if (pg->tty) { /* one line, rewritten in place: "step 2/5 fetching kernel…" */
                const char *colon = strchr(line, ':');
                int n = colon != NULL ? (int)(colon - line) : (int)strlen(line);

                fprintf(stderr, "\r\033[Kimage %s: %.*s%s\u2026", pg->name, n, line,
                        colon != NULL ? colon + 1 : "");
        } else
                fprintf(stderr, "image %s: %s\n", pg->name, line);
}

/*
 * Run build.sh OUTDIR with the recipe in its environment; everything it
 * prints goes to logpath, "step" lines also to the progress display.
 */
static int run_builder(const struct image_recipe *rc, const char *home, const char *outdir,
                       const char *logpath, struct progress *pg, struct lg_err **err)
{
        _cleanup_file_ FILE *log = fopen(logpath, "we");
        _cleanup_file_ FILE *in = NULL;
        _cleanup_free_ char *line = NULL;
        char cache[PATH_MAX];
        size_t cap = 0;
        int pfd[2], status;
        pid_t pid;

        if (log == NULL)
                return err_set(err, LG_EK_IMAGE, errno, "create build log %s", logpath);
        int mr = path_in(cache, home, "cache");

        if (mr == 0)
                mr = fs_mkdir_p(cache, 0700);
        if (mr < 0)
                return err_set(err, LG_EK_IMAGE, -mr, "create cache directory under %s", home);
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "pipe");
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return err_set(err, LG_EK_INTERNAL, errno, "fork");
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY);
                sigset_t none;

                /*
                 * The caller may have blocked SIGINT/SIGTERM (to read them from
                 * a signalfd) and ignored SIGPIPE: the build must get neither,
                 * so that Ctrl-C on the terminal stops it and pipes behave. It
                 * dies with us, too.
                 */
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
                    dup2(pfd[1], 2) < 0)
                        _exit(127);
                setenv("LG_AGENT", rc->agent, 1);
                setenv("LG_CACHE", cache, 1);
                /* bash explicitly: build.sh may have lost its x bit on the way here. */
                execlp("bash", "bash", rc->build_sh, outdir, (char *)NULL);
                dprintf(2, "build.sh: error: cannot run bash: %s\n", strerror(errno));
                _exit(127);
        }
        close(pfd[1]);
        in = fdopen(pfd[0], "re");
        if (in == NULL) {
                close(pfd[0]);
                /* fall through to reap the child; its output is lost */
        }
        while (in != NULL && getline(&line, &cap, in) > 0) {
                fputs(line, log);
                line[strcspn(line, "\n")] = '\0';
                progress_line(pg, line);
        }
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "wait for build.sh");
        }
        if (pg->on && pg->tty)
                fputc('\n', stderr);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (pg->last_error[0] != '\0')
                return err_set(err, LG_EK_IMAGE, 0, "%s (build log: %s)", pg->last_error, logpath);
        return err_set(err, LG_EK_IMAGE, 0, "%s %s %d (build log: %s)", rc->build_sh,
                       WIFEXITED(status) ? "exited with status" : "killed by signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), logpath);
}

/* Check the builder's output and seal it with the recipe key. */
static int seal_output(const char *tmp, const char *key, uint64_t build_ms, struct lg_err **err)
{
        char path[PATH_MAX];
        _cleanup_file_ FILE *m = NULL;

        for (size_t i = 0; i < sizeof(image_files) / sizeof(image_files[0]); i++) {
                int r;

                if (path_in(path, tmp, image_files[i]) < 0)
                        return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "image path");
                if ((r = check_readable(path)) < 0)
                        return err_set(err, LG_EK_IMAGE, -r, "build.sh did not produce %s",
                                       image_files[i]);
        }
        m = fopen(path, "ae"); /* path is the manifest, last in image_files */
        if (m == NULL ||
            fprintf(m, "build_ms=%llu\nrecipe_key=%s\n", (unsigned long long)build_ms, key) < 0 ||
            fflush(m) != 0 || fsync(fileno(m)) < 0)
                return err_set(err, LG_EK_IMAGE, errno, "write %s", path);
        return 0;
}

/* Put tmp in place of dir: one atomic exchange when there is an old image. */
static int swap_in(const char *tmp, const char *dir, struct lg_err **err)
{
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
                (void)!fs_remove_tree(tmp); /* now the old image */
                return 0;
        }
        if (errno == ENOENT && rename(tmp, dir) == 0)
                return 0;
        if (errno == EINVAL || errno == ENOSYS) { /* filesystem without exchange */
                if (fs_remove_tree(dir) == 0 && rename(tmp, dir) == 0)
                        return 0;
        }
        return err_set(err, LG_EK_IMAGE, errno, "move %s to %s", tmp, dir);
}

int image_build(const char *home, const char *name, int force, int progress, struct lg_err **err)
{
        struct progress pg = {.on = progress, .tty = progress && isatty(2), .name = name};
        struct image_recipe recipe;
        struct image_info info;
        char images[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX], logpath[PATH_MAX], key[65];
        struct lg_err *ierr = NULL;
        _cleanup_fd_ int lock_fd = -1;
        uint64_t t0 = mono_ms();
        int r;

        if ((r = check_name(name, err)) < 0)
                return r;
        if ((r = image_recipe_find(name, &recipe, err)) < 0 ||
            (r = image_recipe_key(&recipe, key, err)) < 0)
                return err_wrap(err, "image %s", name);
        if (path_in(images, home, "images") < 0 || path_in(dir, images, name) < 0 ||
            snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", images, name, (int)getpid()) >=
                (int)sizeof(tmp) ||
            snprintf(logpath, sizeof(logpath), "%s/.%s.build.log", images, name) >=
                (int)sizeof(logpath))
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "image paths under %s", home);
        if ((r = fs_mkdir_p(images, 0700)) < 0)
                return err_set(err, LG_EK_IMAGE, -r, "create %s", images);
        if ((r = lock_images(images, progress, &lock_fd, err)) < 0)
                return r;

        /* Someone may have built it while we waited for the lock. */
        if (!force && image_inspect(home, name, &info, &ierr) == 0 && info.present &&
            strcmp(info.paths.key, key) == 0)
                return 0;
        err_free(&ierr);

        remove_leftovers(images, name);
        if (mkdir(tmp, 0755) < 0)
                return err_set(err, LG_EK_IMAGE, errno, "create %s", tmp);
        r = run_builder(&recipe, home, tmp, logpath, &pg, err);
        if (r == 0)
                r = seal_output(tmp, key, mono_ms() - t0, err);
        if (r == 0)
                r = swap_in(tmp, dir, err);
        if (r < 0) {
                (void)!fs_remove_tree(tmp);
                return err_wrap(err, "build image %s", name);
        }
        return 0;
}

int image_ensure(const char *home, const char *name, int build_if_needed, int progress,
                 struct image_paths *out, struct lg_err **err)
{
        struct image_info info;
        int r;

        if ((r = image_inspect(home, name, &info, err)) < 0)
                return r;
        if (info.present && !info.stale)
                goto done;
        if (!build_if_needed) {
                if (info.present)
                        return err_set(err, LG_EK_IMAGE, 0,
                                       "image %s at %s is stale (its recipe changed); run "
                                       "'luminaguard image build'",
                                       name, info.paths.dir);
                return err_set(err, LG_EK_IMAGE, 0,
                               "image %s is missing or unreadable (%s); run 'luminaguard image "
                               "build'",
                               name, info.problem);
        }
        if ((r = image_build(home, name, 0, progress, err)) < 0)
                return r;
        if ((r = image_inspect(home, name, &info, err)) < 0)
                return r;
        if (!info.present)
                return err_set(err, LG_EK_IMAGE, 0,
                               "image %s unreadable right after its build (%s); run 'luminaguard "
                               "image build'",
                               name, info.problem);
done:
        *out = info.paths;
        return 0;
}
