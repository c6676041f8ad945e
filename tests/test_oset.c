/* commy_oset against a sorted-array model: random add, remove, contains,
 * bounds, first, last and iteration for i64, u64, f64 (NaN, -0.0), bytes and
 * str keys, compared after every step; a 100k-key run; ENOSPC leaving the
 * set unchanged; a clear of a large set; errors. */
#include "harness.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define KMAX 16

struct key {
    unsigned char b[KMAX];
    size_t l;
};

struct model {
    commy_type kt;
    struct key *e;
    size_t n, cap;
};

static uint64_t f64_canon(uint64_t b)
{
    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0xfffffffffffffull)) return 0x7ff8000000000000ull;
    return b == 0x8000000000000000ull ? 0 : b;
}

/* Independent of core/: numbers by value (floats: -inf < ... < -0 == +0 < ... < +inf < NaN), bytes by prefix order. */
static int kcmp(commy_type kt, const struct key *x, const struct key *y)
{
    uint64_t p, q;
    if (kt == COMMY_T_I64) {
        int64_t a, b;
        memcpy(&a, x->b, 8);
        memcpy(&b, y->b, 8);
        return (a > b) - (a < b);
    }
    if (kt == COMMY_T_U64 || kt == COMMY_T_F64) {
        memcpy(&p, x->b, 8);
        memcpy(&q, y->b, 8);
        if (kt == COMMY_T_F64) {
            double a, b;
            memcpy(&a, &p, 8);
            memcpy(&b, &q, 8);
            if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
            return (a > b) - (a < b);
        }
        return (p > q) - (p < q);
    }
    size_t n = x->l < y->l ? x->l : y->l;
    int c = n ? memcmp(x->b, y->b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (x->l > y->l) - (x->l < y->l);
}

static size_t m_bound(const struct model *m, const struct key *k, int strict)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = kcmp(m->kt, &m->e[mid], k);
        if (strict ? c <= 0 : c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int m_has(const struct model *m, const struct key *k, size_t *at)
{
    size_t i = m_bound(m, k, 0);
    *at = i;
    return i < m->n && kcmp(m->kt, &m->e[i], k) == 0;
}

static void gen(commy_type kt, struct key *k, uint64_t range)
{
    switch (kt) {
    case COMMY_T_I64: {
        int64_t x = (int64_t)harness_below(2 * range) - (int64_t)range;
        memcpy(k->b, &x, 8);
        k->l = 8;
        return;
    }
    case COMMY_T_U64: {
        uint64_t x = harness_below(range) | (harness_below(3) == 0 ? 0x8000000000000000ull : 0);
        memcpy(k->b, &x, 8);
        k->l = 8;
        return;
    }
    case COMMY_T_F64: {
        double d;
        uint64_t nan_bits = 0x7ff0000000000001ull | (harness_rand() & 0xfffffffffull) | (harness_below(2) << 63);
        switch (harness_below(8)) {
        case 0: memcpy(&d, &nan_bits, 8); break;
        case 1: d = -0.0; break;
        case 2: d = harness_below(2) ? INFINITY : -INFINITY; break;
        default: d = ((double)harness_below(2 * range) - (double)range) / 8.0; break;
        }
        uint64_t b;
        memcpy(&b, &d, 8);
        b = f64_canon(b); /* what the set gives back */
        memcpy(k->b, &b, 8);
        k->l = 8;
        return;
    }
    default:
        k->l = harness_below(kt == COMMY_T_STR ? 8 : 12);
        for (size_t i = 0; i < k->l; i++)
            k->b[i] = kt == COMMY_T_STR ? (unsigned char)('a' + harness_below(3)) : (unsigned char)(harness_below(3) * 127);
        return;
    }
}

static int same(commy_oset *s, const struct model *m)
{
    commy_cursor c = COMMY_CURSOR_INIT;
    struct key k;
    size_t i = 0;
    int rc;
    while ((rc = commy_oset_next(s, &c, k.b, KMAX, &k.l)) == COMMY_ROW) {
        if (i >= m->n || k.l != m->e[i].l || memcmp(k.b, m->e[i].b, k.l)) return 0;
        i++;
    }
    uint64_t len = 0;
    return rc == COMMY_DONE && i == m->n && commy_oset_len(&len, s) == 0 && len == m->n;
}

static commy_alloc *open_seg(const char *name, uint64_t initial, uint64_t max, uint32_t journal)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = initial;
    o.max_size = max;
    if (journal) o.journal_size = journal;
    unlink(harness_path(name));
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static void property(commy_type kt, int steps, uint64_t range)
{
    char name[32];
    snprintf(name, sizeof name, "set%u.seg", (unsigned)kt);
    commy_alloc *a = open_seg(name, 1 << 20, 256 << 20, 0);
    commy_oset *s = NULL;
    REQUIRE(commy_oset_open(&s, a, "s", kt, 0) == COMMY_OK);
    struct model m = {kt, NULL, 0, 0};
    struct key k, o;
    int before = harness_failures;
    for (int step = 0; step < steps && harness_failures == before; step++) {
        int add_w = (step / 1500) % 2 ? 25 : 60;
        int op = (int)harness_below(100);
        gen(kt, &k, range);
        size_t at;
        int has = m_has(&m, &k, &at);
        if (op < add_w) {
            int added = -1;
            CHECK_OK(commy_oset_add(&added, s, k.b, k.l));
            CHECK(added == !has);
            if (!has) {
                if (m.n == m.cap) {
                    m.cap = m.cap ? 2 * m.cap : 64;
                    m.e = realloc(m.e, m.cap * sizeof *m.e);
                    REQUIRE(m.e);
                }
                memmove(m.e + at + 1, m.e + at, (m.n - at) * sizeof *m.e);
                m.e[at] = k;
                m.n++;
            }
        } else if (op < add_w + 25) {
            if (m.n && harness_below(3)) {
                k = m.e[harness_below(m.n)];
                has = m_has(&m, &k, &at);
            }
            CHECK_RC(commy_oset_remove(s, k.b, k.l), has ? COMMY_OK : COMMY_ENOTFOUND);
            if (has) {
                memmove(m.e + at, m.e + at + 1, (m.n - at - 1) * sizeof *m.e);
                m.n--;
            }
        } else if (op < add_w + 32) {
            int c = -1;
            CHECK_OK(commy_oset_contains(&c, s, k.b, k.l));
            CHECK(c == has);
        } else if (op < add_w + 40) {
            int strict = (int)harness_below(2);
            size_t i = m_bound(&m, &k, strict);
            int rc = strict ? commy_oset_upper_bound(s, k.b, k.l, o.b, KMAX, &o.l)
                            : commy_oset_lower_bound(s, k.b, k.l, o.b, KMAX, &o.l);
            CHECK_RC(rc, i < m.n ? COMMY_OK : COMMY_ENOTFOUND);
            if (rc == 0 && i < m.n) CHECK(o.l == m.e[i].l && !memcmp(o.b, m.e[i].b, o.l));
        } else if (op < add_w + 44) {
            int rc = commy_oset_first(s, o.b, KMAX, &o.l);
            CHECK_RC(rc, m.n ? COMMY_OK : COMMY_EEMPTY);
            if (rc == 0 && m.n) CHECK(o.l == m.e[0].l && !memcmp(o.b, m.e[0].b, o.l));
            rc = commy_oset_last(s, o.b, KMAX, &o.l);
            CHECK_RC(rc, m.n ? COMMY_OK : COMMY_EEMPTY);
            if (rc == 0 && m.n) CHECK(o.l == m.e[m.n - 1].l && !memcmp(o.b, m.e[m.n - 1].b, o.l));
        } else if (op < add_w + 50) {
            int incl = (int)harness_below(2);
            commy_cursor c = COMMY_CURSOR_INIT;
            CHECK_OK(commy_oset_seek(&c, s, k.b, k.l, incl));
            size_t i = m_bound(&m, &k, !incl), n = harness_below(30);
            for (size_t j = 0; j < n; j++, i++) {
                int rc = commy_oset_next(s, &c, o.b, KMAX, &o.l);
                if (i >= m.n) {
                    CHECK_RC(rc, COMMY_DONE);
                    break;
                }
                if (rc != COMMY_ROW || o.l != m.e[i].l || memcmp(o.b, m.e[i].b, o.l)) {
                    CHECK(0);
                    break;
                }
            }
        } else if (op < add_w + 51) {
            CHECK(same(s, &m));
        } else {
            uint64_t len = 0;
            CHECK_OK(commy_oset_len(&len, s));
            CHECK(len == m.n);
        }
        if (step % 1999 == 0) CHECK_OK(commy_alloc_check(a));
    }
    CHECK(same(s, &m));
    CHECK_OK(commy_alloc_check(a));
    free(m.e);
    commy_oset_close(s);
    commy_alloc_close(a);
}

static void test_i64(void) { property(COMMY_T_I64, 30000, 4000); }
static void test_u64(void) { property(COMMY_T_U64, 15000, 2000); }
static void test_f64(void) { property(COMMY_T_F64, 15000, 500); }
static void test_bytes(void) { property(COMMY_T_BYTES, 20000, 0); }
static void test_str(void) { property(COMMY_T_STR, 15000, 0); }

/* 100k keys in, all out, with a clear of a large set that must free every
 * node even though the journal is small. */
static void test_100k_and_clear(void)
{
    commy_alloc *a = open_seg("big.seg", 1 << 20, 1ull << 30, 64 << 10);
    commy_oset *s = NULL;
    REQUIRE(commy_oset_open(&s, a, "big", COMMY_T_U64, 0) == COMMY_OK);
    commy_heap_stats st0, st1;
    CHECK_OK(commy_alloc_stats(&st0, a));
    enum { N = 100000 };
    uint64_t x = 1;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull; /* distinct: a full-period LCG */
        int added = 0;
        int rc = commy_oset_add(&added, s, &x, 8);
        if (rc || !added) {
            CHECK_OK(rc);
            CHECK(added);
            break;
        }
    }
    uint64_t len = 0, prev = 0, k;
    size_t kl;
    CHECK_OK(commy_oset_len(&len, s));
    CHECK(len == N);
    commy_cursor c = COMMY_CURSOR_INIT;
    int rows = 0, rc, sorted = 1;
    while ((rc = commy_oset_next(s, &c, &k, 8, &kl)) == COMMY_ROW) {
        if (rows && k <= prev) sorted = 0;
        prev = k;
        rows++;
    }
    CHECK(rc == COMMY_DONE && rows == N && sorted);
    CHECK_OK(commy_alloc_check(a));
    /* The journal is 64 KiB: freeing ~3000 nodes takes several operations. */
    CHECK_OK(commy_oset_clear(s));
    CHECK_OK(commy_oset_len(&len, s));
    CHECK(len == 0);
    CHECK_RC(commy_oset_first(s, &k, 8, &kl), COMMY_EEMPTY);
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.live_allocs == st0.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    commy_oset_close(s);
    commy_alloc_close(a);
}

static void test_enospc(void)
{
    commy_alloc *a = open_seg("full.seg", 256 << 10, 256 << 10, 64 << 10);
    commy_oset *s = NULL;
    REQUIRE(commy_oset_open(&s, a, "full", COMMY_T_BYTES, 0) == COMMY_OK);
    struct model m = {COMMY_T_BYTES, NULL, 0, 0};
    int enospc = 0;
    for (int i = 0; i < 100000 && enospc < 40; i++) {
        struct key k;
        k.l = 12;
        uint64_t r = harness_rand();
        memcpy(k.b, &r, 8);
        memcpy(k.b + 8, "abcd", 4);
        int added = 0;
        int rc = commy_oset_add(&added, s, k.b, k.l);
        if (rc == COMMY_ENOSPC) {
            enospc++;
            continue;
        }
        CHECK_OK(rc);
        size_t at;
        if (rc == 0 && !m_has(&m, &k, &at)) {
            if (m.n == m.cap) {
                m.cap = m.cap ? 2 * m.cap : 64;
                m.e = realloc(m.e, m.cap * sizeof *m.e);
                REQUIRE(m.e);
            }
            memmove(m.e + at + 1, m.e + at, (m.n - at) * sizeof *m.e);
            m.e[at] = k;
            m.n++;
        }
    }
    CHECK(enospc == 40 && m.n > 1000);
    CHECK(same(s, &m));
    CHECK_OK(commy_alloc_check(a));
    free(m.e);
    commy_oset_close(s);
    commy_alloc_close(a);
}

static void test_api(void)
{
    commy_alloc *a = open_seg("api.seg", 1 << 20, 64 << 20, 0);
    commy_oset *s = NULL, *s2 = NULL;
    REQUIRE(commy_oset_open(&s, a, "t", COMMY_T_STR, 0) == COMMY_OK);
    CHECK_RC(commy_oset_open(&s2, a, "t", COMMY_T_BYTES, 0), COMMY_ETYPE);
    commy_omap *m = NULL;
    CHECK_RC(commy_omap_open(&m, a, "t", COMMY_T_STR, COMMY_T_I64, 0), COMMY_ETYPE); /* another kind */
    commy_type t = 0;
    CHECK_OK(commy_oset_type(&t, s));
    CHECK(t == COMMY_T_STR);
    int added = -1;
    CHECK_RC(commy_oset_add(&added, s, "\xc3", 1), COMMY_EUTF8);
    CHECK_RC(commy_oset_add(&added, s, NULL, 3), COMMY_EINVAL);
    CHECK_OK(commy_oset_add(&added, s, "", 0)); /* the empty string is a key like any other */
    CHECK(added == 1);
    CHECK_OK(commy_oset_add(&added, s, "héllo", strlen("héllo")));
    CHECK_OK(commy_oset_add(&added, s, "", 0));
    CHECK(added == 0);
    char buf[16];
    size_t l = 99;
    CHECK_OK(commy_oset_first(s, buf, sizeof buf, &l));
    CHECK(l == 0);
    CHECK_RC(commy_oset_last(s, buf, 2, &l), COMMY_ETOOSMALL);
    CHECK(l == strlen("héllo"));
    CHECK_OK(commy_oset_upper_bound(s, "", 0, buf, sizeof buf, &l));
    CHECK(l == 6 && !memcmp(buf, "héllo", 6));
    CHECK_RC(commy_oset_upper_bound(s, "z", 1, buf, sizeof buf, &l), COMMY_ENOTFOUND);
    uint32_t v0, v1;
    CHECK_OK(commy_oset_version(&v0, s));
    CHECK_OK(commy_oset_add(&added, s, "", 0)); /* no change: the version stays */
    CHECK_OK(commy_oset_version(&v1, s));
    CHECK(v0 == v1);
    CHECK_OK(commy_oset_remove(s, "", 0));
    CHECK_OK(commy_oset_version(&v1, s));
    CHECK(v0 != v1);
    CHECK_RC(commy_oset_remove(s, "", 0), COMMY_ENOTFOUND);
    commy_oset_close(s);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("api", test_api);
    harness_run("i64", test_i64);
    harness_run("u64", test_u64);
    harness_run("f64_nan_negzero", test_f64);
    harness_run("bytes", test_bytes);
    harness_run("str", test_str);
    harness_run("100k_and_clear", test_100k_and_clear);
    harness_run("enospc", test_enospc);
    return harness_finish();
}
