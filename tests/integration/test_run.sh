#!/usr/bin/env bash
# Integration tests of `luminaguard run`: real QEMU micro-VMs, real guest kernel,
# or, with LG_BACKEND=process, the process backend (the same tests where they
# apply; the VM-only ones say so).
# Usage: [LG_BACKEND=vm|process] tests/integration/test_run.sh [BUILD_DIR]   (default: build)
set -u
cd "$(dirname "$0")/../.."
BACKEND=${LG_BACKEND:-vm}
T_SUITE="test_run[$BACKEND]"
. tests/lib.sh

it_setup "${1:-build}"
RUN=("$LG" run --backend "$BACKEND") # an array, not a function: "${RUN[@]}" & gives its pid
lgrun() { "${RUN[@]}" "$@"; }
vm_only() { # vm_only: skip the current test on the process backend, saying why
        [ "$BACKEND" = vm ] && return 0
        t_skip "$1"
        return 1
}

if [ ! -x "$LG" ]; then
        t_begin build; t_fail "$LG not built (run make)"; t_summary; exit 1
fi
if ! command -v qemu-system-x86_64 >/dev/null; then
        t_begin qemu; t_skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
        t_summary; exit 1   # a VM suite without a VMM must not look green
fi

# The image is shared by all tests (and by the sanitizer run); building it is not timed here.
if ! "$LG" image build >"$TMP/build.log" 2>&1; then
        t_begin image-build; t_fail "$(tail -3 "$TMP/build.log")"; t_summary; exit 1
fi


# run_lg OUT ERR [run args...] -> sets RC
run_lg() {
        local out=$1 err=$2; shift 2
        lgrun "$@" >"$out" 2>"$err" </dev/null
        RC=$?
}

t_begin "exit codes 0, 1, 42"
ok=1
for code in 0 1 42; do
        run_lg "$TMP/o" "$TMP/e" -- sh -c "exit $code"
        [ "$RC" -eq "$code" ] || { t_fail "exit $code gave $RC: $(cat "$TMP/e")"; ok=0; break; }
done
[ $ok = 1 ] && t_pass

t_begin "signal death is 128+N"
run_lg "$TMP/o" "$TMP/e" -- sh -c 'kill -TERM $$'
[ "$RC" -eq 143 ] && t_pass || t_fail "expected 143, got $RC: $(cat "$TMP/e")"

t_begin "stdout and stderr stay separate"
run_lg "$TMP/o" "$TMP/e" -- sh -c 'echo to-out; echo to-err >&2; echo more-out'
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/o")" = "$(printf 'to-out\nmore-out')" ] &&
        grep -qx to-err "$TMP/e" && ! grep -q to-out "$TMP/e"; then t_pass
else t_fail "rc=$RC out=[$(cat "$TMP/o")] err=[$(cat "$TMP/e")]"; fi

t_begin "stdin is forwarded when not a TTY"
head -c 200000 /dev/urandom >"$TMP/in"
lgrun -- sha256sum <"$TMP/in" >"$TMP/o" 2>"$TMP/e"; RC=$?
want=$(sha256sum <"$TMP/in" | cut -d' ' -f1)
got=$(cut -d' ' -f1 "$TMP/o")
[ "$RC" -eq 0 ] && [ "$got" = "$want" ] && t_pass || t_fail "rc=$RC want $want got $got"

t_begin "environment and working directory"
run_lg "$TMP/o" "$TMP/e" --env GREETING=hello --env EMPTY= -w /tmp -- sh -c 'echo "$GREETING:$EMPTY:$(pwd)"'
[ "$RC" -eq 0 ] && [ "$(cat "$TMP/o")" = "hello::/tmp" ] && t_pass || t_fail "rc=$RC out=$(cat "$TMP/o") $(cat "$TMP/e")"

t_begin "1 MiB of output arrives intact"
run_lg "$TMP/o" "$TMP/e" -- sh -c 'head -c 1048576 /dev/urandom | tee /tmp/x >/dev/null; cat /tmp/x; sha256sum /tmp/x >&2'
want=$(cut -d' ' -f1 "$TMP/e")
got=$(sha256sum <"$TMP/o" | cut -d' ' -f1)
size=$(stat -c %s "$TMP/o")
[ "$RC" -eq 0 ] && [ "$size" -eq 1048576 ] && [ "$got" = "$want" ] && t_pass || t_fail "rc=$RC size=$size"

t_begin "a reader that goes away (| head) stops the command with SIGPIPE (141), fast"
start=$(date +%s%N)
lgrun -t 20s -- yes 2>"$TMP/e" </dev/null | head -1 >"$TMP/o"; rc=${PIPESTATUS[0]}
ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" -eq 141 ] && [ "$(cat "$TMP/o")" = y ] && [ "$ms" -lt 15000 ] && t_pass || t_fail "rc=$rc after ${ms} ms: $(cat "$TMP/e")"

t_begin "a slow reader still gets every byte"
lgrun -- head -c 3000000 /dev/zero </dev/null 2>"$TMP/e" | (sleep 2; wc -c) >"$TMP/o"; rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && [ "$(cat "$TMP/o")" -eq 3000000 ] && t_pass || t_fail "rc=$rc got $(cat "$TMP/o"): $(cat "$TMP/e")"

t_begin "closed stdin and stdout descriptors do not leak into the protocol"
lgrun -- sh -c 'cat; echo done >&2' <&- >&- 2>"$TMP/e"; rc=$?
[ "$rc" -eq 0 ] && [ "$(cat "$TMP/e")" = done ] && t_pass || t_fail "rc=$rc: $(cat "$TMP/e")"

t_begin "command not found is 127, not executable is 126"
run_lg "$TMP/o" "$TMP/e" -- /no/such/command
rc1=$RC
run_lg "$TMP/o" "$TMP/e2" -- /etc
[ "$rc1" -eq 127 ] && [ "$RC" -eq 126 ] && grep -q "No such file" "$TMP/e" && t_pass || t_fail "got $rc1/$RC: $(cat "$TMP/e" "$TMP/e2")"

t_begin "timeout kills the command (124) and the VM"
start=$(date +%s%N)
run_lg "$TMP/o" "$TMP/e" --timeout 2s -- sh -c 'sleep 60 & sleep 60'
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$RC" -eq 124 ] && grep -q "timed out" "$TMP/e" && [ "$ms" -lt 30000 ] && leftovers; then t_pass
else t_fail "rc=$RC after ${ms} ms: $(cat "$TMP/e")"; fi

t_begin "two sandboxes run concurrently"
"${RUN[@]}" -- sh -c 'sleep 1; echo A' >"$TMP/a" 2>&1 </dev/null & pa=$!
"${RUN[@]}" -- sh -c 'sleep 1; echo B' >"$TMP/b" 2>&1 </dev/null & pb=$!
wait $pa; ra=$?; wait $pb; rb=$?
[ $ra -eq 0 ] && [ $rb -eq 0 ] && [ "$(cat "$TMP/a")" = A ] && [ "$(cat "$TMP/b")" = B ] && leftovers && t_pass ||
        t_fail "ra=$ra rb=$rb a=[$(cat "$TMP/a")] b=[$(cat "$TMP/b")]"

t_begin "kill -9 of the VMM (QEMU, or the process sandbox's agent) mid-command: 123, nothing left"
"${RUN[@]}" -- sh -c 'echo started; sleep 60' >"$TMP/o" 2>"$TMP/e" </dev/null & p=$!
for _ in $(seq 100); do grep -q started "$TMP/o" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2046
kill -9 $(vmm_pids) 2>/dev/null || true
wait $p; RC=$?
if [ "$RC" -eq 123 ] && grep -q "killed by signal 9" "$TMP/e" && leftovers; then t_pass
else t_fail "rc=$RC: $(cat "$TMP/e")"; fi

t_begin "Ctrl-C (SIGINT) destroys the sandbox (130)"
"${RUN[@]}" -- sh -c 'echo started; sleep 60' >"$TMP/o" 2>"$TMP/e" </dev/null & p=$!
for _ in $(seq 100); do grep -q started "$TMP/o" 2>/dev/null && break; sleep 0.1; done
kill -INT $p
wait $p; RC=$?
[ "$RC" -eq 130 ] && leftovers && t_pass || t_fail "rc=$RC: $(cat "$TMP/e")"

# The agent is PID 1 in the guest, so nothing inside can kill it alone; the
# guest kernel dying takes it down mid-call (the host sees the channel close).
t_begin "guest dying mid-call (kernel panic) is a lost sandbox (123)"
if vm_only "no guest kernel: the process backend shares the host's"; then
run_lg "$TMP/o" "$TMP/e" -- sh -c 'echo started; echo c >/proc/sysrq-trigger; sleep 5'
log=$(grep -o '/[^ )]*console.log' "$TMP/e" | head -1)
if [ "$RC" -eq 123 ] && grep -q "shut down during the command" "$TMP/e" && grep -q started "$TMP/o" &&
        grep -q "Kernel panic" "$log" && leftovers; then t_pass
else t_fail "rc=$RC: $(cat "$TMP/e")"; fi
fi

t_begin "guest powering off mid-call is a lost sandbox (123)"
if vm_only "nothing to power off (tests/security/test_process.sh: reboot() is killed)"; then
run_lg "$TMP/o" "$TMP/e" -- sh -c 'poweroff -f; sleep 5'
[ "$RC" -eq 123 ] && leftovers && t_pass || t_fail "rc=$RC: $(cat "$TMP/e")"
fi

t_begin "a guest that never becomes ready: bounded wait, names the console log (122)"
if vm_only "no boot to wait for: the agent is ready in milliseconds"; then
run_lg "$TMP/o" "$TMP/e" --cold --boot-timeout 300ms -- true
log=$(grep -o '/[^ )]*console.log' "$TMP/e" | head -1)
[ "$RC" -eq 122 ] && grep -q "not ready after 300 ms" "$TMP/e" && [ -f "$log" ] && leftovers && t_pass ||
        t_fail "rc=$RC log=[$log]: $(cat "$TMP/e")"
fi

t_begin "unknown image (121)"
run_lg "$TMP/o" "$TMP/e" --image nosuchimage -- true
[ "$RC" -eq 121 ] && [ "$(wc -l <"$TMP/e")" -ge 1 ] && leftovers && t_pass || t_fail "rc=$RC: $(cat "$TMP/e")"

t_begin "usage errors (120): unknown option, missing command, bad values"
ok=1
for args in "--bogus -- true" "" "--memory 12 -- true" "--timeout xyz -- true" "--cpus 0 -- true" "--workdir rel -- true" "--env =x -- true" "--backend none -- true" "--pids 2 -- true" "--disk 1k -- true"; do
        # shellcheck disable=SC2086
        lgrun $args >"$TMP/o" 2>"$TMP/e" </dev/null; RC=$?
        if [ "$RC" -ne 120 ] || [ "$(grep -c 'error:' "$TMP/e")" -ne 1 ]; then
                t_fail "'run $args' gave $RC: $(cat "$TMP/e")"; ok=0; break
        fi
done
[ $ok = 1 ] && leftovers && t_pass

t_begin "no sandbox leftovers after the whole suite"
leftovers && t_pass || t_fail "$(leftovers)"

t_summary
