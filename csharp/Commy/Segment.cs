using System;
using System.Collections.Generic;
using Commy.Interop;

namespace Commy;

/// <summary>Options for <see cref="Segment.Open"/>; null fields keep the C library's defaults.</summary>
public sealed class SegmentOptions
{
    /// <summary>Create the file if it does not exist (default true).</summary>
    public bool Create { get; set; } = true;
    /// <summary>Fail with AlreadyExistsException if the file exists.</summary>
    public bool CreateNew { get; set; }
    /// <summary>Map read-only: every write throws PermissionException.</summary>
    public bool ReadOnly { get; set; }
    /// <summary>Run a background heartbeat thread so peers can tell this process is alive.</summary>
    public bool HeartbeatThread { get; set; }
    /// <summary>Bytes of a new file (default 1 MiB).</summary>
    public ulong? InitialSize { get; set; }
    /// <summary>The file never grows past this (default 1 GiB).</summary>
    public ulong? MaxSize { get; set; }
    /// <summary>Bytes of the undo journal of a new file (default 256 KiB).</summary>
    public uint? JournalSize { get; set; }
    /// <summary>Permission bits of a new file (default 0600).</summary>
    public uint? Mode { get; set; }
    /// <summary>How long an operation waits for the segment lock (default forever).</summary>
    public TimeSpan? LockTimeout { get; set; }
    /// <summary>How long to wait for another process creating the file (default 5 s).</summary>
    public TimeSpan? CreateTimeout { get; set; }
}

/// <summary>Heap statistics of a segment.</summary>
public readonly record struct SegmentStats(
    ulong FileSize, ulong MaxSize, ulong HeapSize, ulong Used, ulong Free, ulong LargestFree,
    ulong LiveAllocations, ulong FreeBlocks, ulong Recoveries, uint AttachedProcesses);

/// <summary>The segment file's header (docs/format.md).</summary>
public readonly record struct SegmentInfo(
    int LayoutMajor, int LayoutMinor, int CreatorVersion, ulong Size, ulong MaxSize, ulong JournalSize,
    DateTime CreatedUtc, ulong Recoveries, uint ProcessSlots, bool ReadOnly);

/// <summary>One named container in a segment's root directory.</summary>
public readonly record struct RootInfo(
    string Name, ContainerKind Kind, ElementType KeyType, ElementType ValueType, ulong Length, ulong Bytes);

/// <summary>A commy segment: a memory-mapped file holding named containers
/// shared by every process that opens it. Dispose it when done; containers
/// opened from it stay safe to call afterwards (they throw ClosedException).</summary>
public sealed class Segment : IDisposable
{
    internal readonly SegmentHandle Handle;

    /// <summary>The path the segment was opened with.</summary>
    public string Path { get; }
    /// <summary>True if opened read-only.</summary>
    public bool IsReadOnly { get; }
    /// <summary>True once disposed.</summary>
    public bool IsClosed => Handle.IsClosed;
    /// <summary>True for a service opened in remote mode (<see cref="Service"/>):
    /// no mapping; every call is a round trip to commy-server, and Lock,
    /// Stats, Info, Check and the spans of Vec throw UnsupportedOperationException.</summary>
    public bool IsRemote { get; }

    private Segment(SegmentHandle h, string path, bool readOnly, bool remote = false)
    {
        Handle = h;
        Path = path;
        IsReadOnly = readOnly;
        IsRemote = remote;
    }

    /// <summary>The segment view of a service: its commy_alloc, borrowed from the service handle.</summary>
    internal static Segment ForService(IntPtr alloc, ServiceHandle owner, string label, bool remote)
    {
        var h = new SegmentHandle();
        h.SetBorrowed(alloc, owner);
        return new Segment(h, label, false, remote);
    }

    /// <summary>The lock for a batch where the segment is mapped; on a remote
    /// service (no lock to take) or a read-only one, nothing.</summary>
    internal SegmentLock BatchLock() => IsRemote || IsReadOnly ? default : Lock();

    /// <summary>Opens the segment at path, creating it unless options say otherwise.</summary>
    public static unsafe Segment Open(string path, SegmentOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Library.EnsureLoaded();
        options ??= new SegmentOptions();
        using var o = new commy_alloc_options();
        commy.commy_alloc_options_init(o);
        uint flags = 0;
        if (options.Create || options.CreateNew) flags |= commy.COMMY_ALLOC_CREATE;
        if (options.CreateNew) flags |= commy.COMMY_ALLOC_EXCL;
        if (options.ReadOnly) flags = commy.COMMY_ALLOC_READONLY;
        if (options.HeartbeatThread) flags |= commy.COMMY_ALLOC_HEARTBEAT_THREAD;
        o.flags = flags;
        if (options.InitialSize is { } isz) o.initial_size = isz;
        if (options.MaxSize is { } msz) o.max_size = msz;
        if (options.JournalSize is { } jsz) o.journal_size = jsz;
        if (options.Mode is { } mode) o.mode = mode;
        if (options.LockTimeout is { } lt) o.lock_timeout_ms = Millis(lt, nameof(options.LockTimeout));
        if (options.CreateTimeout is { } ct) o.create_timeout_ms = Millis(ct, nameof(options.CreateTimeout));
        var h = new SegmentHandle();
        IntPtr raw = IntPtr.Zero;
        int rc = commy.commy_alloc_open(&raw, path, o);
        if (rc < 0)
        {
            h.Dispose();
            Native.Throw(rc);
        }
        h.Set(raw);
        return new Segment(h, path, options.ReadOnly);
    }

    /// <summary>Opens an existing segment read-only.</summary>
    public static Segment OpenReadOnly(string path) =>
        Open(path, new SegmentOptions { ReadOnly = true, Create = false });

    private static uint Millis(TimeSpan t, string what)
    {
        if (t < TimeSpan.Zero) throw new ArgumentOutOfRangeException(what, t, "a timeout cannot be negative");
        return (uint)Math.Min(t.TotalMilliseconds, uint.MaxValue);
    }

    internal HandleUse Use() => new(Handle, this);

    /// <summary>Closes this process's view. Containers opened from it then
    /// throw ClosedException. Idempotent.</summary>
    public void Dispose() => Handle.Dispose();

    // ---- containers ----

    /// <summary>Opens (or creates) the box called name. type defaults from T.</summary>
    public Box<T> OpenBox<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        new(this, name, ElementType.For<T>(type, "element"), mode);

    /// <summary>Opens (or creates) the vec called name.</summary>
    public Vec<T> OpenVec<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        new(this, name, ElementType.For<T>(type, "element"), mode);

    /// <summary>Opens (or creates) the UTF-8 string called name.</summary>
    public Str OpenStr(string name, OpenMode mode = OpenMode.OpenOrCreate) => new(this, name, mode);

    /// <summary>Opens (or creates) the deque called name.</summary>
    public Deque<T> OpenDeque<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        new(this, name, ElementType.For<T>(type, "element"), mode);

    /// <summary>Opens (or creates) the hash map called name.</summary>
    public Map<TKey, TValue> OpenMap<TKey, TValue>(string name, ElementType? keyType = null, ElementType? valueType = null,
        OpenMode mode = OpenMode.OpenOrCreate) where TKey : notnull =>
        new(this, name, ElementType.For<TKey>(keyType, "key"), ElementType.For<TValue>(valueType, "value"), mode);

    /// <summary>Opens (or creates) the hash set called name.</summary>
    public Set<T> OpenSet<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        new(this, name, ElementType.For<T>(type, "element"), mode);

    /// <summary>Opens (or creates) the ordered map called name.</summary>
    public OrderedMap<TKey, TValue> OpenOrderedMap<TKey, TValue>(string name, ElementType? keyType = null,
        ElementType? valueType = null, OpenMode mode = OpenMode.OpenOrCreate) where TKey : notnull =>
        new(this, name, ElementType.For<TKey>(keyType, "key"), ElementType.For<TValue>(valueType, "value"), mode);

    /// <summary>Opens (or creates) the ordered set called name.</summary>
    public OrderedSet<T> OpenOrderedSet<T>(string name, ElementType? type = null, OpenMode mode = OpenMode.OpenOrCreate) =>
        new(this, name, ElementType.For<T>(type, "element"), mode);

    internal unsafe ContainerHandle OpenHandle(ContainerKind kind, string name, ElementType kt, ElementType vt, OpenMode mode)
    {
        ArgumentNullException.ThrowIfNull(name);
        uint flags = mode switch
        {
            OpenMode.OpenExisting => commy.COMMY_OPEN_EXISTING,
            OpenMode.CreateNew => commy.COMMY_OPEN_EXCL,
            _ => 0u,
        };
        var ch = new ContainerHandle(kind);
        IntPtr raw = IntPtr.Zero;
        int rc;
        using (HandleUse s = Use())
        {
            rc = kind switch
            {
                ContainerKind.Box => commy.commy_box_open(&raw, s.Ptr, name, kt.Code, flags),
                ContainerKind.Vec => commy.commy_vec_open(&raw, s.Ptr, name, kt.Code, flags),
                ContainerKind.Str => commy.commy_str_open(&raw, s.Ptr, name, flags),
                ContainerKind.Deque => commy.commy_deque_open(&raw, s.Ptr, name, kt.Code, flags),
                ContainerKind.Map => commy.commy_map_open(&raw, s.Ptr, name, kt.Code, vt.Code, flags),
                ContainerKind.Set => commy.commy_set_open(&raw, s.Ptr, name, kt.Code, flags),
                ContainerKind.OrderedMap => commy.commy_omap_open(&raw, s.Ptr, name, kt.Code, vt.Code, flags),
                ContainerKind.OrderedSet => commy.commy_oset_open(&raw, s.Ptr, name, kt.Code, flags),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
        }
        if (rc < 0)
        {
            ch.Dispose();
            Native.Throw(rc);
        }
        ch.Set(raw);
        return ch;
    }

    // ---- segment-wide operations ----

    /// <summary>Takes the segment lock for a batch: every commy call this
    /// thread makes on this segment until the returned value is disposed is
    /// one atomic change for other processes and for crash recovery. Nests.</summary>
    public SegmentLock Lock(TimeSpan? timeout = null)
    {
        uint ms = timeout is { } t ? Math.Max(1u, Millis(t, nameof(timeout))) : 0u;
        bool ok = false;
        try
        {
            Handle.DangerousAddRef(ref ok);
        }
        catch (ObjectDisposedException)
        {
            Native.ThrowClosed("the segment");
        }
        int rc = commy.commy_alloc_lock(Handle.DangerousGetHandle(), ms);
        if (rc < 0)
        {
            var e = Native.Error(rc);
            Handle.DangerousRelease();
            throw e;
        }
        return new SegmentLock(Handle);
    }

    /// <summary>The heap's statistics.</summary>
    public SegmentStats Stats()
    {
        using var s = new commy_heap_stats();
        using (HandleUse u = Use()) Native.Check(commy.commy_alloc_stats(s, u.Ptr));
        return new SegmentStats(s.file_size, s.max_size, s.heap_size, s.used, s.free, s.largest_free, s.live_allocs,
            s.free_blocks, s.recoveries, s.attached);
    }

    /// <summary>The file's header: layout version, sizes, creation time.</summary>
    public SegmentInfo Info()
    {
        using var i = new commy_segment_info();
        using (HandleUse u = Use()) Native.Check(commy.commy_alloc_info(i, u.Ptr));
        return new SegmentInfo(i.layout_major, i.layout_minor, (int)i.creator_version, i.size, i.max_size, i.journal_size,
            DateTime.UnixEpoch.AddTicks((long)(i.created_ns / 100)), i.recoveries, i.process_slots, i.readonly_ != 0);
    }

    /// <summary>Walks the whole segment and throws CorruptException naming the first fault, if any.</summary>
    public void Check()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_alloc_check(u.Ptr));
    }

    /// <summary>Records that this process is alive.</summary>
    public void Heartbeat()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_alloc_heartbeat(u.Ptr));
    }

    /// <summary>Every named container, in creation order.</summary>
    public unsafe IReadOnlyList<RootInfo> Roots()
    {
        using HandleUse u = Use();
        ulong n = 0;
        Native.Check(commy.commy_root_count(&n, u.Ptr));
        var list = new List<RootInfo>((int)Math.Min(n, 1024));
        using var info = new commy_root_info();
        for (ulong i = 0; i < n; i++)
        {
            int rc = commy.commy_root_at(info, u.Ptr, i);
            if (rc == ErrorCode.Range) break; // removed meanwhile by another process
            Native.Check(rc);
            list.Add(ToRoot(info));
        }
        return list;
    }

    /// <summary>Describes the container called name, or null if there is none.</summary>
    public RootInfo? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        using HandleUse u = Use();
        using var info = new commy_root_info();
        int rc = commy.commy_root_find(info, u.Ptr, name);
        if (rc == ErrorCode.NotFound) return null;
        Native.Check(rc);
        return ToRoot(info);
    }

    /// <summary>Removes the container called name and frees its storage;
    /// false if there was none. Handles still open on it then throw NotFoundException.</summary>
    public bool Remove(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        using HandleUse u = Use();
        int rc = commy.commy_root_remove(u.Ptr, name);
        if (rc == ErrorCode.NotFound) return false;
        Native.Check(rc);
        return true;
    }

    private static RootInfo ToRoot(commy_root_info i) =>
        new(i.name, (ContainerKind)i.kind, new ElementType(i.key_type), new ElementType(i.value_type), i.len, i.bytes);

    public override string ToString() => $"Segment({Path}{(IsReadOnly ? ", read-only" : "")})";
}

/// <summary>A held segment lock (see <see cref="Segment.Lock"/>); Dispose commits the batch.</summary>
public struct SegmentLock : IDisposable
{
    private SegmentHandle? _h;

    internal SegmentLock(SegmentHandle h) { _h = h; }

    /// <summary>Commits the batch and releases the lock. Throws
    /// JournalFullException if the batch outgrew the journal and was rolled back.</summary>
    public void Dispose()
    {
        SegmentHandle? h = _h;
        if (h == null) return;
        _h = null;
        int rc = commy.commy_alloc_unlock(h.DangerousGetHandle());
        CommyException? e = rc < 0 ? Native.Error(rc) : null;
        h.DangerousRelease();
        if (e != null) throw e;
    }
}
