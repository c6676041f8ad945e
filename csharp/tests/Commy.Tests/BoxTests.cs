using System;
using System.Runtime.InteropServices;
using System.Threading.Tasks;
using Xunit;

namespace Commy.Tests;

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct Point3
{
    public int X, Y, Z;
    public Point3(int x, int y, int z) { X = x; Y = y; Z = z; }
}

public class BoxTests
{
    private static void RoundTrip<T>(Segment seg, T a, T b)
    {
        using var box = seg.OpenBox<T>("b_" + typeof(T).Name);
        Assert.Equal(ElementType.Of<T>(), box.Type);
        box.Value = a;
        Assert.Equal(a, box.Value);
        box.Value = b;
        // A second handle on the same root sees the same bytes.
        using var again = seg.OpenBox<T>("b_" + typeof(T).Name, mode: OpenMode.OpenExisting);
        Assert.Equal(b, again.Value);
    }

    [Fact]
    public void EveryFixedTypeRoundTrips()
    {
        using var seg = TestPaths.Open("box");
        RoundTrip<sbyte>(seg, sbyte.MinValue, sbyte.MaxValue);
        RoundTrip<byte>(seg, 0, byte.MaxValue);
        RoundTrip<short>(seg, short.MinValue, short.MaxValue);
        RoundTrip<ushort>(seg, 0, ushort.MaxValue);
        RoundTrip<int>(seg, int.MinValue, int.MaxValue);
        RoundTrip<uint>(seg, 0, uint.MaxValue);
        RoundTrip<long>(seg, long.MinValue, long.MaxValue);
        RoundTrip<ulong>(seg, 0, ulong.MaxValue);
        RoundTrip<float>(seg, -1.5f, float.MaxValue);
        RoundTrip<double>(seg, Math.PI, double.NegativeInfinity);
        RoundTrip<bool>(seg, true, false);
        RoundTrip<char>(seg, 'x', '\uffff');
        RoundTrip(seg, new Point3(1, -2, 3), new Point3(int.MaxValue, 0, int.MinValue));
        RoundTrip(seg, Guid.NewGuid(), Guid.NewGuid());
    }

    [Fact]
    public void StringsAndBytesRoundTripAtEverySize()
    {
        using var seg = TestPaths.Open("box");
        using var s = seg.OpenBox<string>("s");
        using var b = seg.OpenBox<byte[]>("b");
        Assert.Equal(ElementType.Str, s.Type);
        Assert.Equal("", s.Value);
        Assert.Empty(b.Value);
        foreach (int n in new[] { 0, 1, 255, 256, 257, 5000, 100_000 })
        {
            string text = new string('é', n / 2) + new string('z', n % 2) + "\U0001F600";
            s.Value = text;
            Assert.Equal(text, s.Value);
            byte[] data = new byte[n];
            new Random(n).NextBytes(data);
            b.Value = data;
            Assert.Equal(data, b.Value);
        }
    }

    [Fact]
    public void BlobOfDeclaredSize()
    {
        using var seg = TestPaths.Open("box");
        using var box = seg.OpenBox<byte[]>("blob", ElementType.Blob(16));
        Assert.Equal(16, box.Type.BlobSize);
        Assert.Equal(new byte[16], box.Value);
        byte[] v = new byte[16];
        v[0] = 1; v[15] = 0xff;
        box.Value = v;
        Assert.Equal(v, box.Value);
        Assert.Throws<InvalidArgumentException>(() => box.Value = new byte[15]);
        Assert.Equal(v, box.Value);
    }

    [Fact]
    public void CompareExchangeAndAdd()
    {
        using var seg = TestPaths.Open("box");
        using var box = seg.OpenBox<long>("n");
        Assert.Equal(0, box.CompareExchange(10, 0));   // swapped
        Assert.Equal(10, box.CompareExchange(20, 0));  // not swapped: found 10
        Assert.Equal(10, box.Value);
        Assert.Equal(15, box.Add(5));
        Assert.Equal(15, box.FetchAdd(-15));
        Assert.Equal(0, box.Value);
        Assert.Equal(1, box.Increment());
        Assert.Equal(0, box.Decrement());

        using var b8 = seg.OpenBox<byte>("u8");
        b8.Value = 250;
        Assert.Equal((byte)4, b8.Add(10)); // wraps at the type's width
        using var u64 = seg.OpenBox<ulong>("u64");
        u64.Value = ulong.MaxValue;
        Assert.Equal(ulong.MaxValue, u64.CompareExchange(1, ulong.MaxValue));
        Assert.Equal(1ul, u64.Value);
        Assert.Equal(0ul, u64.Add(ulong.MaxValue));
        using var i16 = seg.OpenBox<short>("i16");
        Assert.Equal((short)-1, i16.Decrement());
    }

    [Fact]
    public void AddOnANonIntegerBoxIsRefused()
    {
        using var seg = TestPaths.Open("box");
        using var box = seg.OpenBox<double>("d");
        var e = Assert.Throws<UnsupportedOperationException>(() => box.Add(1.0));
        Assert.Equal(ErrorCode.NotSupported, e.Code);
        Assert.Throws<UnsupportedOperationException>(() => box.CompareExchange(1.0, 0.0));
    }

    [Fact]
    public void ConcurrentIncrementsFromThreadsAreExact()
    {
        using var seg = TestPaths.Open("box");
        using var box = seg.OpenBox<int>("c");
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 5000; i++) box.Increment();
        });
        Assert.Equal(20000, box.Value);
    }

    [Fact]
    public void StrContainer()
    {
        using var seg = TestPaths.Open("str");
        using var s = seg.OpenStr("greeting");
        Assert.Equal("", s.Value);
        s.Value = "héllo";
        Assert.Equal(6, s.ByteLength);
        s.Append(", wörld");
        Assert.Equal("héllo, wörld", s.Value);
        Assert.Equal("héllo, wörld", s.ToString());
        s.Clear();
        Assert.Equal(0, s.ByteLength);
        Assert.Throws<InvalidUtf8Exception>(() => s.Value = "bad \ud800 surrogate");
        Assert.Equal("", s.Value);
    }
}
