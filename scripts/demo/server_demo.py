"""The client side of scripts/demo/server.sh: remote and local clients of one
commy-server service, live change pushes, a revocation, a clean stop.
Standard library only; speaks the protocol with server/tests/wsclient.py.
usage: server_demo.py DEMO_INFO_JSON DEMO_PID REVOKE_PORT REVOKE_CERT REVOKE_PID KEYS_JSON -- WRITER_CMD..."""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "server", "tests"))
from wsclient import WS, Closed, i64  # noqa: E402

T0 = time.time()


def say(who, text):
    print("  [%6.3fs] %-14s %s" % (time.time() - T0, who, text), flush=True)


def fail(text):
    print("server demo FAILED: " + text, file=sys.stderr, flush=True)
    sys.exit(1)


def ok(reply, what):
    if not reply.get("ok"):
        fail("%s: %s" % (what, reply.get("error")))
    return reply["result"]


def head(text):
    print("\n\033[1m%s\033[0m" % text, flush=True)


def connect(port, cert, tenant, api_key, who):
    w = WS(port, cafile=cert, timeout=10)  # verifies the server against its self-signed certificate
    r = ok(w.request("authenticate", tenant=tenant, api_key=api_key), who + " authenticate")
    w.token = r["token"]
    say(who, "authenticated over WSS as client '%s' with scopes %s" % (r["client_id"], r["permissions"]))
    return w


def watch_changes(remote, who, last, writer, timeout=10.0):
    """Prints every 'changed' push until the value reaches last."""
    seen = []
    deadline = time.time() + timeout
    while not seen or seen[-1] != last:
        p = remote.wait_push("changed", 0.5)
        if p is None and writer.poll():
            fail("the local writer exited with status %d" % writer.returncode)
        if p is None and time.time() < deadline:
            continue
        if p is None:
            fail("%s saw no push for %.0f s; saw %r so far" % (who, timeout, seen))
        seen.append(int(p["value"]["v"]))
        say(who, "push: %s = %s (version %s)" % (p["var"], p["value"]["v"], p["version"]))
    if seen != sorted(seen):
        fail("pushes out of order: %r" % seen)
    return seen


def run_writer(writer, path, var, values, who="local writer"):
    cmd = writer + [path, var] + [str(v) for v in values]
    say(who, "native process maps %s and sets %s to %s" % (os.path.basename(path), var, " ".join(map(str, values))))
    return subprocess.Popen(cmd)


def finish_writer(proc):
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("the local writer did not finish in 10 s")
    if rc != 0:
        fail("the local writer exited with status %d" % rc)


def main():
    argv = sys.argv[1:]
    sep = argv.index("--")
    info_file, demo_pid, rport, rcert, rpid, keys_file = argv[:sep]
    writer = argv[sep + 1:]
    info = json.load(open(info_file))
    keys = json.load(open(keys_file))
    port = int(info["url"].rsplit(":", 1)[1])
    cert, key, svc, tenant = info["cert"], info["api_key"], info["service"], info["tenant"]

    head("2. A remote client authenticates with the demo API key, opens '%s' remotely, subscribes" % svc)
    remote = connect(port, cert, tenant, key, "remote client")
    ok(remote.request("open_service", service=svc, mode="remote"), "open remote")
    say("remote client", "open_service(%s, mode=remote): no file, every access goes over the wire" % svc)
    ok(remote.request("set", service=svc, var="temperature", kind="box", value=i64(20)), "set")
    say("remote client", "set temperature = 20 (creates an i64 box)")
    v = ok(remote.request("subscribe", service=svc, var="temperature"), "subscribe")["version"]
    say("remote client", "subscribed to temperature (version %s)" % v)

    head("3. A local client of the same service: open_service in local mode, then a native process maps the file")
    local = connect(port, cert, tenant, key, "local client")
    path = ok(local.request("open_service", service=svc, mode="local"), "open local")["path"]
    st = os.stat(path)
    say("local client", "open_service(%s, mode=local) -> %s (mode %o)" % (svc, path, st.st_mode & 0o777))

    head("4. The local process writes through the mapped file; the server pushes each change to the remote client")
    values = [21, 22, 23, 24, 25, 26]
    proc = run_writer(writer, path, "temperature", values)
    watch_changes(remote, "remote client", values[-1], proc)
    finish_writer(proc)
    got = ok(remote.request("get", service=svc, var="temperature"), "get")["value"]["v"]
    say("remote client", "get temperature -> %s (read over WSS from the file the local process wrote)" % got)
    remote.close()
    local.close()

    head("5. Revocation: an admin revokes one client; the file rotates, the others go on")
    print("  (The --demo tenant has a single API key, so every demo client is client 'demo' and revoking it\n"
          "   would close all of them. This step uses a second server on the same certificate with one key\n"
          "   per client: 'ops' (admin), 'sensor' and 'panel'.)", flush=True)
    rport = int(rport)
    ops = connect(rport, rcert, "demo", keys["ops"], "ops (admin)")
    sensor = connect(rport, rcert, "demo", keys["sensor"], "sensor")
    panel = connect(rport, rcert, "demo", keys["panel"], "panel")
    old = ok(sensor.request("open_service", service="demo", mode="local"), "sensor open local")["path"]
    say("sensor", "open_service(demo, local) -> %s" % old)
    if ok(panel.request("open_service", service="demo", mode="local"), "panel open local")["path"] != old:
        fail("two local clients got different paths")
    say("panel", "open_service(demo, local) -> the same file")
    ok(panel.request("set", service="demo", var="temperature", kind="box", value=i64(30)), "panel set")
    ok(panel.request("subscribe", service="demo", var="temperature"), "panel subscribe")
    say("panel", "set temperature = 30 and subscribed")
    proc = run_writer(writer, old, "temperature", [31, 32], who="sensor process")
    watch_changes(panel, "panel", 32, proc)
    finish_writer(proc)
    r = ok(ops.request("revoke_client", client_id="sensor"), "revoke_client")
    say("ops (admin)", "revoke_client(sensor) -> %d service rotated, %d connection closed" % (r["rotated"], r["connections"]))
    p = sensor.wait_push("closing", 5)
    if p is None or p.get("reason") != "revoked":
        fail("the revoked client was not told it is closing: %r" % p)
    say("sensor", "push: closing (reason %s)" % p["reason"])
    try:
        sensor.request("list_services")
        fail("the revoked connection still answers")
    except (Closed, OSError):
        say("sensor", "connection closed by the server")
    rot = panel.wait_push("rotated", 5)
    if rot is None:
        fail("the panel got no 'rotated' push")
    new = rot["path"]
    say("panel", "push: rotated -> %s" % new)
    if new == old or not os.path.exists(new) or os.path.exists(old):
        fail("rotation did not move the file (old exists: %s, new exists: %s)" % (os.path.exists(old), os.path.exists(new)))
    say("panel", "old file %s is gone; the new one holds the copied data" % os.path.basename(old))
    got = ok(panel.request("get", service="demo", var="temperature"), "panel get")["value"]["v"]
    say("panel", "get temperature -> %s (copied into the new file)" % got)
    if got != "32":
        fail("the new file lost the data: temperature = %s" % got)
    proc = run_writer(writer, new, "temperature", [33, 34], who="panel process")
    watch_changes(panel, "panel", 34, proc)
    finish_writer(proc)
    say("panel", "its subscription followed the rotation: it goes on working")
    w = WS(rport, cafile=rcert, timeout=10)
    r = w.request("authenticate", tenant="demo", token=sensor.token)
    if r.get("ok"):
        fail("the revoked token still authenticates")
    say("anyone", "authenticate with sensor's old token -> %s" % r["error"]["code"])
    w.close()

    head("6. Stopping the servers cleanly (SIGTERM): connected clients are told why")
    for pid, client, who in ((int(demo_pid), None, "demo server"), (int(rpid), panel, "panel")):
        if client is None:
            os.kill(pid, signal.SIGTERM)
            continue
        os.kill(pid, signal.SIGTERM)
        p = client.wait_push("closing", 5)
        if p is None or p.get("reason") != "shutdown":
            fail("no closing/shutdown push on server stop: %r" % p)
        say(who, "push: closing (reason %s)" % p["reason"])
    ops.close()
    panel.close()


if __name__ == "__main__":
    main()
