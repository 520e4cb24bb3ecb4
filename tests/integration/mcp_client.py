#!/usr/bin/env python3
"""A raw stdio MCP client for tests/integration/test_mcp.sh: speaks to
`luminaguard mcp` byte by byte, so malformed input can be sent too.

Usage: mcp_client.py LUMINAGUARD CASE   (prints "ok: ..." or "FAIL: ...", exit 0/1)
"""
import json, os, subprocess, sys, time, select
from procs import descendants

LG, CASE = sys.argv[1], sys.argv[2]


class Server:
    def __init__(self, *extra):
        self.p = subprocess.Popen([LG, "mcp", *extra], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        self.stash = {}  # responses that arrived while another was awaited

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
        """The response with this id; notifications on the way are returned too, other
        responses kept for their own recv_id."""
        seen = []
        if id in self.stash:
            return self.stash.pop(id), seen
        end = time.time() + timeout
        while True:
            m = self.recv(max(0.1, end - time.time()))
            if "method" not in m and m.get("id") == id:
                return m, seen
            if "method" not in m and "id" in m:
                self.stash[m["id"]] = m
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
    check(s.request(90, "ping").get("result") == {}, "ping before initialize")
    check(err_code(s.request(91, "tools/list")) == -32600, "tools/list before initialize")
    s.init()
    check(err_code(s.request(92, "initialize", {"protocolVersion": "2025-06-18"})) == -32600,
          "a second initialize")
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


TOOLS = ["run", "sandbox_create", "sandbox_exec", "sandbox_read_file", "sandbox_write_file",
         "sandbox_list_files", "workspace_apply", "sandbox_destroy"]


def case_list():
    s = Server("--page-size", "3")
    s.init()
    names, cursor, pages = [], None, 0
    while True:
        r = s.request(100 + pages, "tools/list", {"cursor": cursor} if cursor else {})
        for t in r["result"]["tools"]:
            names.append(t["name"])
            check(t["inputSchema"]["type"] == "object" and "outputSchema" in t, t["name"])
            ann = t["annotations"]
            check(ann["openWorldHint"] is False, t["name"])
            if t["name"] in ("run", "sandbox_read_file", "sandbox_list_files"):
                check(ann["readOnlyHint"] is True, t["name"])
            if t["name"] in ("sandbox_destroy", "sandbox_write_file", "sandbox_exec",
                             "workspace_apply"):
                check(ann["readOnlyHint"] is False and ann["destructiveHint"] is True, t["name"])
        pages += 1
        cursor = r["result"].get("nextCursor")
        if not cursor:
            break
    check(names == TOOLS and pages == 3, "pages %d: %s" % (pages, names))
    check(err_code(s.request(2, "tools/list", {"cursor": "bogus"})) == -32602, "bad cursor")
    check(err_code(s.request(3, "tools/list", {"cursor": "99"})) == -32602, "cursor past the end")
    check(s.request(4, "logging/setLevel", {"level": "debug"}).get("result") == {}, "setLevel")
    check(err_code(s.request(5, "logging/setLevel", {"level": "loud"})) == -32602, "bad level")
    check(s.close() == 0, "exit status")
    print("ok: 8 tools over 3 pages of 3, with honest annotations and both schemas; cursors "
          "checked; logging/setLevel")


def call(s, id, name, args, timeout=120):
    r = s.request(id, "tools/call", {"name": name, "arguments": args}, timeout)
    check("result" in r, "%s: %s" % (name, r))
    return r["result"]


def case_sessions():
    s = Server()
    s.init()
    r = call(s, 1, "sandbox_create", {})
    sb = r["structuredContent"]["sandbox"]
    check(sb.startswith("sb-") and not r["isError"], str(r))
    r = call(s, 2, "sandbox_exec", {"sandbox": sb, "command": "echo kept > /tmp/state; cat /run/sandbox-id"})
    check(r["structuredContent"]["stdout"].strip() == sb, "exec runs in that sandbox: %s" % r)
    r = call(s, 3, "sandbox_exec", {"sandbox": sb, "argv": ["cat", "/tmp/state"]})
    check(r["structuredContent"]["stdout"] == "kept\n", "state survives between calls")
    r = call(s, 4, "sandbox_write_file", {"sandbox": sb, "path": "/tmp/hello.txt",
                                          "content": "héllo\n", "mode": 0o600})
    check(r["structuredContent"]["bytes"] == 7, str(r))
    r = call(s, 5, "sandbox_read_file", {"sandbox": sb, "path": "/tmp/hello.txt"})
    sc = r["structuredContent"]
    check(sc["content"] == "héllo\n" and sc["encoding"] == "utf-8" and not sc["truncated"], str(sc))
    r = call(s, 6, "sandbox_write_file", {"sandbox": sb, "path": "/tmp/bin",
                                          "content": "AP8Q/w==", "encoding": "base64"})
    check(r["structuredContent"]["bytes"] == 4, str(r))
    r = call(s, 7, "sandbox_read_file", {"sandbox": sb, "path": "/tmp/bin"})
    check(r["structuredContent"]["encoding"] == "base64" and
          r["structuredContent"]["content"] == "AP8Q/w==", str(r))
    r = call(s, 8, "sandbox_exec", {"sandbox": sb, "command": "stat -c %a /tmp/hello.txt; od -An -tx1 /tmp/bin"})
    check(r["structuredContent"]["stdout"].split() == ["600", "00", "ff", "10", "ff"], str(r))
    r = call(s, 9, "sandbox_list_files", {"sandbox": sb, "path": "/tmp"})
    ents = {e["name"]: e for e in r["structuredContent"]["entries"]}
    check(ents["hello.txt"]["type"] == "file" and ents["hello.txt"]["size"] == 7 and
          ents["hello.txt"]["mode"] == 0o600, str(ents))
    r = call(s, 10, "sandbox_read_file", {"sandbox": sb, "path": "/no/such/file"})
    check(r["isError"] and "No such file" in r["content"][0]["text"], str(r))
    r = call(s, 11, "sandbox_read_file", {"sandbox": sb, "path": "relative"})
    check(r["isError"], "relative path refused")
    r = call(s, 12, "sandbox_exec", {"sandbox": "sb-000000000000", "command": "true"})
    check(r["isError"] and "no session sandbox" in r["content"][0]["text"], str(r))
    others = [call(s, 20 + i, "sandbox_create", {})["structuredContent"]["sandbox"] for i in range(3)]
    r = call(s, 30, "sandbox_create", {})
    check(r["isError"] and "at most 4" in r["content"][0]["text"], "a fifth is refused: %s" % r)
    r = call(s, 31, "sandbox_destroy", {"sandbox": sb})
    check(r["structuredContent"] == {"sandbox": sb, "destroyed": True}, str(r))
    r = call(s, 32, "sandbox_exec", {"sandbox": sb, "command": "true"})
    check(r["isError"], "a destroyed sandbox is gone")
    check(s.close() == 0, "exit status")  # the other three go with the server
    print("ok: create, exec (state kept between calls), write and read text and binary with "
          "modes, list, errors for missing files, relative paths and unknown ids; at most 4; "
          "destroy; the rest destroyed when the server stops")


def case_ttl():
    s = Server("--session-ttl", "2s")
    s.init()
    sb = call(s, 1, "sandbox_create", {})["structuredContent"]["sandbox"]
    time.sleep(4)
    r = call(s, 2, "sandbox_exec", {"sandbox": sb, "command": "true"})
    check(r["isError"] and "expired" in r["content"][0]["text"], str(r))
    check(s.close() == 0, "exit status")
    print("ok: an idle session sandbox is destroyed after its TTL")


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
    r = s.request(5, "tools/call", {"name": "run", "arguments": {
        "command": "printf 'caf\\351 \\377\\376 ok\\n'; printf 'bad\\300' >&2"}}, 120)
    sc = r["result"]["structuredContent"]
    check(sc["stdout"] == "caf\ufffd \ufffd\ufffd ok\n" and sc["stderr"] == "bad\ufffd",
          "bytes that are not UTF-8 come back as U+FFFD: %s" % sc)
    r = s.request(6, "tools/call", {"name": "run", "arguments": {
        "command": "head -c 20000000 /dev/zero | tr '\\0' x"}}, 120)
    sc = r["result"]["structuredContent"]
    check(sc["output_limit_killed"] is True and "more than 8 MiB" in sc["exit"], str(sc)[:300])
    r = s.request(4, "tools/call", {"name": "run", "arguments": {
        "command": "head -c 3000000 /dev/zero | tr '\\0' x"}}, 120)
    sc = r["result"]["structuredContent"]
    check(len(sc["stdout"]) == 1 << 20 and sc["stdout_truncated"] is True, "output cut at 1 MiB")
    check(s.close() == 0, "exit status")
    print("ok: argv, stdin, env, workdir, exit code, stderr; a timeout; a missing "
          "program; bytes that are not UTF-8; output cut at 1 MiB; killed past 8 MiB")


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
    s.send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
    r, seen = s.recv_id(3, 60)
    time.sleep(2)  # an answer to the cancelled call would have come by now
    s.send({"jsonrpc": "2.0", "id": 4, "method": "ping"})
    r, seen2 = s.recv_id(4, 60)
    check("long" not in s.stash and not any(m.get("id") == "long" for m in seen + seen2),
          "a cancelled call is not answered")
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
    check(took < 3.8, "two 2 s commands side by side took %.1f s" % took)
    # Eight back to back, each sent as soon as the one before is answered: never "too many".
    for i in range(40, 48):
        s.send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "run", "arguments": {"command": "echo %d" % i}}})
    for i in range(48, 56):
        r, _ = s.recv_id(i - 8, 120)
        check("result" in r and not r["result"]["isError"], "call %d: %s" % (i - 8, r))
        s.send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "run", "arguments": {"command": "echo %d" % i}}})
    for i in range(48, 56):
        r, _ = s.recv_id(i, 120)
        check("result" in r and r["result"]["structuredContent"]["stdout"] == "%d\n" % i,
              "call %d: %s" % (i, r))
    check(s.close() == 0, "exit status")
    # After a moment no sandbox of the cancelled call may remain (the test script checks too).
    print("ok: ping answered at once while a command runs; progress every second; a "
          "cancelled call is stopped and never answered; two calls ran side by side "
          "(%.1f s for two 2 s commands); 16 calls, 8 in flight, refilled as answered" % took)


def case_signal():
    s = Server()
    s.init()
    s.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "run", "arguments": {"command": "sleep 60", "timeout_ms": 120000}}})
    sb = call(s, 2, "sandbox_create", {})["structuredContent"]["sandbox"]
    time.sleep(1)
    t0 = time.time()
    s.p.send_signal(15)
    rc = s.p.wait(30)
    check(time.time() - t0 < 10, "SIGTERM ends the server promptly (%.1f s)" % (time.time() - t0))
    s.p.stdout.close()
    s.p.stderr.close()
    print("ok: SIGTERM while a command runs and a session lives: both gone in %.1f s (status %d)"
          % (time.time() - t0, rc))


def case_workspace():
    root = os.environ["LG_WS_ROOT"]
    proj = os.path.join(root, "proj")
    s = Server("--workspace-root", root)
    s.init()
    r = call(s, 1, "sandbox_create", {"workspace": "/etc"})
    check(r["isError"] and "not inside" in r["content"][0]["text"], "a workspace outside the roots: %s" % r)
    r = call(s, 2, "sandbox_create", {"workspace": proj})
    sb = r["structuredContent"]["sandbox"]
    r = call(s, 3, "sandbox_exec", {"sandbox": sb, "command":
                                    "pwd; cat README; echo more >> README; echo new > added"})
    check(r["structuredContent"]["stdout"] == "/workspace\nhello\n", "the workspace is in: %s" % r)
    r = call(s, 4, "workspace_apply", {"sandbox": sb})
    sc = r["structuredContent"]
    check(not r["isError"] and sc["applied"] is False and sc["changes"] == 2 and
          sc["kept"] == sb, "no approver: not applied, kept: %s" % r)
    check(open(os.path.join(proj, "README")).read() == "hello\n" and
          not os.path.exists(os.path.join(proj, "added")), "the host directory is untouched")
    listed = subprocess.run([LG, "changes", "list"], capture_output=True, text=True).stdout
    check(sb in listed, "kept for `luminaguard changes`: %s" % listed)
    r = call(s, 5, "workspace_apply", {"sandbox": sb})
    check(r["structuredContent"]["kept"] == sb + "-2", "a second change set of its own: %s" % r)
    r = call(s, 6, "workspace_apply", {"sandbox": call(s, 7, "sandbox_create", {})["structuredContent"]["sandbox"]})
    check(r["isError"] and "no workspace" in r["content"][0]["text"], str(r))
    check(s.close() == 0, "exit status")
    for k in (sb, sb + "-2"):
        subprocess.run([LG, "changes", "drop", k], capture_output=True)
    print("ok: a workspace outside --workspace-root is refused; inside, it is copied in; "
          "workspace_apply without an approver applies nothing and keeps the change set for "
          "`luminaguard changes`; each apply keeps its own")


def case_workspace_tty():
    """Run in a terminal (tmux): the server asks there; the test types 'y'."""
    root = os.environ["LG_WS_ROOT"]
    proj = os.path.join(root, "tty")
    s = Server("--workspace-root", root, "--approve", "prompt")
    s.init()
    sb = call(s, 1, "sandbox_create", {"workspace": proj})["structuredContent"]["sandbox"]
    call(s, 2, "sandbox_exec", {"sandbox": sb, "command": "echo approved > README; rm -f gone"})
    r = call(s, 3, "workspace_apply", {"sandbox": sb}, 300)
    sc = r["structuredContent"]
    check(sc["applied"] is True and sc["changes"] == 2, str(r))
    check(open(os.path.join(proj, "README")).read() == "approved\n" and
          not os.path.exists(os.path.join(proj, "gone")), "applied to the host directory")
    # The next apply compares against what the directory is now.
    call(s, 4, "sandbox_exec", {"sandbox": sb, "command": "true"})
    r = call(s, 5, "workspace_apply", {"sandbox": sb})
    check(r["structuredContent"]["changes"] == 0, "nothing new: %s" % r)
    check(s.close() == 0, "exit status")
    print("ok: approved at the server's terminal, applied; the next apply sees no change")


def gateway_server(*extra):
    fs, ev, root = os.environ["FS_BIN"], os.environ["EV_BIN"], os.environ["FS_ROOT"]
    return Server("--upstream", "%s %s" % (fs, root), "--upstream", ev, *extra)


FS = "secure-filesystem-server__"


def audit_events(n=40):
    out = subprocess.run([LG, "audit", "tail", "-n", str(n)], capture_output=True, text=True).stdout
    return out


def case_gateway():
    root = os.environ["FS_ROOT"]
    s = gateway_server()
    s.init()
    tools = []
    cursor = None
    names = [t["name"] for t in s.request(1, "tools/list")["result"]["tools"]]
    check(FS + "read_text_file" in names and FS + "write_file" in names and
          "everything__get-sum" in names and "run" in names, "tools of both upstreams: %s" % names)
    r = call(s, 2, FS + "read_text_file", {"path": os.path.join(root, "a.txt")})
    check(not r.get("isError") and r["content"][0]["text"] == "host file\n", "GREEN read: %s" % r)
    r = call(s, 3, "everything__get-sum", {"a": 2, "b": 3})
    check(not r.get("isError") and "5" in r["content"][0]["text"], "GREEN get-sum: %s" % r)
    r = call(s, 4, FS + "write_file", {"path": os.path.join(root, "b.txt"), "content": "x"})
    check(r.get("isError") and "denied" in r["content"][0]["text"] and
          not os.path.exists(os.path.join(root, "b.txt")), "RED write denied: %s" % r)
    r = call(s, 5, FS + "move_file", {"source": os.path.join(root, "a.txt"),
                                      "destination": os.path.join(root, "c.txt")})
    check(r.get("isError") and os.path.exists(os.path.join(root, "a.txt")), "RED move denied")
    big = os.path.join(root, "big.txt")
    open(big, "w").write("y" * (5 << 20))
    t0 = time.time()
    r = call(s, 6, FS + "read_text_file", {"path": big}, 60)
    check(r.get("isError") and "larger than 4 MiB" in r["content"][0]["text"] and
          time.time() - t0 < 30, "a reply over 4 MiB is an error at once: %s" % str(r)[:300])
    os.unlink(big)
    log = audit_events(14)
    check("tool.call" in log and "tool.result" in log and '"verdict": "RED"' not in log, "audited")
    check('tool="write_file"' in log and 'decision="no-approver"' in log and
          'tool="read_text_file"' in log, "every call audited: %s" % log[-800:])
    check(s.close() == 0, "exit status")
    print("ok: both upstreams' tools listed under their names; reads (GREEN) forwarded; write "
          "and move (RED) denied without an approver, nothing changed on the host; a reply over "
          "4 MiB is an error at once; every call audited with its decision")


def case_gateway_policy():
    root = os.environ["FS_ROOT"]
    pol = os.path.join(os.environ["TMPDIR_T"], "policy")
    open(pol, "w").write("allow tool write_file\ndeny tool *read_text*\n")
    s = gateway_server("--policy", pol)
    s.init()
    r = call(s, 1, FS + "write_file", {"path": os.path.join(root, "p.txt"), "content": "policy"})
    check(not r.get("isError") and open(os.path.join(root, "p.txt")).read() == "policy",
          "allowed by the policy file: %s" % r)
    r = call(s, 2, FS + "read_text_file", {"path": os.path.join(root, "a.txt")})
    check(r.get("isError") and "denied" in r["content"][0]["text"], "denied by the policy file")
    check(s.close() == 0, "exit status")
    print("ok: a policy file's allow lets a RED tool through, its deny stops a GREEN one")


def case_gateway_crash():
    s = gateway_server()
    s.init()
    call(s, 1, "everything__get-sum", {"a": 1, "b": 1})
    def kill_upstream():
        # Its processes, not the gateway's (whose argv names it too).
        killed = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == s.p.pid:
                continue
            try:
                argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
            except OSError:
                continue
            if any(os.environ["EV_BIN"].encode() in a for a in argv) and LG.encode() not in argv[0]:
                try:
                    os.kill(int(pid), 9)
                    killed += 1
                except OSError:
                    pass
        check(killed > 0, "found the upstream to kill")
        time.sleep(0.5)

    kill_upstream()
    r = call(s, 2, "everything__get-sum", {"a": 1, "b": 2})
    check(r.get("isError") and "restarting in" in r["content"][0]["text"],
          "a dead upstream: a clear error while it backs off: %s" % r)
    time.sleep(1.2)
    r = call(s, 3, "everything__get-sum", {"a": 1, "b": 2})
    check(not r.get("isError") and "3" in r["content"][0]["text"], "restarted: %s" % r)
    kill_upstream()
    check(call(s, 5, "everything__get-sum", {"a": 1, "b": 2}).get("isError"), "second death")
    time.sleep(2.2)
    check(not call(s, 6, "everything__get-sum", {"a": 1, "b": 2}).get("isError"), "back again")
    kill_upstream()
    r = call(s, 7, "everything__get-sum", {"a": 1, "b": 2})
    check(r.get("isError") and "keeps failing" in r["content"][0]["text"],
          "the third death in a minute opens the circuit: %s" % r)
    r = call(s, 4, FS + "read_text_file", {"path": os.path.join(os.environ["FS_ROOT"], "a.txt")})
    check(not r.get("isError"), "the other upstream was never affected")
    check(s.close() == 0, "exit status")
    print("ok: an upstream that dies gives a clear error, is restarted after a backoff that "
          "doubles, the third death in a minute opens the circuit, and the other upstream is "
          "untouched")


def case_gateway_tty():
    root = os.environ["FS_ROOT"]
    s = gateway_server("--approve", "prompt")
    s.init()
    r = call(s, 1, FS + "write_file", {"path": os.path.join(root, "approved.txt"),
                                       "content": "written after approval"}, 300)
    check(not r.get("isError") and
          open(os.path.join(root, "approved.txt")).read() == "written after approval", str(r))
    check(s.close() == 0, "exit status")
    print("ok: a RED upstream call shown as a card and approved at the terminal is forwarded")


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


def case_image():
    """`image`: run and sandbox_create in the full image (built by test_full.sh before us)."""
    s = Server()
    s.init()
    r = call(s, 1, "run", {"command": "python3 -c 'print(sum(range(10)))'", "image": "full"}, 300)
    check(not r.get("isError") and r["structuredContent"]["stdout"] == "45\n", str(r)[:300])
    r = call(s, 2, "run", {"command": "python3 -c 'print(1)'"}, 120)
    check(r["structuredContent"]["exit_code"] == 127, "base has no python3: %s" % str(r)[:300])
    r = call(s, 3, "run", {"command": "true", "image": "debian"})
    check(r.get("isError") and "image" in r["content"][0]["text"], str(r)[:300])
    sb = call(s, 4, "sandbox_create", {"image": "full"}, 300)["structuredContent"]["sandbox"]
    r = call(s, 5, "sandbox_exec", {"sandbox": sb, "command": "node -e 'console.log(6*7)' > /tmp/n"})
    r = call(s, 6, "sandbox_exec", {"sandbox": sb, "command": "cat /tmp/n; git --version | cut -c1-11"})
    check(r["structuredContent"]["stdout"] == "42\ngit version\n", str(r)[:300])
    check(s.close() == 0, "exit status")
    print("ok: run and sandbox_create take image full (python3, node, git there; not in base); "
          "an unknown image is a tool error")


def case_gateway_isolated():
    """--isolate: server-everything runs in a micro-VM of the full image, its files copied in."""
    srv = os.environ["ISO_DIR"]
    os.environ["LG_CANARY"] = "host-secret"
    t0 = time.time()
    s = Server("--isolate", "--isolate-dir", srv, "--upstream",
               "node node_modules/@modelcontextprotocol/server-everything/dist/index.js")
    r = s.init()
    started = time.time() - t0
    names = [t["name"] for t in s.request(1, "tools/list", timeout=120)["result"]["tools"]]
    check("everything__get-sum" in names and "everything__get-env" in names, str(names))
    r = call(s, 2, "everything__get-sum", {"a": 2, "b": 3}, 120)
    check(not r.get("isError") and "5" in r["content"][0]["text"], "get-sum: %s" % r)
    r = call(s, 3, "everything__get-env", {}, 120)
    env = r["content"][0]["text"]
    check("host-secret" not in env and "LG_CANARY" not in env and "/root" in env,
          "the upstream sees the sandbox's environment, not ours: %s" % env[:300])
    vmm = [p for p in descendants(s.p.pid)
           if "qemu" in open("/proc/%d/cmdline" % p, "rb").read().decode(errors="replace")]
    check(vmm, "a VMM runs the upstream")
    check(s.close() == 0, "exit status")
    time.sleep(1)
    check(not [p for p in vmm if os.path.exists("/proc/%d" % p)], "its VMM is gone with the gateway")
    print("ok: server-everything in a micro-VM of the full image (ready %.1f s after start): "
          "tools listed, get-sum answered, its environment is the sandbox's, its VMM gone with "
          "the gateway" % started)


{"versions": case_versions, "malformed": case_malformed, "list": case_list, "run": case_run,
 "concurrent": case_concurrent_cancel_progress, "eof": case_eof_waits,
 "sessions": case_sessions, "ttl": case_ttl, "signal": case_signal,
 "workspace": case_workspace, "workspace_tty": case_workspace_tty, "gateway": case_gateway,
 "gateway_policy": case_gateway_policy, "gateway_crash": case_gateway_crash,
 "gateway_tty": case_gateway_tty, "gateway_isolated": case_gateway_isolated, "image": case_image}[CASE]()
