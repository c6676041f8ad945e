/* The segment: opening and creating the file, the robust lock, the undo
 * journal, growth, the process table and heartbeats. */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- time */

static uint64_t now_ms_boot(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_ns_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t commy__random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) v = now_ns_real() ^ ((uint64_t)getpid() << 32);
    return v;
}

/* ------------------------------------------------------------ processes */

/* Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat), 0 if gone or a zombie. */
static uint64_t process_start_time(uint32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    /* A zombie (Z) or dying (X) task never runs again: it is gone for us,
     * even while its parent has not reaped it yet. */
    if (p[0] == ' ' && (p[1] == 'Z' || p[1] == 'X')) return 0;
    for (int field = 3; field < 22 && *p; field++) {
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
    }
    return strtoull(p, NULL, 10);
}

static int slot_alive(const struct commy__proc *s, uint32_t stale_after_ms, uint64_t now)
{
    uint32_t pid = atomic_load(&s->pid);
    if (pid == 0 || atomic_load(&s->state) == 0) return 0;
    if (process_start_time(pid) != s->start_time) return 0;
    uint64_t hb = atomic_load(&s->heartbeat_ms);
    if (hb != 0 && stale_after_ms != 0 && now > hb && now - hb > stale_after_ms) return 0;
    return 1;
}

int commy_alloc_reap(uint32_t *out, commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    if (atomic_load(&a->closed)) return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
    if (a->remote) return commy__remote_unsupported(a, __func__);
    uint32_t live = 0;
    uint64_t now = now_ms_boot();
    for (uint32_t i = 0; i < COMMY__PROC_SLOTS; i++) {
        struct commy__proc *s = &a->hdr->procs[i];
        uint32_t pid = atomic_load(&s->pid);
        if (pid == 0) continue;
        if (slot_alive(s, a->stale_after_ms, now)) {
            live++;
        } else if (!a->readonly) {
            /* Free the slot only if nobody re-claimed it meanwhile. */
            atomic_store(&s->state, 0);
            atomic_compare_exchange_strong(&s->pid, &pid, 0);
        }
    }
    if (out) *out = live;
    return COMMY_OK;
}

static int claim_slot(commy_alloc *a)
{
    uint32_t me = (uint32_t)getpid();
    uint64_t st = process_start_time(me);
    commy_alloc_reap(NULL, a);
    for (uint32_t i = 0; i < COMMY__PROC_SLOTS; i++) {
        struct commy__proc *s = &a->hdr->procs[i];
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong(&s->pid, &zero, me)) {
            s->start_time = st;
            atomic_store(&s->heartbeat_ms, 0);
            atomic_store(&s->inflight, 0); /* a dead predecessor's count means nothing */
            atomic_store(&s->state, 1);
            a->slot = (int)i;
            return COMMY_OK;
        }
    }
    return commy__err(COMMY_EBUSY, "segment '%s': all %u process slots are taken by live processes", a->path,
                      COMMY__PROC_SLOTS);
}

static void release_slot(commy_alloc *a)
{
    if (a->slot < 0) return;
    struct commy__proc *s = &a->hdr->procs[a->slot];
    uint32_t me = (uint32_t)getpid();
    if (atomic_load(&s->pid) == me) {
        atomic_store(&s->state, 0);
        atomic_store(&s->heartbeat_ms, 0);
        atomic_compare_exchange_strong(&s->pid, &me, 0);
    }
    a->slot = -1;
}

int commy_alloc_heartbeat(commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    if (atomic_load(&a->closed)) return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
    if (a->remote) return commy__remote_unsupported(a, __func__);
    if (a->readonly) return COMMY_OK;
    if (a->slot < 0 || atomic_load(&a->hdr->procs[a->slot].pid) != (uint32_t)getpid()) {
        /* Our slot was reclaimed while we were silent (or we are a forked child): take one again. */
        a->slot = -1;
        int rc = claim_slot(a);
        if (rc) return rc;
    }
    atomic_store(&a->hdr->procs[a->slot].heartbeat_ms, now_ms_boot());
    return COMMY_OK;
}

static void *heartbeat_main(void *arg)
{
    commy_alloc *a = arg;
    pthread_mutex_lock(&a->hb_mu);
    while (a->hb_running) {
        commy_alloc_heartbeat(a);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)a->hb_interval_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&a->hb_cv, &a->hb_mu, &until);
    }
    pthread_mutex_unlock(&a->hb_mu);
    return NULL;
}

/* -------------------------------------------------------------- journal */

static inline struct commy__journal *journal(const commy_alloc *a)
{
    return (struct commy__journal *)(a->base + a->hdr->journal_off);
}

uint64_t commy__journal_room(const commy_alloc *a)
{
    uint64_t cap = a->hdr->journal_size - sizeof(struct commy__journal);
    uint64_t used = atomic_load_explicit(&journal(a)->used, memory_order_relaxed);
    return cap > used ? cap - used : 0;
}

int commy__in_heap(const commy_alloc *a, uint64_t off, uint64_t len)
{
    return off >= a->hdr->heap_off && off <= a->size && len <= a->size - off;
}

int commy__log_full(commy_alloc *a)
{
    return commy__err(COMMY_EJOURNAL,
                      "segment '%s': the change needs more than the %" PRIu64 "-byte journal; it was rolled back",
                      a->path, a->hdr->journal_size);
}

int commy__log_atomic(uint64_t **ent, commy_alloc *a, uint64_t *word, unsigned op, uint64_t v1, uint64_t v2)
{
    uint64_t used = atomic_load_explicit(a->jused, memory_order_relaxed);
    if (48 > a->jcap - used) return commy__log_full(a);
    uint64_t *e = (uint64_t *)(void *)(a->jentries + used);
    e[0] = commy__off(a, word);
    e[1] = COMMY__LOG_ATOMIC | op;
    e[2] = v1;
    e[3] = v2;
    e[4] = 0; /* applied: set by the caller once its compare-and-swap succeeded */
    e[5] = 48;
    atomic_store_explicit(a->jused, used + 48, memory_order_release);
    atomic_thread_fence(memory_order_release);
    *ent = &e[2];
    return COMMY_OK;
}

/* Caches where the journal is, for commy__log. */
static void cache_journal(commy_alloc *a)
{
    struct commy__journal *j = journal(a);
    a->jentries = (char *)(j + 1);
    a->jused = &j->used;
    a->jcap = a->hdr->journal_size - sizeof *j;
    a->lockw = (_Atomic uint64_t *)&a->hdr->lock;
    a->recov = &a->hdr->recoveries;
    a->hsize = &a->hdr->size;
    a->retiredw = &a->hdr->retired;
    if (!a->track_inflight) a->fast_gate = a->retiredw;
}

int commy__put(commy_alloc *a, void *dst, const void *src, size_t len)
{
    int rc = commy__log(a, dst, len);
    if (rc == 0) memmove(dst, src, len);
    return rc;
}

/* Undoes the entries after savepoint sp, newest first. On a damaged journal
 * (entries out of bounds) returns COMMY_ECORRUPT and undoes nothing more. */
static int rollback_to(commy_alloc *a, uint64_t sp)
{
    struct commy__journal *j = journal(a);
    uint64_t pos = atomic_load(&j->used);
    const char *entries = (const char *)(j + 1);
    uint64_t fsize = a->size;
    if (pos > a->hdr->journal_size - sizeof *j) goto damaged;
    while (pos > sp) {
        uint64_t esize, off, len;
        if (pos < 24) goto damaged;
        memcpy(&esize, entries + pos - 8, 8);
        if (esize < 24 || esize > pos || (esize & 7)) goto damaged;
        const char *e = entries + pos - esize;
        memcpy(&off, e, 8);
        memcpy(&len, e + 8, 8);
        if (len & COMMY__LOG_ATOMIC) {
            /* A word others change without the lock: undo our update only, atomically. */
            uint64_t v[3];
            unsigned op = (unsigned)(len & 0xff);
            if ((op != COMMY__UNDO_ADD && op != COMMY__UNDO_CAS) || esize != 48 || (off & 7) ||
                off < a->hdr->heap_off || off > fsize - 8)
                goto damaged;
            memcpy(v, e + 16, 24);
            uint64_t *w = (uint64_t *)(void *)(a->base + off);
            if (v[2] == 1 && op == COMMY__UNDO_CAS) {
                __atomic_compare_exchange_n(w, &v[0], v[1], 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
            } else if (v[2] == 1) {
                uint64_t cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
                while (!__atomic_compare_exchange_n(w, &cur, (cur - v[0]) & v[1], 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                }
            }
            pos -= esize;
            atomic_store_explicit(&j->used, pos, memory_order_release);
            continue;
        }
        if (24 + ((len + 7) & ~(uint64_t)7) != esize) goto damaged;
        /* Only the header's size, root field and allocator state, and the heap, are ever logged. */
        if (off < a->hdr->heap_off && !(off == 24 || off == 64 || (off >= COMMY__HEAP_STATE_OFF && off + len <= COMMY__HEADER_SIZE)))
            goto damaged;
        if (off > fsize || len > fsize - off) {
            /* The change being undone grew the file; the header's size is
             * restored by an earlier entry, the bytes past it do not matter. */
            if (off > a->map_size || len > a->map_size - off) goto damaged;
            struct stat st;
            if (fstat(a->fd, &st) != 0 || off + len > (uint64_t)st.st_size) goto damaged;
        }
        memcpy(a->base + off, e + 16, len);
        pos -= esize;
        atomic_store_explicit(&j->used, pos, memory_order_release);
    }
    return COMMY_OK;
damaged:
    return commy__err(COMMY_ECORRUPT, "segment '%s': the journal is damaged at byte %" PRIu64 "; cannot roll back",
                      a->path, pos);
}

static void refresh_size(commy_alloc *a)
{
    uint64_t s = atomic_load_explicit(&a->hdr->size, memory_order_acquire);
    if (s <= a->map_size) a->size = s;
}

/* Called with the lock held when the journal is not empty: a holder died mid-change. */
static int recover(commy_alloc *a)
{
    a->size = a->map_size; /* the entries may cover bytes past the published size */
    struct stat st;
    if (fstat(a->fd, &st) == 0 && (uint64_t)st.st_size < a->size) a->size = (uint64_t)st.st_size;
    int rc = rollback_to(a, 0);
    refresh_size(a);
    if (rc == 0) atomic_fetch_add(&a->hdr->recoveries, 1);
    return rc;
}

/* ----------------------------------------------------------------- lock */

static inline int held_by_me(commy_alloc *a)
{
    return atomic_load_explicit(&a->owned, memory_order_relaxed) && a->owner == commy__me;
}

/* The segment lock (docs/format.md, "The lock"): one 64-bit word. The low
 * half holds the owner thread's id and, in bit 31, "someone may be asleep";
 * the high half holds the low 32 bits of the owner thread's start time, so a
 * dead owner is told apart from a new thread that got the same id. Waiters
 * sleep on the low half's futex in slices; after a slice in which the word
 * did not change they check that the owner still exists and, if it does
 * not, take the lock over with a compare-and-swap and roll its change back. */
#define LOCK_WAITERS 0x80000000u
#define LOCK_TID_MASK 0x3fffffffu
#define LOCK_SLICE_MS 20u
#define LOCK_SPINS 100

_Thread_local uint64_t commy__me; /* this thread's lock word: start32 << 32 | tid; 0 until known */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_identity(void) { commy__me = 0; }
static void register_atfork(void) { pthread_atfork(NULL, NULL, forget_identity); }

/* Start time (clock ticks since boot) of thread tid, 0 if it does not exist. */
static uint64_t thread_start_time(uint32_t tid) { return process_start_time(tid); }

static uint64_t my_lock_word(void)
{
    if (__builtin_expect(commy__me == 0, 0)) {
        pthread_once(&atfork_once, register_atfork);
        uint32_t tid = (uint32_t)gettid();
        uint64_t st = thread_start_time(tid);
        commy__me = ((uint64_t)(uint32_t)st << 32) | (tid & LOCK_TID_MASK);
    }
    return commy__me;
}

static inline _Atomic uint64_t *lock_word(const commy_alloc *a) { return (_Atomic uint64_t *)&a->hdr->lock; }

static int owner_alive(uint64_t v)
{
    uint32_t tid = (uint32_t)v & LOCK_TID_MASK;
    uint64_t st = thread_start_time(tid);
    return st != 0 && (uint32_t)st == (uint32_t)(v >> 32);
}

static void futex_wait_ms(_Atomic uint64_t *w, uint32_t expected, uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, expected, &ts, NULL, 0);
}

/* Takes the word; *dead is set if it was taken over from a dead owner. */
static int acquire_word(commy_alloc *a, uint32_t timeout_ms, int *dead)
{
    _Atomic uint64_t *w = lock_word(a);
    uint64_t me = my_lock_word(), v = 0;
    *dead = 0;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(w, &v, me, memory_order_acquire,
                                                                 memory_order_relaxed), 1))
        return COMMY_OK;
    for (int i = 0; i < LOCK_SPINS; i++) {
        __builtin_ia32_pause();
        v = atomic_load_explicit(w, memory_order_relaxed);
        if (v == 0 && atomic_compare_exchange_weak_explicit(w, &v, me, memory_order_acquire, memory_order_relaxed))
            return COMMY_OK;
    }
    uint64_t deadline = timeout_ms ? now_ms_boot() + timeout_ms : UINT64_MAX;
    for (;;) {
        v = atomic_load_explicit(w, memory_order_relaxed);
        if (v == 0) {
            /* Others may still be asleep: keep the flag so our unlock wakes one. */
            if (atomic_compare_exchange_strong_explicit(w, &v, me | LOCK_WAITERS, memory_order_acquire,
                                                        memory_order_relaxed))
                return COMMY_OK;
            continue;
        }
        if (!(v & LOCK_WAITERS) &&
            !atomic_compare_exchange_strong_explicit(w, &v, v | LOCK_WAITERS, memory_order_relaxed,
                                                     memory_order_relaxed))
            continue;
        v |= LOCK_WAITERS;
        uint64_t now = now_ms_boot();
        if (now >= deadline)
            return commy__err(COMMY_ETIMEDOUT, "segment '%s': the lock was not free within %u ms", a->path,
                              timeout_ms);
        uint64_t slice = deadline - now < LOCK_SLICE_MS ? deadline - now : LOCK_SLICE_MS;
        futex_wait_ms(w, (uint32_t)v, slice);
        if (atomic_load_explicit(w, memory_order_relaxed) == v && !owner_alive(v)) {
            if (atomic_compare_exchange_strong_explicit(w, &v, me | LOCK_WAITERS, memory_order_acquire,
                                                        memory_order_relaxed)) {
                *dead = 1;
                return COMMY_OK;
            }
        }
    }
}

static void release_word(commy_alloc *a)
{
    uint64_t old = atomic_exchange_explicit(lock_word(a), 0, memory_order_release);
    if (old & LOCK_WAITERS) syscall(SYS_futex, (uint32_t *)lock_word(a), FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int lock_segment(commy_alloc *a, uint32_t timeout_ms)
{
    int dead;
    int rc = acquire_word(a, timeout_ms, &dead);
    if (rc) return rc;
    /* The word's new value must be visible before any byte this change
     * writes: lock-free readers (internal.h) rely on it. Free on x86. */
    atomic_thread_fence(memory_order_release);
    a->owner = my_lock_word();
    atomic_store_explicit(&a->owned, 1, memory_order_relaxed);
    a->depth = 1;
    a->batch_failed = 0;
    a->npending = 0;
    refresh_size(a);
    /* A non-empty journal means the previous holder died mid-change. */
    if (__builtin_expect(atomic_load_explicit(a->jused, memory_order_relaxed) != 0, 0)) rc = recover(a);
    if (rc != COMMY_OK) {
        /* Leave the journal as it is: every later locker reports the damage too. */
        atomic_store(&a->owned, 0);
        a->depth = 0;
        release_word(a);
    }
    return rc;
}

/* After a commit: returns the change's freed blocks to the heap, in journaled
 * steps committed as the journal fills. A death in here leaks the blocks not
 * yet returned; it never corrupts anything. */
static void apply_pending_frees(commy_alloc *a)
{
    struct commy__journal *j = journal(a);
    for (uint32_t i = 0; i < a->npending; i++) {
        if (commy__journal_room(a) < (64u << 10)) atomic_store_explicit(&j->used, 0, memory_order_release);
        uint64_t mark = atomic_load_explicit(&j->used, memory_order_relaxed);
        if (commy__free_now(a, a->pending[i]) != COMMY_OK) rollback_to(a, mark);
    }
    a->npending = 0;
}

static void unlock_segment(commy_alloc *a)
{
    atomic_store_explicit(a->jused, 0, memory_order_release);
    if (__builtin_expect(a->npending != 0, 0)) {
        apply_pending_frees(a);
        atomic_store_explicit(&journal(a)->used, 0, memory_order_release);
    }
    a->depth = 0;
    atomic_store_explicit(&a->owned, 0, memory_order_relaxed);
    release_word(a);
}

/* A savepoint is the journal's length in the low 32 bits and the number of
 * deferred frees in the high 32 (the journal is at most 64 MiB). */
static inline uint64_t savepoint(const commy_alloc *a)
{
    return atomic_load_explicit(a->jused, memory_order_relaxed) | ((uint64_t)a->npending << 32);
}

int commy__begin_recover(commy_alloc *a, int write, uint64_t *sp)
{
    int rc = recover(a);
    if (rc != COMMY_OK) {
        /* Leave the journal as it is: every later locker reports the damage too. */
        atomic_store(&a->owned, 0);
        a->depth = 0;
        release_word(a);
        return rc;
    }
    if (write && commy__alloc_retired(a)) return commy__begin_refuse_retired(a);
    *sp = 0;
    return COMMY_OK;
}

/* ------------------------------------------------------------ retirement */

static int retired_err(const commy_alloc *a)
{
    return commy__err(COMMY_ERETIRED, "segment '%s' was retired by its server (the service moved to a new file): "
                      "writes to it are refused; open the service again", a->path);
}

int commy__begin_refuse_retired(commy_alloc *a)
{
    /* Nothing was written: end the (empty) operation, which lets the lock go. */
    return commy__end(a, 0, retired_err(a));
}

int commy__alloc_retired(const commy_alloc *a)
{
    return a->retiredw != NULL && atomic_load_explicit(a->retiredw, memory_order_seq_cst) != 0;
}

static long futex_private(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)word, op | FUTEX_PRIVATE_FLAG, val, ts, NULL, 0);
}

_Thread_local int commy__retire_nowait;

int commy__retired_wait(commy_alloc *a)
{
    uint64_t start = now_ms_boot();
    for (;;) {
        uint32_t seq = atomic_load_explicit(&a->forward_seq, memory_order_acquire);
        if (atomic_load_explicit(&a->forward, memory_order_acquire) != NULL) return COMMY_OK;
        if (atomic_load_explicit(&a->closed, memory_order_relaxed))
            return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
        if (!commy__alloc_retired(a)) return COMMY_OK; /* the retirer gave up: write here again */
        uint32_t wait_ms = atomic_load_explicit(&a->retire_wait_ms, memory_order_relaxed);
        uint64_t spent = now_ms_boot() - start;
        if (wait_ms == 0) return retired_err(a);
        if (commy__retire_nowait)
            return commy__err(COMMY_ERETIRED, "segment '%s' is moving to a new file and this thread (the session's, "
                              "running a change callback) is the one that maps it: the write was not made; make it "
                              "after the callback returns", a->path);
        if (spent >= wait_ms)
            return commy__err(COMMY_ERETIRED, "segment '%s' was retired by its server (the service moved to a new "
                              "file) and the session was not told the new file within %u ms", a->path, wait_ms);
        /* Slices: the mark may be cleared without a wake. */
        uint64_t left = wait_ms - spent;
        struct timespec ts = {0, (long)(left < 10 ? left : 10) * 1000000L};
        futex_private(&a->forward_seq, FUTEX_WAIT, seq, &ts);
    }
}

void commy__alloc_forward(commy_alloc *from, commy_alloc *to)
{
    atomic_store_explicit(&from->forward, to, memory_order_release);
    commy__wake_all(from); /* waits asleep in the old file return: writes land in the new one */
    atomic_fetch_add_explicit(&from->forward_seq, 1, memory_order_release);
    futex_private(&from->forward_seq, FUTEX_WAKE, INT32_MAX, NULL);
}

static const _Atomic uint64_t always_slow = 1;

void commy__alloc_set_rotatable(commy_alloc *a, uint32_t wait_ms)
{
    a->track_inflight = 1;
    a->fast_gate = &always_slow;
    atomic_store_explicit(&a->retire_wait_ms, wait_ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->forward_seq, 1, memory_order_release);
    futex_private(&a->forward_seq, FUTEX_WAKE, INT32_MAX, NULL);
}

void commy__alloc_unretire(commy_alloc *a)
{
    if (a->retiredw) atomic_store_explicit(a->retiredw, 0, memory_order_seq_cst);
}

int commy__alloc_retire(commy_alloc *a, uint32_t timeout_ms)
{
    if (a == NULL || a->remote || a->readonly || !held_by_me(a))
        return commy__err(COMMY_EINVAL, "retiring a segment needs its lock held by this thread (commy_alloc_lock)");
    /* The mark, then the in-flight counts (seq_cst both, as the writers' count,
     * then mark, docs/format.md "Retirement"): a writer that missed the mark
     * is still counted here, so we wait until its write is done. */
    atomic_store_explicit(a->retiredw, 1, memory_order_seq_cst);
    uint64_t start = now_ms_boot();
    for (uint32_t i = 0; i < COMMY__PROC_SLOTS; i++) {
        struct commy__proc *s = &a->hdr->procs[i];
        for (unsigned spins = 0; atomic_load_explicit(&s->inflight, memory_order_seq_cst) != 0; spins++) {
            if (!slot_alive(s, 0, now_ms_boot())) break; /* a dead writer writes no more */
            if (now_ms_boot() - start > timeout_ms) {
                atomic_store_explicit(a->retiredw, 0, memory_order_seq_cst);
                return commy__err(COMMY_EBUSY, "segment '%s': process %u has had a lock-free write in flight for "
                                  "%u ms; not retired", a->path, atomic_load(&s->pid), timeout_ms);
            }
            if (spins < 64) sched_yield();
            else nanosleep(&(struct timespec){0, 100000}, NULL);
        }
    }
    return COMMY_OK;
}

void commy__lock_wake(commy_alloc *a) { syscall(SYS_futex, (uint32_t *)lock_word(a), FUTEX_WAKE, 1, NULL, NULL, 0); }

int commy__begin_slow(commy_alloc *a, int write, uint64_t *sp)
{
    if (__builtin_expect(atomic_load_explicit(&a->closed, memory_order_relaxed), 0))
        return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
    if (__builtin_expect(a->remote != NULL, 0)) return commy__remote_unsupported(a, "this call");
    if (__builtin_expect(a->readonly, 0)) {
        if (write) return commy__err(COMMY_EPERM, "segment '%s' is open read-only", a->path);
        *sp = 0;
        refresh_size(a);
        return COMMY_OK;
    }
    if (held_by_me(a)) {
        if (a->batch_failed)
            return commy__err(COMMY_EJOURNAL, "segment '%s': this batch outgrew the journal and was rolled back; "
                              "end it with commy_alloc_unlock", a->path);
        if (write && commy__alloc_retired(a)) return retired_err(a);
        a->depth++;
        *sp = savepoint(a);
        return COMMY_OK;
    }
    int rc = lock_segment(a, a->lock_timeout_ms);
    if (rc) return rc;
    if (write && commy__alloc_retired(a)) return commy__begin_refuse_retired(a);
    *sp = 0;
    return COMMY_OK;
}

int commy__end_slow(commy_alloc *a, uint64_t sp, int rc)
{
    if (a->readonly) return rc;
    if (rc < 0) {
        if (rc == COMMY_EJOURNAL && a->depth > 1) {
            /* A batch cannot be half-applied: undo all of it. */
            sp = 0;
            a->batch_failed = 1;
        }
        int rb = rollback_to(a, sp & 0xffffffffu);
        if (rb) rc = rb;
        a->npending = (uint32_t)(sp >> 32);
        refresh_size(a); /* a rolled-back growth restored the header's size */
    }
    if (--a->depth == 0) unlock_segment(a);
    return rc;
}

/* The segment a forwards to last (a itself if it never moved): a batch
 * locks the file the container handles work in. */
static commy_alloc *newest(commy_alloc *a)
{
    for (commy_alloc *nx; (nx = atomic_load_explicit(&a->forward, memory_order_acquire)) != NULL;) a = nx;
    return a;
}

int commy_alloc_lock(commy_alloc *a, uint32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(a);
    for (;;) {
        a = newest(a);
        if (atomic_load(&a->closed)) return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
        if (a->remote) return commy__remote_unsupported(a, __func__);
        if (a->readonly) return commy__err(COMMY_EPERM, "segment '%s' is open read-only", a->path);
        if (held_by_me(a)) {
            a->depth++;
            return COMMY_OK;
        }
        int rc = lock_segment(a, timeout_ms);
        /* A session's retired file: batch in the new one once it is there
         * (without a session, the batch's writes are refused one by one). */
        if (rc || !commy__alloc_retired(a) || atomic_load(&a->retire_wait_ms) == 0) return rc;
        unlock_segment(a);
        if ((rc = commy__retired_wait(a)) != COMMY_OK) return rc;
    }
}

int commy_alloc_unlock(commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    /* the batch holds the newest file's lock (commy_alloc_lock) */
    for (commy_alloc *t = a; t != NULL; t = atomic_load_explicit(&t->forward, memory_order_acquire))
        if (!t->readonly && held_by_me(t)) {
            a = t;
            break;
        }
    if (a->readonly || !held_by_me(a))
        return commy__err(COMMY_EINVAL, "segment '%s': commy_alloc_unlock without commy_alloc_lock on this thread",
                          a ? a->path : "?");
    int failed = a->batch_failed;
    if (--a->depth == 0) unlock_segment(a);
    if (failed)
        return commy__err(COMMY_EJOURNAL, "segment '%s': the batch outgrew the journal and was rolled back", a->path);
    return COMMY_OK;
}

/* --------------------------------------------------------------- growth */

int commy__grow(commy_alloc *a, uint64_t min_size)
{
    struct commy__header *h = a->hdr;
    if (min_size > h->max_size)
        return commy__err(COMMY_ENOSPC,
                          "segment '%s' is full: it needs %" PRIu64 " bytes and its maximum size is %" PRIu64,
                          a->path, min_size, h->max_size);
    uint64_t cur = a->size;
    uint64_t want = cur + cur / 2;
    if (want < min_size) want = min_size;
    want = (want + 65535) & ~(uint64_t)65535;
    if (want > h->max_size) want = h->max_size & ~(uint64_t)15;
    if (want < min_size) want = min_size;
    struct stat st;
    if (fstat(a->fd, &st) != 0) return commy__err(COMMY_EIO, "segment '%s': fstat: %s", a->path, strerror(errno));
    if ((uint64_t)st.st_size < want) {
        int e = posix_fallocate(a->fd, 0, (off_t)want);
        if (e == EOPNOTSUPP || e == EINVAL) e = ftruncate(a->fd, (off_t)want) ? errno : 0;
        if (e)
            return commy__err(e == ENOSPC ? COMMY_ENOSPC : COMMY_EIO, "segment '%s': growing the file to %" PRIu64
                              " bytes failed: %s", a->path, want, strerror(e));
    }
    int rc = commy__log(a, (void *)&h->size, 8);
    if (rc) return rc;
    atomic_store_explicit(&h->size, want, memory_order_release);
    a->size = want;
    return COMMY_OK;
}

/* ---------------------------------------------------------- open, close */

static int validate_header(const struct commy__header *h, uint64_t file_size, const char *path)
{
    if (h->magic != COMMY__MAGIC)
        return commy__err(COMMY_ECORRUPT, "'%s' is not a commy segment (bad magic)", path);
    if (h->layout_major != COMMY_LAYOUT_MAJOR)
        return commy__err(COMMY_ELAYOUT, "segment '%s' was written by layout %u.%u; this library reads layout %u.x",
                          path, h->layout_major, h->layout_minor, COMMY_LAYOUT_MAJOR);
    const char *bad = NULL;
    uint64_t size = atomic_load(&h->size);
    if (h->header_size != COMMY__HEADER_SIZE) bad = "header size";
    else if (h->max_size > COMMY__MAX_SIZE_LIMIT || h->max_size < size) bad = "maximum size";
    else if (h->journal_off != COMMY__HEADER_SIZE || h->journal_size < 4096 || h->journal_size > (64u << 20) ||
             (h->journal_size & 15))
        bad = "journal";
    else if (h->heap_off != h->journal_off + h->journal_size || (h->heap_off & 4095)) bad = "heap offset";
    else if (size < h->heap_off + 64 || (size & 15)) bad = "size";
    else if (size > file_size) bad = "size (the file is shorter than its header says: truncated?)";
    else if (h->proc_slots != COMMY__PROC_SLOTS || h->proc_slot_size != sizeof(struct commy__proc) ||
             h->proc_off != COMMY__PROC_OFF)
        bad = "process table";
    else if (h->heap_state_off != COMMY__HEAP_STATE_OFF) bad = "allocator state offset";
    else if (h->lock_off != COMMY__LOCK_OFF) bad = "lock offset";
    else if (h->root_off != 0 && (h->root_off < h->heap_off || h->root_off >= size)) bad = "root directory offset";
    if (bad) return commy__err(COMMY_ECORRUPT, "segment '%s' is damaged: bad %s in its header", path, bad);
    return COMMY_OK;
}

/* Only a process alone with the file may do this: the word's owner is gone,
 * and so is every thread the wait table counts (a waiter killed while
 * registered left its bucket one too high; this is where that ends). */
static void reset_lock(commy_alloc *a)
{
    memset(&a->hdr->lock, 0, sizeof a->hdr->lock);
    memset(a->hdr->wait, 0, sizeof a->hdr->wait);
}

void commy_alloc_options_init(commy_alloc_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->version = COMMY_ALLOC_OPTIONS_VERSION;
    o->flags = COMMY_ALLOC_CREATE;
    o->initial_size = 1u << 20;
    o->max_size = 1ull << 30;
    o->journal_size = 256u << 10;
    o->mode = 0600;
    o->heartbeat_interval_ms = 1000;
    o->stale_after_ms = 5000;
    o->create_timeout_ms = 5000;
    o->lock_timeout_ms = 0;
}

static int map_file(commy_alloc *a, uint64_t len)
{
    int prot = a->readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *p = mmap(NULL, len, prot, MAP_SHARED | MAP_NORESERVE, a->fd, 0);
    if (p == MAP_FAILED) return commy__err(COMMY_EIO, "segment '%s': mmap of %" PRIu64 " bytes failed: %s", a->path, len,
                                           strerror(errno));
    a->base = p;
    a->map_size = len;
    a->hdr = (struct commy__header *)p;
    return COMMY_OK;
}

static void unmap_file(commy_alloc *a)
{
    if (a->base) munmap(a->base, a->map_size);
    a->base = NULL;
    a->hdr = NULL;
}

/* Builds a new segment in the (empty or half-initialised) file. Holds LOCK_EX. */
static int create_segment(commy_alloc *a, const commy_alloc_options *o)
{
    uint64_t journal_size = (o->journal_size + 4095) & ~(uint64_t)4095;
    uint64_t heap_off = COMMY__HEADER_SIZE + journal_size;
    uint64_t size = o->initial_size;
    if (size < heap_off + COMMY__MIN_HEAP) size = heap_off + COMMY__MIN_HEAP;
    size = (size + 4095) & ~(uint64_t)4095;
    if (size > o->max_size)
        return commy__err(COMMY_EINVAL, "segment '%s': max_size %" PRIu64 " is below the smallest segment (%" PRIu64
                          " bytes with a %" PRIu64 "-byte journal)", a->path, o->max_size, size, journal_size);
    uint64_t magic = COMMY__MAGIC_INIT;
    if (pwrite(a->fd, &magic, 8, 0) != 8 || ftruncate(a->fd, 0) != 0 || pwrite(a->fd, &magic, 8, 0) != 8 ||
        ftruncate(a->fd, (off_t)size) != 0)
        return commy__err(errno == ENOSPC ? COMMY_ENOSPC : COMMY_EIO, "segment '%s': creating the file failed: %s",
                          a->path, strerror(errno));
    int rc = map_file(a, o->max_size);
    if (rc) return rc;
    struct commy__header *h = a->hdr;
    h->layout_major = COMMY_LAYOUT_MAJOR;
    h->layout_minor = COMMY_LAYOUT_MINOR;
    h->header_size = COMMY__HEADER_SIZE;
    h->flags = 0;
    h->creator_version = COMMY_VERSION_NUMBER;
    atomic_store(&h->size, size);
    h->max_size = o->max_size;
    h->journal_off = COMMY__HEADER_SIZE;
    h->journal_size = journal_size;
    h->heap_off = heap_off;
    h->root_off = 0;
    h->created_ns = now_ns_real();
    h->salt = commy__random64();
    h->proc_slots = COMMY__PROC_SLOTS;
    h->proc_slot_size = sizeof(struct commy__proc);
    h->proc_off = COMMY__PROC_OFF;
    h->heap_state_off = COMMY__HEAP_STATE_OFF;
    atomic_store(&h->recoveries, 0);
    h->lock_off = COMMY__LOCK_OFF;
    reset_lock(a);
    a->size = size;
    cache_journal(a);
    atomic_store(&journal(a)->used, 0);
    /* The heap's writes go through the journal API; nobody else can see them yet. */
    a->owner = my_lock_word();
    atomic_store(&a->owned, 1);
    a->depth = 1;
    rc = commy__heap_init(a);
    atomic_store(&journal(a)->used, 0);
    atomic_store(&a->owned, 0);
    a->depth = 0;
    if (rc) return rc;
    /* Publish the magic last: attachers treat it as "initialised". */
    __atomic_store_n(&h->magic, COMMY__MAGIC, __ATOMIC_RELEASE);
    return COMMY_OK;
}

/* Waits for a shared flock, which an initialiser holds exclusively. */
static int wait_shared(commy_alloc *a, uint64_t deadline_ms)
{
    for (;;) {
        if (flock(a->fd, LOCK_SH | LOCK_NB) == 0) return COMMY_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return commy__err(COMMY_EIO, "segment '%s': flock: %s", a->path, strerror(errno));
        if (now_ms_boot() >= deadline_ms)
            return commy__err(COMMY_ETIMEDOUT, "segment '%s': another process kept initialising it past the timeout",
                              a->path);
        sleep_ms(1);
    }
}

static int attach(commy_alloc *a, const commy_alloc_options *o)
{
    int create = (o->flags & COMMY_ALLOC_CREATE) && !a->readonly;
    uint64_t deadline = now_ms_boot() + o->create_timeout_ms;
    for (;;) {
        int alone = 0;
        if (!a->readonly && flock(a->fd, LOCK_EX | LOCK_NB) == 0) {
            alone = 1;
        } else {
            int rc = wait_shared(a, deadline);
            if (rc) return rc;
        }
        struct stat st;
        if (fstat(a->fd, &st) != 0) return commy__err(COMMY_EIO, "segment '%s': fstat: %s", a->path, strerror(errno));
        if (!S_ISREG(st.st_mode)) return commy__err(COMMY_EINVAL, "'%s' is not a regular file", a->path);
        struct commy__header hb;
        uint64_t fsize = (uint64_t)st.st_size;
        ssize_t n = fsize >= sizeof hb ? pread(a->fd, &hb, sizeof hb, 0) : (ssize_t)(fsize >= 8 ? pread(a->fd, &hb, 8, 0) : 0);
        uint64_t magic = n >= 8 ? hb.magic : 0;
        int blank = fsize == 0 || magic == COMMY__MAGIC_INIT;
        if (blank) {
            if (!alone) {
                /* Someone else may be creating it, or a creator died: let the flock decide. */
                flock(a->fd, LOCK_UN);
                if (now_ms_boot() >= deadline)
                    return commy__err(COMMY_ETIMEDOUT, "segment '%s' is still not initialised after %u ms", a->path,
                                      o->create_timeout_ms);
                sleep_ms(1);
                continue;
            }
            if (!create)
                return commy__err(COMMY_ECORRUPT, "'%s' is %s, not an initialised commy segment", a->path,
                                  fsize == 0 ? "empty" : "half-initialised");
            int rc = create_segment(a, o);
            if (rc) return rc;
        } else {
            if (fsize < sizeof hb)
                return commy__err(COMMY_ECORRUPT, "'%s' is not a commy segment (%" PRIu64 " bytes, shorter than a header)",
                                  a->path, fsize);
            int rc = validate_header(&hb, fsize, a->path);
            if (rc) return rc;
            rc = map_file(a, hb.max_size);
            if (rc) return rc;
            rc = validate_header(a->hdr, fsize, a->path);
            if (rc) return rc;
            a->size = atomic_load(&a->hdr->size);
            cache_journal(a);
            if (alone) {
                /* No other process has it open: whatever the lock word says is stale. */
                reset_lock(a);
                if (atomic_load(&journal(a)->used) != 0) {
                    rc = recover(a);
                    if (rc) return rc;
                }
            }
        }
        if (alone && flock(a->fd, LOCK_SH) != 0)
            return commy__err(COMMY_EIO, "segment '%s': flock: %s", a->path, strerror(errno));
        return COMMY_OK;
    }
}

int commy_alloc_open(commy_alloc **out, const char *path, const commy_alloc_options *opts)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return commy__err(COMMY_EINVAL, "commy_alloc_open: path is NULL or empty");
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    if (opts) {
        if (opts->version != COMMY_ALLOC_OPTIONS_VERSION)
            return commy__err(COMMY_EINVAL, "commy_alloc_open: options version %u unknown (expected %u); "
                              "use commy_alloc_options_init", opts->version, COMMY_ALLOC_OPTIONS_VERSION);
        o = *opts;
    }
    if (o.max_size == 0 || o.max_size > COMMY__MAX_SIZE_LIMIT)
        return commy__err(COMMY_EINVAL, "commy_alloc_open: max_size must be between 1 and 512 GiB");
    if (o.initial_size > o.max_size)
        return commy__err(COMMY_EINVAL, "commy_alloc_open: initial_size %" PRIu64 " exceeds max_size %" PRIu64,
                          o.initial_size, o.max_size);
    if (o.journal_size < 4096 || o.journal_size > (64u << 20))
        return commy__err(COMMY_EINVAL, "commy_alloc_open: journal_size must be between 4 KiB and 64 MiB");
    if ((o.flags & COMMY_ALLOC_READONLY) && (o.flags & COMMY_ALLOC_EXCL))
        return commy__err(COMMY_EINVAL, "commy_alloc_open: READONLY and EXCL together make no sense");
    if ((o.flags & COMMY_ALLOC_HEARTBEAT_THREAD) && o.heartbeat_interval_ms == 0)
        return commy__err(COMMY_EINVAL, "commy_alloc_open: heartbeat_interval_ms must be > 0 with a heartbeat thread");

    commy_alloc *a = calloc(1, sizeof *a);
    if (!a) return commy__err(COMMY_ENOMEM, "commy_alloc_open: out of memory");
    a->path = strdup(path);
    a->fd = -1;
    a->slot = -1;
    a->readonly = (o.flags & COMMY_ALLOC_READONLY) != 0;
    a->stale_after_ms = o.stale_after_ms;
    a->lock_timeout_ms = o.lock_timeout_ms;
    atomic_store(&a->refs, 1);
    int rc;
    if (!a->path) {
        rc = commy__err(COMMY_ENOMEM, "commy_alloc_open: out of memory");
        goto fail;
    }
    int flags = O_CLOEXEC | (a->readonly ? O_RDONLY : O_RDWR);
    if (!a->readonly && (o.flags & COMMY_ALLOC_CREATE)) flags |= O_CREAT | ((o.flags & COMMY_ALLOC_EXCL) ? O_EXCL : 0);
    a->fd = open(path, flags, (mode_t)o.mode);
    if (a->fd < 0) {
        int e = errno;
        rc = e == ENOENT   ? commy__err(COMMY_ENOTFOUND, "segment '%s' does not exist", path)
             : e == EEXIST ? commy__err(COMMY_EEXISTS, "segment '%s' already exists", path)
             : (e == EACCES || e == EROFS || e == EPERM)
                 ? commy__err(COMMY_EPERM, "cannot open segment '%s': %s", path, strerror(e))
             : e == EISDIR ? commy__err(COMMY_EINVAL, "'%s' is a directory, not a segment file", path)
                           : commy__err(COMMY_EIO, "cannot open segment '%s': %s", path, strerror(e));
        goto fail;
    }
    rc = attach(a, &o);
    if (rc) goto fail;
    if (!a->readonly) {
        rc = claim_slot(a);
        if (rc) goto fail;
    }
    if (o.flags & COMMY_ALLOC_HEARTBEAT_THREAD && !a->readonly) {
        a->hb_interval_ms = o.heartbeat_interval_ms;
        pthread_mutex_init(&a->hb_mu, NULL);
        pthread_cond_init(&a->hb_cv, NULL);
        a->hb_running = 1;
        if (pthread_create(&a->hb_thread, NULL, heartbeat_main, a) != 0) {
            a->hb_running = 0;
            rc = commy__err(COMMY_EIO, "segment '%s': cannot start the heartbeat thread", path);
            goto fail;
        }
    }
    *out = a;
    return COMMY_OK;
fail:
    release_slot(a);
    unmap_file(a);
    if (a->fd >= 0) close(a->fd);
    free(a->path);
    free(a);
    return rc;
}

/* Drops one reference; the last one unmaps. Container handles call it too. */
static void release(commy_alloc *a)
{
    if (atomic_fetch_sub(&a->refs, 1) != 1) return;
    if (a->remote && a->remote->release) a->remote->release(a->remote_ctx);
    free(a->pending);
    unmap_file(a);
    if (a->fd >= 0) close(a->fd);
    free(a->path);
    free(a);
}

void commy__alloc_retain(commy_alloc *a) { atomic_fetch_add(&a->refs, 1); }
void commy__alloc_release(commy_alloc *a) { release(a); }

void commy_alloc_close(commy_alloc *a)
{
    if (!a) return;
    int was = 0;
    if (!atomic_compare_exchange_strong(&a->closed, &was, 1)) return;
    if (a->hb_running) {
        pthread_mutex_lock(&a->hb_mu);
        a->hb_running = 0;
        pthread_cond_signal(&a->hb_cv);
        pthread_mutex_unlock(&a->hb_mu);
        pthread_join(a->hb_thread, NULL);
        pthread_mutex_destroy(&a->hb_mu);
        pthread_cond_destroy(&a->hb_cv);
    }
    if (held_by_me(a)) {
        /* Closing inside a batch: commit what the batch did and let go. */
        a->depth = 1;
        unlock_segment(a);
    }
    if (!a->readonly) release_slot(a);
    release(a);
}

/* ------------------------------------------------------ public queries */

void *commy_alloc_ptr(commy_alloc *a, uint64_t offset)
{
    if (!a || atomic_load(&a->closed) || a->remote) return NULL;
    refresh_size(a);
    if (offset < a->hdr->heap_off || offset >= a->size) return NULL;
    return a->base + offset;
}

uint64_t commy_alloc_offset(commy_alloc *a, const void *ptr)
{
    if (!a || !ptr || atomic_load(&a->closed)) return 0;
    const char *p = ptr;
    if (p < a->base || p >= a->base + a->map_size) return 0;
    return (uint64_t)(p - a->base);
}

const char *commy_alloc_path(const commy_alloc *a) { return a ? a->path : NULL; }

uint64_t *commy__root_field(commy_alloc *a) { return &a->hdr->root_off; }

int commy_alloc_info(commy_segment_info *out, commy_alloc *a)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_info: out is NULL");
    COMMY__CHECK_HANDLE(a);
    if (atomic_load(&a->closed)) return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
    if (a->remote) return commy__remote_unsupported(a, __func__);
    const struct commy__header *h = a->hdr;
    memset(out, 0, sizeof *out);
    out->layout_major = h->layout_major;
    out->layout_minor = h->layout_minor;
    out->header_size = h->header_size;
    out->flags = h->flags;
    out->creator_version = h->creator_version;
    out->size = atomic_load(&h->size);
    out->max_size = h->max_size;
    out->journal_offset = h->journal_off;
    out->journal_size = h->journal_size;
    out->journal_used = atomic_load(&journal(a)->used);
    out->heap_offset = h->heap_off;
    out->root_offset = h->root_off;
    out->created_ns = h->created_ns;
    out->recoveries = atomic_load(&h->recoveries);
    out->process_slots = h->proc_slots;
    out->readonly = (uint32_t)a->readonly;
    return COMMY_OK;
}

int commy_alloc_process(commy_process_info *out, commy_alloc *a, uint32_t slot)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_process: out is NULL");
    COMMY__CHECK_HANDLE(a);
    if (atomic_load(&a->closed)) return commy__err(COMMY_ECLOSED, "segment '%s' is closed", a->path);
    if (a->remote) return commy__remote_unsupported(a, __func__);
    if (slot >= COMMY__PROC_SLOTS)
        return commy__err(COMMY_ERANGE, "process slot %u out of range (the table has %u)", slot, COMMY__PROC_SLOTS);
    const struct commy__proc *s = &a->hdr->procs[slot];
    uint64_t now = now_ms_boot();
    memset(out, 0, sizeof *out);
    out->slot = slot;
    out->pid = atomic_load(&s->pid);
    out->state = atomic_load(&s->state);
    out->start_time = s->start_time;
    uint64_t hb = atomic_load(&s->heartbeat_ms);
    out->heartbeat_age_ms = hb == 0 ? UINT64_MAX : (now > hb ? now - hb : 0);
    out->alive = (uint32_t)slot_alive(s, a->stale_after_ms, now);
    return COMMY_OK;
}

int commy_alloc_stats(commy_heap_stats *out, commy_alloc *a)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_stats: out is NULL");
    COMMY__CHECK_HANDLE(a);
    uint64_t sp;
    int rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    commy__heap_stats(a, out);
    uint32_t live = 0;
    commy_alloc_reap(&live, a);
    out->attached = live;
    out->recoveries = atomic_load(&a->hdr->recoveries);
    struct stat st;
    if (fstat(a->fd, &st) == 0) out->file_size = (uint64_t)st.st_size;
    out->max_size = a->hdr->max_size;
    return commy__end(a, sp, COMMY_OK);
}

int commy_alloc_check(commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    uint64_t sp;
    int rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    if (atomic_load(&journal(a)->used) != 0 && !a->readonly)
        rc = commy__err(COMMY_ECORRUPT, "segment '%s': the journal is not empty at rest", a->path);
    if (rc == 0) rc = validate_header(a->hdr, a->size, a->path);
    if (rc == 0) rc = commy__heap_check(a);
    if (rc == 0) rc = commy__roots_check(a);
    return commy__end(a, sp, rc);
}

int commy_alloc_shrink_to_fit(commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    uint64_t sp, new_size = 0;
    int rc, more = !held_by_me(a);
    /* Outside a batch, flush the small-block cache in as many committed steps as it takes. */
    while (more) {
        rc = commy__begin(a, 1, &sp);
        if (rc) return rc;
        rc = commy__end(a, sp, commy__heap_flush(a, &more));
        if (rc) return rc;
    }
    rc = commy__begin(a, 1, &sp);
    if (rc) return rc;
    rc = commy__heap_shrink(a, &new_size);
    if (rc == 0 && new_size && a->depth == 1) {
        /* Commit first, then cut the file while still holding the lock, so no
         * other process can grow into the bytes being cut. */
        atomic_store_explicit(&journal(a)->used, sp, memory_order_release);
        if (ftruncate(a->fd, (off_t)new_size) != 0)
            rc = commy__err(COMMY_EIO, "segment '%s': truncating to %" PRIu64 " bytes failed: %s", a->path, new_size,
                            strerror(errno));
    }
    return commy__end(a, sp, rc);
}
