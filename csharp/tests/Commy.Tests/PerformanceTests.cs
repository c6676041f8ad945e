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

    [Fact]
    public void MapLongLongIsFast()
    {
        using var seg = TestPaths.Open("perf");
        using var map = seg.OpenMap<long, long>("m");
        const int n = 200_000;
        for (long i = 0; i < 20_000; i++) map[i] = i;
        for (long i = 0; i < n; i++) map[i & 16383] = map[i & 16383] + 1; // tier up
        // This thread's CPU time, not wall time: the test machine's cores are
        // shared, and wall time would count the time spent waiting to run.
        long c0 = ThreadClock.Nanoseconds();
        for (long i = 0; i < n; i++) map[i & 16383] = i;
        double putNs = (ThreadClock.Nanoseconds() - c0) / (double)n;
        long sum = 0;
        c0 = ThreadClock.Nanoseconds();
        for (long i = 0; i < n; i++) sum += map[i & 16383];
        double getNs = (ThreadClock.Nanoseconds() - c0) / (double)n;
        _out.WriteLine($"Map<long,long>: put {putNs:F0} ns, get {getNs:F0} ns (thread CPU time)");
        Assert.NotEqual(0, sum);
        // The target is 300 ns (csharp/bench measures it in Release); twice
        // that here leaves room for a Debug build while still failing on an
        // accidental slow path (an allocation, a marshalled string, a lock).
        Assert.True(putNs < 600 && getNs < 600, $"put {putNs:F0} ns, get {getNs:F0} ns");
    }
}

internal static unsafe class ThreadClock
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec, Nsec; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGettime(int clock, Timespec* t);

    private const int ClockThreadCputimeId = 3;

    public static long Nanoseconds()
    {
        Timespec t;
        ClockGettime(ClockThreadCputimeId, &t);
        return t.Sec * 1_000_000_000 + t.Nsec;
    }
}
