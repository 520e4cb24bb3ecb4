/* SPDX-License-Identifier: Apache-2.0 */
/*
 * READ_FILE, WRITE_FILE, STAT, LIST. The guest is disposable, so paths are
 * not confined; they only have to be absolute. READ_FILE and LIST are
 * streams: a file or directory of any size goes out one chunk per loop round,
 * and only while the outbound queue has room (agent.h, flow control).
 */
#include "agent/agent.h"
#include "common/cleanup.h"
#include "common/fdio.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRIES_BATCH (60u << 10) /* payload of one ENTRIES frame */

enum stream_kind {
        STREAM_READ,
        STREAM_LIST,
};

struct stream_job {
        uint32_t id;
        enum stream_kind kind;
        int fd;        /* READ */
        DIR *dir;      /* LIST */
        uint64_t left; /* READ: bytes still wanted; UINT64_MAX = to EOF */
        uint64_t done; /* READ: bytes sent; LIST: entries sent */
        char path[];   /* for error messages */
};

static int check_path(const char *path)
{
        if (path[0] != '/')
                return -EINVAL; /* also rejects "" */
        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* Decode a path request and check its path; on failure the ERROR is sent. */
static int path_req(struct agent *a, uint32_t id, const char *what, const uint8_t *p, size_t n,
                    struct proto_path_req *req)
{
        int r = proto_decode_path_req(p, n, req);

        if (r < 0) {
                agent_error(a, id, -r, "malformed %s: %s", what, strerror(-r));
                return r;
        }
        r = check_path(req->path);
        if (r < 0)
                agent_error(a, id, -r, "%s: path must be absolute and shorter than %d bytes", what,
                            PATH_MAX);
        return r;
}

static unsigned file_type(mode_t m)
{
        if (S_ISREG(m))
                return PROTO_FT_REG;
        if (S_ISDIR(m))
                return PROTO_FT_DIR;
        if (S_ISLNK(m))
                return PROTO_FT_LNK;
        return PROTO_FT_OTHER;
}

/* ---- Streams ------------------------------------------------------------- */

static struct stream_job **stream_slot(struct agent *a, uint32_t id)
{
        for (size_t i = 0; i < AGENT_MAX_STREAMS; i++) {
                if (a->streams[i] != NULL && a->streams[i]->id == id)
                        return &a->streams[i];
        }
        return NULL;
}

int fileops_id_busy(const struct agent *a, uint32_t id)
{
        return stream_slot((struct agent *)a, id) != NULL;
}

static struct stream_job *stream_new(struct agent *a, uint32_t id, enum stream_kind kind,
                                     const char *path)
{
        size_t len = strlen(path);

        for (size_t i = 0; i < AGENT_MAX_STREAMS; i++) {
                struct stream_job *s;

                if (a->streams[i] != NULL)
                        continue;
                s = calloc(1, sizeof(*s) + len + 1);
                if (s == NULL) {
                        agent_error(a, id, ENOMEM, "out of memory");
                        return NULL;
                }
                s->id = id;
                s->kind = kind;
                s->fd = -1;
                memcpy(s->path, path, len + 1);
                a->streams[i] = s;
                return s;
        }
        agent_error(a, id, EAGAIN, "too many transfers (limit %d)", AGENT_MAX_STREAMS);
        return NULL;
}

static void stream_free(struct stream_job **slot)
{
        struct stream_job *s = *slot;

        if (s->fd >= 0)
                close(s->fd);
        if (s->dir != NULL)
                closedir(s->dir);
        free(s);
        *slot = NULL;
}

void fileops_read(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_path_req req;
        struct stream_job *s;
        struct stat st;
        int fd;

        if (path_req(a, id, "READ_FILE", p, n, &req) < 0)
                return;
        /* O_NONBLOCK: a FIFO must not block the agent in open() or read(). */
        fd = open(req.path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) {
                agent_error(a, id, errno, "open %s: %s", req.path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return;
        }
        if (S_ISDIR(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
                close(fd);
                agent_error(a, id, S_ISDIR(st.st_mode) ? EISDIR : EINVAL,
                            "read %s: not a regular file", req.path);
                return;
        }
        if (req.offset > 0 &&
            lseek(fd, req.offset > INT64_MAX ? INT64_MAX : (off_t)req.offset, SEEK_SET) < 0) {
                agent_error(a, id, errno, "seek %s: %s", req.path, strerror(errno));
                close(fd);
                return;
        }
        s = stream_new(a, id, STREAM_READ, req.path);
        if (s == NULL) {
                close(fd);
                return;
        }
        s->fd = fd;
        s->left = req.length ? req.length : UINT64_MAX;
}

/* One chunk of a READ_FILE; 1 = finished. */
static int read_step(struct agent *a, struct stream_job *s)
{
        uint8_t tmp[PROTO_MAX_CHUNK];
        size_t want = s->left < sizeof(tmp) ? (size_t)s->left : sizeof(tmp);
        ssize_t got;

        do {
                got = read(s->fd, tmp, want);
        } while (got < 0 && errno == EINTR);
        if (got < 0) {
                agent_error(a, s->id, errno, "read %s: %s", s->path, strerror(errno));
                return 1;
        }
        if (got > 0) {
                agent_check(proto_encode_data(&a->ch.out, s->id, 0, tmp, (size_t)got), "DATA");
                s->done += (uint64_t)got;
                if (s->left != UINT64_MAX)
                        s->left -= (uint64_t)got;
        }
        if (got == 0 || s->left == 0) {
                agent_ok_u64(a, s->id, PT_SIZE, s->done);
                return 1;
        }
        return 0;
}

void fileops_list(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_path_req req;
        struct stream_job *s;
        DIR *d;

        if (path_req(a, id, "LIST", p, n, &req) < 0)
                return;
        d = opendir(req.path);
        if (d == NULL) {
                agent_error(a, id, errno, "opendir %s: %s", req.path, strerror(errno));
                return;
        }
        s = stream_new(a, id, STREAM_LIST, req.path);
        if (s == NULL) {
                closedir(d);
                return;
        }
        s->dir = d;
}

/* One ENTRIES frame of a LIST; 1 = finished. */
static int list_step(struct agent *a, struct stream_job *s)
{
        struct proto_writer w;
        struct dirent *de;
        int started = 0, r;

        for (;;) {
                struct proto_stat e = {0};
                struct stat st;

                errno = 0;
                de = readdir(s->dir);
                if (de == NULL)
                        break;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd(s->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* removed since readdir: it is not there any more */
                snprintf(e.name, sizeof(e.name), "%s", de->d_name);
                e.file_type = file_type(st.st_mode);
                e.mode = st.st_mode & 07777;
                e.size = (uint64_t)st.st_size;
                if (!started) {
                        proto_begin(&w, &a->ch.out, PROTO_ENTRIES, 0, s->id);
                        started = 1;
                }
                proto_put_entry(&w, &e);
                s->done++;
                if (proto_payload_len(&w) + PROTO_ENTRY_MAX > ENTRIES_BATCH) {
                        agent_check(proto_end(&w), "ENTRIES");
                        return 0;
                }
        }
        r = errno;
        if (started)
                agent_check(proto_end(&w), "ENTRIES");
        if (r != 0)
                agent_error(a, s->id, r, "readdir %s: %s", s->path, strerror(r));
        else
                agent_ok_u64(a, s->id, PT_COUNT, s->done);
        return 1;
}

int fileops_step(struct agent *a)
{
        int more = 0;

        for (size_t i = 0; i < AGENT_MAX_STREAMS; i++) {
                struct stream_job *s = a->streams[i];
                int fin;

                if (s == NULL)
                        continue;
                if (chan_out_full(&a->ch))
                        return 0; /* resumes when the channel drains */
                fin = s->kind == STREAM_READ ? read_step(a, s) : list_step(a, s);
                if (fin)
                        stream_free(&a->streams[i]);
                else
                        more = 1;
        }
        return more;
}

int fileops_cancel(struct agent *a, uint32_t id)
{
        struct stream_job **slot = stream_slot(a, id);

        if (slot == NULL)
                return 0;
        agent_error(a, id, ECANCELED, "%s %s: cancelled",
                    (*slot)->kind == STREAM_READ ? "read" : "list", (*slot)->path);
        stream_free(slot);
        return 1;
}

void fileops_drop_all(struct agent *a)
{
        for (size_t i = 0; i < AGENT_MAX_STREAMS; i++) {
                if (a->streams[i] != NULL)
                        stream_free(&a->streams[i]);
        }
}

/* ---- One-shot requests --------------------------------------------------- */

void fileops_stat(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_path_req req;
        struct proto_stat ps = {0};
        struct stat st;
        int64_t mt;

        if (path_req(a, id, "STAT", p, n, &req) < 0)
                return;
        if (lstat(req.path, &st) < 0) {
                agent_error(a, id, errno, "stat %s: %s", req.path, strerror(errno));
                return;
        }
        ps.file_type = file_type(st.st_mode);
        ps.mode = st.st_mode & 07777;
        ps.size = (uint64_t)st.st_size;
        mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        ps.mtime_ns = mt > 0 ? (uint64_t)mt : 0; /* before 1970 reads as the epoch */
        agent_check(proto_encode_stat(&a->ch.out, id, &ps), "OK");
}

/*
 * Atomic replace: a temp file next to the target, written, chmod'ed to the
 * exact mode (no umask), fsync'ed, renamed over the target, directory
 * fsync'ed. A reader sees the old or the new content, never a mix. A symlink
 * at path is replaced, not followed.
 */
static int write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
        char dir[PATH_MAX], tmp[PATH_MAX];
        const char *slash = strrchr(path, '/'), *base = slash + 1;
        _cleanup_fd_ int fd = -1, dfd = -1;
        size_t dlen = (size_t)(slash - path);
        int r;

        if (*base == '\0')
                return -EISDIR; /* "/" or a trailing slash names a directory */
        if (dlen == 0)
                dlen = 1; /* the root directory itself */
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
        if (snprintf(tmp, sizeof(tmp), "%s/.%s.lg-XXXXXX", dlen == 1 ? "" : dir, base) >=
            (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = fd_write_all(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                fsync(dfd); /* best effort: the rename itself is already visible */
        return 0;
}

void fileops_write(struct agent *a, uint32_t id, const uint8_t *p, size_t n)
{
        struct proto_write_file wf;
        int r = proto_decode_write_file(p, n, &wf);

        if (r < 0) {
                agent_error(a, id, -r, "malformed WRITE_FILE: %s", strerror(-r));
                return;
        }
        r = check_path(wf.path);
        if (r < 0) {
                agent_error(a, id, -r,
                            "WRITE_FILE: path must be absolute and shorter than %d bytes",
                            PATH_MAX);
                return;
        }
        r = write_atomic(wf.path, wf.data, wf.len, wf.mode ? wf.mode : 0644);
        if (r < 0) {
                agent_error(a, id, -r, "write %s: %s", wf.path, strerror(-r));
                return;
        }
        agent_ok_u64(a, id, PT_SIZE, wf.len);
}
