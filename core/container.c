/* What every container shares: the kind table, opening a named root with a
 * type check, the per-operation existence check, and change notification
 * (a version counter in the header that waiters sleep on with a futex). */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Strong references (internal.h declares the eight ops): they were weak while
 * the kinds were being written, but with libcommy.a a weak reference pulls no
 * object in, so a program that never opened a map could not remove or check
 * one. Now every kind is built, a program that links the table links them all. */
const struct commy__kind_ops *commy__kind_ops_of(uint32_t kind)
{
    switch (kind) {
    case COMMY_KIND_BOX: return &commy__box_ops;
    case COMMY_KIND_VEC: return &commy__vec_ops;
    case COMMY_KIND_STR: return &commy__str_ops;
    case COMMY_KIND_DEQUE: return &commy__deque_ops;
    case COMMY_KIND_MAP: return &commy__map_ops;
    case COMMY_KIND_SET: return &commy__set_ops;
    case COMMY_KIND_OMAP: return &commy__omap_ops;
    case COMMY_KIND_OSET: return &commy__oset_ops;
    default: return NULL;
    }
}

/* 1 for the kinds that carry a value type besides the key type. */
static int kind_has_value(uint32_t kind) { return kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP; }

/* "deque of i64", "map of str to u32". */
static const char *describe(char *buf, size_t cap, uint32_t kind, commy_type kt, commy_type vt)
{
    char k[32], v[32];
    commy_type_name(k, sizeof k, kt);
    if (kind == COMMY_KIND_STR) /* a string holds str by definition: "a str", not "a str of str" */
        snprintf(buf, cap, "%s", commy_kind_name(kind));
    else if (kind_has_value(kind))
        snprintf(buf, cap, "%s of %s to %s", commy_kind_name(kind), k, commy_type_name(v, sizeof v, vt));
    else
        snprintf(buf, cap, "%s of %s", commy_kind_name(kind), k);
    return buf;
}

static const char *article(uint32_t kind) { return kind == COMMY_KIND_OMAP || kind == COMMY_KIND_OSET ? "an" : "a"; }

struct commy__chdr *commy__container_at(commy_alloc *a, uint64_t off)
{
    if ((off & 7) || !commy__in_heap(a, off, sizeof(struct commy__chdr))) {
        commy__err(COMMY_ECORRUPT, "segment '%s': offset %" PRIu64 " cannot hold a container", a->path, off);
        return NULL;
    }
    struct commy__chdr *c = commy__at(a, off);
    if (c->magic != COMMY__CONTAINER_MAGIC) {
        commy__err(COMMY_ECORRUPT, "segment '%s': no container header at offset %" PRIu64, a->path, off);
        return NULL;
    }
    if (c->kind < COMMY_KIND_BOX || c->kind > COMMY_KIND_OSET) {
        commy__err(COMMY_ECORRUPT, "segment '%s': the container at offset %" PRIu64 " has the unknown kind %u", a->path,
                   off, (unsigned)c->kind);
        return NULL;
    }
    return c;
}

/* Checks the requested types against the stored ones (ANY matches). */
static int types_match(const struct commy__chdr *c, uint32_t kind, commy_type kt, commy_type vt)
{
    if (c->kind != kind) return 0;
    if (kt != COMMY_T_ANY && c->key_type != kt) return 0;
    if (kind_has_value(kind) && vt != COMMY_T_ANY && c->val_type != vt) return 0;
    return 1;
}

static int check_open_args(const struct commy__kind_ops **ops, commy_alloc *a, uint32_t kind, commy_type kt,
                           commy_type vt, uint32_t flags)
{
    char tn[32];
    if (a == NULL) return commy__err(COMMY_EINVAL, "open: the segment handle is NULL");
    if (flags & ~(COMMY_OPEN_EXISTING | COMMY_OPEN_EXCL))
        return commy__err(COMMY_EINVAL, "open: unknown flags 0x%" PRIx32, flags & ~(COMMY_OPEN_EXISTING | COMMY_OPEN_EXCL));
    if ((flags & COMMY_OPEN_EXISTING) && (flags & COMMY_OPEN_EXCL))
        return commy__err(COMMY_EINVAL, "open: COMMY_OPEN_EXISTING and COMMY_OPEN_EXCL exclude each other");
    if (kind < COMMY_KIND_BOX || kind > COMMY_KIND_OSET)
        return commy__err(COMMY_EINVAL, "open: %" PRIu32 " is not a container kind", kind);
    *ops = commy__kind_ops_of(kind);
    if (*ops == NULL)
        return commy__err(COMMY_ENOTSUP, "the %s container is not built into this library", commy_kind_name(kind));
    int any = kt == COMMY_T_ANY || (kind_has_value(kind) && vt == COMMY_T_ANY);
    if (any && !(flags & COMMY_OPEN_EXISTING))
        return commy__err(COMMY_EINVAL, "open: type 'any' only opens an existing %s: add COMMY_OPEN_EXISTING",
                          commy_kind_name(kind));
    if (kt != COMMY_T_ANY && !commy_type_valid(kt))
        return commy__err(COMMY_EINVAL, "open: %s is not an element type", commy_type_name(tn, sizeof tn, kt));
    if (kind_has_value(kind) && vt != COMMY_T_ANY && !commy_type_valid(vt))
        return commy__err(COMMY_EINVAL, "open: %s is not a value type", commy_type_name(tn, sizeof tn, vt));
    return COMMY_OK;
}

/* A container of a remote service: the backend checks kind and types. */
static int remote_open(struct commy__handle *h, commy_alloc *a, const char *name, uint32_t kind, commy_type kt,
                       commy_type vt, uint32_t flags)
{
    if (atomic_load_explicit(&a->closed, memory_order_relaxed))
        return commy__err(COMMY_ECLOSED, "open: service '%s' is closed", a->path);
    if (name == NULL || strlen(name) > COMMY_ROOT_NAME_MAX || name[0] == '\0')
        return commy__err(COMMY_EINVAL, "open: a root name is 1 to %d bytes", COMMY_ROOT_NAME_MAX);
    h->a = a;
    h->kind = kind;
    h->ktype = kt;
    h->vtype = vt;
    snprintf(h->name, sizeof h->name, "%s", name);
    int rc = a->remote->open(a->remote_ctx, h, flags);
    if (rc) {
        h->a = NULL;
        return rc;
    }
    h->kslot = commy__slot_size(h->ktype);
    h->vslot = kind_has_value(kind) ? commy__slot_size(h->vtype) : 0;
    commy__alloc_retain(a);
    return COMMY_OK;
}

static int handle_open(struct commy__handle *h, commy_alloc *a, const char *name, uint32_t kind, commy_type kt,
                       commy_type vt, uint32_t flags, const struct commy__kind_ops *ops);

int commy__handle_open(struct commy__handle *h, commy_alloc *a, const char *name, uint32_t kind, commy_type kt,
                       commy_type vt, uint32_t flags)
{
    const struct commy__kind_ops *ops = NULL;
    int rc = check_open_args(&ops, a, kind, kt, vt, flags);
    if (rc) return rc;
    for (;;) {
        for (commy_alloc *nx; (nx = atomic_load_explicit(&a->forward, memory_order_acquire)) != NULL;) a = nx;
        rc = handle_open(h, a, name, kind, kt, vt, flags, ops);
        /* Creating a root in a retired file: in the new one, once mapped. */
        if (rc != COMMY_ERETIRED || (atomic_load_explicit(&a->owned, memory_order_relaxed) && a->owner == commy__me))
            return rc;
        if ((rc = commy__retired_wait(a)) != COMMY_OK) return rc;
    }
}

static int handle_open(struct commy__handle *h, commy_alloc *a, const char *name, uint32_t kind, commy_type kt,
                       commy_type vt, uint32_t flags, const struct commy__kind_ops *ops)
{
    int rc;
    if (!kind_has_value(kind)) vt = COMMY_T_ANY;
    if (a->remote) return remote_open(h, a, name, kind, kt, vt, flags);
    uint64_t sp;
    rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    uint64_t off = 0;
    struct commy__chdr *c = NULL;
    rc = commy__root_lookup(&off, a, name); /* validates the name too */
    if (rc == COMMY_OK) {
        c = commy__container_at(a, off);
        if (c == NULL) {
            rc = commy_error_last()->code;
        } else if (flags & COMMY_OPEN_EXCL) {
            rc = commy__err(COMMY_EEXISTS, "root '%s' already exists in segment '%s'", name, a->path);
        } else if (!types_match(c, kind, kt, vt)) {
            char have[96], want[96];
            describe(have, sizeof have, c->kind, c->key_type, c->val_type);
            describe(want, sizeof want, kind, kt, vt);
            rc = commy__err(COMMY_ETYPE, "root '%s' is %s %s; it was opened as %s %s", name, article(c->kind), have,
                            article(kind), want);
        }
    } else if (rc == COMMY_ENOTFOUND) {
        if (flags & COMMY_OPEN_EXISTING) {
            rc = commy__err(COMMY_ENOTFOUND, "root '%s' does not exist in segment '%s'", name, a->path);
        } else if (a->readonly) {
            rc = commy__err(COMMY_EPERM, "root '%s' does not exist and segment '%s' is open read-only", name, a->path);
        } else if (commy__alloc_retired(a)) {
            rc = commy__err(COMMY_ERETIRED, "root '%s' cannot be created: segment '%s' was retired by its server "
                            "(the service moved to a new file)", name, a->path);
        } else {
            /* Create: every step is journaled or in fresh blocks, so a failure
             * (or a crash) anywhere leaves no half-made root behind. */
            uint64_t bs = ops->block_size < sizeof *c ? sizeof *c : ops->block_size;
            rc = commy__calloc(&off, a, bs, 64);
            if (rc == COMMY_OK) {
                c = commy__at(a, off);
                c->kind = (uint8_t)kind;
                c->layout_major = 1;
                c->layout_minor = 0;
                c->key_type = kt;
                c->val_type = vt;
                c->instance = commy__random64();
                rc = ops->init ? ops->init(a, c) : COMMY_OK;
            }
            if (rc == COMMY_OK) {
                /* Publish the magic last: a header with the magic is complete. */
                atomic_thread_fence(memory_order_release);
                c->magic = COMMY__CONTAINER_MAGIC;
                rc = commy__root_add(a, name, off);
            }
        }
    }
    if (rc == COMMY_OK) {
        h->a = a;
        h->off = off;
        h->instance = c->instance;
        h->kind = kind;
        h->ktype = c->key_type;
        h->vtype = kind_has_value(kind) ? c->val_type : COMMY_T_ANY;
        h->kslot = commy__slot_size(h->ktype);
        h->vslot = kind_has_value(kind) ? commy__slot_size(h->vtype) : 0;
        snprintf(h->name, sizeof h->name, "%s", name);
        commy__alloc_retain(a);
    }
    return commy__end(a, sp, rc);
}

void commy__handle_release(struct commy__handle *h)
{
    if (h == NULL || h->a == NULL) return;
    commy__alloc_release(h->a);
    h->a = NULL;
}

/* The header h names, if it still exists (no lock needed to look: the bytes
 * are in the mapping; under the lock the answer is also stable). */
static inline struct commy__chdr *live_header(struct commy__handle *h)
{
    commy_alloc *a = h->a;
    /* The offset was inside the heap when the handle opened, and the heap's
     * start never moves: only the end (the file may have shrunk) needs a check. */
    if (h->off > a->size - sizeof(struct commy__chdr)) return NULL;
    struct commy__chdr *c = commy__at(a, h->off);
    if (c->magic != COMMY__CONTAINER_MAGIC || c->kind != h->kind || c->instance != h->instance) return NULL;
    return c;
}

static int removed(struct commy__handle *h)
{
    return commy__err(COMMY_ENOTFOUND, "container '%s' was removed from segment '%s'", h->name, h->a->path);
}

static int check_handle(struct commy__handle *h, const char *fn)
{
    if (h == NULL) return commy__err(COMMY_EINVAL, "%s: handle is NULL", fn);
    if (h->a == NULL) return commy__err(COMMY_ECLOSED, "%s: the handle is closed", fn);
    if (atomic_load_explicit(&h->a->closed, memory_order_relaxed))
        return commy__err(COMMY_ECLOSED, "container '%s': segment '%s' is closed", h->name, h->a->path);
    if (commy__moved(h->a)) return commy__handle_follow(h);
    return COMMY_OK;
}

int commy__handle_follow(struct commy__handle *h)
{
    commy_alloc *old = h->a, *na = old, *nx;
    while ((nx = atomic_load_explicit(&na->forward, memory_order_acquire)) != NULL) na = nx;
    if (na == old) return COMMY_OK;
    uint64_t sp, off = 0;
    int rc = commy__begin(na, 0, &sp);
    if (rc) return rc;
    struct commy__chdr *c = NULL;
    rc = commy__root_lookup(&off, na, h->name);
    if (rc == COMMY_ENOTFOUND)
        rc = commy__err(COMMY_ENOTFOUND, "container '%s' is not in the service's new file '%s'", h->name, na->path);
    else if (rc == COMMY_OK && (c = commy__container_at(na, off)) == NULL)
        rc = commy_error_last()->code;
    else if (rc == COMMY_OK && !types_match(c, h->kind, h->ktype, h->vtype))
        rc = commy__err(COMMY_ETYPE, "container '%s' has another kind or type in the service's new file", h->name);
    if (rc == COMMY_OK) {
        /* Several threads may follow at once: one wins the swap; the others
         * give their reference back. The old segment stays mapped (its
         * reference is counted in forwarded_refs) for calls still in it. */
        commy__alloc_retain(na);
        h->off = off;
        h->instance = c->instance;
        commy_alloc *expect = old;
        if (__atomic_compare_exchange_n(&h->a, &expect, na, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            atomic_fetch_add(&old->forwarded_refs, 1);
        else
            commy__alloc_release(na);
    }
    return commy__end(na, sp, rc);
}

int commy__op_begin_slow(struct commy__handle *h, int write, uint64_t *sp, struct commy__chdr **out)
{
    int rc;
    for (;;) {
        rc = check_handle(h, "operation");
        if (rc) return rc;
        rc = commy__begin(h->a, write, sp);
        if (rc != COMMY_ERETIRED) break;
        /* The server retired the file: wait for the session to map the new
         * one, follow it (check_handle) and begin again there. Not inside
         * this thread's own batch: the batch cannot move files half-way. */
        commy_alloc *a = h->a;
        if (atomic_load_explicit(&a->owned, memory_order_relaxed) && a->owner == commy__me) return rc;
        if ((rc = commy__retired_wait(a)) != COMMY_OK) return rc;
    }
    if (rc) return rc;
    struct commy__chdr *c = live_header(h);
    if (c == NULL) return commy__end(h->a, *sp, removed(h));
    *out = c;
    return COMMY_OK;
}

int commy__op_removed(struct commy__handle *h, uint64_t sp) { return commy__end(h->a, sp, removed(h)); }

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE_FLAG: the word lives in a file mapping shared by processes. */
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

/* FUTEX_WAIT on word while it holds val, until the absolute CLOCK_MONOTONIC
 * time *until (NULL: no limit). */
static long futex_wait_until(_Atomic uint32_t *word, uint32_t val, const struct timespec *until)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val, until, NULL, FUTEX_BITSET_MATCH_ANY);
}

void commy__wake_bucket(struct commy__wait_bucket *b)
{
    /* seq_cst: a waiter that read seq before this increment either is queued
     * on the word already (and woken below) or sees it moved when its
     * FUTEX_WAIT compares (docs/format.md, "Change notification"). */
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_seq_cst);
    futex(&b->seq, FUTEX_WAKE, INT_MAX, NULL);
}

void commy__wake_all(commy_alloc *a)
{
    if (a == NULL || a->remote != NULL || a->base == NULL || a->readonly) return;
    /* The forward (or whatever the caller published) is stored before this
     * fence; waiters read it after their seq (commy__op_wait): either they
     * see it, or this sees them registered and moves their seq. */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t i = 0; i < COMMY__WAIT_BUCKETS; i++) {
        struct commy__wait_bucket *b = (struct commy__wait_bucket *)(void *)(a->base + COMMY__WAIT_OFF) + i;
        if (atomic_load_explicit(&b->waiters, memory_order_seq_cst) != 0) commy__wake_bucket(b);
    }
}

int commy__op_version(uint32_t *out, struct commy__handle *h)
{
    int rc = check_handle(h, "version");
    if (rc) return rc;
    if (out == NULL) return commy__err(COMMY_EINVAL, "version: out is NULL");
    if (h->a->remote) return h->a->remote->version(h->a->remote_ctx, h, out);
    struct commy__chdr *c = live_header(h);
    if (c == NULL) return removed(h);
    *out = atomic_load_explicit(&c->version, memory_order_acquire);
    return COMMY_OK;
}

/* 1 if h's container is still there, judged under the segment lock: the
 * lock-free check saw it gone, which a removal that was then rolled back
 * (or a torn read of a header being rewritten) could also show. *live
 * receives the answer; the result is commy__begin's error, if any. */
static int live_locked(int *live, struct commy__handle *h)
{
    uint64_t sp;
    int rc = commy__begin(h->a, 0, &sp);
    if (rc) return rc;
    *live = live_header(h) != NULL;
    return commy__end(h->a, sp, COMMY_OK);
}

/* Waits until the version of h's container differs from seen. Lock-free
 * (docs/format.md, "Change notification"): the waiter counts itself in its
 * bucket of the segment's wait table, reads the bucket's seq, re-reads the
 * version and sleeps on seq while nothing moved. Nothing here ever writes
 * into a container's block, so a removal (which frees the block) can race
 * with it freely; the futex word is in the header, which is never freed. */
int commy__op_wait(struct commy__handle *h, uint32_t seen, int32_t timeout_ms)
{
    int rc = check_handle(h, "wait");
    if (rc) return rc;
    commy_alloc *a = h->a;
    if (a->remote) return a->remote->wait(a->remote_ctx, h, seen, timeout_ms);
    struct commy__chdr *c = live_header(h);
    if (c == NULL) return removed(h);
    if (atomic_load_explicit(&c->version, memory_order_acquire) != seen) return COMMY_OK;
    if (timeout_ms == 0) return commy__err(COMMY_ETIMEDOUT, "container '%s' did not change", h->name);
    if (a->readonly)
        return commy__err(COMMY_EPERM, "container '%s': waiting registers the waiter in the segment, which needs a "
                          "writable segment; '%s' is open read-only", h->name, a->path);
    if (atomic_load_explicit(&a->owned, memory_order_relaxed) && a->owner == commy__me && commy__me != 0)
        return commy__err(COMMY_EBUSY, "container '%s': waiting while this thread holds the segment lock "
                          "(commy_alloc_lock) would keep every writer out; unlock first", h->name);
    struct commy__wait_bucket *b = commy__wait_bucket_of(a, h->off);
    atomic_fetch_add_explicit(&b->waiters, 1, memory_order_seq_cst);
    /* An absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET takes one): one
     * clock read per wait, and wake-ups for other containers of the bucket
     * do not stretch the timeout. */
    struct timespec dl, *dlp = NULL;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
        dlp = &dl;
    }
    int expired = 0;
    rc = COMMY_ETIMEDOUT;
    for (;;) {
        /* seq first, then the version: a writer that moves the version after
         * this read moves seq after it too, so the FUTEX_WAIT below cannot
         * sleep through it. */
        uint32_t s = atomic_load_explicit(&b->seq, memory_order_seq_cst);
        /* The service moved to a new file (local mode of a session): writes
         * land there now, so nothing will wake us here. "May have changed":
         * the caller's next call follows the forward. */
        if (atomic_load_explicit(&a->forward, memory_order_seq_cst) != NULL) {
            rc = COMMY_OK;
            break;
        }
        uint32_t cur = atomic_load_explicit(&c->version, memory_order_seq_cst);
        /* Judged after the version read: if the header is still this
         * container's, the version read was its own (the block may have been
         * freed and reused in between, which the instance check catches). */
        if (live_header(h) == NULL) {
            int live = 0;
            rc = live_locked(&live, h);
            if (rc == COMMY_OK && live) {
                rc = COMMY_ETIMEDOUT;
                continue;
            }
            if (rc == COMMY_OK) rc = COMMY_ENOTFOUND;
            break;
        }
        if (cur != seen) {
            rc = COMMY_OK;
            break;
        }
        if (expired) break;
        /* Woken by a writer of any container of this bucket, by a signal or
         * by the deadline: the loop re-reads and decides. */
        if (futex_wait_until(&b->seq, s, dlp) != 0) {
            if (errno == ETIMEDOUT) expired = 1; /* one last look first */
            else if (errno != EAGAIN && errno != EINTR) break; /* unexpected: report as a timeout rather than spin */
        }
    }
    atomic_fetch_sub_explicit(&b->waiters, 1, memory_order_seq_cst);
    if (rc == COMMY_ENOTFOUND) return removed(h);
    if (rc != COMMY_OK && rc != COMMY_ETIMEDOUT) return rc; /* the lock's error, already recorded */
    if (rc == COMMY_ETIMEDOUT)
        return commy__err(COMMY_ETIMEDOUT, "container '%s' did not change within %" PRId32 " ms", h->name, timeout_ms);
    return rc;
}
