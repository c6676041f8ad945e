using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Commy.Tests;

/// <summary>The code examples of docs/csharp.md, compiled and run. Each
/// example sits between "// doc:NAME" and "// end" and must match the block
/// under "&lt;!-- doc:NAME --&gt;" in the document exactly (see
/// DocsMatchTheseExamples); the asserts after it check what it did.</summary>
public class DocExamples
{
    private static readonly string RepoRoot = FindRepo();

    private static string FindRepo()
    {
        string? d = AppContext.BaseDirectory;
        while (d != null && !File.Exists(Path.Combine(d, "abi", "commy.h"))) d = Path.GetDirectoryName(d);
        return d ?? throw new InvalidOperationException("cannot find the commy tree above " + AppContext.BaseDirectory);
    }

    private static Dictionary<string, string> Regions(string file)
    {
        var result = new Dictionary<string, string>();
        var lines = File.ReadAllLines(file);
        for (int i = 0; i < lines.Length; i++)
        {
            var m = Regex.Match(lines[i], @"^\s*// doc:([\w-]+)\s*$");
            if (!m.Success) continue;
            var body = new List<string>();
            int j = i + 1;
            while (!Regex.IsMatch(lines[j], @"^\s*// end\s*$")) body.Add(lines[j++]);
            result[m.Groups[1].Value] = Dedent(body);
        }
        return result;
    }

    private static string Dedent(List<string> lines)
    {
        int indent = lines.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        return string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..] : l.TrimStart())).Trim();
    }

    [Fact]
    public void DocsMatchTheseExamples()
    {
        string md = File.ReadAllText(Path.Combine(RepoRoot, "docs", "csharp.md"));
        var code = Regions(Path.Combine(RepoRoot, "csharp", "tests", "Commy.Tests", "DocExamples.cs"));
        foreach (var kv in Regions(Path.Combine(RepoRoot, "csharp", "sample", "Program.cs"))) code[kv.Key] = kv.Value;
        var blocks = Regex.Matches(md, @"<!-- doc:([\w-]+) -->\s*```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(blocks.Count >= 10, $"docs/csharp.md has {blocks.Count} checked examples");
        int csharpBlocks = Regex.Matches(md, "```csharp").Count;
        Assert.Equal(csharpBlocks, blocks.Count); // every C# block is a checked one
        foreach (Match b in blocks)
        {
            string name = b.Groups[1].Value;
            Assert.True(code.ContainsKey(name), $"docs example '{name}' has no compiled twin");
            Assert.Equal(code[name], b.Groups[2].Value.Replace("\r", "").Trim());
        }
    }

    [Fact]
    public void Box()
    {
        string path = TestPaths.New("doc");
        // doc:box
        using var seg = Segment.Open(path);
        using var hits = seg.OpenBox<long>("hits");
        hits.Value = 10;
        long now = hits.Add(5);                          // 15, atomically
        long seen = hits.CompareExchange(100, 15);       // 15: the swap happened
        using var price = seg.OpenBox<double>("price");
        price.Value = 9.99;
        using var id = seg.OpenBox<Guid>("id");          // any unmanaged struct is a blob
        id.Value = Guid.NewGuid();
        // end
        Assert.Equal(15, now);
        Assert.Equal(15, seen);
        Assert.Equal(100, hits.Value);
        Assert.Equal(9.99, price.Value);
        Assert.NotEqual(Guid.Empty, id.Value);
    }

    [Fact]
    public void Vec()
    {
        string path = TestPaths.New("doc");
        // doc:vec
        using var seg = Segment.Open(path);
        using var samples = seg.OpenVec<double>("samples");
        samples.Add(1.5);
        samples.Add(2.5);
        samples.Insert(0, 0.5);
        Span<double> live = samples.AsSpan();            // the segment's memory, no copy
        live[2] = 3.5;
        double total = 0;
        foreach (double x in samples.AsReadOnlySpan()) total += x;
        using var names = seg.OpenVec<string>("names");  // IList<string>
        names.Add("ada");
        names.Add("grace");
        // end
        Assert.Equal(5.5, total);
        Assert.Equal(new[] { 0.5, 1.5, 3.5 }, samples.ToArray());
        Assert.Equal(new[] { "ada", "grace" }, names.ToList());
    }

    [Fact]
    public void Str()
    {
        string path = TestPaths.New("doc");
        // doc:str
        using var seg = Segment.Open(path);
        using var status = seg.OpenStr("status");
        status.Value = "starting";
        status.Append(" (warm)");
        string text = status.Value;                      // "starting (warm)"
        // end
        Assert.Equal("starting (warm)", text);
    }

    [Fact]
    public void Deque()
    {
        string path = TestPaths.New("doc");
        // doc:deque
        using var seg = Segment.Open(path);
        using var jobs = seg.OpenDeque<string>("jobs");
        jobs.PushBack("resize");
        jobs.PushBack("upload");
        jobs.PushFront("urgent");
        string first = jobs.PopFront();                  // "urgent"
        // A consumer sleeps until a producer (any process) pushes:
        if (jobs.TryPopFront(out string? next, TimeSpan.FromSeconds(1)))
            Console.WriteLine($"got {next}");
        // end
        Assert.Equal("urgent", first);
        Assert.Equal("resize", next);
        Assert.Equal("upload", jobs.PeekFront());
    }

    [Fact]
    public void Map()
    {
        string path = TestPaths.New("doc");
        // doc:map
        using var seg = Segment.Open(path);
        using var stock = seg.OpenMap<string, int>("stock");   // IDictionary<string,int>
        stock["apple"] = 3;
        stock["pear"] = 0;
        stock.Remove("pear");
        bool known = stock.TryGetValue("apple", out int apples);
        using var byId = seg.OpenMap<long, long>("by-id");     // the fast path: fixed-size keys and values
        byId[42] = 7;
        // end
        Assert.True(known);
        Assert.Equal(3, apples);
        Assert.Equal(1, stock.Count);
        Assert.Equal(7, byId[42]);
    }

    [Fact]
    public void Set()
    {
        string path = TestPaths.New("doc");
        // doc:set
        using var seg = Segment.Open(path);
        using var online = seg.OpenSet<string>("online");      // ISet<string>
        online.Add("ada");
        online.UnionWith(new[] { "grace", "linus" });
        online.ExceptWith(new[] { "linus" });
        bool both = online.SetEquals(new[] { "ada", "grace" });
        // end
        Assert.True(both);
    }

    [Fact]
    public void OrderedMap()
    {
        string path = TestPaths.New("doc");
        // doc:ordered-map
        using var seg = Segment.Open(path);
        using var prices = seg.OpenOrderedMap<long, double>("prices-by-time");
        for (long t = 0; t < 10; t++) prices[t * 100] = t;
        var window = prices.Range(200, 500).ToList();          // keys 200, 300, 400, 500
        var open = prices.Range(200, 500, fromInclusive: false, toInclusive: false);
        prices.TryGetLowerBound(250, out var atOrAfter);        // key 300
        var newest = prices.Last();                            // key 900
        // end
        Assert.Equal(new long[] { 200, 300, 400, 500 }, window.Select(kv => kv.Key));
        Assert.Equal(new long[] { 300, 400 }, open.Select(kv => kv.Key));
        Assert.Equal(300, atOrAfter.Key);
        Assert.Equal(900, newest.Key);
    }

    [Fact]
    public void OrderedSet()
    {
        string path = TestPaths.New("doc");
        // doc:ordered-set
        using var seg = Segment.Open(path);
        using var words = seg.OpenOrderedSet<string>("words");
        foreach (var w in new[] { "pear", "apple", "fig", "banana" }) words.Add(w);
        string min = words.Min;                                // "apple"
        var fromB = words.RangeFrom("b").ToList();             // banana, fig, pear
        // end
        Assert.Equal("apple", min);
        Assert.Equal(new[] { "banana", "fig", "pear" }, fromB);
    }

    [Fact]
    public void Errors()
    {
        string path = TestPaths.New("doc");
        string? message = null;
        // doc:errors
        using var seg = Segment.Open(path);
        using (seg.OpenMap<long, long>("totals")) { }
        try
        {
            seg.OpenMap<string, string>("totals");             // exists with other types
        }
        catch (TypeMismatchException e)
        {
            message = $"{e.Code}: {e.Message}";                 // -6: ... the library's sentence
        }
        try
        {
            seg.OpenBox<int>("missing", mode: OpenMode.OpenExisting);
        }
        catch (CommyException e) when (e is NotFoundException)
        {
            // every commy error derives from CommyException
        }
        // end
        Assert.StartsWith("-6: ", message);
    }

    [Fact]
    public async Task Waiting()
    {
        string path = TestPaths.New("doc");
        using var other = Segment.Open(path);
        using var writerBox = other.OpenBox<int>("config-version");
        using var stop = new CancellationTokenSource();
        // Another writer keeps changing the box until the example is done.
        var writer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(50);
                writerBox.Value += 1;
            }
        });
        // doc:wait
        using var seg = Segment.Open(path);
        using var config = seg.OpenBox<int>("config-version");
        uint seen = config.Version;
        bool changed = config.WaitChange(seen, TimeSpan.FromSeconds(5));   // futex sleep, no polling
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Task<bool> later = config.WaitChangeAsync(config.Version, cts.Token);
        // end
        Assert.True(changed);
        Assert.True(await later);
        Assert.True(config.Value >= 2);
        stop.Cancel();
        await writer;
    }

    [Fact]
    public void Batch()
    {
        string path = TestPaths.New("doc");
        // doc:lock
        using var seg = Segment.Open(path);
        using var from = seg.OpenBox<long>("account-a");
        using var to = seg.OpenBox<long>("account-b");
        from.Value = 100;
        using (seg.Lock())                                     // one atomic change for every process
        {
            from.Value -= 30;
            to.Value += 30;
        }
        // end
        Assert.Equal(70, from.Value);
        Assert.Equal(30, to.Value);
    }

    [Fact]
    public void Closing()
    {
        string path = TestPaths.New("doc");
        bool threw = false;
        // doc:closing
        var seg = Segment.Open(path);
        var box = seg.OpenBox<int>("b");
        seg.Dispose();                                         // containers stay safe to touch
        try { _ = box.Value; }
        catch (ClosedException) { threw = true; }
        box.Dispose();
        // end
        Assert.True(threw);
    }
}

/// <summary>The session examples of docs/csharp.md, against a real commy-server
/// (url, caFile and apiKey stand for the reader's own).</summary>
[Collection("server")]
public class SessionDocExamples
{
    private readonly CommyServer _server;

    public SessionDocExamples(CommyServer server) { _server = server; }

    [Fact]
    public void SessionExample()
    {
        string url = _server.Url, caFile = _server.CaFile, apiKey = CommyServer.Key;
        bool seen;
        long workers;
        // doc:session
        using var session = Session.Connect(url, new SessionOptions { CaFile = caFile });
        session.Authenticate("acme", apiKey);
        using Service service = session.OpenService("docs", ServiceMode.Remote);
        using var hits = service.OpenBox<long>("hits");        // the same Box<long> as on a Segment
        hits.Value = 0;
        using var got = new ManualResetEventSlim();
        using (service.Subscribe("hits", change => { if (change.Value is 2L) got.Set(); }))
        {
            hits.Add(2);
            seen = got.Wait(TimeSpan.FromSeconds(10));
        }
        using Service local = session.OpenService("docs");     // Auto: mapped, on the server's machine
        workers = local.OpenMap<string, long>("config").GetValueOrDefault("workers", 4);
        // end
        Assert.True(seen);
        Assert.Equal(4, workers);
        Assert.Equal(ServiceMode.Local, local.Mode);
        Assert.Equal(2, local.OpenBox<long>("hits").Value);
    }

    [Fact]
    public void SessionErrors()
    {
        string url = _server.Url, caFile = _server.CaFile, apiKey = CommyServer.Key;
        int code = 0;
        // doc:session-errors
        using var session = Session.Connect(url, new SessionOptions { CaFile = caFile });
        try
        {
            session.Authenticate("acme", "app.wrong-secret");
        }
        catch (AuthException e)
        {
            code = e.Code;                                     // ErrorCode.Auth
        }
        session.Authenticate("acme", apiKey);
        session.Refresh();
        session.Logout();
        // end
        Assert.Equal(ErrorCode.Auth, code);
        Assert.ThrowsAny<CommyException>(() => { using var _ = session.OpenService("docs"); });
    }
}
