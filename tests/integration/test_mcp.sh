#!/usr/bin/env bash
# `luminaguard mcp`: the MCP server on stdio and on Streamable HTTP, driven
# by a real MCP client (@modelcontextprotocol/inspector-cli from npm, pinned)
# and by raw clients that also send what no well-behaved client would
# (mcp_client.py on stdio, mcp_http.py on HTTP).
# Usage: tests/integration/test_mcp.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
T_SUITE=test_mcp
. tests/lib.sh

it_setup "${1:-build}"
"$LG" run -- true >/dev/null 2>&1 </dev/null # image and template
# The `image` case needs the full image: the operator builds it, MCP clients cannot.
"$LG" image build full >"$TMP/full.log" 2>&1 || echo "  (the full image did not build: $(tail -1 "$TMP/full.log"))"
PY=tests/integration/mcp_client.py
export LG_WS_ROOT=$TMP/wsroot
mkdir -p "$LG_WS_ROOT/proj" && echo hello >"$LG_WS_ROOT/proj/README"

for c in versions malformed list run concurrent eof sessions ttl signal workspace image; do
        t_begin "raw stdio: $c"
        out=$(timeout 300 python3 "$PY" "$LG" "$c" 2>&1); rc=$?
        left=$(ls -A "$LUMINAGUARD_HOME/run" 2>/dev/null)
        if [ $rc -eq 0 ] && [ -z "$left" ]; then T_NAME="$T_NAME — ${out#ok: }"; t_pass
        else t_fail "$out${left:+ (run directories left: $left)}"; fi
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

for c in access session stream signal; do
        t_begin "raw HTTP: $c"
        out=$(timeout 300 python3 tests/integration/mcp_http.py "$LG" "$c" 2>&1); rc=$?
        left=$(ls -A "$LUMINAGUARD_HOME/run" 2>/dev/null)
        if [ $rc -eq 0 ] && [ -z "$left" ]; then T_NAME="$T_NAME — ${out#ok: }"; t_pass
        else t_fail "$out${left:+ (run directories left: $left)}"; fi
done

# The real client, and a real upstream whose write tool is RED (src/policy).
INSPECTOR_VERSION=1.0.3
SERVERS_VERSION=2026.8.31
IDIR=$LUMINAGUARD_HOME/npm/inspector-cli-$INSPECTOR_VERSION
SDIR=$LUMINAGUARD_HOME/npm/servers-$SERVERS_VERSION
npm_pkgs "$IDIR" node_modules/@modelcontextprotocol/inspector-cli/build/index.js \
        "@modelcontextprotocol/inspector-cli@$INSPECTOR_VERSION"; irc=$?; imsg=$NPM_MSG
[ $irc -eq 0 ] && { npm_pkgs "$SDIR" node_modules/.bin/mcp-server-filesystem \
        "@modelcontextprotocol/server-filesystem@$SERVERS_VERSION" \
        "@modelcontextprotocol/server-everything@$SERVERS_VERSION"; irc=$?; imsg=$NPM_MSG; }
FS_ROOT=$TMP/fsroot
mkdir -p "$FS_ROOT"
UP="$SDIR/node_modules/.bin/mcp-server-filesystem $FS_ROOT"
# inspector-cli finds its own package.json relative to the working directory.
inspect() { (cd "$IDIR/node_modules/@modelcontextprotocol/inspector-cli/build" && node index.js "$@"); }
# inspector_round TARGET...: list, call run, call a RED tool; each output checked.
inspector_round() {
        inspect "$@" --method tools/list >"$TMP/list" 2>"$TMP/e1" &&
                inspect "$@" --method tools/call --tool-name run \
                        --tool-arg 'command=echo hello from a micro-VM; uname -s; exit 4' >"$TMP/call" 2>"$TMP/e2" &&
                inspect "$@" --method tools/call --tool-name secure-filesystem-server__write_file \
                        --tool-arg "path=$FS_ROOT/red.txt" content=x >"$TMP/red" 2>"$TMP/e3" &&
                python3 -c '
import json, os, sys
tools = json.load(open(sys.argv[1]))["tools"]
names = [t["name"] for t in tools]
assert names[0] == "run" and "secure-filesystem-server__write_file" in names, names
assert tools[0]["annotations"]["readOnlyHint"] is True
r = json.load(open(sys.argv[2]))
sc = r["structuredContent"]
assert sc["exit_code"] == 4 and sc["stdout"] == "hello from a micro-VM\nLinux\n", sc
assert r["isError"] is False
red = json.load(open(sys.argv[3]))
assert red["isError"] is True and "denied" in red["content"][0]["text"], red
assert not os.path.exists(sys.argv[4]), "the RED write happened"
' "$TMP/list" "$TMP/call" "$TMP/red" "$FS_ROOT/red.txt"
}

t_begin "a real client over stdio: inspector-cli $INSPECTOR_VERSION lists, runs, and a RED tool is denied"
if [ $irc -eq 2 ]; then t_skip "$imsg"
elif [ $irc -ne 0 ]; then t_fail "$imsg"
elif inspector_round "$LG" mcp --upstream "$UP" && "$LG" audit tail -n 20 | grep -q 'decision="no-approver"'; then t_pass
else t_fail "$(cat "$TMP/e1" "$TMP/e2" "$TMP/e3" | tail -5) $(head -c 300 "$TMP/call") $(head -c 300 "$TMP/red")"; fi

t_begin "the same client over Streamable HTTP (bearer token, Mcp-Session-Id)"
if [ $irc -eq 2 ]; then t_skip "$imsg"
elif [ $irc -ne 0 ]; then t_fail "$imsg"
else
        "$LG" mcp --http 127.0.0.1:0 --upstream "$UP" </dev/null >/dev/null 2>"$TMP/http.err" &
        hpid=$!
        port=
        for _ in $(seq 100); do
                port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/mcp.*|\1|p' "$TMP/http.err")
                [ -n "$port" ] && break
                sleep 0.1
        done
        url=http://127.0.0.1:$port/mcp
        auth="Authorization: Bearer $(cat "$LUMINAGUARD_HOME/mcp-http.token")"
        if [ -z "$port" ]; then t_fail "no port: $(cat "$TMP/http.err")"
        elif inspect "$url" --transport http --method tools/list >"$TMP/noauth" 2>&1; then
                t_fail "listed without the token"
        elif inspector_round "$url" --transport http --header "$auth"; then t_pass
        else t_fail "$(cat "$TMP/e1" "$TMP/e2" "$TMP/e3" | tail -5) $(head -c 300 "$TMP/call")"; fi
        kill -TERM $hpid; wait $hpid
fi

t_begin "nothing left behind (the cancelled call's sandbox included)"
sleep 1
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_summary
