/* kill -9 in the middle of map and set operations. A child runs a
 * deterministic random sequence of puts (variable-length values, so blocks
 * come and go), removes, clears (which free in several committed steps) and
 * table resizes, each applied to a map and then to a set of str keys,
 * recording after each operation how many have completed in a small shared
 * file. The parent kills it at a random moment; afterwards the segment must
 * check consistent and the map and the set must each equal the model after
 * n or n + 1 operations. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define POOL 3000
#define VMAX 48

struct op {
    int kind; /* 0 put, 1 remove, 2 clear */
    int64_t key;
    size_t vlen;
    unsigned char val[VMAX];
};

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* The i-th operation of the sequence for seed: a function of (seed, i) only. */
static void gen_op(struct op *o, uint64_t *st)
{
    uint64_t r = next_rand(st) % 1000;
    o->key = (int64_t)(next_rand(st) % POOL);
    if (r < 2) {
        o->kind = 2;
    } else if (r < 650) {
        o->kind = 0;
        o->vlen = next_rand(st) % (VMAX + 1);
        for (size_t i = 0; i < o->vlen; i++) o->val[i] = (unsigned char)next_rand(st);
    } else {
        o->kind = 1;
    }
}

struct model {
    int present[POOL];
    size_t vlen[POOL];
    unsigned char val[POOL][VMAX];
};

static void model_apply(struct model *m, const struct op *o)
{
    if (o->kind == 2) {
        memset(m->present, 0, sizeof m->present);
    } else if (o->kind == 1) {
        m->present[o->key] = 0;
    } else {
        m->present[o->key] = 1;
        m->vlen[o->key] = o->vlen;
        memcpy(m->val[o->key], o->val, o->vlen);
    }
}

static int map_equals(commy_map *m, const struct model *md)
{
    uint64_t len = 0, want = 0;
    for (int k = 0; k < POOL; k++) want += (uint64_t)md->present[k];
    if (commy_map_len(&len, m) != COMMY_OK || len != want) return 0;
    for (int64_t k = 0; k < POOL; k++) {
        if (!md->present[k]) continue;
        unsigned char v[VMAX];
        size_t vl = 0;
        if (commy_map_get(m, &k, 8, v, sizeof v, &vl) != COMMY_OK) return 0;
        if (vl != md->vlen[k] || memcmp(v, md->val[k], vl) != 0) return 0;
    }
    return 1;
}

/* The set's key for model key k: a string whose length varies with k, so
 * the set's key blocks come and go too. */
static size_t set_key(char *out, int64_t k)
{
    int n = snprintf(out, 64, "key-%lld-", (long long)k);
    size_t len = (size_t)n + (size_t)(k % 41);
    memset(out + n, 'x', len - (size_t)n);
    return len;
}

static int set_equals(commy_set *s, const struct model *md)
{
    uint64_t len = 0, want = 0;
    for (int k = 0; k < POOL; k++) want += (uint64_t)md->present[k];
    if (commy_set_len(&len, s) != COMMY_OK || len != want) return 0;
    for (int64_t k = 0; k < POOL; k++) {
        char key[128];
        int in = -1;
        if (commy_set_contains(&in, s, key, set_key(key, k)) != COMMY_OK || in != md->present[k]) return 0;
    }
    return 1;
}

static void child(const char *seg, _Atomic uint64_t *done, uint64_t seed)
{
    commy_alloc *a = NULL;
    commy_map *m = NULL;
    if (commy_alloc_open(&a, seg, NULL) != COMMY_OK) _exit(10);
    if (commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_BYTES, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(11);
    commy_set *set = NULL;
    if (commy_set_open(&set, a, "s", COMMY_T_STR, COMMY_OPEN_EXISTING) != COMMY_OK) _exit(13);
    uint64_t st = seed;
    struct op o;
    for (uint64_t i = 0;; i++) {
        gen_op(&o, &st);
        int rc = o.kind == 0 ? commy_map_put(m, &o.key, 8, o.val, o.vlen)
                 : o.kind == 1 ? commy_map_remove(m, &o.key, 8)
                               : commy_map_clear(m);
        if (rc != COMMY_OK && !(o.kind == 1 && rc == COMMY_ENOTFOUND)) _exit(12);
        char key[128];
        size_t kl = set_key(key, o.key);
        int added = 0;
        rc = o.kind == 0 ? commy_set_add(&added, set, key, kl)
             : o.kind == 1 ? commy_set_remove(set, key, kl)
                           : commy_set_clear(set);
        if (rc != COMMY_OK && !(o.kind == 1 && rc == COMMY_ENOTFOUND)) _exit(14);
        atomic_store(done, i + 1);
    }
}

static void test_kill9(void)
{
    const char *seg = harness_path("crash.seg");
    const char *cpath = harness_path("count");
    int fd = open(cpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0 && ftruncate(fd, 4096) == 0);
    _Atomic uint64_t *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(done != MAP_FAILED);
    close(fd);
    static struct model md;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int trials = 0, at_n = 0, at_n1 = 0, mid = 0;
    uint64_t max_done = 0;
    for (; trials < 200; trials++) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 20) break; /* a slow (sanitised, loaded) machine: fewer trials */
        uint64_t seed = harness_rand() | 1;
        /* A fresh segment with some history: a map built by earlier trials' kind of work. */
        unlink(seg);
        commy_alloc *a = NULL;
        REQUIRE(commy_alloc_open(&a, seg, NULL) == COMMY_OK);
        commy_map *m = NULL;
        REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_BYTES, 0) == COMMY_OK);
        commy_map_close(m);
        commy_set *set = NULL;
        REQUIRE(commy_set_open(&set, a, "s", COMMY_T_STR, 0) == COMMY_OK);
        commy_set_close(set);
        commy_alloc_close(a);
        atomic_store(done, 0);

        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child(seg, done, seed);
        /* Kill at a random moment, mostly after the child got going. */
        struct timespec d = {0, (long)(1000000 + harness_below(25000000))};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int wst = 0;
        REQUIRE(waitpid(pid, &wst, 0) == pid);
        if (!(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL)) {
            fprintf(stderr, "trial %d: the child ended by itself, status 0x%x\n", trials, wst);
            CHECK(0);
            continue;
        }
        uint64_t n = atomic_load(done);
        if (n > max_done) max_done = n;

        /* The next process to take the lock rolls back the dead one's change. */
        REQUIRE(commy_alloc_open(&a, seg, NULL) == COMMY_OK);
        REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_BYTES, COMMY_OPEN_EXISTING) == COMMY_OK);
        REQUIRE(commy_set_open(&set, a, "s", COMMY_T_STR, COMMY_OPEN_EXISTING) == COMMY_OK);
        CHECK_OK(commy_alloc_check(a));
        memset(&md, 0, sizeof md);
        uint64_t st = seed;
        struct op o;
        for (uint64_t i = 0; i < n; i++) {
            gen_op(&o, &st);
            model_apply(&md, &o);
        }
        /* the op in flight may have reached the map and not yet the set:
         * each must equal the model after n or n + 1 operations */
        int map_n = map_equals(m, &md), set_n = set_equals(set, &md);
        if (map_n && set_n) {
            at_n++;
        } else {
            gen_op(&o, &st);
            model_apply(&md, &o);
            int map_n1 = map_equals(m, &md), set_n1 = set_equals(set, &md);
            if (!map_n && !map_n1) {
                fprintf(stderr, "trial %d (seed %llu): the map matches neither %llu nor %llu operations\n", trials,
                        (unsigned long long)seed, (unsigned long long)n, (unsigned long long)n + 1);
                CHECK(0);
            } else if (!set_n && !set_n1) {
                fprintf(stderr, "trial %d (seed %llu): the set matches neither %llu nor %llu operations\n", trials,
                        (unsigned long long)seed, (unsigned long long)n, (unsigned long long)n + 1);
                CHECK(0);
            } else {
                at_n1++;
            }
        }
        commy_heap_stats hs;
        CHECK_OK(commy_alloc_stats(&hs, a));
        mid += hs.recoveries > 0;
        /* The survivor carries on: the map still works after the recovery. */
        int64_t k = 1;
        CHECK_OK(commy_map_put(m, &k, 8, "after", 5));
        CHECK_OK(commy_map_clear(m));
        int added = 0;
        CHECK_OK(commy_set_add(&added, set, "after", 5));
        CHECK(added == 1);
        CHECK_OK(commy_set_clear(set));
        CHECK_OK(commy_alloc_check(a));
        commy_map_close(m);
        commy_set_close(set);
        commy_alloc_close(a);
    }
    printf("%d trials: %d killed between operations or rolled back to n, %d at n + 1, %d with a journal rollback; "
           "up to %llu operations done\n", trials, at_n, at_n1, mid, (unsigned long long)max_done);
    if (RUNNING_ON_VALGRIND) {
        CHECK(trials >= 3 && max_done > 0); /* instrumented: few, slow trials */
    } else {
        CHECK(trials >= 20);
        CHECK(max_done > 1000); /* the kills landed deep into real work */
        CHECK(mid > 0);         /* and some of them in the middle of an operation */
    }
    munmap((void *)done, 4096);
}

int main(void)
{
    harness_run("kill9", test_kill9);
    return harness_finish();
}
