/* SPDX-License-Identifier: Apache-2.0 */
/*
 * System-call attacks run inside a process sandbox by test_process.sh
 * (built static, fed to the sandbox through stdin). One attack per run:
 *   attack NAME
 * prints "allowed" and exits 0 if the call succeeded, prints
 * "refused: <errno name>" and exits 1 if it failed; a seccomp kill shows as
 * death by SIGSYS (exit 159 to the shell).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

static long i386_getpid(void)
{
        long r;

        /* The 32-bit entry point: eax = 20 is getpid there. */
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        return r;
}

static long attack(const char *name)
{
        static char buf[64];
        uint64_t clone3_args[8] = {0};

        clone3_args[4] = SIGCHLD; /* exit_signal */
        if (strcmp(name, "ptrace") == 0)
                return ptrace(PTRACE_ATTACH, 1, 0, 0); /* the agent, pid 1 */
        if (strcmp(name, "mount") == 0)
                return mount("none", "/tmp", "tmpfs", 0, NULL);
        if (strcmp(name, "unshare-user") == 0)
                return unshare(CLONE_NEWUSER);
        if (strcmp(name, "clone-newuser") == 0) {
                long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);

                if (r == 0)
                        _exit(0);
                return r;
        }
        if (strcmp(name, "clone3") == 0) {
                long r = syscall(SYS_clone3, clone3_args, sizeof(clone3_args));

                if (r == 0)
                        _exit(0);
                return r;
        }
        if (strcmp(name, "x32-abi") == 0)
                return syscall(__X32_SYSCALL_BIT | SYS_getpid);
        if (strcmp(name, "i386-abi") == 0)
                return i386_getpid() < 0 ? (errno = EINVAL, -1) : 0;
        if (strcmp(name, "raw-socket") == 0)
                return socket(AF_INET, SOCK_RAW, 1);
        if (strcmp(name, "packet-socket") == 0)
                return socket(AF_PACKET, SOCK_RAW, 0);
        if (strcmp(name, "netlink-socket") == 0)
                return socket(AF_NETLINK, SOCK_RAW, 0);
        if (strcmp(name, "socketpair-netlink") == 0) {
                int sv[2];

                return socketpair(AF_NETLINK, SOCK_RAW, 0, sv);
        }
        if (strcmp(name, "sctp-socket") == 0)
                return socket(AF_INET, SOCK_STREAM, 132 /* IPPROTO_SCTP */);
        if (strcmp(name, "tcp-socket") == 0)
                return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (strcmp(name, "ioctl-tiocsti") == 0)
                return ioctl(0, TIOCSTI, "x");
        if (strcmp(name, "prctl-set-mm") == 0)
                return prctl(PR_SET_MM, PR_SET_MM_START_CODE, 0, 0, 0);
        if (strcmp(name, "fallocate-keep-size") == 0) {
                int fd = open("/tmp/f", O_CREAT | O_RDWR, 0600);

                return fd < 0 ? -1 : fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20);
        }
        if (strcmp(name, "dev-kvm") == 0)
                return open("/dev/kvm", O_RDWR);
        if (strcmp(name, "dev-mem") == 0)
                return open("/dev/mem", O_RDONLY);
        if (strcmp(name, "init-module") == 0)
                return syscall(SYS_init_module, buf, sizeof(buf), "");
        if (strcmp(name, "bpf") == 0) {
                union bpf_attr a;

                memset(&a, 0, sizeof(a));
                return syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
        }
        if (strcmp(name, "keyctl") == 0)
                return syscall(SYS_add_key, "user", "lg", "x", 1, -2 /* session */);
        if (strcmp(name, "setuid-root") == 0)
                return setuid(0);
        if (strcmp(name, "chroot") == 0)
                return chroot("/tmp");
        if (strcmp(name, "perf-event") == 0) {
                struct perf_event_attr pa;

                memset(&pa, 0, sizeof(pa));
                pa.size = sizeof(pa);
                return syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
        }
        if (strcmp(name, "userfaultfd") == 0)
                return syscall(SYS_userfaultfd, 0);
        if (strcmp(name, "io-uring") == 0)
                return syscall(SYS_io_uring_setup, 1, buf);
        if (strcmp(name, "settimeofday") == 0)
                return syscall(SYS_settimeofday, NULL, NULL);
        fprintf(stderr, "unknown attack %s\n", name);
        _exit(2);
}

int main(int argc, char **argv)
{
        long r;

        if (argc != 2)
                return 2;
        errno = 0;
        r = attack(argv[1]);
        if (r < 0) {
                printf("refused: %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
                return 1;
        }
        printf("allowed\n");
        return 0;
}
