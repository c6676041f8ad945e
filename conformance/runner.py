#!/usr/bin/env python3
"""The Python conformance runner: runs the language-neutral scenarios of
conformance/scenarios/ and the golden files of conformance/golden/ through the
`commy` package's public API only. Same command lines and output as runner_c:

    runner.py write  SEGDIR SCENARIO.json...
    runner.py read   SEGDIR SCENARIO.json...
    runner.py golden GOLDENDIR
    runner.py concurrent SEG ID MS WORKERS

Idiomatic Python answers are translated to the scenario's error names here,
and only here (conformance/README.md, "Errors"): a commy.Error carries its
code; KeyError from a mapping or set is ENOTFOUND; IndexError is EEMPTY for
pop/front/back and ERANGE for an index; None from first/last is EEMPTY and
from a bound ENOTFOUND.
"""

import json
import math
import os
import struct
import sys
import time

import commy

ERRORS = {
    0: "OK", -1: "EINVAL", -2: "ENOMEM", -3: "EIO", -4: "ENOTFOUND", -5: "EEXISTS", -6: "ETYPE", -7: "ELAYOUT",
    -8: "ECORRUPT", -9: "ENOSPC", -10: "ETIMEDOUT", -11: "EBUSY", -12: "EPERM", -13: "ECLOSED", -14: "ERANGE",
    -15: "EEMPTY", -16: "ETOOSMALL", -17: "ECONCURRENT", -18: "EUTF8", -19: "EBADFREE", -20: "ENOTSUP",
    -21: "EJOURNAL",
}
INTS = {"i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"}
EMPTY_OPS = {"pop", "pop_front", "pop_back", "front", "back", "first", "last"}


class ScenarioError(Exception):
    """The scenario itself is malformed."""


class Mismatch(Exception):
    """The library answered differently from the scenario."""


# ---- types and values ----

def parse_type(s):
    if s is None or s == "any":
        return None
    if s.startswith("blob[") and s.endswith("]"):
        return commy.blob(int(s[5:-1]))
    named = {"i8": commy.i8, "i16": commy.i16, "i32": commy.i32, "i64": commy.i64, "u8": commy.u8,
             "u16": commy.u16, "u32": commy.u32, "u64": commy.u64, "f32": commy.f32, "f64": commy.f64,
             "bool": commy.bool_, "bytes": commy.bytes_, "str": commy.str_}
    if s not in named:
        raise ScenarioError("unknown element type %r" % s)
    return named[s]


def base_name(t):
    """'i64', 'f32', 'blob' ... for a type string."""
    return "blob" if t.startswith("blob[") else t


def decode(t, j):
    """The JSON form of a value of type t -> the Python value the API takes."""
    b = base_name(t)
    if b in INTS:
        if isinstance(j, bool) or not isinstance(j, (int, str)):
            raise ScenarioError("expected an integer, got %r" % (j,))
        return int(j)
    if b in ("f32", "f64"):
        if isinstance(j, str):
            specials = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0}
            return specials[j] if j in specials else float(j)
        return float(j)
    if b == "bool":
        if not isinstance(j, bool):
            raise ScenarioError("expected true or false, got %r" % (j,))
        return j
    if b == "str":
        return j
    return bytes.fromhex(j)


def same(t, got, j):
    """got (from the API) is the value j of type t. Floats compare by bits
    (-0.0 differs from 0.0) except that every NaN matches "nan"."""
    want = decode(t, j)
    b = base_name(t)
    if b in ("f32", "f64"):
        if not isinstance(got, float):
            return False
        if b == "f32":
            want = struct.unpack("<f", struct.pack("<f", want))[0]
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if b == "bool":
        return got is want
    if b in INTS:
        return isinstance(got, int) and not isinstance(got, bool) and got == want
    if b == "str":
        return isinstance(got, str) and got == want
    return isinstance(got, (bytes, bytearray)) and bytes(got) == want


def same_entry(kt, vt, got, j, pair):
    if not pair:
        return same(kt, got, j)
    return isinstance(j, list) and len(j) == 2 and same(kt, got[0], j[0]) and same(vt, got[1], j[1])


# ---- one scenario ----

class Slot:
    def __init__(self, kind, obj, kt, vt):
        self.kind, self.obj, self.kt, self.vt = kind, obj, kt, vt


def type_string(et):
    """commy.ElementType -> the scenario's type string."""
    return et.name


def do_open(seg, step, slots):
    kind = step["kind"]
    types = step.get("types") or []
    kt = parse_type(types[0]) if len(types) > 0 else None
    vt = parse_type(types[1]) if len(types) > 1 else None
    flags = step.get("flags", [])
    mode = "existing" if "existing" in flags else "new" if "excl" in flags else "create"
    old = slots.pop(step["c"], None)
    if old is not None:
        old.obj.close()
    if kind == "box":
        obj = seg.box(step.get("name", step["c"]), kt, open=mode)
    elif kind == "vec":
        obj = seg.vec(step.get("name", step["c"]), kt, open=mode)
    elif kind == "str":
        obj = seg.str(step.get("name", step["c"]), open=mode)
    elif kind == "deque":
        obj = seg.deque(step.get("name", step["c"]), kt, open=mode)
    elif kind == "map":
        obj = seg.map(step.get("name", step["c"]), key=kt, value=vt, open=mode)
    elif kind == "set":
        obj = seg.set(step.get("name", step["c"]), kt, open=mode)
    elif kind == "omap":
        obj = seg.ordered_map(step.get("name", step["c"]), key=kt, value=vt, open=mode)
    elif kind == "oset":
        obj = seg.ordered_set(step.get("name", step["c"]), kt, open=mode)
    else:
        raise ScenarioError("unknown kind %r" % kind)
    # The stored types: a reader that opened with "any" checks what it finds.
    skt = "str" if kind == "str" else type_string(obj.type)
    svt = type_string(obj.value_type) if kind in ("map", "omap") else None
    slots[step["c"]] = Slot(kind, obj, skt, svt)
    return None


class Missing(Exception):
    """A None answer that the C API gives as an error code."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


def none_is(v, name):
    if v is None:
        raise Missing(name)
    return v


def do_op(s, op, step):
    """Runs one operation; returns (what, result): what is 'value', 'key', 'pair',
    'int', 'bool', 'list', 'pairs' or None."""
    o, kind, kt, vt = s.obj, s.kind, s.kt, s.vt
    elem_t = vt if kind in ("map", "omap") else kt
    key = decode(kt, step["key"]) if step.get("key") is not None else None
    val = decode(elem_t, step["value"]) if "value" in step else None
    idx = int(step["index"]) if "index" in step else None
    if kind == "box":
        if op == "get":
            return "value", o.value
        if op == "set":
            o.value = val
            return None, None
        if op == "cas":
            return "value", o.compare_exchange(decode(kt, step["expected"]), decode(kt, step["desired"]))
        if op == "fetch_add":
            return "value", o.fetch_add(int(step["delta"]))
    elif kind == "vec":
        if op == "len":
            return "int", len(o)
        if op == "push":
            o.append(val)
            return None, None
        if op == "pop":
            return "value", o.pop()
        if op == "get":
            return "value", o[idx]
        if op == "set":
            o[idx] = val
            return None, None
        if op == "insert":
            if idx > len(o):
                raise IndexError("insert past the end")  # list.insert would clamp; the scenario wants ERANGE
            o.insert(idx, val)
            return None, None
        if op == "remove":
            del o[idx]
            return None, None
        if op == "clear":
            o.clear()
            return None, None
        if op == "iterate":
            return "list", o.tolist()
    elif kind == "str":
        if op == "len":
            return "int", len(o)
        if op == "set":
            o.value = val
            return None, None
        if op == "append":
            o.append(val)
            return None, None
        if op == "get":
            return "value", o.value
        if op == "clear":
            o.clear()
            return None, None
    elif kind == "deque":
        if op == "len":
            return "int", len(o)
        if op == "push_back":
            o.append(val)
            return None, None
        if op == "push_front":
            o.appendleft(val)
            return None, None
        if op == "pop_back":
            return "value", o.pop()
        if op == "pop_front":
            return "value", o.popleft()
        if op in ("front", "back"):
            # Python's deque idiom has no front(): d[0] / d[-1] raise IndexError when empty.
            try:
                return "value", o[0 if op == "front" else -1]
            except IndexError:
                raise Missing("EEMPTY") from None
        if op == "get":
            return "value", o[idx]
        if op == "set":
            o[idx] = val
            return None, None
        if op == "clear":
            o.clear()
            return None, None
        if op == "iterate":
            return "list", o.tolist()
    elif kind in ("map", "omap"):
        if op == "len":
            return "int", len(o)
        if op == "put":
            o[key] = val
            return None, None
        if op == "get":
            return "value", o[key]
        if op == "remove":
            del o[key]
            return None, None
        if op == "contains":
            return "bool", key in o
        if op == "clear":
            o.clear()
            return None, None
        if op == "iterate":
            if kind == "omap":
                return "pairs", list(o.irange_items())
            return "pairs", [(k, o[k]) for k in o]
        if kind == "omap":
            if op == "first":
                return "pair", none_is(o.first(), "EEMPTY")
            if op == "last":
                return "pair", none_is(o.last(), "EEMPTY")
            if op == "lower_bound":
                return "pair", none_is(o.lower_bound(key), "ENOTFOUND")
            if op == "upper_bound":
                return "pair", none_is(o.upper_bound(key), "ENOTFOUND")
            if op == "range":
                lo = decode(kt, step["from"]) if step.get("from") is not None else None
                return "pairs", list(o.irange_items(lo, None, (step.get("inclusive", True), True)))
    elif kind in ("set", "oset"):
        if op == "len":
            return "int", len(o)
        if op == "add":
            return "bool", o.add(key)
        if op == "remove":
            o.remove(key)
            return None, None
        if op == "contains":
            return "bool", key in o
        if op == "clear":
            o.clear()
            return None, None
        if op == "iterate":
            return "list", list(o)
        if kind == "oset":
            if op == "first":
                return "key", none_is(o.first(), "EEMPTY")
            if op == "last":
                return "key", none_is(o.last(), "EEMPTY")
            if op == "lower_bound":
                return "key", none_is(o.lower_bound(key), "ENOTFOUND")
            if op == "upper_bound":
                return "key", none_is(o.upper_bound(key), "ENOTFOUND")
            if op == "range":
                lo = decode(kt, step["from"]) if step.get("from") is not None else None
                return "list", list(o.irange(lo, None, (step.get("inclusive", True), True)))
    raise ScenarioError("operation %r does not exist for a %s" % (op, kind))


def error_name(e, op):
    """The scenario's name for what the API raised (module docstring)."""
    if isinstance(e, commy.Error):
        return ERRORS.get(e.code, "E?%d" % e.code)
    if isinstance(e, Missing):
        return e.name
    if isinstance(e, KeyError):
        return "ENOTFOUND"
    if isinstance(e, IndexError):
        return "EEMPTY" if op in EMPTY_OPS else "ERANGE"
    return None


def show(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex() or "(empty)"
    if isinstance(v, tuple):
        return "[%s]" % ", ".join(show(x) for x in v)
    return repr(v)


def check(s, what, got, step):
    if "expect" not in step:
        return
    exp = step["expect"]
    elem_t = s.vt if s.kind in ("map", "omap") else s.kt
    if what is None:
        raise ScenarioError("this operation has no result to expect")
    if what == "value":
        ok = same(elem_t, got, exp)
    elif what == "key":
        ok = same(s.kt, got, exp)
    elif what == "pair":
        ok = same_entry(s.kt, s.vt, got, exp, True)
    elif what == "int":
        ok = got == int(exp)
    elif what == "bool":
        ok = got is exp
    else:
        pair = what == "pairs"
        if not isinstance(exp, list):
            raise ScenarioError("expect must be a list here")
        if len(got) != len(exp):
            raise Mismatch("%d entries, expected %d (got %s)" % (len(got), len(exp), show(tuple(got))))
        if step.get("unordered"):
            used = [False] * len(exp)
            for g in got:
                for i, e in enumerate(exp):
                    if not used[i] and same_entry(s.kt, s.vt, g, e, pair):
                        used[i] = True
                        break
                else:
                    raise Mismatch("unexpected entry %s" % show(g))
        else:
            for i, (g, e) in enumerate(zip(got, exp)):
                if not same_entry(s.kt, s.vt, g, e, pair):
                    raise Mismatch("entry %d is %s, expected %s" % (i, show(g), json.dumps(e)))
        return
    if not ok:
        raise Mismatch("got %s, expected %s" % (show(got), json.dumps(exp)))


def run_step(seg, step, slots):
    op = step.get("op")
    want = step.get("error")
    if want is not None and want not in ERRORS.values():
        raise ScenarioError("unknown error name %r" % want)
    try:
        if op == "open":
            do_open(seg, step, slots)
            what = got = None
        elif op == "close":
            slots.pop(step["c"]).obj.close()
            what = got = None
        else:
            s = slots.get(step.get("c"))
            if s is None:
                raise ScenarioError("%s on container %r, which is not open" % (op, step.get("c")))
            what, got = do_op(s, op, step)
    except (ScenarioError, Mismatch):
        raise
    except Exception as e:
        name = error_name(e, op)
        if name is None:
            raise Mismatch("%s raised %s: %s" % (op, type(e).__name__, e))
        if name != want:
            raise Mismatch("%s failed with %s (%s: %s), expected %s" % (op, name, type(e).__name__, e,
                                                                      want or "success"))
        return
    if want is not None:
        raise Mismatch("%s succeeded, expected %s" % (op, want))
    if op not in ("open", "close"):
        check(s, what, got, step)


def run_steps(seg, steps):
    slots = {}
    try:
        for i, step in enumerate(steps):
            try:
                run_step(seg, step, slots)
            except (ScenarioError, Mismatch) as e:
                raise Mismatch("step %d %s: %s" % (i, json.dumps(step, ensure_ascii=False)[:400], e)) from None
    finally:
        for s in slots.values():
            s.obj.close()


FAILED = False


def report(ok, phase, name, why=""):
    global FAILED
    if ok:
        print("PASS %s %s" % (phase, name), flush=True)
    else:
        FAILED = True
        print("FAIL %s %s: %s" % (phase, name, why), flush=True)


def run_scenario(phase, segdir, path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        report(False, phase, path, "cannot read or parse: %s" % e)
        return
    name = doc.get("name", path)
    if phase not in doc:
        report(True, phase, name)
        return
    seg_path = os.path.join(segdir, name + ".seg")
    try:
        if phase == "write":
            try:
                os.unlink(seg_path)
            except FileNotFoundError:
                pass
            seg = commy.Segment(seg_path, exclusive=True)
        else:
            seg = commy.Segment(seg_path, create=False)
        with seg:
            run_steps(seg, doc[phase])
            seg.check()
        report(True, phase, name)
    except Mismatch as e:
        report(False, phase, name, str(e))
    except Exception as e:
        report(False, phase, name, "%s: %s" % (type(e).__name__, e))


def golden(gdir):
    for fn in sorted(os.listdir(gdir)):
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(gdir, fn), encoding="utf-8") as f:
            doc = json.load(f)
        name = doc.get("name", fn)
        path = os.path.join(gdir, doc["file"])
        want = doc.get("open_error")
        try:
            seg = commy.Segment(path, create=False, readonly=True)
        except Exception as e:
            got = error_name(e, "open")
            if want is None:
                report(False, "golden", name, "opening read-only failed: %s: %s" % (type(e).__name__, e))
            elif got != want:
                report(False, "golden", name, "refused with %s (%s: %s), expected %s" % (got, type(e).__name__, e, want))
            else:
                report(True, "golden", name)
            continue
        with seg:
            if want is not None:
                report(False, "golden", name, "opened, but must be refused with %s" % want)
                continue
            try:
                run_steps(seg, doc["read"])
                report(True, "golden", name)
            except Mismatch as e:
                report(False, "golden", name, str(e))
            except Exception as e:
                report(False, "golden", name, "%s: %s" % (type(e).__name__, e))


STRIDE = 100000000


def concurrent(path, wid, ms, workers):
    """As runner_c's worker: after every worker checks in, push wid * STRIDE + i
    and add 1 to the box for ms milliseconds, then record the count."""
    try:
        with commy.Segment(path) as seg:
            q = seg.deque("conc_queue", commy.i64)
            count = seg.box("conc_count", commy.i64)
            ready = seg.box("conc_ready", commy.i64)
            pushed = seg.box("conc_pushed_%d" % wid, commy.i64, open="new")
            ready.fetch_add(1)
            deadline = time.monotonic() + 30
            while True:
                seen = ready.version
                if ready.value >= workers:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("only %d of %d workers checked in within 30 s" % (ready.value, workers))
                ready.wait_change(seen, 0.1)
            i = 0
            end = time.monotonic() + ms / 1000.0
            base = wid * STRIDE
            while time.monotonic() < end:
                q.append(base + i)
                count.fetch_add(1)
                i += 1
            pushed.value = i
            for c in (q, count, ready, pushed):
                c.close()
        report(True, "concurrent", "python")
    except Exception as e:
        report(False, "concurrent", "python", "%s: %s" % (type(e).__name__, e))


def main(argv):
    if len(argv) >= 4 and argv[1] in ("write", "read"):
        for p in argv[3:]:
            run_scenario(argv[1], argv[2], p)
    elif len(argv) == 3 and argv[1] == "golden":
        golden(argv[2])
    elif len(argv) == 6 and argv[1] == "concurrent":
        concurrent(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
