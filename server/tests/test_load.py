"""The load test of commy-server (issue 6): 1,000 concurrent WSS clients on
loopback against a real server process. Each authenticates with an API key,
opens a service, subscribes to its variable and writes; every update must
reach every subscriber of the service, in one order, none lost, none cut as a
slow consumer, and a probe connection must be answered throughout.

The clients are one libwebsockets process (load_client.c, using the shared
codec client/wire.c); this script starts the server with a configuration for
the load and checks the server's side: clean exit, no sanitizer report, and
the counters of /metrics.

usage: test_load.py BUILD_DIR
Environment: COMMY_LOAD_CLIENTS (default 1000), COMMY_LOAD_WRITES (default 4,
1 in a sanitizer build), COMMY_LOAD_SERVICES (default 8)."""
import hashlib
import json
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SERVER = os.path.join(BUILD, "server", "commy-server")
CLIENT = os.path.join(BUILD, "server", "load_client")


def sanitized(build):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            return "COMMY_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


# 1,000 clients always; under the sanitizers (ten times slower) each writes
# once instead of 4 times, to stay within the suite's time budget
N = int(os.environ.get("COMMY_LOAD_CLIENTS", "1000"))
WRITES = int(os.environ.get("COMMY_LOAD_WRITES", "1" if sanitized(BUILD) else "4"))
NSVC = int(os.environ.get("COMMY_LOAD_SERVICES", "8"))
SECRET = "load-secret-0123456789"


def pbkdf2(secret, iterations):
    # the server's format (server/auth.c). 1,000 iterations instead of the
    # --hash-key default of 100,000: a thousand logins at the default cost
    # would measure PBKDF2, not the server
    salt = os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations, 32)
    return "pbkdf2-sha256$%d$%s$%s" % (iterations, salt.hex(), dk.hex())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def metrics(port, cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx, timeout=30) as r:
        text = r.read().decode()
    return {k: float(v) for k, v in (l.split() for l in text.splitlines() if l and not l.startswith("#"))}


def main():
    # a descriptor per connection on each side, plus the server's files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N * 2 + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            print("FAIL test_load: RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
            print("0 passed, 1 failed")
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    d = tempfile.mkdtemp(prefix="commy-load-")
    keep = False
    start = time.time()
    proc = None
    try:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.check_call(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        cfg = {
            "listen": {"address": "127.0.0.1", "port": port},
            "tls": {"cert": cert, "key": key},
            "data_root": os.path.join(d, "data"),
            # room for every client and the probe; the queue cap, stall
            # timeout and ping interval stay at their defaults
            "limits": {"max_connections": N + 16},
            "tenants": [{"name": "load",
                         "auth": {"mode": "server_managed", "token_lifetime_s": 3600,
                                  "api_keys": [{"id": "loader", "hash": pbkdf2(SECRET, 1000),
                                                "scopes": ["read", "write"], "client_id": "loader"}]},
                         "services": [{"name": "s%d" % i} for i in range(NSVC)]}],
        }
        config = os.path.join(d, "config.json")
        with open(config, "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(d, "server.log"), "w")
        wrapper = os.environ.get("COMMY_SERVER_WRAPPER", "").split()
        proc = subprocess.Popen(wrapper + [SERVER, "--config", config], stdout=log, stderr=log)
        deadline = time.time() + (60 if wrapper else 10)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("the server did not start; see " + log.name)
                time.sleep(0.05)
        r = subprocess.run([CLIENT, str(port), cert, "load", "loader." + SECRET, str(N), str(WRITES), str(NSVC)],
                           capture_output=True, text=True, timeout=280)
        print(r.stdout.strip())
        if r.stderr.strip():
            print(r.stderr.strip()[-2000:])
        assert r.returncode == 0, "load_client failed (exit %d)" % r.returncode
        m = metrics(port, cert)
        per_svc = [len(range(s, N, NSVC)) for s in range(NSVC)]
        want_pushes = sum(k * k * WRITES for k in per_svc)
        assert m["commy_slow_consumers_cut_total"] == 0, m
        assert m["commy_auth_successes_total"] >= N + 1, m
        assert m["commy_connections_total"] >= N + 1, m
        assert m["commy_pushes_total"] >= want_pushes, (m["commy_pushes_total"], want_pushes)
        proc.terminate()
        rc = proc.wait(60)
        log.close()
        text = open(log.name, errors="replace").read()
        problem = [x for x in ("AddressSanitizer", "LeakSanitizer", "runtime error:") if x in text]
        assert rc == 0 and not problem, "server exited with %s %s; see %s" % (rc, problem, log.name)
        print("ok   test_load_%d_wss_clients (%.1f s)" % (N, time.time() - start))
        print("1 passed, 0 failed")
        return 0
    except Exception as e:  # noqa: BLE001 - reported
        keep = True
        print("FAIL test_load_%d_wss_clients: %s" % (N, e))
        print("  kept: %s" % d)
        print("0 passed, 1 failed")
        return 1
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
