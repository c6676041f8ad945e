using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Commy.Tests;

public class ErrorTests
{
    [Fact]
    public void OpeningWithAnotherTypeIsATypeMismatch()
    {
        using var seg = TestPaths.Open("err");
        using (seg.OpenMap<long, long>("m")) { }
        var e = Assert.Throws<TypeMismatchException>(() => seg.OpenMap<long, string>("m"));
        Assert.Equal(ErrorCode.Type, e.Code);
        Assert.Contains("m", e.Message);
        // the message names both: the stored types and the asked ones
        Assert.Contains("is a map of i64 to i64", e.Message);
        Assert.Contains("opened as a map of i64 to str", e.Message);
        Assert.Throws<TypeMismatchException>(() => seg.OpenVec<long>("m")); // another kind
        Assert.Throws<ArgumentException>(() => seg.OpenBox<long>("x", ElementType.I32)); // caught before C
    }

    [Fact]
    public void OpenModes()
    {
        using var seg = TestPaths.Open("err");
        var nf = Assert.Throws<NotFoundException>(() => seg.OpenSet<int>("absent", mode: OpenMode.OpenExisting));
        Assert.Equal(ErrorCode.NotFound, nf.Code);
        using (seg.OpenSet<int>("s", mode: OpenMode.CreateNew)) { }
        Assert.Throws<AlreadyExistsException>(() => seg.OpenSet<int>("s", mode: OpenMode.CreateNew));
        var bad = Assert.Throws<InvalidArgumentException>(() => seg.OpenBox<int>("no spaces allowed"));
        Assert.Equal(ErrorCode.InvalidArgument, bad.Code);
        Assert.False(string.IsNullOrWhiteSpace(bad.Message));
    }

    [Fact]
    public void SegmentFileErrors()
    {
        string missing = TestPaths.New("missing");
        Assert.Throws<NotFoundException>(() => Segment.Open(missing, new SegmentOptions { Create = false }));
        string junk = TestPaths.New("junk");
        File.WriteAllBytes(junk, Enumerable.Repeat((byte)0x5a, 1 << 16).ToArray());
        var c = Assert.Throws<CorruptException>(() => Segment.Open(junk));
        Assert.Equal(ErrorCode.Corrupt, c.Code);
        string p = TestPaths.New("excl");
        using (Segment.Open(p, TestPaths.Small)) { }
        Assert.Throws<AlreadyExistsException>(() => Segment.Open(p, new SegmentOptions { CreateNew = true }));
    }

    [Fact]
    public void ReadOnlySegmentRefusesWrites()
    {
        string p = TestPaths.New("ro");
        using (var w = Segment.Open(p, TestPaths.Small))
        using (var b = w.OpenBox<int>("b"))
        using (var v = w.OpenVec<int>("v"))
        {
            b.Value = 5;
            v.Add(1);
        }
        using var seg = Segment.OpenReadOnly(p);
        Assert.True(seg.IsReadOnly);
        using var box = seg.OpenBox<int>("b");
        Assert.Equal(5, box.Value);
        var e = Assert.Throws<PermissionException>(() => box.Value = 6);
        Assert.Equal(ErrorCode.Permission, e.Code);
        using var vec = seg.OpenVec<int>("v");
        Assert.Equal(1, vec.AsReadOnlySpan()[0]);
        Assert.Throws<PermissionException>(() => vec.AsSpan());
        Assert.Throws<PermissionException>(() => vec.Add(2));
    }

    [Fact]
    public void AFullSegmentLeavesTheContainerUnchanged()
    {
        using var seg = Segment.Open(TestPaths.New("full"), new SegmentOptions { InitialSize = 1 << 20, MaxSize = 1 << 20 });
        using var vec = seg.OpenVec<byte[]>("v");
        var chunk = new byte[64 << 10];
        int added = 0;
        var e = Assert.Throws<NoSpaceException>(() =>
        {
            for (int i = 0; i < 100; i++) { vec.Add(chunk); added++; }
        });
        Assert.Equal(ErrorCode.NoSpace, e.Code);
        Assert.Equal(added, vec.Count);
        seg.Check();
    }

    [Fact]
    public void VersionCheck()
    {
        Assert.Equal(Library.BindingVersion, Library.NativeVersion);
        Assert.Equal("1.0.0", Library.NativeVersionString);
        Library.CheckVersion(Library.BindingVersion, Library.BindingVersion);
        var e = Assert.Throws<VersionMismatchException>(() => Library.CheckVersion(2000001, 1000000));
        Assert.Contains("2.0.1", e.Message);
        Assert.Contains("1.0.0", e.Message);
        Assert.Equal(2000001, e.NativeVersion);
    }

    [Fact]
    public void EveryCodeHasItsFamily()
    {
        for (int code = -1; code >= ErrorCode.Retired; code--)
        {
            var e = CommyException.Create(code, "m");
            Assert.Equal(code, e.Code);
            Assert.NotEqual(typeof(CommyException), e.GetType());
        }
        Assert.IsType<CommyException>(CommyException.Create(-999, "m"));
    }
}

public class LifecycleTests
{
    [Fact]
    public void DisposingTheSegmentFirstMakesContainersThrowClosed()
    {
        var seg = TestPaths.Open("life");
        var box = seg.OpenBox<long>("b");
        var map = seg.OpenOrderedMap<string, int>("m");
        var vec = seg.OpenVec<int>("v");
        box.Value = 1;
        map["a"] = 1;
        seg.Dispose();
        seg.Dispose(); // idempotent
        Assert.True(seg.IsClosed);
        var e = Assert.Throws<ClosedException>(() => box.Value);
        Assert.Equal(ErrorCode.Closed, e.Code);
        Assert.Throws<ClosedException>(() => map["a"] = 2);
        Assert.Throws<ClosedException>(() => map.ToList());
        Assert.Throws<ClosedException>(() => vec.AsSpan());
        Assert.Throws<ClosedException>(() => seg.OpenBox<int>("x"));
        Assert.Throws<ClosedException>(() => seg.Lock());
        box.Dispose();
        map.Dispose();
        vec.Dispose();
    }

    [Fact]
    public void DisposingAContainerMakesItThrowClosed()
    {
        using var seg = TestPaths.Open("life");
        var box = seg.OpenBox<int>("b");
        box.Dispose();
        box.Dispose();
        Assert.Throws<ClosedException>(() => box.Value);
        Assert.Throws<ClosedException>(() => box.Version);
        using var again = seg.OpenBox<int>("b");
        again.Value = 3;
        Assert.Equal(3, again.Value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference Abandon(bool closeSegmentFirst)
    {
        var seg = TestPaths.Open("life");
        var objs = new object[]
        {
            seg.OpenBox<int>("b"), seg.OpenVec<string>("v"), seg.OpenStr("s"), seg.OpenDeque<int>("d"),
            seg.OpenMap<int, int>("m"), seg.OpenSet<int>("s2"), seg.OpenOrderedMap<int, int>("om"), seg.OpenOrderedSet<int>("os"),
        };
        if (closeSegmentFirst) seg.Dispose();
        GC.KeepAlive(objs);
        return new WeakReference(seg);
    }

    [Fact]
    public void FinalisersRunInAnyOrderWithoutCrashing()
    {
        var a = Abandon(true);
        var b = Abandon(false);
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(a.IsAlive);
        Assert.False(b.IsAlive);
    }

    [Fact]
    public void RemovedContainerReportsNotFound()
    {
        using var seg = TestPaths.Open("life");
        using var box = seg.OpenBox<int>("gone");
        Assert.NotNull(seg.Find("gone"));
        Assert.True(seg.Remove("gone"));
        Assert.False(seg.Remove("gone"));
        Assert.Null(seg.Find("gone"));
        Assert.Throws<NotFoundException>(() => box.Value);
    }

    [Fact]
    public void RootsStatsAndCheck()
    {
        using var seg = TestPaths.Open("life");
        using (var m = seg.OpenMap<long, string>("m")) m[1] = "x";
        using (seg.OpenVec<byte[]>("v", ElementType.Blob(8))) { }
        var roots = seg.Roots();
        Assert.Equal(new[] { "m", "v" }, roots.Select(r => r.Name));
        Assert.Equal(ContainerKind.Map, roots[0].Kind);
        Assert.Equal(ElementType.I64, roots[0].KeyType);
        Assert.Equal(ElementType.Str, roots[0].ValueType);
        Assert.Equal(1ul, roots[0].Length);
        Assert.Equal("blob[8]", roots[1].KeyType.ToString());
        var st = seg.Stats();
        Assert.True(st.Used > 0 && st.FileSize >= st.HeapSize);
        Assert.Equal(1u, st.AttachedProcesses);
        var info = seg.Info();
        Assert.Equal(1, info.LayoutMajor);
        Assert.Equal(Library.BindingVersion, info.CreatorVersion);
        Assert.Equal(64ul << 20, info.MaxSize);
        Assert.False(info.ReadOnly);
        Assert.True(Math.Abs((DateTime.UtcNow - info.CreatedUtc).TotalMinutes) < 10, info.CreatedUtc.ToString("O"));
        seg.Check();
    }

    [Fact]
    public async Task LockMakesABatchAtomic()
    {
        using var seg = TestPaths.Open("life");
        using var map = seg.OpenMap<int, int>("m");
        using var seen = seg.OpenBox<int>("seen");
        var reader = Task.Run(() =>
        {
            // Outside the batch, a reader never sees one key without the other.
            for (int i = 0; i < 2000; i++)
            {
                using (seg.Lock())
                {
                    bool a = map.ContainsKey(1), b = map.ContainsKey(2);
                    if (a != b) seen.Increment();
                }
            }
        });
        for (int i = 0; i < 2000; i++)
        {
            using (seg.Lock())
            {
                map[1] = i;
                map[2] = i;
            }
            using (seg.Lock())
            {
                map.Remove(1);
                map.Remove(2);
            }
        }
        await reader;
        Assert.Equal(0, seen.Value);
    }
}

public class WaitTests
{
    [Fact]
    public async Task WaitChangeWakesOnAWrite()
    {
        using var seg = TestPaths.Open("wait");
        using var map = seg.OpenMap<int, int>("m");
        uint v0 = map.Version;
        Assert.False(map.WaitChange(v0, TimeSpan.FromMilliseconds(20)));
        var sw = Stopwatch.StartNew();
        var writer = Task.Run(() =>
        {
            Thread.Sleep(100);
            map[1] = 1;
        });
        Assert.True(map.WaitChange(v0, TimeSpan.FromSeconds(10)));
        Assert.NotEqual(v0, map.Version);
        Assert.True(sw.ElapsedMilliseconds < 5000);
        await writer;
        // Already changed: returns at once.
        Assert.True(map.WaitChange(v0, TimeSpan.Zero));
    }

    [Fact]
    public void WaitChangeHonoursCancellation()
    {
        using var seg = TestPaths.Open("wait");
        using var box = seg.OpenBox<int>("b");
        using var cts = new CancellationTokenSource(100);
        var sw = Stopwatch.StartNew();
        Assert.Throws<OperationCanceledException>(() => box.WaitChange(box.Version, cts.Token));
        Assert.True(sw.ElapsedMilliseconds < 5000);
        using var cts2 = new CancellationTokenSource();
        Assert.False(box.WaitChange(box.Version, TimeSpan.FromMilliseconds(60), cts2.Token));
    }

    [Fact]
    public async Task WaitChangeAsyncCompletesOnAWrite()
    {
        using var seg = TestPaths.Open("wait");
        using var dq = seg.OpenDeque<int>("d");
        uint v0 = dq.Version;
        Task<bool> waiting = dq.WaitChangeAsync(v0, TimeSpan.FromSeconds(10));
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        dq.PushBack(1);
        Assert.True(await waiting);
        using var cts = new CancellationTokenSource(50);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dq.WaitChangeAsync(dq.Version, cts.Token));
    }
}

public class MultiProcessTests
{
    private static Process StartHelper(string path, int id, int count, bool batch)
    {
        string helper = Path.Combine(AppContext.BaseDirectory, "Commy.TestHelper.dll");
        Assert.True(File.Exists(helper), helper);
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(helper);
        psi.ArgumentList.Add(path);
        psi.ArgumentList.Add(id.ToString());
        psi.ArgumentList.Add(count.ToString());
        if (batch) psi.ArgumentList.Add("batch");
        return Process.Start(psi)!;
    }

    [Fact]
    public void KilledWritersLeaveConsistentState()
    {
        string path = TestPaths.New("kill");
        using (var s = Segment.Open(path, TestPaths.Small)) { }
        var procs = Enumerable.Range(1, 2).Select(id => StartHelper(path, id, -1, true)).ToList();
        foreach (var p in procs) Assert.Equal("ready", p.StandardOutput.ReadLine());
        Thread.Sleep(400);
        foreach (var p in procs)
        {
            p.Kill(); // SIGKILL: possibly inside a batch, holding the segment lock
            Assert.True(p.WaitForExit(20_000));
        }
        using var seg = Segment.Open(path);
        using var counter = seg.OpenBox<long>("counter");
        using var items = seg.OpenDeque<long>("items");
        // The next operation recovers a dead holder's half-done batch: the
        // deque's change is rolled back, and the heap is consistent. The
        // counter agrees with it exactly, except for the one case
        // docs/format.md ("Logical entries") leaves open: a worker killed
        // between the counter's compare-and-swap and the store that marks
        // it applied leaves that +1 (or the -1 of a trim) in place: the word
        // is shared with lock-free writers, so rollback cannot tell whether
        // it landed. That is at most one per killed worker.
        long n;
        using (seg.Lock()) n = items.LongCount;
        Assert.True(n > 0, "the workers made no progress");
        long extra = counter.Value - n;
        Assert.True(Math.Abs(extra) <= procs.Count, $"counter {counter.Value}, items {n}");
        seg.Check();
        items.PushBack(1);
        Assert.Equal(n + 1, items.LongCount);
    }

    [Fact]
    public void ChildProcessesCountExactly()
    {
        string path = TestPaths.New("mp");
        using var seg = Segment.Open(path, TestPaths.Small);
        using var counter = seg.OpenBox<long>("counter");
        using var items = seg.OpenDeque<long>("items");
        const int workers = 4, each = 2000;
        var procs = Enumerable.Range(1, workers).Select(id => StartHelper(path, id, each, false)).ToList();
        // The parent pushes too, at the same time.
        for (int i = 0; i < each; i++)
        {
            counter.Increment();
            items.PushBack(i);
        }
        foreach (var p in procs)
        {
            Assert.True(p.WaitForExit(50_000), "a worker did not finish in time");
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            Assert.True(p.ExitCode == 0, $"worker exit {p.ExitCode}: {err}");
        }
        Assert.Equal((workers + 1) * each, counter.Value);
        var all = items.ToList();
        Assert.Equal((workers + 1) * each, all.Count);
        Assert.Equal(all.Count, all.Distinct().Count()); // nothing counted twice
        for (int id = 0; id <= workers; id++)
        {
            // Each producer's items arrive complete and in its own order.
            var mine = all.Where(x => x / 1_000_000 == id).ToList();
            Assert.Equal(Enumerable.Range(0, each).Select(i => id * 1_000_000L + i), mine);
        }
        seg.Check();
    }
}
