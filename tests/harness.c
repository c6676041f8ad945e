#include "harness.h"

#include <string.h>
#include <time.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

int harness_valgrind(void) { return RUNNING_ON_VALGRIND ? 1 : 0; }

int harness_failures;
static int tests_run, tests_failed;
static char dir[256];
static uint64_t rng_state, rng_seed;

static void remove_dir(void)
{
    if (dir[0] && getenv("COMMY_TEST_KEEP") == NULL) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
}

const char *harness_dir(void)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/commy-test-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(remove_dir);
    }
    return dir;
}

const char *harness_path(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", harness_dir(), name);
    return b;
}

uint64_t harness_seed(void)
{
    if (!rng_seed) {
        const char *s = getenv("COMMY_TEST_SEED");
        rng_seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
        if (!rng_seed) rng_seed = 1;
        rng_state = rng_seed;
        fprintf(stderr, "seed: COMMY_TEST_SEED=%llu\n", (unsigned long long)rng_seed);
    }
    return rng_seed;
}

uint64_t harness_rand(void)
{
    harness_seed();
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

void harness_run(const char *name, void (*fn)(void))
{
    int before = harness_failures;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tests_run++;
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (harness_failures != before) {
        tests_failed++;
        printf("FAIL %s (%.0f ms)\n", name, ms);
    } else {
        printf("ok   %s (%.0f ms)\n", name, ms);
    }
    fflush(stdout);
}

int harness_finish(void)
{
    printf("%d passed, %d failed\n", tests_run - tests_failed, tests_failed);
    return tests_failed ? 1 : 0;
}
