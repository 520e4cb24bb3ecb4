/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Typed messages on top of the field codec. Decoders are strict about the
 * fields they know (shape, range, no repeats of single fields: two parsers
 * must never disagree about which of two values counts) and skip the ones
 * they do not know, so a newer peer can add fields.
 */
#include "proto/proto.h"
#include "common/buf.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRNO 4095 /* Linux errnos are below this; the kernel's own bound */
#define MAX_SIGNO 64   /* _NSIG - 1 on Linux */

/* Record a single field: -EPROTO if it was seen before. */
static int seen_once(unsigned *seen, uint16_t tag)
{
        unsigned bit = 1u << (tag & 31);

        if (*seen & bit)
                return -EPROTO;
        *seen |= bit;
        return 0;
}

static int get_u64_once(const struct proto_field *f, unsigned *seen, uint64_t *v)
{
        int r = seen_once(seen, f->tag);

        return r < 0 ? r : proto_field_u64(f, v);
}

int proto_encode_empty(struct buf *b, uint8_t type, uint32_t id)
{
        struct proto_writer w;

        proto_begin(&w, b, type, 0, id);
        return proto_end(&w);
}

/* ---- EXEC --------------------------------------------------------------- */

int proto_encode_exec(struct buf *b, uint32_t id, const struct proto_exec *x)
{
        struct proto_writer w;

        if (x->argc < 1 || x->argv == NULL)
                return -EINVAL;
        if (x->argc > PROTO_MAX_ARGS || x->envc > PROTO_MAX_ARGS)
                return -E2BIG;
        proto_begin(&w, b, PROTO_EXEC, 0, id);
        for (size_t i = 0; i < x->argc; i++)
                proto_put_str(&w, PT_ARG, x->argv[i]);
        for (size_t i = 0; i < x->envc; i++)
                proto_put_str(&w, PT_ENV, x->env[i]);
        if (x->cwd != NULL)
                proto_put_str(&w, PT_CWD, x->cwd);
        /* Defaults are left out: a re-encoded frame is never larger than the original. */
        if (x->timeout_ms != 0)
                proto_put_u64(&w, PT_TIMEOUT_MS, x->timeout_ms);
        if (x->flags != 0)
                proto_put_u64(&w, PT_EXEC_FLAGS, x->flags);
        return proto_end(&w);
}

/* A string field's shape, without copying it. */
static int check_str(const struct proto_field *f)
{
        if (f->len > PROTO_MAX_STR)
                return -ENAMETOOLONG;
        if (f->len > 0 && memchr(f->val, '\0', f->len) != NULL)
                return -EPROTO;
        return 0;
}

int proto_decode_exec(const uint8_t *payload, size_t len, struct proto_exec *x)
{
        struct proto_reader rd;
        struct proto_field f;
        size_t argc = 0, envc = 0, strbytes = 0, ptrs, total;
        unsigned seen = 0;
        int r;
        uint64_t timeout = 0, flags = 0;
        _cleanup_free_ void *storage = NULL;
        char **argv, **env, *s, *cwd = NULL;

        memset(x, 0, sizeof(*x));
        /* Pass 1: validate and size everything before allocating anything. */
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                switch (f.tag) {
                case PT_ARG:
                case PT_ENV:
                case PT_CWD:
                        r = check_str(&f);
                        if (r < 0)
                                return r;
                        if (f.tag == PT_ARG && ++argc > PROTO_MAX_ARGS)
                                return -E2BIG;
                        if (f.tag == PT_ENV && ++envc > PROTO_MAX_ARGS)
                                return -E2BIG;
                        if (f.tag == PT_CWD && (r = seen_once(&seen, f.tag)) < 0)
                                return r;
                        strbytes += (size_t)f.len + 1; /* bounded by len + count: no overflow */
                        break;
                case PT_TIMEOUT_MS:
                        r = get_u64_once(&f, &seen, &timeout);
                        if (r < 0)
                                return r;
                        break;
                case PT_EXEC_FLAGS:
                        r = get_u64_once(&f, &seen, &flags);
                        if (r < 0)
                                return r;
                        break;
                default:
                        break;
                }
        }
        if (r < 0)
                return r;
        if (argc == 0)
                return -EPROTO;
        if (__builtin_add_overflow(argc, envc, &ptrs) || __builtin_add_overflow(ptrs, 2, &ptrs) ||
            __builtin_mul_overflow(ptrs, sizeof(char *), &total) ||
            __builtin_add_overflow(total, strbytes, &total))
                return -ENOMEM;
        storage = malloc(total);
        if (storage == NULL)
                return -ENOMEM;
        argv = storage;
        env = argv + argc + 1;
        s = (char *)(env + envc + 1);

        /* Pass 2: copy; the shapes were checked above. */
        argc = envc = 0;
        proto_reader_init(&rd, payload, len);
        while (proto_next(&rd, &f) == 1) {
                if (f.tag != PT_ARG && f.tag != PT_ENV && f.tag != PT_CWD)
                        continue;
                if (f.len > 0)
                        memcpy(s, f.val, f.len);
                s[f.len] = '\0';
                if (f.tag == PT_ARG)
                        argv[argc++] = s;
                else if (f.tag == PT_ENV)
                        env[envc++] = s;
                else
                        cwd = s;
                s += f.len + 1;
        }
        argv[argc] = NULL;
        env[envc] = NULL;
        x->argv = argv;
        x->argc = argc;
        x->env = env;
        x->envc = envc;
        x->cwd = cwd;
        x->timeout_ms = timeout;
        x->flags = flags;
        x->storage = steal_pointer(&storage);
        return 0;
}

void proto_exec_free(struct proto_exec *x)
{
        free(x->storage);
        memset(x, 0, sizeof(*x));
}

/* ---- EXIT, ERROR, DATA, STDIN -------------------------------------------- */

int proto_encode_exit(struct buf *b, uint32_t id, const struct proto_exit *e)
{
        struct proto_writer w;

        if (e->flags & PROTO_EXIT_SIGNALED) {
                if (e->signo < 1 || e->signo > MAX_SIGNO)
                        return -EINVAL;
        } else if (e->exit_code < 0 || e->exit_code > 255) {
                return -EINVAL;
        }
        proto_begin(&w, b, PROTO_EXIT, 0, id);
        if (e->flags & PROTO_EXIT_SIGNALED)
                proto_put_u64(&w, PT_SIGNO, (uint64_t)e->signo);
        else
                proto_put_u64(&w, PT_EXIT_CODE, (uint64_t)e->exit_code);
        proto_put_u64(&w, PT_EXIT_FLAGS, e->flags);
        return proto_end(&w);
}

int proto_decode_exit(const uint8_t *payload, size_t len, struct proto_exit *e)
{
        struct proto_reader rd;
        struct proto_field f;
        uint64_t code = 0, signo = 0, flags = 0;
        unsigned seen = 0;
        int r;

        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_EXIT_CODE)
                        r = get_u64_once(&f, &seen, &code);
                else if (f.tag == PT_SIGNO)
                        r = get_u64_once(&f, &seen, &signo);
                else if (f.tag == PT_EXIT_FLAGS)
                        r = get_u64_once(&f, &seen, &flags);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        /* Exactly one of code and signo, and the one the flags say. */
        if (flags & PROTO_EXIT_SIGNALED) {
                if (!(seen & (1u << PT_SIGNO)) || (seen & (1u << PT_EXIT_CODE)) || signo < 1 ||
                    signo > MAX_SIGNO)
                        return -EPROTO;
        } else if (!(seen & (1u << PT_EXIT_CODE)) || (seen & (1u << PT_SIGNO)) || code > 255) {
                return -EPROTO;
        }
        e->exit_code = (flags & PROTO_EXIT_SIGNALED) ? 0 : (int)code;
        e->signo = (flags & PROTO_EXIT_SIGNALED) ? (int)signo : 0;
        e->flags = flags;
        return 0;
}

int proto_encode_error(struct buf *b, uint32_t id, int errnum, const char *message)
{
        struct proto_writer w;

        if (errnum < 1 || errnum > MAX_ERRNO)
                return -EINVAL;
        proto_begin(&w, b, PROTO_ERROR, 0, id);
        proto_put_u64(&w, PT_ERRNO, (uint64_t)errnum);
        /* An error report must not fail for being verbose: cut it instead. */
        if (message != NULL && message[0] != '\0')
                proto_put_bytes(&w, PT_MESSAGE, message, strnlen(message, PROTO_MAX_STR));
        return proto_end(&w);
}

int proto_decode_error(const uint8_t *payload, size_t len, struct proto_error *e)
{
        struct proto_reader rd;
        struct proto_field f;
        uint64_t errnum = 0;
        unsigned seen = 0;
        int r;

        e->message[0] = '\0';
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_ERRNO) {
                        r = get_u64_once(&f, &seen, &errnum);
                } else if (f.tag == PT_MESSAGE) {
                        size_t n = f.len < sizeof(e->message) ? f.len : sizeof(e->message) - 1;

                        r = seen_once(&seen, f.tag);
                        if (r == 0)
                                r = check_str(&f);
                        if (r == 0) {
                                memcpy(e->message, f.val, n);
                                e->message[n] = '\0';
                        }
                }
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!(seen & (1u << PT_ERRNO)) || errnum < 1 || errnum > MAX_ERRNO)
                return -EPROTO;
        e->errnum = (int)errnum;
        return 0;
}

static int encode_data(struct buf *b, uint8_t type, uint8_t flags, uint32_t id, unsigned stream,
                       const void *p, size_t n)
{
        struct proto_writer w;

        if (n > PROTO_MAX_CHUNK)
                return -EMSGSIZE;
        if (stream > 2)
                return -EINVAL;
        proto_begin(&w, b, type, flags, id);
        if (stream != 0)
                proto_put_u64(&w, PT_STREAM, stream);
        proto_put_bytes(&w, PT_DATA, p, n);
        return proto_end(&w);
}

int proto_encode_data(struct buf *b, uint32_t id, unsigned stream, const void *p, size_t n)
{
        return encode_data(b, PROTO_DATA, 0, id, stream, p, n);
}

int proto_encode_stdin(struct buf *b, uint32_t id, const void *p, size_t n, int eof)
{
        return encode_data(b, PROTO_STDIN, eof ? PROTO_F_EOF : 0, id, 0, p, n);
}

int proto_encode_chunk(struct buf *b, uint8_t type, uint32_t id, const void *p, size_t n, int eof)
{
        return encode_data(b, type, eof ? PROTO_F_EOF : 0, id, 0, p, n);
}

int proto_decode_data(const uint8_t *payload, size_t len, unsigned *stream, const uint8_t **data,
                      size_t *n)
{
        struct proto_reader rd;
        struct proto_field f;
        uint64_t st = 0;
        const uint8_t *d = payload;
        size_t dn = 0;
        unsigned seen = 0;
        int r;

        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_STREAM) {
                        r = get_u64_once(&f, &seen, &st);
                } else if (f.tag == PT_DATA) {
                        r = seen_once(&seen, f.tag);
                        d = f.val;
                        dn = f.len;
                }
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (st > 2)
                return -EPROTO;
        if (dn > PROTO_MAX_CHUNK)
                return -EMSGSIZE;
        *stream = (unsigned)st;
        *data = d;
        *n = dn;
        return 0;
}

/* ---- Path requests, WRITE_FILE ------------------------------------------ */

int proto_encode_path_req(struct buf *b, uint8_t type, uint32_t id, const struct proto_path_req *r)
{
        struct proto_writer w;

        proto_begin(&w, b, type, 0, id);
        proto_put_str(&w, PT_PATH, r->path);
        if (r->offset != 0)
                proto_put_u64(&w, PT_OFFSET, r->offset);
        if (r->length != 0)
                proto_put_u64(&w, PT_LENGTH, r->length);
        return proto_end(&w);
}

int proto_decode_path_req(const uint8_t *payload, size_t len, struct proto_path_req *req)
{
        struct proto_reader rd;
        struct proto_field f;
        unsigned seen = 0;
        int r;

        req->path[0] = '\0';
        req->offset = req->length = 0;
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_PATH) {
                        r = seen_once(&seen, f.tag);
                        if (r == 0)
                                r = proto_field_str(&f, req->path, sizeof(req->path));
                } else if (f.tag == PT_OFFSET) {
                        r = get_u64_once(&f, &seen, &req->offset);
                } else if (f.tag == PT_LENGTH) {
                        r = get_u64_once(&f, &seen, &req->length);
                }
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return (seen & (1u << PT_PATH)) ? 0 : -EPROTO;
}

int proto_encode_write_file(struct buf *b, uint32_t id, const struct proto_write_file *wf)
{
        struct proto_writer w;

        if (wf->len > PROTO_MAX_FILE)
                return -EMSGSIZE;
        if (wf->mode > 07777)
                return -EINVAL;
        proto_begin(&w, b, PROTO_WRITE_FILE, 0, id);
        proto_put_str(&w, PT_PATH, wf->path);
        if (wf->mode != 0)
                proto_put_u64(&w, PT_MODE, wf->mode);
        proto_put_bytes(&w, PT_DATA, wf->data, wf->len);
        return proto_end(&w);
}

int proto_decode_write_file(const uint8_t *payload, size_t len, struct proto_write_file *wf)
{
        struct proto_reader rd;
        struct proto_field f;
        uint64_t mode = 0;
        unsigned seen = 0;
        int r;

        wf->path[0] = '\0';
        wf->data = payload;
        wf->len = 0;
        proto_reader_init(&rd, payload, len);
        while ((r = proto_next(&rd, &f)) == 1) {
                if (f.tag == PT_PATH) {
                        r = seen_once(&seen, f.tag);
                        if (r == 0)
                                r = proto_field_str(&f, wf->path, sizeof(wf->path));
                } else if (f.tag == PT_MODE) {
                        r = get_u64_once(&f, &seen, &mode);
                } else if (f.tag == PT_DATA) {
                        r = seen_once(&seen, f.tag);
                        wf->data = f.val;
                        wf->len = f.len;
                }
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!(seen & (1u << PT_PATH)) || mode > 07777)
                return -EPROTO;
        if (wf->len > PROTO_MAX_FILE)
                return -EMSGSIZE;
        wf->mode = (uint32_t)mode;
        return 0;
}
