/* commy_map: a hash map with open addressing, resized as it fills.
 * Keys are compared by the rules of their type (docs/format.md).
 * Iteration: a cursor (commy_map_next) visits every entry once if nothing
 * changes; if the map changes meanwhile it reports COMMY_ECONCURRENT.
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_MAP_H
#define COMMY_MAP_H

#include "alloc.h"
#include "types.h"

typedef struct commy_map commy_map;

COMMY_BEGIN_DECLS

COMMY_API int commy_map_open(commy_map **out, commy_alloc *a, const char *name, commy_type key, commy_type val, uint32_t flags);
COMMY_API int commy_map_types(commy_type *out_key, commy_type *out_val, commy_map *m);
COMMY_API int commy_map_len(uint64_t *out, commy_map *m);
/* Inserts or replaces. Errors: COMMY_EINVAL, COMMY_EUTF8, COMMY_ENOSPC (map unchanged). */
COMMY_API int commy_map_put(commy_map *m, const void *key, size_t klen, const void *val, size_t vlen);
/* Reads the value of key. Errors: COMMY_ENOTFOUND. */
COMMY_API int commy_map_get(commy_map *m, const void *key, size_t klen, void *out, size_t cap, size_t *out_len);
/* Removes key. Errors: COMMY_ENOTFOUND. */
COMMY_API int commy_map_remove(commy_map *m, const void *key, size_t klen);
/* *out = 1 if key is present, 0 if not. */
COMMY_API int commy_map_contains(int *out, commy_map *m, const void *key, size_t klen);
COMMY_API int commy_map_clear(commy_map *m);
/* One iteration step: COMMY_ROW with the next entry copied out, COMMY_DONE
 * at the end, or a negative error (COMMY_ECONCURRENT, COMMY_ETOOSMALL with
 * both lengths stored and the cursor not moved). Order is unspecified. */
COMMY_API int commy_map_next(commy_map *m, commy_cursor *c, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_map_close(commy_map *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_map_version(uint32_t *out, commy_map *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_map_wait(commy_map *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
