/* commy.i: the one SWIG interface for every language binding.
 *
 * It wraps the public C ABI (abi/commy.h and abi/commy/*.h) as it is; what
 * differs per language (exceptions, typemaps, fast paths) lives in
 * bindings/python/*.i and bindings/csharp/*.i, pulled in below under
 * SWIGPYTHON / SWIGCSHARP. Ownership rules are in bindings/TYPEMAPS.md.
 * Run swig with -I<repo>/abi -I<repo>/bindings; write the output into a
 * build directory, never into the source tree. */

#if defined(SWIGPYTHON)
/* The extension is commy.native (commy/_native*.so); the package's
 * __init__.py is the idiomatic layer over it. threads="1" lets the blocking
 * calls marked %thread in python/commy_python.i release the GIL. */
%module(package="commy", threads="1") native
#else
%module commy
#endif

%{
#include "commy.h"
%}

%include <stdint.i>

/* The error record is the library's to write: read-only in every language. */
%immutable commy_error::code;
%immutable commy_error::message;

#if defined(SWIGPYTHON)
%include "python/commy_python.i"
#endif

#ifdef SWIGCSHARP
%include "csharp/commy_csharp.i"
#endif

/* The public headers, in dependency order: what they declare is the binding. */
%include "commy/common.h"
%include "commy/version.h"
%include "commy/errors.h"
%include "commy/alloc.h"
%include "commy/types.h"
%include "commy/root.h"
%include "commy/box.h"
%include "commy/vec.h"
%include "commy/str.h"
%include "commy/deque.h"
%include "commy/map.h"
%include "commy/set.h"
%include "commy/omap.h"
%include "commy/oset.h"

#if defined(SWIGPYTHON)
%include "python/commy_python_fast.i"
%include "python/commy_python_types.i"
#endif

/* Sessions with commy-server. A build without the client's dependencies
 * (libwebsockets, cJSON, OpenSSL) defines COMMY_NO_SESSION and leaves them out. */
#ifndef COMMY_NO_SESSION
#if defined(SWIGPYTHON)
%include "python/commy_python_session.i"
#endif
#ifdef SWIGCSHARP
%include "csharp/commy_csharp_session.i"
#endif
%include "commy/session.h"
#endif
