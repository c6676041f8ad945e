using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using Commy.Interop;

namespace Commy;

/// <summary>A shared growable array: an IList&lt;T&gt; whose elements live in
/// the segment. Vecs of unmanaged T expose their storage as a Span without
/// copying (<see cref="AsSpan"/>).</summary>
public sealed unsafe class Vec<T> : Container, IList<T>, IReadOnlyList<T>
{
    /// <summary>The declared element type.</summary>
    public ElementType Type { get; }

    internal Vec(Segment s, string name, ElementType type, OpenMode mode)
        : base(s, name, ContainerKind.Vec, type, ElementType.Any, mode)
    {
        Type = type;
    }

    /// <summary>Number of elements (as a long: a vec may outgrow int).</summary>
    public unsafe long LongCount
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(commy.commy_vec_len(&n, u.Ptr));
            return (long)n;
        }
    }

    /// <summary>Number of elements.</summary>
    public int Count => checked((int)LongCount);

    /// <summary>Elements that fit without reallocating.</summary>
    public unsafe long Capacity
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(commy.commy_vec_capacity(&n, u.Ptr));
            return (long)n;
        }
    }

    bool ICollection<T>.IsReadOnly => Segment.IsReadOnly;

    private static ArgumentOutOfRangeException RangeError(long index, CommyException inner) =>
        new(nameof(index), index, inner.Message);

    /// <summary>The element at index. ArgumentOutOfRangeException outside 0..Count-1.</summary>
    public T this[int index]
    {
        get => Get(index);
        set => Set(index, value);
    }

    /// <summary>Reads element index.</summary>
    public T Get(long index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
        using HandleUse u = Use();
        var op = new VecGet { H = u.Ptr, Index = (ulong)index };
        int rc = Codec<T>.TryRead(ref op, out T v);
        if (rc == ErrorCode.Range) throw RangeError(index, Native.Error(rc));
        Native.Check(rc);
        return v;
    }

    /// <summary>Replaces element index.</summary>
    public unsafe void Set(long index, T value)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
        Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned p = Codec<T>.Pin(ref value, scratch);
        using HandleUse u = Use();
        int rc = commy.commy_vec_set(u.Ptr, (ulong)index, p.Ptr, p.Len);
        if (rc == ErrorCode.Range) throw RangeError(index, Native.Error(rc));
        Native.Check(rc);
    }

    /// <summary>Appends an element.</summary>
    public unsafe void Add(T item)
    {
        Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned p = Codec<T>.Pin(ref item, scratch);
        using HandleUse u = Use();
        Native.Check(commy.commy_vec_push(u.Ptr, p.Ptr, p.Len));
    }

    /// <summary>Appends every element of items as one atomic change.</summary>
    public void AddRange(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        using SegmentLock l = Segment.BatchLock();
        foreach (T x in items) Add(x);
    }

    /// <summary>Inserts before index (index == Count appends). O(Count).</summary>
    public unsafe void Insert(int index, T item)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
        Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned p = Codec<T>.Pin(ref item, scratch);
        using HandleUse u = Use();
        int rc = commy.commy_vec_insert(u.Ptr, (ulong)index, p.Ptr, p.Len);
        if (rc == ErrorCode.Range) throw RangeError(index, Native.Error(rc));
        Native.Check(rc);
    }

    /// <summary>Removes element index, shifting the rest down. O(Count).</summary>
    public void RemoveAt(int index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
        using HandleUse u = Use();
        int rc = commy.commy_vec_remove(u.Ptr, (ulong)index);
        if (rc == ErrorCode.Range) throw RangeError(index, Native.Error(rc));
        Native.Check(rc);
    }

    /// <summary>Removes and returns the last element. EmptyException if there is none.</summary>
    public T Pop()
    {
        using HandleUse u = Use();
        var op = new VecPop { H = u.Ptr };
        Native.Check(Codec<T>.TryRead(ref op, out T v));
        return v;
    }

    /// <summary>Removes the last element into item; false if the vec is empty.</summary>
    public bool TryPop(out T item)
    {
        using HandleUse u = Use();
        var op = new VecPop { H = u.Ptr };
        int rc = Codec<T>.TryRead(ref op, out item);
        if (rc == ErrorCode.Empty) return false;
        Native.Check(rc);
        return true;
    }

    /// <summary>Makes room for at least n elements in all.</summary>
    public void Reserve(long n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n));
        using HandleUse u = Use();
        Native.Check(commy.commy_vec_reserve(u.Ptr, (ulong)n));
    }

    /// <summary>Removes every element.</summary>
    public void Clear()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_vec_clear(u.Ptr));
    }

    /// <summary>The elements of a vec of unmanaged T, in place, without
    /// copying. Valid until the vec reallocates (a push past Capacity, an
    /// insert, remove, reserve or clear, by any process): hold
    /// <see cref="Segment.Lock"/> to keep it still. Writable only on a
    /// writable segment; use <see cref="AsReadOnlySpan"/> on a read-only one.</summary>
    public Span<T> AsSpan()
    {
        if (Segment.IsReadOnly)
            throw new PermissionException(ErrorCode.Permission,
                $"vec '{Name}' is in a read-only segment: use AsReadOnlySpan()");
        return Data();
    }

    /// <summary>The elements of a vec of unmanaged T, read-only, without copying
    /// (same validity rules as <see cref="AsSpan"/>).</summary>
    public ReadOnlySpan<T> AsReadOnlySpan() => Data();

    private unsafe Span<T> Data()
    {
        if (!Codec<T>.IsFixed)
            throw new UnsupportedOperationException(ErrorCode.NotSupported,
                $"vec '{Name}' holds {typeof(T).Name} values, which have no fixed size: only vecs of unmanaged types have a span");
        using HandleUse u = Use();
        void* data = null;
        ulong n = 0;
        Native.Check(commy.commy_vec_data(&data, &n, u.Ptr));
        return n == 0 ? Span<T>.Empty : new Span<T>(data, checked((int)n));
    }

    /// <summary>Copies every element into a new array (one consistent snapshot).</summary>
    public T[] ToArray()
    {
        using SegmentLock l = Segment.BatchLock();
        if (Codec<T>.IsFixed && !Segment.IsRemote) return AsReadOnlySpan().ToArray();
        var a = new T[Count];
        for (int i = 0; i < a.Length; i++) a[i] = Get(i);
        return a;
    }

    public int IndexOf(T item)
    {
        using SegmentLock l = Segment.BatchLock();
        var cmp = EqualityComparer<T>.Default;
        if (Codec<T>.IsFixed && !Segment.IsRemote)
        {
            ReadOnlySpan<T> s = AsReadOnlySpan();
            for (int i = 0; i < s.Length; i++)
                if (cmp.Equals(s[i], item)) return i;
            return -1;
        }
        int n = Count;
        for (int i = 0; i < n; i++)
            if (Eq(Get(i), item)) return i;
        return -1;
    }

    // byte[] has reference equality; compare contents.
    private static bool Eq(T a, T b) =>
        a is byte[] x && b is byte[] y ? x.AsSpan().SequenceEqual(y) : EqualityComparer<T>.Default.Equals(a, b);

    public bool Contains(T item) => IndexOf(item) >= 0;

    /// <summary>Removes the first element equal to item (atomically).</summary>
    public bool Remove(T item)
    {
        using SegmentLock l = Segment.BatchLock();
        int i = IndexOf(item);
        if (i < 0) return false;
        RemoveAt(i);
        return true;
    }

    public void CopyTo(T[] array, int arrayIndex)
    {
        ArgumentNullException.ThrowIfNull(array);
        T[] all = ToArray();
        all.CopyTo(array, arrayIndex);
    }

    /// <summary>Enumerates in index order; throws ConcurrentChangeException if
    /// the vec changes (in any process) during the enumeration.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        uint v0 = Version;
        long n = LongCount;
        for (long i = 0; i < n; i++)
        {
            T x;
            try
            {
                x = Get(i);
            }
            catch (ArgumentOutOfRangeException)
            {
                x = default!;
            }
            if (Version != v0)
                throw new ConcurrentChangeException(ErrorCode.Concurrent,
                    $"vec '{Name}' changed during enumeration; enumerate again");
            yield return x;
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"Vec<{typeof(T).Name}> '{Name}'";
}
