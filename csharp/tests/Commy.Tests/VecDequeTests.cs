using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Commy.Tests;

public class VecTests
{
    [Fact]
    public void BehavesLikeAListUnderRandomOperations()
    {
        using var seg = TestPaths.Open("vec");
        using var vec = seg.OpenVec<int>("v");
        var model = new List<int>();
        var rnd = new Random(42);
        for (int step = 0; step < 3000; step++)
        {
            int op = rnd.Next(6);
            int x = rnd.Next();
            switch (op)
            {
                case 0: case 1: vec.Add(x); model.Add(x); break;
                case 2 when model.Count > 0:
                    int i = rnd.Next(model.Count);
                    vec[i] = x; model[i] = x; break;
                case 3:
                    int j = rnd.Next(model.Count + 1);
                    vec.Insert(j, x); model.Insert(j, x); break;
                case 4 when model.Count > 0:
                    int k = rnd.Next(model.Count);
                    vec.RemoveAt(k); model.RemoveAt(k); break;
                case 5 when model.Count > 0:
                    Assert.Equal(model[^1], vec.Pop()); model.RemoveAt(model.Count - 1); break;
            }
            Assert.Equal(model.Count, vec.Count);
        }
        Assert.Equal(model, vec.ToList());
        Assert.Equal(model.ToArray(), vec.ToArray());
        Assert.Equal(model.IndexOf(model[7]), vec.IndexOf(model[7]));
        Assert.True(vec.Contains(model[3]));
        Assert.True(vec.Remove(model[3]));
        model.Remove(model[3]);
        Assert.Equal(model, vec.ToList());
        vec.Clear();
        Assert.Empty(vec);
        Assert.False(vec.TryPop(out _));
        Assert.Throws<EmptyException>(() => vec.Pop());
    }

    [Fact]
    public void IndexErrorsFollowIListAndCarryTheMessage()
    {
        using var seg = TestPaths.Open("vec");
        using var vec = seg.OpenVec<long>("v");
        vec.Add(1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => vec[1]);
        Assert.False(string.IsNullOrEmpty(e.Message));
        Assert.Throws<ArgumentOutOfRangeException>(() => vec[-1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => vec[5] = 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => vec.Insert(3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => vec.RemoveAt(1));
    }

    [Fact]
    public void SpanIsTheStorageItself()
    {
        using var seg = TestPaths.Open("vec");
        using var vec = seg.OpenVec<double>("v");
        for (int i = 0; i < 100; i++) vec.Add(i);
        Span<double> span = vec.AsSpan();
        Assert.Equal(100, span.Length);
        for (int i = 0; i < span.Length; i++) span[i] *= 2; // writes go to the segment
        Assert.Equal(198.0, vec[99]);
        vec[0] = -1;
        Assert.Equal(-1.0, vec.AsReadOnlySpan()[0]); // and reads see it without copying
        Assert.Equal(vec.AsSpan().ToArray().Sum(), vec.Sum());
        using var strings = seg.OpenVec<string>("s");
        Assert.Throws<UnsupportedOperationException>(() => strings.AsSpan());
    }

    [Fact]
    public void VariableAndBlobElements()
    {
        using var seg = TestPaths.Open("vec");
        using var s = seg.OpenVec<string>("s");
        var words = new[] { "", "a", new string('x', 1000), "ünïcödé" };
        foreach (var w in words) s.Add(w);
        Assert.Equal(words, s.ToArray());
        s[2] = "short";
        Assert.Equal("short", s[2]);
        using var blobs = seg.OpenVec<Point3>("p");
        blobs.Add(new Point3(1, 2, 3));
        Assert.Equal(new Point3(1, 2, 3), blobs.AsReadOnlySpan()[0]);
        using var bytes = seg.OpenVec<byte[]>("b", ElementType.Blob(4));
        bytes.Add(new byte[] { 1, 2, 3, 4 });
        Assert.True(bytes.Contains(new byte[] { 1, 2, 3, 4 }));
        Assert.Throws<InvalidArgumentException>(() => bytes.Add(new byte[3]));
    }

    [Fact]
    public void EnumerationNoticesAChange()
    {
        using var seg = TestPaths.Open("vec");
        using var vec = seg.OpenVec<int>("v");
        for (int i = 0; i < 10; i++) vec.Add(i);
        Assert.Throws<ConcurrentChangeException>(() =>
        {
            foreach (int x in vec)
                if (x == 3) vec.Add(99);
        });
    }

    [Fact]
    public void ReserveAndCapacity()
    {
        using var seg = TestPaths.Open("vec");
        using var vec = seg.OpenVec<byte>("v");
        vec.Reserve(1000);
        Assert.True(vec.Capacity >= 1000);
        Assert.Equal(0, vec.Count);
    }
}

public class DequeTests
{
    [Fact]
    public void BehavesLikeADequeUnderRandomOperations()
    {
        using var seg = TestPaths.Open("deque");
        using var dq = seg.OpenDeque<string>("d");
        var model = new LinkedList<string>();
        var rnd = new Random(7);
        for (int step = 0; step < 3000; step++)
        {
            string x = "v" + rnd.Next(1000);
            switch (rnd.Next(5))
            {
                case 0: dq.PushBack(x); model.AddLast(x); break;
                case 1: dq.PushFront(x); model.AddFirst(x); break;
                case 2:
                    if (model.Count == 0) Assert.False(dq.TryPopFront(out _));
                    else { Assert.Equal(model.First!.Value, dq.PopFront()); model.RemoveFirst(); }
                    break;
                case 3:
                    if (model.Count == 0) Assert.Throws<EmptyException>(() => dq.PopBack());
                    else { Assert.Equal(model.Last!.Value, dq.PopBack()); model.RemoveLast(); }
                    break;
                case 4 when model.Count > 0:
                    Assert.Equal(model.First!.Value, dq.PeekFront());
                    Assert.Equal(model.Last!.Value, dq.PeekBack());
                    break;
            }
            Assert.Equal(model.Count, dq.Count);
        }
        Assert.Equal(model, dq.ToList());
        if (model.Count > 2)
        {
            dq[1] = "changed";
            Assert.Equal("changed", dq[1]);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => dq[model.Count]);
        dq.Clear();
        Assert.Equal(0, dq.Count);
        Assert.False(dq.TryPeekBack(out _));
    }

    [Fact]
    public async Task PopFrontWaitsForAPush()
    {
        using var seg = TestPaths.Open("deque");
        using var dq = seg.OpenDeque<long>("d");
        Assert.False(dq.TryPopFront(out _, TimeSpan.FromMilliseconds(30)));
        var pusher = Task.Run(() =>
        {
            Thread.Sleep(100);
            dq.PushBack(77);
        });
        Assert.True(dq.TryPopFront(out long v, TimeSpan.FromSeconds(10)));
        Assert.Equal(77, v);
        await pusher;
        using var cts = new CancellationTokenSource(100);
        Assert.Throws<OperationCanceledException>(() => dq.TryPopFront(out _, Timeout.InfiniteTimeSpan, cts.Token));
    }
}
