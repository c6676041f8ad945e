/* commy_deque: a property test against an in-memory model for several
 * element types (pushes and pops at both ends make the ring wrap and grow at
 * every boundary), plus edge cases: empty, zero-length values, short buffers,
 * bad arguments, pop_front_wait, a batch rolled back, and COMMY_ENOSPC
 * leaving the deque unchanged. */
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

static int same(commy_deque *d, const struct model *m)
{
    uint64_t len = 0;
    if (commy_deque_len(&len, d) != COMMY_OK || len != m->len) {
        fprintf(stderr, "len %llu, model %zu\n", (unsigned long long)len, m->len);
        return 0;
    }
    static unsigned char buf[VMAX + 8];
    for (size_t i = 0; i < m->len; i++) {
        size_t n = 12345;
        if (commy_deque_get(d, i, buf, sizeof buf, &n) != COMMY_OK) return 0;
        if (n != m->e[i].n || memcmp(buf, m->e[i].b, n) != 0) {
            fprintf(stderr, "element %zu differs (len %zu, model %zu)\n", i, n, m->e[i].n);
            return 0;
        }
    }
    size_t n = 0;
    if (m->len) {
        if (commy_deque_front(d, buf, sizeof buf, &n) != COMMY_OK || n != m->e[0].n || memcmp(buf, m->e[0].b, n))
            return 0;
        if (commy_deque_back(d, buf, sizeof buf, &n) != COMMY_OK || n != m->e[m->len - 1].n ||
            memcmp(buf, m->e[m->len - 1].b, n))
            return 0;
    } else if (commy_deque_front(d, buf, sizeof buf, &n) != COMMY_EEMPTY ||
               commy_deque_back(d, buf, sizeof buf, &n) != COMMY_EEMPTY) {
        return 0;
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
    snprintf(name, sizeof name, "d%u", (unsigned)t);
    commy_deque *d;
    REQUIRE(commy_deque_open(&d, a, name, t, COMMY_OPEN_EXCL) == COMMY_OK);
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    struct model m = {0};
    struct val x, y;
    static unsigned char buf[VMAX + 8];
    size_t target = 0;
    int bad = 0;
    for (int step = 0; step < steps && !bad; step++) {
        if (step % 300 == 0) target = harness_below(4) == 0 ? 0 : harness_below(400);
        uint64_t r = harness_below(100);
        size_t len = m.len;
        int grow = len < target;
        if (r < (grow ? 25 : 12)) {
            gen(&x, t);
            CHECK_OK(commy_deque_push_back(d, x.b, x.n));
            m_insert(&m, len, &x);
        } else if (r < (grow ? 50 : 24)) {
            gen(&x, t);
            CHECK_OK(commy_deque_push_front(d, x.b, x.n));
            m_insert(&m, 0, &x);
        } else if (r < 64) {
            int front = (int)harness_below(2), wait = front && harness_below(3) == 0;
            size_t at = front ? 0 : len - 1, n = 999;
            int rc;
            if (len == 0) {
                rc = wait ? commy_deque_pop_front_wait(d, buf, sizeof buf, &n, 0)
                          : front ? commy_deque_pop_front(d, buf, sizeof buf, &n)
                                  : commy_deque_pop_back(d, buf, sizeof buf, &n);
                CHECK_RC(rc, wait ? COMMY_ETIMEDOUT : COMMY_EEMPTY);
            } else if (m.e[at].n > 0 && harness_below(8) == 0) {
                rc = front ? commy_deque_pop_front(d, buf, m.e[at].n - 1, &n)
                           : commy_deque_pop_back(d, buf, m.e[at].n - 1, &n);
                CHECK_RC(rc, COMMY_ETOOSMALL);
                CHECK(n == m.e[at].n);
            } else {
                rc = wait ? commy_deque_pop_front_wait(d, buf, sizeof buf, &n, 100)
                          : front ? commy_deque_pop_front(d, buf, sizeof buf, &n)
                                  : commy_deque_pop_back(d, buf, sizeof buf, &n);
                CHECK_OK(rc);
                CHECK(n == m.e[at].n && memcmp(buf, m.e[at].b, n) == 0);
                m_remove(&m, at);
            }
        } else if (r < 76) {
            uint64_t i = harness_below(len + 2);
            gen(&x, t);
            if (i >= len) {
                CHECK_RC(commy_deque_set(d, i, x.b, x.n), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_deque_set(d, i, x.b, x.n));
                m.e[i] = x;
            }
        } else if (r < 77 && harness_below(4) == 0) {
            CHECK_OK(commy_deque_clear(d));
            m.len = 0;
        } else if (r < 85) {
            int want = gen_bad(&y, t);
            if (want) {
                CHECK_RC(commy_deque_push_back(d, y.b, y.n), want);
                CHECK_RC(commy_deque_push_front(d, y.b, y.n), want);
                if (len) CHECK_RC(commy_deque_set(d, harness_below(len), y.b, y.n), want);
            }
        } else {
            uint64_t i = harness_below(len + 2);
            size_t n = 999;
            if (i >= len) {
                CHECK_RC(commy_deque_get(d, i, buf, sizeof buf, &n), COMMY_ERANGE);
            } else {
                CHECK_OK(commy_deque_get(d, i, NULL, 0, &n));
                CHECK(n == m.e[i].n);
            }
        }
        if (!same(d, &m)) {
            fprintf(stderr, "deque of %s differs from the model after step %d (op %llu)\n",
                    commy_type_name(tn, sizeof tn, t), step, (unsigned long long)r);
            harness_failures++;
            bad = 1;
        }
    }
    CHECK_OK(commy_alloc_check(a));
    commy_deque *w;
    CHECK_OK(commy_deque_open(&w, a, name, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    if (w) {
        commy_type got = 0;
        CHECK_OK(commy_deque_type(&got, w));
        CHECK(got == t);
        CHECK(same(w, &m));
        commy_deque_close(w);
    }
    CHECK_OK(commy_deque_clear(d));
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(after.live_allocs == before.live_allocs && after.used == before.used);
    commy_deque_close(d);
    free(m.e);
}

static void test_property(void)
{
    commy_alloc *a = open_seg("prop.seg", 0, 0);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) property_one(a, types[i], 5000);
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

static void test_edges(void)
{
    commy_alloc *a = open_seg("edges.seg", 0, 0);
    commy_deque *d = NULL, *s = NULL;
    CHECK_RC(commy_deque_open(&d, a, "bad name!", COMMY_T_I64, 0), COMMY_EINVAL);
    CHECK(d == NULL);
    REQUIRE(commy_deque_open(&d, a, "q", COMMY_T_I32, 0) == COMMY_OK);
    REQUIRE(commy_deque_open(&s, a, "s", COMMY_T_STR, 0) == COMMY_OK);
    commy_deque *other = NULL;
    CHECK_RC(commy_deque_open(&other, a, "q", COMMY_T_I64, 0), COMMY_ETYPE);
    CHECK(strstr(commy_error_last()->message, "i32") != NULL && strstr(commy_error_last()->message, "i64") != NULL);
    int32_t x = 5;
    uint64_t n0;
    CHECK_RC(commy_deque_push_back(d, &x, 8), COMMY_EINVAL);
    CHECK(strstr(commy_error_last()->message, "'q'") != NULL);
    CHECK_RC(commy_deque_push_back(NULL, &x, 4), COMMY_EINVAL);
    CHECK_RC(commy_deque_pop_back(d, &x, 4, NULL), COMMY_EEMPTY);
    CHECK_RC(commy_deque_len(NULL, d), COMMY_EINVAL);
    /* A full wrap: the ring's head walks all the way round, twice. */
    for (int32_t i = 0; i < 4; i++) CHECK_OK(commy_deque_push_back(d, &i, 4));
    for (int32_t i = 4; i < 40; i++) {
        int32_t got = -1;
        CHECK_OK(commy_deque_push_back(d, &i, 4));
        CHECK_OK(commy_deque_pop_front(d, &got, 4, NULL));
        CHECK(got == i - 4);
    }
    size_t glen = 0;
    int32_t g = -1;
    CHECK_OK(commy_deque_pop_back(d, &g, 4, &glen));
    CHECK(g == 39 && glen == 4);
    CHECK_RC(commy_deque_pop_front(NULL, &g, 4, NULL), COMMY_EINVAL);
    CHECK_RC(commy_deque_pop_front(d, &g, 3, &glen), COMMY_ETOOSMALL); /* short buffer: nothing popped */
    CHECK_OK(commy_deque_len(&n0, d));
    CHECK(n0 == 3);
    /* Zero-length strings; the wrong type's errors. */
    CHECK_OK(commy_deque_push_back(s, "", 0));
    CHECK_OK(commy_deque_push_front(s, NULL, 0));
    CHECK_RC(commy_deque_push_front(s, "\xc3", 1), COMMY_EUTF8);
    uint64_t n;
    CHECK_OK(commy_deque_len(&n, s));
    CHECK(n == 2);
    size_t len = 9;
    CHECK_OK(commy_deque_pop_front_wait(s, NULL, 0, &len, 10));
    CHECK(len == 0);
    commy_deque_close(s);
    commy_deque_close(d);
    commy_alloc_close(a);
}

static void test_batch_rollback(void)
{
    commy_alloc *a = open_seg("batch.seg", 0, 16384);
    commy_deque *d;
    REQUIRE(commy_deque_open(&d, a, "d", COMMY_T_I64, 0) == COMMY_OK);
    for (int64_t i = 0; i < 50; i++) CHECK_OK(commy_deque_push_back(d, &i, 8));
    CHECK_OK(commy_alloc_lock(a, 0));
    int rc = COMMY_OK;
    /* Pops then pushes reuse the same ring slots: they must be restored too. */
    /* Pops into a buffer take the lean path (head and len logged together). */
    for (int64_t i = 0; i < 5000 && rc == COMMY_OK; i++) {
        int64_t got;
        rc = commy_deque_pop_front(d, &got, 8, NULL); /* first: its entries are the ones that restore head */
        if (rc == COMMY_OK) rc = i % 2 ? commy_deque_pop_back(d, NULL, 0, NULL) : commy_deque_pop_back(d, &got, 8, NULL);
        if (rc == COMMY_OK) rc = commy_deque_push_back(d, &(int64_t){-i}, 8);
        if (rc == COMMY_OK) rc = commy_deque_push_front(d, &(int64_t){-i}, 8);
    }
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    uint64_t n;
    CHECK_OK(commy_deque_len(&n, d));
    CHECK(n == 50);
    for (int64_t i = 0; i < 50; i++) {
        int64_t got = -1;
        CHECK_OK(commy_deque_get(d, (uint64_t)i, &got, 8, NULL));
        CHECK(got == i);
    }
    /* A batch that begins with a lean pop_back (which logs only len). */
    CHECK_OK(commy_alloc_lock(a, 0));
    int64_t last = 0;
    rc = commy_deque_pop_back(d, &last, 8, NULL);
    CHECK(rc == COMMY_OK && last == 49);
    for (int64_t i = 0; i < 5000 && rc == COMMY_OK; i++) rc = commy_deque_push_back(d, &i, 8);
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    CHECK_OK(commy_deque_len(&n, d));
    CHECK(n == 50);
    CHECK_OK(commy_deque_back(d, &last, 8, NULL));
    CHECK(last == 49);
    /* Freed string blocks reused within the batch come back with their bytes. */
    commy_deque *s;
    REQUIRE(commy_deque_open(&s, a, "s", COMMY_T_BYTES, 0) == COMMY_OK);
    unsigned char A[64], B[64], got[64];
    memset(A, 'A', sizeof A);
    memset(B, 'B', sizeof B);
    for (int i = 0; i < 4; i++) CHECK_OK(commy_deque_push_back(s, A, sizeof A));
    CHECK_OK(commy_alloc_lock(a, 0));
    rc = COMMY_OK;
    for (int i = 0; i < 10000 && rc == COMMY_OK; i++) {
        rc = commy_deque_pop_front(s, NULL, 0, NULL);
        if (rc == COMMY_OK) rc = commy_deque_push_back(s, B, sizeof B);
    }
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    CHECK_OK(commy_deque_len(&n, s));
    CHECK(n == 4);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = 0;
        CHECK_OK(commy_deque_get(s, i, got, sizeof got, &len));
        CHECK(len == sizeof A && memcmp(got, A, sizeof A) == 0);
    }
    CHECK_OK(commy_alloc_check(a));
    commy_deque_close(s);
    commy_deque_close(d);
    commy_alloc_close(a);
}

static void test_enospc(void)
{
    commy_alloc *a = open_seg("full.seg", 256u << 10, 16384);
    commy_deque *d, *q;
    REQUIRE(commy_deque_open(&d, a, "big", COMMY_T_BYTES, 0) == COMMY_OK);
    REQUIRE(commy_deque_open(&q, a, "ints", COMMY_T_I64, 0) == COMMY_OK);
    static unsigned char big[2500];
    int rc;
    uint64_t n = 0, n2;
    for (;;) {
        memset(big, (int)(n & 0xff), sizeof big);
        rc = (n & 1) ? commy_deque_push_front(d, big, sizeof big) : commy_deque_push_back(d, big, sizeof big);
        if (rc) break;
        n++;
    }
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK_OK(commy_deque_len(&n2, d));
    CHECK(n2 == n);
    /* Front holds the last odd push, back the last even one. */
    size_t len;
    CHECK_OK(commy_deque_front(d, big, sizeof big, &len));
    uint64_t last_odd = ((n - 1) & 1) ? n - 1 : n - 2;
    CHECK(n >= 2 && len == sizeof big && big[0] == (unsigned char)last_odd);
    CHECK_OK(commy_deque_pop_back(d, NULL, 0, NULL));
    int64_t i = 0;
    while ((rc = commy_deque_push_front(q, &i, 8)) == COMMY_OK) i++;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK_OK(commy_deque_len(&n2, q));
    CHECK(n2 == (uint64_t)i);
    for (int64_t j = 0; j < i; j++) {
        int64_t got = -1;
        CHECK_OK(commy_deque_get(q, (uint64_t)j, &got, 8, NULL));
        CHECK(got == i - 1 - j);
    }
    CHECK_OK(commy_alloc_check(a));
    commy_deque_close(q);
    commy_deque_close(d);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("deque_edges", test_edges);
    harness_run("deque_property", test_property);
    harness_run("deque_batch_rollback", test_batch_rollback);
    harness_run("deque_enospc", test_enospc);
    return harness_finish();
}
