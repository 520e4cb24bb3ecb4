#!/usr/bin/env bash
# `luminaguard mcp --upstream`: the gateway in front of real MCP servers from
# npm (pinned): @modelcontextprotocol/server-filesystem on a scratch
# directory and @modelcontextprotocol/server-everything. Reads go through,
# writes wait for a human (tmux) or a policy rule, every call is audited, a
# crashed upstream is restarted. No VM is involved.
# Usage: tests/integration/test_gateway.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
T_SUITE=test_gateway
. tests/lib.sh

it_setup "${1:-build}"
PY=tests/integration/mcp_client.py
SERVERS_VERSION=2026.8.31
NPM_DIR=$LUMINAGUARD_HOME/npm/servers-$SERVERS_VERSION
npm_pkgs "$NPM_DIR" node_modules/.bin/mcp-server-everything \
        "@modelcontextprotocol/server-filesystem@$SERVERS_VERSION" \
        "@modelcontextprotocol/server-everything@$SERVERS_VERSION"
case $? in
0) ;;
2) t_begin gateway; t_skip "$NPM_MSG"; t_summary; exit 0 ;;
*) t_begin gateway; t_fail "$NPM_MSG"; t_summary; exit 1 ;;
esac
export FS_BIN=$NPM_DIR/node_modules/.bin/mcp-server-filesystem
export EV_BIN=$NPM_DIR/node_modules/.bin/mcp-server-everything
export FS_ROOT=$TMP/fsroot TMPDIR_T=$TMP
mkdir -p "$FS_ROOT" && echo "host file" >"$FS_ROOT/a.txt"

for c in gateway gateway_policy gateway_crash; do
        t_begin "$c"
        out=$(timeout 300 python3 "$PY" "$LG" "$c" 2>"$TMP/err"); rc=$?
        if [ $rc -eq 0 ]; then T_NAME="$T_NAME — ${out#ok: }"; t_pass; else t_fail "$out $(tail -5 "$TMP/err")"; fi
done

t_begin "a RED upstream call approved at the gateway's terminal (tmux)"
if command -v tmux >/dev/null; then
        trap 'tm_kill_all; rm -rf "$TMP"' EXIT
        tm_start g "FS_BIN=$FS_BIN EV_BIN=$EV_BIN FS_ROOT=$FS_ROOT python3 $PY $LG gateway_tty >$TMP/gtty 2>$TMP/gerr"
        if tm_wait g "approve?" 120; then
                tm_screen g >"$TMP/gscreen"
                tm_keys g y Enter
                tm_done g 120
                if grep -q "^ok:" "$TMP/gtty" && grep -q "tool.call" "$TMP/gscreen" &&
                        grep -q "written after approval" "$TMP/gscreen"; then T_NAME="$T_NAME — $(sed 's/^ok: //' "$TMP/gtty")"; t_pass
                else t_fail "$(cat "$TMP/gtty") $(tail -5 "$TMP/gscreen")"; fi
        else t_fail "no prompt: $(tm_screen g | tail -5) $(cat "$TMP/gtty" "$TMP/gerr" | tail -5)"; fi
        tm_kill g
else
        t_fail "tmux is not installed (scripts/deps.sh installs it)"
fi

t_begin "--isolate: an upstream in a micro-VM of the full image"
if "$LG" image build full >"$TMP/full.log" 2>&1; then
        # Outside $LUMINAGUARD_HOME (a workspace may not hold our state): a copy of the install.
        cp -a "$NPM_DIR" "$TMP/iso" &&
                out=$(ISO_DIR=$TMP/iso timeout 600 python3 "$PY" "$LG" gateway_isolated 2>"$TMP/err"); rc=$?
        if [ $rc -eq 0 ]; then T_NAME="$T_NAME — ${out#ok: }"; t_pass; else t_fail "$out $(tail -5 "$TMP/err")"; fi
elif grep -qiE "could not resolve|temporary failure|connection (refused|timed out)" "$TMP/full.log"; then
        t_skip "the full image needs Debian's archive, which is not reachable: $(tail -1 "$TMP/full.log")"
else
        t_fail "the full image did not build: $(tail -3 "$TMP/full.log")"
fi

t_begin "an upstream that cannot start is a clear error at start"
"$LG" mcp --upstream 'exit 3' </dev/null >"$TMP/o" 2>"$TMP/e"; rc=$?
[ $rc -ne 0 ] && grep -q "upstream" "$TMP/e" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "luminaguard bench mcp measures run over stdio and HTTP, and the gateway against its peer"
"$LG" bench mcp --runs 5 --upstream "$EV_BIN" --tool get-sum --args '{"a":1,"b":2}' >"$TMP/bench" 2>"$TMP/berr"; rc=$?
if [ $rc -eq 0 ] && grep -qE "tools/call run .*stdio +5 +[0-9.]+ " "$TMP/bench" &&
        grep -qE "Streamable HTTP \(SSE answer\) +5 +[0-9.]+ " "$TMP/bench" &&
        grep -qE "ping, Streamable HTTP .* +5 +[0-9.]+ " "$TMP/bench" &&
        grep -qE "through the gateway +5 +[0-9.]+" "$TMP/bench" && grep -q "gateway overhead, p50:" "$TMP/bench"; then
        T_NAME="$T_NAME ($(grep -h "overhead" "$TMP/bench" | sed 's/^ *//'))"; t_pass
else t_fail "rc=$rc $(cat "$TMP/bench") $(tail -5 "$TMP/berr")"; fi

t_begin "no upstream process is left behind"
sleep 0.5
if pgrep -f "$NPM_DIR" >/dev/null; then t_fail "$(pgrep -fa "$NPM_DIR")"; else t_pass; fi

t_summary
