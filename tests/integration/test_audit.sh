#!/usr/bin/env bash
# The audit log as `run` writes it: every sandbox and command recorded,
# before the command runs (or it does not run), without environment values;
# egress decisions; concurrent writers; and `audit verify` catching an edit.
# Usage: tests/integration/test_audit.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"
AUDIT=$LUMINAGUARD_HOME/audit
"$LG" run -- true >/dev/null 2>&1 </dev/null # image and template

t_begin "a run records sandbox.start, exec.start, exec.end, sandbox.destroy, in order"
"$LG" run -- sh -c 'cat /run/sandbox-id; exit 7' >"$TMP/id" 2>/dev/null </dev/null; rc=$?
id=$(cat "$TMP/id")
"$LG" audit show --sandbox "$id" >"$TMP/o"
events=$(awk '{print $3}' "$TMP/o" | tr '\n' ' ')
if [ $rc -eq 7 ] && [ "$events" = "sandbox.start exec.start exec.end sandbox.destroy " ] &&
        grep -q 'exit_code=7' "$TMP/o" && grep -q 'argv=\["sh","-c","cat /run/sandbox-id; exit 7"\]' "$TMP/o"
then t_pass; else t_fail "rc=$rc id=$id events=[$events] $(cat "$TMP/o")"; fi

t_begin "environment values are never recorded, only their names"
"$LG" run --env LG_TEST_SECRET=hunter2-$$ -- true >/dev/null 2>&1 </dev/null
! grep -q "hunter2-$$" "$AUDIT/audit.log" && grep -q '"LG_TEST_SECRET"' "$AUDIT/audit.log" && t_pass ||
        t_fail "the value reached the log, or the name did not"

t_begin "egress decisions are recorded with the destination"
if [ "$(id -u)" != 0 ]; then t_skip "not root: the process backend runs only jailed"
else
        "$LG" run --backend process --net allow=127.0.0.1:9 -- sh -c \
                "printf 'CONNECT 127.0.0.2:9 HTTP/1.1\r\n\r\n' | nc 127.0.0.1 3128" >/dev/null 2>&1 </dev/null
        "$LG" audit show --event egress.deny | tail -1 >"$TMP/o"
        grep -q '127.0.0.2:9 is not in the allow-list' "$TMP/o" && t_pass || t_fail "$(cat "$TMP/o")"
fi

t_begin "two runs at once: the chain stays whole"
"$LG" run -- true >/dev/null 2>&1 </dev/null & a=$!
"$LG" run -- true >/dev/null 2>&1 </dev/null & b=$!
wait $a; wait $b
"$LG" audit verify >"$TMP/o"; rc=$?
[ $rc -eq 0 ] && grep -q "intact" "$TMP/o" && t_pass || t_fail "rc=$rc $(cat "$TMP/o")"

t_begin "no audit log, no command: run fails closed (125) and the command never runs"
mv "$AUDIT" "$AUDIT.saved" && : >"$AUDIT"
"$LG" run -- sh -c 'echo ran' >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
rm -f "$AUDIT" && mv "$AUDIT.saved" "$AUDIT"
[ $rc -eq 125 ] && ! grep -q ran "$TMP/o" && grep -q "audit" "$TMP/e" && leftovers >/dev/null && t_pass ||
        t_fail "rc=$rc out=[$(cat "$TMP/o")] $(cat "$TMP/e")"

t_begin "audit verify names an edited record"
cp "$AUDIT/audit.log" "$TMP/saved.log"
sed -i '2s/"exec\.start"/"exec.START"/; 2s/"sandbox\.start"/"sandbox.START"/' "$AUDIT/audit.log"
"$LG" audit verify >"$TMP/o"; rc=$?
cp "$TMP/saved.log" "$AUDIT/audit.log"
"$LG" audit verify >/dev/null; rc2=$?
[ $rc -eq 1 ] && grep -q "line 3 (seq 3)" "$TMP/o" && grep -q "NOT INTACT" "$TMP/o" && [ $rc2 -eq 0 ] && t_pass ||
        t_fail "rc=$rc rc2=$rc2 $(cat "$TMP/o")"

t_begin "audit usage errors (120)"
"$LG" audit bogus >/dev/null 2>&1; r1=$?
"$LG" audit tail -n 0 >/dev/null 2>&1; r2=$?
[ $r1 -eq 120 ] && [ $r2 -eq 120 ] && t_pass || t_fail "bogus=$r1 tail0=$r2"

t_summary
