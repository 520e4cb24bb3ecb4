/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host <-> guest agent frame codec (docs/protocol.md). Shared by the host
 * (luminaguard) and the static guest agent (lg-agent); fuzzed by
 * tests/fuzz/fuzz_proto.c. Pure: no I/O, no allocation except into the
 * caller's struct buf, no printing.
 *
 * Wire format: a 12-byte little-endian header followed by `len` payload bytes.
 *
 *     u16 magic  (PROTO_MAGIC)
 *     u8  type   (enum proto_type)
 *     u8  flags  (PROTO_F_*)
 *     u32 id     request id chosen by the host; 0 for unsolicited events
 *     u32 len    payload length, <= PROTO_MAX_PAYLOAD
 *
 * The payload is a sequence of fields, each `u16 tag, u32 len, len bytes`.
 * Integers are u64 little-endian (len 8). Strings are bytes without NUL
 * (len <= PROTO_MAX_STR). Unknown tags are skipped (forward compatible);
 * a field that overruns the payload makes the whole frame malformed.
 *
 * Trust: everything decoded here may come from a hostile peer (a compromised
 * guest talks to the host through this code). Every length is checked before
 * it is used; decoders only ever point into the frame they were given.
 */
#ifndef LG_PROTO_PROTO_H
#define LG_PROTO_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define PROTO_VERSION     2u      /* 2: the NET_* egress tunnel */
#define PROTO_MAGIC       0x474cu /* "LG" on the wire */
#define PROTO_HDR_SIZE    12u
#define PROTO_MAX_PAYLOAD (1u << 20)  /* 1 MiB: bounds every buffer a peer can make us fill */
#define PROTO_MAX_STR     4096u       /* paths, cwd, error messages, one argv/env entry */
#define PROTO_MAX_ARGS    1024u       /* argv entries + env entries, each */
#define PROTO_MAX_CHUNK   (64u << 10) /* stdout/stderr/file data per DATA frame */
#define PROTO_MAX_FILE    (PROTO_MAX_PAYLOAD - 8192u) /* write_file content in one frame */

enum proto_type {
        /* Requests, host -> agent. The reply carries the same id. */
        PROTO_HELLO = 1,      /* -> OK{version, name, kernel} */
        PROTO_EXEC = 2,       /* -> STARTED{pid}, DATA{stream}*, EXIT | ERROR */
        PROTO_STDIN = 3,      /* id = a running EXEC; DATA bytes, F_EOF closes; no reply */
        PROTO_SIGNAL = 4,     /* id = a running EXEC; SIGNO to its process group; no reply */
        PROTO_READ_FILE = 5,  /* -> DATA*, OK{size} | ERROR */
        PROTO_WRITE_FILE = 6, /* -> OK{size} | ERROR; atomic (temp + rename) */
        PROTO_STAT = 7,       /* -> OK{file_type, mode, size, mtime_ns} | ERROR */
        PROTO_LIST = 8,       /* -> ENTRIES*, OK{count} | ERROR */
        PROTO_SHUTDOWN = 9,   /* -> OK, then the guest powers off */
        PROTO_RESEED = 10,    /* after a restore: -> OK | ERROR (struct proto_reseed) */
        /*
         * The egress tunnel (docs/protocol.md, "Network"): the agent listens
         * on guest 127.0.0.1:PORT; each connection there is a stream, its id
         * chosen by the agent (NET_OPEN). Bytes flow in NET_SEND (host ->
         * guest client) and NET_RECV (guest client -> host), each side at
         * most PROTO_NET_WINDOW unacknowledged bytes ahead per stream.
         * NET_RECV F_EOF: the client will send no more (it may still read);
         * NET_SEND F_EOF: the host is done, the agent flushes and closes;
         * NET_RECV F_RST: the agent dropped the stream. The host forgets a
         * stream once it sent F_EOF or received F_RST.
         */
        PROTO_NET_ENABLE = 11, /* {PT_PORT}: start listening -> OK | ERROR */
        PROTO_NET_SEND = 12,   /* id = stream: {PT_DATA} for the guest client; F_EOF closes */
        PROTO_NET_ACK = 13,    /* id = stream: {PT_SIZE} bytes of NET_RECV the host consumed */

        /* Replies and events, agent -> host. */
        PROTO_READY = 64,        /* id 0, sent once when the agent starts: {version} */
        PROTO_OK = 65,           /* final reply of a request */
        PROTO_ERROR = 66,        /* final reply: {errno, message}; id 0 = stream-level error */
        PROTO_STARTED = 67,      /* EXEC: the process runs: {pid} */
        PROTO_DATA = 68,         /* EXEC output {stream, data} or READ_FILE content {data} */
        PROTO_EXIT = 69,         /* EXEC final reply: {exit_code | signo, exit_flags} */
        PROTO_ENTRIES = 70,      /* LIST: a batch of (name, file_type, mode, size) groups */
        PROTO_NET_OPEN = 71,     /* id = a new stream: a guest client connected */
        PROTO_NET_RECV = 72,     /* id = stream: {PT_DATA} from the guest client; F_EOF closed */
        PROTO_NET_RECV_ACK = 73, /* id = stream: {PT_SIZE} bytes of NET_SEND the agent consumed */
};

#define PROTO_NET_WINDOW      (256u << 10) /* unacknowledged bytes per stream and direction */
#define PROTO_NET_MAX_STREAMS 64u          /* open streams per sandbox */

/* Header flags. */
#define PROTO_F_EOF                                                                                \
        0x01u             /* STDIN: no more input; NET_RECV: the guest client half-closed;         \
                             NET_SEND: the host is done, close after these bytes */
#define PROTO_F_RST 0x02u /* NET_RECV: the agent dropped the stream (client gone) */

/* Field tags. */
enum proto_tag {
        PT_VERSION = 1,     /* u64 */
        PT_NAME = 2,        /* str: agent name / directory entry name */
        PT_KERNEL = 3,      /* str: uname -r of the guest */
        PT_ARG = 4,         /* str, repeated: argv in order */
        PT_ENV = 5,         /* str, repeated: "KEY=VALUE" */
        PT_CWD = 6,         /* str */
        PT_TIMEOUT_MS = 7,  /* u64: 0 = none */
        PT_EXEC_FLAGS = 8,  /* u64: PROTO_EXEC_* */
        PT_PID = 9,         /* u64 */
        PT_STREAM = 10,     /* u64: 1 stdout, 2 stderr */
        PT_DATA = 11,       /* bytes */
        PT_EXIT_CODE = 12,  /* u64: 0..255 */
        PT_SIGNO = 13,      /* u64: terminating or requested signal */
        PT_EXIT_FLAGS = 14, /* u64: PROTO_EXIT_* */
        PT_ERRNO = 15,      /* u64: positive Linux errno */
        PT_MESSAGE = 16,    /* str */
        PT_PATH = 17,       /* str: absolute guest path */
        PT_MODE = 18,       /* u64: permission bits (07777) */
        PT_SIZE = 19,       /* u64 */
        PT_OFFSET = 20,     /* u64 */
        PT_LENGTH = 21,     /* u64: 0 = to end of file */
        PT_FILE_TYPE = 22,  /* u64: PROTO_FT_* */
        PT_MTIME_NS = 23,   /* u64 */
        PT_COUNT = 24,      /* u64 */
        PT_TIME_NS = 25,    /* u64: wall clock, ns since the epoch */
        PT_PORT = 26,       /* u64: TCP port, 1..65535 */
};

/* EXEC flags. */
#define PROTO_EXEC_STDIN 0x01u /* stdin comes in STDIN frames; otherwise /dev/null */

/* EXIT flags. */
#define PROTO_EXIT_SIGNALED 0x01u /* PT_SIGNO holds the signal that killed it */
#define PROTO_EXIT_TIMEOUT  0x02u /* killed by the agent because timeout_ms passed */

/* File types for STAT and LIST. */
enum proto_file_type {
        PROTO_FT_OTHER = 0,
        PROTO_FT_REG = 1,
        PROTO_FT_DIR = 2,
        PROTO_FT_LNK = 3,
};

struct proto_hdr {
        uint8_t type;
        uint8_t flags;
        uint32_t id;
        uint32_t len;
};

/*
 * Decode a header from p (n bytes available).
 * Returns 0 (header valid, payload of h->len bytes follows), -EAGAIN (fewer
 * than PROTO_HDR_SIZE bytes), -EPROTO (bad magic: the stream cannot be
 * resynchronised), -EMSGSIZE (len > PROTO_MAX_PAYLOAD: h is filled so the
 * receiver can skip h->len bytes and answer with an ERROR for h->id).
 */
int proto_hdr_decode(const uint8_t *p, size_t n, struct proto_hdr *h);

/* ---- Encoding ----------------------------------------------------------- */

/*
 * A frame under construction, appended to a struct buf. Errors are sticky:
 * after the first failure every put is a no-op and proto_end() reports it,
 * so encoders need only one check.
 */
struct proto_writer {
        struct buf *b;
        size_t start; /* offset of the header within b (relative to buf_head) */
        int err;
};

void proto_begin(struct proto_writer *w, struct buf *b, uint8_t type, uint8_t flags, uint32_t id);
void proto_put_u64(struct proto_writer *w, uint16_t tag, uint64_t v);
void proto_put_bytes(struct proto_writer *w, uint16_t tag, const void *p, size_t n);
void proto_put_str(struct proto_writer *w, uint16_t tag, const char *s); /* strlen(s) bytes */
/*
 * Finish the frame: patch the header length. On any error (-EMSGSIZE when the
 * payload would exceed PROTO_MAX_PAYLOAD, -ENOBUFS/-ENOMEM from the buffer)
 * the partial frame is removed from b and the error returned; b is then as
 * before proto_begin().
 */
int proto_end(struct proto_writer *w) __attribute__((warn_unused_result));

/* ---- Decoding ----------------------------------------------------------- */

struct proto_field {
        uint16_t tag;
        uint32_t len;
        const uint8_t *val; /* points into the frame */
};

struct proto_reader {
        const uint8_t *p;
        size_t n;
        size_t off;
};

void proto_reader_init(struct proto_reader *r, const uint8_t *payload, size_t len);
/* 1 = field returned, 0 = end of payload, -EPROTO = truncated field. */
int proto_next(struct proto_reader *r, struct proto_field *f);
/* -EPROTO unless len == 8. */
int proto_field_u64(const struct proto_field *f, uint64_t *v);
/*
 * Copy a string field into out (NUL-terminated). -EPROTO when it contains a
 * NUL byte, -ENAMETOOLONG when len >= outsz or len > PROTO_MAX_STR.
 */
int proto_field_str(const struct proto_field *f, char *out, size_t outsz);

/* ---- Typed messages -------------------------------------------------------
 * decode: the payload of a frame of the right type -> struct; 0 or -EPROTO,
 * -E2BIG (too many args), -ENAMETOOLONG. String pointers in decoded structs
 * point into `storage` owned by the struct (freed by the *_free function).
 */

struct proto_exec {
        char **argv; /* NULL-terminated, argc >= 1 */
        size_t argc;
        char **env; /* NULL-terminated "K=V" entries */
        size_t envc;
        char *cwd; /* NULL = agent default ("/") */
        uint64_t timeout_ms;
        uint64_t flags; /* PROTO_EXEC_* */
        void *storage;  /* owns argv/env arrays and strings */
};

int proto_encode_exec(struct buf *b, uint32_t id, const struct proto_exec *x)
    __attribute__((warn_unused_result));
int proto_decode_exec(const uint8_t *payload, size_t len, struct proto_exec *x)
    __attribute__((warn_unused_result));
void proto_exec_free(struct proto_exec *x);

struct proto_exit {
        int exit_code;  /* valid unless SIGNALED */
        int signo;      /* valid if SIGNALED */
        uint64_t flags; /* PROTO_EXIT_* */
};

int proto_encode_exit(struct buf *b, uint32_t id, const struct proto_exit *e)
    __attribute__((warn_unused_result));
int proto_decode_exit(const uint8_t *payload, size_t len, struct proto_exit *e)
    __attribute__((warn_unused_result));

struct proto_error {
        int errnum;        /* positive errno */
        char message[512]; /* truncated if longer */
};

int proto_encode_error(struct buf *b, uint32_t id, int errnum, const char *message)
    __attribute__((warn_unused_result));
int proto_decode_error(const uint8_t *payload, size_t len, struct proto_error *e)
    __attribute__((warn_unused_result));

/* DATA: stream is 1/2 for EXEC output, 0 for READ_FILE content. */
int proto_encode_data(struct buf *b, uint32_t id, unsigned stream, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* *data points into payload. */
int proto_decode_data(const uint8_t *payload, size_t len, unsigned *stream, const uint8_t **data,
                      size_t *n) __attribute__((warn_unused_result));

/* Request with a single path (READ_FILE, STAT, LIST); offset/length only for READ_FILE. */
struct proto_path_req {
        char path[PROTO_MAX_STR + 1];
        uint64_t offset;
        uint64_t length;
};

int proto_encode_path_req(struct buf *b, uint8_t type, uint32_t id, const struct proto_path_req *r)
    __attribute__((warn_unused_result));
int proto_decode_path_req(const uint8_t *payload, size_t len, struct proto_path_req *r)
    __attribute__((warn_unused_result));

struct proto_write_file {
        char path[PROTO_MAX_STR + 1];
        uint32_t mode;       /* permission bits; 0 -> 0644 */
        const uint8_t *data; /* points into the payload when decoded */
        size_t len;          /* <= PROTO_MAX_FILE */
};

int proto_encode_write_file(struct buf *b, uint32_t id, const struct proto_write_file *w)
    __attribute__((warn_unused_result));
int proto_decode_write_file(const uint8_t *payload, size_t len, struct proto_write_file *w)
    __attribute__((warn_unused_result));

/* Metadata in STAT replies and LIST entries. */
struct proto_stat {
        char name[256];     /* LIST only */
        unsigned file_type; /* PROTO_FT_* */
        uint32_t mode;
        uint64_t size;
        uint64_t mtime_ns;
};

/* ---- Stream reassembly ---------------------------------------------------
 * Bytes read from the channel go in with proto_rx_feed(); complete frames come
 * out of proto_rx_next(). At most PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD bytes are
 * ever buffered: the payload of an oversized frame is skipped as it arrives.
 */
struct proto_rx {
        struct buf *in;  /* owned */
        uint64_t skip;   /* bytes of an oversized payload still to discard */
        size_t consumed; /* bytes of the frame returned last, dropped on the next call */
};

int proto_rx_init(struct proto_rx *rx) __attribute__((warn_unused_result));
void proto_rx_free(struct proto_rx *rx);
/* Append bytes. -ENOBUFS if that would exceed the bound (cannot happen when
 * the caller feeds after every proto_rx_next() returning 0). */
int proto_rx_feed(struct proto_rx *rx, const void *p, size_t n) __attribute__((warn_unused_result));
/*
 * Next complete frame: 1 (h and *payload valid until the next call on rx),
 * 0 (need more bytes), -EPROTO (bad magic: the stream is unusable; the caller
 * reports and closes it), -EMSGSIZE (oversized: h is filled, its payload will
 * be discarded as it arrives; the caller answers ERROR for h->id and goes on).
 */
int proto_rx_next(struct proto_rx *rx, struct proto_hdr *h, const uint8_t **payload);

/* ---- Additional messages ---------------------------------------------------
 * Added after the first interface freeze; nothing above changed. Decoders
 * follow the rules of the typed messages: unknown tags are skipped, a known
 * tag with the wrong shape or repeated where it is single is -EPROTO.
 */

/* A frame with an empty payload: HELLO, SHUTDOWN, a bare OK. */
int proto_encode_empty(struct buf *b, uint8_t type, uint32_t id)
    __attribute__((warn_unused_result));

/* READY (id 0, version only) and the OK reply to HELLO (version, name, kernel). */
struct proto_hello {
        uint64_t version;
        char name[64];    /* "" = absent */
        char kernel[256]; /* "" = absent */
};

int proto_encode_hello_reply(struct buf *b, uint8_t type, uint32_t id, const struct proto_hello *h)
    __attribute__((warn_unused_result));
/* PT_VERSION is required; an over-long name or kernel is -ENAMETOOLONG. */
int proto_decode_hello_reply(const uint8_t *payload, size_t len, struct proto_hello *h)
    __attribute__((warn_unused_result));

/*
 * A frame whose payload is one u64 field: STARTED{PT_PID}, OK{PT_SIZE},
 * OK{PT_COUNT}, SIGNAL{PT_SIGNO}. The decoder returns -EPROTO when the field
 * is missing, repeated or not 8 bytes long; other tags are skipped.
 */
int proto_encode_u64_msg(struct buf *b, uint8_t type, uint32_t id, uint16_t tag, uint64_t v)
    __attribute__((warn_unused_result));
int proto_decode_u64_msg(const uint8_t *payload, size_t len, uint16_t tag, uint64_t *v)
    __attribute__((warn_unused_result));

/* STDIN for the EXEC with this id: {PT_DATA}; eof sets PROTO_F_EOF. n <= PROTO_MAX_CHUNK.
 * Decode with proto_decode_data() (stream is 0). */
int proto_encode_stdin(struct buf *b, uint32_t id, const void *p, size_t n, int eof)
    __attribute__((warn_unused_result));
/* The same shape for NET_SEND and NET_RECV (type), id = the stream. */
int proto_encode_chunk(struct buf *b, uint8_t type, uint32_t id, const void *p, size_t n, int eof)
    __attribute__((warn_unused_result));

/* OK reply to STAT: {file_type, mode, size, mtime_ns}; st->name is not sent. */
int proto_encode_stat(struct buf *b, uint32_t id, const struct proto_stat *st)
    __attribute__((warn_unused_result));
/* All four fields are required; mode must be <= 07777, file_type a PROTO_FT_*. */
int proto_decode_stat(const uint8_t *payload, size_t len, struct proto_stat *st)
    __attribute__((warn_unused_result));

/*
 * ENTRIES frames are built with a proto_writer: proto_begin(w, b, PROTO_ENTRIES,
 * 0, id), then proto_put_entry() per entry while proto_payload_len(w) +
 * PROTO_ENTRY_MAX stays under the sender's batch size, then proto_end().
 * A group is PT_NAME followed by PT_FILE_TYPE, PT_MODE, PT_SIZE.
 */
#define PROTO_ENTRY_MAX (6u + 255u + 3u * 14u)
size_t proto_payload_len(const struct proto_writer *w);
/* Sticky -ENAMETOOLONG (name over 255 bytes) or -EINVAL (name "", ".", "..", or with '/'). */
void proto_put_entry(struct proto_writer *w, const struct proto_stat *st);
/*
 * Next entry of an ENTRIES payload: 1 (st filled), 0 (end), -EPROTO
 * (truncated, a field before the first name, a repeated or malformed field,
 * or a name that is empty, ".", "..", contains '/' or NUL: a hostile guest
 * must not be able to hand the host a path component that climbs) or
 * -ENAMETOOLONG. Fields missing from a group read as 0.
 */
int proto_next_entry(struct proto_reader *r, struct proto_stat *st);

/*
 * RESEED: sent first after every restore from a template, before any command.
 * Clones of one snapshot share the guest kernel's RNG state and live at the
 * snapshot's wall-clock time; this gives each its own entropy, the host's
 * time and its sandbox id. All three fields are required.
 */
#define PROTO_RESEED_MIN 32u /* entropy bytes */
#define PROTO_RESEED_MAX 512u
struct proto_reseed {
        uint8_t entropy[PROTO_RESEED_MAX];
        size_t entropy_len; /* PROTO_RESEED_MIN..PROTO_RESEED_MAX */
        uint64_t time_ns;   /* CLOCK_REALTIME of the host */
        char id[64];        /* sandbox id */
};

int proto_encode_reseed(struct buf *b, uint32_t id, const struct proto_reseed *r)
    __attribute__((warn_unused_result));
int proto_decode_reseed(const uint8_t *payload, size_t len, struct proto_reseed *r)
    __attribute__((warn_unused_result));

/* Drop everything buffered (after -EPROTO), keeping the allocation. */
void proto_rx_reset(struct proto_rx *rx);
/* Bytes proto_rx_feed() accepts now; read at most this much from the channel. */
size_t proto_rx_room(const struct proto_rx *rx);

#endif
