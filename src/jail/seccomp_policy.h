/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process backend's system-call allow-list (libseccomp). Commands in a
 * process sandbox share the host's kernel, so this list is the kernel
 * surface they get: what busybox and lg-agent need to run ordinary
 * programs, and nothing that changes the system (mount, modules, ptrace,
 * namespaces, keyrings, bpf, raw and netlink sockets, clock, reboot ...).
 * Anything else kills the whole process (SCMP_ACT_KILL_PROCESS); a foreign
 * architecture (x32, i386 via int 0x80) is killed too.
 *
 * Built in the parent and exported as classic BPF, so the child only needs
 * prctl(PR_SET_SECCOMP) between clone and exec (jail.h).
 */
#ifndef LG_JAIL_SECCOMP_POLICY_H
#define LG_JAIL_SECCOMP_POLICY_H

#include <linux/filter.h>

struct lg_err;

/* A malloc'd program in *prog (free prog->filter). */
int seccomp_policy_build(struct sock_fprog *prog, struct lg_err **err)
    __attribute__((warn_unused_result));

/* How many system calls the policy allows (documentation and tests). */
unsigned seccomp_policy_size(void);

#endif
