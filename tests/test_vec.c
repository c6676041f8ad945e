/* commy_vec: a property test against an in-memory model for several element
 * types, plus edge cases: empty, growth boundaries, large shifts (the
 * rebuild path), zero-length values, bad arguments, a batch that outgrows the
 * journal, and COMMY_ENOSPC leaving the vec unchanged. */
#include "harness.h"

#include <string.h>

#define VMAX 600

struct val {
    size_t n;
    unsigned char b[VMAX];
};

struct model {
    struct val *e;
    size_t len, cap;
};

static void m_insert(struct model *m, size_t i, const struct val *v)
{
    if (m->len == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        REQUIRE(m->e != NULL);
    }
    memmove(&m->e[i + 1], &m->e[i], (m->len - i) * sizeof *m->e);
    m->e[i] = *v;
    m->len++;
}

static void m_remove(struct model *m, size_t i)
{
    memmove(&m->e[i], &m->e[i + 1], (m->len - i - 1) * sizeof *m->e);
    m->len--;
}

static int is_var(commy_type t)
{
    return COMMY_TYPE_BASE(t) == COMMY_T_BYTES || COMMY_TYPE_BASE(t) == COMMY_T_STR;
}

/* A random valid value of type t. */
static void gen(struct val *v, commy_type t)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    if (base == COMMY_T_BYTES || base == COMMY_T_STR) {
        uint64_t r = harness_below(16);
        size_t n = r == 0 ? 0 : r == 1 ? 200 + harness_below(VMAX - 210) : harness_below(40);
        if (base == COMMY_T_BYTES) {
            for (size_t i = 0; i < n; i++) v->b[i] = (unsigned char)harness_rand();
            v->n = n;
            return;
        }
        static const char *pieces[] = {"a", "Z", "0", " ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xd0\x96"};
        size_t k = 0;
        while (k < n) {
            const char *p = pieces[harness_below(8)];
            size_t pl = strlen(p);
            if (k + pl > VMAX - 1) break;
            memcpy(v->b + k, p, pl);
            k += pl;
        }
        v->n = k;
        return;
    }
    v->n = commy_type_size(t);
    for (size_t i = 0; i < v->n; i++) v->b[i] = (unsigned char)harness_rand();
    if (base == COMMY_T_BOOL) v->b[0] &= 1;
}

/* A value of type t that must be refused, with the code expected. */
static int gen_bad(struct val *v, commy_type t)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    if (base == COMMY_T_STR) {
        gen(v, t);
        if (v->n == 0) v->n = 1;
        v->b[harness_below(v->n)] = 0xff;
        return COMMY_EUTF8;
    }
    if (base == COMMY_T_BYTES) return 0; /* any bytes are valid */
    if (base == COMMY_T_BOOL && harness_below(2)) {
        v->n = 1;
        v->b[0] = 2;
        return COMMY_EINVAL;
    }
    v->n = commy_type_size(t) + 1 + harness_below(3);
    memset(v->b, 7, v->n);
    return COMMY_EINVAL;
}

static int same(commy_vec *v, const struct model *m, commy_type t)
{
    uint64_t len = 0, cap = 0;
    if (commy_vec_len(&len, v) != COMMY_OK || len != m->len) {
        fprintf(stderr, "len %llu, model %zu\n", (unsigned long long)len, m->len);
        return 0;
    }
    if (commy_vec_capacity(&cap, v) != COMMY_OK || cap < len) return 0;
    static unsigned char buf[VMAX + 8];
    for (size_t i = 0; i < m->len; i++) {
        size_t n = 12345;
        if (commy_vec_get(v, i, buf, sizeof buf, &n) != COMMY_OK) return 0;
        if (n != m->e[i].n || memcmp(buf, m->e[i].b, n) != 0) {
            fprintf(stderr, "element %zu differs (len %zu, model %zu)\n", i, n, m->e[i].n);
            return 0;
        }
    }
    if (!is_var(t)) {
        void *data;
        uint64_t n;
        if (commy_vec_data(&data, &n, v) != COMMY_OK || n != m->len) return 0;
        size_t sz = commy_type_size(t);
        for (size_t i = 0; i < m->len; i++)
            if (memcmp((char *)data + i * sz, m->e[i].b, sz) != 0) return 0;
    }
    return 1;
}

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
    int rc = commy_alloc_open(&a, harness_path(name), &o);
    REQUIRE(rc == COMMY_OK);
    return a;
}

static const commy_type types[] = {COMMY_T_I64, COMMY_T_U8, COMMY_T_F64, COMMY_T_BOOL, COMMY_TYPE_BLOB(24),
                                   COMMY_T_BYTES, COMMY_T_STR};

static void property_one(commy_alloc *a, commy_type t, int steps)
{
    char name[32], tn[32];
    snprintf(name, sizeof name, "v%u", (unsigned)t);
    commy_vec *v;
    REQUIRE(commy_vec_open(&v, a, name, t, COMMY_OPEN_EXCL) == COMMY_OK);
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    struct model m = {0};
    struct val x, y;
    static unsigned char buf[VMAX + 8];
    size_t target = 0; /* the length the random walk drifts to: crosses growth and shift-rebuild sizes */
    int bad = 0;
    for (int step = 0; step < steps && !bad; step++) {
        if (step % 400 == 0) target = harness_below(4) == 0 ? 0 : harness_below(800);
        uint64_t r = harness_below(100);
        size_t len = m.len;
        int grow = len < target;
        if (r < (grow ? 30 : 12)) {
            gen(&x, t);
            CHECK_OK(commy_vec_push(v, x.b, x.n));
            m_insert(&m, len, &x);
        } else if (r < 36) {
            size_t n = 999;
            if (len == 0) {
                CHECK_RC(commy_vec_pop(v, buf, sizeof buf, &n), COMMY_EEMPTY);
            } else if (m.e[len - 1].n > 0 && harness_below(8) == 0) {
                /* A short buffer: the needed length comes back, nothing is removed. */
                CHECK_RC(commy_vec_pop(v, buf, m.e[len - 1].n - 1, &n), COMMY_ETOOSMALL);
                CHECK(n == m.e[len - 1].n);
            } else {
                CHECK_OK(commy_vec_pop(v, buf, sizeof buf, &n));
                CHECK(n == m.e[len - 1].n && memcmp(buf, m.e[len - 1].b, n) == 0);
                m_remove(&m, len - 1);
            }
        } else if (r < 48) {
            uint64_t i = harness_below(len + 2);
            gen(&x, t);
            if (i >= len) {
                CHECK_RC(commy_vec_set(v, i, x.b, x.n), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_vec_set(v, i, x.b, x.n));
                m.e[i] = x;
            }
        } else if (r < (grow ? 68 : 58)) {
            uint64_t i = harness_below(len + 2);
            gen(&x, t);
            if (i > len) {
                CHECK_RC(commy_vec_insert(v, i, x.b, x.n), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_vec_insert(v, i, x.b, x.n));
                m_insert(&m, i, &x);
            }
        } else if (r < (grow ? 74 : 84)) {
            uint64_t i = harness_below(len + 1);
            if (i >= len) {
                CHECK_RC(commy_vec_remove(v, i), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_vec_remove(v, i));
                m_remove(&m, i);
            }
        } else if (r < 88) {
            uint64_t cap0, cap1, want = len + harness_below(300);
            CHECK_OK(commy_vec_capacity(&cap0, v));
            CHECK_OK(commy_vec_reserve(v, want));
            CHECK_OK(commy_vec_capacity(&cap1, v));
            CHECK(cap1 >= want && cap1 >= cap0);
        } else if (r < 89 && harness_below(4) == 0) {
            CHECK_OK(commy_vec_clear(v));
            m.len = 0;
            uint64_t cap;
            CHECK_OK(commy_vec_capacity(&cap, v));
            CHECK(cap == 0);
        } else if (r < 94) {
            int want = gen_bad(&y, t);
            if (want) {
                CHECK_RC(commy_vec_push(v, y.b, y.n), want);
                if (len) CHECK_RC(commy_vec_set(v, harness_below(len), y.b, y.n), want);
                CHECK_RC(commy_vec_insert(v, harness_below(len + 1), y.b, y.n), want);
            }
        } else {
            uint64_t i = harness_below(len + 2);
            size_t n = 999;
            if (i >= len) {
                CHECK_RC(commy_vec_get(v, i, buf, sizeof buf, &n), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_vec_get(v, i, NULL, 0, &n)); /* length only */
                CHECK(n == m.e[i].n);
            }
        }
        if (!same(v, &m, t)) {
            fprintf(stderr, "vec of %s differs from the model after step %d (op %llu)\n",
                    commy_type_name(tn, sizeof tn, t), step, (unsigned long long)r);
            harness_failures++;
            bad = 1;
        }
    }
    CHECK_OK(commy_alloc_check(a));
    /* A second handle (as another process would open it) sees the same. */
    commy_vec *w;
    CHECK_OK(commy_vec_open(&w, a, name, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    if (w) {
        CHECK(same(w, &m, t));
        commy_vec_close(w);
    }
    CHECK_RC(commy_vec_open(&w, a, name, t == COMMY_T_I64 ? COMMY_T_U8 : COMMY_T_I64, 0), COMMY_ETYPE);
    /* Clearing gives every block back. */
    CHECK_OK(commy_vec_clear(v));
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(after.live_allocs == before.live_allocs && after.used == before.used);
    commy_vec_close(v);
    free(m.e);
}

static void test_property(void)
{
    commy_alloc *a = open_seg("prop.seg", 0, 0);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) property_one(a, types[i], 6000);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

static void test_edges(void)
{
    commy_alloc *a = open_seg("edges.seg", 0, 0);
    commy_vec *v = NULL, *b = NULL;
    CHECK_RC(commy_vec_open(NULL, a, "x", COMMY_T_I64, 0), COMMY_EINVAL);
    CHECK_RC(commy_vec_open(&v, NULL, "x", COMMY_T_I64, 0), COMMY_EINVAL);
    CHECK_RC(commy_vec_open(&v, a, "x", COMMY_T_ANY, 0), COMMY_EINVAL);
    CHECK_RC(commy_vec_open(&v, a, "x", COMMY_T_I64, COMMY_OPEN_EXISTING), COMMY_ENOTFOUND);
    REQUIRE(commy_vec_open(&v, a, "x", COMMY_T_I64, 0) == COMMY_OK);
    REQUIRE(commy_vec_open(&b, a, "b", COMMY_T_BYTES, 0) == COMMY_OK);
    commy_vec *dup = (commy_vec *)1;
    CHECK_RC(commy_vec_open(&dup, a, "x", COMMY_T_I64, COMMY_OPEN_EXCL), COMMY_EEXISTS);
    CHECK(dup == NULL);
    int64_t x = 42;
    uint64_t n = 7;
    size_t len = 0;
    /* Empty. */
    CHECK_OK(commy_vec_len(&n, v));
    CHECK(n == 0);
    CHECK_RC(commy_vec_pop(v, &x, 8, NULL), COMMY_EEMPTY);
    CHECK_RC(commy_vec_get(v, 0, &x, 8, NULL), COMMY_ERANGE);
    CHECK_RC(commy_vec_remove(v, 0), COMMY_ERANGE);
    void *data = (void *)1;
    CHECK_OK(commy_vec_data(&data, &n, v));
    CHECK(n == 0);
    CHECK_RC(commy_vec_data(&data, &n, b), COMMY_ENOTSUP);
    /* Bad arguments name the container. */
    CHECK_RC(commy_vec_push(NULL, &x, 8), COMMY_EINVAL);
    CHECK_RC(commy_vec_push(v, NULL, 8), COMMY_EINVAL);
    CHECK_RC(commy_vec_push(v, &x, 4), COMMY_EINVAL);
    CHECK(strstr(commy_error_last()->message, "'x'") != NULL);
    CHECK_RC(commy_vec_len(NULL, v), COMMY_EINVAL);
    /* Growth is 1.5x from 4. */
    uint64_t caps[8], cap;
    int k = 0;
    for (int64_t i = 0; i < 40; i++) {
        CHECK_OK(commy_vec_push(v, &i, 8));
        CHECK_OK(commy_vec_capacity(&cap, v));
        if (k == 0 || caps[k - 1] != cap) caps[k < 7 ? k++ : k] = cap;
    }
    CHECK(caps[0] == 4 && caps[1] == 6 && caps[2] == 9 && caps[3] == 13 && caps[4] == 19 && caps[5] == 28);
    /* vec_data borrows the elements in place. */
    CHECK_OK(commy_vec_data(&data, &n, v));
    CHECK(n == 40 && ((int64_t *)data)[39] == 39);
    /* Zero-length values. */
    CHECK_OK(commy_vec_push(b, NULL, 0));
    CHECK_OK(commy_vec_push(b, "", 0));
    CHECK_OK(commy_vec_get(b, 1, NULL, 0, &len));
    CHECK(len == 0);
    char small[4];
    CHECK_OK(commy_vec_push(b, "hello", 5));
    CHECK_RC(commy_vec_get(b, 2, small, sizeof small, &len), COMMY_ETOOSMALL);
    CHECK(len == 5);
    CHECK_OK(commy_vec_len(&n, b));
    CHECK(n == 3);
    /* Closing the segment first leaves the handle safe to call and close. */
    commy_alloc_close(a);
    CHECK_RC(commy_vec_push(v, &x, 8), COMMY_ECLOSED);
    commy_vec_close(v);
    commy_vec_close(b);
    commy_vec_close(NULL);
}

/* A batch that outgrows the journal is rolled back as a whole. */
static void test_batch_rollback(void)
{
    commy_alloc *a = open_seg("batch.seg", 0, 16384);
    commy_vec *v;
    REQUIRE(commy_vec_open(&v, a, "v", COMMY_T_I64, 0) == COMMY_OK);
    for (int64_t i = 0; i < 100; i++) CHECK_OK(commy_vec_push(v, &i, 8));
    CHECK_OK(commy_alloc_lock(a, 0));
    int rc = COMMY_OK;
    for (int64_t i = 0; i < 5000 && rc == COMMY_OK; i++) {
        rc = commy_vec_set(v, (uint64_t)(i % 100), &(int64_t){-i}, 8);
        if (rc == COMMY_OK) rc = commy_vec_push(v, &i, 8);
    }
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    uint64_t n;
    CHECK_OK(commy_vec_len(&n, v));
    CHECK(n == 100);
    for (int64_t i = 0; i < 100; i++) {
        int64_t got = -1;
        CHECK_OK(commy_vec_get(v, (uint64_t)i, &got, 8, NULL));
        CHECK(got == i);
    }
    /* A string popped in the batch frees its block; the push after it may
     * get the same block back. The rollback must restore the old bytes. */
    commy_vec *s;
    REQUIRE(commy_vec_open(&s, a, "s", COMMY_T_STR, 0) == COMMY_OK);
    char A[100], B[100], got[100];
    memset(A, 'A', sizeof A);
    memset(B, 'B', sizeof B);
    for (int i = 0; i < 3; i++) CHECK_OK(commy_vec_push(s, A, sizeof A));
    CHECK_OK(commy_alloc_lock(a, 0));
    CHECK_OK(commy_vec_pop(s, NULL, 0, NULL));
    CHECK_OK(commy_vec_remove(s, 0));
    CHECK_OK(commy_vec_push(s, B, sizeof B));
    CHECK_OK(commy_vec_insert(s, 0, B, sizeof B));
    rc = COMMY_OK;
    for (int i = 0; i < 10000 && rc == COMMY_OK; i++) rc = commy_vec_set(s, 1, B, sizeof B);
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    CHECK_OK(commy_vec_len(&n, s));
    CHECK(n == 3);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = 0;
        CHECK_OK(commy_vec_get(s, i, got, sizeof got, &len));
        CHECK(len == sizeof A && memcmp(got, A, sizeof A) == 0);
    }
    CHECK_OK(commy_alloc_check(a));
    commy_vec_close(s);
    commy_vec_close(v);
    commy_alloc_close(a);
}

/* Filling a small segment: COMMY_ENOSPC leaves the vec as it was. */
static void test_enospc(void)
{
    commy_alloc *a = open_seg("full.seg", 256u << 10, 16384);
    commy_vec *b, *v;
    REQUIRE(commy_vec_open(&b, a, "blobs", COMMY_T_BYTES, 0) == COMMY_OK);
    REQUIRE(commy_vec_open(&v, a, "ints", COMMY_T_I64, 0) == COMMY_OK);
    static unsigned char big[3000];
    memset(big, 0xab, sizeof big);
    int rc;
    uint64_t n = 0, n2;
    while ((rc = commy_vec_push(b, big, sizeof big)) == COMMY_OK) n++;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK(n > 10);
    CHECK_OK(commy_vec_len(&n2, b));
    CHECK(n2 == n);
    CHECK_RC(commy_vec_insert(b, n / 2, big, sizeof big), COMMY_ENOSPC);
    CHECK_RC(commy_vec_set(b, 0, big, sizeof big), COMMY_ENOSPC);
    CHECK_OK(commy_vec_len(&n2, b));
    CHECK(n2 == n);
    /* Make a little room, then fill it with ints until the array cannot grow. */
    CHECK_OK(commy_vec_pop(b, NULL, 0, NULL));
    CHECK_OK(commy_vec_pop(b, NULL, 0, NULL));
    int64_t i = 0;
    while ((rc = commy_vec_push(v, &i, 8)) == COMMY_OK) i++;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK_RC(commy_vec_reserve(v, 1u << 20), COMMY_ENOSPC);
    CHECK_OK(commy_vec_len(&n2, v));
    CHECK(n2 == (uint64_t)i);
    for (int64_t j = 0; j < i; j++) {
        int64_t got = -1;
        CHECK_OK(commy_vec_get(v, (uint64_t)j, &got, 8, NULL));
        CHECK(got == j);
    }
    for (uint64_t j = 0; j < n - 2; j++) {
        size_t len = 0;
        CHECK_OK(commy_vec_get(b, j, big, sizeof big, &len));
        CHECK(len == sizeof big && big[0] == 0xab && big[sizeof big - 1] == 0xab);
    }
    CHECK_OK(commy_alloc_check(a));
    commy_vec_close(v);
    commy_vec_close(b);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("vec_edges", test_edges);
    harness_run("vec_property", test_property);
    harness_run("vec_batch_rollback", test_batch_rollback);
    harness_run("vec_enospc", test_enospc);
    return harness_finish();
}
