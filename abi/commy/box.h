/* commy_box: one value of a declared type.
 * Integer boxes get lock-free compare-and-swap and fetch-add; every value of
 * up to 8 bytes is read and written atomically without the segment lock.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_BOX_H
#define COMMY_BOX_H

#include "alloc.h"
#include "types.h"

typedef struct commy_box commy_box;

COMMY_BEGIN_DECLS

/* Opens the box called name, creating it (holding zero, false or empty) if it
 * does not exist. type COMMY_T_ANY with COMMY_OPEN_EXISTING accepts the
 * stored type. Errors: COMMY_ETYPE (exists as another kind or type), COMMY_EINVAL,
 * COMMY_ENOTFOUND, COMMY_EEXISTS, COMMY_ENOSPC, COMMY_ECLOSED. */
COMMY_API int commy_box_open(commy_box **out, commy_alloc *a, const char *name, commy_type type, uint32_t flags);

/* The declared type. */
COMMY_API int commy_box_type(commy_type *out, commy_box *b);

/* Reads the value (output convention above). */
COMMY_API int commy_box_get(commy_box *b, void *out, size_t cap, size_t *out_len);

/* Replaces the value. Errors: COMMY_EINVAL (wrong length), COMMY_EUTF8, COMMY_ENOSPC. */
COMMY_API int commy_box_set(commy_box *b, const void *val, size_t len);

/* Integer boxes: atomically compares the value with expected and, if equal,
 * stores desired. *out receives the value found (the swap happened iff it
 * equals expected). Values are passed as int64_t: the box's type truncates
 * desired to its width (COMMY_ERANGE if it does not fit) and sign- or
 * zero-extends what it returns (u64 as its two's-complement bits).
 * Errors: COMMY_ENOTSUP for a non-integer box. Lock-free. */
COMMY_API int commy_box_cas(int64_t *out, commy_box *b, int64_t expected, int64_t desired);

/* Integer boxes: atomically adds delta (wrapping at the type's width) and
 * stores the previous value in *out (may be NULL). Lock-free. */
COMMY_API int commy_box_fetch_add(int64_t *out, commy_box *b, int64_t delta);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_box_close(commy_box *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_box_version(uint32_t *out, commy_box *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_box_wait(commy_box *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
