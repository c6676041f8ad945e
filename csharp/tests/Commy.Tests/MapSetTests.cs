using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Xunit;

namespace Commy.Tests;

public class MapTests
{
    private static void CheckAgainstModel<TKey, TValue>(MapBase<TKey, TValue> map, Func<Random, TKey> key,
        Func<Random, TValue> value, int steps, int seed) where TKey : notnull
    {
        var model = new Dictionary<TKey, TValue>();
        var rnd = new Random(seed);
        for (int step = 0; step < steps; step++)
        {
            TKey k = key(rnd);
            switch (rnd.Next(4))
            {
                case 0: case 1:
                    TValue v = value(rnd);
                    map[k] = v; model[k] = v; break;
                case 2:
                    Assert.Equal(model.Remove(k), map.Remove(k)); break;
                case 3:
                    Assert.Equal(model.TryGetValue(k, out TValue? mv), map.TryGetValue(k, out TValue? got));
                    if (model.ContainsKey(k)) Assert.Equal(mv, got);
                    Assert.Equal(model.ContainsKey(k), map.ContainsKey(k));
                    break;
            }
        }
        Assert.Equal(model.Count, map.Count);
        var all = map.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(model.Count, all.Count);
        foreach (var kv in model) Assert.Equal(kv.Value, all[kv.Key]);
    }

    [Fact]
    public void LongToLongMatchesADictionary()
    {
        using var seg = TestPaths.Open("map");
        using var map = seg.OpenMap<long, long>("m");
        CheckAgainstModel(map, r => r.Next(500), r => r.NextInt64(), 5000, 1);
    }

    [Fact]
    public void StringKeysAndByteValuesMatchADictionary()
    {
        using var seg = TestPaths.Open("map");
        using var map = seg.OpenMap<string, string>("m");
        CheckAgainstModel(map, r => "key-" + r.Next(300) + new string('k', r.Next(3) * 150),
            r => new string('v', r.Next(400)), 3000, 2);
        using var bytes = seg.OpenMap<int, double>("d");
        CheckAgainstModel(bytes, r => r.Next(100), r => r.NextDouble(), 2000, 3);
    }

    [Fact]
    public void DictionaryContract()
    {
        using var seg = TestPaths.Open("map");
        using var map = seg.OpenMap<string, int>("m");
        map.Add("a", 1);
        var dup = Assert.Throws<ArgumentException>(() => map.Add("a", 2));
        Assert.Contains("already", dup.Message);
        Assert.False(map.TryAdd("a", 3));
        Assert.Equal(1, map["a"]);
        var missing = Assert.Throws<KeyNotFoundException>(() => map["zz"]);
        Assert.IsType<NotFoundException>(missing.InnerException);
        ICollection<KeyValuePair<string, int>> coll = map;
        Assert.Contains(new KeyValuePair<string, int>("a", 1), coll);
        Assert.False(coll.Remove(new KeyValuePair<string, int>("a", 2)));
        Assert.True(coll.Remove(new KeyValuePair<string, int>("a", 1)));
        map["x"] = 1;
        map["y"] = 2;
        Assert.Equal(new[] { "x", "y" }, map.Keys.OrderBy(k => k));
        Assert.Equal(new[] { 1, 2 }, map.Values.OrderBy(v => v));
        var arr = new KeyValuePair<string, int>[3];
        map.CopyTo(arr, 1);
        Assert.Equal(3, arr.Count(kv => kv.Key != null) + 1);
        map.Clear();
        Assert.Empty(map);
    }

    [Fact]
    public void ByteArrayAndBlobKeys()
    {
        using var seg = TestPaths.Open("map");
        using var map = seg.OpenMap<byte[], Guid>("m");
        var g = Guid.NewGuid();
        map[new byte[] { 1, 2, 3 }] = g;
        Assert.Equal(g, map[new byte[] { 1, 2, 3 }]); // by content, not by reference
        Assert.False(map.ContainsKey(new byte[] { 1, 2 }));
        using var blob = seg.OpenMap<byte[], bool>("b", ElementType.Blob(2));
        blob[new byte[] { 9, 9 }] = true;
        Assert.True(blob[new byte[] { 9, 9 }]);
        Assert.Throws<InvalidArgumentException>(() => blob[new byte[] { 9 }] = false);
    }

    [Fact]
    public void EnumerationNoticesAChange()
    {
        using var seg = TestPaths.Open("map");
        using var map = seg.OpenMap<int, int>("m");
        for (int i = 0; i < 50; i++) map[i] = i;
        Assert.Throws<ConcurrentChangeException>(() =>
        {
            foreach (var kv in map) map[1000 + kv.Key] = 0;
        });
    }
}

public class SetTests
{
    private static void CheckSet(SetBase<int> set, int seed)
    {
        var model = new HashSet<int>();
        var rnd = new Random(seed);
        for (int i = 0; i < 3000; i++)
        {
            int x = rnd.Next(400);
            switch (rnd.Next(3))
            {
                case 0: Assert.Equal(model.Add(x), set.Add(x)); break;
                case 1: Assert.Equal(model.Remove(x), set.Remove(x)); break;
                case 2: Assert.Equal(model.Contains(x), set.Contains(x)); break;
            }
        }
        Assert.Equal(model.Count, set.Count);
        Assert.True(set.SetEquals(model));
        Assert.True(model.SetEquals(set));

        var other = Enumerable.Range(0, 200).ToList();
        var m2 = new HashSet<int>(model);
        Assert.Equal(m2.Overlaps(other), set.Overlaps(other));
        Assert.Equal(m2.IsSubsetOf(other), set.IsSubsetOf(other));
        Assert.Equal(m2.IsSupersetOf(other), set.IsSupersetOf(other));
        m2.SymmetricExceptWith(other); set.SymmetricExceptWith(other);
        Assert.True(set.SetEquals(m2));
        m2.IntersectWith(Enumerable.Range(100, 200)); set.IntersectWith(Enumerable.Range(100, 200));
        Assert.True(set.SetEquals(m2));
        m2.UnionWith(new[] { -1, -2 }); set.UnionWith(new[] { -1, -2 });
        Assert.True(set.SetEquals(m2));
        m2.ExceptWith(new[] { -1 }); set.ExceptWith(new[] { -1 });
        Assert.True(set.SetEquals(m2));
        Assert.True(set.IsProperSupersetOf(new[] { -2 }));
        Assert.True(set.IsProperSubsetOf(m2.Append(12345)));
        set.Clear();
        Assert.Equal(0, set.Count);
    }

    [Fact]
    public void HashSetMatchesAModel()
    {
        using var seg = TestPaths.Open("set");
        using var set = seg.OpenSet<int>("s");
        CheckSet(set, 11);
    }

    [Fact]
    public void OrderedSetMatchesAModel()
    {
        using var seg = TestPaths.Open("oset");
        using var set = seg.OpenOrderedSet<int>("s");
        CheckSet(set, 12);
    }

    [Fact]
    public void StringAndFloatSets()
    {
        using var seg = TestPaths.Open("set");
        using var s = seg.OpenSet<string>("s");
        Assert.True(s.Add("α"));
        Assert.False(s.Add("α"));
        Assert.True(s.Contains("α"));
        using var f = seg.OpenSet<double>("f");
        Assert.True(f.Add(0.0));
        Assert.False(f.Add(-0.0)); // commy stores keys canonically: -0.0 is 0.0
        Assert.True(f.Add(double.NaN));
        Assert.True(f.Contains(double.NaN));
    }
}

public class OrderedTests
{
    [Fact]
    public void OrderedMapEnumeratesInKeyOrderAndAnswersRanges()
    {
        using var seg = TestPaths.Open("omap");
        using var map = seg.OpenOrderedMap<long, string>("m");
        var model = new SortedDictionary<long, string>();
        var rnd = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            long k = rnd.Next(-1000, 1000);
            if (rnd.Next(4) == 0) { Assert.Equal(model.Remove(k), map.Remove(k)); }
            else { map[k] = "v" + k; model[k] = "v" + k; }
        }
        Assert.Equal(model.ToList(), map.ToList());
        Assert.Equal(model.First(), map.First());
        Assert.Equal(model.Last(), map.Last());

        foreach (var (lo, hi) in new[] { (-500L, 500L), (3L, 3L), (10L, -10L), (-5000L, 5000L), (999L, 2000L) })
        {
            foreach (bool li in new[] { true, false })
            foreach (bool hiInc in new[] { true, false })
            {
                var expect = model.Where(kv => (li ? kv.Key >= lo : kv.Key > lo) && (hiInc ? kv.Key <= hi : kv.Key < hi)).ToList();
                Assert.Equal(expect, map.Range(lo, hi, li, hiInc).ToList());
            }
        }
        Assert.Equal(model.Where(kv => kv.Key > 100).ToList(), map.RangeFrom(100, inclusive: false).ToList());
        Assert.Equal(model.Where(kv => kv.Key <= -100).ToList(), map.RangeTo(-100).ToList());

        long probe = model.Keys.ElementAt(10);
        Assert.True(map.TryGetLowerBound(probe, out var lb));
        Assert.Equal(probe, lb.Key);
        Assert.True(map.TryGetUpperBound(probe, out var ub));
        Assert.Equal(model.Keys.ElementAt(11), ub.Key);
        Assert.False(map.TryGetUpperBound(model.Keys.Last(), out _));

        map.Clear();
        Assert.False(map.TryGetFirst(out _));
        Assert.Throws<EmptyException>(() => map.Last());
    }

    [Fact]
    public void StringKeysOrderBytewiseAsUtf8()
    {
        using var seg = TestPaths.Open("omap");
        using var set = seg.OpenOrderedSet<string>("s");
        var words = new[] { "b", "a", "", "ab", "\uffff", "\U0001F600", "Z", "é" };
        foreach (var w in words) set.Add(w);
        // Ordinal order of UTF-8 bytes, which is code point order.
        var expect = words.OrderBy(w => Encoding.UTF8.GetBytes(w), new ByteOrder()).ToList();
        Assert.Equal(expect, set.ToList());
        Assert.Equal("", set.Min);
        Assert.Equal("\U0001F600", set.Max);
        Assert.Equal(new[] { "a", "ab", "b" }, set.Range("a", "b").ToList());
        Assert.Equal(new[] { "ab" }, set.Range("a", "b", false, false).ToList());
        Assert.True(set.TryGetLowerBound("aa", out string? lb));
        Assert.Equal("ab", lb);
        Assert.Equal(new[] { "", "Z" }, set.RangeTo("Z").ToList());
    }

    [Fact]
    public void OrderedSetOfUnsignedAndDoubles()
    {
        using var seg = TestPaths.Open("oset");
        using var u = seg.OpenOrderedSet<ulong>("u");
        foreach (ulong x in new[] { ulong.MaxValue, 0ul, 1ul << 63, 5ul }) u.Add(x);
        Assert.Equal(new[] { 0ul, 5ul, 1ul << 63, ulong.MaxValue }, u.ToList());
        Assert.Equal(new[] { 5ul, 1ul << 63 }, u.Range(1, 1ul << 63).ToList());
        using var d = seg.OpenOrderedSet<double>("d");
        foreach (double x in new[] { 2.5, -1e300, double.NegativeInfinity, 0.0, 1e-300 }) d.Add(x);
        Assert.Equal(new[] { double.NegativeInfinity, -1e300, 0.0, 1e-300, 2.5 }, d.ToList());
        Assert.Equal(double.NegativeInfinity, d.Min);
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
