#!/usr/bin/env python3
"""A raw Streamable HTTP client for tests/integration/test_mcp.sh: drives
`luminaguard mcp --http 127.0.0.1:0` with http.client, so requests that no
SDK would send (wrong token, Host, Origin, media types, sizes) are sent too.

Usage: mcp_http.py LUMINAGUARD CASE   (prints "ok: ..." or "FAIL: ...", exit 0/1)
"""
import http.client, json, os, re, signal, subprocess, sys, time
from procs import descendants

LG, CASE = sys.argv[1], sys.argv[2]
HOME = os.environ["LUMINAGUARD_HOME"]
INIT = {"protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "http-test", "version": "1"}}


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


class Server:
    def __init__(self, *extra):
        self.err = open(os.path.join(HOME, "mcp-http-test.err"), "w+")
        self.p = subprocess.Popen([LG, "mcp", "--http", "127.0.0.1:0", *extra],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=self.err)
        end = time.time() + 30
        self.port = None
        while self.port is None and time.time() < end:
            time.sleep(0.05)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/mcp", self.stderr())
            if m:
                self.port = int(m.group(1))
        check(self.port, "the server says where it listens: " + self.stderr())
        self.token = open(os.path.join(HOME, "mcp-http.token")).read().strip()
        st = os.stat(os.path.join(HOME, "mcp-http.token"))
        check(st.st_mode & 0o077 == 0, "the token file is private (mode %o)" % st.st_mode)

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def headers(self, sid=None, **over):
        h = {"Host": "127.0.0.1:%d" % self.port, "Authorization": "Bearer " + self.token,
             "Content-Type": "application/json",
             "Accept": "application/json, text/event-stream"}
        if sid:
            h["Mcp-Session-Id"] = sid
        for k, v in over.items():
            k = k.replace("_", "-")
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        return h

    def post(self, body, sid=None, conn=None, **over):
        """(status, headers, response) with the response still unread."""
        c = conn or self.conn()
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", "/mcp", data, self.headers(sid, **over))
        r = c.getresponse()
        return r.status, r

    def rpc(self, sid, id, method, params=None, **over):
        """One request; its messages (SSE events or the one JSON body), the last one the answer."""
        msg = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            msg["params"] = params
        status, r = self.post(msg, sid, **over)
        if status != 200:
            check(False, "%s: HTTP %d %s" % (method, status, r.read()[:300]))
        return read_messages(r)

    def init(self):
        status, r = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
        sid = r.getheader("Mcp-Session-Id")
        body = json.loads(r.read())
        check(status == 200 and sid and re.fullmatch(r"[0-9a-f]{32}", sid),
              "initialize opens a session: %d %s %s" % (status, sid, body))
        check(body["result"]["protocolVersion"] == "2025-06-18", str(body))
        status, r = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
        check(status == 202 and r.read() == b"", "a notification gets 202 and no body")
        return sid

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(60)
        self.err.close()
        return rc


def read_messages(r):
    if r.getheader("Content-Type", "").startswith("application/json"):
        return [json.loads(r.read())]
    check(r.getheader("Content-Type") == "text/event-stream", "a stream: %s" % r.getheaders())
    out = []
    for ev in read_events(r):
        out.append(ev)
    return out


def read_events(r):
    """SSE events' data as JSON, as they come; comments skipped."""
    data = []
    while True:
        line = r.readline()
        if not line:
            return
        line = line.rstrip(b"\r\n")
        if line == b"":
            if data:
                yield json.loads(b"\n".join(data))
                data = []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip())


def err_of(r):
    body = json.loads(r.read())
    return body.get("error", {})


def case_access():
    s = Server()
    sid = s.init()
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    refused = [
        ("no token", 401, {"Authorization": None}),
        ("a wrong token", 401, {"Authorization": "Bearer " + "0" * 64}),
        ("another scheme", 401, {"Authorization": "Basic " + s.token}),
        ("a foreign Host (DNS rebinding)", 403, {"Host": "evil.example:%d" % s.port}),
        ("a loopback Host with another port", 403, {"Host": "127.0.0.1:1"}),
        ("a foreign Origin", 403, {"Origin": "http://evil.example"}),
        ("a look-alike Origin", 403, {"Origin": "http://localhost.evil.example"}),
        ("Origin null", 403, {"Origin": "null"}),
        ("no text/event-stream in Accept", 406, {"Accept": "application/json"}),
        ("a text body", 415, {"Content-Type": "text/plain"}),
    ]
    for what, want, over in refused:
        status, r = s.post(ping, sid, **over)
        e = err_of(r)
        check(status == want and e.get("message"), "%s: want %d, got %d %s" % (what, want, status, e))
        if want == 401:
            check(r.getheader("WWW-Authenticate", "").startswith("Bearer"), "401 names Bearer")
    status, r = s.post(ping, sid, Origin="http://localhost:5173")
    check(status == 200 and json.loads(r.read())["result"] == {}, "a loopback Origin is fine")
    c = s.conn()
    c.request("GET", "/other", headers=s.headers(sid))
    r = c.getresponse()
    check(r.status == 404, "another path: %d" % r.status)
    r.read()
    c.request("PUT", "/mcp", b"{}", s.headers(sid))
    r = c.getresponse()
    check(r.status == 405 and "POST" in r.getheader("Allow", ""), "PUT: %d" % r.status)
    r.read()
    # Sizes: announced too big, and sent too big in chunks (no length known up front).
    status, r = s.post(b"{}", sid, Content_Length=str(5 << 20))
    check(status == 413, "Content-Length over 4 MiB: %d" % status)
    c = s.conn()
    big = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (5 << 20) + b'"}}'
    c.putrequest("POST", "/mcp", skip_host=True)
    for k, v in s.headers(sid).items():
        c.putheader(k, v)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for i in range(0, len(big), 1 << 16):
        chunk = big[i:i + (1 << 16)]
        c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    check(r.status == 413 and err_of(r).get("message"), "5 MiB in chunks: %d" % r.status)
    for body, code in [(b"{nope", -32700), (b"[]", -32600), (b'{"jsonrpc":"1.0"}', -32600)]:
        status, r = s.post(body, sid)
        e = err_of(r)
        check(status == 400 and e.get("code") == code, "%s: %d %s" % (body, status, e))
    # Still serving after all of that.
    m = s.rpc(sid, 2, "ping")
    check(m[-1]["result"] == {}, str(m))
    check(s.stop() == 0, "exit status")
    print("ok: refused with the right status and a JSON-RPC error: no or wrong token (401), "
          "foreign Host or Origin (403), wrong Accept (406) or Content-Type (415), other path "
          "(404), PUT (405), over 4 MiB announced or chunked (413), bad JSON (400); still serving")


def case_session():
    s = Server()
    a = s.init()
    b = s.init()
    check(a != b, "two sessions")
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    status, r = s.post(ping)
    check(status == 400 and "Mcp-Session-Id" in err_of(r)["message"], "no session id: %d" % status)
    status, r = s.post(ping, "0" * 32)
    check(status == 404, "an unknown session: %d" % status)
    status, r = s.post(ping, a, MCP_Protocol_Version="2025-03-26")
    check(status == 400, "a version header other than the session's: %d" % status)
    status, r = s.post(ping, a, MCP_Protocol_Version="1999-01-01")
    check(status == 400 and "unsupported" in err_of(r)["message"], "an unknown version: %d" % status)
    m = s.rpc(a, 2, "ping", MCP_Protocol_Version="2025-06-18")
    check(m[-1]["result"] == {}, "the right version header")
    status, r = s.post({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": INIT}, a)
    check(status == 400, "initialize inside a session: %d" % status)
    tools = s.rpc(a, 4, "tools/list")[-1]["result"]["tools"]
    check(len(tools) == 8 and tools[0]["name"] == "run", str(tools)[:200])
    # Session sandboxes belong to their session.
    r = s.rpc(a, 5, "tools/call", {"name": "sandbox_create", "arguments": {}})[-1]["result"]
    sb = r["structuredContent"]["sandbox"]
    r = s.rpc(b, 6, "tools/call", {"name": "sandbox_exec",
                                   "arguments": {"sandbox": sb, "command": "true"}})[-1]["result"]
    check(r["isError"], "another session cannot use it: %s" % r)
    r = s.rpc(a, 7, "tools/call", {"name": "sandbox_exec",
                                   "arguments": {"sandbox": sb, "command": "echo mine"}})[-1]["result"]
    check(r["structuredContent"]["stdout"] == "mine\n", str(r))
    kids = len(descendants(s.p.pid))
    check(kids > 0, "the session's sandbox runs")
    # DELETE ends the session and its sandbox.
    c = s.conn()
    c.request("DELETE", "/mcp", headers=s.headers(a))
    r = c.getresponse()
    check(r.status == 200, "DELETE: %d" % r.status)
    r.read()
    end = time.time() + 30
    while descendants(s.p.pid) and time.time() < end:
        time.sleep(0.2)
    check(not descendants(s.p.pid), "the session's sandbox is gone with it")
    status, r = s.post(ping, a)
    check(status == 404, "the ended session: %d" % status)
    m = s.rpc(b, 8, "ping")
    check(m[-1]["result"] == {}, "the other session lives on")
    # At most 16 sessions. Clients that never DELETE theirs are not locked out: the one idle
    # longest goes, unless it has a sandbox or a stream.
    sb_b = s.rpc(b, 9, "tools/call", {"name": "sandbox_create", "arguments": {}})[-1]
    sb_b = sb_b["result"]["structuredContent"]["sandbox"]
    more = [s.init() for _ in range(16)]
    status, r = s.post(ping, b)
    check(status == 200, "b (with a sandbox) is kept: %d" % status)
    r.read()
    status, r = s.post(ping, more[0])
    check(status == 404, "the oldest idle session made room: %d" % status)
    r.read()
    gets = []
    for sid in more[1:]:
        c = s.conn()
        c.request("GET", "/mcp", headers=s.headers(sid, Accept="text/event-stream"))
        g = c.getresponse()
        check(g.status == 200, "GET stream: %d" % g.status)
        gets.append(c)
    status, r = s.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
    check(status == 503 and "too many sessions" in err_of(r)["message"],
          "none idle: a 17th session is refused: %d" % status)
    for c in gets:
        c.close()
    check(s.stop() == 0, "exit status")
    print("ok: Mcp-Session-Id required (400), unknown (404), MCP-Protocol-Version checked "
          "(400); sandboxes belong to their session; DELETE ends it and its sandbox; "
          "at most 16 sessions: the oldest idle one makes room, 503 when none is idle")


def case_stream():
    s = Server()
    sid = s.init()
    check(s.rpc(sid, 1, "logging/setLevel", {"level": "debug"})[-1]["result"] == {}, "setLevel")
    t0 = time.time()
    status, r = s.post({"jsonrpc": "2.0", "id": "long", "method": "tools/call",
                        "params": {"name": "run", "arguments": {"command": "sleep 2; echo hi"},
                                   "_meta": {"progressToken": 7}}}, sid)
    check(status == 200 and r.getheader("Content-Type") == "text/event-stream",
          "tools/call is streamed: %d %s" % (status, r.getheaders()))
    # While it runs, the session answers other requests on other connections.
    m = s.rpc(sid, 2, "ping")
    check(m[-1]["result"] == {} and time.time() - t0 < 2, "ping answered while a call runs")
    msgs = list(read_events(r))
    kinds = [m.get("method", "answer") for m in msgs]
    check(kinds[-1] == "answer" and msgs[-1]["id"] == "long", str(kinds))
    check("notifications/progress" in kinds and "notifications/message" in kinds,
          "progress and a log message on the call's stream: %s" % kinds)
    check(msgs[-1]["result"]["structuredContent"]["stdout"] == "hi\n", str(msgs[-1]))
    # The GET stream: one per session.
    c = s.conn()
    c.request("GET", "/mcp", headers=s.headers(sid, Accept="text/event-stream",
                                              Content_Type=None))
    g = c.getresponse()
    check(g.status == 200 and g.getheader("Content-Type") == "text/event-stream",
          "GET opens a stream: %d" % g.status)
    c2 = s.conn()
    c2.request("GET", "/mcp", headers=s.headers(sid, Accept="text/event-stream"))
    r2 = c2.getresponse()
    check(r2.status == 409, "a second GET stream: %d" % r2.status)
    r2.read()
    c2.request("GET", "/mcp", headers=s.headers(sid, Accept="application/json"))
    r2 = c2.getresponse()
    check(r2.status == 406, "GET without text/event-stream: %d" % r2.status)
    r2.read()
    c.close()
    # notifications/cancelled: the call stops, its stream ends without an answer.
    status, r4 = s.post({"jsonrpc": "2.0", "id": "c", "method": "tools/call",
                         "params": {"name": "run", "arguments": {"command": "sleep 60"}}}, sid)
    check(status == 200, "the call streams")
    time.sleep(1)
    t2 = time.time()
    status, r = s.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": "c"}}, sid)
    check(status == 202, "cancel: %d" % status)
    msgs = list(read_events(r4))
    check(time.time() - t2 < 20 and not any(m.get("id") == "c" for m in msgs),
          "a cancelled call's stream ends, unanswered: %s after %.1f s" % (msgs, time.time() - t2))
    # A message with neither method nor id is answered (id null) and its stream ends.
    status, r = s.post({"jsonrpc": "2.0"}, sid)
    m = read_messages(r)
    check(status == 200 and m[-1]["error"]["code"] == -32600 and m[-1]["id"] is None, str(m))
    # GET and DELETE check the version header too.
    c2.request("GET", "/mcp", headers=s.headers(sid, Accept="text/event-stream",
                                               MCP_Protocol_Version="2024-11-05"))
    r2 = c2.getresponse()
    check(r2.status == 400, "GET with another version: %d" % r2.status)
    r2.read()
    # A call whose stream the client drops is cancelled: nobody could read its answer.
    c3 = s.conn()
    c3.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": "dropped", "method": "tools/call",
                                           "params": {"name": "run",
                                                      "arguments": {"command": "sleep 60"}}}),
               s.headers(sid))
    r3 = c3.getresponse()
    check(r3.status == 200, "the call streams")
    end = time.time() + 30
    while not descendants(s.p.pid) and time.time() < end:
        time.sleep(0.1)
    check(descendants(s.p.pid), "its sandbox runs")
    c3.sock.close()
    c3.close()
    t1 = time.time()
    while descendants(s.p.pid) and time.time() < t1 + 30:
        time.sleep(0.1)
    gone = time.time() - t1
    check(not descendants(s.p.pid), "the dropped call's sandbox is gone")
    check("the call is cancelled" in s.stderr(), s.stderr()[-500:])
    check(s.stop() == 0, "exit status")
    print("ok: tools/call streamed as SSE: progress and log messages, then the answer; ping "
          "answered meanwhile; one GET stream per session (409, 406, 400 for another version); "
          "a cancelled call's stream ends unanswered; a message without method or id gets "
          "its error; a dropped stream's call cancelled, its sandbox gone %.1f s later" % gone)


def case_signal():
    s = Server()
    sid = s.init()
    status, r = s.post({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "run", "arguments": {"command": "sleep 60"}}}, sid)
    check(status == 200, "the call streams")
    s.rpc(sid, 2, "tools/call", {"name": "sandbox_create", "arguments": {}})
    time.sleep(1)
    t0 = time.time()
    rc = s.stop()
    took = time.time() - t0
    try:
        rest = r.read()
    except http.client.IncompleteRead as e:
        rest = e.partial
    check(took < 15, "SIGTERM ends the server promptly (%.1f s)" % took)
    check(rc == 0, "exit status %d" % rc)
    check(b'"id":1' not in rest, "the cancelled call is not answered")
    print("ok: SIGTERM with a streaming call and a session sandbox: the stream ends, "
          "everything is gone in %.1f s" % took)


{"access": case_access, "session": case_session, "stream": case_stream,
 "signal": case_signal}[CASE]()
