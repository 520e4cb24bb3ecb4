/* SPDX-License-Identifier: Apache-2.0 */
#include "net/http_head.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The end of the head: the first CRLF CRLF. Bare LFs are not accepted. */
static const char *head_end(const char *buf, size_t n)
{
        for (size_t i = 3; i < n; i++) {
                if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
                    buf[i - 3] == '\r')
                        return buf + i + 1;
        }
        return NULL;
}

/* "host[:port]" (len bytes) into req; default_port when none. */
static int parse_authority(const char *a, size_t len, unsigned default_port, struct net_req *req)
{
        const char *colon = NULL;
        size_t hlen = len;
        unsigned v = 0;

        if (len > 0 && a[0] == '[') {
                const char *close = memchr(a, ']', len);

                if (close == NULL)
                        return -EINVAL;
                hlen = (size_t)(close - a) + 1;
                if (hlen < len && a[hlen] != ':')
                        return -EINVAL;
                colon = hlen < len ? a + hlen : NULL;
        } else {
                colon = memchr(a, ':', len);
                if (colon != NULL)
                        hlen = (size_t)(colon - a);
        }
        req->port = default_port;
        if (colon != NULL) {
                size_t plen = len - hlen - 1;

                if (plen == 0 || plen > 5 || colon[1] == '0')
                        return -EINVAL;
                for (size_t i = 0; i < plen; i++) {
                        if (colon[1 + i] < '0' || colon[1 + i] > '9')
                                return -EINVAL;
                        v = v * 10 + (unsigned)(colon[1 + i] - '0');
                }
                if (v == 0 || v > 65535)
                        return -EINVAL;
                req->port = v;
        }
        return net_host_normalise(a, hlen, req->host, sizeof(req->host));
}

/* Visible ASCII only: no spaces, no control bytes, no 8-bit bytes. */
static int token_ok(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                        return 0;
        }
        return n > 0;
}

int net_http_parse(const char *buf, size_t n, struct net_req *req)
{
        const char *end = head_end(buf, n < NET_MAX_HEAD ? n : NET_MAX_HEAD), *eol, *sp1, *sp2;
        const char *target, *line;
        size_t tlen;
        int host_headers = 0, r;
        struct net_req hosthdr;

        memset(req, 0, sizeof(*req));
        req->content_length = -1;
        if (end == NULL)
                return n >= NET_MAX_HEAD ? -EMSGSIZE : -EAGAIN;
        req->head_len = (size_t)(end - buf);
        eol = memchr(buf, '\r', req->head_len);
        if (eol == NULL || eol[1] != '\n')
                return -EINVAL;
        req->line_len = (size_t)(eol - buf) + 2;
        /* METHOD SP target SP HTTP/1.x */
        sp1 = memchr(buf, ' ', (size_t)(eol - buf));
        if (sp1 == NULL)
                return -EINVAL;
        sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
        if (sp2 == NULL || (size_t)(eol - sp2 - 1) != 8 ||
            (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
                return -EINVAL;
        req->method_len = (size_t)(sp1 - buf);
        target = sp1 + 1;
        tlen = (size_t)(sp2 - target);
        if (!token_ok(buf, req->method_len) || !token_ok(target, tlen))
                return -EINVAL;
        if (req->method_len == 7 && memcmp(buf, "CONNECT", 7) == 0) {
                req->kind = NET_REQ_CONNECT;
                /* CONNECT takes an authority and nothing else; no default port. */
                if (memchr(target, ':', tlen) == NULL)
                        return -EINVAL;
                r = parse_authority(target, tlen, 0, req);
                if (r < 0)
                        return r;
                if (req->port == 0)
                        return -EINVAL; /* "[::1]": the colon was the address's */
        } else {
                const char *auth, *path;

                req->kind = NET_REQ_PLAIN;
                if (tlen < 8 || strncasecmp(target, "http://", 7) != 0)
                        return -EINVAL; /* origin form, https:// or another scheme */
                auth = target + 7;
                path = memchr(auth, '/', tlen - 7);
                if (path == NULL)
                        path = target + tlen; /* "http://host" means "/" */
                if (memchr(auth, '@', (size_t)(path - auth)) != NULL ||
                    memchr(auth, '?', (size_t)(path - auth)) != NULL ||
                    memchr(auth, '#', (size_t)(path - auth)) != NULL)
                        return -EINVAL; /* userinfo, or a query before any path */
                r = parse_authority(auth, (size_t)(path - auth), 80, req);
                if (r < 0)
                        return r;
                req->path_off = (size_t)(path - buf);
                req->path_len = (size_t)(target + tlen - path);
        }
        /* Headers: a Host header, when present, must name the same destination. */
        for (line = eol + 2; line < end - 2; line = eol + 2) {
                const char *colon, *v;
                size_t llen;

                eol = memchr(line, '\r', (size_t)(end - line));
                if (eol == NULL || eol[1] != '\n')
                        return -EINVAL;
                llen = (size_t)(eol - line);
                colon = memchr(line, ':', llen);
                if (colon == NULL || colon == line || !token_ok(line, (size_t)(colon - line)))
                        return -EINVAL; /* also refuses obsolete line folding */
                for (const char *c = colon + 1; c < eol; c++) {
                        if ((unsigned char)*c < 0x20 && *c != '\t')
                                return -EINVAL;
                }
                if ((size_t)(colon - line) == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
                        return -EINVAL;
                if ((size_t)(colon - line) == 14 && strncasecmp(line, "content-length", 14) == 0) {
                        long long cl = 0;
                        const char *c = colon + 1;

                        while (c < eol && (*c == ' ' || *c == '\t'))
                                c++;
                        if (req->content_length >= 0 || c == eol)
                                return -EINVAL; /* two of them, or empty */
                        for (; c < eol && *c != ' ' && *c != '\t'; c++) {
                                if (*c < '0' || *c > '9' || cl > (1LL << 50))
                                        return -EINVAL;
                                cl = cl * 10 + (*c - '0');
                        }
                        for (; c < eol; c++) {
                                if (*c != ' ' && *c != '\t')
                                        return -EINVAL;
                        }
                        req->content_length = cl;
                        continue;
                }
                if ((size_t)(colon - line) != 4 || strncasecmp(line, "host", 4) != 0)
                        continue;
                if (++host_headers > 1)
                        return -EINVAL;
                for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
                        ;
                while (eol > v && (eol[-1] == ' ' || eol[-1] == '\t'))
                        eol--;
                memset(&hosthdr, 0, sizeof(hosthdr));
                if (parse_authority(v, (size_t)(eol - v), req->port, &hosthdr) < 0 ||
                    strcmp(hosthdr.host, req->host) != 0 || hosthdr.port != req->port)
                        return -EINVAL;
                eol = memchr(line, '\r', (size_t)(end - line)); /* back to the real end */
        }
        if (req->kind == NET_REQ_PLAIN && host_headers == 0 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
                return -EINVAL; /* HTTP/1.1 requires Host */
        return 0;
}

int net_http_rewrite(const char *buf, const struct net_req *req, char *out, size_t outsz)
{
        const char *line = buf + req->line_len, *end = buf + req->head_len - 2;
        size_t n = 0;
        int w;

        w = snprintf(out, outsz, "%.*s %.*s%s %.8s\r\n", (int)req->method_len, buf,
                     (int)req->path_len, buf + req->path_off, req->path_len ? "" : "/",
                     buf + req->line_len - 10);
        if (w < 0 || (size_t)w >= outsz)
                return -ENOSPC;
        n = (size_t)w;
        while (line < end) {
                const char *eol = memchr(line, '\r', (size_t)(end - line));
                size_t llen = (size_t)(eol - line);

                if (!(llen >= 6 && strncasecmp(line, "proxy-", 6) == 0) &&
                    !(llen >= 11 && strncasecmp(line, "connection:", 11) == 0)) {
                        if (n + llen + 2 > outsz)
                                return -ENOSPC;
                        memcpy(out + n, line, llen);
                        memcpy(out + n + llen, "\r\n", 2);
                        n += llen + 2;
                }
                line = eol + 2;
        }
        w = snprintf(out + n, outsz - n, "Connection: close\r\n\r\n");
        if (w < 0 || (size_t)w >= outsz - n)
                return -ENOSPC;
        return (int)(n + (size_t)w);
}
