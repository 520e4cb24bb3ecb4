/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Corpus replay for builds without libFuzzer (gcc):
 *
 *     replay_proto FILE|DIR...          run the harness over every input
 *     replay_proto --write-seeds DIR    write the seed corpus (valid frames)
 *
 * The seeds are produced by the codec's own encoders so they stay valid as
 * the codec evolves; tests/fuzz/corpus/proto holds the committed copy.
 */
#include "common/buf.h"
#include "proto/proto.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *data;
        long n;

        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) != 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                if (f != NULL)
                        fclose(f);
                return -1;
        }
        data = malloc((size_t)n + 1);
        if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) {
                fprintf(stderr, "replay: %s: short read\n", path);
                free(data);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)n);
        free(data);
        return 0;
}

static int replay(const char *path, int *count)
{
        struct stat st;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return replay_file(path);
        }
        d = opendir(path);
        if (d == NULL)
                return -1;
        while ((de = readdir(d)) != NULL) {
                char sub[4096];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                if (replay(sub, count) < 0)
                        r = -1;
        }
        closedir(d);
        return r;
}

static int save(const char *dir, const char *name, struct buf *b)
{
        char path[4096];
        FILE *f;
        int ok;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "wb");
        if (f == NULL)
                return -1;
        ok = fwrite(buf_head(b), 1, buf_size(b), f) == buf_size(b);
        ok = fclose(f) == 0 && ok;
        buf_reset(b);
        return ok ? 0 : -1;
}

static int write_seeds(const char *dir)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo hi", NULL};
        char *env[] = {(char *)"PATH=/bin", (char *)"A=1", NULL};
        struct proto_exec x = {argv, 3, env, 2, (char *)"/tmp", 5000, PROTO_EXEC_STDIN, NULL};
        struct proto_exit ex = {42, 0, 0}, sig = {0, 9, PROTO_EXIT_SIGNALED | PROTO_EXIT_TIMEOUT};
        struct proto_path_req pr = {"/etc/hostname", 1, 100};
        struct proto_write_file wf = {"/tmp/x", 0600, (const uint8_t *)"content", 7};
        struct proto_stat st = {"entry", PROTO_FT_REG, 0644, 7, 1700000000000000000ull};
        struct proto_hello he = {PROTO_VERSION, "lg-agent", "6.1.0"};
        struct proto_writer w;
        struct buf b = BUF_INIT;
        int r = 0;

        r |= proto_encode_empty(&b, PROTO_HELLO, 1) | save(dir, "hello", &b);
        r |= proto_encode_exec(&b, 2, &x) | save(dir, "exec", &b);
        r |= proto_encode_stdin(&b, 2, "data\n", 5, 1) | save(dir, "stdin", &b);
        r |= proto_encode_u64_msg(&b, PROTO_SIGNAL, 2, PT_SIGNO, 15) | save(dir, "signal", &b);
        r |= proto_encode_path_req(&b, PROTO_READ_FILE, 3, &pr) | save(dir, "read_file", &b);
        r |= proto_encode_write_file(&b, 4, &wf) | save(dir, "write_file", &b);
        r |= proto_encode_path_req(&b, PROTO_LIST, 5, &pr) | save(dir, "list", &b);
        r |= proto_encode_hello_reply(&b, PROTO_READY, 0, &he) | save(dir, "ready", &b);
        r |= proto_encode_u64_msg(&b, PROTO_STARTED, 2, PT_PID, 1234) | save(dir, "started", &b);
        r |= proto_encode_data(&b, 2, 1, "out\n", 4) | save(dir, "data", &b);
        r |= proto_encode_exit(&b, 2, &ex) | save(dir, "exit", &b);
        r |= proto_encode_exit(&b, 2, &sig) | save(dir, "exit_signal", &b);
        r |= proto_encode_error(&b, 3, 2, "open /x: No such file") | save(dir, "error", &b);
        r |= proto_encode_stat(&b, 6, &st) | save(dir, "stat_ok", &b);
        proto_begin(&w, &b, PROTO_ENTRIES, 0, 5);
        proto_put_entry(&w, &st);
        st.file_type = PROTO_FT_DIR;
        snprintf(st.name, sizeof(st.name), "dir");
        proto_put_entry(&w, &st);
        r |= proto_end(&w) | save(dir, "entries", &b);
        /* A conversation: several frames back to back. */
        r |= proto_encode_empty(&b, PROTO_HELLO, 1) | proto_encode_exec(&b, 2, &x) |
             proto_encode_stdin(&b, 2, "x", 1, 0) | proto_encode_exit(&b, 2, &ex) |
             save(dir, "stream", &b);
        buf_free(&b);
        return r ? 1 : 0;
}

int main(int argc, char **argv)
{
        int count = 0, r = 0;

        if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
                return write_seeds(argv[2]);
        if (argc < 2) {
                fprintf(stderr, "usage: replay_proto FILE|DIR... | --write-seeds DIR\n");
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                if (replay(argv[i], &count) < 0)
                        r = 1;
        }
        printf("replay: %d inputs, %s\n", count, r ? "errors" : "ok");
        return r;
}
