"""Speed: a Map[i64 -> i64] get or set from Python, measured.

The target is under 1 us per operation. The machine running the tests is
shared, so the assertion is a looser bound that still catches a slow path
(a struct.pack round trip, a Python-level dispatch per call); the measured
figures are printed."""

import os
import time
import unittest

import commy
from util import SegmentTest

N = 200000
BOUND_US = float(os.environ.get("COMMY_PERF_BOUND_US", "3.0"))


def best_of(fn, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / N * 1e6


class TestPerf(SegmentTest):
    def test_map_get_set_speed(self):
        with commy.Segment(self.path(), initial_size=64 << 20) as seg:
            m = seg.map("m", key=commy.i64, value=commy.i64)
            keys = list(range(N))

            def put():
                for k in keys:
                    m[k] = k

            def get():
                for k in keys:
                    m[k]

            def base():
                for k in keys:
                    pass

            put()
            loop = best_of(base)
            set_us = best_of(put) - loop
            get_us = best_of(get) - loop
            print(f"\n  Map[i64->i64]: set {set_us * 1000:.0f} ns, get {get_us * 1000:.0f} ns per op "
                  f"(target < 1000 ns)", flush=True)
            self.assertEqual(m[N - 1], N - 1)
            self.assertLess(set_us, BOUND_US)
            self.assertLess(get_us, BOUND_US)


if __name__ == "__main__":
    unittest.main()
