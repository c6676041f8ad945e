using System;
using Commy.Interop;

namespace Commy;

// One struct per native getter, so Codec<T>.TryRead specialises per call
// site (see INativeRead). Each captures the handle and the call's inputs.

internal unsafe struct BoxGet : INativeRead
{
    public IntPtr H;
    public int Read(void* buf, nuint cap, nuint* len) => commy.commy_box_get(H, buf, cap, len);
}

internal unsafe struct VecGet : INativeRead
{
    public IntPtr H;
    public ulong Index;
    public int Read(void* buf, nuint cap, nuint* len) => commy.commy_vec_get(H, Index, buf, cap, len);
}

internal unsafe struct VecPop : INativeRead
{
    public IntPtr H;
    public int Read(void* buf, nuint cap, nuint* len) => commy.commy_vec_pop(H, buf, cap, len);
}

internal unsafe struct StrGet : INativeRead
{
    public IntPtr H;
    public int Read(void* buf, nuint cap, nuint* len) => commy.commy_str_get(H, (byte*)buf, cap, len);
}

internal enum DequeRead { Get, Front, Back, PopFront, PopBack, PopFrontWait }

internal unsafe struct DequeOp : INativeRead
{
    public IntPtr H;
    public DequeRead What;
    public ulong Index;
    public int TimeoutMs;

    public int Read(void* buf, nuint cap, nuint* len) => What switch
    {
        DequeRead.Get => commy.commy_deque_get(H, Index, buf, cap, len),
        DequeRead.Front => commy.commy_deque_front(H, buf, cap, len),
        DequeRead.Back => commy.commy_deque_back(H, buf, cap, len),
        DequeRead.PopFront => commy.commy_deque_pop_front(H, buf, cap, len),
        DequeRead.PopBack => commy.commy_deque_pop_back(H, buf, cap, len),
        _ => commy.commy_deque_pop_front_wait(H, buf, cap, len, TimeoutMs),
    };
}

internal unsafe struct MapGet : INativeRead
{
    public IntPtr H;
    public void* Key;
    public nuint KeyLen;
    public bool Ordered;

    public int Read(void* buf, nuint cap, nuint* len) => Ordered
        ? commy.commy_omap_get(H, Key, KeyLen, buf, cap, len)
        : commy.commy_map_get(H, Key, KeyLen, buf, cap, len);
}
