/* Walking a hash map with a cursor, and what happens when it changes meanwhile.
 * Usage: iterate SEGMENT */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

/* Sums every value; restarts from the beginning when another writer changes
 * the map under the cursor. Returns COMMY_OK or an error. */
static int sum_values(int64_t *out, commy_map *m)
{
    for (;;) {
        commy_cursor c = COMMY_CURSOR_INIT;
        int64_t sum = 0, key = 0, val = 0;
        int rc;
        while ((rc = commy_map_next(m, &c, &key, sizeof key, NULL, &val, sizeof val, NULL)) == COMMY_ROW)
            sum += val;
        if (rc == COMMY_DONE) {
            *out = sum;
            return COMMY_OK;
        }
        if (rc != COMMY_ECONCURRENT) return rc;
        /* the map changed: the entries seen so far may be stale, start again */
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    commy_alloc *seg = NULL;
    commy_map *squares = NULL;
    if (commy_alloc_open(&seg, argv[1], NULL)) return fail("open segment");
    if (commy_map_open(&squares, seg, "squares", COMMY_T_I64, COMMY_T_I64, 0)) return fail("open map");
    for (int64_t k = 1; k <= 10; k++) {
        int64_t sq = k * k;
        if (commy_map_put(squares, &k, sizeof k, &sq, sizeof sq)) return fail("put");
    }
    int64_t sum = 0;
    if (sum_values(&sum, squares)) return fail("sum");
    printf("sum of squares 1..10 = %" PRId64 "\n", sum);

    /* A change between two steps of a cursor (here our own; usually another process's). */
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t key = 0, val = 0, eleven = 11, sq11 = 121;
    int rc = commy_map_next(squares, &c, &key, sizeof key, NULL, &val, sizeof val, NULL);
    printf("first step: %s\n", rc == COMMY_ROW ? "a row" : commy_strerror(rc));
    if (commy_map_put(squares, &eleven, sizeof eleven, &sq11, sizeof sq11)) return fail("put");
    rc = commy_map_next(squares, &c, &key, sizeof key, NULL, &val, sizeof val, NULL);
    printf("next step after a change: %s\n", commy_strerror(rc));
    if (sum_values(&sum, squares)) return fail("sum");
    printf("sum of squares 1..11 = %" PRId64 "\n", sum);
    commy_map_close(squares);
    commy_alloc_close(seg);
    return 0;
}
