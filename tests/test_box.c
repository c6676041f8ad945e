/* commy_box: a property test per type against an in-memory model (set, get,
 * compare-and-swap and fetch-add with wrapping at the type's width, refused
 * values leaving the box unchanged), run both unlocked and inside batches;
 * plus a batch rolled back (covering the inline atomics), version changes,
 * bad arguments and COMMY_ENOSPC. */
#include "harness.h"

#include <string.h>

#define BMAX 700

static commy_alloc *open_seg(const char *name, uint64_t max_size, uint32_t journal)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    if (max_size) {
        o.initial_size = 128u << 10;
        o.max_size = max_size;
    }
    if (journal) o.journal_size = journal;
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static int is_int(commy_type t) { return COMMY_TYPE_BASE(t) >= COMMY_T_I8 && COMMY_TYPE_BASE(t) <= COMMY_T_U64; }
static int is_var(commy_type t) { return COMMY_TYPE_BASE(t) == COMMY_T_BYTES || COMMY_TYPE_BASE(t) == COMMY_T_STR; }

/* The model's integer: the value's bytes sign- or zero-extended. */
static int64_t as_int(commy_type t, const unsigned char *b)
{
    uint32_t size = commy_type_size(t);
    uint64_t w = 0;
    memcpy(&w, b, size);
    if (size < 8 && COMMY_TYPE_BASE(t) <= COMMY_T_I64 && (w >> (8 * size - 1)) & 1) w |= ~0ull << (8 * size);
    return (int64_t)w;
}

static void gen(unsigned char *b, size_t *n, commy_type t)
{
    if (is_var(t)) {
        uint64_t r = harness_below(10);
        *n = r == 0 ? 0 : r == 1 ? 300 + harness_below(BMAX - 300) : harness_below(20);
        for (size_t i = 0; i < *n; i++)
            b[i] = COMMY_TYPE_BASE(t) == COMMY_T_STR ? (unsigned char)('a' + harness_below(26))
                                                     : (unsigned char)harness_rand();
        return;
    }
    *n = commy_type_size(t);
    for (size_t i = 0; i < *n; i++) b[i] = (unsigned char)harness_rand();
    if (COMMY_TYPE_BASE(t) == COMMY_T_BOOL) b[0] &= 1;
    /* Small integers make cas hits and wrap-arounds likely. */
    if (is_int(t) && harness_below(2)) {
        memset(b, harness_below(2) ? 0xff : 0, *n);
        b[0] = (unsigned char)harness_below(4);
        if (*n > 1 && harness_below(2)) b[*n - 1] ^= 0x80;
    }
}

static const commy_type types[] = {COMMY_T_I8,  COMMY_T_I16,  COMMY_T_I32,         COMMY_T_I64,
                                   COMMY_T_U8,  COMMY_T_U16,  COMMY_T_U32,         COMMY_T_U64,
                                   COMMY_T_F32, COMMY_T_F64,  COMMY_T_BOOL,        COMMY_TYPE_BLOB(3),
                                   COMMY_TYPE_BLOB(8), COMMY_TYPE_BLOB(40), COMMY_T_BYTES, COMMY_T_STR};

static void property_one(commy_alloc *a, commy_type t, int steps)
{
    char name[32], tn[32];
    snprintf(name, sizeof name, "b%u", (unsigned)t);
    commy_type_name(tn, sizeof tn, t);
    commy_box *b;
    REQUIRE(commy_box_open(&b, a, name, t, COMMY_OPEN_EXCL) == COMMY_OK);
    static unsigned char m[BMAX], x[BMAX], buf[BMAX];
    size_t mn = is_var(t) ? 0 : commy_type_size(t), xn;
    memset(m, 0, sizeof m); /* created holding zero or empty */
    uint32_t size = commy_type_size(t), bits = 8 * size;
    uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    int batch = 0, bad = 0;
    for (int step = 0; step < steps && !bad; step++) {
        if (step % 50 == 0) {
            if (batch) CHECK_OK(commy_alloc_unlock(a));
            batch = harness_below(3) == 0;
            if (batch) CHECK_OK(commy_alloc_lock(a, 0));
        }
        uint64_t r = harness_below(100);
        uint32_t v0 = 0, v1 = 0;
        CHECK_OK(commy_box_version(&v0, b));
        int changed = 0;
        if (r < 30) {
            gen(x, &xn, t);
            CHECK_OK(commy_box_set(b, x, xn));
            memcpy(m, x, xn);
            mn = xn;
            changed = 1;
        } else if (r < 50 && is_int(t)) {
            int64_t cur = as_int(t, m), found = 0;
            gen(x, &xn, t);
            int64_t desired = as_int(t, x), expected = harness_below(2) ? cur : as_int(t, x) + 1;
            if (COMMY_TYPE_BASE(t) == COMMY_T_U64 && harness_below(4) == 0) desired = -5; /* u64 takes any bits */
            CHECK_OK(commy_box_cas(&found, b, expected, desired));
            CHECK(found == cur);
            if (cur == expected) {
                uint64_t w = (uint64_t)desired & mask;
                memcpy(m, &w, size);
                changed = w != ((uint64_t)cur & mask);
            }
        } else if (r < 70 && is_int(t)) {
            int64_t delta = harness_below(2) ? (int64_t)harness_below(7) - 3 : (int64_t)harness_rand(), prev = 0;
            int64_t cur = as_int(t, m);
            int want_prev = harness_below(5) != 0;
            CHECK_OK(commy_box_fetch_add(want_prev ? &prev : NULL, b, delta));
            if (want_prev) CHECK(prev == cur);
            uint64_t w = ((uint64_t)cur + (uint64_t)delta) & mask;
            memcpy(m, &w, size);
            changed = 1;
        } else if (r < 75 && is_int(t) && bits < 64) {
            /* A desired value that does not fit the width is refused. */
            int64_t found = 0;
            int64_t big = COMMY_TYPE_BASE(t) <= COMMY_T_I64 ? (int64_t)1 << (bits - 1) : -1;
            CHECK_RC(commy_box_cas(&found, b, as_int(t, m), big), COMMY_ERANGE);
        } else if (r < 80 && !is_int(t)) {
            int64_t found;
            CHECK_RC(commy_box_cas(&found, b, 0, 1), COMMY_ENOTSUP);
            CHECK_RC(commy_box_fetch_add(&found, b, 1), COMMY_ENOTSUP);
        } else if (r < 88) {
            int want = COMMY_EINVAL;
            if (COMMY_TYPE_BASE(t) == COMMY_T_STR) {
                x[0] = 0xc3;
                xn = 1;
                want = COMMY_EUTF8;
            } else if (COMMY_TYPE_BASE(t) == COMMY_T_BOOL) {
                x[0] = 2;
                xn = 1;
            } else if (!is_var(t)) {
                xn = size + 1;
            } else {
                xn = 0;
                want = 0;
            }
            if (want) CHECK_RC(commy_box_set(b, x, xn), want);
        } else if (r < 92 && mn > 0) {
            size_t n = 0;
            CHECK_RC(commy_box_get(b, buf, mn - 1, &n), COMMY_ETOOSMALL);
            CHECK(n == mn);
        }
        CHECK_OK(commy_box_version(&v1, b));
        if (changed) CHECK(v1 != v0);
        if (!changed) CHECK(v1 == v0);
        size_t n = 0;
        memset(buf, 0x5a, sizeof buf);
        if (commy_box_get(b, buf, sizeof buf, &n) != COMMY_OK || n != mn || memcmp(buf, m, n) != 0) {
            fprintf(stderr, "box of %s differs from the model after step %d (op %llu)\n", tn, step,
                    (unsigned long long)r);
            harness_failures++;
            bad = 1;
        }
    }
    if (batch) CHECK_OK(commy_alloc_unlock(a));
    commy_box *again;
    CHECK_OK(commy_box_open(&again, a, name, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    if (again) {
        commy_type got = 0;
        size_t n = 0;
        CHECK_OK(commy_box_type(&got, again));
        CHECK(got == t);
        CHECK_OK(commy_box_get(again, buf, sizeof buf, &n));
        CHECK(n == mn && memcmp(buf, m, n) == 0);
        commy_box_close(again);
    }
    commy_box_close(b);
}

static void test_property(void)
{
    commy_alloc *a = open_seg("prop.seg", 0, 0);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) property_one(a, types[i], 3000);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

static void test_edges(void)
{
    commy_alloc *a = open_seg("edges.seg", 0, 0);
    commy_box *b = NULL, *s = NULL, *d = NULL;
    CHECK_RC(commy_box_open(&b, a, "", COMMY_T_I64, 0), COMMY_EINVAL);
    CHECK_RC(commy_box_open(&b, a, "c", 99, 0), COMMY_EINVAL);
    REQUIRE(commy_box_open(&b, a, "c", COMMY_T_U8, 0) == COMMY_OK);
    REQUIRE(commy_box_open(&s, a, "s", COMMY_T_STR, 0) == COMMY_OK);
    CHECK_RC(commy_box_open(&d, a, "c", COMMY_T_I8, 0), COMMY_ETYPE);
    int64_t got = 77;
    /* u8 wraps at 256; cas reports the value found. */
    CHECK_OK(commy_box_fetch_add(&got, b, 255));
    CHECK(got == 0);
    CHECK_OK(commy_box_fetch_add(&got, b, 3));
    CHECK(got == 255);
    CHECK_OK(commy_box_cas(&got, b, 9, 5));
    CHECK(got == 2);
    CHECK_OK(commy_box_cas(&got, b, 2, 200));
    CHECK(got == 2);
    uint8_t v = 0;
    CHECK_OK(commy_box_get(b, &v, 1, NULL));
    CHECK(v == 200);
    CHECK_RC(commy_box_cas(&got, b, 200, 256), COMMY_ERANGE);
    CHECK_RC(commy_box_cas(&got, b, 200, -1), COMMY_ERANGE);
    CHECK_RC(commy_box_cas(NULL, b, 0, 0), COMMY_EINVAL);
    CHECK_RC(commy_box_set(b, NULL, 1), COMMY_EINVAL);
    CHECK(strstr(commy_error_last()->message, "'c'") != NULL);
    CHECK_RC(commy_box_set(NULL, &v, 1), COMMY_EINVAL);
    /* An empty string box; zero-length values. */
    size_t n = 9;
    char buf[16];
    CHECK_OK(commy_box_get(s, buf, sizeof buf, &n));
    CHECK(n == 0);
    CHECK_OK(commy_box_set(s, "hello", 5));
    CHECK_OK(commy_box_set(s, NULL, 0));
    CHECK_OK(commy_box_get(s, buf, sizeof buf, &n));
    CHECK(n == 0);
    /* A waiter sees the change. */
    uint32_t ver;
    CHECK_OK(commy_box_version(&ver, b));
    CHECK_RC(commy_box_wait(b, ver, 0), COMMY_ETIMEDOUT);
    CHECK_OK(commy_box_fetch_add(NULL, b, 1));
    CHECK_OK(commy_box_wait(b, ver, 1000));
    commy_alloc_close(a);
    CHECK_RC(commy_box_fetch_add(NULL, b, 1), COMMY_ECLOSED);
    CHECK_RC(commy_box_get(b, &v, 1, NULL), COMMY_ECLOSED);
    commy_box_close(b);
    commy_box_close(s);
    commy_box_close(NULL);
}

/* A batch's rollback restores the inline values it changed too. */
static void test_batch_rollback(void)
{
    commy_alloc *a = open_seg("batch.seg", 0, 16384);
    commy_box *n, *big;
    REQUIRE(commy_box_open(&n, a, "n", COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_box_open(&big, a, "big", COMMY_TYPE_BLOB(20000), 0) == COMMY_OK);
    CHECK_OK(commy_box_set(n, &(int64_t){10}, 8));
    static unsigned char blob[20000];
    CHECK_OK(commy_alloc_lock(a, 0));
    CHECK_OK(commy_box_fetch_add(NULL, n, 5));
    CHECK_OK(commy_box_set(n, &(int64_t){99}, 8));
    int64_t found;
    CHECK_OK(commy_box_cas(&found, n, 99, 100));
    memset(blob, 1, sizeof blob);
    CHECK_RC(commy_box_set(big, blob, sizeof blob), COMMY_EJOURNAL); /* 20000 bytes outgrow a 16 KiB journal */
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    int64_t v = 0;
    CHECK_OK(commy_box_get(n, &v, 8, NULL));
    CHECK(v == 10);
    CHECK_OK(commy_box_get(big, blob, sizeof blob, NULL));
    CHECK(blob[0] == 0 && blob[sizeof blob - 1] == 0);
    /* A bytes box set twice in a batch: the first new block is freed by the
     * second set and may be reused; the rollback restores the original. */
    commy_box *bb;
    REQUIRE(commy_box_open(&bb, a, "bb", COMMY_T_BYTES, 0) == COMMY_OK);
    unsigned char A[200], B[200];
    memset(A, 'A', sizeof A);
    memset(B, 'B', sizeof B);
    CHECK_OK(commy_box_set(bb, A, sizeof A));
    CHECK_OK(commy_alloc_lock(a, 0));
    int rc = COMMY_OK;
    for (int i = 0; i < 10000 && rc == COMMY_OK; i++) rc = commy_box_set(bb, i % 2 ? A : B, sizeof B);
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    size_t len = 0;
    memset(B, 0, sizeof B);
    CHECK_OK(commy_box_get(bb, B, sizeof B, &len));
    CHECK(len == sizeof A && memcmp(A, B, sizeof A) == 0);
    commy_box_close(bb);
    CHECK_OK(commy_alloc_check(a));
    commy_box_close(n);
    commy_box_close(big);
    commy_alloc_close(a);
}

static void test_enospc(void)
{
    commy_alloc *a = open_seg("full.seg", 256u << 10, 16384);
    commy_box *b;
    REQUIRE(commy_box_open(&b, a, "b", COMMY_T_BYTES, 0) == COMMY_OK);
    CHECK_OK(commy_box_set(b, "keep", 4));
    static unsigned char big[400000];
    CHECK_RC(commy_box_set(b, big, sizeof big), COMMY_ENOSPC);
    char buf[8];
    size_t n = 0;
    CHECK_OK(commy_box_get(b, buf, sizeof buf, &n));
    CHECK(n == 4 && memcmp(buf, "keep", 4) == 0);
    commy_box *huge = NULL;
    CHECK_RC(commy_box_open(&huge, a, "huge", COMMY_TYPE_BLOB(65535), 0), COMMY_OK);
    commy_box *huge2 = NULL, *huge3 = NULL, *huge4 = NULL;
    int rc = commy_box_open(&huge2, a, "huge2", COMMY_TYPE_BLOB(65535), 0);
    if (rc == COMMY_OK) rc = commy_box_open(&huge3, a, "huge3", COMMY_TYPE_BLOB(65535), 0);
    if (rc == COMMY_OK) rc = commy_box_open(&huge4, a, "huge4", COMMY_TYPE_BLOB(65535), 0);
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK_OK(commy_alloc_check(a));
    commy_box_close(huge);
    commy_box_close(huge2);
    commy_box_close(huge3);
    commy_box_close(huge4);
    commy_box_close(b);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("box_edges", test_edges);
    harness_run("box_property", test_property);
    harness_run("box_batch_rollback", test_batch_rollback);
    harness_run("box_enospc", test_enospc);
    return harness_finish();
}
