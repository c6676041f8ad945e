"""The mirror's benchmark, in one run on loopback (docs/deploying.md):
  1. latency from a write answered on server 1 to its "changed" push at a
     subscriber of server 2 (p50, p99), two servers mirrored through Redis;
  2. write throughput of one server with the mirror off and on, the same
     clients and requests side by side, and the ratio.
usage: python3 bench/mirror_bench.py BUILD_DIR [--writes N]"""
import os
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "server", "tests"))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build"))
sys.argv = [sys.argv[0], build] + sys.argv[2:]
import test_mirror  # noqa: E402
import test_server  # noqa: E402
from test_server import ok  # noqa: E402
from wsclient import i64  # noqa: E402

N = int(sys.argv[sys.argv.index("--writes") + 1]) if "--writes" in sys.argv else 2000
CLIENTS = 8
ROUNDS = 5


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def latency(s1, s2):
    w = test_mirror.opened(s1, "w")
    sub = test_mirror.opened(s2, "w", key="alice")
    ok(w.request("set", service="w", var="t", kind="box", value=i64(0)))
    test_mirror.wait_for("t on server 2", lambda: test_mirror.get(sub, "w", "t") == i64(0))
    ok(sub.request("subscribe", service="w", var="t"))
    got = []

    def listen():
        while len(got) < N:
            p = sub.wait_push("changed", 10)
            if p is None:
                return
            got.append(time.perf_counter_ns() - int(p["value"]["v"]))

    th = threading.Thread(target=listen)
    th.start()
    for _ in range(N):
        # the value is the send time: the subscriber's clock is the same one
        ok(w.request("set", service="w", var="t", value=i64(time.perf_counter_ns())))
    th.join()
    w.close()
    sub.close()
    if len(got) < N:
        raise RuntimeError("only %d of %d pushes arrived" % (len(got), N))
    return [x / 1000.0 for x in got]


def throughput(server, svc, pipelined):
    """writes/s of CLIENTS connections, each pipelining its share of requests
    or sending the next one when the last is answered."""
    cs = [test_mirror.opened(server, svc) for _ in range(CLIENTS)]
    ok(cs[0].request("set", service=svc, var="x", kind="box", value=i64(0)))
    per = N // CLIENTS

    def run(c, k):
        import json
        if not pipelined:
            for i in range(per):
                ok(c.request("set", service=svc, var="x", value=i64(k * per + i)))
            return
        for i in range(per):
            c.send_text(json.dumps({"v": 1, "id": 10000 + i, "op": "set", "service": svc, "var": "x",
                                    "value": i64(k * per + i)}))
        for i in range(per):
            r = c.wait_reply(10000 + i)
            assert r["ok"], r

    t0 = time.perf_counter()
    ts = [threading.Thread(target=run, args=(c, k)) for k, c in enumerate(cs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    for c in cs:
        c.close()
    return per * CLIENTS / dt


def main():
    if not test_mirror.REDIS:
        print("mirror bench: redis-server not found (apt-get install redis-server)")
        return 1
    redis = test_mirror.Redis(fsync="everysec")  # Redis's default durability for an AOF
    servers = []
    try:
        alone = test_server.Server()
        servers.append(alone)
        s1, s2 = test_mirror.MServer(redis, "b1"), test_mirror.MServer(redis, "b2")
        servers += [s1, s2]
        lat = latency(s1, s2)
        rows = []
        for mode, p in (("request/reply", False), ("pipelining", True)):
            # the two sides take turns, ROUNDS times: a busy machine moves both alike
            offs, ons = [], []
            for _ in range(ROUNDS):
                offs.append(throughput(alone, "a", p))
                ons.append(throughput(s1, "conv", p))
            rows.append((mode, pct(offs, 50), pct(ons, 50)))
        print("mirror bench (%d writes, loopback, redis-server %s)" % (N, test_mirror.REDIS))
        print("  write on server 1 -> push on server 2: p50 %.0f us, p99 %.0f us" % (pct(lat, 50), pct(lat, 99)))
        for mode, off, on in rows:
            print("  write throughput, %d %s clients (median of %d rounds): mirror off %.0f/s, mirror on %.0f/s"
                  " (on/off %.2f)" % (CLIENTS, mode, ROUNDS, off, on, on / off))
    finally:
        for s in servers:
            s.cleanup()
        redis.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
