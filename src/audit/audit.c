/* SPDX-License-Identifier: Apache-2.0 */
#include "audit/audit.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/buf.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEX_LEN   64
#define HEAD_SIZE 96 /* "seq hash\n", padded: rewritten in place with one pwrite */

static const char zero_hash[HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

int audit_log_path(const char *home, char *out, size_t outsz)
{
        return snprintf(out, outsz, "%s/audit/audit.log", home) < (int)outsz ? 0 : -ENAMETOOLONG;
}

static void sha256_hex(const void *p, size_t n, char out[HEX_LEN + 1])
{
        unsigned char d[32];
        unsigned len = 0;

        if (!EVP_Digest(p, n, d, &len, EVP_sha256(), NULL) || len != 32) {
                memset(out, '?', HEX_LEN); /* cannot happen; makes the chain fail loudly */
                out[HEX_LEN] = '\0';
                return;
        }
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A line that is one of our records: a JSON object with a positive seq and a prev. */
static int is_record(const char *p, size_t n, uint64_t *seq)
{
        json_t *j = json_loadb(p, n, 0, NULL);
        json_int_t s = json_integer_value(json_object_get(j, "seq"));
        int ok = json_is_object(j) && s > 0 && json_is_string(json_object_get(j, "prev"));

        json_decref(j);
        if (ok)
                *seq = (uint64_t)s;
        return ok;
}

/*
 * The tail of the log: the last record's seq and hash, and what follows it
 * that is not a record — a line torn by a crash, or complete lines that are
 * not records (a writer killed between its two writes, or an edit). That
 * garbage is never repaired: its length and hash go into the next
 * audit.torn record. Reads at most 2 * AUDIT_MAX_RECORD from the end.
 */
static int read_tail(int fd, uint64_t *seq, char hash[HEX_LEN + 1], size_t *garbage,
                     char garbage_hash[HEX_LEN + 1], int *ends_in_newline)
{
        struct stat st;
        _cleanup_free_ char *buf = NULL;
        size_t want;
        ssize_t n;
        char *end;

        *seq = 0;
        *garbage = 0;
        *ends_in_newline = 1;
        memcpy(hash, zero_hash, sizeof(zero_hash));
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size == 0)
                return 0;
        want =
            st.st_size < (off_t)(2 * AUDIT_MAX_RECORD) ? (size_t)st.st_size : 2 * AUDIT_MAX_RECORD;
        buf = malloc(want + 1);
        if (buf == NULL)
                return -ENOMEM;
        n = pread(fd, buf, want, st.st_size - (off_t)want);
        if (n != (ssize_t)want)
                return n < 0 ? -errno : -EIO;
        buf[want] = '\0';
        *ends_in_newline = buf[want - 1] == '\n';
        /* Walk back line by line to the last record. */
        end = buf + want;
        while (end > buf) {
                char *line_end = end[-1] == '\n' ? end - 1 : end;
                char *start = memrchr(buf, '\n', (size_t)(line_end - buf));

                start = start ? start + 1 : buf;
                if (start == buf && want < (size_t)st.st_size)
                        return -EFBIG; /* a line longer than we read: not one of ours */
                if (is_record(start, (size_t)(line_end - start), seq)) {
                        sha256_hex(start, (size_t)(line_end - start), hash);
                        *garbage = (size_t)(buf + want - end);
                        if (*garbage > 0)
                                sha256_hex(end, *garbage, garbage_hash);
                        return 0;
                }
                end = start;
        }
        *garbage = want; /* no record at all: all of it is garbage */
        sha256_hex(buf, want, garbage_hash);
        return 0;
}

/* The head: the seq and hash of the last record as the last writer left it. 0 if none. */
static int read_head(const char *dir, uint64_t *seq, char hash[HEX_LEN + 1])
{
        char path[PATH_MAX + 16];
        _cleanup_free_ char *text = NULL;
        unsigned long long s = 0;

        snprintf(path, sizeof(path), "%s/head", dir);
        if (fs_read_file(path, 4096, &text, NULL) < 0)
                return 0;
        if (sscanf(text, "%llu %64s", &s, hash) != 2)
                return -EBADMSG;
        *seq = s;
        return 1;
}

static int write_head(const char *dir, uint64_t seq, const char *hash, int sync)
{
        char path[PATH_MAX + 16], line[HEAD_SIZE];
        _cleanup_fd_ int fd = -1;
        int n;

        snprintf(path, sizeof(path), "%s/head", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        n = snprintf(line, sizeof(line), "%llu %s", (unsigned long long)seq, hash);
        memset(line + n, ' ', sizeof(line) - (size_t)n - 1);
        line[sizeof(line) - 1] = '\n';
        if (pwrite(fd, line, sizeof(line), 0) != (ssize_t)sizeof(line))
                return -EIO;
        if (sync && fsync(fd) < 0)
                return -errno;
        return 0;
}

/* "2026-11-22T10:45:01.123456789Z" */
static void utc_now(char *out, size_t outsz)
{
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/*
 * Write one line (newline added; another first when the log ends without
 * one) with O_APPEND: one write, never interleaved under the lock.
 */
static int append_line(int fd, const char *text, int lead_newline)
{
        size_t n = strlen(text), k = lead_newline ? 1 : 0;
        _cleanup_free_ char *line = malloc(n + 2);
        ssize_t w;

        if (line == NULL)
                return -ENOMEM;
        line[0] = '\n';
        memcpy(line + k, text, n);
        line[k + n] = '\n';
        w = write(fd, line, k + n + 1);
        if (w != (ssize_t)(k + n + 1))
                return w < 0 ? -errno : -EIO; /* a short write leaves a torn line behind */
        return 0;
}

/* Build a record after prev/seq and append it; out: its hash. */
static int append_record(int fd, uint64_t seq, const char *prev, const char *event,
                         const char *sandbox, json_t *fields, char hash[HEX_LEN + 1],
                         int lead_newline)
{
        char when[64];
        json_t *rec = json_object();
        _cleanup_free_ char *text = NULL;
        const char *k;
        json_t *v;

        if (rec == NULL)
                return -ENOMEM;
        utc_now(when, sizeof(when));
        json_object_set_new(rec, "seq", json_integer((json_int_t)seq));
        json_object_set_new(rec, "time", json_string(when));
        json_object_set_new(rec, "event", json_string(event));
        if (sandbox != NULL)
                json_object_set_new(rec, "sandbox", json_string(sandbox));
        json_object_foreach(fields, k, v)
        {
                if (strcmp(k, "seq") != 0 && strcmp(k, "prev") != 0 && strcmp(k, "time") != 0 &&
                    strcmp(k, "event") != 0 && strcmp(k, "sandbox") != 0)
                        json_object_set(rec, k, v);
        }
        json_object_set_new(rec, "prev", json_string(prev));
        text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
                                   JSON_REAL_PRECISION(10));
        json_decref(rec);
        if (text == NULL)
                return -ENOMEM;
        if (strlen(text) >= AUDIT_MAX_RECORD)
                return -E2BIG;
        sha256_hex(text, strlen(text), hash);
        return append_line(fd, text, lead_newline);
}

int audit_append(const char *home, const char *event, const char *sandbox, json_t *fields, int sync,
                 struct lg_err **err)
{
        char dir[PATH_MAX], log[PATH_MAX + 16], prev[HEX_LEN + 1], garbage_hash[HEX_LEN + 1],
            hash[HEX_LEN + 1], head_hash[HEX_LEN + 1] = "";
        _cleanup_fd_ int fd = -1;
        uint64_t seq, head_seq = 0;
        size_t garbage;
        int r, nl, have_head, created;
        struct stat st, now;

        if (snprintf(dir, sizeof(dir), "%s/audit", home) >= (int)sizeof(dir))
                return err_set(err, LG_EK_INTERNAL, ENAMETOOLONG, "audit directory");
        r = fs_mkdir_p(dir, 0700);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "create %s", dir);
        snprintf(log, sizeof(log), "%s/audit.log", dir);
        for (;;) {
                created = access(log, F_OK) < 0;
                fd = open(log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "open %s", log);
                /* One writer at a time, across processes; released when fd closes. */
                while (flock(fd, LOCK_EX) < 0) {
                        if (errno != EINTR)
                                return err_set(err, LG_EK_INTERNAL, errno, "lock %s", log);
                }
                /* Still the file at that path (not renamed or removed while we waited)? */
                if (fstat(fd, &st) == 0 && lstat(log, &now) == 0 && st.st_ino == now.st_ino &&
                    st.st_dev == now.st_dev)
                        break;
                close(fd);
        }
        /* A new log's directory entry must be durable too, or a crash loses the whole file. */
        if (created) {
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (dfd >= 0) {
                        (void)fsync(dfd);
                        close(dfd);
                }
        }
        r = read_tail(fd, &seq, prev, &garbage, garbage_hash, &nl);
        have_head = r == 0 ? read_head(dir, &head_seq, head_hash) : 0;
        if (r < 0 || have_head < 0)
                return err_set(err, LG_EK_INTERNAL, r < 0 ? -r : EBADMSG,
                               "read the end of %s (run 'luminaguard audit verify')", log);
        /*
         * The head says where the last writer stopped. If the log ends
         * elsewhere, records were removed or changed at its end: never chain
         * over that silently — say it in the log, where verify finds it.
         */
        if (have_head && (head_seq != seq || strcmp(head_hash, prev) != 0)) {
                json_t *f = json_pack("{s:I,s:s,s:I}", "head_seq", (json_int_t)head_seq,
                                      "head_sha256", head_hash, "log_seq", (json_int_t)seq);

                r = f ? append_record(fd, ++seq, prev, "audit.mismatch", NULL, f, prev, !nl)
                      : -ENOMEM;
                json_decref(f);
                nl = 1;
                garbage = 0; /* reported as part of the mismatch */
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "append to %s", log);
        }
        if (garbage > 0) {
                /* Never repaired, never hidden: recorded, in one write with the newline. */
                json_t *f = json_pack("{s:I,s:s}", "torn_bytes", (json_int_t)garbage, "torn_sha256",
                                      garbage_hash);

                r = f ? append_record(fd, ++seq, prev, "audit.torn", NULL, f, prev, !nl) : -ENOMEM;
                json_decref(f);
                nl = 1;
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "append to %s", log);
        }
        r = append_record(fd, ++seq, prev, event, sandbox, fields, hash, !nl);
        if (r == 0 && sync && fsync(fd) < 0)
                r = -errno;
        if (r == 0)
                r = write_head(dir, seq, hash, sync);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "append to %s", log);
        return 0;
}

/* ---- verify ---- */

static void finding(FILE *out, struct audit_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finding(FILE *out, struct audit_report *rep, const char *fmt, ...)
{
        va_list ap;

        rep->problems++;
        va_start(ap, fmt);
        vfprintf(out, fmt, ap);
        va_end(ap);
        fputc('\n', out);
}

/* The bytes between two records (lines that are not records), kept to compare with audit.torn. */
struct garbage {
        struct buf b;
        size_t lines, first_line;
};

/* Does an audit.torn record describe exactly the garbage before it? */
static int torn_matches(json_t *j, const struct garbage *g)
{
        json_int_t n = json_integer_value(json_object_get(j, "torn_bytes"));
        const char *h = json_string_value(json_object_get(j, "torn_sha256"));
        char mine[HEX_LEN + 1];
        size_t len = buf_size(&g->b);

        if (h == NULL || len == 0)
                return 0;
        /* The writer added the last newline when the log ended without one. */
        for (int drop = 0; drop < 2; drop++) {
                size_t l = len - (size_t)drop;

                if (drop && buf_head(&g->b)[len - 1] != '\n')
                        break;
                sha256_hex(buf_head(&g->b), l, mine);
                if ((json_int_t)l == n && strcmp(mine, h) == 0)
                        return 1;
        }
        return 0;
}

int audit_verify(const char *home, FILE *out, struct audit_report *rep, struct lg_err **err)
{
        char log[PATH_MAX + 16], dir[PATH_MAX + 8], prev[HEX_LEN + 1], hash[HEX_LEN + 1];
        _cleanup_file_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        struct garbage g = {.b = BUF_INIT};
        size_t cap = 0, lineno = 0;
        uint64_t want_seq = 1, head_seq = 0;
        int have_head, fd;
        ssize_t n;

        memset(rep, 0, sizeof(*rep));
        memcpy(prev, zero_hash, sizeof(zero_hash));
        if (audit_log_path(home, log, sizeof(log)) < 0)
                return err_set(err, LG_EK_INTERNAL, ENAMETOOLONG, "audit log path");
        snprintf(dir, sizeof(dir), "%s/audit", home);
        fd = open(log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT)
                return err_set(err, LG_EK_INTERNAL, errno, "open %s", log);
        /* Writers hold LOCK_EX while they append and move the head: read a still picture. */
        while (fd >= 0 && flock(fd, LOCK_SH) < 0) {
                if (errno != EINTR) {
                        close(fd);
                        return err_set(err, LG_EK_INTERNAL, errno, "lock %s", log);
                }
        }
        have_head = read_head(dir, &head_seq, hash);
        if (fd < 0) {
                if (have_head)
                        finding(out, rep, "%s is gone, but the head says seq %llu was written", log,
                                (unsigned long long)head_seq);
                return rep->problems ? 1 : 0;
        }
        f = fdopen(fd, "re");
        if (f == NULL) {
                close(fd);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "read %s", log);
        }
        while ((n = getline(&line, &cap, f)) > 0) {
                int complete = line[n - 1] == '\n';
                size_t len = (size_t)n - (complete ? 1 : 0);
                json_t *j;
                json_int_t seq;
                const char *p, *ev;

                lineno++;
                if (len >= 2 * AUDIT_MAX_RECORD) {
                        finding(out, rep, "line %zu: %zu bytes, longer than any record", lineno,
                                len);
                        continue;
                }
                j = complete ? json_loadb(line, len, 0, NULL) : NULL;
                seq = json_integer_value(json_object_get(j, "seq"));
                p = json_string_value(json_object_get(j, "prev"));
                ev = json_string_value(json_object_get(j, "event"));
                if (j == NULL || !json_is_object(j) || seq <= 0 || p == NULL || ev == NULL) {
                        /* Not a record: torn by a crash if the next record says so, exactly. */
                        json_decref(j);
                        if (g.lines++ == 0)
                                g.first_line = lineno;
                        if (buf_size(&g.b) < 4 * AUDIT_MAX_RECORD &&
                            buf_append(&g.b, line, (size_t)n) < 0) {
                                buf_free(&g.b);
                                return err_set(err, LG_EK_INTERNAL, ENOMEM, "verify");
                        }
                        continue;
                }
                if (g.lines > 0) {
                        if (strcmp(ev, "audit.torn") == 0 && torn_matches(j, &g))
                                rep->torn++;
                        else
                                finding(out, rep,
                                        "line %zu: not a record (edited, or torn and not "
                                        "recorded as such by the next writer)",
                                        g.first_line);
                        buf_reset(&g.b);
                        g.lines = 0;
                }
                if (strcmp(ev, "audit.mismatch") == 0)
                        finding(out, rep,
                                "line %zu: a writer found the log ending at seq %lld but the head "
                                "at seq %lld: records at the end had been removed or changed",
                                lineno,
                                (long long)json_integer_value(json_object_get(j, "log_seq")),
                                (long long)json_integer_value(json_object_get(j, "head_seq")));
                if ((uint64_t)seq != want_seq)
                        finding(out, rep,
                                "line %zu: seq %lld where %llu was due: records were removed, "
                                "added or moved",
                                lineno, (long long)seq, (unsigned long long)want_seq);
                if (strcmp(p, prev) != 0)
                        finding(out, rep,
                                "line %zu (seq %lld): its prev is not the hash of the record "
                                "before it: that record was changed, or records were removed "
                                "or moved",
                                lineno, (long long)seq);
                json_decref(j);
                sha256_hex(line, len, prev);
                want_seq = (uint64_t)seq + 1;
                rep->records++;
        }
        if (g.lines > 0)
                finding(out, rep, "line %zu: %s at the end", g.first_line,
                        line != NULL && n <= 0 && buf_size(&g.b) > 0 &&
                                buf_head(&g.b)[buf_size(&g.b) - 1] != '\n'
                            ? "torn (the last write did not finish)"
                            : "not a record");
        buf_free(&g.b);
        /* The head names the last record: the end cannot be cut or changed unseen either. */
        if (have_head < 0)
                finding(out, rep, "%s/head: unreadable", dir);
        else if (have_head == 0 && rep->records > 0)
                finding(out, rep, "%s/head is missing", dir);
        else if (have_head > 0 && (head_seq != want_seq - 1 || strcmp(hash, prev) != 0))
                finding(out, rep,
                        "the log ends at seq %llu, but the head says seq %llu: records at the "
                        "end were removed or changed",
                        (unsigned long long)(want_seq - 1), (unsigned long long)head_seq);
        return rep->problems ? 1 : 0;
}
