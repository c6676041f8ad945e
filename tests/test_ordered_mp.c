/* Four processes insert and remove in one ordered map and one ordered set
 * at once, on interleaved keys so they split and merge the same nodes,
 * while scanning with cursors. The final contents are exact. */
#include "harness.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define PROCS 4
/* Keys per process; far fewer under valgrind, where every lock hand-off
 * between four instrumented processes costs milliseconds. */
static int PER = 3000;

static commy_alloc *open_seg(void)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1 << 20;
    o.max_size = 256 << 20;
    commy_alloc *a = NULL;
    return commy_alloc_open(&a, harness_path("mp.seg"), &o) == COMMY_OK ? a : NULL;
}

/* Process p owns keys i*PROCS + p. It inserts all of them (value: the key
 * as text), removes those with i % 3 == 0, rewrites those with i % 3 == 1,
 * and scans between steps; a scan may see ECONCURRENT but never disorder. */
static int worker(int p)
{
    commy_alloc *a = open_seg();
    commy_omap *m = NULL;
    commy_oset *s = NULL;
    if (!a || commy_omap_open(&m, a, "om", COMMY_T_I64, COMMY_T_STR, 0) ||
        commy_oset_open(&s, a, "os", COMMY_T_STR, 0))
        return 2;
    char v[32];
    for (int64_t i = 0; i < PER; i++) {
        int64_t k = i * PROCS + p;
        int vl = snprintf(v, sizeof v, "v%lld", (long long)k);
        if (commy_omap_put(m, &k, 8, v, (size_t)vl)) return 3;
        int added = 0;
        if (commy_oset_add(&added, s, v, (size_t)vl) || !added) return 4;
        if (i % 100 == 0) {
            /* A window of up to 200 entries from our own last key. */
            commy_cursor c = COMMY_CURSOR_INIT;
            int64_t prev = INT64_MIN, kk;
            size_t kl;
            int rc = commy_omap_seek(&c, m, &k, 8, 1);
            if (rc) return 10;
            for (int n = 0; n < 200 && (rc = commy_omap_next(m, &c, &kk, 8, &kl, NULL, 0, NULL)) == COMMY_ROW; n++) {
                if (kk <= prev || (n == 0 && kk != k)) return 5;
                prev = kk;
            }
            if (rc != COMMY_DONE && rc != COMMY_ECONCURRENT && rc != COMMY_ROW) return 6;
        }
    }
    for (int64_t i = 0; i < PER; i++) {
        int64_t k = i * PROCS + p;
        int vl = snprintf(v, sizeof v, "v%lld", (long long)k);
        if (i % 3 == 0) {
            if (commy_omap_remove(m, &k, 8)) return 7;
            if (commy_oset_remove(s, v, (size_t)vl)) return 8;
        } else if (i % 3 == 1) {
            vl = snprintf(v, sizeof v, "w%lld", (long long)k);
            if (commy_omap_put(m, &k, 8, v, (size_t)vl)) return 9;
        }
    }
    commy_omap_close(m);
    commy_oset_close(s);
    commy_alloc_close(a);
    return 0;
}

static void test_concurrent(void)
{
    if (RUNNING_ON_VALGRIND) PER = 150;
    unlink(harness_path("mp.seg"));
    commy_alloc *a = open_seg();
    REQUIRE(a);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        REQUIRE(pids[p] >= 0);
        if (pids[p] == 0) _exit(worker(p));
    }
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        waitpid(pids[p], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fprintf(stderr, "worker %d: status %d\n", p, st);
    }
    CHECK_OK(commy_alloc_check(a));
    commy_omap *m = NULL;
    commy_oset *s = NULL;
    REQUIRE(commy_omap_open(&m, a, "om", COMMY_T_I64, COMMY_T_STR, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_oset_open(&s, a, "os", COMMY_T_STR, COMMY_OPEN_EXISTING) == COMMY_OK);
    /* The map: every key i*PROCS+p with i % 3 != 0, in order, with its value. */
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t k, want = 0;
    char v[32], w[32];
    size_t kl, vl;
    uint64_t rows = 0, len = 0;
    int rc, ok = 1;
    while ((rc = commy_omap_next(m, &c, &k, 8, &kl, v, sizeof v, &vl)) == COMMY_ROW) {
        while ((want / PROCS) % 3 == 0) want++;
        int64_t i = k / PROCS;
        int wl = snprintf(w, sizeof w, "%c%lld", i % 3 == 1 ? 'w' : 'v', (long long)k);
        if (k != want || vl != (size_t)wl || memcmp(v, w, vl)) ok = 0;
        want++;
        rows++;
    }
    CHECK(rc == COMMY_DONE && ok);
    CHECK(rows == (uint64_t)(PROCS * (PER - (PER + 2) / 3)));
    CHECK_OK(commy_omap_len(&len, m));
    CHECK(len == rows);
    /* The set: exactly the "v<key>" strings of the keys that stayed. */
    uint64_t srows = 0;
    commy_cursor sc = COMMY_CURSOR_INIT;
    char prev[32] = "";
    size_t pl = 0;
    ok = 1;
    while ((rc = commy_oset_next(s, &sc, v, sizeof v - 1, &vl)) == COMMY_ROW) {
        v[vl] = 0;
        long long kk = -1;
        if (sscanf(v, "v%lld", &kk) != 1 || (kk / PROCS) % 3 == 0 || kk >= (long long)PROCS * PER) ok = 0;
        size_t n = vl < pl ? vl : pl;
        int cmp = memcmp(prev, v, n);
        if (srows && (cmp > 0 || (cmp == 0 && pl >= vl))) ok = 0; /* bytewise order */
        memcpy(prev, v, vl);
        pl = vl;
        srows++;
    }
    CHECK(rc == COMMY_DONE && ok && srows == rows);
    commy_omap_close(m);
    commy_oset_close(s);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("concurrent", test_concurrent);
    return harness_finish();
}
