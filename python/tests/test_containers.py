"""Every container type against a plain Python model, and value conversion."""

import math
import random
import unittest

import commy
from util import SegmentTest


class TestBox(SegmentTest):
    def test_value_roundtrip_per_type(self):
        cases = [(commy.i8, -128), (commy.i16, 32767), (commy.i32, -2**31), (commy.i64, 2**63 - 1),
                 (commy.u8, 255), (commy.u16, 65535), (commy.u32, 2**32 - 1), (commy.u64, 2**64 - 1),
                 (commy.f64, 1.5), (commy.f32, 0.25), (commy.bool_, True), (commy.bytes_, b"\x00\xffab"),
                 (commy.str_, "h\u00e9llo \U0001f600"), (commy.blob(4), b"abcd")]
        with commy.Segment(self.path()) as seg:
            for i, (t, v) in enumerate(cases):
                b = seg.box(f"b{i}", t)
                self.assertEqual(b.type, t)
                b.value = v
                self.assertEqual(b.value, v, t)
                self.assertIs(type(b.value), type(v))

    def test_values_that_do_not_fit_raise(self):
        with commy.Segment(self.path()) as seg:
            u8 = seg.box("u8", commy.u8)
            u8.value = 7
            for bad in (256, -1, 2**70):
                with self.assertRaises(OverflowError):
                    u8.value = bad
            self.assertEqual(u8.value, 7)  # unchanged, not truncated
            with self.assertRaises(TypeError):
                u8.value = 1.0
            with self.assertRaises(TypeError):
                u8.value = "1"
            i64 = seg.box("i64", commy.i64)
            with self.assertRaises(OverflowError):
                i64.value = 2**63
            with self.assertRaises(OverflowError):
                seg.box("u64", commy.u64).value = -1
            f32 = seg.box("f32", commy.f32)
            with self.assertRaises(OverflowError):
                f32.value = 1e39
            with self.assertRaises(OverflowError):
                seg.box("f64", commy.f64).value = 2**53 + 1   # an int must convert exactly
            seg.box("f64", commy.f64).value = 2**53
            self.assertEqual(seg.box("f64", commy.f64).value, 2.0**53)
            with self.assertRaises(OverflowError):
                f32.value = 2**24 + 1
            f32.value = 0.1                                    # a float rounds to the nearest f32
            self.assertAlmostEqual(f32.value, 0.1, places=6)
            f32.value = float("inf")
            self.assertTrue(math.isinf(f32.value))
            with self.assertRaises(TypeError):
                seg.box("s", commy.str_).value = b"bytes"
            with self.assertRaises(TypeError):
                seg.box("by", commy.bytes_).value = "str"
            with self.assertRaises(TypeError):
                seg.box("bl", commy.blob(4)).value = b"abc"
            with self.assertRaises(OverflowError):
                seg.box("bl", commy.blob(4)).value = b"abcde"
            with self.assertRaises(OverflowError):
                seg.box("bo", commy.bool_).value = 2

    def test_cas_and_fetch_add(self):
        with commy.Segment(self.path()) as seg:
            b = seg.box("n", commy.i32)
            self.assertEqual(b.fetch_add(5), 0)
            self.assertEqual(b.fetch_add(-2), 5)
            self.assertEqual(b.value, 3)
            self.assertFalse(b.cas(4, 10))
            self.assertEqual(b.value, 3)
            self.assertTrue(b.cas(3, 10))
            self.assertEqual(b.value, 10)
            self.assertEqual(b.compare_exchange(1, 2), 10)
            with self.assertRaises(OverflowError):
                b.cas(10, 2**31)
            u = seg.box("u", commy.u64)
            u.value = 2**64 - 1
            self.assertEqual(u.fetch_add(1), 2**64 - 1)  # wraps at the type's width
            self.assertEqual(u.value, 0)
            self.assertTrue(u.cas(0, 2**64 - 2))
            self.assertEqual(u.value, 2**64 - 2)
            f = seg.box("f", commy.f64)
            with self.assertRaises(commy.NotSupportedError):
                f.fetch_add(1)

    def test_reopen_with_other_type_is_type_mismatch(self):
        with commy.Segment(self.path()) as seg:
            seg.box("x", commy.i64).value = 1
            with self.assertRaises(commy.TypeMismatchError) as cm:
                seg.box("x", commy.str_)
            self.assertIsInstance(cm.exception, TypeError)
            self.assertEqual(cm.exception.code, commy.native.COMMY_ETYPE)
            self.assertIn("x", str(cm.exception))
            # the message names both: the stored types and the asked ones
            self.assertIn("is a box of i64", str(cm.exception))
            self.assertIn("opened as a box of str", str(cm.exception))
            with self.assertRaises(commy.TypeMismatchError):
                seg.vec("x", commy.i64)
            self.assertEqual(seg.box("x").value, 1)  # no type: the stored one
            self.assertEqual(seg.open("x").type, commy.i64)


class TestVec(SegmentTest):
    def test_random_ops_against_list(self):
        rnd = random.Random(5)
        with commy.Segment(self.path()) as seg:
            v = seg.vec("v", commy.i64)
            model = []
            for _ in range(3000):
                op = rnd.randrange(8)
                x = rnd.randrange(-2**63, 2**63)
                if op < 3:
                    v.append(x); model.append(x)
                elif op == 3 and model:
                    self.assertEqual(v.pop(), model.pop())
                elif op == 4 and model:
                    i = rnd.randrange(-len(model), len(model))
                    v[i] = x; model[i] = x
                elif op == 5:
                    i = rnd.randrange(-len(model) - 2, len(model) + 2)
                    v.insert(i, x); model.insert(i, x)
                elif op == 6 and model:
                    i = rnd.randrange(len(model))
                    del v[i]; del model[i]
                elif op == 7 and model:
                    i = rnd.randrange(-len(model), len(model))
                    self.assertEqual(v[i], model[i])
            self.assertEqual(list(v), model)
            self.assertEqual(len(v), len(model))
            self.assertEqual(v[1:10:3], model[1:10:3])
            with self.assertRaises(IndexError):
                v[len(model)]
            with self.assertRaises(IndexError):
                v[-len(model) - 1]

    def test_mutable_sequence_api(self):
        with commy.Segment(self.path()) as seg:
            v = seg.vec("s", commy.str_)
            v.extend(["a", "b", "c"])
            v.reverse()
            self.assertEqual(list(v), ["c", "b", "a"])
            self.assertEqual(v.index("b"), 1)
            self.assertIn("a", v)
            v.remove("b")
            self.assertEqual(v.tolist(), ["c", "a"])
            v += ["z"]
            self.assertEqual(v.count("z"), 1)
            v.clear()
            self.assertEqual(len(v), 0)
            with self.assertRaises(commy.EmptyError):
                v.pop()
            with self.assertRaises(IndexError):
                v.pop()
            with self.assertRaises(TypeError):
                v.append(5)

    def test_memoryview_is_zero_copy(self):
        with commy.Segment(self.path()) as seg:
            v = seg.vec("f", commy.f64)
            v.extend([0.5 * i for i in range(100)])
            mv = v.memoryview()
            self.assertEqual(mv.format, "d")
            self.assertEqual(mv.itemsize, 8)
            self.assertEqual(len(mv), 100)
            self.assertEqual(mv[7], 3.5)
            mv[3] = 42.0            # write through the view ...
            self.assertEqual(v[3], 42.0)  # ... is in the segment
            v[4] = -1.0             # and a write to the vec shows in the view
            self.assertEqual(mv[4], -1.0)
            self.assertEqual(sum(mv), sum(v))
            i32 = seg.vec("i", commy.i32)
            i32.extend(range(10))
            self.assertEqual(i32.memoryview().tolist(), list(range(10)))
            with self.assertRaises(commy.NotSupportedError):
                seg.vec("t", commy.str_).memoryview()
        with commy.Segment(seg.path, readonly=True) as ro:
            mv = ro.vec("f").memoryview()
            self.assertTrue(mv.readonly)
            self.assertEqual(mv[3], 42.0)
            with self.assertRaises(TypeError):
                mv[3] = 1.0

    def test_numpy_frombuffer_when_available(self):
        try:
            import numpy
        except ImportError:
            self.skipTest("numpy is not installed")
        with commy.Segment(self.path()) as seg:
            v = seg.vec("n", commy.i64)
            v.extend(range(5))
            a = numpy.frombuffer(v.memoryview(), dtype=numpy.int64)
            a[0] = 99
            self.assertEqual(v[0], 99)


class TestStr(SegmentTest):
    def test_str(self):
        with commy.Segment(self.path()) as seg:
            s = seg.str("greeting")
            self.assertEqual(s.value, "")
            s.value = "hello"
            s.append(", w\u00f6rld")
            s += "!"
            self.assertEqual(str(s), "hello, w\u00f6rld!")
            self.assertEqual(len(s), len("hello, w\u00f6rld!".encode()))
            self.assertEqual(s, "hello, w\u00f6rld!")
            with self.assertRaises(TypeError):
                s.value = b"bytes"
            with self.assertRaises(UnicodeEncodeError):
                s.value = "\ud800"  # a lone surrogate is not UTF-8
            self.assertEqual(s.value, "hello, w\u00f6rld!")
            big = "x" * 100000
            s.value = big
            self.assertEqual(s.value, big)
            s.clear()
            self.assertEqual(s.value, "")


class TestDeque(SegmentTest):
    def test_random_ops_against_collections_deque(self):
        import collections
        rnd = random.Random(7)
        with commy.Segment(self.path()) as seg:
            d = seg.deque("d", commy.bytes_)
            model = collections.deque()
            for _ in range(3000):
                op = rnd.randrange(5)
                x = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
                if op == 0:
                    d.append(x); model.append(x)
                elif op == 1:
                    d.appendleft(x); model.appendleft(x)
                elif op == 2 and model:
                    self.assertEqual(d.pop(), model.pop())
                elif op == 3 and model:
                    self.assertEqual(d.popleft(), model.popleft())
                elif op == 4 and model:
                    self.assertEqual(d[0], model[0])
                    self.assertEqual(d[-1], model[-1])
                self.assertEqual(len(d), len(model))
            self.assertEqual(list(d), list(model))
            d.clear()
            self.assertFalse(d)
            with self.assertRaises(IndexError):
                d.pop()
            with self.assertRaises(commy.EmptyError):
                d.popleft()

    def test_popleft_with_timeout(self):
        import time
        with commy.Segment(self.path()) as seg:
            d = seg.deque("q", commy.i64)
            t0 = time.monotonic()
            with self.assertRaises(commy.TimeoutError) as cm:
                d.popleft(timeout=0.1)
            self.assertIsInstance(cm.exception, TimeoutError)
            self.assertGreaterEqual(time.monotonic() - t0, 0.09)
            d.append(3)
            self.assertEqual(d.popleft(timeout=1), 3)


class TestMap(SegmentTest):
    def check_against_dict(self, m, keygen, valgen, n=3000, seed=1):
        rnd = random.Random(seed)
        model = {}
        keys = [keygen(rnd) for _ in range(200)]
        for _ in range(n):
            k = rnd.choice(keys)
            op = rnd.randrange(4)
            if op < 2:
                v = valgen(rnd)
                m[k] = v; model[k] = v
            elif op == 2:
                if k in model:
                    del m[k]; del model[k]
                else:
                    with self.assertRaises(KeyError):
                        del m[k]
            else:
                self.assertEqual(m.get(k), model.get(k))
                self.assertEqual(k in m, k in model)
        self.assertEqual(len(m), len(model))
        self.assertEqual(dict(m.items()), model)
        self.assertEqual(m.to_dict(), model)
        self.assertEqual(sorted(m), sorted(model))

    def test_i64_to_i64(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("m", key=commy.i64, value=commy.i64)
            self.check_against_dict(m, lambda r: r.randrange(-2**63, 2**63), lambda r: r.randrange(-2**63, 2**63))

    def test_str_to_bytes(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("m", key=commy.str_, value=commy.bytes_)
            self.check_against_dict(m, lambda r: "k\u00e9" * r.randrange(0, 30) + str(r.random()),
                                    lambda r: bytes(r.randrange(256) for _ in range(r.randrange(0, 600))))

    def test_mapping_api_and_conversion_errors(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("config", key=commy.str_, value=commy.i64)
            m.update({"a": 1, "b": 2})
            self.assertEqual(m.setdefault("c", 3), 3)
            self.assertEqual(m.pop("a"), 1)
            self.assertEqual(m.pop("a", None), None)
            with self.assertRaises(KeyError):
                m["zz"]
            self.assertEqual(set(m.keys()), {"b", "c"})
            self.assertEqual(sorted(m.values()), [2, 3])
            self.assertNotIn(5, m)  # a key of another Python type is simply absent
            with self.assertRaises(TypeError):
                m[5] = 1
            with self.assertRaises(OverflowError):
                m["big"] = 2**64
            with self.assertRaises(TypeError):
                m["f"] = 1.5
            self.assertNotIn("big", m)
            self.assertEqual(m.value_type, commy.i64)
            m.clear()
            self.assertEqual(len(m), 0)
            self.assertEqual(m, {})

    def test_float_keys(self):
        with commy.Segment(self.path()) as seg:
            m = seg.map("f", key=commy.f64, value=commy.str_)
            m[0.0] = "zero"
            self.assertEqual(m[-0.0], "zero")  # -0.0 == 0.0, as in a dict
            m[1] = "one"                        # an int converts exactly
            self.assertEqual(m[1.0], "one")


class TestSet(SegmentTest):
    def test_random_ops_against_set(self):
        rnd = random.Random(3)
        with commy.Segment(self.path()) as seg:
            s = seg.set("s", commy.i32)
            model = set()
            for _ in range(3000):
                x = rnd.randrange(-500, 500)
                if rnd.random() < 0.6:
                    self.assertEqual(s.add(x), x not in model)
                    model.add(x)
                else:
                    s.discard(x); model.discard(x)
            self.assertEqual(set(s), model)
            self.assertEqual(len(s), len(model))
            self.assertEqual(s & {1, 2, 3}, model & {1, 2, 3})
            self.assertTrue(s == model)
            with self.assertRaises(KeyError):
                s.remove(10**6 % 7 + 1000)
            self.assertNotIn("x", s)


class TestOrdered(SegmentTest):
    def test_ordered_map_against_sorted_dict(self):
        rnd = random.Random(11)
        with commy.Segment(self.path()) as seg:
            m = seg.ordered_map("om", key=commy.i64, value=commy.str_)
            model = {}
            for _ in range(4000):
                k = rnd.randrange(-1000, 1000)
                if rnd.random() < 0.7:
                    m[k] = str(k * 2); model[k] = str(k * 2)
                elif k in model:
                    del m[k]; del model[k]
            keys = sorted(model)
            self.assertEqual(list(m), keys)
            self.assertEqual(list(m.items()), [(k, model[k]) for k in keys])
            self.assertEqual(m.first(), (keys[0], model[keys[0]]))
            self.assertEqual(m.last(), (keys[-1], model[keys[-1]]))
            self.assertEqual(list(m.irange(-100, 100)), [k for k in keys if -100 <= k <= 100])
            self.assertEqual(list(m.irange(-100, 100, inclusive=(False, False))), [k for k in keys if -100 < k < 100])
            self.assertEqual(list(m.irange(hi=-900)), [k for k in keys if k <= -900])
            self.assertEqual(list(m.irange_items(990)), [(k, model[k]) for k in keys if k >= 990])
            for probe in range(-1010, 1010, 37):
                ge = [k for k in keys if k >= probe]
                gt = [k for k in keys if k > probe]
                self.assertEqual(m.lower_bound(probe), (ge[0], model[ge[0]]) if ge else None)
                self.assertEqual(m.upper_bound(probe), (gt[0], model[gt[0]]) if gt else None)
            m.clear()
            self.assertIsNone(m.first())
            self.assertIsNone(m.last())

    def test_ordered_set_of_strings(self):
        with commy.Segment(self.path()) as seg:
            s = seg.ordered_set("os", commy.str_)
            words = ["pear", "apple", "fig", "banana", "cherry", "apple"]
            for w in words:
                s.add(w)
            self.assertEqual(list(s), sorted(set(words)))
            self.assertEqual(list(s.irange("b", "d")), ["banana", "cherry"])
            self.assertEqual(s.first(), "apple")
            self.assertEqual(s.last(), "pear")
            self.assertEqual(s.lower_bound("c"), "cherry")
            self.assertEqual(s.upper_bound("pear"), None)
            s.discard("fig")
            self.assertNotIn("fig", s)
            self.assertEqual(len(s), 4)

    def test_irange_survives_concurrent_change(self):
        with commy.Segment(self.path()) as seg:
            m = seg.ordered_map("om", key=commy.i64, value=commy.i64)
            for k in range(2000):
                m[k] = k
            got = []
            for k in m.irange():
                got.append(k)
                if k == 500:
                    m[5000] = 1   # changes the map mid-iteration
                    del m[10]
            self.assertEqual(got, list(range(2000)) + [5000])


class TestCSlots(SegmentTest):
    """The hot operations are C slots (commy.native.MapCore, ...): they must
    behave as the Python protocols say, for every kind that shares them."""

    def test_map_protocol_in_c(self):
        with commy.Segment(self.path()) as seg:
            for m in (seg.map("m", key=commy.str_, value=commy.f64),
                      seg.ordered_map("om", key=commy.str_, value=commy.f64)):
                m["a"] = 1.5
                m["b"] = 2
                self.assertEqual((m["a"], m["b"], len(m)), (1.5, 2.0, 2))
                self.assertEqual((m.get("a"), m.get("zz"), m.get("zz", 7)), (1.5, None, 7))
                with self.assertRaises(KeyError) as cm:
                    m["zz"]
                self.assertEqual(cm.exception.args, ("zz",))
                self.assertTrue("a" in m)
                self.assertFalse("zz" in m)
                self.assertFalse(5 in m)           # another type: absent, as in a dict
                with self.assertRaises(TypeError):
                    m[5]
                with self.assertRaises(TypeError):
                    m["c"] = "not a float"
                del m["a"]
                with self.assertRaises(KeyError):
                    del m["a"]
                self.assertEqual(dict(m.items()), {"b": 2.0})
                with self.assertRaises(TypeError):
                    m.get()

    def test_vec_protocol_in_c(self):
        with commy.Segment(self.path()) as seg:
            v = seg.vec("v", commy.i32)
            for x in range(6):
                v.append(x)
            self.assertEqual((v[0], v[-1], v[-6], len(v)), (0, 5, 0, 6))
            for bad in (6, -7, 2**70, -2**70):
                with self.assertRaises(IndexError):
                    v[bad]
            with self.assertRaises(TypeError):
                v["0"]
            v[-1] = 50
            v[1:3] = [10, 20]
            self.assertEqual(v[0:6:2], [0, 20, 4])
            del v[0]
            del v[-1]
            del v[0:1]
            self.assertEqual(list(v), [20, 3, 4])
            with self.assertRaises(OverflowError):
                v.append(2**31)
            with self.assertRaises(OverflowError):
                v[0] = 2**31
            self.assertEqual(list(v), [20, 3, 4])

    def test_set_box_deque_in_c(self):
        with commy.Segment(self.path()) as seg:
            for s in (seg.set("s", commy.i64), seg.ordered_set("os", commy.i64)):
                self.assertTrue(s.add(1))
                self.assertFalse(s.add(1))
                self.assertIsNone(s.discard(1))
                self.assertIsNone(s.discard(1))
                self.assertEqual(len(s), 0)
                with self.assertRaises(KeyError):
                    s.remove(1)
            b = seg.box("b", commy.u8)
            b.value = 200
            self.assertEqual((b.value, b.get()), (200, 200))
            with self.assertRaises(AttributeError):
                del b.value
            d = seg.deque("d", commy.i64)
            self.assertFalse(d)
            d.append(2)
            d.appendleft(1)
            self.assertTrue(d)
            self.assertEqual((len(d), d.tolist()), (2, [1, 2]))

    def test_every_c_slot_raises_closed_after_close(self):
        with commy.Segment(self.path()) as seg:
            m, v, s = seg.map("m", key=commy.i64, value=commy.i64), seg.vec("v", commy.i64), seg.set("s", commy.i64)
            b, d = seg.box("b", commy.i64), seg.deque("d", commy.i64)
            for c in (m, v, s, b, d):
                c.close()
            self.assertIsNone(m._h)
            ops = [lambda: m[1], lambda: m.__setitem__(1, 1), lambda: m.__delitem__(1), lambda: 1 in m,
                   lambda: len(m), lambda: m.get(1), lambda: v[0], lambda: v.__setitem__(0, 1), lambda: v.append(1),
                   lambda: len(v), lambda: s.add(1), lambda: s.discard(1), lambda: 1 in s, lambda: b.value,
                   lambda: setattr(b, "value", 1), lambda: d.append(1), lambda: d.appendleft(1), lambda: len(d)]
            for i, op in enumerate(ops):
                with self.subTest(op=i), self.assertRaises(commy.ClosedError):
                    op()

    def test_close_while_calls_run_without_the_gil(self):
        # Containers of a remote service release the GIL in every call; a
        # local segment marked _remote takes the same path. close() from
        # another thread must wait for calls in flight, not free under them.
        import threading
        with commy.Segment(self.path()) as seg:
            seg._remote = True
            m, v = seg.map("m", key=commy.i64, value=commy.i64), seg.vec("v", commy.i64)
            errors, counts = [], [0, 0]

            def hammer(i, op):
                try:
                    while True:
                        op(counts[i])
                        counts[i] += 1
                except commy.ClosedError:
                    pass
                except BaseException as e:  # anything else is a failure
                    errors.append(e)

            threads = [threading.Thread(target=hammer, args=(0, lambda k: (m.__setitem__(k, k), m[k], len(m)))),
                       threading.Thread(target=hammer, args=(1, lambda k: (v.append(k), v[-1])))]
            for t in threads:
                t.start()
            while min(counts) < 200:
                threading.Event().wait(0.001)
            m.close()
            v.close()
            for t in threads:
                t.join(10)
                self.assertFalse(t.is_alive())
            self.assertEqual(errors, [])
            self.assertIsNone(m._pending)
            self.assertIsNone(v._pending)

    def test_handle_cannot_be_swapped_for_another_kind(self):
        with commy.Segment(self.path()) as seg:
            m, v = seg.map("m", key=commy.i64, value=commy.i64), seg.vec("v", commy.i64)
            with self.assertRaises(AttributeError):
                m._h = v._h
            with self.assertRaises(ValueError):
                m._bind(5, v._h, 1, 1)
            with self.assertRaises(AttributeError):
                m._kt = 1


if __name__ == "__main__":
    unittest.main()
