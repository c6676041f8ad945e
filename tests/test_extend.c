/* Growth in place (core/heap.c, commy__extend): a vec or a non-wrapping
 * deque whose array is followed by free space (or ends the heap) grows into
 * it instead of moving. The elements stay at the same address; a rolled-back
 * batch and a process killed in the middle of growing leave the heap and
 * the container consistent, every element where it was. */
#include "harness.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static commy_alloc *open_seg(const char *name)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1u << 20;
    o.max_size = 256u << 20;
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static void test_vec_grows_in_place(void)
{
    commy_alloc *a = open_seg("vec.seg");
    commy_vec *v = NULL;
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_I64, 0) == COMMY_OK);
    int64_t x = 0;
    CHECK_OK(commy_vec_push(v, &x, 8));
    void *first = NULL, *p = NULL;
    uint64_t len = 0, cap = 0, moves = 0, grows = 0;
    CHECK_OK(commy_vec_data(&first, &len, v));
    /* Far past the initial file: the array is the heap's last block, so
     * every growth takes the space behind it (growing the file). */
    for (x = 1; x < 200000; x++) {
        uint64_t before = 0;
        CHECK_OK(commy_vec_capacity(&before, v));
        CHECK_OK(commy_vec_push(v, &x, 8));
        CHECK_OK(commy_vec_capacity(&cap, v));
        if (cap != before) {
            grows++;
            CHECK_OK(commy_vec_data(&p, &len, v));
            moves += p != first;
            first = p;
        }
    }
    CHECK(grows > 10);
    CHECK(moves <= 1); /* at most once, from the first small block */
    CHECK_OK(commy_alloc_check(a));
    for (int64_t i = 0; i < 200000; i += 997) {
        int64_t y = -1;
        CHECK_OK(commy_vec_get(v, (uint64_t)i, &y, 8, NULL));
        CHECK(y == i);
    }
    /* A block after the array blocks growth in place: the array moves, intact. */
    commy_box *b = NULL;
    REQUIRE(commy_box_open(&b, a, "after", COMMY_T_I64, 0) == COMMY_OK);
    CHECK_OK(commy_vec_len(&len, v));
    CHECK_OK(commy_vec_capacity(&cap, v));
    for (x = (int64_t)len; x <= (int64_t)cap; x++) CHECK_OK(commy_vec_push(v, &x, 8));
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_vec_len(&len, v));
    for (uint64_t i = 0; i < len; i += 1013) {
        int64_t y = -1;
        CHECK_OK(commy_vec_get(v, i, &y, 8, NULL));
        CHECK(y == (int64_t)i);
    }
    commy_box_close(b);
    commy_vec_close(v);
    commy_alloc_close(a);
}

static void test_deque_grows_in_place(void)
{
    commy_alloc *a = open_seg("deque.seg");
    commy_deque *d = NULL;
    REQUIRE(commy_deque_open(&d, a, "d", COMMY_T_I64, 0) == COMMY_OK);
    for (int64_t x = 0; x < 100000; x++) CHECK_OK(commy_deque_push_back(d, &x, 8));
    CHECK_OK(commy_alloc_check(a));
    for (int64_t x = 0; x < 100000; x++) {
        int64_t y = -1;
        size_t l = 0;
        CHECK_OK(commy_deque_pop_front(d, &y, 8, &l));
        if (y != x) {
            CHECK(y == x);
            break;
        }
    }
    /* Wrapped (head > 0): growth copies, as before. */
    for (int64_t x = 0; x < 50000; x++) {
        CHECK_OK(commy_deque_push_back(d, &x, 8));
        CHECK_OK(commy_deque_push_front(d, &x, 8));
    }
    CHECK_OK(commy_alloc_check(a));
    int64_t y = -1;
    CHECK_OK(commy_deque_front(d, &y, 8, NULL));
    CHECK(y == 49999);
    CHECK_OK(commy_deque_back(d, &y, 8, NULL));
    CHECK(y == 49999);
    commy_deque_close(d);
    commy_alloc_close(a);
}

/* A batch that grows the array in place and then fails is undone whole. */
static void test_rollback(void)
{
    commy_alloc *a = open_seg("rollback.seg");
    commy_vec *v = NULL;
    commy_map *m = NULL;
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_map_open(&m, a, "m", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    for (int64_t x = 0; x < 1000; x++) CHECK_OK(commy_vec_push(v, &x, 8));
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    uint64_t cap0 = 0, cap = 0, len = 0;
    CHECK_OK(commy_vec_capacity(&cap0, v));
    CHECK_OK(commy_alloc_lock(a, 0));
    for (int64_t x = 1000; x < 3000; x++) CHECK_OK(commy_vec_push(v, &x, 8));
    int rc = COMMY_OK;
    for (int64_t k = 0; rc == COMMY_OK; k++) rc = commy_map_put(m, &k, 8, &k, 8);
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    CHECK_OK(commy_vec_len(&len, v));
    CHECK_OK(commy_vec_capacity(&cap, v));
    CHECK(len == 1000 && cap == cap0);
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(after.used == before.used && after.live_allocs == before.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    for (int64_t i = 0; i < 1000; i++) {
        int64_t y = -1;
        CHECK_OK(commy_vec_get(v, (uint64_t)i, &y, 8, NULL));
        CHECK(y == i);
    }
    commy_map_close(m);
    commy_vec_close(v);
    commy_alloc_close(a);
}

/* kill -9 while a child grows a vec and a deque: afterwards consistent, and
 * each holds 0, 1, 2, ... up to what the child last finished. */
static void test_kill(void)
{
    if (harness_valgrind()) {
        printf("  (skipped under valgrind: forked children with a segment mapped)\n");
        return;
    }
    const char *path = harness_path("kill.seg");
    for (int trial = 0; trial < 20; trial++) {
        unlink(path);
        commy_alloc *a = open_seg("kill.seg");
        commy_alloc_close(a);
        pid_t p = fork();
        REQUIRE(p >= 0);
        if (p == 0) {
            commy_alloc *c = NULL;
            commy_vec *v = NULL;
            commy_deque *d = NULL;
            if (commy_alloc_open(&c, path, NULL) || commy_vec_open(&v, c, "v", COMMY_T_I64, 0) ||
                commy_deque_open(&d, c, "d", COMMY_T_I64, 0))
                _exit(1);
            for (int64_t x = 0;; x++)
                if (commy_vec_push(v, &x, 8) || commy_deque_push_back(d, &x, 8)) _exit(2);
        }
        struct timespec ts = {0, (long)(1 + harness_below(30)) * 1000000L};
        nanosleep(&ts, NULL);
        kill(p, SIGKILL);
        int st = 0;
        REQUIRE(waitpid(p, &st, 0) == p);
        CHECK(WIFSIGNALED(st));
        REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK);
        CHECK_OK(commy_alloc_check(a));
        commy_vec *v = NULL;
        commy_deque *d = NULL;
        if (commy_vec_open(&v, a, "v", COMMY_T_I64, COMMY_OPEN_EXISTING) == COMMY_OK) {
            uint64_t len = 0;
            CHECK_OK(commy_vec_len(&len, v));
            for (uint64_t i = 0; i < len; i++) {
                int64_t y = -1;
                CHECK_OK(commy_vec_get(v, i, &y, 8, NULL));
                if (y != (int64_t)i) {
                    CHECK(y == (int64_t)i);
                    break;
                }
            }
            commy_vec_close(v);
        }
        if (commy_deque_open(&d, a, "d", COMMY_T_I64, COMMY_OPEN_EXISTING) == COMMY_OK) {
            uint64_t len = 0;
            CHECK_OK(commy_deque_len(&len, d));
            for (uint64_t i = 0; i < len; i++) {
                int64_t y = -1;
                CHECK_OK(commy_deque_get(d, i, &y, 8, NULL));
                if (y != (int64_t)i) {
                    CHECK(y == (int64_t)i);
                    break;
                }
            }
            commy_deque_close(d);
        }
        commy_alloc_close(a);
    }
}

int main(void)
{
    harness_run("vec grows in place", test_vec_grows_in_place);
    harness_run("deque grows in place", test_deque_grows_in_place);
    harness_run("rolled-back growth", test_rollback);
    harness_run("kill -9 while growing", test_kill);
    return harness_finish();
}
