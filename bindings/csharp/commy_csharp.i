/* C# typemaps for the raw ABI (namespace Commy.Interop, internal).
 * Included by ../commy.i before the public headers.
 *
 * The raw layer is a thin, allocation-free P/Invoke surface that the
 * idiomatic library in csharp/Commy builds on (bindings/TYPEMAPS.md):
 *  - handles (commy_alloc *, commy_map *, ...) are IntPtr; the C# layer owns
 *    them through SafeHandles, so a finaliser closes each exactly once;
 *  - every other pointer is an unmanaged C# pointer (void*, byte*, ulong*,
 *    nuint*, NativeCursor*), so a call passes only blittable values: no
 *    marshalling stub work, no pinning, no per-call allocation;
 *  - size_t is nuint (the ABI's width, not SWIG's default uint);
 *  - functions return the C int code unchanged: the C# layer turns a
 *    negative code into the exception for its family right after the call,
 *    on the same thread, so commy_error_last() still describes it. It needs
 *    the raw code because COMMY_ETOOSMALL (retry with the stored length) and
 *    COMMY_ETIMEDOUT (a wait that ran out) are answers there, not failures;
 *  - #define constants are C# compile-time constants (%csconst), so
 *    commy.COMMY_VERSION_NUMBER is the version this binding was generated
 *    against, compared with commy_version_number() when the library loads. */

%csconst(1);

%pragma(csharp) moduleclassmodifiers="internal unsafe class"
%pragma(csharp) imclassclassmodifiers="internal unsafe class"
%typemap(csclassmodifiers) SWIGTYPE, SWIGTYPE *, SWIGTYPE &, SWIGTYPE [] "internal class"

/* The cursor is a plain value the C# side keeps on its stack or in an
 * enumerator: Commy.Interop.NativeCursor mirrors it field for field. */
%ignore commy_cursor;
/* Reserved words are written by commy_alloc_options_init and never read. */
%ignore commy_alloc_options::reserved;

/* A pointer passed through as a C# unmanaged pointer type. */
%define COMMY_CS_PTR(CTYPE, CSTYPE)
%typemap(ctype) CTYPE "void *"
%typemap(imtype) CTYPE "CSTYPE"
%typemap(cstype) CTYPE "CSTYPE"
%typemap(in) CTYPE %{ $1 = ($1_ltype)$input; %}
%typemap(out) CTYPE %{ $result = (void *)$1; %}
%typemap(csin) CTYPE "$csinput"
%typemap(csout, excode=SWIGEXCODE) CTYPE { return $imcall; }
%enddef

/* A value passed through with an explicit C and C# type. */
%define COMMY_CS_VAL(CTYPE, CSTYPE)
%typemap(ctype) CTYPE "CTYPE"
%typemap(imtype) CTYPE "CSTYPE"
%typemap(cstype) CTYPE "CSTYPE"
%typemap(in) CTYPE %{ $1 = ($1_ltype)$input; %}
%typemap(out) CTYPE %{ $result = $1; %}
%typemap(csin) CTYPE "$csinput"
%typemap(csout, excode=SWIGEXCODE) CTYPE { return $imcall; }
%enddef

COMMY_CS_VAL(size_t, nuint)

COMMY_CS_PTR(void *, void*)
COMMY_CS_PTR(const void *, void*)
COMMY_CS_PTR(void **, void**)
COMMY_CS_PTR(int *, int*)
COMMY_CS_PTR(uint32_t *, uint*)
COMMY_CS_PTR(commy_type *, uint*)
COMMY_CS_PTR(int64_t *, long*)
COMMY_CS_PTR(uint64_t *, ulong*)
COMMY_CS_PTR(size_t *, nuint*)
COMMY_CS_PTR(const char **, byte**)
COMMY_CS_PTR(commy_cursor *, Commy.Interop.NativeCursor*)
/* Byte buffers that are not NUL-terminated names: by parameter name, so
 * `const char *path` and `const char *name` stay marshalled strings. */
COMMY_CS_PTR(char *out, byte*)
COMMY_CS_PTR(char *buf, byte*)
COMMY_CS_PTR(const char *utf8, byte*)

/* Opaque handles: IntPtr in, IntPtr* out. */
%define COMMY_CS_HANDLE(T)
COMMY_CS_PTR(T *, global::System.IntPtr)
COMMY_CS_PTR(const T *, global::System.IntPtr)
COMMY_CS_PTR(T **, global::System.IntPtr*)
%enddef

COMMY_CS_HANDLE(commy_alloc)
COMMY_CS_HANDLE(commy_box)
COMMY_CS_HANDLE(commy_vec)
COMMY_CS_HANDLE(commy_str)
COMMY_CS_HANDLE(commy_deque)
COMMY_CS_HANDLE(commy_map)
COMMY_CS_HANDLE(commy_set)
COMMY_CS_HANDLE(commy_omap)
COMMY_CS_HANDLE(commy_oset)
