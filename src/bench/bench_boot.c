/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/bench_boot.h"
#include "bench/stats.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/monotime.h"
#include "image/image.h"
#include "sandbox/runtime_dir.h"
#include "sandbox/sandbox.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BOOT_PEER_TIMEOUT_MS 120000

enum { ROW_READY, ROW_RUN_TRUE, ROW_PEER, ROW_COUNT };

static const char *const row_names[ROW_COUNT] = {
    "luminaguard cold boot -> agent ready",
    "luminaguard run --cold -- true (end to end)",
    "plain QEMU, same kernel+initramfs -> shell prompt",
};
static const char *const row_keys[ROW_COUNT] = {"ready", "run_true", "plain_qemu_shell"};

/*
 * The peer: what one would type to boot this kernel and initramfs to a shell
 * by hand. Only `quiet` is added (console output is slow under TCG, and our
 * images are quiet too, so leaving it out would flatter us); the engine adds
 * tsc_early_khz under TCG for both. None of the image's boot trims.
 */
static const char peer_cmdline[] = "console=ttyS0 quiet rdinit=/bin/sh";

/* True once the console log shows busybox sh's prompt. */
static int console_has_prompt(const char *path)
{
        _cleanup_free_ char *text = NULL;

        if (fs_read_file(path, 1 << 20, &text, NULL) < 0)
                return 0;
        return strstr(text, "# ") != NULL;
}

/* One plain QEMU boot to a shell prompt, through the same engine and machine options. */
static int peer_boot(const char *home, const struct image_paths *img, enum accel_kind accel,
                     double *ms, struct lg_err **err)
{
        char id[RUNDIR_ID_LEN + 1], dir[PATH_MAX], console[PATH_MAX + 16];
        struct vmm *v = NULL;
        struct vmm_config c;
        int sv[2], r, seen = 0, lock_fd = -1;
        uint64_t t0, deadline;

        r = rundir_create(home, id, dir, sizeof(dir), &lock_fd);
        if (r < 0) {
                if (dir[0] != '\0' && fs_remove_tree(dir) < 0)
                        log_debug("remove %s failed", dir);
                return err_set(err, LG_EK_START, -r, "create run directory");
        }
        snprintf(console, sizeof(console), "%s/console.log", dir);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = err_set(err, LG_EK_START, errno, "socketpair");
                goto out;
        }
        memset(&c, 0, sizeof(c));
        c.mem_fd = -1;
        c.id = id;
        c.run_dir = dir;
        c.kernel = img->kernel;
        c.initrd = img->initrd;
        c.cmdline = peer_cmdline;
        c.memory_mib = SANDBOX_DEFAULT_MEMORY_MIB;
        c.cpus = SANDBOX_DEFAULT_CPUS;
        c.accel = accel;
        c.agent_fd = sv[1]; /* same devices as a sandbox; nobody talks on it */
        t0 = mono_ns();
        deadline = mono_ms() + BOOT_PEER_TIMEOUT_MS;
        r = vmm_start(&qemu_vmm_ops, &c, &v, err);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                goto out;
        }
        /* 1 ms polling of the console file: adds at most ~1 ms to a multi-second figure. */
        while (!(seen = console_has_prompt(console)) && mono_left_ms(deadline) > 0 &&
               vmm_wait(v, 1) == -ETIMEDOUT)
                ;
        *ms = (double)(mono_ns() - t0) / 1e6;
        close(sv[0]);
        if (!seen)
                r = err_set(err, LG_EK_START, 0, "plain QEMU did not reach a shell prompt (%s)",
                            console);
out:
        vmm_free(v);
        if (fs_remove_tree(dir) < 0 && r == 0)
                r = err_set(err, LG_EK_INTERNAL, EBUSY, "remove %s", dir);
        close(lock_fd);
        return r;
}

static int ours_ready(const char *home, const struct image_paths *img, enum accel_kind accel,
                      double *ms, struct lg_err **err)
{
        struct sandbox_opts so = {
            .image = img,
            .accel = accel,
            .memory_mib = SANDBOX_DEFAULT_MEMORY_MIB,
            .cpus = SANDBOX_DEFAULT_CPUS,
            .boot_timeout_ms = SANDBOX_DEFAULT_BOOT_MS,
            .intr_fd = -1,
        };
        struct sandbox *sb = NULL;
        int r;

        r = sandbox_create(home, &so, &sb, err);
        if (r < 0)
                return r;
        *ms = sandbox_ready_ms(sb);
        return sandbox_destroy(sb, err);
}

/* `luminaguard run --cold -- true` as a user would type it: a new process, start to exit. */
static int ours_run_true(double *ms, struct lg_err **err)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        uint64_t t0;
        int status;
        pid_t pid;

        if (n < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "readlink /proc/self/exe");
        self[n] = '\0';
        t0 = mono_ns();
        pid = fork();
        if (pid < 0)
                return err_set(err, LG_EK_INTERNAL, errno, "fork");
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR);

                dup2(null, 0);
                dup2(null, 1);
                execl(self, self, "run", "--cold", "--", "true", (char *)NULL);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0) {
                if (errno != EINTR)
                        return err_set(err, LG_EK_INTERNAL, errno, "waitpid");
        }
        *ms = (double)(mono_ns() - t0) / 1e6;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return err_set(err, LG_EK_START, 0, "'luminaguard run -- true' failed (status %d)",
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

static json_t *stats_json(const struct stats *s)
{
        return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "n", (json_int_t)s->n, "min_ms", s->min,
                         "p50_ms", s->p50, "p95_ms", s->p95, "max_ms", s->max, "mean_ms", s->mean);
}

static int write_report(const char *home, const struct bench_boot_opts *o, const struct stats *st,
                        enum accel_kind accel, FILE *out, struct lg_err **err)
{
        char path[PATH_MAX + 64], dir[PATH_MAX];
        json_t *root, *rows;
        int r;

        root = json_pack("{s:s,s:s,s:I,s:f,s:f}", "bench", "boot", "accel", accel_name(accel),
                         "time", (json_int_t)time(NULL), "ratio_ready_vs_plain_p50",
                         st[ROW_READY].p50 / st[ROW_PEER].p50, "ratio_run_true_vs_plain_p50",
                         st[ROW_RUN_TRUE].p50 / st[ROW_PEER].p50);
        rows = json_object();
        if (root == NULL || rows == NULL) {
                json_decref(root);
                json_decref(rows);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "report");
        }
        for (int i = 0; i < ROW_COUNT; i++)
                json_object_set_new(rows, row_keys[i], stats_json(&st[i]));
        json_object_set_new(root, "rows", rows);
        if (o->json_path != NULL) {
                snprintf(path, sizeof(path), "%s", o->json_path);
        } else {
                snprintf(dir, sizeof(dir), "%s/bench", home);
                r = fs_mkdir_p(dir, 0700);
                if (r < 0) {
                        json_decref(root);
                        return err_set(err, LG_EK_INTERNAL, -r, "create %s", dir);
                }
                snprintf(path, sizeof(path), "%s/boot-%lld.json", dir, (long long)time(NULL));
        }
        r = json_dump_file(root, path, JSON_INDENT(2));
        json_decref(root);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, 0, "write %s", path);
        fprintf(out, "JSON report: %s\n", path);
        return 0;
}

int bench_boot(const char *home, const struct bench_boot_opts *o, FILE *out, struct lg_err **err)
{
        _cleanup_free_ double *samples = NULL;
        struct stats st[ROW_COUNT];
        struct image_paths img;
        enum accel_kind accel;
        char why[256];
        int r;

        r = image_ensure(home, "base", 1, 1, &img, err);
        if (r < 0)
                return r;
        accel = accel_choose(home, why, sizeof(why));
        samples = calloc((size_t)ROW_COUNT * o->runs, sizeof(double));
        if (samples == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "samples");
        fprintf(out, "bench boot: %u runs per row, accelerator %s (%s)\n", o->runs,
                accel_name(accel), why);
        for (unsigned i = 0; i < o->runs; i++) {
                double *s = samples + (size_t)i * ROW_COUNT;

                /* Alternate the order so slow drift of the machine hits both sides alike. */
                if (i % 2 == 0) {
                        r = ours_ready(home, &img, accel, &s[ROW_READY], err);
                        if (r == 0)
                                r = peer_boot(home, &img, accel, &s[ROW_PEER], err);
                } else {
                        r = peer_boot(home, &img, accel, &s[ROW_PEER], err);
                        if (r == 0)
                                r = ours_ready(home, &img, accel, &s[ROW_READY], err);
                }
                if (r == 0)
                        r = ours_run_true(&s[ROW_RUN_TRUE], err);
                if (r < 0)
                        return err_wrap(err, "bench boot run %u", i + 1);
                fprintf(out, "  run %2u/%u: ready %.0f ms, run true %.0f ms, plain QEMU %.0f ms\n",
                        i + 1, o->runs, s[ROW_READY], s[ROW_RUN_TRUE], s[ROW_PEER]);
                fflush(out);
        }
        for (int row = 0; row < ROW_COUNT; row++) {
                _cleanup_free_ double *v = calloc(o->runs, sizeof(double));

                if (v == NULL)
                        return err_set(err, LG_EK_INTERNAL, ENOMEM, "samples");
                for (unsigned i = 0; i < o->runs; i++)
                        v[i] = samples[(size_t)i * ROW_COUNT + (size_t)row];
                stats_compute(v, o->runs, &st[row]);
        }
        fprintf(out, "\n%-52s %8s %8s %8s %8s\n", "row (ms)", "min", "median", "p95", "max");
        for (int row = 0; row < ROW_COUNT; row++)
                fprintf(out, "%-52s %8.1f %8.1f %8.1f %8.1f\n", row_names[row], st[row].min,
                        st[row].p50, st[row].p95, st[row].max);
        fprintf(out, "\nratio ready / plain QEMU (median):    %.3f   (target <= 1.0)\n",
                st[ROW_READY].p50 / st[ROW_PEER].p50);
        fprintf(out, "ratio run true / plain QEMU (median): %.3f\n",
                st[ROW_RUN_TRUE].p50 / st[ROW_PEER].p50);
        return write_report(home, o, st, accel, out, err);
}
