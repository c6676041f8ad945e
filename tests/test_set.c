/* commy_set against a simple model: long random sequences of add, remove,
 * contains, clear and iteration for several key types (floats with NaN and
 * -0.0, bytes, str, blobs, a small domain that fills the table), growth and
 * shrink boundaries, ENOSPC leaving the set unchanged, cursors. */
#include "harness.h"

#include <string.h>
#include <unistd.h>

struct ent {
    unsigned char k[80];
    size_t kl;
};

struct model {
    struct ent *e;
    size_t n, cap;
};

static struct ent *model_find(struct model *m, const void *k, size_t kl)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].kl == kl && memcmp(m->e[i].k, k, kl) == 0) return &m->e[i];
    return NULL;
}

static int model_add(struct model *m, const void *k, size_t kl)
{
    if (model_find(m, k, kl)) return 0;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        REQUIRE(m->e != NULL);
    }
    memcpy(m->e[m->n].k, k, kl);
    m->e[m->n++].kl = kl;
    return 1;
}

static int model_remove(struct model *m, const void *k, size_t kl)
{
    struct ent *e = model_find(m, k, kl);
    if (e == NULL) return 0;
    *e = m->e[--m->n];
    return 1;
}

/* A key from a pool of about `pool`: raw bytes for the call, canonical bytes
 * as the set stores them (floats: one NaN, no -0.0). */
static size_t gen_key(commy_type t, uint64_t pool, unsigned char *raw, unsigned char *canon)
{
    size_t n = 0;
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I64: {
        int64_t x = (int64_t)harness_below(pool) * 1000003 - (int64_t)pool;
        memcpy(raw, &x, 8);
        n = 8;
        break;
    }
    case COMMY_T_U8:
        raw[0] = (unsigned char)harness_below(256);
        n = 1;
        break;
    case COMMY_T_F64: {
        static const uint64_t specials[] = {0x7ff8000000000000ull, 0xfff8000000000001ull, 0x7ff0000000000001ull,
                                            0x8000000000000000ull, 0x0000000000000000ull, 0xfff0000000000000ull};
        uint64_t b;
        if (harness_below(3) == 0) {
            b = specials[harness_below(6)];
        } else {
            double d = (double)harness_below(pool) / 3.0;
            memcpy(&b, &d, 8);
        }
        memcpy(raw, &b, 8);
        n = 8;
        break;
    }
    case COMMY_T_BLOB: {
        n = COMMY_TYPE_BLOB_SIZE(t);
        uint64_t x = harness_below(pool);
        for (size_t i = 0; i < n; i++) raw[i] = (unsigned char)(x >> (8 * (i % 8)));
        break;
    }
    case COMMY_T_BYTES:
        n = harness_below(6);
        for (size_t i = 0; i < n; i++) raw[i] = (unsigned char)harness_below(4);
        break;
    case COMMY_T_STR: {
        static const char *parts[] = {"x", "y", "\xc3\xb1", "\xf0\x9f\x98\x80"};
        size_t parts_n = harness_below(5);
        for (size_t i = 0; i < parts_n; i++) {
            const char *p = parts[harness_below(4)];
            memcpy(raw + n, p, strlen(p));
            n += strlen(p);
        }
        break;
    }
    default: REQUIRE(!"unsupported key type in test");
    }
    memcpy(canon, raw, n);
    if (COMMY_TYPE_BASE(t) == COMMY_T_F64) {
        uint64_t b;
        memcpy(&b, raw, 8);
        if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0x000fffffffffffffull)) b = 0x7ff8000000000000ull;
        if (b == 0x8000000000000000ull) b = 0;
        memcpy(canon, &b, 8);
    }
    return n;
}

static commy_alloc *open_seg(const char *name, uint64_t max)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.max_size = max;
    o.initial_size = max < (1 << 20) ? max : 1 << 20;
    commy_alloc *a = NULL;
    unlink(harness_path(name));
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static int same_as_model(commy_set *s, struct model *md)
{
    uint64_t len = 0;
    if (commy_set_len(&len, s) != COMMY_OK || len != md->n) return 0;
    char *seen = calloc(md->n + 1, 1);
    commy_cursor c = COMMY_CURSOR_INIT;
    unsigned char k[80];
    size_t kl, rows = 0;
    int rc, ok = 1;
    while ((rc = commy_set_next(s, &c, k, sizeof k, &kl)) == COMMY_ROW) {
        struct ent *e = model_find(md, k, kl);
        if (e == NULL || seen[e - md->e]) ok = 0;
        if (e) seen[e - md->e] = 1;
        rows++;
    }
    free(seen);
    return ok && rc == COMMY_DONE && rows == md->n;
}

struct config {
    const char *name;
    commy_type kt;
    uint64_t pool;
};

static void run_config(commy_alloc *a, const struct config *cf, int ops)
{
    commy_set *s = NULL;
    REQUIRE(commy_set_open(&s, a, cf->name, cf->kt, COMMY_OPEN_EXCL) == COMMY_OK);
    commy_type t = 0;
    CHECK_OK(commy_set_type(&t, s));
    CHECK(t == cf->kt);
    struct model md = {0};
    unsigned char raw[80], key[80];
    for (int step = 0; step < ops; step++) {
        int phase = (step * 3) / ops;
        uint64_t r = harness_below(100);
        int add_w = phase == 0 ? 65 : phase == 1 ? 40 : 15;
        size_t kl = gen_key(cf->kt, cf->pool, raw, key);
        if (r < (uint64_t)add_w) {
            int added = -1;
            CHECK_OK(commy_set_add(&added, s, raw, kl));
            CHECK(added == model_add(&md, key, kl));
        } else if (r < 80) {
            int had = model_remove(&md, key, kl);
            CHECK_RC(commy_set_remove(s, raw, kl), had ? COMMY_OK : COMMY_ENOTFOUND);
        } else if (r < 99) {
            int in = -1;
            CHECK_OK(commy_set_contains(&in, s, raw, kl));
            CHECK(in == (model_find(&md, key, kl) != NULL));
        } else if (harness_below(5) == 0) {
            CHECK_OK(commy_set_clear(s));
            md.n = 0;
        }
        if (step % 400 == 399) {
            CHECK(same_as_model(s, &md));
            CHECK_OK(commy_alloc_check(a));
        }
    }
    CHECK(same_as_model(s, &md));
    CHECK_OK(commy_alloc_check(a));
    commy_set_close(s);
    CHECK_OK(commy_set_open(&s, a, cf->name, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    CHECK(same_as_model(s, &md));
    commy_set_close(s);
    free(md.e);
}

static void test_property(void)
{
    static const struct config configs[] = {
        {"i64", COMMY_T_I64, 4000},          {"u8", COMMY_T_U8, 256},       {"f64", COMMY_T_F64, 900},
        {"blob3", COMMY_TYPE_BLOB(3), 3000}, {"bytes", COMMY_T_BYTES, 0}, {"str", COMMY_T_STR, 0},
    };
    commy_alloc *a = open_seg("prop.seg", 128 << 20);
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) run_config(a, &configs[i], 12000);
    commy_alloc_close(a);
}

static void test_nan_and_zero(void)
{
    commy_alloc *a = open_seg("nan.seg", 16 << 20);
    commy_set *s = NULL;
    REQUIRE(commy_set_open(&s, a, "f", COMMY_T_F64, 0) == COMMY_OK);
    uint64_t qnan = 0x7ff8000000000000ull, nnan = 0xfff8000000000123ull, snan = 0x7ff0000000000001ull;
    uint64_t pz = 0, nz = 0x8000000000000000ull;
    int added = -1;
    CHECK_OK(commy_set_add(&added, s, &qnan, 8));
    CHECK(added == 1);
    CHECK_OK(commy_set_add(&added, s, &nnan, 8));
    CHECK(added == 0); /* every NaN is the same key */
    CHECK_OK(commy_set_add(&added, s, &snan, 8));
    CHECK(added == 0);
    CHECK_OK(commy_set_add(&added, s, &nz, 8));
    CHECK(added == 1);
    CHECK_OK(commy_set_add(&added, s, &pz, 8));
    CHECK(added == 0); /* -0.0 == +0.0 */
    uint64_t len = 0;
    CHECK_OK(commy_set_len(&len, s));
    CHECK(len == 2);
    /* Stored keys come back canonical. */
    commy_cursor c = COMMY_CURSOR_INIT;
    uint64_t k;
    size_t kl;
    int seen_nan = 0, seen_zero = 0;
    while (commy_set_next(s, &c, &k, 8, &kl) == COMMY_ROW) {
        seen_nan += k == qnan;
        seen_zero += k == pz;
    }
    CHECK(seen_nan == 1 && seen_zero == 1);
    CHECK_OK(commy_set_remove(s, &snan, 8));
    CHECK_OK(commy_set_remove(s, &pz, 8));
    CHECK_OK(commy_set_len(&len, s));
    CHECK(len == 0);
    /* A key of the wrong size, and a cursor step with too small a buffer. */
    CHECK_RC(commy_set_add(NULL, s, &k, 4), COMMY_EINVAL);
    CHECK_OK(commy_set_add(NULL, s, &qnan, 8));
    commy_cursor_reset(&c);
    kl = 0;
    CHECK_RC(commy_set_next(s, &c, &k, 7, &kl), COMMY_ETOOSMALL);
    CHECK(kl == 8);
    CHECK_RC(commy_set_next(s, &c, &k, 8, &kl), COMMY_ROW);
    CHECK_RC(commy_set_next(s, &c, &k, 8, &kl), COMMY_DONE);
    commy_set_close(s);
    commy_alloc_close(a);
}

/* Growth to thousands of entries and back, then ENOSPC on a tiny segment. */
static void test_boundaries_and_enospc(void)
{
    commy_alloc *a = open_seg("tiny.seg", 1 << 20);
    commy_set *s = NULL;
    REQUIRE(commy_set_open(&s, a, "s", COMMY_T_I64, 0) == COMMY_OK);
    commy_heap_stats st0, st1;
    CHECK_OK(commy_alloc_stats(&st0, a));
    int64_t n = 0;
    int rc;
    while ((rc = commy_set_add(NULL, s, &n, 8)) == COMMY_OK) n++;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK(n > 1000);
    uint64_t len = 0;
    CHECK_OK(commy_set_len(&len, s));
    CHECK(len == (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        int in = 0;
        CHECK_OK(commy_set_contains(&in, s, &i, 8));
        CHECK(in == 1);
    }
    CHECK_OK(commy_alloc_check(a));
    for (int64_t i = 0; i < n; i++) {
        CHECK_OK(commy_set_remove(s, &i, 8));
        if (i % 1000 == 0) CHECK_OK(commy_alloc_check(a));
    }
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.used < st0.used + 1024);
    CHECK_OK(commy_set_clear(s));
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.used == st0.used);
    commy_set_close(s);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("property", test_property);
    harness_run("nan_and_zero", test_nan_and_zero);
    harness_run("boundaries_and_enospc", test_boundaries_and_enospc);
    return harness_finish();
}
