/* commy_set: a hash set, on the map's engine.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_SET_H
#define COMMY_SET_H

#include "alloc.h"
#include "types.h"

typedef struct commy_set commy_set;

COMMY_BEGIN_DECLS

COMMY_API int commy_set_open(commy_set **out, commy_alloc *a, const char *name, commy_type key, uint32_t flags);
COMMY_API int commy_set_type(commy_type *out, commy_set *s);
COMMY_API int commy_set_len(uint64_t *out, commy_set *s);
/* Adds key; *out_added (may be NULL) = 1 if it was new, 0 if present. */
COMMY_API int commy_set_add(int *out_added, commy_set *s, const void *key, size_t klen);
/* Removes key. Errors: COMMY_ENOTFOUND. */
COMMY_API int commy_set_remove(commy_set *s, const void *key, size_t klen);
COMMY_API int commy_set_contains(int *out, commy_set *s, const void *key, size_t klen);
COMMY_API int commy_set_clear(commy_set *s);
/* One iteration step, as commy_map_next. */
COMMY_API int commy_set_next(commy_set *s, commy_cursor *c, void *kout, size_t kcap, size_t *klen);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_set_close(commy_set *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_set_version(uint32_t *out, commy_set *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_set_wait(commy_set *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
