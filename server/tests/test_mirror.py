"""End-to-end tests of a mirrored group: one redis-server and three
commy-servers on loopback ports, each with its own data root.
usage: test_mirror.py BUILD_DIR [test-name ...]   (ends with "N passed, N failed")"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_server  # noqa: E402  (the build dir comes from sys.argv[1] there too)
from test_server import KEYS, free_port, hash_key, ok, err  # noqa: E402
from wsclient import WS, i64  # noqa: E402

SERVER = test_server.SERVER
LOCAL_WRITER = test_server.LOCAL_WRITER
REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
SERVICES = ["w", "loc", "conv", "rr", "res", "tok", "keep", "del"] + ["s%d" % i for i in range(5)]
LOAD_CLIENT = os.path.join(test_server.BUILD, "server", "load_client")


def wait_for(what, fn, timeout=15.0):
    """Polls fn until it returns a true value; generous timeouts, no timing assertions."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # a server restarting, say
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Redis:
    def __init__(self, fsync="always", extra=()):
        self.fsync, self.extra = fsync, list(extra)
        self.dir = tempfile.mkdtemp(prefix="commy-redis-test-")
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "a")
        # the AOF, fsynced on every write, makes a restart lose nothing
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                                      "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
                                      "--protected-mode", "no"] + self.extra, stdout=self.log, stderr=self.log)
        if "--tls-port" in self.extra:
            time.sleep(0.2)
            wait_for("redis-server", lambda: socket.create_connection(("127.0.0.1", self.tls_port), 1).close() or True)
        else:
            wait_for("redis-server", lambda: self.ping())

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args):
        """One command in RESP; returns the raw reply bytes (enough for the tests' checks)."""
        msg = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in
                                                 (x.encode() if isinstance(x, str) else x for x in args))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(msg)
            time.sleep(0.05)
            return s.recv(1 << 20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MServer(test_server.Server):
    """A commy-server of the group: the test_server configuration plus a mirror section."""

    def __init__(self, redis, sid, snapshot_every=None, mirror=None, wait_connected=True):
        self.redis, self.sid, self.snapshot_every = redis, sid, snapshot_every
        self.mirror, self.wait_connected = mirror, wait_connected
        super().__init__()

    def start(self):
        with open(self.config) as f:
            cfg = json.load(f)
        cfg["tenants"][0]["services"] = [{"name": n, "persistent": n == "keep"} for n in SERVICES]
        cfg["mirror"] = {"address": "127.0.0.1:%d" % self.redis.port, "server_id": self.sid, "timeout_ms": 1000}
        if self.snapshot_every:
            cfg["mirror"]["snapshot_every"] = self.snapshot_every
        cfg["mirror"].update(self.mirror or {})
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        super().start()
        if self.wait_connected:
            try:
                wait_for("%s connected to Redis" % self.sid, lambda: self.metrics().get("commy_mirror_connected") == 1)
            except AssertionError:
                self.proc.kill()  # nobody holds this server yet to stop it
                self.proc.wait(30)
                raise

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.log.close()


def get(c, service, var):
    r = c.request("get", service=service, var=var)
    return r["result"]["value"] if r["ok"] else None


def opened(srv, service, key="admin"):
    c = srv.client(key=key)
    ok(c.request("open_service", service=service, mode="remote"))
    return c


# ---------------------------------------------------------------- tests


def test_write_reaches_subscriber_of_other_server(g):
    s1, s2, s3 = g["servers"]
    c1, c2 = opened(s1, "w"), opened(s2, "w", key="alice")
    ok(c1.request("set", service="w", var="ctr", kind="box", value=i64(0)))
    wait_for("ctr on server 2", lambda: get(c2, "w", "ctr") == i64(0))
    ok(c2.request("subscribe", service="w", var="ctr"))
    for v in range(1, 51):
        ok(c1.request("set", service="w", var="ctr", value=i64(v)))
    assert get(c1, "w", "ctr") == i64(50)  # the writer reads its own write once answered
    seen = []
    while len(seen) < 50:
        p = c2.wait_push("changed", 10)
        assert p is not None, "missing pushes after %r" % seen[-3:]
        seen.append(int(p["value"]["v"]))
    assert seen == list(range(1, 51)), seen
    # every container kind travels: a map, a vec and a str written on server 3
    c3 = opened(s3, "w")
    ok(c3.request("set", service="w", var="m", kind="map", key={"t": "str", "v": "k1"}, value=i64(7)))
    ok(c3.request("push", service="w", var="v", kind="vec", value={"t": "f64", "v": 1.5}))
    ok(c3.request("set", service="w", var="s", kind="str", value={"t": "str", "v": "hello"}))
    wait_for("the map on server 1", lambda: ok(c1.request("get", service="w", var="m", key={"t": "str", "v": "k1"}))
             ["value"] == i64(7))
    wait_for("the vec on server 2", lambda: c2.request("get", service="w", var="v", index=0).get("result", {})
             .get("value") == {"t": "f64", "v": 1.5})
    wait_for("the str on server 1", lambda: get(c1, "w", "s") == {"t": "str", "v": "hello"})
    for c in (c1, c2, c3):
        c.close()


def test_pipelined_requests_answered_in_order(g):
    s1, s2, _ = g["servers"]
    c = opened(s1, "w")
    ok(c.request("push", service="w", var="p", kind="vec", value=i64(0)))
    ok(c.request("pop", service="w", var="p"))
    # writes, reads and a bad request sent without waiting: one reply each, in
    # order, and every read sees the writes sent before it
    frames = []
    for i in range(40):
        frames.append({"op": "push", "service": "w", "var": "p", "value": i64(i)})
        if i % 10 == 9:
            frames.append({"op": "len", "service": "w", "var": "p"})
    frames.append({"op": "pop", "service": "w", "var": "p"})
    frames.append({"op": "get", "service": "nosuch", "var": "p"})
    frames.append({"op": "len", "service": "w", "var": "p"})
    for k, f in enumerate(frames):
        c.send_text(json.dumps(dict(f, v=1, id=1000 + k)))
    replies = [c.recv() for _ in frames]
    replies = [r for r in replies if "push" not in r]
    assert [r["id"] for r in replies] == [1000 + k for k in range(len(frames))], [r["id"] for r in replies]
    lens = [int(r["result"]["len"]) for r, f in zip(replies, frames) if f["op"] == "len"]
    assert lens == [10, 20, 30, 40, 39], lens
    assert replies[-3]["result"]["value"] == i64(39)
    assert not replies[-2]["ok"]
    c2 = opened(s2, "w")
    wait_for("the vec on server 2", lambda: ok(c2.request("len", service="w", var="p"))["len"] == "39")
    c.close()
    c2.close()


def test_many_clients_through_the_mirror(g):
    """load_client (the server load test's C client): 100 clients of server 2
    subscribe and write at once; every write goes through Redis and every
    subscriber sees every write of its service, in the same order."""
    s2 = g["servers"][1]
    r = subprocess.run([LOAD_CLIENT, str(s2.port), s2.cert, "acme", "alice.s3cret-alice", "100", "10", "5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert "20000 pushes delivered" in r.stdout, r.stdout  # 5 services x 20 subscribers x 200 writes
    assert s2.metrics()["commy_mirror_local_fallbacks_total"] == 0


def test_local_write_mirrored(g):
    s1, s2, _ = g["servers"]
    local = s1.client(key="alice")
    path = ok(local.request("open_service", service="loc", mode="local"))["path"]
    remote = opened(s2, "loc")
    ok(remote.request("set", service="loc", var="temp", kind="box", value=i64(0)))
    ok(local.request("open_service", service="loc", mode="remote"))
    wait_for("temp on server 1", lambda: get(local, "loc", "temp") == i64(0))
    ok(remote.request("subscribe", service="loc", var="temp"))
    # a local client writes the mapped file directly; server 1 publishes it
    subprocess.check_call([LOCAL_WRITER, path, "temp"] + [str(v) for v in range(1, 11)])
    seen = []
    while not seen or seen[-1] != 10:
        p = remote.wait_push("changed", 10)
        assert p is not None, "local writes on server 1 not seen on server 2; saw %r" % seen
        seen.append(int(p["value"]["v"]))
    assert seen == sorted(seen), seen
    local.close()
    remote.close()


def test_conflicting_writes_converge(g):
    servers = g["servers"]
    cs = [opened(s, "conv") for s in servers]
    ok(cs[0].request("set", service="conv", var="x", kind="box", value=i64(-1)))
    ok(cs[0].request("push", service="conv", var="q", kind="vec", value=i64(-1)))
    for c in cs:
        wait_for("x everywhere", lambda: get(c, "conv", "x") == i64(-1))
    n = 100
    # writers on two servers at once, each with its own connection
    ws = [opened(servers[0], "conv", key="alice"), opened(servers[1], "conv", key="bob")]

    def writer(c, base):
        for i in range(n):
            ok(c.request("set", service="conv", var="x", value=i64(base + i)))
            ok(c.request("push", service="conv", var="q", value=i64(base + i)))

    ts = [threading.Thread(target=writer, args=(c, 1000 * (k + 1))) for k, c in enumerate(ws)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

    def vec(c):
        r = ok(c.request("len", service="conv", var="q"))
        return [ok(c.request("get", service="conv", var="q", index=i))["value"]["v"] for i in range(int(r["len"]))]

    def agree():
        xs = [get(c, "conv", "x") for c in cs]
        qs = [vec(c) for c in cs]
        return (xs[0] == xs[1] == xs[2] and len(qs[0]) == 2 * n + 1 and qs[0] == qs[1] == qs[2]) and (xs, qs)

    xs, qs = wait_for("every server to agree", agree, 30)
    # the last push of each writer is in the one order; x is the last set in that order
    assert xs[0]["v"] in (str(1000 + n - 1), str(2000 + n - 1)), xs
    assert sorted(int(v) for v in qs[0][1:]) == sorted(list(range(1000, 1000 + n)) + list(range(2000, 2000 + n)))
    for c in cs + ws:
        c.close()


def test_redis_restart_loses_nothing(g):
    redis = g["redis"]
    s1, s2, _ = g["servers"]
    c1, c2 = opened(s1, "rr"), opened(s2, "rr")  # server 3 stays out of it
    ok(c1.request("set", service="rr", var="before", kind="box", value=i64(1)))
    wait_for("before on server 2", lambda: get(c2, "rr", "before") == i64(1))
    redis.stop()
    wait_for("server 1 to notice", lambda: s1.metrics().get("commy_mirror_connected") == 0)
    # both keep serving their clients alone
    ok(c1.request("set", service="rr", var="during1", kind="box", value=i64(2)))
    ok(c2.request("set", service="rr", var="during2", kind="box", value=i64(3)))
    # and a local client of server 1 writes its mapped file meanwhile
    path = ok(c1.request("open_service", service="rr", mode="local"))["path"]
    subprocess.check_call([LOCAL_WRITER, path, "local_during", "7", "8"])
    assert get(c1, "rr", "during1") == i64(2) and get(c2, "rr", "during2") == i64(3)
    redis.start()
    wait_for("server 1 back", lambda: s1.metrics().get("commy_mirror_connected") == 1)
    wait_for("server 1's outage write on server 2", lambda: get(c2, "rr", "during1") == i64(2))
    wait_for("server 2's outage write on server 1", lambda: get(c1, "rr", "during2") == i64(3))
    wait_for("the outage's local write on server 2", lambda: get(c2, "rr", "local_during") == i64(8))
    assert get(c2, "rr", "before") == i64(1)
    # and the stream goes on after it
    ok(c1.request("set", service="rr", var="after", kind="box", value=i64(4)))
    wait_for("after on server 2", lambda: get(c2, "rr", "after") == i64(4))
    assert s1.metrics()["commy_mirror_disconnects_total"] >= 1
    # a server that never had the service open finds all of it in the restarted Redis
    c3 = opened(g["servers"][2], "rr")
    assert [get(c3, "rr", v) for v in ("before", "during1", "during2", "local_during", "after")] == \
        [i64(1), i64(2), i64(3), i64(8), i64(4)]
    c1.close()
    c2.close()
    c3.close()


def test_resurrection_after_every_client_left(g):
    s1, s2, s3 = g["servers"]
    c1 = s1.client()
    path = ok(c1.request("open_service", service="res", mode="local"))["path"]
    ok(c1.request("set", service="res", var="box", kind="box", value=i64(42)))
    ok(c1.request("set", service="res", var="m", kind="omap", key=i64(5), value={"t": "str", "v": "five"}))
    for i in range(30):  # more than snapshot_every: a snapshot and a trimmed stream
        ok(c1.request("push", service="res", var="d", kind="deque", value=i64(i)))
    c2 = opened(s2, "res")
    wait_for("the deque on server 2", lambda: ok(c2.request("len", service="res", var="d"))["len"] == "30")
    c1.close()
    c2.close()
    wait_for("server 1's file to go", lambda: not os.path.exists(path))
    wait_for("a snapshot in Redis", lambda: b"box" in g["redis"].command("HGET", "commy:acme:res:snapshot", "data"))
    time.sleep(0.3)
    # nobody has the service open; the next client, on another server, finds it all
    c3 = opened(s3, "res")
    assert get(c3, "res", "box") == i64(42), c3.request("get", service="res", var="box")
    assert ok(c3.request("get", service="res", var="m", key=i64(5)))["value"] == {"t": "str", "v": "five"}
    assert [ok(c3.request("get", service="res", var="d", index=i))["value"] for i in range(30)] == \
        [i64(i) for i in range(30)]
    c3.close()


def test_killed_server_client_moves_with_token(g):
    s1, _, s3 = g["servers"]
    c1 = s1.client(key="alice")
    token = c1.token
    ok(c1.request("open_service", service="tok", mode="remote"))
    ok(c1.request("set", service="tok", var="mine", kind="box", value=i64(99)))
    s1.kill9()
    c1.close()
    # the token was issued by server 1; server 3 knows it through Redis
    c = WS(s3.port, cafile=s3.cert)
    r = ok(c.request("authenticate", tenant="acme", token=token))
    assert r["client_id"] == "alice"
    ok(c.request("open_service", service="tok", mode="remote"))
    assert get(c, "tok", "mine") == i64(99)
    s2 = g["servers"][1]

    def auth_on(srv, tok):
        w = WS(srv.port, cafile=srv.cert)
        r = w.request("authenticate", tenant="acme", token=tok)
        w.close()
        return r

    # a refresh on one server: the old token is dead and the new one good on the others
    new = ok(c.request("refresh"))["token"]
    assert err(auth_on(s2, token)) == "EAUTH"
    assert ok(auth_on(s2, new))["client_id"] == "alice"
    # a logout on one server holds on the others
    ok(c.request("logout"))
    c.close()
    assert err(auth_on(s2, new)) == "EAUTH"
    # and so does an admin's revoke_client
    b = s2.client(key="bob")
    assert ok(auth_on(s3, b.token))["client_id"] == "bob"
    admin = s2.client()
    ok(admin.request("revoke_client", client_id="bob"))
    assert err(auth_on(s3, b.token)) == "EAUTH"
    admin.close()
    b.close()


def test_deleted_service_does_not_come_back(g):
    s1 = g["servers"][0]
    c = opened(s1, "del")
    ok(c.request("set", service="del", var="x", kind="box", value=i64(1)))
    ok(c.request("close_service", service="del"))
    wait_for("a snapshot", lambda: g["redis"].command("EXISTS", "commy:acme:del:snapshot").startswith(b":1"))
    ok(c.request("delete_service", service="del"))
    wait_for("the keys gone from Redis", lambda: g["redis"].command("EXISTS", "commy:acme:del:snapshot",
                                                                     "commy:acme:del:stream").startswith(b":0"))
    ok(c.request("create_service", service="del"))
    ok(c.request("open_service", service="del", mode="remote"))
    assert err(c.request("get", service="del", var="x")) == "ENOTFOUND"
    c.close()


def test_restarted_server_catches_up_from_its_last_id(g):
    s1, s2, _ = g["servers"]
    c1, c2 = opened(s1, "keep"), opened(s2, "keep")
    ok(c2.request("set", service="keep", var="x", kind="box", value=i64(1)))
    wait_for("x on server 1", lambda: get(c1, "keep", "x") == i64(1))
    c2.close()
    time.sleep(0.2)
    s2.stop()  # the persistent file stays, with the last stream ID it applied
    ok(c1.request("set", service="keep", var="x", value=i64(2)))
    ok(c1.request("set", service="keep", var="y", kind="box", value=i64(3)))
    s2.start()
    c2 = opened(s2, "keep")
    assert get(c2, "keep", "x") == i64(2) and get(c2, "keep", "y") == i64(3)
    m = s2.metrics()
    # it read the two entries after its ID, not the service from a snapshot
    assert m["commy_mirror_snapshot_loads_total"] == 0 and m["commy_mirror_applied_total"] == 2, m
    c1.close()
    c2.close()


def _tls_cert(d):
    cert, key = os.path.join(d, "redis.pem"), os.path.join(d, "redis.key")
    subprocess.check_call(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                           "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=redis",
                           "-addext", "subjectAltName=IP:127.0.0.1"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    return cert, key


def test_tls_and_password(g):
    d = tempfile.mkdtemp(prefix="commy-redis-tls-")
    cert, key = _tls_cert(d)
    port = free_port()
    redis = Redis.__new__(Redis)
    redis.tls_port = port
    # the ACL user docs/deploying.md gives; the default user is off
    redis.__init__(extra=["--tls-port", str(port), "--tls-cert-file", cert, "--tls-key-file", key,
                          "--tls-ca-cert-file", cert, "--tls-auth-clients", "no",
                          "--user", "default", "off",
                          "--user", "commy", "on", ">pw-123", "~commy:*", "+@read", "+@write", "+@stream",
                          "+@scripting", "+ping", "+time"])
    servers = []
    try:
        tls = {"address": "127.0.0.1:%d" % port, "tls": {"ca": cert}, "username": "commy", "password": "pw-123"}
        a = MServer(redis, "ta", mirror=tls)
        servers.append(a)
        b = MServer(redis, "tb", mirror=tls)
        servers.append(b)
        ca, cb = opened(a, "w"), opened(b, "w")
        ok(ca.request("set", service="w", var="over_tls", kind="box", value=i64(5)))
        wait_for("the write over TLS on the other server", lambda: get(cb, "w", "over_tls") == i64(5))
        # the ACL allows everything the mirror does: snapshots (Lua, TIME), tokens, lockouts
        token = ca.token
        for i in range(25):
            ok(ca.request("push", service="w", var="acl_q", kind="vec", value=i64(i)))
        ok(ca.request("close_service", service="w"))
        ok(cb.request("close_service", service="w"))
        wait_for("a snapshot taken under the ACL user", lambda: a.metrics()["commy_mirror_snapshots_total"] +
                 b.metrics()["commy_mirror_snapshots_total"] >= 1)
        cb.close()
        c = WS(b.port, cafile=b.cert)
        assert ok(c.request("authenticate", tenant="acme", token=token))["client_id"] == "root"
        c.close()
        ca.close()
        assert "refused" not in open(a.log.name).read() + open(b.log.name).read()
        # a wrong password: refused, logged, and the server serves alone
        bad = MServer(redis, "tc", mirror=dict(tls, password="wrong"), wait_connected=False)
        servers.append(bad)
        wait_for("the refusal in the log", lambda: "AUTH refused" in open(bad.log.name).read())
        assert bad.metrics()["commy_mirror_connected"] == 0
        c = opened(bad, "w")
        ok(c.request("set", service="w", var="alone", kind="box", value=i64(1)))
        assert get(c, "w", "alone") == i64(1)
        c.close()
        # and a CA that did not sign Redis's certificate is refused too
        other = tempfile.mkdtemp(prefix="commy-redis-ca-", dir=d)
        wrong_ca, _ = _tls_cert(other)
        foreign = MServer(redis, "td", mirror=dict(tls, tls={"ca": wrong_ca}), wait_connected=False)
        servers.append(foreign)
        wait_for("the TLS failure in the log", lambda: "TLS with" in open(foreign.log.name).read())
        assert foreign.metrics()["commy_mirror_connected"] == 0
    finally:
        for s in servers:
            s.cleanup()
        redis.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_lockout_holds_on_every_server(g):
    s1, s2, s3 = g["servers"]
    # the default lockout: 5 failures of one identity lock it for 300 s
    for srv in (s1, s2, s1, s2, s3):
        c = WS(srv.port, cafile=srv.cert)
        assert err(c.request("authenticate", tenant="acme", api_key="reader.wrong")) == "EAUTH"
        c.close()
    for srv in (s1, s2, s3):
        c = WS(srv.port, cafile=srv.cert)
        assert err(c.request("authenticate", tenant="acme", api_key="reader.s3cret-reader")) == "ELOCKED"
        c.close()


def test_bad_mirror_config_refused(g):
    d = tempfile.mkdtemp(prefix="commy-mirror-cfg-")
    try:
        for mirror, field in [({"address": "nocolon"}, "mirror.address"), ({}, "mirror.address"),
                              ({"address": "127.0.0.1:6379", "snapshot_every": 1}, "mirror.snapshot_every"),
                              ({"address": "127.0.0.1:6379", "tls": {"ca": "/nonexistent"}}, "mirror.tls.ca"),
                              ({"address": "127.0.0.1:6379", "server_id": "bad id"}, "mirror.server_id"),
                              ("x", "mirror")]:
            cfg = {"data_root": os.path.join(d, "data"), "mirror": mirror,
                   "tenants": [{"name": "t", "auth": {"api_keys": []}}]}
            path = os.path.join(d, "c.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([SERVER, "--config", path, "--insecure-dev"], capture_output=True, text=True, timeout=10)
            assert p.returncode != 0 and field in p.stderr, (mirror, p.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [test_bad_mirror_config_refused, test_write_reaches_subscriber_of_other_server,
         test_pipelined_requests_answered_in_order, test_many_clients_through_the_mirror, test_local_write_mirrored,
         test_conflicting_writes_converge, test_redis_restart_loses_nothing,
         test_resurrection_after_every_client_left, test_deleted_service_does_not_come_back,
         test_restarted_server_catches_up_from_its_last_id,
         test_tls_and_password, test_lockout_holds_on_every_server, test_killed_server_client_moves_with_token]


def main():
    only = set(sys.argv[2:])
    tests = [t for t in TESTS if not only or t.__name__ in only]
    if not tests:
        print("0 passed, 0 failed")
        return 0
    if not REDIS:
        print("skipped: the mirror tests need redis-server (apt-get install redis-server; scripts/common.sh's"
              " ensure_deps installs it)")
        print("0 passed, 0 failed")
        return 0
    passed = failed = 0
    g = {"redis": None, "servers": []}
    try:
        g["redis"] = Redis()
        g["servers"] = [MServer(g["redis"], "s%d" % i, snapshot_every=20) for i in (1, 2, 3)]
        for t in tests:
            start = time.time()
            try:
                t(g)
                passed += 1
                print("ok   %s (%.1f s)" % (t.__name__, time.time() - start), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s: %s" % (t.__name__, repr(sys.exc_info()[1])[:300]), flush=True)
                traceback.print_exc()
                for s in g["servers"]:
                    s.dir_keep = True
                    print("  server log kept: %s" % os.path.join(s.dir, "server.log"))
    except Exception:
        failed += 1
        print("FAIL mirror group set-up")
        traceback.print_exc()
    finally:
        for s in g["servers"]:
            try:
                if s.proc.poll() is None:
                    s.stop()  # a sanitizer report or an unclean exit fails the run
                if not getattr(s, "dir_keep", False):
                    shutil.rmtree(s.dir, ignore_errors=True)
            except AssertionError as e:
                failed += 1
                print("FAIL clean stop: %s" % e)
        if g["redis"]:
            g["redis"].cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
