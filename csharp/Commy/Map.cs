using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using Commy.Interop;

namespace Commy;

/// <summary>What the hash map and the ordered map share: an
/// IDictionary&lt;TKey,TValue&gt; whose entries live in the segment.</summary>
public abstract unsafe class MapBase<TKey, TValue> : Container, IDictionary<TKey, TValue>, IReadOnlyDictionary<TKey, TValue>
    where TKey : notnull
{
    private readonly bool _ordered;

    /// <summary>The declared key type.</summary>
    public ElementType KeyType { get; }
    /// <summary>The declared value type.</summary>
    public ElementType ValueType { get; }

    private protected MapBase(Segment s, string name, ContainerKind kind, ElementType kt, ElementType vt, OpenMode mode)
        : base(s, name, kind, kt, vt, mode)
    {
        _ordered = kind == ContainerKind.OrderedMap;
        KeyType = kt;
        ValueType = vt;
    }

    /// <summary>Number of entries.</summary>
    public unsafe long LongCount
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(_ordered ? commy.commy_omap_len(&n, u.Ptr) : commy.commy_map_len(&n, u.Ptr));
            return (long)n;
        }
    }

    public int Count => checked((int)LongCount);

    public bool IsReadOnly => Segment.IsReadOnly;

    /// <summary>Inserts or replaces the value of key.</summary>
    public unsafe void Put(TKey key, TValue value)
    {
        Span<byte> ks = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        Span<byte> vs = Codec<TValue>.IsFixed ? default : stackalloc byte[Codec<TValue>.ScratchBytes];
        using Pinned k = Codec<TKey>.Pin(ref key, ks);
        using Pinned v = Codec<TValue>.Pin(ref value, vs);
        using HandleUse u = Use();
        Native.Check(_ordered
            ? commy.commy_omap_put(u.Ptr, k.Ptr, k.Len, v.Ptr, v.Len)
            : commy.commy_map_put(u.Ptr, k.Ptr, k.Len, v.Ptr, v.Len));
    }

    /// <summary>Reads the value of key; false if absent.</summary>
    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out TValue value)
    {
        Span<byte> ks = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        using Pinned k = Codec<TKey>.Pin(ref key, ks);
        using HandleUse u = Use();
        var op = new MapGet { H = u.Ptr, Key = k.Ptr, KeyLen = k.Len, Ordered = _ordered };
        int rc = Codec<TValue>.TryRead(ref op, out value);
        if (rc == ErrorCode.NotFound) return false;
        Native.Check(rc);
        return true;
    }

    /// <summary>The value of key: get throws KeyNotFoundException (with the
    /// commy NotFoundException inside) if absent; set inserts or replaces.</summary>
    public TValue this[TKey key]
    {
        get
        {
            if (TryGetValue(key, out TValue? v)) return v;
            throw new KeyNotFoundException($"{Kind} '{Name}' has no key {key}", Native.Error(ErrorCode.NotFound));
        }
        set => Put(key, value);
    }

    /// <summary>Removes key; false if it was absent.</summary>
    public unsafe bool Remove(TKey key)
    {
        Span<byte> ks = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        using Pinned k = Codec<TKey>.Pin(ref key, ks);
        using HandleUse u = Use();
        int rc = _ordered ? commy.commy_omap_remove(u.Ptr, k.Ptr, k.Len) : commy.commy_map_remove(u.Ptr, k.Ptr, k.Len);
        if (rc == ErrorCode.NotFound) return false;
        Native.Check(rc);
        return true;
    }

    public unsafe bool ContainsKey(TKey key)
    {
        Span<byte> ks = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        using Pinned k = Codec<TKey>.Pin(ref key, ks);
        using HandleUse u = Use();
        int found = 0;
        Native.Check(_ordered
            ? commy.commy_omap_contains(&found, u.Ptr, k.Ptr, k.Len)
            : commy.commy_map_contains(&found, u.Ptr, k.Ptr, k.Len));
        return found != 0;
    }

    /// <summary>Adds key if absent (atomically, across processes); false if present.</summary>
    public bool TryAdd(TKey key, TValue value)
    {
        using SegmentLock l = Segment.BatchLock();
        if (ContainsKey(key)) return false;
        Put(key, value);
        return true;
    }

    /// <summary>Adds key; ArgumentException if it is already present.</summary>
    public void Add(TKey key, TValue value)
    {
        if (!TryAdd(key, value))
            throw new ArgumentException($"{Kind} '{Name}' already has key {key}", nameof(key));
    }

    /// <summary>Removes every entry.</summary>
    public void Clear()
    {
        using HandleUse u = Use();
        Native.Check(_ordered ? commy.commy_omap_clear(u.Ptr) : commy.commy_map_clear(u.Ptr));
    }

    /// <summary>A snapshot of the keys.</summary>
    public ICollection<TKey> Keys
    {
        get
        {
            var l = new List<TKey>();
            foreach (var kv in this) l.Add(kv.Key);
            return new ReadOnlyCollection<TKey>(l);
        }
    }

    /// <summary>A snapshot of the values.</summary>
    public ICollection<TValue> Values
    {
        get
        {
            var l = new List<TValue>();
            foreach (var kv in this) l.Add(kv.Value);
            return new ReadOnlyCollection<TValue>(l);
        }
    }

    IEnumerable<TKey> IReadOnlyDictionary<TKey, TValue>.Keys => Keys;
    IEnumerable<TValue> IReadOnlyDictionary<TKey, TValue>.Values => Values;

    /// <summary>Enumerates every entry (hash order for Map, key order for
    /// OrderedMap). ConcurrentChangeException if the map changes meanwhile.</summary>
    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator()
    {
        var r = new CursorReader(this);
        while (r.Next()) yield return new KeyValuePair<TKey, TValue>(r.Key<TKey>(), r.Value<TValue>());
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    void ICollection<KeyValuePair<TKey, TValue>>.Add(KeyValuePair<TKey, TValue> item) => Add(item.Key, item.Value);

    bool ICollection<KeyValuePair<TKey, TValue>>.Contains(KeyValuePair<TKey, TValue> item) =>
        TryGetValue(item.Key, out TValue? v) && ValueComparer<TValue>.Instance.Equals(v, item.Value);

    bool ICollection<KeyValuePair<TKey, TValue>>.Remove(KeyValuePair<TKey, TValue> item)
    {
        using SegmentLock l = Segment.BatchLock();
        if (!TryGetValue(item.Key, out TValue? v) || !ValueComparer<TValue>.Instance.Equals(v, item.Value)) return false;
        return Remove(item.Key);
    }

    public void CopyTo(KeyValuePair<TKey, TValue>[] array, int arrayIndex)
    {
        ArgumentNullException.ThrowIfNull(array);
        // Not new List(this): List's constructor calls back into CopyTo.
        var all = new List<KeyValuePair<TKey, TValue>>();
        foreach (var kv in this) all.Add(kv);
        all.CopyTo(array, arrayIndex);
    }

    public override string ToString() => $"{Kind}<{typeof(TKey).Name},{typeof(TValue).Name}> '{Name}'";
}

/// <summary>A shared hash map.</summary>
public sealed class Map<TKey, TValue> : MapBase<TKey, TValue> where TKey : notnull
{
    internal Map(Segment s, string name, ElementType kt, ElementType vt, OpenMode mode)
        : base(s, name, ContainerKind.Map, kt, vt, mode) { }
}

/// <summary>A shared ordered map (a B+-tree): enumerates in key order and
/// answers range queries, in the key order commy defines for the type
/// (numeric for numbers, bytewise for str, bytes and blobs).</summary>
public sealed unsafe class OrderedMap<TKey, TValue> : MapBase<TKey, TValue> where TKey : notnull
{
    internal OrderedMap(Segment s, string name, ElementType kt, ElementType vt, OpenMode mode)
        : base(s, name, ContainerKind.OrderedMap, kt, vt, mode) { }

    private unsafe bool TryBound(Bound what, TKey key, out KeyValuePair<TKey, TValue> entry)
    {
        Span<byte> ks = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        using Pinned k = what is Bound.Lower or Bound.Upper ? Codec<TKey>.Pin(ref key, ks) : default;
        using HandleUse u = Use();
        var op = new OrderedBoundOp { H = u.Ptr, IsMap = true, What = what, Key = k.Ptr, KeyLen = k.Len };
        int rc = PairReader.TryRead<OrderedBoundOp, TKey, TValue>(ref op, true, out TKey rk, out TValue rv);
        if (rc == ErrorCode.NotFound || rc == ErrorCode.Empty)
        {
            entry = default;
            return false;
        }
        Native.Check(rc);
        entry = new KeyValuePair<TKey, TValue>(rk, rv);
        return true;
    }

    /// <summary>The entry with the smallest key; false if empty.</summary>
    public bool TryGetFirst(out KeyValuePair<TKey, TValue> entry) => TryBound(Bound.First, default!, out entry);
    /// <summary>The entry with the largest key; false if empty.</summary>
    public bool TryGetLast(out KeyValuePair<TKey, TValue> entry) => TryBound(Bound.Last, default!, out entry);

    /// <summary>The entry with the smallest key; EmptyException if empty.</summary>
    public KeyValuePair<TKey, TValue> First() =>
        TryGetFirst(out var e) ? e : throw new EmptyException(ErrorCode.Empty, $"ordered map '{Name}' is empty");
    /// <summary>The entry with the largest key; EmptyException if empty.</summary>
    public KeyValuePair<TKey, TValue> Last() =>
        TryGetLast(out var e) ? e : throw new EmptyException(ErrorCode.Empty, $"ordered map '{Name}' is empty");

    /// <summary>The first entry with key >= key; false if there is none.</summary>
    public bool TryGetLowerBound(TKey key, out KeyValuePair<TKey, TValue> entry) => TryBound(Bound.Lower, key, out entry);
    /// <summary>The first entry with key > key; false if there is none.</summary>
    public bool TryGetUpperBound(TKey key, out KeyValuePair<TKey, TValue> entry) => TryBound(Bound.Upper, key, out entry);

    /// <summary>The entries with from &lt;= key &lt;= to (each end inclusive
    /// or not), in key order.</summary>
    public IEnumerable<KeyValuePair<TKey, TValue>> Range(TKey from, TKey to, bool fromInclusive = true, bool toInclusive = true) =>
        OrderedRange.IsEmpty(from, to, fromInclusive, toInclusive)
            ? Array.Empty<KeyValuePair<TKey, TValue>>()
            : Walk(Codec<TKey>.ToBytes(from), fromInclusive, to, true, toInclusive);

    /// <summary>The entries with key >= from (or > from), in key order.</summary>
    public IEnumerable<KeyValuePair<TKey, TValue>> RangeFrom(TKey from, bool inclusive = true) =>
        Walk(Codec<TKey>.ToBytes(from), inclusive, default!, false, false);

    /// <summary>The entries with key &lt;= to (or &lt; to), in key order.</summary>
    public IEnumerable<KeyValuePair<TKey, TValue>> RangeTo(TKey to, bool inclusive = true) =>
        Walk(null, true, to, true, inclusive);

    private IEnumerable<KeyValuePair<TKey, TValue>> Walk(byte[]? from, bool fromInclusive, TKey to, bool hasTo, bool toInclusive)
    {
        byte[]? stop = hasTo ? OrderedRange.StopKey(this, to, toInclusive) : null;
        var r = new CursorReader(this);
        if (from != null) r.Seek(from, fromInclusive);
        while (r.Next())
        {
            if (stop != null && r.KeyBytes.SequenceEqual(stop)) yield break;
            yield return new KeyValuePair<TKey, TValue>(r.Key<TKey>(), r.Value<TValue>());
        }
    }
}
