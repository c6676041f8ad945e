"""End-to-end tests of commy-server's authentication: the three tenant modes
(the TenantManaged callback is a small HTTPS endpoint run here), JWT (HS256,
RS256), lockouts and the audit log. Run by test_server.py, which appends
TESTS to its own list; each test starts its own server."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import test_server as ts
from test_server import err, ok
from wsclient import WS

_ART = None  # certificates and keys shared by the tests of one run


def _openssl(*args, **kw):
    return subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          **kw).stdout


def artifacts():
    """A CA, a callback server certificate for 127.0.0.1, a client certificate
    for the callback's mTLS, and two RSA key pairs for RS256."""
    global _ART
    if _ART:
        return _ART
    d = tempfile.mkdtemp(prefix="commy-auth-art-")
    p = lambda n: os.path.join(d, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=test CA")
    for name, ext in (("cb", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", None)):
        _openssl("req", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/CN=commy " + name)
        extra = []
        if ext:
            with open(p(name + ".ext"), "w") as f:
                f.write(ext + "\n")
            extra = ["-extfile", p(name + ".ext")]
        _openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
                 "-out", p(name + ".pem"), "-days", "2", *extra)
    for name in ("rsa", "rsa-wrong"):
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p(name + ".key"))
        _openssl("pkey", "-in", p(name + ".key"), "-pubout", "-out", p(name + ".pub"))
    _ART = p
    return p


# ---------------------------------------------------------------- JWTs

HS_SECRET = b"k3y-for-hs256-that-is-long-enough-0123456789"
AUD, ISS = "commy-test", "test-idp"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_hs256(claims, secret=HS_SECRET, header=None):
    si = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64u(json.dumps(claims).encode())
    return si + "." + b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())


def jwt_rs256(claims, keyfile):
    si = b64u(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64u(json.dumps(claims).encode())
    return si + "." + b64u(_openssl("dgst", "-sha256", "-sign", keyfile, input=si.encode()))


def claims(sub="jwtuser", **kw):
    c = {"sub": sub, "aud": AUD, "iss": ISS, "exp": int(time.time()) + 300, "scope": "read write openid"}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


# ---------------------------------------------------------------- the tenant's callback

class Callback:
    """An HTTPS endpoint answering auth callbacks by what the credential says:
    'deny', 'slow', 'garbage', 'wrongtype', 'big', 'http500'; anything else is
    allowed with scopes read+admin for the client named before the first dot."""

    def __init__(self, require_client_cert=False):
        art = artifacts()
        self.requests = []
        self.gate = threading.Event()  # 'block' credentials wait for it
        self.arrived = threading.Semaphore(0)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                cert = self.connection.getpeercert()
                body["_client_cert"] = dict(x[0] for x in cert["subject"])["commonName"] if cert else None
                outer.requests.append(body)
                c = body["credential"].split(".")[0]  # a JWT's first part is its fixed header
                status, answer = 200, None
                if "block" in c:
                    outer.arrived.release()
                    outer.gate.wait(15)
                if "deny" in c:
                    answer = {"allow": False, "reason": "test says no\x07"}
                elif "slow" in c:
                    time.sleep(1.5)
                    answer = {"allow": True, "client_id": "slow", "scopes": ["read"]}
                elif "garbage" in c:
                    answer = b"this is {not json"
                elif "wrongtype" in c:
                    answer = {"allow": "yes", "client_id": "x", "scopes": ["read"]}
                elif "badscope" in c:
                    answer = {"allow": True, "client_id": "x", "scopes": ["root"]}
                elif "big" in c:
                    answer = {"allow": True, "client_id": "x", "scopes": ["read"], "pad": "p" * 20000}
                elif "http500" in c:
                    status, answer = 500, {"allow": True, "client_id": "x", "scopes": ["read"]}
                else:
                    who = body.get("client_id") or c
                    answer = {"allow": True, "client_id": who, "scopes": ["read", "admin"], "lifetime_s": 600}
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # commy-server hangs up on slow and oversized answers, as it should

        self.httpd = Quiet(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(art("cb.pem"), art("cb.key"))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(art("ca.pem"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/auth" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- a server with auth tenants

KEYS = {"alice": ("s3cret-alice", ["read", "write"]), "bob": ("s3cret-bob", ["read", "write"]),
        "admin": ("s3cret-admin", ["read", "write", "admin"])}


def api_keys(names):
    return [{"id": k, "hash": ts.hash_key(KEYS[k][0]), "scopes": KEYS[k][1]} for k in names]


class AuthServer(ts.Server):
    """A commy-server whose tenants are given; the rest as test_server.Server."""

    def __init__(self, tenants):
        self.dir = tempfile.mkdtemp(prefix="commy-auth-test-")
        self.port = ts.free_port()
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=localhost")
        for t in tenants:
            t.setdefault("services", [{"name": "a"}])
        cfg = {"listen": {"address": "127.0.0.1", "port": self.port}, "tls": {"cert": self.cert, "key": self.key},
               "data_root": os.path.join(self.dir, "data"), "tenants": tenants}
        self.config = os.path.join(self.dir, "config.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.start()

    def ws(self):
        return WS(self.port, cafile=self.cert)

    def auth(self, tenant, **cred):
        return self.ws().request("authenticate", tenant=tenant, **cred)

    def audit(self):
        with open(os.path.join(self.dir, "data", "audit.log")) as f:
            return [json.loads(line) for line in f]

    def log_text(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()


def run_with(tenants, body):
    s = AuthServer(tenants)
    try:
        body(s)
        s.stop()  # a sanitizer report or an unclean exit fails the test
    except Exception:
        s.dir_keep = True
        print("  server log kept: %s" % s.log.name)
        raise
    finally:
        s.cleanup()


def no_secrets_in(path, secrets):
    with open(path, "rb") as f:
        data = f.read()
    for sec in secrets:
        assert sec.encode() not in data, "a secret reached %s: %s..." % (path, sec[:12])


# ---------------------------------------------------------------- tests

def test_auth_tenant_managed():
    art = artifacts()
    cb, mcb = Callback(), Callback(require_client_cert=True)
    try:
        tm = {"mode": "tenant_managed", "callback": {"url": cb.url, "timeout_ms": 500, "ca_file": art("ca.pem")}}
        tls = {"mode": "tenant_managed", "callback": {"url": mcb.url, "timeout_ms": 2000, "ca_file": art("ca.pem"),
                                                     "client_cert": art("client.pem"),
                                                     "client_key": art("client.key")}}
        nocert = {"mode": "tenant_managed", "callback": {"url": mcb.url, "timeout_ms": 2000, "ca_file": art("ca.pem")}}
        notrust = {"mode": "tenant_managed", "callback": {"url": cb.url, "timeout_ms": 2000}}

        def body(s):
            w = s.ws()
            r = ok(w.request("authenticate", tenant="tm", api_key="carol.anything-the-tenant-knows"))
            assert r["client_id"] == "carol" and sorted(r["permissions"]) == ["admin", "read"], r
            assert r["expires_at"] <= time.time() + 601  # the callback's lifetime_s, under the tenant's 3600
            # the grant's end holds: refresh gives a new token, not a longer session
            r2 = ok(w.request("refresh"))
            assert r2["token"] != r["token"] and r2["expires_at"] == r["expires_at"], (r, r2)
            sent = cb.requests[-1]
            assert sent["tenant"] == "tm" and sent["method"] == "api_key" and sent["peer"] == "127.0.0.1"
            assert sent["credential"] == "carol.anything-the-tenant-knows" and sent["_client_cert"] is None
            # a JWT is forwarded as it is: the tenant verifies it
            r = ok(s.auth("tm", jwt="dave.opaque-to-the-server.sig"))
            assert r["client_id"] == "dave" and cb.requests[-1]["method"] == "jwt"
            failures = [("deny", "refused it"), ("slow", "no usable answer"), ("garbage", "no usable answer"),
                        ("wrongtype", "no usable answer"), ("badscope", "no usable answer"),
                        ("big", "no usable answer"), ("http500", "no usable answer")]
            for word, msg in failures:
                r = s.auth("tm", api_key="erin%s.x-%s" % (word, word))
                assert err(r) == "EAUTH" and msg in r["error"]["message"], (word, r)
            log = s.log_text()
            for clue in ("test says no?", "did not answer within 500 ms", "is not JSON", "\\\"allow\\\": true or false",
                         "scope 'root' is not one", "larger than 16384 bytes", "answered HTTP 500"):
                assert clue in log, clue
            # the server kept serving while the slow callback was pending, and still does
            ok(s.auth("tm", api_key="frank.x"))
            # the client certificate is presented when configured, and needed by that endpoint
            r = ok(s.auth("tls", api_key="gina.x"))
            assert r["client_id"] == "gina" and mcb.requests[-1]["_client_cert"] == "commy client"
            assert err(s.auth("nocert", api_key="hank.x")) == "EAUTH"
            # the callback's certificate is checked: without its CA the call fails
            assert err(s.auth("notrust", api_key="ivan.x")) == "EAUTH"
            events = [(a["event"], a.get("tenant")) for a in s.audit()]
            assert ("auth_success", "tls") in events and ("auth_failure", "nocert") in events
            no_secrets_in(os.path.join(s.dir, "data", "audit.log"), ["anything-the-tenant-knows", "opaque-to-the"])

        run_with([{"name": "tm", "auth": tm}, {"name": "tls", "auth": tls}, {"name": "nocert", "auth": nocert},
                  {"name": "notrust", "auth": notrust}], body)
    finally:
        cb.close()
        mcb.close()


def test_auth_callback_off_loop():
    """While a tenant's callback is pending, the server serves everyone else;
    the waiting connection's later frames are answered after it, in order."""
    art = artifacts()
    cb = Callback()
    try:
        tm = {"mode": "tenant_managed", "callback": {"url": cb.url, "timeout_ms": 20000, "ca_file": art("ca.pem")}}

        def body(s):
            a = s.ws()
            a.send_text(json.dumps({"v": 1, "id": 1, "op": "authenticate", "tenant": "tm", "api_key": "block1.x"}))
            a.send_text(json.dumps({"v": 1, "id": 2, "op": "list_services"}))
            gone = s.ws()  # leaves while its check is pending
            gone.send_text(json.dumps({"v": 1, "id": 1, "op": "authenticate", "tenant": "tm", "api_key": "block2.x"}))
            try:
                assert cb.arrived.acquire(timeout=10) and cb.arrived.acquire(timeout=10)  # both are in the callback
                gone.close()
                # a loop blocked in the callback would not answer this before the gate opens (never)
                b = s.ws()
                r = ok(b.request("authenticate", tenant="sm", api_key="alice.s3cret-alice"))
                assert r["client_id"] == "alice"
                assert [x["name"] for x in ok(b.request("list_services"))["services"]] == ["a"]
                assert err(s.auth("sm", api_key="alice.wrong")) == "EAUTH"
            finally:
                cb.gate.set()
            r1, r2 = a.recv(), a.recv()
            assert r1["id"] == 1 and r1["ok"] and r1["result"]["client_id"] == "block1", r1
            assert r2["id"] == 2 and r2["ok"] and r2["result"]["services"] == [{"name": "a", "persistent": False,
                                                                               "open": False}], r2
            # the departed client's attempt is still audited (and would count toward a lockout)
            deadline = time.time() + 10
            while time.time() < deadline and not any(x.get("client_id") == "block2" for x in s.audit()):
                time.sleep(0.05)
            assert any(x["event"] == "auth_success" and x.get("client_id") == "block2" for x in s.audit())

        run_with([{"name": "tm", "auth": tm}, {"name": "sm", "auth": {"api_keys": api_keys(["alice"])}}], body)
    finally:
        cb.gate.set()
        cb.close()


def test_auth_hybrid():
    art = artifacts()
    cb = Callback()
    try:
        hy = {"mode": "hybrid", "api_keys": api_keys(["alice", "bob"]),
              "callback": {"url": cb.url, "timeout_ms": 2000, "ca_file": art("ca.pem")},
              "jwt": {"hs256_secret": HS_SECRET.decode(), "audience": AUD}}
        hy["api_keys"][1]["id"] = "bobdeny"  # the callback refuses credentials that say "deny"
        hy["api_keys"][1]["client_id"] = "bob"

        def body(s):
            # both allow: the scopes are the intersection, the lifetime the shorter one
            r = ok(s.auth("hy", api_key="alice.s3cret-alice"))
            assert r["client_id"] == "alice" and r["permissions"] == ["read"], r
            assert r["expires_at"] <= time.time() + 601
            assert cb.requests[-1]["client_id"] == "alice"  # the server's verified id travels along
            # the key is right but the tenant says no
            n = len(cb.requests)
            assert err(s.auth("hy", api_key="bobdeny.s3cret-bob")) == "EAUTH"
            assert len(cb.requests) == n + 1
            # the key is wrong: the callback is not even asked
            assert err(s.auth("hy", api_key="alice.wrong")) == "EAUTH"
            assert len(cb.requests) == n + 1
            # a JWT checked by the server, then by the tenant
            r = ok(s.auth("hy", jwt=jwt_hs256(claims(sub="jim"))))
            assert r["client_id"] == "jim" and r["permissions"] == ["read"], r
            assert err(s.auth("hy", jwt=jwt_hs256(claims(sub="jim"), secret=b"x" * 40))) == "EAUTH"

        run_with([{"name": "hy", "auth": hy}], body)
    finally:
        cb.close()


def test_auth_jwt():
    art = artifacts()
    jw = {"api_keys": api_keys(["alice"]), "lockout": {"max_failures": 0},
          "jwt": {"hs256_secret": HS_SECRET.decode(), "rs256_public_key": art("rsa.pub"), "audience": AUD,
                  "issuer": ISS}}
    hs_only = {"jwt": {"hs256_secret": HS_SECRET.decode(), "audience": AUD}}

    def body(s):
        now = int(time.time())
        r = ok(s.auth("jw", jwt=jwt_hs256(claims())))
        assert r["client_id"] == "jwtuser" and sorted(r["permissions"]) == ["read", "write"], r  # openid dropped
        assert r["expires_at"] <= now + 301  # not past the JWT's own exp
        w = s.ws()
        r = ok(w.request("authenticate", tenant="jw", jwt=jwt_hs256(claims(scope=None, scopes=["read"], aud=["x", AUD]))))
        assert r["permissions"] == ["read"]
        names = [x["name"] for x in ok(w.request("list_services"))["services"]]
        assert names == ["a"]
        assert err(w.request("create_service", service="z")) == "EFORBIDDEN"  # no admin scope in the JWT
        # a session never outlives its JWT: not by refresh, nor by refresh after a resume elsewhere
        w = s.ws()
        r = ok(w.request("authenticate", tenant="jw", jwt=jwt_hs256(claims(sub="short", exp=now + 120))))
        assert r["expires_at"] <= now + 121
        r2 = ok(w.request("refresh"))
        assert r2["expires_at"] == r["expires_at"], (r, r2)
        w2 = s.ws()
        ok(w2.request("authenticate", tenant="jw", token=r2["token"]))
        assert ok(w2.request("refresh"))["expires_at"] == r["expires_at"]
        # an API key's session does get the tenant's full lifetime on refresh
        k = s.ws()
        ok(k.request("authenticate", tenant="jw", api_key="alice.s3cret-alice"))
        assert ok(k.request("refresh"))["expires_at"] >= now + 3600
        r = ok(s.auth("jw", jwt=jwt_rs256(claims(sub="rsuser"), art("rsa.key"))))
        assert r["client_id"] == "rsuser"
        refused = {
            "bad signature": jwt_hs256(claims(), secret=b"another-secret-that-is-also-32-bytes-long"),
            "tampered payload": jwt_hs256(claims()).split(".")[0] + "." + b64u(json.dumps(claims(scope="admin")).encode())
            + "." + jwt_hs256(claims()).split(".")[2],
            "wrong audience": jwt_hs256(claims(aud="someone-else")),
            "no audience": jwt_hs256(claims(aud=None)),
            "wrong issuer": jwt_hs256(claims(iss="evil")),
            "not yet valid": jwt_hs256(claims(nbf=now + 1000)),
            "no exp": jwt_hs256(claims(exp=None)),
            "bad sub": jwt_hs256(claims(sub="../etc")),
            "alg none": b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(claims()).encode()) + ".",
            "alg none signed": jwt_hs256(claims(), header={"alg": "none"}),
            "alg HS512": jwt_hs256(claims(), header={"alg": "HS512"}),
            "RS256 wrong key": jwt_rs256(claims(), art("rsa-wrong.key")),
            "RS256 header on an HMAC": jwt_hs256(claims(), header={"alg": "RS256"}),
            "not a JWT": "abc.def",
            "bad base64": "a*b.c*d.e*f",
        }
        for why, tok in refused.items():
            assert err(s.auth("jw", jwt=tok)) == "EAUTH", why
        r = s.auth("jw", jwt=jwt_hs256(claims(exp=now - 100)))
        assert err(r) == "EEXPIRED" and "expired" in r["error"]["message"]
        # a tenant without RS256 refuses RS256 tokens; one without JWT refuses them all
        assert err(s.auth("hs", jwt=jwt_rs256(claims(), art("rsa.key")))) == "EAUTH"
        ok(s.auth("hs", jwt=jwt_hs256(claims())))
        assert err(s.auth("nojwt", jwt=jwt_hs256(claims()))) == "EAUTH"
        got = [(a["event"], a["tenant"], a.get("client_id"), a["method"]) for a in s.audit()]
        assert ("token_expired", "jw", "jwtuser", "jwt") in got and ("auth_success", "jw", "rsuser", "jwt") in got
        log = s.log_text()
        for clue in ("signature does not verify", "audience", "issuer", "not valid yet", "alg is not accepted"):
            assert clue in log, clue
        secrets = [HS_SECRET.decode()] + [t.split(".")[-1] for t in refused.values() if t.count(".") == 2 and
                                          len(t.split(".")[-1]) > 20]
        no_secrets_in(os.path.join(s.dir, "data", "audit.log"), secrets)
        no_secrets_in(s.log.name, secrets)

    run_with([{"name": "jw", "auth": jw}, {"name": "hs", "auth": hs_only},
              {"name": "nojwt", "auth": {"api_keys": api_keys(["bob"])}}], body)


def test_auth_lockout():
    by_id = {"api_keys": api_keys(["alice", "bob"]), "lockout": {"max_failures": 3, "lock_s": 2},
             "jwt": {"hs256_secret": HS_SECRET.decode(), "audience": AUD}}
    by_addr = {"api_keys": api_keys(["alice", "bob"]), "lockout": {"max_failures": 2, "lock_s": 2, "by": "address"}}

    def body(s):
        for _ in range(3):
            assert err(s.auth("id", api_key="alice.wrong")) == "EAUTH"
        r = s.auth("id", api_key="alice.s3cret-alice")  # the right key, refused while locked
        assert err(r) == "ELOCKED" and "too many failed logins" in r["error"]["message"], r
        ok(s.auth("id", api_key="bob.s3cret-bob"))  # another identity is not locked
        # JWT subjects count as identities too
        bad = jwt_hs256(claims(sub="jane"), secret=b"w" * 40)
        for _ in range(3):
            assert err(s.auth("id", jwt=bad)) == "EAUTH"
        assert err(s.auth("id", jwt=jwt_hs256(claims(sub="jane")))) == "ELOCKED"
        # by address: failures under any name lock the whole source address
        assert err(s.auth("addr", api_key="nobody.x")) == "EAUTH"
        assert err(s.auth("addr", api_key="alice.wrong")) == "EAUTH"
        assert err(s.auth("addr", api_key="bob.s3cret-bob")) == "ELOCKED"
        time.sleep(2.2)  # the 2 s locks pass
        ok(s.auth("id", api_key="alice.s3cret-alice"))
        ok(s.auth("id", jwt=jwt_hs256(claims(sub="jane"))))
        ok(s.auth("addr", api_key="bob.s3cret-bob"))
        # a success resets the count: 2 failures, a success, 2 failures is no lock
        for _ in range(2):
            assert err(s.auth("id", api_key="alice.wrong")) == "EAUTH"
        ok(s.auth("id", api_key="alice.s3cret-alice"))
        for _ in range(2):
            assert err(s.auth("id", api_key="alice.wrong")) == "EAUTH"
        ok(s.auth("id", api_key="alice.s3cret-alice"))
        events = [(a["event"], a["tenant"], a.get("client_id")) for a in s.audit()]
        assert events.count(("lockout", "id", "alice")) == 1 and ("locked_refused", "id", "alice") in events
        assert ("lockout", "id", "jane") in events and ("lockout", "addr", "alice") in events
        assert ("locked_refused", "addr", "bob") in events
        assert s.metrics()["commy_auth_failures_total"] >= 14

    run_with([{"name": "id", "auth": by_id}, {"name": "addr", "auth": by_addr}], body)


def test_auth_audit_log():
    t = {"api_keys": api_keys(["alice", "bob", "admin"]), "lockout": {"max_failures": 2, "lock_s": 60}}
    short = {"api_keys": api_keys(["alice"]), "token_lifetime_s": 1}

    def body(s):
        tokens = []
        w = s.ws()
        tokens.append(ok(w.request("authenticate", tenant="t", api_key="alice.s3cret-alice"))["token"])
        tokens.append(ok(w.request("refresh"))["token"])
        ok(w.request("logout"))
        b = s.ws()
        tokens.append(ok(b.request("authenticate", tenant="t", api_key="bob.s3cret-bob"))["token"])
        adm = s.ws()
        tokens.append(ok(adm.request("authenticate", tenant="t", api_key="admin.s3cret-admin"))["token"])
        ok(adm.request("revoke_client", client_id="bob"))
        r2 = s.ws()
        ok(r2.request("authenticate", tenant="t", token=tokens[3]))  # a resumed session
        assert err(s.auth("t", token=tokens[0])) == "EAUTH"  # refreshed away
        assert err(s.auth("t", api_key="alice.wrong-guess-1")) == "EAUTH"
        assert err(s.auth("t", api_key="alice.wrong-guess-2")) == "EAUTH"
        assert err(s.auth("t", api_key="alice.s3cret-alice")) == "ELOCKED"
        assert err(s.auth("nosuch", api_key="alice.s3cret-alice")) == "EAUTH"
        e = s.ws()
        tokens.append(ok(e.request("authenticate", tenant="short", api_key="alice.s3cret-alice"))["token"])
        time.sleep(1.2)
        assert err(e.request("list_services")) == "EEXPIRED"
        assert err(s.auth("short", token=tokens[-1])) == "EEXPIRED"
        lines = s.audit()
        assert all(set(a) <= {"ts", "event", "tenant", "client_id", "peer", "method", "detail"} for a in lines)
        got = [(a["event"], a.get("tenant"), a.get("client_id"), a.get("method")) for a in lines]
        for want in [("auth_success", "t", "alice", "api_key"), ("refresh", "t", "alice", "token"),
                     ("logout", "t", "alice", "token"), ("revoke", "t", "bob", None),
                     ("auth_success", "t", "admin", "token"),
                     ("auth_failure", "t", None, "token"), ("auth_failure", "t", "alice", "api_key"),
                     ("lockout", "t", "alice", "api_key"), ("locked_refused", "t", "alice", "api_key"),
                     ("auth_failure", "nosuch", None, "api_key"), ("token_expired", "short", "alice", "token")]:
            assert want in got, (want, got)
        fail = [a for a in lines if a["event"] == "auth_failure" and a.get("client_id") == "alice"]
        assert fail and all(a["detail"] == "wrong secret" for a in fail), fail
        assert sum(1 for g in got if g[0] == "token_expired") == 2  # the operation and the resume
        assert all(a["peer"].startswith("127.0.0.1:") for a in lines if "peer" in a)
        secrets = tokens + [v[0] for v in KEYS.values()] + ["wrong-guess"]
        no_secrets_in(os.path.join(s.dir, "data", "audit.log"), secrets)
        assert os.stat(os.path.join(s.dir, "data", "audit.log")).st_mode & 0o077 == 0

    run_with([{"name": "t", "auth": t}, {"name": "short", "auth": short}], body)


def test_auth_bad_config_refused():
    art = artifacts()
    d = tempfile.mkdtemp(prefix="commy-auth-cfg-")
    try:
        cb = {"url": "https://127.0.0.1:1/x"}
        jwt = {"hs256_secret": HS_SECRET.decode(), "audience": AUD}
        cases = [
            ({"mode": "tenant_managed"}, "tenants[0].auth.callback is required"),
            ({"mode": "hybrid", "callback": cb}, "tenants[0].auth.mode"),
            ({"mode": "tenant_managed", "callback": dict(cb, url="http://x/")}, "tenants[0].auth.callback.url"),
            ({"mode": "tenant_managed", "callback": dict(cb, timeout_ms=0)}, "tenants[0].auth.callback.timeout_ms"),
            ({"mode": "tenant_managed", "callback": dict(cb, client_cert=art("client.pem"))},
             "tenants[0].auth.callback.client_cert and"),
            ({"mode": "tenant_managed", "callback": dict(cb, ca_file="/nonexistent")}, "tenants[0].auth.callback.ca_file"),
            ({"mode": "tenant_managed", "callback": cb, "api_keys": api_keys(["alice"])}, "tenants[0].auth.api_keys"),
            ({"mode": "tenant_managed", "callback": cb, "jwt": jwt}, "tenants[0].auth.jwt"),
            ({"callback": cb}, "tenants[0].auth.callback is only used"),
            ({"jwt": dict(jwt, hs256_secret="short")}, "tenants[0].auth.jwt.hs256_secret"),
            ({"jwt": {"audience": AUD}}, "tenants[0].auth.jwt needs"),
            ({"jwt": {"hs256_secret": HS_SECRET.decode()}}, "tenants[0].auth.jwt.audience"),
            ({"jwt": {"rs256_public_key": art("ca.pem"), "audience": AUD}}, "tenants[0].auth.jwt.rs256_public_key"),
            ({"jwt": {"rs256_public_key": art("rsa.key") + ".missing", "audience": AUD}},
             "tenants[0].auth.jwt.rs256_public_key"),
            ({"jwt": dict(jwt, leeway_s=-1)}, "tenants[0].auth.jwt.leeway_s"),
            ({"lockout": {"by": "moon"}}, "tenants[0].auth.lockout.by"),
            ({"lockout": {"max_failures": -1}}, "tenants[0].auth.lockout.max_failures"),
            ({"lockout": {"lock_s": 0}}, "tenants[0].auth.lockout.lock_s"),
            ({"lockout": 3}, "tenants[0].auth.lockout must be an object"),
        ]
        p = os.path.join(d, "c.json")
        for auth, field in cases:
            with open(p, "w") as f:
                json.dump({"data_root": d, "tenants": [{"name": "t", "auth": auth}]}, f)
            r = subprocess.run([ts.SERVER, "--config", p], capture_output=True, text=True, timeout=10)
            assert r.returncode != 0 and field in r.stderr, (field, r.stderr)
        with open(p, "w") as f:
            json.dump({"data_root": d, "audit_log": os.path.join(d, "no", "such", "dir", "audit.log"),
                       "tenants": [{"name": "t", "auth": {}}]}, f)
        r = subprocess.run([ts.SERVER, "--config", p, "--insecure-dev"], capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "audit log" in r.stderr, r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [test_auth_tenant_managed, test_auth_callback_off_loop, test_auth_hybrid, test_auth_jwt, test_auth_lockout, test_auth_audit_log,
         test_auth_bad_config_refused]
