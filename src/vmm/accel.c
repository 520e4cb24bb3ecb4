/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Accelerator probe: a one-page KVM guest runs a counted real-mode loop and we
 * time it. Real mode is ring-0 code, exactly what a software hypervisor such as
 * PVM has to emulate, so the per-iteration cost separates hardware KVM (~1 ns)
 * from PVM (~4 µs) by three orders of magnitude; no CPU flag does that.
 */
#include "vmm/accel.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/monotime.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROBE_ITERS     20000u
#define PROBE_CODE_GPA  0x1000u
#define PROBE_TIMEOUT_S 2
/* Hardware KVM measures ~1-5 ns/iter (VM entry included), PVM ~4000. */
#define HW_THRESHOLD_NS 50.0

/*
 * Real-mode code at PROBE_CODE_GPA, count in CX (set through the registers so
 * one page serves both the warm-up and the timed run):
 *     l: dec cx ; jnz l ; hlt
 */
static const unsigned char probe_code[] = {0x49, 0x75, 0xfd, 0xf4};

struct probe_vm {
        int kvm, vm, vcpu;
        void *mem;
        struct kvm_run *run;
        size_t run_size;
};

static void probe_vm_close(struct probe_vm *v)
{
        if (v->run != NULL && v->run != MAP_FAILED)
                munmap(v->run, v->run_size);
        if (v->mem != NULL && v->mem != MAP_FAILED)
                munmap(v->mem, 4096);
        if (v->vcpu >= 0)
                close(v->vcpu);
        if (v->vm >= 0)
                close(v->vm);
        if (v->kvm >= 0)
                close(v->kvm);
}

/* The alarm only has to interrupt KVM_RUN with EINTR; the handler does nothing. */
static void probe_alarm(int sig)
{
        (void)sig;
}

/*
 * Run the vCPU from the start of the loop with CX = iters until HLT. Returns
 * 0, -ETIMEDOUT when the alarm fired first, -EPROTO on any other exit.
 */
static int probe_run(struct probe_vm *v, unsigned iters, uint64_t *elapsed_ns)
{
        struct kvm_regs regs = {.rip = PROBE_CODE_GPA, .rcx = iters, .rflags = 0x2};
        struct kvm_sregs sregs;
        uint64_t t0, deadline;

        if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
                return -errno;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
                return -errno;
        t0 = mono_ns();
        deadline = t0 + (uint64_t)PROBE_TIMEOUT_S * 1000000000u;
        for (;;) {
                if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
                        if (errno != EINTR)
                                return -errno;
                        if (mono_ns() >= deadline)
                                return -ETIMEDOUT;
                        continue;
                }
                if (v->run->exit_reason == KVM_EXIT_HLT)
                        break;
                /* Some hypervisors bounce out for their own reasons; go back in. */
                if (v->run->exit_reason != KVM_EXIT_INTR)
                        return -EPROTO;
        }
        *elapsed_ns = mono_ns() - t0;
        return 0;
}

static int probe_setup(struct probe_vm *v, struct accel_probe *p)
{
        struct kvm_userspace_memory_region region = {0};
        int r, sz;

        r = ioctl(v->kvm, KVM_GET_API_VERSION, 0);
        if (r != KVM_API_VERSION) {
                snprintf(p->detail, sizeof(p->detail), "/dev/kvm: API version %d, expected %d", r,
                         KVM_API_VERSION);
                return -ENOTSUP;
        }
        v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
        if (v->vm < 0)
                goto fail;
        v->mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (v->mem == MAP_FAILED)
                goto fail;
        memcpy(v->mem, probe_code, sizeof(probe_code));
        region.slot = 0;
        region.guest_phys_addr = PROBE_CODE_GPA;
        region.memory_size = 4096;
        region.userspace_addr = (uintptr_t)v->mem;
        if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                goto fail;
        v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
        if (v->vcpu < 0)
                goto fail;
        sz = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (sz < (int)sizeof(struct kvm_run))
                goto fail;
        v->run_size = (size_t)sz;
        v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
        if (v->run == MAP_FAILED)
                goto fail;
        p->kvm_usable = 1;
        return 0;
fail:
        r = -errno;
        snprintf(p->detail, sizeof(p->detail), "/dev/kvm: cannot create a probe VM: %s",
                 strerror(errno));
        return r;
}

void accel_probe_run(struct accel_probe *p)
{
        struct probe_vm v = {.kvm = -1, .vm = -1, .vcpu = -1};
        struct sigaction sa = {.sa_handler = probe_alarm}, old_sa;
        struct sigevent sev = {0};
        struct itimerspec its = {0};
        timer_t timer;
        uint64_t ns = 0;
        int r;

        memset(p, 0, sizeof(*p));
        p->ns_per_iter = -1;
        p->kvm_present = access("/dev/kvm", F_OK) == 0;
        if (!p->kvm_present) {
                snprintf(p->detail, sizeof(p->detail), "/dev/kvm not present");
                return;
        }
        v.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (v.kvm < 0) {
                snprintf(p->detail, sizeof(p->detail), "/dev/kvm: %s", strerror(errno));
                return;
        }
        if (probe_setup(&v, p) < 0) {
                probe_vm_close(&v);
                return;
        }
        /*
         * A hypervisor that never returns from KVM_RUN must not hang us: a
         * per-thread timer signal makes KVM_RUN fail with EINTR. The old
         * SIGALRM disposition is restored afterwards (no SA_RESTART on purpose).
         */
        sigaction(SIGALRM, &sa, &old_sa);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGALRM;
        sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        r = timer_create(CLOCK_MONOTONIC, &sev, &timer);
        if (r == 0) {
                its.it_value.tv_sec = PROBE_TIMEOUT_S;
                its.it_interval.tv_nsec = 100000000; /* re-fire in case one lands outside KVM_RUN */
                timer_settime(timer, 0, &its, NULL);
                /* The warm-up run pays for faulting in the page and vCPU setup. */
                r = probe_run(&v, 1, &ns);
                if (r == 0)
                        r = probe_run(&v, PROBE_ITERS, &ns);
                timer_delete(timer);
        } else {
                r = -errno;
        }
        sigaction(SIGALRM, &old_sa, NULL);
        probe_vm_close(&v);

        if (r == -ETIMEDOUT) {
                snprintf(p->detail, sizeof(p->detail),
                         "KVM probe loop did not finish in %d s: software-only KVM",
                         PROBE_TIMEOUT_S);
                return;
        }
        if (r < 0) {
                snprintf(p->detail, sizeof(p->detail), "KVM probe failed: %s", strerror(-r));
                return;
        }
        p->ns_per_iter = (double)ns / PROBE_ITERS;
        p->hw_speed = p->ns_per_iter < HW_THRESHOLD_NS;
        if (p->hw_speed)
                snprintf(p->detail, sizeof(p->detail), "hardware KVM: ring-0 loop %.1f ns/iter",
                         p->ns_per_iter);
        else
                snprintf(p->detail, sizeof(p->detail),
                         "software-only KVM (e.g. PVM): ring-0 loop %.0f ns/iter, hardware "
                         "is < %.0f",
                         p->ns_per_iter, HW_THRESHOLD_NS);
}

/* Host boot id: a cached verdict is only valid for the boot that measured it. */
static int read_boot_id(char *out, size_t outsz)
{
        _cleanup_free_ char *s = NULL;
        int r = fs_read_file("/proc/sys/kernel/random/boot_id", 64, &s, NULL);

        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        if (snprintf(out, outsz, "%s", s) >= (int)outsz)
                return -ENAMETOOLONG;
        return 0;
}

int accel_cache_load(const char *path, const char *boot_id, struct accel_probe *p)
{
        _cleanup_free_ char *data = NULL;
        struct accel_probe c = {.ns_per_iter = -1};
        int have_boot = 0, r;
        char *save = NULL;

        r = fs_read_file(path, 4096, &data, NULL);
        if (r < 0)
                return r;
        for (char *l = strtok_r(data, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
                char *v = strchr(l, '=');

                if (v == NULL)
                        continue;
                *v++ = '\0';
                if (strcmp(l, "boot_id") == 0)
                        have_boot = strcmp(v, boot_id) == 0;
                else if (strcmp(l, "kvm_present") == 0)
                        c.kvm_present = atoi(v) != 0;
                else if (strcmp(l, "kvm_usable") == 0)
                        c.kvm_usable = atoi(v) != 0;
                else if (strcmp(l, "ns_per_iter") == 0)
                        c.ns_per_iter = strtod(v, NULL);
                else if (strcmp(l, "hw_speed") == 0)
                        c.hw_speed = atoi(v) != 0;
                else if (strcmp(l, "detail") == 0)
                        snprintf(c.detail, sizeof(c.detail), "%s", v);
        }
        if (!have_boot)
                return -ESTALE;
        *p = c;
        return 0;
}

int accel_cache_store(const char *path, const char *boot_id, const struct accel_probe *p)
{
        char buf[1024];
        int n;

        n = snprintf(buf, sizeof(buf),
                     "boot_id=%s\nkvm_present=%d\nkvm_usable=%d\nns_per_iter=%.3f\nhw_speed=%d\n"
                     "detail=%s\n",
                     boot_id, p->kvm_present, p->kvm_usable, p->ns_per_iter, p->hw_speed,
                     p->detail);
        if (n < 0 || (size_t)n >= sizeof(buf))
                return -ENAMETOOLONG;
        return fs_write_file_atomic(path, buf, (size_t)n, 0644);
}

int accel_probe_get(const char *home, struct accel_probe *p)
{
        /*
         * One probe at a time in a process: it borrows the process-wide SIGALRM
         * disposition, and two threads (the MCP server's calls) would restore
         * each other's.
         */
        static pthread_mutex_t probing = PTHREAD_MUTEX_INITIALIZER;
        char path[4096], boot_id[64] = "";
        int have_path, have_boot, r;

        have_path =
            home != NULL && snprintf(path, sizeof(path), "%s/host-probe", home) < (int)sizeof(path);
        have_boot = read_boot_id(boot_id, sizeof(boot_id)) == 0;
        pthread_mutex_lock(&probing);
        r = have_path && have_boot && accel_cache_load(path, boot_id, p) == 0;
        if (!r) {
                accel_probe_run(p);
                /* Caching is an optimisation: a read-only home only costs a re-probe. */
                if (have_path && have_boot && fs_mkdir_p(home, 0700) == 0)
                        (void)!accel_cache_store(path, boot_id, p);
        }
        pthread_mutex_unlock(&probing);
        return r;
}

enum accel_kind accel_choose(const char *home, char *why, unsigned whysz)
{
        const char *env = getenv("LUMINAGUARD_ACCEL");
        struct accel_probe p;
        char ignored[96] = "";
        int cached;

        if (env != NULL && env[0] != '\0') {
                if (strcmp(env, "kvm") == 0 || strcmp(env, "tcg") == 0) {
                        snprintf(why, whysz, "forced by LUMINAGUARD_ACCEL=%s", env);
                        return env[0] == 'k' ? ACCEL_KVM : ACCEL_TCG;
                }
                snprintf(ignored, sizeof(ignored),
                         " (ignoring LUMINAGUARD_ACCEL=%.40s: not kvm|tcg)", env);
        }
        cached = accel_probe_get(home, &p);
        snprintf(why, whysz, "%s%s%s", p.detail, cached ? " [cached]" : "", ignored);
        return p.hw_speed ? ACCEL_KVM : ACCEL_TCG;
}

const char *accel_name(enum accel_kind k)
{
        return k == ACCEL_KVM ? "kvm" : "tcg";
}
