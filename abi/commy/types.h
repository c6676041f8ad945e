/* Element types and container kinds, stored in every container's header.
 *
 * Values cross the ABI as bytes in the native (little-endian) representation
 * of their declared type: an i64 is 8 bytes, a bool is 1 byte (0 or 1), a
 * blob of N bytes is exactly N bytes, bytes and str are any length (str must
 * be valid UTF-8). A value of the wrong length is COMMY_EINVAL.
 * Ordering and equality per type are normative in docs/format.md. */
#ifndef COMMY_TYPES_H
#define COMMY_TYPES_H

#include "common.h"

typedef uint32_t commy_type;

/* Base type codes: the low 8 bits of a commy_type. Pinned. */
#define COMMY_T_ANY 0 /* only when opening an existing container: accept its types */
#define COMMY_T_I8 1
#define COMMY_T_I16 2
#define COMMY_T_I32 3
#define COMMY_T_I64 4
#define COMMY_T_U8 5
#define COMMY_T_U16 6
#define COMMY_T_U32 7
#define COMMY_T_U64 8
#define COMMY_T_F32 9
#define COMMY_T_F64 10
#define COMMY_T_BOOL 11
#define COMMY_T_BYTES 12 /* variable-length bytes */
#define COMMY_T_STR 13   /* variable-length UTF-8 */
#define COMMY_T_BLOB 14  /* fixed-size bytes: use COMMY_TYPE_BLOB(n) */

/* A fixed-size blob of n bytes (1 <= n <= 65535). */
#define COMMY_TYPE_BLOB(n) ((commy_type)(COMMY_T_BLOB | ((uint32_t)(n) << 8)))
#define COMMY_TYPE_BASE(t) ((uint32_t)(t) & 0xffu)
#define COMMY_TYPE_BLOB_SIZE(t) ((uint32_t)(t) >> 8)

/* Container kinds. Pinned. */
#define COMMY_KIND_BOX 1
#define COMMY_KIND_VEC 2
#define COMMY_KIND_STR 3
#define COMMY_KIND_DEQUE 4
#define COMMY_KIND_MAP 5
#define COMMY_KIND_SET 6
#define COMMY_KIND_OMAP 7
#define COMMY_KIND_OSET 8

/* Flags for every commy_<kind>_open. */
#define COMMY_OPEN_EXISTING 0x1u /* the root must exist: COMMY_ENOTFOUND otherwise */
#define COMMY_OPEN_EXCL 0x2u     /* the root must not exist: COMMY_EEXISTS otherwise */

/* Result of an iteration step (commy_*_next): an entry was produced. */
#define COMMY_ROW 1
/* Result of an iteration step: no more entries. */
#define COMMY_DONE 0

/* A position in a container, for commy_*_next. Start from COMMY_CURSOR_INIT.
 * A cursor is tied to the container's version when it starts: if the
 * container changes before the cursor finishes, the next step returns
 * COMMY_ECONCURRENT; start again from COMMY_CURSOR_INIT. */
typedef struct commy_cursor {
    uint64_t pos;     /* container-specific position */
    uint64_t aux;     /* container-specific */
    uint32_t version; /* the container's version when the cursor started */
    uint32_t state;   /* 0 = not started, 1 = running, 2 = finished */
} commy_cursor;

#define COMMY_CURSOR_INIT {0, 0, 0, 0}

COMMY_BEGIN_DECLS

/* The size in bytes of a value of type t, or 0 for the variable-length types
 * (bytes, str) and for invalid types. */
COMMY_API uint32_t commy_type_size(commy_type t);

/* 1 if t is a valid element type, 0 if not. */
COMMY_API int commy_type_valid(commy_type t);

/* Writes the type's name ("i64", "str", "blob[16]") into buf (NUL-terminated,
 * truncated to cap) and returns buf. */
COMMY_API const char *commy_type_name(char *buf, size_t cap, commy_type t);

/* The kind's name ("map", "oset", ...), or "unknown". Static; never NULL. */
COMMY_API const char *commy_kind_name(uint32_t kind);

/* Resets a cursor to the start (the same as COMMY_CURSOR_INIT). */
COMMY_API void commy_cursor_reset(commy_cursor *c);

COMMY_END_DECLS

#endif
