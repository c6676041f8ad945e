"""Shared helpers for the commy Python tests."""

import os
import shutil
import tempfile
import unittest


def shm_dir():
    """A fresh directory for segment files (in /dev/shm when it exists: RAM, like production)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="commy-py-", dir=base)


class SegmentTest(unittest.TestCase):
    """Gives each test its own directory and a path() for segment files."""

    def setUp(self):
        self.dir = shm_dir()
        self._n = 0

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name=None):
        self._n += 1
        return os.path.join(self.dir, name or f"seg{self._n}.mem")


# ---- a real commy-server for the session tests ----------------------------------

import base64
import hashlib
import hmac
import json
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def server_binary():
    """The commy-server to test against: $COMMY_SERVER, else the one in
    $COMMY_BUILD or <repo>/build (scripts/test.sh builds it there first)."""
    if os.environ.get("COMMY_SERVER"):
        return os.environ["COMMY_SERVER"]
    for build in (os.environ.get("COMMY_BUILD"), ROOT / "build"):
        if build and (Path(build) / "server" / "commy-server").is_file():
            return str(Path(build) / "server" / "commy-server")
    raise unittest.SkipTest("no commy-server binary") if os.environ.get("COMMY_ALLOW_NO_SERVER") else AssertionError(
        "commy-server was not found: build it (cmake --build build --target commy-server) or set COMMY_SERVER")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CommyServer:
    """A commy-server process on loopback with TLS (a self-signed certificate
    made here) and tenants "acme" (services "app", "other", "docs" and the
    persistent "keep") and "rival".
    Keys: KEY (read, write, admin), READER (read only) and VICTIM (read, write) for acme, RIVAL for rival.
    Tenant "jw" (service "app") takes HS256 JWTs signed with JWT_SECRET for
    audience JWT_AUDIENCE (jwt_hs256 makes one)."""

    KEY = "app.s3cret-app"
    READER = "ro.s3cret-ro"
    VICTIM = "victim.s3cret-victim"  # read, write: a local client for revocation tests
    RIVAL = "eve.s3cret-eve"
    JWT_SECRET = "k3y-for-hs256-that-is-long-enough-0123456789"
    JWT_AUDIENCE = "commy-test"

    @classmethod
    def jwt_hs256(cls, sub, exp_in=300, secret=None):
        """A compact HS256 JWT for sub, expiring exp_in seconds from now."""
        def b64u(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        claims = {"sub": sub, "aud": cls.JWT_AUDIENCE, "exp": int(time.time()) + exp_in, "scope": "read write"}
        si = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64u(json.dumps(claims).encode())
        key = (secret or cls.JWT_SECRET).encode()
        return si + "." + b64u(hmac.new(key, si.encode(), hashlib.sha256).digest())

    def __init__(self):
        self.binary = server_binary()
        self.dir = tempfile.mkdtemp(prefix="commy-py-srv-")
        self.port = free_port()
        self.url = f"wss://127.0.0.1:{self.port}"
        self.ca_file = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.check_call(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-keyout", key, "-out", self.ca_file, "-days", "2", "-subj", "/CN=localhost",
                               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def api_key(full, scopes):
            kid, secret = full.split(".", 1)
            h = subprocess.check_output([self.binary, "--hash-key", secret], text=True).strip()
            return {"id": kid, "hash": h, "scopes": scopes, "client_id": kid}

        cfg = {
            "listen": {"address": "127.0.0.1", "port": self.port},
            "tls": {"cert": self.ca_file, "key": key},
            "data_root": os.path.join(self.dir, "data"),
            "tenants": [
                {"name": "acme",
                 "auth": {"mode": "server_managed",
                          "api_keys": [api_key(self.KEY, ["read", "write", "admin"]), api_key(self.READER, ["read"]),
                                           api_key(self.VICTIM, ["read", "write"])]},
                 "services": [{"name": "app"}, {"name": "other"}, {"name": "docs"}, {"name": "keep", "persistent": True}]},
                {"name": "rival", "auth": {"api_keys": [api_key(self.RIVAL, ["read", "write", "admin"])]},
                 "services": [{"name": "secret"}]},
                {"name": "jw", "auth": {"jwt": {"hs256_secret": self.JWT_SECRET, "audience": self.JWT_AUDIENCE}},
                 "services": [{"name": "app"}]},
            ],
        }
        self.config = os.path.join(self.dir, "config.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--config", self.config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("commy-server did not start; its log:\n" + self.log_text())
                time.sleep(0.05)

    def log_text(self):
        try:
            return Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""

    def kill(self):
        """Stops the process only (data, tokens and configuration stay for start())."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        self.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
