/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fdpass.h"
#include "common/fdio.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fdpass_send(int sock, const void *p, size_t n, const int *fds, size_t nfds)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t w;

        if (nfds > FDPASS_MAX || n == 0)
                return -EINVAL;
        if (nfds > 0) {
                struct cmsghdr *cm;

                memset(&ctl, 0, sizeof(ctl));
                msg.msg_control = ctl.buf;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                cm = CMSG_FIRSTHDR(&msg);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        do {
                w = sendmsg(sock, &msg, MSG_NOSIGNAL);
        } while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        /* The descriptors went with the first byte; the rest is plain data. */
        return fd_write_all(sock, (const char *)p + w, n - (size_t)w);
}

int fdpass_recv(int sock, void *p, size_t cap, size_t *got, int *fds, size_t maxfds, size_t *nfds)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = p, .iov_len = cap};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};
        ssize_t r;

        *nfds = 0;
        do {
                r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        *got = (size_t)r;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
                size_t n;
                int in[FDPASS_MAX];

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                if (n > FDPASS_MAX)
                        n = FDPASS_MAX; /* MSG_CTRUNC dropped the rest already */
                memcpy(in, CMSG_DATA(cm), n * sizeof(int));
                for (size_t i = 0; i < n; i++) {
                        if (*nfds < maxfds)
                                fds[(*nfds)++] = in[i];
                        else
                                close(in[i]);
                }
        }
        return 0;
}
