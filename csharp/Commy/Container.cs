using System;
using System.Threading;
using System.Threading.Tasks;
using Commy.Interop;

namespace Commy;

/// <summary>What every container has: its name, its segment, its change
/// counter and the wait for a change made by any process.</summary>
public abstract class Container : IDisposable
{
    internal readonly ContainerHandle Handle;

    /// <summary>The segment it was opened from.</summary>
    public Segment Segment { get; }
    /// <summary>The container's name in the segment.</summary>
    public string Name { get; }
    /// <summary>The kind of container.</summary>
    public ContainerKind Kind => Handle.Kind;

    private protected Container(Segment segment, string name, ContainerKind kind, ElementType kt, ElementType vt, OpenMode mode)
    {
        Segment = segment ?? throw new ArgumentNullException(nameof(segment));
        Name = name;
        Handle = segment.OpenHandle(kind, name, kt, vt, mode);
    }

    internal HandleUse Use() => new(Handle, this);

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    /// <summary>Closes this handle. Idempotent; the container itself stays in the segment.</summary>
    public void Dispose() => Handle.Dispose();

    /// <summary>The change counter: it moves on every change made by any process.</summary>
    public unsafe uint Version
    {
        get
        {
            using HandleUse u = Use();
            uint v = 0;
            int rc = Kind switch
            {
                ContainerKind.Box => commy.commy_box_version(&v, u.Ptr),
                ContainerKind.Vec => commy.commy_vec_version(&v, u.Ptr),
                ContainerKind.Str => commy.commy_str_version(&v, u.Ptr),
                ContainerKind.Deque => commy.commy_deque_version(&v, u.Ptr),
                ContainerKind.Map => commy.commy_map_version(&v, u.Ptr),
                ContainerKind.Set => commy.commy_set_version(&v, u.Ptr),
                ContainerKind.OrderedMap => commy.commy_omap_version(&v, u.Ptr),
                _ => commy.commy_oset_version(&v, u.Ptr),
            };
            Native.Check(rc);
            return v;
        }
    }

    private int WaitRaw(IntPtr h, uint seen, int ms) => Kind switch
    {
        ContainerKind.Box => commy.commy_box_wait(h, seen, ms),
        ContainerKind.Vec => commy.commy_vec_wait(h, seen, ms),
        ContainerKind.Str => commy.commy_str_wait(h, seen, ms),
        ContainerKind.Deque => commy.commy_deque_wait(h, seen, ms),
        ContainerKind.Map => commy.commy_map_wait(h, seen, ms),
        ContainerKind.Set => commy.commy_set_wait(h, seen, ms),
        ContainerKind.OrderedMap => commy.commy_omap_wait(h, seen, ms),
        _ => commy.commy_oset_wait(h, seen, ms),
    };

    internal static int TimeoutMs(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan) return -1;
        if (timeout < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "use Timeout.InfiniteTimeSpan to wait forever");
        return (int)Math.Min(Math.Ceiling(timeout.TotalMilliseconds), int.MaxValue);
    }

    /// <summary>Blocks until <see cref="Version"/> differs from seen (true) or
    /// timeout passes (false). Sleeps on a futex in the segment, woken by the
    /// writer. Timeout.InfiniteTimeSpan waits forever.</summary>
    public bool WaitChange(uint seen, TimeSpan timeout)
    {
        int ms = TimeoutMs(timeout);
        using HandleUse u = Use();
        int rc = WaitRaw(u.Ptr, seen, ms);
        if (rc == ErrorCode.TimedOut) return false;
        Native.Check(rc);
        return true;
    }

    // A futex wait cannot be interrupted from outside, so a cancellable wait
    // sleeps in slices and checks the token between them; a change still
    // wakes it at once.
    private const int SliceMs = 50;

    /// <summary>Blocks until the version differs from seen (true), timeout
    /// passes (false) or cancellationToken is cancelled (OperationCanceledException).</summary>
    public bool WaitChange(uint seen, TimeSpan timeout, CancellationToken cancellationToken)
    {
        int total = TimeoutMs(timeout);
        long deadline = total < 0 ? long.MaxValue : Environment.TickCount64 + total;
        using HandleUse u = Use();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long left = deadline - Environment.TickCount64;
            if (left <= 0 && total >= 0)
            {
                int rc0 = WaitRaw(u.Ptr, seen, 0);
                if (rc0 == ErrorCode.TimedOut) return false;
                Native.Check(rc0);
                return true;
            }
            int ms = (int)Math.Min(left, cancellationToken.CanBeCanceled ? SliceMs : int.MaxValue);
            int rc = WaitRaw(u.Ptr, seen, ms);
            if (rc == ErrorCode.TimedOut) continue;
            Native.Check(rc);
            return true;
        }
    }

    /// <summary>Blocks until the version differs from seen or the token is cancelled.</summary>
    public bool WaitChange(uint seen, CancellationToken cancellationToken) =>
        WaitChange(seen, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Waits for a change without blocking the caller: the wait runs
    /// on a dedicated thread. Completes with true on a change, false on timeout,
    /// or cancelled when the token is.</summary>
    public Task<bool> WaitChangeAsync(uint seen, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TimeoutMs(timeout); // validate on the caller's thread
        return Task.Factory.StartNew(() => WaitChange(seen, timeout, cancellationToken), cancellationToken,
            TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
    }

    /// <summary>Waits for a change without blocking the caller, until cancelled.</summary>
    public Task<bool> WaitChangeAsync(uint seen, CancellationToken cancellationToken = default) =>
        WaitChangeAsync(seen, Timeout.InfiniteTimeSpan, cancellationToken);

    public override string ToString() => $"{Kind} '{Name}'";
}
