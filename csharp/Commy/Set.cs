using System;
using System.Collections;
using System.Collections.Generic;
using Commy.Interop;

namespace Commy;

/// <summary>What the hash set and the ordered set share: an ISet&lt;T&gt;
/// whose elements live in the segment. Each Add or Remove is atomic; the
/// bulk ISet operations are a sequence of them (wrap them in
/// <see cref="Segment.Lock"/> to make a small one atomic).</summary>
public abstract unsafe class SetBase<T> : Container, ISet<T>, IReadOnlySet<T>
{
    private readonly bool _ordered;

    /// <summary>The declared element type.</summary>
    public ElementType Type { get; }

    private protected SetBase(Segment s, string name, ContainerKind kind, ElementType type, OpenMode mode)
        : base(s, name, kind, type, ElementType.Any, mode)
    {
        _ordered = kind == ContainerKind.OrderedSet;
        Type = type;
    }

    public unsafe long LongCount
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(_ordered ? commy.commy_oset_len(&n, u.Ptr) : commy.commy_set_len(&n, u.Ptr));
            return (long)n;
        }
    }

    public int Count => checked((int)LongCount);

    public bool IsReadOnly => Segment.IsReadOnly;

    /// <summary>Adds item; false if it was already present.</summary>
    public unsafe bool Add(T item)
    {
        Span<byte> ks = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned k = Codec<T>.Pin(ref item, ks);
        using HandleUse u = Use();
        int added = 0;
        Native.Check(_ordered
            ? commy.commy_oset_add(&added, u.Ptr, k.Ptr, k.Len)
            : commy.commy_set_add(&added, u.Ptr, k.Ptr, k.Len));
        return added != 0;
    }

    /// <summary>Removes item; false if it was absent.</summary>
    public unsafe bool Remove(T item)
    {
        Span<byte> ks = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned k = Codec<T>.Pin(ref item, ks);
        using HandleUse u = Use();
        int rc = _ordered ? commy.commy_oset_remove(u.Ptr, k.Ptr, k.Len) : commy.commy_set_remove(u.Ptr, k.Ptr, k.Len);
        if (rc == ErrorCode.NotFound) return false;
        Native.Check(rc);
        return true;
    }

    public unsafe bool Contains(T item)
    {
        Span<byte> ks = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned k = Codec<T>.Pin(ref item, ks);
        using HandleUse u = Use();
        int found = 0;
        Native.Check(_ordered
            ? commy.commy_oset_contains(&found, u.Ptr, k.Ptr, k.Len)
            : commy.commy_set_contains(&found, u.Ptr, k.Ptr, k.Len));
        return found != 0;
    }

    public void Clear()
    {
        using HandleUse u = Use();
        Native.Check(_ordered ? commy.commy_oset_clear(u.Ptr) : commy.commy_set_clear(u.Ptr));
    }

    /// <summary>Enumerates every element (hash order for Set, ascending for
    /// OrderedSet). ConcurrentChangeException if the set changes meanwhile.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        var r = new CursorReader(this);
        while (r.Next()) yield return r.Key<T>();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    void ICollection<T>.Add(T item) => Add(item);

    public void CopyTo(T[] array, int arrayIndex)
    {
        ArgumentNullException.ThrowIfNull(array);
        // Not new List(this): List's constructor calls back into CopyTo.
        var all = new List<T>();
        foreach (T x in this) all.Add(x);
        all.CopyTo(array, arrayIndex);
    }

    private static HashSet<T> Distinct(IEnumerable<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new HashSet<T>(other, ValueComparer<T>.Instance);
    }

    public void UnionWith(IEnumerable<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (T x in other) Add(x);
    }

    public void ExceptWith(IEnumerable<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (T x in other) Remove(x);
    }

    public void IntersectWith(IEnumerable<T> other)
    {
        HashSet<T> keep = Distinct(other);
        var drop = new List<T>();
        foreach (T x in this)
            if (!keep.Contains(x)) drop.Add(x);
        foreach (T x in drop) Remove(x);
    }

    public void SymmetricExceptWith(IEnumerable<T> other)
    {
        foreach (T x in Distinct(other))
            if (!Remove(x)) Add(x);
    }

    public bool IsSubsetOf(IEnumerable<T> other)
    {
        HashSet<T> o = Distinct(other);
        foreach (T x in this)
            if (!o.Contains(x)) return false;
        return true;
    }

    public bool IsProperSubsetOf(IEnumerable<T> other)
    {
        HashSet<T> o = Distinct(other);
        return IsSubsetOf(o) && o.Count > LongCount;
    }

    public bool IsSupersetOf(IEnumerable<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (T x in other)
            if (!Contains(x)) return false;
        return true;
    }

    public bool IsProperSupersetOf(IEnumerable<T> other)
    {
        HashSet<T> o = Distinct(other);
        return IsSupersetOf(o) && LongCount > o.Count;
    }

    public bool Overlaps(IEnumerable<T> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        foreach (T x in other)
            if (Contains(x)) return true;
        return false;
    }

    public bool SetEquals(IEnumerable<T> other)
    {
        HashSet<T> o = Distinct(other);
        return IsSupersetOf(o) && LongCount == o.Count;
    }

    public override string ToString() => $"{Kind}<{typeof(T).Name}> '{Name}'";
}

/// <summary>A shared hash set.</summary>
public sealed class Set<T> : SetBase<T>
{
    internal Set(Segment s, string name, ElementType type, OpenMode mode)
        : base(s, name, ContainerKind.Set, type, mode) { }
}

/// <summary>A shared ordered set: ascending enumeration and range queries in
/// the order commy defines for the element type.</summary>
public sealed class OrderedSet<T> : SetBase<T>
{
    internal OrderedSet(Segment s, string name, ElementType type, OpenMode mode)
        : base(s, name, ContainerKind.OrderedSet, type, mode) { }

    private unsafe bool TryBound(Bound what, T key, out T found)
    {
        Span<byte> ks = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned k = what is Bound.Lower or Bound.Upper ? Codec<T>.Pin(ref key, ks) : default;
        using HandleUse u = Use();
        var op = new OrderedBoundOp { H = u.Ptr, IsMap = false, What = what, Key = k.Ptr, KeyLen = k.Len };
        int rc = PairReader.TryRead<OrderedBoundOp, T, byte>(ref op, false, out found, out _);
        if (rc == ErrorCode.NotFound || rc == ErrorCode.Empty) return false;
        Native.Check(rc);
        return true;
    }

    /// <summary>The smallest element; false if empty.</summary>
    public bool TryGetMin(out T item) => TryBound(Bound.First, default!, out item);
    /// <summary>The largest element; false if empty.</summary>
    public bool TryGetMax(out T item) => TryBound(Bound.Last, default!, out item);

    /// <summary>The smallest element; EmptyException if empty.</summary>
    public T Min => TryGetMin(out T x) ? x : throw new EmptyException(ErrorCode.Empty, $"ordered set '{Name}' is empty");
    /// <summary>The largest element; EmptyException if empty.</summary>
    public T Max => TryGetMax(out T x) ? x : throw new EmptyException(ErrorCode.Empty, $"ordered set '{Name}' is empty");

    /// <summary>The first element >= key; false if there is none.</summary>
    public bool TryGetLowerBound(T key, out T item) => TryBound(Bound.Lower, key, out item);
    /// <summary>The first element > key; false if there is none.</summary>
    public bool TryGetUpperBound(T key, out T item) => TryBound(Bound.Upper, key, out item);

    /// <summary>The elements between from and to (each end inclusive or not), ascending.</summary>
    public IEnumerable<T> Range(T from, T to, bool fromInclusive = true, bool toInclusive = true) =>
        OrderedRange.IsEmpty(from, to, fromInclusive, toInclusive)
            ? Array.Empty<T>()
            : Walk(Codec<T>.ToBytes(from), fromInclusive, to, true, toInclusive);

    /// <summary>The elements >= from (or > from), ascending.</summary>
    public IEnumerable<T> RangeFrom(T from, bool inclusive = true) =>
        Walk(Codec<T>.ToBytes(from), inclusive, default!, false, false);

    /// <summary>The elements &lt;= to (or &lt; to), ascending.</summary>
    public IEnumerable<T> RangeTo(T to, bool inclusive = true) => Walk(null, true, to, true, inclusive);

    private IEnumerable<T> Walk(byte[]? from, bool fromInclusive, T to, bool hasTo, bool toInclusive)
    {
        byte[]? stop = hasTo ? OrderedRange.StopKey(this, to, toInclusive) : null;
        var r = new CursorReader(this);
        if (from != null) r.Seek(from, fromInclusive);
        while (r.Next())
        {
            if (stop != null && r.KeyBytes.SequenceEqual(stop)) yield break;
            yield return r.Key<T>();
        }
    }
}
