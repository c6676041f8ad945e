/* Internal interface shared by the files of core/. Never installed.
 *
 * How a change to the segment is made crash-safe (docs/format.md, "Journal"):
 * every mutating operation runs between commy__begin and commy__end, under
 * the segment's robust lock. Before it overwrites any byte that is reachable
 * (allocator state, a container header, an element in place), it records the
 * old bytes in the undo journal with commy__log (or writes through
 * commy__put / commy__put64, which log first). Bytes in a block allocated by
 * the same operation need no logging: if the operation is rolled back, the
 * allocation is rolled back too and nothing points at them.
 * commy__end commits (empties the journal) on success and rolls back on
 * failure, so an operation that fails half-way (COMMY_ENOSPC, say) leaves the
 * container unchanged. When a process dies holding the lock, the next one to
 * take it replays the journal backwards before going on.
 *
 * Large in-place rewrites (shifting a big array) must not be logged byte by
 * byte: build the new version in a fresh block and swap one offset. */
#ifndef COMMY_CORE_INTERNAL_H
#define COMMY_CORE_INTERNAL_H

#include "commy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define COMMY__HIDDEN __attribute__((visibility("hidden")))
#define COMMY__UNUSED __attribute__((unused))
/* For the few fast paths every operation runs (begin, end, lock-free reads). */
#define COMMY__INLINE static inline __attribute__((always_inline))

/* ---- errors (error.c) ---- */

/* Records code and a printf-style message as this thread's last error and
 * returns code, so callers can write `return commy__err(COMMY_EINVAL, "...")`. */
int commy__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3))) COMMY__HIDDEN;

/* ---- the segment (segment.c) ---- */

/* The process-local state of an open segment. Core files may read these
 * fields; only segment.c writes them. */
struct commy_alloc {
    char *base;            /* the mapping: max_size bytes reserved, file-backed */
    uint64_t map_size;     /* bytes reserved at base */
    uint64_t size;         /* the file size this process last saw in the header */
    struct commy__header *hdr;
    int fd;
    int readonly;
    int slot;              /* our process-table slot, -1 if none */
    atomic_int refs;       /* the user's reference plus one per open container handle */
    atomic_int closed;     /* set by commy_alloc_close */
    uint32_t stale_after_ms;
    uint32_t lock_timeout_ms;
    /* the lock's process-local recursion state */
    /* the journal, cached at open for the inline append below */
    char *jentries;             /* first entry byte */
    _Atomic uint64_t *jused;    /* the journal head's used counter */
    uint64_t jcap;              /* bytes available for entries */
    /* the header's lock word and recovery counter, for lock-free reads */
    _Atomic uint64_t *lockw;
    _Atomic uint64_t *recov;
    _Atomic uint64_t *hsize;    /* the header's size */
    uint64_t owner;        /* while owned: the holding thread's lock word (commy__me) */
    atomic_int owned;
    int depth;
    int batch_failed;      /* a batch's operation overflowed the journal; rolled back */
    /* Blocks freed by the change in progress. They are returned to the heap
     * only after it commits, so no block freed by a change can be handed out
     * again (and written unlogged) by the same change. */
    uint64_t *pending;
    uint32_t npending, pending_cap;
    /* heartbeat thread */
    pthread_t hb_thread;
    int hb_running;
    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cv;
    uint32_t hb_interval_ms;
    char *path;
    /* A remote service (client/session.c): no mapping at all; every
     * container call is handed to these ops. NULL for a mapped segment. */
    const struct commy__remote_ops *remote;
    void *remote_ctx;
    /* Local mode, after the server rotated the service file: the segment
     * that replaced this one. Handles re-resolve their root there. */
    _Atomic(commy_alloc *) forward;
    atomic_uint forwarded_refs; /* references left here by handles that moved on */
    _Atomic uint32_t forward_seq; /* process-private futex: moves when forward is set */
    /* Retirement (docs/format.md, "Retirement"): the header's mark, cached. */
    _Atomic uint64_t *retiredw;
    /* A write that meets the mark waits up to this long for forward (a
     * session in local mode sets it), then retries there; 0: COMMY_ERETIRED
     * at once. */
    _Atomic uint32_t retire_wait_ms;
    /* Lock-free box writes count themselves in this process's slot
     * (inflight) so that a retirer can wait for the ones in progress. */
    int track_inflight;
    /* The box's unlocked writes go the inline way only while *fast_gate is 0:
     * the header's mark, or a constant 1 when they must count themselves. */
    const _Atomic uint64_t *fast_gate;
};

/* Address of offset off (no check). */
static inline void *commy__at(const commy_alloc *a, uint64_t off) { return a->base + off; }
/* Offset of address p inside the mapping (no check). */
static inline uint64_t commy__off(const commy_alloc *a, const void *p) { return (uint64_t)((const char *)p - a->base); }

/* A container handle keeps its segment mapped: retain on open, release on close. */
void commy__alloc_retain(commy_alloc *a) COMMY__HIDDEN;
void commy__alloc_release(commy_alloc *a) COMMY__HIDDEN;

/* 1 if [off, off+len) lies inside the heap as this process knows it. */
int commy__in_heap(const commy_alloc *a, uint64_t off, uint64_t len) COMMY__HIDDEN;

/* This thread's lock word (segment.c, "The lock"); 0 until its first lock. */
extern _Thread_local uint64_t commy__me COMMY__HIDDEN;

/* The general paths of commy__begin and commy__end (segment.c). */
int commy__begin_slow(commy_alloc *a, int write, uint64_t *sp) COMMY__HIDDEN;
int commy__end_slow(commy_alloc *a, uint64_t sp, int rc) COMMY__HIDDEN;
/* After taking the lock over a non-empty journal: rolls it back, or lets go. */
int commy__begin_recover(commy_alloc *a, int write, uint64_t *sp) COMMY__HIDDEN;
/* After taking the lock for a write on a retired segment: lets go and
 * returns COMMY_ERETIRED. */
int commy__begin_refuse_retired(commy_alloc *a) COMMY__HIDDEN;
/* A write met the retired mark: waits (a->retire_wait_ms) until a has a
 * forward or the mark is cleared, COMMY_OK meaning "retry" (following the
 * forward); COMMY_ERETIRED (or COMMY_ECLOSED) when there is nothing to retry in. */
int commy__retired_wait(commy_alloc *a) COMMY__HIDDEN;
/* The server's side of a rotation (docs/format.md, "Retirement"): with the
 * lock held by this thread, sets the mark, then waits until no process has a
 * lock-free write in flight. COMMY_EBUSY (mark cleared again) if one is
 * still in flight after timeout_ms. */
int commy__alloc_retire(commy_alloc *a, uint32_t timeout_ms) COMMY__HIDDEN;
/* Clears a mark left by a retirer that died before it finished (the server
 * at start, before anyone else has the file). */
void commy__alloc_unretire(commy_alloc *a) COMMY__HIDDEN;
/* Set on a thread that must never wait in commy__retired_wait (a session's
 * network thread: it is the one that would end the wait). */
extern _Thread_local int commy__retire_nowait COMMY__HIDDEN;
/* 1 if the segment is retired. */
int commy__alloc_retired(const commy_alloc *a) COMMY__HIDDEN;
/* Local mode: writes that meet the mark wait up to wait_ms for the session
 * to forward a (0: fail at once, and wake those waiting); lock-free box
 * writes count themselves in flight. */
void commy__alloc_set_rotatable(commy_alloc *a, uint32_t wait_ms) COMMY__HIDDEN;
/* Wakes one thread asleep on the lock word. */
void commy__lock_wake(commy_alloc *a) COMMY__HIDDEN;

/* The header's retired mark, in words after the lock word (segment.h pins
 * it): the lock's pointer, already in a register, reaches it. */
#define COMMY__RETIRED_AFTER_LOCK 7

/* Starts an operation: checks the handle is open (COMMY_ECLOSED), takes the
 * segment lock (recursively for this thread; recovering a dead holder's
 * change), and notices growth by other processes. write != 0 refuses
 * read-only segments with COMMY_EPERM. *sp receives a savepoint.
 * On a read-only segment a read takes no lock.
 * Inline: the uncontended, unnested case is a handful of instructions and
 * one compare-and-swap; everything else is commy__begin_slow. */
COMMY__INLINE int commy__begin(commy_alloc *a, int write, uint64_t *sp)
{
    uint64_t me = commy__me, v = 0;
    if (__builtin_expect(me != 0 && !atomic_load_explicit(&a->closed, memory_order_relaxed) && !a->readonly &&
                             a->remote == NULL && !atomic_load_explicit(&a->owned, memory_order_relaxed),
                         1) &&
        atomic_compare_exchange_strong_explicit(a->lockw, &v, me, memory_order_acquire, memory_order_relaxed)) {
        /* The word's new value must be visible before any byte this change
         * writes: lock-free readers rely on it. Free on x86. */
        atomic_thread_fence(memory_order_release);
        a->owner = me;
        atomic_store_explicit(&a->owned, 1, memory_order_relaxed);
        a->depth = 1;
        a->batch_failed = 0;
        a->npending = 0;
        uint64_t size = atomic_load_explicit(a->hsize, memory_order_acquire);
        if (size <= a->map_size) a->size = size;
        /* A non-empty journal means the previous holder died mid-change. */
        if (__builtin_expect(atomic_load_explicit(a->jused, memory_order_relaxed) != 0, 0))
            return commy__begin_recover(a, write, sp);
        /* A retired segment takes no write (the mark was set under the lock
         * we now hold: a plain load on the lock's own line sees it). */
        if (write && __builtin_expect(atomic_load_explicit(a->lockw + COMMY__RETIRED_AFTER_LOCK, memory_order_relaxed) != 0, 0))
            return commy__begin_refuse_retired(a);
        *sp = 0;
        return COMMY_OK;
    }
    return commy__begin_slow(a, write, sp);
}

/* 1 when commy__end can take its inline path: the outermost successful
 * operation of a writable segment that freed nothing. */
COMMY__INLINE int commy__end_is_fast(const commy_alloc *a, int rc)
{
    return __builtin_expect(rc >= 0 && a->depth == 1 && a->npending == 0 && !a->readonly, 1);
}

/* commy__end's inline path: commits and unlocks. The unlock is a
 * sequentially consistent exchange: commy__op_end relies on it being a full
 * barrier (docs/format.md, "Change notification"). */
COMMY__INLINE void commy__end_fast(commy_alloc *a)
{
    atomic_store_explicit(a->jused, 0, memory_order_release); /* the commit */
    a->depth = 0;
    atomic_store_explicit(&a->owned, 0, memory_order_relaxed);
    if (atomic_exchange_explicit(a->lockw, 0, memory_order_seq_cst) & 0x80000000u) commy__lock_wake(a);
}

/* Ends an operation begun with commy__begin and returns rc. rc >= 0 commits
 * (at the outermost level); rc < 0 rolls the journal back to sp, undoing
 * everything this operation changed. Inline for the outermost successful
 * operation that freed nothing. */
COMMY__INLINE int commy__end(commy_alloc *a, uint64_t sp, int rc)
{
    if (commy__end_is_fast(a, rc)) {
        commy__end_fast(a);
        return rc;
    }
    return commy__end_slow(a, sp, rc);
}

/* The error path of commy__log (journal full): records COMMY_EJOURNAL. */
int commy__log_full(commy_alloc *a) COMMY__HIDDEN;

/* Records the current bytes of [p, p+len) in the journal so a rollback can
 * restore them. p must be inside the mapping. COMMY_EJOURNAL if full.
 * An entry is {u64 offset, u64 length, old bytes padded to 8, u64 entry size}
 * (docs/format.md); inline because every reachable store pays for it. */
COMMY__INLINE int commy__log(commy_alloc *a, const void *p, size_t len)
{
    uint64_t used = atomic_load_explicit(a->jused, memory_order_relaxed);
    uint64_t esize = 24 + ((len + 7) & ~(uint64_t)7);
    if (__builtin_expect(esize > a->jcap - used, 0)) return commy__log_full(a);
    char *e = a->jentries + used;
    uint64_t head[2] = {(uint64_t)((const char *)p - a->base), len};
    memcpy(e, head, 16);
    if (len == 8) {
        memcpy(e + 16, p, 8);
    } else {
        memset(e + 16 + (len & ~(size_t)7), 0, (len & 7) ? 8 : 0);
        memcpy(e + 16, p, len);
    }
    memcpy(e + esize - 8, &esize, 8);
    atomic_store_explicit(a->jused, used + esize, memory_order_release);
    /* The caller's write must not be seen before the entry that undoes it. */
    atomic_thread_fence(memory_order_release);
    return 0;
}

/* commy__log of two 8-byte words at once: the same two entries as two
 * commy__log(a, p, 8) calls, with one room check and one publish. */
COMMY__INLINE int commy__log2_64(commy_alloc *a, const uint64_t *p, const uint64_t *q)
{
    uint64_t used = atomic_load_explicit(a->jused, memory_order_relaxed);
    if (__builtin_expect(64 > a->jcap - used, 0)) return commy__log_full(a);
    /* Each entry: {offset, 8, old word, 32} (commy__log's format). */
    uint64_t po = (uint64_t)((const char *)p - a->base), pv = *p, qo = (uint64_t)((const char *)q - a->base), qv = *q;
    uint64_t *e = (uint64_t *)(void *)(a->jentries + used); /* entries are multiples of 8 from an aligned start */
    e[0] = po, e[1] = 8, e[2] = pv, e[3] = 32;
    e[4] = qo, e[5] = 8, e[6] = qv, e[7] = 32;
    atomic_store_explicit(a->jused, used + 64, memory_order_release);
    /* The caller's writes must not be seen before the entries that undo them. */
    atomic_thread_fence(memory_order_release);
    return 0;
}

/* Logical journal entries, for a word that other processes change without
 * the lock (an integer box). The caller appends the entry, then updates the
 * word with a compare-and-swap, then marks the entry applied (ent[2] = 1).
 * On rollback an applied entry is undone without taking back anyone else's
 * update: COMMY__UNDO_ADD atomically adds -v1 (masked by v2 to the value's
 * width); COMMY__UNDO_CAS sets the word back to v2 only if it still holds v1.
 * *ent points at the entry's {v1, v2, applied}, which the caller may rewrite
 * while it retries (the entry is the journal's last). */
#define COMMY__LOG_ATOMIC (UINT64_C(1) << 63)
#define COMMY__UNDO_ADD 1u
#define COMMY__UNDO_CAS 2u
int commy__log_atomic(uint64_t **ent, commy_alloc *a, uint64_t *word, unsigned op, uint64_t v1, uint64_t v2) COMMY__HIDDEN;

/* Logs then writes. */
int commy__put(commy_alloc *a, void *dst, const void *src, size_t len) COMMY__HIDDEN;
COMMY__INLINE int commy__put64(commy_alloc *a, uint64_t *dst, uint64_t v)
{
    int rc = commy__log(a, dst, 8);
    if (rc == 0) *dst = v;
    return rc;
}
static inline int commy__put32(commy_alloc *a, uint32_t *dst, uint32_t v)
{
    int rc = commy__log(a, dst, 4);
    if (rc == 0) *dst = v;
    return rc;
}

/* Bytes still free in the journal. */
uint64_t commy__journal_room(const commy_alloc *a) COMMY__HIDDEN;

/* ---- the heap (heap.c); call only between commy__begin(write) and commy__end ---- */

/* Allocates size bytes aligned to align (0 = 16), growing the file if needed. */
int commy__alloc(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align) COMMY__HIDDEN;
/* Allocates and zeroes. */
int commy__calloc(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align) COMMY__HIDDEN;
/* Frees a live block when the change commits; COMMY_EBADFREE if off is not
 * one (or was already freed by this change). off 0 is a no-op. */
int commy__free(commy_alloc *a, uint64_t off) COMMY__HIDDEN;
/* Grows the live block at off in place to at least size bytes, taking the
 * free block after it (growing the file if the block is the heap's last).
 * COMMY_OK if done (the block's bytes stay where they are), 1 if it cannot
 * be done in place (nothing changed), < 0 on error. */
int commy__extend(commy_alloc *a, uint64_t off, uint64_t size) COMMY__HIDDEN;
/* Usable bytes of the live block at off; 0 if off is not a live block. */
uint64_t commy__block_size(const commy_alloc *a, uint64_t off) COMMY__HIDDEN;

/* ---- element types (types.c) ---- */

/* Bytes a value of type t takes in a container slot: its size for fixed
 * types, 16 for bytes and str (struct commy__var). */
uint32_t commy__slot_size(commy_type t) COMMY__HIDDEN;
/* 1 for bytes and str. */
static inline int commy__is_var(commy_type t)
{
    return COMMY_TYPE_BASE(t) == COMMY_T_BYTES || COMMY_TYPE_BASE(t) == COMMY_T_STR;
}

/* A variable-length value in a slot: its bytes live in their own block. */
struct commy__var {
    uint64_t off; /* block holding the bytes; 0 when len == 0 */
    uint64_t len;
};

/* Checks that (val, len) is a valid value of type t: the length of a fixed
 * type, UTF-8 for str, 0 or 1 for bool. COMMY_EINVAL / COMMY_EUTF8 with a
 * message naming what (e.g. "key", "value") and the container's name. */
int commy__value_check(commy_type t, const void *val, size_t len, const char *what) COMMY__HIDDEN;

/* The common case of commy__value_check, inline and without building a
 * message: a fixed-size, non-bool value of the right length. 0 means "check
 * it the slow way" (it may still be valid). */
COMMY__INLINE int commy__value_fast_ok(commy_type t, const void *val, size_t len)
{
    uint32_t b = COMMY_TYPE_BASE(t);
    if (val == NULL || b == COMMY_T_BOOL || b == COMMY_T_BYTES || b == COMMY_T_STR || b == COMMY_T_BLOB || b == 0 ||
        b > COMMY_T_BLOB)
        return 0;
    static const uint8_t sizes[] = {0, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
    return len == sizes[b];
}

/* memcpy of a fixed slot of n <= 8 bytes without a call for the usual sizes. */
COMMY__INLINE void commy__copy_small(void *dst, const void *src, uint32_t n)
{
    switch (n) {
    case 8: memcpy(dst, src, 8); break;
    case 4: memcpy(dst, src, 4); break;
    case 2: memcpy(dst, src, 2); break;
    case 1: memcpy(dst, src, 1); break;
    default: memcpy(dst, src, n); break;
    }
}

/* Copies a key into canonical form for storing, hashing and comparing:
 * floats have -0.0 made +0.0 and every NaN made the quiet NaN. buf must hold
 * 8 bytes; returns val itself for every other type. */
const void *commy__key_canon(commy_type t, const void *val, size_t len, void *buf) COMMY__HIDDEN;

/* Stores (val, len) into slot. For bytes/str allocates a block for the bytes.
 * log != 0: the slot is reachable: log it before writing. The previous
 * contents of the slot are not freed (see commy__value_free). */
int commy__value_store(commy_alloc *a, void *slot, commy_type t, const void *val, size_t len, int log) COMMY__HIDDEN;

/* commy__value_store for a fixed type whose length the caller has checked
 * (len is the slot size), without a call. */
COMMY__INLINE int commy__store_fixed(commy_alloc *a, void *slot, const void *val, size_t len, int log)
{
    if (log) {
        int rc = commy__log(a, slot, len);
        if (rc) return rc;
    }
    if (len == 8) memcpy(slot, val, 8);
    else memcpy(slot, val, len);
    return 0;
}

/* Frees what a slot owns (the block of a bytes/str value). No-op otherwise. */
int commy__value_free(commy_alloc *a, const void *slot, commy_type t) COMMY__HIDDEN;

/* Copies a slot's value out with the output convention (out, cap, out_len). */
int commy__value_load(commy_alloc *a, const void *slot, commy_type t, void *out, size_t cap, size_t *out_len) COMMY__HIDDEN;

/* commy__value_load with the common case inline: a fixed type of ss bytes
 * into a buffer large enough. */
COMMY__INLINE int commy__value_load_ss(commy_alloc *a, const void *slot, commy_type t, uint32_t ss, void *out, size_t cap,
                                       size_t *out_len)
{
    if (!commy__is_var(t) && out != NULL && cap >= ss) {
        if (ss == 8) memcpy(out, slot, 8);
        else memcpy(out, slot, ss);
        if (out_len) *out_len = ss;
        return 0;
    }
    return commy__value_load(a, slot, t, out, cap, out_len);
}

/* Length and address of a slot's value bytes (borrowed). */
const void *commy__value_bytes(const commy_alloc *a, const void *slot, commy_type t, size_t *len) COMMY__HIDDEN;

/* Orders a stored slot against a canonical probe (val, len): <0, 0, >0. */
int commy__value_cmp(const commy_alloc *a, const void *slot, commy_type t, const void *val, size_t len) COMMY__HIDDEN;
/* Orders two stored slots. */
int commy__slot_cmp(const commy_alloc *a, const void *x, const void *y, commy_type t) COMMY__HIDDEN;

/* Hash of a canonical value (the same in every process and language). */
uint64_t commy__value_hash(commy_type t, const void *val, size_t len, uint64_t seed) COMMY__HIDDEN;
/* Hash of a stored slot's value. */
uint64_t commy__slot_hash(const commy_alloc *a, const void *slot, commy_type t, uint64_t seed) COMMY__HIDDEN;

/* Validates a stored slot during consistency checks (var blocks live and long enough). */
int commy__slot_check(const commy_alloc *a, const void *slot, commy_type t) COMMY__HIDDEN;

/* ---- containers (container.c) ---- */

#define COMMY__CONTAINER_MAGIC 0x43594d43u /* "CMYC" */

/* The first 64 bytes of every container's block (docs/format.md). */
struct commy__chdr {
    uint32_t magic;        /* COMMY__CONTAINER_MAGIC */
    uint8_t kind;          /* COMMY_KIND_* */
    uint8_t layout_major;  /* the container's layout version */
    uint8_t layout_minor;
    uint8_t reserved0;
    uint32_t key_type;     /* element type (or key type for maps) */
    uint32_t val_type;     /* value type for maps, 0 otherwise */
    _Atomic uint32_t version; /* change counter (waiters sleep on their wait-table bucket, not here) */
    uint32_t reserved1;       /* 0; once the waiter count, now in the segment's wait table */
    uint64_t len;          /* elements */
    uint64_t instance;     /* random at creation: a handle checks it still names this container */
    uint64_t body[3];      /* kind-specific (offsets of arrays, capacities, seed, ...) */
};
_Static_assert(sizeof(struct commy__chdr) == 64, "container header is 64 bytes");

/* What every container handle starts with. */
struct commy__handle {
    commy_alloc *a;        /* holds a reference */
    uint64_t off;          /* the container's block (its struct commy__chdr) */
    uint64_t instance;
    uint32_t kind;
    commy_type ktype, vtype;
    uint32_t kslot, vslot; /* commy__slot_size of each */
    uint32_t voff, stride; /* map and set: a table slot's value offset and size (hashtab.c) */
    int fast8;             /* map and set: an 8-byte number key and a fixed value of <= 8 bytes */
    char name[COMMY_ROOT_NAME_MAX + 1];
};

/* Per-kind hooks, registered in container.c's table. */
struct commy__kind_ops {
    uint32_t kind;
    uint64_t block_size; /* bytes of the container's block (>= 64) */
    /* Fills the kind-specific part of a new, zeroed block (header is set by the caller). */
    int (*init)(commy_alloc *a, struct commy__chdr *c);
    /* Frees everything the container owns except its own block. */
    int (*destroy)(commy_alloc *a, struct commy__chdr *c);
    /* Consistency check for commy_alloc_check. */
    int (*check)(commy_alloc *a, const struct commy__chdr *c);
    /* Heap bytes owned besides the container's block. */
    uint64_t (*bytes)(commy_alloc *a, const struct commy__chdr *c);
};

/* Opens or creates the root `name` of kind with types (kt, vt) into h
 * (zeroed by the caller) and takes a reference on a. */
int commy__handle_open(struct commy__handle *h, commy_alloc *a, const char *name, uint32_t kind, commy_type kt,
                       commy_type vt, uint32_t flags) COMMY__HIDDEN;
/* Drops h's reference on its segment. */
void commy__handle_release(struct commy__handle *h) COMMY__HIDDEN;

int commy__op_begin_slow(struct commy__handle *h, int write, uint64_t *sp, struct commy__chdr **out) COMMY__HIDDEN;
/* Ends the operation with COMMY_ENOTFOUND: h's container was removed. */
int commy__op_removed(struct commy__handle *h, uint64_t sp) COMMY__HIDDEN;

/* Begins an operation on h's container: commy__begin, then checks the
 * container still exists. *out receives its header. */
COMMY__INLINE int commy__op_begin(struct commy__handle *h, int write, uint64_t *sp, struct commy__chdr **out)
{
    /* Closed, or moved to a rotated file (the slow path follows it). */
    if (__builtin_expect(h == NULL || h->a == NULL || atomic_load_explicit(&h->a->closed, memory_order_relaxed) ||
                             atomic_load_explicit(&h->a->forward, memory_order_acquire) != NULL,
                         0))
        return commy__op_begin_slow(h, write, sp, out);
    commy_alloc *a = h->a;
    int rc = commy__begin(a, write, sp);
    /* A retired segment: the slow path waits for the new file and retries. */
    if (__builtin_expect(rc != 0, 0)) return rc == COMMY_ERETIRED ? commy__op_begin_slow(h, write, sp, out) : rc;
    /* The offset was inside the heap when the handle opened and the heap's
     * start never moves: only the end (the file may have shrunk) needs a check. */
    struct commy__chdr *c = commy__at(a, h->off);
    if (__builtin_expect(h->off > a->size - sizeof(struct commy__chdr) || c->magic != COMMY__CONTAINER_MAGIC ||
                             c->kind != h->kind || c->instance != h->instance,
                         0))
        return commy__op_removed(h, *sp);
    *out = c;
    return COMMY_OK;
}

/* ---- change notification: the wait table (docs/format.md, "Change notification") ----
 * Waiters do not count themselves in the container's header (a removed
 * container's block is freed and may be reused at once) but in a bucket of
 * a fixed table in the segment header, which is never freed: 40 buckets of
 * {u32 seq, u32 waiters} at header offset 192, chosen by a hash of the
 * container's offset. A waiter sleeps on its bucket's seq word. */
#define COMMY__WAIT_OFF 192u
#define COMMY__WAIT_BUCKETS 40u

struct commy__wait_bucket {
    _Atomic uint32_t seq;     /* futex word: moved by every writer that found waiters */
    _Atomic uint32_t waiters; /* threads registered in a wait on a container of this bucket */
};

/* The bucket of the container whose block is at off. */
static inline struct commy__wait_bucket *commy__wait_bucket_of(const commy_alloc *a, uint64_t off)
{
    uint64_t x = (off >> 6) * UINT64_C(0x9E3779B97F4A7C15);
    uint32_t i = (uint32_t)(((x >> 32) * COMMY__WAIT_BUCKETS) >> 32);
    return (struct commy__wait_bucket *)(void *)(a->base + COMMY__WAIT_OFF) + i;
}

/* Moves the bucket's seq and wakes everyone asleep on it (container.c). */
void commy__wake_bucket(struct commy__wait_bucket *b) COMMY__HIDDEN;
/* Wakes every bucket that has waiters, after the caller published
 * something waiters check (a's forward): see commy__alloc_forward. */
void commy__wake_all(commy_alloc *a) COMMY__HIDDEN;

/* The writer's half of the pairing, after it moved the version of the
 * container at off with a sequentially consistent operation (or a full
 * barrier since): wakes the bucket if anyone is registered in it. */
COMMY__INLINE void commy__notify(commy_alloc *a, uint64_t off)
{
    struct commy__wait_bucket *b = commy__wait_bucket_of(a, off);
    if (__builtin_expect(atomic_load_explicit(&b->waiters, memory_order_seq_cst) != 0, 0)) commy__wake_bucket(b);
}

/* After a locked instruction that is a full barrier on this machine (the
 * unlock's exchange): what a sequentially consistent fence adds there. On
 * x86-64 every locked instruction already drains the store buffer, so only
 * the compiler needs telling; elsewhere a real fence. */
#if defined(__x86_64__) || defined(__i386__)
#define COMMY__FENCE_AFTER_XCHG() atomic_signal_fence(memory_order_seq_cst)
#else
#define COMMY__FENCE_AFTER_XCHG() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Ends it: on success of a write that changed something (changed != 0)
 * bumps the version, then commy__end, then wakes waiters. Returns rc. */
COMMY__INLINE int commy__op_end(struct commy__handle *h, uint64_t sp, int rc, int changed)
{
    commy_alloc *a = h->a;
    /* A failed change that wrote something moves the version too: lock-free
     * readers may have seen the bytes its rollback takes back. */
    if (__builtin_expect(!((rc >= 0 && changed) || (rc < 0 && !a->readonly &&
                                                    atomic_load_explicit(a->jused, memory_order_relaxed) >
                                                        (sp & 0xffffffffu))),
                         0))
        return commy__end(a, sp, rc);
    uint64_t off = h->off;
    struct commy__chdr *c = commy__at(a, off);
    if (h->kind == COMMY_KIND_BOX) {
        /* An inline box's version also moves without the lock. */
        atomic_fetch_add_explicit(&c->version, 1, memory_order_seq_cst);
    } else {
        /* Every other kind's version moves only under the lock we hold: a
         * plain store, ordered before the waiter-count load below by the
         * unlock's exchange (or the fence), saves a locked instruction. */
        atomic_store_explicit(&c->version, atomic_load_explicit(&c->version, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    if (commy__end_is_fast(a, rc)) {
        commy__end_fast(a);
        COMMY__FENCE_AFTER_XCHG();
    } else {
        rc = commy__end_slow(a, sp, rc); /* may keep the lock (a batch) */
        atomic_thread_fence(memory_order_seq_cst);
    }
    /* After unlocking, so a woken process does not run straight into our
     * lock. The bucket is never freed: no header is touched here. */
    commy__notify(a, off);
    return rc;
}

/* The version counter and the wait, for every kind's _version and _wait. */
int commy__op_version(uint32_t *out, struct commy__handle *h) COMMY__HIDDEN;
int commy__op_wait(struct commy__handle *h, uint32_t seen, int32_t timeout_ms) COMMY__HIDDEN;

/* Bumps the version of a's container c and wakes its waiters: for changes
 * made without the lock, and for a removal. seq_cst on both sides (here and
 * in commy__op_wait): either the waiter sees the new version or the writer
 * sees the waiter's registration. */
COMMY__INLINE void commy__changed(commy_alloc *a, struct commy__chdr *c)
{
    atomic_fetch_add_explicit(&c->version, 1, memory_order_seq_cst);
    commy__notify(a, commy__off(a, c));
}

/* Header of the container at off, or NULL with COMMY_ECORRUPT if it is not one. */
struct commy__chdr *commy__container_at(commy_alloc *a, uint64_t off) COMMY__HIDDEN;

/* The ops of a kind (container.c's table), NULL if unknown or not built in. */
const struct commy__kind_ops *commy__kind_ops_of(uint32_t kind) COMMY__HIDDEN;

/* Every kind's ops, defined in the kind's own file. */
extern const struct commy__kind_ops commy__box_ops, commy__vec_ops, commy__str_ops, commy__deque_ops, commy__map_ops,
    commy__set_ops, commy__omap_ops, commy__oset_ops;

/* ---- lock-free reads (a sequence check over the segment lock) ----
 *
 * A read of fixed-size data may skip the lock: it notes that the lock is free
 * and the container's version and the segment's recovery count, reads, and
 * keeps what it read only if all three are unchanged afterwards. That is
 * sound because every change a reader can see is made under the lock and,
 * before the lock is released, moves the container's version (a successful
 * change, and also a failed one that rolled back what it wrote: commy__op_end)
 * or the recovery count (a dead holder's change rolled back by the next
 * locker). A reader that saw any byte of a change in progress therefore sees
 * the lock held or a moved counter, and falls back to the locked path.
 * Everything read before the check may be garbage (a block freed and reused
 * meanwhile), so every offset read is bounds-checked against the file before
 * it is followed; nothing read is used until the check passed. */
struct commy__snap {
    commy_alloc *a; /* the handle's segment when the read began */
    uint64_t rec;
    uint32_t ver;
};

/* Starts a lock-free read of h's container: its header, or NULL when the
 * read must take the locked path (lock held, handle closed, header outside
 * what this process has mapped). */
COMMY__INLINE struct commy__chdr *commy__snap_begin(struct commy__snap *s, const struct commy__handle *h)
{
    commy_alloc *a = s->a = h->a;
    /* Closed, remote, or moved to a rotated file: the locked path says what to do. */
    if (__builtin_expect(a == NULL, 0) || atomic_load_explicit(&a->closed, memory_order_relaxed) || a->remote != NULL ||
        atomic_load_explicit(&a->forward, memory_order_acquire) != NULL)
        return NULL;
    if (atomic_load_explicit(a->lockw, memory_order_acquire) != 0) return NULL;
    s->rec = atomic_load_explicit(a->recov, memory_order_relaxed);
    if (h->off > a->size - sizeof(struct commy__chdr)) return NULL;
    struct commy__chdr *c = commy__at(a, h->off);
    s->ver = atomic_load_explicit(&c->version, memory_order_acquire);
    return c;
}

/* 1 if everything read since commy__snap_begin is a consistent state of the
 * container h names (still the same container: a removal zeroes the magic
 * and instance, and moves the version). */
COMMY__INLINE int commy__snap_valid(const struct commy__snap *s, const struct commy__handle *h,
                                    const struct commy__chdr *c)
{
    atomic_thread_fence(memory_order_acquire);
    commy_alloc *a = s->a;
    return c->instance == h->instance && c->magic == COMMY__CONTAINER_MAGIC && c->kind == h->kind &&
           atomic_load_explicit(&c->version, memory_order_relaxed) == s->ver &&
           atomic_load_explicit(a->lockw, memory_order_relaxed) == 0 &&
           atomic_load_explicit(a->recov, memory_order_relaxed) == s->rec;
}

/* Bytes [off, off + len) lie inside the part of the file this process knows
 * exists, for an offset and length read without the lock (no overflow for
 * any input). Reading there never faults; what is read is checked later. */
static inline int commy__snap_in_file(const commy_alloc *a, uint64_t off, uint64_t len)
{
    return off <= a->size && len <= a->size - off;
}

/* ---- the root directory (root.c) ---- */

/* The header's root-directory offset field, for root.c to log and write. */
uint64_t *commy__root_field(commy_alloc *a) COMMY__HIDDEN;
/* Checks the root directory and every container in it (called by
 * commy_alloc_check under the lock). */
int commy__roots_check(commy_alloc *a) COMMY__HIDDEN;
/* Looks a root up by name: *out = the container's offset, or COMMY_ENOTFOUND. */
int commy__root_lookup(uint64_t *out, commy_alloc *a, const char *name) COMMY__HIDDEN;
/* Adds a root (name must be new); under an operation. */
int commy__root_add(commy_alloc *a, const char *name, uint64_t container_off) COMMY__HIDDEN;

/* ---- remote services (remote.c) ----
 * Core knows nothing of servers: a remote commy_alloc carries a table of
 * ops, and every container call on it is packed into a struct commy__rop and
 * handed to ops->call, which client/session.c implements with the wire
 * protocol. */
enum {
    COMMY__ROP_NONE = 0, /* an operation a remote service cannot do (borrowed pointers): ENOTSUP */
    COMMY__ROP_GET, COMMY__ROP_SET, COMMY__ROP_PUSH, COMMY__ROP_POP, COMMY__ROP_INSERT, COMMY__ROP_REMOVE,
    COMMY__ROP_CLEAR, COMMY__ROP_ADD, COMMY__ROP_CONTAINS, COMMY__ROP_LEN, COMMY__ROP_APPEND, COMMY__ROP_CAS,
    COMMY__ROP_FETCH_ADD, COMMY__ROP_FIRST, COMMY__ROP_LAST, COMMY__ROP_LOWER, COMMY__ROP_UPPER,
    COMMY__ROP_SEEK, COMMY__ROP_NEXT, COMMY__ROP_RESERVE, COMMY__ROP_CAPACITY, COMMY__ROP_POP_WAIT,
};

struct commy__rop {
    const char *fn;       /* the public function, for messages */
    int op;               /* COMMY__ROP_* */
    int front;            /* deque push/pop/peek at the front */
    int has_index;
    uint64_t index;
    const void *key;      /* key (maps, sets), NULL when absent */
    size_t klen;
    const void *val;      /* value, NULL when absent */
    size_t vlen;
    int has_val;
    int64_t i1, i2;       /* cas: expected, desired; fetch_add: delta */
    int inclusive;        /* seek */
    int32_t timeout_ms;   /* pop_wait */
    void *out;            /* the value out (output convention) */
    size_t cap;
    size_t *out_len;
    void *kout;           /* the key out */
    size_t kcap;
    size_t *klen_out;
    int *out_flag;        /* contains, add */
    uint64_t *out_u64;    /* len, capacity */
    int64_t *out_i64;     /* cas, fetch_add */
    commy_cursor *cursor; /* seek, next */
};

struct commy__remote_ops {
    /* Opens root h->name of kind h->kind with the requested types h->ktype,
     * h->vtype (COMMY_T_ANY allowed with COMMY_OPEN_EXISTING); on success
     * stores the actual types in h. */
    int (*open)(void *ctx, struct commy__handle *h, uint32_t flags);
    int (*call)(void *ctx, struct commy__handle *h, struct commy__rop *op);
    int (*version)(void *ctx, struct commy__handle *h, uint32_t *out);
    int (*wait)(void *ctx, struct commy__handle *h, uint32_t seen, int32_t timeout_ms);
    /* The alloc's last reference went: the backend may free ctx. */
    void (*release)(void *ctx);
};

/* A commy_alloc without a mapping whose containers live behind ops. label
 * names it in messages (commy_alloc_path gives it). */
int commy__alloc_remote(commy_alloc **out, const struct commy__remote_ops *ops, void *ctx, const char *label) COMMY__HIDDEN;
/* Runs op on a remote handle (checks that it and its segment are open). */
int commy__remote_call(struct commy__handle *h, struct commy__rop *op) COMMY__HIDDEN;
/* Local mode after a rotation: handles of from re-resolve their root by
 * name in to on their next call; new handles open in to. */
void commy__alloc_forward(commy_alloc *from, commy_alloc *to) COMMY__HIDDEN;
/* Drops the references that handles left on a when they moved on. */
void commy__alloc_forget_forwarded(commy_alloc *a) COMMY__HIDDEN;
/* Moves h to the newest segment its own forwards to (re-resolving its root
 * by name, with the kind and type check of an open). */
int commy__handle_follow(struct commy__handle *h) COMMY__HIDDEN;
static inline int commy__moved(const commy_alloc *a)
{
    return __builtin_expect(atomic_load_explicit(&((commy_alloc *)a)->forward, memory_order_acquire) != NULL, 0);
}

/* The remote refusal of a call that needs the mapping. */
int commy__remote_unsupported(commy_alloc *a, const char *fn) COMMY__HIDDEN;

/* The first line of every container call: on a remote service, pack the
 * call and hand it over. Costs one predictable branch on a mapped one. */
#define COMMY__REMOTE(hp, ...)                                                   \
    do {                                                                         \
        if (__builtin_expect((hp)->a != NULL && (hp)->a->remote != NULL, 0)) {   \
            struct commy__rop rop_ = {.fn = __func__, __VA_ARGS__};              \
            return commy__remote_call((hp), &rop_);                              \
        }                                                                        \
    } while (0)

/* Random 64 bits (getrandom). */
uint64_t commy__random64(void) COMMY__HIDDEN;

/* Common argument check for handle functions. */
#define COMMY__CHECK_HANDLE(h)                                                   \
    do {                                                                         \
        if ((h) == NULL) return commy__err(COMMY_EINVAL, "%s: handle is NULL", __func__); \
    } while (0)

#endif
