#!/usr/bin/env python3
"""Python map set/get and vec append: commy against
multiprocessing.Manager().dict()/list() and multiprocessing.shared_memory
with struct.pack_into (the fastest hand-rolled alternative: a fixed array
of i64 slots, no hashing, no growth). Prints ns per operation.

    python3 bench/python_bench.py [N]
"""

import multiprocessing as mp
import os
import struct
import sys
import tempfile
import time
from multiprocessing import shared_memory

import commy

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
MANAGER_N = max(1000, N // 50)  # a Manager op is a round trip to another process: fewer of them


def per_op(fn, n, rounds=3):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e9


def main():
    rows = []
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        with commy.Segment(os.path.join(d, "bench.mem"), initial_size=128 << 20) as seg:
            m = seg.map("m", key=commy.i64, value=commy.i64)
            v = seg.vec("v", commy.i64)
            keys = list(range(N))

            def c_set():
                for k in keys:
                    m[k] = k

            def c_get():
                for k in keys:
                    m[k]

            def c_append():
                v.clear()
                for k in keys:
                    v.append(k)

            rows.append(("commy", per_op(c_set, N), per_op(c_get, N), per_op(c_append, N)))

    shm = shared_memory.SharedMemory(create=True, size=8 * N)
    try:
        buf = shm.buf
        pack, unpack = struct.pack_into, struct.unpack_from

        def s_set():
            for k in keys:
                pack("<q", buf, 8 * k, k)

        def s_get():
            for k in keys:
                unpack("<q", buf, 8 * k)

        def s_append():
            n = 0
            for k in keys:
                pack("<q", buf, 8 * n, k)
                n += 1

        rows.append(("shared_memory+struct", per_op(s_set, N), per_op(s_get, N), per_op(s_append, N)))
        del buf
    finally:
        shm.close()
        shm.unlink()

    with mp.Manager() as mgr:
        md, ml = mgr.dict(), mgr.list()
        mkeys = list(range(MANAGER_N))

        def m_set():
            for k in mkeys:
                md[k] = k

        def m_get():
            for k in mkeys:
                md[k]

        def m_append():
            for k in mkeys:
                ml.append(k)

        rows.append(("Manager().dict()/list()", per_op(m_set, MANAGER_N, 1), per_op(m_get, MANAGER_N, 1),
                     per_op(m_append, MANAGER_N, 1)))

    print(f"{'':26} {'map set':>10} {'map get':>10} {'vec append':>11}   (ns per op, N={N})")
    for name, s, g, a in rows:
        print(f"{name:26} {s:10.0f} {g:10.0f} {a:11.0f}")
    c, sm, mg = rows
    print(f"commy vs Manager: set {mg[1] / c[1]:.0f}x, get {mg[2] / c[2]:.0f}x, append {mg[3] / c[3]:.0f}x faster")
    print(f"commy vs shared_memory+struct: set {c[1] / sm[1]:.1f}x, get {c[2] / sm[2]:.1f}x, append {c[3] / sm[3]:.1f}x the time")


if __name__ == "__main__":
    main()
