/* commy_deque: a double-ended queue on a ring buffer: push and pop at both
 * ends in O(1) (amortised over growth).
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_DEQUE_H
#define COMMY_DEQUE_H

#include "alloc.h"
#include "types.h"

typedef struct commy_deque commy_deque;

COMMY_BEGIN_DECLS

COMMY_API int commy_deque_open(commy_deque **out, commy_alloc *a, const char *name, commy_type elem, uint32_t flags);
COMMY_API int commy_deque_type(commy_type *out, commy_deque *d);
COMMY_API int commy_deque_len(uint64_t *out, commy_deque *d);
/* Adds at the back / front. Errors: COMMY_EINVAL, COMMY_EUTF8, COMMY_ENOSPC. */
COMMY_API int commy_deque_push_back(commy_deque *d, const void *val, size_t len);
COMMY_API int commy_deque_push_front(commy_deque *d, const void *val, size_t len);
/* Removes from the back / front, copying the element out first. Errors: COMMY_EEMPTY. */
COMMY_API int commy_deque_pop_back(commy_deque *d, void *out, size_t cap, size_t *out_len);
COMMY_API int commy_deque_pop_front(commy_deque *d, void *out, size_t cap, size_t *out_len);
/* Like pop_front, but waits up to timeout_ms (negative: forever) for an
 * element, sleeping on the deque's futex. Errors: COMMY_ETIMEDOUT. */
COMMY_API int commy_deque_pop_front_wait(commy_deque *d, void *out, size_t cap, size_t *out_len, int32_t timeout_ms);
/* Reads the first / last element. Errors: COMMY_EEMPTY. */
COMMY_API int commy_deque_front(commy_deque *d, void *out, size_t cap, size_t *out_len);
COMMY_API int commy_deque_back(commy_deque *d, void *out, size_t cap, size_t *out_len);
/* Reads / replaces element index (0 is the front). Errors: COMMY_ERANGE. */
COMMY_API int commy_deque_get(commy_deque *d, uint64_t index, void *out, size_t cap, size_t *out_len);
COMMY_API int commy_deque_set(commy_deque *d, uint64_t index, const void *val, size_t len);
COMMY_API int commy_deque_clear(commy_deque *d);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_deque_close(commy_deque *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_deque_version(uint32_t *out, commy_deque *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_deque_wait(commy_deque *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
