#!/usr/bin/env bash
# `luminaguard mcp`: the MCP server on stdio, driven by a real MCP client
# (@modelcontextprotocol/inspector-cli from npm, pinned) and by a raw client
# that also sends what no well-behaved client would (mcp_client.py).
# Usage: tests/integration/test_mcp.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
T_SUITE=test_mcp
. tests/lib.sh

it_setup "${1:-build}"
"$LG" run -- true >/dev/null 2>&1 </dev/null # image and template
PY=tests/integration/mcp_client.py
export LG_WS_ROOT=$TMP/wsroot
mkdir -p "$LG_WS_ROOT/proj" && echo hello >"$LG_WS_ROOT/proj/README"

for c in versions malformed list run concurrent eof sessions ttl signal workspace; do
        t_begin "raw stdio: $c"
        out=$(timeout 300 python3 "$PY" "$LG" "$c" 2>&1); rc=$?
        if [ $rc -eq 0 ]; then T_NAME="$T_NAME — ${out#ok: }"; t_pass; else t_fail "$out"; fi
done

t_begin "workspace_apply approved at the server's own terminal (tmux)"
if command -v tmux >/dev/null; then
        trap 'tm_kill_all; rm -rf "$TMP"' EXIT
        mkdir -p "$LG_WS_ROOT/tty" && echo before >"$LG_WS_ROOT/tty/README" && echo x >"$LG_WS_ROOT/tty/gone"
        tm_start w "LG_WS_ROOT=$LG_WS_ROOT python3 $PY $LG workspace_tty >$TMP/wtty 2>&1"
        if tm_wait w "approve?" 120; then
                tm_screen w >"$TMP/wscreen"
                tm_keys w y Enter
                tm_done w 120
                if grep -q "^ok:" "$TMP/wtty" && grep -q "workspace.apply" "$TMP/wscreen" &&
                        grep -q -- "+approved" "$TMP/wscreen"; then T_NAME="$T_NAME — $(sed 's/^ok: //' "$TMP/wtty")"; t_pass
                else t_fail "$(cat "$TMP/wtty") $(tail -5 "$TMP/wscreen")"; fi
        else t_fail "no prompt: $(tm_screen w | tail -5) $(cat "$TMP/wtty")"; fi
        tm_kill w
else
        t_fail "tmux is not installed (scripts/deps.sh installs it)"
fi

INSPECTOR_VERSION=1.0.3
NPM_DIR=$LUMINAGUARD_HOME/npm/inspector-cli-$INSPECTOR_VERSION
t_begin "a real client: @modelcontextprotocol/inspector-cli $INSPECTOR_VERSION lists and calls"
if ! command -v npm >/dev/null; then
        t_fail "npm is not installed (scripts/deps.sh installs nodejs and npm)"
elif ! [ -d "$NPM_DIR/node_modules/@modelcontextprotocol/inspector-cli" ] &&
        ! timeout 300 npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" \
                "@modelcontextprotocol/inspector-cli@$INSPECTOR_VERSION" >"$TMP/npm.log" 2>&1; then
        if grep -qiE "ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED" "$TMP/npm.log"; then
                t_skip "the npm registry is not reachable: $(tail -1 "$TMP/npm.log")"
        else
                t_fail "npm install failed: $(tail -3 "$TMP/npm.log")"
        fi
else
        # inspector-cli finds its own package.json relative to the working directory.
        cd "$NPM_DIR/node_modules/@modelcontextprotocol/inspector-cli/build"
        node index.js "$LG" mcp --method tools/list >"$TMP/list" 2>"$TMP/e1"; rc1=$?
        node index.js "$LG" mcp --method tools/call --tool-name run \
                --tool-arg 'command=echo hello from a micro-VM; uname -s; exit 4' >"$TMP/call" 2>"$TMP/e2"; rc2=$?
        cd - >/dev/null
        if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] &&
                python3 -c '
import json, sys
tools = json.load(open(sys.argv[1]))["tools"]
assert [t["name"] for t in tools][0] == "run" and len(tools) == 8, tools
assert tools[0]["annotations"]["readOnlyHint"] is True
r = json.load(open(sys.argv[2]))
sc = r["structuredContent"]
assert sc["exit_code"] == 4 and sc["stdout"] == "hello from a micro-VM\nLinux\n", sc
assert r["isError"] is False
' "$TMP/list" "$TMP/call"; then t_pass
        else t_fail "rc=$rc1/$rc2 $(cat "$TMP/e1" "$TMP/e2" | tail -5) $(head -c 600 "$TMP/call")"; fi
fi

t_begin "nothing left behind (the cancelled call's sandbox included)"
sleep 1
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_summary
