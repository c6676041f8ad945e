/* Several processes on one deque and one box at once: every pushed task is
 * popped exactly once, a contended fetch-add counter ends exact, and waiters
 * in other processes are woken by commy_box_wait and
 * commy_deque_pop_front_wait (no polling). */
#include "harness.h"

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

#define WORKERS 4
#define MAX_PER_WORKER 5000
/* Tasks per worker: COMMY_MP_TASKS lowers it for slow runs (valgrind). */
static int PER_WORKER = MAX_PER_WORKER;
#define TOTAL (WORKERS * PER_WORKER)

struct shared {
    atomic_uint popped[WORKERS * MAX_PER_WORKER]; /* times each task was popped */
    atomic_uint popped_total;
    atomic_uint bad;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void worker(const char *path, struct shared *sh, int w)
{
    commy_alloc *a = NULL;
    commy_deque *q = NULL;
    commy_box *count = NULL;
    if (commy_alloc_open(&a, path, NULL) || commy_deque_open(&q, a, "tasks", COMMY_T_U64, COMMY_OPEN_EXISTING) ||
        commy_box_open(&count, a, "count", COMMY_T_I64, COMMY_OPEN_EXISTING)) {
        fprintf(stderr, "worker %d: %s\n", w, commy_error_last()->message);
        _exit(2);
    }
    uint64_t rng = (uint64_t)w * 0x9E3779B97F4A7C15ull + 1;
    int pushed = 0;
    double deadline = now_s() + 60;
    while (atomic_load(&sh->popped_total) < (unsigned)TOTAL && now_s() < deadline) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int rc = COMMY_OK;
        if (pushed < PER_WORKER && (rng & 3) != 0) {
            uint64_t task = (uint64_t)w * PER_WORKER + (uint64_t)pushed;
            rc = (rng & 4) ? commy_deque_push_back(q, &task, 8) : commy_deque_push_front(q, &task, 8);
            if (rc == COMMY_OK) pushed++;
            if (rc == COMMY_OK) rc = commy_box_fetch_add(NULL, count, 1);
        } else {
            uint64_t task = UINT64_MAX;
            size_t n = 0;
            rc = (rng & 8) ? commy_deque_pop_back(q, &task, 8, &n) : commy_deque_pop_front_wait(q, &task, 8, &n, 20);
            if (rc == COMMY_OK) {
                if (n != 8 || task >= (uint64_t)TOTAL) {
                    atomic_fetch_add(&sh->bad, 1);
                } else {
                    atomic_fetch_add(&sh->popped[task], 1);
                    atomic_fetch_add(&sh->popped_total, 1);
                }
            } else if (rc == COMMY_EEMPTY || rc == COMMY_ETIMEDOUT) {
                rc = COMMY_OK;
            }
        }
        if (rc != COMMY_OK) {
            fprintf(stderr, "worker %d: %d %s\n", w, rc, commy_error_last()->message);
            atomic_fetch_add(&sh->bad, 1);
            break;
        }
    }
    commy_deque_close(q);
    commy_box_close(count);
    commy_alloc_close(a);
    _exit(pushed == PER_WORKER ? 0 : 3);
}

static void test_tasks_and_counter(void)
{
    const char *env = getenv("COMMY_MP_TASKS");
    if (RUNNING_ON_VALGRIND) PER_WORKER = MAX_PER_WORKER / 20; /* four instrumented processes on one lock crawl */
    if (env && atoi(env) > 0 && atoi(env) < MAX_PER_WORKER) PER_WORKER = atoi(env);
    const char *path = harness_path("mp.seg");
    commy_alloc *a;
    REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK);
    commy_deque *q;
    commy_box *count;
    REQUIRE(commy_deque_open(&q, a, "tasks", COMMY_T_U64, 0) == COMMY_OK);
    REQUIRE(commy_box_open(&count, a, "count", COMMY_T_I64, 0) == COMMY_OK);
    /* Closed before forking: a child must not inherit the mapping (under
     * valgrind its exit-time leak scan reads the whole reserved range and
     * faults on every word past the end of the file). Reopened after. */
    commy_deque_close(q);
    commy_box_close(count);
    commy_alloc_close(a);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        REQUIRE(pids[w] >= 0);
        if (pids[w] == 0) worker(path, sh, w);
    }
    for (int w = 0; w < WORKERS; w++) {
        int st = 0;
        waitpid(pids[w], &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK);
    REQUIRE(commy_deque_open(&q, a, "tasks", COMMY_T_U64, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_box_open(&count, a, "count", COMMY_T_I64, COMMY_OPEN_EXISTING) == COMMY_OK);
    CHECK(atomic_load(&sh->bad) == 0);
    CHECK(atomic_load(&sh->popped_total) == (unsigned)TOTAL);
    unsigned twice = 0, never = 0;
    for (int i = 0; i < TOTAL; i++) {
        unsigned p = atomic_load(&sh->popped[i]);
        never += p == 0;
        twice += p > 1;
    }
    CHECK(never == 0 && twice == 0);
    int64_t c = 0;
    CHECK_OK(commy_box_get(count, &c, 8, NULL));
    CHECK(c == TOTAL);
    uint64_t len = 1;
    CHECK_OK(commy_deque_len(&len, q));
    CHECK(len == 0);
    CHECK_OK(commy_alloc_check(a));
    munmap(sh, sizeof *sh);
    commy_deque_close(q);
    commy_box_close(count);
    commy_alloc_close(a);
}

/* Child processes block in a wait; the parent's change wakes them. */
static void test_waiters(void)
{
    const char *path = harness_path("wait.seg");
    commy_alloc *a;
    REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK);
    commy_deque *q;
    commy_box *flag;
    REQUIRE(commy_deque_open(&q, a, "jobs", COMMY_T_STR, 0) == COMMY_OK);
    REQUIRE(commy_box_open(&flag, a, "flag", COMMY_T_BOOL, 0) == COMMY_OK);
    uint32_t seen;
    CHECK_OK(commy_box_version(&seen, flag));
    commy_deque_close(q);
    commy_box_close(flag);
    commy_alloc_close(a); /* not inherited by the children: see above */
    pid_t pb = fork();
    REQUIRE(pb >= 0);
    if (pb == 0) {
        commy_alloc *ca;
        commy_box *b;
        if (commy_alloc_open(&ca, path, NULL) || commy_box_open(&b, ca, "flag", COMMY_T_BOOL, COMMY_OPEN_EXISTING))
            _exit(2);
        int rc = commy_box_wait(b, seen, 30000); /* COMMY_OK only if the version moved */
        uint8_t v = 0;
        commy_box_get(b, &v, 1, NULL);
        int ok = rc == COMMY_OK && v == 1;
        commy_box_close(b);
        commy_alloc_close(ca);
        _exit(ok ? 0 : 1);
    }
    pid_t pq = fork();
    REQUIRE(pq >= 0);
    if (pq == 0) {
        commy_alloc *ca;
        commy_deque *d;
        if (commy_alloc_open(&ca, path, NULL) || commy_deque_open(&d, ca, "jobs", COMMY_T_STR, COMMY_OPEN_EXISTING))
            _exit(2);
        char buf[32] = {0};
        size_t n = 0;
        int rc = commy_deque_pop_front_wait(d, buf, sizeof buf, &n, 30000);
        commy_deque_close(d);
        commy_alloc_close(ca);
        _exit(rc == COMMY_OK && n == 5 && memcmp(buf, "job-1", 5) == 0 ? 0 : 1);
    }
    REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK);
    REQUIRE(commy_deque_open(&q, a, "jobs", COMMY_T_STR, COMMY_OPEN_EXISTING) == COMMY_OK);
    REQUIRE(commy_box_open(&flag, a, "flag", COMMY_T_BOOL, COMMY_OPEN_EXISTING) == COMMY_OK);
    usleep(RUNNING_ON_VALGRIND ? 3000 * 1000 : 200 * 1000); /* let both children block */
    double t0 = now_s();
    CHECK_OK(commy_box_set(flag, &(uint8_t){1}, 1));
    CHECK_OK(commy_deque_push_back(q, "job-1", 5));
    int st = 0;
    waitpid(pb, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    waitpid(pq, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(now_s() - t0 < (RUNNING_ON_VALGRIND ? 30 : 5)); /* woken, not timed out */
    uint64_t len = 9;
    CHECK_OK(commy_deque_len(&len, q));
    CHECK(len == 0);
    /* A wait that nothing ends times out. */
    CHECK_RC(commy_deque_pop_front_wait(q, NULL, 0, NULL, 50), COMMY_ETIMEDOUT);
    CHECK_OK(commy_alloc_check(a));
    commy_deque_close(q);
    commy_box_close(flag);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("seq_mp_tasks_and_counter", test_tasks_and_counter);
    harness_run("seq_mp_waiters", test_waiters);
    return harness_finish();
}
