#!/usr/bin/env bash
# Fuzz for SECONDS in all (default 30): the frame codec (two thirds of the
# time) and the egress policy's parsers (a third). Each target first replays
# its committed corpus, then runs libFuzzer from it. Builds nothing (make
# fuzz does). New inputs go to a scratch directory, not into the committed
# seeds; a crash leaves its input in build-fuzz/crash-* and makes this fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-30}

fuzz_one() { # fuzz_one NAME SECONDS
        local name=$1 t=$2 seeds=tests/fuzz/corpus/$1 fuzzer=build-fuzz/fuzz_$1
        local replay=build-fuzz/replay_$1 work log rc runs cov corp
        if [ -x "$replay" ]; then
                "$replay" "$seeds" >/dev/null || { echo "fuzz: FAIL $name corpus replay crashed"; return 1; }
        fi
        if [ ! -x "$fuzzer" ]; then
                echo "fuzz: SKIP $fuzzer not built (needs clang with libFuzzer); corpus replay only"
                [ -x "$replay" ]
                return
        fi
        work=$(mktemp -d build-fuzz/corpus.XXXXXX) || return 1
        log=build-fuzz/fuzz_$name.log
        "$fuzzer" -max_total_time="$t" -max_len=4096 -artifact_prefix=build-fuzz/ \
                -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
        rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        corp=$(ls "$work" | wc -l)
        rm -rf "$work"
        if [ "$rc" -ne 0 ]; then
                echo "fuzz: FAIL $name after ${runs:-?} runs (exit $rc); see $log and build-fuzz/crash-*"
                grep -m3 -E 'ERROR|SUMMARY|deadly' "$log"
                return 1
        fi
        echo "fuzz: $name ok: ${runs:-?} runs in ${t}s, ${cov:-cov: ?}, $corp new inputs"
}

net=$((secs / 3 > 0 ? secs / 3 : 1))
fuzz_one proto $((secs - net > 0 ? secs - net : 1)) && fuzz_one net "$net"
