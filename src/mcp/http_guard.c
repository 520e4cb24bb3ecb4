/* SPDX-License-Identifier: Apache-2.0 */
/* Access checks for the Streamable HTTP transport (see http_guard.h). */
#include "mcp/http_guard.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

static int token_valid(const char *s, size_t len)
{
        if (len < HTTP_TOKEN_LEN)
                return 0;
        for (size_t i = 0; i < HTTP_TOKEN_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return 0;
        return len == HTTP_TOKEN_LEN || (len == HTTP_TOKEN_LEN + 1 && s[HTTP_TOKEN_LEN] == '\n');
}

/* Write a whole token beside path, then link it in: never replaces one (-EEXIST). */
static int token_create(const char *path, const char *text)
{
        char tmp[PATH_MAX];
        int fd, r = 0;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (fd_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && link(tmp, path) < 0)
                r = -errno;
        unlink(tmp);
        return r;
}

int http_guard_token(const char *home, char tok[HTTP_TOKEN_LEN + 1], struct lg_err **err)
{
        char path[PATH_MAX], fresh[HTTP_TOKEN_LEN + 2], *text = NULL;
        unsigned char rnd[HTTP_TOKEN_LEN / 2];
        size_t len = 0;
        int r;

        if ((size_t)snprintf(path, sizeof(path), "%s/mcp-http.token", home) >= sizeof(path))
                return err_set(err, LG_EK_USAGE, ENAMETOOLONG, "%s: path too long", home);
        r = fs_read_file(path, 256, &text, &len);
        if (r == -ENOENT) {
                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return err_set(err, LG_EK_INTERNAL, errno, "getrandom");
                for (size_t i = 0; i < sizeof(rnd); i++)
                        snprintf(fresh + 2 * i, 3, "%02x", rnd[i]);
                fresh[HTTP_TOKEN_LEN] = '\n';
                fresh[HTTP_TOKEN_LEN + 1] = '\0';
                r = token_create(path, fresh);
                if (r < 0 && r != -EEXIST)
                        return err_set(err, LG_EK_INTERNAL, -r, "write %s", path);
                /* Made once: if two servers raced, both use the one that landed first. */
                r = fs_read_file(path, 256, &text, &len);
        }
        if (r < 0)
                return err_set(err, LG_EK_INTERNAL, -r, "read %s", path);
        if (!token_valid(text, len)) {
                free(text);
                return err_set(err, LG_EK_USAGE, EINVAL,
                               "%s: not a token (%d lowercase hex digits); remove it to get a new "
                               "one",
                               path, HTTP_TOKEN_LEN);
        }
        memcpy(tok, text, HTTP_TOKEN_LEN);
        tok[HTTP_TOKEN_LEN] = '\0';
        free(text);
        return 0;
}

int http_guard_bearer_ok(const char *authorization, const char *token)
{
        size_t n = strlen(token);

        if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
                return 0;
        authorization += 7;
        while (*authorization == ' ')
                authorization++;
        /* The length is no secret (it is fixed); the bytes are compared in constant time. */
        return strlen(authorization) == n && CRYPTO_memcmp(authorization, token, n) == 0;
}

/* name is one of ours; rest is what follows it. */
static const char *loopback_name(const char *s)
{
        static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                size_t n = strlen(names[i]);

                if (strncasecmp(s, names[i], n) == 0)
                        return s + n;
        }
        return NULL;
}

/* ":PORT" exactly, or "" when want is 0 (any port). */
static int port_is(const char *s, unsigned want, int any)
{
        char *end;
        unsigned long p;

        if (*s == '\0')
                return any;
        if (*s != ':' || s[1] < '0' || s[1] > '9')
                return 0;
        errno = 0;
        p = strtoul(s + 1, &end, 10);
        return errno == 0 && *end == '\0' && p <= 65535 && (any || p == want);
}

int http_guard_host_ok(const char *host, unsigned port)
{
        const char *rest = host ? loopback_name(host) : NULL;

        return rest != NULL && port_is(rest, port, 0);
}

int http_guard_origin_ok(const char *origin)
{
        const char *rest;

        if (origin == NULL)
                return 1;
        if (strncasecmp(origin, "http://", 7) == 0)
                origin += 7;
        else if (strncasecmp(origin, "https://", 8) == 0)
                origin += 8;
        else
                return 0; /* "null" (a sandboxed frame, a file: page) included */
        rest = loopback_name(origin);
        return rest != NULL && port_is(rest, 0, 1);
}

int http_guard_accepts(const char *accept, const char *type)
{
        const char *slash = strchr(type, '/');
        size_t major = slash ? (size_t)(slash - type) : strlen(type);

        if (accept == NULL)
                return 1;
        /* Each element: a media range, optional parameters after ';', separated by ','. */
        for (const char *p = accept; *p != '\0';) {
                size_t n;

                while (*p == ' ' || *p == ',')
                        p++;
                n = strcspn(p, ",; ");
                if ((n == strlen(type) && strncasecmp(p, type, n) == 0) ||
                    (n == 3 && strncmp(p, "*/*", 3) == 0) ||
                    (n == major + 2 && strncasecmp(p, type, major + 1) == 0 && p[major + 1] == '*'))
                        return 1;
                p += strcspn(p, ",");
        }
        return 0;
}

int http_guard_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                          struct lg_err **err)
{
        const char *rest = loopback_name(s);
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        char *end;
        unsigned long port;

        if (rest == NULL || *rest != ':')
                return err_set(err, LG_EK_USAGE, EINVAL,
                               "--http %s: give 127.0.0.1:PORT, localhost:PORT or [::1]:PORT "
                               "(the server listens on loopback only: whoever reaches it runs "
                               "commands)",
                               s);
        errno = 0;
        port = strtoul(rest + 1, &end, 10);
        if (errno != 0 || end == rest + 1 || *end != '\0' || port > 65535)
                return err_set(err, LG_EK_USAGE, EINVAL, "--http %s: bad port", s);
        memset(ss, 0, sizeof(*ss));
        if (s[0] == '[') {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                in6->sin6_addr = in6addr_loopback;
                *len = sizeof(*in6);
        } else {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t)port);
                in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                *len = sizeof(*in);
        }
        return 0;
}
