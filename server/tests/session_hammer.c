/* A local-mode session client for the rotation test (test_server.py,
 * test_rotation_loses_no_write): writes as fast as it can through the
 * ordinary container calls while the server rotates the service file under
 * it, and fails on any error: a write a rotation refused or lost is a bug.
 *   session_hammer URL CA TENANT KEY SERVICE ID STOP_FILE
 *     each round: fetch_add(count, 1), map put(ID*1e9+i -> i), vec push(ID*1e9+i),
 *     with a short pause every 16 rounds (the rotations copy what was
 *     written), until STOP_FILE exists (at most 60 s); prints "adds N puts N pushes N"
 *   session_hammer URL CA TENANT KEY SERVICE --verify ID:N...
 *     checks the service holds exactly what hammers ID (N rounds each) wrote:
 *     count = sum of N, every key with its value, the vec a permutation of
 *     the pushes. */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "session_hammer: %s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: session_hammer URL CA TENANT KEY SERVICE (ID SECONDS | --verify ID:N...)\n");
        return 2;
    }
    commy_session_options opts;
    commy_session_options_init(&opts);
    opts.ca_file = argv[2];
    commy_session *s = NULL;
    commy_service *svc = NULL;
    commy_alloc *a = NULL;
    commy_box *count = NULL;
    commy_map *keys = NULL;
    commy_vec *pushes = NULL;
    if (commy_session_connect(&s, argv[1], &opts)) return fail("connect");
    if (commy_session_authenticate(s, argv[3], argv[4])) return fail("authenticate");
    if (commy_session_open_service(&svc, s, argv[5], COMMY_SERVICE_LOCAL)) return fail("open_service");
    commy_service_alloc(&a, svc);
    if (commy_box_open(&count, a, "count", COMMY_T_I64, 0) || commy_map_open(&keys, a, "keys", COMMY_T_I64, COMMY_T_I64, 0) ||
        commy_vec_open(&pushes, a, "pushes", COMMY_T_I64, 0))
        return fail("open the variables");

    if (strcmp(argv[6], "--verify") != 0) {
        int64_t id = strtoll(argv[6], NULL, 10), n = 0, prev;
        double end = now() + 60;
        while (n % 16 != 0 || (access(argv[7], F_OK) != 0 && now() < end)) {
            if (n % 16 == 0) nanosleep(&(struct timespec){0, 100000}, NULL);
            int64_t key = id * 1000000000 + n;
            if (commy_box_fetch_add(&prev, count, 1)) return fail("fetch_add");
            if (commy_map_put(keys, &key, 8, &n, 8)) return fail("map put");
            if (commy_vec_push(pushes, &key, 8)) return fail("vec push");
            n++;
        }
        printf("adds %" PRId64 " puts %" PRId64 " pushes %" PRId64 "\n", n, n, n);
        commy_box_close(count);
        commy_map_close(keys);
        commy_vec_close(pushes);
        commy_service_close(svc);
        commy_session_close(s);
        return 0;
    }

    int64_t total = 0, got = 0;
    size_t len = 0;
    int bad = 0;
    for (int i = 7; i < argc; i++) {
        int64_t id = strtoll(argv[i], NULL, 10), n = strtoll(strchr(argv[i], ':') + 1, NULL, 10);
        total += n;
        for (int64_t k = 0; k < n; k++) {
            int64_t key = id * 1000000000 + k, v = -1;
            if (commy_map_get(keys, &key, 8, &v, 8, &len) || v != k) {
                if (bad++ < 5) fprintf(stderr, "session_hammer: key %" PRId64 " missing or wrong (%" PRId64 ")\n", key, v);
            }
        }
    }
    if (commy_box_get(count, &got, 8, &len)) return fail("get count");
    if (got != total) {
        fprintf(stderr, "session_hammer: count is %" PRId64 ", %" PRId64 " adds succeeded\n", got, total);
        bad++;
    }
    uint64_t mlen = 0, vlen = 0;
    commy_map_len(&mlen, keys);
    commy_vec_len(&vlen, pushes);
    if (mlen != (uint64_t)total || vlen != (uint64_t)total) {
        fprintf(stderr, "session_hammer: map has %" PRIu64 " keys, vec %" PRIu64 " elements; %" PRId64 " expected\n",
                mlen, vlen, total);
        bad++;
    }
    /* the vec: each push exactly once */
    int64_t *all = calloc(vlen ? vlen : 1, 8);
    for (uint64_t i = 0; all && i < vlen; i++) commy_vec_get(pushes, i, &all[i], 8, &len);
    if (all) qsort(all, vlen, 8, cmp64);
    for (uint64_t i = 1; all && i < vlen; i++)
        if (all[i] == all[i - 1] && bad++ < 5) fprintf(stderr, "session_hammer: %" PRId64 " pushed twice\n", all[i]);
    free(all);
    printf("verified %" PRId64 " rounds: %s\n", total, bad ? "BAD" : "ok");
    commy_box_close(count);
    commy_map_close(keys);
    commy_vec_close(pushes);
    commy_service_close(svc);
    commy_session_close(s);
    return bad ? 1 : 0;
}
