/* Instruction counts of the hot operations (bench/instr_counts.sh runs it
 * under callgrind): one operation kind per run, N of them after a set-up of
 * 100k elements in a vec, a map and an omap; the script subtracts a run that
 * does the set-up only. Instruction counts are stable on a busy machine,
 * where wall time is not. */
#include "commy.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#define T(x) do { int rc_ = (x); if (rc_ < 0) { fprintf(stderr, "%s: %s\n", #x, commy_error_last()->message); exit(1);} } while (0)
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
/* waitrt: a wait/wake round trip between two threads through two boxes,
 * both sides' instructions counted (the futex syscalls' kernel time is not). */
static commy_box *ping, *pong;
static long rounds;
static void wait_change(commy_box *bx, uint32_t *seen)
{
    for (;;) {
        T(commy_box_wait(bx, *seen, 10000));
        uint32_t now; T(commy_box_version(&now, bx));
        if (now != *seen) { *seen = now; return; }
    }
}
static void *ponger(void *arg)
{
    uint32_t seen = *(uint32_t *)arg;
    for (long i = 0; i < rounds; i++) { wait_change(ping, &seen); T(commy_box_fetch_add(NULL, pong, 1)); }
    return NULL;
}
int main(int argc, char **argv)
{
    const char *op = argv[1];
    long n = atol(argv[2]);
    int setup_only = argc > 3;
    char path[64];
    snprintf(path, sizeof path, "%s/hot-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", getpid());
    commy_alloc_options o; commy_alloc_options_init(&o);
    o.initial_size = 64 << 20; o.max_size = 4ull << 30;
    commy_alloc *a; T(commy_alloc_open(&a, path, &o));
    commy_vec *v; commy_deque *d; commy_map *m; commy_omap *om; commy_box *b;
    T(commy_vec_open(&v, a, "v", COMMY_T_I64, 0));
    T(commy_deque_open(&d, a, "d", COMMY_T_I64, 0));
    T(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0));
    T(commy_omap_open(&om, a, "o", COMMY_T_I64, COMMY_T_I64, 0));
    T(commy_box_open(&b, a, "b", COMMY_T_I64, 0));
    long pre = 100000;
    for (int64_t k = 0; k < pre; k++) {
        T(commy_vec_push(v, &k, 8));
        int64_t key = (int64_t)k * 7919;
        T(commy_map_put(m, &key, 8, &k, 8));
        T(commy_omap_put(om, &key, 8, &k, 8));
    }
    int64_t x = 0, y; size_t len;
    if (!setup_only) {
        if (!strcmp(op, "vecpush")) for (long i = 0; i < n; i++) T(commy_vec_push(v, &x, 8));
        else if (!strcmp(op, "vecget")) for (long i = 0; i < n; i++) T(commy_vec_get(v, rnd() % pre, &y, 8, &len));
        else if (!strcmp(op, "dqpush")) for (long i = 0; i < n; i++) T(commy_deque_push_back(d, &x, 8));
        else if (!strcmp(op, "dqpp")) for (long i = 0; i < n; i++) { T(commy_deque_push_back(d, &x, 8)); T(commy_deque_pop_front(d, &y, 8, &len)); }
        else if (!strcmp(op, "mapget")) for (long i = 0; i < n; i++) { int64_t key = (int64_t)(rnd() % pre) * 7919; T(commy_map_get(m, &key, 8, &y, 8, &len)); }
        else if (!strcmp(op, "mapput")) for (long i = 0; i < n; i++) { int64_t key = (int64_t)(rnd() % pre) * 7919; T(commy_map_put(m, &key, 8, &x, 8)); }
        else if (!strcmp(op, "mapins")) for (long i = 0; i < n; i++) { int64_t key = -(int64_t)i - 1; T(commy_map_put(m, &key, 8, &x, 8)); }
        else if (!strcmp(op, "maprm")) for (long i = 0; i < n; i++) { int64_t key = (int64_t)i * 7919; T(commy_map_remove(m, &key, 8)); }
        else if (!strcmp(op, "omapget")) for (long i = 0; i < n; i++) { int64_t key = (int64_t)(rnd() % pre) * 7919; T(commy_omap_get(om, &key, 8, &y, 8, &len)); }
        else if (!strcmp(op, "omapput")) for (long i = 0; i < n; i++) { int64_t key = (int64_t)(rnd() % pre) * 7919; T(commy_omap_put(om, &key, 8, &x, 8)); }
        else if (!strcmp(op, "boxadd")) for (long i = 0; i < n; i++) T(commy_box_fetch_add(NULL, b, 1));
        else if (!strcmp(op, "waitrt")) {
            T(commy_box_open(&ping, a, "ping", COMMY_T_I64, 0)); T(commy_box_open(&pong, a, "pong", COMMY_T_I64, 0));
            uint32_t sping, spong; T(commy_box_version(&sping, ping)); T(commy_box_version(&spong, pong));
            rounds = n; pthread_t th; if (pthread_create(&th, NULL, ponger, &sping)) exit(1);
            for (long i = 0; i < n; i++) { T(commy_box_fetch_add(NULL, ping, 1)); wait_change(pong, &spong); }
            pthread_join(th, NULL); commy_box_close(ping); commy_box_close(pong);
        }
        else { fprintf(stderr, "unknown op\n"); return 2; }
    }
    commy_vec_close(v); commy_deque_close(d); commy_map_close(m); commy_omap_close(om); commy_box_close(b);
    commy_alloc_close(a);
    unlink(path);
    return 0;
}
