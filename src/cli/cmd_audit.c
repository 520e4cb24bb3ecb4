/* SPDX-License-Identifier: Apache-2.0 */
/* `luminaguard audit verify|tail|show`: the audit log for people (src/audit). */
#include "audit/audit.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/parse.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char audit_usage[] =
    "usage: luminaguard audit verify\n"
    "       luminaguard audit tail [-n N]\n"
    "       luminaguard audit show [--sandbox ID] [--event NAME]\n"
    "\n"
    "  verify  check the hash chain of $LUMINAGUARD_HOME/audit/audit.log: every record in\n"
    "          place, unchanged, none removed, added, moved or torn. Exit 0 intact, 1 not\n"
    "          (each finding names the line).\n"
    "  tail    the last N records (default 20), one line each.\n"
    "  show    records of one sandbox and/or one event, one line each.\n";

/* Text from the log, for a terminal: control and non-ASCII bytes become '?'. */
static void put_safe(const char *s, size_t n, int width)
{
        int w = 0;

        for (size_t i = 0; i < n; i++, w++)
                putchar((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?');
        for (; w < width; w++)
                putchar(' ');
}

static void put_field(json_t *j, const char *key, int width)
{
        const char *v = json_string_value(json_object_get(j, key));

        put_safe(v ? v : "-", v ? strlen(v) : 1, width);
        fputs("  ", stdout);
}

/* One record as a line for people: seq, time, event, sandbox, then the other fields. */
static void print_record(const char *line, size_t len)
{
        json_t *j = json_loadb(line, len, 0, NULL), *v;
        const char *k;

        if (j == NULL) {
                fputs("(not a record) ", stdout);
                put_safe(line, len > 120 ? 120 : len, 0);
                putchar('\n');
                return;
        }
        printf("%6lld  ", (long long)json_integer_value(json_object_get(j, "seq")));
        put_field(j, "time", 30);
        put_field(j, "event", 15);
        put_field(j, "sandbox", 15);
        json_object_foreach(j, k, v)
        {
                char *t;

                if (!strcmp(k, "seq") || !strcmp(k, "time") || !strcmp(k, "event") ||
                    !strcmp(k, "sandbox") || !strcmp(k, "prev"))
                        continue;
                t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII |
                                      JSON_REAL_PRECISION(10));
                putchar(' ');
                put_safe(k, strlen(k), 0);
                putchar('=');
                put_safe(t ? t : "?", t ? strlen(t) : 1, 0);
                free(t);
        }
        putchar('\n');
        json_decref(j);
}

static int each_line(const char *home, const char *sandbox, const char *event, long tail)
{
        char log[PATH_MAX + 16];
        FILE *f;
        char *line = NULL, **ring = NULL;
        size_t cap = 0, n = 0;
        ssize_t len;

        if (audit_log_path(home, log, sizeof(log)) < 0)
                return LG_EXIT_INTERNAL;
        f = fopen(log, "re");
        if (f == NULL) {
                if (errno == ENOENT)
                        return 0;
                fprintf(stderr, "luminaguard: error: open %s: %s\n", log, strerror(errno));
                return LG_EXIT_INTERNAL;
        }
        if (tail > 0 && (ring = calloc((size_t)tail, sizeof(*ring))) == NULL) {
                fclose(f);
                return LG_EXIT_INTERNAL;
        }
        while ((len = getline(&line, &cap, f)) > 0) {
                json_t *j;

                if (tail > 0) {
                        free(ring[n % (size_t)tail]);
                        ring[n % (size_t)tail] = strndup(line, (size_t)len);
                        n++;
                        continue;
                }
                j = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, NULL);
                if ((sandbox == NULL ||
                     (json_string_value(json_object_get(j, "sandbox")) &&
                      strcmp(json_string_value(json_object_get(j, "sandbox")), sandbox) == 0)) &&
                    (event == NULL ||
                     (json_string_value(json_object_get(j, "event")) &&
                      strcmp(json_string_value(json_object_get(j, "event")), event) == 0)))
                        print_record(line, (size_t)len - (line[len - 1] == '\n'));
                json_decref(j);
        }
        for (size_t i = n > (size_t)tail ? n - (size_t)tail : 0; tail > 0 && i < n; i++) {
                char *l = ring[i % (size_t)tail];

                if (l != NULL)
                        print_record(l, strlen(l) - (l[0] && l[strlen(l) - 1] == '\n'));
        }
        for (long i = 0; ring != NULL && i < tail; i++)
                free(ring[i]);
        free(ring);
        free(line);
        fclose(f);
        return 0;
}

int cmd_audit(int argc, char **argv)
{
        char home[PATH_MAX];
        struct lg_err *err = NULL;
        struct audit_report rep;
        int r;

        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(audit_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? LG_EXIT_USAGE : 0;
        }
        if (cli_home(home, sizeof(home)) < 0)
                return LG_EXIT_INTERNAL;
        if (strcmp(argv[1], "verify") == 0 && argc == 2) {
                r = audit_verify(home, stdout, &rep, &err);
                if (r < 0) {
                        r = cli_report(err);
                        err_free(&err);
                        return r;
                }
                printf("audit verify: %llu records, %llu torn line(s) acknowledged, %llu "
                       "problem(s): %s\n",
                       (unsigned long long)rep.records, (unsigned long long)rep.torn,
                       (unsigned long long)rep.problems, r == 0 ? "intact" : "NOT INTACT");
                return r;
        }
        if (strcmp(argv[1], "tail") == 0) {
                uint64_t n = 20;

                if (argc == 4 && strcmp(argv[2], "-n") == 0 &&
                    parse_uint(argv[3], 1, 100000, &n) == 0)
                        return each_line(home, NULL, NULL, (long)n);
                if (argc == 2)
                        return each_line(home, NULL, NULL, 20);
        }
        if (strcmp(argv[1], "show") == 0) {
                const char *sandbox = NULL, *event = NULL;
                int i;

                for (i = 2; i + 1 < argc; i += 2) {
                        if (strcmp(argv[i], "--sandbox") == 0)
                                sandbox = argv[i + 1];
                        else if (strcmp(argv[i], "--event") == 0)
                                event = argv[i + 1];
                        else
                                break;
                }
                if (i == argc)
                        return each_line(home, sandbox, event, 0);
        }
        fprintf(stderr, "luminaguard: error: bad arguments for 'audit'\n%s", audit_usage);
        return LG_EXIT_USAGE;
}
