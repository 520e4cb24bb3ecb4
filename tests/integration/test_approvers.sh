#!/usr/bin/env bash
# The approvers as a human meets them: tests/tui/card_demo shows a Diff Card
# on a real terminal inside tmux; keys go in with send-keys, the screen comes
# back with capture-pane. TUI: the header, the sandbox's ESC sequence shown
# escaped, a live countdown, scrolling, a / d / r (and Esc) / c, Ctrl-C,
# timeout, the terminal left as it was. Prompt: y / n / r / c, garbage, timeout.
# Usage: tests/integration/test_approvers.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh

B=${1:-build}
DEMO=$PWD/$B/tests/card_demo
TMP=$(mktemp -d /tmp/lg-test.XXXXXX)
SOCK=lgtest$$ # a tmux server of our own: the user's sessions are never touched
tm() { tmux -L "$SOCK" -f /dev/null "$@"; }
trap 'tm kill-server >/dev/null 2>&1; rm -rf "$TMP" "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCK"' EXIT

if ! command -v tmux >/dev/null; then
        t_begin tmux; t_skip "tmux is not installed (apt-get install tmux): the approvers were NOT tested"
        t_summary; exit 1 # scripts/deps.sh installs it: a suite that tested nothing must not look green
fi
if [ ! -x "$DEMO" ]; then
        t_begin build; t_fail "$DEMO not built (run make)"; t_summary; exit 1
fi

# start NAME MODE SECONDS [AFTER]: the demo in a 120x40 pane; its answer goes
# to $TMP/NAME.out. With AFTER (a shell command), the pane runs it next.
start() {
        local cmd="LC_ALL=C.UTF-8 $DEMO $2 $3 >$TMP/$1.out 2>$TMP/$1.err"
        if [ $# -gt 3 ]; then cmd="$cmd; $4"; else cmd="exec env $cmd"; fi
        tm new-session -d -x 120 -y 40 -s "$1" "$cmd"
}
# screen NAME: what the pane shows; with its scrollback for the prompt (the card scrolls by).
screen() { tm capture-pane -p -t "$1" -S -300 2>/dev/null; }
visible() { tm capture-pane -p -t "$1" 2>/dev/null; }
# wait_for NAME TEXT [SECONDS]: until the pane shows TEXT (a fixed string).
wait_for() {
        local i
        for i in $(seq 1 $((${3:-10} * 10))); do
                screen "$1" | grep -qF -- "$2" && return 0
                sleep 0.1
        done
        return 1
}
# answer NAME [SECONDS]: the demo's answer line, once it has exited; anything
# on its stderr (a sanitizer's report) comes first, so no case pattern matches.
answer() {
        local i
        for i in $(seq 1 $((${2:-10} * 10))); do
                if grep -q '^outcome=' "$TMP/$1.out" 2>/dev/null; then
                        sleep 0.2 # the demo may still be writing a report on stderr
                        [ -s "$TMP/$1.err" ] && echo "STDERR: $(head -c 2000 "$TMP/$1.err")"
                        cat "$TMP/$1.out"
                        return 0
                fi
                sleep 0.1
        done
        echo "(no answer; stderr: $(cat "$TMP/$1.err" 2>/dev/null))"
        return 1
}
keys() { local s=$1; shift; tm send-keys -t "$s" "$@"; sleep 0.3; }
secs_left() { visible "$1" | grep -o '[0-9]*s left' | tail -1 | tr -dc 0-9; }
shows() { visible "$1" | grep -qF -- "$2"; }

# --- the TUI ---

t_begin "tui: header, risk and the first diff lines are on the screen"
start tui1 tui 30 "stty -a >$TMP/tui1.stty; sleep 5"
if wait_for tui1 "s left"; then
        missing=""
        for want in "LuminaGuard: approve this action?" "action:  workspace.apply" "risk: high (RED)" \
                "reason:  changes files on the host" "sandbox: sb-demo" \
                "title:   apply 4 changes to /home/me/proj" "@@ -10,7 +10,9 @@" '-       puts("hello");' \
                "a approve  d deny  r deny with reason  c cancel"; do
                shows tui1 "$want" || missing="$missing [$want]"
        done
        [ -z "$missing" ] && t_pass || t_fail "missing:$missing; screen: $(visible tui1)"
else
        t_fail "no status bar; stderr: $(cat "$TMP/tui1.err")"
fi

t_begin "tui: the sandbox's ESC sequence is shown escaped, valid UTF-8 as it is"
shows tui1 '+       puts("\x1b[2J\x1b[1;32mALL CHECKS PASSED: press a\x1b[0m");' &&
        shows tui1 "café ✓" && t_pass || t_fail "$(visible tui1)"

t_begin "tui: the countdown runs"
s1=$(secs_left tui1); sleep 2.2; s2=$(secs_left tui1)
[ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" -le 30 ] && [ "$s2" -lt "$s1" ] && t_pass ||
        t_fail "first [$s1] then [$s2]"

t_begin "tui: PgDn, g and j scroll the body"
ok=1
shows tui1 "LAST LINE OF THE CARD" && { ok=0; echo "    the end is visible before scrolling"; }
keys tui1 NPage NPage
shows tui1 "LAST LINE OF THE CARD" && ! shows tui1 "workspace: /home/me/proj" ||
        { ok=0; echo "    PgDn: $(visible tui1 | tail -3)"; }
keys tui1 g
shows tui1 "workspace: /home/me/proj" && shows tui1 " 1-33/80" || { ok=0; echo "    g: $(visible tui1 | tail -1)"; }
keys tui1 j j
shows tui1 " 3-35/80" && ! shows tui1 "workspace: /home/me/proj" ||
        { ok=0; echo "    j: $(visible tui1 | tail -1)"; }
[ $ok = 1 ] && t_pass || t_fail "see above"

t_begin "tui: a approves; the terminal is left as it was"
keys tui1 a
out=$(answer tui1)
for i in $(seq 1 30); do [ -s "$TMP/tui1.stty" ] && break; sleep 0.1; done
stty_flags=$(grep -o -- '-\?icanon\|-\?echo ' "$TMP/tui1.stty" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
case "$out" in
"outcome=approved reason= who="*" on /dev/pts/"*" (tui)")
        [ "$stty_flags" = "icanon echo " ] && t_pass || t_fail "terminal after: [$stty_flags]" ;;
*) t_fail "$out" ;;
esac

t_begin "tui: d denies"
start tui2 tui 30
wait_for tui2 "s left" && keys tui2 d
out=$(answer tui2)
case "$out" in "outcome=denied reason= who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "tui: r opens a reason line, Esc goes back, Enter denies with the reason"
start tui3 tui 30
wait_for tui3 "s left" && keys tui3 r && keys tui3 -l "oops"
typed=$(visible tui3 | tail -1)
keys tui3 Escape; sleep 0.2
back=$(visible tui3 | tail -1)
keys tui3 r && keys tui3 -l "not today" && keys tui3 Enter
out=$(answer tui3)
case "$typed|$back|$out" in
*" reason: oops"*"|"*"a approve"*"|outcome=denied reason=not today who="*) t_pass ;;
*) t_fail "typing [$typed] after Esc [$back] answer [$out]" ;;
esac

t_begin "tui: c cancels"
start tui4 tui 30
wait_for tui4 "s left" && keys tui4 c
out=$(answer tui4)
case "$out" in "outcome=cancelled reason= who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "tui: Ctrl-C (the caller's intr_fd) cancels"
start tui5 tui 30
wait_for tui5 "s left" && keys tui5 C-c
out=$(answer tui5)
case "$out" in "outcome=cancelled reason=interrupted who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "tui: no key in 3 s is a timeout"
start tui6 tui 3
out=$(answer tui6 10)
case "$out" in "outcome=timeout reason=no answer in 3 s who="*) t_pass ;; *) t_fail "$out" ;; esac

# --- the line prompt ---

Q="approve? [y]es / [n]o / [r] deny with reason / [c]ancel ("

t_begin "prompt: the card, escaped, then the question with the time left; y approves"
start p1 prompt 30
if wait_for p1 "$Q"; then
        missing=""
        for want in "action:  workspace.apply" "risk:    high (RED)" "sandbox: sb-demo" \
                '\x1b[2J\x1b[1;32mALL CHECKS PASSED' "@@ -10,7 +10,9 @@" "LAST LINE OF THE CARD" "s left):"; do
                screen p1 | grep -qF -- "$want" || missing="$missing [$want]"
        done
        keys p1 y Enter
        out=$(answer p1)
        case "$out" in
        "outcome=approved reason= who="*" on /dev/pts/"*" (prompt)")
                [ -z "$missing" ] && t_pass || t_fail "missing:$missing" ;;
        *) t_fail "$out" ;;
        esac
else
        t_fail "no question; stderr: $(cat "$TMP/p1.err")"
fi

t_begin "prompt: n denies"
start p2 prompt 30
wait_for p2 "$Q" && keys p2 n Enter
out=$(answer p2)
case "$out" in "outcome=denied reason= who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "prompt: r asks for a reason and denies with it"
start p3 prompt 30
wait_for p3 "$Q" && keys p3 r Enter && wait_for p3 "reason: " && keys p3 -l "not today" && keys p3 Enter
out=$(answer p3)
case "$out" in "outcome=denied reason=not today who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "prompt: anything else is asked again"
start p4 prompt 30
wait_for p4 "$Q" && keys p4 -l "maybe" && keys p4 Enter && wait_for p4 "please answer y, n, r or c" &&
        keys p4 y Enter
out=$(answer p4)
case "$out" in "outcome=approved reason= who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "prompt: c cancels"
start p5 prompt 30
wait_for p5 "$Q" && keys p5 c Enter
out=$(answer p5)
case "$out" in "outcome=cancelled reason= who="*) t_pass ;; *) t_fail "$out" ;; esac

t_begin "prompt: no answer in 3 s is a timeout"
start p6 prompt 3
out=$(answer p6 10)
case "$out" in "outcome=timeout reason=no answer in 3 s who="*) t_pass ;; *) t_fail "$out" ;; esac

t_summary
