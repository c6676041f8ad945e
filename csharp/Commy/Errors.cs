using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Commy.Interop;

namespace Commy;

/// <summary>The error codes of abi/commy/errors.h (pinned forever).</summary>
public static class ErrorCode
{
    public const int Ok = 0;
    public const int InvalidArgument = -1;
    public const int OutOfMemory = -2;
    public const int Io = -3;
    public const int NotFound = -4;
    public const int Exists = -5;
    public const int Type = -6;
    public const int Layout = -7;
    public const int Corrupt = -8;
    public const int NoSpace = -9;
    public const int TimedOut = -10;
    public const int Busy = -11;
    public const int Permission = -12;
    public const int Closed = -13;
    public const int Range = -14;
    public const int Empty = -15;
    public const int TooSmall = -16;
    public const int Concurrent = -17;
    public const int Utf8 = -18;
    public const int BadFree = -19;
    public const int NotSupported = -20;
    public const int Journal = -21;
    // commy-server and sessions (docs/protocol.md)
    public const int Protocol = -22;
    public const int UnknownOperation = -23;
    public const int TooBig = -24;
    public const int Auth = -25;
    public const int Expired = -26;
    public const int Forbidden = -27;
    public const int Disconnected = -28;
    public const int Locked = -29;
    public const int Retired = -30;
}

/// <summary>Base of every error commy raises. <see cref="Code"/> is the C
/// library's COMMY_E* code (0 for failures detected by the binding itself,
/// such as a version mismatch); <see cref="Exception.Message"/> is the
/// sentence commy_error_last() gave for it.</summary>
public class CommyException : Exception
{
    /// <summary>The COMMY_E* code (negative), or 0 for binding-side failures.</summary>
    public int Code { get; }

    public CommyException(int code, string message) : base(message) { Code = code; }
    public CommyException(int code, string message, Exception? inner) : base(message, inner) { Code = code; }

    /// <summary>The exception class for a code, carrying message.</summary>
    public static CommyException Create(int code, string message) => code switch
    {
        ErrorCode.InvalidArgument => new InvalidArgumentException(code, message),
        ErrorCode.Utf8 => new InvalidUtf8Exception(code, message),
        ErrorCode.OutOfMemory => new NativeOutOfMemoryException(code, message),
        ErrorCode.Io => new IoException(code, message),
        ErrorCode.NotFound => new NotFoundException(code, message),
        ErrorCode.Exists => new AlreadyExistsException(code, message),
        ErrorCode.Type => new TypeMismatchException(code, message),
        ErrorCode.Layout => new LayoutException(code, message),
        ErrorCode.Corrupt => new CorruptException(code, message),
        ErrorCode.NoSpace => new NoSpaceException(code, message),
        ErrorCode.TimedOut => new WaitTimeoutException(code, message),
        ErrorCode.Busy => new BusyException(code, message),
        ErrorCode.Permission => new PermissionException(code, message),
        ErrorCode.Closed => new ClosedException(code, message),
        ErrorCode.Range => new OutOfRangeException(code, message),
        ErrorCode.Empty => new EmptyException(code, message),
        ErrorCode.TooSmall => new BufferTooSmallException(code, message),
        ErrorCode.Concurrent => new ConcurrentChangeException(code, message),
        ErrorCode.BadFree => new BadFreeException(code, message),
        ErrorCode.NotSupported => new UnsupportedOperationException(code, message),
        ErrorCode.Journal => new JournalFullException(code, message),
        ErrorCode.Protocol => new ProtocolException(code, message),
        ErrorCode.UnknownOperation => new UnknownOperationException(code, message),
        ErrorCode.TooBig => new MessageTooBigException(code, message),
        ErrorCode.Auth => new AuthException(code, message),
        ErrorCode.Expired => new ExpiredException(code, message),
        ErrorCode.Forbidden => new ForbiddenException(code, message),
        ErrorCode.Disconnected => new DisconnectedException(code, message),
        ErrorCode.Locked => new LockedOutException(code, message),
        ErrorCode.Retired => new RetiredException(code, message),
        _ => new CommyException(code, message),
    };
}

/// <summary>A bad argument: a bad name, a value of the wrong length, bad options (COMMY_EINVAL).</summary>
public class InvalidArgumentException : CommyException { public InvalidArgumentException(int c, string m) : base(c, m) { } }
/// <summary>A string that is not valid UTF-8 / UTF-16 (COMMY_EUTF8).</summary>
public sealed class InvalidUtf8Exception : InvalidArgumentException { public InvalidUtf8Exception(int c, string m) : base(c, m) { } }
/// <summary>The process ran out of memory in native code (COMMY_ENOMEM).</summary>
public sealed class NativeOutOfMemoryException : CommyException { public NativeOutOfMemoryException(int c, string m) : base(c, m) { } }
/// <summary>A system call on the segment file failed (COMMY_EIO).</summary>
public sealed class IoException : CommyException { public IoException(int c, string m) : base(c, m) { } }
/// <summary>No such file, container, key or element (COMMY_ENOTFOUND).</summary>
public sealed class NotFoundException : CommyException { public NotFoundException(int c, string m) : base(c, m) { } }
/// <summary>It already exists and exclusive creation was asked (COMMY_EEXISTS).</summary>
public sealed class AlreadyExistsException : CommyException { public AlreadyExistsException(int c, string m) : base(c, m) { } }
/// <summary>A container of another kind or element type than asked for (COMMY_ETYPE).</summary>
public sealed class TypeMismatchException : CommyException
{
    public TypeMismatchException(int c, string m) : base(c, m) { }
}
/// <summary>The file was written by a layout this library does not read (COMMY_ELAYOUT).</summary>
public sealed class LayoutException : CommyException { public LayoutException(int c, string m) : base(c, m) { } }
/// <summary>The file is not a commy segment, is truncated or damaged (COMMY_ECORRUPT).</summary>
public sealed class CorruptException : CommyException { public CorruptException(int c, string m) : base(c, m) { } }
/// <summary>The segment reached its maximum size (COMMY_ENOSPC); the container is unchanged.</summary>
public sealed class NoSpaceException : CommyException { public NoSpaceException(int c, string m) : base(c, m) { } }
/// <summary>A wait or lock ran out of time (COMMY_ETIMEDOUT).</summary>
public sealed class WaitTimeoutException : CommyException { public WaitTimeoutException(int c, string m) : base(c, m) { } }
/// <summary>A resource is taken: process table full, lock held too long (COMMY_EBUSY).</summary>
public sealed class BusyException : CommyException { public BusyException(int c, string m) : base(c, m) { } }
/// <summary>Not allowed: a write through a read-only segment, file permissions (COMMY_EPERM).</summary>
public sealed class PermissionException : CommyException { public PermissionException(int c, string m) : base(c, m) { } }
/// <summary>The container or its segment was closed (COMMY_ECLOSED).</summary>
public sealed class ClosedException : CommyException { public ClosedException(int c, string m) : base(c, m) { } }
/// <summary>An index out of range, or a number that does not fit the declared type (COMMY_ERANGE).</summary>
public sealed class OutOfRangeException : CommyException { public OutOfRangeException(int c, string m) : base(c, m) { } }
/// <summary>Pop, front or back of an empty container (COMMY_EEMPTY).</summary>
public sealed class EmptyException : CommyException { public EmptyException(int c, string m) : base(c, m) { } }
/// <summary>An output buffer was too small (COMMY_ETOOSMALL); the binding retries, so this rarely escapes.</summary>
public sealed class BufferTooSmallException : CommyException { public BufferTooSmallException(int c, string m) : base(c, m) { } }
/// <summary>The container changed while it was being enumerated (COMMY_ECONCURRENT): start again.</summary>
public sealed class ConcurrentChangeException : CommyException { public ConcurrentChangeException(int c, string m) : base(c, m) { } }
/// <summary>A free of something that is not a live allocation (COMMY_EBADFREE).</summary>
public sealed class BadFreeException : CommyException { public BadFreeException(int c, string m) : base(c, m) { } }
/// <summary>An operation the container's element type does not support (COMMY_ENOTSUP).</summary>
public sealed class UnsupportedOperationException : CommyException { public UnsupportedOperationException(int c, string m) : base(c, m) { } }
/// <summary>A batch (Segment.Lock) outgrew the undo journal and was rolled back (COMMY_EJOURNAL).</summary>
public sealed class JournalFullException : CommyException { public JournalFullException(int c, string m) : base(c, m) { } }
/// <summary>Authentication failed (unknown tenant or key, wrong secret: one
/// answer for all), or a request came before authenticating (COMMY_EAUTH).
/// The base of the authentication family.</summary>
public class AuthException : CommyException { public AuthException(int c, string m) : base(c, m) { } }
/// <summary>The session token expired: authenticate again (COMMY_EEXPIRED).</summary>
public sealed class ExpiredException : AuthException { public ExpiredException(int c, string m) : base(c, m) { } }
/// <summary>Too many failed logins: the credentials are locked out for a while (COMMY_ELOCKED).</summary>
public sealed class LockedOutException : AuthException { public LockedOutException(int c, string m) : base(c, m) { } }
/// <summary>The token's permissions do not allow the operation (COMMY_EFORBIDDEN).</summary>
public sealed class ForbiddenException : CommyException { public ForbiddenException(int c, string m) : base(c, m) { } }
/// <summary>The session has no connection to the server; it may be reconnecting (COMMY_EDISCONNECTED).</summary>
public sealed class DisconnectedException : CommyException { public DisconnectedException(int c, string m) : base(c, m) { } }
/// <summary>A write to a segment its server retired: the service moved to a new file (COMMY_ERETIRED). A session in local mode
/// retries such writes in the new file itself; this reaches the caller only when it could not (no session, or no new file in time).</summary>
public sealed class RetiredException : CommyException { public RetiredException(int c, string m) : base(c, m) { } }
/// <summary>A frame broke the protocol (COMMY_EPROTO).</summary>
public sealed class ProtocolException : CommyException { public ProtocolException(int c, string m) : base(c, m) { } }
/// <summary>The server does not know the operation (COMMY_EUNKNOWNOP).</summary>
public sealed class UnknownOperationException : CommyException { public UnknownOperationException(int c, string m) : base(c, m) { } }
/// <summary>A message larger than the server's limit (COMMY_ETOOBIG).</summary>
public sealed class MessageTooBigException : CommyException { public MessageTooBigException(int c, string m) : base(c, m) { } }
/// <summary>The native library is not the version this binding was generated against.</summary>
public sealed class VersionMismatchException : CommyException
{
    public int NativeVersion { get; }
    public int BindingVersion { get; }
    public VersionMismatchException(int native, int binding, string m) : base(0, m)
    {
        NativeVersion = native;
        BindingVersion = binding;
    }
}

internal static class Native
{
    /// <summary>Throws the exception for a negative code. Call right after
    /// the failing native call, on the same thread, so commy_error_last()
    /// still describes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(int rc)
    {
        if (rc < 0) Throw(rc);
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(int rc) => throw Error(rc);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static CommyException Error(int rc)
    {
        string? msg = null;
        commy_error? e = commy.commy_error_last();
        if (e != null && e.code == rc) msg = e.message;
        if (string.IsNullOrEmpty(msg)) msg = commy.commy_strerror(rc);
        return CommyException.Create(rc, msg!);
    }

    [DoesNotReturn]
    public static void ThrowClosed(string what) =>
        throw new ClosedException(ErrorCode.Closed, $"{what} was disposed; open it again from its Segment");
}
