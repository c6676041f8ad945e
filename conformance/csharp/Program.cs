// The C# conformance runner: runs the language-neutral scenarios of
// conformance/scenarios/ and the golden files of conformance/golden/ through
// the Commy library's public API only. Same command lines and output as
// runner_c and runner.py:
//
//   runner_cs write  SEGDIR SCENARIO.json...
//   runner_cs read   SEGDIR SCENARIO.json...
//   runner_cs golden GOLDENDIR
//   runner_cs concurrent SEG ID MS WORKERS
//
// Idiomatic .NET answers are translated to the scenario's error names here,
// and only here (conformance/README.md, "Errors"): a CommyException (also as
// an InnerException) carries its code; KeyNotFoundException or a false from
// Remove is ENOTFOUND; ArgumentOutOfRangeException is EEMPTY for
// pop/front/back and ERANGE for an index; a false from TryGetLowerBound and
// friends is ENOTFOUND.
using System.Globalization;
using System.Numerics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Commy;

namespace CommyConformance;

/// <summary>The scenario itself is malformed.</summary>
sealed class ScenarioError(string m) : Exception(m);

/// <summary>The library answered differently from the scenario.</summary>
sealed class Mismatch(string m) : Exception(m);

/// <summary>A "not there" answer that the C API gives as an error code.</summary>
sealed class Missing(string name) : Exception(name) { public string Name { get; } = name; }

/// <summary>What an operation produced.</summary>
enum What { None, Value, Key, Pair, Int, Bool, List, Pairs }

readonly record struct Result(What What, object? Got)
{
    public static readonly Result None = new(What.None, null);
}

static class Values
{
    static readonly string[] Ints = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"];

    public static string Base(string t) => t.StartsWith("blob[") ? "blob" : t;
    public static bool IsInt(string t) => Array.IndexOf(Ints, t) >= 0;

    public static Type Clr(string t) => Base(t) switch
    {
        "i8" => typeof(sbyte), "i16" => typeof(short), "i32" => typeof(int), "i64" => typeof(long),
        "u8" => typeof(byte), "u16" => typeof(ushort), "u32" => typeof(uint), "u64" => typeof(ulong),
        "f32" => typeof(float), "f64" => typeof(double), "bool" => typeof(bool),
        "bytes" or "blob" => typeof(byte[]), "str" => typeof(string),
        _ => throw new ScenarioError($"unknown element type \"{t}\""),
    };

    public static ElementType Et(string t) => Base(t) switch
    {
        "i8" => ElementType.I8, "i16" => ElementType.I16, "i32" => ElementType.I32, "i64" => ElementType.I64,
        "u8" => ElementType.U8, "u16" => ElementType.U16, "u32" => ElementType.U32, "u64" => ElementType.U64,
        "f32" => ElementType.F32, "f64" => ElementType.F64, "bool" => ElementType.Bool,
        "bytes" => ElementType.Bytes, "str" => ElementType.Str,
        "blob" => ElementType.Blob(int.Parse(t[5..^1], CultureInfo.InvariantCulture)),
        _ => throw new ScenarioError($"unknown element type \"{t}\""),
    };

    static BigInteger JsonInt(JsonElement j) => j.ValueKind switch
    {
        JsonValueKind.Number => BigInteger.Parse(j.GetRawText(), CultureInfo.InvariantCulture),
        JsonValueKind.String => BigInteger.Parse(j.GetString()!, CultureInfo.InvariantCulture),
        _ => throw new ScenarioError($"expected an integer, got {j.GetRawText()}"),
    };

    static double JsonFloat(JsonElement j)
    {
        if (j.ValueKind == JsonValueKind.Number) return j.GetDouble();
        if (j.ValueKind == JsonValueKind.String)
        {
            string s = j.GetString()!;
            switch (s)
            {
                case "nan": return double.NaN;
                case "inf": return double.PositiveInfinity;
                case "-inf": return double.NegativeInfinity;
                case "-0.0": return -0.0;
            }
            if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
        }
        throw new ScenarioError($"expected a float, got {j.GetRawText()}");
    }

    /// <summary>The JSON form of a value of type t as the CLR value the API takes.</summary>
    public static object Decode(string t, JsonElement j)
    {
        switch (Base(t))
        {
            case "i8": return (sbyte)JsonInt(j);
            case "i16": return (short)JsonInt(j);
            case "i32": return (int)JsonInt(j);
            case "i64": return (long)JsonInt(j);
            case "u8": return (byte)JsonInt(j);
            case "u16": return (ushort)JsonInt(j);
            case "u32": return (uint)JsonInt(j);
            case "u64": return (ulong)JsonInt(j);
            case "f32": return (float)JsonFloat(j);
            case "f64": return JsonFloat(j);
            case "bool":
                if (j.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new ScenarioError($"expected true or false, got {j.GetRawText()}");
                return j.GetBoolean();
            case "str": return j.GetString() ?? throw new ScenarioError("expected a string");
            default: return Convert.FromHexString(j.GetString() ?? throw new ScenarioError("expected hex"));
        }
    }

    /// <summary>An integer of type t from a long, wrapping like the C ABI (a
    /// delta of -1 for a u8 box is 255).</summary>
    public static object IntOf(string t, long v) => t switch
    {
        "i8" => unchecked((sbyte)v), "i16" => unchecked((short)v), "i32" => unchecked((int)v), "i64" => v,
        "u8" => unchecked((byte)v), "u16" => unchecked((ushort)v), "u32" => unchecked((uint)v), "u64" => unchecked((ulong)v),
        _ => throw new ScenarioError($"{t} is not an integer type"),
    };

    /// <summary>got is the value j of type t. Floats compare by bits (-0.0
    /// differs from 0.0) except that every NaN matches "nan".</summary>
    public static bool Same(string t, object? got, JsonElement j)
    {
        if (got is null) return false;
        string b = Base(t);
        if (IsInt(t))
        {
            BigInteger want = JsonInt(j);
            BigInteger g = got switch
            {
                sbyte x => x, short x => x, int x => x, long x => x, byte x => x, ushort x => x, uint x => x, ulong x => x,
                _ => throw new Mismatch($"got a {got.GetType().Name} for a {t}"),
            };
            return g == want;
        }
        if (b is "f32" or "f64")
        {
            double want = JsonFloat(j), g;
            if (b == "f32")
            {
                if (got is not float f) return false;
                g = f;
                want = (float)want;
            }
            else
            {
                if (got is not double d) return false;
                g = d;
            }
            if (double.IsNaN(want) || double.IsNaN(g)) return double.IsNaN(want) && double.IsNaN(g);
            return g == want && double.IsNegative(g) == double.IsNegative(want);
        }
        object w = Decode(t, j);
        return b switch
        {
            "bool" => got is bool x && x == (bool)w,
            "str" => got is string s && s == (string)w,
            _ => got is byte[] a && a.AsSpan().SequenceEqual((byte[])w),
        };
    }

    public static string Show(object? v) => v switch
    {
        null => "null",
        byte[] a => a.Length == 0 ? "(empty)" : Convert.ToHexString(a).ToLowerInvariant(),
        string s => "\"" + s + "\"",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool x => x ? "true" : "false",
        ValueTuple<object?, object?> p => $"[{Show(p.Item1)}, {Show(p.Item2)}]",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "?",
    };
}

/// <summary>An open container the scenario calls by its alias.</summary>
abstract class Slot : IDisposable
{
    public string Kind = "";
    public string Kt = "";
    public string? Vt;
    public abstract Result Do(string op, JsonElement step);
    public abstract void Dispose();

    protected static JsonElement Arg(JsonElement step, string name) =>
        step.TryGetProperty(name, out JsonElement j) ? j : throw new ScenarioError($"the step has no \"{name}\"");

    protected static long Index(JsonElement step) => Arg(step, "index").GetInt64();

    protected ScenarioError NoSuchOp(string op) => new($"operation \"{op}\" does not exist for a {Kind}");
}

sealed class BoxSlot<T> : Slot
{
    readonly Box<T> _b;
    public BoxSlot(Segment s, string name, string t, OpenMode m) { _b = s.OpenBox<T>(name, Values.Et(t), m); }
    T Val(JsonElement step, string name) => (T)Values.Decode(Kt, Arg(step, name));

    public override Result Do(string op, JsonElement step)
    {
        switch (op)
        {
            case "get": return new(What.Value, _b.Value);
            case "set": _b.Value = Val(step, "value"); return Result.None;
            case "cas": return new(What.Value, _b.CompareExchange(Val(step, "desired"), Val(step, "expected")));
            case "fetch_add":
                if (!Values.IsInt(Kt)) return new(What.Value, _b.FetchAdd(default!)); // the library refuses it
                return new(What.Value, _b.FetchAdd((T)Values.IntOf(Kt, Arg(step, "delta").GetInt64())));
        }
        throw NoSuchOp(op);
    }

    public override void Dispose() => _b.Dispose();
}

sealed class StrSlot : Slot
{
    readonly Str _s;
    public StrSlot(Segment s, string name, OpenMode m) { _s = s.OpenStr(name, m); }

    public override Result Do(string op, JsonElement step)
    {
        switch (op)
        {
            case "get": return new(What.Value, _s.Value);
            case "set": _s.Value = Arg(step, "value").GetString()!; return Result.None;
            case "append": _s.Append(Arg(step, "value").GetString()!); return Result.None;
            case "len": return new(What.Int, (ulong)_s.ByteLength);
            case "clear": _s.Clear(); return Result.None;
        }
        throw NoSuchOp(op);
    }

    public override void Dispose() => _s.Dispose();
}

sealed class VecSlot<T> : Slot
{
    readonly Vec<T> _v;
    public VecSlot(Segment s, string name, string t, OpenMode m) { _v = s.OpenVec<T>(name, Values.Et(t), m); }
    T Val(JsonElement step) => (T)Values.Decode(Kt, Arg(step, "value"));

    public override Result Do(string op, JsonElement step)
    {
        switch (op)
        {
            case "len": return new(What.Int, (ulong)_v.LongCount);
            case "push": _v.Add(Val(step)); return Result.None;
            case "pop": return new(What.Value, _v.Pop());
            case "get": return new(What.Value, _v.Get(Index(step)));
            case "set": _v.Set(Index(step), Val(step)); return Result.None;
            case "insert": _v.Insert(checked((int)Index(step)), Val(step)); return Result.None;
            case "remove": _v.RemoveAt(checked((int)Index(step))); return Result.None;
            case "clear": _v.Clear(); return Result.None;
            case "iterate": return new(What.List, _v.ToArray().Select(x => (object?)x).ToList());
        }
        throw NoSuchOp(op);
    }

    public override void Dispose() => _v.Dispose();
}

sealed class DequeSlot<T> : Slot
{
    readonly Deque<T> _d;
    public DequeSlot(Segment s, string name, string t, OpenMode m) { _d = s.OpenDeque<T>(name, Values.Et(t), m); }
    T Val(JsonElement step) => (T)Values.Decode(Kt, Arg(step, "value"));

    public override Result Do(string op, JsonElement step)
    {
        switch (op)
        {
            case "len": return new(What.Int, (ulong)_d.LongCount);
            case "push_back": _d.PushBack(Val(step)); return Result.None;
            case "push_front": _d.PushFront(Val(step)); return Result.None;
            case "pop_back": return new(What.Value, _d.PopBack());
            case "pop_front": return new(What.Value, _d.PopFront());
            case "front": return new(What.Value, _d.PeekFront());
            case "back": return new(What.Value, _d.PeekBack());
            case "get": return new(What.Value, _d[Index(step)]);
            case "set": _d[Index(step)] = Val(step); return Result.None;
            case "clear": _d.Clear(); return Result.None;
            case "iterate": return new(What.List, _d.Select(x => (object?)x).ToList());
        }
        throw NoSuchOp(op);
    }

    public override void Dispose() => _d.Dispose();
}

sealed class MapSlot<TK, TV> : Slot where TK : notnull
{
    readonly MapBase<TK, TV> _m;
    readonly OrderedMap<TK, TV>? _o;

    public MapSlot(Segment s, string name, string kt, string vt, bool ordered, OpenMode m)
    {
        if (ordered) _m = _o = s.OpenOrderedMap<TK, TV>(name, Values.Et(kt), Values.Et(vt), m);
        else _m = s.OpenMap<TK, TV>(name, Values.Et(kt), Values.Et(vt), m);
    }

    TK Key(JsonElement step, string name = "key") => (TK)Values.Decode(Kt, Arg(step, name));
    static object? Pair(KeyValuePair<TK, TV> e) => ((object?)e.Key, (object?)e.Value);

    public override Result Do(string op, JsonElement step)
    {
        switch (op)
        {
            case "len": return new(What.Int, (ulong)_m.LongCount);
            case "put": _m.Put(Key(step), (TV)Values.Decode(Vt!, Arg(step, "value"))); return Result.None;
            case "get": return new(What.Value, _m[Key(step)]);
            case "remove": return _m.Remove(Key(step)) ? Result.None : throw new Missing("ENOTFOUND");
            case "contains": return new(What.Bool, _m.ContainsKey(Key(step)));
            case "clear": _m.Clear(); return Result.None;
            case "iterate": return new(What.Pairs, _m.Select(Pair).ToList());
        }
        if (_o != null)
        {
            KeyValuePair<TK, TV> e;
            switch (op)
            {
                case "first": return _o.TryGetFirst(out e) ? new(What.Pair, Pair(e)) : throw new Missing("EEMPTY");
                case "last": return _o.TryGetLast(out e) ? new(What.Pair, Pair(e)) : throw new Missing("EEMPTY");
                case "lower_bound":
                    return _o.TryGetLowerBound(Key(step), out e) ? new(What.Pair, Pair(e)) : throw new Missing("ENOTFOUND");
                case "upper_bound":
                    return _o.TryGetUpperBound(Key(step), out e) ? new(What.Pair, Pair(e)) : throw new Missing("ENOTFOUND");
                case "range":
                    bool inclusive = !step.TryGetProperty("inclusive", out JsonElement ji) || ji.GetBoolean();
                    IEnumerable<KeyValuePair<TK, TV>> r = step.TryGetProperty("from", out JsonElement jf) && jf.ValueKind != JsonValueKind.Null
                        ? _o.RangeFrom(Key(step, "from"), inclusive) : _o;
                    return new(What.Pairs, r.Select(Pair).ToList());
            }
        }
        throw NoSuchOp(op);
    }

    public override void Dispose() => _m.Dispose();
}

sealed class SetSlot<T> : Slot where T : notnull
{
    readonly Set<T>? _h;
    readonly OrderedSet<T>? _o;

    public SetSlot(Segment s, string name, string t, bool ordered, OpenMode m)
    {
        if (ordered) _o = s.OpenOrderedSet<T>(name, Values.Et(t), m);
        else _h = s.OpenSet<T>(name, Values.Et(t), m);
    }

    T Key(JsonElement step, string name = "key") => (T)Values.Decode(Kt, Arg(step, name));

    public override Result Do(string op, JsonElement step)
    {
        if (_h != null)
        {
            switch (op)
            {
                case "len": return new(What.Int, (ulong)_h.LongCount);
                case "add": return new(What.Bool, _h.Add(Key(step)));
                case "remove": return _h.Remove(Key(step)) ? Result.None : throw new Missing("ENOTFOUND");
                case "contains": return new(What.Bool, _h.Contains(Key(step)));
                case "clear": _h.Clear(); return Result.None;
                case "iterate": return new(What.List, _h.Select(x => (object?)x).ToList());
            }
            throw NoSuchOp(op);
        }
        OrderedSet<T> o = _o!;
        T k;
        switch (op)
        {
            case "len": return new(What.Int, (ulong)o.LongCount);
            case "add": return new(What.Bool, o.Add(Key(step)));
            case "remove": return o.Remove(Key(step)) ? Result.None : throw new Missing("ENOTFOUND");
            case "contains": return new(What.Bool, o.Contains(Key(step)));
            case "clear": o.Clear(); return Result.None;
            case "iterate": return new(What.List, o.Select(x => (object?)x).ToList());
            case "first": return o.TryGetMin(out k) ? new(What.Key, k) : throw new Missing("EEMPTY");
            case "last": return o.TryGetMax(out k) ? new(What.Key, k) : throw new Missing("EEMPTY");
            case "lower_bound": return o.TryGetLowerBound(Key(step), out k) ? new(What.Key, k) : throw new Missing("ENOTFOUND");
            case "upper_bound": return o.TryGetUpperBound(Key(step), out k) ? new(What.Key, k) : throw new Missing("ENOTFOUND");
            case "range":
                bool inclusive = !step.TryGetProperty("inclusive", out JsonElement ji) || ji.GetBoolean();
                IEnumerable<T> r = step.TryGetProperty("from", out JsonElement jf) && jf.ValueKind != JsonValueKind.Null
                    ? o.RangeFrom(Key(step, "from"), inclusive) : o;
                return new(What.List, r.Select(x => (object?)x).ToList());
        }
        throw NoSuchOp(op);
    }

    public override void Dispose()
    {
        _h?.Dispose();
        _o?.Dispose();
    }
}

static class Runner
{
    static readonly Dictionary<int, string> Errors = new()
    {
        [0] = "OK", [-1] = "EINVAL", [-2] = "ENOMEM", [-3] = "EIO", [-4] = "ENOTFOUND", [-5] = "EEXISTS",
        [-6] = "ETYPE", [-7] = "ELAYOUT", [-8] = "ECORRUPT", [-9] = "ENOSPC", [-10] = "ETIMEDOUT", [-11] = "EBUSY",
        [-12] = "EPERM", [-13] = "ECLOSED", [-14] = "ERANGE", [-15] = "EEMPTY", [-16] = "ETOOSMALL",
        [-17] = "ECONCURRENT", [-18] = "EUTF8", [-19] = "EBADFREE", [-20] = "ENOTSUP", [-21] = "EJOURNAL",
    };
    static readonly HashSet<string> EmptyOps = ["pop", "pop_front", "pop_back", "front", "back", "first", "last"];
    static bool _failed;

    /// <summary>The scenario's name for what the API threw (file comment).</summary>
    static string? ErrorName(Exception e, string op)
    {
        for (Exception? x = e; x != null; x = x.InnerException)
        {
            if (x is CommyException ce && ce.Code != 0) return Errors.GetValueOrDefault(ce.Code, $"E?{ce.Code}");
            if (x is Missing m) return m.Name;
        }
        for (Exception? x = e; x != null; x = x.InnerException)
        {
            if (x is KeyNotFoundException) return "ENOTFOUND";
            if (x is ArgumentOutOfRangeException or IndexOutOfRangeException)
                return EmptyOps.Contains(op) ? "EEMPTY" : "ERANGE";
            if (x is InvalidOperationException && EmptyOps.Contains(op)) return "EEMPTY";
        }
        return null;
    }

    static Exception Unwrap(Exception e) => e is TargetInvocationException { InnerException: { } i } ? i : e;

    static Slot Open(Segment seg, JsonElement step)
    {
        string kind = step.GetProperty("kind").GetString()!;
        string name = (step.TryGetProperty("name", out JsonElement jn) ? jn : step.GetProperty("c")).GetString()!;
        var types = step.TryGetProperty("types", out JsonElement jt) && jt.ValueKind == JsonValueKind.Array
            ? jt.EnumerateArray().Select(x => x.GetString()!).ToList() : [];
        var flags = step.TryGetProperty("flags", out JsonElement jfl) ? jfl.EnumerateArray().Select(x => x.GetString()).ToList() : [];
        OpenMode mode = flags.Contains("existing") ? OpenMode.OpenExisting : flags.Contains("excl") ? OpenMode.CreateNew : OpenMode.OpenOrCreate;
        if (kind == "str") types = ["str"];
        if (types.Count == 0 || types.Contains("any"))
        {
            // C#'s containers are generic: learn the stored types from the root
            // directory, then open with them (a wrong kind is still ETYPE).
            RootInfo info = seg.Find(name) ?? throw new Missing("ENOTFOUND");
            types = [info.KeyType.ToString()];
            if (info.ValueType != ElementType.Any) types.Add(info.ValueType.ToString());
            if (kind is "map" or "omap" && types.Count == 1) types.Add(types[0]);
            mode = OpenMode.OpenExisting;
        }
        string kt = types[0];
        string? vt = types.Count > 1 ? types[1] : null;
        Type k = Values.Clr(kt);
        object? made;
        try
        {
            made = kind switch
            {
                "box" => Activator.CreateInstance(typeof(BoxSlot<>).MakeGenericType(k), seg, name, kt, mode),
                "vec" => Activator.CreateInstance(typeof(VecSlot<>).MakeGenericType(k), seg, name, kt, mode),
                "deque" => Activator.CreateInstance(typeof(DequeSlot<>).MakeGenericType(k), seg, name, kt, mode),
                "str" => new StrSlot(seg, name, mode),
                "map" or "omap" => Activator.CreateInstance(typeof(MapSlot<,>).MakeGenericType(k, Values.Clr(vt ?? throw new ScenarioError("a map needs two types"))),
                    seg, name, kt, vt, kind == "omap", mode),
                "set" or "oset" => Activator.CreateInstance(typeof(SetSlot<>).MakeGenericType(k), seg, name, kt, kind == "oset", mode),
                _ => throw new ScenarioError($"unknown kind \"{kind}\""),
            };
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            throw e.InnerException;
        }
        var slot = (Slot)made!;
        slot.Kind = kind;
        slot.Kt = kt;
        slot.Vt = vt;
        return slot;
    }

    static bool SameEntry(Slot s, object? got, JsonElement j, bool pair)
    {
        if (!pair) return Values.Same(s.Kt, got, j);
        if (got is not ValueTuple<object?, object?> p || j.ValueKind != JsonValueKind.Array || j.GetArrayLength() != 2) return false;
        return Values.Same(s.Kt, p.Item1, j[0]) && Values.Same(s.Vt!, p.Item2, j[1]);
    }

    static void Check(Slot s, Result r, JsonElement step)
    {
        if (!step.TryGetProperty("expect", out JsonElement exp)) return;
        string elem = s.Kind is "map" or "omap" ? s.Vt! : s.Kt;
        bool ok;
        switch (r.What)
        {
            case What.None: throw new ScenarioError("this operation has no result to expect");
            case What.Value: ok = Values.Same(elem, r.Got, exp); break;
            case What.Key: ok = Values.Same(s.Kt, r.Got, exp); break;
            case What.Pair: ok = SameEntry(s, r.Got, exp, true); break;
            case What.Int: ok = (ulong)r.Got! == exp.GetUInt64(); break;
            case What.Bool: ok = (bool)r.Got! == exp.GetBoolean(); break;
            default:
                bool pair = r.What == What.Pairs;
                var got = (List<object?>)r.Got!;
                if (exp.ValueKind != JsonValueKind.Array) throw new ScenarioError("expect must be a list here");
                var want = exp.EnumerateArray().ToList();
                if (got.Count != want.Count)
                    throw new Mismatch($"{got.Count} entries, expected {want.Count} (got {string.Join(", ", got.Select(Values.Show))})");
                bool unordered = step.TryGetProperty("unordered", out JsonElement ju) && ju.GetBoolean();
                if (unordered)
                {
                    var used = new bool[want.Count];
                    foreach (object? g in got)
                    {
                        int i = Enumerable.Range(0, want.Count).FirstOrDefault(i => !used[i] && SameEntry(s, g, want[i], pair), -1);
                        if (i < 0) throw new Mismatch($"unexpected entry {Values.Show(g)}");
                        used[i] = true;
                    }
                }
                else
                {
                    for (int i = 0; i < got.Count; i++)
                        if (!SameEntry(s, got[i], want[i], pair))
                            throw new Mismatch($"entry {i} is {Values.Show(got[i])}, expected {want[i].GetRawText()}");
                }
                return;
        }
        if (!ok) throw new Mismatch($"got {Values.Show(r.Got)}, expected {exp.GetRawText()}");
    }

    static void RunStep(Segment seg, JsonElement step, Dictionary<string, Slot> slots)
    {
        string op = step.GetProperty("op").GetString()!;
        string? want = step.TryGetProperty("error", out JsonElement je) ? je.GetString() : null;
        if (want != null && !Errors.ContainsValue(want)) throw new ScenarioError($"unknown error name \"{want}\"");
        string alias = step.TryGetProperty("c", out JsonElement jc) ? jc.GetString()! : "";
        Slot? s = null;
        Result r = Result.None;
        try
        {
            if (op == "open")
            {
                if (slots.Remove(alias, out Slot? old)) old.Dispose();
                slots[alias] = Open(seg, step);
            }
            else if (op == "close")
            {
                if (!slots.Remove(alias, out Slot? old)) throw new ScenarioError($"close of \"{alias}\", which is not open");
                old.Dispose();
            }
            else
            {
                if (!slots.TryGetValue(alias, out s)) throw new ScenarioError($"{op} on container \"{alias}\", which is not open");
                r = s.Do(op, step);
            }
        }
        catch (Exception e0) when (Unwrap(e0) is not (ScenarioError or Mismatch))
        {
            Exception e = Unwrap(e0);
            string? name = ErrorName(e, op);
            if (name == null) throw new Mismatch($"{op} threw {e.GetType().Name}: {e.Message}");
            if (name != want) throw new Mismatch($"{op} failed with {name} ({e.GetType().Name}: {e.Message}), expected {want ?? "success"}");
            return;
        }
        if (want != null) throw new Mismatch($"{op} succeeded, expected {want}");
        if (s != null) Check(s, r, step);
    }

    static void RunSteps(Segment seg, JsonElement steps)
    {
        var slots = new Dictionary<string, Slot>();
        try
        {
            int i = 0;
            foreach (JsonElement step in steps.EnumerateArray())
            {
                try
                {
                    RunStep(seg, step, slots);
                }
                catch (Exception e) when (e is ScenarioError or Mismatch)
                {
                    string js = step.GetRawText();
                    throw new Mismatch($"step {i} {(js.Length > 400 ? js[..400] : js)}: {e.Message}");
                }
                i++;
            }
        }
        finally
        {
            foreach (Slot s in slots.Values) s.Dispose();
        }
    }

    static void Report(bool ok, string phase, string name, string why = "")
    {
        Console.WriteLine(ok ? $"PASS {phase} {name}" : $"FAIL {phase} {name}: {why}");
        if (!ok) _failed = true;
    }

    static void RunScenario(string phase, string segdir, string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e)
        {
            Report(false, phase, path, $"cannot read or parse: {e.Message}");
            return;
        }
        using (doc)
        {
            JsonElement root = doc.RootElement;
            string name = root.TryGetProperty("name", out JsonElement jn) ? jn.GetString()! : path;
            if (!root.TryGetProperty(phase, out JsonElement steps))
            {
                Report(true, phase, name);
                return;
            }
            string seg = System.IO.Path.Combine(segdir, name + ".seg");
            try
            {
                if (phase == "write") File.Delete(seg);
                using Segment s = Segment.Open(seg, phase == "write" ? new SegmentOptions { CreateNew = true } : new SegmentOptions { Create = false });
                RunSteps(s, steps);
                s.Check();
                Report(true, phase, name);
            }
            catch (Mismatch e)
            {
                Report(false, phase, name, e.Message);
            }
            catch (Exception e)
            {
                Report(false, phase, name, $"{e.GetType().Name}: {e.Message}");
            }
        }
    }

    static void Golden(string dir)
    {
        foreach (string fn in Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(fn));
            JsonElement root = doc.RootElement;
            string name = root.GetProperty("name").GetString()!;
            string path = System.IO.Path.Combine(dir, root.GetProperty("file").GetString()!);
            string? want = root.TryGetProperty("open_error", out JsonElement je) ? je.GetString() : null;
            Segment seg;
            try
            {
                seg = Segment.OpenReadOnly(path);
            }
            catch (Exception e)
            {
                string? got = ErrorName(e, "open");
                if (want == null) Report(false, "golden", name, $"opening read-only failed: {e.GetType().Name}: {e.Message}");
                else if (got != want) Report(false, "golden", name, $"refused with {got} ({e.GetType().Name}: {e.Message}), expected {want}");
                else Report(true, "golden", name);
                continue;
            }
            using (seg)
            {
                if (want != null)
                {
                    Report(false, "golden", name, $"opened, but must be refused with {want}");
                    continue;
                }
                try
                {
                    RunSteps(seg, root.GetProperty("read"));
                    Report(true, "golden", name);
                }
                catch (Mismatch e)
                {
                    Report(false, "golden", name, e.Message);
                }
                catch (Exception e)
                {
                    Report(false, "golden", name, $"{e.GetType().Name}: {e.Message}");
                }
            }
        }
    }

    const long Stride = 100000000;

    /// <summary>As runner_c's worker: after every worker checks in, push
    /// id * Stride + i and add 1 to the box for ms milliseconds, then record the count.</summary>
    static void Concurrent(string path, long id, int ms, int workers)
    {
        try
        {
            using Segment seg = Segment.Open(path);
            using Deque<long> q = seg.OpenDeque<long>("conc_queue");
            using Box<long> count = seg.OpenBox<long>("conc_count");
            using Box<long> ready = seg.OpenBox<long>("conc_ready");
            using Box<long> pushed = seg.OpenBox<long>($"conc_pushed_{id}", null, OpenMode.CreateNew);
            ready.FetchAdd(1);
            long deadline = Environment.TickCount64 + 30000;
            while (true)
            {
                uint seen = ready.Version;
                if (ready.Value >= workers) break;
                if (Environment.TickCount64 > deadline)
                    throw new TimeoutException($"only {ready.Value} of {workers} workers checked in within 30 s");
                ready.WaitChange(seen, TimeSpan.FromMilliseconds(100));
            }
            long i = 0;
            long end = Environment.TickCount64 + ms;
            for (; Environment.TickCount64 < end; i++)
            {
                q.PushBack(id * Stride + i);
                count.FetchAdd(1);
            }
            pushed.Value = i;
            Report(true, "concurrent", "csharp");
        }
        catch (Exception e)
        {
            Report(false, "concurrent", "csharp", $"{e.GetType().Name}: {e.Message}");
        }
    }

    static int Main(string[] args)
    {
        Console.OutputEncoding = new UTF8Encoding(false);
        if (args.Length >= 3 && args[0] is "write" or "read")
            foreach (string p in args[2..]) RunScenario(args[0], args[1], p);
        else if (args.Length == 2 && args[0] == "golden")
            Golden(args[1]);
        else if (args.Length == 5 && args[0] == "concurrent")
            Concurrent(args[1], long.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture),
                int.Parse(args[4], CultureInfo.InvariantCulture));
        else
        {
            Console.Error.WriteLine("usage: runner_cs write|read SEGDIR SCENARIO.json... | golden GOLDENDIR | concurrent SEG ID MS WORKERS");
            return 2;
        }
        return _failed ? 1 : 0;
    }
}
