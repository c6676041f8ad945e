#!/usr/bin/env python3
"""Writes conformance/scenarios/<kind>_<type>.json: one scenario for every
container kind and every element type, with the expected results computed by
the simple in-memory model below. The JSON files are the suite (committed);
this script only saves writing 99 of them by hand. Re-run it after changing
the model:  python3 conformance/gen_scenarios.py"""
import json
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "scenarios")

INT_RANGE = {
    "i8": (-2**7, 2**7 - 1), "i16": (-2**15, 2**15 - 1), "i32": (-2**31, 2**31 - 1), "i64": (-2**63, 2**63 - 1),
    "u8": (0, 2**8 - 1), "u16": (0, 2**16 - 1), "u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1),
}
TYPES = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "bool", "bytes", "str", "blob[4]"]

# Five distinct values per type, in ascending order by the type's ordering
# (numbers by value, bytes and str bytewise). Floats as Python floats.
SAMPLES = {
    "i8": [-128, -1, 0, 7, 127],
    "i16": [-32768, -300, 0, 300, 32767],
    "i32": [-2147483648, -70000, 0, 70000, 2147483647],
    "i64": [-2**63, -5000000000, 0, 2**53 + 1, 2**63 - 1],
    "u8": [0, 1, 128, 200, 255],
    "u16": [0, 1, 255, 40000, 65535],
    "u32": [0, 1, 65536, 3000000000, 4294967295],
    "u64": [0, 1, 4294967296, 2**63, 2**64 - 1],
    "f32": [-math.inf, -2.5, 0.0, 1.5, 3.4028234663852886e38],
    "f64": [-math.inf, -1e300, 0.0, 0.1, math.inf],
    "bool": [False, True],
    "bytes": [b"", b"\x00", b"\x00\x01\xff", b"ABCD", b"\xff"],
    "str": ["", "A", "a", "\u00e9", "\u65e5\u672c\u8a9e"],
    "blob[4]": [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xff\xff\xff"],
}
# Extra values for sequences: the float forms every language must carry exactly.
SPECIALS = {"f32": [math.nan, -0.0, math.inf], "f64": [math.nan, -0.0, 5e-324], "bool": [True, False, True]}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def enc(t, v):
    """The JSON form of a value of type t (conformance/README.md)."""
    if t in INT_RANGE:
        return v if -2**53 <= v <= 2**53 else str(v)
    if t in ("f32", "f64"):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0 and math.copysign(1, v) < 0:
            return "-0.0"
        return v
    if t == "bool":
        return v
    if t == "str":
        return v
    return v.hex()


def canon_key(t, v):
    # Keys are canonical in storage: -0.0 is stored as +0.0 (docs/format.md).
    if t in ("f32", "f64") and v == 0:
        return 0.0
    return v


def other_type(t):
    return "f64" if t != "f64" else "i64"


def wrong_opens(name, kind, types, probe):
    """Every reader must refuse the container under another type and another
    kind, and find its types when it opens it with "any"."""
    wt = [other_type(x) for x in types]
    other_kind = "vec" if kind != "vec" else "deque"
    okt = ["i64"] if other_kind in ("vec", "deque") else None
    anyt = ["any"] * len(types)
    return [
        {"op": "open", "c": "any", "name": name, "kind": kind, "types": anyt, "flags": ["existing"]},
        dict(probe, c="any"),
        {"op": "open", "c": "wrongkind", "name": name, "kind": other_kind, "types": ["any"], "flags": ["existing"],
         "error": "ETYPE"},
        {"op": "open", "c": "wrongtype", "name": name, "kind": kind, "types": wt, "flags": ["existing"], "error": "ETYPE"},
        {"op": "open", "c": "wrongkind", "name": name, "kind": other_kind, "types": okt, "flags": ["existing"], "error": "ETYPE"},
    ]


def box(t):
    n = "box_" + tname(t)
    s = SAMPLES[t]
    w = [{"op": "open", "c": "b", "name": n, "kind": "box", "types": [t]}]
    zero = {"str": "", "bytes": b"", "bool": False, "blob[4]": b"\0\0\0\0"}.get(t, 0)
    w.append({"op": "get", "c": "b", "expect": enc(t, zero)})
    if t in INT_RANGE:
        lo, hi = INT_RANGE[t]
        w += [
            {"op": "set", "c": "b", "value": enc(t, hi)},
            {"op": "fetch_add", "c": "b", "delta": 1, "expect": enc(t, hi)},
            {"op": "get", "c": "b", "expect": enc(t, lo)},  # wrapped at the type's width
            {"op": "set", "c": "b", "value": enc(t, s[1])},
            {"op": "cas", "c": "b", "expected": enc(t, s[1]), "desired": enc(t, s[3]), "expect": enc(t, s[1])},
            {"op": "cas", "c": "b", "expected": enc(t, s[1]), "desired": enc(t, s[0]), "expect": enc(t, s[3])},
            {"op": "fetch_add", "c": "b", "delta": -1, "expect": enc(t, s[3])},
        ]
        final = s[3] - 1
    elif t in ("f32", "f64"):
        w += [{"op": "set", "c": "b", "value": "nan"}, {"op": "get", "c": "b", "expect": "nan"},
              {"op": "set", "c": "b", "value": "-0.0"}]
        final = -0.0
    else:
        w += [{"op": "set", "c": "b", "value": enc(t, s[len(s) // 2])},
              {"op": "get", "c": "b", "expect": enc(t, s[len(s) // 2])},
              {"op": "set", "c": "b", "value": enc(t, s[-1])}]
        final = s[-1]
    if t not in INT_RANGE:
        # Only integer boxes have compare-and-swap and fetch-add.
        w += [{"op": "cas", "c": "b", "expected": enc(t, s[0]), "desired": enc(t, s[-1]), "error": "ENOTSUP"},
              {"op": "fetch_add", "c": "b", "delta": 1, "error": "ENOTSUP"}]
    w.append({"op": "get", "c": "b", "expect": enc(t, final)})
    r = [{"op": "open", "c": "b", "name": n, "kind": "box", "types": [t], "flags": ["existing"]},
         {"op": "get", "c": "b", "expect": enc(t, final)}] + wrong_opens(n, "box", [t], {"op": "get", "expect": enc(t, final)})
    return n, w, r


def seq_values(t):
    return SAMPLES[t] + SPECIALS.get(t, [])


def vec(t):
    n = "vec_" + tname(t)
    vals = seq_values(t)
    model = []
    w = [{"op": "open", "c": "v", "name": n, "kind": "vec", "types": [t]}, {"op": "len", "c": "v", "expect": 0},
         {"op": "pop", "c": "v", "error": "EEMPTY"}]
    for v in vals:
        w.append({"op": "push", "c": "v", "value": enc(t, v)})
        model.append(v)
    w.append({"op": "len", "c": "v", "expect": len(model)})
    w.append({"op": "get", "c": "v", "index": len(model), "error": "ERANGE"})
    w.append({"op": "set", "c": "v", "index": 1, "value": enc(t, vals[-1])})
    model[1] = vals[-1]
    w.append({"op": "insert", "c": "v", "index": 0, "value": enc(t, vals[2])})
    model.insert(0, vals[2])
    w.append({"op": "remove", "c": "v", "index": 2})
    del model[2]
    w.append({"op": "pop", "c": "v", "expect": enc(t, model.pop())})
    w.append({"op": "get", "c": "v", "index": 0, "expect": enc(t, model[0])})
    w.append({"op": "iterate", "c": "v", "expect": [enc(t, x) for x in model]})
    r = [{"op": "open", "c": "v", "name": n, "kind": "vec", "types": [t], "flags": ["existing"]},
         {"op": "len", "c": "v", "expect": len(model)},
         {"op": "get", "c": "v", "index": len(model) - 1, "expect": enc(t, model[-1])},
         {"op": "get", "c": "v", "index": len(model), "error": "ERANGE"},
         {"op": "iterate", "c": "v", "expect": [enc(t, x) for x in model]}] + wrong_opens(n, "vec", [t], {"op": "len", "expect": len(model)})
    return n, w, r


def deque(t):
    n = "deque_" + tname(t)
    vals = seq_values(t)
    model = []
    w = [{"op": "open", "c": "d", "name": n, "kind": "deque", "types": [t]},
         {"op": "pop_front", "c": "d", "error": "EEMPTY"}, {"op": "back", "c": "d", "error": "EEMPTY"}]
    # Alternate ends so the ring wraps.
    for i, v in enumerate(vals):
        if i % 2:
            w.append({"op": "push_front", "c": "d", "value": enc(t, v)})
            model.insert(0, v)
        else:
            w.append({"op": "push_back", "c": "d", "value": enc(t, v)})
            model.append(v)
    w.append({"op": "pop_front", "c": "d", "expect": enc(t, model.pop(0))})
    w.append({"op": "pop_back", "c": "d", "expect": enc(t, model.pop())})
    w.append({"op": "set", "c": "d", "index": 1, "value": enc(t, vals[0])})
    model[1] = vals[0]
    w.append({"op": "get", "c": "d", "index": len(model), "error": "ERANGE"})
    w.append({"op": "iterate", "c": "d", "expect": [enc(t, x) for x in model]})
    r = [{"op": "open", "c": "d", "name": n, "kind": "deque", "types": [t], "flags": ["existing"]},
         {"op": "len", "c": "d", "expect": len(model)},
         {"op": "front", "c": "d", "expect": enc(t, model[0])},
         {"op": "back", "c": "d", "expect": enc(t, model[-1])},
         {"op": "get", "c": "d", "index": 1, "expect": enc(t, model[1])},
         {"op": "iterate", "c": "d", "expect": [enc(t, x) for x in model]}] + wrong_opens(n, "deque", [t], {"op": "len", "expect": len(model)})
    return n, w, r


def keys_for(t, ordered):
    ks = list(SAMPLES[t])
    if t in ("f32", "f64"):
        ks.append(math.nan)  # every NaN is one canonical key, ordered after +inf
    return ks


def sort_key(t, v):
    """The type's order (docs/format.md): bytewise for str and bytes, by value
    for numbers with -inf < ... < -0.0 == 0.0 < ... < +inf < NaN."""
    if t == "str":
        return v.encode()
    if t in ("f32", "f64"):
        return (1, 0.0) if math.isnan(v) else (0, v)
    return v


def hash_map(t, ordered):
    kind = "omap" if ordered else "map"
    n = kind + "_" + tname(t)
    ks = keys_for(t, ordered)
    model = {}
    w = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [t, t]}]
    order = ks[::2] + ks[1::2]  # not sorted: the tree must order them
    for i, k in enumerate(order):
        v = ks[(ks.index(k) + 1) % len(ks)]
        w.append({"op": "put", "c": "m", "key": enc(t, k), "value": enc(t, v)})
        model[mk(t, k)] = (k, v)
    # Replace one, remove one, look for a removed one.
    k0, k1 = ks[0], ks[1]
    w.append({"op": "put", "c": "m", "key": enc(t, k0), "value": enc(t, k0)})
    model[mk(t, k0)] = (k0, k0)
    w.append({"op": "remove", "c": "m", "key": enc(t, k1)})
    del model[mk(t, k1)]
    w.append({"op": "remove", "c": "m", "key": enc(t, k1), "error": "ENOTFOUND"})
    w.append({"op": "get", "c": "m", "key": enc(t, k1), "error": "ENOTFOUND"})
    w.append({"op": "contains", "c": "m", "key": enc(t, k1), "expect": False})
    if t in ("f32", "f64"):
        # -0.0 and 0.0 are one key.
        w.append({"op": "put", "c": "m", "key": "-0.0", "value": enc(t, 2.5)})
        model[mk(t, 0.0)] = (0.0, 2.5)
        w.append({"op": "get", "c": "m", "key": 0.0, "expect": enc(t, 2.5)})
    entries = list(model.values())
    if ordered:
        entries.sort(key=lambda e: sort_key(t, e[0]))
    it = [[enc(t, canon_key(t, k)), enc(t, v)] for k, v in entries]
    w.append({"op": "len", "c": "m", "expect": len(model)})
    w.append({"op": "iterate", "c": "m", "expect": it, "unordered": not ordered})
    r = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [t, t], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": len(model)}]
    for k, v in entries:
        r.append({"op": "get", "c": "m", "key": enc(t, k), "expect": enc(t, v)})
        r.append({"op": "contains", "c": "m", "key": enc(t, k), "expect": True})
    r.append({"op": "contains", "c": "m", "key": enc(t, k1), "expect": False})
    r.append({"op": "iterate", "c": "m", "expect": it, "unordered": not ordered})
    if ordered:
        r += ordered_queries(t, [e[0] for e in entries], [e[1] for e in entries], ks, True)
    r += wrong_opens(n, kind, [t, t], {"op": "len", "expect": len(model)})
    return n, w, r


def mk(t, k):
    if isinstance(k, float) and math.isnan(k):
        return "nan"
    return (type(k).__name__, canon_key(t, k))


def ordered_queries(t, keys, vals, allkeys, is_map):
    """first, last, bounds and ranges over sorted keys (with their values for maps)."""
    def ent(i):
        return [enc(t, canon_key(t, keys[i])), enc(t, vals[i])] if is_map else enc(t, canon_key(t, keys[i]))
    q = [{"op": "first", "c": "m", "expect": ent(0)}, {"op": "last", "c": "m", "expect": ent(len(keys) - 1)}]
    skeys = [sort_key(t, k) for k in keys]
    for probe in allkeys:
        sp = sort_key(t, probe)
        lb = next((i for i, k in enumerate(skeys) if k >= sp), None)
        ub = next((i for i, k in enumerate(skeys) if k > sp), None)
        q.append({"op": "lower_bound", "c": "m", "key": enc(t, probe), **({"expect": ent(lb)} if lb is not None else {"error": "ENOTFOUND"})})
        q.append({"op": "upper_bound", "c": "m", "key": enc(t, probe), **({"expect": ent(ub)} if ub is not None else {"error": "ENOTFOUND"})})
        q.append({"op": "range", "c": "m", "from": enc(t, probe), "inclusive": True,
                  "expect": [ent(i) for i in range(lb if lb is not None else len(keys), len(keys))]})
        q.append({"op": "range", "c": "m", "from": enc(t, probe), "inclusive": False,
                  "expect": [ent(i) for i in range(ub if ub is not None else len(keys), len(keys))]})
    q.append({"op": "range", "c": "m", "from": None, "inclusive": True, "expect": [ent(i) for i in range(len(keys))]})
    return q


def hash_set(t, ordered):
    kind = "oset" if ordered else "set"
    n = kind + "_" + tname(t)
    ks = keys_for(t, ordered)
    model = {}
    w = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [t]}]
    for k in ks[::-1]:
        w.append({"op": "add", "c": "m", "key": enc(t, k), "expect": True})
        model[mk(t, k)] = k
    w.append({"op": "add", "c": "m", "key": enc(t, ks[-1]), "expect": False})
    w.append({"op": "remove", "c": "m", "key": enc(t, ks[1])})
    del model[mk(t, ks[1])]
    w.append({"op": "remove", "c": "m", "key": enc(t, ks[1]), "error": "ENOTFOUND"})
    if t in ("f32", "f64"):
        w.append({"op": "add", "c": "m", "key": "-0.0", "expect": False})
        w.append({"op": "contains", "c": "m", "key": "-0.0", "expect": True})
    keys = list(model.values())
    if ordered:
        keys.sort(key=lambda k: sort_key(t, k))
    it = [enc(t, canon_key(t, k)) for k in keys]
    w.append({"op": "len", "c": "m", "expect": len(keys)})
    w.append({"op": "iterate", "c": "m", "expect": it, "unordered": not ordered})
    r = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [t], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": len(keys)}]
    for k in keys:
        r.append({"op": "contains", "c": "m", "key": enc(t, k), "expect": True})
    r.append({"op": "contains", "c": "m", "key": enc(t, ks[1]), "expect": False})
    r.append({"op": "iterate", "c": "m", "expect": it, "unordered": not ordered})
    if ordered:
        r += ordered_queries(t, keys, None, ks, False)
    r += wrong_opens(n, kind, [t], {"op": "len", "expect": len(keys)})
    return n, w, r


def string():
    n = "str_str"
    w = [{"op": "open", "c": "s", "name": n, "kind": "str", "types": ["str"]},
         {"op": "get", "c": "s", "expect": ""},
         {"op": "set", "c": "s", "value": "h\u00e9llo"},
         {"op": "append", "c": "s", "value": ", \u65e5\u672c"},
         {"op": "append", "c": "s", "value": ""},
         {"op": "len", "c": "s", "expect": 14},
         {"op": "get", "c": "s", "expect": "h\u00e9llo, \u65e5\u672c"}]
    r = [{"op": "open", "c": "s", "name": n, "kind": "str", "types": ["str"], "flags": ["existing"]},
         {"op": "len", "c": "s", "expect": 14},
         {"op": "get", "c": "s", "expect": "h\u00e9llo, \u65e5\u672c"},
         {"op": "open", "c": "wrongkind", "name": n, "kind": "vec", "types": ["str"], "flags": ["existing"], "error": "ETYPE"},
         {"op": "open", "c": "any", "name": n, "kind": "str", "types": ["any"], "flags": ["existing"]},
         {"op": "len", "c": "any", "expect": 14}]
    return n, w, r


def bulk():
    """Bigger containers: hash tables that resize, trees that split into
    several levels, a ring that wraps many times, values longer than any
    runner's first buffer. Not in the golden files (they stay small)."""
    out = []
    # map str -> i64: 1500 keys, every third removed, values replaced.
    n = "bulk_map_str_i64"
    keys = ["key-%d" % i for i in range(1500)]
    model = {}
    w = [{"op": "open", "c": "m", "name": n, "kind": "map", "types": ["str", "i64"]}]
    for i, k in enumerate(keys):
        w.append({"op": "put", "c": "m", "key": k, "value": i * 7919 - 5000000})
        model[k] = i * 7919 - 5000000
    for i, k in enumerate(keys):
        if i % 3 == 0:
            w.append({"op": "remove", "c": "m", "key": k})
            del model[k]
        elif i % 3 == 1:
            w.append({"op": "put", "c": "m", "key": k, "value": -i})
            model[k] = -i
    it = [[k, v] for k, v in model.items()]
    w.append({"op": "len", "c": "m", "expect": len(model)})
    r = [{"op": "open", "c": "m", "name": n, "kind": "map", "types": ["str", "i64"], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": len(model)}]
    for i, k in enumerate(keys):
        r.append({"op": "get", "c": "m", "key": k, **({"expect": model[k]} if k in model else {"error": "ENOTFOUND"})})
    r.append({"op": "iterate", "c": "m", "expect": it, "unordered": True})
    out.append(("map", "str>i64", (n, w, r)))

    # omap i64 -> str: 1200 keys inserted in a scrambled order, 400 removed; ranges.
    n = "bulk_omap_i64_str"
    ks = [(i * 7717) % 1200 * 3 - 1800 for i in range(1200)]
    model = {}
    w = [{"op": "open", "c": "m", "name": n, "kind": "omap", "types": ["i64", "str"]}]
    for k in ks:
        w.append({"op": "put", "c": "m", "key": k, "value": "v%d" % k})
        model[k] = "v%d" % k
    for k in ks[::3]:
        w.append({"op": "remove", "c": "m", "key": k})
        del model[k]
    sk = sorted(model)
    r = [{"op": "open", "c": "m", "name": n, "kind": "omap", "types": ["i64", "str"], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": len(sk)},
         {"op": "iterate", "c": "m", "expect": [[k, model[k]] for k in sk], "unordered": False},
         {"op": "first", "c": "m", "expect": [sk[0], model[sk[0]]]},
         {"op": "last", "c": "m", "expect": [sk[-1], model[sk[-1]]]}]
    for probe in (-5000, -1800, -1, 0, 1, 999, 1797, 1798, 5000):
        lb = [k for k in sk if k >= probe]
        ub = [k for k in sk if k > probe]
        r.append({"op": "lower_bound", "c": "m", "key": probe,
                  **({"expect": [lb[0], model[lb[0]]]} if lb else {"error": "ENOTFOUND"})})
        r.append({"op": "upper_bound", "c": "m", "key": probe,
                  **({"expect": [ub[0], model[ub[0]]]} if ub else {"error": "ENOTFOUND"})})
        r.append({"op": "range", "c": "m", "from": probe, "inclusive": False, "expect": [[k, model[k]] for k in ub]})
    out.append(("omap", "i64>str", (n, w, r)))

    # oset bytes: 800 keys of different lengths; bytewise order.
    n = "bulk_oset_bytes"
    ks = sorted({bytes([(i * 37) % 256]) * (1 + i % 5) + bytes([i % 7]) for i in range(800)})
    w = [{"op": "open", "c": "m", "name": n, "kind": "oset", "types": ["bytes"]}]
    for k in ks[::-1]:
        w.append({"op": "add", "c": "m", "key": k.hex(), "expect": True})
    for k in ks[::4]:
        w.append({"op": "remove", "c": "m", "key": k.hex()})
    left = [k for i, k in enumerate(ks) if i % 4]
    r = [{"op": "open", "c": "m", "name": n, "kind": "oset", "types": ["bytes"], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": len(left)},
         {"op": "iterate", "c": "m", "expect": [k.hex() for k in left], "unordered": False},
         {"op": "range", "c": "m", "from": "80", "inclusive": True, "expect": [k.hex() for k in left if k >= b"\x80"]}]
    out.append(("oset", "bytes", (n, w, r)))

    # set u64: 2000 keys spread over the whole range.
    n = "bulk_set_u64"
    ks = [(i * 0x9E3779B97F4A7C15) % 2**64 for i in range(2000)]
    w = [{"op": "open", "c": "m", "name": n, "kind": "set", "types": ["u64"]}]
    for k in ks:
        w.append({"op": "add", "c": "m", "key": enc("u64", k), "expect": True})
    for k in ks[1::2]:
        w.append({"op": "remove", "c": "m", "key": enc("u64", k)})
    r = [{"op": "open", "c": "m", "name": n, "kind": "set", "types": ["u64"], "flags": ["existing"]},
         {"op": "len", "c": "m", "expect": 1000},
         {"op": "iterate", "c": "m", "expect": [enc("u64", k) for k in ks[::2]], "unordered": True}]
    r += [{"op": "contains", "c": "m", "key": enc("u64", k), "expect": True} for k in ks[::50]]
    r += [{"op": "contains", "c": "m", "key": enc("u64", k), "expect": False} for k in ks[1::50]]
    out.append(("set", "u64", (n, w, r)))

    # deque u32: the ring wraps many times and grows while wrapped.
    n = "bulk_deque_u32"
    model = []
    w = [{"op": "open", "c": "d", "name": n, "kind": "deque", "types": ["u32"]}]
    x = 1
    for rnd in range(40):
        for _ in range(7 + rnd % 5):
            x = (x * 1103515245 + 12345) % 2**32
            if x % 2:
                w.append({"op": "push_back", "c": "d", "value": x})
                model.append(x)
            else:
                w.append({"op": "push_front", "c": "d", "value": x})
                model.insert(0, x)
        for _ in range(5):
            if rnd % 2:
                w.append({"op": "pop_front", "c": "d", "expect": model.pop(0)})
            else:
                w.append({"op": "pop_back", "c": "d", "expect": model.pop()})
    r = [{"op": "open", "c": "d", "name": n, "kind": "deque", "types": ["u32"], "flags": ["existing"]},
         {"op": "len", "c": "d", "expect": len(model)},
         {"op": "iterate", "c": "d", "expect": model}]
    out.append(("deque", "u32", (n, w, r)))

    # Long values: a 70 KB string (past runner_c's first 64 KiB buffer), 20 KB bytes, long strings in a vec.
    n = "bulk_long_values"
    big = "".join(chr(0x41 + i % 26) if i % 50 else "\u00e9" for i in range(70000))
    blob = bytes((i * 31) % 256 for i in range(20000))
    w = [{"op": "open", "c": "s", "name": n + "_str", "kind": "str", "types": ["str"]},
         {"op": "set", "c": "s", "value": big},
         {"op": "open", "c": "b", "name": n + "_box", "kind": "box", "types": ["bytes"]},
         {"op": "set", "c": "b", "value": blob.hex()},
         {"op": "open", "c": "v", "name": n + "_vec", "kind": "vec", "types": ["str"]}]
    vals = [big[i * 997:(i * 997) + 1000 + i] for i in range(20)]
    w += [{"op": "push", "c": "v", "value": v} for v in vals]
    w += [{"op": "open", "c": "m", "name": n + "_map", "kind": "map", "types": ["bytes", "bytes"]},
          {"op": "put", "c": "m", "key": blob[:5000].hex(), "value": blob.hex()}]
    r = [{"op": "open", "c": "s", "name": n + "_str", "kind": "str", "types": ["str"], "flags": ["existing"]},
         {"op": "len", "c": "s", "expect": len(big.encode())},
         {"op": "get", "c": "s", "expect": big},
         {"op": "open", "c": "b", "name": n + "_box", "kind": "box", "types": ["bytes"], "flags": ["existing"]},
         {"op": "get", "c": "b", "expect": blob.hex()},
         {"op": "open", "c": "v", "name": n + "_vec", "kind": "vec", "types": ["str"], "flags": ["existing"]},
         {"op": "iterate", "c": "v", "expect": vals},
         {"op": "open", "c": "m", "name": n + "_map", "kind": "map", "types": ["bytes", "bytes"], "flags": ["existing"]},
         {"op": "get", "c": "m", "key": blob[:5000].hex(), "expect": blob.hex()},
         {"op": "len", "c": "m", "expect": 1}]
    out.append(("mixed", "long", (n, w, r)))
    return out


def mixed():
    """Maps whose key and value types differ, names and open modes, clear and reuse."""
    out = []
    pairs = [("str", "f64"), ("i64", "bytes"), ("blob[4]", "bool"), ("u8", "str"), ("f32", "i16"), ("bool", "u64")]
    for kind in ("map", "omap"):
        for kt, vt in pairs:
            n = "%s_%s_%s" % (kind, tname(kt), tname(vt))
            ks = keys_for(kt, kind == "omap")
            vs = seq_values(vt)
            model = {}
            w = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [kt, vt]}]
            for i, k in enumerate(ks):
                v = vs[i % len(vs)]
                w.append({"op": "put", "c": "m", "key": enc(kt, k), "value": enc(vt, v)})
                model[mk(kt, k)] = (k, v)
            entries = list(model.values())
            if kind == "omap":
                entries.sort(key=lambda e: sort_key(kt, e[0]))
            it = [[enc(kt, canon_key(kt, k)), enc(vt, v)] for k, v in entries]
            r = [{"op": "open", "c": "m", "name": n, "kind": kind, "types": [kt, vt], "flags": ["existing"]},
                 {"op": "len", "c": "m", "expect": len(entries)}]
            r += [{"op": "get", "c": "m", "key": enc(kt, k), "expect": enc(vt, v)} for k, v in entries]
            r.append({"op": "iterate", "c": "m", "expect": it, "unordered": kind == "map"})
            r.append({"op": "open", "c": "x", "name": n, "kind": kind, "types": [vt, kt] if vt != kt else [kt, "i8"],
                      "flags": ["existing"], "error": "ETYPE"})
            out.append((kind, "%s>%s" % (kt, vt), (n, w, r)))

    n = "roots_and_modes"
    w = [{"op": "open", "c": "a", "name": n, "kind": "box", "types": ["i32"], "flags": ["excl"]},
         {"op": "set", "c": "a", "value": 5},
         {"op": "open", "c": "b", "name": n, "kind": "box", "types": ["i32"], "flags": ["excl"], "error": "EEXISTS"},
         {"op": "open", "c": "b", "name": n + "_missing", "kind": "box", "types": ["i32"], "flags": ["existing"],
          "error": "ENOTFOUND"},
         {"op": "open", "c": "b", "name": "bad name", "kind": "box", "types": ["i32"], "error": "EINVAL"},
         {"op": "open", "c": "b", "name": "", "kind": "vec", "types": ["i32"], "error": "EINVAL"},
         {"op": "open", "c": "b", "name": "x" * 64, "kind": "map", "types": ["i32", "i32"], "error": "EINVAL"},
         {"op": "open", "c": "b", "name": "A-z_0.9:" + "y" * 55, "kind": "box", "types": ["i32"]},
         {"op": "set", "c": "b", "value": -6},
         # Two handles on one root see one value.
         {"op": "open", "c": "c", "name": n, "kind": "box", "types": ["i32"]},
         {"op": "fetch_add", "c": "c", "delta": 10, "expect": 5},
         {"op": "get", "c": "a", "expect": 15},
         # Clear, then reuse.
         {"op": "open", "c": "v", "name": n + "_vec", "kind": "vec", "types": ["u16"]},
         {"op": "push", "c": "v", "value": 1}, {"op": "push", "c": "v", "value": 2},
         {"op": "clear", "c": "v"}, {"op": "len", "c": "v", "expect": 0},
         {"op": "get", "c": "v", "index": 0, "error": "ERANGE"},
         {"op": "push", "c": "v", "value": 3},
         {"op": "insert", "c": "v", "index": 1, "value": 4},
         {"op": "insert", "c": "v", "index": 3, "error": "ERANGE", "value": 5},
         {"op": "remove", "c": "v", "index": 2, "error": "ERANGE"},
         {"op": "open", "c": "m", "name": n + "_omap", "kind": "omap", "types": ["str", "str"]},
         {"op": "first", "c": "m", "error": "EEMPTY"},
         {"op": "put", "c": "m", "key": "b", "value": "1"}, {"op": "put", "c": "m", "key": "a", "value": "2"},
         {"op": "clear", "c": "m"}, {"op": "len", "c": "m", "expect": 0},
         {"op": "last", "c": "m", "error": "EEMPTY"},
         {"op": "lower_bound", "c": "m", "key": "", "error": "ENOTFOUND"},
         {"op": "put", "c": "m", "key": "z", "value": "3"},
         {"op": "open", "c": "s", "name": n + "_set", "kind": "set", "types": ["i16"]},
         {"op": "add", "c": "s", "key": 1, "expect": True}, {"op": "clear", "c": "s"},
         {"op": "add", "c": "s", "key": 1, "expect": True}, {"op": "add", "c": "s", "key": 2, "expect": True},
         {"op": "open", "c": "d", "name": n + "_deque", "kind": "deque", "types": ["i8"]},
         {"op": "push_back", "c": "d", "value": 1}, {"op": "clear", "c": "d"},
         {"op": "front", "c": "d", "error": "EEMPTY"}, {"op": "pop_back", "c": "d", "error": "EEMPTY"},
         {"op": "push_front", "c": "d", "value": -1},
         {"op": "open", "c": "t", "name": n + "_str", "kind": "str", "types": ["str"]},
         {"op": "set", "c": "t", "value": "gone"}, {"op": "clear", "c": "t"}, {"op": "append", "c": "t", "value": "kept"},
         {"op": "close", "c": "t"}]
    r = [{"op": "open", "c": "a", "name": n, "kind": "box", "types": ["i32"], "flags": ["existing"]},
         {"op": "get", "c": "a", "expect": 15},
         {"op": "open", "c": "b", "name": "A-z_0.9:" + "y" * 55, "kind": "box", "types": ["i32"], "flags": ["existing"]},
         {"op": "get", "c": "b", "expect": -6},
         {"op": "open", "c": "x", "name": n + "_missing", "kind": "box", "types": ["i32"], "flags": ["existing"],
          "error": "ENOTFOUND"},
         {"op": "open", "c": "v", "name": n + "_vec", "kind": "vec", "types": ["u16"], "flags": ["existing"]},
         {"op": "iterate", "c": "v", "expect": [3, 4]},
         {"op": "open", "c": "m", "name": n + "_omap", "kind": "omap", "types": ["str", "str"], "flags": ["existing"]},
         {"op": "iterate", "c": "m", "expect": [["z", "3"]], "unordered": False},
         {"op": "open", "c": "s", "name": n + "_set", "kind": "set", "types": ["i16"], "flags": ["existing"]},
         {"op": "iterate", "c": "s", "expect": [1, 2], "unordered": True},
         {"op": "open", "c": "d", "name": n + "_deque", "kind": "deque", "types": ["i8"], "flags": ["existing"]},
         {"op": "iterate", "c": "d", "expect": [-1]},
         {"op": "open", "c": "t", "name": n + "_str", "kind": "str", "types": ["str"], "flags": ["existing"]},
         {"op": "get", "c": "t", "expect": "kept"}]
    out.append(("mixed", "roots", (n, w, r)))
    return out


def tname(t):
    return t.replace("[", "").replace("]", "")


def dump(doc):
    """One step per line: scenarios stay readable and diff well."""
    one = lambda x: json.dumps(x, ensure_ascii=False)
    head = ",\n".join(" %s: %s" % (one(k), one(v)) for k, v in doc.items() if k not in ("write", "read"))
    parts = [head]
    for phase in ("write", "read"):
        if phase in doc and not doc[phase]:
            parts.append(' "%s": []' % phase)
            continue
        if phase in doc:
            parts.append(' "%s": [\n  %s\n ]' % (phase, ",\n  ".join(one(s) for s in doc[phase])))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main():
    made = []
    for t in TYPES:
        made.append(("box", t, box(t)))
        made.append(("vec", t, vec(t)))
        made.append(("deque", t, deque(t)))
        made.append(("map", t, hash_map(t, False)))
        made.append(("omap", t, hash_map(t, True)))
        made.append(("set", t, hash_set(t, False)))
        made.append(("oset", t, hash_set(t, True)))
    made.append(("str", "str", string()))
    made += mixed()
    extra = bulk()
    for kind, t, (name, w, r) in made + extra:
        doc = {"name": name, "kind": kind, "type": t,
               "description": "generated by gen_scenarios.py: %s of %s, written by one language, read by every one" % (kind, t),
               "write": w, "read": r}
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            f.write(dump(doc))
    print("%d scenarios" % len(made))
    golden(made)


GOLDEN = os.path.join(HERE, "golden")


def golden(made):
    """Descriptions of the golden files of layout v1 (conformance/README.md).
    runner_c --regenerate-golden writes the .seg files from them."""
    write, read = [], []
    for kind, t, (name, w, r) in made:
        write += w
        read += r
    # A read-only segment refuses every write, in every language.
    read += [
        {"op": "open", "c": "v", "name": "vec_i64", "kind": "vec", "types": ["i64"], "flags": ["existing"]},
        {"op": "push", "c": "v", "value": 1, "error": "EPERM"},
        {"op": "open", "c": "b", "name": "box_u64", "kind": "box", "types": ["u64"], "flags": ["existing"]},
        {"op": "set", "c": "b", "value": 1, "error": "EPERM"},
        {"op": "open", "c": "m", "name": "map_str", "kind": "map", "types": ["str", "str"], "flags": ["existing"]},
        {"op": "put", "c": "m", "key": "x", "value": "y", "error": "EPERM"},
        {"op": "open", "c": "m", "name": "no_such_root", "kind": "map", "types": ["str", "str"], "flags": ["existing"],
         "error": "ENOTFOUND"},
    ]
    docs = [
        {"name": "v1_all", "file": "v1_all.seg", "layout": "1.0",
         "description": "every generated scenario's containers, written by the C runner with layout 1.0",
         "write": write, "read": read},
        {"name": "v1_small", "file": "v1_small.seg", "layout": "1.0",
         "description": "one box and one string: the source of the files that must be refused",
         "write": [{"op": "open", "c": "b", "name": "counter", "kind": "box", "types": ["i64"]},
                   {"op": "set", "c": "b", "value": 42},
                   {"op": "open", "c": "s", "name": "greeting", "kind": "str", "types": ["str"]},
                   {"op": "set", "c": "s", "value": "hello"}],
         "read": [{"op": "open", "c": "b", "name": "counter", "kind": "box", "types": ["i64"], "flags": ["existing"]},
                  {"op": "get", "c": "b", "expect": 42},
                  {"op": "open", "c": "s", "name": "greeting", "kind": "str", "types": ["str"], "flags": ["existing"]},
                  {"op": "get", "c": "s", "expect": "hello"},
                  {"op": "open", "c": "x", "name": "counter", "kind": "box", "types": ["u64"], "flags": ["existing"],
                   "error": "ETYPE"},
                  {"op": "open", "c": "x", "name": "counter", "kind": "deque", "types": ["i64"], "flags": ["existing"],
                   "error": "ETYPE"},
                  {"op": "open", "c": "x", "name": "greeting", "kind": "box", "types": ["str"], "flags": ["existing"],
                   "error": "ETYPE"}]},
        {"name": "v1_bad_magic", "file": "v1_bad_magic.seg",
         "description": "v1_small with its magic overwritten: not a commy segment",
         "derive": {"from": "v1_small.seg", "patch": [{"offset": 0, "hex": b"NOTCOMMY".hex()}]},
         "open_error": "ECORRUPT"},
        {"name": "v1_future_major", "file": "v1_future_major.seg",
         "description": "v1_small claiming layout 2.0 (header offset 8, u16 little-endian): a v1 reader must refuse it",
         "derive": {"from": "v1_small.seg", "patch": [{"offset": 8, "hex": "0200"}]},
         "open_error": "ELAYOUT"},
        {"name": "v1_truncated", "file": "v1_truncated.seg",
         "description": "v1_small cut inside its journal: shorter than its header says",
         "derive": {"from": "v1_small.seg", "truncate": 6000},
         "open_error": "ECORRUPT"},
        {"name": "v1_truncated_header", "file": "v1_truncated_header.seg",
         "description": "v1_small cut inside its 4096-byte header",
         "derive": {"from": "v1_small.seg", "truncate": 100},
         "open_error": "ECORRUPT"},
    ]
    for d in docs:
        with open(os.path.join(GOLDEN, d["name"] + ".json"), "w") as f:
            f.write(dump(d))


if __name__ == "__main__":
    main()
