/* commy_omap: an ordered map on a B+-tree with cache-line-sized nodes.
 * Keys are ordered by the rules of their type (docs/format.md).
 * Iteration: a cursor from commy_omap_seek walks in ascending key order and
 * reports COMMY_ECONCURRENT if the map changes meanwhile.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_OMAP_H
#define COMMY_OMAP_H

#include "alloc.h"
#include "types.h"

typedef struct commy_omap commy_omap;

COMMY_BEGIN_DECLS

COMMY_API int commy_omap_open(commy_omap **out, commy_alloc *a, const char *name, commy_type key, commy_type val, uint32_t flags);
COMMY_API int commy_omap_types(commy_type *out_key, commy_type *out_val, commy_omap *m);
COMMY_API int commy_omap_len(uint64_t *out, commy_omap *m);
COMMY_API int commy_omap_put(commy_omap *m, const void *key, size_t klen, const void *val, size_t vlen);
COMMY_API int commy_omap_get(commy_omap *m, const void *key, size_t klen, void *out, size_t cap, size_t *out_len);
COMMY_API int commy_omap_remove(commy_omap *m, const void *key, size_t klen);
COMMY_API int commy_omap_contains(int *out, commy_omap *m, const void *key, size_t klen);
COMMY_API int commy_omap_clear(commy_omap *m);
/* The entry with the smallest / largest key. Errors: COMMY_EEMPTY. */
COMMY_API int commy_omap_first(commy_omap *m, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen);
COMMY_API int commy_omap_last(commy_omap *m, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen);
/* The first entry with key >= key (lower bound) or key > key (upper bound).
 * Errors: COMMY_ENOTFOUND if there is none. */
COMMY_API int commy_omap_lower_bound(commy_omap *m, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out, void *vout, size_t vcap, size_t *vlen);
COMMY_API int commy_omap_upper_bound(commy_omap *m, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out, void *vout, size_t vcap, size_t *vlen);
/* Positions c before the first entry with key >= key (inclusive != 0) or
 * key > key (inclusive == 0); key NULL positions it before the first entry. */
COMMY_API int commy_omap_seek(commy_cursor *c, commy_omap *m, const void *key, size_t klen, int inclusive);
/* One step in ascending order: COMMY_ROW, COMMY_DONE or a negative error.
 * A cursor from COMMY_CURSOR_INIT starts at the first entry. */
COMMY_API int commy_omap_next(commy_omap *m, commy_cursor *c, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_omap_close(commy_omap *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_omap_version(uint32_t *out, commy_omap *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_omap_wait(commy_omap *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
