/* Element types: the rules docs/format.md pins (type codes and names, value
 * checks, strict UTF-8, float canonicalisation, per-type order, the seeded
 * hash) and slot storage of variable-length values in a segment. */
#include "harness.h"
#include "../core/internal.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- type codes */

static void test_type_codes(void)
{
    static const struct {
        commy_type t;
        uint32_t size;
        const char *name;
    } rows[] = {
        {COMMY_T_I8, 1, "i8"},   {COMMY_T_I16, 2, "i16"},   {COMMY_T_I32, 4, "i32"},
        {COMMY_T_I64, 8, "i64"}, {COMMY_T_U8, 1, "u8"},     {COMMY_T_U16, 2, "u16"},
        {COMMY_T_U32, 4, "u32"}, {COMMY_T_U64, 8, "u64"},   {COMMY_T_F32, 4, "f32"},
        {COMMY_T_F64, 8, "f64"}, {COMMY_T_BOOL, 1, "bool"}, {COMMY_T_BYTES, 0, "bytes"},
        {COMMY_T_STR, 0, "str"}, {COMMY_TYPE_BLOB(16), 16, "blob[16]"}, {COMMY_TYPE_BLOB(1), 1, "blob[1]"},
        {COMMY_TYPE_BLOB(65535), 65535, "blob[65535]"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK(commy_type_valid(rows[i].t) == 1);
        CHECK(commy_type_size(rows[i].t) == rows[i].size);
        CHECK(strcmp(commy_type_name(buf, sizeof buf, rows[i].t), rows[i].name) == 0);
        CHECK(commy__slot_size(rows[i].t) == (rows[i].size ? rows[i].size : 16));
    }
    static const commy_type bad[] = {COMMY_T_ANY, 15, 255, COMMY_T_BLOB, COMMY_T_I64 | 0x100, COMMY_T_STR | 0x8000,
                                     (commy_type)(COMMY_TYPE_BLOB(1) | 0x1000000u)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(commy_type_valid(bad[i]) == 0);
        CHECK(commy_type_size(bad[i]) == 0);
        CHECK(commy__slot_size(bad[i]) == 0);
    }
    CHECK(strcmp(commy_type_name(buf, sizeof buf, COMMY_T_ANY), "any") == 0);
    CHECK(strncmp(commy_type_name(buf, sizeof buf, 200), "invalid", 7) == 0);
    char tiny[4];
    CHECK(strcmp(commy_type_name(tiny, sizeof tiny, COMMY_TYPE_BLOB(16)), "blo") == 0); /* truncated, terminated */

    static const char *const kinds[] = {"unknown", "box", "vec", "str", "deque", "map", "set", "omap", "oset"};
    for (uint32_t k = 0; k <= 8; k++) CHECK(strcmp(commy_kind_name(k), kinds[k]) == 0);
    CHECK(strcmp(commy_kind_name(9), "unknown") == 0);
    CHECK(strcmp(commy_kind_name(UINT32_MAX), "unknown") == 0);

    commy_cursor c = {5, 6, 7, 2};
    commy_cursor_reset(&c);
    CHECK(c.pos == 0 && c.aux == 0 && c.version == 0 && c.state == 0);
    commy_cursor_reset(NULL); /* must not crash */
}

/* ---------------------------------------------------------- value checks */

static void test_value_check(void)
{
    int64_t i = 5;
    uint8_t b;
    CHECK_OK(commy__value_check(COMMY_T_I64, &i, 8, "key"));
    CHECK_RC(commy__value_check(COMMY_T_I64, &i, 4, "key"), COMMY_EINVAL);
    CHECK(strstr(commy_error_last()->message, "key") != NULL);
    CHECK(strstr(commy_error_last()->message, "i64 is 8 bytes") != NULL);
    CHECK_RC(commy__value_check(COMMY_T_I32, &i, 8, "v"), COMMY_EINVAL);
    CHECK_RC(commy__value_check(COMMY_T_I64, NULL, 8, "v"), COMMY_EINVAL);
    CHECK_RC(commy__value_check(COMMY_T_ANY, &i, 8, "v"), COMMY_EINVAL);
    b = 0;
    CHECK_OK(commy__value_check(COMMY_T_BOOL, &b, 1, "v"));
    b = 1;
    CHECK_OK(commy__value_check(COMMY_T_BOOL, &b, 1, "v"));
    b = 2;
    CHECK_RC(commy__value_check(COMMY_T_BOOL, &b, 1, "v"), COMMY_EINVAL);
    b = 0xff;
    CHECK_RC(commy__value_check(COMMY_T_BOOL, &b, 1, "v"), COMMY_EINVAL);
    char blob[16] = {0};
    CHECK_OK(commy__value_check(COMMY_TYPE_BLOB(16), blob, 16, "v"));
    CHECK_RC(commy__value_check(COMMY_TYPE_BLOB(16), blob, 15, "v"), COMMY_EINVAL);
    CHECK_OK(commy__value_check(COMMY_T_BYTES, NULL, 0, "v"));
    CHECK_OK(commy__value_check(COMMY_T_STR, NULL, 0, "v"));
    CHECK_OK(commy__value_check(COMMY_T_BYTES, "\xff\xfe\x00", 3, "v")); /* bytes need not be UTF-8 */
    CHECK_RC(commy__value_check(COMMY_T_BYTES, NULL, 3, "v"), COMMY_EINVAL);
    double nan = NAN;
    CHECK_OK(commy__value_check(COMMY_T_F64, &nan, 8, "v"));
}

static void test_utf8_accept(void)
{
    static const char *const good[] = {
        "", "a", "hello, world", "\x7f", "\xc2\x80", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac",
        "\xed\x9f\xbf" /* U+D7FF */, "\xee\x80\x80" /* U+E000 */, "\xef\xbf\xbf" /* U+FFFF */,
        "\xf0\x90\x80\x80" /* U+10000 */, "\xf0\x9d\x84\x9e" /* U+1D11E */, "\xf4\x8f\xbf\xbf" /* U+10FFFF */,
        "\xf3\xbf\xbf\xbf", "abcdefgh\xc3\xa9ijklmnop\xe2\x82\xac", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = commy__value_check(COMMY_T_STR, good[i], strlen(good[i]), "value");
        if (rc != COMMY_OK) fprintf(stderr, "rejected good UTF-8 #%zu\n", i);
        CHECK(rc == COMMY_OK);
    }
    /* An embedded NUL is a valid code point. */
    CHECK_OK(commy__value_check(COMMY_T_STR, "a\0b", 3, "value"));
}

static void test_utf8_reject(void)
{
    static const struct {
        const char *s;
        size_t bad_at;
    } bad[] = {
        {"\x80", 0},                     /* lone continuation */
        {"\xbf", 0},
        {"\xc0\x80", 0},                 /* overlong NUL */
        {"\xc1\xbf", 0},                 /* overlong */
        {"\xe0\x80\x80", 0},             /* overlong 3-byte */
        {"\xe0\x9f\xbf", 0},
        {"\xed\xa0\x80", 0},             /* surrogate D800 */
        {"\xed\xbf\xbf", 0},             /* surrogate DFFF */
        {"\xf0\x80\x80\x80", 0},         /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 0},
        {"\xf4\x90\x80\x80", 0},         /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},     /* 5-byte form */
        {"\xfe", 0},
        {"\xff", 0},
        {"\xc3", 0},                     /* truncated */
        {"\xe2\x82", 0},
        {"\xf0\x9d\x84", 0},
        {"\xc3\x41", 0},                 /* continuation missing */
        {"\xe2\x28\xa1", 0},
        {"\xe2\x82\x28", 0},
        {"ab\xc3\xa9\x80", 4},
        {"abcdefghijklmnopq\xed\xa0\x80", 17}, /* past the 8-byte ASCII fast path */
        {"abcdefgh\xff", 8},
    };
    char want[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = commy__value_check(COMMY_T_STR, bad[i].s, strlen(bad[i].s), "value");
        if (rc != COMMY_EUTF8) fprintf(stderr, "accepted bad UTF-8 #%zu\n", i);
        CHECK(rc == COMMY_EUTF8);
        snprintf(want, sizeof want, "at offset %zu of", bad[i].bad_at);
        if (rc == COMMY_EUTF8 && strstr(commy_error_last()->message, want) == NULL) {
            fprintf(stderr, "#%zu: message '%s' lacks '%s'\n", i, commy_error_last()->message, want);
            CHECK(0);
        }
    }
    /* Every single byte 0x80..0xff alone is invalid; every one below is valid. */
    for (unsigned c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        CHECK(commy__value_check(COMMY_T_STR, s, 1, "v") == (c < 0x80 ? COMMY_OK : COMMY_EUTF8));
    }
    /* Exhaustive two-byte check against the definition. */
    for (unsigned c = 0xc0; c < 0x100; c++)
        for (unsigned d = 0; d < 0x100; d++) {
            char s[2] = {(char)c, (char)d};
            int ok = c >= 0xc2 && c <= 0xdf && d >= 0x80 && d <= 0xbf;
            CHECK(commy__value_check(COMMY_T_STR, s, 2, "v") == (ok ? COMMY_OK : COMMY_EUTF8));
        }
    /* Every code point encoded by the textbook encoder is accepted, and the
     * surrogates are refused. */
    for (uint32_t cp = 0x80; cp <= 0x10ffff; cp += (cp < 0x10000 ? 1 : 61)) {
        unsigned char s[4];
        size_t n;
        if (cp < 0x800) s[0] = (unsigned char)(0xc0 | cp >> 6), s[1] = (unsigned char)(0x80 | (cp & 63)), n = 2;
        else if (cp < 0x10000)
            s[0] = (unsigned char)(0xe0 | cp >> 12), s[1] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
            s[2] = (unsigned char)(0x80 | (cp & 63)), n = 3;
        else
            s[0] = (unsigned char)(0xf0 | cp >> 18), s[1] = (unsigned char)(0x80 | ((cp >> 12) & 63)),
            s[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)), s[3] = (unsigned char)(0x80 | (cp & 63)), n = 4;
        int surrogate = cp >= 0xd800 && cp <= 0xdfff;
        int rc = commy__value_check(COMMY_T_STR, s, n, "v");
        if (rc != (surrogate ? COMMY_EUTF8 : COMMY_OK)) {
            fprintf(stderr, "code point U+%04X misjudged\n", cp);
            CHECK(0);
            break;
        }
    }
}

/* ----------------------------------------------------- canonicalisation */


static void test_canon(void)
{
    unsigned char buf[8];
    uint64_t in[] = {0x8000000000000000ull, 0x7ff0000000000001ull, 0xfff8000000000000ull, 0x7fffffffffffffffull,
                     0xffffffffffffffffull, 0x7ff8000000000000ull, 0x3ff0000000000000ull, 0xfff0000000000000ull,
                     0x0000000000000001ull};
    uint64_t want[] = {0, 0x7ff8000000000000ull, 0x7ff8000000000000ull, 0x7ff8000000000000ull, 0x7ff8000000000000ull,
                       0x7ff8000000000000ull, 0x3ff0000000000000ull, 0xfff0000000000000ull, 1};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        const void *p = commy__key_canon(COMMY_T_F64, &in[i], 8, buf);
        uint64_t got;
        memcpy(&got, p, 8);
        CHECK(got == want[i]);
        CHECK(in[i] == (i == 0 ? 0x8000000000000000ull : in[i])); /* the input is left alone */
    }
    uint32_t in32[] = {0x80000000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu, 0x7f800000u, 0xff800000u, 0x3f800000u};
    uint32_t want32[] = {0, 0x7fc00000u, 0x7fc00000u, 0x7fc00000u, 0x7f800000u, 0xff800000u, 0x3f800000u};
    for (size_t i = 0; i < sizeof in32 / sizeof in32[0]; i++) {
        const void *p = commy__key_canon(COMMY_T_F32, &in32[i], 4, buf);
        uint32_t got;
        memcpy(&got, p, 4);
        CHECK(got == want32[i]);
    }
    int64_t v = -1;
    CHECK(commy__key_canon(COMMY_T_I64, &v, 8, buf) == (const void *)&v);
    const char *str = "x";
    CHECK(commy__key_canon(COMMY_T_STR, str, 1, buf) == (const void *)str);
}

/* -------------------------------------------------------------- ordering */

static int sgn(int x) { return (x > 0) - (x < 0); }

/* Fixed types compare slot against probe; the slot is the value itself. */
static int cmp_fixed(commy_type t, const void *x, const void *y)
{
    return sgn(commy__value_cmp(NULL, x, t, y, commy_type_size(t)));
}

static void test_order_integers(void)
{
    for (int round = 0; round < 20000; round++) {
        uint64_t r1 = harness_rand(), r2 = round % 4 == 0 ? r1 : harness_rand();
        if (round % 3 == 0) r2 = r1 ^ (1ull << (harness_rand() % 64)); /* near neighbours, sign flips */
        int8_t a8 = (int8_t)r1, b8 = (int8_t)r2;
        int16_t a16 = (int16_t)r1, b16 = (int16_t)r2;
        int32_t a32 = (int32_t)r1, b32 = (int32_t)r2;
        int64_t a64 = (int64_t)r1, b64 = (int64_t)r2;
        uint8_t u8a = (uint8_t)r1, u8b = (uint8_t)r2;
        uint16_t u16a = (uint16_t)r1, u16b = (uint16_t)r2;
        uint32_t u32a = (uint32_t)r1, u32b = (uint32_t)r2;
        CHECK(cmp_fixed(COMMY_T_I8, &a8, &b8) == (a8 > b8) - (a8 < b8));
        CHECK(cmp_fixed(COMMY_T_I16, &a16, &b16) == (a16 > b16) - (a16 < b16));
        CHECK(cmp_fixed(COMMY_T_I32, &a32, &b32) == (a32 > b32) - (a32 < b32));
        CHECK(cmp_fixed(COMMY_T_I64, &a64, &b64) == (a64 > b64) - (a64 < b64));
        CHECK(cmp_fixed(COMMY_T_U8, &u8a, &u8b) == (u8a > u8b) - (u8a < u8b));
        CHECK(cmp_fixed(COMMY_T_U16, &u16a, &u16b) == (u16a > u16b) - (u16a < u16b));
        CHECK(cmp_fixed(COMMY_T_U32, &u32a, &u32b) == (u32a > u32b) - (u32a < u32b));
        CHECK(cmp_fixed(COMMY_T_U64, &r1, &r2) == (r1 > r2) - (r1 < r2));
    }
    /* Sign matters: bytewise order would put -1 after 1. */
    int64_t m1 = -1, p1 = 1;
    CHECK(cmp_fixed(COMMY_T_I64, &m1, &p1) < 0);
    uint64_t big = UINT64_MAX, one = 1;
    CHECK(cmp_fixed(COMMY_T_U64, &big, &one) > 0);
    int16_t x = 256, y = 1; /* little-endian first bytes 0x00 vs 0x01 */
    CHECK(cmp_fixed(COMMY_T_I16, &x, &y) > 0);
    uint8_t f = 0, t = 1;
    CHECK(cmp_fixed(COMMY_T_BOOL, &f, &t) < 0);
}

static void test_order_floats(void)
{
    /* Ascending; entries with the same rank are equal. */
    static const struct {
        uint64_t bits;
        int rank;
    } v[] = {
        {0xfff0000000000000ull, 0}, /* -inf */
        {0xffefffffffffffffull, 1}, /* -DBL_MAX */
        {0xbff0000000000000ull, 2}, /* -1 */
        {0x8000000000000001ull, 3}, /* -denormal */
        {0x8000000000000000ull, 4}, /* -0.0 */
        {0x0000000000000000ull, 4}, /* +0.0 */
        {0x0000000000000001ull, 5}, /* +denormal */
        {0x3ff0000000000000ull, 6}, /* 1 */
        {0x7fefffffffffffffull, 7}, /* DBL_MAX */
        {0x7ff0000000000000ull, 8}, /* +inf */
        {0x7ff8000000000000ull, 9}, /* NaN */
        {0xfff8000000000000ull, 9}, /* -NaN */
        {0x7ff0000000000001ull, 9}, /* signalling NaN */
        {0xffffffffffffffffull, 9},
    };
    size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = (v[i].rank > v[j].rank) - (v[i].rank < v[j].rank);
            if (cmp_fixed(COMMY_T_F64, &v[i].bits, &v[j].bits) != want) {
                fprintf(stderr, "f64 order wrong for %zu vs %zu\n", i, j);
                CHECK(0);
            }
            /* The same ladder in f32 (by value conversion; NaNs stay NaN). */
            double di, dj;
            memcpy(&di, &v[i].bits, 8);
            memcpy(&dj, &v[j].bits, 8);
            float fi = (float)di, fj = (float)dj;
            /* denormals and DBL_MAX collapse in f32: compare by value there */
            if (!isnan(fi) && !isnan(fj)) want = (fi > fj) - (fi < fj);
            else want = isnan(fi) && isnan(fj) ? 0 : (isnan(fi) ? 1 : -1);
            if (cmp_fixed(COMMY_T_F32, &fi, &fj) != want) {
                fprintf(stderr, "f32 order wrong for %zu vs %zu\n", i, j);
                CHECK(0);
            }
        }
    /* Random doubles order as the hardware does when neither is NaN. */
    for (int k = 0; k < 20000; k++) {
        uint64_t a = harness_rand(), b = harness_rand();
        double da, db;
        memcpy(&da, &a, 8);
        memcpy(&db, &b, 8);
        if (isnan(da) || isnan(db)) continue;
        CHECK(cmp_fixed(COMMY_T_F64, &a, &b) == (da > db) - (da < db));
    }
}

static commy_alloc *open_seg(const char *name);

static void test_order_bytes(void)
{
    /* Ascending, bytewise with unsigned bytes, a prefix before the longer value. */
    static const struct {
        const char *s;
        size_t n;
    } asc[] = {{"", 0}, {"\0", 1}, {"\0\0", 2}, {"\x01", 1}, {"A", 1}, {"a", 1}, {"ab", 2},
               {"abc", 3}, {"abd", 3}, {"b", 1}, {"\x7f", 1}, {"\x80", 1}, {"\xff", 1}, {"\xff\xff", 2}};
    enum { N = sizeof asc / sizeof asc[0] };
    commy_alloc *a = open_seg("order.seg");
    uint64_t sp, off;
    REQUIRE(commy__begin(a, 1, &sp) == COMMY_OK);
    REQUIRE(commy__calloc(&off, a, N * 16, 0) == COMMY_OK);
    unsigned char *slots = commy__at(a, off);
    for (size_t i = 0; i < N; i++) CHECK_OK(commy__value_store(a, slots + 16 * i, COMMY_T_BYTES, asc[i].s, asc[i].n, 0));
    CHECK_OK(commy__end(a, sp, COMMY_OK));
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            int want = (i > j) - (i < j);
            CHECK(sgn(commy__slot_cmp(a, slots + 16 * i, slots + 16 * j, COMMY_T_BYTES)) == want);
            CHECK(sgn(commy__value_cmp(a, slots + 16 * i, COMMY_T_BYTES, asc[j].s, asc[j].n)) == want);
            if (asc[i].n == asc[j].n && asc[i].n > 0) /* blobs: the same rule on equal lengths */
                CHECK(sgn(commy__value_cmp(NULL, asc[i].s, COMMY_TYPE_BLOB((uint32_t)asc[i].n), asc[j].s, asc[j].n)) ==
                      want);
        }
    commy_alloc_close(a);
}

/* ----------------------------------------------------------------- hash */

/* The hash exactly as docs/format.md specifies it, written independently. */
static uint64_t ref_mix(uint64_t x)
{
    for (int r = 0; r < 2; r++) {
        x ^= x >> 32;
        x *= 0xd6e8feb86659fd93ull;
    }
    return x ^ (x >> 32);
}

static uint64_t ref_hash_bytes(const unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && i + k < len; k++) w |= (uint64_t)p[i + k] << (8 * k);
        h = ref_mix(h ^ w);
    }
    return ref_mix(h);
}

static void test_hash(void)
{
    /* Pinned values: a change here changes the file format. */
    int64_t k42 = 42;
    CHECK(commy__value_hash(COMMY_T_I64, &k42, 8, 0) == ref_mix(42));
    CHECK(commy__value_hash(COMMY_T_STR, "", 0, 0) == ref_mix(0));
    CHECK(commy__value_hash(COMMY_T_I64, &k42, 8, 0) == 0x63eb4d090e3c46f3ull);
    CHECK(commy__value_hash(COMMY_T_STR, "hello, world", 12, 7) == 0xecf963062f9dcc8full);

    unsigned char buf[64];
    for (int k = 0; k < 2000; k++) {
        size_t len = harness_below(sizeof buf + 1);
        for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)harness_rand();
        uint64_t seed = harness_rand();
        CHECK(commy__value_hash(COMMY_T_BYTES, buf, len, seed) == ref_hash_bytes(buf, len, seed));
        if (len)
            CHECK(commy__value_hash(COMMY_TYPE_BLOB((uint32_t)len), buf, len, seed) == ref_hash_bytes(buf, len, seed));
        uint64_t v = harness_rand();
        CHECK(commy__value_hash(COMMY_T_U64, &v, 8, seed) == ref_mix(v ^ seed));
        uint16_t v16 = (uint16_t)v;
        CHECK(commy__value_hash(COMMY_T_U16, &v16, 2, seed) == ref_mix((uint64_t)v16 ^ seed));
        int8_t v8 = (int8_t)v; /* the byte, zero-extended: not sign-extended */
        CHECK(commy__value_hash(COMMY_T_I8, &v8, 1, seed) == ref_mix((uint64_t)(uint8_t)v8 ^ seed));
    }
    /* Equal keys hash equal: every NaN alike, -0.0 like +0.0. */
    uint64_t nz = 0x8000000000000000ull, pz = 0, n1 = 0x7ff0000000000001ull, n2 = 0xfff8000000000000ull;
    CHECK(commy__value_hash(COMMY_T_F64, &nz, 8, 9) == commy__value_hash(COMMY_T_F64, &pz, 8, 9));
    CHECK(commy__value_hash(COMMY_T_F64, &n1, 8, 9) == commy__value_hash(COMMY_T_F64, &n2, 8, 9));
    uint32_t fnz = 0x80000000u, fpz = 0;
    CHECK(commy__value_hash(COMMY_T_F32, &fnz, 4, 9) == commy__value_hash(COMMY_T_F32, &fpz, 4, 9));
    /* Lengths of zero bytes are told apart. */
    CHECK(commy__value_hash(COMMY_T_BYTES, "", 0, 1) != commy__value_hash(COMMY_T_BYTES, "\0", 1, 1));
    CHECK(commy__value_hash(COMMY_T_BYTES, "\0", 1, 1) != commy__value_hash(COMMY_T_BYTES, "\0\0", 2, 1));
    CHECK(commy__value_hash(COMMY_T_BYTES, "\0\0\0\0\0\0\0\0", 8, 1) !=
          commy__value_hash(COMMY_T_BYTES, "\0\0\0\0\0\0\0\0\0", 9, 1));
    /* The seed matters. */
    CHECK(commy__value_hash(COMMY_T_I64, &k42, 8, 1) != commy__value_hash(COMMY_T_I64, &k42, 8, 2));

    /* Spread: sequential keys over 4096 buckets by low bits and by high bits. */
    enum { B = 4096, N = 1 << 20 };
    static uint32_t lo[B], hi[B];
    memset(lo, 0, sizeof lo);
    memset(hi, 0, sizeof hi);
    uint64_t seed = harness_rand();
    for (int64_t k = 0; k < N; k++) {
        uint64_t h = commy__value_hash(COMMY_T_I64, &k, 8, seed);
        lo[h & (B - 1)]++;
        hi[h >> 52]++;
    }
    uint32_t mlo = 0, mhi = 0;
    for (int b = 0; b < B; b++) {
        if (lo[b] > mlo) mlo = lo[b];
        if (hi[b] > mhi) mhi = hi[b];
    }
    /* Mean 256, sd 16: a uniform hash stays well under 256 + 8 sd. */
    CHECK(mlo < 384);
    CHECK(mhi < 384);
    /* Short strings "k0".."k99999" too. */
    memset(lo, 0, sizeof lo);
    for (int k = 0; k < 200000; k++) {
        char s[16];
        int n = snprintf(s, sizeof s, "k%d", k);
        lo[commy__value_hash(COMMY_T_STR, s, (size_t)n, seed) & (B - 1)]++;
    }
    mlo = 0;
    for (int b = 0; b < B; b++)
        if (lo[b] > mlo) mlo = lo[b];
    CHECK(mlo < 100); /* mean ~49 */
}

/* ------------------------------------------------- slots in a segment */

static commy_alloc *open_seg(const char *name)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 1 << 20;
    o.max_size = 64 << 20;
    commy_alloc *a = NULL;
    unlink(harness_path(name));
    REQUIRE(commy_alloc_open(&a, harness_path(name), &o) == COMMY_OK);
    return a;
}

static void test_slots(void)
{
    commy_alloc *a = open_seg("slots.seg");
    commy_heap_stats s0, s1;
    CHECK_OK(commy_alloc_stats(&s0, a));
    uint64_t sp;
    REQUIRE(commy__begin(a, 1, &sp) == COMMY_OK);
    uint64_t arr_off;
    REQUIRE(commy__calloc(&arr_off, a, 5 * 16, 0) == COMMY_OK);
    unsigned char *arr = commy__at(a, arr_off);
    static const char *const vals[] = {"", "a", "ab", "b", "\xc3\xa9t\xc3\xa9 with a longer tail"};
    for (int i = 0; i < 5; i++)
        CHECK_OK(commy__value_store(a, arr + 16 * i, COMMY_T_STR, vals[i], strlen(vals[i]), 0));
    CHECK_OK(commy__end(a, sp, COMMY_OK));

    for (int i = 0; i < 5; i++) {
        char out[64];
        size_t len = 999;
        memset(out, '#', sizeof out);
        CHECK_OK(commy__value_load(a, arr + 16 * i, COMMY_T_STR, out, sizeof out, &len));
        CHECK(len == strlen(vals[i]) && memcmp(out, vals[i], len) == 0);
        CHECK_OK(commy__slot_check(a, arr + 16 * i, COMMY_T_STR));
        /* Too small: nothing copied, the length reported. */
        if (len > 0) {
            memset(out, '#', sizeof out);
            size_t need = 0;
            CHECK_RC(commy__value_load(a, arr + 16 * i, COMMY_T_STR, out, len - 1, &need), COMMY_ETOOSMALL);
            CHECK(need == len && out[0] == '#');
        }
        size_t only = 0;
        CHECK_OK(commy__value_load(a, arr + 16 * i, COMMY_T_STR, NULL, 0, &only));
        CHECK(only == strlen(vals[i]));
        for (int j = 0; j < 5; j++) {
            int want = sgn(strcmp(vals[i], vals[j]));
            CHECK(sgn(commy__slot_cmp(a, arr + 16 * i, arr + 16 * j, COMMY_T_STR)) == want);
            CHECK(sgn(commy__value_cmp(a, arr + 16 * i, COMMY_T_STR, vals[j], strlen(vals[j]))) == want);
            CHECK((commy__slot_hash(a, arr + 16 * i, COMMY_T_STR, 3) ==
                   commy__value_hash(COMMY_T_STR, vals[j], strlen(vals[j]), 3)) == (i == j));
        }
    }
    /* The empty value owns no block. */
    struct commy__var v0;
    memcpy(&v0, arr, sizeof v0);
    CHECK(v0.off == 0 && v0.len == 0);

    /* A damaged slot is reported, not followed. */
    struct commy__var saved, wild = {UINT64_MAX - 8, 100};
    memcpy(&saved, arr + 16, sizeof saved);
    memcpy(arr + 16, &wild, sizeof wild);
    CHECK_RC(commy__slot_check(a, arr + 16, COMMY_T_STR), COMMY_ECORRUPT);
    char out[8];
    CHECK_RC(commy__value_load(a, arr + 16, COMMY_T_STR, out, sizeof out, NULL), COMMY_ECORRUPT);
    struct commy__var unaligned = {saved.off + 1, 1};
    memcpy(arr + 16, &unaligned, sizeof unaligned);
    CHECK_RC(commy__slot_check(a, arr + 16, COMMY_T_STR), COMMY_ECORRUPT); /* not a live block */
    memcpy(arr + 16, &saved, sizeof saved);
    CHECK_OK(commy__slot_check(a, arr + 16, COMMY_T_STR));
    unsigned char b2 = 2;
    CHECK_RC(commy__slot_check(a, &b2, COMMY_T_BOOL), COMMY_ECORRUPT);

    /* A failed operation takes the value blocks back with it. */
    CHECK_OK(commy_alloc_stats(&s1, a));
    REQUIRE(commy__begin(a, 1, &sp) == COMMY_OK);
    CHECK_OK(commy__value_store(a, arr + 16, COMMY_T_STR, "replacement", 11, 1));
    CHECK_RC(commy__end(a, sp, COMMY_EINVAL), COMMY_EINVAL);
    commy_heap_stats s2;
    CHECK_OK(commy_alloc_stats(&s2, a));
    CHECK(s2.used == s1.used && s2.live_allocs == s1.live_allocs);
    char back[8];
    size_t bl;
    CHECK_OK(commy__value_load(a, arr + 16, COMMY_T_STR, back, sizeof back, &bl));
    CHECK(bl == 1 && back[0] == 'a');

    /* Freeing gives everything back. */
    REQUIRE(commy__begin(a, 1, &sp) == COMMY_OK);
    for (int i = 0; i < 5; i++) CHECK_OK(commy__value_free(a, arr + 16 * i, COMMY_T_STR));
    CHECK_OK(commy__free(a, arr_off));
    CHECK_OK(commy__end(a, sp, COMMY_OK));
    CHECK_OK(commy_alloc_stats(&s1, a));
    CHECK(s1.used == s0.used && s1.live_allocs == s0.live_allocs);
    CHECK_OK(commy_alloc_check(a));

    /* Fixed types store inline. */
    int32_t i32 = -7, got = 0;
    unsigned char slot[4];
    REQUIRE(commy__begin(a, 1, &sp) == COMMY_OK);
    CHECK_OK(commy__value_store(a, slot, COMMY_T_I32, &i32, 4, 0));
    CHECK_RC(commy__value_store(a, slot, COMMY_T_I32, &i32, 3, 0), COMMY_EINVAL);
    CHECK_OK(commy__end(a, sp, COMMY_OK));
    size_t gl = 0;
    CHECK_OK(commy__value_load(a, slot, COMMY_T_I32, &got, sizeof got, &gl));
    CHECK(got == -7 && gl == 4);
    commy_alloc_close(a);
}

int main(void)
{
    harness_run("type_codes", test_type_codes);
    harness_run("value_check", test_value_check);
    harness_run("utf8_accept", test_utf8_accept);
    harness_run("utf8_reject", test_utf8_reject);
    harness_run("canon", test_canon);
    harness_run("order_integers", test_order_integers);
    harness_run("order_floats", test_order_floats);
    harness_run("order_bytes", test_order_bytes);
    harness_run("hash", test_hash);
    harness_run("slots", test_slots);
    return harness_finish();
}
