/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/workloads.h"
#include "common/err.h"
#include "common/fs.h"
#include "run/run.h"
#include "run/run_opts.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_FILES      160
#define WS_FILE_BYTES (64u << 10) /* 160 x 64 KiB = 10 MiB */
#define NPM_REGISTRY  "registry.npmjs.org"

/* The rest are built by workloads_init(): their lines name ports and files made then. */
static const struct workload table[] = {
    {"files-1000", "write 1000 small files, read them back, SHA-256",
     "d=$(mktemp -d) && cd $d && i=1 && while [ $i -le 1000 ]; do echo \"file $i\" >f$i; "
     "i=$((i+1)); done && cat $(seq -f f%g 1000) | sha256sum | cut -d' ' -f1",
     "", NULL, NULL, 0, ""},
    {"file-64m", "write a 64 MiB file, read it back, SHA-256",
     "head -c 67108864 /dev/zero | tr '\\000' a >/tmp/big && sha256sum /tmp/big | cut -d' ' -f1 "
     "&& rm /tmp/big",
     "", NULL, NULL, 0, ""},
    {"workspace", "10 MiB workspace in (160 files), checksum, edit, its changes out",
     "cat f* | sha256sum | cut -c1-64 && for i in 0 1 2 3 4 5 6 7 8 9; do echo changed >>f00$i; "
     "done && for k in 1 2 3 4 5; do echo new $k >n$k; done && rm f158 f159",
     "", NULL, NULL, 1, ""},
    {"python", "python3: parse JSON, arithmetic, write a file and read it",
     "python3 -c 'import json; d = json.loads(\"{\\\"xs\\\": [1, 2, 3, 4]}\"); "
     "open(\"/tmp/r.json\", \"w\").write(json.dumps({\"sum\": sum(x * x for x in d[\"xs\"])})); "
     "print(open(\"/tmp/r.json\").read())'",
     "{\"sum\": 30}\n", NULL, NULL, 0, ""},
    {"python-venv", "python3 -m venv, then its interpreter",
     "python3 -m venv /tmp/v && /tmp/v/bin/python -c 'import sys; print(sys.prefix)'", "/tmp/v\n",
     NULL, NULL, 0, ""},
    {"node", "node: compute, write a file and read it",
     "node -e 'const fs = require(\"fs\"); fs.writeFileSync(\"/tmp/n.json\", "
     "JSON.stringify({n: [1, 2, 3].reduce((a, b) => a + b)})); "
     "console.log(fs.readFileSync(\"/tmp/n.json\", \"utf8\"))'",
     "{\"n\":6}\n", NULL, NULL, 0, ""},
    /*
     * From the real registry, through the proxy; then a registry that is not
     * allowed must fail at once with the proxy's 403 (no retries to wait out).
     */
    {"npm", "npm install ms, is-number from " NPM_REGISTRY " (allowed); another registry: 403",
     "cd $(mktemp -d) && npm install --no-audit --no-fund --no-update-notifier "
     "--fetch-retries=0 ms@2.1.3 is-number@7.0.0 >/tmp/npm.log 2>&1 || { tail -5 /tmp/npm.log "
     ">&2; exit 1; }; node -e 'console.log(require(\"ms\")(\"2h\"), require(\"is-number\")(5))' "
     "&& if npm view left-pad version --registry https://registry.yarnpkg.com/ "
     "--fetch-retries=0 >/tmp/v.log 2>&1; then echo leaked; else grep -q E403 /tmp/v.log && "
     "echo refused-403; fi",
     "7200000 true\nrefused-403\n", NULL, NULL, 0, ""},
    {"git", "git: init, commit, diff, commit, log",
     "cd $(mktemp -d) && git init -q && git config user.email b@lg && git config user.name b "
     "&& echo one >a && git add a && git commit -qm one && echo two >>a && "
     "git diff --stat | tail -1 && git commit -qam two && git log --oneline | wc -l",
     " 1 file changed, 1 insertion(+)\n2\n", NULL, NULL, 0, ""},
    {"http", "1 MiB over HTTP and HTTPS from host servers via the proxy; a third URL: 403", "", "",
     NULL, NULL, 0, ""},
};

#define NTABLE (sizeof(table) / sizeof(table[0]))

static void hex_of(const unsigned char *d, size_t n, char *hex)
{
        for (size_t i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The digest md has taken so far, as hex and a newline, into out. */
static void digest_line(EVP_MD_CTX *md, char *out, size_t outsz)
{
        unsigned char d[32];
        unsigned int dl = 0;
        char hex[65];

        EVP_DigestFinal_ex(md, d, &dl);
        hex_of(d, dl, hex);
        snprintf(out, outsz, "%s\n", hex);
}

static void expect_files(struct workload *w, EVP_MD_CTX *md)
{
        static char block[1 << 16];

        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        if (strcmp(w->name, "files-1000") == 0) {
                for (int i = 1; i <= 1000; i++) {
                        char line[32];
                        int l = snprintf(line, sizeof(line), "file %d\n", i);

                        EVP_DigestUpdate(md, line, (size_t)l);
                }
        } else {
                memset(block, 'a', sizeof(block));
                for (size_t left = 64u << 20; left > 0; left -= sizeof(block))
                        EVP_DigestUpdate(md, block, sizeof(block));
        }
        digest_line(md, w->expect, sizeof(w->expect));
}

/*
 * The workspace: 160 files of distinct bytes. Expected: the SHA-256 of all
 * of them in name order, and f000 as the line leaves it.
 */
static int make_workspace(struct workloads *wl, struct workload *w, const char *home,
                          EVP_MD_CTX *md, struct lg_err **err)
{
        static unsigned char data[WS_FILE_BYTES];
        const char *tmp = getenv("TMPDIR");
        struct run_opts o = {0};
        unsigned int dl;

        snprintf(wl->ws_dir, sizeof(wl->ws_dir), "%s/lg-bench-ws.XXXXXX",
                 tmp && tmp[0] == '/' ? tmp : "/tmp");
        if (mkdtemp(wl->ws_dir) == NULL) {
                wl->ws_dir[0] = '\0';
                return err_set(err, LG_EK_INTERNAL, errno, "make the workspace");
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        for (uint32_t i = 0; i < WS_FILES; i++) {
                char path[PATH_MAX + 16];

                for (uint32_t k = 0, x = 0x9e3779b9u * (i + 1); k < WS_FILE_BYTES; k++) {
                        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                        data[k] = (unsigned char)x;
                }
                snprintf(path, sizeof(path), "%s/f%03u", wl->ws_dir, i);
                if (fs_write_file_atomic(path, data, sizeof(data), 0644) < 0)
                        return err_set(err, LG_EK_INTERNAL, errno, "write %s", path);
                EVP_DigestUpdate(md, data, sizeof(data));
                if (i == 0) {
                        EVP_MD_CTX *m0 = EVP_MD_CTX_new();

                        if (m0 == NULL)
                                return err_set(err, LG_EK_INTERNAL, ENOMEM, "SHA-256");
                        EVP_DigestInit_ex(m0, EVP_sha256(), NULL);
                        EVP_DigestUpdate(m0, data, sizeof(data));
                        EVP_DigestUpdate(m0, "changed\n", 8);
                        EVP_DigestFinal_ex(m0, wl->f000_sha, &dl);
                        EVP_MD_CTX_free(m0);
                }
        }
        digest_line(md, w->expect, sizeof(w->expect));
        o.workspace = wl->ws_dir;
        o.workspace_max = WS_DEFAULT_MAX_BYTES;
        wl->ws_packed = 1; /* run_ws_free() either way */
        return run_ws_init(&wl->ws, home, &o, err);
}

/* Whether host:443 takes a TCP connection within 5 s, from this host. */
static int reachable(const char *host, char *why, size_t whysz)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        int r = getaddrinfo(host, "443", &hints, &ai), ok = 0;

        if (r != 0) {
                snprintf(why, whysz, "%s does not resolve from this host: %s", host,
                         gai_strerror(r));
                return 0;
        }
        for (struct addrinfo *a = ai; a != NULL && !ok; a = a->ai_next) {
                int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int e = 0;
                socklen_t len = sizeof(e);

                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
                    (errno == EINPROGRESS && poll(&p, 1, 5000) == 1 &&
                     getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0))
                        ok = 1;
                close(fd);
        }
        freeaddrinfo(ai);
        if (!ok)
                snprintf(why, whysz, "%s:443 is not reachable from this host", host);
        return ok;
}

static int make_http(struct workloads *wl, struct workload *w, struct lg_err **err)
{
        char spec[128], why[256];
        int r = bench_origin_start(&wl->origin);

        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "start the origin servers");
        wl->origin_up = 1;
        snprintf(spec, sizeof(spec), "127.0.0.1:%u,127.0.0.1:%u", wl->origin.http_port,
                 wl->origin.https_port);
        if (net_allowlist_parse(spec, &wl->http_allow, why, sizeof(why)) < 0)
                return err_set(err, LG_EK_INTERNAL, 0, "allow-list %s: %s", spec, why);
        /* 127.0.0.2 is another host to the allow-list: refused before anything connects. */
        snprintf(w->line, sizeof(w->line),
                 "cat >/tmp/ca.pem && curl -sSf http://127.0.0.1:%u/blob | sha256sum | cut -c1-64 "
                 "&& curl -sSf --cacert /tmp/ca.pem https://127.0.0.1:%u/blob | sha256sum | "
                 "cut -c1-64 && curl -s -o /dev/null -w '%%{http_code}\\n' "
                 "http://127.0.0.2:%u/blob",
                 wl->origin.http_port, wl->origin.https_port, wl->origin.http_port);
        snprintf(w->expect, sizeof(w->expect), "%s\n%s\n403\n", wl->origin.blob_sha,
                 wl->origin.blob_sha);
        w->allow = &wl->http_allow;
        w->stdin_data = wl->origin.cert_pem;
        return 0;
}

int workloads_init(struct workloads *wl, const char *home, const char *only, struct lg_err **err)
{
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char why[256];
        int r = 0;

        memset(wl, 0, sizeof(*wl));
        wl->w = calloc(NTABLE, sizeof(*wl->w));
        if (wl->w == NULL || md == NULL) {
                EVP_MD_CTX_free(md);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "workloads");
        }
        for (size_t k = 0; r == 0 && k < NTABLE; k++) {
                struct workload *w = &wl->w[wl->n];

                if (only != NULL && strcmp(only, table[k].name) != 0)
                        continue;
                *w = table[k];
                wl->n++;
                if (strcmp(w->name, "files-1000") == 0 || strcmp(w->name, "file-64m") == 0)
                        expect_files(w, md);
                else if (w->workspace)
                        r = make_workspace(wl, w, home, md, err);
                else if (strcmp(w->name, "http") == 0)
                        r = make_http(wl, w, err);
                else if (strcmp(w->name, "npm") == 0) {
                        if (net_allowlist_parse(NPM_REGISTRY, &wl->npm_allow, why, sizeof(why)) < 0)
                                r = err_set(err, LG_EK_INTERNAL, 0, "allow-list: %s", why);
                        w->allow = &wl->npm_allow;
                        if (!reachable(NPM_REGISTRY, why, sizeof(why)))
                                snprintf(w->skip, sizeof(w->skip), "%s", why);
                }
        }
        EVP_MD_CTX_free(md);
        if (r == 0 && wl->n == 0)
                r = err_set(err, LG_EK_USAGE, 0, "no workload is called %s", only);
        return r;
}

static const struct ws_change *change_of(const struct ws_changeset *cs, const char *path)
{
        for (size_t i = 0; i < cs->n; i++) {
                const struct ws_change *c = &cs->c[i];
                const char *p = c->op == WS_ADD ? c->new.path : c->old.path;

                if (p != NULL && strcmp(p, path) == 0)
                        return c;
        }
        return NULL;
}

int workload_check(struct workloads *wl, const struct workload *w, const struct run_result *res,
                   struct lg_err **err)
{
        int r = 0;

        if (res->exit_code != 0 || res->signo != 0 || res->timed_out ||
            strcmp(res->out ? res->out : "", w->expect) != 0)
                r = err_set(err, LG_EK_INTERNAL, 0,
                            "workload %s gave a wrong result (exit %d, signal %d): stdout "
                            "[%.200s] want [%.200s], stderr [%.300s]",
                            w->name, res->exit_code, res->signo, res->out ? res->out : "",
                            w->expect, res->err ? res->err : "");
        if (w->workspace) {
                const struct ws_changeset *cs = &wl->ws.cs;
                const struct ws_change *c = change_of(cs, "f000");
                char got[65] = "-";

                if (c != NULL && c->op == WS_MODIFY)
                        hex_of(c->new.sha, 32, got);
                if (r == 0 &&
                    (!wl->ws.have_changes || cs->added != 5 || cs->modified != 10 ||
                     cs->deleted != 2 || cs->chmodded != 0 || cs->n_refused != 0 || c == NULL ||
                     c->op != WS_MODIFY || memcmp(c->new.sha, wl->f000_sha, 32) != 0))
                        r = err_set(err, LG_EK_INTERNAL, 0,
                                    "workspace: the change set is wrong: %zu added, %zu "
                                    "modified, %zu deleted, %zu chmodded, %zu refused (want "
                                    "5, 10, 2, 0, 0); f000 now %s",
                                    cs->added, cs->modified, cs->deleted, cs->chmodded,
                                    cs->n_refused, got);
        }
        return r;
}

void workload_drop_changes(struct workloads *wl)
{
        if (!wl->ws_packed || !wl->ws.have_changes || wl->ws.cs.store == NULL)
                return;
        if (fs_remove_tree(wl->ws.cs.store) < 0)
                fprintf(stderr, "luminaguard: warning: could not remove %s\n", wl->ws.cs.store);
        wl->ws.have_changes = 0;
}

void workloads_free(struct workloads *wl)
{
        if (wl->ws_packed)
                run_ws_free(&wl->ws);
        if (wl->ws_dir[0] != '\0' && fs_remove_tree(wl->ws_dir) < 0)
                fprintf(stderr, "luminaguard: warning: could not remove %s\n", wl->ws_dir);
        if (wl->origin_up)
                bench_origin_stop(&wl->origin);
        free(wl->w);
        memset(wl, 0, sizeof(*wl));
}
