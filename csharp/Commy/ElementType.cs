using System;
using System.Runtime.CompilerServices;

namespace Commy;

/// <summary>An element type as stored in a container's header
/// (abi/commy/types.h): the base code in the low 8 bits, a blob's size above.</summary>
public readonly struct ElementType : IEquatable<ElementType>
{
    /// <summary>The commy_type value.</summary>
    public uint Code { get; }

    public ElementType(uint code) { Code = code; }

    public static readonly ElementType Any = new(0);
    public static readonly ElementType I8 = new(1);
    public static readonly ElementType I16 = new(2);
    public static readonly ElementType I32 = new(3);
    public static readonly ElementType I64 = new(4);
    public static readonly ElementType U8 = new(5);
    public static readonly ElementType U16 = new(6);
    public static readonly ElementType U32 = new(7);
    public static readonly ElementType U64 = new(8);
    public static readonly ElementType F32 = new(9);
    public static readonly ElementType F64 = new(10);
    public static readonly ElementType Bool = new(11);
    /// <summary>Variable-length bytes (byte[]).</summary>
    public static readonly ElementType Bytes = new(12);
    /// <summary>Variable-length UTF-8 (string).</summary>
    public static readonly ElementType Str = new(13);

    /// <summary>A fixed-size blob of size bytes (1..65535): byte[] of exactly
    /// that length, or an unmanaged struct of that size.</summary>
    public static ElementType Blob(int size)
    {
        if (size < 1 || size > 65535)
            throw new ArgumentOutOfRangeException(nameof(size), size, "a blob is 1 to 65535 bytes");
        return new ElementType(14u | ((uint)size << 8));
    }

    /// <summary>The base code (COMMY_T_*).</summary>
    public uint Base => Code & 0xffu;
    public bool IsBlob => Base == 14;
    /// <summary>A blob's size in bytes, 0 otherwise.</summary>
    public int BlobSize => IsBlob ? (int)(Code >> 8) : 0;
    public bool IsVariable => Base is 12 or 13;
    public bool IsInteger => Base is >= 1 and <= 8;

    /// <summary>Bytes of a value, 0 for bytes and str.</summary>
    public int Size => Base switch
    {
        1 or 5 or 11 => 1,
        2 or 6 => 2,
        3 or 7 or 9 => 4,
        4 or 8 or 10 => 8,
        14 => BlobSize,
        _ => 0,
    };

    /// <summary>The default element type for the C# type T: sbyte..ulong,
    /// float, double, bool, char (u16), string (str), byte[] (bytes), and any
    /// other unmanaged struct as a blob of its size.</summary>
    public static ElementType Of<T>()
    {
        Type t = typeof(T);
        if (t == typeof(sbyte)) return I8;
        if (t == typeof(short)) return I16;
        if (t == typeof(int)) return I32;
        if (t == typeof(long)) return I64;
        if (t == typeof(byte)) return U8;
        if (t == typeof(ushort) || t == typeof(char)) return U16;
        if (t == typeof(uint)) return U32;
        if (t == typeof(ulong)) return U64;
        if (t == typeof(float)) return F32;
        if (t == typeof(double)) return F64;
        if (t == typeof(bool)) return Bool;
        if (t == typeof(string)) return Str;
        if (t == typeof(byte[])) return Bytes;
        if (t == typeof(nint) || t == typeof(nuint) || t == typeof(IntPtr) || t == typeof(UIntPtr))
            throw new NotSupportedException($"Commy does not store {t.Name}: its width depends on the platform; use long or ulong");
        if (!RuntimeHelpers.IsReferenceOrContainsReferences<T>()) return Blob(Unsafe.SizeOf<T>());
        throw new NotSupportedException(
            $"Commy cannot store {t.FullName}: use sbyte..ulong, float, double, bool, char, string, byte[] or an unmanaged struct");
    }

    /// <summary>Checks that a container of type declared can hold C# values
    /// of type T, and returns it (or T's default when declared is null).</summary>
    internal static ElementType For<T>(ElementType? declared, string what)
    {
        ElementType def = Of<T>();
        if (declared is not { } d) return def;
        if (d.Code == def.Code) return d;
        if (typeof(T) == typeof(byte[]) && d.IsBlob) return d;
        throw new ArgumentException(
            $"the {what} type {d} cannot hold C# {typeof(T).Name} values (expected {def}" +
            (typeof(T) == typeof(byte[]) ? " or a blob" : "") + ")", what);
    }

    public bool Equals(ElementType other) => Code == other.Code;
    public override bool Equals(object? obj) => obj is ElementType o && Equals(o);
    public override int GetHashCode() => (int)Code;
    public static bool operator ==(ElementType a, ElementType b) => a.Code == b.Code;
    public static bool operator !=(ElementType a, ElementType b) => a.Code != b.Code;

    /// <summary>The type's name as the C library spells it: "i64", "str", "blob[16]".</summary>
    public override string ToString() => Base switch
    {
        0 => "any",
        1 => "i8", 2 => "i16", 3 => "i32", 4 => "i64",
        5 => "u8", 6 => "u16", 7 => "u32", 8 => "u64",
        9 => "f32", 10 => "f64", 11 => "bool", 12 => "bytes", 13 => "str",
        14 => $"blob[{BlobSize}]",
        _ => $"invalid({Code})",
    };
}

/// <summary>Container kinds (COMMY_KIND_*).</summary>
public enum ContainerKind
{
    Box = 1,
    Vec = 2,
    Str = 3,
    Deque = 4,
    Map = 5,
    Set = 6,
    OrderedMap = 7,
    OrderedSet = 8,
}

/// <summary>How a container is opened.</summary>
public enum OpenMode
{
    /// <summary>Open it, creating it if it does not exist (the default).</summary>
    OpenOrCreate = 0,
    /// <summary>It must exist: NotFoundException otherwise.</summary>
    OpenExisting = 1,
    /// <summary>It must not exist: AlreadyExistsException otherwise.</summary>
    CreateNew = 2,
}
