/* Four processes change the same map and set at once: disjoint keys (each
 * process its own, some removed again), overlapping keys (every process puts
 * the same ones), and variable-length entries. The final contents must be
 * exact, every overlapping key added exactly once, the segment consistent. */
#include "harness.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define PROCS 4
/* A tenth of the work under valgrind: four instrumented processes contending
 * for one lock on two cores crawl. */
static int64_t N_OWN = 20000, N_SHARED = 20000, N_STR = 3000;

static const char *seg_path;

static int64_t own_key(int p, int64_t i) { return (int64_t)p * 1000000000 + i * 7919; }

static void child(int p, _Atomic long *added_total)
{
    commy_alloc *a = NULL;
    if (commy_alloc_open(&a, seg_path, NULL) != COMMY_OK) _exit(10);
    commy_map *m = NULL, *sm = NULL;
    commy_set *s = NULL;
    if (commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(11);
    if (commy_map_open(&sm, a, "strs", COMMY_T_STR, COMMY_T_BYTES, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(12);
    if (commy_set_open(&s, a, "s", COMMY_T_I64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(13);
    long added = 0;
    char key[32], val[64];
    /* Interleave the three kinds of work so the processes contend throughout,
     * each walking the shared keys from a different starting point. */
    for (int64_t i = 0; i < N_OWN; i++) {
        int64_t k = own_key(p, i), v = k ^ p;
        if (commy_map_put(m, &k, 8, &v, 8) != COMMY_OK) _exit(20);
        if (i % 3 == 0 && commy_map_remove(m, &k, 8) != COMMY_OK) _exit(21);
        int64_t sk = -1 - ((i + (int64_t)p * (N_SHARED / PROCS)) % N_SHARED);
        int64_t sv = sk * 3;
        if (commy_map_put(m, &sk, 8, &sv, 8) != COMMY_OK) _exit(22);
        int a1 = 0;
        if (commy_set_add(&a1, s, &sk, 8) != COMMY_OK) _exit(23);
        added += a1;
        if (i < N_STR) {
            int64_t j = (i + p * 500) % N_STR;
            int kl = snprintf(key, sizeof key, "key-%lld", (long long)j);
            int vl = snprintf(val, sizeof val, "value of %lld, long enough to need a block", (long long)j);
            if (commy_map_put(sm, key, (size_t)kl, val, (size_t)vl) != COMMY_OK) _exit(24);
        }
    }
    atomic_fetch_add(added_total, added);
    commy_map_close(m);
    commy_map_close(sm);
    commy_set_close(s);
    commy_alloc_close(a);
    _exit(0);
}

static void test_concurrent(void)
{
    if (RUNNING_ON_VALGRIND) {
        N_OWN /= 10;
        N_SHARED /= 10;
        N_STR /= 10;
    }
    seg_path = harness_path("mp.seg");
    unlink(seg_path);
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, seg_path, NULL) == COMMY_OK);
    commy_map *m = NULL, *sm = NULL;
    commy_set *s = NULL;
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_map_open(&sm, a, "strs", COMMY_T_STR, COMMY_T_BYTES, 0) == COMMY_OK);
    REQUIRE(commy_set_open(&s, a, "s", COMMY_T_I64, 0) == COMMY_OK);
    /* Closed before forking: a child must not inherit this mapping (under
     * valgrind its exit-time leak scan would read the whole reserved range,
     * faulting on every word past the end of the file). */
    commy_map_close(m);
    commy_map_close(sm);
    commy_set_close(s);
    commy_alloc_close(a);
    _Atomic long *added_total = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(added_total != MAP_FAILED);
    atomic_store(added_total, 0);

    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        REQUIRE(pids[p] >= 0);
        if (pids[p] == 0) child(p, added_total);
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        REQUIRE(waitpid(pids[p], &st, 0) == pids[p]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "child %d: status 0x%x\n", p, st);
    }

    REQUIRE(commy_alloc_open(&a, seg_path, NULL) == COMMY_OK);
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_map_open(&sm, a, "strs", COMMY_T_STR, COMMY_T_BYTES, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_set_open(&s, a, "s", COMMY_T_I64, COMMY_OPEN_EXISTING) == COMMY_OK);
    CHECK_OK(commy_alloc_check(a));
    uint64_t len = 0;
    uint64_t own_left = (uint64_t)(N_OWN - (N_OWN + 2) / 3);
    CHECK_OK(commy_map_len(&len, m));
    CHECK(len == PROCS * own_left + (uint64_t)N_SHARED);
    for (int p = 0; p < PROCS; p++)
        for (int64_t i = 0; i < N_OWN; i++) {
            int64_t k = own_key(p, i), v = 0;
            int rc = commy_map_get(m, &k, 8, &v, 8, NULL);
            if (i % 3 == 0) {
                CHECK_RC(rc, COMMY_ENOTFOUND);
            } else {
                CHECK_RC(rc, COMMY_OK);
                CHECK(v == (k ^ p));
            }
        }
    for (int64_t i = 0; i < N_SHARED; i++) {
        int64_t k = -1 - i, v = 0;
        CHECK_OK(commy_map_get(m, &k, 8, &v, 8, NULL));
        CHECK(v == k * 3);
        int in = 0;
        CHECK_OK(commy_set_contains(&in, s, &k, 8));
        CHECK(in == 1);
    }
    CHECK_OK(commy_set_len(&len, s));
    CHECK(len == (uint64_t)N_SHARED);
    CHECK(atomic_load(added_total) == N_SHARED); /* each shared key was new to exactly one process */
    CHECK_OK(commy_map_len(&len, sm));
    CHECK(len == (uint64_t)N_STR);
    char key[32], val[64], want[64];
    for (int64_t j = 0; j < N_STR; j++) {
        int kl = snprintf(key, sizeof key, "key-%lld", (long long)j);
        int wl = snprintf(want, sizeof want, "value of %lld, long enough to need a block", (long long)j);
        size_t vl = 0;
        CHECK_OK(commy_map_get(sm, key, (size_t)kl, val, sizeof val, &vl));
        CHECK(vl == (size_t)wl && memcmp(val, want, vl) == 0);
    }
    /* Every replaced value's block went back: one block per key and value, plus the tables. */
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    CHECK_OK(commy_map_clear(sm));
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(before.live_allocs - after.live_allocs == 2 * (uint64_t)N_STR + 1);
    commy_map_close(m);
    commy_map_close(sm);
    commy_set_close(s);
    commy_alloc_close(a);
    munmap((void *)added_total, 4096);
}

int main(void)
{
    harness_run("concurrent", test_concurrent);
    return harness_finish();
}
