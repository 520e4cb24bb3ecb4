#!/usr/bin/env bash
# The jail around every VMM (src/jail, DESIGN.md §2), checked from the host
# against a running sandbox: identity and privileges, namespaces, what its
# root holds, cgroup limits, the sealed template RAM, and that nothing of it
# remains afterwards — also when luminaguard itself is SIGKILLed.
# Usage: tests/security/test_jail.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"
if [ "$(id -u)" != 0 ]; then
        t_begin jail; t_skip "not root: VMMs are not jailed (see SECURITY.md)"; t_summary; exit
fi
"$LG" run -- true >/dev/null 2>&1 # image and template

# A sandbox that lives long enough to be looked at; sets VMM to its QEMU's pid.
start_sandbox() {
        "$LG" run -- sh -c 'echo up; sleep 60' >"$TMP/out" 2>"$TMP/err" </dev/null &
        RUN=$!
        VMM=
        for _ in $(seq 200); do
                grep -q up "$TMP/out" 2>/dev/null && VMM=$(vmm_pids | head -1) && [ -n "$VMM" ] && return 0
                sleep 0.05
        done
        return 1
}
stop_sandbox() { kill -INT "$RUN" 2>/dev/null; wait "$RUN" 2>/dev/null; }
field() { awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$VMM/status"; }

start_sandbox || { t_begin "sandbox"; t_fail "no VMM found: $(cat "$TMP/err")"; t_summary; exit 1; }

t_begin "the VMM runs as an unprivileged uid and group, without supplementary groups"
uid=$(field Uid | awk '{print $1}'); gid=$(field Gid | awk '{print $1}')
if [ "$uid" -ge $((0x10000000)) ] && [ "$gid" = $((0x10000000)) ] && [ -z "$(field Groups)" ] &&
        [ "$(field Uid | tr '\t' ' ' | tr -s ' ')" = "$uid $uid $uid $uid" ]; then t_pass
else t_fail "Uid [$(field Uid)] Gid [$(field Gid)] Groups [$(field Groups)]"; fi

t_begin "no capabilities in any set, no_new_privs, a seccomp filter"
caps="$(field CapInh)$(field CapPrm)$(field CapEff)$(field CapBnd)$(field CapAmb)"
if [ "$caps" = "$(printf '0%.0s' $(seq 80))" ] && [ "$(field NoNewPrivs)" = 1 ] && [ "$(field Seccomp)" = 2 ]; then t_pass
else t_fail "caps [$caps] nnp [$(field NoNewPrivs)] seccomp [$(field Seccomp)]"; fi

t_begin "its own mount, pid, ipc, uts and network namespaces"
shared=
for ns in mnt pid ipc uts net; do
        [ "$(readlink "/proc/$VMM/ns/$ns")" = "$(readlink "/proc/self/ns/$ns")" ] && shared="$shared $ns"
done
[ -z "$shared" ] && t_pass || t_fail "shares with the host:$shared"

t_begin "its network namespace holds a loopback device and nothing else"
ifs=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' "/proc/$VMM/net/dev" | tr '\n' ' ')
[ "$ifs" = "lo " ] && t_pass || t_fail "interfaces: [$ifs]"

t_begin "its root holds system libraries, QEMU and three devices; no state of ours"
top=$(ls -A "/proc/$VMM/root" | tr '\n' ' ')
dev=$(ls -A "/proc/$VMM/root/dev" | tr '\n' ' ')
if [ "$top" = "dev lib lib64 proc usr " ] && [ "$dev" = "null urandom zero " ] &&
        [ ! -e "/proc/$VMM/root/etc" ] && [ ! -e "/proc/$VMM/root$LUMINAGUARD_HOME" ] &&
        [ ! -e "/proc/$VMM/root/dev/kvm" ] && [ ! -e "/proc/$VMM/root/tmp" ]; then t_pass
else t_fail "root [$top] dev [$dev]"; fi

t_begin "its root file system and every bind in it are read-only"
bad=
for f in /x /usr/lib/x /dev/x; do
        if touch "/proc/$VMM/root$f" 2>/dev/null; then bad="$bad $f"; rm -f "/proc/$VMM/root$f"; fi
done
echo x 2>/dev/null >"/proc/$VMM/root/dev/null" || bad="$bad /dev/null-unwritable"
[ -z "$bad" ] && t_pass || t_fail "writable:$bad"

t_begin "its /proc shows the VMM alone (pid 1 of its namespace)"
procs=$(ls "/proc/$VMM/root/proc" | grep -cE '^[0-9]+$')
[ "$procs" = 1 ] && [ -e "/proc/$VMM/root/proc/1" ] && t_pass || t_fail "$procs processes visible"

t_begin "cgroup limits: memory = guest + 512 MiB, CPU quota, 64 tasks"
mem= cpu= pids=
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
        d=/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$VMM/cgroup")
        mem=$(cat "$d/memory.max"); cpu=$(awk '{print $1}' "$d/cpu.max"); pids=$(cat "$d/pids.max")
else
        sub() { awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$VMM/cgroup"; }
        mem=$(cat "/sys/fs/cgroup/memory$(sub memory)/memory.limit_in_bytes")
        cpu=$(cat "/sys/fs/cgroup/cpu$(sub cpu)/cpu.cfs_quota_us")
        pids=$(cat "/sys/fs/cgroup/pids$(sub pids)/pids.max")
fi
if [ "$mem" = $(((256 + 512) << 20)) ] && [ "$cpu" = 150000 ] && [ "$pids" = 64 ]; then t_pass
else t_fail "memory [$mem] cpu quota [$cpu] pids [$pids]"; fi

t_begin "the template RAM the VMM maps is a sealed memfd: nobody can write it"
ram=$(readlink "/proc/$VMM/fd/5")
before=$(head -c 4096 "/proc/$VMM/fd/5" | sha256sum)
if printf 'poison' 2>/dev/null | dd of="/proc/$VMM/fd/5" conv=notrunc status=none 2>/dev/null; then written=yes; else written=no; fi
after=$(head -c 4096 "/proc/$VMM/fd/5" | sha256sum)
case $ram in
/memfd:lg-template-ram*) [ "$written" = no ] && [ "$before" = "$after" ] && t_pass || t_fail "a write went through" ;;
*) t_fail "fd 5 is [$ram]" ;;
esac

stop_sandbox

t_begin "after the run: no VMM, run directory or cgroup left"
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_begin "luminaguard SIGKILLed: its VMM dies with it, the next run collects the rest"
start_sandbox || true
victim=$VMM
kill -9 "$RUN"; wait "$RUN" 2>/dev/null
for _ in $(seq 100); do kill -0 "$victim" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$victim" 2>/dev/null; then t_fail "VMM $victim outlived luminaguard"
else
        # The run directory is collected once its owner lock is free (a dead owner's is).
        "$LG" run -- true >/dev/null 2>&1
        leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"
fi

t_summary
