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

t_summary() {
        printf '%s: %d passed, %d failed, %d skipped\n' "$T_SUITE" "$T_PASS" "$T_FAIL" "$T_SKIP"
        [ "$T_FAIL" -eq 0 ]
}
