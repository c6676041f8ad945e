/* commy_omap against a sorted-array model: long random sequences of put,
 * get, remove, bounds, first, last and in-order iteration for i64, u64,
 * f64 (NaN, -0.0), bytes and str keys, compared after every step; 100k-key
 * runs that split and merge many nodes; ENOSPC leaving the tree unchanged;
 * cursors; errors. */
#include "harness.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define KMAX 24
#define VMAX 40

struct ent {
    unsigned char k[KMAX], v[VMAX];
    size_t kl, vl;
};

struct model {
    commy_type kt;
    struct ent *e;
    size_t n, cap;
};

/* ---- the model's ordering, written from docs/format.md independently of core/ ---- */

static uint64_t f64_key(uint64_t b)
{
    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0xfffffffffffffull)) b = 0x7ff8000000000000ull;
    if (b == 0x8000000000000000ull) b = 0;
    return (b >> 63) ? ~b : b | 0x8000000000000000ull;
}

static void canon(commy_type kt, unsigned char *k)
{
    if (kt == COMMY_T_F64) {
        uint64_t b;
        memcpy(&b, k, 8);
        if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0xfffffffffffffull)) b = 0x7ff8000000000000ull;
        if (b == 0x8000000000000000ull) b = 0;
        memcpy(k, &b, 8);
    }
}

static int kcmp(commy_type kt, const unsigned char *x, size_t xl, const unsigned char *y, size_t yl)
{
    switch (kt) {
    case COMMY_T_I64: {
        int64_t p, q;
        memcpy(&p, x, 8);
        memcpy(&q, y, 8);
        return (p > q) - (p < q);
    }
    case COMMY_T_U64: {
        uint64_t p, q;
        memcpy(&p, x, 8);
        memcpy(&q, y, 8);
        return (p > q) - (p < q);
    }
    case COMMY_T_I16: {
        int16_t p, q;
        memcpy(&p, x, 2);
        memcpy(&q, y, 2);
        return (p > q) - (p < q);
    }
    case COMMY_T_F64: {
        uint64_t p, q;
        memcpy(&p, x, 8);
        memcpy(&q, y, 8);
        p = f64_key(p);
        q = f64_key(q);
        return (p > q) - (p < q);
    }
    default: {
        size_t n = xl < yl ? xl : yl;
        int c = n ? memcmp(x, y, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return (xl > yl) - (xl < yl);
    }
    }
}

/* Index of the first entry >= key (strict: > key). */
static size_t m_bound(const struct model *m, const unsigned char *k, size_t kl, int strict)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = kcmp(m->kt, m->e[mid].k, m->e[mid].kl, k, kl);
        if (strict ? c <= 0 : c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int m_find(const struct model *m, const unsigned char *k, size_t kl)
{
    size_t i = m_bound(m, k, kl, 0);
    return i < m->n && kcmp(m->kt, m->e[i].k, m->e[i].kl, k, kl) == 0 ? (int)i : -1;
}

static void m_put(struct model *m, const unsigned char *k, size_t kl, const unsigned char *v, size_t vl)
{
    size_t i = m_bound(m, k, kl, 0);
    if (!(i < m->n && kcmp(m->kt, m->e[i].k, m->e[i].kl, k, kl) == 0)) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->e = realloc(m->e, m->cap * sizeof *m->e);
            REQUIRE(m->e);
        }
        memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof *m->e);
        m->n++;
        memcpy(m->e[i].k, k, kl);
        m->e[i].kl = kl;
    }
    memcpy(m->e[i].v, v, vl);
    m->e[i].vl = vl;
}

static void m_remove(struct model *m, size_t i)
{
    memmove(m->e + i, m->e + i + 1, (m->n - i - 1) * sizeof *m->e);
    m->n--;
}

/* ---- key and value generators ---- */

static size_t gen_key(commy_type kt, unsigned char *k, uint64_t range)
{
    switch (kt) {
    case COMMY_T_I64: {
        int64_t x = (int64_t)harness_below(2 * range) - (int64_t)range;
        if (harness_below(50) == 0) x = harness_below(2) ? INT64_MIN : INT64_MAX;
        memcpy(k, &x, 8);
        return 8;
    }
    case COMMY_T_U64: {
        uint64_t x = harness_below(range);
        if (harness_below(4) == 0) x |= 0x8000000000000000ull; /* order must be unsigned */
        if (harness_below(50) == 0) x = UINT64_MAX;
        memcpy(k, &x, 8);
        return 8;
    }
    case COMMY_T_F64: {
        double d;
        uint64_t nan_bits = 0x7ff0000000000001ull | (harness_rand() & 0xfffffffffffull) | (harness_below(2) << 63);
        switch (harness_below(10)) {
        case 0: memcpy(&d, &nan_bits, 8); break;
        case 1: d = harness_below(2) ? -0.0 : 0.0; break;
        case 2: d = harness_below(2) ? INFINITY : -INFINITY; break;
        default: d = ((double)harness_below(2 * range) - (double)range) / 4.0; break;
        }
        memcpy(k, &d, 8);
        return 8;
    }
    case COMMY_T_I16: {
        int16_t x = (int16_t)((int64_t)harness_below(2 * range) - (int64_t)range);
        memcpy(k, &x, 2);
        return 2;
    }
    case COMMY_TYPE_BLOB(5):
        for (size_t i = 0; i < 5; i++) k[i] = (unsigned char)(harness_below(3) * 127);
        return 5;
    case COMMY_T_BYTES: {
        /* A small alphabet and short lengths make prefixes and ties common. */
        size_t l = harness_below(KMAX < 10 ? KMAX : 10);
        for (size_t i = 0; i < l; i++) k[i] = (unsigned char)(harness_below(4) * 85); /* includes 0 and 255 */
        return l;
    }
    default: { /* str */
        size_t l = harness_below(9);
        for (size_t i = 0; i < l; i++) k[i] = (unsigned char)('a' + harness_below(4));
        return l;
    }
    }
}

static size_t gen_val(commy_type vt, unsigned char *v)
{
    if (vt == COMMY_TYPE_BLOB(3)) {
        for (int i = 0; i < 3; i++) v[i] = (unsigned char)harness_rand();
        return 3;
    }
    if (vt == COMMY_T_I64) {
        uint64_t x = harness_rand();
        memcpy(v, &x, 8);
        return 8;
    }
    size_t l = harness_below(VMAX);
    for (size_t i = 0; i < l; i++) v[i] = (unsigned char)('A' + harness_below(26));
    return l;
}

static commy_alloc *open_seg(const char *name, uint64_t max)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1 << 20;
    o.max_size = max;
    unlink(harness_path(name));
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

/* Full in-order iteration equals the model. */
static int same_as_model(commy_omap *m, const struct model *md)
{
    commy_cursor c = COMMY_CURSOR_INIT;
    unsigned char k[KMAX], v[VMAX];
    size_t kl, vl, i = 0;
    int rc, ok = 1;
    while ((rc = commy_omap_next(m, &c, k, sizeof k, &kl, v, sizeof v, &vl)) == COMMY_ROW) {
        if (i >= md->n || kl != md->e[i].kl || memcmp(k, md->e[i].k, kl) || vl != md->e[i].vl ||
            memcmp(v, md->e[i].v, vl)) {
            ok = 0;
            break;
        }
        i++;
    }
    if (ok && (rc != COMMY_DONE || i != md->n)) ok = 0;
    uint64_t len = 0;
    if (commy_omap_len(&len, m) != COMMY_OK || len != md->n) ok = 0;
    return ok;
}

static int entry_is(const struct ent *e, const unsigned char *k, size_t kl, const unsigned char *v, size_t vl)
{
    return e->kl == kl && !memcmp(e->k, k, kl) && e->vl == vl && !memcmp(e->v, v, vl);
}

static void property(commy_type kt, commy_type vt, int steps, uint64_t range)
{
    char name[32];
    snprintf(name, sizeof name, "prop%u_%u.seg", (unsigned)kt, (unsigned)vt);
    commy_alloc *a = open_seg(name, 256 << 20);
    commy_omap *m = NULL;
    REQUIRE(commy_omap_open(&m, a, "om", kt, vt, 0) == COMMY_OK);
    struct model md = {kt, NULL, 0, 0};
    unsigned char k[KMAX], v[VMAX], ko[KMAX], vo[VMAX];
    size_t kl, vl, klo, vlo;
    int failures_before = harness_failures;
    for (int s = 0; s < steps && harness_failures == failures_before; s++) {
        /* Phases: grow, churn, shrink, so the tree splits and merges repeatedly. */
        int phase = (s / 2000) % 3;
        int put_w = phase == 0 ? 55 : phase == 1 ? 30 : 10;
        int op = (int)harness_below(100);
        kl = gen_key(kt, k, range);
        canon(kt, k);
        if (op < put_w) {
            vl = gen_val(vt, v);
            CHECK_OK(commy_omap_put(m, k, kl, v, vl));
            m_put(&md, k, kl, v, vl);
        } else if (op < put_w + 25) {
            /* remove: mostly an existing key */
            if (md.n && harness_below(4)) {
                size_t i = harness_below(md.n);
                kl = md.e[i].kl;
                memcpy(k, md.e[i].k, kl);
            }
            int i = m_find(&md, k, kl);
            CHECK_RC(commy_omap_remove(m, k, kl), i >= 0 ? COMMY_OK : COMMY_ENOTFOUND);
            if (i >= 0) m_remove(&md, (size_t)i);
        } else if (op < put_w + 35) {
            int i = m_find(&md, k, kl);
            int rc = commy_omap_get(m, k, kl, vo, sizeof vo, &vlo);
            CHECK_RC(rc, i >= 0 ? COMMY_OK : COMMY_ENOTFOUND);
            if (i >= 0 && rc == 0) CHECK(vlo == md.e[i].vl && !memcmp(vo, md.e[i].v, vlo));
            int has = -1;
            CHECK_OK(commy_omap_contains(&has, m, k, kl));
            CHECK(has == (i >= 0));
        } else if (op < put_w + 45) {
            int strict = (int)harness_below(2);
            size_t i = m_bound(&md, k, kl, strict);
            int rc = strict ? commy_omap_upper_bound(m, k, kl, ko, sizeof ko, &klo, vo, sizeof vo, &vlo)
                            : commy_omap_lower_bound(m, k, kl, ko, sizeof ko, &klo, vo, sizeof vo, &vlo);
            CHECK_RC(rc, i < md.n ? COMMY_OK : COMMY_ENOTFOUND);
            if (rc == 0 && i < md.n) CHECK(entry_is(&md.e[i], ko, klo, vo, vlo));
        } else if (op < put_w + 50) {
            int rc = commy_omap_first(m, ko, sizeof ko, &klo, vo, sizeof vo, &vlo);
            CHECK_RC(rc, md.n ? COMMY_OK : COMMY_EEMPTY);
            if (rc == 0 && md.n) CHECK(entry_is(&md.e[0], ko, klo, vo, vlo));
            rc = commy_omap_last(m, ko, sizeof ko, &klo, vo, sizeof vo, &vlo);
            CHECK_RC(rc, md.n ? COMMY_OK : COMMY_EEMPTY);
            if (rc == 0 && md.n) CHECK(entry_is(&md.e[md.n - 1], ko, klo, vo, vlo));
        } else if (op < put_w + 58) {
            /* a partial range scan from a random key */
            int incl = (int)harness_below(2);
            commy_cursor c = COMMY_CURSOR_INIT;
            CHECK_OK(commy_omap_seek(&c, m, k, kl, incl));
            size_t i = m_bound(&md, k, kl, !incl), want = harness_below(40);
            for (size_t j = 0; j < want; j++, i++) {
                int rc = commy_omap_next(m, &c, ko, sizeof ko, &klo, vo, sizeof vo, &vlo);
                if (i >= md.n) {
                    CHECK_RC(rc, COMMY_DONE);
                    break;
                }
                CHECK_RC(rc, COMMY_ROW);
                if (rc != COMMY_ROW || !entry_is(&md.e[i], ko, klo, vo, vlo)) {
                    CHECK(0);
                    break;
                }
            }
        } else if (op < put_w + 59) {
            CHECK(same_as_model(m, &md));
        } else {
            uint64_t len = 0;
            CHECK_OK(commy_omap_len(&len, m));
            CHECK(len == md.n);
        }
        if (s % 997 == 0) CHECK_OK(commy_alloc_check(a));
    }
    CHECK(same_as_model(m, &md));
    CHECK_OK(commy_alloc_check(a));
    /* clear empties it and gives every node back */
    commy_heap_stats st0, st1;
    CHECK_OK(commy_omap_clear(m));
    md.n = 0;
    CHECK(same_as_model(m, &md));
    CHECK_OK(commy_alloc_stats(&st0, a));
    for (int i = 0; i < 500; i++) {
        kl = gen_key(kt, k, range);
        vl = gen_val(vt, v);
        CHECK_OK(commy_omap_put(m, k, kl, v, vl));
    }
    CHECK_OK(commy_omap_clear(m));
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.live_allocs == st0.live_allocs);
    if (st1.live_allocs != st0.live_allocs) fprintf(stderr, "live %llu -> %llu\n", (unsigned long long)st0.live_allocs, (unsigned long long)st1.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    free(md.e);
    commy_omap_close(m);
    commy_alloc_close(a);
}

static void test_i64(void) { property(COMMY_T_I64, COMMY_T_I64, 30000, 3000); }
static void test_u64(void) { property(COMMY_T_U64, COMMY_T_STR, 20000, 2000); }
static void test_f64(void) { property(COMMY_T_F64, COMMY_T_I64, 20000, 1000); }
static void test_bytes(void) { property(COMMY_T_BYTES, COMMY_T_BYTES, 20000, 0); }
static void test_str(void) { property(COMMY_T_STR, COMMY_T_STR, 20000, 0); }
static void test_i16_blob(void)
{
    property(COMMY_T_I16, COMMY_TYPE_BLOB(3), 15000, 20000); /* inline search on 2-byte keys */
    property(COMMY_TYPE_BLOB(5), COMMY_T_I64, 15000, 0);     /* fixed-size bytes, compared bytewise */
}

/* 100k keys in, checked, then all out in random order: many splits, borrows and merges. */
static void test_100k(void)
{
    commy_alloc *a = open_seg("big.seg", 1ull << 30);
    commy_omap *m = NULL;
    REQUIRE(commy_omap_open(&m, a, "big", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    enum { N = 100000 };
    int64_t *keys = malloc(N * sizeof *keys);
    REQUIRE(keys);
    for (int i = 0; i < N; i++) keys[i] = (int64_t)i * 7 - N * 3;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)harness_below((uint64_t)i + 1);
        int64_t t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
    }
    for (int i = 0; i < N; i++) {
        int64_t v = keys[i] * 3;
        int rc = commy_omap_put(m, &keys[i], 8, &v, 8);
        if (rc != COMMY_OK) {
            CHECK_OK(rc);
            break;
        }
    }
    uint64_t len = 0;
    CHECK_OK(commy_omap_len(&len, m));
    CHECK(len == N);
    CHECK_OK(commy_alloc_check(a));
    /* Scan in order: keys are -3N, -3N+7, ... */
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t k, v, want = -N * 3;
    size_t kl, vl;
    int rows = 0, rc;
    while ((rc = commy_omap_next(m, &c, &k, 8, &kl, &v, 8, &vl)) == COMMY_ROW) {
        if (k != want || v != k * 3) break;
        want += 7;
        rows++;
    }
    CHECK(rc == COMMY_DONE && rows == N);
    /* Bounds between keys */
    /* Probes stay below the last key: above it there is no upper bound (the
     * edge is checked just after). */
    for (int i = 0; i < 1000; i++) {
        int64_t probe = (int64_t)harness_below(7 * (N - 1)) - N * 3;
        int64_t off = ((probe + N * 3) % 7 + 7) % 7;
        int64_t lb = off ? probe + (7 - off) : probe;
        CHECK_OK(commy_omap_lower_bound(m, &probe, 8, &k, 8, &kl, &v, 8, &vl));
        CHECK(k == lb);
        CHECK_OK(commy_omap_upper_bound(m, &probe, 8, &k, 8, &kl, NULL, 0, NULL));
        CHECK(k == probe + (7 - off));
    }
    int64_t last = -N * 3 + 7 * (N - 1);
    CHECK(commy_omap_upper_bound(m, &last, 8, &k, 8, &kl, NULL, 0, NULL) == COMMY_ENOTFOUND);
    CHECK_OK(commy_omap_lower_bound(m, &last, 8, &k, 8, &kl, NULL, 0, NULL));
    CHECK(k == last);
    /* Remove in another random order, checking now and then. */
    for (int i = N - 1; i > 0; i--) {
        int j = (int)harness_below((uint64_t)i + 1);
        int64_t t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
    }
    for (int i = 0; i < N; i++) {
        rc = commy_omap_remove(m, &keys[i], 8);
        if (rc != COMMY_OK) {
            CHECK_OK(rc);
            break;
        }
        if (i % 25000 == 0) CHECK_OK(commy_alloc_check(a));
    }
    CHECK_OK(commy_omap_len(&len, m));
    CHECK(len == 0);
    CHECK_RC(commy_omap_first(m, &k, 8, &kl, &v, 8, &vl), COMMY_EEMPTY);
    /* Removing a root that holds a big tree: its nodes are freed after the
     * removal commits, in journaled steps, so no journal is too small. */
    commy_omap *r = NULL;
    REQUIRE(commy_omap_open(&r, a, "doomed", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    for (int64_t i = 0; i < 60000; i++) CHECK_OK(commy_omap_put(r, &i, 8, &i, 8));
    CHECK_OK(commy_root_remove(a, "doomed"));
    CHECK_RC(commy_omap_len(&len, r), COMMY_ENOTFOUND);
    commy_omap_close(r);
    CHECK_OK(commy_alloc_check(a));
    /* All nodes back: only the container block and the root directory remain. */
    commy_heap_stats st;
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs < 8);
    free(keys);
    commy_omap_close(m);
    commy_alloc_close(a);
}

/* A segment that fills up: every failing put leaves the tree exactly as it was. */
static void test_enospc(void)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.journal_size = 64 << 10;
    o.initial_size = 256 << 10;
    o.max_size = 256 << 10;
    unlink(harness_path("full.seg"));
    commy_alloc *a = NULL;
    REQUIRE(commy_alloc_open(&a, harness_path("full.seg"), &o) == COMMY_OK);
    commy_omap *m = NULL;
    REQUIRE(commy_omap_open(&m, a, "full", COMMY_T_STR, COMMY_T_BYTES, 0) == COMMY_OK);
    struct model md = {COMMY_T_STR, NULL, 0, 0};
    int enospc = 0;
    char key[KMAX];
    unsigned char val[VMAX];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 200000 && enospc < 50; i++) {
        int kl = snprintf(key, sizeof key, "key%07d", (int)harness_below(10000000));
        int rc = commy_omap_put(m, key, (size_t)kl, val, sizeof val);
        if (rc == COMMY_ENOSPC) {
            enospc++;
            CHECK(commy_error_last()->code == COMMY_ENOSPC);
            continue;
        }
        CHECK_OK(rc);
        if (rc == 0) m_put(&md, (unsigned char *)key, (size_t)kl, val, sizeof val);
    }
    CHECK(enospc == 50);
    CHECK(md.n > 1000);
    CHECK(same_as_model(m, &md));
    CHECK_OK(commy_alloc_check(a));
    /* Removing makes room again. */
    for (size_t i = 0; i < 200 && md.n; i++) {
        size_t j = harness_below(md.n);
        CHECK_OK(commy_omap_remove(m, md.e[j].k, md.e[j].kl));
        m_remove(&md, j);
    }
    CHECK_OK(commy_omap_put(m, "zzz", 3, val, 4));
    m_put(&md, (const unsigned char *)"zzz", 3, val, 4);
    CHECK(same_as_model(m, &md));
    /* clear on a full segment works and frees everything */
    CHECK_OK(commy_omap_clear(m));
    md.n = 0;
    CHECK(same_as_model(m, &md));
    CHECK_OK(commy_alloc_check(a));
    free(md.e);
    commy_omap_close(m);
    commy_alloc_close(a);
}

static void test_api(void)
{
    commy_alloc *a = open_seg("api.seg", 64 << 20);
    commy_omap *m = NULL, *m2 = NULL;
    CHECK_RC(commy_omap_open(&m, a, "x", COMMY_T_I64, COMMY_T_ANY, COMMY_OPEN_EXISTING), COMMY_ENOTFOUND);
    REQUIRE(commy_omap_open(&m, a, "x", COMMY_T_I64, COMMY_T_STR, 0) == COMMY_OK);
    CHECK_RC(commy_omap_open(&m2, a, "x", COMMY_T_U64, COMMY_T_STR, 0), COMMY_ETYPE);
    CHECK_OK(commy_omap_open(&m2, a, "x", COMMY_T_ANY, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    commy_type kt = 0, vt = 0;
    CHECK_OK(commy_omap_types(&kt, &vt, m2));
    CHECK(kt == COMMY_T_I64 && vt == COMMY_T_STR);
    int64_t k = 5;
    char buf[16];
    size_t kl, vl;
    CHECK_RC(commy_omap_put(m, &k, 4, "a", 1), COMMY_EINVAL);  /* wrong key length */
    CHECK_RC(commy_omap_put(m, &k, 8, "\xff", 1), COMMY_EUTF8); /* invalid str value */
    CHECK_RC(commy_omap_put(NULL, &k, 8, "a", 1), COMMY_EINVAL);
    CHECK_RC(commy_omap_get(m, &k, 8, buf, sizeof buf, &vl), COMMY_ENOTFOUND);
    CHECK_RC(commy_omap_first(m, NULL, 0, NULL, NULL, 0, NULL), COMMY_EEMPTY);
    CHECK_RC(commy_omap_last(m, NULL, 0, NULL, NULL, 0, NULL), COMMY_EEMPTY);
    CHECK_RC(commy_omap_lower_bound(m, &k, 8, NULL, 0, NULL, NULL, 0, NULL), COMMY_ENOTFOUND);
    CHECK_OK(commy_omap_put(m, &k, 8, "hello", 5));
    CHECK_OK(commy_omap_put(m, &k, 8, "", 0)); /* replace with an empty value */
    CHECK_OK(commy_omap_get(m2, &k, 8, buf, sizeof buf, &vl));
    CHECK(vl == 0);
    CHECK_OK(commy_omap_put(m, &k, 8, "hello world", 11));
    CHECK_RC(commy_omap_get(m, &k, 8, buf, 4, &vl), COMMY_ETOOSMALL);
    CHECK(vl == 11);
    CHECK_OK(commy_omap_get(m, &k, 8, NULL, 0, &vl));
    CHECK(vl == 11);
    /* A cursor: ETOOSMALL does not move it; a change makes it ECONCURRENT. */
    int64_t k2 = 9;
    CHECK_OK(commy_omap_put(m, &k2, 8, "b", 1));
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t ko = 0;
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, buf, 2, &vl), COMMY_ETOOSMALL);
    CHECK(vl == 11 && kl == 8);
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, buf, sizeof buf, &vl), COMMY_ROW);
    CHECK(ko == 5 && vl == 11 && !memcmp(buf, "hello world", 11));
    uint32_t v0 = 0, v1 = 0;
    CHECK_OK(commy_omap_version(&v0, m));
    int64_t k3 = 7;
    CHECK_OK(commy_omap_put(m2, &k3, 8, "c", 1));
    CHECK_OK(commy_omap_version(&v1, m));
    CHECK(v1 != v0);
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, buf, sizeof buf, &vl), COMMY_ECONCURRENT);
    CHECK_RC(commy_omap_wait(m, v1, 0), COMMY_ETIMEDOUT);
    /* seek exclusive past 5 gives 7 then 9 then done */
    CHECK_OK(commy_omap_seek(&c, m, &k, 8, 0));
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_ROW);
    CHECK(ko == 7);
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_ROW);
    CHECK(ko == 9);
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_DONE);
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_DONE);
    int64_t big = 100;
    CHECK_OK(commy_omap_seek(&c, m, &big, 8, 1));
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_DONE);
    /* a forged cursor is refused, not followed */
    CHECK_OK(commy_omap_seek(&c, m, NULL, 0, 1));
    c.pos = 12345;
    CHECK_RC(commy_omap_next(m, &c, &ko, 8, &kl, NULL, 0, &vl), COMMY_EINVAL);
    CHECK_RC(commy_omap_remove(m, &big, 8), COMMY_ENOTFOUND);
    CHECK_OK(commy_omap_remove(m, &k, 8));
    int has = 1;
    CHECK_OK(commy_omap_contains(&has, m2, &k, 8));
    CHECK(has == 0);
    commy_omap_close(m2);
    commy_omap_close(m);
    commy_omap_close(NULL);
    /* A key too large for 4 per node is refused at creation, and nothing is created. */
    CHECK_RC(commy_omap_open(&m2, a, "huge", COMMY_TYPE_BLOB(20000), COMMY_T_I64, 0), COMMY_EINVAL);
    commy_root_info ri;
    CHECK_RC(commy_root_find(&ri, a, "huge"), COMMY_ENOTFOUND);
    /* The map outlives its handles. */
    REQUIRE(commy_omap_open(&m, a, "x", COMMY_T_I64, COMMY_T_STR, COMMY_OPEN_EXISTING) == COMMY_OK);
    uint64_t len = 0;
    CHECK_OK(commy_omap_len(&len, m));
    CHECK(len == 2);
    commy_omap_close(m);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

/* Nodes of the tree found by their tag (docs/format.md: 64-aligned blocks
 * starting with "CBTN"), for the corruption tests. */
static unsigned char *find_node(commy_alloc *a, int level, uint64_t nth)
{
    commy_segment_info info;
    if (commy_alloc_info(&info, a) != COMMY_OK) return NULL;
    unsigned char *heap = commy_alloc_ptr(a, info.heap_offset);
    if (heap == NULL) return NULL;
    unsigned char *base = heap - info.heap_offset;
    for (uint64_t off = (info.heap_offset + 63) & ~63ull; off + 64 <= info.size; off += 64) {
        uint32_t tag;
        memcpy(&tag, base + off, 4);
        if (tag == 0x4e544243u && base[off + 4] == level && nth-- == 0) return base + off;
    }
    return NULL;
}

/* A damaged tree gives COMMY_ECORRUPT from the check and never crashes an
 * operation (run under ASan and valgrind). */
static void test_corrupt(void)
{
    for (int round = 0; round < 36; round++) {
        commy_alloc *a = open_seg("bad.seg", 64 << 20);
        commy_omap *m = NULL;
        int strk = round % 2;
        REQUIRE(commy_omap_open(&m, a, "bad", strk ? COMMY_T_STR : COMMY_T_I64, COMMY_T_BYTES, 0) == COMMY_OK);
        for (int i = 0; i < 3000; i++) {
            int64_t k = (int64_t)harness_below(100000);
            char ks[24];
            int kl = snprintf(ks, sizeof ks, "%08lld", (long long)k);
            CHECK_OK(strk ? commy_omap_put(m, ks, (size_t)kl, "v", 1) : commy_omap_put(m, &k, 8, "v", 1));
        }
        CHECK_OK(commy_alloc_check(a));
        int level = round % 3 == 0 ? 1 : 0;
        unsigned char *nd = find_node(a, level, harness_below(5));
        REQUIRE(nd != NULL);
        uint16_t n;
        memcpy(&n, nd + 6, 2);
        int must_detect = 1;
        switch (round % 6) {
        case 0: /* an inner node's first child points elsewhere (child arrays: i64 keys at 264, str keys at 336) */
            memcpy(nd + (strk ? 336 : 264), &(uint64_t){harness_rand()}, 8);
            break;
        case 1: { /* two keys swapped */
            size_t ks = strk ? 16 : 8;
            unsigned char tmp[16];
            memcpy(tmp, nd + 16, ks);
            memcpy(nd + 16, nd + 16 + ks, ks);
            memcpy(nd + 16 + ks, tmp, ks);
            break;
        }
        case 2: /* fill beyond capacity */
            n = 60000;
            memcpy(nd + 6, &n, 2);
            break;
        case 3: /* the level of an inner node */
            nd[4] = 7;
            break;
        case 4: /* a leaf's link */
            memcpy(nd + 8, &(uint64_t){harness_rand() & ~63ull}, 8);
            break;
        default: /* random bytes anywhere in the node */
            for (int i = 0; i < 8; i++) nd[harness_below(512)] = (unsigned char)harness_rand();
            must_detect = 0;
            break;
        }
        int rc = commy_alloc_check(a);
        CHECK(rc == COMMY_OK || rc == COMMY_ECORRUPT);
        if (must_detect) CHECK_RC(rc, COMMY_ECORRUPT);
        /* Operations on the damaged tree return, whatever they return. */
        commy_cursor c = COMMY_CURSOR_INIT;
        unsigned char kb[32], vb[8];
        size_t kl, vl;
        for (int i = 0; i < 5000 && commy_omap_next(m, &c, kb, sizeof kb, &kl, vb, sizeof vb, &vl) == COMMY_ROW; i++) {
        }
        for (int i = 0; i < 300; i++) {
            int64_t k = (int64_t)harness_below(100000);
            char ks[24];
            int kl2 = snprintf(ks, sizeof ks, "%08lld", (long long)k);
            const void *key = strk ? (const void *)ks : (const void *)&k;
            size_t klen = strk ? (size_t)kl2 : 8;
            (void)commy_omap_get(m, key, klen, vb, sizeof vb, &vl);
            (void)commy_omap_lower_bound(m, key, klen, kb, sizeof kb, &kl, vb, sizeof vb, &vl);
            (void)commy_omap_last(m, kb, sizeof kb, &kl, vb, sizeof vb, &vl);
        }
        commy_omap_close(m);
        commy_alloc_close(a);
    }
}

int main(void)
{
    harness_run("api", test_api);
    harness_run("i64", test_i64);
    harness_run("u64_str_values", test_u64);
    harness_run("f64_nan_negzero", test_f64);
    harness_run("bytes", test_bytes);
    harness_run("str", test_str);
    harness_run("i16_blob", test_i16_blob);
    harness_run("100k", test_100k);
    harness_run("enospc", test_enospc);
    harness_run("corrupt", test_corrupt);
    return harness_finish();
}
