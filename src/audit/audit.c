/* SPDX-License-Identifier: Apache-2.0 */
#include "audit/audit.h"
#include "common/cleanup.h"
#include "common/err.h"
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

/*
 * The tail of the log: the last complete line's seq and hash, and how many
 * bytes follow it without a newline (a torn line). Reads at most
 * AUDIT_MAX_RECORD * 2 bytes from the end.
 */
static int read_tail(int fd, uint64_t *seq, char hash[HEX_LEN + 1], size_t *torn,
                     char torn_hash[HEX_LEN + 1])
{
        struct stat st;
        _cleanup_free_ char *buf = NULL;
        size_t want;
        ssize_t n;
        char *end, *start;

        *seq = 0;
        *torn = 0;
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
        end = buf + want;
        if (end[-1] != '\n') { /* a torn line: up to the last newline, or all of it */
                char *nl = memrchr(buf, '\n', want);

                start = nl ? nl + 1 : buf;
                *torn = (size_t)(end - start);
                sha256_hex(start, *torn, torn_hash);
                end = start;
                if (end == buf)
                        return want < (size_t)st.st_size ? -EFBIG : 0;
        }
        /* end points just past the newline of the last complete line. */
        start = memrchr(buf, '\n', (size_t)(end - 1 - buf));
        start = start ? start + 1 : buf;
        if (start == buf && want < (size_t)st.st_size)
                return -EFBIG; /* a line longer than we read: not one of ours */
        sha256_hex(start, (size_t)(end - 1 - start), hash);
        {
                json_t *j = json_loadb(start, (size_t)(end - 1 - start), 0, NULL);
                json_int_t s = json_integer_value(json_object_get(j, "seq"));

                json_decref(j);
                if (s <= 0)
                        return -EBADMSG; /* the last line is not a record: the log was edited */
                *seq = (uint64_t)s;
        }
        return 0;
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

/* Write one line (newline added) with O_APPEND: one write, never interleaved under the lock. */
static int append_line(int fd, const char *text)
{
        size_t n = strlen(text);
        _cleanup_free_ char *line = malloc(n + 1);
        ssize_t w;

        if (line == NULL)
                return -ENOMEM;
        memcpy(line, text, n);
        line[n] = '\n';
        w = write(fd, line, n + 1);
        if (w != (ssize_t)(n + 1))
                return w < 0 ? -errno : -EIO; /* a short write leaves a torn line behind */
        return 0;
}

/* Build a record after prev/seq and append it; out: its hash. */
static int append_record(int fd, uint64_t seq, const char *prev, const char *event,
                         const char *sandbox, json_t *fields, char hash[HEX_LEN + 1])
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
        return append_line(fd, text);
}

int audit_append(const char *home, const char *event, const char *sandbox, json_t *fields, int sync,
                 struct lg_err **err)
{
        char dir[PATH_MAX], log[PATH_MAX + 16], prev[HEX_LEN + 1], torn_hash[HEX_LEN + 1],
            hash[HEX_LEN + 1];
        _cleanup_fd_ int fd = -1;
        uint64_t seq;
        size_t torn;
        int r;

        if (snprintf(dir, sizeof(dir), "%s/audit", home) >= (int)sizeof(dir))
                return err_set(err, LG_EK_INTERNAL, ENAMETOOLONG, "audit directory");
        r = fs_mkdir_p(dir, 0700);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "create %s", dir);
        snprintf(log, sizeof(log), "%s/audit.log", dir);
        fd = open(log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "open %s", log);
        /* One writer at a time, across processes; released when fd closes. */
        while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "lock %s", log);
        }
        r = read_tail(fd, &seq, prev, &torn, torn_hash);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r,
                               "read the end of %s (run 'luminaguard audit verify')", log);
        if (torn > 0) {
                /* Never repaired, never hidden: a new line, and a record of what was torn. */
                json_t *f = json_pack("{s:I,s:s}", "torn_bytes", (json_int_t)torn, "torn_sha256",
                                      torn_hash);

                r = f ? append_line(fd, "") : -ENOMEM;
                if (r == 0)
                        r = append_record(fd, ++seq, prev, "audit.torn", NULL, f, prev);
                json_decref(f);
                if (r < 0)
                        return err_set(err, LG_EK_INTERNAL, -r, "append to %s", log);
        }
        r = append_record(fd, ++seq, prev, event, sandbox, fields, hash);
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

int audit_verify(const char *home, FILE *out, struct audit_report *rep, struct lg_err **err)
{
        char log[PATH_MAX + 16], head[PATH_MAX + 16], prev[HEX_LEN + 1], hash[HEX_LEN + 1];
        _cleanup_file_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL, *head_text = NULL;
        size_t cap = 0, lineno = 0;
        uint64_t want_seq = 1;
        int torn_pending = 0; /* the previous line was torn: an audit.torn record must follow */
        ssize_t n;

        memset(rep, 0, sizeof(*rep));
        memcpy(prev, zero_hash, sizeof(zero_hash));
        if (audit_log_path(home, log, sizeof(log)) < 0)
                return err_set(err, LG_EK_INTERNAL, ENAMETOOLONG, "audit log path");
        f = fopen(log, "re");
        if (f == NULL) {
                if (errno == ENOENT)
                        return 0; /* nothing recorded yet: nothing to break */
                return err_set(err, LG_EK_INTERNAL, errno, "open %s", log);
        }
        while ((n = getline(&line, &cap, f)) > 0) {
                int complete = line[n - 1] == '\n';
                size_t len = (size_t)n - (complete ? 1 : 0);
                json_t *j;
                json_int_t seq;
                const char *p, *ev;

                lineno++;
                if (!complete) {
                        finding(out, rep,
                                "line %zu: torn (%zu bytes without an end): the last "
                                "write did not finish",
                                lineno, len);
                        break;
                }
                j = json_loadb(line, len, 0, NULL);
                seq = json_integer_value(json_object_get(j, "seq"));
                p = json_string_value(json_object_get(j, "prev"));
                ev = json_string_value(json_object_get(j, "event"));
                if (j == NULL || !json_is_object(j) || seq <= 0 || p == NULL || ev == NULL) {
                        /* A line that is not a record: torn by a crash if the next one says so. */
                        json_decref(j);
                        if (torn_pending) {
                                finding(out, rep, "line %zu: not a record, after a torn line",
                                        lineno);
                                continue;
                        }
                        torn_pending = 1;
                        continue;
                }
                if (torn_pending) {
                        if (strcmp(ev, "audit.torn") != 0)
                                finding(out, rep,
                                        "line %zu: not a record (edited), and no audit.torn "
                                        "record follows it",
                                        lineno - 1);
                        else
                                rep->torn++;
                        torn_pending = 0;
                }
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
        if (torn_pending)
                finding(out, rep, "line %zu: not a record (edited or torn at the end)", lineno);
        /* The head names the last record: the end cannot be cut or changed unseen either. */
        snprintf(head, sizeof(head), "%s/audit/head", home);
        if (fs_read_file(head, 4096, &head_text, NULL) == 0) {
                unsigned long long hseq = 0;

                memset(hash, 0, sizeof(hash));
                if (sscanf(head_text, "%llu %64s", &hseq, hash) != 2)
                        finding(out, rep, "%s: unreadable", head);
                else if (hseq != want_seq - 1 || strcmp(hash, prev) != 0)
                        finding(out, rep,
                                "the log ends at seq %llu, but the head says seq %llu: records at "
                                "the end were removed or changed",
                                (unsigned long long)(want_seq - 1), hseq);
        } else if (rep->records > 0) {
                finding(out, rep, "%s is missing", head);
        }
        return rep->problems ? 1 : 0;
}
