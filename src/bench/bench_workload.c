/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard bench workload` (see bench_workload.h). The workloads are
 * shell lines run as an agent would run them; each prints one result that
 * the host knows in advance (a checksum of what it wrote and read back, a
 * computed value), so a figure is only printed for work that was done right.
 */
#include "bench/bench_workload.h"
#include "bench/bench_exec.h"
#include "bench/stats.h"
#include "common/err.h"
#include "common/hostmem.h"
#include "common/monotime.h"
#include "run/run.h"
#include "sandbox/files.h"
#include "sandbox/sandbox.h"
#include "sandbox/spawn.h"
#include "vmm/accel.h"

#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_SIZE 2
/* Bounds of the stability check: growth over the second half of the operations. */
/*
 * The VMM's PSS moves by ±15 MiB between samples under TCG once it has
 * settled (the translation buffer is flushed and refilled). Growth is the
 * median of the last three samples against the median of the three around
 * the middle, which that noise barely moves; 32 MiB over 500 operations
 * still catches a leak of 64 KiB per operation.
 */
#define VMM_GROWTH_MAX_MIB   32.0
#define GUEST_GROWTH_MAX_MIB 8.0

struct workload {
        const char *name;
        const char *what;
        const char *line;  /* run by /bin/sh -c in the guest */
        char expect[4096]; /* its whole stdout */
};

/* The digest md has taken so far, as hex, into hex[65]. */
static void digest_hex(EVP_MD_CTX *md, char *hex)
{
        unsigned char d[32];
        unsigned int dl = 0;

        EVP_DigestFinal_ex(md, d, &dl);
        for (unsigned i = 0; i < dl; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* What the checksum workloads must print: computed here, from what they are told to write. */
static int expectations(struct workload *w, size_t n)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char hex[65], line[32];
        static char block[1 << 16];

        if (md == NULL)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                if (strcmp(w[k].name, "files-1000") == 0) {
                        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
                        for (int i = 1; i <= 1000; i++) {
                                int l = snprintf(line, sizeof(line), "file %d\n", i);

                                EVP_DigestUpdate(md, line, (size_t)l);
                        }
                        digest_hex(md, hex);
                        snprintf(w[k].expect, sizeof(w[k].expect), "%s\n", hex);
                } else if (strcmp(w[k].name, "file-64m") == 0) {
                        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
                        memset(block, 'a', sizeof(block));
                        for (size_t left = 64u << 20; left > 0; left -= sizeof(block))
                                EVP_DigestUpdate(md, block, sizeof(block));
                        digest_hex(md, hex);
                        snprintf(w[k].expect, sizeof(w[k].expect), "%s\n", hex);
                }
        }
        EVP_MD_CTX_free(md);
        return 0;
}

static struct workload workloads[] = {
    {"files-1000", "write 1000 small files, read them back, SHA-256",
     "d=$(mktemp -d) && cd $d && i=1 && while [ $i -le 1000 ]; do echo \"file $i\" >f$i; "
     "i=$((i+1)); done && cat $(seq -f f%g 1000) | sha256sum | cut -d' ' -f1",
     ""},
    {"file-64m", "write a 64 MiB file, read it back, SHA-256",
     "head -c 67108864 /dev/zero | tr '\\000' a >/tmp/big && sha256sum /tmp/big | cut -d' ' -f1 "
     "&& rm /tmp/big",
     ""},
    {"python", "python3: parse JSON, arithmetic, write a file and read it",
     "python3 -c 'import json; d = json.loads(\"{\\\"xs\\\": [1, 2, 3, 4]}\"); "
     "open(\"/tmp/r.json\", \"w\").write(json.dumps({\"sum\": sum(x * x for x in d[\"xs\"])})); "
     "print(open(\"/tmp/r.json\").read())'",
     "{\"sum\": 30}\n"},
    {"python-venv", "python3 -m venv, then its interpreter",
     "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'import sys; print(sys.prefix)'", "/tmp/v\n"},
    {"node", "node: compute, write a file and read it",
     "node -e 'const fs = require(\"fs\"); fs.writeFileSync(\"/tmp/n.json\", "
     "JSON.stringify({n: [1, 2, 3].reduce((a, b) => a + b)})); "
     "console.log(fs.readFileSync(\"/tmp/n.json\", \"utf8\"))'",
     "{\"n\":6}\n"},
    {"git", "git: init, commit, diff, commit, log",
     "cd $(mktemp -d) && git init -q && git config user.email b@lg && git config user.name b "
     "&& echo one >a && git add a && git commit -qm one && echo two >>a && "
     "git diff --stat | tail -1 && git commit -qam two && git log --oneline | wc -l",
     " 1 file changed, 1 insertion(+)\n2\n"},
};

#define NW (sizeof(workloads) / sizeof(workloads[0]))

static int check_result(const struct workload *w, const struct run_result *res, struct lg_err **err)
{
        if (res->exit_code == 0 && res->signo == 0 && !res->timed_out &&
            strcmp(res->out ? res->out : "", w->expect) == 0)
                return 0;
        return err_set(err, LG_EK_INTERNAL, 0,
                       "workload %s gave a wrong result (exit %d, signal %d): stdout [%.200s] "
                       "want [%.200s], stderr [%.300s]",
                       w->name, res->exit_code, res->signo, res->out ? res->out : "", w->expect,
                       res->err ? res->err : "");
}

static struct run_request request(const struct workload *w, char *argv[4])
{
        argv[0] = (char *)"/bin/sh";
        argv[1] = (char *)"-c";
        argv[2] = (char *)w->line;
        argv[3] = NULL;
        return (struct run_request){.argv = argv, .argc = 3, .timeout_ms = 600000, .image = "full"};
}

/* The guest's used memory (MemTotal - MemAvailable) in MiB, read through the agent. */
static double guest_used_mib(struct sandbox *sb)
{
        char *text = NULL;
        size_t len = 0;
        int trunc = 0;
        long total = -1, avail = -1;
        struct lg_err *err = NULL;

        if (sandbox_read_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, "/proc/meminfo", 16384,
                              &text, &len, &trunc, &err) < 0) {
                err_free(&err);
                return -1;
        }
        for (char *p = text; p != NULL && p < text + len; p = strchr(p, '\n'), p = p ? p + 1 : p) {
                sscanf(p, "MemTotal: %ld kB", &total);
                sscanf(p, "MemAvailable: %ld kB", &avail);
        }
        free(text);
        return total > 0 && avail >= 0 ? (double)(total - avail) / 1024.0 : -1;
}

static double median3(const double *v)
{
        double a = v[0], b = v[1], c = v[2];

        return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

static double vmm_pss_mib(struct sandbox *sb)
{
        long pss, priv;

        hostmem_process(sandbox_vmm_pid(sb), &pss, &priv);
        return pss >= 0 ? (double)pss / 1024.0 : -1;
}

/* One small operation, number i: a file written, read back, or a command. */
static int small_op(const char *home, struct sandbox *sb, unsigned i, struct lg_err **err)
{
        char path[64], data[4096], *back = NULL, line[64], want[32];
        size_t len = 0;
        int trunc = 0, r;

        snprintf(path, sizeof(path), "/tmp/op%u", i % 10);
        memset(data, 'a' + (int)(i % 26), sizeof(data));
        switch (i % 3) {
        case 0:
                return sandbox_write_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, path, data,
                                          sizeof(data), 0644, err);
        case 1:
                snprintf(path, sizeof(path), "/tmp/op%u", (i - 1) % 10);
                r = sandbox_read_file(sandbox_agent(sb), sandbox_vmm_pidfd(sb), -1, path,
                                      sizeof(data), &back, &len, &trunc, err);
                if (r == 0 && (len != sizeof(data) || back[0] != 'a' + (int)((i - 1) % 26)))
                        r = err_set(err, LG_EK_INTERNAL, 0, "op %u: %s read back wrong", i, path);
                free(back);
                return r;
        default: {
                char *argv[] = {(char *)"/bin/sh", (char *)"-c", line, NULL};
                struct run_request rq = {.argv = argv, .argc = 3, .timeout_ms = 60000};
                struct run_result res = {0};

                snprintf(line, sizeof(line), "echo $((%u * %u))", i, i);
                snprintf(want, sizeof(want), "%llu\n", (unsigned long long)i * i);
                r = run_exec_on(home, sandbox_id(sb), sandbox_agent(sb), sandbox_vmm_pidfd(sb), &rq,
                                -1, &res, err);
                if (r == 0 && strcmp(res.out ? res.out : "", want) != 0)
                        r = err_set(err, LG_EK_INTERNAL, 0, "op %u: [%s] want [%s]", i,
                                    res.out ? res.out : "", want);
                run_result_free(&res);
                return r;
        }
        }
}

/* Each workload once more, and then the small operations, in one sandbox. */
static int stability(const char *home, const struct bench_workload_opts *o, FILE *out,
                     struct lg_err **err)
{
        struct spawn_opts so = {.image = "full",
                                .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
                                .cpus = SANDBOX_DEFAULT_CPUS,
                                .boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS,
                                .intr_fd = -1,
                                .build_image = 1};
        struct sandbox *sb = NULL;
        enum spawn_path how;
        struct lg_err *derr = NULL;
        int r;

        if (sandbox_spawn(home, &so, &sb, &how, err) < 0)
                return -1;
        fprintf(out, "\n  memory after each workload, in one sandbox (MiB):\n");
        fprintf(out, "  %-14s %12s %12s\n", "workload", "VMM PSS", "guest used");
        fprintf(out, "  %-14s %12.1f %12.1f\n", "(idle)", vmm_pss_mib(sb), guest_used_mib(sb));
        r = 0;
        for (size_t k = 0; r == 0 && k < NW; k++) {
                char *argv[4];
                struct run_request rq = request(&workloads[k], argv);
                struct run_result res = {0};

                if (o->only != NULL && strcmp(o->only, workloads[k].name) != 0)
                        continue;
                r = run_exec_on(home, sandbox_id(sb), sandbox_agent(sb), sandbox_vmm_pidfd(sb), &rq,
                                -1, &res, err);
                if (r == 0)
                        r = check_result(&workloads[k], &res, err);
                run_result_free(&res);
                if (r == 0)
                        fprintf(out, "  %-14s %12.1f %12.1f\n", workloads[k].name, vmm_pss_mib(sb),
                                guest_used_mib(sb));
        }
        /*
         * Sampled every tenth. A VMM's memory grows while the guest first
         * touches its RAM and TCG translates new code, up to the guest's
         * size plus the translation buffer; a leak keeps growing. So the
         * bound is on the second half, after that first touch settles.
         */
        double pss[11], used[11], t0 = (double)mono_ns();
        unsigned step = o->ops / 10 ? o->ops / 10 : 1, s = 0;

        pss[0] = vmm_pss_mib(sb);
        used[0] = guest_used_mib(sb);
        for (unsigned i = 0; r == 0 && i < o->ops; i++) {
                r = small_op(home, sb, i, err);
                if (r == 0 && (i + 1) % step == 0 && s < 10) {
                        s++;
                        pss[s] = vmm_pss_mib(sb);
                        used[s] = guest_used_mib(sb);
                }
        }
        if (r == 0 && s < 4)
                r = err_set(err, LG_EK_USAGE, 0, "--ops %u: too few to judge (at least 4)", o->ops);
        for (unsigned k = 0; r == 0 && k <= s; k++)
                if (pss[k] < 0 || used[k] < 0)
                        r = err_set(err, LG_EK_INTERNAL, 0,
                                    "the sandbox's memory could not be read (sample %u)", k);
        if (r == 0) {
                double secs = ((double)mono_ns() - t0) / 1e9;
                unsigned h = s / 2;
                double dp = median3(&pss[s - 2]) - median3(&pss[h - 1]),
                       du = median3(&used[s - 2]) - median3(&used[h - 1]);

                fprintf(out,
                        "\n  stability: %u operations in one sandbox (file write, read back, "
                        "command; %.1f ops/s)\n  VMM PSS every %u ops (MiB):",
                        o->ops, (double)o->ops / (secs > 0 ? secs : 1), step);
                for (unsigned k = 0; k <= s; k++)
                        fprintf(out, " %.0f", pss[k]);
                fprintf(out, "\n  guest used every %u ops (MiB):", step);
                for (unsigned k = 0; k <= s; k++)
                        fprintf(out, " %.0f", used[k]);
                fprintf(out,
                        "\n  second half (ops %u to %u, medians of 3 samples): VMM PSS %+.1f "
                        "MiB (bound %.0f), guest used %+.1f MiB (bound %.0f)\n",
                        h * step, s * step, dp, VMM_GROWTH_MAX_MIB, du, GUEST_GROWTH_MAX_MIB);
                if (dp > VMM_GROWTH_MAX_MIB || du > GUEST_GROWTH_MAX_MIB)
                        r = err_set(err, LG_EK_INTERNAL, 0,
                                    "memory grew past its bound over the second half of %u "
                                    "operations",
                                    o->ops);
        }
        if (sandbox_destroy(sb, &derr) < 0) {
                if (r == 0)
                        r = err_code(derr), *err = derr, derr = NULL;
                err_free(&derr);
        }
        return r;
}

int bench_workload(const char *home, const struct bench_workload_opts *o, FILE *out,
                   struct lg_err **err)
{
        char self[PATH_MAX];
        double *ms = calloc(o->runs, sizeof(double));
        pid_t pool = -1;
        int r = 0, any = 0;

        if (ms == NULL || bench_self(self, sizeof(self)) < 0 || expectations(workloads, NW) < 0) {
                free(ms);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "bench workload");
        }
        {
                const char *args[] = {self,   "pool",   "serve", "--image",
                                      "full", "--size", "2",     NULL};
                int p = bench_exec(args, 0, NULL, NULL);

                if (p < 0) {
                        r = err_set(err, LG_EK_INTERNAL, -p, "start a pool");
                        goto out;
                }
                pool = (pid_t)p;
                /* The first pool of the full image may build it (~2 min) and its template. */
                if (bench_pool_wait_idle(home, POOL_SIZE, 900000) < 0) {
                        r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not fill");
                        goto out;
                }
        }
        fprintf(out,
                "bench workload: full image, %u runs each, spawn to checked result on a warm "
                "pool of %d (ms)\n",
                o->runs, POOL_SIZE);
        fprintf(out, "  %-14s %6s %9s %9s   %s\n", "workload", "n", "p50", "p95", "what");
        for (size_t k = 0; r == 0 && k < NW; k++) {
                const struct workload *w = &workloads[k];
                struct stats st;

                if (o->only != NULL && strcmp(o->only, w->name) != 0)
                        continue;
                any = 1;
                for (unsigned i = 0; r == 0 && i < o->runs; i++) {
                        char *argv[4];
                        struct run_request rq = request(w, argv);
                        struct run_result res = {0};
                        uint64_t t0 = mono_ns();

                        r = run_capture(home, &rq, -1, &res, err);
                        ms[i] = (double)(mono_ns() - t0) / 1e6;
                        if (r == 0)
                                r = check_result(w, &res, err);
                        run_result_free(&res);
                        /* Each run gets a pool hit, as a steady stream of requests would. */
                        if (r == 0 && bench_pool_wait_idle(home, POOL_SIZE, 120000) < 0)
                                r = err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
                }
                if (r < 0)
                        break;
                stats_compute(ms, o->runs, &st);
                fprintf(out, "  %-14s %6u %9.1f %9.1f   %s\n", w->name, o->runs, st.p50, st.p95,
                        w->what);
        }
        if (r == 0 && !any)
                r = err_set(err, LG_EK_USAGE, 0, "no workload is called %s", o->only);
        if (r == 0 && o->ops > 0)
                r = stability(home, o, out, err);
        if (r == 0) {
                char why[256];

                fprintf(out,
                        "\n  accelerator: %s. Under TCG every guest instruction is "
                        "emulated and the interpreters'\n  start-up dominates these "
                        "figures; they hold for this host only.\n",
                        accel_name(accel_choose(home, why, sizeof(why))));
        }
out:
        if (pool > 0) {
                kill(pool, SIGTERM);
                while (waitpid(pool, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        free(ms);
        return r;
}
