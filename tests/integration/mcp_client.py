#!/usr/bin/env python3
"""A raw stdio MCP client for tests/integration/test_mcp.sh: speaks to
`luminaguard mcp` byte by byte, so malformed input can be sent too.

Usage: mcp_client.py LUMINAGUARD CASE   (prints "ok: ..." or "FAIL: ...", exit 0/1)
"""
import json, os, subprocess, sys, time, select

LG, CASE = sys.argv[1], sys.argv[2]


class Server:
    def __init__(self, *extra):
        self.p = subprocess.Popen([LG, "mcp", *extra], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""

    def send_raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, msg):
        self.send_raw(json.dumps(msg).encode() + b"\n")

    def recv(self, timeout=60):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no message within %s s" % timeout)
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError("server closed stdout")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def recv_id(self, id, timeout=60):
        """The response with this id; notifications and others on the way are collected."""
        seen = []
        end = time.time() + timeout
        while True:
            m = self.recv(max(0.1, end - time.time()))
            if m.get("id") == id and "method" not in m:
                return m, seen
            seen.append(m)

    def request(self, id, method, params=None, timeout=60):
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.recv_id(id, timeout)[0]

    def init(self, version="2025-06-18"):
        r = self.request(0, "initialize", {"protocolVersion": version, "capabilities": {},
                                           "clientInfo": {"name": "test", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return r

    def close(self):
        self.p.stdin.close()
        try:
            return self.p.wait(60)
        finally:
            self.p.stdout.close()
            self.p.stderr.close()


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def err_code(m):
    return m.get("error", {}).get("code")


def case_versions():
    for want, got in [("2024-11-05", "2024-11-05"), ("2025-03-26", "2025-03-26"),
                      ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
                      ("1999-01-01", "2025-11-25")]:
        s = Server()
        r = s.init(want)
        check(r["result"]["protocolVersion"] == got, "asked %s, got %s" % (want, r))
        check(r["result"]["capabilities"]["tools"] == {"listChanged": False}, str(r))
        check(s.close() == 0, "exit status")
    print("ok: every version negotiated, an unknown one answered with the newest")


def case_malformed():
    s = Server()
    s.init()
    s.send_raw(b"this is not json\n")
    check(err_code(s.recv()) == -32700, "garbage: parse error")
    s.send_raw(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]\n')
    check(err_code(s.recv()) == -32600, "batch: invalid request")
    s.send_raw(b'{"jsonrpc":"1.0","id":2,"method":"ping"}\n')
    check(err_code(s.recv()) == -32600, "wrong jsonrpc version")
    s.send_raw(b'{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}\n')
    check(err_code(s.recv()) == -32600, "object id")
    s.send_raw(b'{"jsonrpc":"2.0","id":3,"method":"ping","params":[1]}\n')
    check(err_code(s.recv()) == -32602, "array params")
    deep = b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"a":' + b'[' * 200 + b']' * 200 + b'}}\n'
    s.send_raw(deep)
    check(err_code(s.recv()) == -32600, "200 levels deep")
    s.send_raw(b'{"jsonrpc":"2.0","id":5,"method":"ping","params":{"pad":"' + b"x" * (5 << 20) + b'"}}\n')
    check(err_code(s.recv()) == -32600, "a 5 MiB line")
    check(err_code(s.request(6, "no/such/method")) == -32601, "unknown method")
    check(err_code(s.request(7, "server/discover")) == -32601, "server/discover refused cleanly")
    check(err_code(s.request(8, "tools/call", {"name": "nope", "arguments": {}})) == -32602,
          "unknown tool")
    check(err_code(s.request(9, "tools/call", {"name": "run", "arguments": "x"})) == -32602,
          "arguments not an object")
    r = s.request(10, "tools/call", {"name": "run", "arguments": {"command": "true", "argv": ["x"]}})
    check(r["result"]["isError"] is True, "both command and argv: a tool error")
    r = s.request(11, "tools/call", {"name": "run", "arguments": {"argv": [1, 2]}})
    check(r["result"]["isError"] is True, "argv of numbers: a tool error")
    check(s.request(12, "ping") == {"jsonrpc": "2.0", "id": 12, "result": {}}, "still alive")
    check(s.close() == 0, "exit status")
    print("ok: garbage, batches, bad ids and params, 200 levels, 5 MiB lines, unknown methods "
          "and tools: each the right error, and the server lives on")


def case_list():
    s = Server("--page-size", "1")
    s.init()
    r = s.request(1, "tools/list")
    tools = r["result"]["tools"]
    check(len(tools) == 1 and tools[0]["name"] == "run", str(r))
    ann = tools[0]["annotations"]
    check(ann["readOnlyHint"] is True and ann["destructiveHint"] is False, str(ann))
    check("outputSchema" in tools[0] and tools[0]["inputSchema"]["type"] == "object", "schemas")
    check("nextCursor" not in r["result"], "one tool, one page")
    check(err_code(s.request(2, "tools/list", {"cursor": "bogus"})) == -32602, "bad cursor")
    check(s.request(3, "logging/setLevel", {"level": "debug"}).get("result") == {}, "setLevel")
    check(err_code(s.request(4, "logging/setLevel", {"level": "loud"})) == -32602, "bad level")
    check(s.close() == 0, "exit status")
    print("ok: tools/list with annotations and schemas, cursors checked, logging/setLevel")


def case_run():
    s = Server()
    s.init()
    r = s.request(1, "tools/call", {"name": "run", "arguments": {
        "argv": ["sh", "-c", "echo out; echo err >&2; cat; echo $GREETING; pwd; exit 5"],
        "stdin": "from stdin\n", "env": {"GREETING": "hello"}, "workdir": "/tmp"}}, 120)
    sc = r["result"]["structuredContent"]
    check(sc["exit_code"] == 5 and sc["stdout"] == "out\nfrom stdin\nhello\n/tmp\n" and
          sc["stderr"] == "err\n", str(sc))
    check(r["result"]["isError"] is False and sc["sandbox"].startswith("sb-"), str(r))
    r = s.request(2, "tools/call", {"name": "run", "arguments": {"command": "sleep 5", "timeout_ms": 500}}, 120)
    sc = r["result"]["structuredContent"]
    check("timed out" in sc["exit"] and sc["exit_code"] == -1, str(sc))
    r = s.request(3, "tools/call", {"name": "run", "arguments": {"argv": ["/no/such/program"]}}, 120)
    check(r["result"]["isError"] is True and "No such file" in r["result"]["content"][0]["text"], str(r))
    r = s.request(4, "tools/call", {"name": "run", "arguments": {
        "command": "head -c 3000000 /dev/zero | tr '\\0' x"}}, 120)
    sc = r["result"]["structuredContent"]
    check(len(sc["stdout"]) == 1 << 20 and sc["stdout_truncated"] is True, "output cut at 1 MiB")
    check(s.close() == 0, "exit status")
    print("ok: argv, stdin, env, workdir, exit code, stderr; a timeout; a missing "
          "program; output cut at 1 MiB")


def case_concurrent_cancel_progress():
    s = Server()
    s.init()
    # A long call that asks for progress, then cancelled; meanwhile the server answers.
    s.send({"jsonrpc": "2.0", "id": "long", "method": "tools/call", "params": {
        "name": "run", "arguments": {"command": "sleep 60", "timeout_ms": 120000},
        "_meta": {"progressToken": "tok-1"}}})
    t0 = time.time()
    r = s.request(2, "ping", timeout=10)
    check("result" in r and time.time() - t0 < 5, "ping answered while a command runs")
    progress = []
    end = time.time() + 30
    while not progress and time.time() < end:
        m = s.recv(30)
        if m.get("method") == "notifications/progress":
            progress.append(m)
    check(progress and progress[0]["params"]["progressToken"] == "tok-1", "progress notifications")
    s.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": "long", "reason": "test"}})
    t1 = time.time()
    r, seen = s.recv_id(3, 60) if s.send({"jsonrpc": "2.0", "id": 3, "method": "ping"}) is None else (None, [])
    check(not any(m.get("id") == "long" for m in seen), "a cancelled call is not answered")
    # Two calls at once finish in about the time of one.
    t2 = time.time()
    for i in (10, 11):
        s.send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "run", "arguments": {"command": "sleep 2; echo %d" % i}}})
    a, _ = s.recv_id(10, 120)
    b, _ = s.recv_id(11, 120)
    check(a["result"]["structuredContent"]["stdout"] == "10\n" and
          b["result"]["structuredContent"]["stdout"] == "11\n", "both answered")
    took = time.time() - t2
    check(s.close() == 0, "exit status")
    # After a moment no sandbox of the cancelled call may remain (the test script checks too).
    print("ok: ping answered at once while a command runs; progress every second; a "
          "cancelled call is stopped and never answered; two calls ran side by side "
          "(%.1f s for two 2 s commands)" % took)


def case_eof_waits():
    s = Server()
    s.init()
    s.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "run", "arguments": {"command": "sleep 1; echo done"}}})
    s.p.stdin.close()
    r, _ = s.recv_id(1, 120)
    check(r["result"]["structuredContent"]["stdout"] == "done\n", str(r))
    check(s.p.wait(30) == 0, "exit after the last answer")
    print("ok: input closed: the running call is still answered, then the server exits")


{"versions": case_versions, "malformed": case_malformed, "list": case_list, "run": case_run,
 "concurrent": case_concurrent_cancel_progress, "eof": case_eof_waits}[CASE]()
