using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Commy.Interop;

namespace Commy;

/// <summary>How <see cref="Session.OpenService"/> reaches a service.</summary>
public enum ServiceMode
{
    /// <summary>Map the service file: shared-memory speed. Only for a client on the server's machine.</summary>
    Local = 1,
    /// <summary>Every container call is a request to the server.</summary>
    Remote = 2,
    /// <summary>Local when the server allows it, remote otherwise.</summary>
    Auto = 3,
}

/// <summary>Options of <see cref="Session.Connect"/>; null keeps the library's default.</summary>
public sealed class SessionOptions
{
    /// <summary>PEM file of the CA that signed the server's certificate (null: the system's store).</summary>
    public string? CaFile { get; set; }
    /// <summary>A client certificate (PEM) for mutual TLS, and its key.</summary>
    public string? CertFile { get; set; }
    /// <summary>The private key of <see cref="CertFile"/>.</summary>
    public string? KeyFile { get; set; }
    /// <summary>Accept any server certificate (tests only).</summary>
    public bool InsecureSkipVerify { get; set; }
    /// <summary>How long a request waits for its reply (default 10 s).</summary>
    public TimeSpan? Timeout { get; set; }
    /// <summary>Reconnect in the background after a drop (default true).</summary>
    public bool Reconnect { get; set; } = true;
    /// <summary>The longest pause between reconnect attempts (default 5 s).</summary>
    public TimeSpan? ReconnectMax { get; set; }
    /// <summary>How long a server may send nothing, not even the answer to a
    /// ping, before it is taken for dead: the connection drops (calls throw
    /// <see cref="DisconnectedException"/>) and the reconnect logic runs. The
    /// session pings after half of it. Whole seconds (rounded up), 1 s to
    /// 65535 s; default 30 s.</summary>
    public TimeSpan? SilenceTimeout { get; set; }
}

/// <summary>One change of a subscribed variable (<see cref="Service.Subscribe"/>).</summary>
/// <param name="Service">The service the variable belongs to.</param>
/// <param name="Variable">The container's name.</param>
/// <param name="Version">Its change counter after the change.</param>
/// <param name="Kind">The container kind, if the server said.</param>
/// <param name="Value">For a box or str, the new value (long, ulong, double,
/// bool, string, byte[], ... by its type); otherwise null.</param>
/// <param name="Length">A collection's length after the change (1 for a box, bytes for a str).</param>
public sealed record Change(Service Service, string Variable, uint Version, ContainerKind? Kind, object? Value, ulong Length);

/// <summary>A connection to a commy-server (docs/protocol.md): authenticate,
/// then open the tenant's services. Dispose closes the services opened
/// through it and the connection.
///
/// Subscription handlers run on one thread of the session (not the network
/// thread), one at a time, in the order the server sent the changes; they may
/// call Commy, remote calls included. An exception a handler throws is
/// reported through <see cref="HandlerFailed"/> and does not stop delivery.</summary>
public sealed class Session : IDisposable
{
    internal readonly SessionHandle Handle;
    private readonly List<WeakReference<Service>> _services = new();
    private readonly BlockingCollection<(Subscription, Change)> _events = new();
    private Thread? _dispatcher;
    private readonly object _gate = new();

    /// <summary>The URL the session connected to.</summary>
    public string Url { get; }

    /// <summary>Raised (on the session's event thread) when a subscription handler throws.</summary>
    public event EventHandler<Exception>? HandlerFailed;

    private Session(SessionHandle h, string url)
    {
        Handle = h;
        Url = url;
    }

    /// <summary>Connects to url ("wss://HOST:PORT"; "ws://" only for a server
    /// run with --insecure-dev) and completes the TLS and WebSocket handshakes.
    /// Throws DisconnectedException if the server cannot be reached or TLS fails.</summary>
    public static unsafe Session Connect(string url, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(url);
        Library.EnsureLoaded();
        options ??= new SessionOptions();
        var h = new SessionHandle();
        IntPtr raw = IntPtr.Zero;
        int rc = commy.commy_cs_session_connect(&raw, url, Millis(options.Timeout), options.CaFile, options.CertFile,
            options.KeyFile, options.InsecureSkipVerify ? 1u : 0u, options.Reconnect ? 1u : 0u, Millis(options.ReconnectMax),
            Seconds(options.SilenceTimeout));
        if (rc < 0)
        {
            h.Dispose();
            Native.Throw(rc);
        }
        h.Set(raw);
        return new Session(h, url);
    }

    private static uint Millis(TimeSpan? t)
    {
        if (t is not { } v) return 0;
        if (v <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(t), v, "a timeout must be positive");
        return (uint)Math.Clamp(Math.Ceiling(v.TotalMilliseconds), 1, uint.MaxValue);
    }

    private static uint Seconds(TimeSpan? t)
    {
        if (t is not { } v) return 0;
        if (v <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(t), v, "a timeout must be positive");
        return (uint)Math.Clamp(Math.Ceiling(v.TotalSeconds), 1, uint.MaxValue); // the library refuses > 65535
    }

    internal HandleUse Use() => new(Handle, this);

    /// <summary>Authenticates with an API key ("KEYID.SECRET") for tenant;
    /// AuthException if refused.</summary>
    public void Authenticate(string tenant, string apiKey)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(apiKey);
        using HandleUse u = Use();
        Native.Check(commy.commy_session_authenticate(u.Ptr, tenant, apiKey));
    }

    /// <summary>Authenticates with a token of an earlier session; AuthException
    /// (or ExpiredException) if refused.</summary>
    public void AuthenticateToken(string tenant, string token)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(token);
        using HandleUse u = Use();
        Native.Check(commy.commy_session_authenticate_token(u.Ptr, tenant, token));
    }

    /// <summary>Authenticates with a JWT (compact JWS) for a tenant configured
    /// to take JWTs; its sub becomes the client id. AuthException (or
    /// ExpiredException) if refused. Reconnects use the session token, as
    /// after <see cref="Authenticate"/>.</summary>
    public void AuthenticateJwt(string tenant, string jwt)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(jwt);
        using HandleUse u = Use();
        Native.Check(commy.commy_session_authenticate_jwt(u.Ptr, tenant, jwt));
    }

    /// <summary>The session token, for <see cref="AuthenticateToken"/> elsewhere.</summary>
    public string Token => ReadToken(out _);

    /// <summary>When the token expires.</summary>
    public DateTimeOffset TokenExpires
    {
        get
        {
            ReadToken(out long exp);
            return DateTimeOffset.FromUnixTimeSeconds(exp);
        }
    }

    private unsafe string ReadToken(out long expires)
    {
        using HandleUse u = Use();
        byte[] buf = new byte[256];
        while (true)
        {
            nuint n = 0;
            long exp = 0;
            int rc;
            fixed (byte* p = buf) rc = commy.commy_session_token(u.Ptr, p, (nuint)buf.Length, &n, &exp);
            if (rc == ErrorCode.TooSmall)
            {
                buf = new byte[checked((int)n + 1)];
                continue;
            }
            Native.Check(rc);
            expires = exp;
            return Encoding.UTF8.GetString(buf, 0, (int)n);
        }
    }

    /// <summary>The client id the server gave these credentials.</summary>
    public unsafe string ClientId
    {
        get
        {
            using HandleUse u = Use();
            byte[] buf = new byte[256];
            while (true)
            {
                nuint n = 0;
                int rc;
                fixed (byte* p = buf) rc = commy.commy_session_client_id(u.Ptr, p, (nuint)buf.Length, &n);
                if (rc == ErrorCode.TooSmall)
                {
                    buf = new byte[checked((int)n + 1)];
                    continue;
                }
                Native.Check(rc);
                return Encoding.UTF8.GetString(buf, 0, (int)n);
            }
        }
    }

    /// <summary>True while connected and authenticated; false while reconnecting or once disposed.</summary>
    public bool IsConnected
    {
        get
        {
            if (Handle.IsClosed) return false;
            using HandleUse u = Use();
            return commy.commy_session_connected(u.Ptr) != 0;
        }
    }

    /// <summary>Replaces the token with a new one; the server revokes the old one in the same step.</summary>
    public void Refresh()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_session_refresh(u.Ptr));
    }

    /// <summary>Revokes the token and closes this session's services on the server.</summary>
    public void Logout()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_session_logout(u.Ptr));
    }

    /// <summary>Admin: revokes a client (its sessions close, its token is
    /// revoked, local services it mapped move to new files). Returns how many
    /// service files were rotated.</summary>
    public unsafe uint RevokeClient(string clientId)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        using HandleUse u = Use();
        uint rotated = 0;
        Native.Check(commy.commy_session_revoke_client(&rotated, u.Ptr, clientId));
        return rotated;
    }

    /// <summary>Opens the tenant's service called name. Its containers
    /// (OpenBox, OpenMap, ...) are the same types as a Segment's.</summary>
    public unsafe Service OpenService(string name, ServiceMode mode = ServiceMode.Auto)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (mode is not (ServiceMode.Local or ServiceMode.Remote or ServiceMode.Auto))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Local, Remote or Auto");
        var h = new ServiceHandle();
        IntPtr raw = IntPtr.Zero;
        int rc;
        using (HandleUse u = Use()) rc = commy.commy_session_open_service(&raw, u.Ptr, name, (int)mode);
        if (rc < 0)
        {
            h.Dispose();
            Native.Throw(rc);
        }
        h.Set(raw);
        var svc = new Service(this, name, h);
        lock (_gate)
        {
            _services.RemoveAll(w => !w.TryGetTarget(out _));
            _services.Add(new WeakReference<Service>(svc));
        }
        return svc;
    }

    internal void Enqueue(Subscription sub, Change change)
    {
        try
        {
            _events.Add((sub, change));
        }
        catch (InvalidOperationException)
        {
            // the session is closing: the change is dropped
        }
    }

    internal void EnsureDispatcher()
    {
        lock (_gate)
        {
            if (_dispatcher != null) return;
            _dispatcher = new Thread(Dispatch) { IsBackground = true, Name = "commy-session-events" };
            _dispatcher.Start();
        }
    }

    private void Dispatch()
    {
        foreach (var (sub, change) in _events.GetConsumingEnumerable())
        {
            try
            {
                sub.Handler(change);
            }
            catch (Exception e)
            {
                try
                {
                    HandlerFailed?.Invoke(this, e);
                }
                catch (Exception)
                {
                    // a failing error handler must not end delivery either
                }
            }
        }
    }

    /// <summary>Closes every service opened through this session, then the connection. Idempotent.</summary>
    public void Dispose()
    {
        List<Service> open = new();
        lock (_gate)
        {
            foreach (var w in _services)
                if (w.TryGetTarget(out Service? s)) open.Add(s);
            _services.Clear();
        }
        foreach (Service s in open) s.Dispose();
        Handle.Dispose(); // waits for the network thread: no change is queued after this
        _events.CompleteAdding();
        Thread? t;
        lock (_gate) t = _dispatcher;
        if (t != null && t != Thread.CurrentThread) t.Join();
    }

    public override string ToString() => $"Session({Url}{(Handle.IsClosed ? ", closed" : "")})";
}

/// <summary>A subscription's state, reachable from native code through a GCHandle.</summary>
internal sealed class Subscription
{
    public readonly Service Service;
    public readonly string Variable;
    public readonly Action<Change> Handler;

    public Subscription(Service service, string variable, Action<Change> handler)
    {
        Service = service;
        Variable = variable;
        Handler = handler;
    }
}

/// <summary>A service of commy-server opened through a <see cref="Session"/>.
/// Its containers (OpenBox, OpenMap, ...) are the same Box, Map, ... types as
/// a Segment's, mapped locally (Mode Local) or reached through the server
/// (Mode Remote). Dispose closes it; containers opened from it stay safe to
/// call afterwards (they throw ClosedException).</summary>
public sealed class Service : IDisposable
{
    internal readonly ServiceHandle Handle;
    private readonly List<GCHandle> _subs = new();
    private readonly object _gate = new();

    /// <summary>The session it was opened through.</summary>
    public Session Session { get; }
    /// <summary>The service's name.</summary>
    public string Name { get; }
    /// <summary>How it was opened: Local or Remote (never Auto).</summary>
    public ServiceMode Mode { get; }
    /// <summary>The service as a Segment: every container constructor works on it.</summary>
    public Segment Segment { get; }

    internal unsafe Service(Session session, string name, ServiceHandle h)
    {
        Session = session;
        Name = name;
        Handle = h;
        Handle.AfterClose = FreeSubscriptions;
        Mode = (ServiceMode)commy.commy_service_mode(h.DangerousGetHandle());
        IntPtr alloc = IntPtr.Zero;
        int rc = commy.commy_service_alloc(&alloc, h.DangerousGetHandle());
        if (rc < 0)
        {
            var e = Native.Error(rc);
            h.Dispose();
            throw e;
        }
        Segment = Segment.ForService(alloc, h, $"{session.Url}/{name}", Mode == ServiceMode.Remote);
    }

    /// <summary>Calls handler for every change of the container called
    /// variable, in the order the server saw them, until the returned value
    /// (or <see cref="Unsubscribe"/>) ends it. The handler runs on the
    /// session's event thread (see <see cref="Session"/>).</summary>
    public unsafe IDisposable Subscribe(string variable, Action<Change> handler)
    {
        ArgumentNullException.ThrowIfNull(variable);
        ArgumentNullException.ThrowIfNull(handler);
        Session.EnsureDispatcher();
        var gc = GCHandle.Alloc(new Subscription(this, variable, handler));
        // Freed with the service, never earlier: the network thread may be
        // about to call with it even as Unsubscribe returns.
        lock (_gate) _subs.Add(gc);
        delegate* unmanaged[Cdecl]<NativeChange*, IntPtr, void> fn = &OnChange;
        int rc;
        using (HandleUse u = new(Handle, this))
            rc = commy.commy_service_subscribe(u.Ptr, variable, (IntPtr)fn, (void*)GCHandle.ToIntPtr(gc));
        Native.Check(rc);
        return new Unsubscriber(this, variable);
    }

    /// <summary>Ends the subscription to variable; NotFoundException if there is none.</summary>
    public void Unsubscribe(string variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        using HandleUse u = new(Handle, this);
        Native.Check(commy.commy_service_unsubscribe(u.Ptr, variable));
    }

    private sealed class Unsubscriber : IDisposable
    {
        private Service? _svc;
        private readonly string _var;
        public Unsubscriber(Service svc, string var) { _svc = svc; _var = var; }

        public void Dispose()
        {
            Service? s = Interlocked.Exchange(ref _svc, null);
            if (s == null || s.Handle.IsClosed) return;
            try
            {
                s.Unsubscribe(_var);
            }
            catch (NotFoundException)
            {
            }
            catch (ClosedException)
            {
            }
        }
    }

    /// <summary>On the session's network thread: decode, queue, return.</summary>
    [UnmanagedCallersOnly(CallConvs = new[] { typeof(CallConvCdecl) })]
    private static unsafe void OnChange(NativeChange* c, IntPtr payload)
    {
        try
        {
            if (GCHandle.FromIntPtr(payload).Target is not Subscription sub) return;
            string var = c->Var == IntPtr.Zero ? sub.Variable : Marshal.PtrToStringUTF8(c->Var) ?? sub.Variable;
            object? value = c->Value == IntPtr.Zero ? null : Decode(new ElementType(c->Type), (byte*)c->Value, c->ValueLen);
            ContainerKind? kind = c->Kind == 0 ? null : (ContainerKind)c->Kind;
            sub.Service.Session.Enqueue(sub, new Change(sub.Service, var, c->Version, kind, value, c->Len));
        }
        catch (Exception)
        {
            // nothing may cross into native code; a change that cannot be decoded is dropped
        }
    }

    private static unsafe object? Decode(ElementType t, byte* p, nuint n)
    {
        var span = new ReadOnlySpan<byte>(p, checked((int)n));
        return t.Base switch
        {
            1 when n == 1 => (long)(sbyte)span[0],
            2 when n == 2 => (long)BitConverter.ToInt16(span),
            3 when n == 4 => (long)BitConverter.ToInt32(span),
            4 when n == 8 => BitConverter.ToInt64(span),
            5 when n == 1 => (ulong)span[0],
            6 when n == 2 => (ulong)BitConverter.ToUInt16(span),
            7 when n == 4 => (ulong)BitConverter.ToUInt32(span),
            8 when n == 8 => BitConverter.ToUInt64(span),
            9 when n == 4 => (double)BitConverter.ToSingle(span),
            10 when n == 8 => BitConverter.ToDouble(span),
            11 when n == 1 => span[0] != 0,
            13 => Encoding.UTF8.GetString(span),
            _ => span.ToArray(),
        };
    }

    private void FreeSubscriptions()
    {
        lock (_gate)
        {
            foreach (GCHandle g in _subs) g.Free();
            _subs.Clear();
        }
    }

    // ---- the Segment's container constructors ----

    /// <summary>Opens (or creates) the box called name.</summary>
    public Box<T> OpenBox<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        Segment.OpenBox<T>(name, type, mode);
    /// <summary>Opens (or creates) the vec called name.</summary>
    public Vec<T> OpenVec<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        Segment.OpenVec<T>(name, type, mode);
    /// <summary>Opens (or creates) the UTF-8 string called name.</summary>
    public Str OpenStr(string name, OpenMode mode = OpenMode.OpenOrCreate) => Segment.OpenStr(name, mode);
    /// <summary>Opens (or creates) the deque called name.</summary>
    public Deque<T> OpenDeque<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        Segment.OpenDeque<T>(name, type, mode);
    /// <summary>Opens (or creates) the hash map called name.</summary>
    public Map<TKey, TValue> OpenMap<TKey, TValue>(string name, ElementType? keyType = null, ElementType? valueType = null,
        OpenMode mode = OpenMode.OpenOrCreate) where TKey : notnull => Segment.OpenMap<TKey, TValue>(name, keyType, valueType, mode);
    /// <summary>Opens (or creates) the hash set called name.</summary>
    public Set<T> OpenSet<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        Segment.OpenSet<T>(name, type, mode);
    /// <summary>Opens (or creates) the ordered map called name.</summary>
    public OrderedMap<TKey, TValue> OpenOrderedMap<TKey, TValue>(string name, ElementType? keyType = null,
        ElementType? valueType = null, OpenMode mode = OpenMode.OpenOrCreate) where TKey : notnull =>
        Segment.OpenOrderedMap<TKey, TValue>(name, keyType, valueType, mode);
    /// <summary>Opens (or creates) the ordered set called name.</summary>
    public OrderedSet<T> OpenOrderedSet<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        Segment.OpenOrderedSet<T>(name, type, mode);

    /// <summary>Closes the service (on the server too). Idempotent.</summary>
    public void Dispose()
    {
        Segment.Dispose();  // its handle holds a reference on ours: the service closes after the last call through it
        Handle.Dispose();
    }

    public override string ToString() => $"Service({Name}, {Mode}{(Handle.IsClosed ? ", closed" : "")})";
}
