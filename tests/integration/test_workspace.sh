#!/usr/bin/env bash
# `run --workspace DIR`: DIR goes into the sandbox, the command changes it,
# and the change set reaches DIR only when a human approves its Diff Card —
# at a real terminal (tmux), never through stdin. Denied, timed-out and
# conflicting change sets leave DIR as it was and are kept for later.
# Usage: LG_BACKEND=vm|process tests/integration/test_workspace.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

it_setup "${1:-build}"
BACKEND=${LG_BACKEND:-vm}
if ! command -v tmux >/dev/null; then
        echo "  SKIP  all: tmux is not installed (apt-get install tmux); approvals need a terminal"
        exit 1 # a setup failure: scripts/deps.sh installs it
fi
trap 'tm_kill_all; rm -rf "$TMP"' EXIT
RUN=("$LG" run --backend "$BACKEND")
"${RUN[@]}" -- true >/dev/null 2>&1 </dev/null # image and template

# A fresh workspace: $TMP/NAME with a few files; its tree listing in $TMP/NAME.before.
mkws() {
        local d=$TMP/$1
        rm -rf "$d" && mkdir -p "$d/src" "$d/docs"
        printf 'line one\nline two\n' >"$d/README"
        printf 'int main(void) { return 0; }\n' >"$d/src/main.c"
        printf 'old notes\n' >"$d/docs/notes"
        chmod 644 "$d/README"
        snap "$d" >"$d.before"
}
# Paths, types, modes and content hashes of a tree.
snap() { (cd "$1" && find . -printf '%p %y %m\n' | sort && find . -type f -exec sha256sum {} + | sort); }
EDIT='printf "line one\nline 2\nline three\n" > README && echo new > added && rm docs/notes && chmod 600 src/main.c && mkdir -p lib && echo code > lib/x.c'
changed_ok() {
        local d=$1
        [ "$(cat "$d/README")" = "$(printf 'line one\nline 2\nline three')" ] && [ "$(cat "$d/added")" = new ] &&
                [ ! -e "$d/docs/notes" ] && [ "$(stat -c %a "$d/src/main.c")" = 600 ] && [ "$(cat "$d/lib/x.c")" = code ]
}
unchanged() { [ "$(snap "$1")" = "$(cat "$1.before")" ]; }
store_of() { sed -n 's/.*the change set is kept at \([^ ]*\).*/\1/p' "$1" | head -1; }

t_begin "[$BACKEND] the workspace is in the sandbox as /workspace, the command's cwd"
mkws w0
"${RUN[@]}" --approve deny --workspace "$TMP/w0" -- sh -c 'pwd; cat README; ls src' >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
[ $rc -eq 0 ] && [ "$(cat "$TMP/o")" = "$(printf '/workspace\nline one\nline two\nmain.c')" ] && unchanged "$TMP/w0" &&
        ! ls "$LUMINAGUARD_HOME/changes" 2>/dev/null | grep -q . && t_pass ||
        t_fail "rc=$rc out=[$(cat "$TMP/o")] $(cat "$TMP/e")"

t_begin "[$BACKEND] no approver: denied, DIR untouched, exit 119, the change set kept and listed"
mkws w1
"${RUN[@]}" --approve deny --workspace "$TMP/w1" -- sh -c "$EDIT" >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
store=$(store_of "$TMP/e"); id=${store##*/}
if [ $rc -eq 119 ] && unchanged "$TMP/w1" && [ -f "$store/changes.json" ] && grep -q "luminaguard changes apply $id" "$TMP/e" &&
        "$LG" changes list | grep -q "^$id .*3 added .*1 modified .*1 deleted .*1 chmod"; then t_pass
else t_fail "rc=$rc store=$store $(cat "$TMP/e")"; fi

t_begin "[$BACKEND] the request and the decision are in the audit log (who, outcome)"
"$LG" audit show --sandbox "$id" >"$TMP/a"
events=$(awk '{print $3}' "$TMP/a" | tr '\n' ' ')
case "$events" in
*"workspace.copy_in"*"exec.end workspace.copy_out"*"approval.request approval.decision "*)
        grep -q 'outcome="no-approver" who="nobody"' "$TMP/a" && grep -q 'action="workspace.apply"' "$TMP/a" &&
                grep -q 'cwd="/workspace"' "$TMP/a" && t_pass ||
                t_fail "$(cat "$TMP/a")" ;;
*) t_fail "events: $events" ;;
esac

t_begin "[$BACKEND] stdin is no approver: 'y' piped in does not approve"
mkws w2
yes y | setsid -w "${RUN[@]}" --approve prompt --workspace "$TMP/w2" -- sh -c "$EDIT" >"$TMP/o" 2>"$TMP/e"; rc=$?
# No controlling terminal (setsid): nobody can be asked, whatever stdin says.
[ $rc -eq 119 ] && unchanged "$TMP/w2" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "[$BACKEND] line prompt in a terminal: the card shows the diff; 'y' applies it"
mkws w3
tm_start p3 "${RUN[*]} --approve prompt --workspace $TMP/w3 -- sh -c '$EDIT' </dev/null"
if tm_wait p3 "approve?" 120; then
        tm_screen p3 >"$TMP/s"
        tm_keys p3 y Enter
        tm_done p3 60
        st=$(tm_status p3)
        if [ "$st" = 0 ] && changed_ok "$TMP/w3" && grep -q -- '-line two' "$TMP/s" && grep -q -- '+line 2' "$TMP/s" &&
                grep -q 'workspace.apply' "$TMP/s" && tm_screen p3 | grep -q "applied 6 changes"; then t_pass
        else t_fail "status=$st $(tm_screen p3 | tail -5)"; fi
else t_fail "no prompt: $(tm_screen p3 | tail -5)"; fi
tm_kill p3
"$LG" audit show --event approval.decision | tail -1 | grep -q 'outcome="approved" who=".* (prompt)"' &&
        "$LG" audit show --event workspace.apply | tail -1 | grep -q 'outcome="applied"' ||
        t_fail "the approval and the apply are not both in the log"

t_begin "[$BACKEND] line prompt: a reason denies, and is recorded"
mkws w4
tm_start p4 "${RUN[*]} --approve prompt --workspace $TMP/w4 -- sh -c '$EDIT' </dev/null"
if tm_wait p4 "approve?" 120; then
        tm_keys p4 r Enter; tm_wait p4 "reason" 10; tm_keys p4 "not today" Enter
        tm_done p4 60
        st=$(tm_status p4)
        [ "$st" = 119 ] && unchanged "$TMP/w4" &&
                "$LG" audit show --event approval.decision | tail -1 | grep -q "not today" && t_pass ||
                t_fail "status=$st $(tm_screen p4 | tail -5)"
else t_fail "no prompt: $(tm_screen p4 | tail -5)"; fi
tm_kill p4

t_begin "[$BACKEND] nobody answers: denied at --approve-timeout"
mkws w5
tm_start p5 "${RUN[*]} --approve prompt --approve-timeout 2s --workspace $TMP/w5 -- sh -c '$EDIT' </dev/null"
tm_done p5 120
st=$(tm_status p5)
[ "$st" = 119 ] && unchanged "$TMP/w5" && tm_screen p5 | grep -q "timeout" && t_pass ||
        t_fail "status=$st $(tm_screen p5 | tail -5)"
tm_kill p5

t_begin "[$BACKEND] DIR changed while the card was up: conflict, nothing applied, kept"
mkws w6
tm_start p6 "${RUN[*]} --approve prompt --workspace $TMP/w6 -- sh -c '$EDIT' </dev/null"
if tm_wait p6 "approve?" 120; then
        echo "the user's own edit" >"$TMP/w6/README"
        tm_keys p6 y Enter
        tm_done p6 60
        st=$(tm_status p6)
        tm_screen p6 >"$TMP/s"
        [ "$st" = 119 ] && [ "$(cat "$TMP/w6/README")" = "the user's own edit" ] && [ ! -e "$TMP/w6/added" ] &&
                [ -e "$TMP/w6/docs/notes" ] && grep -q "conflict: .*README" "$TMP/s" && grep -q "kept at" "$TMP/s" && t_pass ||
                t_fail "status=$st $(tail -5 "$TMP/s")"
else t_fail "no prompt: $(tm_screen p6 | tail -5)"; fi
tm_kill p6

t_begin "[$BACKEND] the TUI: the card on screen, 'a' applies"
mkws w7
tm_start t7 "${RUN[*]} --approve tui --workspace $TMP/w7 -- sh -c '$EDIT' </dev/null"
if tm_wait t7 "approve" 120 && tm_wait t7 "+line 2" 10; then
        tm_keys t7 a
        tm_done t7 60
        st=$(tm_status t7)
        [ "$st" = 0 ] && changed_ok "$TMP/w7" && t_pass || t_fail "status=$st $(tm_screen t7 | tail -5)"
else t_fail "no card: $(tm_screen t7 | tail -8)"; fi
tm_kill t7

t_begin "[$BACKEND] a kept change set applies later with 'luminaguard changes apply'"
tm_start c1 "$LG changes apply $id"
if tm_wait c1 "approve?" 30; then
        tm_keys c1 y Enter
        tm_done c1 30
        st=$(tm_status c1)
        [ "$st" = 0 ] && changed_ok "$TMP/w1" && [ ! -e "$store" ] && t_pass || t_fail "status=$st $(tm_screen c1 | tail -5)"
else t_fail "no prompt: $(tm_screen c1 | tail -5)"; fi
tm_kill c1

t_begin "[$BACKEND] what may not come back does not: links out, FIFOs, setuid bits"
mkws w8
tm_start p8 "${RUN[*]} --approve prompt --workspace $TMP/w8 -- sh -c 'ln -s /etc/shadow evil; mkfifo fifo; echo s > suid; chmod 4755 suid' </dev/null"
if tm_wait p8 "approve?" 120; then
        tm_keys p8 y Enter
        tm_done p8 60
        st=$(tm_status p8)
        [ "$st" = 0 ] && [ ! -e "$TMP/w8/evil" ] && [ ! -L "$TMP/w8/evil" ] && [ ! -e "$TMP/w8/fifo" ] &&
                [ "$(stat -c %a "$TMP/w8/suid")" = 755 ] && tm_screen p8 | grep -q "points outside the workspace" && t_pass ||
                t_fail "status=$st $(tm_screen p8 | tail -8)"
else t_fail "no prompt: $(tm_screen p8 | tail -5)"; fi
tm_kill p8

t_begin "[$BACKEND] a workspace that outgrows --workspace-max is refused, DIR untouched, nothing kept"
mkws w9
"${RUN[@]}" --approve deny --workspace-max 1M --workspace "$TMP/w9" -- sh -c 'dd if=/dev/zero of=big bs=1k count=1500 2>/dev/null' \
        >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
[ $rc -eq 120 ] && unchanged "$TMP/w9" && grep -q "workspace-max" "$TMP/e" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "[$BACKEND] a workspace with a link out of it is refused before a sandbox starts"
mkws w10
ln -s /etc/passwd "$TMP/w10/pw"
"${RUN[@]}" --workspace "$TMP/w10" -- true >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
[ $rc -eq 120 ] && grep -q "outside the workspace" "$TMP/e" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "[$BACKEND] a DIR that holds \$LUMINAGUARD_HOME, or lies inside it, is refused before a sandbox starts"
mkdir -p "$TMP/wh/state" "$LUMINAGUARD_HOME/inside"
ln -sfn "$TMP/wh" "$TMP/whlink"
LUMINAGUARD_HOME=$TMP/wh/state "$LG" run --backend "$BACKEND" --workspace "$TMP/whlink" -- true >"$TMP/o" 2>"$TMP/e1" </dev/null; rc1=$?
"${RUN[@]}" --workspace "$LUMINAGUARD_HOME/inside" -- true >"$TMP/o" 2>"$TMP/e2" </dev/null; rc2=$?
"${RUN[@]}" --workspace "$LUMINAGUARD_HOME" -- true >"$TMP/o" 2>"$TMP/e3" </dev/null; rc3=$?
rmdir "$LUMINAGUARD_HOME/inside"
[ $rc1 -eq 120 ] && grep -q "holds \$LUMINAGUARD_HOME" "$TMP/e1" && [ $rc2 -eq 120 ] && grep -q "is inside \$LUMINAGUARD_HOME" "$TMP/e2" &&
        [ $rc3 -eq 120 ] && grep -q "is inside \$LUMINAGUARD_HOME" "$TMP/e3" && [ ! -e "$TMP/wh/state/changes" ] && t_pass ||
        t_fail "rc=$rc1/$rc2/$rc3 $(cat "$TMP/e1" "$TMP/e2" "$TMP/e3")"

t_begin "[$BACKEND] a change set being decided is locked: 'changes apply|drop' refuse it until the run is done"
mkws w11
tm_start p11 "${RUN[*]} --approve prompt --workspace $TMP/w11 -- sh -c '$EDIT' </dev/null"
if tm_wait p11 "approve?" 120; then
        f=$(grep -l "\"$TMP/w11\"" "$LUMINAGUARD_HOME"/changes/*/changes.json | head -1)
        id11=$(basename "$(dirname "$f")")
        "$LG" changes apply "$id11" >"$TMP/o" 2>"$TMP/e1"; rc1=$?
        "$LG" changes drop "$id11" >"$TMP/o" 2>"$TMP/e2"; rc2=$?
        tm_keys p11 n Enter
        tm_done p11 60
        st=$(tm_status p11)
        "$LG" changes drop "$id11" >"$TMP/o" 2>&1; rc3=$?
        [ -n "$id11" ] && [ $rc1 -eq 120 ] && [ $rc2 -eq 120 ] && [ "$st" = 119 ] && [ $rc3 -eq 0 ] && unchanged "$TMP/w11" &&
                grep -q "change set $id11 is being decided by another luminaguard (pid [0-9][0-9]*)" "$TMP/e1" &&
                grep -q "being decided by another luminaguard" "$TMP/e2" && t_pass ||
                t_fail "id=$id11 rc=$rc1/$rc2/$rc3 status=$st $(cat "$TMP/e1" "$TMP/e2") $(tm_screen p11 | tail -5)"
else t_fail "no prompt: $(tm_screen p11 | tail -5)"; fi
tm_kill p11

t_begin "[$BACKEND] a name that is not UTF-8 is kept byte-exact: saved, listed, shown escaped, applied"
mkws w12
"${RUN[@]}" --approve deny --workspace "$TMP/w12" -- sh -c 'echo x > "$(printf "caf\\351.txt")"' >"$TMP/o" 2>"$TMP/e" </dev/null; rc=$?
store=$(store_of "$TMP/e"); id12=${store##*/}
if [ $rc -eq 119 ] && [ -f "$store/changes.json" ] && "$LG" changes list | grep -q "^$id12 .*1 added"; then
        tm_start c12 "$LG changes apply $id12"
        if tm_wait c12 "approve?" 30; then
                tm_screen c12 >"$TMP/s"
                tm_keys c12 y Enter
                tm_done c12 30
                st=$(tm_status c12)
                [ "$st" = 0 ] && grep -qF 'caf\xe9.txt' "$TMP/s" && [ "$(cat "$TMP/w12/$(printf 'caf\351.txt')")" = x ] && t_pass ||
                        t_fail "status=$st $(tail -8 "$TMP/s")"
        else t_fail "no prompt: $(tm_screen c12 | tail -5)"; fi
        tm_kill c12
else t_fail "rc=$rc store=$store $(cat "$TMP/e")"; fi

t_begin "[$BACKEND] nothing is left behind"
for s in $("$LG" changes list | awk '/added/ {print $1}'); do "$LG" changes drop "$s" >/dev/null; done
out=$(leftovers) && [ -z "$(ls -A "$LUMINAGUARD_HOME/changes" 2>/dev/null)" ] && t_pass ||
        t_fail "$out changes: $(ls -A "$LUMINAGUARD_HOME/changes")"

t_summary
