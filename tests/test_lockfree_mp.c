/* Lock-free reads (core/internal.h, "lock-free reads"): commy_vec_get,
 * commy_map_get and commy_omap_get read fixed-size values without the segment lock and keep
 * what they read only if no change overlapped. Readers in several processes
 * hammer a map and a vec while other processes change them in every way a
 * reader could trip over: values rewritten, the hash table rehashed, the
 * B+-tree split and merged, and the array relocated by growth, batches that write values and are then rolled
 * back (never committed), and lock holders killed in the middle of a batch
 * (rolled back by the next locker). Every value ever committed for key k (and
 * vec index i) has k (i) in its low 32 bits; the values the rolled-back
 * batches write do not. A reader that returns anything else has seen a torn
 * or uncommitted state. Single-process cases: a read inside a batch sees the
 * batch's own writes; a read through a handle whose container was removed
 * is COMMY_ENOTFOUND, never stale bytes. */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NK 4096          /* keys every reader checks */
#define NV 4096          /* vec elements every reader checks */
#define READERS 2
#define POISON UINT64_C(0xdeadbeefdeadbeef)

struct shared {
    _Atomic int stop;
    _Atomic long reads[READERS];
    _Atomic long bad;
    _Atomic long writer_rounds;
};

static const char *seg_path;

static uint64_t good(uint64_t gen, uint64_t k) { return (gen << 32) | k; }

static commy_omap *g_o; /* each process's ordered map handle */

static void open_all(commy_alloc **a, commy_map **m, commy_vec **v)
{
    if (commy_alloc_open(a, seg_path, NULL) != COMMY_OK) _exit(10);
    if (commy_map_open(m, *a, "m", COMMY_T_I64, COMMY_T_U64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(11);
    if (commy_vec_open(v, *a, "v", COMMY_T_U64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(12);
    if (commy_omap_open(&g_o, *a, "o", COMMY_T_I64, COMMY_T_U64, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(13);
}

static void reader(int r, struct shared *sh)
{
    commy_alloc *a;
    commy_map *m;
    commy_vec *v;
    open_all(&a, &m, &v);
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(r + 1);
    long n = 0;
    while (!atomic_load(&sh->stop)) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int64_t k = (int64_t)(s % NK);
        uint64_t val = 0;
        size_t len = 0;
        int rc = commy_map_get(m, &k, 8, &val, 8, &len);
        if (rc != COMMY_OK || len != 8 || (val & 0xffffffffu) != (uint64_t)k) {
            fprintf(stderr, "reader %d: map key %lld gave rc %d value 0x%llx\n", r, (long long)k, rc,
                    (unsigned long long)val);
            atomic_fetch_add(&sh->bad, 1);
        }
        rc = commy_omap_get(g_o, &k, 8, &val, 8, &len);
        if (rc != COMMY_OK || len != 8 || (val & 0xffffffffu) != (uint64_t)k) {
            fprintf(stderr, "reader %d: omap key %lld gave rc %d value 0x%llx\n", r, (long long)k, rc,
                    (unsigned long long)val);
            atomic_fetch_add(&sh->bad, 1);
        }
        uint64_t i = (s >> 20) % NV;
        rc = commy_vec_get(v, i, &val, 8, &len);
        if (rc != COMMY_OK || len != 8 || (val & 0xffffffffu) != i) {
            fprintf(stderr, "reader %d: vec index %llu gave rc %d value 0x%llx\n", r, (unsigned long long)i, rc,
                    (unsigned long long)val);
            atomic_fetch_add(&sh->bad, 1);
        }
        n++;
    }
    atomic_store(&sh->reads[r], n);
    commy_map_close(m);
    commy_vec_close(v);
    commy_omap_close(g_o);
    commy_alloc_close(a);
    _exit(0);
}

/* Rewrites values, grows and shrinks the table (keys outside [0, NK)) and
 * grows the vec (relocating its array), committing every change. */
static void writer(struct shared *sh, int rounds)
{
    commy_alloc *a;
    commy_map *m;
    commy_vec *v;
    open_all(&a, &m, &v);
    for (int g = 1; g <= rounds; g++) {
        for (int64_t k = 0; k < NK; k += 7) {
            uint64_t val = good((uint64_t)g, (uint64_t)k);
            if (commy_map_put(m, &k, 8, &val, 8) != COMMY_OK) _exit(20);
            if (commy_omap_put(g_o, &k, 8, &val, 8) != COMMY_OK) _exit(28);
        }
        /* Keys between the checked ones split leaves, removing them merges. */
        for (int64_t k = 0; k < NK; k++) {
            int64_t x = -1 - k;
            uint64_t val = 0;
            if (commy_omap_put(g_o, &x, 8, &val, 8) != COMMY_OK) _exit(29);
        }
        for (int64_t k = 0; k < NK; k++) {
            int64_t x = -1 - k;
            if (commy_omap_remove(g_o, &x, 8) != COMMY_OK) _exit(29);
        }
        /* Enough extra keys to double the table, then gone again (it shrinks). */
        for (int64_t k = NK; k < 5 * NK; k++) {
            uint64_t val = (uint64_t)k;
            if (commy_map_put(m, &k, 8, &val, 8) != COMMY_OK) _exit(21);
        }
        for (int64_t k = NK; k < 5 * NK; k++)
            if (commy_map_remove(m, &k, 8) != COMMY_OK) _exit(22);
        for (uint64_t i = 0; i < NV; i += 5) {
            uint64_t val = good((uint64_t)g, i);
            if (commy_vec_set(v, i, &val, 8) != COMMY_OK) _exit(23);
        }
        /* Push past the capacity (the array moves), then pop back to NV. */
        uint64_t cap = 0, len = 0;
        if (commy_vec_capacity(&cap, v) != COMMY_OK || commy_vec_len(&len, v) != COMMY_OK) _exit(24);
        for (uint64_t i = len; i <= cap; i++) {
            uint64_t val = good((uint64_t)g, i);
            if (commy_vec_push(v, &val, 8) != COMMY_OK) _exit(25);
        }
        if (commy_vec_len(&len, v) != COMMY_OK) _exit(26);
        for (; len > NV; len--)
            if (commy_vec_pop(v, NULL, 0, NULL) != COMMY_OK) _exit(27);
        /* A smaller array again, so the next round relocates it once more. */
        atomic_fetch_add(&sh->writer_rounds, 1);
    }
    commy_map_close(m);
    commy_vec_close(v);
    commy_omap_close(g_o);
    commy_alloc_close(a);
    _exit(0);
}

/* Batches that write POISON and are rolled back: by outgrowing the journal,
 * or by the holder's death (die != 0). */
static void poisoner(int die)
{
    commy_alloc *a;
    commy_map *m;
    commy_vec *v;
    open_all(&a, &m, &v);
    if (commy_alloc_lock(a, 0) != COMMY_OK) _exit(30);
    uint64_t p = POISON;
    for (int64_t k = 0; k < NK; k += 3)
        if (commy_map_put(m, &k, 8, &p, 8) != COMMY_OK || commy_omap_put(g_o, &k, 8, &p, 8) != COMMY_OK) _exit(31);
    for (uint64_t i = 0; i < NV; i += 3)
        if (commy_vec_set(v, i, &p, 8) != COMMY_OK) _exit(32);
    if (die) raise(SIGKILL);
    /* Fill the journal: the batch fails and everything it did is undone. */
    int rc = COMMY_OK;
    for (int64_t k = 100 * NK; rc == COMMY_OK; k++) rc = commy_map_put(m, &k, 8, &p, 8);
    if (rc != COMMY_EJOURNAL) _exit(33);
    if (commy_alloc_unlock(a) != COMMY_EJOURNAL) _exit(34);
    commy_map_close(m);
    commy_vec_close(v);
    commy_omap_close(g_o);
    commy_alloc_close(a);
    _exit(0);
}

static void test_readers_never_see_uncommitted(void)
{
    if (harness_valgrind()) {
        printf("  (skipped under valgrind: forked children with a segment mapped)\n");
        return;
    }
    seg_path = harness_path("lockfree.seg");
    commy_alloc_options opts;
    commy_alloc_options_init(&opts);
    opts.initial_size = 8u << 20;
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, seg_path, &opts) == COMMY_OK);
    commy_map *m = NULL;
    commy_vec *v = NULL;
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_U64, 0) == COMMY_OK);
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_U64, 0) == COMMY_OK);
    commy_omap *o = NULL;
    REQUIRE(commy_omap_open(&o, a, "o", COMMY_T_I64, COMMY_T_U64, 0) == COMMY_OK);
    for (uint64_t k = 0; k < NK; k++) {
        int64_t key = (int64_t)k;
        uint64_t val = good(0, k);
        REQUIRE(commy_map_put(m, &key, 8, &val, 8) == COMMY_OK);
        REQUIRE(commy_omap_put(o, &key, 8, &val, 8) == COMMY_OK);
    }
    for (uint64_t i = 0; i < NV; i++) {
        uint64_t val = good(0, i);
        REQUIRE(commy_vec_push(v, &val, 8) == COMMY_OK);
    }
    /* Closed before forking: children must not inherit the mapping. */
    commy_map_close(m);
    commy_vec_close(v);
    commy_omap_close(o);
    commy_alloc_close(a);

    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    pid_t readers[READERS], w;
    for (int r = 0; r < READERS; r++) {
        readers[r] = fork();
        REQUIRE(readers[r] >= 0);
        if (readers[r] == 0) reader(r, sh);
    }
    w = fork();
    REQUIRE(w >= 0);
    if (w == 0) writer(sh, 6);
    /* Poisoners one after the other, alternating the two ways to fail. */
    int deaths = 0, rollbacks = 0;
    for (int round = 0; round < 12; round++) {
        pid_t p = fork();
        REQUIRE(p >= 0);
        if (p == 0) poisoner(round & 1);
        int st = 0;
        REQUIRE(waitpid(p, &st, 0) == p);
        if (round & 1) {
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            deaths += WIFSIGNALED(st);
        } else {
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "poisoner: status 0x%x\n", st);
            rollbacks += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
    }
    int st = 0;
    REQUIRE(waitpid(w, &st, 0) == w);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "writer: status 0x%x\n", st);
    atomic_store(&sh->stop, 1);
    for (int r = 0; r < READERS; r++) {
        REQUIRE(waitpid(readers[r], &st, 0) == readers[r]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(atomic_load(&sh->reads[r]) > 0);
    }
    CHECK(atomic_load(&sh->bad) == 0);
    CHECK(deaths == 6 && rollbacks == 6);
    CHECK(atomic_load(&sh->writer_rounds) == 6);

    /* Afterwards: consistent, and every value a committed one. */
    REQUIRE(commy_alloc_open(&a, seg_path, NULL) == COMMY_OK);
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_U64, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_U64, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_omap_open(&o, a, "o", COMMY_T_I64, COMMY_T_U64, COMMY_OPEN_EXISTING) == COMMY_OK);
    CHECK_OK(commy_alloc_check(a));
    commy_segment_info info;
    CHECK_OK(commy_alloc_info(&info, a));
    CHECK(info.recoveries >= 6);
    uint64_t len = 0;
    CHECK_OK(commy_map_len(&len, m));
    CHECK(len == NK);
    for (int64_t k = 0; k < NK; k++) {
        uint64_t val = 0;
        CHECK_OK(commy_map_get(m, &k, 8, &val, 8, NULL));
        CHECK((val & 0xffffffffu) == (uint64_t)k && val >> 32 == (k % 7 == 0 ? 6u : 0u));
        CHECK_OK(commy_omap_get(o, &k, 8, &val, 8, NULL));
        CHECK((val & 0xffffffffu) == (uint64_t)k && val >> 32 == (k % 7 == 0 ? 6u : 0u));
    }
    CHECK_OK(commy_vec_len(&len, v));
    CHECK(len == NV);
    for (uint64_t i = 0; i < NV; i++) {
        uint64_t val = 0;
        CHECK_OK(commy_vec_get(v, i, &val, 8, NULL));
        CHECK((val & 0xffffffffu) == i && val >> 32 == (i % 5 == 0 ? 6u : 0u));
    }
    CHECK_OK(commy_omap_len(&len, o));
    CHECK(len == NK);
    printf("  %ld + %ld rounds of lock-free reads checked, %d killed and %d rolled-back batches\n",
           atomic_load(&sh->reads[0]), atomic_load(&sh->reads[1]), deaths, rollbacks);
    commy_map_close(m);
    commy_vec_close(v);
    commy_omap_close(o);
    commy_alloc_close(a);
    munmap(sh, sizeof *sh);
}

/* In one process: the fast path gives way to the lock where it must. */
static void test_reads_in_batch_and_after_remove(void)
{
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path("lockfree1.seg"), NULL) == COMMY_OK);
    commy_map *m = NULL;
    commy_vec *v = NULL;
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_I64, 0) == COMMY_OK);
    commy_omap *o = NULL;
    REQUIRE(commy_omap_open(&o, a, "o", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    int64_t k = 5, x = 1, y = 0;
    CHECK_OK(commy_map_put(m, &k, 8, &x, 8));
    CHECK_OK(commy_omap_put(o, &k, 8, &x, 8));
    CHECK_OK(commy_vec_push(v, &x, 8));
    uint32_t before = 0, after = 0;
    CHECK_OK(commy_map_version(&before, m));
    /* Inside a batch this thread holds the lock: reads see its own writes. */
    CHECK_OK(commy_alloc_lock(a, 0));
    x = 2;
    CHECK_OK(commy_map_put(m, &k, 8, &x, 8));
    CHECK_OK(commy_vec_set(v, 0, &x, 8));
    CHECK_OK(commy_omap_put(o, &k, 8, &x, 8));
    CHECK_OK(commy_map_get(m, &k, 8, &y, 8, NULL));
    CHECK(y == 2);
    CHECK_OK(commy_omap_get(o, &k, 8, &y, 8, NULL));
    CHECK(y == 2);
    CHECK_OK(commy_vec_get(v, 0, &y, 8, NULL));
    CHECK(y == 2);
    CHECK_OK(commy_alloc_unlock(a));
    CHECK_OK(commy_map_version(&after, m));
    CHECK(after != before);
    /* A key that is not there, and an index past the end: the locked path reports them. */
    int64_t missing = 6;
    CHECK_RC(commy_map_get(m, &missing, 8, &y, 8, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_omap_get(o, &missing, 8, &y, 8, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_vec_get(v, 1, &y, 8, NULL), COMMY_ERANGE);
    int present = -1;
    CHECK_OK(commy_map_contains(&present, m, &missing, 8));
    CHECK(present == 0);
    CHECK_OK(commy_map_contains(&present, m, &k, 8));
    CHECK(present == 1);
    /* After the roots are removed the handles find nothing, not stale bytes. */
    CHECK_OK(commy_root_remove(a, "m"));
    CHECK_OK(commy_root_remove(a, "v"));
    CHECK_OK(commy_root_remove(a, "o"));
    CHECK_RC(commy_omap_get(o, &k, 8, &y, 8, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_map_get(m, &k, 8, &y, 8, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_vec_get(v, 0, &y, 8, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_map_contains(&present, m, &k, 8), COMMY_ENOTFOUND);
    commy_omap_close(o);
    commy_map_close(m);
    commy_vec_close(v);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("reads in a batch and after remove", test_reads_in_batch_and_after_remove);
    harness_run("lock-free readers never see uncommitted values", test_readers_never_see_uncommitted);
    return harness_finish();
}
