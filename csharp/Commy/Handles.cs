using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Commy.Interop;

namespace Commy;

/// <summary>Owns one commy_alloc *: commy_alloc_close runs exactly once, on
/// Dispose or in the finaliser, and never while a call is using it.</summary>
internal sealed class SegmentHandle : SafeHandle
{
    private SafeHandle? _owner;

    public SegmentHandle() : base(IntPtr.Zero, true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal void Set(IntPtr h) => SetHandle(h);

    /// <summary>A commy_alloc * borrowed from owner (a service's): it holds a
    /// reference on owner instead of closing the alloc, so the service is
    /// closed only after the last call through this handle returned.</summary>
    internal void SetBorrowed(IntPtr h, SafeHandle owner)
    {
        bool ok = false;
        owner.DangerousAddRef(ref ok);
        _owner = owner;
        SetHandle(h);
    }

    protected override bool ReleaseHandle()
    {
        if (_owner != null) _owner.DangerousRelease();
        else commy.commy_alloc_close(handle);
        return true;
    }
}

/// <summary>Owns one commy_session *: commy_session_close runs exactly once.</summary>
internal sealed class SessionHandle : SafeHandle
{
    public SessionHandle() : base(IntPtr.Zero, true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal void Set(IntPtr h) => SetHandle(h);

    protected override bool ReleaseHandle()
    {
        commy.commy_session_close(handle);
        return true;
    }
}

/// <summary>Owns one commy_service *: commy_service_close runs exactly once,
/// after the Service and its Segment view are both done with it.</summary>
internal sealed class ServiceHandle : SafeHandle
{
    internal Action? AfterClose;

    public ServiceHandle() : base(IntPtr.Zero, true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal void Set(IntPtr h) => SetHandle(h);

    protected override bool ReleaseHandle()
    {
        commy.commy_service_close(handle);
        AfterClose?.Invoke(); // no callback can run any more: free what they used
        return true;
    }
}

/// <summary>Owns one container handle of any kind. The C library gives each
/// container handle its own reference on the segment, so these may be
/// finalised before or after their SegmentHandle, in any order.</summary>
internal sealed class ContainerHandle : SafeHandle
{
    public readonly ContainerKind Kind;

    public ContainerHandle(ContainerKind kind) : base(IntPtr.Zero, true) { Kind = kind; }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal void Set(IntPtr h) => SetHandle(h);

    protected override bool ReleaseHandle()
    {
        switch (Kind)
        {
            case ContainerKind.Box: commy.commy_box_close(handle); break;
            case ContainerKind.Vec: commy.commy_vec_close(handle); break;
            case ContainerKind.Str: commy.commy_str_close(handle); break;
            case ContainerKind.Deque: commy.commy_deque_close(handle); break;
            case ContainerKind.Map: commy.commy_map_close(handle); break;
            case ContainerKind.Set: commy.commy_set_close(handle); break;
            case ContainerKind.OrderedMap: commy.commy_omap_close(handle); break;
            case ContainerKind.OrderedSet: commy.commy_oset_close(handle); break;
        }
        return true;
    }
}

/// <summary>Keeps a SafeHandle alive for the length of one native call, so a
/// Dispose on another thread waits for the call instead of freeing under it.</summary>
internal readonly struct HandleUse : IDisposable
{
    private readonly SafeHandle _h;
    public readonly IntPtr Ptr;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public HandleUse(SafeHandle h, object owner)
    {
        bool ok = false;
        try
        {
            h.DangerousAddRef(ref ok);
        }
        catch (ObjectDisposedException)
        {
            Native.ThrowClosed(owner switch
            {
                Container c => $"{c.Kind} '{c.Name}'",
                Segment s => $"segment '{s.Path}'",
                _ => "the handle",
            });
        }
        _h = h;
        Ptr = h.DangerousGetHandle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose() => _h.DangerousRelease();
}
