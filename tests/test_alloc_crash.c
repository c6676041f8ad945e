/* Kill -9 during an allocation storm: in each trial several processes
 * allocate, fill, verify and free concurrently; one is killed at a random
 * moment. The survivors must finish (nobody stuck on the dead process's
 * lock), their blocks must be intact, and commy_alloc_check must pass.
 * COMMY_CRASH_TRIALS sets the number of trials (scripts/crash-full.sh runs 1000). */
#include "harness.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 3, OPS = 100000, MAX_LIVE = 256 };

static int worker(const char *path, uint64_t seed)
{
    commy_alloc *a = NULL;
    if (commy_alloc_open(&a, path, NULL) != COMMY_OK) return 10;
    struct {
        uint64_t off, size;
        uint8_t fill;
    } live[MAX_LIVE];
    int n = 0;
    uint64_t x = seed | 1;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (n < MAX_LIVE && (n == 0 || x % 100 < 55)) {
            /* Mostly small blocks, so most of a worker's time is spent inside the lock. */
            uint64_t size = 1 + (x >> 8) % ((x & 15) ? 96 : 2048), off;
            int rc = commy_alloc_allocate(&off, a, size, 16u << ((x >> 20) % 3));
            if (rc != COMMY_OK) {
                fprintf(stderr, "worker %d: allocate: %s\n", getpid(), commy_error_last()->message);
                return 11;
            }
            uint8_t fill = (uint8_t)(x >> 32);
            memset(commy_alloc_ptr(a, off), fill, size);
            live[n].off = off, live[n].size = size, live[n].fill = fill;
            n++;
        } else {
            int i = (int)((x >> 16) % (uint64_t)n);
            const uint8_t *p = commy_alloc_ptr(a, live[i].off);
            for (uint64_t k = 0; k < live[i].size; k++)
                if (p[k] != live[i].fill) {
                    fprintf(stderr, "worker %d: block %llu damaged at byte %llu\n", getpid(),
                            (unsigned long long)live[i].off, (unsigned long long)k);
                    return 12;
                }
            if (commy_alloc_free(a, live[i].off) != COMMY_OK) {
                fprintf(stderr, "worker %d: free: %s\n", getpid(), commy_error_last()->message);
                return 13;
            }
            live[i] = live[--n];
        }
    }
    while (n > 0)
        if (commy_alloc_free(a, live[--n].off) != COMMY_OK) return 14;
    commy_alloc_close(a);
    return 0;
}

static int wait_deadline(pid_t pid, int *status, int seconds)
{
    for (int i = 0; i < seconds * 1000; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 1;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_crash_storm(void)
{
    const char *env = getenv("COMMY_CRASH_TRIALS");
    int trials = env ? atoi(env) : 150;
    const char *path = harness_path("crash.seg");
    unlink(path);
    int stuck = 0, failed = 0;
    uint64_t recoveries = 0, file_recoveries = 0;
    for (int t = 0; t < trials; t++) {
        pid_t kids[WORKERS];
        for (int w = 0; w < WORKERS; w++) {
            uint64_t seed = harness_rand();
            kids[w] = fork();
            if (kids[w] == 0) _exit(worker(path, seed));
        }
        /* Kill one at a random moment inside its storm. */
        struct timespec ts = {0, (long)(500000 + harness_below(9000000))};
        nanosleep(&ts, NULL);
        int victim = (int)harness_below(WORKERS);
        kill(kids[victim], SIGKILL);
        for (int w = 0; w < WORKERS; w++) {
            int status = 0;
            if (!wait_deadline(kids[w], &status, 20)) {
                fprintf(stderr, "trial %d: worker %d is stuck\n", t, kids[w]);
                if (getenv("COMMY_CRASH_GDB")) {
                    char cmd[600];
                    snprintf(cmd, sizeof cmd, "gdb -q -batch -p %d -ex \"p/x *(int*)($rdi)\" -ex \"frame 3\" -ex \"p a->hdr->lock.mutex\" -ex \"p *(long*)(a->base+4096)\" 2>&1 | tail -8; ps -eLf | grep test_crash | head", kids[w]);
                    if (system(cmd) != 0) fprintf(stderr, "gdb failed\n");
                }
                kill(kids[w], SIGKILL);
                waitpid(kids[w], &status, 0);
                stuck++;
                continue;
            }
            if (w == victim) continue;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "trial %d: survivor %d ended with status %d\n", t, kids[w], status);
                failed++;
            }
        }
        commy_alloc *a = NULL;
        int rc = commy_alloc_open(&a, path, NULL);
        CHECK_OK(rc);
        if (rc) break;
        rc = commy_alloc_check(a);
        CHECK_OK(rc);
        commy_heap_stats st;
        CHECK_OK(commy_alloc_stats(&st, a));
        file_recoveries = st.recoveries;
        commy_alloc_close(a);
        if (rc) break;
        /* Start each fifth trial from a fresh file; the others accumulate the dead's leaks. */
        if (t % 5 == 4 || t == trials - 1) {
            recoveries += file_recoveries;
            unlink(path);
        }
    }
    printf("crash trials: %d, survivors stuck: %d, survivors failed: %d, kills inside the lock (recovered): %llu\n", trials,
           stuck, failed, (unsigned long long)recoveries);
    CHECK(stuck == 0);
    CHECK(failed == 0);
    /* The test only means something if kills land inside locked operations. */
    CHECK(recoveries * 25 >= (uint64_t)trials);
}

/* A change that merges blocks and then allocates over the merged block, killed
 * before it commits. An allocation that finds no free block big enough first
 * gives the cached small blocks back to the heap (merging neighbours), then
 * takes the merged block; its new owner writes over the old blocks' headers
 * without logging (a fresh block). The rollback puts the cached blocks back,
 * so every header the merge swallowed must be restored too: before the fix,
 * the swallowed blocks' size words kept the owner's bytes and
 * commy_alloc_check found "heap damaged: block tag" (seen once in
 * test_ordered_crash, whose oset nodes are such allocations). Deterministic:
 * the child kills itself inside the batch, after the write. */
static void test_kill_after_merge_and_reuse(void)
{
    if (harness_valgrind()) return; /* forks with the segment mapped */
    const char *path = harness_path("merge.seg");
    unlink(path);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1 << 20;
    o.max_size = 8 << 20;
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, path, &o) == COMMY_OK);
    /* 200 adjacent 64-byte blocks, a live block after them, then freed: cached, not merged. */
    enum { SMALL = 200 };
    uint64_t small[SMALL], barrier, off;
    for (int i = 0; i < SMALL; i++) REQUIRE(commy_alloc_allocate(&small[i], a, 48, 0) == COMMY_OK);
    REQUIRE(commy_alloc_allocate(&barrier, a, 48, 0) == COMMY_OK);
    for (int i = 1; i < SMALL; i++) REQUIRE(small[i] == small[i - 1] + 64);
    /* Freed last to first: the cache hands them back first to last, so each
     * merges into its free predecessor, whose header the merge rewrites
     * while its own is left as it was. */
    for (int i = SMALL - 1; i >= 0; i--) REQUIRE(commy_alloc_free(a, small[i]) == COMMY_OK);
    /* Use up the free space behind them, so the next big request finds no free block. */
    commy_heap_stats st;
    for (;;) {
        REQUIRE(commy_alloc_stats(&st, a) == COMMY_OK);
        if (st.largest_free < 4096) break;
        REQUIRE(commy_alloc_allocate(&off, a, 1024, 0) == COMMY_OK);
    }
    REQUIRE(commy_alloc_check(a) == COMMY_OK);
    uint64_t size_before = st.file_size;
    commy_alloc_close(a);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        commy_alloc *c = NULL;
        if (commy_alloc_open(&c, path, NULL) != COMMY_OK || commy_alloc_lock(c, 0) != COMMY_OK) _exit(2);
        uint64_t big;
        if (commy_alloc_allocate(&big, c, 8000, 0) != COMMY_OK) _exit(3);
        /* It must be the merged run of cached blocks (no growth). */
        if (big < small[0] || big > small[SMALL - 1]) _exit(4);
        memset(commy_alloc_ptr(c, big), 0xAB, 8000);
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fprintf(stderr, "child exited with status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    REQUIRE(commy_alloc_open(&a, path, NULL) == COMMY_OK); /* rolls the dead child's change back */
    CHECK_OK(commy_alloc_check(a));
    REQUIRE(commy_alloc_stats(&st, a) == COMMY_OK);
    CHECK(st.recoveries == 1);
    CHECK(st.file_size == size_before);
    /* The cached blocks are back and usable: the same request is served again. */
    CHECK_OK(commy_alloc_allocate(&off, a, 8000, 0));
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
    unlink(path);
}

int main(void)
{
    harness_seed();
    harness_run("kill_after_merge_and_reuse", test_kill_after_merge_and_reuse);
    harness_run("crash_storm", test_crash_storm);
    return harness_finish();
}
