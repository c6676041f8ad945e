using System.Runtime.InteropServices;

namespace Commy.Interop;

/// <summary>commy_cursor (abi/commy/types.h), field for field: a blittable
/// value passed by pointer to the commy_*_next and _seek functions.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeCursor
{
    public ulong Pos;
    public ulong Aux;
    public uint Version;
    public uint State;
}
