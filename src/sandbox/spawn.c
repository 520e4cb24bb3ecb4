/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox/spawn.h"
#include "sandbox/sandbox.h"
#include "sandbox/template.h"
#include "common/err.h"
#include "common/log.h"
#include "image/image.h"

#include <errno.h>
#include <stddef.h>

int sandbox_spawn(const char *home, const struct spawn_opts *o, struct sandbox **out,
                  enum spawn_path *how, struct lg_err **err)
{
        struct template_shape shape;
        struct image_paths img;
        struct template tpl;
        char why[256];
        int r, built;

        r = image_ensure(home, o->image, o->build_image, 1, &img, err);
        if (r < 0)
                return r;
        shape.memory_mib = o->memory_mib;
        shape.cpus = o->cpus;
        shape.accel = accel_choose(home, why, sizeof(why));
        log_debug("accelerator %s (%s)", accel_name(shape.accel), why);

        struct sandbox_opts so = {
            .image = &img,
            .accel = shape.accel,
            .memory_mib = o->memory_mib,
            .cpus = o->cpus,
            .boot_timeout_ms = o->boot_timeout_ms,
            .intr_fd = o->intr_fd,
            .backend = o->backend,
            .pids = o->pids,
            .disk_bytes = o->disk_bytes,
        };
        if (!o->cold && o->backend == SANDBOX_VM) {
                struct lg_err *terr = NULL;

                built = template_ensure(home, &img, &shape, 0, 0, -1, &tpl, &terr) == -ENOENT;
                r = built ? template_ensure(home, &img, &shape, 1, o->boot_timeout_ms, o->intr_fd,
                                            &tpl, &terr)
                          : 0;
                if (r == 0) {
                        int bad = 0;

                        so.ram_file = tpl.ram;
                        so.restore_state = tpl.state;
                        so.template_failed = &bad;
                        r = sandbox_create(home, &so, out, &terr);
                        if (r == 0) {
                                *how = built ? SPAWN_BUILT : SPAWN_RESTORED;
                                return 0;
                        }
                        /* A template that does not restore (QEMU upgraded, file damaged) goes. */
                        if (bad)
                                template_discard(&tpl);
                }
                if (terr != NULL && terr->kind == LG_EK_INTERRUPTED) {
                        err_set(err, LG_EK_INTERRUPTED, 0, "%s", terr->msg);
                        err_free(&terr);
                        return err_code(*err);
                }
                log_warn("%s; falling back to a cold boot",
                         terr ? terr->msg : "template unavailable");
                err_free(&terr);
                so.ram_file = NULL;
                so.restore_state = NULL;
        }
        r = sandbox_create(home, &so, out, err);
        if (r == 0)
                *how = SPAWN_COLD;
        return r;
}
