/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/template_ram.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)

/* Copy [off, end) of in to out at the same offsets: sendfile copies once, in the kernel. */
static int copy_range(int in, int out, off_t off, off_t end)
{
        if (lseek(out, off, SEEK_SET) < 0)
                return -errno;
        while (off < end) {
                size_t want = (size_t)(end - off) < (64u << 20) ? (size_t)(end - off) : 64u << 20;
                ssize_t n = sendfile(out, in, &off, want);

                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n == 0)
                        return -EIO; /* the file shrank under us */
        }
        return 0;
}

int template_ram_memfd(int ram_fd)
{
        _cleanup_fd_ int mfd = memfd_create("lg-template-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        struct stat st;
        off_t data = 0, hole;
        int r, fd;

        if (mfd < 0 || fstat(ram_fd, &st) < 0 || ftruncate(mfd, st.st_size) < 0)
                return -errno;
        for (;;) {
                data = lseek(ram_fd, data, SEEK_DATA);
                if (data < 0 && errno == ENXIO)
                        break; /* no more data */
                if (data < 0)
                        return -errno;
                hole = lseek(ram_fd, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                r = copy_range(ram_fd, mfd, data, hole);
                if (r < 0)
                        return r;
                data = hole;
        }
        if (fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        fd = mfd;
        mfd = -1;
        return fd;
}

static int all_zero(const char *p, size_t n)
{
        static const char zero[4096];

        return memcmp(p, zero, n) == 0;
}

/* Punch [from, to) out of fd; a filesystem without hole punching keeps its zeroes. */
static int punch(int fd, off_t from, off_t to)
{
        if (to <= from)
                return 0;
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from, to - from) < 0)
                return errno == EOPNOTSUPP ? 0 : -errno;
        return 0;
}

int template_ram_sparsify(int fd, uint64_t *kept)
{
        static __thread char buf[CHUNK];
        off_t off = 0, zeros = 0; /* zeros: start of the current run of zero pages */
        int r;

        *kept = 0;
        for (;;) {
                ssize_t n = pread(fd, buf, CHUNK, off);

                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                for (ssize_t p = 0; p < n; p += 4096) {
                        size_t len = (size_t)(n - p) < 4096 ? (size_t)(n - p) : 4096;

                        if (all_zero(buf + p, len))
                                continue;
                        r = punch(fd, zeros, off + p);
                        if (r < 0)
                                return r;
                        *kept += len;
                        zeros = off + p + (off_t)len;
                }
                off += n;
        }
        return punch(fd, zeros, off);
}

void template_unload(struct template_loaded *l)
{
        int *fds[] = {&l->ram_fd, &l->memfd, &l->state_fd};

        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
                if (*fds[i] >= 0)
                        close(*fds[i]);
                *fds[i] = -1;
        }
}

int template_load(const char *ram, const char *state, struct template_loaded *out)
{
        int r;

        *out = (struct template_loaded){-1, -1, -1};
        out->ram_fd = open(ram, O_RDONLY | O_CLOEXEC);
        if (out->ram_fd >= 0)
                out->state_fd = open(state, O_RDONLY | O_CLOEXEC);
        if (out->ram_fd < 0 || out->state_fd < 0) {
                r = -errno;
                template_unload(out);
                return r;
        }
        r = template_ram_memfd(out->ram_fd);
        if (r < 0) {
                template_unload(out);
                return r;
        }
        out->memfd = r;
        return 0;
}

int template_loaded_dup(const struct template_loaded *in, struct template_loaded *out)
{
        int r;

        *out = (struct template_loaded){-1, -1, -1};
        out->ram_fd = fcntl(in->ram_fd, F_DUPFD_CLOEXEC, 3);
        out->memfd = fcntl(in->memfd, F_DUPFD_CLOEXEC, 3);
        out->state_fd = fcntl(in->state_fd, F_DUPFD_CLOEXEC, 3);
        if (out->ram_fd < 0 || out->memfd < 0 || out->state_fd < 0) {
                r = -errno;
                template_unload(out);
                return r;
        }
        return 0;
}
