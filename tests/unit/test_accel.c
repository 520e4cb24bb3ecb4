/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fs.h"
#include "vmm/accel.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>

static char home[] = "/tmp/lg-test-accel.XXXXXX";

static void setup_home(void)
{
        static int done;

        if (!done && mkdtemp(home) != NULL)
                done = 1;
        unsetenv("LUMINAGUARD_ACCEL");
}

static void current_boot_id(char *out, size_t n)
{
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

        out[0] = '\0';
        if (f != NULL) {
                if (fgets(out, (int)n, f) != NULL)
                        out[strcspn(out, "\n")] = '\0';
                fclose(f);
        }
}

TEST(probe_is_self_consistent)
{
        struct accel_probe p;

        accel_probe_run(&p);
        printf("    probe: present=%d usable=%d ns/iter=%.1f hw=%d: %s\n", p.kvm_present,
               p.kvm_usable, p.ns_per_iter, p.hw_speed, p.detail);
        CHECK(p.detail[0] != '\0');
        if (!p.kvm_present)
                CHECK(!p.kvm_usable);
        if (p.ns_per_iter < 0)
                CHECK(!p.hw_speed);
        else
                CHECK_EQ_INT(p.hw_speed, p.ns_per_iter < 50.0);
        if (p.hw_speed)
                CHECK(p.kvm_usable);
}

TEST(env_override)
{
        char why[256];

        setup_home();
        setenv("LUMINAGUARD_ACCEL", "tcg", 1);
        CHECK_EQ_INT(accel_choose(home, why, sizeof(why)), ACCEL_TCG);
        CHECK(strstr(why, "LUMINAGUARD_ACCEL=tcg") != NULL);
        setenv("LUMINAGUARD_ACCEL", "kvm", 1);
        CHECK_EQ_INT(accel_choose(home, why, sizeof(why)), ACCEL_KVM);
        CHECK_EQ_STR(accel_name(ACCEL_KVM), "kvm");
        CHECK_EQ_STR(accel_name(ACCEL_TCG), "tcg");
        /* A bad value is reported and ignored, never trusted. */
        setenv("LUMINAGUARD_ACCEL", "fast", 1);
        accel_choose(home, why, sizeof(why));
        CHECK(strstr(why, "ignoring LUMINAGUARD_ACCEL=fast") != NULL);
        unsetenv("LUMINAGUARD_ACCEL");
}

TEST(cache_round_trip)
{
        struct accel_probe in = {1, 1, 1234.5, 0, "software-only KVM"}, out;
        char path[512], boot[64], why[256];

        setup_home();
        current_boot_id(boot, sizeof(boot));
        snprintf(path, sizeof(path), "%s/host-probe", home);
        CHECK_EQ_INT(accel_cache_store(path, boot, &in), 0);
        CHECK_EQ_INT(accel_cache_load(path, boot, &out), 0);
        CHECK_EQ_INT(out.kvm_usable, 1);
        CHECK(out.ns_per_iter > 1234.4 && out.ns_per_iter < 1234.6);
        CHECK_EQ_STR(out.detail, "software-only KVM");
        CHECK_EQ_INT(accel_cache_load(path, "another-boot", &out), -ESTALE);

        /* A cached hardware verdict for this boot is used without probing. */
        in.hw_speed = 1;
        in.ns_per_iter = 1.5;
        snprintf(in.detail, sizeof(in.detail), "hardware KVM (planted)");
        CHECK_EQ_INT(accel_cache_store(path, boot, &in), 0);
        CHECK_EQ_INT(accel_probe_get(home, &out), 1);
        CHECK_EQ_INT(accel_choose(home, why, sizeof(why)), ACCEL_KVM);
        CHECK(strstr(why, "planted") != NULL && strstr(why, "[cached]") != NULL);

        /* From another boot: probed again and the file rewritten for this boot. */
        CHECK_EQ_INT(accel_cache_store(path, "another-boot", &in), 0);
        CHECK_EQ_INT(accel_probe_get(home, &out), 0);
        CHECK_EQ_INT(accel_cache_load(path, boot, &out), 0);
        CHECK(strstr(out.detail, "planted") == NULL);
        CHECK_EQ_INT(fs_remove_tree(home), 0);
}
