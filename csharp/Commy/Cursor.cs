using System;
using System.Buffers;
using System.Collections.Generic;
using Commy.Interop;

namespace Commy;

/// <summary>Walks a map, set, ordered map or ordered set with the C cursor,
/// keeping the current key's (and value's) native bytes in growable buffers.</summary>
internal sealed unsafe class CursorReader
{
    private readonly Container _owner;
    private readonly bool _hasValue;
    private NativeCursor _cur;
    private byte[] _k = new byte[64];
    private byte[]? _v;
    private nuint _klen, _vlen;

    public CursorReader(Container owner)
    {
        _owner = owner;
        _hasValue = owner.Kind is ContainerKind.Map or ContainerKind.OrderedMap;
        if (_hasValue) _v = new byte[64];
    }

    public ReadOnlySpan<byte> KeyBytes => _k.AsSpan(0, (int)_klen);

    public TKey Key<TKey>()
    {
        fixed (byte* k = _k) return Codec<TKey>.Decode(k, _klen);
    }

    public TValue Value<TValue>()
    {
        fixed (byte* v = _v) return Codec<TValue>.Decode(v, _vlen);
    }

    /// <summary>Positions the cursor before the first key >= key (inclusive)
    /// or > key; ordered kinds only.</summary>
    public void Seek(byte[] key, bool inclusive)
    {
        if (_owner.Segment.IsRemote)
        {
            // A remote service cannot seek a cursor to a key: find the first
            // key of the range (lower/upper bound), then walk from the start
            // and skip until it (Next).
            _skipUntil = BoundKey(key, inclusive);
            _exhausted = _skipUntil == null;
            return;
        }
        using HandleUse u = _owner.Use();
        int rc;
        fixed (NativeCursor* c = &_cur)
        fixed (byte* k = key)
        {
            void* kp = k;
            byte dummy = 0;
            if (key.Length == 0) kp = &dummy; // an empty key is a key, not "from the start"
            rc = _owner.Kind == ContainerKind.OrderedMap
                ? commy.commy_omap_seek(c, u.Ptr, kp, (nuint)key.Length, inclusive ? 1 : 0)
                : commy.commy_oset_seek(c, u.Ptr, kp, (nuint)key.Length, inclusive ? 1 : 0);
        }
        Native.Check(rc);
    }

    private byte[]? _skipUntil;
    private bool _exhausted;

    private byte[]? BoundKey(byte[] key, bool inclusive)
    {
        fixed (byte* kp = key)
        {
            byte dummy = 0;
            using HandleUse u = _owner.Use();
            var op = new OrderedBoundOp
            {
                H = u.Ptr, IsMap = _owner.Kind == ContainerKind.OrderedMap,
                What = inclusive ? Bound.Lower : Bound.Upper, Key = key.Length == 0 ? &dummy : kp, KeyLen = (nuint)key.Length,
            };
            int rc = PairReader.TryRead<OrderedBoundOp, byte[], byte[]>(ref op, false, out byte[] found, out _);
            if (rc == ErrorCode.NotFound || rc == ErrorCode.Empty) return null;
            Native.Check(rc);
            return found;
        }
    }

    /// <summary>One step: true with the entry in the buffers, false at the end.</summary>
    public bool Next()
    {
        if (_exhausted) return false;
        while (_skipUntil != null)
        {
            if (!Step()) return false;
            if (KeyBytes.SequenceEqual(_skipUntil))
            {
                _skipUntil = null;
                return true;
            }
        }
        return Step();
    }

    private bool Step()
    {
        using HandleUse u = _owner.Use();
        while (true)
        {
            int rc;
            fixed (NativeCursor* c = &_cur)
            fixed (byte* k = _k)
            fixed (byte* v = _v)
            fixed (nuint* kl = &_klen)
            fixed (nuint* vl = &_vlen)
            {
                nuint kcap = (nuint)_k.Length, vcap = _v == null ? 0 : (nuint)_v.Length;
                rc = _owner.Kind switch
                {
                    ContainerKind.Map => commy.commy_map_next(u.Ptr, c, k, kcap, kl, v, vcap, vl),
                    ContainerKind.OrderedMap => commy.commy_omap_next(u.Ptr, c, k, kcap, kl, v, vcap, vl),
                    ContainerKind.Set => commy.commy_set_next(u.Ptr, c, k, kcap, kl),
                    _ => commy.commy_oset_next(u.Ptr, c, k, kcap, kl),
                };
            }
            if (rc == ErrorCode.TooSmall)
            {
                // Both lengths were stored and the cursor did not move.
                if (_klen > (nuint)_k.Length) _k = new byte[checked((int)_klen)];
                if (_hasValue && _vlen > (nuint)_v!.Length) _v = new byte[checked((int)_vlen)];
                continue;
            }
            if (rc == commy.COMMY_ROW) return true;
            if (rc == commy.COMMY_DONE) return false;
            Native.Throw(rc);
        }
    }
}

/// <summary>A native call with two outputs (key and value), e.g. omap_first.</summary>
internal unsafe interface INativeRead2
{
    int Read(void* k, nuint kcap, nuint* klen, void* v, nuint vcap, nuint* vlen);
}

internal static unsafe class PairReader
{
    /// <summary>Runs op with growing buffers; returns its code and decodes the
    /// key (and the value if TValue is not null-typed) on success.</summary>
    public static int TryRead<TOp, TKey, TValue>(ref TOp op, bool hasValue, out TKey key, out TValue value)
        where TOp : struct, INativeRead2
    {
        byte[] k = ArrayPool<byte>.Shared.Rent(256);
        byte[]? v = hasValue ? ArrayPool<byte>.Shared.Rent(256) : null;
        try
        {
            while (true)
            {
                nuint klen = 0, vlen = 0;
                int rc;
                fixed (byte* kp = k)
                fixed (byte* vp = v)
                {
                    rc = op.Read(kp, (nuint)k.Length, &klen, vp, v == null ? 0 : (nuint)v.Length, &vlen);
                    if (rc >= 0)
                    {
                        key = Codec<TKey>.Decode(kp, klen);
                        value = hasValue ? Codec<TValue>.Decode(vp, vlen) : default!;
                        return rc;
                    }
                }
                if (rc != ErrorCode.TooSmall)
                {
                    key = default!;
                    value = default!;
                    return rc;
                }
                if (klen > (nuint)k.Length)
                {
                    ArrayPool<byte>.Shared.Return(k);
                    k = ArrayPool<byte>.Shared.Rent(checked((int)klen));
                }
                if (v != null && vlen > (nuint)v.Length)
                {
                    ArrayPool<byte>.Shared.Return(v);
                    v = ArrayPool<byte>.Shared.Rent(checked((int)vlen));
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(k);
            if (v != null) ArrayPool<byte>.Shared.Return(v);
        }
    }
}

internal enum Bound { First, Last, Lower, Upper }

internal unsafe struct OrderedBoundOp : INativeRead2
{
    public IntPtr H;
    public bool IsMap;
    public Bound What;
    public void* Key;
    public nuint KeyLen;

    public int Read(void* k, nuint kcap, nuint* klen, void* v, nuint vcap, nuint* vlen)
    {
        if (IsMap)
            return What switch
            {
                Bound.First => commy.commy_omap_first(H, k, kcap, klen, v, vcap, vlen),
                Bound.Last => commy.commy_omap_last(H, k, kcap, klen, v, vcap, vlen),
                Bound.Lower => commy.commy_omap_lower_bound(H, Key, KeyLen, k, kcap, klen, v, vcap, vlen),
                _ => commy.commy_omap_upper_bound(H, Key, KeyLen, k, kcap, klen, v, vcap, vlen),
            };
        return What switch
        {
            Bound.First => commy.commy_oset_first(H, k, kcap, klen),
            Bound.Last => commy.commy_oset_last(H, k, kcap, klen),
            Bound.Lower => commy.commy_oset_lower_bound(H, Key, KeyLen, k, kcap, klen),
            _ => commy.commy_oset_upper_bound(H, Key, KeyLen, k, kcap, klen),
        };
    }
}

/// <summary>Equality as commy sees stored values: byte[] by content.</summary>
internal sealed class ValueComparer<T> : IEqualityComparer<T>
{
    public static readonly ValueComparer<T> Instance = new();

    public bool Equals(T? a, T? b)
    {
        if (a is byte[] x && b is byte[] y) return x.AsSpan().SequenceEqual(y);
        return EqualityComparer<T>.Default.Equals(a, b);
    }

    public int GetHashCode(T obj)
    {
        if (obj is byte[] a)
        {
            var h = new HashCode();
            h.AddBytes(a);
            return h.ToHashCode();
        }
        return obj is null ? 0 : EqualityComparer<T>.Default.GetHashCode(obj);
    }
}

/// <summary>Range enumeration over ordered kinds: seek to the lower end and
/// stop at the first key past the upper end. The stop key is found by the C
/// library (upper/lower bound), so the range follows commy's own ordering of
/// the type exactly; no ordering is re-implemented in C#.</summary>
internal static class OrderedRange
{
    /// <summary>True if no key can lie between from and to: from after to, or
    /// equal with an end excluded. Compares the two arguments only (numbers
    /// numerically, everything else bytewise as commy orders them).</summary>
    public static bool IsEmpty<TKey>(TKey from, TKey to, bool fromInclusive, bool toInclusive)
    {
        int c;
        Type t = typeof(TKey);
        if (t.IsPrimitive) c = Comparer<TKey>.Default.Compare(from, to);
        else c = Codec<TKey>.ToBytes(from).AsSpan().SequenceCompareTo(Codec<TKey>.ToBytes(to));
        return c > 0 || (c == 0 && !(fromInclusive && toInclusive));
    }

    public static unsafe byte[]? StopKey<TKey>(Container c, TKey to, bool toInclusive)
    {
        Span<byte> scratch = Codec<TKey>.IsFixed ? default : stackalloc byte[Codec<TKey>.ScratchBytes];
        using Pinned p = Codec<TKey>.Pin(ref to, scratch);
        using HandleUse u = c.Use();
        var op = new OrderedBoundOp
        {
            H = u.Ptr, IsMap = c.Kind == ContainerKind.OrderedMap,
            What = toInclusive ? Bound.Upper : Bound.Lower, Key = p.Ptr, KeyLen = p.Len,
        };
        int rc = PairReader.TryRead<OrderedBoundOp, byte[], byte[]>(ref op, false, out byte[] key, out _);
        if (rc == ErrorCode.NotFound) return null;
        Native.Check(rc);
        return key;
    }
}
