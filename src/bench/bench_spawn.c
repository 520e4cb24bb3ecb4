/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/bench_spawn.h"
#include "bench/bench_exec.h"
#include "bench/stats.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/monotime.h"
#include "image/image.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"
#include "sandbox/sandbox.h"
#include "sandbox/template.h"
#include "sandbox/template_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum row {
        ROW_HIT,              /* pool hit: request -> descriptors of a ready, reseeded sandbox */
        ROW_RUN_POOL,         /* `luminaguard run -- true`, new process, warm pool */
        ROW_PRESTARTED,       /* pool miss: restore into a QEMU process already waiting -> ready */
        ROW_RESTORE,          /* new QEMU process restored from the template -> reseeded, ready */
        ROW_RESTORE_COPY,     /* the same, copying the template's RAM first (no pool) */
        ROW_RESTORE_UNJAILED, /* the same as ROW_RESTORE, VMM not jailed: the jail's cost */
        ROW_STREAMED,         /* peer: new QEMU process, RAM streamed from the state file */
        ROW_COLD,             /* cold boot -> agent ready */
        ROW_COUNT,
};

static const char *const row_key[ROW_COUNT] = {"pool_hit",
                                               "run_true_warm_pool",
                                               "restore_prestarted",
                                               "restore",
                                               "restore_own_ram_copy",
                                               "restore_unjailed",
                                               "restore_streamed_ram_peer",
                                               "cold_boot"};
static const char *const row_name[ROW_COUNT] = {
    "pool hit -> agent ready",
    "run -- true, end to end, warm pool",
    "pool miss: restore, pre-started process",
    "restore from template, new process",
    "  same, own RAM copy (run without pool)",
    "  same, VMM not jailed",
    "peer: restore, RAM streamed in state",
    "cold boot -> agent ready",
};

struct bench {
        const char *home;
        const struct bench_spawn_opts *o;
        struct image_paths img;
        struct template tpl;
        struct template_loaded loaded; /* as the pool holds it */
        struct template_shape shape;
        char streamed[PATH_MAX + 32]; /* the peer's state file, RAM included */
        double *v[ROW_COUNT];
        size_t n[ROW_COUNT];
        pid_t pool;
};

static void add(struct bench *b, enum row r, double ms)
{
        b->v[r][b->n[r]++] = ms;
}

/* The bench's VM shape restoring from ram/state (see restore_once). */
static struct sandbox_opts clone_opts(const struct bench *b, const char *ram, const char *state,
                                      const struct template_loaded *loaded)
{
        return (struct sandbox_opts){
            .ram_file = ram,
            .restore_state = state,
            .loaded = loaded,
            .accel = b->shape.accel,
            .memory_mib = b->shape.memory_mib,
            .cpus = b->shape.cpus,
            .boot_timeout_ms = 60000,
            .intr_fd = -1,
        };
}

/*
 * One sandbox from the given state (template or streamed): ms to ready.
 * loaded: the template opened once and shared, as the pool does; NULL: this
 * sandbox opens and copies it, as a `run` without a pool does.
 */
static int restore_once(struct bench *b, const char *ram, const char *state,
                        const struct template_loaded *loaded, double *ms, struct lg_err **err)
{
        struct sandbox_opts so = clone_opts(b, ram, state, loaded);
        struct sandbox *sb = NULL;
        int r = sandbox_create(b->home, &so, &sb, err);

        if (r < 0)
                return r;
        *ms = sandbox_ready_ms(sb);
        return sandbox_destroy(sb, err);
}

/*
 * A pool miss served by a pre-started process: QEMU already waits in
 * `-incoming defer` (as in the pool, started before the request); the
 * sample is restore + reseed -> ready.
 */
static int prestarted_once(struct bench *b, double *ms, struct lg_err **err)
{
        struct sandbox_opts so = clone_opts(b, b->tpl.ram, b->tpl.state, &b->loaded);
        struct sandbox *sb = NULL;
        int r = sandbox_prestart(b->home, &so, &sb, err);

        if (r < 0)
                return r;
        usleep(20000); /* a pooled process has long finished starting up */
        r = sandbox_resume(sb, &so, err);
        if (r < 0)
                return r;
        *ms = sandbox_ready_ms(sb);
        return sandbox_destroy(sb, err);
}

static int cold_once(struct bench *b, const char *save_to, double *ms, struct lg_err **err)
{
        struct sandbox_opts so = {
            .image = &b->img,
            .accel = b->shape.accel,
            .memory_mib = b->shape.memory_mib,
            .cpus = b->shape.cpus,
            .boot_timeout_ms = 120000,
            .intr_fd = -1,
            .full_ram_snapshot = save_to != NULL,
        };
        struct sandbox *sb = NULL;
        int r = sandbox_create(b->home, &so, &sb, err);

        if (r < 0)
                return r;
        if (ms != NULL)
                *ms = sandbox_ready_ms(sb);
        if (save_to != NULL)
                r = sandbox_snapshot(sb, save_to, err);
        if (sandbox_destroy(sb, r < 0 ? NULL : err) < 0 && r == 0)
                r = -EBUSY;
        return r;
}

/* `luminaguard ARGS...` (this binary); a run's stderr to /dev/null, the pool's stays visible. */
static int self_run(const char *args[], double *ms, int *status)
{
        static char self[PATH_MAX];
        int r = bench_self(self, sizeof(self));

        if (r < 0)
                return r;
        args[0] = self;
        return bench_exec(args, args[1] != NULL && strcmp(args[1], "run") == 0, ms, status);
}

static int start_pool(struct bench *b, unsigned n, struct lg_err **err)
{
        char size[16];
        const char *args[] = {"luminaguard", "pool", "serve", "--size", size, NULL};
        int r;

        snprintf(size, sizeof(size), "%u", n);
        r = self_run(args, NULL, NULL);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "start the pool");
        b->pool = (pid_t)r;
        /* Generous: under TCG a restore and warm-up takes ~0.25 s per sandbox. */
        if (bench_pool_wait_idle(b->home, n, 60000 + (int)n * 2000) < 0)
                return err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not fill");
        return 0;
}

static void stop_pool(struct bench *b)
{
        if (b->pool <= 0)
                return;
        kill(b->pool, SIGTERM);
        while (waitpid(b->pool, NULL, 0) < 0 && errno == EINTR)
                ;
        b->pool = 0;
}

/* Acquire and release once; the sample is the client-side time to a ready sandbox. */
static int hit_once(struct bench *b, double *ms, int *hit, struct lg_err **err)
{
        struct pool_lease l;
        uint64_t t0 = mono_ns();
        struct pool_request rq = {.image = "base",
                                  .image_key = b->img.key,
                                  .memory_mib = b->shape.memory_mib,
                                  .cpus = b->shape.cpus,
                                  .backend = "vm"};
        int r = pool_acquire(b->home, &rq, -1, &l, err);

        if (r < 0)
                return r == -ENOENT || r == -ECONNREFUSED
                           ? err_set(err, LG_EK_START, -r, "the pool went away")
                           : r;
        *ms = (double)(mono_ns() - t0) / 1e6;
        *hit = l.hit;
        pool_release(&l);
        return 0;
}

/*
 * A steady stream: one acquire every 1/rate s, released at once (the pool
 * then destroys and replaces that sandbox). Returns the hit rate.
 */
static int stream(struct bench *b, double *rate, uint64_t *total, struct lg_err **err)
{
        uint64_t period = 1000000000ull / b->o->rate, next = mono_ns(), hits = 0, n = 0;
        uint64_t end = next + (uint64_t)b->o->stream_secs * 1000000000ull;

        while (next < end) {
                double ms;
                int hit, r;

                r = hit_once(b, &ms, &hit, err);
                if (r < 0)
                        return r;
                hits += (uint64_t)hit;
                n++;
                next += period;
                uint64_t now = mono_ns();
                if (next > now) {
                        struct timespec ts = {(time_t)((next - now) / 1000000000u),
                                              (long)((next - now) % 1000000000u)};
                        nanosleep(&ts, NULL);
                }
        }
        *rate = n ? (double)hits / (double)n : 0;
        *total = n;
        return 0;
}

static json_t *row_json(struct bench *b, enum row r, struct stats *st)
{
        stats_compute(b->v[r], b->n[r], st);
        return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)st->n, "min_ms", st->min,
                         "p50_ms", st->p50, "p95_ms", st->p95, "p99_ms", st->p99, "max_ms",
                         st->max);
}

/* Rows whose p50 is more than 10% above the baseline's (the seeds' regression rule). */
static int compare(const char *path, json_t *rows, FILE *out)
{
        json_t *base = json_load_file(path, 0, NULL);
        int worse = 0;

        if (base == NULL) {
                fprintf(out, "baseline %s: unreadable, not compared\n", path);
                return 0;
        }
        for (int r = 0; r < ROW_COUNT; r++) {
                double now =
                    json_number_value(json_object_get(json_object_get(rows, row_key[r]), "p50_ms"));
                double was = json_number_value(json_object_get(
                    json_object_get(json_object_get(base, "rows"), row_key[r]), "p50_ms"));

                if (was <= 0 || now <= 0)
                        continue;
                if (now > was * 1.10) {
                        fprintf(out, "REGRESSION %-40s p50 %.2f ms vs %.2f ms (+%.0f%%)\n",
                                row_name[r], now, was, (now / was - 1) * 100);
                        worse = 1;
                }
        }
        json_decref(base);
        return worse;
}

/* Per idle sandbox of the running pool: PSS and private memory now, CPU over 10 s. */
static json_t *idle_figures(struct bench *b)
{
        json_t *before = bench_pool_json(b->home), *after, *idle = json_array(), *s;
        size_t i;

        sleep(10);
        after = bench_pool_json(b->home);
        json_array_foreach(json_object_get(after, "idle_sandboxes"), i, s)
        {
                json_t *s0 = json_array_get(json_object_get(before, "idle_sandboxes"), i);
                double hz = (double)json_integer_value(json_object_get(after, "clock_ticks_per_s"));
                json_int_t dt = json_integer_value(json_object_get(s, "cpu_ticks")) -
                                json_integer_value(json_object_get(s0, "cpu_ticks"));

                if (!json_equal(json_object_get(s, "pid"), json_object_get(s0, "pid")))
                        continue; /* replaced meanwhile: no CPU figure */
                json_array_append_new(
                    idle, json_pack("{s:O,s:O,s:f}", "pss_kib", json_object_get(s, "pss_kib"),
                                    "private_kib", json_object_get(s, "private_kib"), "cpu_percent",
                                    hz > 0 ? (double)dt / hz / 10.0 * 100 : -1));
        }
        json_decref(before);
        json_decref(after);
        return idle;
}

/* N idle sandboxes held at once: totals of idle_figures(). */
static int hold(struct bench *b, FILE *out, json_t *extra, struct lg_err **err)
{
        double pss = 0, priv = 0, cpu = 0, cpu_max = 0;
        json_t *idle, *s;
        size_t i, n;
        int r;

        fprintf(out, "holding %u idle sandboxes...\n", b->o->hold);
        stop_pool(b);
        r = start_pool(b, b->o->hold, err);
        if (r < 0)
                return r;
        idle = idle_figures(b);
        stop_pool(b);
        n = json_array_size(idle);
        json_array_foreach(idle, i, s)
        {
                double c = json_real_value(json_object_get(s, "cpu_percent"));

                pss += (double)json_integer_value(json_object_get(s, "pss_kib")) / 1024;
                priv += (double)json_integer_value(json_object_get(s, "private_kib")) / 1024;
                cpu += c;
                cpu_max = c > cpu_max ? c : cpu_max;
        }
        json_decref(idle);
        json_object_set_new(extra, "hold",
                            json_pack("{s:i,s:I,s:f,s:f,s:f,s:f}", "asked", (int)b->o->hold,
                                      "measured", (json_int_t)n, "total_pss_mib", pss,
                                      "total_private_mib", priv, "mean_cpu_percent",
                                      n ? cpu / (double)n : 0, "max_cpu_percent", cpu_max));
        return 0;
}

static int run_rows(struct bench *b, FILE *out, json_t *extra, struct lg_err **err)
{
        double ms;
        int r, hit, status;

        fprintf(out, "restore rows and their peer (%u each, interleaved)...\n", b->o->runs);
        for (unsigned i = 0; i < b->o->runs; i++) {
                r = restore_once(b, b->tpl.ram, b->tpl.state, &b->loaded, &ms, err);
                if (r < 0)
                        return r;
                add(b, ROW_RESTORE, ms);
                r = restore_once(b, b->tpl.ram, b->tpl.state, NULL, &ms, err);
                if (r < 0)
                        return r;
                add(b, ROW_RESTORE_COPY, ms);
                setenv("LUMINAGUARD_JAIL", "off", 1);
                r = restore_once(b, b->tpl.ram, b->tpl.state, &b->loaded, &ms, err);
                unsetenv("LUMINAGUARD_JAIL");
                if (r < 0)
                        return r;
                add(b, ROW_RESTORE_UNJAILED, ms);
                r = prestarted_once(b, &ms, err);
                if (r < 0)
                        return r;
                add(b, ROW_PRESTARTED, ms);
                r = restore_once(b, NULL, b->streamed, NULL, &ms, err);
                if (r < 0)
                        return r;
                add(b, ROW_STREAMED, ms);
        }
        fprintf(out, "cold boot row (%u)...\n", b->o->cold_runs);
        for (unsigned i = 0; i < b->o->cold_runs; i++) {
                r = cold_once(b, NULL, &ms, err);
                if (r < 0)
                        return r;
                add(b, ROW_COLD, ms);
        }
        fprintf(out, "pool rows (pool of %u)...\n", b->o->pool_size);
        r = start_pool(b, b->o->pool_size, err);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < b->o->runs; i++) {
                const char *args[] = {"luminaguard", "run", "--", "true", NULL};

                /* Each sample starts from a full pool: this row is about hits. */
                if (bench_pool_wait_idle(b->home, b->o->pool_size, 60000) < 0)
                        return err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
                r = hit_once(b, &ms, &hit, err);
                if (r < 0)
                        return r;
                add(b, ROW_HIT, ms);
                if (bench_pool_wait_idle(b->home, b->o->pool_size, 60000) < 0)
                        return err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
                r = self_run(args, &ms, &status);
                if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return err_set(err, LG_EK_START, r < 0 ? -r : 0,
                                       "'luminaguard run -- true' failed");
                add(b, ROW_RUN_POOL, ms);
        }
        /* Idle sandboxes: memory now, CPU over 10 s of doing nothing. */
        if (bench_pool_wait_idle(b->home, b->o->pool_size, 60000) < 0)
                return err_set(err, LG_EK_START, ETIMEDOUT, "the pool did not refill");
        json_object_set_new(extra, "idle_sandboxes", idle_figures(b));

        double rate = 0;
        uint64_t total = 0;

        fprintf(out, "steady stream: %u requests/s for %u s...\n", b->o->rate, b->o->stream_secs);
        r = bench_pool_wait_idle(b->home, b->o->pool_size, 60000);
        if (r == 0)
                r = stream(b, &rate, &total, err);
        if (r < 0)
                return r;
        json_object_set_new(extra, "stream",
                            json_pack("{s:i,s:i,s:i,s:I,s:f}", "rate_per_s", (int)b->o->rate,
                                      "seconds", (int)b->o->stream_secs, "pool_size",
                                      (int)b->o->pool_size, "requests", (json_int_t)total,
                                      "hit_rate", rate));
        return b->o->hold > 0 ? hold(b, out, extra, err) : 0;
}

static void print_report(const struct bench *b, const struct stats *st, json_t *extra, FILE *out)
{
        size_t i;
        json_t *s;

        fprintf(out, "\n%-40s %5s %8s %8s %8s %8s %8s\n", "row (ms)", "n", "min", "p50", "p95",
                "p99", "max");
        for (int r = 0; r < ROW_COUNT; r++)
                fprintf(out, "%-40s %5zu %8.2f %8.2f %8.2f %8.2f %8.2f\n", row_name[r], st[r].n,
                        st[r].min, st[r].p50, st[r].p95, st[r].p99, st[r].max);
        fprintf(out, "\nrestore / streamed-RAM peer (p50): %.3f\n",
                st[ROW_RESTORE].p50 / st[ROW_STREAMED].p50);
        fprintf(out, "pre-started / streamed-RAM peer (p50): %.3f\n",
                st[ROW_PRESTARTED].p50 / st[ROW_STREAMED].p50);
        fprintf(out, "restore jailed / unjailed (p50):   %.3f\n",
                st[ROW_RESTORE].p50 / st[ROW_RESTORE_UNJAILED].p50);
        fprintf(out, "pool hit / cold boot (p50):        %.4f\n",
                st[ROW_HIT].p50 / st[ROW_COLD].p50);
        json_t *sm = json_object_get(extra, "stream");
        fprintf(out, "hit rate at %d requests/s, pool of %d: %.1f%% of %lld requests\n",
                (int)json_integer_value(json_object_get(sm, "rate_per_s")),
                (int)json_integer_value(json_object_get(sm, "pool_size")),
                json_real_value(json_object_get(sm, "hit_rate")) * 100,
                (long long)json_integer_value(json_object_get(sm, "requests")));
        fprintf(out, "idle pooled sandboxes (%s, %llu MiB guest):\n", accel_name(b->shape.accel),
                (unsigned long long)b->shape.memory_mib);
        json_array_foreach(json_object_get(extra, "idle_sandboxes"), i, s)
        {
                fprintf(out, "  PSS %6.1f MiB  private %6.1f MiB  CPU %.2f%% of a core\n",
                        (double)json_integer_value(json_object_get(s, "pss_kib")) / 1024,
                        (double)json_integer_value(json_object_get(s, "private_kib")) / 1024,
                        json_real_value(json_object_get(s, "cpu_percent")));
        }
        json_t *h = json_object_get(extra, "hold");
        if (h != NULL && json_integer_value(json_object_get(h, "measured")) > 0)
                fprintf(out,
                        "%lld idle sandboxes held at once: PSS %.0f MiB in all (%.1f MiB each), "
                        "private %.0f MiB, CPU %.2f%% of a core each (max %.2f%%)\n",
                        (long long)json_integer_value(json_object_get(h, "measured")),
                        json_real_value(json_object_get(h, "total_pss_mib")),
                        json_real_value(json_object_get(h, "total_pss_mib")) /
                            (double)json_integer_value(json_object_get(h, "measured")),
                        json_real_value(json_object_get(h, "total_private_mib")),
                        json_real_value(json_object_get(h, "mean_cpu_percent")),
                        json_real_value(json_object_get(h, "max_cpu_percent")));
}

int bench_spawn(const char *home, const struct bench_spawn_opts *o, FILE *out, struct lg_err **err)
{
        struct bench b = {.home = home, .o = o, .loaded = {-1, -1, -1}};
        struct stats st[ROW_COUNT];
        json_t *root = NULL, *rows, *extra = json_object();
        char why[256], path[PATH_MAX + 64];
        int r, worse = 0;

        r = pool_socket_path(home, path, sizeof(path));
        if (r == 0 && access(path, F_OK) == 0) {
                struct pool_lease l;

                /* A pool of the user's would skew every row: refuse rather than share. */
                struct pool_request probe = {"-", "-", 1, 1, "vm"};

                if (pool_acquire(home, &probe, -1, &l, err) != -ECONNREFUSED) {
                        err_free(err);
                        return err_set(err, LG_EK_USAGE, EBUSY,
                                       "a pool is running on %s: stop it before benchmarking",
                                       home);
                }
        }
        for (int i = 0; i < ROW_COUNT; i++) {
                b.v[i] = calloc(o->runs > o->cold_runs ? o->runs : o->cold_runs, sizeof(double));
                if (b.v[i] == NULL) {
                        r = err_set(err, LG_EK_INTERNAL, ENOMEM, "samples");
                        goto out;
                }
        }
        r = image_ensure(home, "base", 1, 1, &b.img, err);
        if (r < 0)
                goto out;
        b.shape.memory_mib = SANDBOX_DEFAULT_MEMORY_MIB;
        b.shape.cpus = SANDBOX_DEFAULT_CPUS;
        b.shape.accel = accel_choose(home, why, sizeof(why));
        fprintf(out, "bench spawn: accelerator %s (%s)\n", accel_name(b.shape.accel), why);
        r = template_ensure(home, &b.img, &b.shape, 1, 120000, -1, &b.tpl, err);
        if (r < 0)
                goto out;
        r = template_load(b.tpl.ram, b.tpl.state, &b.loaded);
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "load template %s", b.tpl.dir);
                goto out;
        }
        /* The peer's snapshot: the same booted image, RAM included in the state. */
        snprintf(path, sizeof(path), "%s/bench", home);
        r = fs_mkdir_p(path, 0700);
        snprintf(b.streamed, sizeof(b.streamed), "%s/bench/streamed-ram.state", home);
        if (r == 0)
                r = fs_remove_tree(b.streamed);
        if (r == 0)
                r = cold_once(&b, b.streamed, NULL, err);
        if (r < 0)
                goto out;
        r = run_rows(&b, out, extra, err);
        stop_pool(&b);
        if (r < 0)
                goto out;
        rows = json_object();
        for (int i = 0; i < ROW_COUNT; i++)
                json_object_set_new(rows, row_key[i], row_json(&b, (enum row)i, &st[i]));
        print_report(&b, st, extra, out);
        root =
            json_pack("{s:s,s:s,s:I,s:o,s:o}", "bench", "spawn", "accel", accel_name(b.shape.accel),
                      "time", (json_int_t)time(NULL), "rows", rows, "pool", extra);
        extra = NULL;
        if (o->baseline != NULL)
                worse = compare(o->baseline, rows, out);
        if (o->json_path != NULL)
                snprintf(path, sizeof(path), "%s", o->json_path);
        else
                snprintf(path, sizeof(path), "%s/bench/spawn-%lld.json", home,
                         (long long)time(NULL));
        if (json_dump_file(root, path, JSON_INDENT(2)) < 0)
                r = err_set(err, LG_EK_INTERNAL, 0, "write %s", path);
        else
                fprintf(out, "JSON report: %s\n", path);
out:
        stop_pool(&b);
        template_unload(&b.loaded);
        if (b.streamed[0] != '\0' && fs_remove_tree(b.streamed) < 0)
                fprintf(out, "warning: could not remove %s\n", b.streamed);
        json_decref(root);
        json_decref(extra);
        for (int i = 0; i < ROW_COUNT; i++)
                free(b.v[i]);
        return r < 0 ? r : worse;
}
