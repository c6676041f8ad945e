/* commy_oset: an ordered set, on the ordered map's engine.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_OSET_H
#define COMMY_OSET_H

#include "alloc.h"
#include "types.h"

typedef struct commy_oset commy_oset;

COMMY_BEGIN_DECLS

COMMY_API int commy_oset_open(commy_oset **out, commy_alloc *a, const char *name, commy_type key, uint32_t flags);
COMMY_API int commy_oset_type(commy_type *out, commy_oset *s);
COMMY_API int commy_oset_len(uint64_t *out, commy_oset *s);
COMMY_API int commy_oset_add(int *out_added, commy_oset *s, const void *key, size_t klen);
COMMY_API int commy_oset_remove(commy_oset *s, const void *key, size_t klen);
COMMY_API int commy_oset_contains(int *out, commy_oset *s, const void *key, size_t klen);
COMMY_API int commy_oset_clear(commy_oset *s);
COMMY_API int commy_oset_first(commy_oset *s, void *kout, size_t kcap, size_t *klen);
COMMY_API int commy_oset_last(commy_oset *s, void *kout, size_t kcap, size_t *klen);
COMMY_API int commy_oset_lower_bound(commy_oset *s, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out);
COMMY_API int commy_oset_upper_bound(commy_oset *s, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out);
COMMY_API int commy_oset_seek(commy_cursor *c, commy_oset *s, const void *key, size_t klen, int inclusive);
COMMY_API int commy_oset_next(commy_oset *s, commy_cursor *c, void *kout, size_t kcap, size_t *klen);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_oset_close(commy_oset *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_oset_version(uint32_t *out, commy_oset *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_oset_wait(commy_oset *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
