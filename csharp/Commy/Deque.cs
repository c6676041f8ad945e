using System;
using System.Collections;
using System.Collections.Generic;
using System.Threading;
using Commy.Interop;

namespace Commy;

/// <summary>A shared double-ended queue: push and pop at both ends in O(1).</summary>
public sealed unsafe class Deque<T> : Container, IReadOnlyCollection<T>
{
    /// <summary>The declared element type.</summary>
    public ElementType Type { get; }

    internal Deque(Segment s, string name, ElementType type, OpenMode mode)
        : base(s, name, ContainerKind.Deque, type, ElementType.Any, mode)
    {
        Type = type;
    }

    /// <summary>Number of elements.</summary>
    public unsafe long LongCount
    {
        get
        {
            using HandleUse u = Use();
            ulong n = 0;
            Native.Check(commy.commy_deque_len(&n, u.Ptr));
            return (long)n;
        }
    }

    public int Count => checked((int)LongCount);

    /// <summary>Adds at the back.</summary>
    public unsafe void PushBack(T item)
    {
        Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned p = Codec<T>.Pin(ref item, scratch);
        using HandleUse u = Use();
        Native.Check(commy.commy_deque_push_back(u.Ptr, p.Ptr, p.Len));
    }

    /// <summary>Adds at the front.</summary>
    public unsafe void PushFront(T item)
    {
        Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
        using Pinned p = Codec<T>.Pin(ref item, scratch);
        using HandleUse u = Use();
        Native.Check(commy.commy_deque_push_front(u.Ptr, p.Ptr, p.Len));
    }

    private int Read(DequeRead what, out T item, ulong index = 0, int timeoutMs = 0)
    {
        using HandleUse u = Use();
        var op = new DequeOp { H = u.Ptr, What = what, Index = index, TimeoutMs = timeoutMs };
        return Codec<T>.TryRead(ref op, out item);
    }

    private T ReadOrThrow(DequeRead what)
    {
        Native.Check(Read(what, out T item));
        return item;
    }

    /// <summary>Removes and returns the front element; EmptyException if there is none.</summary>
    public T PopFront() => ReadOrThrow(DequeRead.PopFront);
    /// <summary>Removes and returns the back element; EmptyException if there is none.</summary>
    public T PopBack() => ReadOrThrow(DequeRead.PopBack);
    /// <summary>The front element; EmptyException if there is none.</summary>
    public T PeekFront() => ReadOrThrow(DequeRead.Front);
    /// <summary>The back element; EmptyException if there is none.</summary>
    public T PeekBack() => ReadOrThrow(DequeRead.Back);

    private bool Try(DequeRead what, out T item)
    {
        int rc = Read(what, out item);
        if (rc == ErrorCode.Empty) return false;
        Native.Check(rc);
        return true;
    }

    public bool TryPopFront(out T item) => Try(DequeRead.PopFront, out item);
    public bool TryPopBack(out T item) => Try(DequeRead.PopBack, out item);
    public bool TryPeekFront(out T item) => Try(DequeRead.Front, out item);
    public bool TryPeekBack(out T item) => Try(DequeRead.Back, out item);

    /// <summary>Removes the front element, waiting up to timeout for one to
    /// arrive (sleeping on the deque's futex, woken by any process's push).
    /// False if none came in time.</summary>
    public bool TryPopFront(out T item, TimeSpan timeout)
    {
        int rc = Read(DequeRead.PopFrontWait, out item, 0, TimeoutMs(timeout));
        if (rc == ErrorCode.TimedOut || rc == ErrorCode.Empty) return false;
        Native.Check(rc);
        return true;
    }

    /// <summary>Like TryPopFront(out item, timeout), cancellable: waits in
    /// short slices and throws OperationCanceledException when cancelled.</summary>
    public bool TryPopFront(out T item, TimeSpan timeout, CancellationToken cancellationToken)
    {
        int total = TimeoutMs(timeout);
        long deadline = total < 0 ? long.MaxValue : Environment.TickCount64 + total;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long left = Math.Max(0, deadline - Environment.TickCount64);
            int ms = (int)Math.Min(left, 50);
            if (TryPopFront(out item, TimeSpan.FromMilliseconds(ms))) return true;
            if (total >= 0 && Environment.TickCount64 >= deadline) return false;
        }
    }

    /// <summary>The element at index (0 is the front).</summary>
    public T this[long index]
    {
        get
        {
            if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
            int rc = Read(DequeRead.Get, out T item, (ulong)index);
            if (rc == ErrorCode.Range) throw new ArgumentOutOfRangeException(nameof(index), index, Native.Error(rc).Message);
            Native.Check(rc);
            return item;
        }
        set
        {
            if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "an index cannot be negative");
            Span<byte> scratch = Codec<T>.IsFixed ? default : stackalloc byte[Codec<T>.ScratchBytes];
            using Pinned p = Codec<T>.Pin(ref value, scratch);
            using HandleUse u = Use();
            int rc;
            unsafe { rc = commy.commy_deque_set(u.Ptr, (ulong)index, p.Ptr, p.Len); }
            if (rc == ErrorCode.Range) throw new ArgumentOutOfRangeException(nameof(index), index, Native.Error(rc).Message);
            Native.Check(rc);
        }
    }

    /// <summary>Removes every element.</summary>
    public void Clear()
    {
        using HandleUse u = Use();
        Native.Check(commy.commy_deque_clear(u.Ptr));
    }

    /// <summary>Enumerates front to back; ConcurrentChangeException if the
    /// deque changes during the enumeration.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        uint v0 = Version;
        long n = LongCount;
        for (long i = 0; i < n; i++)
        {
            int rc = Read(DequeRead.Get, out T x, (ulong)i);
            if (Version != v0 || rc == ErrorCode.Range)
                throw new ConcurrentChangeException(ErrorCode.Concurrent,
                    $"deque '{Name}' changed during enumeration; enumerate again");
            Native.Check(rc);
            yield return x;
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"Deque<{typeof(T).Name}> '{Name}'";
}
