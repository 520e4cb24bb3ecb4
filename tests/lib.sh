# Shared helpers for the shell-driven test tiers. Source it; then call
# t_begin NAME / t_pass / t_fail MSG / t_skip WHY, and t_summary at the end.
# Every skip says why; t_summary prints one line and returns non-zero on failure.

T_PASS=0 T_FAIL=0 T_SKIP=0 T_NAME=""
T_SUITE=${T_SUITE:-$(basename "$0" .sh)}

t_begin() { T_NAME=$1; }
t_pass() { T_PASS=$((T_PASS + 1)); printf '  ok    %s\n' "$T_NAME"; }
t_fail() { T_FAIL=$((T_FAIL + 1)); printf '  FAIL  %s: %s\n' "$T_NAME" "$*"; }
t_skip() { T_SKIP=$((T_SKIP + 1)); printf '  SKIP  %s: %s\n' "$T_NAME" "$*"; }

# t_check DESC CMD...: pass if CMD succeeds, else fail with DESC.
t_expect() {
        local desc=$1; shift
        if "$@"; then return 0; fi
        t_fail "$desc"
        return 1
}

# Rows of an attack table (tests/security): a_begin ATTACK EXPECTED, then
# a_pass OBSERVED or a_fail OBSERVED. a_header prints the column titles.
a_header() { printf '  %-4s  %-46s  %-30s  %s\n' "" attack expected observed; }
a_begin() { T_NAME=$1; A_EXPECT=$2; }
a_row() { printf '  %-4s  %-46s  %-30s  %s\n' "$1" "$T_NAME" "$A_EXPECT" "$2"; }
a_pass() { T_PASS=$((T_PASS + 1)); a_row ok "$1"; }
a_fail() { T_FAIL=$((T_FAIL + 1)); a_row FAIL "$1"; }

t_summary() {
        printf '%s: %d passed, %d failed, %d skipped\n' "$T_SUITE" "$T_PASS" "$T_FAIL" "$T_SKIP"
        [ "$T_FAIL" -eq 0 ]
}

# it_setup [BUILD_DIR]: the integration tests' common ground. Sets B, LG (the
# binary under test), LUMINAGUARD_HOME (shared by all VM tests, so the image
# and templates are built once) and TMP (removed on exit unless the test
# replaces the EXIT trap and removes it itself).
it_setup() {
        B=${1:-build}
        LG=${LG_BIN:-$PWD/$B/bin/luminaguard} # LG_BIN: `luminaguard validate` runs itself
        export LUMINAGUARD_HOME=${LG_TEST_HOME:-/tmp/lg-test-home}
        # Sandbox cgroups of the tests go in a group of their own (cg_parents).
        export LUMINAGUARD_CGROUP=lg-test
        TMP=$(mktemp -d /tmp/lg-test.XXXXXX)
        trap 'rm -rf "$TMP"' EXIT
}

# The cgroup directories jailed VMMs of the tests get created in (cgroup.h):
# one per v1 controller, or the v2 one, below the cgroup the tests run in.
cg_parents() {
        local c own
        if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
                own=$(sed -n 's/^0:://p' /proc/self/cgroup)
                echo "/sys/fs/cgroup${own%/}/$LUMINAGUARD_CGROUP"
                return
        fi
        for c in memory cpu pids; do
                own=$(awk -F: -v c="$c" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
                echo "/sys/fs/cgroup/$c${own%/}/$LUMINAGUARD_CGROUP"
        done
}

# Process ids of every VMM of the tests: a jailed VMM cannot leave its cgroup.
vmm_pids() {
        local d
        for d in $(cg_parents); do cat "$d"/sb-*/cgroup.procs 2>/dev/null; done | sort -u
}

# Nothing of any sandbox may remain: no run directory, no VMM process, no cgroup.
leftovers() {
        local dirs procs cgs d
        dirs=$(ls -A "$LUMINAGUARD_HOME/run" 2>/dev/null)
        procs=$(vmm_pids | tr '\n' ' ')
        cgs=$(for d in $(cg_parents); do ls -d "$d"/sb-* 2>/dev/null; done | tr '\n' ' ')
        [ -z "$dirs$procs$cgs" ] && return 0
        echo "run dirs: [$dirs] VMM pids: [$procs] cgroups: [$cgs]"
        return 1
}

# tmux, for what must face a terminal (approvers). tm_start NAME CMD runs CMD
# in a detached 120x40 session whose pane stays after CMD ends; tm_wait NAME
# TEXT [SECONDS] waits until TEXT is on the screen; tm_screen NAME prints it;
# tm_keys NAME KEYS... types; tm_done NAME [SECONDS] waits for CMD to end;
# tm_kill NAME ends the session. Sessions are named lgt-$$-NAME.
tm_start() {
        local name=lgt-$$-$1; shift
        tmux new-session -d -x 120 -y 40 -s "$name" "$*; echo TM-EXIT=\$?; sleep 600"
}
tm_screen() { tmux capture-pane -p -J -t "lgt-$$-$1" -S -200 2>/dev/null; }
tm_wait() {
        local i
        for i in $(seq 1 $((${3:-60} * 10))); do
                tm_screen "$1" | grep -qF -- "$2" && return 0
                sleep 0.1
        done
        return 1
}
tm_keys() { local name=lgt-$$-$1; shift; tmux send-keys -t "$name" "$@"; }
tm_done() { tm_wait "$1" "TM-EXIT=" "${2:-120}"; }
tm_status() { tm_screen "$1" | sed -n 's/^TM-EXIT=\([0-9]*\).*/\1/p' | tail -1; }
tm_kill() { tmux kill-session -t "lgt-$$-$1" 2>/dev/null; }
tm_kill_all() {
        local s
        for s in $(tmux list-sessions -F '#S' 2>/dev/null | grep "^lgt-$$-"); do
                tmux kill-session -t "$s"
        done
}

# npm_pkgs DIR MARKER SPEC...: the pinned npm packages SPEC installed under
# DIR (once: MARKER is a path under DIR that shows they are). 0 = there;
# 2 = the registry is unreachable; 1 = the install failed. Why in NPM_MSG.
npm_pkgs() {
        local dir=$1 marker=$2; shift 2
        NPM_MSG=
        [ -e "$dir/$marker" ] && return 0
        if ! command -v npm >/dev/null; then
                NPM_MSG="npm is not installed (scripts/deps.sh installs nodejs and npm)"; return 1
        fi
        timeout 300 npm install --silent --no-audit --no-fund --prefix "$dir" "$@" >"$TMP/npm.log" 2>&1 && return 0
        if grep -qiE "ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED" "$TMP/npm.log"; then
                NPM_MSG="the npm registry is not reachable: $(tail -1 "$TMP/npm.log")"; return 2
        fi
        NPM_MSG="npm install failed: $(tail -3 "$TMP/npm.log")"; return 1
}
