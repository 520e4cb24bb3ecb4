#!/usr/bin/env bash
# Attacks from inside a sandbox that every backend must contain: reaching
# the host's files, our state, its loopback services, the network; and
# exhausting processes, memory, disk and CPU while the host and another
# sandbox stay responsive (a bound is asserted). One table row per attack.
# Usage: [LG_BACKEND=vm|process] tests/security/test_attacks.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
BACKEND=${LG_BACKEND:-vm}
T_SUITE="test_attacks[$BACKEND]"
. tests/lib.sh

it_setup "${1:-build}"
if [ "$BACKEND" = process ] && [ "$(id -u)" != 0 ]; then
        t_begin attacks; t_skip "not root: the process backend runs only jailed"; t_summary; exit
fi
RUN=("$LG" run --backend "$BACKEND")
srun() { "${RUN[@]}" "$@" </dev/null; }
srun -- true >/dev/null 2>&1 # image and template

# A host service on loopback that no sandbox may reach; it counts connections.
python3 - "$TMP/port" "$TMP/hits" <<'PY' &
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
n = 0
while True:
    c, _ = s.accept(); n += 1; open(sys.argv[2], "w").write(str(n)); c.close()
PY
LISTENER=$!
trap 'kill $LISTENER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")

# Host responsiveness while a sandbox misbehaves: ms for another sandbox's `echo`.
other_ms() {
        local t0 out
        t0=$(date +%s%N)
        out=$(srun -- echo other 2>/dev/null)
        [ "$out" = other ] || { echo 999999; return; }
        echo $((($(date +%s%N) - t0) / 1000000))
}
# The bound on that while under attack: generous under TCG, tight for processes.
if [ "$BACKEND" = vm ]; then BOUND_MS=10000; else BOUND_MS=3000; fi

echo "attacks from inside a $BACKEND sandbox:"
a_header

a_begin "read the host's /etc/shadow" "not there"
out=$(srun -- cat /etc/shadow 2>&1); rc=$?
[ $rc -ne 0 ] && ! echo "$out" | grep -q '^root:' && a_pass "exit $rc: ${out:0:40}" || a_fail "exit $rc: ${out:0:60}"

a_begin "list our state directory ($LUMINAGUARD_HOME)" "not there"
out=$(srun -- ls "$LUMINAGUARD_HOME/run" 2>&1); rc=$?
[ $rc -ne 0 ] && a_pass "exit $rc: ${out:0:40}" || a_fail "exit $rc: ${out:0:60}"

a_begin "connect to a host loopback service" "refused, nothing reaches it"
out=$(srun -- nc -w 3 127.0.0.1 "$PORT" 2>&1); rc=$?
sleep 0.2
hits=$(cat "$TMP/hits" 2>/dev/null || echo 0)
[ $rc -eq 1 ] && [ "$hits" = 0 ] && a_pass "${out##*: }; host saw $hits connections" ||
        a_fail "exit $rc, host saw $hits connections: ${out:0:40}"

a_begin "reach another sandbox's egress proxy" "not there"
"${RUN[@]}" --net allow=127.0.0.1:1 -- sh -c 'echo up; sleep 8' >"$TMP/a.out" 2>"$TMP/a.err" </dev/null & other=$!
for _ in $(seq 100); do grep -q up "$TMP/a.out" 2>/dev/null && break; sleep 0.1; done
out=$(srun -- nc -w 3 127.0.0.1 3128 2>&1); rc=$?
kill -INT $other 2>/dev/null; wait $other 2>/dev/null
[ $rc -eq 1 ] && ! grep -q "egress" "$TMP/a.err" && a_pass "${out##*: }" || a_fail "exit $rc: ${out:0:60}"

a_begin "egress to the internet (1.1.1.1:80)" "unreachable"
out=$(srun --timeout 10s -- nc -w 3 1.1.1.1 80 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "unreachable" && a_pass "exit $rc: ${out#*: }" || a_fail "exit $rc: ${out:0:60}"

a_begin "network interfaces" "loopback only"
ifs=$(srun -- cat /proc/net/dev 2>/dev/null | awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' | tr '\n' ' ')
[ "$ifs" = "lo " ] && a_pass "$ifs" || a_fail "[$ifs]"

a_begin "fork bomb" "contained; others responsive"
"${RUN[@]}" --timeout 15s -- sh -c 'while :; do sleep 30 & done' >/dev/null 2>&1 </dev/null & bomb=$!
sleep 1
ms=$(other_ms)
wait $bomb; rc=$?
[ "$ms" -lt $BOUND_MS ] && [ $rc -ne 0 ] && a_pass "exit $rc; other sandbox in $ms ms" ||
        a_fail "exit $rc; other sandbox in $ms ms (bound $BOUND_MS)"

a_begin "memory bomb (1 GiB in a 256 MiB sandbox)" "killed; others responsive"
"${RUN[@]}" --timeout 30s -- dd if=/dev/zero of=/dev/null bs=1024M count=1 >/dev/null 2>&1 </dev/null & bomb=$!
sleep 0.5
ms=$(other_ms)
wait $bomb; rc=$?
[ "$ms" -lt $BOUND_MS ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && a_pass "exit $rc; other sandbox in $ms ms" ||
        a_fail "exit $rc; other sandbox in $ms ms (bound $BOUND_MS)"

a_begin "disk fill (write 1 GiB to /tmp)" "ENOSPC; others responsive"
"${RUN[@]}" --timeout 60s -- sh -c 'head -c 1073741824 /dev/zero >/tmp/fill; echo "rc=$?"' >"$TMP/fill" 2>&1 </dev/null & bomb=$!
sleep 0.5
ms=$(other_ms)
wait $bomb; rc=$?
grep -q "rc=1" "$TMP/fill" && [ "$ms" -lt $BOUND_MS ] && a_pass "write failed; other sandbox in $ms ms" ||
        a_fail "exit $rc [$(tail -2 "$TMP/fill" | tr '\n' ' ')]; other in $ms ms"

a_begin "CPU spin on every vCPU" "throttled; others responsive"
"${RUN[@]}" --timeout 6s -- sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & bomb=$!
sleep 1
ms=$(other_ms)
wait $bomb; rc=$?
[ $rc -eq 124 ] && [ "$ms" -lt $BOUND_MS ] && a_pass "timed out as asked; other sandbox in $ms ms" ||
        a_fail "exit $rc; other sandbox in $ms ms (bound $BOUND_MS)"

a_begin "nothing of any sandbox left" "no VMM, run dir, cgroup"
left=$(leftovers) && a_pass "none" || a_fail "$left"

t_summary
