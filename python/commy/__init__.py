"""commy: live data structures shared between processes through a
memory-mapped file.

    import commy
    with commy.Segment("/dev/shm/demo.mem") as seg:
        config = seg.map("config", key=commy.str_, value=commy.i64)
        config["workers"] = 4

Every container is a view of bytes in the file: another process that opens
the same path and name sees (and changes) the same data. See docs/python.md.
"""

import builtins as _builtins
import ctypes as _ctypes
import os as _os
import threading as _threading
from collections.abc import MutableMapping, MutableSequence, MutableSet
from contextlib import contextmanager as _contextmanager

from . import native as _n

__all__ = [
    "Segment", "Box", "Vec", "Str", "Deque", "Map", "Set", "OrderedMap", "OrderedSet",
    "ElementType", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "bool_", "bytes_", "str_",
    "blob", "Error", "version", "version_number", "Session", "Service", "Change", "connect",
]


# ---- version check ------------------------------------------------------

def _check_version(runtime, generated):
    """Raises ImportError if the loaded C library is not the one the binding
    was generated against."""
    if runtime != generated:
        raise ImportError(
            f"commy: the native library is version {runtime} but this binding was generated against "
            f"{generated}; rebuild and reinstall the commy package (pip install ./python) so they match")


_check_version(_n.commy_version_number(), _n.COMMY_VERSION_NUMBER)

version = _n.commy_version_string()
version_number = _n.commy_version_number()


# ---- errors ---------------------------------------------------------------

class Error(Exception):
    """A commy call failed. .code is the COMMY_E* code (negative), .message
    the library's sentence for it (commy_error_last())."""

    def __init__(self, code, message=None):
        if message is None:
            message = _n.commy_strerror(code)
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self):
        return (type(self), (self.code, self.message))


class InvalidArgumentError(Error, ValueError):
    """COMMY_EINVAL: a bad argument (name, length, option)."""


class OutOfMemoryError(Error, MemoryError):
    """COMMY_ENOMEM."""


class IOFailure(Error, OSError):
    """COMMY_EIO: a system call on the file failed."""

    def __init__(self, code, message=None):  # OSError would read (code, message) as (errno, strerror)
        Error.__init__(self, code, message)


class NotFoundError(Error, LookupError):
    """COMMY_ENOTFOUND: no such file, root, key or element."""


class ExistsError(Error):
    """COMMY_EEXISTS: exclusive create of something that exists."""


class TypeMismatchError(Error, TypeError):
    """COMMY_ETYPE: a container of another kind or element type than asked for."""


class LayoutError(Error):
    """COMMY_ELAYOUT: the file was written with a layout major this library does not read."""


class CorruptError(Error):
    """COMMY_ECORRUPT: not a commy segment, truncated or damaged."""


class NoSpaceError(Error):
    """COMMY_ENOSPC: the segment reached its maximum size."""


class TimeoutError(Error, _builtins.TimeoutError):
    """COMMY_ETIMEDOUT."""

    def __init__(self, code, message=None):
        Error.__init__(self, code, message)


class BusyError(Error):
    """COMMY_EBUSY: process table full, lock held too long."""


class PermissionError(Error, _builtins.PermissionError):
    """COMMY_EPERM: a write through a read-only segment, or file permissions."""

    def __init__(self, code, message=None):
        Error.__init__(self, code, message)


class ClosedError(Error):
    """COMMY_ECLOSED: the handle or its segment was closed."""


class RangeError(Error, IndexError):
    """COMMY_ERANGE: an index out of range."""


class EmptyError(Error, IndexError):
    """COMMY_EEMPTY: pop, front or back of an empty container."""


class BufferTooSmallError(Error):
    """COMMY_ETOOSMALL (raw layer only)."""


class ConcurrentModificationError(Error, RuntimeError):
    """COMMY_ECONCURRENT: the container changed while it was being iterated."""


class Utf8Error(Error, ValueError):
    """COMMY_EUTF8: a string that is not valid UTF-8."""


class BadFreeError(Error):
    """COMMY_EBADFREE: free of an offset that is not a live allocation."""


class NotSupportedError(Error, TypeError):
    """COMMY_ENOTSUP: an operation the container's element type does not support."""


class JournalFullError(Error):
    """COMMY_EJOURNAL: a batch outgrew the journal and was rolled back."""


class AuthError(Error, _builtins.PermissionError):
    """COMMY_EAUTH: authentication failed (unknown tenant or key, wrong
    secret: one answer for all), or a request before authenticating. The
    base of the authentication family (ExpiredError)."""

    def __init__(self, code, message=None):
        Error.__init__(self, code, message)


class ExpiredError(AuthError):
    """COMMY_EEXPIRED: the session token expired; authenticate again."""


class LockedOutError(AuthError):
    """COMMY_ELOCKED: too many failed logins; the credentials are locked out for a while."""


class ForbiddenError(Error, _builtins.PermissionError):
    """COMMY_EFORBIDDEN: the token's permissions do not allow the operation."""

    def __init__(self, code, message=None):
        Error.__init__(self, code, message)


class DisconnectedError(Error, ConnectionError):
    """COMMY_EDISCONNECTED: the session has no connection to the server (it
    may be reconnecting: retry later)."""

    def __init__(self, code, message=None):
        Error.__init__(self, code, message)


class RetiredError(Error):
    """COMMY_ERETIRED: a write to a segment its server retired (the service
    moved to a new file). A session in local mode retries such writes in the
    new file itself; this is raised only when it could not (no session, or
    the new file did not arrive in time)."""


class ProtocolError(Error):
    """COMMY_EPROTO: a frame that breaks the protocol."""


class UnknownOperationError(Error):
    """COMMY_EUNKNOWNOP: the server does not know the operation."""


class MessageTooBigError(Error):
    """COMMY_ETOOBIG: a message larger than the server's limit."""


_ERRORS = {
    _n.COMMY_EINVAL: InvalidArgumentError, _n.COMMY_ENOMEM: OutOfMemoryError, _n.COMMY_EIO: IOFailure,
    _n.COMMY_ENOTFOUND: NotFoundError, _n.COMMY_EEXISTS: ExistsError, _n.COMMY_ETYPE: TypeMismatchError,
    _n.COMMY_ELAYOUT: LayoutError, _n.COMMY_ECORRUPT: CorruptError, _n.COMMY_ENOSPC: NoSpaceError,
    _n.COMMY_ETIMEDOUT: TimeoutError, _n.COMMY_EBUSY: BusyError, _n.COMMY_EPERM: PermissionError,
    _n.COMMY_ECLOSED: ClosedError, _n.COMMY_ERANGE: RangeError, _n.COMMY_EEMPTY: EmptyError,
    _n.COMMY_ETOOSMALL: BufferTooSmallError, _n.COMMY_ECONCURRENT: ConcurrentModificationError,
    _n.COMMY_EUTF8: Utf8Error, _n.COMMY_EBADFREE: BadFreeError, _n.COMMY_ENOTSUP: NotSupportedError,
    _n.COMMY_EJOURNAL: JournalFullError,
}
for _name, _cls in (("COMMY_EAUTH", AuthError), ("COMMY_EEXPIRED", ExpiredError), ("COMMY_ELOCKED", LockedOutError),
                    ("COMMY_EFORBIDDEN", ForbiddenError),
                    ("COMMY_EDISCONNECTED", DisconnectedError), ("COMMY_EPROTO", ProtocolError),
                    ("COMMY_EUNKNOWNOP", UnknownOperationError), ("COMMY_ETOOBIG", MessageTooBigError),
                    ("COMMY_ERETIRED", RetiredError)):
    if hasattr(_n, _name):  # a build without sessions may predate these codes
        _ERRORS[getattr(_n, _name)] = _cls
_n._register_errors(Error, _ERRORS)


def error_class(code):
    """The exception class commy raises for a COMMY_E* code."""
    return _ERRORS.get(code, Error)


# ---- element types --------------------------------------------------------

class ElementType(int):
    """A declared element type: the commy_type code with a readable name."""

    def __repr__(self):
        return f"commy.{self.name}"

    @property
    def name(self):
        return _n.commy_type_name(int(self))

    @property
    def size(self):
        """Bytes per value, 0 for the variable-length bytes_ and str_."""
        return _n.commy_type_size(int(self))


i8, i16, i32, i64 = (ElementType(c) for c in (_n.COMMY_T_I8, _n.COMMY_T_I16, _n.COMMY_T_I32, _n.COMMY_T_I64))
u8, u16, u32, u64 = (ElementType(c) for c in (_n.COMMY_T_U8, _n.COMMY_T_U16, _n.COMMY_T_U32, _n.COMMY_T_U64))
f32, f64 = ElementType(_n.COMMY_T_F32), ElementType(_n.COMMY_T_F64)
bool_, bytes_, str_ = ElementType(_n.COMMY_T_BOOL), ElementType(_n.COMMY_T_BYTES), ElementType(_n.COMMY_T_STR)
ANY = ElementType(_n.COMMY_T_ANY)


def blob(n):
    """A fixed-size bytes type of exactly n bytes (1 <= n <= 65535)."""
    if not isinstance(n, int) or not 1 <= n <= 65535:
        raise ValueError(f"blob size must be an int from 1 to 65535, not {n!r}")
    return ElementType(_n.COMMY_T_BLOB | (n << 8))


def _etype(t, what):
    if t is None:
        return ANY
    if isinstance(t, int) and (t == 0 or _n.commy_type_valid(int(t))):
        return ElementType(t)
    raise TypeError(f"{what} must be a commy element type (commy.i64, commy.str_, commy.blob(16), ...), not {t!r}")


_CTYPES = {
    _n.COMMY_T_I8: _ctypes.c_int8, _n.COMMY_T_I16: _ctypes.c_int16, _n.COMMY_T_I32: _ctypes.c_int32,
    _n.COMMY_T_I64: _ctypes.c_int64, _n.COMMY_T_U8: _ctypes.c_uint8, _n.COMMY_T_U16: _ctypes.c_uint16,
    _n.COMMY_T_U32: _ctypes.c_uint32, _n.COMMY_T_U64: _ctypes.c_uint64, _n.COMMY_T_F32: _ctypes.c_float,
    _n.COMMY_T_F64: _ctypes.c_double, _n.COMMY_T_BOOL: _ctypes.c_bool,
}

_MISSING = object()


def _timeout_ms(timeout):
    """seconds (None: forever) -> the C API's milliseconds (negative: forever)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be >= 0 seconds or None")
    return min(int(timeout * 1000), 2**31 - 1)


class _Blocking:
    """Handles that a thread may be blocked on in C (a wait, a lock) with the
    GIL released: close() from another thread must not free the handle under
    it. close() forgets the handle at once (new calls raise ClosedError) but
    the release itself waits for the last blocked call to return."""

    _busy = 0
    _pending = None
    _guard = _threading.Lock()

    def _enter(self):
        with _Blocking._guard:
            h = self._h
            if h is not None:
                self._busy += 1
            return h

    def _leave(self, h):
        if h is None:
            return
        with _Blocking._guard:
            self._busy -= 1
            pending = self._pending if self._busy == 0 else None
            if pending is not None:
                self._pending = None
        if pending is not None:
            self._release(pending)

    def close(self):
        with _Blocking._guard:
            h, self._h = self._h, None
            if h is not None and self._busy:
                self._pending, h = h, None
        if h is not None:
            self._release(h)


# ---- the segment ------------------------------------------------------------

class Segment(_Blocking):
    """An open segment file. A context manager; close() is idempotent.

    path:          the file (for example under /dev/shm)
    create:        create the file if it does not exist (default True)
    exclusive:     with create, fail with ExistsError if it exists
    readonly:      map read-only: every write raises PermissionError
    initial_size:  bytes of a new file (default 1 MiB)
    max_size:      the file never grows past this (default 1 GiB)
    lock_timeout:  seconds an operation waits for the segment lock (None: forever)
    heartbeat:     run a background heartbeat thread for this process
    """

    _remote = False  # a Service opened in remote mode: no mapping, calls are round trips

    def __init__(self, path, *, create=True, exclusive=False, readonly=False, initial_size=None, max_size=None,
                 journal_size=None, mode=None, lock_timeout=None, create_timeout=None, heartbeat=False):
        self._h = None
        opts = _n.commy_alloc_options()
        _n.commy_alloc_options_init(opts)
        flags = 0
        if create:
            flags |= _n.COMMY_ALLOC_CREATE
        if exclusive:
            flags |= _n.COMMY_ALLOC_EXCL
        if readonly:
            flags |= _n.COMMY_ALLOC_READONLY
        if heartbeat:
            flags |= _n.COMMY_ALLOC_HEARTBEAT_THREAD
        opts.flags = flags
        try:
            if initial_size is not None:
                opts.initial_size = initial_size
            if max_size is not None:
                opts.max_size = max_size
            if journal_size is not None:
                opts.journal_size = journal_size
            if mode is not None:
                opts.mode = mode
            if lock_timeout is not None:
                opts.lock_timeout_ms = max(1, _timeout_ms(lock_timeout))
            if create_timeout is not None:
                opts.create_timeout_ms = _timeout_ms(create_timeout)
        except (TypeError, OverflowError) as e:
            raise InvalidArgumentError(_n.COMMY_EINVAL, f"bad segment option: {e}") from None
        self.path = _os.fspath(path)
        self.readonly = bool(readonly)
        self._h = _n.commy_alloc_open(self.path, opts)

    # lifecycle
    def close(self):
        """Closes this process's handle. Containers opened from it stay safe:
        their operations raise ClosedError. Calling close again does nothing."""
        _Blocking.close(self)

    @staticmethod
    def _release(h):
        _n.commy_alloc_close(h)

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the module may be half gone
            pass

    def __repr__(self):
        return f"<commy.Segment {self.path!r}{' closed' if self._h is None else ''}>"

    def _handle(self):
        if self._h is None:
            raise ClosedError(_n.COMMY_ECLOSED, f"segment {self.path!r} is closed; open it again")
        return self._h

    # containers
    @staticmethod
    def _flags(open):
        try:
            return {"create": 0, "existing": _n.COMMY_OPEN_EXISTING, "new": _n.COMMY_OPEN_EXCL}[open]
        except KeyError:
            raise ValueError(f"open must be 'create', 'existing' or 'new', not {open!r}") from None

    def box(self, name, type=None, *, open="create"):
        """The Box called name holding one value of type (None: an existing box's type)."""
        return Box._open(self, name, type, None, open)

    def vec(self, name, type=None, *, open="create"):
        return Vec._open(self, name, type, None, open)

    def str(self, name, *, open="create"):
        return Str._open(self, name, str_, None, open)

    def deque(self, name, type=None, *, open="create"):
        return Deque._open(self, name, type, None, open)

    def map(self, name, key=None, value=None, *, open="create"):
        return Map._open(self, name, key, value, open)

    def set(self, name, type=None, *, open="create"):
        return Set._open(self, name, type, None, open)

    def ordered_map(self, name, key=None, value=None, *, open="create"):
        return OrderedMap._open(self, name, key, value, open)

    def ordered_set(self, name, type=None, *, open="create"):
        return OrderedSet._open(self, name, type, None, open)

    def open(self, name):
        """Opens the existing container called name, whatever its kind and types."""
        try:
            info = _n.commy_root_find(self._handle(), name)
        except NotSupportedError:
            if not self._remote:
                raise
            # A remote service may not list its roots: ask for each kind in turn.
            for cls in _KINDS.values():
                try:
                    return cls._open(self, name, str_ if cls is Str else None, None, "existing")
                except TypeMismatchError:
                    continue
            raise NotFoundError(_n.COMMY_ENOTFOUND, f"no container called {name!r} in service {self.name!r}")
        cls = _KINDS.get(info.kind)
        if cls is None:
            raise CorruptError(_n.COMMY_ECORRUPT, f"root {name!r} has unknown kind {info.kind}")
        if cls is Str:
            return Str._open(self, name, str_, None, "existing")
        return cls._open(self, name, None, None, "existing")

    # the directory
    def roots(self):
        """[(name, kind, key_type, value_type, len)] for every container, in creation order."""
        h = self._handle()
        out = []
        for i in range(_n.commy_root_count(h)):
            r = _n.commy_root_at(h, i)
            out.append((r.name, _n.commy_kind_name(r.kind), ElementType(r.key_type), ElementType(r.value_type), r.len))
        return out

    def __contains__(self, name):
        try:
            _n.commy_root_find(self._handle(), name)
            return True
        except NotFoundError:
            return False
        except NotSupportedError:
            if not self._remote:
                raise
            try:  # a remote service may not look roots up: open it, whatever its kind
                self.open(name).close()
                return True
            except NotFoundError:
                return False

    def remove(self, name):
        """Removes the container called name and frees its storage."""
        _n.commy_root_remove(self._handle(), name)

    # the heap
    @_contextmanager
    def lock(self, timeout=None):
        """A batch: every commy call this thread makes on this segment inside
        the with block is one atomic change for other processes."""
        ms = 0 if timeout is None else max(1, _timeout_ms(timeout))
        h = self._enter()
        try:
            _n.commy_alloc_lock(self._handle() if h is None else h, ms)
            try:
                yield self
            finally:
                _n.commy_alloc_unlock(h)
        finally:
            self._leave(h)

    def stats(self):
        """The heap's statistics as a dict."""
        s = _n.commy_alloc_stats(self._handle())
        return {k: getattr(s, k) for k in ("file_size", "max_size", "heap_size", "used", "free", "largest_free",
                                             "live_allocs", "free_blocks", "recoveries", "attached")}

    def info(self):
        """The segment's header as a dict."""
        s = _n.commy_alloc_info(self._handle())
        return {k: getattr(s, k) for k in ("layout_major", "layout_minor", "header_size", "flags", "creator_version",
                                             "size", "max_size", "journal_offset", "journal_size", "journal_used",
                                             "heap_offset", "root_offset", "created_ns", "recoveries",
                                             "process_slots", "readonly")}

    def check(self):
        """Walks the whole segment; raises CorruptError naming the first fault."""
        _n.commy_alloc_check(self._handle())

    def shrink_to_fit(self):
        _n.commy_alloc_shrink_to_fit(self._handle())


# ---- containers -------------------------------------------------------------

class _Container(_n.Core):
    """What every container shares: its segment, name, element types, the
    change counter, wait_change and close. The handle (_h), the element
    types (_kt, _vt), close() and the in-use count of blocking calls
    (_enter/_leave) live in the C base (_n.Core), whose per-kind subclasses
    (_n.MapCore, ...) implement the hot operations as C slots."""

    _kind = 0
    _prefix = ""

    def _init(self, seg, name, h, kt, vt):
        self._seg = seg
        self.name = name
        self._bind(self._kind, h, int(kt), int(vt), getattr(seg, "_remote", False))

    @classmethod
    def _open(cls, seg, name, key, value, open):
        flags = Segment._flags(open)
        kt = _etype(key, "type" if cls._kind not in (_n.COMMY_KIND_MAP, _n.COMMY_KIND_OMAP) else "key")
        if kt == ANY:
            flags |= _n.COMMY_OPEN_EXISTING
        p = cls._prefix
        a = seg._handle()
        if cls._kind in (_n.COMMY_KIND_MAP, _n.COMMY_KIND_OMAP):
            vt = _etype(value, "value")
            if (kt == ANY) != (vt == ANY):
                raise TypeError("give both key and value types, or neither to open an existing map")
            h = getattr(_n, f"commy_{p}_open")(a, name, kt, vt, flags)
            kt, vt = getattr(_n, f"commy_{p}_types")(h)
        elif cls._kind == _n.COMMY_KIND_STR:
            h = _n.commy_str_open(a, name, flags)
            vt = ANY
        else:
            h = getattr(_n, f"commy_{p}_open")(a, name, kt, flags)
            kt = getattr(_n, f"commy_{p}_type")(h)
            vt = ANY
        self = cls.__new__(cls)
        self._init(seg, name, h, kt, vt)
        return self

    def __init__(self, *a, **k):
        raise TypeError(f"open a {type(self).__name__} with Segment.{self._prefix or 'str'}(name, ...)")

    @property
    def segment(self):
        return self._seg

    @property
    def key_type(self):
        return ElementType(self._kt)

    @property
    def type(self):
        """The element type (the key type for maps)."""
        return ElementType(self._kt)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<commy.{type(self).__name__} {self.name!r}>"

    @property
    def version(self):
        """The change counter: it moves on every change by any process."""
        return getattr(_n, f"py_{self._prefix}_version")(self._h)

    def wait_change(self, seen=None, timeout=None):
        """Blocks until the version differs from seen (default: the current
        version) or timeout seconds pass (None: forever). Returns True if it
        changed, False on timeout. Releases the GIL while it waits."""
        if seen is None:
            seen = self.version
        ms = _timeout_ms(timeout)
        h = self._enter()
        try:
            return getattr(_n, f"py_{self._prefix}_wait")(h, seen, ms)
        finally:
            self._leave(h)

    def _scan_all(self, what):
        """Every row (what: 0 keys, 1 values, 2 pairs), consistently: under the
        segment lock when writable, else retrying if the container changes."""
        seg = self._seg
        if not seg.readonly and not seg._remote and seg._h is not None and self._h is not None:
            with seg.lock():
                return self._scan_once(what)
        for _ in range(1000):
            try:
                return self._scan_once(what)
            except ConcurrentModificationError:
                continue
        return self._scan_once(what)

    def _scan_once(self, what):
        c = _n.commy_cursor()
        rows = []
        while True:
            batch = _n.py_scan(self._kind, self._h, c, self._kt, self._vt, what, 4096)
            if not batch:
                return rows
            rows.extend(batch)


class Box(_n.BoxCore, _Container):
    """One value of a declared type (.value, in C). Integer boxes have
    lock-free cas and fetch_add."""

    _kind, _prefix = _n.COMMY_KIND_BOX, "box"

    def get(self):
        return _n.py_box_get(self._h, self._kt)

    def set(self, v):
        _n.py_box_set(self._h, self._kt, v)

    def cas(self, expected, desired):
        """Atomically: if the value is expected, store desired. True if it swapped."""
        return _n.py_box_cas(self._h, self._kt, expected, desired)[0]

    def compare_exchange(self, expected, desired):
        """As cas, but returns the value found (the swap happened iff it equals expected)."""
        return _n.py_box_cas(self._h, self._kt, expected, desired)[1]

    def fetch_add(self, delta=1):
        """Atomically adds delta (wrapping at the type's width); returns the previous value."""
        return _n.py_box_fetch_add(self._h, self._kt, delta)


class Vec(_n.VecCore, _Container, MutableSequence):
    """A growable array (a MutableSequence). Vecs of numbers also give a
    zero-copy memoryview of their elements (memoryview()). len, v[i],
    v[i] = x and append are C slots (_n.VecCore)."""

    _kind, _prefix = _n.COMMY_KIND_VEC, "vec"

    def _index(self, i):
        if not isinstance(i, int):
            raise TypeError(f"vec indices must be integers or slices, not {type(i).__name__}")
        if i < 0:
            i += _n.py_vec_len(self._h)
            if i < 0:
                raise IndexError("vec index out of range")
        return i

    # VecCore's v[i] / v[i] = x hand slices and deletions to these two.
    def _get_slice(self, i):
        return [_n.py_vec_get(self._h, self._kt, j) for j in range(*i.indices(len(self)))]

    def _set_item(self, i, v, delete):
        if delete:
            if isinstance(i, slice):
                for j in sorted(range(*i.indices(len(self))), reverse=True):
                    _n.commy_vec_remove(self._h, j)
                return
            _n.commy_vec_remove(self._h, self._index(i))
            return
        if not isinstance(i, slice):
            raise TypeError(f"vec indices must be integers or slices, not {type(i).__name__}")
        items = list(v)
        idx = range(*i.indices(len(self)))
        if len(idx) != len(items):
            raise ValueError("commy.Vec slice assignment must keep the length")
        for j, x in zip(idx, items):
            _n.py_vec_set(self._h, self._kt, j, x)

    def __delitem__(self, i):
        self._set_item(i, None, True)

    def insert(self, i, v):
        n = _n.py_vec_len(self._h)
        if i < 0:
            i = max(0, i + n)
        _n.py_vec_insert(self._h, self._kt, min(i, n), v)

    def extend(self, values):
        _n.py_vec_extend(self._h, self._kt, values)

    def pop(self, i=-1):
        if i == -1:
            return _n.py_vec_pop(self._h, self._kt)
        i = self._index(i)
        v = _n.py_vec_get(self._h, self._kt, i)
        _n.commy_vec_remove(self._h, i)
        return v

    def clear(self):
        _n.py_vec_clear(self._h)

    def __iter__(self):
        return iter(_n.py_vec_list(self._h, self._kt))

    def tolist(self):
        return _n.py_vec_list(self._h, self._kt)

    def reserve(self, n):
        _n.commy_vec_reserve(self._h, n)

    @property
    def capacity(self):
        return _n.commy_vec_capacity(self._h)

    def memoryview(self):
        """A memoryview straight over the elements in the segment (no copy).
        Valid until the vec reallocates (a push past capacity, insert,
        remove, reserve or clear, by any process): take a new one after
        those, or hold Segment.lock() while using it. Read-only if the
        segment is. Raises NotSupportedError for bytes/str vecs."""
        addr, n = _n.commy_vec_data(self._h)
        base = _n.COMMY_T_BLOB if (self._kt & 0xFF) == _n.COMMY_T_BLOB else self._kt
        if base == _n.COMMY_T_BLOB:
            ctype = _ctypes.c_uint8 * (ElementType(self._kt).size * n)
        else:
            ctype = _CTYPES[self._kt] * n
        if addr == 0:
            arr = ctype()
        else:
            arr = ctype.from_address(addr)
        arr._commy_owner = self  # the mapping lives while the vec handle does
        mv = memoryview(arr)
        if mv.ndim == 1 and mv.format not in ("B", "b"):
            mv = mv.cast("B").cast(_STRUCT_CODES[base])
        return mv.toreadonly() if self._seg.readonly else mv


    def __buffer__(self, flags):
        # Python 3.12+ (PEP 688): memoryview(vec) and numpy.frombuffer(vec) directly.
        return self.memoryview()


# memoryview formats numpy and struct understand (ctypes gives '<q' and such).
_STRUCT_CODES = {
    _n.COMMY_T_I8: "b", _n.COMMY_T_I16: "h", _n.COMMY_T_I32: "i", _n.COMMY_T_I64: "q", _n.COMMY_T_U8: "B",
    _n.COMMY_T_U16: "H", _n.COMMY_T_U32: "I", _n.COMMY_T_U64: "Q", _n.COMMY_T_F32: "f", _n.COMMY_T_F64: "d",
    _n.COMMY_T_BOOL: "?", _n.COMMY_T_BLOB: "B",
}


class Str(_Container):
    """One UTF-8 string."""

    _kind, _prefix = _n.COMMY_KIND_STR, "str"

    @property
    def value(self):
        return _n.py_str_get(self._h)

    @value.setter
    def value(self, s):
        _n.py_str_set(self._h, s, 0)

    def set(self, s):
        _n.py_str_set(self._h, s, 0)

    def append(self, s):
        _n.py_str_set(self._h, s, 1)

    def __iadd__(self, s):
        self.append(s)
        return self

    def clear(self):
        _n.py_str_clear(self._h)

    def __len__(self):
        """Length in UTF-8 bytes."""
        return _n.py_str_len(self._h)

    def __str__(self):
        return self.value

    def __eq__(self, other):
        if isinstance(other, Str):
            return self.value == other.value
        if isinstance(other, _builtins.str):
            return self.value == other
        return NotImplemented

    __hash__ = None


class Deque(_n.DequeCore, _Container):
    """A double-ended queue: append, appendleft, pop, popleft, len, iteration."""

    _kind, _prefix = _n.COMMY_KIND_DEQUE, "deque"

    def extend(self, values):
        for v in values:
            _n.py_deque_push(self._h, self._kt, v, 0)

    def pop(self):
        """Removes and returns the last element; EmptyError (an IndexError) if empty."""
        return _n.py_deque_take(self._h, self._kt, 0)

    def popleft(self, timeout=0):
        """Removes and returns the first element. timeout 0 (default): raise
        EmptyError at once if empty; None: wait forever; t: wait t seconds,
        then raise TimeoutError. Waiting releases the GIL."""
        if timeout == 0:
            return _n.py_deque_take(self._h, self._kt, 1)
        ms = _timeout_ms(timeout)
        h = self._enter()
        try:
            return _n.py_deque_pop_wait(h, self._kt, ms)
        finally:
            self._leave(h)

    def _index(self, i):
        if i < 0:
            i += _n.py_deque_len(self._h)
            if i < 0:
                raise IndexError("deque index out of range")
        return i

    def __getitem__(self, i):
        return _n.py_deque_get(self._h, self._kt, self._index(i))

    def __setitem__(self, i, v):
        _n.py_deque_set(self._h, self._kt, self._index(i), v)

    def clear(self):
        _n.py_deque_clear(self._h)

    def tolist(self):
        """A consistent snapshot, front first."""
        def grab():
            out = []
            for i in range(_n.py_deque_len(self._h)):
                out.append(_n.py_deque_get(self._h, self._kt, i))
            return out
        if not self._seg.readonly and not self._seg._remote and self._seg._h is not None and self._h is not None:
            with self._seg.lock():
                return grab()
        while True:
            v = self.version
            try:
                out = grab()
            except RangeError:
                continue
            if self.version == v:
                return out

    def __iter__(self):
        return iter(self.tolist())


class Map(_n.MapCore, _Container, MutableMapping):
    """A hash map (a MutableMapping). m[k], m[k] = v, del m[k], k in m,
    len(m) and get() are C slots (_n.MapCore)."""

    _kind, _prefix = _n.COMMY_KIND_MAP, "map"

    @property
    def value_type(self):
        return ElementType(self._vt)

    def __iter__(self):
        return iter(self._scan_all(0))

    def clear(self):
        _n.py_map_clear(self._h)

    def to_dict(self):
        """A consistent snapshot as a dict."""
        return dict(self._scan_all(2))


class _Ordered:
    """Range queries shared by OrderedMap and OrderedSet."""

    def _bound(self, which, key, what):
        raise NotImplementedError

    def _seek(self, key, inclusive):
        """A cursor at the first key >= key (> key if not inclusive), and the
        bound rows still have to pass: a remote service cannot seek from a
        key, so there the cursor starts at the beginning and rows below the
        bound are skipped."""
        c = _n.commy_cursor()
        if key is None:
            return c, None
        try:
            _n.py_seek(self._kind, self._h, c, self._kt, key, 1 if inclusive else 0)
            return c, None
        except NotSupportedError:
            if not self._seg._remote:
                raise
            return _n.commy_cursor(), (key, inclusive)

    def _irange(self, lo, hi, inclusive, what):
        lo_inc, hi_inc = inclusive
        c, floor = self._seek(lo, lo_inc)
        last = _MISSING
        while True:
            try:
                batch = _n.py_scan(self._kind, self._h, c, self._kt, self._vt, what, 256)
            except ConcurrentModificationError:
                # Resume after the last key we gave out: the order is by key, so nothing repeats.
                c, floor = self._seek(lo, lo_inc) if last is _MISSING else self._seek(last, False)
                continue
            if not batch:
                return
            for row in batch:
                k = row[0] if what == 2 else row
                if floor is not None and (k < floor[0] or (k == floor[0] and not floor[1])):
                    continue
                if hi is not None and (k > hi or (k == hi and not hi_inc)):
                    return
                last = k
                yield row

    def first(self):
        """The smallest entry, or None if empty."""
        return self._bound(0, None)

    def last(self):
        """The largest entry, or None if empty."""
        return self._bound(1, None)

    def lower_bound(self, key):
        """The first entry with key >= key, or None."""
        return self._bound(2, key)

    def upper_bound(self, key):
        """The first entry with key > key, or None."""
        return self._bound(3, key)


class OrderedMap(_Ordered, Map):
    """A MutableMapping in ascending key order, with range queries."""

    _kind, _prefix = _n.COMMY_KIND_OMAP, "omap"

    def _bound(self, which, key):
        return _n.py_omap_bound(self._h, self._kt, self._vt, which, key, 2, None)

    def __iter__(self):
        return self._irange(None, None, (True, True), 0)

    def clear(self):
        _n.py_omap_clear(self._h)

    def irange(self, lo=None, hi=None, inclusive=(True, True)):
        """Keys k with lo <= k <= hi in ascending order (None: unbounded;
        inclusive=(lo_inclusive, hi_inclusive))."""
        return self._irange(lo, hi, inclusive, 0)

    def irange_items(self, lo=None, hi=None, inclusive=(True, True)):
        """(key, value) pairs with lo <= key <= hi, in key order."""
        return self._irange(lo, hi, inclusive, 2)


class Set(_n.SetCore, _Container, MutableSet):
    """A hash set (a MutableSet). add (True if new), discard, v in s and
    len(s) are C slots (_n.SetCore)."""

    _kind, _prefix = _n.COMMY_KIND_SET, "set"

    def remove(self, v):
        if not self._take(v):
            raise KeyError(v)

    def __iter__(self):
        return iter(self._scan_all(0))

    def clear(self):
        _n.py_set_clear(self._h)

    @classmethod
    def _from_iterable(cls, it):
        # Set operators (a | b, a & b) make plain Python sets, not new segment roots.
        return set(it)


class OrderedSet(_Ordered, Set):
    """A MutableSet in ascending order, with range queries."""

    _kind, _prefix = _n.COMMY_KIND_OSET, "oset"

    def _bound(self, which, key):
        return _n.py_oset_bound(self._h, self._kt, which, key, None)

    def __iter__(self):
        return self._irange(None, None, (True, True), 0)

    def clear(self):
        _n.py_oset_clear(self._h)

    def irange(self, lo=None, hi=None, inclusive=(True, True)):
        """Elements lo <= e <= hi in ascending order (None: unbounded)."""
        return self._irange(lo, hi, inclusive, 0)


_KINDS = {
    _n.COMMY_KIND_BOX: Box, _n.COMMY_KIND_VEC: Vec, _n.COMMY_KIND_STR: Str, _n.COMMY_KIND_DEQUE: Deque,
    _n.COMMY_KIND_MAP: Map, _n.COMMY_KIND_SET: Set, _n.COMMY_KIND_OMAP: OrderedMap, _n.COMMY_KIND_OSET: OrderedSet,
}


# ---- sessions with commy-server -----------------------------------------------

import collections as _collections  # noqa: E402
import sys as _sys  # noqa: E402
import weakref as _weakref  # noqa: E402

Change = _collections.namedtuple("Change", "service var version kind value len")
Change.__doc__ = """One change of a subscribed variable, as a callback receives it.

service: the Service; var: the variable (container) name; version: its
change counter after the change; kind: the container kind ("box", "map",
...; None if the server did not say); value: for a box or str the new value
(decoded by its type), else None; len: a collection's length after the
change (1 for a box, the byte length for a str)."""

_MODES = {"local": 1, "remote": 2, "auto": 3}
_KIND_NAMES = {_n.COMMY_KIND_BOX: "box", _n.COMMY_KIND_VEC: "vec", _n.COMMY_KIND_STR: "str",
               _n.COMMY_KIND_DEQUE: "deque", _n.COMMY_KIND_MAP: "map", _n.COMMY_KIND_SET: "set",
               _n.COMMY_KIND_OMAP: "ordered_map", _n.COMMY_KIND_OSET: "ordered_set"}
_sessions = _weakref.WeakSet()


def _have_sessions():
    if not hasattr(_n, "py_session_connect"):
        raise NotSupportedError(getattr(_n, "COMMY_ENOTSUP", -20),
                                "this commy package was built without sessions (libwebsockets, cJSON or OpenSSL "
                                "were missing when it was built); install them and reinstall the package")


class Session(_Blocking):
    """A connection to a commy-server (docs/protocol.md). A context manager;
    close() is idempotent and closes the services opened through it.

        with commy.Session("wss://host:7777", ca_file="ca.pem") as s:
            s.authenticate("acme", "KEYID.SECRET")
            svc = s.open_service("orders")          # mode "auto": local if allowed
            hits = svc.box("hits", commy.i64)        # the same Box as on a Segment
            hits.fetch_add(1)

    url:        "wss://HOST:PORT" ("ws://" only for a server run with --insecure-dev)
    ca_file:    PEM file of the CA that signed the server's certificate (None: the system's)
    cert_file, key_file: a client certificate for mutual TLS
    insecure_skip_verify: accept any server certificate (tests only)
    timeout:    seconds a request waits for its reply (None: the library's 10 s)
    reconnect:  reconnect in the background after a drop (default True), with
                a backoff capped at reconnect_max seconds
    silence_timeout: seconds (whole, rounded up; 1 to 65535) after which a
                server that has sent nothing, not even the answer to a ping,
                is taken for dead: the connection drops (DisconnectedError)
                and the reconnect logic runs. The session pings after half
                of it. None: the library's 30 s

    Subscription callbacks run on one thread of this session (not on the
    network thread and not with any commy call in progress), one at a time
    in the order the server sent the changes; they may call commy."""

    def __init__(self, url, *, ca_file=None, cert_file=None, key_file=None, insecure_skip_verify=False, timeout=None,
                 reconnect=True, reconnect_max=None, silence_timeout=None):
        self._h = None
        self._events = None
        _have_sessions()
        self.url = url
        ms = 0 if timeout is None else max(1, _timeout_ms(timeout))
        rmax = 0 if reconnect_max is None else max(1, _timeout_ms(reconnect_max))
        silence = 0
        if silence_timeout is not None:
            if not silence_timeout > 0:
                raise InvalidArgumentError(_n.COMMY_EINVAL, f"silence_timeout is {silence_timeout!r}; it must be a "
                                           "positive number of seconds (1 to 65535) or None")
            silence = min(-int(-silence_timeout // 1), 2**32 - 1)  # whole seconds, rounded up; C checks the range
        fs = lambda p: None if p is None else _os.fspath(p)  # noqa: E731
        self._services = _weakref.WeakSet()
        self._dispatcher = None
        self._free_on_exit = False
        self._dispatch_lock = _threading.Lock()
        self._h = _n.py_session_connect(url, ms, fs(ca_file), fs(cert_file), fs(key_file), bool(insecure_skip_verify),
                                        bool(reconnect), rmax, silence)
        self._events = _n.py_events_new()
        _sessions.add(self)

    connect = classmethod(lambda cls, url, **options: cls(url, **options))
    connect.__doc__ = "Session.connect(url, **options): the same as Session(url, **options)."

    def _handle(self):
        if self._h is None:
            raise ClosedError(_n.COMMY_ECLOSED, f"session to {self.url!r} is closed")
        return self._h

    def _call(self, fn, *args):
        """A blocking session call (GIL released in C), guarded against close()."""
        h = self._enter()
        if h is None:
            self._handle()
        try:
            return fn(h, *args)
        finally:
            self._leave(h)

    def authenticate(self, tenant, api_key):
        """Authenticates with an API key ("KEYID.SECRET"); AuthError if refused."""
        self._call(_n.commy_session_authenticate, tenant, api_key)
        return self

    def authenticate_token(self, tenant, token):
        """Authenticates with a token of an earlier session; AuthError or ExpiredError if refused."""
        self._call(_n.commy_session_authenticate_token, tenant, token)
        return self

    def authenticate_jwt(self, tenant, jwt):
        """Authenticates with a JWT (compact JWS) for a tenant configured to take
        JWTs; its sub becomes the client id. AuthError or ExpiredError if refused.
        Reconnects use the session token, as after authenticate."""
        self._call(_n.commy_session_authenticate_jwt, tenant, jwt)
        return self

    @property
    def token(self):
        """The session token (a str), for authenticate_token elsewhere."""
        return _n.py_session_token(self._handle())[0]

    @property
    def token_expires(self):
        """When the token expires, in Unix seconds."""
        return _n.py_session_token(self._handle())[1]

    @property
    def client_id(self):
        """The client id the server gave these credentials."""
        return _n.py_session_client_id(self._handle())

    @property
    def connected(self):
        """True while connected (and authenticated), False while reconnecting."""
        return self._h is not None and bool(_n.commy_session_connected(self._h))

    def refresh(self):
        """Replaces the token with a new one; the server revokes the old one."""
        self._call(_n.commy_session_refresh)

    def logout(self):
        """Revokes the token and closes the services on the server."""
        self._call(_n.commy_session_logout)

    def revoke_client(self, client_id):
        """Admin: revokes a client (its sessions close, its token is revoked and
        local services it mapped move to new files). Returns how many service
        files were rotated."""
        return self._call(_n.commy_session_revoke_client, client_id)

    def open_service(self, name, mode="auto"):
        """Opens the tenant's service called name: mode "local" (map the
        service file: shared-memory speed; only on the server's machine),
        "remote" (every call is a request to the server) or "auto" (local
        when allowed). Returns a Service, which opens containers like a Segment."""
        try:
            m = _MODES[mode]
        except KeyError:
            raise ValueError(f"mode must be 'local', 'remote' or 'auto', not {mode!r}") from None
        svc_h = self._call(_n.commy_session_open_service, name, m)
        return Service._make(self, name, svc_h)

    def _dispatch(self):
        q = self._events
        while True:
            ev = _n.py_events_next(q, -1)
            if ev is False:
                if self._free_on_exit:  # the session was closed from a callback (this thread)
                    _n.py_events_free(q)
                return
            if ev is None:
                continue
            fn, svc, var, version, kind, value, n = ev
            try:
                fn(Change(svc, var, version, _KIND_NAMES.get(kind), value, n))
            except BaseException as e:  # a callback's failure must not end the dispatcher
                _sys.unraisablehook(_UnraisableArgs(e, fn))

    def _subscribe(self, svc, svc_h, var, callback):
        with self._dispatch_lock:
            if self._dispatcher is None:
                self._dispatcher = _threading.Thread(target=self._dispatch, name=f"commy-session-events {self.url}",
                                                     daemon=True)
                self._dispatcher.start()
        _n.py_service_subscribe(svc_h, var, self._events, svc, callback)

    # lifecycle
    def close(self):
        """Closes every service opened through this session and the connection."""
        for svc in list(self._services):
            svc.close()
        _Blocking.close(self)

    def _release(self, h):
        _n.commy_session_close(h)  # waits for the network thread: no callback is queued after this
        q, self._events = self._events, None
        if q is not None:
            _n.py_events_stop(q)
            t = self._dispatcher
            if t is not None and t is _threading.current_thread():
                self._free_on_exit = True  # the dispatcher frees it once this callback returns
                return
            if t is not None:
                t.join()
            _n.py_events_free(q)

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return f"<commy.Session {self.url!r}{' closed' if self._h is None else ''}>"


def _close_sessions():
    """At exit: close the sessions still open (their services are released on the server)."""
    for s in list(_sessions):
        try:
            s.close()
        except Exception:
            pass


import atexit as _atexit  # noqa: E402

_atexit.register(_close_sessions)


class _UnraisableArgs:
    """What sys.unraisablehook expects, for an exception a callback raised."""

    def __init__(self, exc, obj):
        self.exc_type, self.exc_value, self.exc_traceback = type(exc), exc, exc.__traceback__
        self.err_msg = "Exception in a commy subscription callback"
        self.object = obj


def connect(url, **options):
    """commy.connect(url, **options): a new Session (see Session)."""
    return Session(url, **options)


class Service(Segment):
    """A service of commy-server opened through a Session: a Segment whose
    containers (box(), map(), ...) are the same Box, Map, ... types, either
    mapped locally (mode "local") or reached through the server ("remote").
    On a remote service, lock(), stats(), info(), check() and
    Vec.memoryview() raise NotSupportedError."""

    def __init__(self, *a, **k):
        raise TypeError("open a Service with Session.open_service(name, mode)")

    @classmethod
    def _make(cls, session, name, svc_h):
        self = cls.__new__(cls)
        self._h = None
        self._svc = svc_h
        self.session = session
        self.name = name
        self.path = f"{session.url}/{name}"
        self.readonly = False
        self.mode = "local" if _n.commy_service_mode(svc_h) == 1 else "remote"
        self._remote = self.mode == "remote"
        try:
            self._h = _n.py_service_alloc(svc_h)
        except BaseException:
            _n.commy_service_close(svc_h)
            raise
        session._services.add(self)
        return self

    def subscribe(self, var, callback):
        """Calls callback(change) (a commy.Change) for every change of the
        container called var, in the order the server saw them, until
        unsubscribe(var). The callback runs on the session's event thread."""
        h = self._enter()
        if h is None:
            self._handle()
        try:
            self.session._subscribe(self, self._svc, var, callback)
        finally:
            self._leave(h)

    def unsubscribe(self, var):
        """Ends the subscription to var (NotFoundError if there is none)."""
        h = self._enter()
        if h is None:
            self._handle()
        try:
            _n.commy_service_unsubscribe(self._svc, var)
        finally:
            self._leave(h)

    def _release(self, h):
        svc, self._svc = self._svc, None
        if svc is not None:
            _n.commy_service_close(svc)  # frees the borrowed alloc h too

    def __repr__(self):
        return f"<commy.Service {self.name!r} ({self.mode}){' closed' if self._h is None else ''}>"
