/* SPDX-License-Identifier: Apache-2.0 */
/* A Streamable HTTP MCP client for the benchmark (see bench_http.h). */
#include "bench/bench_http.h"
#include "common/err.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (8u << 20)

struct bench_http {
        CURL *h;
        struct curl_slist *hdrs;
        char url[256];
        char *body;
        size_t len;
        char sid[80];
        long next_id;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
        struct bench_http *c = arg;
        size_t add = size * n;
        char *b;

        if (c->len + add > BODY_MAX || (b = realloc(c->body, c->len + add + 1)) == NULL)
                return 0; /* curl fails the transfer */
        memcpy(b + c->len, p, add);
        c->body = b;
        c->len += add;
        b[c->len] = '\0';
        return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
        struct bench_http *c = arg;
        size_t len = size * n;

        if (len > 16 && strncasecmp(p, "Mcp-Session-Id:", 15) == 0) {
                const char *v = p + 15;
                size_t vl = len - 15;

                while (vl > 0 && *v == ' ')
                        v++, vl--;
                while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
                        vl--;
                snprintf(c->sid, sizeof(c->sid), "%.*s", (int)vl, v);
        }
        return len;
}

/* POST msg (stolen); the last JSON message of the answer (new reference) or NULL. */
static json_t *post(struct bench_http *c, json_t *msg, long *status, struct lg_err **err)
{
        char *text = json_dumps(msg, JSON_COMPACT), *last;
        json_t *ans = NULL;
        CURLcode cc;

        json_decref(msg);
        if (text == NULL)
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "bench http"), NULL;
        c->len = 0;
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, text);
        cc = curl_easy_perform(c->h);
        free(text);
        if (cc != CURLE_OK)
                return err_set(err, LG_EK_LOST, 0, "POST %s: %s", c->url, curl_easy_strerror(cc)),
                       NULL;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, status);
        if (c->len == 0)
                return NULL;
        /* An SSE body ends with the answer's event; a JSON body is the answer. */
        last = c->body;
        for (char *p = strstr(c->body, "data: "); p != NULL; p = strstr(p + 1, "\ndata: "))
                last = p[0] == '\n' ? p + 7 : p + 6;
        ans = json_loadb(last, strcspn(last, "\n"), 0, NULL);
        if (ans == NULL)
                err_set(err, LG_EK_LOST, 0, "POST %s: HTTP %ld, not JSON: %.200s", c->url, *status,
                        c->body);
        return ans;
}

static int set_headers(struct bench_http *c, const char *token)
{
        char auth[256], sid[128];

        curl_slist_free_all(c->hdrs);
        c->hdrs = NULL;
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        snprintf(sid, sizeof(sid), "Mcp-Session-Id: %s", c->sid);
        c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
        c->hdrs = curl_slist_append(c->hdrs, "Accept: application/json, text/event-stream");
        c->hdrs = curl_slist_append(c->hdrs, auth);
        if (c->sid[0] != '\0')
                c->hdrs = curl_slist_append(c->hdrs, sid);
        if (c->hdrs == NULL)
                return -ENOMEM;
        curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
        return 0;
}

struct bench_http *bench_http_open(const char *url, const char *token, struct lg_err **err)
{
        struct bench_http *c = calloc(1, sizeof(*c));
        json_t *ans;
        long status = 0;

        if (c == NULL || (c->h = curl_easy_init()) == NULL) {
                free(c);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "curl"), NULL;
        }
        snprintf(c->url, sizeof(c->url), "%s", url);
        curl_easy_setopt(c->h, CURLOPT_URL, c->url);
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 120000L);
        curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
        if (set_headers(c, token) < 0) {
                bench_http_close(c);
                return err_set(err, LG_EK_INTERNAL, ENOMEM, "curl"), NULL;
        }
        ans = post(c,
                   json_pack("{s:s, s:i, s:s, s:{s:s, s:{}, s:{s:s, s:s}}}", "jsonrpc", "2.0", "id",
                             0, "method", "initialize", "params", "protocolVersion", "2025-06-18",
                             "capabilities", "clientInfo", "name", "bench", "version", "1"),
                   &status, err);
        if (ans == NULL || status != 200 || c->sid[0] == '\0' || set_headers(c, token) < 0) {
                if (ans != NULL || *err == NULL)
                        err_set(err, LG_EK_START, 0, "initialize at %s: HTTP %ld", url, status);
                json_decref(ans);
                bench_http_close(c);
                return NULL;
        }
        json_decref(ans);
        ans = post(c,
                   json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized"),
                   &status, err);
        json_decref(ans);
        c->next_id = 1;
        return c;
}

json_t *bench_http_request(struct bench_http *c, const char *method, json_t *params,
                           struct lg_err **err)
{
        long status = 0;
        json_t *ans = post(c,
                           json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id",
                                     (json_int_t)c->next_id++, "method", method, "params", params),
                           &status, err),
               *res;

        if (ans == NULL) {
                if (*err == NULL)
                        err_set(err, LG_EK_LOST, 0, "%s: HTTP %ld, no answer", method, status);
                return NULL;
        }
        res = json_incref(json_object_get(ans, "result"));
        if (res == NULL)
                err_set(err, LG_EK_LOST, 0, "%s: HTTP %ld: %.200s", method, status, c->body);
        json_decref(ans);
        return res;
}

void bench_http_close(struct bench_http *c)
{
        if (c == NULL)
                return;
        if (c->sid[0] != '\0') {
                c->len = 0;
                curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, "DELETE");
                curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
                (void)curl_easy_perform(c->h); /* else the server expires it */
        }
        curl_slist_free_all(c->hdrs);
        curl_easy_cleanup(c->h);
        free(c->body);
        free(c);
}
