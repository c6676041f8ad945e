/* A small test harness: CHECK macros that report file:line and the last
 * commy error, a temp directory per test binary, and a seeded PRNG. */
#ifndef COMMY_TEST_HARNESS_H
#define COMMY_TEST_HARNESS_H

#include "commy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern int harness_failures;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
            harness_failures++;                                                           \
        }                                                                                 \
    } while (0)

/* Checks that a commy call returns the expected code; prints the error record if not. */
#define CHECK_RC(expr, expected)                                                          \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        if (rc_ != (expected)) {                                                          \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d; last error: %s\n",  \
                    __FILE__, __LINE__, #expr, rc_, commy_strerror(rc_), (expected),      \
                    commy_error_last()->message);                                         \
            harness_failures++;                                                           \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, COMMY_OK)

/* Aborts the test at once (for failures that make the rest meaningless). */
#define REQUIRE(cond)                                                                     \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s; last error: %s\n", __FILE__,      \
                    __LINE__, #cond, commy_error_last()->message);                        \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* A fresh temp directory for this process (removed at exit). */
const char *harness_dir(void);
/* harness_dir()/name in a static rotating buffer. */
const char *harness_path(const char *name);
/* Runs a named test function, printing its result. */
void harness_run(const char *name, void (*fn)(void));
/* Prints the summary and returns the exit status for main. */
int harness_finish(void);

/* 1 when running under valgrind. Its leak check scans every mapping at
 * exit and loops on SIGBUS over a segment mapped past its file's end, so a
 * forked child that exits with a segment still open hangs there: tests skip
 * such children under valgrind (they run natively and under ASan). */
int harness_valgrind(void);

/* xorshift64*: seeded from COMMY_TEST_SEED or the clock; the seed is printed. */
uint64_t harness_rand(void);
uint64_t harness_seed(void);
static inline uint64_t harness_below(uint64_t n) { return n ? harness_rand() % n : 0; }

#endif
