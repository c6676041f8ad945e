using System;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Commy;

/// <summary>A value's bytes, ready to pass to C: a pointer into the caller's
/// stack (the value itself or a stackalloc'd scratch), or a pinned array.
/// Dispose releases the pin and any rented array.</summary>
internal unsafe struct Pinned : IDisposable
{
    public void* Ptr;
    public nuint Len;
    internal GCHandle Handle;
    internal byte[]? Rented;

    public void Dispose()
    {
        if (Handle.IsAllocated) Handle.Free();
        if (Rented != null)
        {
            ArrayPool<byte>.Shared.Return(Rented);
            Rented = null;
        }
    }
}

/// <summary>One native read with the output convention (out, cap,
/// *out_len): implemented by small structs so the generic read loop is
/// specialised per call site, with no delegate and no allocation.</summary>
internal unsafe interface INativeRead
{
    int Read(void* buf, nuint cap, nuint* len);
}

/// <summary>Converts between C# values of T and the native representation of
/// commy element types (little-endian fixed-size values, UTF-8 strings, raw bytes).</summary>
internal static unsafe class Codec<T>
{
    /// <summary>Bytes of stack scratch a caller should offer Pin: none for
    /// unmanaged T (the value itself is passed).</summary>
    public const int ScratchBytes = 256;

    public static bool IsFixed
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => !RuntimeHelpers.IsReferenceOrContainsReferences<T>();
    }

    internal static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>Pins value's bytes. For unmanaged T the pointer is value's own
    /// address (value must be a local or parameter of the caller); scratch
    /// must be stack memory (stackalloc).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Pinned Pin(ref T value, Span<byte> scratch)
    {
        if (IsFixed)
            return new Pinned { Ptr = Unsafe.AsPointer(ref value), Len = (nuint)Unsafe.SizeOf<T>() };
        return PinSlow(value, scratch);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Pinned PinSlow(T value, Span<byte> scratch)
    {
        if (value is null) throw new ArgumentNullException(nameof(value), "commy stores no null: use an empty string or array");
        var p = new Pinned();
        if (value is string s)
        {
            int max = StrictUtf8.GetMaxByteCount(s.Length);
            try
            {
                if (max <= scratch.Length)
                {
                    int n = StrictUtf8.GetBytes(s, scratch);
                    p.Ptr = Unsafe.AsPointer(ref MemoryMarshal.GetReference(scratch));
                    p.Len = (nuint)n;
                }
                else
                {
                    int n = StrictUtf8.GetByteCount(s);
                    p.Rented = ArrayPool<byte>.Shared.Rent(Math.Max(n, 1));
                    StrictUtf8.GetBytes(s, p.Rented);
                    p.Handle = GCHandle.Alloc(p.Rented, GCHandleType.Pinned);
                    p.Ptr = (void*)p.Handle.AddrOfPinnedObject();
                    p.Len = (nuint)n;
                }
            }
            catch (EncoderFallbackException e)
            {
                p.Dispose();
                throw new InvalidUtf8Exception(ErrorCode.Utf8,
                    "the string cannot be stored as UTF-8: it holds an unpaired surrogate (" + e.Message + ")");
            }
            return p;
        }
        if (value is byte[] a)
        {
            if (a.Length <= scratch.Length)
            {
                a.CopyTo(scratch);
                p.Ptr = Unsafe.AsPointer(ref MemoryMarshal.GetReference(scratch));
            }
            else
            {
                p.Handle = GCHandle.Alloc(a, GCHandleType.Pinned);
                p.Ptr = (void*)p.Handle.AddrOfPinnedObject();
            }
            p.Len = (nuint)a.Length;
            return p;
        }
        throw new NotSupportedException($"Commy cannot store {typeof(T).FullName}");
    }

    /// <summary>The value in the native bytes [p, p+len).</summary>
    public static T Decode(byte* p, nuint len)
    {
        if (IsFixed)
        {
            if (len != (nuint)Unsafe.SizeOf<T>()) ThrowLength(len);
            if (typeof(T) == typeof(bool))
            {
                bool b = *p != 0;
                return Unsafe.As<bool, T>(ref b);
            }
            return Unsafe.ReadUnaligned<T>(p);
        }
        if (typeof(T) == typeof(string))
        {
            string s = len == 0 ? string.Empty : StrictUtf8.GetString(p, checked((int)len));
            return Unsafe.As<string, T>(ref s);
        }
        if (typeof(T) == typeof(byte[]))
        {
            byte[] a = new ReadOnlySpan<byte>(p, checked((int)len)).ToArray();
            return Unsafe.As<byte[], T>(ref a);
        }
        throw new NotSupportedException($"Commy cannot read {typeof(T).FullName}");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLength(nuint len) =>
        throw new CorruptException(ErrorCode.Corrupt,
            $"a stored value is {len} bytes but {typeof(T).Name} needs {Unsafe.SizeOf<T>()}: the container's type does not match");

    /// <summary>Runs a native read and decodes its value. Returns the native
    /// code: 0 with value set, or a negative code (never COMMY_ETOOSMALL: a
    /// value that outgrows the buffer is read again into a bigger one).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TryRead<TOp>(ref TOp op, out T value) where TOp : struct, INativeRead
    {
        if (IsFixed)
        {
            value = default!;
            nuint len = 0;
            int rc = op.Read(Unsafe.AsPointer(ref value), (nuint)Unsafe.SizeOf<T>(), &len);
            if (rc < 0) return rc;
            if (len != (nuint)Unsafe.SizeOf<T>()) ThrowLength(len);
            if (typeof(T) == typeof(bool))
            {
                bool b = Unsafe.As<T, byte>(ref value) != 0;
                value = Unsafe.As<bool, T>(ref b);
            }
            return rc;
        }
        return TryReadSlow(ref op, out value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int TryReadSlow<TOp>(ref TOp op, out T value) where TOp : struct, INativeRead
    {
        byte* stack = stackalloc byte[ScratchBytes];
        nuint len = 0;
        int rc = op.Read(stack, ScratchBytes, &len);
        if (rc >= 0)
        {
            value = Decode(stack, len);
            return rc;
        }
        // The value changed size between calls if it is still too small: retry.
        while (rc == ErrorCode.TooSmall)
        {
            nuint need = len;
            if (typeof(T) == typeof(byte[]))
            {
                byte[] a = new byte[checked((int)need)];
                fixed (byte* b = a)
                {
                    rc = op.Read(b, need, &len);
                }
                if (rc >= 0 && len == need)
                {
                    value = Unsafe.As<byte[], T>(ref a);
                    return rc;
                }
                if (rc >= 0)
                {
                    value = Decode((byte*)Unsafe.AsPointer(ref a[0]), len);
                    return rc;
                }
                continue;
            }
            byte[] r = ArrayPool<byte>.Shared.Rent(checked((int)need));
            try
            {
                fixed (byte* b = r)
                {
                    rc = op.Read(b, (nuint)r.Length, &len);
                    if (rc >= 0)
                    {
                        value = Decode(b, len);
                        return rc;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(r);
            }
        }
        value = default!;
        return rc;
    }

    /// <summary>Encodes value into a new array (for keys an enumerator must remember).</summary>
    public static byte[] ToBytes(T value)
    {
        Span<byte> scratch = stackalloc byte[ScratchBytes];
        using Pinned p = Pin(ref value, scratch);
        return new ReadOnlySpan<byte>(p.Ptr, checked((int)p.Len)).ToArray();
    }
}

/// <summary>Integer conversions for Box's CompareExchange and Add, through
/// the ABI's int64 (u64 as its two's-complement bits).</summary>
internal static class IntegerCodec<T>
{
    public static bool IsInteger =>
        typeof(T) == typeof(sbyte) || typeof(T) == typeof(byte) || typeof(T) == typeof(short) ||
        typeof(T) == typeof(ushort) || typeof(T) == typeof(char) || typeof(T) == typeof(int) ||
        typeof(T) == typeof(uint) || typeof(T) == typeof(long) || typeof(T) == typeof(ulong);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ToInt64(T v)
    {
        if (typeof(T) == typeof(sbyte)) return Unsafe.As<T, sbyte>(ref v);
        if (typeof(T) == typeof(byte)) return Unsafe.As<T, byte>(ref v);
        if (typeof(T) == typeof(short)) return Unsafe.As<T, short>(ref v);
        if (typeof(T) == typeof(ushort)) return Unsafe.As<T, ushort>(ref v);
        if (typeof(T) == typeof(char)) return Unsafe.As<T, char>(ref v);
        if (typeof(T) == typeof(int)) return Unsafe.As<T, int>(ref v);
        if (typeof(T) == typeof(uint)) return Unsafe.As<T, uint>(ref v);
        if (typeof(T) == typeof(long)) return Unsafe.As<T, long>(ref v);
        if (typeof(T) == typeof(ulong)) return unchecked((long)Unsafe.As<T, ulong>(ref v));
        throw new NotSupportedException($"{typeof(T).Name} is not an integer type");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FromInt64(long l)
    {
        unchecked
        {
            if (typeof(T) == typeof(sbyte)) { sbyte x = (sbyte)l; return Unsafe.As<sbyte, T>(ref x); }
            if (typeof(T) == typeof(byte)) { byte x = (byte)l; return Unsafe.As<byte, T>(ref x); }
            if (typeof(T) == typeof(short)) { short x = (short)l; return Unsafe.As<short, T>(ref x); }
            if (typeof(T) == typeof(ushort)) { ushort x = (ushort)l; return Unsafe.As<ushort, T>(ref x); }
            if (typeof(T) == typeof(char)) { char x = (char)l; return Unsafe.As<char, T>(ref x); }
            if (typeof(T) == typeof(int)) { int x = (int)l; return Unsafe.As<int, T>(ref x); }
            if (typeof(T) == typeof(uint)) { uint x = (uint)l; return Unsafe.As<uint, T>(ref x); }
            if (typeof(T) == typeof(long)) return Unsafe.As<long, T>(ref l);
            if (typeof(T) == typeof(ulong)) { ulong x = (ulong)l; return Unsafe.As<ulong, T>(ref x); }
        }
        throw new NotSupportedException($"{typeof(T).Name} is not an integer type");
    }
}
