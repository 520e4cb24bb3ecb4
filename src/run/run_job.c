/* SPDX-License-Identifier: Apache-2.0 */
#include "run/run_job.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/monotime.h"
#include "image/image.h"
#include "net/proxy.h"
#include "policy/policy.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "run/run_audit.h"
#include "run/run_opts.h"
#include "run/run_workspace.h"
#include "sandbox/agent_conn.h"
#include "sandbox/exec.h"
#include "sandbox/sandbox.h"
#include "sandbox/spawn.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One sandbox's whole job, with its records: the command is recorded before
 * it runs (or it does not run), the workspace goes in, the command runs, its
 * end is recorded, the workspace comes out as a change set. sb is the
 * sandbox when we started it (for better messages), NULL for a pool's.
 */
int run_job(const char *home, const struct run_opts *o, const char *id, const char *how,
            struct agent_conn *c, int pidfd, struct sandbox *sb, const struct proto_exec *x,
            const struct sandbox_exec_io *io, struct run_ws *ws, struct sandbox_exec_result *res,
            struct lg_err **err)
{
        struct lg_err *aerr = NULL;
        uint64_t t0;
        int r;

        memset(res, 0, sizeof(*res));
        r = run_audit_start(home, id, o, how, err);
        if (r < 0)
                return r;
        /*
         * A workspace that did not go in means the command never starts:
         * workspace.copy_in says so (with its error), and there is no
         * exec.end for a command that did not run.
         */
        if (ws != NULL)
                r = run_ws_copy_in(ws, home, c, pidfd, id, io->intr_fd, err);
        if (r < 0)
                return r;
        t0 = mono_ns();
        r = sb ? sandbox_exec(sb, x, io, res, err) : agent_exec(c, pidfd, x, io, res, err);
        if (run_audit_end(home, id, res, r < 0 ? *err : NULL, (double)(mono_ns() - t0) / 1e6,
                          &aerr) < 0) {
                log_error("%s", aerr->msg);
                err_free(&aerr);
                if (r == 0)
                        r = err_set(err, LG_EK_INTERNAL, EIO,
                                    "the command ran, but its end could not be audited");
        }
        /* Whatever the command's status: a failing build may still have written files. */
        if (r == 0 && ws != NULL && !ws->in_only)
                r = run_ws_copy_out(ws, home, c, pidfd, io->intr_fd, err);
        return r;
}

/*
 * Run the command in a sandbox from a running pool (pool.h). RUN_NO_POOL:
 * no pool serves this image and shape, so the caller starts a sandbox itself;
 * a pool that fails before handing one over is reported with a warning and
 * treated the same way.
 */

int run_in_pool(const char *home, const struct run_opts *o, const struct proto_exec *x,
                const struct sandbox_exec_io *io, struct run_ws *ws,
                struct sandbox_exec_result *res, char *id_out, size_t id_outsz, struct lg_err **err)
{
        struct pool_lease lease;
        struct agent_conn conn;
        struct lg_err *perr = NULL, *aerr = NULL;
        int r;

        struct image_paths img;

        /* The pool must serve this image as it is now; a missing or stale one is built below. */
        if (image_ensure(home, o->image, 0, 0, &img, &perr) < 0) {
                err_free(&perr);
                return RUN_NO_POOL;
        }
        struct pool_request rq = {
            .image = o->image,
            .image_key = img.key,
            .memory_mib = o->memory_mib,
            .cpus = o->cpus,
            .backend = o->backend == SANDBOX_PROCESS ? "process" : "vm",
        };

        r = pool_acquire(home, &rq, io->intr_fd, &lease, &perr);
        if (r < 0 && perr != NULL && perr->kind == LG_EK_INTERRUPTED) {
                *err = perr;
                return r;
        }
        if (r < 0) {
                if (perr != NULL)
                        log_warn("%s; starting a sandbox without the pool", perr->msg);
                err_free(&perr);
                return RUN_NO_POOL;
        }
        if (io->net != NULL)
                io->net->sandbox_id = lease.id; /* the lease outlives the exec */
        if (id_out != NULL)
                snprintf(id_out, id_outsz, "%s", lease.id);
        log_debug("sandbox %s from the pool (%s, %.2f ms)", lease.id, lease.hit ? "hit" : "miss",
                  lease.wait_ms);
        r = agent_conn_init(&conn, lease.agent_fd);
        lease.agent_fd = -1; /* conn owns it now */
        if (r < 0) {
                agent_conn_free(&conn);
                pool_release(&lease);
                return err_set(err, LG_EK_START, -r, "agent channel of %s", lease.id);
        }
        /* Request ids only need to be unique among requests in flight: the pool's are done. */
        conn.next_id = 1;
        r = run_job(home, o, lease.id, lease.hit ? "pool-hit" : "pool-miss", &conn, lease.pidfd,
                    NULL, x, io, ws, res, err);
        if (r < 0 && *err != NULL && (*err)->kind == LG_EK_LOST)
                err_wrap(err, "pooled sandbox %s", lease.id);
        if (run_audit_gone(home, lease.id, 1, NULL, &aerr) < 0) {
                log_error("%s", aerr->msg);
                err_free(&aerr);
                if (r == 0)
                        r = err_set(err, LG_EK_INTERNAL, EIO,
                                    "the command ran, but its end could not be audited");
        }
        agent_conn_free(&conn);
        /*
         * Nothing of the command may outlive `run`: kill the VM now (we hold
         * its pidfd); the pool then reaps it, removes its run directory,
         * verifies, and restores a replacement.
         */
        (void)vmm_pidfd_kill(lease.pidfd);
        pool_release(&lease);
        return r;
}

/*
 * The policy file: --policy FILE, else <home>/policy when it exists, else
 * none (the built-in rules). A file that is there but wrong is an error, not
 * a silent fallback to defaults.
 */
int run_load_policy(const char *home, const struct run_opts *o, struct policy *p,
                    const struct policy **out, struct lg_err **err)
{
        char path[PATH_MAX + 16], why[256], *text = NULL;
        size_t len;
        int r;

        *out = NULL;
        if (o->policy_file != NULL)
                snprintf(path, sizeof(path), "%s", o->policy_file);
        else
                snprintf(path, sizeof(path), "%s/policy", home);
        r = fs_read_file(path, 1u << 20, &text, &len);
        if (r == -ENOENT && o->policy_file == NULL)
                return 0;
        if (r < 0)
                return err_set(err, LG_EK_USAGE, -r, "policy file %s", path);
        r = policy_parse(text, p, why, sizeof(why));
        free(text);
        if (r < 0)
                return err_set(err, LG_EK_USAGE, 0, "policy file %s: %s", path, why);
        *out = p;
        return 0;
}

int run_spawn(const char *home, const struct run_opts *o, int intr_fd, struct sandbox **sb,
              const char **how, struct lg_err **err)
{
        static const char *const hows[] = {
            [SPAWN_RESTORED] = "restored", [SPAWN_BUILT] = "built", [SPAWN_COLD] = "cold"};
        struct spawn_opts so = {
            .image = o->image,
            .memory_mib = o->memory_mib,
            .cpus = o->cpus,
            .boot_timeout_ms = (int)o->boot_timeout_ms,
            .intr_fd = intr_fd,
            .build_image = !o->no_image_build,
            .cold = o->cold,
            .backend = o->backend,
            .pids = o->pids,
            .disk_bytes = o->disk_bytes,
        };
        enum spawn_path path = SPAWN_COLD;
        int r = sandbox_spawn(home, &so, sb, &path, err);

        *how = hows[path];
        return r;
}
