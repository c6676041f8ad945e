using System;
using System.Diagnostics;
using System.Linq;
using System.Runtime.InteropServices;
using Xunit;
using Xunit.Abstractions;

namespace Commy.Tests;

public class PerformanceTests
{
    private readonly ITestOutputHelper _out;
    public PerformanceTests(ITestOutputHelper output) { _out = output; }

    /// <summary>Bytes allocated by this thread in each of several rounds of
    /// body. The runtime may allocate once while it tiers code up, so the
    /// test looks at the quietest round: a per-call allocation would show in
    /// every round (10,000 calls x at least 24 bytes).</summary>
    private static long[] Rounds(Action body)
    {
        var result = new long[6];
        for (int r = 0; r < result.Length; r++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            body();
            result[r] = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        return result;
    }

    [Fact]
    public void FixedSizeOperationsAllocateNothing()
    {
        using var seg = TestPaths.Open("perf");
        using var map = seg.OpenMap<long, long>("m");
        using var omap = seg.OpenOrderedMap<int, double>("om");
        using var box = seg.OpenBox<int>("b");
        using var vec = seg.OpenVec<double>("v");
        using var dq = seg.OpenDeque<long>("d");
        using var set = seg.OpenSet<long>("s");
        vec.Add(1);
        long sum = 0;
        long[] rounds = Rounds(() =>
        {
            for (long i = 0; i < 10_000; i++)
            {
                map[i % 1000] = i;
                sum += map[i % 1000];
                map.TryGetValue(i % 1000, out long v);
                sum += v;
                if (!map.ContainsKey(i % 1000)) sum++;
                omap[(int)(i % 100)] = i;
                sum += (long)omap[(int)(i % 100)];
                box.Increment();
                box.Value = box.Value + 1;
                vec[0] = vec[0] + 1;
                dq.PushBack(i);
                sum += dq.PopFront();
                set.Add(i % 10);
            }
        });
        Assert.NotEqual(0, sum);
        Assert.True(rounds.Min() == 0, "allocated per round: " + string.Join(", ", rounds));
        Assert.True(rounds.Skip(1).All(b => b < 1000), "allocated per round: " + string.Join(", ", rounds));
    }

}
