/* commy_str: one UTF-8 string. Bytes that are not valid UTF-8 are refused
 * with COMMY_EUTF8 and the string is unchanged.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_STR_H
#define COMMY_STR_H

#include "alloc.h"
#include "types.h"

typedef struct commy_str commy_str;

COMMY_BEGIN_DECLS

/* Opens or creates the string called name (empty when created). */
COMMY_API int commy_str_open(commy_str **out, commy_alloc *a, const char *name, uint32_t flags);
/* Length in bytes. */
COMMY_API int commy_str_len(uint64_t *out, commy_str *s);
/* Replaces the contents. Errors: COMMY_EUTF8, COMMY_ENOSPC. */
COMMY_API int commy_str_set(commy_str *s, const char *utf8, size_t len);
/* Appends. Errors: COMMY_EUTF8, COMMY_ENOSPC. */
COMMY_API int commy_str_append(commy_str *s, const char *utf8, size_t len);
/* Copies the contents out (output convention; a NUL is added when cap > len). */
COMMY_API int commy_str_get(commy_str *s, char *out, size_t cap, size_t *out_len);
/* Borrows the contents without copying (not NUL-terminated). Unlocked and
 * valid until the next change by any process; hold commy_alloc_lock to keep it. */
COMMY_API int commy_str_borrow(const char **out, size_t *out_len, commy_str *s);
/* Empties the string. */
COMMY_API int commy_str_clear(commy_str *s);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_str_close(commy_str *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_str_version(uint32_t *out, commy_str *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_str_wait(commy_str *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
