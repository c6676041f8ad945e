/* commy_map against a simple model: long random sequences of put, get,
 * remove, contains, clear and iteration for several key and value types
 * (floats with NaN and -0.0, bytes, str, blobs), growth and shrink
 * boundaries, zero-length values, ENOSPC leaving the map unchanged, cursors
 * and type checks. */
#include "harness.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ model */

struct ent {
    unsigned char k[80];
    size_t kl;
    unsigned char v[160];
    size_t vl;
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

static void model_put(struct model *m, const void *k, size_t kl, const void *v, size_t vl)
{
    struct ent *e = model_find(m, k, kl);
    if (e == NULL) {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 64;
            m->e = realloc(m->e, m->cap * sizeof *m->e);
            REQUIRE(m->e != NULL);
        }
        e = &m->e[m->n++];
        memcpy(e->k, k, kl);
        e->kl = kl;
    }
    memcpy(e->v, v, vl);
    e->vl = vl;
}

static int model_remove(struct model *m, const void *k, size_t kl)
{
    struct ent *e = model_find(m, k, kl);
    if (e == NULL) return 0;
    *e = m->e[--m->n];
    return 1;
}

/* ------------------------------------------------------------- generators */

static uint64_t canon_f64(uint64_t b)
{
    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0x000fffffffffffffull)) return 0x7ff8000000000000ull;
    if (b == 0x8000000000000000ull) return 0;
    return b;
}

static uint32_t canon_f32(uint32_t b)
{
    if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu)) return 0x7fc00000u;
    if (b == 0x80000000u) return 0;
    return b;
}

/* A key from a pool of about `pool` distinct keys: raw bytes for the call and
 * the canonical bytes the map stores (they differ only for floats). */
static size_t gen_key(commy_type t, uint64_t pool, unsigned char *raw, unsigned char *canon)
{
    size_t n = 0;
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I64: {
        int64_t x = (int64_t)harness_below(pool) - (int64_t)(pool / 2);
        if (harness_below(50) == 0) x = harness_below(2) ? INT64_MIN : INT64_MAX;
        memcpy(raw, &x, 8);
        n = 8;
        break;
    }
    case COMMY_T_U32: {
        uint32_t x = (uint32_t)harness_below(pool) * 2654435761u;
        memcpy(raw, &x, 4);
        n = 4;
        break;
    }
    case COMMY_T_U8: {
        raw[0] = (unsigned char)harness_below(pool < 256 ? pool : 256);
        n = 1;
        break;
    }
    case COMMY_T_F32: {
        static const uint32_t specials[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fc12345u, 0x80000000u,
                                            0x00000000u, 0x7f800000u, 0xff800000u};
        uint32_t b;
        if (harness_below(4) == 0) {
            b = specials[harness_below(8)];
        } else {
            float f = (float)harness_below(pool) * 0.25f - 3.0f;
            memcpy(&b, &f, 4);
        }
        memcpy(raw, &b, 4);
        n = 4;
        break;
    }
    case COMMY_T_F64: {
        static const uint64_t specials[] = {0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7ff0000000000001ull,
                                            0x7ff80000deadbeefull, 0x8000000000000000ull, 0x0000000000000000ull,
                                            0x7ff0000000000000ull, 0xfff0000000000000ull};
        uint64_t b;
        if (harness_below(4) == 0) {
            b = specials[harness_below(8)];
        } else {
            double d = (double)harness_below(pool) * 0.5 - 10.0;
            memcpy(&b, &d, 8);
        }
        memcpy(raw, &b, 8);
        n = 8;
        break;
    }
    case COMMY_T_BYTES: {
        /* Short keys from a 3-letter alphabet including NUL, and a few long ones. */
        n = harness_below(7);
        if (pool > 2000 && harness_below(8) == 0) n = 20 + harness_below(50);
        for (size_t i = 0; i < n; i++) raw[i] = (unsigned char)harness_below(3);
        break;
    }
    case COMMY_T_STR: {
        static const char *parts[] = {"a", "b", "\xc3\xa9", "\xe4\xb8\xad", "z"};
        size_t parts_n = 1 + harness_below(5);
        for (size_t i = 0; i < parts_n; i++) {
            const char *p = parts[harness_below(5)];
            size_t l = strlen(p);
            memcpy(raw + n, p, l);
            n += l;
        }
        if (harness_below(10) == 0) n = 0;
        break;
    }
    default: REQUIRE(!"unsupported key type in test");
    }
    memcpy(canon, raw, n);
    if (COMMY_TYPE_BASE(t) == COMMY_T_F64) {
        uint64_t b;
        memcpy(&b, raw, 8);
        b = canon_f64(b);
        memcpy(canon, &b, 8);
    } else if (COMMY_TYPE_BASE(t) == COMMY_T_F32) {
        uint32_t b;
        memcpy(&b, raw, 4);
        b = canon_f32(b);
        memcpy(canon, &b, 4);
    }
    return n;
}

static size_t gen_val(commy_type t, unsigned char *v)
{
    size_t n;
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I64:
    case COMMY_T_F64: n = 8; break;
    case COMMY_T_U16: n = 2; break;
    case COMMY_T_BOOL:
        v[0] = (unsigned char)harness_below(2);
        return 1;
    case COMMY_T_BLOB: n = COMMY_TYPE_BLOB_SIZE(t); break;
    case COMMY_T_BYTES: n = harness_below(4) == 0 ? 0 : harness_below(150); break;
    case COMMY_T_STR:
        n = harness_below(30);
        for (size_t i = 0; i < n; i++) v[i] = (unsigned char)(' ' + harness_below(90));
        return n;
    default: REQUIRE(!"unsupported value type in test"); return 0;
    }
    for (size_t i = 0; i < n; i++) v[i] = (unsigned char)harness_rand();
    return n;
}

/* ------------------------------------------------------------------ checks */

static commy_alloc *open_seg(const char *name, uint64_t max)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.max_size = max;
    o.initial_size = 1 << 20;
    if (o.initial_size > max) o.initial_size = max;
    commy_alloc *a = NULL;
    unlink(harness_path(name));
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

/* The map's whole contents through a cursor equal the model: every entry once. */
static int same_as_model(commy_map *m, struct model *md)
{
    uint64_t len = 0;
    if (commy_map_len(&len, m) != COMMY_OK || len != md->n) {
        fprintf(stderr, "len %llu, model %zu\n", (unsigned long long)len, md->n);
        return 0;
    }
    char *seen = calloc(md->n + 1, 1);
    commy_cursor c = COMMY_CURSOR_INIT;
    unsigned char k[80], v[160];
    size_t kl, vl, rows = 0;
    int rc, ok = 1;
    while ((rc = commy_map_next(m, &c, k, sizeof k, &kl, v, sizeof v, &vl)) == COMMY_ROW) {
        struct ent *e = model_find(md, k, kl);
        if (e == NULL || seen[e - md->e] || e->vl != vl || memcmp(e->v, v, vl) != 0) ok = 0;
        if (e) seen[e - md->e] = 1;
        rows++;
    }
    if (rc != COMMY_DONE || rows != md->n) ok = 0;
    /* A finished cursor stays finished. */
    if (commy_map_next(m, &c, k, sizeof k, &kl, v, sizeof v, &vl) != COMMY_DONE) ok = 0;
    free(seen);
    return ok;
}

struct config {
    const char *name;
    commy_type kt, vt;
    uint64_t pool;
};

static void run_config(commy_alloc *a, const struct config *cf, int ops)
{
    commy_map *m = NULL;
    CHECK_OK(commy_map_open(&m, a, cf->name, cf->kt, cf->vt, COMMY_OPEN_EXCL));
    REQUIRE(m != NULL);
    struct model md = {0};
    unsigned char raw[80], key[80], val[160], out[160];
    for (int step = 0; step < ops; step++) {
        /* Phases: grow (put-heavy), churn, shrink (remove-heavy). */
        int phase = (step * 3) / ops;
        uint64_t r = harness_below(100);
        int put_w = phase == 0 ? 60 : phase == 1 ? 35 : 12;
        size_t kl = gen_key(cf->kt, cf->pool, raw, key);
        if (r < (uint64_t)put_w) {
            size_t vl = gen_val(cf->vt, val);
            CHECK_OK(commy_map_put(m, raw, kl, val, vl));
            model_put(&md, key, kl, val, vl);
        } else if (r < (uint64_t)put_w + 20) {
            size_t ol = 999;
            struct ent *e = model_find(&md, key, kl);
            int rc = commy_map_get(m, raw, kl, out, sizeof out, &ol);
            if (e) {
                CHECK_RC(rc, COMMY_OK);
                CHECK(ol == e->vl && memcmp(out, e->v, ol) == 0);
                if (e->vl > 0) {
                    /* A buffer one byte short: ETOOSMALL, the length stored, nothing copied. */
                    memset(out, 0xAB, sizeof out);
                    ol = 0;
                    CHECK_RC(commy_map_get(m, raw, kl, out, e->vl - 1, &ol), COMMY_ETOOSMALL);
                    CHECK(ol == e->vl && out[0] == 0xAB);
                }
            } else {
                CHECK_RC(rc, COMMY_ENOTFOUND);
            }
        } else if (r < (uint64_t)put_w + 20 + (phase == 2 ? 60 : 25)) {
            int had = model_remove(&md, key, kl);
            CHECK_RC(commy_map_remove(m, raw, kl), had ? COMMY_OK : COMMY_ENOTFOUND);
        } else if (r < 99) {
            int in = -1;
            CHECK_OK(commy_map_contains(&in, m, raw, kl));
            CHECK(in == (model_find(&md, key, kl) != NULL));
        } else if (harness_below(10) == 0) {
            CHECK_OK(commy_map_clear(m));
            md.n = 0;
        }
        if (step % 500 == 499) {
            CHECK(same_as_model(m, &md));
            CHECK_OK(commy_alloc_check(a));
        }
    }
    CHECK(same_as_model(m, &md));
    CHECK_OK(commy_alloc_check(a));
    /* Every entry is findable once more, by its canonical key. */
    for (size_t i = 0; i < md.n; i++) {
        size_t ol = 0;
        CHECK_OK(commy_map_get(m, md.e[i].k, md.e[i].kl, out, sizeof out, &ol));
        CHECK(ol == md.e[i].vl && memcmp(out, md.e[i].v, ol) == 0);
    }
    commy_map_close(m);
    /* Reopening with the stored types (ANY) sees the same contents. */
    CHECK_OK(commy_map_open(&m, a, cf->name, COMMY_T_ANY, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    commy_type kt = 0, vt = 0;
    CHECK_OK(commy_map_types(&kt, &vt, m));
    CHECK(kt == cf->kt && vt == cf->vt);
    CHECK(same_as_model(m, &md));
    commy_map_close(m);
    free(md.e);
}

static void test_property(void)
{
    static const struct config configs[] = {
        {"i64_i64", COMMY_T_I64, COMMY_T_I64, 3000},
        {"u32_bytes", COMMY_T_U32, COMMY_T_BYTES, 800},
        {"f64_str", COMMY_T_F64, COMMY_T_STR, 600},
        {"f32_bool", COMMY_T_F32, COMMY_T_BOOL, 100},
        {"bytes_blob", COMMY_T_BYTES, COMMY_TYPE_BLOB(24), 5000},
        {"str_i64", COMMY_T_STR, COMMY_T_I64, 0},
        {"bytes_bytes", COMMY_T_BYTES, COMMY_T_BYTES, 5000},
        {"u8_u16", COMMY_T_U8, COMMY_T_U16, 256},
    };
    commy_alloc *a = open_seg("prop.seg", 256 << 20);
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) run_config(a, &configs[i], 12000);
    commy_alloc_close(a);
}

/* Growth and shrink across many capacity boundaries, one entry at a time. */
static void test_boundaries(void)
{
    commy_alloc *a = open_seg("grow.seg", 256 << 20);
    commy_map *m = NULL;
    REQUIRE(commy_map_open(&m, a, "g", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    commy_heap_stats st0, st1, st2;
    CHECK_OK(commy_alloc_stats(&st0, a));
    const int64_t n = 5000;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = i * 7;
        CHECK_OK(commy_map_put(m, &i, 8, &v, 8));
        uint64_t len = 0;
        CHECK_OK(commy_map_len(&len, m));
        CHECK(len == (uint64_t)i + 1);
        /* At and around every power of two, every key so far is still there. */
        if (((i + 1) & i) == 0 || ((i + 2) & (i + 1)) == 0) {
            for (int64_t j = 0; j <= i; j++) {
                int64_t got = -1;
                CHECK_OK(commy_map_get(m, &j, 8, &got, 8, NULL));
                CHECK(got == j * 7);
            }
            CHECK_OK(commy_alloc_check(a));
        }
    }
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.used > st0.used + (uint64_t)n * 16); /* the table holds 16-byte slots */
    for (int64_t i = 0; i < n; i++) {
        CHECK_OK(commy_map_remove(m, &i, 8));
        if (i % 977 == 0) {
            for (int64_t j = i + 1; j < n; j += 13) {
                int64_t got = -1;
                CHECK_OK(commy_map_get(m, &j, 8, &got, 8, NULL));
                CHECK(got == j * 7);
            }
            CHECK_OK(commy_alloc_check(a));
        }
    }
    CHECK_OK(commy_alloc_stats(&st2, a));
    /* Shrinking gave the big table back: what is left is a minimal table. */
    CHECK(st2.used < st0.used + 1024);
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_map_clear(m));
    CHECK_OK(commy_alloc_stats(&st2, a));
    CHECK(st2.used == st0.used);
    commy_map_close(m);
    commy_alloc_close(a);
}

/* A put that does not fit leaves the map exactly as it was. */
static void test_enospc(void)
{
    commy_alloc *a = open_seg("tiny.seg", 1 << 20);
    commy_map *m = NULL;
    REQUIRE(commy_map_open(&m, a, "t", COMMY_T_I64, COMMY_T_BYTES, 0) == COMMY_OK);
    static unsigned char big[4096];
    memset(big, 'x', sizeof big);
    int64_t i = 0;
    int rc = COMMY_OK;
    for (; i < 100000; i++) {
        big[0] = (unsigned char)i;
        rc = commy_map_put(m, &i, 8, big, 1000 + (size_t)(i % 7));
        if (rc != COMMY_OK) break;
    }
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK(commy_error_last()->code == COMMY_ENOSPC);
    int64_t n = i;
    uint64_t len = 0;
    CHECK_OK(commy_map_len(&len, m));
    CHECK(len == (uint64_t)n);
    for (int64_t q = 0; q < n; q++) {
        size_t ql = 0;
        CHECK_OK(commy_map_get(m, &q, 8, big, sizeof big, &ql));
        CHECK(ql == 1000 + (size_t)(q % 7) && big[0] == (unsigned char)q && big[ql - 1] == 'x');
    }
    CHECK_OK(commy_alloc_check(a));
    /* Replacing an existing value with one that does not fit keeps the old one. */
    static unsigned char huge[1 << 20];
    int64_t k0 = 0;
    CHECK_RC(commy_map_put(m, &k0, 8, huge, sizeof huge), COMMY_ENOSPC);
    size_t ol = 0;
    CHECK_OK(commy_map_get(m, &k0, 8, big, sizeof big, &ol));
    CHECK(ol == 1000 && big[0] == 0 && big[1] == 'x');
    /* Fill with small entries until a growth of the table fails: still unchanged. */
    commy_map *s = NULL;
    REQUIRE(commy_map_open(&s, a, "small", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
    int64_t j = 0;
    for (; j < 1000000; j++)
        if ((rc = commy_map_put(s, &j, 8, &j, 8)) != COMMY_OK) break;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK_OK(commy_map_len(&len, s));
    CHECK(len == (uint64_t)j);
    for (int64_t q = 0; q < j; q += 3) {
        int64_t got = -1;
        CHECK_OK(commy_map_get(s, &q, 8, &got, 8, NULL));
        CHECK(got == q);
    }
    CHECK_OK(commy_alloc_check(a));
    /* Removes still work on a full segment and make room again. */
    for (int64_t q = 0; q < n; q++) CHECK_OK(commy_map_remove(m, &q, 8));
    CHECK_OK(commy_map_put(s, &j, 8, &j, 8));
    CHECK_OK(commy_alloc_check(a));
    commy_map_close(s);
    commy_map_close(m);
    commy_alloc_close(a);
}

static void test_errors_and_cursor(void)
{
    commy_alloc *a = open_seg("err.seg", 64 << 20);
    commy_map *m = NULL;
    REQUIRE(commy_map_open(&m, a, "e", COMMY_T_I64, COMMY_T_STR, 0) == COMMY_OK);
    int64_t k = 1;
    int32_t small = 1;
    CHECK_RC(commy_map_put(m, &small, 4, "v", 1), COMMY_EINVAL);
    CHECK_RC(commy_map_put(m, &k, 8, "\xff\xfe", 2), COMMY_EUTF8);
    CHECK(strstr(commy_error_last()->message, "'e'") != NULL);
    CHECK_RC(commy_map_put(m, NULL, 8, "v", 1), COMMY_EINVAL);
    CHECK_RC(commy_map_put(NULL, &k, 8, "v", 1), COMMY_EINVAL);
    CHECK_RC(commy_map_get(m, &k, 8, NULL, 0, NULL), COMMY_ENOTFOUND);
    CHECK_RC(commy_map_remove(m, &k, 8), COMMY_ENOTFOUND);
    CHECK_RC(commy_map_contains(NULL, m, &k, 8), COMMY_EINVAL);
    /* Zero-length value. */
    CHECK_OK(commy_map_put(m, &k, 8, "", 0));
    size_t ol = 99;
    CHECK_OK(commy_map_get(m, &k, 8, NULL, 0, &ol));
    CHECK(ol == 0);
    CHECK_OK(commy_map_put(m, &k, 8, "hello", 5));
    char buf[16] = {0};
    CHECK_OK(commy_map_get(m, &k, 8, NULL, 0, &ol)); /* out NULL: length only */
    CHECK(ol == 5);
    CHECK_OK(commy_map_get(m, &k, 8, buf, sizeof buf, &ol));
    CHECK(ol == 5 && memcmp(buf, "hello", 5) == 0);

    /* Wrong types on open. */
    commy_map *w = NULL;
    CHECK_RC(commy_map_open(&w, a, "e", COMMY_T_I64, COMMY_T_I64, 0), COMMY_ETYPE);
    CHECK(w == NULL);
    commy_set *ws = NULL;
    CHECK_RC(commy_set_open(&ws, a, "e", COMMY_T_I64, 0), COMMY_ETYPE);

    /* Cursor: ETOOSMALL does not move it; a change makes it ECONCURRENT. */
    for (int64_t i = 2; i < 20; i++) CHECK_OK(commy_map_put(m, &i, 8, "abc", 3));
    commy_cursor c = COMMY_CURSOR_INIT;
    int64_t kk;
    size_t kl = 0, vl = 0;
    char vb[8];
    int rows = 0;
    int rc = commy_map_next(m, &c, &kk, 8, &kl, vb, 1, &vl);
    CHECK_RC(rc, COMMY_ETOOSMALL);
    CHECK(kl == 8 && (vl == 3 || vl == 5));
    while ((rc = commy_map_next(m, &c, &kk, 8, &kl, vb, sizeof vb, &vl)) == COMMY_ROW) rows++;
    CHECK_RC(rc, COMMY_DONE);
    CHECK(rows == 19);
    commy_cursor_reset(&c);
    CHECK_RC(commy_map_next(m, &c, &kk, 8, &kl, vb, sizeof vb, &vl), COMMY_ROW);
    int64_t nk = 100;
    CHECK_OK(commy_map_put(m, &nk, 8, "x", 1));
    CHECK_RC(commy_map_next(m, &c, &kk, 8, &kl, vb, sizeof vb, &vl), COMMY_ECONCURRENT);
    /* Version moves on a change, not on a read or a no-op. */
    uint32_t v0 = 0, v1 = 0;
    CHECK_OK(commy_map_version(&v0, m));
    CHECK_OK(commy_map_get(m, &nk, 8, vb, sizeof vb, NULL));
    CHECK_OK(commy_map_version(&v1, m));
    CHECK(v0 == v1);
    CHECK_OK(commy_map_remove(m, &nk, 8));
    CHECK_OK(commy_map_version(&v1, m));
    CHECK(v1 != v0);
    CHECK_RC(commy_map_wait(m, v1, 0), COMMY_ETIMEDOUT);
    CHECK_OK(commy_map_wait(m, v0, 0));

    /* Through a read-only mapping: reads work, writes are refused. */
    {
        commy_alloc_options o;
        commy_alloc_options_init(&o);
        o.flags = COMMY_ALLOC_READONLY;
        commy_alloc *ro = NULL;
        REQUIRE(commy_alloc_open(&ro, harness_path("err.seg"), &o) == COMMY_OK);
        commy_map *rm = NULL;
        CHECK_OK(commy_map_open(&rm, ro, "e", COMMY_T_I64, COMMY_T_STR, COMMY_OPEN_EXISTING));
        int64_t two = 2;
        size_t rl = 0;
        CHECK_OK(commy_map_get(rm, &two, 8, vb, sizeof vb, &rl));
        CHECK(rl == 3 && memcmp(vb, "abc", 3) == 0);
        CHECK_RC(commy_map_put(rm, &two, 8, "zz", 2), COMMY_EPERM);
        CHECK_RC(commy_map_remove(rm, &two, 8), COMMY_EPERM);
        CHECK_RC(commy_map_clear(rm), COMMY_EPERM);
        commy_cursor rc2 = COMMY_CURSOR_INIT;
        int n2 = 0;
        while (commy_map_next(rm, &rc2, &kk, 8, &kl, vb, sizeof vb, &vl) == COMMY_ROW) n2++;
        CHECK(n2 == 19);
        commy_map_close(rm);
        commy_alloc_close(ro);
    }
    /* Closing the segment first leaves the handle safe: ECLOSED, then close. */
    {
        commy_alloc *b = open_seg("closed.seg", 16 << 20);
        commy_map *cm = NULL;
        REQUIRE(commy_map_open(&cm, b, "c", COMMY_T_I64, COMMY_T_I64, 0) == COMMY_OK);
        commy_alloc_close(b);
        int64_t z = 0;
        CHECK_RC(commy_map_put(cm, &z, 8, &z, 8), COMMY_ECLOSED);
        commy_map_close(cm);
    }
    /* The root goes away with its memory. */
    commy_heap_stats before, after;
    commy_map_close(m);
    CHECK_OK(commy_alloc_stats(&before, a));
    CHECK_OK(commy_root_remove(a, "e"));
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(after.live_allocs + 21 <= before.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

/* Clearing and removing a map with many variable-length entries. */
static void test_clear_large(void)
{
    commy_alloc *a = open_seg("clear.seg", 256 << 20);
    commy_map *m = NULL;
    REQUIRE(commy_map_open(&m, a, "c", COMMY_T_STR, COMMY_T_BYTES, 0) == COMMY_OK);
    commy_heap_stats st0, st1;
    CHECK_OK(commy_alloc_stats(&st0, a));
    char key[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            int n = snprintf(key, sizeof key, "key-%d", i);
            CHECK_OK(commy_map_put(m, key, (size_t)n, key, (size_t)n));
        }
        CHECK_OK(commy_map_clear(m));
        uint64_t len = 1;
        CHECK_OK(commy_map_len(&len, m));
        CHECK(len == 0);
        CHECK_OK(commy_alloc_stats(&st1, a));
        CHECK(st1.live_allocs == st0.live_allocs);
        CHECK_OK(commy_alloc_check(a));
    }
    /* Inside a batch, a clear takes only a bite of the freeing; later writes
     * finish it, and the segment is consistent at every step. */
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        CHECK_OK(commy_map_put(m, key, (size_t)n, key, (size_t)n));
    }
    CHECK_OK(commy_alloc_lock(a, 0));
    CHECK_OK(commy_map_clear(m));
    CHECK_OK(commy_alloc_unlock(a));
    uint64_t len = 1;
    CHECK_OK(commy_map_len(&len, m));
    CHECK(len == 0);
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.live_allocs > st0.live_allocs + 100); /* not all freed yet */
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        CHECK_OK(commy_map_put(m, key, (size_t)n, "", 0));
        if (i % 1000 == 0) CHECK_OK(commy_alloc_check(a));
    }
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.live_allocs == st0.live_allocs + 1 + 5000); /* the table and one block per key */
    /* Removing a root frees everything in one journaled step, which a map of
     * thousands of var entries outgrows: clear (bounded steps) comes first. */
    CHECK_OK(commy_map_clear(m));
    commy_map_close(m);
    CHECK_OK(commy_root_remove(a, "c"));
    CHECK_OK(commy_alloc_stats(&st1, a));
    CHECK(st1.live_allocs + 1 == st0.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("property", test_property);
    harness_run("boundaries", test_boundaries);
    harness_run("enospc", test_enospc);
    harness_run("errors_and_cursor", test_errors_and_cursor);
    harness_run("clear_large", test_clear_large);
    return harness_finish();
}
