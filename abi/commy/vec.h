/* commy_vec: a growable array of one element type.
 * Capacity grows by 1.5x. Elements of fixed-size types are stored contiguously
 * and can be borrowed without copying (commy_vec_data).
 * Values are read with the output convention of every commy getter: out,
 * cap and *out_len. The value's length is stored in *out_len (if out_len is
 * not NULL). If out is NULL the value is not copied; if cap is smaller than
 * the value, nothing is copied or changed and the call returns
 * COMMY_ETOOSMALL with the needed length in *out_len. */
#ifndef COMMY_VEC_H
#define COMMY_VEC_H

#include "alloc.h"
#include "types.h"

typedef struct commy_vec commy_vec;

COMMY_BEGIN_DECLS

/* Opens or creates the vec called name with element type elem. Errors as commy_box_open. */
COMMY_API int commy_vec_open(commy_vec **out, commy_alloc *a, const char *name, commy_type elem, uint32_t flags);
COMMY_API int commy_vec_type(commy_type *out, commy_vec *v);
/* Number of elements. */
COMMY_API int commy_vec_len(uint64_t *out, commy_vec *v);
/* Elements that fit without reallocating. */
COMMY_API int commy_vec_capacity(uint64_t *out, commy_vec *v);
/* Appends an element. Errors: COMMY_EINVAL (length), COMMY_EUTF8, COMMY_ENOSPC (vec unchanged). */
COMMY_API int commy_vec_push(commy_vec *v, const void *val, size_t len);
/* Removes the last element, copying it out first (output convention). Errors: COMMY_EEMPTY. */
COMMY_API int commy_vec_pop(commy_vec *v, void *out, size_t cap, size_t *out_len);
/* Reads element index. Errors: COMMY_ERANGE. */
COMMY_API int commy_vec_get(commy_vec *v, uint64_t index, void *out, size_t cap, size_t *out_len);
/* Replaces element index. Errors: COMMY_ERANGE, COMMY_EINVAL, COMMY_ENOSPC. */
COMMY_API int commy_vec_set(commy_vec *v, uint64_t index, const void *val, size_t len);
/* Inserts before index (index == len appends). O(len). Errors: COMMY_ERANGE, COMMY_ENOSPC. */
COMMY_API int commy_vec_insert(commy_vec *v, uint64_t index, const void *val, size_t len);
/* Removes element index, shifting the rest down. O(len). Errors: COMMY_ERANGE. */
COMMY_API int commy_vec_remove(commy_vec *v, uint64_t index);
/* Makes room for at least n elements in all. Errors: COMMY_ENOSPC. */
COMMY_API int commy_vec_reserve(commy_vec *v, uint64_t n);
/* Removes every element and frees their storage. */
COMMY_API int commy_vec_clear(commy_vec *v);
/* Fixed-size element types only: the address of the first element and the
 * number of elements, without copying. Borrowed and unlocked: valid until the
 * vec reallocates (a push past capacity, insert, remove, reserve, clear, by
 * any process); hold commy_alloc_lock to keep it still.
 * Errors: COMMY_ENOTSUP for bytes and str vecs. */
COMMY_API int commy_vec_data(void **out, uint64_t *out_len, commy_vec *v);

/* Closes the handle. Accepts NULL. Never fails. */
COMMY_API void commy_vec_close(commy_vec *h);

/* The container's change counter: it moves on every change made by any
 * process. Never blocks. */
COMMY_API int commy_vec_version(uint32_t *out, commy_vec *h);

/* Blocks until the container's version differs from seen, or timeout_ms
 * passes (negative: forever; 0: do not wait). Sleeps on a futex in the
 * segment, woken by the writer: no polling.
 * Returns COMMY_OK when it changed, COMMY_ETIMEDOUT otherwise. */
COMMY_API int commy_vec_wait(commy_vec *h, uint32_t seen, int32_t timeout_ms);

COMMY_END_DECLS

#endif
