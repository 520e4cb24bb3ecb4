/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small protocol client for tests: starts build/bin/lg-agent --fd 3 on a
 * socketpair and collects its replies per request id. Header-only so that
 * the unit build (one .c per test binary) picks it up without Makefile work.
 */
#ifndef LG_TESTS_AGENT_CLIENT_H
#define LG_TESTS_AGENT_CLIENT_H

#include "common/buf.h"
#include "common/monotime.h"
#include "proto/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENT_MAXRES 16

struct res {
        uint32_t id;
        int used;
        int started;
        uint64_t pid;
        struct buf data[3]; /* READ_FILE content, stdout, stderr */
        struct buf names;   /* LIST: "name type mode size\n" per entry */
        size_t nentries;
        int done;
        uint8_t final; /* PROTO_EXIT, PROTO_ERROR or PROTO_OK */
        struct proto_exit ex;
        struct proto_error er;
        uint8_t ok[512]; /* OK payload */
        size_t oklen;
};

struct client {
        int fd;
        pid_t pid;
        struct proto_rx rx;
        struct buf out;
        struct res res[CLIENT_MAXRES];
        int ready;
        int id0_errors, id0_errno;
        int stray;
        int eof;
        /* The egress tunnel (NET_* frames from the agent). */
        uint32_t net_open;    /* the last stream the agent opened */
        struct buf net_data;  /* NET_RECV bytes */
        int net_eof, net_rst; /* flags seen on NET_RECV */
        uint64_t net_acked;   /* NET_RECV_ACK bytes */
};

static const char *client_agent_path(void)
{
        static char path[PATH_MAX];
        char exe[PATH_MAX];
        const char *env = getenv("LG_AGENT_BIN");
        ssize_t n;

        if (env != NULL && env[0] != '\0')
                return env;
        /* build/tests/test_x -> build/bin/lg-agent (build-san likewise) */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                char *s;

                exe[n] = '\0';
                s = strrchr(exe, '/');
                if (s != NULL) {
                        *s = '\0';
                        s = strrchr(exe, '/');
                }
                if (s != NULL && (size_t)(s - exe) + sizeof("/bin/lg-agent") <= sizeof(path)) {
                        memcpy(path, exe, (size_t)(s - exe));
                        memcpy(path + (s - exe), "/bin/lg-agent", sizeof("/bin/lg-agent"));
                        if (access(path, X_OK) == 0)
                                return path;
                }
        }
        return "build/bin/lg-agent";
}

static struct res *client_res(struct client *c, uint32_t id)
{
        for (int i = 0; i < CLIENT_MAXRES; i++) {
                if (c->res[i].used && c->res[i].id == id)
                        return &c->res[i];
        }
        return NULL;
}

/* Forget an old result for id and start collecting a new one. */
static struct res *client_expect(struct client *c, uint32_t id)
{
        struct res *r = client_res(c, id);

        for (int i = 0; r == NULL && i < CLIENT_MAXRES; i++) {
                if (!c->res[i].used)
                        r = &c->res[i];
        }
        if (r == NULL)
                abort();
        for (int s = 0; s < 3; s++)
                buf_free(&r->data[s]);
        buf_free(&r->names);
        memset(r, 0, sizeof(*r));
        r->used = 1;
        r->id = id;
        return r;
}

static void client_frame(struct client *c, const struct proto_hdr *h, const uint8_t *p)
{
        struct res *r;

        if (h->type == PROTO_READY) {
                c->ready++;
                return;
        }
        if (h->type == PROTO_NET_OPEN) {
                c->net_open = h->id;
                return;
        }
        if (h->type == PROTO_NET_RECV) {
                unsigned st;
                const uint8_t *d;
                size_t n;

                c->net_eof |= (h->flags & PROTO_F_EOF) != 0;
                c->net_rst |= (h->flags & PROTO_F_RST) != 0;
                if (h->len > 0 && (proto_decode_data(p, h->len, &st, &d, &n) < 0 ||
                                   buf_append(&c->net_data, d, n) < 0))
                        c->stray++;
                return;
        }
        if (h->type == PROTO_NET_RECV_ACK) {
                uint64_t v;

                if (proto_decode_u64_msg(p, h->len, PT_SIZE, &v) == 0)
                        c->net_acked += v;
                else
                        c->stray++;
                return;
        }
        if (h->id == 0 && h->type == PROTO_ERROR) {
                struct proto_error e;

                c->id0_errors++;
                if (proto_decode_error(p, h->len, &e) == 0)
                        c->id0_errno = e.errnum;
                return;
        }
        r = client_res(c, h->id);
        if (r == NULL || r->done) {
                c->stray++;
                return;
        }
        switch (h->type) {
        case PROTO_STARTED:
                r->started = proto_decode_u64_msg(p, h->len, PT_PID, &r->pid) == 0;
                break;
        case PROTO_DATA: {
                unsigned st;
                const uint8_t *d;
                size_t n;

                if (proto_decode_data(p, h->len, &st, &d, &n) == 0 &&
                    buf_append(&r->data[st], d, n) == 0)
                        break;
                c->stray++;
                break;
        }
        case PROTO_ENTRIES: {
                struct proto_reader rd;
                struct proto_stat st;
                char line[400];
                int k;

                proto_reader_init(&rd, p, h->len);
                while ((k = proto_next_entry(&rd, &st)) == 1) {
                        snprintf(line, sizeof(line), "%s %u %o %llu\n", st.name, st.file_type,
                                 st.mode, (unsigned long long)st.size);
                        if (buf_append(&r->names, line, strlen(line)) < 0)
                                abort();
                        r->nentries++;
                }
                if (k < 0)
                        c->stray++;
                break;
        }
        case PROTO_EXIT:
                r->done = proto_decode_exit(p, h->len, &r->ex) == 0 ? 1 : -1;
                r->final = h->type;
                break;
        case PROTO_ERROR:
                r->done = proto_decode_error(p, h->len, &r->er) == 0 ? 1 : -1;
                r->final = h->type;
                break;
        case PROTO_OK:
                r->done = 1;
                r->final = h->type;
                r->oklen = h->len < sizeof(r->ok) ? h->len : sizeof(r->ok);
                memcpy(r->ok, p, r->oklen);
                break;
        default:
                c->stray++;
                break;
        }
}

/* One round of I/O: write what we can, read and dispatch what came. */
static void client_io(struct client *c, int timeout_ms)
{
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        uint8_t tmp[65536];
        struct proto_hdr h;
        const uint8_t *p;
        ssize_t n;
        int r;

        if (buf_size(&c->out) > 0)
                pfd.events |= POLLOUT;
        if (poll(&pfd, 1, timeout_ms) <= 0)
                return;
        if (pfd.revents & POLLOUT) {
                n = write(c->fd, buf_head(&c->out), buf_size(&c->out));
                if (n > 0)
                        buf_consume(&c->out, (size_t)n);
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
                size_t room = proto_rx_room(&c->rx);

                n = read(c->fd, tmp, room < sizeof(tmp) ? room : sizeof(tmp));
                if (n == 0)
                        c->eof = 1;
                if (n > 0 && proto_rx_feed(&c->rx, tmp, (size_t)n) < 0)
                        abort();
        }
        while ((r = proto_rx_next(&c->rx, &h, &p)) == 1)
                client_frame(c, &h, p);
        if (r < 0)
                c->stray++;
}

/* Run I/O until every listed id is done (0) or timeout_ms passed (-ETIMEDOUT). */
static int client_wait_ids(struct client *c, const uint32_t *ids, size_t nids, int timeout_ms)
{
        uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

        for (;;) {
                size_t ok = 0;

                for (size_t i = 0; i < nids; i++) {
                        struct res *r = client_res(c, ids[i]);

                        ok += r != NULL && r->done;
                }
                if (ok == nids)
                        return 0;
                if (mono_ms() >= deadline || c->eof)
                        return -ETIMEDOUT;
                client_io(c, mono_left_ms(deadline));
        }
}

static struct res *client_wait(struct client *c, uint32_t id, int timeout_ms)
{
        client_wait_ids(c, &id, 1, timeout_ms);
        return client_res(c, id);
}

/* Run I/O until pred is true or timeout. */
#define CLIENT_UNTIL(c, cond, timeout_ms)                                                          \
        do {                                                                                       \
                uint64_t _dl = mono_ms() + (timeout_ms);                                           \
                while (!(cond) && mono_ms() < _dl && !(c)->eof)                                    \
                        client_io((c), mono_left_ms(_dl));                                         \
        } while (0)

/* Start the agent; 0 or -errno (SKIP printed when the binary is missing). */
static int client_start(struct client *c)
{
        const char *bin = client_agent_path();
        int sv[2];

        memset(c, 0, sizeof(*c));
        if (access(bin, X_OK) != 0) {
                printf("SKIP: lg-agent not built (%s); run make build/bin/lg-agent\n", bin);
                return -ENOENT;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        c->pid = fork();
        if (c->pid < 0)
                return -errno;
        if (c->pid == 0) {
                if (dup2(sv[1], 3) < 0)
                        _exit(126);
                execl(bin, "lg-agent", "--fd", "3", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        c->fd = sv[0];
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        if (proto_rx_init(&c->rx) < 0)
                return -ENOMEM;
        CLIENT_UNTIL(c, c->ready > 0, 5000);
        return c->ready > 0 ? 0 : -ETIMEDOUT;
}

/* Close the channel; the agent must exit 0 within 5 s. Returns its wait status or -1. */
static int client_stop(struct client *c)
{
        uint64_t deadline = mono_ms() + 5000;
        int status = -1;

        if (c->fd > 0)
                close(c->fd);
        c->fd = -1;
        while (c->pid > 0 && mono_ms() < deadline) {
                pid_t w = waitpid(c->pid, &status, WNOHANG);

                if (w == c->pid)
                        break;
                usleep(10000);
                status = -1;
        }
        if (status == -1 && c->pid > 0) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, NULL, 0);
        }
        proto_rx_free(&c->rx);
        buf_free(&c->out);
        for (int i = 0; i < CLIENT_MAXRES; i++) {
                for (int s = 0; s < 3; s++)
                        buf_free(&c->res[i].data[s]);
                buf_free(&c->res[i].names);
        }
        return status;
}

#endif
