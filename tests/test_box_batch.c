/* A batch that updates an integer box and then fails must undo its own
 * update without taking back what other processes added meanwhile without
 * the lock. */
#include "harness.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void test_failed_batch_keeps_others_increments(void)
{
    const char *path = harness_path("boxbatch.seg");
    unlink(path);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.journal_size = 64 << 10;
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, path, &o) == COMMY_OK);
    commy_box *c = NULL;
    REQUIRE(commy_box_open(&c, a, "c", COMMY_T_I64, 0) == COMMY_OK);
    commy_box *stop = NULL, *added = NULL;
    REQUIRE(commy_box_open(&stop, a, "stop", COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_box_open(&added, a, "added", COMMY_T_I64, 0) == COMMY_OK);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        /* Adds 1 lock-free until told to stop, then reports how many it added. */
        commy_alloc *ka = NULL;
        commy_box *kc = NULL, *ks = NULL, *kn = NULL;
        if (commy_alloc_open(&ka, path, &o) || commy_box_open(&kc, ka, "c", COMMY_T_I64, 0) ||
            commy_box_open(&ks, ka, "stop", COMMY_T_I64, 0) || commy_box_open(&kn, ka, "added", COMMY_T_I64, 0))
            _exit(1);
        if (write(go[1], "g", 1) != 1) _exit(3);
        int64_t n = 0, s = 0;
        size_t len;
        while (commy_box_get(ks, &s, sizeof s, &len) == COMMY_OK && s == 0) {
            if (commy_box_fetch_add(NULL, kc, 1)) _exit(2);
            n++;
        }
        if (commy_box_set(kn, &n, sizeof n)) _exit(4);
        commy_box_close(kn);
        commy_box_close(ks);
        commy_box_close(kc);
        commy_alloc_close(ka);
        _exit(0);
    }
    char g;
    REQUIRE(read(go[0], &g, 1) == 1);
    /* Batches, half of them failing, while the child keeps adding. */
    /* For at least 300 ms (the child needs time to get going) and 12 batches. */
    int committed = 0, batches = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0;; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (i >= 12 && (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > 300) break;
        batches++;
        CHECK_OK(commy_alloc_lock(a, 0));
        int64_t before;
        CHECK_OK(commy_box_fetch_add(&before, c, 1000000));
        int64_t dummy;
        CHECK_OK(commy_box_cas(&dummy, c, 12345, 6789));
        if (i % 2) {
            /* Outgrow the journal: the whole batch is rolled back. */
            int rc = 0;
            for (int k = 0; k < 100000 && rc == 0; k++) {
                uint64_t off;
                rc = commy_alloc_allocate(&off, a, 64, 0);
            }
            CHECK_RC(rc, COMMY_EJOURNAL);
            CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
        } else {
            CHECK_OK(commy_alloc_unlock(a));
            committed++;
        }
    }
    int64_t one = 1, v, n = 0;
    size_t len;
    CHECK_OK(commy_box_set(stop, &one, sizeof one));
    int status;
    waitpid(kid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(commy_box_get(added, &n, sizeof n, &len));
    CHECK_OK(commy_box_get(c, &v, sizeof v, &len));
    printf("%d batches (%d committed) beside %lld lock-free adds\n", batches, committed, (long long)n);
    CHECK(n > 0);
    CHECK(v == n + (int64_t)committed * 1000000);
    if (v != n + (int64_t)committed * 1000000)
        fprintf(stderr, "box is %lld, expected %lld\n", (long long)v, (long long)(n + committed * 1000000LL));
    commy_box_close(stop);
    commy_box_close(added);
    CHECK_OK(commy_alloc_check(a));
    commy_box_close(c);
    commy_alloc_close(a);
}

int main(void)
{
    harness_seed();
    /* Forked children with a segment mapped hang in valgrind's exit scan (see harness_valgrind). */
    if (!harness_valgrind())
        harness_run("failed_batch_keeps_others_increments", test_failed_batch_keeps_others_increments);
    return harness_finish();
}
