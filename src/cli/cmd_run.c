/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `luminaguard run -- CMD`: one command in a fresh, throwaway sandbox.
 * The sandbox is destroyed on every path out of here — normal exit, timeout,
 * interrupt, lost VM — and its destruction is verified.
 */
#include "cli/cli.h"
#include "run/run_opts.h"
#include "common/err.h"
#include "common/fs.h"
#include "run/run_audit.h"
#include "run/run_job.h"
#include "common/config.h"
#include "run/run_egress.h"
#include "run/run_workspace.h"
#include "policy/policy.h"
#include "common/log.h"
#include "common/monotime.h"
#include "net/proxy.h"
#include "common/paths.h"
#include "proto/proto.h"
#include "sandbox/exec.h"
#include "sandbox/sandbox.h"
#include "sandbox/spawn.h"
#include "sandbox/agent_conn.h"
#include "image/image.h"
#include "pool/pool.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* SIGINT, SIGTERM, SIGHUP become readable events instead of killing us mid-cleanup. */
static int block_interrupts(sigset_t *old)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &set, old) < 0)
                return -errno;
        return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The guest wrote this text: no control characters reach the user's terminal. */
static void print_guest_text(const char *prefix, const char *text)
{
        fputs(prefix, stderr);
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
                fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
        fputc('\n', stderr);
}

/* Interrupted by SIGTERM or SIGHUP: exit as 128+N like a shell would report, not 130. */
static int interrupted_status(const struct lg_err *err, int intr_fd, int status)
{
        struct signalfd_siginfo si;

        if (err == NULL || err->kind != LG_EK_INTERRUPTED)
                return status;
        if (read(intr_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                return 128 + (int)si.ssi_signo;
        return status;
}

static int run_status(const struct run_opts *o, const struct sandbox_exec_result *res)
{
        if (res->spawn_errno != 0) {
                print_guest_text("luminaguard: error: ",
                                 res->message[0] ? res->message : strerror(res->spawn_errno));
                /* The agent names the failing step: a missing --workdir is not "command not found".
                 */
                if (strncmp(res->message, "exec ", 5) == 0 && res->spawn_errno == ENOENT)
                        return LG_EXIT_NOTFOUND;
                return LG_EXIT_NOEXEC;
        }
        if (res->timed_out) {
                fprintf(stderr,
                        "luminaguard: error: command timed out after %llu ms and was killed\n",
                        (unsigned long long)o->timeout_ms);
                return LG_EXIT_TIMEOUT;
        }
        if (res->signo != 0)
                return 128 + (res->signo & 0x7f);
        return res->exit_code & 0xff;
}

int cmd_run(int argc, char **argv)
{
        struct run_opts o;
        struct lg_err *err = NULL, *derr = NULL;
        struct sandbox *sb = NULL;
        struct sandbox_exec_result res;
        struct proto_exec x;
        static struct net_proxy proxy; /* its streams hold 16 KiB heads: not on the stack */
        static struct policy policy_rules;
        static struct run_ws wsbuf;
        static struct lg_config config; /* o.image may point into it */
        const struct policy *policy = NULL;
        struct run_ws *ws = NULL;
        char home[PATH_MAX];
        sigset_t oldmask;
        int intr_fd = -1, status, r, audit_failed = 0, ran = 0;

        r = run_opts_parse(argc, argv, &o, &err);
        if (r < 0 || o.help) {
                if (o.help) {
                        fputs(run_opts_usage, stdout);
                        run_opts_free(&o);
                        return 0;
                }
                status = cli_report(err);
                fputs("Try 'luminaguard run --help'.\n", stderr);
                goto out;
        }
        if (cli_home(home, sizeof(home)) < 0) {
                status = LG_EXIT_INTERNAL;
                goto out;
        }
        /* Everything the user got wrong is said before a sandbox starts. */
        if (o.image == NULL) {
                if (config_load(home, &config, &err) < 0) {
                        status = cli_report(err);
                        goto out;
                }
                o.image = config.image;
        }
        if (run_load_policy(home, &o, &policy_rules, &policy, &err) < 0) {
                status = cli_report(err);
                goto out;
        }
        if (o.workspace != NULL) {
                ws = &wsbuf;
                if (run_ws_init(ws, home, &o, &err) < 0) {
                        status = cli_report(err);
                        goto out;
                }
        }
        intr_fd = block_interrupts(&oldmask);
        if (intr_fd < 0) {
                err_set(&err, LG_EK_INTERNAL, -intr_fd, "signalfd");
                status = cli_report(err);
                goto out;
        }
        signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error return, not a death */

        memset(&x, 0, sizeof(x));
        x.argv = o.argv;
        x.argc = (size_t)o.argc;
        x.env = o.env;
        x.envc = o.envc;
        x.cwd = (char *)(o.workdir ? o.workdir : ws ? WS_GUEST_DIR : NULL);
        x.timeout_ms = o.timeout_ms;
        /* A terminal is not forwarded: the sandbox has no TTY, and reading one would steal input.
         */
        struct sandbox_exec_io io = {
            .in_fd = isatty(STDIN_FILENO) ? -1 : STDIN_FILENO,
            .out_fd = STDOUT_FILENO,
            .err_fd = STDERR_FILENO,
            .intr_fd = intr_fd,
            .net = o.net ? &proxy : NULL,
        };

        net_proxy_init(&proxy, &o.allow, "(starting)");
        proxy.audit_home = home;
        struct run_egress egress = {
            .ctx = {.home = home,
                    .policy = policy,
                    .mode = o.approve,
                    .timeout_ms = (int)o.approve_timeout_ms,
                    .intr_fd = intr_fd},
            .o = &o,
            .sandbox_id = &proxy.sandbox_id,
        };
        proxy.ask = run_egress_ask;
        proxy.ask_ctx = &egress;
        /*
         * The command itself goes through the cliff like every action: inside
         * a sandbox it is GREEN by construction, so this costs a classification
         * (`bench audit` measures it) and never a card.
         */
        {
                struct policy_action act = {.kind = POLICY_SANDBOX_EXEC};
                struct approve_answer a;

                if (approve_ask(&egress.ctx, &act, NULL, NULL, &a, &err) < 0 ||
                    !approve_granted(&a)) {
                        if (err == NULL)
                                err_set(&err, LG_EK_USAGE, 0, "the command was not approved: %s",
                                        a.reason);
                        status = cli_report(err);
                        goto out;
                }
        }

        /*
         * Said plainly to a person at a terminal (and with -v): this is no VM.
         * Not into a pipe, where stderr is the command's own.
         */
        if (o.backend == SANDBOX_PROCESS) {
                if (isatty(STDERR_FILENO))
                        log_warn("--backend process: no VM; the command runs on this host's "
                                 "kernel, confined by namespaces, a cgroup and a seccomp "
                                 "allow-list");
                else
                        log_info("--backend process: no VM; the command runs on this host's "
                                 "kernel");
        }
        /* A running pool hands over a sandbox in milliseconds; otherwise start one here. */
        /* A pool's process sandboxes have the default limits: other limits start their own. */
        if (!o.cold && o.pids == 0 && o.disk_bytes == 0) {
                r = run_in_pool(home, &o, &x, &io, ws, &res, NULL, 0, &err);
                if (r == 0) {
                        status = run_status(&o, &res);
                        ran = 1;
                        goto out;
                }
                if (r != RUN_NO_POOL) {
                        status = interrupted_status(err, intr_fd, cli_report(err));
                        goto out;
                }
        }

        const char *how;

        r = run_spawn(home, &o, intr_fd, &sb, &how, &err);
        if (r < 0) {
                status = interrupted_status(err, intr_fd, cli_report(err));
                goto out;
        }
        proxy.sandbox_id = sandbox_id(sb);
        r = run_job(home, &o, sandbox_id(sb), how, sandbox_agent(sb), sandbox_vmm_pidfd(sb), sb, &x,
                    &io, ws, &res, &err);
        if (r < 0) {
                if (err->kind == LG_EK_LOST) {
                        const char *log = sandbox_save_logs(sb);

                        err_wrap(&err, "sandbox %s (console log kept at %s)", sandbox_id(sb),
                                 log ? log : "nowhere: it could not be saved");
                }
                status = interrupted_status(err, intr_fd, cli_report(err));
                goto out;
        }
        status = run_status(&o, &res);
        ran = 1;

out:
        net_proxy_free(&proxy);
        if (sb != NULL) {
                char id[64];
                struct lg_err *aerr = NULL;

                snprintf(id, sizeof(id), "%s", sandbox_id(sb));
                if (sandbox_destroy(sb, &derr) < 0 && status < 120)
                        status = LG_EXIT_INTERNAL;
                if (run_audit_gone(home, id, 0, derr, &aerr) < 0) {
                        log_error("%s", aerr->msg);
                        err_free(&aerr);
                        audit_failed = 1;
                }
        }
        /* The sandbox is gone before anyone is asked: a human's minutes do not hold a VM. */
        if (ws != NULL && ran) {
                struct lg_err *werr = NULL;

                r = run_ws_settle(ws, home, &o, policy, intr_fd, &werr);
                if (r == RUN_WS_UNAUDITED) {
                        cli_report(werr);
                        audit_failed = 1;
                } else if (r < 0) {
                        /* Not saved or not shown: not applied, said; no audit failure. */
                        cli_report(werr);
                        if (status == 0)
                                status = LG_EXIT_NOT_APPLIED;
                } else if (r == RUN_WS_NOT_APPLIED && status == 0) {
                        status = LG_EXIT_NOT_APPLIED;
                }
                err_free(&werr);
        } else if (ws != NULL && ws->have_changes && fs_remove_tree(ws->cs.store) < 0) {
                log_warn("could not remove %s", ws->cs.store);
        }
        if (ws != NULL)
                run_ws_free(ws);
        if (audit_failed && status < 120)
                status = LG_EXIT_INTERNAL; /* it ran, but the log does not say how it ended */
        if (derr != NULL)
                cli_report(derr);
        err_free(&err);
        err_free(&derr);
        run_opts_free(&o);
        if (intr_fd >= 0)
                close(intr_fd);
        return status;
}
