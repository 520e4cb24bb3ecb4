/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fs.h"
#include "common/cleanup.h"
#include "common/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, mode_t mode)
{
        char tmp[PATH_MAX];
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(tmp))
                return -ENAMETOOLONG;
        memcpy(tmp, path, n + 1);
        for (char *p = tmp + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Remove the contents of directory fd (on device dev), then nothing else. */
static int remove_contents(int dfd, dev_t dev)
{
        _cleanup_dir_ DIR *d = NULL;
        struct dirent *de;
        int ret = 0, fd;

        fd = dup(dfd);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (d == NULL) {
                close(fd);
                return -errno;
        }
        while ((de = readdir(d)) != NULL) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && ret == 0)
                                ret = -errno;
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_fd_ int sub = -1;

                        if (st.st_dev != dev) {
                                ret = ret ? ret : -EBUSY;
                                continue;
                        }
                        sub = openat(dfd, de->d_name,
                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                ret = ret ? ret : -errno;
                                continue;
                        }
                        int r = remove_contents(sub, dev);
                        if (r < 0 && ret == 0)
                                ret = r;
                        if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT &&
                            ret == 0)
                                ret = -errno;
                } else if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT && ret == 0) {
                        ret = -errno;
                }
        }
        return ret;
}

int fs_remove_tree(const char *path)
{
        _cleanup_fd_ int fd = -1;
        struct stat st;
        int r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = remove_contents(fd, st.st_dev);
        if (r < 0)
                return r;
        if (rmdir(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len)
{
        _cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        size_t got;
        int r;

        if (fd < 0)
                return -errno;
        data = malloc(max + 1);
        if (data == NULL)
                return -ENOMEM;
        r = fd_read_full(fd, data, max + 1, &got);
        if (r < 0)
                return r;
        if (got > max)
                return -EFBIG;
        data[got] = '\0';
        if (len != NULL)
                *len = got;
        *out = steal_pointer(&data);
        return 0;
}

int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        char tmp[PATH_MAX];
        _cleanup_fd_ int fd = -1;
        int r;

        /* The thread id, not the pid: two threads of one process may write at once. */
        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)gettid()) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = fd_write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

int fs_exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}
