/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/template.h"
#include "sandbox/sandbox.h"
#include "sandbox/template_ram.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/monotime.h"
#include "common/parse.h"
#include "image/image.h"
#include "proto/proto.h"
#include "vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Best-effort removal of a template directory; a leftover is retried on the next build. */
static void remove_quietly(const char *dir)
{
        int r = fs_remove_tree(dir);

        if (r < 0)
                log_debug("remove %s: %s", dir, strerror(-r));
}

/* The image's name: the last component of its directory (images/<name>). */
static const char *image_name(const struct image_paths *img)
{
        const char *slash = strrchr(img->dir, '/');

        return slash ? slash + 1 : img->dir;
}

static int template_key(const struct image_paths *img, const struct template_shape *s, char key[65])
{
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        char text[384];
        int n;

        /*
         * Under TCG the guest was told the host's TSC rate at boot: part of
         * what it is. So is the disk file it mounted (a rebuilt image has a
         * new one under the same recipe key).
         */
        n = snprintf(text, sizeof(text),
                     "image=%s mem=%llu cpus=%u accel=%s proto=%u tsc=%u disk=%s", img->key,
                     (unsigned long long)s->memory_mib, s->cpus, accel_name(s->accel),
                     PROTO_VERSION, s->accel == ACCEL_TCG ? vmm_host_tsc_khz() : 0, img->disk_id);
        if (n < 0 || (size_t)n >= sizeof(text))
                return -E2BIG;
        if (!EVP_Digest(text, (size_t)n, digest, &len, EVP_sha256(), NULL) || len != 32)
                return -EIO;
        for (unsigned i = 0; i < len; i++)
                snprintf(key + 2 * i, 3, "%02x", digest[i]);
        return 0;
}

static void template_paths(const char *home, const char *key, struct template *t)
{
        snprintf(t->key, sizeof(t->key), "%s", key);
        snprintf(t->dir, sizeof(t->dir), "%s/templates/%.64s", home, key);
        snprintf(t->ram, sizeof(t->ram), "%s/ram", t->dir);
        snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
}

/* A template is usable when its RAM file has the shape's size and its state is not empty. */
/*
 * How long a template is used before it is rebuilt: $LUMINAGUARD_TEMPLATE_MAX_AGE
 * (a duration: "24h", "30m"; "0" = forever), default TEMPLATE_DEFAULT_MAX_AGE_S.
 * A snapshot does not rot, but a periodic rebuild bounds how long one guest
 * kernel state (its uptime, its slab layout) is replayed into every sandbox.
 */
static uint64_t template_max_age_s(void)
{
        const char *env = getenv("LUMINAGUARD_TEMPLATE_MAX_AGE");
        uint64_t ms;

        if (env == NULL || parse_duration_ms(env, &ms) < 0)
                return TEMPLATE_DEFAULT_MAX_AGE_S;
        return ms / 1000;
}

static int template_valid(const struct template *t, const struct template_shape *s)
{
        uint64_t max_age = template_max_age_s();
        struct stat st;

        if (stat(t->ram, &st) < 0 || (uint64_t)st.st_size != s->memory_mib << 20)
                return 0;
        if (stat(t->state, &st) < 0 || st.st_size == 0)
                return 0;
        /* The state file is written last: its mtime is the template's age. */
        if (max_age > 0 && time(NULL) - st.st_mtime > (time_t)max_age) {
                log_info("template %.12s is older than %llu s: rebuilding it", t->key,
                         (unsigned long long)max_age);
                return 0;
        }
        return 1;
}

/* The RAM file must exist at full size before QEMU maps it: QEMU may not grow files. */
static int create_ram_file(const char *path, uint64_t bytes)
{
        _cleanup_fd_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        /* Sparse: only the pages the guest touches while booting take disk space. */
        if (ftruncate(fd, (off_t)bytes) < 0)
                return -errno;
        return 0;
}

/*
 * The booted template's RAM file, once its VMM is gone: ours again (a
 * jailed VMM owned it to write it), private, and with its zero pages
 * punched out, so every copy of it (template_ram.h) is only its data.
 */
static int template_finish_ram(const char *ram, struct lg_err **err)
{
        _cleanup_fd_ int fd = open(ram, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        uint64_t kept = 0;
        int r;

        if (fd < 0 || fchown(fd, geteuid(), getegid()) < 0 || fchmod(fd, 0600) < 0)
                return err_set(err, LG_EK_START, errno, "take back %s", ram);
        r = template_ram_sparsify(fd, &kept);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "sparsify %s", ram);
        log_debug("template RAM: %llu MiB of data", (unsigned long long)(kept >> 20));
        return 0;
}

static int template_build(const char *home, const struct image_paths *img,
                          const struct template_shape *shape, int boot_timeout_ms, int intr_fd,
                          const struct template *t, struct lg_err **err)
{
        char tmp[PATH_MAX + 64], ram[PATH_MAX + 80], state[PATH_MAX + 80], meta[PATH_MAX + 80],
            text[PATH_MAX + 512];
        struct sandbox *sb = NULL;
        struct lg_err *derr = NULL;
        uint64_t t0 = mono_ns();
        int r;

        snprintf(tmp, sizeof(tmp), "%s/templates/.build.%d", home, (int)getpid());
        snprintf(ram, sizeof(ram), "%s/ram", tmp);
        snprintf(state, sizeof(state), "%s/state", tmp);
        snprintf(meta, sizeof(meta), "%s/meta", tmp);
        remove_quietly(tmp);
        r = fs_mkdir_p(tmp, 0700);
        if (r == 0)
                r = create_ram_file(ram, shape->memory_mib << 20);
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "create template RAM file in %s", tmp);
                goto out;
        }
        struct sandbox_opts so = {
            .image = img,
            .ram_file = ram,
            .accel = shape->accel,
            .memory_mib = shape->memory_mib,
            .cpus = shape->cpus,
            .boot_timeout_ms = boot_timeout_ms,
            .intr_fd = intr_fd,
        };
        r = sandbox_create(home, &so, &sb, err);
        if (r == 0)
                r = sandbox_snapshot(sb, state, err);
        if (sandbox_destroy(sb, &derr) < 0 && r == 0)
                r = err_set(err, derr->kind, derr->errnum, "%s", derr->msg);
        err_free(&derr);
        if (r < 0)
                goto out;
        r = template_finish_ram(ram, err);
        if (r < 0)
                goto out;
        snprintf(text, sizeof(text),
                 "image_key=%s\nimage=%s\nmemory_mib=%llu\ncpus=%u\naccel=%s\nproto=%u\n"
                 "built_at=%lld\n",
                 img->key, image_name(img), (unsigned long long)shape->memory_mib, shape->cpus,
                 accel_name(shape->accel), PROTO_VERSION, (long long)time(NULL));
        r = fs_write_file_atomic(meta, text, strlen(text), 0600);
        if (r == 0 && rename(tmp, t->dir) < 0)
                r = -errno;
        if (r < 0) {
                err_set(err, LG_EK_START, -r, "install template %s", t->dir);
                goto out;
        }
        log_info("template %.12s built in %.0f ms", t->key, (double)(mono_ns() - t0) / 1e6);
        (void)template_prune(home, t->key, image_name(img), img->key, shape);
        return 0;
out:
        remove_quietly(tmp);
        return err_wrap(err, "build template for image %.12s", img->key);
}

int template_ensure(const char *home, const struct image_paths *img,
                    const struct template_shape *shape, int build, int boot_timeout_ms, int intr_fd,
                    struct template *t, struct lg_err **err)
{
        char key[65], dir[PATH_MAX], lock[PATH_MAX + 16];
        _cleanup_fd_ int lfd = -1;
        int r;

        r = template_key(img, shape, key);
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "template key");
        template_paths(home, key, t);
        if (template_valid(t, shape))
                return 0;
        if (!build)
                return -ENOENT;

        snprintf(dir, sizeof(dir), "%s/templates", home);
        r = fs_mkdir_p(dir, 0700);
        if (r < 0)
                return err_set(err, LG_EK_START, -r, "create %s", dir);
        snprintf(lock, sizeof(lock), "%s/.lock", dir);
        lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd < 0)
                return err_set(err, LG_EK_START, errno, "open %s", lock);
        if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
                log_info("template: waiting for another build to finish");
                if (flock(lfd, LOCK_EX) < 0)
                        return err_set(err, LG_EK_START, errno, "lock %s", lock);
        }
        /* Whoever held the lock may have built it. */
        if (template_valid(t, shape))
                return 0;
        /* A half-built or corrupt template of this key is replaced. */
        remove_quietly(t->dir);
        return template_build(home, img, shape, boot_timeout_ms, intr_fd, t, err);
}

void template_discard(const struct template *t)
{
        remove_quietly(t->dir);
}

/*
 * Is the template in dir superseded by the one just built (key `key`) from
 * image `name`? Yes if it comes from an older build of that image, or from
 * the same image and shape under an older key (another protocol version or
 * TSC rate). Templates of other images or other shapes are somebody's
 * current template and stay.
 */
static int superseded(const char *dir, const char *key, const char *name, const char *image_key,
                      const struct template_shape *shape)
{
        char meta[PATH_MAX + 512], want_key[128], want_name[320], want_shape[160];
        _cleanup_free_ char *text = NULL;
        const char *base = strrchr(dir, '/');

        if (base != NULL && strcmp(base + 1, key) == 0)
                return 0;
        snprintf(meta, sizeof(meta), "%s/meta", dir);
        if (fs_read_file(meta, 4096, &text, NULL) < 0)
                return 0;
        snprintf(want_key, sizeof(want_key), "image_key=%s\n", image_key);
        snprintf(want_name, sizeof(want_name), "\nimage=%s\n", name);
        snprintf(want_shape, sizeof(want_shape), "\nmemory_mib=%llu\ncpus=%u\naccel=%s\n",
                 (unsigned long long)shape->memory_mib, shape->cpus, accel_name(shape->accel));
        /* Written before meta named its image: from an older key format, unusable now. */
        if (strstr(text, "\nimage=") == NULL)
                return 1;
        if (strstr(text, want_name) == NULL)
                return 0;
        return strncmp(text, want_key, strlen(want_key)) != 0 || strstr(text, want_shape) != NULL;
}

int template_prune(const char *home, const char *key, const char *name, const char *image_key,
                   const struct template_shape *shape)
{
        char dir[PATH_MAX];
        _cleanup_dir_ DIR *d = NULL;
        struct dirent *de;
        int n = 0;

        snprintf(dir, sizeof(dir), "%s/templates", home);
        d = opendir(dir);
        if (d == NULL)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)) != NULL) {
                char sub[PATH_MAX + 300];

                /* Keys are 64 hex digits; ".lock" and ".build.*" are not ours to judge. */
                if (strlen(de->d_name) != 64)
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
                if (!superseded(sub, key, name, image_key, shape))
                        continue;
                if (fs_remove_tree(sub) == 0)
                        n++;
        }
        return n;
}
