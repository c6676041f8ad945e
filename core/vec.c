/* commy_vec: a growable array of one element type.
 *
 * Layout (docs/format.md, "vec"): body[0] is the offset of the element array
 * (0 while the capacity is 0), body[1] the capacity in elements, body[2] zero;
 * the header's len counts the elements. Element i is the slot of
 * commy__slot_size(elem) bytes at body[0] + i * slot.
 *
 * Crash safety: a slot at an index >= len is unreachable, so filling it needs
 * no journal entry (len is logged). Growth and large shifts build a new array
 * in a fresh block and swap one offset; small shifts log the shifted range.
 * Blocks are freed only at the end of an operation, after every allocation:
 * a block freed earlier could be handed out again and overwritten unlogged. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct commy_vec {
    struct commy__handle h;
};

/* Shifts of up to this many bytes are logged in place; larger ones rebuild. */
#define SHIFT_LOG_MAX 4096u
#define NONE UINT64_MAX

/* Inside a batch (commy_alloc_lock) the journal spans several operations, so
 * "unreachable, no log needed" no longer holds: a slot past len may have been
 * reachable when the batch began, and a fresh block may reuse one freed
 * earlier in the batch. There every such write is logged too. */
static inline int batching(const commy_alloc *a) { return a->depth > 1; }

/* commy__value_store copies a bytes/str value into a fresh block unlogged.
 * Inside a batch that block may be one freed earlier in the batch, whose old
 * bytes a rollback must bring back: there the copy is logged as well. */
static inline int store(commy_alloc *a, void *slot, commy_type t, const void *val, size_t len, int log)
{
    if (!commy__is_var(t)) return commy__store_fixed(a, slot, val, len, log || batching(a));
    if (!batching(a) || !commy__is_var(t) || len == 0)
        return commy__value_store(a, slot, t, val, len, log || batching(a));
    struct commy__var v = {0, (uint64_t)len};
    int rc = commy__alloc(&v.off, a, (uint64_t)len, 8);
    if (rc == 0) rc = commy__log(a, commy__at(a, v.off), len);
    if (rc == 0) memcpy(commy__at(a, v.off), val, len);
    if (rc == 0) rc = commy__put(a, slot, &v, sizeof v);
    return rc;
}

static inline char *slot_at(commy_alloc *a, const struct commy__chdr *c, uint32_t ss, uint64_t i)
{
    return (char *)commy__at(a, c->body[0]) + i * ss;
}

/* --------------------------------------------------------------- kind ops */

static int vec_init(commy_alloc *a, struct commy__chdr *c) { return COMMY_OK; /* empty: all zero */ }

static int vec_destroy(commy_alloc *a, struct commy__chdr *c)
{
    uint32_t ss = commy__slot_size(c->key_type);
    int rc = COMMY_OK;
    if (commy__is_var(c->key_type))
        for (uint64_t i = 0; i < c->len && rc == 0; i++) rc = commy__value_free(a, slot_at(a, c, ss, i), c->key_type);
    if (rc == 0) rc = commy__free(a, c->body[0]);
    return rc;
}

static int vec_check(commy_alloc *a, const struct commy__chdr *c)
{
    uint64_t at = commy__off(a, c);
    uint32_t ss = commy__slot_size(c->key_type);
    uint64_t off = c->body[0], cap = c->body[1];
    if (c->body[2] != 0 || (off == 0) != (cap == 0) || c->len > cap)
        return commy__err(COMMY_ECORRUPT, "vec at offset %" PRIu64 ": length %" PRIu64 ", capacity %" PRIu64
                          " and array %" PRIu64 " do not agree", at, c->len, cap, off);
    if (cap == 0) return COMMY_OK;
    if (ss == 0 || cap > UINT64_MAX / ss || commy__block_size(a, off) < cap * ss)
        return commy__err(COMMY_ECORRUPT, "vec at offset %" PRIu64 ": its array %" PRIu64 " is not a live block of %"
                          PRIu64 " elements", at, off, cap);
    for (uint64_t i = 0; i < c->len; i++) {
        int rc = commy__slot_check(a, slot_at(a, c, ss, i), c->key_type);
        if (rc) return rc;
    }
    return COMMY_OK;
}

static uint64_t vec_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    if (c->body[0] == 0) return 0;
    uint64_t n = commy__block_size(a, c->body[0]);
    if (commy__is_var(c->key_type)) {
        uint32_t ss = commy__slot_size(c->key_type);
        for (uint64_t i = 0; i < c->len; i++) {
            const struct commy__var *v = (const void *)slot_at(a, c, ss, i);
            if (v->off) n += commy__block_size(a, v->off);
        }
    }
    return n;
}

const struct commy__kind_ops commy__vec_ops = {
    .kind = COMMY_KIND_VEC,
    .block_size = sizeof(struct commy__chdr),
    .init = vec_init,
    .destroy = vec_destroy,
    .check = vec_check,
    .bytes = vec_bytes,
};

/* ------------------------------------------------------------ the handle */

int commy_vec_open(commy_vec **out, commy_alloc *a, const char *name, commy_type elem, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_vec_open: out is NULL");
    *out = NULL;
    COMMY__CHECK_HANDLE(a);
    commy_vec *v = calloc(1, sizeof *v);
    if (v == NULL) return commy__err(COMMY_ENOMEM, "commy_vec_open: out of memory for the handle");
    int rc = commy__handle_open(&v->h, a, name, COMMY_KIND_VEC, elem, 0, flags);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    return COMMY_OK;
}

void commy_vec_close(commy_vec *v)
{
    if (v == NULL) return;
    commy__handle_release(&v->h);
    free(v);
}

int commy_vec_type(commy_type *out, commy_vec *v)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_vec_type: out is NULL");
    COMMY__CHECK_HANDLE(v);
    *out = v->h.ktype;
    return COMMY_OK;
}

int commy_vec_version(uint32_t *out, commy_vec *v)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_vec_version: out is NULL");
    COMMY__CHECK_HANDLE(v);
    return commy__op_version(out, &v->h);
}

int commy_vec_wait(commy_vec *v, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(v);
    return commy__op_wait(&v->h, seen, timeout_ms);
}

/* ---------------------------------------------------------------- helpers */

static inline int check_value(commy_vec *v, const void *val, size_t len)
{
    if (commy__value_fast_ok(v->h.ktype, val, len)) return COMMY_OK;
    char what[COMMY_ROOT_NAME_MAX + 32];
    snprintf(what, sizeof what, "element for vec '%s'", v->h.name);
    if (val == NULL && len > 0) return commy__err(COMMY_EINVAL, "%s is NULL with length %zu", what, len);
    return commy__value_check(v->h.ktype, val, len, what);
}

static int out_of_range(commy_vec *v, uint64_t index, uint64_t len)
{
    return commy__err(COMMY_ERANGE, "vec '%s': index %" PRIu64 " is out of range (length %" PRIu64 ")", v->h.name,
                      index, len);
}

static uint64_t grown(uint64_t cap, uint64_t need)
{
    uint64_t n = cap + cap / 2;
    if (n < 4) n = 4;
    return n < need ? need : n;
}

/* Builds a new array of new_cap elements holding the current ones, leaving
 * slot `gap` unwritten (elements from gap on move up one) or leaving out
 * element `skip`, and swaps it in. The old array's offset goes to *old_off
 * for the caller to free last. */
static int rebuild(commy_vec *v, struct commy__chdr *c, uint64_t new_cap, uint64_t gap, uint64_t skip,
                   uint64_t *old_off)
{
    commy_alloc *a = v->h.a;
    uint32_t ss = v->h.kslot;
    if (new_cap > (UINT64_MAX / 4) / ss)
        return commy__err(COMMY_ENOSPC, "vec '%s': %" PRIu64 " elements cannot fit any segment", v->h.name, new_cap);
    int rc;
    if (gap == NONE && skip == NONE && c->body[0] != 0 && new_cap > c->body[1]) {
        /* Growth only: take the free space after the array if there is
         * some. The elements stay put; slots past len are unreachable. */
        rc = commy__extend(a, c->body[0], new_cap * ss);
        if (rc <= 0) {
            *old_off = 0;
            return rc ? rc : commy__put64(a, &c->body[1], new_cap);
        }
    }
    uint64_t off;
    rc = commy__alloc(&off, a, new_cap * ss, 16);
    if (rc) return rc;
    char *dst = commy__at(a, off);
    if (batching(a) && (rc = commy__log(a, dst, new_cap * ss)) != 0) return rc;
    uint64_t len = c->len;
    if (len) {
        const char *src = slot_at(a, c, ss, 0);
        if (gap != NONE) {
            memcpy(dst, src, gap * ss);
            memcpy(dst + (gap + 1) * ss, src + gap * ss, (len - gap) * ss);
        } else if (skip != NONE) {
            memcpy(dst, src, skip * ss);
            memcpy(dst + skip * ss, src + (skip + 1) * ss, (len - skip - 1) * ss);
        } else {
            memcpy(dst, src, len * ss);
        }
    }
    *old_off = c->body[0];
    rc = commy__put64(a, &c->body[0], off);
    if (rc == 0) rc = commy__put64(a, &c->body[1], new_cap);
    return rc;
}

/* ------------------------------------------------------------- operations */

int commy_vec_len(uint64_t *out, commy_vec *v)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_vec_len: out is NULL");
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->len;
    return commy__op_end(&v->h, sp, COMMY_OK, 0);
}

int commy_vec_capacity(uint64_t *out, commy_vec *v)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_vec_capacity: out is NULL");
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_CAPACITY, .out_u64 = out);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->body[1];
    return commy__op_end(&v->h, sp, COMMY_OK, 0);
}

int commy_vec_push(commy_vec *v, const void *val, size_t len)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_PUSH, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(v, val, len);
    if (rc) return rc;
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = v->h.a;
    uint64_t n = c->len;
    if (n == c->body[1]) rc = rebuild(v, c, grown(c->body[1], n + 1), NONE, NONE, &old);
    if (rc == 0) rc = store(a, slot_at(a, c, v->h.kslot, n), v->h.ktype, val, len, batching(a));
    if (rc == 0) rc = commy__put64(a, &c->len, n + 1);
    if (rc == 0) rc = commy__free(a, old);
    return commy__op_end(&v->h, sp, rc, rc == 0);
}

int commy_vec_pop(commy_vec *v, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_POP, .out = out, .cap = cap, .out_len = out_len);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = v->h.a;
    uint64_t n = c->len;
    if (n == 0) return commy__op_end(&v->h, sp, commy__err(COMMY_EEMPTY, "vec '%s' is empty", v->h.name), 0);
    char *slot = slot_at(a, c, v->h.kslot, n - 1);
    rc = commy__value_load_ss(a, slot, v->h.ktype, v->h.kslot, out, cap, out_len);
    if (rc == 0) rc = commy__put64(a, &c->len, n - 1);
    if (rc == 0) rc = commy__value_free(a, slot, v->h.ktype);
    return commy__op_end(&v->h, sp, rc, rc == 0);
}

/* The lock-free read of a fixed-size element (internal.h, "lock-free
 * reads"): 1 with the element in out if it could be read consistently, 0 to
 * take the locked path (which also reports every error). */
static inline int get_fast(commy_vec *v, uint64_t index, void *out)
{
    struct commy__snap s;
    uint32_t ss = v->h.kslot;
    for (int tries = 0; tries < 2; tries++) {
        struct commy__chdr *c = commy__snap_begin(&s, &v->h);
        if (c == NULL) return 0;
        uint64_t len = c->len, arr = c->body[0], n = c->body[1];
        if (index >= len || index >= n || n > UINT64_MAX / 64 || !commy__snap_in_file(s.a, arr, n * (uint64_t)ss))
            return 0;
        char tmp[8];
        commy__copy_small(tmp, (const char *)commy__at(s.a, arr) + index * ss, ss);
        if (commy__snap_valid(&s, &v->h, c)) {
            commy__copy_small(out, tmp, ss);
            return 1;
        }
    }
    return 0;
}

static __attribute__((noinline)) int get_locked(commy_vec *v, uint64_t index, void *out, size_t cap, size_t *out_len);

int commy_vec_get(commy_vec *v, uint64_t index, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_GET, .has_index = 1, .index = index, .out = out, .cap = cap, .out_len = out_len);
    /* The lock-free read first; the locked path (errors, var types) out of
     * line, so the common case saves few registers. */
    if (__builtin_expect(v->h.kslot <= 8 && !commy__is_var(v->h.ktype) &&
                             out != NULL && cap >= v->h.kslot,
                         1) &&
        get_fast(v, index, out)) {
        if (out_len) *out_len = v->h.kslot;
        return COMMY_OK;
    }
    return get_locked(v, index, out, cap, out_len);
}

static int get_locked(commy_vec *v, uint64_t index, void *out, size_t cap, size_t *out_len)
{
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 0, &sp, &c);
    if (rc) return rc;
    if (index >= c->len)
        rc = out_of_range(v, index, c->len);
    else
        rc = commy__value_load_ss(v->h.a, slot_at(v->h.a, c, v->h.kslot, index), v->h.ktype, v->h.kslot, out, cap, out_len);
    return commy__op_end(&v->h, sp, rc, 0);
}

int commy_vec_set(commy_vec *v, uint64_t index, const void *val, size_t len)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_SET, .has_index = 1, .index = index, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(v, val, len);
    if (rc) return rc;
    uint64_t sp;
    struct commy__chdr *c;
    rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    if (index >= c->len) return commy__op_end(&v->h, sp, out_of_range(v, index, c->len), 0);
    commy_alloc *a = v->h.a;
    char *slot = slot_at(a, c, v->h.kslot, index);
    char old[16];
    memcpy(old, slot, commy__is_var(v->h.ktype) ? sizeof(struct commy__var) : 0);
    rc = store(a, slot, v->h.ktype, val, len, 1);
    if (rc == 0) rc = commy__value_free(a, old, v->h.ktype);
    return commy__op_end(&v->h, sp, rc, rc == 0);
}

int commy_vec_insert(commy_vec *v, uint64_t index, const void *val, size_t len)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_INSERT, .has_index = 1, .index = index, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(v, val, len);
    if (rc) return rc;
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    uint64_t n = c->len;
    if (index > n) return commy__op_end(&v->h, sp, out_of_range(v, index, n), 0);
    commy_alloc *a = v->h.a;
    uint32_t ss = v->h.kslot;
    uint64_t shift = (n - index) * ss;
    if (n == c->body[1]) {
        rc = rebuild(v, c, grown(c->body[1], n + 1), index, NONE, &old);
    } else if (shift <= SHIFT_LOG_MAX) {
        char *at = slot_at(a, c, ss, index);
        rc = commy__log(a, at, shift + (batching(a) ? ss : 0)); /* slot n is past len */
        if (rc == 0) memmove(at + ss, at, shift);
    } else {
        rc = rebuild(v, c, c->body[1], index, NONE, &old);
    }
    /* Slot index now is either fresh or logged: store without a new entry. */
    if (rc == 0) rc = store(a, slot_at(a, c, ss, index), v->h.ktype, val, len, 0);
    if (rc == 0) rc = commy__put64(a, &c->len, n + 1);
    if (rc == 0) rc = commy__free(a, old);
    return commy__op_end(&v->h, sp, rc, rc == 0);
}

int commy_vec_remove(commy_vec *v, uint64_t index)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_REMOVE, .has_index = 1, .index = index);
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    uint64_t n = c->len;
    if (index >= n) return commy__op_end(&v->h, sp, out_of_range(v, index, n), 0);
    commy_alloc *a = v->h.a;
    uint32_t ss = v->h.kslot;
    char gone[16];
    memcpy(gone, slot_at(a, c, ss, index), commy__is_var(v->h.ktype) ? sizeof(struct commy__var) : 0);
    uint64_t shift = (n - 1 - index) * ss;
    if (shift <= SHIFT_LOG_MAX) {
        char *at = slot_at(a, c, ss, index);
        rc = commy__log(a, at, shift);
        if (rc == 0) memmove(at, at + ss, shift);
    } else {
        rc = rebuild(v, c, c->body[1], NONE, index, &old);
    }
    if (rc == 0) rc = commy__put64(a, &c->len, n - 1);
    if (rc == 0) rc = commy__value_free(a, gone, v->h.ktype);
    if (rc == 0) rc = commy__free(a, old);
    return commy__op_end(&v->h, sp, rc, rc == 0);
}

int commy_vec_reserve(commy_vec *v, uint64_t want)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_RESERVE, .index = want);
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    int changed = 0;
    if (want > c->body[1]) {
        rc = rebuild(v, c, want, NONE, NONE, &old);
        if (rc == 0) rc = commy__free(v->h.a, old);
        changed = 1;
    }
    return commy__op_end(&v->h, sp, rc, changed && rc == 0);
}

int commy_vec_clear(commy_vec *v)
{
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_CLEAR);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = v->h.a;
    uint64_t arr = c->body[0], n = c->len;
    int changed = arr != 0;
    if (changed) {
        rc = commy__put64(a, &c->len, 0);
        if (rc == 0) rc = commy__put64(a, &c->body[0], 0);
        if (rc == 0) rc = commy__put64(a, &c->body[1], 0);
        /* The old slots are untouched by the writes above: free what they own. */
        if (commy__is_var(v->h.ktype))
            for (uint64_t i = 0; i < n && rc == 0; i++)
                rc = commy__value_free(a, (char *)commy__at(a, arr) + i * v->h.kslot, v->h.ktype);
        if (rc == 0) rc = commy__free(a, arr);
    }
    return commy__op_end(&v->h, sp, rc, changed && rc == 0);
}

int commy_vec_data(void **out, uint64_t *out_len, commy_vec *v)
{
    if (out == NULL || out_len == NULL) return commy__err(COMMY_EINVAL, "commy_vec_data: out or out_len is NULL");
    COMMY__CHECK_HANDLE(v);
    COMMY__REMOTE(&v->h, .op = COMMY__ROP_NONE);
    if (commy__is_var(v->h.ktype))
        return commy__err(COMMY_ENOTSUP, "vec '%s' holds variable-length elements, which are not contiguous; read "
                          "them with commy_vec_get", v->h.name);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&v->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->body[0] ? commy__at(v->h.a, c->body[0]) : NULL;
    *out_len = c->len;
    return commy__op_end(&v->h, sp, COMMY_OK, 0);
}
