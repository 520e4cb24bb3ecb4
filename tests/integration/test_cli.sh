#!/usr/bin/env bash
# The other subcommands as a user meets them: doctor, image, top-level usage.
# Usage: tests/integration/test_cli.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"

t_begin "--version and --help"
v=$("$LG" --version) && h=$("$LG" --help)
[[ "$v" =~ ^luminaguard\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && grep -q "run -- CMD" <<<"$h" && t_pass || t_fail "version=[$v]"

t_begin "unknown command and missing command are usage errors (120)"
"$LG" frobnicate >/dev/null 2>"$TMP/e"; r1=$?
"$LG" >/dev/null 2>"$TMP/e2"; r2=$?
[ $r1 -eq 120 ] && [ $r2 -eq 120 ] && grep -q "unknown command 'frobnicate'" "$TMP/e" && t_pass ||
        t_fail "got $r1/$r2: $(cat "$TMP/e" "$TMP/e2")"

t_begin "image build is idempotent; image info reports the image current"
"$LG" image build >"$TMP/o" 2>&1 && "$LG" image build >"$TMP/o2" 2>&1 && "$LG" image info >"$TMP/i" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -qi "up to date" "$TMP/o2" && ! grep -q "step 1/" "$TMP/o2" &&
        grep -q vmlinux "$TMP/i" && ! grep -qi stale "$TMP/i"; then t_pass
else t_fail "rc=$rc: $(cat "$TMP/o2" "$TMP/i")"; fi

t_begin "doctor: one verdict line per check, accelerator decided by the probe"
"$LG" doctor >"$TMP/d" 2>&1; rc=$?
bad=$(grep -vE '^(OK|WARN|FAIL) +[a-z]' "$TMP/d" | head -3)
if grep -qE '^(OK|WARN) +accelerator .* using (kvm|tcg)' "$TMP/d" && grep -qE '^OK +qemu' "$TMP/d" &&
        grep -qE '^OK +base image' "$TMP/d" && [ -z "$bad" ] &&
        { [ $rc -eq 0 ] || grep -q '^FAIL' "$TMP/d"; }; then t_pass
else t_fail "rc=$rc unexpected lines: [$bad] $(cat "$TMP/d")"; fi

t_begin "LUMINAGUARD_ACCEL override is honoured and reported"
LUMINAGUARD_ACCEL=tcg "$LG" doctor >"$TMP/d" 2>&1
grep -q 'accelerator override' "$TMP/d" && grep -q 'using tcg' "$TMP/d" && t_pass || t_fail "$(cat "$TMP/d")"

t_summary
