/* kill -9 in the middle of ordered-map and ordered-set operations. A child
 * runs a deterministic op sequence (put, remove, now and then clear) on an
 * omap with str keys and bytes values, each op then on an oset of i64 keys,
 * recording how many ops completed in a
 * small MAP_SHARED file after each one; the parent SIGKILLs it at a random
 * moment, then commy_alloc_check must pass (the lock's next taker rolls the
 * dead child's change back) and the map and the set must each equal the
 * model after n or n+1 ops (every op is idempotent, so the next child
 * starts again at the first op not known to be in both). The same segment carries on across trials, so the tree is deep
 * and its nodes are split, merged and freed under fire. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RANGE 4000
#define VMAX 48

static uint64_t seed;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x;
}

/* Op j: kind (0 put, 1 remove, 2 clear), key, value. */
struct op {
    int kind;
    int key;
    size_t vl;
    unsigned char v[VMAX];
};

static void op_of(struct op *o, uint64_t j)
{
    uint64_t h = mix(seed ^ mix(j + 1));
    uint64_t r = h % 1000;
    o->kind = r < 2 ? 2 : r < 600 ? 0 : 1;
    o->key = (int)((h >> 10) % RANGE);
    o->vl = (size_t)((h >> 24) % VMAX);
    for (size_t i = 0; i < o->vl; i++) o->v[i] = (unsigned char)(mix(h + i) & 0xff);
}

static int keystr(char *buf, int key) { return snprintf(buf, 16, "k%05d", key); }

/* The model: per key, the op that last wrote it (-1 when absent). */
static int64_t model[RANGE];

static void model_apply(int64_t *md, uint64_t j)
{
    struct op o;
    op_of(&o, j);
    if (o.kind == 0) md[o.key] = (int64_t)j;
    else if (o.kind == 1) md[o.key] = -1;
    else for (int i = 0; i < RANGE; i++) md[i] = -1;
}

static int apply(commy_omap *m, uint64_t j)
{
    struct op o;
    op_of(&o, j);
    char k[16];
    int kl = keystr(k, o.key);
    if (o.kind == 0) return commy_omap_put(m, k, (size_t)kl, o.v, o.vl);
    if (o.kind == 1) {
        int rc = commy_omap_remove(m, k, (size_t)kl);
        return rc == COMMY_ENOTFOUND ? COMMY_OK : rc;
    }
    return commy_omap_clear(m);
}

static int apply_set(commy_oset *s, uint64_t j)
{
    struct op o;
    op_of(&o, j);
    int64_t k = o.key;
    int added = 0;
    if (o.kind == 0) return commy_oset_add(&added, s, &k, sizeof k);
    if (o.kind == 1) {
        int rc = commy_oset_remove(s, &k, sizeof k);
        return rc == COMMY_ENOTFOUND ? COMMY_OK : rc;
    }
    return commy_oset_clear(s);
}

/* 1 if the set holds exactly the keys present in md, in order. */
static int set_matches(commy_oset *s, const int64_t *md)
{
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t k = 0;
    size_t kl = 0;
    int rc, next = 0;
    uint64_t rows = 0;
    while ((rc = commy_oset_next(s, &c, &k, sizeof k, &kl)) == COMMY_ROW) {
        if (kl != sizeof k || k < next || k >= RANGE) return 0;
        for (; next < k; next++)
            if (md[next] >= 0) return 0;
        if (md[k] < 0) return 0;
        next = (int)k + 1;
        rows++;
    }
    if (rc != COMMY_DONE) return 0;
    for (; next < RANGE; next++)
        if (md[next] >= 0) return 0;
    uint64_t len = 0;
    return commy_oset_len(&len, s) == COMMY_OK && len == rows;
}

/* 1 if the map holds exactly md. */
static int matches(commy_omap *m, const int64_t *md)
{
    commy_cursor c = COMMY_CURSOR_INIT;
    char k[16];
    unsigned char v[VMAX];
    size_t kl, vl;
    int rc, next = 0;
    uint64_t rows = 0;
    while ((rc = commy_omap_next(m, &c, k, sizeof k - 1, &kl, v, sizeof v, &vl)) == COMMY_ROW) {
        k[kl] = 0;
        int key = -1;
        if (kl != 6 || sscanf(k, "k%d", &key) != 1 || key < next || key >= RANGE) return 0;
        for (; next < key; next++)
            if (md[next] >= 0) return 0; /* a key missing from the map */
        if (md[key] < 0) return 0;
        struct op o;
        op_of(&o, (uint64_t)md[key]);
        if (vl != o.vl || memcmp(v, o.v, vl)) return 0;
        next = key + 1;
        rows++;
    }
    if (rc != COMMY_DONE) return 0;
    for (; next < RANGE; next++)
        if (md[next] >= 0) return 0;
    uint64_t len = 0;
    return commy_omap_len(&len, m) == COMMY_OK && len == rows;
}

static commy_alloc *open_seg(void)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1 << 20;
    o.max_size = 64 << 20;
    commy_alloc *a = NULL;
    int rc = commy_alloc_open(&a, harness_path("crash.seg"), &o);
    return rc == COMMY_OK ? a : NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_kill9(void)
{
    seed = harness_rand();
    unlink(harness_path("crash.seg"));
    int fd = open(harness_path("count"), O_CREAT | O_RDWR | O_TRUNC, 0600);
    REQUIRE(fd >= 0 && ftruncate(fd, 4096) == 0);
    _Atomic uint64_t *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(done != MAP_FAILED);
    close(fd);
    for (int i = 0; i < RANGE; i++) model[i] = -1;
    static int64_t trial_model[RANGE];
    uint64_t n = 0; /* ops the segment is known to hold */
    int trials = 0, killed_mid = 0;
    double t0 = now_s();
    for (; trials < 400 && now_s() - t0 < 20; trials++) {
        atomic_store(done, n);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            commy_alloc *a = open_seg();
            commy_omap *m = NULL;
            commy_oset *os = NULL;
            if (!a || commy_omap_open(&m, a, "tree", COMMY_T_STR, COMMY_T_BYTES, 0) != COMMY_OK) _exit(2);
            if (commy_oset_open(&os, a, "keys", COMMY_T_I64, 0) != COMMY_OK) _exit(4);
            for (uint64_t j = n;; j++) {
                if (apply(m, j) != COMMY_OK) _exit(3);
                if (apply_set(os, j) != COMMY_OK) _exit(5);
                atomic_store(done, j + 1);
            }
        }
        /* Let it run a random while: long enough, early on, to build a deep tree. */
        usleep((useconds_t)(trials < 3 ? 200000 : 1000 + harness_below(15000)));
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "child exited with status %d before the kill\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            CHECK(0);
            break;
        }
        uint64_t reported = atomic_load(done);
        for (; n < reported; n++) model_apply(model, n);
        commy_alloc *a = open_seg();
        REQUIRE(a != NULL);
        CHECK_OK(commy_alloc_check(a));
        commy_omap *m = NULL;
        REQUIRE(commy_omap_open(&m, a, "tree", COMMY_T_STR, COMMY_T_BYTES, 0) == COMMY_OK);
        commy_oset *os = NULL;
        REQUIRE(commy_oset_open(&os, a, "keys", COMMY_T_I64, 0) == COMMY_OK);
        memcpy(trial_model, model, sizeof model);
        model_apply(trial_model, n);
        int map_n = matches(m, model), set_n = set_matches(os, model);
        int map_n1 = matches(m, trial_model), set_n1 = set_matches(os, trial_model);
        if ((!map_n && !map_n1) || (!set_n && !set_n1)) {
            fprintf(stderr, "trial %d: the %s matches neither %llu nor %llu ops\n", trials,
                    !map_n && !map_n1 ? "map" : "set", (unsigned long long)n, (unsigned long long)n + 1);
            CHECK(0);
            commy_omap_close(m);
            commy_oset_close(os);
            commy_alloc_close(a);
            break;
        }
        if (!(map_n && set_n) && map_n1 && set_n1) {
            /* op n is in both: the next child starts after it */
            memcpy(model, trial_model, sizeof model);
            n++;
            killed_mid++;
        }
        /* else op n is in neither or in the map only: the next child applies
         * it again (every op is idempotent) */
        commy_omap_close(m);
        commy_oset_close(os);
        commy_alloc_close(a);
    }
    fprintf(stderr, "%d trials, %llu ops, %d kills after an op's change and before its count\n", trials,
            (unsigned long long)n, killed_mid);
    /* Loose floors so a slow run (valgrind) still passes; a normal one does hundreds of trials and millions of ops. */
    CHECK(trials >= 20);
    CHECK(n > 3000);
    munmap((void *)done, 4096);
}

int main(void)
{
    harness_run("kill9", test_kill9);
    return harness_finish();
}
