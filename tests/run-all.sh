#!/usr/bin/env bash
# Every test tier, in order of cost; one summary line at the end; non-zero on any failure.
#   FUZZ_SECONDS=N   fuzzing time (default 30)
#   LG_SKIP_SAN=1    skip the sanitizer pass (for quick local runs only; CI runs it)
set -u
cd "$(dirname "$0")/.."
export LG_TEST_HOME=${LG_TEST_HOME:-/tmp/lg-test-home}
# The test home is kept between runs for its image and templates, but each run
# starts its own audit log: the last step verifies what this run wrote, and an
# earlier run that was killed mid-write must not fail this one.
rm -rf "$LG_TEST_HOME/audit"
results=()
failed=0
step() {
        local name=$1; shift
        echo "=== $name"
        local t0=$SECONDS
        if "$@"; then results+=("ok    $name ($((SECONDS - t0)) s)")
        else results+=("FAIL  $name ($((SECONDS - t0)) s)"); failed=$((failed + 1)); fi
}

step "format (clang-format)" make -s format-check
step "build" make -s -j2
step "unit tests" make -s unit
if [ "${LG_SKIP_SAN:-0}" = 1 ]; then
        echo "=== sanitizer pass SKIPPED: LG_SKIP_SAN=1 was set"
        results+=("SKIP  sanitizer build + suite (LG_SKIP_SAN=1)")
else
        step "build (ASan+UBSan)" make -s -j2 SAN=1
        step "unit tests (ASan+UBSan)" make -s unit SAN=1
fi
if command -v clang >/dev/null; then
        step "fuzz codec (${FUZZ_SECONDS:-30} s)" make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
else
        echo "=== fuzz SKIPPED: clang is not installed (apt-get install clang)"
        results+=("SKIP  fuzz (no clang)")
        failed=$((failed + 1))   # CI installs clang; its absence is a setup failure
fi
step "integration: run in micro-VMs" tests/integration/test_run.sh build
step "integration: doctor, image, usage" tests/integration/test_cli.sh build
step "integration: the full image (python3, node, npm, git; vm and process)" tests/integration/test_full.sh build
step "integration: templates and clones" tests/integration/test_template.sh build
step "integration: warm pool" tests/integration/test_pool.sh build
step "integration: run, process backend" env LG_BACKEND=process tests/integration/test_run.sh build
step "integration: egress allow-list proxy (vm)" env LG_BACKEND=vm tests/integration/test_net.sh build
step "integration: egress allow-list proxy (process)" env LG_BACKEND=process tests/integration/test_net.sh build
step "integration: audit log" tests/integration/test_audit.sh build
step "integration: approvers in tmux (prompt, TUI)" tests/integration/test_approvers.sh build
step "integration: workspace sync and approval (vm)" env LG_BACKEND=vm tests/integration/test_workspace.sh build
step "integration: workspace sync and approval (process)" env LG_BACKEND=process tests/integration/test_workspace.sh build
step "integration: MCP server (stdio; raw client and inspector-cli)" tests/integration/test_mcp.sh build
step "integration: MCP gateway (server-filesystem, server-everything)" tests/integration/test_gateway.sh build
# The attack suite (tests/security) as users run it: through the binary.
step "security: luminaguard validate security" build/bin/luminaguard --home "$LG_TEST_HOME" validate security
if [ "${LG_SKIP_SAN:-0}" != 1 ]; then
        step "integration under ASan+UBSan" tests/integration/test_run.sh build-san
        step "integration: doctor, image, usage (ASan+UBSan)" tests/integration/test_cli.sh build-san
        step "integration: templates and clones (ASan+UBSan)" tests/integration/test_template.sh build-san
        step "integration: warm pool (ASan+UBSan)" tests/integration/test_pool.sh build-san
        step "integration: run, process backend (ASan+UBSan)" env LG_BACKEND=process tests/integration/test_run.sh build-san
        step "integration: egress proxy, vm (ASan+UBSan)" env LG_BACKEND=vm tests/integration/test_net.sh build-san
        step "integration: egress proxy, process (ASan+UBSan)" env LG_BACKEND=process tests/integration/test_net.sh build-san
        step "security: validate security (ASan+UBSan)" build-san/bin/luminaguard --home "$LG_TEST_HOME" validate security
        step "integration: audit log (ASan+UBSan)" tests/integration/test_audit.sh build-san
        step "integration: approvers in tmux (ASan+UBSan)" tests/integration/test_approvers.sh build-san
        step "integration: workspace sync, process (ASan+UBSan)" env LG_BACKEND=process tests/integration/test_workspace.sh build-san
        step "integration: MCP server (ASan+UBSan)" tests/integration/test_mcp.sh build-san
        step "integration: MCP gateway (ASan+UBSan)" tests/integration/test_gateway.sh build-san
fi
# Every suite above appended to the test home's audit log, several at once: it must be whole.
step "the test home's audit log is intact" build/bin/luminaguard --home "$LG_TEST_HOME" audit verify

echo
echo "=== summary"
printf '  %s\n' "${results[@]}"
total=${#results[@]}
echo "suite: $((total - failed)) of $total steps passed, $failed failed"
[ "$failed" -eq 0 ]
