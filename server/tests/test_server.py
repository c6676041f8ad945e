"""End-to-end tests of commy-server: a real server process on loopback,
driven over WSS by the standard-library client in wsclient.py.
usage: test_server.py BUILD_DIR [test-name ...]"""
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import wsclient
from wsclient import WS, Closed, i64

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SERVER = os.path.join(BUILD, "server", "commy-server")
LOCAL_WRITER = os.path.join(BUILD, "server", "local_writer")
HAMMER = os.path.join(BUILD, "server", "session_hammer")
SESSION_MODE = os.path.join(BUILD, "server", "session_mode")

_hash_cache = {}


def hash_key(secret):
    if secret not in _hash_cache:
        _hash_cache[secret] = subprocess.check_output([SERVER, "--hash-key", secret], text=True).strip()
    return _hash_cache[secret]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


KEYS = {
    # key id: (secret, scopes, client id)
    "admin": ("s3cret-admin", ["read", "write", "admin"], "root"),
    "alice": ("s3cret-alice", ["read", "write"], "alice"),
    "bob": ("s3cret-bob", ["read", "write"], "bob"),
    "reader": ("s3cret-reader", ["read"], "reader"),
    "onlyb": ("s3cret-onlyb", ["service:b:read", "service:b:write"], "onlyb"),
}


class Server:
    """A commy-server with a fresh data root, tenants 'acme' and 'other'."""

    def __init__(self, lifetime=3600, limits=None, data_root=None, listen="127.0.0.1"):
        self.dir = data_root or tempfile.mkdtemp(prefix="commy-srv-test-")
        self.port = free_port()
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        if not os.path.exists(self.cert):
            subprocess.check_call(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                   "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj",
                                   "/CN=localhost"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cfg = {
            "listen": {"address": listen, "port": self.port},
            "tls": {"cert": self.cert, "key": self.key},
            "data_root": os.path.join(self.dir, "data"),
            "limits": dict({"max_message_bytes": 65536, "outbound_queue_cap": 256, "ping_interval_s": 5,
                            "stall_timeout_s": 3}, **(limits or {})),
            "tenants": [
                {"name": "acme",
                 "auth": {"mode": "server_managed", "token_lifetime_s": lifetime,
                          "api_keys": [{"id": k, "hash": hash_key(v[0]), "scopes": v[1], "client_id": v[2]}
                                       for k, v in KEYS.items()]},
                 "services": [{"name": "a"}, {"name": "b"}, {"name": "keep", "persistent": True}]},
                {"name": "other",
                 "auth": {"api_keys": [{"id": "eve", "hash": hash_key("s3cret-eve"), "scopes": ["read", "write", "admin"]}]},
                 "services": [{"name": "x"}]},
            ],
        }
        self.config = os.path.join(self.dir, "config.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "server.log"), "a")
        # COMMY_SERVER_WRAPPER="valgrind --error-exitcode=99 --leak-check=full" runs the server under a tool
        wrapper = os.environ.get("COMMY_SERVER_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + [SERVER, "--config", self.config], stdout=self.log, stderr=self.log)
        deadline = time.time() + (60 if wrapper else 10)
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited: see " + self.log.name)
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(60)
        self.log.close()
        text = open(self.log.name, errors="replace").read()
        # sanitizer builds: a report or a non-zero exit fails the test
        problem = [m for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:") if m in text]
        if problem or rc != 0:
            self.dir_keep = True  # keep the log for the reader
            raise AssertionError("server exited with %s%s; see %s" % (rc, " and a sanitizer report" if problem else "",
                                                                    self.log.name))

    def client(self, tenant="acme", key="admin"):
        w = WS(self.port, cafile=self.cert)
        if key:
            secret = "s3cret-" + key
            r = w.request("authenticate", tenant=tenant, api_key="%s.%s" % (key, secret))
            assert r["ok"], r
            w.token = r["result"]["token"]
        return w

    def metrics(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False
        with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % self.port, context=ctx, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.split()
                out[k] = float(v)
        return out

    def cleanup(self):
        try:
            if self.proc.poll() is None:
                self.stop()  # checked: sanitizer reports and the exit status fail the test
        finally:
            if not getattr(self, "dir_keep", False):
                shutil.rmtree(self.dir, ignore_errors=True)


def err(r):
    assert not r["ok"], r
    return r["error"]["code"]


def ok(r):
    assert r["ok"], r
    return r["result"]


# ---------------------------------------------------------------- tests

def test_auth_success_and_failure(s):
    w = s.client(key=None)
    assert err(w.request("list_services")) == "EAUTH"  # before authentication
    assert err(w.request("authenticate", tenant="acme", api_key="alice.wrong")) == "EAUTH"
    assert err(w.request("authenticate", tenant="acme", api_key="nobody.s3cret-alice")) == "EAUTH"
    assert err(w.request("authenticate", tenant="nosuch", api_key="alice.s3cret-alice")) == "EAUTH"
    assert err(w.request("authenticate", tenant="other", api_key="alice.s3cret-alice")) == "EAUTH"
    assert err(w.request("list_services")) == "EAUTH"
    r = ok(w.request("authenticate", tenant="acme", api_key="alice.s3cret-alice"))
    assert len(r["token"]) == 64 and r["client_id"] == "alice" and sorted(r["permissions"]) == ["read", "write"]
    assert r["expires_at"] > time.time() + 3000
    names = [x["name"] for x in ok(w.request("list_services"))["services"]]
    assert names == ["a", "b", "keep"], names
    assert s.metrics()["commy_auth_failures_total"] >= 4
    # tokens are stored hashed: the clear token is nowhere in the store
    db = open(os.path.join(s.dir, "data", "commy-server.db"), "rb").read()
    assert r["token"].encode() not in db and b"s3cret-alice" not in db


def test_malformed_input(s):
    bystander = s.client()
    ok(bystander.request("open_service", service="a", mode="remote"))
    w = s.client()
    cases = [
        (b"not json", "EPROTO"),
        (b"[1,2,3]", "EPROTO"),
        (b'{"v":1,"op":"get"}', "EPROTO"),
        (b'{"v":9,"id":1,"op":"get"}', "EPROTO"),
        (b'{"v":1,"id":2,"op":"explode"}', "EUNKNOWNOP"),
        (b'{"v":1,"id":3,"op":42}', "EINVAL"),
        (b'{"v":1,"id":4,"op":"get","service":7,"var":"x"}', "EINVAL"),
        (b'{"v":1,"id":5,"op":"get","service":"a","var":"bad name!"}', "EINVAL"),
        (b'{"v":1,"id":6,"op":"set","service":"a","var":"x","kind":"box","value":{"t":"i64","v":12}}', "EINVAL"),
        (b'{"v":1,"id":7,"op":"set","service":"a","var":"x","kind":"box","value":{"t":"nope","v":1}}', "EINVAL"),
        (b'{"v":1,"id":8,"op":"set","service":"a","var":"x","kind":"box","value":{"t":"u8","v":256}}', "ERANGE"),
        (b'{"v":1,"id":9,"op":"open_service","service":"a","mode":"sideways"}', "EINVAL"),
        (b'{"v":1,"id":10,"op":"get","service":"a","var":"x","index":"abc"}', "EINVAL"),
        ('{"v":1,"id":11,"op":"get","service":"\u00e9","var":"x"}'.encode(), "EINVAL"),
        (b"\xff\xfe{", "EPROTO"),
        (b"{" * 5000, "EPROTO"),
    ]
    for frame, code in cases:
        w.send_text(frame)
        r = w.recv()
        assert err(r) == code, (frame[:60], r)
    w.send_frame(2, b"\x00\x01binary")
    assert err(w.recv()) == "EPROTO"
    # type mismatch against the stored variable
    ok(w.request("open_service", service="a", mode="remote"))
    ok(w.request("set", service="a", var="n", kind="box", value=i64(1)))
    assert err(w.request("set", service="a", var="n", value={"t": "str", "v": "x"})) == "ETYPE"
    assert err(w.request("get", service="a", var="missing")) == "ENOTFOUND"
    # fragmented frame assembled, then an oversized one closes with 1009
    w.send_frame(1, b'{"v":1,"id":50,', fin=False)
    w.send_frame(0, b'"op":"list_services"}')
    assert w.recv()["id"] == 50
    w.send_text(b'{"v":1,"id":99,"op":"get","pad":"' + b"x" * 70000 + b'"}')
    assert err(w.recv()) == "ETOOBIG"
    try:
        w.recv()
        assert False, "the connection should close"
    except Closed:
        assert w.close_code == 1009, w.close_code
    # the server still serves everyone else
    assert ok(bystander.request("len", service="a", var="n"))["len"] == "1"


def test_permissions_per_op(s):
    admin = s.client()
    ok(admin.request("open_service", service="a", mode="remote"))
    ok(admin.request("set", service="a", var="v", kind="box", value=i64(3)))
    r = s.client(key="reader")
    ok(r.request("open_service", service="a", mode="remote"))
    assert ok(r.request("get", service="a", var="v"))["value"] == i64(3)
    ok(r.request("subscribe", service="a", var="v"))
    for op, extra in [("set", {"value": i64(4)}), ("push", {"value": i64(1)}), ("pop", {}),
                      ("add", {"key": i64(1)}), ("remove", {"key": i64(1)})]:
        assert err(r.request(op, service="a", var="v", **extra)) == "EFORBIDDEN", op
    assert err(r.request("open_service", service="a", mode="local")) == "EFORBIDDEN"
    assert err(r.request("create_service", service="new")) == "EFORBIDDEN"
    assert err(r.request("delete_service", service="b")) == "EFORBIDDEN"
    assert err(r.request("revoke_client", client_id="alice")) == "EFORBIDDEN"
    # a per-service scope: b only
    o = s.client(key="onlyb")
    assert [x["name"] for x in ok(o.request("list_services"))["services"]] == ["b"]
    assert err(o.request("open_service", service="a", mode="remote")) == "EFORBIDDEN"
    ok(o.request("open_service", service="b", mode="remote"))
    ok(o.request("set", service="b", var="w", kind="str", value={"t": "str", "v": "hi"}))
    # admin ops work for admin
    ok(admin.request("create_service", service="fresh"))
    assert err(admin.request("create_service", service="fresh")) == "EEXISTS"
    ok(admin.request("delete_service", service="fresh"))
    assert err(admin.request("delete_service", service="fresh")) == "ENOTFOUND"


def test_cross_tenant_refused(s):
    eve = s.client(tenant="other", key="eve")
    missing = eve.request("open_service", service="nosuch", mode="remote")
    theirs = eve.request("open_service", service="a", mode="remote")  # acme's service
    assert err(missing) == err(theirs) == "ENOTFOUND"
    assert missing["error"]["message"].replace("nosuch", "?") == theirs["error"]["message"].replace("'a'", "'?'")
    assert [x["name"] for x in ok(eve.request("list_services"))["services"]] == ["x"]
    assert err(eve.request("delete_service", service="a")) == "ENOTFOUND"
    ok(eve.request("revoke_client", client_id="alice"))  # names no one in tenant 'other'
    alice = s.client(key="alice")
    ok(alice.request("list_services"))  # alice of acme was not touched


def test_every_container_kind(s):
    w = s.client()
    ok(w.request("open_service", service="a", mode="remote"))
    S = dict(service="a")
    ok(w.request("push", var="vec", kind="vec", value={"t": "f64", "v": 1.5}, **S))
    ok(w.request("push", var="vec", value={"t": "f64", "v": "-inf"}, **S))
    ok(w.request("set", var="vec", index=0, value={"t": "f64", "v": "-0"}, **S))
    assert ok(w.request("get", var="vec", index=0, **S))["value"] == {"t": "f64", "v": "-0"}
    assert err(w.request("get", var="vec", index=5, **S)) == "ERANGE"
    assert ok(w.request("pop", var="vec", **S))["value"] == {"t": "f64", "v": "-inf"}
    assert ok(w.request("len", var="vec", **S)) == {"len": "1", "kind": "vec"}
    ok(w.request("push", var="dq", kind="deque", value={"t": "u64", "v": "18446744073709551615"}, **S))
    ok(w.request("push", var="dq", end="front", value={"t": "u64", "v": "7"}, **S))
    assert ok(w.request("pop", var="dq", end="front", **S))["value"]["v"] == "7"
    assert ok(w.request("pop", var="dq", **S))["value"]["v"] == "18446744073709551615"
    assert err(w.request("pop", var="dq", **S)) == "EEMPTY"
    ok(w.request("set", var="m", kind="map", key={"t": "str", "v": "k"}, value={"t": "bytes", "v": "AAEC"}, **S))
    assert ok(w.request("get", var="m", key={"t": "str", "v": "k"}, **S))["value"] == {"t": "bytes", "v": "AAEC"}
    assert ok(w.request("contains", var="m", key={"t": "str", "v": "k"}, **S))["present"] is True
    ok(w.request("remove", var="m", key={"t": "str", "v": "k"}, **S))
    assert err(w.request("get", var="m", key={"t": "str", "v": "k"}, **S)) == "ENOTFOUND"
    assert ok(w.request("add", var="st", kind="set", key={"t": "i32", "v": -5}, **S))["added"] is True
    assert ok(w.request("add", var="st", key={"t": "i32", "v": -5}, **S))["added"] is False
    assert ok(w.request("contains", var="st", key={"t": "i32", "v": -5}, **S))["present"] is True
    for k in range(10):
        ok(w.request("set", var="om", kind="omap", key=i64(k * 10), value={"t": "bool", "v": k % 2 == 0}, **S))
    r = ok(w.request("range", var="om", **{"from": i64(35)}, limit=3, **S))
    assert [e[0]["v"] for e in r["entries"]] == ["40", "50", "60"] and r["more"] is True
    assert r["entries"][0][1] == {"t": "bool", "v": True}
    for k in [3, 1, 2]:
        ok(w.request("add", var="os", kind="oset", key={"t": "blob[2]", "v": ["AAE=", "AAI=", "AAM="][k - 1]}, **S))
    r = ok(w.request("range", var="os", **S))
    assert r["entries"] == [{"t": "blob[2]", "v": v} for v in ["AAE=", "AAI=", "AAM="]] and r["more"] is False
    assert err(w.request("add", var="os", key={"t": "blob[2]", "v": "AAB="}, **S)) == "EINVAL"  # non-canonical
    ok(w.request("set", var="s", kind="str", value={"t": "str", "v": "h\u00e9llo"}, **S))
    assert ok(w.request("get", var="s", **S))["value"] == {"t": "str", "v": "h\u00e9llo"}
    ok(w.request("set", var="bx", kind="box", value={"t": "blob[3]", "v": "AQID"}, **S))
    assert ok(w.request("get", var="bx", **S))["value"] == {"t": "blob[3]", "v": "AQID"}


def test_remote_set_seen_in_order(s):
    subs = [s.client(key=k) for k in ("alice", "bob")]
    writer = s.client()
    ok(writer.request("open_service", service="a", mode="remote"))
    ok(writer.request("set", service="a", var="ctr", kind="box", value=i64(0)))
    for c in subs:
        ok(c.request("open_service", service="a", mode="remote"))
        ok(c.request("subscribe", service="a", var="ctr"))
    for v in range(1, 101):
        ok(writer.request("set", service="a", var="ctr", value=i64(v)))
    for c in subs:
        seen = []
        while len(seen) < 100:
            p = c.wait_push("changed", 5)
            assert p is not None, "missing pushes after %r" % seen[-3:]
            seen.append(int(p["value"]["v"]))
        assert seen == list(range(1, 101)), seen[:10]


def test_local_write_seen_remotely(s):
    local = s.client(key="alice")
    path = ok(local.request("open_service", service="b", mode="local"))["path"]
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert len(os.path.basename(path)) == 32 + len(".commy")
    remote = s.client(key="bob")
    ok(remote.request("open_service", service="b", mode="remote"))
    ok(remote.request("set", service="b", var="temp", kind="box", value=i64(0)))
    ok(remote.request("subscribe", service="b", var="temp"))
    subprocess.check_call([LOCAL_WRITER, path, "temp"] + [str(v) for v in range(1, 11)])
    seen = []
    while not seen or seen[-1] != 10:
        p = remote.wait_push("changed", 5)
        assert p is not None, "local writes not pushed; saw %r" % seen
        seen.append(int(p["value"]["v"]))
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen


def test_variable_removed_locally_is_reopened(s):
    # the server keeps variables open between requests: one a local client
    # removed must not answer through the old handle
    local = s.client(key="alice")
    path = ok(local.request("open_service", service="b", mode="local"))["path"]
    remote = s.client(key="bob")
    ok(remote.request("open_service", service="b", mode="remote"))
    ok(remote.request("set", service="b", var="gone", kind="box", value=i64(5)))
    assert ok(remote.request("get", service="b", var="gone"))["value"]["v"] == "5"
    subprocess.check_call([LOCAL_WRITER, path, "gone", "--remove"])
    assert err(remote.request("get", service="b", var="gone")) == "ENOTFOUND"
    # a write naming its kind creates it again, as on a variable never seen
    ok(remote.request("push", service="b", var="gone", kind="vec", value=i64(1)))
    ok(remote.request("push", service="b", var="gone", value=i64(2)))
    assert ok(remote.request("len", service="b", var="gone"))["len"] == "2"


def test_local_refused_to_non_local_or_unauthorised(s):
    # the reader lacks write; over loopback only the permission can refuse here
    r = s.client(key="reader")
    assert err(r.request("open_service", service="a", mode="local")) == "EFORBIDDEN"
    o = s.client(key="onlyb")
    assert err(o.request("open_service", service="a", mode="local")) == "EFORBIDDEN"


def test_last_client_deletes_file(s):
    c1, c2 = s.client(key="alice"), s.client(key="bob")
    path = ok(c1.request("open_service", service="a", mode="local"))["path"]
    assert ok(c2.request("open_service", service="a", mode="local"))["path"] == path
    c1.close()
    time.sleep(0.5)
    assert os.path.exists(path), "deleted while a client still had it open"
    ok(c2.request("close_service", service="a"))
    assert not os.path.exists(path)
    # a persistent service keeps its file and data
    c3 = s.client()
    p2 = ok(c3.request("open_service", service="keep", mode="local"))["path"]
    ok(c3.request("set", service="keep", var="k", kind="box", value=i64(77)))
    c3.close()
    time.sleep(0.5)
    assert os.path.exists(p2)
    c4 = s.client()
    ok(c4.request("open_service", service="keep", mode="remote"))
    assert ok(c4.request("get", service="keep", var="k"))["value"] == i64(77)


def test_killed_client_cleaned_up(s):
    # two clients vanish without a close frame (as a killed process's socket
    # does): the file stays while one is left, and goes with the last
    c, c2 = s.client(key="alice"), s.client(key="bob")
    path = ok(c.request("open_service", service="b", mode="local"))["path"]
    assert ok(c2.request("open_service", service="b", mode="local"))["path"] == path
    before = s.metrics()["commy_connections"]
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    deadline = time.time() + 30
    while s.metrics()["commy_connections"] >= before and time.time() < deadline:
        time.sleep(0.1)
    assert s.metrics()["commy_connections"] < before  # the server has seen the first one go
    assert os.path.exists(path), "deleted while a client still had it open"
    c2.sock.shutdown(socket.SHUT_RDWR)
    c2.close()
    deadline = time.time() + 30
    while os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(path)


def test_logout(s):
    w = s.client(key="alice")
    token = w.token
    ok(w.request("logout"))
    assert err(w.request("list_services")) == "EAUTH"
    w2 = s.client(key=None)
    assert err(w2.request("authenticate", tenant="acme", token=token)) == "EAUTH"


def test_refresh(s):
    w = s.client(key="alice")
    old = w.token
    new = ok(w.request("refresh"))["token"]
    assert new != old
    ok(w.request("list_services"))
    w2 = s.client(key=None)
    assert err(w2.request("authenticate", tenant="acme", token=old)) == "EAUTH"
    r = ok(w2.request("authenticate", tenant="acme", token=new))
    assert r["client_id"] == "alice"
    # a refreshed-away token cannot be refreshed again from another connection
    w3 = s.client(key=None)
    assert err(w3.request("authenticate", tenant="acme", token=old)) == "EAUTH"


def test_expiry():
    s = Server(lifetime=2)
    try:
        w = s.client(key="alice")
        token = w.token
        ok(w.request("list_services"))
        assert w.wait_push("expiring", 15) is not None  # lifetime < the notice period
        time.sleep(2.2)
        assert err(w.request("list_services")) == "EEXPIRED"
        w2 = s.client(key=None)
        assert err(w2.request("authenticate", tenant="acme", token=token)) == "EEXPIRED"
    finally:
        s.cleanup()


def test_restart_keeps_tokens():
    s = Server()
    try:
        w = s.client(key="alice")
        token = w.token
        w.close()
        s.stop()
        s.start()
        w2 = s.client(key=None)
        r = ok(w2.request("authenticate", tenant="acme", token=token))
        assert r["client_id"] == "alice"
        ok(w2.request("list_services"))
    finally:
        s.cleanup()


def test_store_syncs_only_revocations():
    """The store runs WAL with synchronous=NORMAL: a login commits without an
    fsync; a revocation (logout, refresh) with one, so that a power loss cannot
    make a token its owner gave up valid again. The fsyncs are counted with
    strace attached to the server."""
    if not shutil.which("strace") or os.environ.get("COMMY_SERVER_WRAPPER"):
        print("  (test_store_syncs_only_revocations skipped: no strace, or the server runs under a wrapper)")
        return
    s = Server()
    try:
        def syncs(fn):
            out = os.path.join(s.dir, "strace.txt")
            st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", out, "-p",
                                   str(s.proc.pid)], stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 20
                while True:  # every thread traced
                    tracers = set()
                    for t in os.listdir("/proc/%d/task" % s.proc.pid):
                        with open("/proc/%d/task/%s/status" % (s.proc.pid, t)) as f:
                            tracers |= {line.split()[1] for line in f if line.startswith("TracerPid:")}
                    if tracers == {str(st.pid)}:
                        break
                    assert time.time() < deadline and st.poll() is None, "strace did not attach"
                    time.sleep(0.02)
                fn()
            finally:
                st.send_signal(signal.SIGINT)
                st.wait(20)
            with open(out) as f:
                return sum(1 for line in f if "sync(" in line)

        clients = []
        assert syncs(lambda: clients.extend(s.client(key="alice") for _ in range(10))) == 0
        assert syncs(lambda: ok(clients[0].request("refresh"))) >= 1
        assert syncs(lambda: ok(clients[1].request("logout"))) >= 1
        for w in clients:
            w.close()
    finally:
        s.cleanup()


def test_revocation_rotates_file(s):
    alice, bob, admin = s.client(key="alice"), s.client(key="bob"), s.client()
    path = ok(alice.request("open_service", service="a", mode="local"))["path"]
    assert ok(bob.request("open_service", service="a", mode="local"))["path"] == path
    ok(bob.request("set", service="a", var="data", kind="box", value=i64(4242)))
    ok(bob.request("push", service="a", var="list", kind="vec", value={"t": "str", "v": "one"}))
    ok(bob.request("subscribe", service="a", var="data"))
    r = ok(admin.request("revoke_client", client_id="alice"))
    assert r["rotated"] == 1 and r["connections"] == 1
    p = alice.wait_push("closing", 5)
    assert p is not None and p["reason"] == "revoked"
    rot = bob.wait_push("rotated", 5)
    assert rot is not None and rot["path"] != path and os.path.exists(rot["path"])
    assert not os.path.exists(path)
    # bob keeps working, on the copied data, and his subscription follows
    assert ok(bob.request("get", service="a", var="data"))["value"] == i64(4242)
    assert ok(bob.request("get", service="a", var="list", index=0))["value"] == {"t": "str", "v": "one"}
    ok(bob.request("set", service="a", var="data", value=i64(1)))
    assert bob.wait_push("changed", 5)["value"] == i64(1)
    subprocess.check_call([LOCAL_WRITER, rot["path"], "data", "2"])
    assert bob.wait_push("changed", 5)["value"] == i64(2)
    # alice's token is dead
    w = s.client(key=None)
    assert err(w.request("authenticate", tenant="acme", token=alice.token)) == "EAUTH"


def test_rotation_loses_no_write(s):
    """Two local-mode sessions write as fast as they can (box fetch_add, map
    put, vec push) while the admin revokes a third local client four times:
    each revocation rotates the file under the writers. No write may fail,
    and the last file holds exactly what succeeded: the count equals the
    successful fetch_adds, every key is there, every push once."""
    admin = s.client()
    ok(admin.request("open_service", service="a", mode="remote"))  # keeps the service alive to the end
    url = "wss://localhost:%d" % s.port  # the test certificate names localhost
    stop = os.path.join(s.dir, "stop")
    hammers = [subprocess.Popen([HAMMER, url, s.cert, "acme", "%s.s3cret-%s" % (k, k), "a", str(i + 1), stop],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i, k in enumerate(("bob", "admin"))]
    time.sleep(0.5)
    rotations = 0
    for _ in range(4):
        victim = s.client(key="alice")
        ok(victim.request("open_service", service="a", mode="local"))
        time.sleep(0.3)
        rotations += ok(admin.request("revoke_client", client_id="alice"))["rotated"]
        victim.close()
    assert rotations == 4, rotations
    open(stop, "w").close()
    rounds = []
    for i, h in enumerate(hammers):
        out, errs = h.communicate(timeout=60)
        assert h.returncode == 0, (out, errs)
        n = int(out.split()[1])
        assert n > 0, out
        rounds.append("%d:%d" % (i + 1, n))
    v = subprocess.run([HAMMER, url, s.cert, "acme", "bob.s3cret-bob", "a", "--verify"] + rounds,
                       capture_output=True, text=True, timeout=120)
    assert v.returncode == 0 and "ok" in v.stdout, (v.stdout, v.stderr)
    total = sum(int(r.split(":")[1]) for r in rounds)
    assert ok(admin.request("get", service="a", var="count"))["value"] == i64(total)


def _stalled_client_cut(limits, n, clue):
    s = Server(limits=limits)
    try:
        stalled, healthy, writer = s.client(key="alice"), s.client(key="bob"), s.client()
        for c in (stalled, healthy, writer):
            ok(c.request("open_service", service="a", mode="remote"))
        ok(writer.request("set", service="a", var="blob", kind="str", value={"t": "str", "v": ""}))
        for c in (stalled, healthy):
            ok(c.request("subscribe", service="a", var="blob"))
        got = []

        def drain():
            while len(got) < n:
                p = healthy.wait_push("changed", 10)
                if p is None:
                    return
                got.append(p["value"]["v"])
        t = threading.Thread(target=drain)
        t.start()
        # the stalled client never reads: its socket buffers fill, then its queue
        for i in range(n):
            ok(writer.request("set", service="a", var="blob", value={"t": "str", "v": "%05d" % i + "x" * 30000}))
        t.join(30)
        assert [g[:5] for g in got] == ["%05d" % i for i in range(n)], len(got)
        deadline = time.time() + 6
        while s.metrics()["commy_slow_consumers_cut_total"] < 1 and time.time() < deadline:
            time.sleep(0.2)
        assert s.metrics()["commy_slow_consumers_cut_total"] >= 1
        assert s.metrics()["commy_connections"] == 2
        log = open(s.log.name, errors="replace").read()
        assert clue in log, (clue, [ln for ln in log.splitlines() if "slow_consumer" in ln])
    finally:
        s.cleanup()


def test_stalled_client_cut():
    # the stall timeout cuts it: the queue never reaches the cap
    _stalled_client_cut({"outbound_queue_cap": 100000, "stall_timeout_s": 2}, 200, "frames not drained for 2 s")


def test_queue_cap_cuts_client():
    # the queue cap cuts it, long before the stall timeout could
    _stalled_client_cut({"outbound_queue_cap": 64, "stall_timeout_s": 3600}, 200, "outbound queue passed 64 frames")


def test_ping_drops_silent_client():
    s = Server(limits={"ping_interval_s": 1})
    try:
        silent, live = s.client(key="alice"), s.client(key="bob")
        # live answers pings while it waits (wsclient answers them in recv)
        # (the cut comes 2-3 s after the last frame; the wait allows for a
        # loaded machine, and ends as soon as the server has cut it)
        deadline = time.time() + 30
        while s.metrics()["commy_connections"] > 1 and time.time() < deadline:
            assert live.wait_push("never", 1) is None
        ok(live.request("list_services"))
        # silent never read a byte, so it never answered a ping: it was dropped
        assert s.metrics()["commy_connections"] == 1
        try:
            while True:
                silent.recv()
        except (Closed, OSError):
            pass
    finally:
        s.cleanup()


def test_max_connections():
    s = Server(limits={"max_connections": 2})
    try:
        a, b = s.client(), s.client()
        refused = False
        try:
            c = WS(s.port, cafile=s.cert)
            c.request("list_services")
        except (Closed, OSError):
            refused = True
        assert refused, "a third connection was served"
        ok(a.request("list_services"))
        b.close()
        deadline = time.time() + 30  # until the server has seen b go
        while s.metrics()["commy_connections"] > 1 and time.time() < deadline:
            time.sleep(0.05)
        ok(s.client().request("list_services"))
    finally:
        s.cleanup()


def _openssl(*args):
    subprocess.check_call(["openssl"] + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _make_ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             os.path.join(d, name + "-ca.key"), "-out", os.path.join(d, name + "-ca.pem"), "-days", "2",
             "-subj", "/CN=" + name + " CA")
    key, csr, crt = (os.path.join(d, name + "-client" + x) for x in (".key", ".csr", ".pem"))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=" + name + " client")
    _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, name + "-ca.pem"), "-CAkey",
             os.path.join(d, name + "-ca.key"), "-CAcreateserial", "-out", crt, "-days", "2")
    return crt, key


def test_mutual_tls():
    d = tempfile.mkdtemp(prefix="commy-srv-mtls-")
    try:
        good = _make_ca(d, "good")
        bad = _make_ca(d, "bad")
        s = Server.__new__(Server)
        Server.__init__(s)  # makes the config; restart it with a client CA
        s.stop()
        cfg = json.load(open(s.config))
        cfg["tls"]["client_ca"] = os.path.join(d, "good-ca.pem")
        json.dump(cfg, open(s.config, "w"))
        s.start()
        try:
            w = WS(s.port, cafile=s.cert, certfile=good[0], keyfile=good[1])
            ok(w.request("authenticate", tenant="acme", api_key="alice.s3cret-alice"))
            for cert in (None, bad):
                refused = False
                try:
                    w = WS(s.port, cafile=s.cert, certfile=cert and cert[0], keyfile=cert and cert[1])
                    w.request("list_services")
                except (Closed, OSError, ssl.SSLError):
                    refused = True
                assert refused, "served a client with certificate %r" % (cert,)
        finally:
            s.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _non_loopback_address():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.254", 9))  # no packet is sent: this only picks the outgoing interface
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_local_refused_to_non_local_client():
    addr = _non_loopback_address()
    if addr is None:
        print("  (no non-loopback address on this machine: checked the permission rule only)")
        return
    s = Server(listen="0.0.0.0")
    try:
        w = WS(s.port, cafile=s.cert, host=addr)
        ok(w.request("authenticate", tenant="acme", api_key="alice.s3cret-alice"))
        r = w.request("open_service", service="a", mode="local")
        assert err(r) == "EPERM" and "loopback" in r["error"]["message"]
        assert "path" not in json.dumps(r)
        ok(w.request("open_service", service="a", mode="remote"))  # remote is fine from anywhere
        local = s.client(key="alice")
        assert os.path.isabs(ok(local.request("open_service", service="a", mode="local"))["path"])
    finally:
        s.cleanup()


def test_local_refused_to_another_user():
    """Local mode needs the server's user at the other end of the loopback
    connection (the kernel tells, sock_diag): a client running as nobody is
    refused it, and auto mode gives it remote; the same client as root (the
    server's user here) gets the path."""
    if os.geteuid() != 0:
        print("  (skipped: needs root to run a client as another user)")
        return
    for listen in ("127.0.0.1", "::"):  # "::": IPv4 clients arrive as ::ffff:127.0.0.1
        _another_user(Server(listen=listen))


def _another_user(s):
    d = tempfile.mkdtemp(prefix="commy-peeruid-")
    try:
        os.chmod(d, 0o755)
        ca = os.path.join(d, "cert.pem")  # the server's directory is 0700: nobody reads a copy
        shutil.copyfile(s.cert, ca)
        os.chmod(ca, 0o644)
        # the build directory may sit under a 0700 one (a mktemp -d clone):
        # nobody runs a copy (session_mode links commy statically)
        prog = os.path.join(d, "session_mode")
        shutil.copyfile(SESSION_MODE, prog)
        os.chmod(prog, 0o755)
        url = "wss://localhost:%d" % s.port  # the test certificate names localhost

        def run(mode, as_nobody):
            def drop():
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            r = subprocess.run([prog, url, ca, "acme", "alice.s3cret-alice", "a", mode],
                               capture_output=True, text=True, timeout=60, preexec_fn=drop if as_nobody else None)
            return r.stdout.strip() + r.stderr.strip()

        out = run("local", True)
        assert out.startswith("error") and "another user" in out and "uid 65534" in out, out
        assert run("auto", True) == "remote"
        assert run("remote", True) == "remote"
        assert run("local", False) == "local"
        assert run("auto", False) == "local"
        log = open(s.log.name, errors="replace").read()
        assert "another user" in log, "the refusal is logged"
    finally:
        s.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_many_clients_every_update_delivered():
    n, writes = 100, 5
    # clients made early wait, unread, while the rest authenticate: keep pings out of it
    s = Server(limits={"ping_interval_s": 120})
    try:
        clients = [s.client(key=("alice", "bob")[i % 2]) for i in range(n)]
        ok(clients[0].request("open_service", service="a", mode="remote"))
        ok(clients[0].request("set", service="a", var="feed", kind="str", value={"t": "str", "v": "start"}))
        for c in clients:
            ok(c.request("open_service", service="a", mode="remote"))
            ok(c.request("subscribe", service="a", var="feed"))
        got = {i: [] for i in range(n)}
        errors = []

        def run(i):
            c = clients[i]
            try:
                for k in range(writes):
                    ok(c.request("set", service="a", var="feed", value={"t": "str", "v": "%d-%d" % (i, k)}))
                while len(got[i]) < n * writes:
                    p = c.wait_push("changed", 20)
                    if p is None:
                        break
                    got[i].append((p["version"], p["value"]["v"]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:3]
        want = sorted("%d-%d" % (i, k) for i in range(n) for k in range(writes))
        for i in range(n):
            assert sorted(v for _, v in got[i]) == want, (i, len(got[i]))
            # one order for everyone: versions only go up
            versions = [v for v, _ in got[i]]
            assert versions == sorted(versions)
        # and it is the same order at every subscriber
        assert all([v for _, v in got[i]] == [v for _, v in got[0]] for i in range(n))
    finally:
        s.cleanup()


def test_shutdown_says_closing():
    s = Server()
    try:
        w = s.client()
        s.stop()
        p = w.wait_push("closing", 5)
        assert p is not None and p["reason"] == "shutdown"
    finally:
        s.cleanup()


def test_log_lines_are_json():
    # issue 6: JSON log lines for connections, auth events and errors
    s = Server()
    try:
        c = s.client(key="alice")
        w = s.client(key=None)
        assert err(w.request("authenticate", tenant="acme", api_key="alice.wrong")) == "EAUTH"
        ok(c.request("open_service", service="a", mode="remote"))
        c.close()
        w.close()
        s.stop()  # flushes the log: every line is written
        lines = [ln for ln in open(s.log.name, errors="replace").read().splitlines() if ln.strip()]
        recs = []
        for ln in lines:
            try:
                recs.append(json.loads(ln))
            except ValueError:
                raise AssertionError("a log line that is not JSON: %r" % ln[:200])
        assert all(isinstance(r, dict) and {"ts", "level", "event", "msg"} <= set(r) for r in recs), recs[:3]
        events = [r["event"] for r in recs]
        for e in ("listening", "connect", "auth_success", "auth_failure", "service_open", "disconnect"):
            assert e in events, (e, events)
        assert any(r["level"] in ("warn", "error") and r["event"] == "auth_failure" for r in recs), recs
    finally:
        s.cleanup()


def test_metrics(s):
    w = s.client()
    ok(w.request("open_service", service="a", mode="remote"))
    m = s.metrics()
    for k in ("commy_connections", "commy_messages_received_total", "commy_bytes_sent_total",
              "commy_auth_failures_total", "commy_services_open", "commy_outbound_queue_frames"):
        assert k in m, k
    assert m["commy_connections"] >= 1 and m["commy_services_open"] >= 1 and m["commy_messages_received_total"] >= 2


def test_metrics_count_exactly():
    """Each counter moves by exactly what the clients did: messages and
    payload bytes each way, logins that passed and failed, pushes, and the
    outbound queue gauges while a subscriber does not read."""
    s = Server(limits={"ping_interval_s": 3600, "stall_timeout_s": 3600, "outbound_queue_cap": 100000})
    try:
        w, sub = s.client(), s.client(key="bob")
        ok(w.request("open_service", service="a", mode="remote"))
        ok(sub.request("open_service", service="a", mode="remote"))
        ok(w.request("set", service="a", var="mx", kind="box", value=i64(0)))
        ok(w.request("set", service="a", var="blob", kind="str", value={"t": "str", "v": ""}))
        ok(sub.request("subscribe", service="a", var="mx"))
        ok(sub.request("subscribe", service="a", var="blob"))
        m0 = s.metrics()
        sent = got = 0
        for i in range(10):
            rid = w.next_id
            w.next_id += 1
            text = json.dumps({"v": 1, "id": rid, "op": "set", "service": "a", "var": "mx", "value": i64(i + 1)})
            w.send_text(text)
            sent += len(text.encode())
            op, body = w.recv_frame()
            assert json.loads(body)["id"] == rid and json.loads(body)["ok"], body
            got += len(body)
        for i in range(10):
            op, body = sub.recv_frame()
            assert json.loads(body)["push"] == "changed", body
            got += len(body)
        m1 = s.metrics()
        d = lambda k: m1[k] - m0[k]
        assert d("commy_messages_received_total") == 10, (m0, m1)
        assert d("commy_bytes_received_total") == sent, (sent, m0, m1)
        assert d("commy_messages_sent_total") == 20, (m0, m1)  # 10 replies, 10 pushes
        assert d("commy_bytes_sent_total") == got, (got, m0, m1)
        assert d("commy_pushes_total") == 10, (m0, m1)
        assert d("commy_auth_successes_total") == 0 and d("commy_auth_failures_total") == 0
        assert m1["commy_outbound_queue_frames"] == 0 and m1["commy_outbound_queue_frames_max"] == 0, m1
        # a failed and a good login
        bad = WS(s.port, cafile=s.cert)
        assert err(bad.request("authenticate", tenant="acme", api_key="admin.wrong")) == "EAUTH"
        s.client(key="alice")
        m2 = s.metrics()
        assert m2["commy_auth_failures_total"] - m1["commy_auth_failures_total"] == 1, (m1, m2)
        assert m2["commy_auth_successes_total"] - m1["commy_auth_successes_total"] == 1, (m1, m2)
        # the subscriber stops reading: once its socket buffers are full the
        # pushes of a 30 KB string pile up in its queue, and only there
        deadline = time.time() + 30
        m3 = s.metrics()
        while m3["commy_outbound_queue_frames"] == 0 and time.time() < deadline:
            for i in range(20):
                ok(w.request("set", service="a", var="blob", value={"t": "str", "v": "%05d" % i + "x" * 30000}))
            m3 = s.metrics()
        assert m3["commy_outbound_queue_frames"] > 0, m3
        assert m3["commy_outbound_queue_frames_max"] == m3["commy_outbound_queue_frames"], m3  # one queue
        # it reads again: the queue drains to nothing
        sub.sock.settimeout(3)
        try:
            while True:
                sub.recv_frame()
        except (socket.timeout, TimeoutError):
            pass
        m4 = s.metrics()
        assert m4["commy_outbound_queue_frames"] == 0 and m4["commy_outbound_queue_frames_max"] == 0, m4
    finally:
        s.cleanup()


def test_bad_config_refused():
    d = tempfile.mkdtemp(prefix="commy-srv-cfg-")
    try:
        cases = [
            ({"tenants": []}, "data_root"),
            ({"data_root": d, "tenants": []}, "tenants"),
            ({"data_root": d, "limits": {"ping_interval_s": 0}, "tenants": [{}]}, "limits.ping_interval_s"),
            ({"data_root": d, "tls": {"cert": "/nonexistent", "key": "/x"}, "tenants": [{}]}, "tls.cert"),
            # WSS only: no certificate is refused unless --insecure-dev asks for plain ws
            ({"data_root": d, "tenants": [{"name": "t", "auth": {"api_keys": []}}]},
             "tls.cert and tls.key are required (or --insecure-dev)"),
            ({"data_root": d, "tenants": [{"name": "t", "auth": {"api_keys": [{"id": "k", "hash": hash_key("x"),
                                                                               "scopes": ["root"]}]}}]},
             "tenants[0].auth.api_keys[0].scopes"),
            ({"data_root": d, "tenants": [{"name": "t", "auth": {"mode": "weird"}}]}, "tenants[0].auth.mode"),
            # a host name: lws would log it and listen nowhere
            ({"data_root": d, "listen": {"address": "localhost"}, "tenants": [{}]}, "listen.address 'localhost'"),
        ]
        for cfg, field in cases:
            p = os.path.join(d, "c.json")
            with open(p, "w") as f:
                json.dump(cfg, f)
            r = subprocess.run([SERVER, "--config", p], capture_output=True, text=True, timeout=10)
            assert r.returncode != 0 and field in r.stderr, (field, r.stderr)
        with open(p, "w") as f:
            f.write("{not json")
        r = subprocess.run([SERVER, "--config", p], capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "not valid JSON" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_demo_mode():
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="commy-srv-demo-")
    env["TMPDIR"] = tmp
    port = free_port()
    p = subprocess.Popen([SERVER, "--demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=env, text=True)
    try:
        info = json.loads(p.stdout.readline())
        w = WS(port, cafile=info["cert"])
        assert ok(w.request("authenticate", tenant="demo", api_key=info["api_key"]))["client_id"] == "demo"
        path = ok(w.request("open_service", service="demo", mode="local"))["path"]
        assert path.startswith(info["data_root"])
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def test_insecure_dev_plain_ws():
    tmp = tempfile.mkdtemp(prefix="commy-srv-demo-")
    port = free_port()
    env = dict(os.environ, TMPDIR=tmp)
    p = subprocess.Popen([SERVER, "--demo", "--insecure-dev", "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    try:
        info = json.loads(p.stdout.readline())
        assert info["url"].startswith("ws://")
        w = WS(port, tls=False)
        assert ok(w.request("authenticate", tenant="demo", api_key=info["api_key"]))
    finally:
        p.terminate()
        p.wait(10)
        assert "insecure" in p.stderr.read()
        shutil.rmtree(tmp, ignore_errors=True)


def _masked(opcode, payload):
    """A client frame's header and masked payload, as two byte strings."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return head + mask, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_records_in_one_segment():
    # pings off: a pong would be new bytes on the socket, and would hide a
    # record left unserved in the buffer
    s = Server(limits={"ping_interval_s": 3600})
    try:
        _records_in_one_segment(s)
    finally:
        s.cleanup()


def _records_in_one_segment(s):
    """The server reads TLS records ahead: one read() takes every record the
    socket holds, and those after the first wait in OpenSSL's buffer where
    poll() cannot see them. Corked, so they reach the server as one segment:
    five requests (a record each), then one whose frame header and payload
    are separate records, then a close frame. Every request is answered and
    the close is echoed, with no further byte from the client."""
    r = s.client(key="bob")  # holds the service open past w's close
    ok(r.request("open_service", service="a", mode="remote"))
    w = s.client(key="alice")
    ok(w.request("open_service", service="a", mode="remote"))
    w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    ids = []
    for i in range(6):
        rid = w.next_id
        w.next_id += 1
        ids.append(rid)
        body = json.dumps({"v": 1, "id": rid, "op": "set", "service": "a", "var": "ra%d" % i, "kind": "box",
                           "value": i64(100 + i)}).encode()
        head, payload = _masked(1, body)
        if i < 5:
            w.sock.sendall(head + payload)
        else:  # the header alone in one record, the payload in the next
            w.sock.sendall(head)
            w.sock.sendall(payload)
    head, payload = _masked(8, struct.pack(">H", 1000) + b"bye")
    w.sock.sendall(head + payload)
    w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    w.sock.settimeout(15)
    for rid in ids:
        ok(w.wait_reply(rid))
    try:
        w.recv_frame()
        assert False, "no close frame after the replies"
    except Closed:
        assert w.close_code == 1000, w.close_code
    for i in range(6):
        assert ok(r.request("get", service="a", var="ra%d" % i))["value"] == i64(100 + i)
    # a good record and then bytes that are no TLS record, in one segment:
    # the request is answered, then the connection is dropped; the server
    # goes on serving the others
    g = s.client(key="alice")
    ok(g.request("open_service", service="a", mode="remote"))
    g.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    rid = g.next_id
    g.next_id += 1
    head, payload = _masked(1, json.dumps({"v": 1, "id": rid, "op": "set", "service": "a", "var": "ra_last",
                                           "kind": "box", "value": i64(7)}).encode())
    g.sock.sendall(head + payload)
    raw = socket.socket(fileno=os.dup(g.sock.fileno()))
    raw.sendall(b"\x17\x03\x03\x00\x20" + b"not a record" * 4)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    raw.close()
    g.sock.settimeout(15)
    ok(g.wait_reply(rid))
    try:
        while True:
            g.recv_frame()
    except (Closed, ssl.SSLError, ConnectionError):
        pass
    assert ok(r.request("get", service="a", var="ra_last"))["value"] == i64(7)


# ---------------------------------------------------------------- runner

SHARED = [test_auth_success_and_failure, test_malformed_input, test_permissions_per_op, test_cross_tenant_refused,
          test_every_container_kind, test_remote_set_seen_in_order, test_local_write_seen_remotely,
          test_variable_removed_locally_is_reopened,
          test_local_refused_to_non_local_or_unauthorised, test_last_client_deletes_file,
          test_killed_client_cleaned_up, test_logout, test_refresh, test_revocation_rotates_file, test_rotation_loses_no_write, test_metrics]
OWN = [test_expiry, test_restart_keeps_tokens, test_stalled_client_cut, test_queue_cap_cuts_client, test_ping_drops_silent_client,
       test_shutdown_says_closing, test_max_connections, test_mutual_tls, test_local_refused_to_non_local_client, test_local_refused_to_another_user,
       test_many_clients_every_update_delivered, test_bad_config_refused, test_demo_mode,
       test_insecure_dev_plain_ws, test_store_syncs_only_revocations, test_log_lines_are_json,
       test_records_in_one_segment, test_metrics_count_exactly]


def main():
    only = set(sys.argv[2:])
    passed = failed = 0
    import test_auth  # the authentication suite (server/tests/test_auth.py); imported here, it can import us
    for t in SHARED + OWN + test_auth.TESTS:
        if only and t.__name__ not in only:
            continue
        start = time.time()
        s = None
        try:
            if t in SHARED:
                s = Server()
                t(s)
                s.stop()  # a sanitizer report or an unclean exit fails the test
            else:
                t()
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.time() - start), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s: %s" % (t.__name__, repr(sys.exc_info()[1])[:300]), flush=True)
            traceback.print_exc()
            if s:
                print("  server log kept: %s" % os.path.join(s.dir, "server.log"))
                s.dir_keep = True
        finally:
            if s:
                try:
                    s.cleanup()
                except AssertionError:
                    pass  # already counted
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
