/* commy_str: a property test against an in-memory model (set, append in
 * place and past capacity, get with exact, short and roomy buffers, borrow,
 * clear, invalid UTF-8 refused with the string unchanged), plus a batch
 * rolled back and COMMY_ENOSPC leaving the string unchanged. */
#include "harness.h"

#include <string.h>

#define SMAX 9000

struct text {
    size_t n;
    char b[SMAX];
};

static size_t gen_utf8(char *out, size_t want)
{
    static const char *pieces[] = {"a", "b", "~", "\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf"};
    size_t k = 0;
    while (k < want) {
        const char *p = pieces[harness_below(8)];
        size_t pl = strlen(p);
        if (k + pl > want) break;
        memcpy(out + k, p, pl);
        k += pl;
    }
    return k;
}

static size_t gen_len(void)
{
    uint64_t r = harness_below(20);
    return r == 0 ? 0 : r == 1 ? 1000 + harness_below(3000) : harness_below(30);
}

/* Invalid UTF-8: a stray continuation, a truncated sequence, an overlong
 * form, a surrogate, a byte that never occurs. */
static size_t gen_bad(char *out)
{
    static const char *bad[] = {"\x80", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "x\xff", "\xf4\x90\x80\x80"};
    const char *p = bad[harness_below(6)];
    size_t k = gen_utf8(out, harness_below(10));
    memcpy(out + k, p, strlen(p));
    k += strlen(p);
    return k + gen_utf8(out + k, harness_below(10));
}

static int same(commy_str *s, const struct text *m)
{
    static char buf[SMAX + 2];
    uint64_t len = 0;
    if (commy_str_len(&len, s) != COMMY_OK || len != m->n) return 0;
    size_t n = 0;
    memset(buf, 'Z', m->n + 2);
    if (commy_str_get(s, buf, m->n + 1, &n) != COMMY_OK || n != m->n || memcmp(buf, m->b, n) || buf[n] != '\0')
        return 0;
    const char *p = NULL;
    if (commy_str_borrow(&p, &n, s) != COMMY_OK || p == NULL || n != m->n || memcmp(p, m->b, n)) return 0;
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
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static void test_property(void)
{
    commy_alloc *a = open_seg("prop.seg", 0, 0);
    commy_str *s;
    REQUIRE(commy_str_open(&s, a, "text", 0) == COMMY_OK);
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    static struct text m, x;
    static char buf[SMAX + 2];
    int bad = 0;
    for (int step = 0; step < 20000 && !bad; step++) {
        uint64_t r = harness_below(100);
        uint32_t v0 = 0, v1 = 0;
        CHECK_OK(commy_str_version(&v0, s));
        int changes = 0;
        if (r < 15) {
            x.n = gen_utf8(x.b, m.n > 6000 ? 20 : gen_len());
            CHECK_OK(commy_str_set(s, x.b, x.n));
            m = x;
            changes = 1;
        } else if (r < 60) {
            size_t want = gen_len();
            if (m.n + want > SMAX - 8) want = 0;
            x.n = gen_utf8(x.b, want);
            CHECK_OK(commy_str_append(s, x.b, x.n));
            memcpy(m.b + m.n, x.b, x.n);
            m.n += x.n;
            changes = x.n > 0;
        } else if (r < 70) {
            x.n = gen_bad(x.b);
            CHECK_RC(harness_below(2) ? commy_str_set(s, x.b, x.n) : commy_str_append(s, x.b, x.n), COMMY_EUTF8);
        } else if (r < 72) {
            CHECK_OK(commy_str_clear(s));
            changes = m.n > 0;
            m.n = 0;
        } else if (r < 85 && m.n > 0) {
            size_t n = 0;
            CHECK_RC(commy_str_get(s, buf, m.n - 1, &n), COMMY_ETOOSMALL);
            CHECK(n == m.n);
            memset(buf, 'Z', m.n + 1);
            CHECK_OK(commy_str_get(s, buf, m.n, &n)); /* exact: no room for the NUL, none written */
            CHECK(n == m.n && memcmp(buf, m.b, n) == 0 && buf[n] == 'Z');
        } else {
            size_t n = 0;
            CHECK_OK(commy_str_get(s, NULL, 0, &n));
            CHECK(n == m.n);
        }
        CHECK_OK(commy_str_version(&v1, s));
        CHECK(changes ? v1 != v0 : v1 == v0);
        if (!same(s, &m)) {
            fprintf(stderr, "str differs from the model after step %d (op %llu)\n", step, (unsigned long long)r);
            harness_failures++;
            bad = 1;
        }
    }
    CHECK_OK(commy_alloc_check(a));
    commy_str *t;
    CHECK_OK(commy_str_open(&t, a, "text", COMMY_OPEN_EXISTING));
    if (t) CHECK(same(t, &m));
    commy_str_close(t);
    commy_vec *wrong = NULL;
    CHECK_RC(commy_vec_open(&wrong, a, "text", COMMY_T_STR, 0), COMMY_ETYPE);
    CHECK_OK(commy_str_clear(s));
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(after.live_allocs == before.live_allocs && after.used == before.used);
    commy_str_close(s);
    commy_alloc_close(a);
}

static void test_edges(void)
{
    commy_alloc *a = open_seg("edges.seg", 0, 0);
    commy_str *s;
    REQUIRE(commy_str_open(&s, a, "s", 0) == COMMY_OK);
    const char *p = NULL;
    size_t n = 7;
    CHECK_OK(commy_str_borrow(&p, &n, s));
    CHECK(p != NULL && n == 0);
    char buf[8] = "xxxxxxx";
    CHECK_OK(commy_str_get(s, buf, sizeof buf, &n));
    CHECK(n == 0 && buf[0] == '\0');
    CHECK_OK(commy_str_set(s, NULL, 0));
    CHECK_RC(commy_str_set(s, NULL, 3), COMMY_EINVAL);
    CHECK_RC(commy_str_set(NULL, "a", 1), COMMY_EINVAL);
    CHECK_RC(commy_str_append(s, "\xe2\x82", 2), COMMY_EUTF8);
    CHECK(strstr(commy_error_last()->message, "'s'") != NULL);
    CHECK_RC(commy_str_len(NULL, s), COMMY_EINVAL);
    CHECK_OK(commy_str_append(s, "h\xc3\xa9", 3));
    CHECK_OK(commy_str_append(s, "llo", 3));
    CHECK_OK(commy_str_get(s, buf, sizeof buf, &n));
    CHECK(n == 6 && strcmp(buf, "h\xc3\xa9llo") == 0);
    commy_str_close(s);
    commy_str_close(NULL);
    commy_alloc_close(a);
}

static void test_batch_rollback(void)
{
    commy_alloc *a = open_seg("batch.seg", 0, 16384);
    commy_str *s;
    REQUIRE(commy_str_open(&s, a, "s", 0) == COMMY_OK);
    CHECK_OK(commy_str_set(s, "before", 6));
    CHECK_OK(commy_alloc_lock(a, 0));
    int rc = COMMY_OK;
    for (int i = 0; i < 5000 && rc == COMMY_OK; i++) {
        rc = i % 7 == 0 ? commy_str_set(s, "x", 1) : commy_str_append(s, "abcdefgh", 8);
        if (rc == COMMY_OK && i % 13 == 0) rc = commy_str_clear(s);
    }
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    char buf[16];
    size_t n = 0;
    CHECK_OK(commy_str_get(s, buf, sizeof buf, &n));
    CHECK(n == 6 && strcmp(buf, "before") == 0);
    CHECK_OK(commy_alloc_check(a));
    commy_str_close(s);
    commy_alloc_close(a);
}

static void test_enospc(void)
{
    commy_alloc *a = open_seg("full.seg", 256u << 10, 16384);
    commy_str *s;
    REQUIRE(commy_str_open(&s, a, "s", 0) == COMMY_OK);
    static char chunk[4000], big[300000];
    memset(chunk, 'q', sizeof chunk);
    int rc;
    size_t total = 0, n = 0;
    while ((rc = commy_str_append(s, chunk, sizeof chunk)) == COMMY_OK) total += sizeof chunk;
    CHECK_RC(rc, COMMY_ENOSPC);
    CHECK(total > 0);
    memset(big, 'r', sizeof big);
    CHECK_RC(commy_str_set(s, big, sizeof big), COMMY_ENOSPC);
    CHECK_OK(commy_str_get(s, big, sizeof big, &n));
    CHECK(n == total && big[0] == 'q' && big[n - 1] == 'q');
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_str_set(s, "small", 5));
    commy_str_close(s);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("str_edges", test_edges);
    harness_run("str_property", test_property);
    harness_run("str_batch_rollback", test_batch_rollback);
    harness_run("str_enospc", test_enospc);
    return harness_finish();
}
