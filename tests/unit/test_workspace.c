/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workspace sync without a VM (src/workspace): DIR is packed, "the guest"
 * is busybox tar in a scratch directory — the same tar the sandbox runs —
 * and its stream comes back as a change set that is checked, saved, loaded
 * and applied. Hostile streams are written with libarchive directly.
 */
#include "common/err.h"
#include "common/fs.h"
#include "policy/card.h"
#include "unit.h"
#include "workspace/workspace.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/lg-unit-ws.XXXXXX";
static const struct ws_limits lim = {.max_bytes = 1u << 20, .max_entries = 1000};

static void cleanup(void)
{
        if (fs_remove_tree(base) < 0)
                fprintf(stderr, "    could not remove %s\n", base);
}

static void setup(void)
{
        static int done;

        if (!done) {
                done = 1;
                CHECK(mkdtemp(base) != NULL);
                atexit(cleanup);
        }
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        r = system(cmd);
        if (r != 0)
                fprintf(stderr, "    command failed (%d): %s\n", r, cmd);
        CHECK(r == 0);
}

static void put(const char *path, const char *text)
{
        CHECK(fs_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

static int tmpfd(void)
{
        int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

        CHECK(fd >= 0);
        return fd;
}

/* A workspace <base>/<name>/dir with a few files; its packed manifest in *m. */
static void make_ws(const char *name, char *dir, size_t dirsz, struct ws_manifest *m)
{
        struct lg_err *err = NULL;
        char p[512];
        int fd;

        setup();
        snprintf(dir, dirsz, "%s/%s/dir", base, name);
        CHECK(fs_mkdir_p(dir, 0755) == 0);
        snprintf(p, sizeof(p), "%s/sub/deep", dir);
        CHECK(fs_mkdir_p(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        put(p, "one\ntwo\nthree\n");
        snprintf(p, sizeof(p), "%s/gone.txt", dir);
        put(p, "bye\n");
        snprintf(p, sizeof(p), "%s/run.sh", dir);
        put(p, "#!/bin/sh\n");
        snprintf(p, sizeof(p), "%s/sub/deep/x", dir);
        put(p, "x\n");
        snprintf(p, sizeof(p), "%s/becomes-dir", dir);
        put(p, "file for now\n");
        snprintf(p, sizeof(p), "%s/link", dir);
        CHECK(symlink("sub/deep/x", p) == 0);
        fd = tmpfd();
        CHECK(ws_pack(dir, fd, &lim, m, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        close(fd);
}

/* "The guest": unpack DIR with busybox tar into <base>/<name>/guest, run edit there, tar it back.
 */
static int guest_round(const char *name, const char *dir, const char *edit)
{
        char g[512], tarf[512];
        int fd;

        snprintf(g, sizeof(g), "%s/%s/guest", base, name);
        snprintf(tarf, sizeof(tarf), "%s/%s/out.tar", base, name);
        sh("rm -rf %s && mkdir -p %s && cd %s && tar -cf - . | (cd %s && umask 0 && busybox tar "
           "-xf -)",
           g, g, dir, g);
        sh("cd %s && %s", g, edit);
        sh("busybox tar -cf %s -C %s .", tarf, g);
        fd = open(tarf, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        return fd;
}

static const struct ws_change *find_change(const struct ws_changeset *cs, enum ws_op op,
                                           const char *path)
{
        for (size_t i = 0; i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];

                if (c->op == op && strcmp(op == WS_ADD ? c->new.path : c->old.path, path) == 0)
                        return c;
        }
        return NULL;
}

/* The trees are the same: equal manifests (paths, types, modes, contents, link targets). */
static int same_tree(const char *a, const char *b)
{
        struct ws_manifest ma, mb;
        struct lg_err *err = NULL;
        int fa = tmpfd(), fb = tmpfd(), same;

        same = ws_pack(a, fa, &lim, &ma, &err) == 0 && ws_pack(b, fb, &lim, &mb, &err) == 0 &&
               ma.n == mb.n;
        for (size_t i = 0; same && i < ma.n; i++) {
                const struct ws_entry *x = &ma.e[i], *y = &mb.e[i];

                same = strcmp(x->path, y->path) == 0 && x->type == y->type && x->mode == y->mode &&
                       memcmp(x->sha, y->sha, 32) == 0 && (x->link == NULL) == (y->link == NULL) &&
                       (x->link == NULL || strcmp(x->link, y->link) == 0);
                if (!same)
                        fprintf(stderr, "    trees differ at %s / %s\n", x->path, y->path);
        }
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        ws_manifest_free(&ma);
        ws_manifest_free(&mb);
        close(fa);
        close(fb);
        return same;
}

TEST(names_and_links)
{
        char b[WS_MAX_PATH + 1];

        CHECK_EQ_STR(ws_clean_name("./a/b", b, sizeof(b)), "a/b");
        CHECK_EQ_STR(ws_clean_name("a/dir/", b, sizeof(b)), "a/dir");
        CHECK(ws_clean_name("/etc/passwd", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name("../x", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name("a/../../x", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name("a//b", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name("a/./b", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name(".", b, sizeof(b)) == NULL);
        CHECK(ws_clean_name("./", b, sizeof(b)) == NULL);
        CHECK(ws_link_inside("a", "b"));
        CHECK(ws_link_inside("d/a", "../b"));
        CHECK(ws_link_inside("d/e/a", "../../b"));
        CHECK(!ws_link_inside("d/a", "../../b"));
        CHECK(!ws_link_inside("a", "../b"));
        CHECK(!ws_link_inside("a", "/etc/passwd"));
        CHECK(!ws_link_inside("a", ""));
        CHECK(!ws_link_inside("d/a", "x/../../../b"));
        CHECK(ws_link_inside("d/a", "./x/../y"));
}

TEST(pack_refuses_links_out_and_fifos)
{
        struct ws_manifest m;
        struct lg_err *err = NULL;
        char dir[512], p[600];
        int fd;

        setup();
        snprintf(dir, sizeof(dir), "%s/refuse", base);
        CHECK(fs_mkdir_p(dir, 0755) == 0);
        snprintf(p, sizeof(p), "%s/out", dir);
        CHECK(symlink("../../etc/passwd", p) == 0);
        fd = tmpfd();
        CHECK(ws_pack(dir, fd, &lim, &m, &err) < 0);
        CHECK(err && err->kind == LG_EK_USAGE && strstr(err->msg, "outside the workspace"));
        err_free(&err);
        ws_manifest_free(&m);
        close(fd);
        CHECK(unlink(p) == 0);
        CHECK(mkfifo(p, 0600) == 0);
        fd = tmpfd();
        CHECK(ws_pack(dir, fd, &lim, &m, &err) < 0);
        CHECK(err && strstr(err->msg, "FIFO"));
        err_free(&err);
        ws_manifest_free(&m);
        close(fd);
        /* Too big: the limit is checked before the bytes are read. */
        CHECK(unlink(p) == 0);
        CHECK(truncate(p, 0) < 0);
        fd = open(p, O_CREAT | O_WRONLY, 0644);
        CHECK(fd >= 0 && ftruncate(fd, 2u << 20) == 0);
        close(fd);
        fd = tmpfd();
        CHECK(ws_pack(dir, fd, &lim, &m, &err) < 0);
        CHECK(err && strstr(err->msg, "--workspace-max"));
        err_free(&err);
        ws_manifest_free(&m);
        close(fd);
}

TEST(unchanged_round_trip_is_empty)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], store[600];
        int fd;

        make_ws("same", dir, sizeof(dir), &m);
        fd = guest_round("same", dir, "true");
        snprintf(store, sizeof(store), "%s/same/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t1", &lim, &cs, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        CHECK_EQ_INT(cs.n, 0);
        CHECK_EQ_INT(cs.n_refused, 0);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
        err_free(&err);
        close(fd);
}

TEST(changes_card_save_load_apply)
{
        struct ws_manifest m;
        struct ws_changeset cs, loaded;
        struct lg_err *err = NULL;
        struct policy_decision d = {.verdict = POLICY_RED, .risk = POLICY_RISK_MEDIUM};
        char dir[512], store[600], guest[600], p[2048];
        int fd;

        make_ws("full", dir, sizeof(dir), &m);
        fd = guest_round("full", dir,
                         "printf 'one\\nTWO\\nthree\\nfour\\n' > a.txt && rm gone.txt && "
                         "chmod 755 run.sh && mkdir -p new/dir && echo hi > new/dir/f && "
                         "rm -r sub && rm becomes-dir && mkdir becomes-dir && "
                         "ln -s ../a.txt new/ok && ln -s /etc/passwd evil && mkfifo pipe && "
                         "printf '\\0\\1\\2' > bin && echo s > suid && chmod 4755 suid && "
                         "ln -sf a.txt link");
        snprintf(store, sizeof(store), "%s/full/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t2", &lim, &cs, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        close(fd);
        CHECK(find_change(&cs, WS_MODIFY, "a.txt") != NULL);
        CHECK(find_change(&cs, WS_DELETE, "gone.txt") != NULL);
        CHECK(find_change(&cs, WS_CHMOD, "run.sh") != NULL);
        CHECK(find_change(&cs, WS_ADD, "new/dir/f") != NULL);
        CHECK(find_change(&cs, WS_ADD, "new/ok") != NULL);
        CHECK(find_change(&cs, WS_DELETE, "sub/deep/x") != NULL);
        CHECK(find_change(&cs, WS_DELETE, "sub") != NULL);
        CHECK(find_change(&cs, WS_DELETE, "becomes-dir") != NULL);
        CHECK(find_change(&cs, WS_ADD, "becomes-dir") != NULL);
        CHECK(find_change(&cs, WS_MODIFY, "link") != NULL);
        CHECK(find_change(&cs, WS_ADD, "evil") == NULL);
        CHECK(find_change(&cs, WS_ADD, "pipe") == NULL);
        CHECK_EQ_INT(cs.n_refused, 3); /* evil, pipe, suid's bit */
        const struct ws_change *su = find_change(&cs, WS_ADD, "suid");

        CHECK(su != NULL && su->new.mode == 0755);

        /* The card shows the diff and summarises the binary. */
        struct card *c = card_new("workspace.apply", "apply", "sb-test", &d);
        int saw_add = 0, saw_del = 0, saw_bin = 0;

        CHECK(c != NULL && ws_card(&cs, c, &err) == 0);
        for (size_t i = 0; c && i < c->n_lines; i++) {
                saw_add |= c->lines[i].kind == CARD_ADD && strcmp(c->lines[i].text, "+TWO") == 0;
                saw_del |= c->lines[i].kind == CARD_DEL && strcmp(c->lines[i].text, "-two") == 0;
                saw_bin |= c->lines[i].kind == CARD_NOTE && strstr(c->lines[i].text, "binary");
        }
        CHECK(saw_add && saw_del && saw_bin);
        card_free(c);

        /* What is applied is what is loaded back from disk. */
        CHECK(ws_changeset_save(&cs, &err) == 0);
        CHECK(ws_changeset_load(store, &loaded, &err) == 0);
        CHECK_EQ_INT(loaded.n, cs.n);
        CHECK(ws_apply(&loaded, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        /* DIR is now the guest's tree, less what was refused. */
        snprintf(guest, sizeof(guest), "%s/full/guest", base);
        snprintf(p, sizeof(p), "rm %s/evil %s/pipe && chmod 755 %s/suid", guest, guest, guest);
        sh("%s", p);
        CHECK(same_tree(dir, guest));
        /* No backup or temporary file is left behind. */
        sh("test -z \"$(find %s -name '.lg-apply-*')\"", dir);
        ws_changeset_free(&cs);
        ws_changeset_free(&loaded);
        ws_manifest_free(&m);
        err_free(&err);
}

TEST(conflict_leaves_dir_alone)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], store[600], p[600], snap[600];
        int fd;

        make_ws("conflict", dir, sizeof(dir), &m);
        fd = guest_round("conflict", dir, "echo new > a.txt && rm gone.txt && echo n > added");
        snprintf(store, sizeof(store), "%s/conflict/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t3", &lim, &cs, &err) == 0);
        close(fd);
        /* The user edits a.txt while the sandbox ran. */
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        put(p, "the user's edit\n");
        snprintf(snap, sizeof(snap), "%s/conflict/snap", base);
        sh("cp -a %s %s", dir, snap);
        CHECK(ws_apply(&cs, &err) < 0);
        CHECK(err && strstr(err->msg, "conflict: ") && strstr(err->msg, "a.txt") &&
              strstr(err->msg, "nothing was applied"));
        CHECK(same_tree(dir, snap));
        err_free(&err);
        /* Somebody created the file the sandbox adds: a conflict too. */
        put(p, "one\ntwo\nthree\n");
        snprintf(p, sizeof(p), "%s/added", dir);
        put(p, "mine\n");
        CHECK(ws_apply(&cs, &err) < 0);
        CHECK(err && strstr(err->msg, "added") && strstr(err->msg, "created"));
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
        err_free(&err);
}

TEST(failure_mid_apply_rolls_back)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], store[600], snap[600], blob[800];
        int fd;

        make_ws("rollback", dir, sizeof(dir), &m);
        fd = guest_round(
            "rollback", dir,
            "rm gone.txt && echo 1 > a.txt && mkdir n && echo 2 > n/z && chmod 700 sub");
        snprintf(store, sizeof(store), "%s/rollback/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t4", &lim, &cs, &err) == 0);
        close(fd);
        snprintf(snap, sizeof(snap), "%s/rollback/snap", base);
        sh("cp -a %s %s", dir, snap);
        /* The last file's staged content is damaged: found after the delete, mkdir and first put.
         */
        const struct ws_change *z = find_change(&cs, WS_ADD, "n/z");

        CHECK(z != NULL);
        if (z != NULL) {
                snprintf(blob, sizeof(blob), "%s/%s", store, z->new.blob);
                put(blob, "tampered\n");
        }
        CHECK(ws_apply(&cs, &err) < 0);
        CHECK(err && strstr(err->msg, "undone") && strstr(err->msg, "does not match"));
        CHECK(same_tree(dir, snap));
        sh("test -z \"$(find %s -name '.lg-apply-*')\"", dir);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
        err_free(&err);
}

TEST(apply_never_follows_a_link_out)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], store[600], out[600], p[700];
        int fd;

        make_ws("escape", dir, sizeof(dir), &m);
        fd = guest_round("escape", dir, "echo pwned > sub/deep/new");
        snprintf(store, sizeof(store), "%s/escape/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t5", &lim, &cs, &err) == 0);
        close(fd);
        /* Meanwhile sub/deep becomes a link to a directory outside the workspace. */
        snprintf(out, sizeof(out), "%s/escape/outside", base);
        CHECK(fs_mkdir_p(out, 0755) == 0);
        sh("rm -r %s/sub/deep && ln -s %s %s/sub/deep", dir, out, dir);
        CHECK(ws_apply(&cs, &err) < 0);
        snprintf(p, sizeof(p), "%s/new", out);
        CHECK(!fs_exists(p));
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
        err_free(&err);
}

/* A tar stream written by hand, as a hostile guest would. */
static int hostile_tar(const char *names[], const char *links[], const mode_t types[], size_t n,
                       int64_t size)
{
        struct archive *a = archive_write_new();
        int fd = tmpfd();

        CHECK(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
        CHECK(archive_write_open_fd(a, fd) == ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();

                archive_entry_set_pathname(e, names[i]);
                archive_entry_set_filetype(e, types[i]);
                archive_entry_set_perm(e, 0644);
                if (types[i] == AE_IFREG)
                        archive_entry_set_size(e, size);
                if (links && links[i])
                        archive_entry_set_hardlink(e, links[i]);
                CHECK(archive_write_header(a, e) == ARCHIVE_OK);
                for (int64_t k = 0; types[i] == AE_IFREG && !(links && links[i]) && k < size;
                     k += 4096) {
                        static const char zeros[4096];

                        archive_write_data(a, zeros, (size_t)(size - k < 4096 ? size - k : 4096));
                }
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        return fd;
}

static void expect_refused(const char *names[], const char *links[], const mode_t types[], size_t n,
                           int64_t size, const char *needle)
{
        struct ws_manifest m = {0};
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char store[600];
        int fd = hostile_tar(names, links, types, n, size);
        static int k;

        snprintf(store, sizeof(store), "%s/hostile%d", base, k++);
        CHECK(ws_unpack(fd, &m, "/nonexistent", store, "h", &lim, &cs, &err) < 0);
        if (err == NULL || strstr(err->msg, needle) == NULL)
                fprintf(stderr, "    expected \"%s\", got: %s\n", needle,
                        err ? err->msg : "success");
        CHECK(err && strstr(err->msg, needle));
        ws_changeset_free(&cs);
        err_free(&err);
        close(fd);
}

TEST(hostile_streams)
{
        setup();
        expect_refused((const char *[]){"../escape"}, NULL, (mode_t[]){AE_IFREG}, 1, 3,
                       "unsafe name");
        expect_refused((const char *[]){"/etc/passwd"}, NULL, (mode_t[]){AE_IFREG}, 1, 3,
                       "unsafe name");
        expect_refused((const char *[]){"a/../../b"}, NULL, (mode_t[]){AE_IFREG}, 1, 3,
                       "unsafe name");
        expect_refused((const char *[]){"f", "f"}, NULL, (mode_t[]){AE_IFREG, AE_IFREG}, 2, 3,
                       "one name twice");
        expect_refused((const char *[]){"f", "f/g"}, NULL, (mode_t[]){AE_IFREG, AE_IFREG}, 2, 3,
                       "parent is no directory");
        expect_refused((const char *[]){"nodir/g"}, NULL, (mode_t[]){AE_IFREG}, 1, 3,
                       "parent is no directory");
        expect_refused((const char *[]){"h"}, (const char *[]){"nothing"}, (mode_t[]){AE_IFREG}, 1,
                       0, "hard link to nothing");
        expect_refused((const char *[]){"big"}, NULL, (mode_t[]){AE_IFREG}, 1, 2 << 20,
                       "--workspace-max");
        /* Garbage is not a tar stream. */
        {
                struct ws_manifest m = {0};
                struct ws_changeset cs;
                struct lg_err *err = NULL;
                char store[600];
                int fd = tmpfd();

                CHECK(write(fd, "this is not tar\n", 16) == 16);
                CHECK(lseek(fd, 0, SEEK_SET) == 0);
                snprintf(store, sizeof(store), "%s/garbage", base);
                CHECK(ws_unpack(fd, &m, "/nonexistent", store, "g", &lim, &cs, &err) < 0);
                CHECK(err && err->kind == LG_EK_LOST);
                ws_changeset_free(&cs);
                err_free(&err);
                close(fd);
        }
}

TEST(load_refuses_tampered_store)
{
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char store[600], p[700];

        setup();
        snprintf(store, sizeof(store), "%s/tampered", base);
        CHECK(fs_mkdir_p(store, 0700) == 0);
        snprintf(p, sizeof(p), "%s/changes.json", store);
        put(p, "{\"version\":1,\"id\":\"x\",\"dir\":\"/tmp\",\"changes\":[{\"op\":\"add\","
               "\"path\":\"../etc/x\",\"new\":{\"type\":\"file\",\"mode\":420,\"size\":1,"
               "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
               "\"blob\":\"files/0\"}}],\"refused\":[]}");
        CHECK(ws_changeset_load(store, &cs, &err) < 0);
        err_free(&err);
        put(p, "{\"version\":1,\"id\":\"x\",\"dir\":\"/tmp\",\"changes\":[{\"op\":\"add\","
               "\"path\":\"ok\",\"new\":{\"type\":\"file\",\"mode\":420,\"size\":1,"
               "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\","
               "\"blob\":\"../../etc/shadow\"}}],\"refused\":[]}");
        CHECK(ws_changeset_load(store, &cs, &err) < 0);
        err_free(&err);
}

/* The review's cases: each was a way past a documented guarantee. */

static void unpack_guest(const char *name, const char *edit, struct ws_manifest *m,
                         struct ws_changeset *cs, char *dir, size_t dirsz, int expect_ok)
{
        struct lg_err *err = NULL;
        char store[600];
        int fd;

        make_ws(name, dir, dirsz, m);
        fd = guest_round(name, dir, edit);
        snprintf(store, sizeof(store), "%s/%s/store", base, name);
        CHECK((ws_unpack(fd, m, dir, store, name, &lim, cs, &err) == 0) == expect_ok);
        if (err && expect_ok)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        close(fd);
}

TEST(a_link_through_a_link_cannot_climb_out)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        char dir[512];

        unpack_guest("linklink", "ln -s . l && ln -s l/.. x && ln -s l/sub/deep ok", &m, &cs, dir,
                     sizeof(dir), 1);
        CHECK(find_change(&cs, WS_ADD, "l") != NULL);
        CHECK(find_change(&cs, WS_ADD, "ok") != NULL);
        CHECK(find_change(&cs, WS_ADD, "x") == NULL);
        CHECK_EQ_INT(cs.n_refused, 1);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
        /* And DIR's own such link is refused before anything starts. */
        {
                struct ws_manifest m2;
                struct lg_err *err = NULL;
                char p[600];
                int fd = tmpfd();

                snprintf(p, sizeof(p), "%s/l", dir);
                CHECK(symlink(".", p) == 0);
                snprintf(p, sizeof(p), "%s/x", dir);
                CHECK(symlink("l/..", p) == 0);
                CHECK(ws_pack(dir, fd, &lim, &m2, &err) < 0);
                CHECK(err && strstr(err->msg, "through another link"));
                err_free(&err);
                ws_manifest_free(&m2);
                close(fd);
        }
}

TEST(a_deleted_directory_keeps_what_the_user_added_since)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], p[700];

        unpack_guest("deldir", "rm -r sub", &m, &cs, dir, sizeof(dir), 1);
        snprintf(p, sizeof(p), "%s/sub/deep/mine", dir);
        put(p, "written after the copy\n");
        CHECK(ws_apply(&cs, &err) < 0);
        CHECK(err && strstr(err->msg, "conflict") && strstr(err->msg, "never saw"));
        CHECK(fs_exists(p));
        err_free(&err);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
}

TEST(a_file_or_link_becomes_a_directory_with_contents)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], p[700];

        unpack_guest("todir",
                     "rm becomes-dir link && mkdir -p becomes-dir/in link/deeper && echo a > "
                     "becomes-dir/in/f && echo b > link/deeper/g",
                     &m, &cs, dir, sizeof(dir), 1);
        CHECK(ws_apply(&cs, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        snprintf(p, sizeof(p), "%s/becomes-dir/in/f", dir);
        CHECK(fs_exists(p));
        snprintf(p, sizeof(p), "%s/link/deeper/g", dir);
        CHECK(fs_exists(p));
        err_free(&err);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
}

TEST(what_is_refused_never_deletes_what_dir_holds)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char dir[512], p[700];

        unpack_guest("refkeep", "rm a.txt && mkfifo a.txt && rm -r sub && ln -s /etc sub", &m, &cs,
                     dir, sizeof(dir), 1);
        CHECK(find_change(&cs, WS_DELETE, "a.txt") == NULL);
        CHECK(find_change(&cs, WS_DELETE, "sub") == NULL);
        CHECK(find_change(&cs, WS_DELETE, "sub/deep/x") == NULL);
        CHECK(ws_apply(&cs, &err) == 0);
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        CHECK(fs_exists(p));
        snprintf(p, sizeof(p), "%s/sub/deep/x", dir);
        CHECK(fs_exists(p));
        err_free(&err);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
}

TEST(applied_files_keep_their_owner)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        struct stat st;
        char dir[512], p[700];

        if (geteuid() != 0) {
                fprintf(stderr, "    (skipped: owners can only be given by root)\n");
                return;
        }
        setup();
        snprintf(dir, sizeof(dir), "%s/owner/dir", base);
        CHECK(fs_mkdir_p(dir, 0755) == 0);
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        put(p, "one\n");
        CHECK(chown(dir, 1234, 1235) == 0 && chown(p, 4321, 4322) == 0);
        {
                int fd = tmpfd();

                CHECK(ws_pack(dir, fd, &lim, &m, &err) == 0);
                close(fd);
        }
        int fd = guest_round("owner", dir, "echo two > a.txt && echo new > b.txt && mkdir d");
        char store[600];

        snprintf(store, sizeof(store), "%s/owner/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "own", &lim, &cs, &err) == 0);
        close(fd);
        CHECK(ws_apply(&cs, &err) == 0);
        CHECK(lstat(p, &st) == 0 && st.st_uid == 4321 && st.st_gid == 4322);
        snprintf(p, sizeof(p), "%s/b.txt", dir);
        CHECK(lstat(p, &st) == 0 && st.st_uid == 1234 && st.st_gid == 1235);
        snprintf(p, sizeof(p), "%s/d", dir);
        CHECK(lstat(p, &st) == 0 && st.st_uid == 1234);
        err_free(&err);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
}

TEST(hostile_counts_names_and_links)
{
        static const char *names[64];
        static mode_t types[64];
        static const char *links[64];
        char longname[300];

        setup();
        /* Hard links count their bytes: 1 MiB limit, one 600 KiB file linked twice. */
        expect_refused((const char *[]){"f", "g", "h"}, (const char *[]){NULL, "f", "f"},
                       (mode_t[]){AE_IFREG, AE_IFREG, AE_IFREG}, 3, 600 << 10, "--workspace-max");
        /* Refused entries count toward the entry limit (1000 here). */
        {
                struct ws_manifest m = {0};
                struct ws_changeset cs;
                struct lg_err *err = NULL;
                struct ws_limits small = {.max_bytes = 1 << 20, .max_entries = 10};
                char store[600];

                for (int i = 0; i < 20; i++) {
                        static char nb[20][16];

                        snprintf(nb[i], sizeof(nb[i]), "fifo%d", i);
                        names[i] = nb[i];
                        types[i] = AE_IFIFO;
                        links[i] = NULL;
                }
                int fd = hostile_tar(names, links, types, 20, 0);

                snprintf(store, sizeof(store), "%s/manyfifos", base);
                CHECK(ws_unpack(fd, &m, "/nonexistent", store, "f", &small, &cs, &err) < 0);
                CHECK(err && strstr(err->msg, "more than 10 entries"));
                ws_changeset_free(&cs);
                err_free(&err);
                close(fd);
        }
        /* A component longer than NAME_MAX is hostile, never cut. */
        memset(longname, 'a', 299);
        longname[299] = '\0';
        expect_refused((const char *[]){longname}, NULL, (mode_t[]){AE_IFREG}, 1, 1, "unsafe name");
}

/* For the tests below: the approval flow (a cut card is high risk). */
#include "policy/approve.h"

/* The change set's entry at path (ADD: the new side, else the old), or NULL. */
static const struct ws_change *change_at(const struct ws_changeset *cs, const char *path)
{
        for (size_t i = 0; i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];

                if (strcmp(c->op == WS_ADD ? c->new.path : c->old.path, path) == 0)
                        return c;
        }
        return NULL;
}

TEST(names_that_are_not_utf8_are_kept_byte_exact)
{
        struct ws_manifest m;
        struct ws_changeset cs, loaded;
        struct lg_err *err = NULL;
        char dir[512], store[600], guest[600], p[700], *json = NULL, target[64];
        const struct ws_change *f, *l;
        size_t len;
        ssize_t n;

        make_ws("latin1", dir, sizeof(dir), &m);
        /* Latin-1 "café.txt" (0xe9), a link to it named "l\xe9", and a Latin-1 line of text. */
        int fd = guest_round("latin1", dir,
                             "printf 'caf\\351\\n' > \"$(printf 'caf\\351.txt')\" && "
                             "ln -s \"$(printf 'caf\\351.txt')\" \"$(printf 'l\\351')\"");

        snprintf(store, sizeof(store), "%s/latin1/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t-latin1", &lim, &cs, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        close(fd);
        CHECK(change_at(&cs, "caf\xe9.txt") != NULL);
        CHECK(change_at(&cs, "l\xe9") != NULL);

        /* Saved (no longer "Cannot allocate memory"), in the byte-exact form. */
        CHECK(ws_changeset_save(&cs, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        snprintf(p, sizeof(p), "%s/changes.json", store);
        CHECK(fs_read_file(p, 1u << 20, &json, &len) == 0);
        CHECK(json && strstr(json, "\"hex\": \"636166e92e747874\"")); /* caf\xe9.txt */
        free(json);

        /* Loaded back byte-identical: the name, the link's name and its target. */
        CHECK(ws_changeset_load(store, &loaded, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        CHECK_EQ_INT(loaded.n, cs.n);
        f = change_at(&loaded, "caf\xe9.txt");
        l = change_at(&loaded, "l\xe9");
        CHECK(f != NULL && f->op == WS_ADD && f->new.type == WS_REG && f->new.size == 5);
        CHECK(l != NULL && l->new.type == WS_LNK &&
              l->new.link &&strcmp(l->new.link, "caf\xe9.txt") == 0);
        CHECK_EQ_STR(loaded.dir, cs.dir);

        /* The card shows the name escaped, never the raw byte. */
        struct policy_decision d = {.verdict = POLICY_RED, .risk = POLICY_RISK_LOW};
        struct card *c = card_new("workspace.apply", "apply", "sb-test", &d);
        int escaped = 0;

        CHECK(c != NULL && ws_card(&loaded, c, &err) == 0);
        for (size_t i = 0; c && i < c->n_lines; i++) {
                escaped |= strstr(c->lines[i].text, "caf\\xe9.txt") != NULL;
                CHECK(strchr(c->lines[i].text, '\xe9') == NULL);
        }
        CHECK(escaped);
        card_free(c);

        /* Applied under exactly those bytes. */
        CHECK(ws_apply(&loaded, &err) == 0);
        if (err)
                fprintf(stderr, "    %s\n", err->msg);
        err_free(&err);
        snprintf(p, sizeof(p), "%s/caf\xe9.txt", dir);
        json = NULL;
        CHECK(fs_read_file(p, 64, &json, &len) == 0);
        CHECK(json && len == 5 && memcmp(json, "caf\xe9\n", 5) == 0);
        free(json);
        snprintf(p, sizeof(p), "%s/l\xe9", dir);
        n = readlink(p, target, sizeof(target) - 1);
        CHECK(n == 8 && memcmp(target, "caf\xe9.txt", 8) == 0);
        /* Nothing else changed: the guest's tree, file by file (ws_pack is not used here). */
        snprintf(guest, sizeof(guest), "%s/latin1/guest", base);
        sh("diff -r --no-dereference %s %s", dir, guest);
        ws_changeset_free(&cs);
        ws_changeset_free(&loaded);
        ws_manifest_free(&m);
}

TEST(load_refuses_unsafe_names_in_byte_form)
{
        static const char *const bad[] = {
            "{\"hex\":\"2e2e2f78\"}",      /* "../x" */
            "{\"hex\":\"6100\"}",          /* a NUL */
            "{\"hex\":\"61\",\"more\":1}", /* not the form */
            "{\"hex\":\"6g\"}",            /* not hex */
            "{\"hex\":\"616\"}",           /* odd */
            "{\"b64\":\"YQ==\"}",          /* unknown form */
            "\"a/\\u0000b\"",              /* a NUL as a string */
        };
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        char store[600], p[700], text[1024];

        setup();
        snprintf(store, sizeof(store), "%s/tampered-hex", base);
        CHECK(fs_mkdir_p(store, 0700) == 0);
        snprintf(p, sizeof(p), "%s/changes.json", store);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(text, sizeof(text),
                         "{\"version\":1,\"id\":\"x\",\"dir\":\"/tmp\",\"changes\":[{\"op\":"
                         "\"delete\",\"path\":%s,\"old\":{\"type\":\"dir\",\"mode\":493}}],"
                         "\"refused\":[]}",
                         bad[i]);
                put(p, text);
                CHECK(ws_changeset_load(store, &cs, &err) < 0);
                if (err == NULL)
                        fprintf(stderr, "    loaded: %s\n", bad[i]);
                err_free(&err);
        }
        /* The same with a good name loads; a link target in byte form is checked too. */
        put(p, "{\"version\":1,\"id\":\"x\",\"dir\":{\"hex\":\"2f746d70\"},\"changes\":[{\"op\":"
               "\"delete\",\"path\":{\"hex\":\"64e9\"},\"old\":{\"type\":\"dir\",\"mode\":493}}],"
               "\"refused\":[{\"hex\":\"ff\"}]}");
        CHECK(ws_changeset_load(store, &cs, &err) == 0);
        CHECK(cs.n == 1 && strcmp(cs.c[0].old.path, "d\xe9") == 0);
        CHECK(cs.dir && strcmp(cs.dir, "/tmp") == 0);
        CHECK(cs.n_refused == 1 && strcmp(cs.refused[0], "\xff") == 0);
        ws_changeset_free(&cs);
        err_free(&err);
        put(p, "{\"version\":1,\"id\":\"x\",\"dir\":\"/tmp\",\"changes\":[{\"op\":\"add\","
               "\"path\":\"l\",\"new\":{\"type\":\"symlink\",\"mode\":511,\"target\":"
               "{\"hex\":\"2e2e2f6574632f706173737764\"}}}],\"refused\":[]}"); /* ../etc/passwd */
        CHECK(ws_changeset_load(store, &cs, &err) < 0);
        err_free(&err);
}

TEST(card_lists_every_file_before_any_diff)
{
        struct ws_manifest m;
        struct ws_changeset cs;
        struct lg_err *err = NULL;
        struct policy_decision d = {.verdict = POLICY_RED, .risk = POLICY_RISK_LOW};
        char dir[512], store[600];
        size_t last_header = 0, first_diff = 0, named = 0, more = 0;
        int fd;

        make_ws("cardorder", dir, sizeof(dir), &m);
        fd = guest_round("cardorder", dir,
                         "printf 'one\\nTWO\\nthree\\n' > a.txt && echo z > zzz.txt && "
                         "for i in $(seq 1 25); do mkfifo pipe$i; done");
        snprintf(store, sizeof(store), "%s/cardorder/store", base);
        CHECK(ws_unpack(fd, &m, dir, store, "t-order", &lim, &cs, &err) == 0);
        close(fd);
        CHECK_EQ_INT(cs.n_refused, 25);
        struct card *c = card_new("workspace.apply", "apply", "sb-test", &d);

        CHECK(c != NULL && ws_card(&cs, c, &err) == 0);
        for (size_t i = 0; c && i < c->n_lines; i++) {
                const struct card_line *l = &c->lines[i];

                if (l->kind == CARD_HEADING && (l->text[0] == 'A' || l->text[0] == 'M'))
                        last_header = i;
                if (first_diff == 0 && (l->kind == CARD_HUNK || l->kind == CARD_ADD))
                        first_diff = i;
                named += strstr(l->text, "not applied: ") != NULL;
                more += strstr(l->text, "... and 5 more") != NULL;
        }
        CHECK(last_header > 0 && first_diff > last_header);
        CHECK_EQ_INT(named, 20);
        CHECK_EQ_INT(more, 1);
        CHECK(c && !c->truncated);
        card_free(c);
        err_free(&err);
        ws_changeset_free(&cs);
        ws_manifest_free(&m);
}

TEST(a_file_list_longer_than_the_card_says_so_first_and_is_high_risk)
{
        struct ws_changeset cs = {0};
        struct lg_err *err = NULL;
        struct policy_decision d = {.verdict = POLICY_RED, .risk = POLICY_RISK_LOW};
        struct policy_action act = {.kind = POLICY_WORKSPACE_APPLY, .files_changed = 1};
        struct approve_ctx ctx = {.mode = APPROVE_MODE_DENY, .intr_fd = -1};
        struct approve_answer a;
        char home[600], name[32];
        size_t n = CARD_MAX_LINES + 10;

        setup();
        snprintf(home, sizeof(home), "%s/cut-home", base);
        CHECK(fs_mkdir_p(home, 0700) == 0);
        ctx.home = home;
        /* Mode changes on directories: one list line each, no diff. */
        cs.dir = strdup(base);
        cs.store = strdup(home);
        cs.id = strdup("t-cut");
        cs.c = calloc(n, sizeof(*cs.c));
        CHECK(cs.dir && cs.store && cs.id && cs.c);
        for (size_t i = 0; cs.c && i < n; i++) {
                snprintf(name, sizeof(name), "d%06zu", i);
                cs.c[i].op = WS_CHMOD;
                cs.c[i].old = (struct ws_entry){.path = strdup(name), .type = WS_DIR, .mode = 0755};
                cs.c[i].new = (struct ws_entry){.path = strdup(name), .type = WS_DIR, .mode = 0700};
                cs.n = cs.cap = i + 1;
                cs.chmodded++;
        }
        struct card *c = card_new("workspace.apply", "apply", "sb-test", &d);

        CHECK(c != NULL && ws_card(&cs, c, &err) == 0);
        CHECK(c && c->truncated && c->n_lines > 0 && c->lines[0].kind == CARD_NOTE &&
              strstr(c->lines[0].text, "the file list is longer than the card"));
        /* A card that cannot show everything is high risk, whatever the classifier said. */
        CHECK(c && approve_ask(&ctx, &act, c, NULL, &a, &err) == 0);
        CHECK(!approve_granted(&a));
        CHECK(c && c->decision.risk == POLICY_RISK_HIGH &&
              strstr(c->decision.reason, "the card is cut"));
        card_free(c);
        err_free(&err);
        ws_changeset_free(&cs);
}
