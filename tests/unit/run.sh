#!/usr/bin/env bash
# Run every unit-test binary given; print one summary line; exit 1 on any failure.
set -u
pass=0 fail=0
for t in "$@"; do
        echo "== $(basename "$t")"
        if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "!! $(basename "$t") FAILED"; fi
done
echo "unit: $pass binaries passed, $fail failed"
[ "$fail" -eq 0 ]
