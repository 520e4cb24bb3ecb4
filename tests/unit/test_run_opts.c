/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_opts.h"
#include "common/err.h"
#include "proto/proto.h"
#include "unit.h"

#include <stdlib.h>

/*
 * Parse a NULL-terminated literal argv; returns run_opts_parse's result.
 * o->argv points into the argv it was given, so that array must outlive the
 * check: it is static here (one parse at a time).
 */
static int parse(struct run_opts *o, struct lg_err **err, const char *const *args)
{
        static char *argv[RUN_MAX_ENV * 2 + 8];
        int argc = 0;

        while (args[argc] != NULL && argc < RUN_MAX_ENV * 2 + 7) {
                argv[argc] = (char *)args[argc];
                argc++;
        }
        argv[argc] = NULL;
        return run_opts_parse(argc, argv, o, err);
}

TEST(defaults)
{
        const char *const a[] = {"run", "--", "true", NULL};
        struct lg_err *err = NULL;
        struct run_opts o;

        CHECK_EQ_INT(parse(&o, &err, a), 0);
        CHECK_EQ_INT(o.timeout_ms, 30000);
        CHECK_EQ_INT(o.memory_mib, 256);
        CHECK_EQ_INT(o.cpus, 1);
        CHECK(o.image == NULL); /* the config file decides */
        CHECK(o.workdir == NULL);
        CHECK_EQ_INT(o.envc, 0);
        CHECK_EQ_INT(o.argc, 1);
        CHECK_EQ_STR(o.argv[0], "true");
        run_opts_free(&o);
        err_free(&err);
}

TEST(all_options)
{
        const char *const a[] = {
            "run", "--timeout", "2m", "-m", "1G",     "--cpus",  "2",    "-e",
            "A=1", "--env",     "B=", "-w", "/tmp",   "--image", "base", "--boot-timeout",
            "5s",  "--",        "sh", "-c", "exit 3", NULL};
        struct lg_err *err = NULL;
        struct run_opts o;

        CHECK_EQ_INT(parse(&o, &err, a), 0);
        CHECK_EQ_INT(o.timeout_ms, 120000);
        CHECK_EQ_INT(o.memory_mib, 1024);
        CHECK_EQ_INT(o.cpus, 2);
        CHECK_EQ_INT(o.boot_timeout_ms, 5000);
        CHECK_EQ_INT(o.envc, 2);
        CHECK_EQ_STR(o.env[0], "A=1");
        CHECK_EQ_STR(o.env[1], "B=");
        CHECK(o.env[2] == NULL);
        CHECK_EQ_STR(o.workdir, "/tmp");
        CHECK_EQ_INT(o.argc, 3);
        CHECK_EQ_STR(o.argv[2], "exit 3");
        run_opts_free(&o);
        err_free(&err);
}

TEST(command_options_are_not_ours)
{
        /* Without "--" the command starts at the first non-option; its flags are its own. */
        const char *const a[] = {"run", "-t", "0", "ls", "-la", "--env", "X=1", NULL};
        struct lg_err *err = NULL;
        struct run_opts o;

        CHECK_EQ_INT(parse(&o, &err, a), 0);
        CHECK_EQ_INT(o.timeout_ms, 0);
        CHECK_EQ_INT(o.envc, 0);
        CHECK_EQ_INT(o.argc, 4);
        CHECK_EQ_STR(o.argv[1], "-la");
        run_opts_free(&o);
        err_free(&err);
}

TEST(env_passthrough)
{
        const char *const a[] = {"run",           "--env", "LG_UNIT_SET", "--env",
                                 "LG_UNIT_UNSET", "true",  NULL};
        struct lg_err *err = NULL;
        struct run_opts o;

        setenv("LG_UNIT_SET", "from host", 1);
        unsetenv("LG_UNIT_UNSET");
        CHECK_EQ_INT(parse(&o, &err, a), 0);
        CHECK_EQ_INT(o.envc, 1);
        CHECK_EQ_STR(o.env[0], "LG_UNIT_SET=from host");
        run_opts_free(&o);
        err_free(&err);
}

TEST(usage_errors)
{
        static const char *const cases[][6] = {
            {"run", NULL},
            {"run", "--", NULL},
            {"run", "--bogus", "true", NULL},
            {"run", "--timeout", NULL},
            {"run", "--timeout", "soon", "true", NULL},
            {"run", "--memory", "12", "true", NULL},
            {"run", "--memory", "100T", "true", NULL},
            {"run", "--cpus", "0", "true", NULL},
            {"run", "--cpus", "65", "true", NULL},
            {"run", "--workdir", "relative", "true", NULL},
            {"run", "--env", "=x", "true", NULL},
            {"run", "--image", "../etc", "true", NULL},
            {"run", "--boot-timeout", "0", "true", NULL},
            {"run", "--", "", NULL},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct lg_err *err = NULL;
                struct run_opts o;
                int r = parse(&o, &err, cases[i]);

                CHECK(r < 0);
                CHECK(err != NULL && err->kind == LG_EK_USAGE && err->msg[0] != '\0');
                if (r >= 0 || err == NULL || err->kind != LG_EK_USAGE)
                        fprintf(stderr, "    case %zu accepted or wrong kind\n", i);
                run_opts_free(&o);
                err_free(&err);
        }
}

TEST(too_many_env)
{
        const char *a[RUN_MAX_ENV * 2 + 8];
        struct lg_err *err = NULL;
        struct run_opts o;
        size_t n = 0;

        a[n++] = "run";
        for (int i = 0; i <= RUN_MAX_ENV; i++) {
                a[n++] = "-e";
                a[n++] = "K=V";
        }
        a[n++] = "true";
        a[n] = NULL;
        CHECK(parse(&o, &err, a) < 0);
        CHECK(err != NULL && strstr(err->msg, "too many") != NULL);
        run_opts_free(&o);
        err_free(&err);
}

TEST(protocol_limits_checked_before_boot)
{
        static char big[PROTO_MAX_STR + 2];
        const char *a[] = {"run", "--", "echo", big, NULL};
        struct lg_err *err = NULL;
        struct run_opts o;

        memset(big, 'x', sizeof(big) - 1);
        CHECK(parse(&o, &err, a) < 0);
        CHECK(err != NULL && strstr(err->msg, "longer than") != NULL);
        run_opts_free(&o);
        err_free(&err);
        /* Exactly at the limit is fine. */
        big[PROTO_MAX_STR] = '\0';
        CHECK_EQ_INT(parse(&o, &err, a), 0);
        run_opts_free(&o);
        err_free(&err);
}
