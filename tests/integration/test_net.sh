#!/usr/bin/env bash
# Egress through the allow-list proxy (--net allow=...): a host HTTP server
# the sandbox may reach, one it may not, the CONNECT tunnel, a large transfer
# through the windows, names that resolve back to the host, malformed
# requests, TLS server names that do not match the tunnel.
# Usage: [LG_BACKEND=vm|process] tests/integration/test_net.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/../.."
BACKEND=${LG_BACKEND:-vm}
T_SUITE="test_net[$BACKEND]"
. tests/lib.sh

it_setup "${1:-build}"
if [ "$BACKEND" = process ] && [ "$(id -u)" != 0 ]; then
        t_begin net; t_skip "not root: the process backend runs only jailed"; t_summary; exit
fi
RUN=("$LG" run --backend "$BACKEND")
"${RUN[@]}" -- true >/dev/null 2>&1 </dev/null # image and template

mkdir -p "$TMP/www"
echo "hello from the host" >"$TMP/www/hello.txt"
head -c 20000000 /dev/urandom >"$TMP/www/big.bin"
python3 - "$TMP/www" "$TMP/port" "$TMP/requests" <<'PY' &
import http.server, functools, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_request(self, *args):
        with open(sys.argv[3], "a") as f: f.write(self.requestline + "\n")
    def log_message(self, *args): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")
ALLOW="--net allow=127.0.0.1:$PORT,localhost:$PORT"
nrun() { "${RUN[@]}" $ALLOW "$@" </dev/null; }

t_begin "without --net: no proxy, no way out"
out=$("${RUN[@]}" -- sh -c 'echo "[$http_proxy]"; wget -q -T 3 -O - http://127.0.0.1:'"$PORT"'/hello.txt' 2>&1 </dev/null); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q '^\[\]$' && ! grep -q hello "$TMP/requests" 2>/dev/null && t_pass ||
        t_fail "rc=$rc: $out"

t_begin "an allowed destination is reached through the proxy, and logged"
out=$("$LG" -v run --backend "$BACKEND" $ALLOW -- wget -q -O - "http://127.0.0.1:$PORT/hello.txt" 2>"$TMP/e" </dev/null); rc=$?
[ $rc -eq 0 ] && [ "$out" = "hello from the host" ] && grep -q "egress to 127.0.0.1:$PORT (http)" "$TMP/e" &&
        t_pass || t_fail "rc=$rc [$out] $(cat "$TMP/e")"

t_begin "a destination outside the allow-list: 403, logged with the destination"
out=$(nrun -- wget -q -O - "http://127.0.0.2:$PORT/hello.txt" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "403 Forbidden" &&
        echo "$out" | grep -q "egress denied: 127.0.0.2:$PORT is not in the allow-list" && t_pass ||
        t_fail "rc=$rc: $out"

t_begin "CONNECT tunnel to an allowed destination"
out=$(nrun -- sh -c "printf 'CONNECT 127.0.0.1:$PORT HTTP/1.1\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n' | nc 127.0.0.1 3128" 2>&1 | tr -d '\r')
echo "$out" | grep -q "^HTTP/1.1 200 Connection established" && echo "$out" | grep -q "^hello from the host" &&
        t_pass || t_fail "$out"

t_begin "CONNECT to a port that is not allowed: 403"
out=$(nrun -- sh -c "printf 'CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n' | nc 127.0.0.1 3128" 2>&1 | tr -d '\r')
echo "$out" | grep -q "^HTTP/1.1 403" && echo "$out" | grep -q "egress denied: 127.0.0.1:22" && t_pass || t_fail "$out"

t_begin "20 MB through the proxy arrive intact (flow control both ways)"
want=$(sha256sum <"$TMP/www/big.bin" | cut -d' ' -f1)
got=$(nrun -- sh -c "wget -q -O - http://127.0.0.1:$PORT/big.bin | sha256sum" 2>/dev/null | cut -d' ' -f1)
[ "$got" = "$want" ] && t_pass || t_fail "sha256 $got, want $want"

t_begin "an allowed name that resolves to the host's loopback is refused"
out=$(nrun -- wget -q -O - "http://localhost:$PORT/hello.txt" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "localhost resolves to a loopback" && t_pass || t_fail "rc=$rc: $out"

t_begin "requests the proxy cannot read unambiguously: 400"
bad=0
for req in 'GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' \
        "GET http://127.0.0.1:$PORT/ HTTP/1.1\r\nHost: 127.0.0.2:$PORT\r\n\r\n" \
        "GET http://x@127.0.0.1:$PORT/ HTTP/1.0\r\n\r\n"; do
        out=$(nrun -- sh -c "printf '$req' | nc 127.0.0.1 3128" 2>&1 | tr -d '\r')
        echo "$out" | grep -q "^HTTP/1.1 400" || { bad=1; t_fail "[$req]: $out"; break; }
done
[ $bad = 0 ] && t_pass

t_begin "a second request pipelined after the first is refused, not forwarded"
out=$(nrun -- sh -c "printf 'GET http://127.0.0.1:$PORT/hello.txt HTTP/1.1\r\nHost: 127.0.0.1:$PORT\r\n\r\nGET http://127.0.0.1:$PORT/big.bin HTTP/1.1\r\nHost: 127.0.0.1:$PORT\r\n\r\n' | nc 127.0.0.1 3128" 2>&1 | tr -d '\r')
echo "$out" | grep -q "^HTTP/1.1 400" && t_pass || t_fail "$out"

t_begin "a request body of declared length is forwarded"
out=$(nrun -- sh -c "printf 'POST http://127.0.0.1:$PORT/up HTTP/1.1\r\nHost: 127.0.0.1:$PORT\r\nContent-Length: 5\r\n\r\nhello' | nc 127.0.0.1 3128" 2>&1 | tr -d '\r')
# This test server has no POST: its 501 proves the request reached it whole.
echo "$out" | grep -q "^HTTP/1.0 501" && grep -q "^POST /up" "$TMP/requests" && t_pass || t_fail "$out"

t_begin "the host server saw only the allowed requests"
n=$(grep -c . "$TMP/requests")
# hello (allowed), hello via CONNECT, big.bin, the POST; nothing denied reached it.
[ "$n" -eq 4 ] && t_pass || t_fail "$n requests: $(cat "$TMP/requests")"

# Outside the allow-list is RED: a human at a terminal may allow it, for this run.
t_begin "outside the allow-list, asked at the terminal: 'y' lets it through, the decision is recorded"
if command -v tmux >/dev/null; then
        trap 'tm_kill_all; kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
        tm_start e1 "${RUN[*]} --approve prompt --net allow=127.0.0.1:1 -- wget -q -O - http://127.0.0.1:$PORT/hello.txt </dev/null"
        if tm_wait e1 "approve?" 120; then
                tm_screen e1 >"$TMP/s"
                tm_keys e1 y Enter
                tm_done e1 60
                st=$(tm_status e1)
                [ "$st" = 0 ] && tm_screen e1 | grep -q "hello from the host" && grep -q "connect to 127.0.0.1:$PORT" "$TMP/s" &&
                        "$LG" audit show --event approval.decision | tail -1 | grep -q 'outcome="approved"' && t_pass ||
                        t_fail "status=$st $(tm_screen e1 | tail -5)"
        else t_fail "no prompt: $(tm_screen e1 | tail -5)"; fi
        tm_kill e1
        t_begin "outside the allow-list, asked: 'n' is a 403"
        tm_start e2 "${RUN[*]} --approve prompt --net allow=127.0.0.1:1 -- wget -q -O - http://127.0.0.1:$PORT/hello.txt </dev/null"
        if tm_wait e2 "approve?" 120; then
                tm_keys e2 n Enter
                tm_done e2 60
                st=$(tm_status e2)
                [ "$st" != 0 ] && tm_screen e2 | grep -q "403 Forbidden" && t_pass || t_fail "status=$st $(tm_screen e2 | tail -5)"
        else t_fail "no prompt: $(tm_screen e2 | tail -5)"; fi
        tm_kill e2
else
        t_fail "tmux is not installed (scripts/deps.sh installs it)"
fi

t_begin "a policy file's 'allow egress HOST' lets it through with nobody to ask"
echo "allow egress 127.0.0.1" >"$TMP/policy"
out=$("${RUN[@]}" --approve deny --policy "$TMP/policy" --net allow=127.0.0.1:1 -- wget -q -O - "http://127.0.0.1:$PORT/hello.txt" 2>&1 </dev/null); rc=$?
[ $rc -eq 0 ] && [ "$out" = "hello from the host" ] && t_pass || t_fail "rc=$rc $out"

t_begin "a policy file that cannot be read is an error, not the defaults"
echo "allow everything" >"$TMP/policy"
"${RUN[@]}" --policy "$TMP/policy" -- true >/dev/null 2>"$TMP/e" </dev/null; rc=$?
[ $rc -eq 120 ] && grep -q "policy file $TMP/policy: line 1" "$TMP/e" && t_pass || t_fail "rc=$rc $(cat "$TMP/e")"

t_begin "a tunnel must start with a ClientHello naming its target: other names (whole or split across records) and plain text are refused"
if ! timeout 5 bash -c 'exec 3<>/dev/tcp/registry.npmjs.org/443' 2>/dev/null; then
        t_skip "registry.npmjs.org:443 is not reachable from this host"
else
        python3 - "$TMP/hello-evil" "$TMP/hello-good" <<'PY'
import sys
def hello(name):
    name = name.encode()
    body = b"\x03\x03" + b"\x07" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    sni = b"\x00" + len(name).to_bytes(2, "big") + name
    sni = len(sni).to_bytes(2, "big") + sni
    exts = b"\x00\x00" + len(sni).to_bytes(2, "big") + sni
    body += len(exts).to_bytes(2, "big") + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs
open(sys.argv[1], "wb").write(hello("evil.example"))
open(sys.argv[2], "wb").write(hello("registry.npmjs.org"))
PY
        tls() { # tls HELLOFILE: CONNECT, then the ClientHello through the tunnel
                "${RUN[@]}" --net allow=registry.npmjs.org:443 -- sh -c \
                        "(printf 'CONNECT registry.npmjs.org:443 HTTP/1.1\r\n\r\n'; sleep 1; cat; sleep 2) | nc 127.0.0.1 3128 | head -c 200 | od -An -tx1 | head -2" \
                        <"$1" 2>&1
        }
        python3 - "$TMP/hello-evil" "$TMP/hello-split" <<'PY'
import sys
h = open(sys.argv[1], "rb").read()            # one record: header(5) + handshake
hs = h[5:]
rec = lambda b: b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b
open(sys.argv[2], "wb").write(rec(hs[:4]) + rec(hs[4:]))   # the same hello in two records
PY
        printf 'GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n' >"$TMP/plain"
        evil=$(tls "$TMP/hello-evil")
        split=$(tls "$TMP/hello-split")
        plain=$(tls "$TMP/plain")
        # The good one gets a TLS record back (0x16 handshake or 0x15 alert) while the client
        # waits with its connection open, as node does: nothing else may be needed to wake the proxy.
        good=$("${RUN[@]}" --net allow=registry.npmjs.org:443 -- sh -c \
                "(printf 'CONNECT registry.npmjs.org:443 HTTP/1.1\r\n\r\n'; sleep 1; cat; sleep 6) | timeout 4 nc 127.0.0.1 3128 | od -An -tx1 -v | tr -d ' \n'" \
                <"$TMP/hello-good" 2>&1)
        if echo "$evil" | grep -q "TLS server name evil.example does not match the tunnel to registry.npmjs.org" &&
                echo "$split" | grep -q "TLS server name evil.example does not match" &&
                echo "$plain" | grep -q "did not start with a TLS ClientHello" &&
                ! echo "$good" | grep -q "egress denied" && echo "$good" | grep -qE "0d0a0d0a1[56]03"; then t_pass
        else t_fail "evil: $evil / split: $split / plain: $plain / good: $good"; fi
fi

t_begin "usage: --net needs allow=... with valid entries (120)"
ok=1
for spec in bogus "allow=" "allow=a..b" "allow=x.com:99999"; do
        "${RUN[@]}" --net "$spec" -- true >/dev/null 2>"$TMP/e" </dev/null; rc=$?
        [ $rc -eq 120 ] || { ok=0; t_fail "--net $spec gave $rc: $(cat "$TMP/e")"; break; }
done
[ $ok = 1 ] && t_pass

# A deny rule is the operator's answer, given in advance; and a sandbox must not flood the human.
t_begin "a policy file's 'deny egress HOST' is a 403 at once, even with a terminal to ask on"
if command -v tmux >/dev/null; then
        echo "deny egress 127.0.0.1" >"$TMP/policy-deny"
        before=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        tm_start e3 "${RUN[*]} --approve prompt --policy $TMP/policy-deny --net allow=127.0.0.1:1 -- wget -q -O - http://127.0.0.1:$PORT/hello.txt </dev/null"
        tm_done e3 60
        st=$(tm_status e3)
        after=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        [ "$st" != 0 ] && tm_screen e3 | grep -q "403 Forbidden" && ! tm_screen e3 | grep -q "approve?" &&
                [ "$before" = "$after" ] && t_pass || t_fail "status=$st requests $before -> $after $(tm_screen e3 | tail -5)"
        tm_kill e3

        t_begin "a refused host is not asked again on another port; after 3 denials nothing more is asked"
        before=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        cmd="for h in 2 3 4 5; do wget -q -O - http://127.0.0.\$h:$PORT/hello.txt; done; wget -q -O - http://127.0.0.2:$((PORT + 1))/x; echo DONE"
        tm_start e4 "${RUN[*]} --approve prompt --net allow=127.0.0.1:1 -- sh -c '$cmd' </dev/null"
        ok=1
        for h in 2 3 4; do
                if tm_wait e4 "connect to 127.0.0.$h:$PORT" 120 && tm_wait e4 "approve?" 10; then
                        sleep 0.3
                        tm_keys e4 n Enter
                else
                        ok=0
                        break
                fi
        done
        tm_done e4 60
        after=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        tm_screen e4 >"$TMP/s"
        [ $ok = 1 ] && grep -q "^DONE" "$TMP/s" && ! grep -q "connect to 127.0.0.5" "$TMP/s" &&
                ! grep -q "connect to 127.0.0.2:$((PORT + 1))" "$TMP/s" && grep -q "denied without asking" "$TMP/s" &&
                [ $((after - before)) -eq 3 ] && t_pass || t_fail "ok=$ok requests $before -> $after $(tail -12 "$TMP/s")"
        tm_kill e4

        t_begin "an unanswered question (timeout) ends the asking for the rest of the run"
        before=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        cmd="for h in 2 3; do wget -q -O - http://127.0.0.\$h:$PORT/hello.txt; done; echo DONE"
        tm_start e5 "${RUN[*]} --approve prompt --approve-timeout 1s --net allow=127.0.0.1:1 -- sh -c '$cmd' </dev/null"
        tm_done e5 60
        after=$("$LG" audit show --event approval.request 2>/dev/null | grep -c .)
        tm_screen e5 >"$TMP/s"
        grep -q "^DONE" "$TMP/s" && ! grep -q "connect to 127.0.0.3" "$TMP/s" && grep -q "denied without asking" "$TMP/s" &&
                [ $((after - before)) -eq 1 ] && t_pass || t_fail "requests $before -> $after $(tail -12 "$TMP/s")"
        tm_kill e5
else
        t_fail "tmux is not installed (scripts/deps.sh installs it)"
fi

t_begin "nothing left behind"
leftovers >"$TMP/left" && t_pass || t_fail "$(cat "$TMP/left")"

t_summary
