/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log's chain (src/audit): what verify must catch, and concurrent writers. */
#include "audit/audit.h"
#include "common/err.h"
#include "common/fs.h"
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[] = "/tmp/lg-unit-audit.XXXXXX";

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

/* A fresh home with n records appended. */
static void fresh(char *home, size_t sz, const char *name, int n)
{
        struct lg_err *err = NULL;

        setup();
        snprintf(home, sz, "%s/%s", base, name);
        for (int i = 0; i < n; i++) {
                json_t *f = json_pack("{s:i,s:s}", "i", i, "what", "a test record");

                CHECK_EQ_INT(audit_append(home, "test.event", "sb-0123456789ab", f, i == 0, &err),
                             0);
                json_decref(f);
                err_free(&err);
        }
}

static int verify(const char *home, struct audit_report *rep, char *out, size_t outsz)
{
        struct lg_err *err = NULL;
        FILE *f = fmemopen(out, outsz, "w");
        int r = audit_verify(home, f, rep, &err);

        fclose(f);
        err_free(&err);
        return r;
}

/* Rewrite the log through a shell command (sed, head...) run on it. */
static void tamper(const char *home, const char *cmd)
{
        char c[PATH_MAX * 2];

        snprintf(c, sizeof(c), "cd %s/audit && %s", home, cmd);
        CHECK_EQ_INT(system(c), 0);
}

TEST(intact_log_verifies)
{
        char home[PATH_MAX], out[4096] = "";
        struct audit_report rep;

        fresh(home, sizeof(home), "intact", 20);
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 0);
        CHECK_EQ_INT(rep.records, 20);
        CHECK_EQ_INT(rep.problems, 0);
}

TEST(every_kind_of_tampering_is_found_and_located)
{
        static const struct {
                const char *name, *cmd, *says;
        } cases[] = {
            {"edit", "sed -i '5s/a test record/a harmless record/' audit.log", "line 6 (seq 6)"},
            {"delete", "sed -i '7d' audit.log", "line 7: seq 8 where 7 was due"},
            {"swap",
             "awk 'NR==4{h=$0;next} NR==5{print;print h;next} {print}' audit.log >x && mv x "
             "audit.log",
             "line 4: seq 5 where 4 was due"},
            {"insert", "sed -i '9a {\"seq\":10,\"event\":\"forged\",\"prev\":\"00\"}' audit.log",
             "line 10 (seq 10)"},
            {"cut end", "sed -i '$d' audit.log", "the head says seq 20"},
            {"edit end", "sed -i '$s/a test record/another/' audit.log", "the head says"},
            {"garbage", "sed -i '3s/.*/not json at all/' audit.log", "line 3: not a record"},
            {"torn end", "truncate -s -10 audit.log", "torn"},
        };
        char home[PATH_MAX], out[4096];
        struct audit_report rep;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char name[32];

                snprintf(name, sizeof(name), "tamper%zu", i);
                fresh(home, sizeof(home), name, 20);
                tamper(home, cases[i].cmd);
                memset(out, 0, sizeof(out));
                CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 1);
                if (strstr(out, cases[i].says) == NULL)
                        fprintf(stderr, "    %s: expected \"%s\" in:\n%s", cases[i].name,
                                cases[i].says, out);
                CHECK(strstr(out, cases[i].says) != NULL);
        }
}

TEST(a_torn_line_is_kept_and_acknowledged_by_the_next_writer)
{
        char home[PATH_MAX], out[4096] = "";
        struct audit_report rep;
        struct lg_err *err = NULL;

        fresh(home, sizeof(home), "torn", 5);
        tamper(home, "printf '{\"seq\":6,\"event\":\"half' >> audit.log");
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 1); /* unacknowledged: a finding */
        CHECK_EQ_INT(audit_append(home, "after.crash", NULL, NULL, 0, &err), 0);
        err_free(&err);
        memset(out, 0, sizeof(out));
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 0);
        CHECK_EQ_INT(rep.torn, 1);
        CHECK_EQ_INT(rep.records, 7); /* 5 + audit.torn + after.crash */
        tamper(home, "grep -q '\"event\":\"audit.torn\",\"torn_bytes\":22,' audit.log");
}

TEST(concurrent_writers_never_fork_the_chain)
{
        char home[PATH_MAX], out[8192] = "";
        struct audit_report rep;
        pid_t pids[4];

        fresh(home, sizeof(home), "concurrent", 1);
        for (int k = 0; k < 4; k++) {
                pids[k] = fork();
                if (pids[k] == 0) {
                        struct lg_err *err = NULL;

                        for (int i = 0; i < 250; i++) {
                                if (audit_append(home, "writer", NULL, NULL, 0, &err) < 0)
                                        _exit(1);
                        }
                        _exit(0);
                }
        }
        for (int k = 0; k < 4; k++) {
                int st = -1;

                CHECK(waitpid(pids[k], &st, 0) == pids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 0);
        CHECK_EQ_INT(rep.records, 1001);
        if (rep.problems)
                fprintf(stderr, "%s", out);
}

TEST(no_log_is_intact)
{
        char home[PATH_MAX], out[256] = "";
        struct audit_report rep;

        setup();
        snprintf(home, sizeof(home), "%s/none", base);
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 0);
        CHECK_EQ_INT(rep.records, 0);
}

/* The next ordinary append must not make a tampered end look whole. */
TEST(tampering_at_the_end_survives_the_next_append)
{
        static const struct {
                const char *name, *cmd, *says;
        } cases[] = {
            {"cut", "sed -i '$d' audit.log", "head at seq 10"},
            {"edit", "sed -i '$s/a test record/another/' audit.log", "head at seq 10"},
            {"shrink", "truncate -s -$(($(tail -1 audit.log | wc -c) - 1)) audit.log",
             "head at seq 10"},
            {"gone", "rm audit.log", "is gone"},
        };
        char home[PATH_MAX], out[4096], name[32];
        struct audit_report rep;
        struct lg_err *err = NULL;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(name, sizeof(name), "end%zu", i);
                fresh(home, sizeof(home), name, 10);
                tamper(home, cases[i].cmd);
                if (strcmp(cases[i].name, "gone") != 0) {
                        CHECK_EQ_INT(audit_append(home, "innocent", NULL, NULL, 0, &err), 0);
                        err_free(&err);
                }
                memset(out, 0, sizeof(out));
                CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 1);
                if (strstr(out, cases[i].says) == NULL)
                        fprintf(stderr, "    %s: expected \"%s\" in:\n%s", cases[i].name,
                                cases[i].says, out);
                CHECK(strstr(out, cases[i].says) != NULL);
        }
}

TEST(a_writer_killed_between_writes_does_not_lock_the_log)
{
        char home[PATH_MAX], out[4096] = "";
        struct audit_report rep;
        struct lg_err *err = NULL;

        fresh(home, sizeof(home), "killed", 4);
        /* A complete line that is not a record, then nothing: what a crash can leave. */
        tamper(home, "printf '{\"seq\":5,\"ti\\n' >> audit.log");
        CHECK_EQ_INT(audit_append(home, "next", NULL, NULL, 0, &err), 0);
        err_free(&err);
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 0);
        CHECK_EQ_INT(rep.torn, 1);
        /* Garbage swapped for other garbage after it was recorded: found. */
        tamper(home, "sed -i 's/^{\"seq\":5,\"ti$/{\"seq\":5,\"xx/' audit.log");
        memset(out, 0, sizeof(out));
        CHECK_EQ_INT(verify(home, &rep, out, sizeof(out)), 1);
        CHECK(strstr(out, "line 5: not a record") != NULL);
}
