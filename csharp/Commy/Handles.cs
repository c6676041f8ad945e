using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Commy.Interop;

namespace Commy;

/// <summary>Owns one commy_alloc *: commy_alloc_close runs exactly once, on
/// Dispose or in the finaliser, and never while a call is using it.</summary>
internal sealed class SegmentHandle : SafeHandle
{
    public SegmentHandle() : base(IntPtr.Zero, true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal void Set(IntPtr h) => SetHandle(h);

    protected override bool ReleaseHandle()
    {
        commy.commy_alloc_close(handle);
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
