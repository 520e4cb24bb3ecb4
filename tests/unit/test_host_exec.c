/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host half of EXEC (src/sandbox/exec.c) on a socketpair: against the
 * real lg-agent, and against a hostile "guest" that is this test writing
 * crafted frames. A hostile guest must end the call with LG_EK_LOST and a
 * clear message, never a crash, a hang or a wrong exit status.
 */
#include "common/buf.h"
#include "common/err.h"
#include "proto/proto.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct peer {
        struct agent_conn c;
        int guest; /* the other end */
        int out[2], errp[2];
};

static void peer_open(struct peer *p)
{
        int sv[2];

        CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        CHECK_EQ_INT(agent_conn_init(&p->c, sv[0]), 0);
        p->guest = sv[1];
        CHECK_EQ_INT(pipe2(p->out, O_CLOEXEC | O_NONBLOCK), 0);
        CHECK_EQ_INT(pipe2(p->errp, O_CLOEXEC | O_NONBLOCK), 0);
}

static void peer_close(struct peer *p)
{
        agent_conn_free(&p->c);
        if (p->guest >= 0)
                close(p->guest);
        close(p->out[0]);
        close(p->out[1]);
        close(p->errp[0]);
        close(p->errp[1]);
}

/* Run `argv` through agent_exec; returns its result, fills res and *err. */
static int run(struct peer *p, const char *const *argv, int in_fd, struct sandbox_exec_result *res,
               struct lg_err **err)
{
        struct proto_exec x;
        size_t n = 0;

        while (argv[n] != NULL)
                n++;
        memset(&x, 0, sizeof(x));
        x.argv = (char **)argv;
        x.argc = n;
        x.timeout_ms = 10000;
        struct sandbox_exec_io io = {
            .in_fd = in_fd, .out_fd = p->out[1], .err_fd = p->errp[1], .intr_fd = -1};
        return agent_exec(&p->c, -1, &x, &io, res, err);
}

static size_t drain(int fd, char *out, size_t cap)
{
        ssize_t n = read(fd, out, cap - 1);

        out[n > 0 ? n : 0] = '\0';
        return n > 0 ? (size_t)n : 0;
}

/* Queue raw bytes from the "guest" before the host starts reading. */
static void guest_write(struct peer *p, const void *data, size_t n)
{
        CHECK_EQ_INT(write(p->guest, data, n), (ssize_t)n);
}

static void guest_frame(struct peer *p, struct buf *b)
{
        guest_write(p, buf_head(b), buf_size(b));
        buf_reset(b);
}

/* ---- the real agent ---------------------------------------------------- */

static pid_t start_agent(struct peer *p)
{
        const char *bin = getenv("LG_AGENT_BIN") ? getenv("LG_AGENT_BIN") : "build/bin/lg-agent";
        pid_t pid = fork();

        if (pid == 0) {
                dup2(p->guest, 3);
                execl(bin, bin, "--fd", "3", (char *)NULL);
                _exit(127);
        }
        close(p->guest);
        p->guest = -1;
        return pid;
}

static void wait_ready(struct peer *p)
{
        struct proto_hdr h;
        const uint8_t *payload;
        int r;

        for (int i = 0; i < 500; i++) {
                struct pollfd pf = {.fd = p->c.fd, .events = POLLIN};

                poll(&pf, 1, 20);
                (void)agent_conn_fill(&p->c);
                r = agent_conn_next(&p->c, &h, &payload);
                if (r == 1) {
                        CHECK_EQ_INT(h.type, PROTO_READY);
                        return;
                }
        }
        CHECK(!"agent never sent READY");
}

TEST(real_agent_exit_output_stdin)
{
        static const char *const sh[] = {"sh", "-c", "cat; echo err >&2; exit 7", NULL};
        struct sandbox_exec_result res;
        struct lg_err *err = NULL;
        struct peer p;
        char buf[256];
        int in[2], status;
        pid_t pid;

        if (access(getenv("LG_AGENT_BIN") ? getenv("LG_AGENT_BIN") : "build/bin/lg-agent", X_OK) !=
            0) {
                CHECK(!"lg-agent not built: run make");
                return;
        }
        peer_open(&p);
        pid = start_agent(&p);
        wait_ready(&p);
        CHECK_EQ_INT(pipe2(in, O_CLOEXEC), 0);
        CHECK_EQ_INT(write(in[1], "piped input\n", 12), 12);
        close(in[1]);
        CHECK_EQ_INT(run(&p, sh, in[0], &res, &err), 0);
        close(in[0]);
        CHECK_EQ_INT(res.exit_code, 7);
        CHECK_EQ_INT(res.signo, 0);
        drain(p.out[0], buf, sizeof(buf));
        CHECK_EQ_STR(buf, "piped input\n");
        drain(p.errp[0], buf, sizeof(buf));
        CHECK_EQ_STR(buf, "err\n");
        CHECK_EQ_INT(res.out_bytes, 12);
        err_free(&err);
        peer_close(&p);
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- a hostile guest --------------------------------------------------- */

static const char *const true_argv[] = {"true", NULL};

static void expect_lost(struct peer *p, const char *needle)
{
        struct sandbox_exec_result res;
        struct lg_err *err = NULL;

        CHECK(run(p, true_argv, -1, &res, &err) < 0);
        CHECK(err != NULL && err->kind == LG_EK_LOST);
        if (err != NULL && strstr(err->msg, needle) == NULL) {
                fprintf(stderr, "    message \"%s\" lacks \"%s\"\n", err->msg, needle);
                CHECK(!"message");
        }
        err_free(&err);
}

TEST(hostile_oversized_frame)
{
        uint8_t hdr[PROTO_HDR_SIZE] = {0x4c, 0x47, PROTO_DATA, 0,    1,    0,
                                       0,    0,    0xff,       0xff, 0xff, 0x7f};
        struct peer p;

        peer_open(&p);
        guest_write(&p, hdr, sizeof(hdr));
        expect_lost(&p, "oversized frame");
        peer_close(&p);
}

TEST(hostile_bad_magic)
{
        struct peer p;

        peer_open(&p);
        guest_write(&p, "GET / HTTP/1.1\r\n\r\n", 18);
        expect_lost(&p, "corrupt stream");
        peer_close(&p);
}

TEST(hostile_bad_stream_number)
{
        struct buf b = BUF_INIT;
        struct peer p;

        peer_open(&p);
        CHECK_EQ_INT(proto_encode_u64_msg(&b, PROTO_STARTED, 1, PT_PID, 42), 0);
        CHECK_EQ_INT(proto_encode_data(&b, 1, 2, "fine\n", 5), 0);
        guest_frame(&p, &b);
        /* Stream 0 is file content, not command output. */
        CHECK_EQ_INT(proto_encode_data(&b, 1, 0, "x", 1), 0);
        guest_frame(&p, &b);
        expect_lost(&p, "malformed output frame");
        buf_free(&b);
        peer_close(&p);
}

TEST(hostile_truncated_exit_and_wrong_type)
{
        uint8_t junk[PROTO_HDR_SIZE + 3] = {0x4c, 0x47, PROTO_EXIT, 0, 1,    0,    0,   0,
                                            3,    0,    0,          0, 0xde, 0xad, 0xbe};
        struct buf b = BUF_INIT;
        struct peer p;

        peer_open(&p);
        guest_write(&p, junk, sizeof(junk));
        expect_lost(&p, "malformed EXIT");
        peer_close(&p);

        peer_open(&p);
        CHECK_EQ_INT(proto_encode_empty(&b, PROTO_LIST, 1), 0);
        guest_frame(&p, &b);
        expect_lost(&p, "unexpected frame");
        buf_free(&b);
        peer_close(&p);
}

TEST(guest_gone_mid_call)
{
        struct peer p;
        pid_t pid;
        int status;

        peer_open(&p);
        /* A guest that accepts the EXEC, says it started, then vanishes. */
        pid = fork();
        if (pid == 0) {
                struct buf b = BUF_INIT;
                char tmp[4096];

                if (read(p.guest, tmp, sizeof(tmp)) <= 0 ||
                    proto_encode_u64_msg(&b, PROTO_STARTED, 1, PT_PID, 42) < 0 ||
                    write(p.guest, buf_head(&b), buf_size(&b)) < 0)
                        _exit(1);
                _exit(0);
        }
        close(p.guest);
        p.guest = -1;
        expect_lost(&p, "closed the channel");
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        peer_close(&p);
}

TEST(frames_for_other_ids_are_ignored)
{
        struct sandbox_exec_result res;
        struct lg_err *err = NULL;
        struct proto_exit ex = {.exit_code = 3};
        struct buf b = BUF_INIT;
        struct peer p;

        peer_open(&p);
        CHECK_EQ_INT(proto_encode_data(&b, 99, 1, "not ours", 8), 0);
        CHECK_EQ_INT(proto_encode_exit(&b, 1, &ex), 0);
        guest_frame(&p, &b);
        CHECK_EQ_INT(run(&p, true_argv, -1, &res, &err), 0);
        CHECK_EQ_INT(res.exit_code, 3);
        CHECK_EQ_INT(res.out_bytes, 0);
        err_free(&err);
        buf_free(&b);
        peer_close(&p);
}
