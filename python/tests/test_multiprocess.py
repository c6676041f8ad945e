"""Several processes on one segment: nothing lost, nothing counted twice."""

import collections
import multiprocessing as mp
import unittest

import commy
from util import SegmentTest

PROCS = 4
PER_PROC = 2000


def _adder(path, n, start):
    start.wait()
    with commy.Segment(path) as seg:
        box = seg.box("counter", commy.i64)
        for _ in range(n):
            box.fetch_add(1)


def _cas_adder(path, n, start):
    start.wait()
    with commy.Segment(path) as seg:
        box = seg.box("cas", commy.u32)
        for _ in range(n):
            while True:
                v = box.value
                if box.cas(v, v + 1):
                    break


def _producer(path, who, n, start):
    start.wait()
    with commy.Segment(path) as seg:
        d = seg.deque("queue", commy.str_)
        for i in range(n):
            if i % 2:
                d.append(f"{who}:{i}")
            else:
                d.appendleft(f"{who}:{i}")


def _consumer(path, n, start, out):
    start.wait()
    got = []
    with commy.Segment(path) as seg:
        d = seg.deque("queue", commy.str_)
        while len(got) < n:
            try:
                got.append(d.popleft(timeout=10) if len(got) % 2 else d.pop())
            except commy.EmptyError:
                continue
            except commy.TimeoutError:
                break
    out.put(got)


def _map_writer(path, who, n, start):
    start.wait()
    with commy.Segment(path) as seg:
        m = seg.map("shared", key=commy.i64, value=commy.i64)
        for i in range(n):
            m[who * 1000000 + i] = i * who


class TestMultiProcess(SegmentTest):
    def run_all(self, procs):
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)

    def setUp(self):
        super().setUp()
        self.ctx = mp.get_context("fork")
        self.start = self.ctx.Event()

    def test_fetch_add_from_many_processes(self):
        p = self.path()
        commy.Segment(p).close()
        procs = [self.ctx.Process(target=_adder, args=(p, PER_PROC, self.start)) for _ in range(PROCS)]
        for pr in procs:
            pr.start()
        self.start.set()
        for pr in procs:
            pr.join(60)
            self.assertEqual(pr.exitcode, 0)
        with commy.Segment(p) as seg:
            self.assertEqual(seg.box("counter", commy.i64).value, PROCS * PER_PROC)

    def test_cas_loop_from_many_processes(self):
        p = self.path()
        commy.Segment(p).close()
        procs = [self.ctx.Process(target=_cas_adder, args=(p, 1000, self.start)) for _ in range(PROCS)]
        for pr in procs:
            pr.start()
        self.start.set()
        for pr in procs:
            pr.join(60)
            self.assertEqual(pr.exitcode, 0)
        with commy.Segment(p) as seg:
            self.assertEqual(seg.box("cas", commy.u32).value, PROCS * 1000)

    def test_deque_producers_and_consumers(self):
        p = self.path()
        commy.Segment(p).close()
        n = 1500
        out = self.ctx.Queue()
        producers = [self.ctx.Process(target=_producer, args=(p, w, n, self.start)) for w in range(3)]
        consumers = [self.ctx.Process(target=_consumer, args=(p, 3 * n // 2, self.start, out)) for _ in range(2)]
        for pr in producers + consumers:
            pr.start()
        self.start.set()
        got = out.get(timeout=60) + out.get(timeout=60)
        for pr in producers + consumers:
            pr.join(60)
            self.assertEqual(pr.exitcode, 0)
        expected = [f"{w}:{i}" for w in range(3) for i in range(n)]
        self.assertEqual(collections.Counter(got), collections.Counter(expected))  # exact: no loss, no dupes
        with commy.Segment(p) as seg:
            self.assertEqual(len(seg.deque("queue", commy.str_)), 0)
            seg.check()

    def test_map_writers_in_parallel(self):
        p = self.path()
        commy.Segment(p).close()
        procs = [self.ctx.Process(target=_map_writer, args=(p, w + 1, 1000, self.start)) for w in range(3)]
        for pr in procs:
            pr.start()
        self.start.set()
        for pr in procs:
            pr.join(60)
            self.assertEqual(pr.exitcode, 0)
        with commy.Segment(p) as seg:
            m = seg.map("shared", key=commy.i64, value=commy.i64)
            expected = {w * 1000000 + i: i * w for w in (1, 2, 3) for i in range(1000)}
            self.assertEqual(m.to_dict(), expected)
            seg.check()


if __name__ == "__main__":
    unittest.main()
