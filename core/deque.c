/* commy_deque: a double-ended queue on a ring buffer.
 *
 * Layout (docs/format.md, "deque"): body[0] is the offset of the ring (0
 * while the capacity is 0), body[1] the capacity in elements, body[2] the
 * ring index of the front element (< capacity; 0 while the capacity is 0);
 * the header's len counts the elements. Element i (0 is the front) is the
 * slot of commy__slot_size(elem) bytes at ring index (head + i) % capacity.
 *
 * Crash safety: a ring slot outside [head, head + len) is unreachable, so a
 * push fills it without logging and logs only head and len. Growth copies
 * the elements, in order from index 0, into a fresh ring and swaps it in; the
 * old ring is freed last, after every allocation of the operation. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct commy_deque {
    struct commy__handle h;
};

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

static inline char *ring_slot(commy_alloc *a, const struct commy__chdr *c, uint32_t ss, uint64_t i)
{
    uint64_t cap = c->body[1], r = c->body[2] + i;
    if (r >= cap) r -= cap;
    return (char *)commy__at(a, c->body[0]) + r * ss;
}

/* --------------------------------------------------------------- kind ops */

static int deque_init(commy_alloc *a, struct commy__chdr *c) { return COMMY_OK; /* empty: all zero */ }

static int deque_destroy(commy_alloc *a, struct commy__chdr *c)
{
    uint32_t ss = commy__slot_size(c->key_type);
    int rc = COMMY_OK;
    if (commy__is_var(c->key_type))
        for (uint64_t i = 0; i < c->len && rc == 0; i++) rc = commy__value_free(a, ring_slot(a, c, ss, i), c->key_type);
    if (rc == 0) rc = commy__free(a, c->body[0]);
    return rc;
}

static int deque_check(commy_alloc *a, const struct commy__chdr *c)
{
    uint64_t at = commy__off(a, c);
    uint32_t ss = commy__slot_size(c->key_type);
    uint64_t off = c->body[0], cap = c->body[1], head = c->body[2];
    if ((off == 0) != (cap == 0) || c->len > cap || (cap ? head >= cap : head != 0))
        return commy__err(COMMY_ECORRUPT, "deque at offset %" PRIu64 ": length %" PRIu64 ", capacity %" PRIu64
                          ", head %" PRIu64 " and ring %" PRIu64 " do not agree", at, c->len, cap, head, off);
    if (cap == 0) return COMMY_OK;
    if (ss == 0 || cap > UINT64_MAX / ss || commy__block_size(a, off) < cap * ss)
        return commy__err(COMMY_ECORRUPT, "deque at offset %" PRIu64 ": its ring %" PRIu64 " is not a live block of %"
                          PRIu64 " elements", at, off, cap);
    for (uint64_t i = 0; i < c->len; i++) {
        int rc = commy__slot_check(a, ring_slot(a, c, ss, i), c->key_type);
        if (rc) return rc;
    }
    return COMMY_OK;
}

static uint64_t deque_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    if (c->body[0] == 0) return 0;
    uint64_t n = commy__block_size(a, c->body[0]);
    if (commy__is_var(c->key_type)) {
        uint32_t ss = commy__slot_size(c->key_type);
        for (uint64_t i = 0; i < c->len; i++) {
            const struct commy__var *v = (const void *)ring_slot(a, c, ss, i);
            if (v->off) n += commy__block_size(a, v->off);
        }
    }
    return n;
}

const struct commy__kind_ops commy__deque_ops = {
    .kind = COMMY_KIND_DEQUE,
    .block_size = sizeof(struct commy__chdr),
    .init = deque_init,
    .destroy = deque_destroy,
    .check = deque_check,
    .bytes = deque_bytes,
};

/* ------------------------------------------------------------ the handle */

int commy_deque_open(commy_deque **out, commy_alloc *a, const char *name, commy_type elem, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_deque_open: out is NULL");
    *out = NULL;
    COMMY__CHECK_HANDLE(a);
    commy_deque *d = calloc(1, sizeof *d);
    if (d == NULL) return commy__err(COMMY_ENOMEM, "commy_deque_open: out of memory for the handle");
    int rc = commy__handle_open(&d->h, a, name, COMMY_KIND_DEQUE, elem, 0, flags);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return COMMY_OK;
}

void commy_deque_close(commy_deque *d)
{
    if (d == NULL) return;
    commy__handle_release(&d->h);
    free(d);
}

int commy_deque_type(commy_type *out, commy_deque *d)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_deque_type: out is NULL");
    COMMY__CHECK_HANDLE(d);
    *out = d->h.ktype;
    return COMMY_OK;
}

int commy_deque_version(uint32_t *out, commy_deque *d)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_deque_version: out is NULL");
    COMMY__CHECK_HANDLE(d);
    return commy__op_version(out, &d->h);
}

int commy_deque_wait(commy_deque *d, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(d);
    return commy__op_wait(&d->h, seen, timeout_ms);
}

/* ---------------------------------------------------------------- helpers */

static inline int check_value(commy_deque *d, const void *val, size_t len)
{
    if (commy__value_fast_ok(d->h.ktype, val, len)) return COMMY_OK;
    char what[COMMY_ROOT_NAME_MAX + 32];
    snprintf(what, sizeof what, "element for deque '%s'", d->h.name);
    return commy__value_check(d->h.ktype, val, len, what);
}

static int out_of_range(commy_deque *d, uint64_t index, uint64_t len)
{
    return commy__err(COMMY_ERANGE, "deque '%s': index %" PRIu64 " is out of range (length %" PRIu64 ")", d->h.name,
                      index, len);
}

__attribute__((cold, noinline)) static int empty(commy_deque *d) { return commy__err(COMMY_EEMPTY, "deque '%s' is empty", d->h.name); }

/* Makes room for one more element: copies the elements in order into a ring
 * 1.5x as large (at least 4) and swaps it in. The old ring's offset goes to
 * *old_off for the caller to free last. */
static int grow(commy_deque *d, struct commy__chdr *c, uint64_t *old_off)
{
    commy_alloc *a = d->h.a;
    uint32_t ss = d->h.kslot;
    uint64_t cap = c->body[1], len = c->len, head = c->body[2];
    uint64_t ncap = cap + cap / 2;
    if (ncap < 4) ncap = 4;
    if (ncap > (UINT64_MAX / 4) / ss)
        return commy__err(COMMY_ENOSPC, "deque '%s': %" PRIu64 " elements cannot fit any segment", d->h.name, ncap);
    int rc;
    if (head == 0 && cap != 0) {
        /* The ring does not wrap: take the free space after it if there is
         * some. The elements stay put; the new slots are unreachable. */
        rc = commy__extend(a, c->body[0], ncap * ss);
        if (rc <= 0) {
            *old_off = 0;
            return rc ? rc : commy__put64(a, &c->body[1], ncap);
        }
    }
    uint64_t off;
    rc = commy__alloc(&off, a, ncap * ss, 16);
    if (rc) return rc;
    char *dst = commy__at(a, off);
    if (batching(a) && (rc = commy__log(a, dst, ncap * ss)) != 0) return rc;
    if (len) {
        const char *ring = commy__at(a, c->body[0]);
        uint64_t first = cap - head < len ? cap - head : len; /* elements before the wrap */
        memcpy(dst, ring + head * ss, first * ss);
        memcpy(dst + first * ss, ring, (len - first) * ss);
    }
    *old_off = c->body[0];
    rc = commy__put64(a, &c->body[0], off);
    if (rc == 0) rc = commy__put64(a, &c->body[1], ncap);
    if (rc == 0) rc = commy__put64(a, &c->body[2], 0);
    return rc;
}

static int push(commy_deque *d, const void *val, size_t len, int front)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_PUSH, .front = front, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(d, val, len);
    if (rc) return rc;
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    rc = commy__op_begin(&d->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = d->h.a;
    uint64_t n = c->len;
    if (n == c->body[1]) rc = grow(d, c, &old);
    if (rc == 0) {
        uint64_t cap = c->body[1];
        if (front) {
            uint64_t head = c->body[2] == 0 ? cap - 1 : c->body[2] - 1;
            /* The slot before the head is unreachable until head moves to it. */
            rc = store(a, (char *)commy__at(a, c->body[0]) + head * d->h.kslot, d->h.ktype, val, len,
                                   batching(a));
            if (rc == 0) rc = commy__put64(a, &c->body[2], head);
        } else {
            rc = store(a, ring_slot(a, c, d->h.kslot, n), d->h.ktype, val, len, batching(a));
        }
    }
    if (rc == 0) rc = commy__put64(a, &c->len, n + 1);
    if (rc == 0) rc = commy__free(a, old);
    return commy__op_end(&d->h, sp, rc, rc == 0);
}

int commy_deque_push_back(commy_deque *d, const void *val, size_t len) { return push(d, val, len, 0); }
int commy_deque_push_front(commy_deque *d, const void *val, size_t len) { return push(d, val, len, 1); }

static int pop(commy_deque *d, void *out, size_t cap, size_t *out_len, int front)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_POP, .front = front, .out = out, .cap = cap, .out_len = out_len);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = d->h.a;
    uint64_t n = c->len;
    if (n == 0) return commy__op_end(&d->h, sp, empty(d), 0);
    char *slot = ring_slot(a, c, d->h.kslot, front ? 0 : n - 1);
    /* Copy out before changing anything: a short buffer leaves the deque as it was. */
    rc = commy__value_load_ss(a, slot, d->h.ktype, d->h.kslot, out, cap, out_len);
    if (rc == 0 && front) {
        uint64_t head = c->body[2] + 1;
        rc = commy__put64(a, &c->body[2], head == c->body[1] ? 0 : head);
    }
    if (rc == 0) rc = commy__put64(a, &c->len, n - 1);
    if (rc == 0) rc = commy__value_free(a, slot, d->h.ktype);
    return commy__op_end(&d->h, sp, rc, rc == 0);
}

/* The lean path of a pop: a fixed-size element into a buffer large enough
 * (the caller checked both), local segment. Such a pop only moves head (front)
 * and len: it logs those words, copies the slot out and is done; the slot
 * owns nothing to free. The header is validated once, by commy__op_begin.
 * Inside a batch commy__op_begin takes its general path; the rest holds. */
static int pop_fixed(commy_deque *d, void *out, size_t *out_len, int front)
{
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 1, &sp, &c);
    if (__builtin_expect(rc != 0, 0)) return rc;
    commy_alloc *a = d->h.a;
    uint64_t n = c->len;
    if (__builtin_expect(n == 0, 0)) return commy__op_end(&d->h, sp, empty(d), 0);
    uint32_t ss = d->h.kslot;
    uint64_t cap = c->body[1], head = c->body[2];
    uint64_t r = front ? head : head + n - 1;
    if (r >= cap) r -= cap;
    const char *slot = (const char *)commy__at(a, c->body[0]) + r * ss;
    if (ss == 8) memcpy(out, slot, 8);
    else memcpy(out, slot, ss);
    if (front) {
        rc = commy__log2_64(a, &c->body[2], &c->len);
        if (__builtin_expect(rc == 0, 1)) {
            c->body[2] = head + 1 == cap ? 0 : head + 1;
            c->len = n - 1;
        }
    } else {
        rc = commy__put64(a, &c->len, n - 1);
    }
    if (out_len && rc == 0) *out_len = ss;
    return commy__op_end(&d->h, sp, rc, rc == 0);
}

/* 1 if a pop can take pop_fixed. */
static inline int pop_lean(const commy_deque *d, const void *out, size_t cap)
{
    return d != NULL && d->h.a != NULL && d->h.a->remote == NULL && !commy__is_var(d->h.ktype) && out != NULL &&
           cap >= d->h.kslot;
}

int commy_deque_pop_back(commy_deque *d, void *out, size_t cap, size_t *out_len)
{
    if (__builtin_expect(pop_lean(d, out, cap), 1)) return pop_fixed(d, out, out_len, 0);
    return pop(d, out, cap, out_len, 0);
}

int commy_deque_pop_front(commy_deque *d, void *out, size_t cap, size_t *out_len)
{
    if (__builtin_expect(pop_lean(d, out, cap), 1)) return pop_fixed(d, out, out_len, 1);
    return pop(d, out, cap, out_len, 1);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int commy_deque_pop_front_wait(commy_deque *d, void *out, size_t cap, size_t *out_len, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_POP_WAIT, .front = 1, .timeout_ms = timeout_ms, .out = out, .cap = cap, .out_len = out_len);
    uint64_t deadline = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;
    for (;;) {
        /* Read the version before trying: a push after the failed pop moves
         * it, so the wait below cannot miss it. */
        uint32_t seen;
        int rc = commy__op_version(&seen, &d->h);
        if (rc) return rc;
        rc = commy_deque_pop_front(d, out, cap, out_len);
        if (rc != COMMY_EEMPTY) return rc;
        int32_t left = -1;
        if (timeout_ms >= 0) {
            uint64_t now = now_ms();
            left = timeout_ms == 0 || now >= deadline ? 0 : (int32_t)(deadline - now);
        }
        if (left == 0)
            return commy__err(COMMY_ETIMEDOUT, "deque '%s' stayed empty for %" PRId32 " ms", d->h.name, timeout_ms);
        rc = commy__op_wait(&d->h, seen, left);
        if (rc == COMMY_ETIMEDOUT)
            return commy__err(COMMY_ETIMEDOUT, "deque '%s' stayed empty for %" PRId32 " ms", d->h.name, timeout_ms);
        if (rc) return rc;
    }
}

static int peek(commy_deque *d, int front, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_GET, .front = front, .out = out, .cap = cap, .out_len = out_len);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 0, &sp, &c);
    if (rc) return rc;
    if (c->len == 0)
        rc = empty(d);
    else
        rc = commy__value_load_ss(d->h.a, ring_slot(d->h.a, c, d->h.kslot, front ? 0 : c->len - 1), d->h.ktype,
                                  d->h.kslot, out, cap, out_len);
    return commy__op_end(&d->h, sp, rc, 0);
}

int commy_deque_front(commy_deque *d, void *out, size_t cap, size_t *out_len) { return peek(d, 1, out, cap, out_len); }
int commy_deque_back(commy_deque *d, void *out, size_t cap, size_t *out_len) { return peek(d, 0, out, cap, out_len); }

int commy_deque_len(uint64_t *out, commy_deque *d)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_deque_len: out is NULL");
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->len;
    return commy__op_end(&d->h, sp, COMMY_OK, 0);
}

int commy_deque_get(commy_deque *d, uint64_t index, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_GET, .has_index = 1, .index = index, .out = out, .cap = cap, .out_len = out_len);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 0, &sp, &c);
    if (rc) return rc;
    if (index >= c->len)
        rc = out_of_range(d, index, c->len);
    else
        rc = commy__value_load_ss(d->h.a, ring_slot(d->h.a, c, d->h.kslot, index), d->h.ktype, d->h.kslot, out, cap, out_len);
    return commy__op_end(&d->h, sp, rc, 0);
}

int commy_deque_set(commy_deque *d, uint64_t index, const void *val, size_t len)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_SET, .has_index = 1, .index = index, .val = val, .vlen = len, .has_val = 1);
    int rc = check_value(d, val, len);
    if (rc) return rc;
    uint64_t sp;
    struct commy__chdr *c;
    rc = commy__op_begin(&d->h, 1, &sp, &c);
    if (rc) return rc;
    if (index >= c->len) return commy__op_end(&d->h, sp, out_of_range(d, index, c->len), 0);
    commy_alloc *a = d->h.a;
    char *slot = ring_slot(a, c, d->h.kslot, index);
    char old[16];
    memcpy(old, slot, commy__is_var(d->h.ktype) ? sizeof(struct commy__var) : 0);
    rc = store(a, slot, d->h.ktype, val, len, 1);
    if (rc == 0) rc = commy__value_free(a, old, d->h.ktype);
    return commy__op_end(&d->h, sp, rc, rc == 0);
}

int commy_deque_clear(commy_deque *d)
{
    COMMY__CHECK_HANDLE(d);
    COMMY__REMOTE(&d->h, .op = COMMY__ROP_CLEAR);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&d->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = d->h.a;
    struct commy__chdr was = *c;
    int changed = was.body[0] != 0;
    if (changed) {
        rc = commy__put64(a, &c->len, 0);
        if (rc == 0) rc = commy__put64(a, &c->body[0], 0);
        if (rc == 0) rc = commy__put64(a, &c->body[1], 0);
        if (rc == 0) rc = commy__put64(a, &c->body[2], 0);
        /* The ring itself is untouched: free what its slots own through the copy. */
        if (commy__is_var(d->h.ktype))
            for (uint64_t i = 0; i < was.len && rc == 0; i++)
                rc = commy__value_free(a, ring_slot(a, &was, d->h.kslot, i), d->h.ktype);
        if (rc == 0) rc = commy__free(a, was.body[0]);
    }
    return commy__op_end(&d->h, sp, rc, changed && rc == 0);
}
