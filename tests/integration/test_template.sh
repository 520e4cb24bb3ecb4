#!/usr/bin/env bash
# Templates and clones (DESIGN.md §4): a sandbox restored from the image's
# template must be as good as a fresh boot and must not share identity,
# randomness or time with its siblings; a broken template falls back.
# Usage: tests/integration/test_template.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"


"$LG" run -- true >/dev/null 2>&1 # builds image and template when needed

t_begin "a run restores from the template (no cold boot)"
"$LG" -vv run -- true 2>"$TMP/e"; rc=$?
if [ $rc -eq 0 ] && grep -q "restored in" "$TMP/e" && ! grep -q "booted in" "$TMP/e"; then t_pass
else t_fail "rc=$rc: $(grep -v accelerator "$TMP/e")"; fi

t_begin "clones differ: sandbox id, random bytes; clock follows the host"
probe='cat /run/sandbox-id; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; date +%s'
for i in 1 2 3; do "$LG" run -- sh -c "$probe" >"$TMP/c$i" 2>&1; done
host_now=$(date +%s)
ids=$(awk 'FNR == 1' "$TMP"/c[123] | sort -u | wc -l)
rnds=$(awk 'FNR == 2' "$TMP"/c[123] | sort -u | wc -l)
skew=0
for i in 1 2 3; do
        t=$(sed -n 3p "$TMP/c$i")
        d=$((host_now - t)); d=${d#-}
        [ "$d" -gt "$skew" ] && skew=$d
done
# The last clone ran within ~1 s of host_now; allow 2 s for its command and teardown.
if [ "$ids" -eq 3 ] && [ "$rnds" -eq 3 ] && [ "$skew" -le 2 ] &&
        grep -q '^sb-' "$TMP/c1"; then t_pass
else t_fail "distinct ids=$ids random=$rnds max clock skew=${skew}s: $(cat "$TMP"/c[123])"; fi

# The meta file of the base image's template of this memory size (the full image has its own).
base_meta() {
        grep -l "^memory_mib=$1\$" $(grep -l '^image=base$' "$LUMINAGUARD_HOME"/templates/*/meta) | head -1
}

t_begin "a clone's writes never reach the template RAM file"
ram=$(dirname "$(base_meta 256)")/ram
before=$(sha256sum "$ram" | cut -d' ' -f1)
"$LG" run -- sh -c 'head -c 50000000 /dev/zero >/tmp/fill; sync' >/dev/null 2>&1
after=$(sha256sum "$ram" | cut -d' ' -f1)
[ -n "$before" ] && [ "$before" = "$after" ] && leftovers && t_pass || t_fail "ram changed: $before -> $after"

t_begin "another VM shape gets its own template"
"$LG" -vv run --memory 192M -- sh -c 'free -m' >"$TMP/o" 2>"$TMP/e"; rc=$?
total=$(awk '/^Mem:/ {print $2}' "$TMP/o")
shapes=$(grep -l '^memory_mib=192$' "$LUMINAGUARD_HOME"/templates/*/meta 2>/dev/null | wc -l)
[ $rc -eq 0 ] && [ "$shapes" -eq 1 ] && grep -q "restored in" "$TMP/e" && [ "$total" -lt 192 ] &&
        [ "$total" -gt 120 ] && t_pass || t_fail "rc=$rc 192M templates: $shapes, guest total ${total} MiB"

t_begin "a corrupt template falls back to a cold boot with a warning, then is rebuilt"
# The default shape's template (the 192M one from above must not be the one we break).
meta=$(base_meta 256)
state=$(dirname "$meta")/state
dir=$(dirname "$state")
head -c 1000 /dev/urandom >"$state"
"$LG" run -- echo survived >"$TMP/o" 2>"$TMP/e"; rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$TMP/o")" = survived ] && grep -q "falling back to a cold boot" "$TMP/e" &&
        leftovers; then
        # The broken template was discarded; the next run builds a good one and restores.
        "$LG" -vv run -- true 2>"$TMP/e2" && "$LG" -vv run -- true 2>"$TMP/e3"
        grep -q "restored in" "$TMP/e3" && t_pass || t_fail "no restore after rebuild: $(cat "$TMP/e2" "$TMP/e3")"
else t_fail "rc=$rc out=$(cat "$TMP/o"): $(cat "$TMP/e")"; fi

t_begin "a template older than LUMINAGUARD_TEMPLATE_MAX_AGE is rebuilt"
"$LG" run -- true >/dev/null 2>&1
sleep 2
LUMINAGUARD_TEMPLATE_MAX_AGE=1s "$LG" -vv run -- true 2>"$TMP/e"; rc=$?
if [ $rc -eq 0 ] && grep -q "older than 1 s" "$TMP/e" && grep -q "template .* built in" "$TMP/e" &&
        grep -q "restored in" "$TMP/e"; then t_pass
else t_fail "rc=$rc: $(grep -v accelerator "$TMP/e")"; fi

t_begin "--cold boots without a template"
"$LG" -vv run --cold -- true 2>"$TMP/e"; rc=$?
[ $rc -eq 0 ] && grep -q "booted in" "$TMP/e" && ! grep -q "restored in" "$TMP/e" && t_pass || t_fail "rc=$rc"

t_begin "no leftovers"
leftovers && t_pass || t_fail "$(leftovers)"

t_summary
