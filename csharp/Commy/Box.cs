using System;
using System.Runtime.CompilerServices;
using Commy.Interop;

namespace Commy;

/// <summary>One shared value of type T. Values up to 8 bytes are read and
/// written atomically without the segment lock; integer boxes add lock-free
/// <see cref="CompareExchange"/> and <see cref="Add"/>.</summary>
public sealed unsafe class Box<T> : Container
{
    /// <summary>The declared element type.</summary>
    public ElementType Type { get; }

    internal Box(Segment s, string name, ElementType type, OpenMode mode)
        : base(s, name, ContainerKind.Box, type, ElementType.Any, mode)
    {
        Type = type;
    }

    /// <summary>The current value.</summary>
    public unsafe T Value
    {
        get
        {
            using HandleUse u = Use();
            var op = new BoxGet { H = u.Ptr };
            Native.Check(Codec<T>.TryRead(ref op, out T v));
            return v;
        }
        set
        {
            Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
            using Pinned p = Codec<T>.Pin(ref value, scratch);
            using HandleUse u = Use();
            Native.Check(commy.commy_box_set(u.Ptr, p.Ptr, p.Len));
        }
    }

    private static void RequireInteger()
    {
        if (!IntegerCodec<T>.IsInteger)
            throw new UnsupportedOperationException(ErrorCode.NotSupported,
                $"CompareExchange and Add need an integer box; Box<{typeof(T).Name}> is not one");
    }

    /// <summary>Atomically stores desired if the value equals comparand, and
    /// returns the value found (the swap happened iff it equals comparand),
    /// like Interlocked.CompareExchange. Integer T only.</summary>
    public unsafe T CompareExchange(T desired, T comparand)
    {
        RequireInteger();
        using HandleUse u = Use();
        long found = 0;
        Native.Check(commy.commy_box_cas(&found, u.Ptr, IntegerCodec<T>.ToInt64(comparand), IntegerCodec<T>.ToInt64(desired)));
        return IntegerCodec<T>.FromInt64(found);
    }

    /// <summary>Atomically adds delta (wrapping at T's width) and returns the
    /// new value, like Interlocked.Add. Integer T only.</summary>
    public T Add(T delta)
    {
        RequireInteger();
        long d = IntegerCodec<T>.ToInt64(delta);
        return IntegerCodec<T>.FromInt64(unchecked(FetchAddRaw(d) + d));
    }

    /// <summary>Atomically adds delta and returns the previous value.</summary>
    public T FetchAdd(T delta)
    {
        RequireInteger();
        return IntegerCodec<T>.FromInt64(FetchAddRaw(IntegerCodec<T>.ToInt64(delta)));
    }

    /// <summary>Atomically adds one and returns the new value.</summary>
    public T Increment() => IntegerCodec<T>.FromInt64(unchecked(FetchAddRaw(1) + 1));

    /// <summary>Atomically subtracts one and returns the new value.</summary>
    public T Decrement() => IntegerCodec<T>.FromInt64(unchecked(FetchAddRaw(-1) - 1));

    private unsafe long FetchAddRaw(long delta)
    {
        RequireInteger();
        using HandleUse u = Use();
        long prev = 0;
        Native.Check(commy.commy_box_fetch_add(&prev, u.Ptr, delta));
        return prev;
    }

    public override string ToString() => $"Box<{typeof(T).Name}> '{Name}'";
}

/// <summary>One shared UTF-8 string.</summary>
public sealed unsafe class Str : Container
{
    internal Str(Segment s, string name, OpenMode mode)
        : base(s, name, ContainerKind.Str, ElementType.Str, ElementType.Any, mode) { }

    /// <summary>The contents.</summary>
    public string Value
    {
        get
        {
            using HandleUse u = Use();
            var op = new StrGet { H = u.Ptr };
            Native.Check(Codec<string>.TryRead(ref op, out string v));
            return v;
        }
        set
        {
            Span<byte> scratch = stackalloc byte[Codec<string>.ScratchBytes];
            using Pinned p = Codec<string>.Pin(ref value, scratch);
            using HandleUse u = Use();
            unsafe { Native.Check(commy.commy_str_set(u.Ptr, (byte*)p.Ptr, p.Len)); }
        }
    }

    /// <summary>Appends text.</summary>
    public unsafe void Append(string text)
    {
        Span<byte> scratch = stackalloc byte[Codec<string>.ScratchBytes];
        using Pinned p = Codec<string>.Pin(ref text, scratch);
        using HandleUse u = Use();
        Native.Check(commy.commy_str_append(u.Ptr, (byte*)p.Ptr, p.Len));
    }

    /// <summary>Length in UTF-8 bytes.</summary>
    public unsafe long ByteLength
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(commy.commy_str_len(&n, u.Ptr));
            return (long)n;
        }
    }

    /// <summary>Empties the string.</summary>
    public void Clear()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_str_clear(u.Ptr));
    }

    public override string ToString() => Value;
}
