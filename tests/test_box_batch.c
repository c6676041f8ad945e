/* A batch that updates an integer box and then fails must undo its own
 * update without taking back what other processes added meanwhile without
 * the lock. */
#include "harness.h"

#include <sys/wait.h>
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
    enum { CHILD_ADDS = 300000 };
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        commy_alloc *ka = NULL;
        commy_box *kc = NULL;
        if (commy_alloc_open(&ka, path, &o) || commy_box_open(&kc, ka, "c", COMMY_T_I64, 0)) _exit(1);
        if (write(go[1], "g", 1) != 1) _exit(3);
        for (int i = 0; i < CHILD_ADDS; i++)
            if (commy_box_fetch_add(NULL, kc, 1)) _exit(2);
        _exit(0);
    }
    char g;
    REQUIRE(read(go[0], &g, 1) == 1);
    /* Batches, half of them failing, for as long as the child is adding. */
    int committed = 0, batches = 0, status = 0, done = 0;
    for (int i = 0; !done && i < 100000; i++) {
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
        done = waitpid(kid, &status, WNOHANG) == kid;
    }
    if (!done) waitpid(kid, &status, 0);
    printf("%d batches (%d committed) overlapped the child's %d lock-free adds\n", batches, committed, CHILD_ADDS);
    CHECK(batches > 4);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int64_t v;
    size_t n;
    CHECK_OK(commy_box_get(c, &v, sizeof v, &n));
    CHECK(v == CHILD_ADDS + (int64_t)committed * 1000000);
    if (v != CHILD_ADDS + (int64_t)committed * 1000000)
        fprintf(stderr, "box is %lld, expected %lld\n", (long long)v, (long long)CHILD_ADDS + committed * 1000000LL);
    CHECK_OK(commy_alloc_check(a));
    commy_box_close(c);
    commy_alloc_close(a);
}

int main(void)
{
    harness_seed();
    harness_run("failed_batch_keeps_others_increments", test_failed_batch_keeps_others_increments);
    return harness_finish();
}
