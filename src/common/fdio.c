/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int fd_write_all(int fd, const void *p, size_t n)
{
        const char *c = p;

        while (n > 0) {
                ssize_t w = write(fd, c, n);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += w;
                n -= (size_t)w;
        }
        return 0;
}

int fd_read_full(int fd, void *p, size_t n, size_t *got)
{
        char *c = p;
        size_t have = 0;

        while (have < n) {
                ssize_t r = read(fd, c + have, n - have);

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        *got = have;
                        return -errno;
                }
                if (r == 0)
                        break;
                have += (size_t)r;
        }
        *got = have;
        return 0;
}

int fd_set_nonblock(int fd, int on)
{
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0)
                return -errno;
        fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
        return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int fd_set_cloexec(int fd, int on)
{
        int fl = fcntl(fd, F_GETFD);

        if (fl < 0)
                return -errno;
        fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
        return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}
