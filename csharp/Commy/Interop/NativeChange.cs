using System;
using System.Runtime.InteropServices;

namespace Commy.Interop;

/// <summary>commy_change (abi/commy/session.h), field for field: what the
/// session's network thread passes to a subscription callback. Every pointer
/// is borrowed for the duration of the callback.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeChange
{
    public IntPtr Service;  // const char *
    public IntPtr Var;      // const char *
    public uint Version;
    public uint Kind;       // COMMY_KIND_*, 0 if unknown
    public uint Type;       // commy_type of Value
    public IntPtr Value;    // const void *, NULL if none
    public nuint ValueLen;
    public ulong Len;
}
