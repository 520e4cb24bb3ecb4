/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The channel to the host: finding the virtio-serial port, non-blocking
 * reads into the frame reassembler, and the outbound frame queue.
 */
#include "agent/agent.h"
#include "common/cleanup.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/monotime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME    "lg.agent"
#define PORTS_DIR    "/sys/class/virtio-ports"
#define FIND_WAIT_MS 5000
#define FIND_STEP_MS 50
#define READ_CHUNK   (64u << 10)
#define OUT_HARD_MAX (64u << 20) /* never reached: flow control stops producers at 4 MiB */

/* Read a short sysfs attribute, newline stripped. */
static int read_attr(const char *path, char *out, size_t outsz)
{
        _cleanup_fd_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t got;
        int r;

        if (fd < 0)
                return -errno;
        r = fd_read_full(fd, out, outsz - 1, &got);
        if (r < 0)
                return r;
        out[got] = '\0';
        out[strcspn(out, "\n")] = '\0';
        return 0;
}

/*
 * devtmpfs creates /dev/vportNpM asynchronously and may be missing in a
 * minimal initramfs; the sysfs "dev" attribute (major:minor) is enough to
 * make the node ourselves.
 */
static int open_port(const char *dname)
{
        char path[300], attr[300], dev[32];
        unsigned maj, min;
        int fd;

        snprintf(path, sizeof(path), "/dev/%s", dname);
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0 || errno != ENOENT)
                return fd >= 0 ? fd : -errno;
        snprintf(attr, sizeof(attr), PORTS_DIR "/%s/dev", dname);
        if (read_attr(attr, dev, sizeof(dev)) < 0 || sscanf(dev, "%u:%u", &maj, &min) != 2)
                return -ENOENT;
        if (mknod(path, S_IFCHR | 0600, makedev(maj, min)) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        return fd >= 0 ? fd : -errno;
}

static int find_once(int *fd)
{
        _cleanup_dir_ DIR *d = opendir(PORTS_DIR);
        struct dirent *de;
        int last = -ENOENT;

        if (d == NULL)
                return -errno;
        while ((de = readdir(d)) != NULL) {
                char attr[300], name[64];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(attr, sizeof(attr), PORTS_DIR "/%s/name", de->d_name);
                if (read_attr(attr, name, sizeof(name)) < 0 || strcmp(name, PORT_NAME) != 0)
                        continue;
                last = open_port(de->d_name);
                if (last >= 0) {
                        *fd = last;
                        return 0;
                }
        }
        return last;
}

int chan_find_virtio(int *fd)
{
        uint64_t deadline = mono_ms() + FIND_WAIT_MS;
        struct timespec step = {0, FIND_STEP_MS * 1000000L};
        int r;

        /* Startup only: the port and its node can appear a little after us. */
        for (;;) {
                r = find_once(fd);
                if (r == 0 || r == -EBUSY || mono_ms() >= deadline)
                        return r;
                nanosleep(&step, NULL);
        }
}

int chan_init(struct chan *c, int fd, int exit_on_eof)
{
        int r;

        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->exit_on_eof = exit_on_eof;
        c->out.limit = OUT_HARD_MAX;
        r = fd_set_nonblock(fd, 1);
        if (r < 0)
                return r;
        return proto_rx_init(&c->rx);
}

int chan_flush(struct chan *c)
{
        while (buf_size(&c->out) > 0) {
                ssize_t w = write(c->fd, buf_head(&c->out), buf_size(&c->out));

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return -EAGAIN;
                        return errno == ECONNRESET ? -EPIPE : -errno;
                }
                buf_consume(&c->out, (size_t)w);
        }
        return 0;
}

ssize_t chan_read(struct chan *c)
{
        uint8_t tmp[READ_CHUNK];
        size_t room = proto_rx_room(&c->rx);
        ssize_t n;
        int r;

        if (room > sizeof(tmp))
                room = sizeof(tmp);
        if (room == 0)
                return -EAGAIN;
        do {
                n = read(c->fd, tmp, room);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == ECONNRESET ? 0 : -errno;
        if (n > 0) {
                r = proto_rx_feed(&c->rx, tmp, (size_t)n);
                if (r < 0)
                        return r; /* cannot happen: we read at most `room` */
        }
        return n;
}

void chan_drain(struct chan *c, int timeout_ms)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

        while (buf_size(&c->out) > 0 && c->connected) {
                struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
                int r = chan_flush(c);

                if (r == 0 || (r < 0 && r != -EAGAIN))
                        return;
                if (poll(&pfd, 1, mono_left_ms(deadline)) <= 0)
                        return;
        }
}

void agent_check(int r, const char *what)
{
        if (r < 0)
                log_error("cannot queue %s: %s", what, strerror(-r));
}

void agent_error(struct agent *a, uint32_t id, int errnum, const char *fmt, ...)
{
        char msg[PROTO_MAX_STR + 1];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (errnum <= 0 || errnum > 4095)
                errnum = EIO;
        log_debug("request %u: error %d: %s", id, errnum, msg);
        agent_check(proto_encode_error(&a->ch.out, id, errnum, msg), "ERROR");
}

void agent_ok_u64(struct agent *a, uint32_t id, uint16_t tag, uint64_t v)
{
        agent_check(proto_encode_u64_msg(&a->ch.out, PROTO_OK, id, tag, v), "OK");
}

int agent_id_busy(const struct agent *a, uint32_t id)
{
        return exec_id_busy(a, id) || fileops_id_busy(a, id);
}
