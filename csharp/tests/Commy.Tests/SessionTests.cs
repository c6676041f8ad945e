using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using Xunit;

namespace Commy.Tests;

/// <summary>A real commy-server on loopback with TLS (a self-signed
/// certificate made here), tenant "acme" (services "app", "other") and
/// tenant "rival". Found as $COMMY_SERVER, else in $COMMY_BUILD or the
/// tree's build/ (scripts/test.sh builds it there first).</summary>
public sealed class CommyServer : IDisposable
{
    public const string Key = "app.s3cret-app";
    public const string Reader = "ro.s3cret-ro";
    public const string Victim = "victim.s3cret-victim";   // read, write: a local client for the revocation test
    public const string Rival = "eve.s3cret-eve";
    public const string JwtSecret = "k3y-for-hs256-that-is-long-enough-0123456789";
    public const string JwtAudience = "commy-test";

    /// <summary>A compact HS256 JWT for sub that tenant "jw" accepts, expiring expIn seconds from now.</summary>
    public static string JwtHs256(string sub, long expIn = 300, string secret = JwtSecret)
    {
        static string B64u(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        string claims = JsonSerializer.Serialize(new { sub, aud = JwtAudience, exp = DateTimeOffset.UtcNow.ToUnixTimeSeconds() + expIn, scope = "read write" });
        string si = B64u(System.Text.Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}")) + "." + B64u(System.Text.Encoding.UTF8.GetBytes(claims));
        using var h = new System.Security.Cryptography.HMACSHA256(System.Text.Encoding.UTF8.GetBytes(secret));
        return si + "." + B64u(h.ComputeHash(System.Text.Encoding.UTF8.GetBytes(si)));
    }

    private Process _proc = null!;
    private readonly string _dir;
    private readonly string _binary, _config;
    public string Url { get; }
    public string CaFile { get; }
    public int Port { get; }

    public CommyServer()
    {
        string binary = _binary = FindBinary();
        _dir = Path.Combine(Path.GetTempPath(), $"commy-cs-srv-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        Port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        Url = $"wss://127.0.0.1:{Port}";
        CaFile = Path.Combine(_dir, "cert.pem");
        string key = Path.Combine(_dir, "key.pem");
        Run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", CaFile, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1");
        object ApiKey(string full, string[] scopes)
        {
            string[] p = full.Split('.', 2);
            return new { id = p[0], hash = Run(binary, "--hash-key", p[1]).Trim(), scopes, client_id = p[0] };
        }
        var cfg = new
        {
            listen = new { address = "127.0.0.1", port = Port },
            tls = new { cert = CaFile, key },
            data_root = Path.Combine(_dir, "data"),
            tenants = new object[]
            {
                new
                {
                    name = "acme",
                    auth = new { mode = "server_managed", api_keys = new[] { ApiKey(Key, new[] { "read", "write", "admin" }), ApiKey(Reader, new[] { "read" }), ApiKey(Victim, new[] { "read", "write" }) } },
                    services = new object[] { new { name = "app" }, new { name = "other" }, new { name = "docs" }, new { name = "keep", persistent = true } },
                },
                new
                {
                    name = "rival",
                    auth = new { api_keys = new[] { ApiKey(Rival, new[] { "read", "write", "admin" }) } },
                    services = new[] { new { name = "secret" } },
                },
                new
                {
                    name = "jw",
                    auth = new { jwt = new { hs256_secret = JwtSecret, audience = JwtAudience } },
                    services = new[] { new { name = "app" } },
                },
            },
        };
        _config = Path.Combine(_dir, "config.json");
        File.WriteAllText(_config, JsonSerializer.Serialize(cfg));
        Start();
    }

    /// <summary>Starts the server process (again, after <see cref="Kill"/>: same port, data and tokens).</summary>
    public void Start()
    {
        var psi = new ProcessStartInfo(_binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(_config);
        _proc = Process.Start(psi)!;
        _proc.OutputDataReceived += (_, _) => { };
        _proc.ErrorDataReceived += (_, _) => { };
        _proc.BeginOutputReadLine();
        _proc.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                break;
            }
            catch (SocketException)
            {
                if (_proc.HasExited || DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"commy-server did not start (exit {(_proc.HasExited ? _proc.ExitCode : -1)})");
                Thread.Sleep(50);
            }
        }
    }

    private static string FindBinary()
    {
        string? env = Environment.GetEnvironmentVariable("COMMY_SERVER");
        if (!string.IsNullOrEmpty(env)) return env;
        string? d = AppContext.BaseDirectory;
        while (d != null && !File.Exists(Path.Combine(d, "abi", "commy.h"))) d = Path.GetDirectoryName(d);
        foreach (string? build in new[] { Environment.GetEnvironmentVariable("COMMY_BUILD"), d == null ? null : Path.Combine(d, "build") })
        {
            if (string.IsNullOrEmpty(build)) continue;
            string p = Path.Combine(build, "server", "commy-server");
            if (File.Exists(p)) return p;
        }
        throw new InvalidOperationException(
            "commy-server was not found: build it (cmake --build build --target commy-server) or set COMMY_SERVER");
    }

    private static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed with {p.ExitCode}");
        return output;
    }

    public Session Connect(string key = Key, string tenant = "acme")
    {
        var s = Session.Connect(Url, new SessionOptions { CaFile = CaFile, Timeout = TimeSpan.FromSeconds(10) });
        try
        {
            s.Authenticate(tenant, key);
        }
        catch
        {
            s.Dispose();
            throw;
        }
        return s;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    /// <summary>Stops (SIGSTOP) or continues (SIGCONT) the process: a server that goes silent without closing.</summary>
    public void Pause(bool paused)
    {
        const int SIGCONT = 18, SIGSTOP = 19; // Linux
        if (kill(_proc.Id, paused ? SIGSTOP : SIGCONT) != 0) throw new InvalidOperationException("kill failed");
    }

    /// <summary>Stops the process only; <see cref="Start"/> brings it back.</summary>
    public void Kill()
    {
        if (!_proc.HasExited)
        {
            _proc.Kill();
            _proc.WaitForExit(20000);
        }
        _proc.Dispose();
    }

    public void Dispose()
    {
        try
        {
            if (!_proc.HasExited)
            {
                _proc.Kill();
                _proc.WaitForExit(20000);
            }
        }
        catch (InvalidOperationException)
        {
            // already disposed by Kill
        }
        finally
        {
            _proc.Dispose();
            try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

[CollectionDefinition("server")]
public sealed class ServerCollection : ICollectionFixture<CommyServer> { }

/// <summary>Commy.Session against a real commy-server: remote operations on
/// every kind, a local-mode service, subscriptions, remote WaitChange,
/// tokens and the auth family of errors.</summary>
[Collection("server")]
public class SessionTests
{
    private readonly CommyServer _server;

    public SessionTests(CommyServer server) { _server = server; }

    /// <summary>Collects changes; Wait returns once until(changes) holds (or after 10 s).</summary>
    private sealed class Collector
    {
        public readonly List<Change> Items = new();
        public readonly HashSet<int> Threads = new();

        public void Add(Change c)
        {
            lock (Items)
            {
                Items.Add(c);
                Threads.Add(Environment.CurrentManagedThreadId);
                Monitor.PulseAll(Items);
            }
        }

        public List<Change> Wait(Func<List<Change>, bool> until)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            lock (Items)
            {
                while (!until(Items) && DateTime.UtcNow < deadline) Monitor.Wait(Items, 100);
                return Items.ToList();
            }
        }
    }

    [Fact]
    public void RemoteOperationsOnEveryKind()
    {
        using Session s = _server.Connect(), s2 = _server.Connect();
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        Assert.Equal(ServiceMode.Remote, svc.Mode);
        Assert.True(svc.Segment.IsRemote);
        using var box = svc.OpenBox<long>("hits");
        box.Value = 5;
        Assert.Equal(7, box.Add(2));
        Assert.Equal(7, box.CompareExchange(10, 7));
        Assert.Equal(10, box.Value);
        using var vec = svc.OpenVec<double>("v");
        vec.Clear();
        vec.Add(1.5);
        vec.AddRange(new[] { 2.5, 3.5 });
        vec[0] = 0.5;
        Assert.Equal(new[] { 0.5, 2.5, 3.5 }, vec.ToArray());
        Assert.Equal(1, vec.IndexOf(2.5));
        Assert.Throws<UnsupportedOperationException>(() => vec.AsReadOnlySpan().Length);
        using var str = svc.OpenStr("title");
        str.Value = "héllo";
        str.Append("!");
        Assert.Equal("héllo!", str.Value);
        using var dq = svc.OpenDeque<string>("q");
        dq.PushBack("b");
        dq.PushFront("a");
        Assert.Equal("a", dq.PopFront());
        Assert.Equal("b", dq.PopBack());
        Assert.False(dq.TryPopFront(out _));
        using var map = svc.OpenMap<string, long>("m");
        map["x"] = 1;
        map["y"] = 2;
        Assert.True(map.Remove("x"));
        Assert.False(map.ContainsKey("x"));
        Assert.True(map.TryAdd("z", 3));
        Assert.Equal(new Dictionary<string, long> { ["y"] = 2, ["z"] = 3 }, map.ToDictionary(kv => kv.Key, kv => kv.Value));
        using var set = svc.OpenSet<int>("s");
        Assert.True(set.Add(3));
        Assert.False(set.Add(3));
        set.Add(4);
        set.Remove(3);
        Assert.Equal(new[] { 4 }, set.ToArray());
        using var om = svc.OpenOrderedMap<long, string>("om");
        foreach (long k in new long[] { 5, 1, 3 }) om[k] = k.ToString();
        Assert.Equal(new long[] { 3, 5 }, om.Range(2, 5).Select(kv => kv.Key));
        Assert.Equal(new long[] { 5 }, om.RangeFrom(3, inclusive: false).Select(kv => kv.Key));
        using var os = svc.OpenOrderedSet<ushort>("os");
        foreach (ushort k in new ushort[] { 9, 2, 7 }) os.Add(k);
        Assert.Equal(new ushort[] { 2, 7, 9 }, os.ToArray());
        Assert.Equal((ushort)2, os.Min);
        Assert.Equal(new ushort[] { 7, 9 }, os.RangeFrom(3).ToArray());
        // Another client of the service sees it all; the types are checked remotely too.
        using Service other = s2.OpenService("app", ServiceMode.Remote);
        Assert.Equal(10, other.OpenBox<long>("hits").Value);
        Assert.Equal(new[] { 0.5, 2.5, 3.5 }, other.OpenVec<double>("v").ToArray());
        Assert.Equal("héllo!", other.OpenStr("title").Value);
        Assert.Throws<TypeMismatchException>(() => other.OpenMap<long, long>("m"));
    }

    [Fact]
    public void LocalModeMapsTheFile()
    {
        using Session s = _server.Connect(), s2 = _server.Connect();
        using Service local = s.OpenService("other", ServiceMode.Local);
        Assert.Equal(ServiceMode.Local, local.Mode);
        Assert.False(local.Segment.IsRemote);
        using var nums = local.OpenVec<long>("nums");
        nums.Clear();
        foreach (long i in Enumerable.Range(0, 5)) nums.Add(i);
        nums.AsSpan()[4] = 40;                              // mapped: the span is the file
        using Service remote = s2.OpenService("other", ServiceMode.Remote);
        Assert.Equal(new long[] { 0, 1, 2, 3, 40 }, remote.OpenVec<long>("nums").ToArray());
        using Service auto = s2.OpenService("other");       // Auto: local, as this client is on the server's machine
        Assert.Equal(ServiceMode.Local, auto.Mode);
    }

    [Fact]
    public void LocalWritesSurviveARotation()
    {
        // Revoking another local client rotates the service file under a local writer:
        // its writes keep succeeding and none is lost (docs/sessions.md).
        using Session w = _server.Connect(), admin = _server.Connect(), victim = _server.Connect(CommyServer.Victim);
        using Service svc = w.OpenService("docs", ServiceMode.Local);
        using var count = svc.OpenBox<long>("count");
        count.Value = 0;
        using Service victimSvc = victim.OpenService("docs", ServiceMode.Local);
        long adds = 0;
        Exception? failure = null;
        var done = new ManualResetEventSlim();
        var t = new Thread(() =>
        {
            try { while (!done.IsSet) { count.FetchAdd(1); adds++; } }
            catch (Exception e) { failure = e; }
        });
        t.Start();
        Thread.Sleep(200);
        Assert.Equal(1u, admin.RevokeClient("victim"));
        Thread.Sleep(200);
        done.Set();
        Assert.True(t.Join(10000));
        Assert.Null(failure);
        Assert.True(adds > 0);
        using Service remote = admin.OpenService("docs", ServiceMode.Remote);
        Assert.Equal(adds, remote.OpenBox<long>("count").Value);
        Assert.Equal(adds, count.Value);
    }

    [Fact]
    public void SubscriptionHandlerGetsEveryRemoteWriteInOrder()
    {
        using Session s = _server.Connect(), writer = _server.Connect();
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        using var counter = svc.OpenBox<long>("counter");
        counter.Value = 0;
        var got = new Collector();
        using (svc.Subscribe("counter", got.Add))
        {
            using Service ws = writer.OpenService("app", ServiceMode.Remote);
            using var w = ws.OpenBox<long>("counter");
            for (long i = 1; i <= 5; i++) w.Value = i;
            var changes = got.Wait(items => items.Count >= 5);
            Assert.Equal(new object[] { 1L, 2L, 3L, 4L, 5L }, changes.Select(c => c.Value!));
            Change last = changes[^1];
            Assert.Equal("counter", last.Variable);
            Assert.Same(svc, last.Service);
            Assert.True(last.Kind is null or ContainerKind.Box);
            Assert.DoesNotContain(Environment.CurrentManagedThreadId, got.Threads);
            // A local writer: noticed by the server; a burst may be coalesced, in order, ending with the last.
            using Service lw = writer.OpenService("app", ServiceMode.Local);
            using var lb = lw.OpenBox<long>("counter");
            for (long i = 6; i <= 10; i++) lb.Value = i;
            var all = got.Wait(items => items.Count > 0 && Equals(items[^1].Value, 10L));
            Assert.Equal(10L, all[^1].Value);
            var values = all.Select(c => (long)c.Value!).ToList();
            Assert.Equal(values.OrderBy(v => v), values);
        }
        Assert.Throws<NotFoundException>(() => svc.Unsubscribe("counter"));
    }

    [Fact]
    public void HandlersMayCallCommyAndFailuresAreReported()
    {
        using Session s = _server.Connect(), writer = _server.Connect();
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        using var echo = svc.OpenVec<long>("echo");
        echo.Clear();
        using Service ws = writer.OpenService("app", ServiceMode.Remote);
        using var src = ws.OpenBox<long>("src");
        var failures = new List<Exception>();
        s.HandlerFailed += (_, e) => { lock (failures) failures.Add(e); };
        var got = new Collector();
        svc.Subscribe("src", c =>
        {
            echo.Add((long)c.Value!);                       // a remote call from inside a handler
            got.Add(c);
            if ((long)c.Value! == 1) throw new InvalidOperationException("a failing handler");
        });
        for (long i = 1; i <= 3; i++) src.Value = i;
        got.Wait(items => items.Count >= 3);
        Assert.Equal(new long[] { 1, 2, 3 }, echo.ToArray());
        lock (failures) Assert.Single(failures);
    }

    [Fact]
    public void WaitChangeOnARemoteContainer()
    {
        using Session s = _server.Connect(), writer = _server.Connect();
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        using var m = svc.OpenMap<long, long>("watched");
        uint seen = m.Version;
        using Service ws = writer.OpenService("app", ServiceMode.Remote);
        using var w = ws.OpenMap<long, long>("watched");
        var t = new Thread(() => { Thread.Sleep(200); w[1] = 1; });
        t.Start();
        Assert.True(m.WaitChange(seen, TimeSpan.FromSeconds(10)));
        t.Join();
        Assert.Equal(1, m[1]);
    }

    [Fact]
    public void WrongCredentialsThrowTheAuthFamily()
    {
        using (var s = Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile }))
        {
            foreach (var (tenant, key) in new[] { ("acme", "app.wrong"), ("acme", "nobody.x"), ("nowhere", CommyServer.Key), ("rival", CommyServer.Key) })
            {
                var e = Assert.ThrowsAny<AuthException>(() => s.Authenticate(tenant, key));
                Assert.Equal(ErrorCode.Auth, e.Code);
            }
            Assert.Throws<AuthException>(() => s.OpenService("app"));   // not authenticated
        }
        using (Session admin = _server.Connect(), ro = _server.Connect(CommyServer.Reader))
        {
            using Service keep = admin.OpenService("app", ServiceMode.Remote);   // the service lives while a client has it open
            using var m = keep.OpenMap<string, long>("ro");
            m["a"] = 1;
            using Service rs = ro.OpenService("app", ServiceMode.Remote);
            using var rm = rs.OpenMap<string, long>("ro", mode: OpenMode.OpenExisting);
            Assert.Equal(1, rm["a"]);
            Assert.Throws<ForbiddenException>(() => rm["z"] = 1);
        }
        using (Session eve = _server.Connect(CommyServer.Rival, "rival"))
            Assert.Throws<NotFoundException>(() => eve.OpenService("app"));
        Assert.ThrowsAny<CommyException>(() =>
            Session.Connect(_server.Url, new SessionOptions { Timeout = TimeSpan.FromSeconds(5), Reconnect = false })); // no CA: TLS refuses
    }

    [Fact]
    public void AuthenticateJwt()
    {
        using var s = Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile });
        Assert.ThrowsAny<AuthException>(() => s.AuthenticateJwt("jw", CommyServer.JwtHs256("jim", secret: "another-secret-that-is-also-32-bytes-long")));
        Assert.Throws<ExpiredException>(() => s.AuthenticateJwt("jw", CommyServer.JwtHs256("jim", expIn: -1000)));
        s.AuthenticateJwt("jw", CommyServer.JwtHs256("jim"));
        Assert.Equal("jim", s.ClientId);
        Assert.False(string.IsNullOrEmpty(s.Token));
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        using var box = svc.OpenBox<long>("j");
        box.Value = 7;
        Assert.Equal(7, box.Value);
    }

    [Fact]
    public void TokensRefreshAndLogout()
    {
        using Session s = _server.Connect();
        string token = s.Token;
        Assert.False(string.IsNullOrEmpty(token));
        Assert.True(s.TokenExpires > DateTimeOffset.UtcNow);
        Assert.Equal("app", s.ClientId);
        Assert.True(s.IsConnected);
        using (var s2 = Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile }))
        {
            s2.AuthenticateToken("acme", token);
            using Service svc = s2.OpenService("app", ServiceMode.Remote);
        }
        s.Refresh();
        Assert.NotEqual(token, s.Token);
        using var s3 = Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile });
        Assert.ThrowsAny<AuthException>(() => s3.AuthenticateToken("acme", token));   // the old one is revoked
        string current = s.Token;
        s.Logout();
        Assert.ThrowsAny<AuthException>(() => s3.AuthenticateToken("acme", current));
    }

    [Fact]
    public void DisconnectedWhileTheServerIsDownThenBackAfterItRestarts()
    {
        using var own = new CommyServer();
        using var s = Session.Connect(own.Url, new SessionOptions
        {
            CaFile = own.CaFile, Timeout = TimeSpan.FromSeconds(5), ReconnectMax = TimeSpan.FromMilliseconds(200),
        });
        s.Authenticate("acme", CommyServer.Key);
        using Service svc = s.OpenService("keep", ServiceMode.Remote);   // persistent: its file outlives the process
        using var m = svc.OpenMap<long, long>("m");
        m[1] = 1;
        own.Kill();
        Assert.Throws<DisconnectedException>(() =>
        {
            for (int i = 0; i < 100; i++)   // the drop is noticed within a moment
            {
                m[2] = 2;
                Thread.Sleep(50);
            }
        });
        own.Start();
        for (int i = 0; i < 200 && !s.IsConnected; i++) Thread.Sleep(50);   // reconnects with its token
        Assert.True(s.IsConnected);
        m[3] = 3;
        Assert.Equal(1, m[1]);
        Assert.Equal(3, m[3]);
    }

    [Fact]
    public void SilentServerIsTakenForDeadAfterSilenceTimeout()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile, SilenceTimeout = TimeSpan.Zero }));
        Assert.Throws<InvalidArgumentException>(() =>
            Session.Connect(_server.Url, new SessionOptions { CaFile = _server.CaFile, SilenceTimeout = TimeSpan.FromSeconds(70000) }));
        using var own = new CommyServer();
        using var s = Session.Connect(own.Url, new SessionOptions
        {
            CaFile = own.CaFile, Timeout = TimeSpan.FromSeconds(5), Reconnect = false,
            SilenceTimeout = TimeSpan.FromMilliseconds(1500),   // rounded up to 2 s
        });
        s.Authenticate("acme", CommyServer.Key);
        using Service svc = s.OpenService("app", ServiceMode.Remote);
        using var m = svc.OpenMap<long, long>("silent");
        m[1] = 1;
        own.Pause(true);
        try
        {
            for (int i = 0; i < 600 && s.IsConnected; i++) Thread.Sleep(50);   // about 2 s; 30 s only guards a hang
            Assert.False(s.IsConnected);
            var e = Assert.Throws<DisconnectedException>(() => m[1]);
            Assert.Contains("sent nothing", e.Message);
            Assert.Contains("silence_timeout_s 2", e.Message);
        }
        finally
        {
            own.Pause(false);
        }
    }

    [Fact]
    public void DisposeInAnyOrder()
    {
        Session s = _server.Connect();
        Service svc = s.OpenService("app", ServiceMode.Remote);
        var m = svc.OpenMap<long, long>("m2");
        m[1] = 1;
        svc.Subscribe("m2", _ => { });
        s.Dispose();
        s.Dispose();
        Assert.ThrowsAny<CommyException>(() => m[1]);
        m.Dispose();
        svc.Dispose();
        Assert.Throws<ClosedException>(() => s.OpenService("app"));
    }
}
