#!/usr/bin/env bash
# The warm pool: hand-over, no double hand-out under concurrency, replacement
# of dead members, lease ends with the client, fallback, clean shutdown.
# Usage: tests/integration/test_pool.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"
POOL_PID=
cleanup() {
        [ -n "$POOL_PID" ] && kill -INT "$POOL_PID" 2>/dev/null && wait "$POOL_PID" 2>/dev/null
        rm -rf "$TMP"
}
trap cleanup EXIT

status() { "$LG" pool status 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rundirs() { ls -A "$LUMINAGUARD_HOME/run" 2>/dev/null | wc -l; }
wait_idle() { # wait_idle N: until the pool holds N idle sandboxes and its pre-started one (max 30 s)
        for _ in $(seq 300); do
                [ "$(status '(d["idle"], d["prestarted"])' 2>/dev/null)" = "($1, 1)" ] && return 0
                sleep 0.1
        done
        return 1
}
vmms() { vmm_pids | wc -l; }

"$LG" run -- true >/dev/null 2>&1 # image and template

t_begin "pool serve starts and fills: 2 idle sandboxes, 1 pre-started process"
"$LG" pool serve --size 2 --prestart 1 >"$TMP/pool.log" 2>&1 &
POOL_PID=$!
wait_idle 2 && [ -S "$LUMINAGUARD_HOME/pool.sock" ] && [ "$(vmms)" -eq 3 ] && t_pass ||
        t_fail "VMMs $(vmms): $(cat "$TMP/pool.log")"

t_begin "a second pool on the same home is refused"
"$LG" pool serve --size 1 >"$TMP/o" 2>&1; rc=$?
[ $rc -eq 120 ] && grep -q "already serves" "$TMP/o" && t_pass || t_fail "rc=$rc $(cat "$TMP/o")"

t_begin "run takes a pooled sandbox (hit) and it is reseeded"
"$LG" -vv run -- sh -c 'cat /run/sandbox-id' >"$TMP/o" 2>"$TMP/e"; rc=$?
id=$(cat "$TMP/o")
if [ $rc -eq 0 ] && grep -q "from the pool (hit" "$TMP/e" && grep -q "sandbox $id from the pool" "$TMP/e"; then t_pass
else t_fail "rc=$rc id=$id: $(cat "$TMP/e")"; fi

t_begin "6 concurrent runs: every one succeeds in its own sandbox"
wait_idle 2
pids=
for i in 1 2 3 4 5 6; do "$LG" run -- sh -c 'cat /run/sandbox-id; sleep 0.5' >"$TMP/p$i" 2>&1 & pids="$pids $!"; done
# shellcheck disable=SC2086
wait $pids # not a bare wait: the pool is a background job too
ok=$(cat "$TMP"/p? | grep -c '^sb-')
uniq=$(cat "$TMP"/p? | sort -u | grep -c '^sb-')
[ "$ok" -eq 6 ] && [ "$uniq" -eq 6 ] && t_pass || t_fail "ok=$ok distinct=$uniq: $(cat "$TMP"/p?)"

t_begin "a miss restores into the pre-started process"
# 6 requests against 2 idle sandboxes: at least 4 misses, the first of them pre-started.
[ "$(status 'd["misses_prestarted"]')" -ge 1 ] && [ "$(status 'd["resume_ms"]["n"]')" -ge 1 ] &&
        t_pass || t_fail "$("$LG" pool status)"

t_begin "a pre-started process killed while waiting is replaced"
wait_idle 2
pre=$(status 'd["prestarted_sandboxes"][0]["pid"]')
before=$(status 'd["replaced"]')
kill -9 "$pre"
for _ in $(seq 100); do [ "$(status 'd["replaced"]')" -gt "$before" ] && break; sleep 0.1; done
now=
wait_idle 2 && now=$(status 'd["prestarted_sandboxes"][0]["pid"]')
[ -n "$now" ] && [ "$now" != "$pre" ] && ! kill -0 "$pre" 2>/dev/null &&
        [ "$(status 'd["replaced"]')" -gt "$before" ] && t_pass ||
        t_fail "pid $pre -> $now, replaced $before -> $(status 'd["replaced"]')"

t_begin "three at once after that: two hits and a miss into the new pre-started process"
before=$(status 'd["misses_prestarted"]')
pids=
for i in 1 2 3; do "$LG" run -- cat /run/sandbox-id >"$TMP/k$i" 2>&1 & pids="$pids $!"; done
# shellcheck disable=SC2086
wait $pids
ok=$(cat "$TMP"/k? | sort -u | grep -c '^sb-')
[ "$ok" -eq 3 ] && [ "$(status 'd["misses_prestarted"]')" -gt "$before" ] && t_pass ||
        t_fail "ok=$ok: $(cat "$TMP"/k?) $("$LG" pool status)"

t_begin "an idle sandbox killed while pooled is replaced"
wait_idle 2
victim=$(status 'd["idle_sandboxes"][0]["pid"]')
before=$(status 'd["replaced"]')
kill -9 "$victim"
for _ in $(seq 100); do [ "$(status 'd["replaced"]')" -gt "$before" ] && break; sleep 0.1; done
wait_idle 2 && [ "$(status 'd["replaced"]')" -gt "$before" ] && ! kill -0 "$victim" 2>/dev/null && t_pass ||
        t_fail "replaced $before -> $(status 'd["replaced"]')"

t_begin "a client killed mid-command: the pool destroys its sandbox"
wait_idle 2
"$LG" run -- sleep 60 >/dev/null 2>&1 &
client=$!
sleep 1
kill -9 $client; wait $client 2>/dev/null
ok=0
for _ in $(seq 100); do
        # Only the pool's idle sandboxes remain: no VM of the dead client.
        if [ "$(rundirs)" -eq 3 ] && [ "$(vmms)" -eq 3 ]; then ok=1; break; fi
        sleep 0.1
done
[ $ok = 1 ] && t_pass || t_fail "run dirs $(rundirs), VMMs $(vmms)"

t_begin "another shape is served without the pool"
"$LG" -vv run --memory 192M -- true 2>"$TMP/e"; rc=$?
[ $rc -eq 0 ] && ! grep -q "from the pool" "$TMP/e" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "pool status counts every hand-over once"
# 1 single + 6 concurrent + 3 more + 1 killed client; the other shape never reached the pool.
served=$(status 'd["hits"] + d["misses"]')
hits=$(status 'd["hits"]')
[ "$served" -eq 11 ] && [ "$hits" -ge 3 ] && t_pass || t_fail "hits+misses=$served hits=$hits"

t_begin "SIGTERM: the pool destroys everything and removes its socket"
kill -TERM "$POOL_PID"; wait "$POOL_PID"; rc=$?; POOL_PID=
if [ $rc -eq 0 ] && [ "$(rundirs)" -eq 0 ] && [ -z "$(vmm_pids)" ] &&
        [ ! -e "$LUMINAGUARD_HOME/pool.sock" ]; then t_pass
else t_fail "rc=$rc run dirs $(rundirs)"; fi

t_begin "with too little host memory the pool adds nothing, and a miss is still served"
"$LG" pool serve --size 2 --reserve 64T >"$TMP/pool2.log" 2>&1 &
POOL_PID=$!
for _ in $(seq 100); do [ "$(status 'd["low_memory"]' 2>/dev/null)" = True ] && break; sleep 0.1; done
"$LG" run -- echo served >"$TMP/o" 2>&1; rc=$?
sleep 1.5 # a refill attempt or two
if [ $rc -eq 0 ] && [ "$(cat "$TMP/o")" = served ] && [ "$(status 'd["misses"]')" -eq 1 ] &&
        [ "$(status 'd["idle"] + d["prestarted"]')" -eq 0 ] && [ "$(status 'd["held_back"]')" -ge 2 ] &&
        grep -q "MiB reserve: no new sandboxes" "$TMP/pool2.log"; then t_pass
else t_fail "rc=$rc $(cat "$TMP/o") $("$LG" pool status) $(cat "$TMP/pool2.log")"; fi
kill -TERM "$POOL_PID"; wait "$POOL_PID"; POOL_PID=

t_begin "a process-backend pool serves run --backend process, and VM runs bypass it"
if [ "$(id -u)" != 0 ]; then t_skip "not root: the process backend runs only jailed"
else
        "$LG" pool serve --backend process --size 2 >"$TMP/pool3.log" 2>&1 &
        POOL_PID=$!
        for _ in $(seq 100); do [ "$(status 'd["idle"]' 2>/dev/null)" = 2 ] && break; sleep 0.1; done
        "$LG" -vv run --backend process -- sh -c 'echo $$' >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
        "$LG" -vv run -- true >/dev/null 2>"$TMP/e2" </dev/null; rc2=$?
        if [ $rc -eq 0 ] && grep -q "from the pool (hit" "$TMP/e" && [ $rc2 -eq 0 ] &&
                ! grep -q "from the pool" "$TMP/e2" && [ "$(status 'd["backend"]')" = process ] &&
                [ "$(status 'd["hits"]')" = 1 ]; then t_pass
        else t_fail "rc=$rc/$rc2: $(cat "$TMP/e") $(cat "$TMP/e2")"; fi
        kill -TERM "$POOL_PID"; wait "$POOL_PID"; POOL_PID=
fi

t_begin "without a pool, run still works"
"$LG" run -- echo fine >"$TMP/o" 2>&1 && [ "$(cat "$TMP/o")" = fine ] && t_pass || t_fail "$(cat "$TMP/o")"

t_summary
