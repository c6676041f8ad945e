/* commy_box: one value of a declared type.
 *
 * Layout (docs/format.md, "box"): the value lives in the container header's
 * body. A fixed type of up to 8 bytes sits inline in body[0] (its bytes from
 * the low end, the rest zero) and is read and written with atomics, without
 * the segment lock. bytes and str keep a struct commy__var {off, len} in
 * body[0..1]. A blob of more than 8 bytes lives in its own block whose offset
 * is body[0]. */
#include "internal.h"
#include "segment.h" /* the process table's in-flight counts */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct commy_box {
    struct commy__handle h;
};

#define BOX_INLINE 1 /* fixed, <= 8 bytes, in body[0] */
#define BOX_VAR 2    /* bytes / str: struct commy__var in body[0..1] */
#define BOX_BLOB 3   /* blob > 8 bytes: block at body[0] */

static int box_class(commy_type t)
{
    if (commy__is_var(t)) return BOX_VAR;
    return commy_type_size(t) <= 8 ? BOX_INLINE : BOX_BLOB;
}

static int is_int_type(commy_type t)
{
    uint32_t b = COMMY_TYPE_BASE(t);
    return b >= COMMY_T_I8 && b <= COMMY_T_U64;
}

static int int_is_signed(commy_type t) { return COMMY_TYPE_BASE(t) <= COMMY_T_I64; }

/* Inside an operation, 1 if it runs within a batch (commy_alloc_lock). */
static inline int batching(const commy_alloc *a) { return a->depth > 1; }

/* commy__value_store copies a bytes/str value into a fresh block unlogged.
 * Inside a batch that block may be one freed earlier in the batch, whose old
 * bytes a rollback must bring back: there the copy is logged as well. */
static int store(commy_alloc *a, void *slot, commy_type t, const void *val, size_t len, int log)
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

/* --------------------------------------------------------------- kind ops */

static int box_init(commy_alloc *a, struct commy__chdr *c)
{
    /* The block is zeroed: an inline value or an empty var is already zero. */
    if (box_class(c->key_type) != BOX_BLOB) return COMMY_OK;
    uint64_t off;
    int rc = commy__calloc(&off, a, commy_type_size(c->key_type), 16);
    if (rc) return rc;
    c->body[0] = off;
    return COMMY_OK;
}

static int box_destroy(commy_alloc *a, struct commy__chdr *c)
{
    switch (box_class(c->key_type)) {
    case BOX_VAR: return commy__value_free(a, c->body, c->key_type);
    case BOX_BLOB: return commy__free(a, c->body[0]);
    default: return COMMY_OK;
    }
}

static int box_check(commy_alloc *a, const struct commy__chdr *c)
{
    commy_type t = c->key_type;
    switch (box_class(t)) {
    case BOX_VAR:
        if (c->body[2] != 0) break;
        return commy__slot_check(a, c->body, t);
    case BOX_BLOB:
        if (c->body[1] != 0 || c->body[2] != 0) break;
        if (commy__block_size(a, c->body[0]) < commy_type_size(t))
            return commy__err(COMMY_ECORRUPT, "box at offset %" PRIu64 ": its blob block %" PRIu64 " is not a live "
                              "block of %u bytes", commy__off(a, c), c->body[0], commy_type_size(t));
        return COMMY_OK;
    default: {
        uint32_t size = commy_type_size(t);
        uint64_t v = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE);
        if (size < 8 && (v >> (8 * size)) != 0) break;
        if (COMMY_TYPE_BASE(t) == COMMY_T_BOOL && v > 1) break;
        if (c->body[1] != 0 || c->body[2] != 0) break;
        return COMMY_OK;
    }
    }
    return commy__err(COMMY_ECORRUPT, "box at offset %" PRIu64 ": its value area holds bytes its type %s cannot have",
                      commy__off(a, c), commy_type_name((char[32]){0}, 32, t));
}

static uint64_t box_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    switch (box_class(c->key_type)) {
    case BOX_VAR: return c->body[0] ? commy__block_size(a, c->body[0]) : 0;
    case BOX_BLOB: return commy__block_size(a, c->body[0]);
    default: return 0;
    }
}

const struct commy__kind_ops commy__box_ops = {
    .kind = COMMY_KIND_BOX,
    .block_size = sizeof(struct commy__chdr),
    .init = box_init,
    .destroy = box_destroy,
    .check = box_check,
    .bytes = box_bytes,
};

/* ------------------------------------------------------------ the handle */

int commy_box_open(commy_box **out, commy_alloc *a, const char *name, commy_type type, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_box_open: out is NULL");
    *out = NULL;
    COMMY__CHECK_HANDLE(a);
    commy_box *b = calloc(1, sizeof *b);
    if (b == NULL) return commy__err(COMMY_ENOMEM, "commy_box_open: out of memory for the handle");
    int rc = commy__handle_open(&b->h, a, name, COMMY_KIND_BOX, type, 0, flags);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return COMMY_OK;
}

void commy_box_close(commy_box *b)
{
    if (b == NULL) return;
    commy__handle_release(&b->h);
    free(b);
}

int commy_box_type(commy_type *out, commy_box *b)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_box_type: out is NULL");
    COMMY__CHECK_HANDLE(b);
    *out = b->h.ktype;
    return COMMY_OK;
}

int commy_box_version(uint32_t *out, commy_box *b)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_box_version: out is NULL");
    COMMY__CHECK_HANDLE(b);
    return commy__op_version(out, &b->h);
}

int commy_box_wait(commy_box *b, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(b);
    return commy__op_wait(&b->h, seen, timeout_ms);
}

/* ------------------------------------------------------ the unlocked path */

/* 1 if this thread holds the segment lock in a batch: then even an inline
 * value goes through the journal, so the batch's rollback covers it. */
static int in_batch(commy_alloc *a)
{
    return a->depth > 0 && atomic_load_explicit(&a->owned, memory_order_relaxed) &&
           a->owner == commy__me;
}

/* Validates the handle for an unlocked access to an inline value and returns
 * the header. It cannot exclude a concurrent removal of the root, but the
 * mapping never goes away while the handle lives, so that is never a crash. */
static int fast_header(struct commy__chdr **out, commy_box *b, int write)
{
    if (commy__moved(b->h.a)) {
        int rc = commy__handle_follow(&b->h);
        if (rc) return rc;
    }
    commy_alloc *a = b->h.a;
    if (atomic_load_explicit(&a->closed, memory_order_relaxed))
        return commy__err(COMMY_ECLOSED, "box '%s': its segment '%s' is closed", b->h.name, a->path);
    if (write && a->readonly)
        return commy__err(COMMY_EPERM, "box '%s': segment '%s' is open read-only", b->h.name, a->path);
    if (!commy__in_heap(a, b->h.off, sizeof(struct commy__chdr)))
        return commy__err(COMMY_ENOTFOUND, "box '%s' no longer exists (its root was removed)", b->h.name);
    struct commy__chdr *c = commy__at(a, b->h.off);
    if (c->magic != COMMY__CONTAINER_MAGIC || c->instance != b->h.instance || c->kind != COMMY_KIND_BOX)
        return commy__err(COMMY_ENOTFOUND, "box '%s' no longer exists (its root was removed)", b->h.name);
    *out = c;
    return COMMY_OK;
}

/* An unlocked write on a retired segment must not happen (docs/format.md,
 * "Retirement"). A write first counts itself in this process's in-flight
 * slot (when the segment tracks them: a session's, the server's), then reads
 * the mark: the retirer sets the mark, then waits for the counts to drain,
 * so either this write sees the mark or the retirer sees this write
 * counted and copies only after it is done (seq_cst on both sides). A
 * segment that does not track pays one load. */
struct fast_write {
    struct commy__chdr *c;
    _Atomic uint64_t *inflight; /* NULL: not counted */
};

static int fast_write_begin(struct fast_write *w, commy_box *b)
{
    for (;;) {
        int rc = fast_header(&w->c, b, 1);
        if (rc) return rc;
        commy_alloc *a = b->h.a;
        w->inflight = NULL;
        if (__builtin_expect(a->track_inflight, 0) && a->slot >= 0) {
            w->inflight = &a->hdr->procs[a->slot].inflight;
            atomic_fetch_add_explicit(w->inflight, 1, memory_order_seq_cst);
        }
        if (__builtin_expect(atomic_load_explicit(a->retiredw, memory_order_seq_cst) == 0, 1)) return COMMY_OK;
        if (w->inflight) atomic_fetch_sub_explicit(w->inflight, 1, memory_order_release);
        /* Retired: wait for the session's new file and write there (fast_header follows). */
        if ((rc = commy__retired_wait(a)) != COMMY_OK) return rc;
    }
}

/* 1 if an unlocked write on a (fast_header checked) must take the counted
 * way: the segment counts them, or is retired. One load in the usual case. */
static inline int fast_write_counted(const commy_alloc *a)
{
    return __builtin_expect(atomic_load_explicit(a->fast_gate, memory_order_relaxed) != 0, 0);
}

/* The write is done: the retirer may copy it. */
static inline void fast_write_end(const struct fast_write *w)
{
    if (w->inflight) atomic_fetch_sub_explicit(w->inflight, 1, memory_order_release);
}

/* The inline word of a value of type t (val has the type's size). */
static uint64_t to_word(const void *val, uint32_t size)
{
    uint64_t w = 0;
    memcpy(&w, val, size); /* little-endian: the value's bytes from the low end */
    return w;
}

/* Sign- or zero-extends an integer word of type t. */
static int64_t widen(commy_type t, uint64_t w)
{
    uint32_t bits = 8 * commy_type_size(t);
    if (bits == 64) return (int64_t)w;
    w &= (1ull << bits) - 1;
    if (int_is_signed(t) && (w >> (bits - 1))) w |= ~((1ull << bits) - 1);
    return (int64_t)w;
}

/* Truncates v to t's width; ERANGE if it does not fit (u64 takes any bits). */
static int narrow(uint64_t *out, commy_box *b, int64_t v, const char *what)
{
    commy_type t = b->h.ktype;
    uint32_t bits = 8 * commy_type_size(t);
    if (bits == 64) {
        *out = (uint64_t)v;
        return COMMY_OK;
    }
    int fits = int_is_signed(t) ? (v >= -(INT64_C(1) << (bits - 1)) && v < (INT64_C(1) << (bits - 1)))
                                : (v >= 0 && (uint64_t)v < (UINT64_C(1) << bits));
    if (!fits)
        return commy__err(COMMY_ERANGE, "box '%s': %s %" PRId64 " does not fit its type %s", b->h.name, what, v,
                          commy_type_name((char[32]){0}, 32, t));
    *out = (uint64_t)v & ((UINT64_C(1) << bits) - 1);
    return COMMY_OK;
}

static int check_value(commy_box *b, const void *val, size_t len)
{
    if (commy__value_fast_ok(b->h.ktype, val, len)) return COMMY_OK;
    char what[COMMY_ROOT_NAME_MAX + 32];
    snprintf(what, sizeof what, "value for box '%s'", b->h.name);
    if (val == NULL && len > 0) return commy__err(COMMY_EINVAL, "%s is NULL with length %zu", what, len);
    return commy__value_check(b->h.ktype, val, len, what);
}

/* ---------------------------------------------------------------- get, set */

int commy_box_get(commy_box *b, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(b);
    COMMY__REMOTE(&b->h, .op = COMMY__ROP_GET, .out = out, .cap = cap, .out_len = out_len);
    commy_type t = b->h.ktype;
    if (box_class(t) == BOX_INLINE) {
        struct commy__chdr *c;
        int rc = fast_header(&c, b, 0);
        if (rc) return rc;
        uint32_t size = commy_type_size(t);
        if (out_len) *out_len = size;
        if (out == NULL) return COMMY_OK;
        if (cap < size)
            return commy__err(COMMY_ETOOSMALL, "box '%s': the value needs %u bytes, the buffer has %zu", b->h.name,
                              size, cap);
        uint64_t w = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE);
        memcpy(out, &w, size);
        return COMMY_OK;
    }
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&b->h, 0, &sp, &c);
    if (rc) return rc;
    if (box_class(t) == BOX_VAR) {
        rc = commy__value_load(b->h.a, c->body, t, out, cap, out_len);
    } else {
        uint32_t size = commy_type_size(t);
        if (out_len) *out_len = size;
        if (out != NULL && cap < size)
            rc = commy__err(COMMY_ETOOSMALL, "box '%s': the value needs %u bytes, the buffer has %zu", b->h.name,
                            size, cap);
        else if (out != NULL)
            memcpy(out, commy__at(b->h.a, c->body[0]), size);
    }
    return commy__op_end(&b->h, sp, rc, 0);
}

int commy_box_set(commy_box *b, const void *val, size_t len)
{
    COMMY__CHECK_HANDLE(b);
    COMMY__REMOTE(&b->h, .op = COMMY__ROP_SET, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(b, val, len);
    if (rc) return rc;
    commy_alloc *a = b->h.a;
    commy_type t = b->h.ktype;
    if (box_class(t) == BOX_INLINE && !in_batch(a)) {
        struct fast_write w;
        rc = fast_header(&w.c, b, 1);
        if (rc) return rc;
        w.inflight = NULL;
        if (fast_write_counted(b->h.a) && (rc = fast_write_begin(&w, b)) != COMMY_OK) return rc;
        __atomic_store_n(&w.c->body[0], to_word(val, (uint32_t)len), __ATOMIC_RELEASE);
        fast_write_end(&w);
        commy__changed(b->h.a, w.c);
        return COMMY_OK;
    }
    uint64_t sp;
    struct commy__chdr *c;
    rc = commy__op_begin(&b->h, 1, &sp, &c);
    if (rc) return rc;
    switch (box_class(t)) {
    case BOX_INLINE: {
        /* In a batch: other processes may change the word without the lock,
         * so it is swapped atomically and undone only if still ours. */
        uint64_t want = to_word(val, (uint32_t)len), *ent = NULL;
        uint64_t cur = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE);
        do {
            if (ent) ent[1] = cur;
            else rc = commy__log_atomic(&ent, a, &c->body[0], COMMY__UNDO_CAS, want, cur);
        } while (rc == 0 && !__atomic_compare_exchange_n(&c->body[0], &cur, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
        if (rc == 0) ent[2] = 1;
        break;
    }
    case BOX_VAR: {
        /* Store the new bytes first, free the old block last: a block freed
         * earlier in the operation could be handed out again and overwritten
         * without being logged. */
        struct commy__var old;
        memcpy(&old, c->body, sizeof old);
        rc = store(a, c->body, t, val, len, 1);
        if (rc == 0) rc = commy__value_free(a, &old, t);
        break;
    }
    default:
        rc = commy__put(a, commy__at(a, c->body[0]), val, len);
        break;
    }
    return commy__op_end(&b->h, sp, rc, rc == 0);
}

/* ----------------------------------------------------- cas and fetch_add */

static int int_box(commy_box *b, const char *fn)
{
    if (!is_int_type(b->h.ktype))
        return commy__err(COMMY_ENOTSUP, "%s: box '%s' holds %s; compare-and-swap and fetch-add need an integer type",
                          fn, b->h.name, commy_type_name((char[32]){0}, 32, b->h.ktype));
    return COMMY_OK;
}

/* The form of cas/fetch_add inside a batch. Other processes keep updating
 * the word without the lock, so the update is still a compare-and-swap, and
 * its journal entry undoes it logically: a fetch_add by subtracting its delta,
 * a cas by swapping back only if the word still holds what it wrote. A failed
 * batch never takes back another process's update.
 * add != 0: fetch_add(delta); else cas(expected, desired word). */
static int locked_update(int64_t *out, commy_box *b, int add, int64_t delta, int64_t expected, uint64_t desired)
{
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&b->h, 1, &sp, &c);
    if (rc) return rc;
    commy_type t = b->h.ktype;
    uint32_t bits = 8 * commy_type_size(t);
    uint64_t mask = bits == 64 ? ~UINT64_C(0) : (UINT64_C(1) << bits) - 1;
    uint64_t cur = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE), next, *ent = NULL;
    int changed = 0;
    for (;;) {
        if (add) {
            next = (cur + (uint64_t)delta) & mask;
        } else if (widen(t, cur) == expected) {
            next = desired;
        } else {
            break; /* cas found another value: nothing to change */
        }
        if (next == cur) {
            changed = add; /* a fetch_add counts as a change even when it adds 0 */
            break;
        }
        if (ent) {
            ent[0] = add ? (uint64_t)delta & mask : next;
            ent[1] = add ? mask : cur;
        } else if ((rc = commy__log_atomic(&ent, b->h.a, &c->body[0], add ? COMMY__UNDO_ADD : COMMY__UNDO_CAS,
                                            add ? (uint64_t)delta & mask : next, add ? mask : cur)) != 0) {
            break;
        }
        if (__atomic_compare_exchange_n(&c->body[0], &cur, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            ent[2] = 1;
            changed = 1;
            break;
        }
    }
    if (rc == 0 && out) *out = widen(t, cur);
    return commy__op_end(&b->h, sp, rc, changed && rc == 0);
}

/* The unlocked cas of an inline integer box on c. */
static inline void cas_word(int64_t *out, commy_box *b, struct commy__chdr *c, int64_t expected, uint64_t want)
{
    commy_type t = b->h.ktype;
    uint64_t cur = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE);
    for (;;) {
        if (widen(t, cur) != expected) {
            *out = widen(t, cur);
            return;
        }
        if (__atomic_compare_exchange_n(&c->body[0], &cur, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) break;
    }
    *out = expected;
    if (cur != want) commy__changed(b->h.a, c);
}

/* The unlocked fetch_add of an inline integer box on c. */
static inline void fetch_add_word(int64_t *out, commy_box *b, struct commy__chdr *c, int64_t delta)
{
    commy_type t = b->h.ktype;
    uint32_t bits = 8 * commy_type_size(t);
    uint64_t prev;
    if (bits == 64) {
        prev = __atomic_fetch_add(&c->body[0], (uint64_t)delta, __ATOMIC_ACQ_REL);
    } else {
        /* Narrow types wrap at their width, which a plain fetch_add on the
         * word would not do: a CAS loop, still lock-free. */
        uint64_t mask = (UINT64_C(1) << bits) - 1;
        prev = __atomic_load_n(&c->body[0], __ATOMIC_ACQUIRE);
        while (!__atomic_compare_exchange_n(&c->body[0], &prev, (prev + (uint64_t)delta) & mask, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
        }
    }
    if (out) *out = widen(t, prev);
    commy__changed(b->h.a, c);
}

/* cas and fetch_add on a segment that counts its unlocked writes (or is
 * retired): counted, or retried in the new file (fast_write_begin). */
static __attribute__((noinline)) int cas_counted(int64_t *out, commy_box *b, int64_t expected, uint64_t want)
{
    struct fast_write w;
    int rc = fast_write_begin(&w, b);
    if (rc) return rc;
    cas_word(out, b, w.c, expected, want);
    fast_write_end(&w);
    return COMMY_OK;
}

static __attribute__((noinline)) int fetch_add_counted(int64_t *out, commy_box *b, int64_t delta)
{
    struct fast_write w;
    int rc = fast_write_begin(&w, b);
    if (rc) return rc;
    fetch_add_word(out, b, w.c, delta);
    fast_write_end(&w);
    return COMMY_OK;
}

int commy_box_cas(int64_t *out, commy_box *b, int64_t expected, int64_t desired)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_box_cas: out is NULL");
    COMMY__CHECK_HANDLE(b);
    COMMY__REMOTE(&b->h, .op = COMMY__ROP_CAS, .i1 = expected, .i2 = desired, .out_i64 = out);
    int rc = int_box(b, "commy_box_cas");
    if (rc) return rc;
    uint64_t want = 0;
    rc = narrow(&want, b, desired, "desired value");
    if (rc) return rc;
    if (in_batch(b->h.a)) return locked_update(out, b, 0, 0, expected, want);
    struct commy__chdr *c;
    rc = fast_header(&c, b, 1);
    if (rc) return rc;
    if (fast_write_counted(b->h.a)) return cas_counted(out, b, expected, want);
    cas_word(out, b, c, expected, want);
    return COMMY_OK;
}

int commy_box_fetch_add(int64_t *out, commy_box *b, int64_t delta)
{
    COMMY__CHECK_HANDLE(b);
    COMMY__REMOTE(&b->h, .op = COMMY__ROP_FETCH_ADD, .i1 = delta, .out_i64 = out);
    int rc = int_box(b, "commy_box_fetch_add");
    if (rc) return rc;
    if (in_batch(b->h.a)) return locked_update(out, b, 1, delta, 0, 0);
    struct commy__chdr *c;
    rc = fast_header(&c, b, 1);
    if (rc) return rc;
    if (fast_write_counted(b->h.a)) return fetch_add_counted(out, b, delta);
    fetch_add_word(out, b, c, delta);
    return COMMY_OK;
}
