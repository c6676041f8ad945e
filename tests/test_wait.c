/* Change notification without the lock (docs/format.md, "Change
 * notification"): waiters count themselves in the segment header's wait
 * table, never in a container's block, so a root removed (and its block
 * reused) under sleeping waiters wakes them with COMMY_ENOTFOUND; a waiter
 * killed -9 while asleep leaves the segment consistent and writers working;
 * many waiters and writers in several processes lose no wake-up; containers
 * that share a bucket wake each other's waiters spuriously but a wait still
 * returns only when its own container changed.
 *
 * The tests read the wait table's counters straight from the file (header
 * offset 192, 40 x {u32 seq, u32 waiters}) to know when waiters are asleep.
 * Waits that a change must end have no timeout of their own (a wait that
 * times out re-checks the version and would hide a missing wake-up): the
 * parent's hang guard kills a waiter still asleep after GUARD_MS, and that
 * fails the test. No timing assertions. */
#include "harness.h"
#include "../core/internal.h" /* commy__alloc_forward: what a session does when its service moves */

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_OFF 192
#define WAIT_BUCKETS 40
#ifndef GUARD_MS
#define GUARD_MS 30000 /* hang guard for every wait that must end */
#endif

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sum of the wait table's waiter counts, read from the file. */
static uint64_t registered(const char *path)
{
    uint32_t t[2 * WAIT_BUCKETS];
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, t, sizeof t, WAIT_OFF) == (ssize_t)sizeof t);
    close(fd);
    uint64_t n = 0;
    for (int i = 0; i < WAIT_BUCKETS; i++) n += t[2 * i + 1];
    return n;
}

/* Waits (hang guard: GUARD_MS) until n waiters are registered. */
static int wait_registered(const char *path, uint64_t n)
{
    uint64_t t0 = now_ms();
    while (registered(path) != n) {
        if (now_ms() - t0 > GUARD_MS) return 0;
        usleep(2000);
    }
    return 1;
}

static commy_alloc *open_path(const char *path)
{
    commy_alloc *a = NULL;
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.max_size = 64u << 20;
    REQUIRE(commy_alloc_open(&a, path, &o) == COMMY_OK);
    return a;
}

/* A child that waits on box `name` (seen = its version at open) and exits
 * with the wait's return code made positive (0 = COMMY_OK). */
static pid_t spawn_box_waiter(const char *path, const char *name)
{
    pid_t p = fork();
    REQUIRE(p >= 0);
    if (p > 0) return p;
    commy_alloc *a = NULL;
    if (commy_alloc_open(&a, path, NULL) != COMMY_OK) _exit(100);
    commy_box *b = NULL;
    if (commy_box_open(&b, a, name, COMMY_T_I64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(101);
    uint32_t v;
    if (commy_box_version(&v, b) != COMMY_OK) _exit(102);
    int rc = commy_box_wait(b, v, -1);
    commy_box_close(b);
    commy_alloc_close(a);
    _exit(-rc);
}

/* The child's exit status (200 + signal if killed); a child still running
 * after GUARD_MS is killed and reported as 255 (a hang). */
static int exit_code(pid_t p)
{
    int st = 0;
    uint64_t t0 = now_ms();
    pid_t r;
    while ((r = waitpid(p, &st, WNOHANG)) == 0) {
        if (now_ms() - t0 > GUARD_MS) {
            fprintf(stderr, "child %d still running after %d ms: killed (a lost wake-up?)\n", (int)p, GUARD_MS);
            kill(p, SIGKILL);
            waitpid(p, &st, 0);
            return 255;
        }
        usleep(1000);
    }
    REQUIRE(r == p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Waiters asleep on a box and a map while another process removes both
 * roots and reuses the freed blocks at once: every waiter wakes with
 * COMMY_ENOTFOUND (not a timeout, not OK), the check passes, the memory
 * comes back and the wait table's counts return to zero. */
static void test_remove_wakes_waiters(void)
{
    if (harness_valgrind()) return;
    const char *path = harness_path("remove.seg");
    commy_alloc *a = open_path(path);
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    commy_box *b = NULL;
    commy_map *m = NULL;
    CHECK_OK(commy_box_open(&b, a, "w", COMMY_T_I64, 0));
    CHECK_OK(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0));
    for (int64_t k = 0; k < 100; k++) CHECK_OK(commy_map_put(m, &k, 8, &k, 8));
    commy_box_close(b);
    uint32_t mv;
    CHECK_OK(commy_map_version(&mv, m));
    commy_map_close(m);
    commy_alloc_close(a);

    enum { NB = 3 };
    pid_t kids[NB + 1];
    for (int i = 0; i < NB; i++) kids[i] = spawn_box_waiter(path, "w");
    kids[NB] = fork();
    REQUIRE(kids[NB] >= 0);
    if (kids[NB] == 0) {
        commy_alloc *ca = NULL;
        commy_map *cm = NULL;
        if (commy_alloc_open(&ca, path, NULL) || commy_map_open(&cm, ca, "m", COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXISTING))
            _exit(100);
        int rc = commy_map_wait(cm, mv, -1);
        commy_map_close(cm);
        commy_alloc_close(ca);
        _exit(-rc);
    }
    CHECK(wait_registered(path, NB + 1));
    /* The remover is another process than the waiters. */
    pid_t rm = fork();
    REQUIRE(rm >= 0);
    if (rm == 0) {
        commy_alloc *ca = NULL;
        if (commy_alloc_open(&ca, path, NULL)) _exit(100);
        if (commy_root_remove(ca, "w") || commy_root_remove(ca, "m")) _exit(101);
        /* Reuse the freed blocks straight away: new containers, new values. */
        for (int i = 0; i < 8; i++) {
            char name[16];
            snprintf(name, sizeof name, "r%d", i);
            commy_box *nb = NULL;
            if (commy_box_open(&nb, ca, name, COMMY_T_I64, 0) || commy_box_set(nb, &(int64_t){i}, 8)) _exit(102);
            commy_box_close(nb);
        }
        for (int i = 0; i < 8; i++) {
            char name[16];
            snprintf(name, sizeof name, "r%d", i);
            if (commy_root_remove(ca, name)) _exit(103);
        }
        commy_alloc_close(ca);
        _exit(0);
    }
    CHECK(exit_code(rm) == 0);
    for (int i = 0; i <= NB; i++) CHECK(exit_code(kids[i]) == -COMMY_ENOTFOUND);
    CHECK(registered(path) == 0);
    a = open_path(path);
    CHECK_OK(commy_alloc_check(a));
    uint64_t n = 9;
    CHECK_OK(commy_root_count(&n, a));
    CHECK(n == 0);
    CHECK_OK(commy_alloc_stats(&after, a));
    /* Everything but the (now empty) root directory came back. */
    CHECK(after.live_allocs == before.live_allocs + 1);
    commy_alloc_close(a);
}

/* A waiter killed -9 while asleep: writers go on working (lock-free box
 * writes and locked map writes alike), another waiter is still woken, the
 * check passes; the dead waiter's count stays (a needless wake per write)
 * until a process opens the file alone, which clears the table. */
static void test_killed_waiter(void)
{
    if (harness_valgrind()) return;
    const char *path = harness_path("killed.seg");
    commy_alloc *a = open_path(path);
    commy_box *b = NULL;
    CHECK_OK(commy_box_open(&b, a, "w", COMMY_T_I64, 0));
    commy_map *m = NULL;
    CHECK_OK(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0));
    pid_t victim = spawn_box_waiter(path, "w");
    CHECK(wait_registered(path, 1));
    kill(victim, SIGKILL);
    CHECK(exit_code(victim) == 200 + SIGKILL);
    CHECK(registered(path) == 1); /* the dead one's registration stays */
    for (int64_t k = 0; k < 1000; k++) {
        CHECK_OK(commy_box_fetch_add(NULL, b, 1));
        CHECK_OK(commy_map_put(m, &k, 8, &k, 8));
    }
    int64_t v = 0;
    CHECK_OK(commy_box_get(b, &v, 8, NULL));
    CHECK(v == 1000);
    CHECK_OK(commy_alloc_check(a));
    /* A live waiter is still woken by the next change. */
    pid_t w = spawn_box_waiter(path, "w");
    CHECK(wait_registered(path, 2));
    CHECK_OK(commy_box_set(b, &(int64_t){7}, 8));
    CHECK(exit_code(w) == 0);
    CHECK(registered(path) == 1);
    commy_map_close(m);
    commy_box_close(b);
    commy_alloc_close(a);
    /* Alone with the file again: the stale count is gone. */
    a = open_path(path);
    CHECK(registered(path) == 0);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

/* Many waiters, many writers, several processes: writers add to a box
 * (lock-free) and push onto a deque and put into a map (locked); each waiter
 * process runs one thread per container, each waiting change after change
 * until it has seen the final state. Changes are numbered by tickets that
 * the writers take; tickets come in runs of 64 that alternate between free
 * running (writers race each other) and lockstep (ticket t is applied only
 * once every waiter thread has seen all of t's predecessors, so every change
 * is for a while the last one, and a lost wake-up of any of them stops the
 * test: the parent's hang guard then fails it). */
#define WRITERS 3
#define WAITERS 4
#define TICKETS 2048
#define NWATCH (WAITERS * 3)

struct mp_shared {
    _Atomic int go;
    _Atomic long next;          /* the next ticket */
    _Atomic long seen[NWATCH];  /* what each waiter thread has seen */
};

struct watch {
    const char *path;
    struct mp_shared *sh;
    int idx;   /* into sh->seen */
    int which; /* 0 box, 1 deque, 2 map */
    int rc;
    long wakes;
};

static void *watch_main(void *p)
{
    struct watch *w = p;
    commy_alloc *a = NULL;
    w->rc = 100;
    if (commy_alloc_open(&a, w->path, NULL) != COMMY_OK) return NULL;
    commy_box *b = NULL;
    commy_deque *d = NULL;
    commy_map *m = NULL;
    int rc = w->which == 0   ? commy_box_open(&b, a, "count", COMMY_T_I64, COMMY_OPEN_EXISTING)
             : w->which == 1 ? commy_deque_open(&d, a, "q", COMMY_T_I64, COMMY_OPEN_EXISTING)
                             : commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXISTING);
    if (rc) {
        w->rc = 101;
        return NULL;
    }
    for (;;) {
        uint32_t v = 0;
        uint64_t have = 0;
        /* The version first: a change after it ends the wait below at once. */
        if (w->which == 0) {
            int64_t x = 0;
            rc = commy_box_version(&v, b);
            if (rc == 0) rc = commy_box_get(b, &x, 8, NULL);
            have = (uint64_t)x;
        } else if (w->which == 1) {
            rc = commy_deque_version(&v, d);
            if (rc == 0) rc = commy_deque_len(&have, d);
        } else {
            rc = commy_map_version(&v, m);
            if (rc == 0) rc = commy_map_len(&have, m);
        }
        if (rc) break;
        atomic_store(&w->sh->seen[w->idx], (long)have);
        if (have == TICKETS) break;
        /* No timeout: a lost wake-up leaves this thread asleep, and the
         * parent's hang guard fails the test. */
        rc = w->which == 0 ? commy_box_wait(b, v, -1)
             : w->which == 1 ? commy_deque_wait(d, v, -1)
                             : commy_map_wait(m, v, -1);
        if (rc) break;
        w->wakes++;
    }
    w->rc = -rc;
    if (b) commy_box_close(b);
    if (d) commy_deque_close(d);
    if (m) commy_map_close(m);
    commy_alloc_close(a);
    return NULL;
}

/* 1 once every waiter thread has seen at least n changes of its container. */
static int all_seen(struct mp_shared *sh, long n)
{
    for (int j = 0; j < NWATCH; j++)
        if (atomic_load(&sh->seen[j]) < n) return 0;
    return 1;
}

static void test_stress_no_lost_wakeup(void)
{
    if (harness_valgrind()) return;
    const char *path = harness_path("stress.seg");
    commy_alloc *a = open_path(path);
    commy_box *b = NULL;
    commy_deque *d = NULL;
    commy_map *m = NULL;
    CHECK_OK(commy_box_open(&b, a, "count", COMMY_T_I64, 0));
    CHECK_OK(commy_deque_open(&d, a, "q", COMMY_T_I64, 0));
    CHECK_OK(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0));
    commy_box_close(b);
    commy_deque_close(d);
    commy_map_close(m);
    commy_alloc_close(a);
    struct mp_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    pid_t waiters[WAITERS], writers[WRITERS];
    for (int i = 0; i < WAITERS; i++) {
        waiters[i] = fork();
        REQUIRE(waiters[i] >= 0);
        if (waiters[i] == 0) {
            struct watch ws[3];
            pthread_t th[3];
            for (int k = 0; k < 3; k++) {
                ws[k] = (struct watch){path, sh, i * 3 + k, k, 0, 0};
                if (pthread_create(&th[k], NULL, watch_main, &ws[k])) _exit(110);
            }
            int bad = 0;
            for (int k = 0; k < 3; k++) {
                pthread_join(th[k], NULL);
                if (ws[k].rc) {
                    fprintf(stderr, "waiter %d, container %d: rc %d after %ld wake-ups\n", i, k, -ws[k].rc,
                            ws[k].wakes);
                    bad = 1;
                }
            }
            _exit(bad);
        }
    }
    for (int i = 0; i < WRITERS; i++) {
        writers[i] = fork();
        REQUIRE(writers[i] >= 0);
        if (writers[i] == 0) {
            commy_alloc *ca = NULL;
            commy_box *cb = NULL;
            commy_deque *cd = NULL;
            commy_map *cm = NULL;
            if (commy_alloc_open(&ca, path, NULL) || commy_box_open(&cb, ca, "count", COMMY_T_I64, COMMY_OPEN_EXISTING) ||
                commy_deque_open(&cd, ca, "q", COMMY_T_I64, COMMY_OPEN_EXISTING) ||
                commy_map_open(&cm, ca, "m", COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXISTING))
                _exit(100);
            while (!atomic_load(&sh->go)) usleep(1000);
            for (;;) {
                long t = atomic_fetch_add(&sh->next, 1);
                if (t >= TICKETS) break;
                if ((t / 64) % 2 == 1)
                    while (!all_seen(sh, t)) sched_yield(); /* lockstep: t - 1 was the last change */
                int64_t key = t;
                if (commy_box_fetch_add(NULL, cb, 1) || commy_deque_push_back(cd, &key, 8) ||
                    commy_map_put(cm, &key, 8, &key, 8))
                    _exit(101);
            }
            commy_box_close(cb);
            commy_deque_close(cd);
            commy_map_close(cm);
            commy_alloc_close(ca);
            _exit(0);
        }
    }
    /* Start once every waiter thread has looked (it sleeps or is about to). */
    uint64_t t0 = now_ms();
    while (registered(path) < NWATCH && now_ms() - t0 < 5000) usleep(1000);
    atomic_store(&sh->go, 1);
    for (int i = 0; i < WRITERS; i++) CHECK(exit_code(writers[i]) == 0);
    for (int i = 0; i < WAITERS; i++) CHECK(exit_code(waiters[i]) == 0);
    CHECK(registered(path) == 0);
    a = open_path(path);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
    munmap(sh, sizeof *sh);
}

/* Containers that share a bucket of the wait table (41 boxes in 40
 * buckets: two must): changes to one wake the other's waiter, which goes
 * back to sleep; its wait ends only when its own box changes. Threads of one
 * process, so valgrind runs it too. */
struct one_wait {
    commy_box *b;
    uint32_t seen;
    int32_t timeout;
    int rc;
};

static void *one_wait_main(void *p)
{
    struct one_wait *w = p;
    w->rc = commy_box_wait(w->b, w->seen, w->timeout);
    return NULL;
}

static uint32_t bucket_of(uint64_t off)
{
    uint64_t x = (off >> 6) * UINT64_C(0x9E3779B97F4A7C15);
    return (uint32_t)(((x >> 32) * WAIT_BUCKETS) >> 32);
}

/* The block offset of root `name` (through the root directory's layout). */
static uint64_t root_offset(commy_alloc *a, const char *name)
{
    commy_segment_info si;
    REQUIRE(commy_alloc_info(&si, a) == COMMY_OK);
    const unsigned char *dir = commy_alloc_ptr(a, si.root_offset);
    REQUIRE(dir != NULL);
    uint64_t count;
    memcpy(&count, dir + 8, 8);
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *e = dir + 64 + 80 * i;
        if (strcmp((const char *)e, name) == 0) {
            uint64_t off;
            memcpy(&off, e + 72, 8);
            return off;
        }
    }
    REQUIRE(!"root not found");
    return 0;
}

static void test_shared_bucket(void)
{
    const char *path = harness_path("bucket.seg");
    commy_alloc *a = open_path(path);
    commy_box *bx[WAIT_BUCKETS + 1];
    int first[WAIT_BUCKETS];
    for (int i = 0; i < WAIT_BUCKETS; i++) first[i] = -1;
    int x = -1, y = -1;
    for (int i = 0; i <= WAIT_BUCKETS; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        CHECK_OK(commy_box_open(&bx[i], a, name, COMMY_T_I64, 0));
        uint32_t k = bucket_of(root_offset(a, name));
        REQUIRE(k < WAIT_BUCKETS);
        if (first[k] >= 0 && x < 0) x = first[k], y = i;
        if (first[k] < 0) first[k] = i;
    }
    REQUIRE(x >= 0);
    /* Wait on x (a short wait that must time out) while y changes all the time. */
    struct one_wait w = {bx[x], 0, 300, 99};
    CHECK_OK(commy_box_version(&w.seen, bx[x]));
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, one_wait_main, &w) == 0);
    CHECK(wait_registered(path, 1));
    for (int64_t k = 0; k < 200; k++) {
        CHECK_OK(commy_box_set(bx[y], &k, 8));
        usleep(harness_valgrind() ? 5000 : 1000);
    }
    pthread_join(th, NULL);
    CHECK_RC(w.rc, COMMY_ETIMEDOUT);
    /* And a change to x itself ends a wait without a timeout (joined under
     * a hang guard). */
    w = (struct one_wait){bx[x], 0, -1, 99};
    CHECK_OK(commy_box_version(&w.seen, bx[x]));
    REQUIRE(pthread_create(&th, NULL, one_wait_main, &w) == 0);
    CHECK(wait_registered(path, 1));
    CHECK_OK(commy_box_set(bx[y], &(int64_t){1}, 8));
    CHECK_OK(commy_box_set(bx[x], &(int64_t){1}, 8));
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GUARD_MS / 1000;
    REQUIRE(pthread_timedjoin_np(th, NULL, &until) == 0); /* else: the change did not wake it */
    CHECK_OK(w.rc);
    CHECK(registered(path) == 0);
    /* A thread that holds the segment lock may not wait. */
    CHECK_OK(commy_alloc_lock(a, 0));
    CHECK_RC(commy_box_wait(bx[x], w.seen, 10), COMMY_OK); /* moved: returns without waiting */
    uint32_t cur;
    CHECK_OK(commy_box_version(&cur, bx[x]));
    CHECK_RC(commy_box_wait(bx[x], cur, 10), COMMY_EBUSY);
    CHECK_OK(commy_alloc_unlock(a));
    CHECK(registered(path) == 0);
    for (int i = 0; i <= WAIT_BUCKETS; i++) commy_box_close(bx[i]);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

/* A session in local mode whose service moved to a new file (the server
 * retired the old one, client/session.c forwards the segment): a wait asleep
 * in the old file returns ("may have changed", since writes now land in the
 * new file), and the handle's next call follows the forward. Internal API,
 * as tests/test_retire.c drives it: the server is not needed to prove it. */
static void test_wait_follows_forward(void)
{
    commy_alloc *a = open_path(harness_path("fwd-old.seg")), *b = open_path(harness_path("fwd-new.seg"));
    commy_box *old = NULL, *nb = NULL;
    CHECK_OK(commy_box_open(&old, a, "w", COMMY_T_I64, 0));
    CHECK_OK(commy_box_open(&nb, b, "w", COMMY_T_I64, 0));
    CHECK_OK(commy_box_set(nb, &(int64_t){41}, 8));
    struct one_wait w = {old, 0, -1, 99};
    CHECK_OK(commy_box_version(&w.seen, old));
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, one_wait_main, &w) == 0);
    CHECK(wait_registered(harness_path("fwd-old.seg"), 1));
    commy__alloc_forward(a, b);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GUARD_MS / 1000;
    REQUIRE(pthread_timedjoin_np(th, NULL, &until) == 0); /* else: asleep in the old file for good */
    CHECK_OK(w.rc);
    CHECK(registered(harness_path("fwd-old.seg")) == 0);
    /* The handle now reads and writes the new file. */
    int64_t v = 0;
    CHECK_OK(commy_box_get(old, &v, 8, NULL));
    CHECK(v == 41);
    CHECK_OK(commy_box_fetch_add(NULL, old, 1));
    CHECK_OK(commy_box_get(nb, &v, 8, NULL));
    CHECK(v == 42);
    commy_box_close(old);
    commy_box_close(nb);
    commy__alloc_forget_forwarded(a);
    commy_alloc_close(a);
    commy_alloc_close(b);
}

int main(void)
{
    harness_run("wait_remove_wakes_waiters", test_remove_wakes_waiters);
    harness_run("wait_killed_waiter", test_killed_waiter);
    harness_run("wait_stress_no_lost_wakeup", test_stress_no_lost_wakeup);
    harness_run("wait_shared_bucket", test_shared_bucket);
    harness_run("wait_follows_forward", test_wait_follows_forward);
    return harness_finish();
}
