/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real lg-agent on a socketpair, driven through the protocol: no root,
 * no VM, no mock. Each test starts a fresh agent and checks that it exits 0
 * when the channel closes.
 */
#include "agent_client.h"
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <sys/stat.h>

static void send_exec(struct client *c, uint32_t id, const char *const *argv,
                      const char *const *env, const char *cwd, uint64_t timeout_ms, uint64_t flags)
{
        struct proto_exec x = {0};
        size_t argc = 0, envc = 0;

        while (argv[argc] != NULL)
                argc++;
        while (env != NULL && env[envc] != NULL)
                envc++;
        x.argv = (char **)argv;
        x.argc = argc;
        x.env = (char **)env;
        x.envc = envc;
        x.cwd = (char *)cwd;
        x.timeout_ms = timeout_ms;
        x.flags = flags;
        client_expect(c, id);
        CHECK_EQ_INT(proto_encode_exec(&c->out, id, &x), 0);
}

static void send_path(struct client *c, uint8_t type, uint32_t id, const char *path,
                      uint64_t offset, uint64_t length)
{
        struct proto_path_req r = {.offset = offset, .length = length};

        snprintf(r.path, sizeof(r.path), "%s", path);
        client_expect(c, id);
        CHECK_EQ_INT(proto_encode_path_req(&c->out, type, id, &r), 0);
}

/* Run argv to completion; returns the result (never NULL). */
static struct res *run(struct client *c, uint32_t id, const char *const *argv)
{
        send_exec(c, id, argv, NULL, NULL, 0, 0);
        return client_wait(c, id, 10000);
}

static int stdout_is(const struct res *r, const char *s)
{
        size_t n = strlen(s);

        return buf_size(&r->data[1]) == n && memcmp(buf_head(&r->data[1]), s, n) == 0;
}

#define START(c)                                                                                   \
        struct client c;                                                                           \
        if (client_start(&c) < 0) {                                                                \
                CHECK(!"agent did not start");                                                     \
                client_stop(&c);                                                                   \
                return;                                                                            \
        }

#define STOP(c) CHECK_EQ_INT(client_stop(&c), 0)

TEST(hello)
{
        struct proto_hello h;
        struct res *r;

        START(c);
        client_expect(&c, 1);
        CHECK_EQ_INT(proto_encode_empty(&c.out, PROTO_HELLO, 1), 0);
        r = client_wait(&c, 1, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        CHECK_EQ_INT(proto_decode_hello_reply(r->ok, r->oklen, &h), 0);
        CHECK_EQ_INT(h.version, PROTO_VERSION);
        CHECK_EQ_STR(h.name, "lg-agent");
        CHECK(h.kernel[0] != '\0');
        STOP(c);
}

TEST(exit_codes)
{
        static const char *const t[] = {"true", NULL}, *const f[] = {"false", NULL},
                                 *const e42[] = {"sh", "-c", "exit 42", NULL},
                                 *const echo[] = {"echo", "hello", NULL};
        struct res *r;

        START(c);
        r = run(&c, 1, t);
        CHECK(r->started && r->pid > 0);
        CHECK_EQ_INT(r->final, PROTO_EXIT);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK_EQ_INT(r->ex.flags, 0);
        r = run(&c, 2, f);
        CHECK_EQ_INT(r->ex.exit_code, 1);
        r = run(&c, 3, e42);
        CHECK_EQ_INT(r->ex.exit_code, 42);
        r = run(&c, 4, echo);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK(stdout_is(r, "hello\n"));
        CHECK_EQ_INT(c.stray, 0);
        STOP(c);
}

TEST(signal_death_and_signal_request)
{
        static const char *const selfkill[] = {"sh", "-c", "kill -9 $$", NULL}, *const sleeper[] = {
                                                                                    "sleep", "100",
                                                                                    NULL};
        struct proto_writer w;
        struct res *r;

        START(c);
        r = run(&c, 1, selfkill);
        CHECK_EQ_INT(r->final, PROTO_EXIT);
        CHECK_EQ_INT(r->ex.flags, PROTO_EXIT_SIGNALED);
        CHECK_EQ_INT(r->ex.signo, SIGKILL);

        send_exec(&c, 2, sleeper, NULL, NULL, 0, 0);
        CLIENT_UNTIL(&c, client_res(&c, 2)->started, 5000);
        proto_begin(&w, &c.out, PROTO_SIGNAL, 0, 2);
        proto_put_u64(&w, PT_SIGNO, SIGTERM);
        CHECK_EQ_INT(proto_end(&w), 0);
        /* A signal for an id nobody knows is ignored. */
        CHECK_EQ_INT(proto_encode_u64_msg(&c.out, PROTO_SIGNAL, 999, PT_SIGNO, SIGTERM), 0);
        r = client_wait(&c, 2, 5000);
        CHECK_EQ_INT(r->final, PROTO_EXIT);
        CHECK_EQ_INT(r->ex.signo, SIGTERM);
        CHECK_EQ_INT(c.id0_errors, 0);
        STOP(c);
}

TEST(stdout_stderr_separate)
{
        static const char *const argv[] = {"sh", "-c", "echo out; echo err >&2; echo out2", NULL};
        struct res *r;

        START(c);
        r = run(&c, 7, argv);
        CHECK(stdout_is(r, "out\nout2\n"));
        CHECK_EQ_INT(buf_size(&r->data[2]), 4);
        CHECK(memcmp(buf_head(&r->data[2]), "err\n", 4) == 0);
        STOP(c);
}

TEST(stdin_round_trip)
{
        static const char *const cat[] = {"cat", NULL}, *const nostdin[] = {"cat", NULL};
        static uint8_t big[1 << 20];
        struct res *r;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 7 + (i >> 12));
        START(c);
        send_exec(&c, 1, cat, NULL, NULL, 0, PROTO_EXEC_STDIN);
        for (size_t off = 0; off < sizeof(big); off += PROTO_MAX_CHUNK)
                CHECK_EQ_INT(proto_encode_stdin(&c.out, 1, big + off, PROTO_MAX_CHUNK, 0), 0);
        CHECK_EQ_INT(proto_encode_stdin(&c.out, 1, NULL, 0, 1), 0);
        r = client_wait(&c, 1, 20000);
        CHECK_EQ_INT(r->final, PROTO_EXIT);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK_EQ_INT(buf_size(&r->data[1]), sizeof(big));
        CHECK(buf_size(&r->data[1]) == sizeof(big) &&
              memcmp(buf_head(&r->data[1]), big, sizeof(big)) == 0);
        /* Without PROTO_EXEC_STDIN the child reads EOF at once (/dev/null). */
        r = run(&c, 2, nostdin);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK_EQ_INT(buf_size(&r->data[1]), 0);
        STOP(c);
}

TEST(env_and_cwd)
{
        static const char *const env[] = {"env", NULL}, *const pwd[] = {"pwd", NULL};
        static const char *const vars[] = {"FOO=bar", "X=1", NULL};
        static const char *const withpath[] = {"PATH=/bin:/usr/bin", "HOME=/w", NULL};
        char want[PATH_MAX + 256];
        struct res *r;

        START(c);
        send_exec(&c, 1, env, vars, NULL, 0, 0);
        r = client_wait(&c, 1, 5000);
        /* Exactly the given environment plus the default PATH and the agent's HOME. */
        snprintf(want, sizeof(want),
                 "FOO=bar\nX=1\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/"
                 "bin:/sbin:/bin\nHOME=%s\n",
                 getenv("HOME")  ? getenv("HOME")
                 : getuid() == 0 ? "/root"
                                 : "/tmp");
        CHECK(stdout_is(r, want));
        send_exec(&c, 2, env, withpath, NULL, 0, 0);
        r = client_wait(&c, 2, 5000);
        CHECK(stdout_is(r, "PATH=/bin:/usr/bin\nHOME=/w\n"));
        send_exec(&c, 3, pwd, NULL, "/tmp", 0, 0);
        r = client_wait(&c, 3, 5000);
        CHECK(stdout_is(r, "/tmp\n"));
        r = run(&c, 4, pwd);
        CHECK(stdout_is(r, "/\n"));
        send_exec(&c, 5, pwd, NULL, "/nonexistent-dir", 0, 0);
        r = client_wait(&c, 5, 5000);
        CHECK_EQ_INT(r->final, PROTO_ERROR);
        CHECK_EQ_INT(r->er.errnum, ENOENT);
        CHECK(strstr(r->er.message, "chdir /nonexistent-dir") != NULL);
        STOP(c);
}

TEST(one_mib_output_intact)
{
        static const char *const argv[] = {"sh", "-c", "yes 0123456789abcdef | head -c 1048576",
                                           NULL};
        struct res *r;
        int ok = 1;

        START(c);
        r = run(&c, 1, argv);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK_EQ_INT(buf_size(&r->data[1]), 1048576);
        for (size_t i = 0; i < buf_size(&r->data[1]) && ok; i++)
                ok = buf_head(&r->data[1])[i] == "0123456789abcdef\n"[i % 17];
        CHECK(ok);
        STOP(c);
}

TEST(timeout_kills_process_group)
{
        static const char *const argv[] = {"sh", "-c", "sleep 100 & echo $!; sleep 100", NULL};
        uint64_t t0 = mono_ms();
        struct res *r;
        int bg, gone = 0;

        START(c);
        send_exec(&c, 1, argv, NULL, NULL, 300, 0);
        r = client_wait(&c, 1, 10000);
        CHECK_EQ_INT(r->final, PROTO_EXIT);
        CHECK_EQ_INT(r->ex.flags, PROTO_EXIT_SIGNALED | PROTO_EXIT_TIMEOUT);
        CHECK_EQ_INT(r->ex.signo, SIGKILL);
        CHECK(mono_ms() - t0 < 3000);
        /* The background sleep was in the group: it must be gone (reaped by the subreaper). */
        bg = atoi(buf_size(&r->data[1]) > 0 ? (char *)buf_head(&r->data[1]) : "0");
        CHECK(bg > 0);
        for (int i = 0; i < 200 && bg > 0 && !gone; i++) {
                gone = kill(bg, 0) < 0 && errno == ESRCH;
                usleep(10000);
        }
        CHECK(gone);
        STOP(c);
}

TEST(two_execs_in_flight)
{
        static const char *const a[] = {"sh", "-c", "read x; echo A$x", NULL}, *const b[] = {"echo",
                                                                                             "B",
                                                                                             NULL};
        uint32_t both[] = {1, 2};
        struct res *r;

        START(c);
        send_exec(&c, 1, a, NULL, NULL, 0, PROTO_EXEC_STDIN);
        send_exec(&c, 2, b, NULL, NULL, 0, 0);
        r = client_wait(&c, 2, 5000);
        CHECK(stdout_is(r, "B\n"));
        CHECK(!client_res(&c, 1)->done); /* still waiting for its input */
        /* The busy id cannot be reused while it runs. */
        send_exec(&c, 1, b, NULL, NULL, 0, 0);
        r = client_wait(&c, 1, 5000);
        CHECK_EQ_INT(r->final, PROTO_ERROR);
        CHECK_EQ_INT(r->er.errnum, EBUSY);
        client_expect(&c, 1);
        CHECK_EQ_INT(proto_encode_stdin(&c.out, 1, "7\n", 2, 1), 0);
        CHECK_EQ_INT(client_wait_ids(&c, both, 2, 5000), 0);
        CHECK(stdout_is(client_res(&c, 1), "A7\n"));
        STOP(c);
}

TEST(missing_command)
{
        static const char *const argv[] = {"no-such-command-lg", NULL}, *const abs[] = {
                                                                            "/nonexistent/bin",
                                                                            NULL};
        struct res *r;

        START(c);
        r = run(&c, 1, argv);
        CHECK_EQ_INT(r->final, PROTO_ERROR);
        CHECK_EQ_INT(r->er.errnum, ENOENT);
        CHECK(strstr(r->er.message, "exec no-such-command-lg") != NULL);
        CHECK(!r->started);
        r = run(&c, 2, abs);
        CHECK_EQ_INT(r->er.errnum, ENOENT);
        STOP(c);
}

TEST(file_operations)
{
        char dir[] = "/tmp/lg-agent-test-XXXXXX", path[PATH_MAX], sub[PATH_MAX];
        static uint8_t content[300000];
        struct proto_write_file wf = {0};
        struct proto_stat st;
        uint64_t v;
        struct res *r;

        for (size_t i = 0; i < sizeof(content); i++)
                content[i] = (uint8_t)(i ^ (i >> 8));
        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/file.bin", dir);
        snprintf(sub, sizeof(sub), "%s/subdir", dir);
        CHECK_EQ_INT(mkdir(sub, 0750), 0);
        START(c);

        snprintf(wf.path, sizeof(wf.path), "%s", path);
        wf.mode = 0640;
        wf.data = content;
        wf.len = sizeof(content);
        client_expect(&c, 1);
        CHECK_EQ_INT(proto_encode_write_file(&c.out, 1, &wf), 0);
        r = client_wait(&c, 1, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        CHECK_EQ_INT(proto_decode_u64_msg(r->ok, r->oklen, PT_SIZE, &v), 0);
        CHECK_EQ_INT(v, sizeof(content));

        send_path(&c, PROTO_READ_FILE, 2, path, 0, 0);
        r = client_wait(&c, 2, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        CHECK_EQ_INT(buf_size(&r->data[0]), sizeof(content));
        CHECK(buf_size(&r->data[0]) == sizeof(content) &&
              memcmp(buf_head(&r->data[0]), content, sizeof(content)) == 0);

        send_path(&c, PROTO_READ_FILE, 3, path, 1000, 70000);
        r = client_wait(&c, 3, 5000);
        CHECK_EQ_INT(proto_decode_u64_msg(r->ok, r->oklen, PT_SIZE, &v), 0);
        CHECK_EQ_INT(v, 70000);
        CHECK(buf_size(&r->data[0]) == 70000 &&
              memcmp(buf_head(&r->data[0]), content + 1000, 70000) == 0);

        send_path(&c, PROTO_STAT, 4, path, 0, 0);
        r = client_wait(&c, 4, 5000);
        CHECK_EQ_INT(proto_decode_stat(r->ok, r->oklen, &st), 0);
        CHECK_EQ_INT(st.file_type, PROTO_FT_REG);
        CHECK_EQ_INT(st.mode, 0640);
        CHECK_EQ_INT(st.size, sizeof(content));
        CHECK(st.mtime_ns > 0);

        send_path(&c, PROTO_LIST, 5, dir, 0, 0);
        r = client_wait(&c, 5, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        CHECK_EQ_INT(proto_decode_u64_msg(r->ok, r->oklen, PT_COUNT, &v), 0);
        CHECK_EQ_INT(v, 2);
        CHECK_EQ_INT(r->nentries, 2);
        CHECK(buf_append(&r->names, "", 1) == 0);
        CHECK(strstr((char *)buf_head(&r->names), "file.bin 1 640 300000\n") != NULL);
        CHECK(strstr((char *)buf_head(&r->names), "subdir 2 750 ") != NULL);

        /* Errors: missing file, relative and empty paths, a directory, not a directory. */
        send_path(&c, PROTO_READ_FILE, 6, "/nonexistent/x", 0, 0);
        CHECK_EQ_INT(client_wait(&c, 6, 5000)->er.errnum, ENOENT);
        send_path(&c, PROTO_STAT, 7, "relative/path", 0, 0);
        CHECK_EQ_INT(client_wait(&c, 7, 5000)->er.errnum, EINVAL);
        send_path(&c, PROTO_LIST, 8, "", 0, 0);
        CHECK_EQ_INT(client_wait(&c, 8, 5000)->er.errnum, EINVAL);
        send_path(&c, PROTO_READ_FILE, 9, dir, 0, 0);
        CHECK_EQ_INT(client_wait(&c, 9, 5000)->er.errnum, EISDIR);
        send_path(&c, PROTO_LIST, 10, path, 0, 0);
        CHECK_EQ_INT(client_wait(&c, 10, 5000)->er.errnum, ENOTDIR);
        snprintf(wf.path, sizeof(wf.path), "%s/missing-dir/f", dir);
        client_expect(&c, 11);
        CHECK_EQ_INT(proto_encode_write_file(&c.out, 11, &wf), 0);
        CHECK_EQ_INT(client_wait(&c, 11, 5000)->er.errnum, ENOENT);
        STOP(c);

        unlink(path);
        rmdir(sub);
        CHECK_EQ_INT(rmdir(dir), 0); /* no temp file left behind */
}

/* Raw frame bytes: header with any fields. */
static void raw_frame(struct buf *b, uint16_t magic, uint8_t type, uint32_t id, uint32_t len,
                      const void *payload, size_t n)
{
        uint8_t h[12] = {(uint8_t)magic, (uint8_t)(magic >> 8), type, 0};

        for (int i = 0; i < 4; i++) {
                h[4 + i] = (uint8_t)(id >> (8 * i));
                h[8 + i] = (uint8_t)(len >> (8 * i));
        }
        if (buf_append(b, h, sizeof(h)) < 0 || buf_append(b, payload, n) < 0)
                abort();
}

TEST(malformed_frames)
{
        static uint8_t junk[PROTO_MAX_PAYLOAD + 100];
        static const uint8_t truncated[] = {PT_ARG, 0, 100, 0, 0, 0, 'l', 's'};
        static const char *const echo[] = {"echo", "still", "alive", NULL};
        struct res *r;

        START(c);
        client_expect(&c, 1);
        raw_frame(&c.out, PROTO_MAGIC, 200, 1, 0, NULL, 0);
        r = client_wait(&c, 1, 5000);
        CHECK_EQ_INT(r->final, PROTO_ERROR);
        CHECK_EQ_INT(r->er.errnum, ENOSYS);

        client_expect(&c, 2);
        raw_frame(&c.out, PROTO_MAGIC, PROTO_EXEC, 2, sizeof(truncated), truncated,
                  sizeof(truncated));
        CHECK_EQ_INT(client_wait(&c, 2, 5000)->er.errnum, EPROTO);

        client_expect(&c, 3);
        raw_frame(&c.out, PROTO_MAGIC, PROTO_EXEC, 3, 0, NULL, 0); /* no argv */
        CHECK_EQ_INT(client_wait(&c, 3, 5000)->er.errnum, EPROTO);

        /* Oversized: answered, its payload skipped, the next frame served. */
        client_expect(&c, 4);
        raw_frame(&c.out, PROTO_MAGIC, PROTO_EXEC, 4, sizeof(junk), junk, sizeof(junk));
        send_exec(&c, 5, echo, NULL, NULL, 0, 0);
        r = client_wait(&c, 4, 10000);
        CHECK_EQ_INT(r->er.errnum, EMSGSIZE);
        r = client_wait(&c, 5, 10000);
        CHECK(stdout_is(r, "still alive\n"));

        /* A reply type sent as a request. */
        client_expect(&c, 6);
        raw_frame(&c.out, PROTO_MAGIC, PROTO_OK, 6, 0, NULL, 0);
        CHECK_EQ_INT(client_wait(&c, 6, 5000)->er.errnum, ENOSYS);

        /* Bad magic: a stream-level error, then the agent serves the next frames. */
        raw_frame(&c.out, 0xdead, PROTO_HELLO, 7, 0, NULL, 0);
        CLIENT_UNTIL(&c, c.id0_errors > 0, 5000);
        CHECK_EQ_INT(c.id0_errors, 1);
        CHECK_EQ_INT(c.id0_errno, EPROTO);
        r = run(&c, 8, echo);
        CHECK(stdout_is(r, "still alive\n"));
        CHECK_EQ_INT(c.stray, 0);
        STOP(c);
}

TEST(shutdown_replies_then_exits)
{
        struct res *r;
        int status = -1;

        START(c);
        client_expect(&c, 9);
        CHECK_EQ_INT(proto_encode_empty(&c.out, PROTO_SHUTDOWN, 9), 0);
        r = client_wait(&c, 9, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        for (int i = 0; i < 500 && waitpid(c.pid, &status, WNOHANG) == 0; i++)
                usleep(10000);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        c.pid = 0;
        client_stop(&c);
}

/* From /proc/<pid>: peak resident KiB and CPU ticks used. */
static void proc_usage(pid_t pid, long *hwm_kib, long *ticks)
{
        char path[64], line[256];
        unsigned long ut = 0, st = 0;
        FILE *f;

        *hwm_kib = *ticks = -1;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
                if (sscanf(line, "VmHWM: %ld", hwm_kib) == 1)
                        break;
        }
        if (f != NULL)
                fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "r");
        if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
                char *p = strrchr(line, ')');

                if (p != NULL &&
                    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                           &st) == 2)
                        *ticks = (long)(ut + st);
        }
        if (f != NULL)
                fclose(f);
}

TEST(backpressure_bounds_memory_and_never_spins)
{
        static const char *const argv[] = {"head", "-c", "33554432", "/dev/zero", NULL};
        long hwm, t0, t1;
        struct res *r;
        int zeros = 1;

        START(c);
        /* Idle: the agent sleeps in poll(). */
        proc_usage(c.pid, &hwm, &t0);
        usleep(500000);
        proc_usage(c.pid, &hwm, &t1);
        CHECK(t1 - t0 <= 5);

        /* 32 MiB of output and a host that does not read for a second. */
        send_exec(&c, 1, argv, NULL, NULL, 0, 0);
        while (buf_size(&c.out) > 0)
                client_io(&c, 100);
        usleep(200000);
        proc_usage(c.pid, &hwm, &t0);
        usleep(1000000);
        proc_usage(c.pid, &hwm, &t1);
        CHECK(t1 - t0 <= 10); /* blocked, not spinning */
        CHECK(hwm > 0 && hwm < 24 * 1024);
        r = client_wait(&c, 1, 30000);
        CHECK_EQ_INT(r->ex.exit_code, 0);
        CHECK_EQ_INT(buf_size(&r->data[1]), 33554432);
        for (size_t i = 0; i < buf_size(&r->data[1]) && zeros; i += 4093)
                zeros = buf_head(&r->data[1])[i] == 0;
        CHECK(zeros);
        STOP(c);
}

/*
 * Random frames of every type that cannot change the machine (no EXEC,
 * WRITE_FILE or SHUTDOWN: this may run as root) with random fields; the
 * agent must answer what needs answering and stay up.
 */
TEST(random_frames_keep_agent_alive)
{
        static const uint8_t types[] = {PROTO_HELLO, PROTO_STDIN, PROTO_SIGNAL, PROTO_READ_FILE,
                                        PROTO_STAT,  PROTO_LIST,  PROTO_OK,     PROTO_DATA,
                                        0,           77,          255};
        uint32_t seed = 12345;
        struct res *r;

        START(c);
        for (uint32_t i = 0; i < 3000; i++) {
                uint8_t payload[256];
                size_t n = 0;
                int nfields;

                seed = seed * 1103515245u + 12345u;
                nfields = (int)(seed >> 28);
                for (int k = 0; k < nfields && n + 6 + 16 <= sizeof(payload); k++) {
                        uint32_t len;

                        seed = seed * 1103515245u + 12345u;
                        len = (seed >> 8) % 17;
                        payload[n] = (uint8_t)(1 + (seed >> 16) % 26); /* mostly known tags */
                        payload[n + 1] = 0;
                        /* Sometimes lie about the length. */
                        len = (seed & 0xf) == 0 ? len + 1000 : len;
                        memcpy(payload + n + 2, &len, 4);
                        n += 6;
                        for (uint32_t j = 0; j < len && n < sizeof(payload); j++)
                                payload[n++] = (uint8_t)((seed >> (j % 24)) | (j == 0 ? '/' : 0));
                }
                raw_frame(&c.out, PROTO_MAGIC, types[seed % sizeof(types)], 1000 + i, (uint32_t)n,
                          payload, n);
                client_io(&c, 0);
        }
        client_expect(&c, 1);
        CHECK_EQ_INT(proto_encode_empty(&c.out, PROTO_HELLO, 1), 0);
        r = client_wait(&c, 1, 20000);
        CHECK_EQ_INT(r->final, PROTO_OK);
        STOP(c);
}

/* Poll the client and the agent until cond holds or 5 s pass. */
#define WAIT_FOR(c, cond)                                                                          \
        do {                                                                                       \
                for (int _i = 0; _i < 500 && !(cond); _i++)                                        \
                        client_io(&(c), 10);                                                       \
        } while (0)

TEST(net_tunnel_guest_end)
{
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        unsigned port = 20000 + (unsigned)getpid() % 20000;
        char got[16] = "";
        struct res *r;
        int fd;

        START(c);
        /* A port out of range is refused; a good one is listened on. */
        client_expect(&c, 1);
        CHECK_EQ_INT(proto_encode_u64_msg(&c.out, PROTO_NET_ENABLE, 1, PT_PORT, 70000), 0);
        r = client_wait(&c, 1, 5000);
        CHECK_EQ_INT(r->final, PROTO_ERROR);
        client_expect(&c, 2);
        CHECK_EQ_INT(proto_encode_u64_msg(&c.out, PROTO_NET_ENABLE, 2, PT_PORT, port), 0);
        r = client_wait(&c, 2, 5000);
        CHECK_EQ_INT(r->final, PROTO_OK);

        /* A client connects: a stream opens, its bytes arrive as NET_RECV. */
        sin.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
        WAIT_FOR(c, c.net_open != 0);
        CHECK(c.net_open != 0 && (c.net_open & 1) == 1);
        CHECK_EQ_INT(write(fd, "ping", 4), 4);
        WAIT_FOR(c, buf_size(&c.net_data) >= 4);
        CHECK(buf_size(&c.net_data) == 4 && memcmp(buf_head(&c.net_data), "ping", 4) == 0);

        /* NET_SEND reaches the client and is acknowledged. */
        CHECK_EQ_INT(proto_encode_chunk(&c.out, PROTO_NET_SEND, c.net_open, "pong", 4, 0), 0);
        WAIT_FOR(c, c.net_acked >= 4);
        CHECK_EQ_INT(c.net_acked, 4);
        CHECK_EQ_INT(read(fd, got, sizeof(got)), 4);
        CHECK(memcmp(got, "pong", 4) == 0);

        /* The client half-closes: EOF, not a reset; the host's EOF then closes it. */
        CHECK(shutdown(fd, SHUT_WR) == 0);
        WAIT_FOR(c, c.net_eof);
        CHECK(c.net_eof && !c.net_rst);
        CHECK_EQ_INT(proto_encode_chunk(&c.out, PROTO_NET_SEND, c.net_open, "bye", 3, 1), 0);
        WAIT_FOR(c, c.net_acked >= 7);
        CHECK_EQ_INT(read(fd, got, sizeof(got)), 3);
        CHECK_EQ_INT(read(fd, got, sizeof(got)), 0); /* closed after the last bytes */
        close(fd);

        /* A client that vanishes mid-stream is a reset. */
        c.net_open = 0;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
        WAIT_FOR(c, c.net_open != 0);
        {
                struct linger l = {1, 0}; /* close with RST */

                setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(fd);
        CHECK_EQ_INT(proto_encode_chunk(&c.out, PROTO_NET_SEND, c.net_open, "x", 1, 0), 0);
        WAIT_FOR(c, c.net_rst);
        CHECK(c.net_rst);
        CHECK_EQ_INT(c.stray, 0);
        buf_free(&c.net_data);
        STOP(c);
}
