/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Accelerator choice (DESIGN.md §1). /dev/kvm may be hardware KVM (guest
 * kernel code at native speed) or a software hypervisor such as PVM where
 * guest ring-0 code is emulated at ~5 µs per instruction and a stock Linux
 * guest cannot boot. Flags cannot tell them apart; timing can: a tiny KVM
 * guest runs a real-mode (ring-0) loop and we measure ns per iteration.
 */
#ifndef LG_VMM_ACCEL_H
#define LG_VMM_ACCEL_H

struct lg_err;

enum accel_kind {
        ACCEL_TCG = 0, /* QEMU's software emulation; always available */
        ACCEL_KVM = 1, /* hardware KVM at native speed */
};

struct accel_probe {
        int kvm_present;    /* /dev/kvm exists */
        int kvm_usable;     /* opened, API version 12, VM created */
        double ns_per_iter; /* ring-0 loop cost, < 0 when not measured */
        int hw_speed;       /* ns_per_iter under the hardware threshold */
        char detail[256];   /* human-readable summary of what was found */
};

/* Run the probe now (tens to hundreds of ms under software KVM). Never fails. */
void accel_probe_run(struct accel_probe *p);

/*
 * The accelerator to use: $LUMINAGUARD_ACCEL ("kvm"/"tcg") if set, else the
 * probe's verdict, cached per host boot in <home>/host-probe. *why receives a
 * short reason for logs and `doctor`.
 */
enum accel_kind accel_choose(const char *home, char *why, unsigned whysz);

const char *accel_name(enum accel_kind k);

/*
 * The probe result for this host boot: read from <home>/host-probe when the
 * boot id recorded there matches /proc/sys/kernel/random/boot_id, else run the
 * probe and store the result (best effort; home may be NULL to skip caching).
 * Returns 1 when the result came from the cache, 0 when the probe ran now.
 */
int accel_probe_get(const char *home, struct accel_probe *p);

/*
 * The cache file itself (key=value lines). load: 0, -ESTALE when the file was
 * written during another boot, -errno when unreadable. store: 0 / -errno,
 * written atomically.
 */
int accel_cache_load(const char *path, const char *boot_id, struct accel_probe *p)
    __attribute__((warn_unused_result));
int accel_cache_store(const char *path, const char *boot_id, const struct accel_probe *p)
    __attribute__((warn_unused_result));

#endif
