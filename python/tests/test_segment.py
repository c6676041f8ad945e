"""Segments, errors, the version check, wait_change and closing in any order."""

import gc
import os
import threading
import time
import unittest

import commy
from commy import native
from util import SegmentTest


class TestErrors(unittest.TestCase):
    def test_every_code_has_its_class(self):
        expect = {
            native.COMMY_EINVAL: (commy.InvalidArgumentError, ValueError),
            native.COMMY_ENOTFOUND: (commy.NotFoundError, LookupError),
            native.COMMY_ETYPE: (commy.TypeMismatchError, TypeError),
            native.COMMY_ELAYOUT: (commy.LayoutError, commy.Error),
            native.COMMY_ECORRUPT: (commy.CorruptError, commy.Error),
            native.COMMY_ENOSPC: (commy.NoSpaceError, commy.Error),
            native.COMMY_EPERM: (commy.PermissionError, PermissionError),
            native.COMMY_ECLOSED: (commy.ClosedError, commy.Error),
            native.COMMY_ETIMEDOUT: (commy.TimeoutError, TimeoutError),
            native.COMMY_EEMPTY: (commy.EmptyError, IndexError),
            native.COMMY_ERANGE: (commy.RangeError, IndexError),
            native.COMMY_EIO: (commy.IOFailure, OSError),
            native.COMMY_ECONCURRENT: (commy.ConcurrentModificationError, RuntimeError),
            native.COMMY_EJOURNAL: (commy.JournalFullError, commy.Error),
            native.COMMY_ERETIRED: (commy.RetiredError, commy.Error),
        }
        for code, (cls, also) in expect.items():
            with self.assertRaises(cls) as cm:
                native.py_raise(code)
            e = cm.exception
            self.assertIsInstance(e, commy.Error)
            self.assertIsInstance(e, also)
            self.assertEqual(e.code, code)
            self.assertTrue(e.message)
            self.assertIs(commy.error_class(code), cls)

    def test_version_check(self):
        self.assertEqual(commy.version_number, native.COMMY_VERSION_NUMBER)
        self.assertEqual(commy.version, "%d.%d.%d" % (native.COMMY_VERSION_MAJOR, native.COMMY_VERSION_MINOR,
                                                      native.COMMY_VERSION_PATCH))
        commy._check_version(1000000, 1000000)
        with self.assertRaises(ImportError) as cm:
            commy._check_version(2000001, 1000000)
        self.assertIn("2000001", str(cm.exception))
        self.assertIn("1000000", str(cm.exception))

    def test_raw_layer_raises_with_library_message(self):
        with self.assertRaises(commy.InvalidArgumentError) as cm:
            native.commy_box_open(None, "x", commy.i64, 0)
        self.assertEqual(cm.exception.code, native.COMMY_EINVAL)
        self.assertEqual(native.commy_error_last().code, native.COMMY_EINVAL)
        self.assertEqual(str(cm.exception), native.commy_error_last().message)


class TestSegment(SegmentTest):
    def test_context_manager_and_idempotent_close(self):
        p = self.path()
        with commy.Segment(p) as seg:
            self.assertFalse(seg.closed)
            seg.box("b", commy.i64).value = 9
        self.assertTrue(seg.closed)
        seg.close()
        seg.close()
        with self.assertRaises(commy.ClosedError):
            seg.box("b", commy.i64)
        with commy.Segment(p, create=False) as again:
            self.assertEqual(again.box("b", commy.i64).value, 9)

    def test_open_options_and_their_errors(self):
        missing = self.path()
        with self.assertRaises(commy.NotFoundError):
            commy.Segment(missing, create=False)
        self.assertFalse(os.path.exists(missing))
        p = self.path()
        commy.Segment(p, initial_size=256 * 1024, max_size=8 << 20).close()
        with self.assertRaises(commy.ExistsError):
            commy.Segment(p, exclusive=True)
        with self.assertRaises(commy.InvalidArgumentError):
            commy.Segment(self.path(), max_size=-5)
        junk = self.path()
        with open(junk, "wb") as f:
            f.write(b"this is not a commy segment" * 1000)
        with self.assertRaises(commy.CorruptError) as cm:
            commy.Segment(junk, create=False)
        self.assertEqual(cm.exception.code, native.COMMY_ECORRUPT)
        self.assertGreater(len(cm.exception.message), 10)

    def test_readonly(self):
        p = self.path()
        with commy.Segment(p) as seg:
            seg.map("m", key=commy.i64, value=commy.i64)[1] = 2
        with commy.Segment(p, readonly=True) as ro:
            m = ro.map("m")
            self.assertEqual(m[1], 2)
            self.assertEqual(dict(m.items()), {1: 2})
            with self.assertRaises(commy.PermissionError) as cm:
                m[3] = 4
            self.assertIsInstance(cm.exception, PermissionError)
            self.assertEqual(len(m), 1)

    def test_no_space(self):
        with commy.Segment(self.path(), initial_size=512 * 1024, max_size=1 << 20) as seg:
            v = seg.vec("v", commy.bytes_)
            with self.assertRaises(commy.NoSpaceError):
                for _ in range(100000):
                    v.append(b"x" * 4096)
            n = len(v)
            self.assertGreater(n, 10)
            self.assertEqual(v[n - 1], b"x" * 4096)  # what got in is intact
            seg.check()

    def test_roots_open_and_remove(self):
        with commy.Segment(self.path()) as seg:
            seg.map("m", key=commy.str_, value=commy.f64)["pi"] = 3.25
            seg.vec("v", commy.u8).extend([1, 2])
            seg.str("s").value = "hi"
            names = [(r[0], r[1]) for r in seg.roots()]
            self.assertEqual(names, [("m", "map"), ("v", "vec"), ("s", "str")])
            self.assertIsInstance(seg.open("m"), commy.Map)
            self.assertEqual(seg.open("m")["pi"], 3.25)
            self.assertEqual(seg.open("v").type, commy.u8)
            self.assertEqual(seg.open("s").value, "hi")
            self.assertIn("v", seg)
            seg.remove("v")
            self.assertNotIn("v", seg)
            with self.assertRaises(commy.NotFoundError):
                seg.open("v")
            with self.assertRaises(commy.NotFoundError):
                seg.vec("nope", commy.i64, open="existing")
            with self.assertRaises(commy.ExistsError):
                seg.map("m", key=commy.str_, value=commy.f64, open="new")
            with self.assertRaises(commy.InvalidArgumentError):
                seg.box("bad name!", commy.i64)

    def test_lock_batch_and_stats(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("m", key=commy.i64, value=commy.i64)
            with seg.lock():
                for i in range(100):
                    m[i] = i
            self.assertEqual(len(m), 100)
            st = seg.stats()
            self.assertGreater(st["used"], 0)
            self.assertGreaterEqual(st["attached"], 1)
            self.assertEqual(seg.info()["layout_major"], native.COMMY_LAYOUT_MAJOR)


class TestClosing(SegmentTest):
    def make(self, seg):
        return [seg.box("b", commy.i64), seg.vec("v", commy.i64), seg.str("s"), seg.deque("d", commy.i64),
                seg.map("m", key=commy.i64, value=commy.i64), seg.set("st", commy.i64),
                seg.ordered_map("om", key=commy.i64, value=commy.i64), seg.ordered_set("os", commy.i64)]

    def test_ops_after_segment_close_raise_closed(self):
        seg = commy.Segment(self.path())
        box, vec, s, dq, m, st, om, os_ = self.make(seg)
        m[1] = 1
        seg.close()
        ops = [lambda: box.value, lambda: box.fetch_add(1), lambda: vec.append(1), lambda: len(vec),
               lambda: s.value, lambda: dq.append(1), lambda: m[1], lambda: m.__setitem__(2, 2), lambda: list(m),
               lambda: st.add(1), lambda: om.first(), lambda: list(om), lambda: os_.add(3), lambda: m.version,
               lambda: m.wait_change(0, 0)]
        for op in ops:
            with self.assertRaises(commy.ClosedError):
                op()

    def test_ops_after_container_close_raise_closed(self):
        with commy.Segment(self.path()) as seg:
            for c in self.make(seg):
                c.close()
                c.close()
                with self.assertRaises(commy.ClosedError):
                    c.version

    def test_any_finalisation_order(self):
        for order in ("segment-first", "containers-first", "gc"):
            seg = commy.Segment(self.path())
            cs = self.make(seg)
            cs[4][7] = 7
            if order == "segment-first":
                del seg
                gc.collect()
                self.assertEqual(cs[4][7], 7)  # the handle keeps the segment alive
                del cs
            elif order == "containers-first":
                del cs
                gc.collect()
                seg.close()
            else:
                cs.append(seg)  # a cycle: the collector picks the order
                cs.append(cs)
                del seg, cs
            gc.collect()


    def test_close_from_another_thread_while_waiting(self):
        # The waiter is inside C without the GIL: close() must not free the
        # handle under it, and new calls on the closed object raise ClosedError.
        seg = commy.Segment(self.path())
        m = seg.map("m", key=commy.i64, value=commy.i64)
        q = seg.deque("q", commy.i64)
        seg2 = commy.Segment(seg.path)
        other = seg2.map("m", key=commy.i64, value=commy.i64)
        results = []
        waiters = [threading.Thread(target=lambda: results.append(m.wait_change(m.version, timeout=5))),
                   threading.Thread(target=lambda: results.append(q.popleft(timeout=5)))]
        for t in waiters:
            t.start()
        time.sleep(0.2)
        m.close()
        q.close()
        with self.assertRaises(commy.ClosedError):
            m.version
        with self.assertRaises(commy.ClosedError):
            q.append(1)
        other[1] = 1                       # wakes the map waiter through a live handle
        seg2.deque("q", commy.i64).append(42)  # and the deque waiter
        for t in waiters:
            t.join(10)
            self.assertFalse(t.is_alive())
        self.assertEqual(sorted(results, key=str), [42, True])
        self.assertIsNone(m._pending)      # released once the waiter returned
        self.assertIsNone(q._pending)
        seg2.close()
        seg.close()


class TestWaitChange(SegmentTest):
    def test_wait_change_wakes_and_times_out(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("m", key=commy.i64, value=commy.i64)
            seen = m.version
            self.assertFalse(m.wait_change(seen, timeout=0.05))
            t = threading.Timer(0.1, lambda: m.__setitem__(1, 1))
            t.start()
            t0 = time.monotonic()
            self.assertTrue(m.wait_change(seen, timeout=5))
            self.assertLess(time.monotonic() - t0, 4)
            self.assertNotEqual(m.version, seen)
            t.join()
            for c in (seg.box("b", commy.i8), seg.vec("v", commy.i8), seg.str("s"), seg.deque("d", commy.i8),
                      seg.set("st", commy.i8), seg.ordered_map("om", key=commy.i8, value=commy.i8),
                      seg.ordered_set("os", commy.i8)):
                v0 = c.version
                self.assertFalse(c.wait_change(v0, timeout=0))
                if isinstance(c, commy.Box):
                    c.value = 1
                elif isinstance(c, commy.Str):
                    c.value = "x"
                elif isinstance(c, (commy.Vec, commy.Deque)):
                    c.append(1)
                elif isinstance(c, commy.OrderedMap):
                    c[1] = 1
                else:
                    c.add(1)
                self.assertTrue(c.wait_change(v0, timeout=0), type(c).__name__)


if __name__ == "__main__":
    unittest.main()
