#!/usr/bin/env bash
# The process backend's confinement, from inside: what a command running on
# the host's kernel can and cannot do. Every attempt must be blocked (and the
# way it is blocked is asserted: killed by the seccomp filter, refused for
# lack of privilege, or not there at all), and each limit must hold.
# Usage: tests/security/test_process.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"
if [ "$(id -u)" != 0 ]; then
        t_begin process; t_skip "not root: the process backend runs only jailed"; t_summary; exit
fi
prun() { "$LG" run --backend process "$@" </dev/null; }
SIGSYS_EXIT=159 # 128 + SIGSYS: what the filter's KILL_PROCESS looks like

t_begin "the command runs as an unprivileged uid in a pid namespace of its own"
out=$("$LG" -v run --backend process -- sh -c 'id -u; echo $$; ls /proc | grep -cE "^[0-9]+$"' 2>"$TMP/e" </dev/null); rc=$?
uid=$(echo "$out" | sed -n 1p); pid=$(echo "$out" | sed -n 2p); nproc=$(echo "$out" | sed -n 3p)
if [ $rc -eq 0 ] && [ "$uid" -gt $((0x10000000)) ] && [ "$pid" -lt 10 ] && [ "$nproc" -le 4 ] &&
        grep -q "no VM" "$TMP/e"; then t_pass
else t_fail "rc=$rc uid=$uid pid=$pid processes=$nproc: $(cat "$TMP/e")"; fi

t_begin "host files are not there: /etc/shadow, /home, our state directory"
prun -- sh -c "cat /etc/shadow; ls /home; ls $LUMINAGUARD_HOME" >"$TMP/o" 2>"$TMP/e"; rc=$?
[ $rc -ne 0 ] && [ ! -s "$TMP/o" ] && [ "$(grep -c 'No such file' "$TMP/e")" -eq 3 ] && t_pass ||
        t_fail "rc=$rc out=[$(cat "$TMP/o")] $(cat "$TMP/e")"

t_begin "the image is read-only below the writable layer; writes vanish with the sandbox"
prun -- sh -c 'echo x >/tmp/mine && cat /tmp/mine && echo y >/bin/busybox' >"$TMP/o" 2>"$TMP/e"; rc=$?
prun -- sh -c 'cat /tmp/mine' >"$TMP/o2" 2>&1; rc2=$?
[ $rc -ne 0 ] && [ "$(cat "$TMP/o")" = x ] && grep -q "denied" "$TMP/e" && [ $rc2 -ne 0 ] && t_pass ||
        t_fail "rc=$rc [$(cat "$TMP/o")] $(cat "$TMP/e") / second sandbox rc=$rc2"

t_begin "no network: loopback only; ping's raw socket is killed, ip's netlink socket refused"
prun -- cat /proc/net/dev >"$TMP/o" 2>/dev/null
ifs=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' "$TMP/o" | tr '\n' ' ')
prun -- ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; ping_rc=$?
prun -- ip link >/dev/null 2>&1; ip_rc=$?
[ "$ifs" = "lo " ] && [ $ping_rc -eq $SIGSYS_EXIT ] && [ $ip_rc -ne 0 ] && [ $ip_rc -ne $SIGSYS_EXIT ] && t_pass ||
        t_fail "interfaces [$ifs] ping rc=$ping_rc ip rc=$ip_rc"

t_begin "forbidden system calls kill the process (SIGSYS): mount, unshare, reboot, module load"
bad=
prun -- mount -t tmpfs none /tmp >/dev/null 2>&1; [ $? -eq $SIGSYS_EXIT ] || bad="$bad mount"
prun -- unshare -U true >/dev/null 2>&1; [ $? -eq $SIGSYS_EXIT ] || bad="$bad unshare"
prun -- poweroff -f >/dev/null 2>&1; [ $? -eq $SIGSYS_EXIT ] || bad="$bad reboot"
# busybox insmod reads the file, then calls init_module with it.
prun -- sh -c 'head -c 4096 /dev/zero >/tmp/m.ko; insmod /tmp/m.ko' >/dev/null 2>&1
[ $? -eq $SIGSYS_EXIT ] || bad="$bad init_module"
[ -z "$bad" ] && t_pass || t_fail "not killed:$bad"

t_begin "no capabilities and no_new_privs for the command"
prun -- sh -c 'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status' >"$TMP/o" 2>&1
if grep -q "CapEff:.0000000000000000" "$TMP/o" && grep -q "CapBnd:.0000000000000000" "$TMP/o" &&
        grep -q "NoNewPrivs:.1" "$TMP/o" && grep -q "Seccomp:.2" "$TMP/o"; then t_pass
else t_fail "$(cat "$TMP/o")"; fi

t_begin "fork bomb: held at --pids while another sandbox and the host stay responsive"
prun --pids 32 --timeout 20s -- sh -c 'while :; do sleep 10 & done' >"$TMP/o" 2>"$TMP/e" & bomb=$!
sleep 0.5
start=$(date +%s%N)
other=$(prun -- echo other 2>/dev/null)
host=$(sh -c 'echo host')
ms=$((($(date +%s%N) - start) / 1000000))
wait $bomb; rc=$?
# busybox sh gives up when fork fails: exit 2, "can't fork".
[ $rc -eq 2 ] && grep -q "can't fork" "$TMP/e" && [ "$other" = other ] && [ "$host" = host ] &&
        [ "$ms" -lt 5000 ] && t_pass || t_fail "rc=$rc other=[$other] ${ms} ms: $(tail -2 "$TMP/e")"

t_begin "disk fill: held at --disk"
prun --disk 4M -- sh -c 'head -c 10485760 /dev/zero >/tmp/fill; echo rc=$?; wc -c </tmp/fill' >"$TMP/o" 2>"$TMP/e"
size=$(tail -1 "$TMP/o")
grep -q "rc=1" "$TMP/o" && [ "$size" -le $((4 << 20)) ] && t_pass || t_fail "$(cat "$TMP/o") $(cat "$TMP/e")"

t_begin "memory bomb: the cgroup's OOM killer ends it at --memory"
prun --memory 64M -- dd if=/dev/zero of=/dev/null bs=200M count=1 >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 137 ] && t_pass || t_fail "rc=$rc: $(tail -2 "$TMP/o")"

# System calls one by one, from a static program fed in through stdin.
if cc -static -O1 -o "$TMP/attack" tests/security/attack.c 2>"$TMP/cc"; then
        echo "system calls from inside a process sandbox:"
        a_header
        while read -r name want; do
                a_begin "$name" "$want"
                out=$("$LG" run --backend process -- sh -c "cat >/tmp/a; chmod +x /tmp/a; /tmp/a $name" \
                        <"$TMP/attack" 2>/dev/null); rc=$?
                case $want in
                killed) seen=$([ $rc -eq $SIGSYS_EXIT ] && echo killed || echo "exit $rc $out") ;;
                allowed) seen=$([ $rc -eq 0 ] && echo allowed || echo "exit $rc $out") ;;
                *) seen=$([ $rc -eq 1 ] && echo "${out#refused: }" || echo "exit $rc $out") ;;
                esac
                [ "$seen" = "$want" ] && a_pass "$seen" || a_fail "$seen"
        done <<'LIST'
ptrace killed
mount killed
unshare-user killed
clone-newuser killed
clone3 ENOSYS
x32-abi killed
i386-abi killed
raw-socket killed
packet-socket killed
socketpair-netlink killed
sctp-socket killed
tcp-socket allowed
ioctl-tiocsti killed
prctl-set-mm killed
fallocate-keep-size killed
netlink-socket EAFNOSUPPORT
dev-kvm ENOENT
dev-mem ENOENT
init-module killed
bpf killed
keyctl killed
setuid-root EPERM
chroot killed
perf-event killed
userfaultfd killed
io-uring killed
settimeofday killed
LIST
else
        t_begin "system calls one by one"; t_skip "no static C compiler to build the probe: $(head -1 "$TMP/cc")"
fi

t_begin "nothing left behind"
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_summary
