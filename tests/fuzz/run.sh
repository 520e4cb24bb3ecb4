#!/usr/bin/env bash
# Fuzz the frame codec for SECONDS (default 30): replay the committed corpus,
# then run libFuzzer from it. Builds nothing (make fuzz does). New inputs go to
# a scratch directory, not into the committed seeds; a crash leaves its input
# in build-fuzz/crash-* and makes this script fail.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-30}
seeds=tests/fuzz/corpus/proto
fuzzer=build-fuzz/fuzz_proto
replay=build-fuzz/replay_proto

if [ -x "$replay" ]; then
        "$replay" "$seeds" >/dev/null || { echo "fuzz: FAIL corpus replay crashed"; exit 1; }
fi
if [ ! -x "$fuzzer" ]; then
        echo "fuzz: SKIP $fuzzer not built (needs clang with libFuzzer); corpus replay only"
        [ -x "$replay" ]
        exit
fi
work=$(mktemp -d build-fuzz/corpus.XXXXXX) || exit 1
log=build-fuzz/fuzz_proto.log
"$fuzzer" -max_total_time="$secs" -max_len=4096 -artifact_prefix=build-fuzz/ \
        -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
corp=$(ls "$work" | wc -l)
rm -rf "$work"
if [ "$rc" -ne 0 ]; then
        echo "fuzz: FAIL proto after ${runs:-?} runs (exit $rc); see $log and build-fuzz/crash-*"
        grep -m3 -E 'ERROR|SUMMARY|deadly' "$log"
        exit 1
fi
echo "fuzz: proto ok: ${runs:-?} runs in ${secs}s, ${cov:-cov: ?}, $corp new inputs"
