/* The C conformance runner: runs the language-neutral scenarios of
 * conformance/scenarios/ and the golden files of conformance/golden/ through
 * the public C ABI (commy.h) only. The Python and C# runners take the same
 * command lines and print the same lines, so conformance/run.sh can pair any
 * writer with any reader.
 *
 *   runner_c write  SEGDIR SCENARIO.json...  build SEGDIR/<name>.seg from each write phase
 *   runner_c read   SEGDIR SCENARIO.json...  check SEGDIR/<name>.seg with each read phase
 *   runner_c golden GOLDENDIR               open every golden file read-only and check it
 *   runner_c concurrent SEG ID MS WORKERS   for MS ms push to a deque and add 1 to a box, with the other workers
 *   runner_c concurrent-check SEG ID...     check that nothing was lost or counted twice
 *   runner_c --regenerate-golden GOLDENDIR  write the golden segment files (layout v1)
 *
 * Output: one line per scenario, "PASS <phase> <name>" or
 * "FAIL <phase> <name>: <why>"; the exit status is 1 if anything failed. */
#include "commy.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- small utilities ---- */

static char g_why[1024]; /* why the current step failed */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_why, sizeof g_why, fmt, ap);
    va_end(ap);
    return -1;
}

static const struct {
    const char *name;
    int code;
} ERRORS[] = {
    {"OK", COMMY_OK}, {"EINVAL", COMMY_EINVAL}, {"ENOMEM", COMMY_ENOMEM}, {"EIO", COMMY_EIO},
    {"ENOTFOUND", COMMY_ENOTFOUND}, {"EEXISTS", COMMY_EEXISTS}, {"ETYPE", COMMY_ETYPE},
    {"ELAYOUT", COMMY_ELAYOUT}, {"ECORRUPT", COMMY_ECORRUPT}, {"ENOSPC", COMMY_ENOSPC},
    {"ETIMEDOUT", COMMY_ETIMEDOUT}, {"EBUSY", COMMY_EBUSY}, {"EPERM", COMMY_EPERM}, {"ECLOSED", COMMY_ECLOSED},
    {"ERANGE", COMMY_ERANGE}, {"EEMPTY", COMMY_EEMPTY}, {"ETOOSMALL", COMMY_ETOOSMALL},
    {"ECONCURRENT", COMMY_ECONCURRENT}, {"EUTF8", COMMY_EUTF8}, {"EBADFREE", COMMY_EBADFREE},
    {"ENOTSUP", COMMY_ENOTSUP}, {"EJOURNAL", COMMY_EJOURNAL},
};

static const char *err_name(int code)
{
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
        if (ERRORS[i].code == code) return ERRORS[i].name;
    return "E?";
}

static int err_code(const char *name, int *out)
{
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
        if (strcmp(ERRORS[i].name, name) == 0) return *out = ERRORS[i].code, 0;
    return fail("unknown error name \"%s\" in the scenario", name);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

/* ---- element types and values ---- */

static int parse_type(const char *s, commy_type *out)
{
    static const char *names[] = {"any", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
                                  "f32", "f64", "bool", "bytes", "str"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) return *out = i, 0;
    unsigned n;
    char tail;
    if (sscanf(s, "blob[%u%c", &n, &tail) == 2 && tail == ']' && n >= 1 && n <= 65535)
        return *out = COMMY_TYPE_BLOB(n), 0;
    return fail("unknown element type \"%s\"", s);
}

static int is_int(commy_type t) { return COMMY_TYPE_BASE(t) >= COMMY_T_I8 && COMMY_TYPE_BASE(t) <= COMMY_T_U64; }
static int is_signed(commy_type t) { return COMMY_TYPE_BASE(t) >= COMMY_T_I8 && COMMY_TYPE_BASE(t) <= COMMY_T_I64; }

/* An integer in JSON: a number, or a decimal string for values past 2^53.
 * Unsigned values come back in *u, signed in *s. */
static int json_int(const cJSON *j, int is_unsigned, int64_t *s, uint64_t *u)
{
    char buf[64];
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d != floor(d) || fabs(d) > 9007199254740992.0) return fail("integer %g is not exact in JSON: write it as a string", d);
        snprintf(buf, sizeof buf, "%.0f", d);
    } else if (cJSON_IsString(j)) {
        snprintf(buf, sizeof buf, "%s", j->valuestring);
    } else {
        return fail("expected an integer, got a JSON %s", cJSON_IsBool(j) ? "bool" : "value of another kind");
    }
    char *end;
    errno = 0;
    if (is_unsigned) {
        if (buf[0] == '-') return fail("%s does not fit an unsigned type", buf);
        *u = strtoull(buf, &end, 10);
    } else {
        *s = strtoll(buf, &end, 10);
    }
    if (errno || *end || end == buf) return fail("\"%s\" is not a 64-bit integer", buf);
    return 0;
}

static int json_float(const cJSON *j, double *out)
{
    if (cJSON_IsNumber(j)) return *out = j->valuedouble, 0;
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring;
        if (strcmp(s, "nan") == 0) return *out = NAN, 0;
        if (strcmp(s, "inf") == 0) return *out = INFINITY, 0;
        if (strcmp(s, "-inf") == 0) return *out = -INFINITY, 0;
        if (strcmp(s, "-0.0") == 0) return *out = -0.0, 0;
        char *end;
        *out = strtod(s, &end);
        if (*end == 0 && end != s) return 0;
    }
    return fail("expected a float (a number, \"nan\", \"inf\", \"-inf\" or \"-0.0\")");
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A value encoded for the ABI: native little-endian bytes of its type. */
typedef struct value {
    unsigned char *p;
    size_t len;
    unsigned char small[16];
} value;

static void value_free(value *v)
{
    if (v->p != v->small) free(v->p);
    v->p = NULL;
}

static int encode(value *out, commy_type t, const cJSON *j)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    out->p = out->small;
    out->len = commy_type_size(t);
    if (is_int(t)) {
        int64_t s = 0;
        uint64_t u = 0;
        if (json_int(j, !is_signed(t), &s, &u)) return -1;
        int bits = (int)out->len * 8;
        if (is_signed(t)) {
            if (bits < 64 && (s < -(INT64_C(1) << (bits - 1)) || s >= (INT64_C(1) << (bits - 1))))
                return fail("%" PRId64 " does not fit %d bits", s, bits);
            u = (uint64_t)s;
        } else if (bits < 64 && u >> bits) {
            return fail("%" PRIu64 " does not fit %d bits", u, bits);
        }
        for (size_t i = 0; i < out->len; i++) out->small[i] = (unsigned char)(u >> (8 * i));
        return 0;
    }
    if (base == COMMY_T_F32 || base == COMMY_T_F64) {
        double d;
        if (json_float(j, &d)) return -1;
        if (base == COMMY_T_F32) {
            float f = (float)d;
            memcpy(out->small, &f, 4);
        } else {
            memcpy(out->small, &d, 8);
        }
        return 0;
    }
    if (base == COMMY_T_BOOL) {
        if (!cJSON_IsBool(j)) return fail("expected true or false");
        out->small[0] = cJSON_IsTrue(j) ? 1 : 0;
        return 0;
    }
    if (!cJSON_IsString(j)) return fail("expected a JSON string");
    const char *s = j->valuestring;
    size_t n = strlen(s);
    if (base == COMMY_T_STR) {
        out->p = malloc(n + 1);
        memcpy(out->p, s, n + 1);
        out->len = n;
        return 0;
    }
    if (base != COMMY_T_BYTES && base != COMMY_T_BLOB) return fail("cannot encode a value of type %u", t);
    if (n % 2) return fail("hex \"%s\" has an odd number of digits", s);
    out->p = malloc(n / 2 + 1);
    out->len = n / 2;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            value_free(out);
            return fail("\"%s\" is not hex", s);
        }
        out->p[i] = (unsigned char)(hi * 16 + lo);
    }
    return 0;
}

/* Writes a readable form of a value (for messages). */
static const char *show(char *buf, size_t cap, commy_type t, const void *p, size_t len)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    const unsigned char *b = p;
    if (is_int(t) && len == commy_type_size(t)) {
        uint64_t u = 0;
        for (size_t i = 0; i < len; i++) u |= (uint64_t)b[i] << (8 * i);
        if (is_signed(t) && len < 8 && (u >> (len * 8 - 1)) & 1) u |= ~UINT64_C(0) << (len * 8);
        if (is_signed(t)) snprintf(buf, cap, "%" PRId64, (int64_t)u);
        else snprintf(buf, cap, "%" PRIu64, u);
    } else if (base == COMMY_T_F32 && len == 4) {
        float f;
        memcpy(&f, p, 4);
        snprintf(buf, cap, "%.9g", (double)f);
    } else if (base == COMMY_T_F64 && len == 8) {
        double d;
        memcpy(&d, p, 8);
        snprintf(buf, cap, "%.17g", d);
    } else if (base == COMMY_T_BOOL && len == 1) {
        snprintf(buf, cap, "%s", b[0] ? "true" : b[0] == 0 ? "false" : "bool?");
    } else if (base == COMMY_T_STR) {
        snprintf(buf, cap, "\"%.*s\"", (int)(len > 200 ? 200 : len), (const char *)p);
    } else {
        size_t o = 0;
        buf[0] = 0;
        for (size_t i = 0; i < len && o + 3 < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%02x", b[i]);
        if (len == 0) snprintf(buf, cap, "(empty)");
    }
    return buf;
}

/* 1 if the bytes (p, len) are the value j of type t. Floats compare by bits
 * (so -0.0 differs from 0.0), except that every NaN matches "nan". */
static int same(commy_type t, const void *p, size_t len, const cJSON *j)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    if (base == COMMY_T_F32 || base == COMMY_T_F64) {
        double want;
        if (json_float(j, &want)) return 0;
        double got;
        if (base == COMMY_T_F32) {
            float f;
            if (len != 4) return 0;
            memcpy(&f, p, 4);
            got = f;
            want = (float)want;
        } else {
            if (len != 8) return 0;
            memcpy(&got, p, 8);
        }
        if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
        return got == want && signbit(got) == signbit(want);
    }
    value v;
    if (encode(&v, t, j)) return 0;
    int eq = v.len == len && (len == 0 || memcmp(v.p, p, len) == 0);
    value_free(&v);
    return eq;
}

/* ---- the containers a scenario names ---- */

typedef struct slot {
    char alias[64];
    uint32_t kind;
    commy_type kt, vt;
    void *h;
} slot;

#define MAX_SLOTS 32
static slot g_slots[MAX_SLOTS];

static void slot_close(slot *s)
{
    switch (s->kind) {
    case COMMY_KIND_BOX: commy_box_close(s->h); break;
    case COMMY_KIND_VEC: commy_vec_close(s->h); break;
    case COMMY_KIND_STR: commy_str_close(s->h); break;
    case COMMY_KIND_DEQUE: commy_deque_close(s->h); break;
    case COMMY_KIND_MAP: commy_map_close(s->h); break;
    case COMMY_KIND_SET: commy_set_close(s->h); break;
    case COMMY_KIND_OMAP: commy_omap_close(s->h); break;
    case COMMY_KIND_OSET: commy_oset_close(s->h); break;
    }
    memset(s, 0, sizeof *s);
}

static void slots_close_all(void)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (g_slots[i].h) slot_close(&g_slots[i]);
}

static slot *slot_find(const char *alias)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (g_slots[i].h && strcmp(g_slots[i].alias, alias) == 0) return &g_slots[i];
    return NULL;
}

static const char *KINDS[] = {NULL, "box", "vec", "str", "deque", "map", "set", "omap", "oset"};

static int parse_kind(const char *s, uint32_t *out)
{
    for (uint32_t k = 1; k <= 8; k++)
        if (strcmp(KINDS[k], s) == 0) return *out = k, 0;
    return fail("unknown container kind \"%s\"", s);
}

/* ---- reading results ---- */

/* Growable output buffers for keys and values. */
static unsigned char *g_kbuf, *g_vbuf;
static size_t g_kcap, g_vcap;

static void bufs_reserve(size_t k, size_t v)
{
    if (k > g_kcap) g_kbuf = realloc(g_kbuf, g_kcap = k);
    if (v > g_vcap) g_vbuf = realloc(g_vbuf, g_vcap = v);
}

/* An entry produced by iteration. */
typedef struct entry {
    unsigned char *k, *v;
    size_t klen, vlen;
} entry;

typedef struct entries {
    entry *e;
    size_t n, cap;
} entries;

static void entries_add(entries *es, const void *k, size_t klen, const void *v, size_t vlen)
{
    if (es->n == es->cap) es->e = realloc(es->e, (es->cap = es->cap ? es->cap * 2 : 16) * sizeof *es->e);
    entry *e = &es->e[es->n++];
    e->k = malloc(klen + 1);
    memcpy(e->k, k, klen);
    e->klen = klen;
    e->v = NULL;
    e->vlen = 0;
    if (v) {
        e->v = malloc(vlen + 1);
        memcpy(e->v, v, vlen);
        e->vlen = vlen;
    }
}

static void entries_free(entries *es)
{
    for (size_t i = 0; i < es->n; i++) {
        free(es->e[i].k);
        free(es->e[i].v);
    }
    free(es->e);
    memset(es, 0, sizeof *es);
}

/* An entry matches an expected item: a value, or [key, value] for maps. */
static int entry_same(const slot *s, const entry *e, const cJSON *j, int is_pair)
{
    if (!is_pair) return same(s->kt, e->k, e->klen, j);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2) return 0;
    return same(s->kt, e->k, e->klen, cJSON_GetArrayItem(j, 0)) && same(s->vt, e->v, e->vlen, cJSON_GetArrayItem(j, 1));
}

static const char *show_entry(char *buf, size_t cap, const slot *s, const entry *e, int is_pair)
{
    char kb[256], vb[256];
    show(kb, sizeof kb, s->kt, e->k, e->klen);
    if (!is_pair) snprintf(buf, cap, "%s", kb);
    else snprintf(buf, cap, "[%s, %s]", kb, show(vb, sizeof vb, s->vt, e->v, e->vlen));
    return buf;
}

/* Compares produced entries with the expected list, in order or as a multiset. */
static int entries_check(const slot *s, const entries *es, const cJSON *exp, int is_pair, int unordered)
{
    if (!cJSON_IsArray(exp)) return fail("\"expect\" must be a list here");
    size_t n = (size_t)cJSON_GetArraySize(exp);
    char b[600];
    if (es->n != n) {
        return fail("%zu entries, expected %zu (first: %s)", es->n, n,
                    es->n ? show_entry(b, sizeof b, s, &es->e[0], is_pair) : "none");
    }
    if (!unordered) {
        for (size_t i = 0; i < n; i++)
            if (!entry_same(s, &es->e[i], cJSON_GetArrayItem(exp, (int)i), is_pair)) {
                char *js = cJSON_PrintUnformatted(cJSON_GetArrayItem(exp, (int)i));
                fail("entry %zu is %s, expected %s", i, show_entry(b, sizeof b, s, &es->e[i], is_pair), js);
                free(js);
                return -1;
            }
        return 0;
    }
    char *used = calloc(n ? n : 1, 1);
    int rc = 0;
    for (size_t i = 0; i < es->n && rc == 0; i++) {
        size_t k;
        for (k = 0; k < n; k++)
            if (!used[k] && entry_same(s, &es->e[i], cJSON_GetArrayItem(exp, (int)k), is_pair)) break;
        if (k == n) rc = fail("unexpected entry %s", show_entry(b, sizeof b, s, &es->e[i], is_pair));
        else used[k] = 1;
    }
    free(used);
    return rc;
}

/* ---- one step ---- */

static const cJSON *arg(const cJSON *step, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(step, name);
}

static int need(const cJSON **out, const cJSON *step, const char *name)
{
    *out = arg(step, name);
    if (!*out) return fail("the step has no \"%s\"", name);
    return 0;
}

static int step_open(commy_alloc *a, const cJSON *step, int *rc)
{
    const cJSON *jc, *jkind, *jtypes = arg(step, "types"), *jname = arg(step, "name"), *jflags = arg(step, "flags");
    if (need(&jc, step, "c") || need(&jkind, step, "kind")) return -1;
    if (!cJSON_IsString(jc) || (jname && !cJSON_IsString(jname))) return fail("\"c\" and \"name\" must be strings");
    uint32_t kind = 0;
    if (!cJSON_IsString(jkind) || parse_kind(jkind->valuestring, &kind)) return -1;
    commy_type kt = COMMY_T_ANY, vt = COMMY_T_ANY;
    if (cJSON_IsArray(jtypes)) {
        int n = cJSON_GetArraySize(jtypes);
        for (int i = 0; i < n; i++)
            if (!cJSON_IsString(cJSON_GetArrayItem(jtypes, i))) return fail("\"types\" must be a list of strings");
        if (n >= 1 && parse_type(cJSON_GetArrayItem(jtypes, 0)->valuestring, &kt)) return -1;
        if (n >= 2 && parse_type(cJSON_GetArrayItem(jtypes, 1)->valuestring, &vt)) return -1;
    }
    uint32_t flags = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, jflags)
    {
        if (!cJSON_IsString(f)) return fail("\"flags\" must be a list of strings");
        if (strcmp(f->valuestring, "existing") == 0) flags |= COMMY_OPEN_EXISTING;
        else if (strcmp(f->valuestring, "excl") == 0) flags |= COMMY_OPEN_EXCL;
        else return fail("unknown open flag \"%s\"", f->valuestring);
    }
    const char *name = jname ? jname->valuestring : jc->valuestring;
    slot *s = slot_find(jc->valuestring);
    if (s) slot_close(s);
    for (s = g_slots; s < g_slots + MAX_SLOTS && s->h; s++) {
    }
    if (s == g_slots + MAX_SLOTS) return fail("too many open containers");
    void *h = NULL;
    switch (kind) {
    case COMMY_KIND_BOX: *rc = commy_box_open((commy_box **)&h, a, name, kt, flags); break;
    case COMMY_KIND_VEC: *rc = commy_vec_open((commy_vec **)&h, a, name, kt, flags); break;
    case COMMY_KIND_STR: *rc = commy_str_open((commy_str **)&h, a, name, flags); break;
    case COMMY_KIND_DEQUE: *rc = commy_deque_open((commy_deque **)&h, a, name, kt, flags); break;
    case COMMY_KIND_MAP: *rc = commy_map_open((commy_map **)&h, a, name, kt, vt, flags); break;
    case COMMY_KIND_SET: *rc = commy_set_open((commy_set **)&h, a, name, kt, flags); break;
    case COMMY_KIND_OMAP: *rc = commy_omap_open((commy_omap **)&h, a, name, kt, vt, flags); break;
    case COMMY_KIND_OSET: *rc = commy_oset_open((commy_oset **)&h, a, name, kt, flags); break;
    }
    if (*rc < 0) return 0;
    snprintf(s->alias, sizeof s->alias, "%s", jc->valuestring);
    s->kind = kind;
    s->h = h;
    /* Take the stored types: a reader that opened with "any" checks what it finds. */
    if (kind == COMMY_KIND_STR) s->kt = COMMY_T_STR;
    else if (kind == COMMY_KIND_MAP) commy_map_types(&s->kt, &s->vt, h);
    else if (kind == COMMY_KIND_OMAP) commy_omap_types(&s->kt, &s->vt, h);
    else if (kind == COMMY_KIND_BOX) commy_box_type(&s->kt, h);
    else if (kind == COMMY_KIND_VEC) commy_vec_type(&s->kt, h);
    else if (kind == COMMY_KIND_DEQUE) commy_deque_type(&s->kt, h);
    else if (kind == COMMY_KIND_SET) commy_set_type(&s->kt, h);
    else commy_oset_type(&s->kt, h);
    return 0;
}

/* What a step produced, to compare with "expect". */
enum result_kind { R_NONE, R_VALUE, R_KEY, R_PAIR, R_INT, R_BOOL, R_LIST };

typedef struct result {
    enum result_kind kind;
    size_t klen, vlen;
    uint64_t n;
    int b;
    entries list;
    int list_pairs;
} result;

/* Integer box arguments: JSON -> the int64 the ABI takes (u64 as its bits). */
static int box_int(int64_t *out, commy_type t, const cJSON *j)
{
    value v;
    if (encode(&v, t, j)) return -1;
    uint64_t u = 0;
    /* A non-integer box gets 0: the library must refuse it (COMMY_ENOTSUP) whatever we pass. */
    for (size_t i = 0; is_int(t) && i < v.len && i < 8; i++) u |= (uint64_t)v.p[i] << (8 * i);
    if (is_signed(t) && v.len < 8 && (u >> (v.len * 8 - 1)) & 1) u |= ~UINT64_C(0) << (v.len * 8);
    value_free(&v);
    *out = (int64_t)u;
    return 0;
}

/* The int64 the ABI returned, as the box type's bytes in g_vbuf. */
static void box_int_out(result *r, int64_t x, commy_type t)
{
    r->kind = R_VALUE;
    r->vlen = commy_type_size(t);
    for (size_t i = 0; i < r->vlen; i++) g_vbuf[i] = (unsigned char)((uint64_t)x >> (8 * i));
}

#define GET_ARGS g_vbuf, g_vcap, &r->vlen
#define KV_ARGS g_kbuf, g_kcap, &r->klen, g_vbuf, g_vcap, &r->vlen

/* Runs one container operation: *rc gets the ABI's return code, r what it produced.
 * Returns -1 only for a malformed step. */
static int step_op(slot *s, const char *op, const cJSON *step, int *rc, result *r)
{
    value key = {0}, val = {0};
    const cJSON *j;
    int ret = 0;
    commy_type kt = s->kt, vt = s->vt;
    /* Single-type containers take "value" in the element type; maps take both. */
    if ((j = arg(step, strcmp(op, "range") == 0 ? "from" : "key")) && !cJSON_IsNull(j) && encode(&key, kt, j)) return -1;
    if ((j = arg(step, "value")) && encode(&val, s->kind == COMMY_KIND_MAP || s->kind == COMMY_KIND_OMAP ? vt : kt, j)) {
        value_free(&key);
        return -1;
    }
    uint64_t index = 0;
    if ((j = arg(step, "index"))) {
        int64_t sv;
        uint64_t uv;
        if (json_int(j, 1, &sv, &uv)) goto bad;
        index = uv;
    }
    void *h = s->h;
#define IS(x) (strcmp(op, x) == 0)
#define NOARG_VAL() if (!val.p) { ret = fail("\"%s\" needs a \"value\"", op); goto out; }
#define NOARG_KEY() if (!key.p) { ret = fail("\"%s\" needs a \"key\"", op); goto out; }
    r->kind = R_NONE;
    for (int attempt = 0; attempt < 2; attempt++) {
        *rc = -1000;
        switch (s->kind) {
        case COMMY_KIND_BOX:
            if (IS("get")) r->kind = R_VALUE, *rc = commy_box_get(h, GET_ARGS);
            else if (IS("set")) { NOARG_VAL(); *rc = commy_box_set(h, val.p, val.len); }
            else if (IS("cas") || IS("fetch_add")) {
                int64_t a1, a2 = 0, got = 0;
                if (IS("cas")) {
                    if (need(&j, step, "expected") || box_int(&a1, kt, j)) goto bad;
                    if (need(&j, step, "desired") || box_int(&a2, kt, j)) goto bad;
                    *rc = commy_box_cas(&got, h, a1, a2);
                } else {
                    uint64_t u;
                    if (need(&j, step, "delta") || json_int(j, 0, &a1, &u)) goto bad;
                    *rc = commy_box_fetch_add(&got, h, a1);
                }
                if (*rc >= 0) box_int_out(r, got, kt);
            }
            break;
        case COMMY_KIND_VEC:
            if (IS("len")) r->kind = R_INT, *rc = commy_vec_len(&r->n, h);
            else if (IS("push")) { NOARG_VAL(); *rc = commy_vec_push(h, val.p, val.len); }
            else if (IS("pop")) r->kind = R_VALUE, *rc = commy_vec_pop(h, GET_ARGS);
            else if (IS("get")) r->kind = R_VALUE, *rc = commy_vec_get(h, index, GET_ARGS);
            else if (IS("set")) { NOARG_VAL(); *rc = commy_vec_set(h, index, val.p, val.len); }
            else if (IS("insert")) { NOARG_VAL(); *rc = commy_vec_insert(h, index, val.p, val.len); }
            else if (IS("remove")) *rc = commy_vec_remove(h, index);
            else if (IS("clear")) *rc = commy_vec_clear(h);
            else if (IS("iterate")) {
                uint64_t n = 0;
                *rc = commy_vec_len(&n, h);
                r->kind = R_LIST;
                for (uint64_t i = 0; i < n && *rc >= 0; i++) {
                    *rc = commy_vec_get(h, i, GET_ARGS);
                    if (*rc >= 0) entries_add(&r->list, g_vbuf, r->vlen, NULL, 0);
                }
            }
            break;
        case COMMY_KIND_STR:
            if (IS("len")) r->kind = R_INT, *rc = commy_str_len(&r->n, h);
            else if (IS("set")) { NOARG_VAL(); *rc = commy_str_set(h, (const char *)val.p, val.len); }
            else if (IS("append")) { NOARG_VAL(); *rc = commy_str_append(h, (const char *)val.p, val.len); }
            else if (IS("get")) r->kind = R_VALUE, *rc = commy_str_get(h, (char *)g_vbuf, g_vcap, &r->vlen);
            else if (IS("clear")) *rc = commy_str_clear(h);
            break;
        case COMMY_KIND_DEQUE:
            if (IS("len")) r->kind = R_INT, *rc = commy_deque_len(&r->n, h);
            else if (IS("push_back")) { NOARG_VAL(); *rc = commy_deque_push_back(h, val.p, val.len); }
            else if (IS("push_front")) { NOARG_VAL(); *rc = commy_deque_push_front(h, val.p, val.len); }
            else if (IS("pop_back")) r->kind = R_VALUE, *rc = commy_deque_pop_back(h, GET_ARGS);
            else if (IS("pop_front")) r->kind = R_VALUE, *rc = commy_deque_pop_front(h, GET_ARGS);
            else if (IS("front")) r->kind = R_VALUE, *rc = commy_deque_front(h, GET_ARGS);
            else if (IS("back")) r->kind = R_VALUE, *rc = commy_deque_back(h, GET_ARGS);
            else if (IS("get")) r->kind = R_VALUE, *rc = commy_deque_get(h, index, GET_ARGS);
            else if (IS("set")) { NOARG_VAL(); *rc = commy_deque_set(h, index, val.p, val.len); }
            else if (IS("clear")) *rc = commy_deque_clear(h);
            else if (IS("iterate")) {
                uint64_t n = 0;
                *rc = commy_deque_len(&n, h);
                r->kind = R_LIST;
                for (uint64_t i = 0; i < n && *rc >= 0; i++) {
                    *rc = commy_deque_get(h, i, GET_ARGS);
                    if (*rc >= 0) entries_add(&r->list, g_vbuf, r->vlen, NULL, 0);
                }
            }
            break;
        case COMMY_KIND_MAP:
        case COMMY_KIND_OMAP: {
            int o = s->kind == COMMY_KIND_OMAP;
            if (IS("len")) r->kind = R_INT, *rc = o ? commy_omap_len(&r->n, h) : commy_map_len(&r->n, h);
            else if (IS("put")) {
                NOARG_KEY();
                NOARG_VAL();
                *rc = o ? commy_omap_put(h, key.p, key.len, val.p, val.len) : commy_map_put(h, key.p, key.len, val.p, val.len);
            } else if (IS("get")) {
                NOARG_KEY();
                r->kind = R_VALUE;
                *rc = o ? commy_omap_get(h, key.p, key.len, GET_ARGS) : commy_map_get(h, key.p, key.len, GET_ARGS);
            } else if (IS("remove")) {
                NOARG_KEY();
                *rc = o ? commy_omap_remove(h, key.p, key.len) : commy_map_remove(h, key.p, key.len);
            } else if (IS("contains")) {
                NOARG_KEY();
                r->kind = R_BOOL;
                *rc = o ? commy_omap_contains(&r->b, h, key.p, key.len) : commy_map_contains(&r->b, h, key.p, key.len);
            } else if (IS("clear")) *rc = o ? commy_omap_clear(h) : commy_map_clear(h);
            else if (o && IS("first")) r->kind = R_PAIR, *rc = commy_omap_first(h, KV_ARGS);
            else if (o && IS("last")) r->kind = R_PAIR, *rc = commy_omap_last(h, KV_ARGS);
            else if (o && (IS("lower_bound") || IS("upper_bound"))) {
                NOARG_KEY();
                r->kind = R_PAIR;
                *rc = IS("lower_bound") ? commy_omap_lower_bound(h, key.p, key.len, KV_ARGS)
                                        : commy_omap_upper_bound(h, key.p, key.len, KV_ARGS);
            } else if (IS("iterate") || (o && IS("range"))) {
                commy_cursor c = COMMY_CURSOR_INIT;
                r->kind = R_LIST;
                r->list_pairs = 1;
                *rc = 0;
                if (IS("range")) {
                    const cJSON *jin = arg(step, "inclusive");
                    *rc = commy_omap_seek(&c, h, key.p, key.len, jin ? cJSON_IsTrue(jin) : 1);
                }
                while (*rc >= 0) {
                    *rc = o ? commy_omap_next(h, &c, KV_ARGS) : commy_map_next(h, &c, KV_ARGS);
                    if (*rc != COMMY_ROW) break;
                    entries_add(&r->list, g_kbuf, r->klen, g_vbuf, r->vlen);
                }
            }
            break;
        }
        case COMMY_KIND_SET:
        case COMMY_KIND_OSET: {
            int o = s->kind == COMMY_KIND_OSET;
            if (IS("len")) r->kind = R_INT, *rc = o ? commy_oset_len(&r->n, h) : commy_set_len(&r->n, h);
            else if (IS("add")) {
                NOARG_KEY();
                r->kind = R_BOOL;
                *rc = o ? commy_oset_add(&r->b, h, key.p, key.len) : commy_set_add(&r->b, h, key.p, key.len);
            } else if (IS("remove")) {
                NOARG_KEY();
                *rc = o ? commy_oset_remove(h, key.p, key.len) : commy_set_remove(h, key.p, key.len);
            } else if (IS("contains")) {
                NOARG_KEY();
                r->kind = R_BOOL;
                *rc = o ? commy_oset_contains(&r->b, h, key.p, key.len) : commy_set_contains(&r->b, h, key.p, key.len);
            } else if (IS("clear")) *rc = o ? commy_oset_clear(h) : commy_set_clear(h);
            else if (o && IS("first")) r->kind = R_KEY, *rc = commy_oset_first(h, g_kbuf, g_kcap, &r->klen);
            else if (o && IS("last")) r->kind = R_KEY, *rc = commy_oset_last(h, g_kbuf, g_kcap, &r->klen);
            else if (o && (IS("lower_bound") || IS("upper_bound"))) {
                NOARG_KEY();
                r->kind = R_KEY;
                *rc = IS("lower_bound") ? commy_oset_lower_bound(h, key.p, key.len, g_kbuf, g_kcap, &r->klen)
                                        : commy_oset_upper_bound(h, key.p, key.len, g_kbuf, g_kcap, &r->klen);
            } else if (IS("iterate") || (o && IS("range"))) {
                commy_cursor c = COMMY_CURSOR_INIT;
                r->kind = R_LIST;
                *rc = 0;
                if (IS("range")) {
                    const cJSON *jin = arg(step, "inclusive");
                    *rc = commy_oset_seek(&c, h, key.p, key.len, jin ? cJSON_IsTrue(jin) : 1);
                }
                while (*rc >= 0) {
                    *rc = o ? commy_oset_next(h, &c, g_kbuf, g_kcap, &r->klen) : commy_set_next(h, &c, g_kbuf, g_kcap, &r->klen);
                    if (*rc != COMMY_ROW) break;
                    entries_add(&r->list, g_kbuf, r->klen, NULL, 0);
                }
            }
            break;
        }
        }
        if (*rc == -1000) {
            ret = fail("operation \"%s\" does not exist for a %s", op, KINDS[s->kind]);
            goto out;
        }
        /* A value longer than our buffers: grow them to the stored length and ask again. */
        if (*rc == COMMY_ETOOSMALL && attempt == 0) {
            entries_free(&r->list);
            bufs_reserve(r->klen + 1, r->vlen + 1);
            continue;
        }
        break;
    }
    goto out;
bad:
    ret = -1;
out:
    value_free(&key);
    value_free(&val);
    return ret;
#undef IS
}

static int check_result(const slot *s, const result *r, const cJSON *step)
{
    const cJSON *exp = arg(step, "expect");
    if (!exp) return 0;
    char b[600];
    char *js = NULL;
    int ok = 1;
    commy_type vt = s->kind == COMMY_KIND_MAP || s->kind == COMMY_KIND_OMAP ? s->vt : s->kt;
    switch (r->kind) {
    case R_NONE: return fail("this operation has no result to \"expect\"");
    case R_VALUE:
        if (!same(vt, g_vbuf, r->vlen, exp)) ok = 0, show(b, sizeof b, vt, g_vbuf, r->vlen);
        break;
    case R_KEY:
        if (!same(s->kt, g_kbuf, r->klen, exp)) ok = 0, show(b, sizeof b, s->kt, g_kbuf, r->klen);
        break;
    case R_PAIR: {
        entry e = {g_kbuf, g_vbuf, r->klen, r->vlen};
        if (!entry_same(s, &e, exp, 1)) ok = 0, show_entry(b, sizeof b, s, &e, 1);
        break;
    }
    case R_INT: {
        int64_t sv;
        uint64_t uv;
        if (json_int(exp, 1, &sv, &uv)) return -1;
        if (uv != r->n) ok = 0, snprintf(b, sizeof b, "%" PRIu64, r->n);
        break;
    }
    case R_BOOL:
        if (!cJSON_IsBool(exp)) return fail("\"expect\" must be true or false here");
        if ((r->b != 0) != (cJSON_IsTrue(exp) != 0)) ok = 0, snprintf(b, sizeof b, "%s", r->b ? "true" : "false");
        break;
    case R_LIST: {
        const cJSON *u = arg(step, "unordered");
        return entries_check(s, &r->list, exp, r->list_pairs, u && cJSON_IsTrue(u));
    }
    }
    if (ok) return 0;
    js = cJSON_PrintUnformatted(exp);
    fail("got %s, expected %s", b, js);
    free(js);
    return -1;
}

static int run_step(commy_alloc *a, const cJSON *step)
{
    const cJSON *jop = arg(step, "op"), *jerr = arg(step, "error");
    if (!cJSON_IsString(jop)) return fail("a step without \"op\"");
    const char *op = jop->valuestring;
    int want = COMMY_OK;
    if (jerr && (!cJSON_IsString(jerr) || err_code(jerr->valuestring, &want))) return -1;
    int rc = 0;
    result r;
    memset(&r, 0, sizeof r);
    if (strcmp(op, "open") == 0) {
        if (step_open(a, step, &rc)) return -1;
    } else if (strcmp(op, "close") == 0) {
        const cJSON *jc = arg(step, "c");
        slot *s = cJSON_IsString(jc) ? slot_find(jc->valuestring) : NULL;
        if (!s) return fail("close of a container that is not open");
        slot_close(s);
    } else {
        const cJSON *jc = arg(step, "c");
        slot *s = cJSON_IsString(jc) ? slot_find(jc->valuestring) : NULL;
        if (!s) return fail("\"%s\" on container \"%s\", which is not open", op, cJSON_IsString(jc) ? jc->valuestring : "?");
        if (step_op(s, op, step, &rc, &r)) {
            entries_free(&r.list);
            return -1;
        }
        if (rc >= 0 && want == COMMY_OK && check_result(s, &r, step)) {
            entries_free(&r.list);
            return -1;
        }
        entries_free(&r.list);
    }
    if (rc < 0 && want != rc)
        return fail("%s failed with %s (%s), expected %s", op, err_name(rc), commy_error_last()->message,
                    want ? err_name(want) : "success");
    if (rc >= 0 && want != COMMY_OK) return fail("%s succeeded, expected %s", op, err_name(want));
    return 0;
}

/* Runs a list of steps; on failure g_why names the step. */
static int run_steps(commy_alloc *a, const cJSON *steps)
{
    int i = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, steps)
    {
        if (run_step(a, step)) {
            char why[sizeof g_why];
            char *js = cJSON_PrintUnformatted(step);
            memcpy(why, g_why, sizeof why);
            fail("step %d %.400s: %.600s", i, js, why);
            free(js);
            return -1;
        }
        i++;
    }
    return 0;
}

/* ---- phases ---- */

static int g_failed;

static void report(int ok, const char *phase, const char *name)
{
    if (ok) printf("PASS %s %s\n", phase, name);
    else printf("FAIL %s %s: %s\n", phase, name, g_why);
    fflush(stdout);
    if (!ok) g_failed = 1;
}

static int open_segment(commy_alloc **out, const char *path, uint32_t flags, uint64_t small)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = flags;
    if (small) {
        /* Golden files: the smallest file the layout allows, grown as needed. */
        o.journal_size = 16384;
        o.initial_size = 0;
        o.max_size = 64u << 20;
    }
    int rc = commy_alloc_open(out, path, &o);
    if (rc < 0) return fail("opening %s failed with %s: %s", path, err_name(rc), commy_error_last()->message);
    return 0;
}

/* Runs the write or read phase of one scenario file against SEGDIR/<name>.seg. */
static int run_scenario(const char *phase, const char *segdir, const char *file)
{
    char *text = read_file(file);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *jname = doc ? arg(doc, "name") : NULL;
    const char *name = cJSON_IsString(jname) ? jname->valuestring : file;
    int ok = 0;
    if (!doc) {
        fail("cannot read or parse %s", file);
    } else if (!cJSON_IsArray(arg(doc, phase))) {
        ok = 1; /* a scenario without this phase has nothing to check */
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.seg", segdir, name);
        int writing = strcmp(phase, "write") == 0;
        if (writing) unlink(path);
        commy_alloc *a = NULL;
        if (open_segment(&a, path, writing ? COMMY_ALLOC_CREATE | COMMY_ALLOC_EXCL : 0, 0) == 0) {
            ok = run_steps(a, arg(doc, phase)) == 0;
            slots_close_all();
            if (ok && commy_alloc_check(a) < 0) {
                fail("commy_alloc_check after the %s phase: %s", phase, commy_error_last()->message);
                ok = 0;
            }
            commy_alloc_close(a);
        }
    }
    report(ok, phase, name);
    cJSON_Delete(doc);
    return ok;
}

/* ---- golden files ---- */

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* The golden descriptions (the .json files of the golden directory), sorted. */
static int golden_list(char ***out, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return fail("cannot open %s: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
            names = realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n] = malloc(strlen(dir) + l + 2);
            sprintf(names[n++], "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static int copy_file(const char *from, const char *to, long truncate_at)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    if (!out) {
        if (in) fclose(in);
        return fail("cannot copy %s to %s", from, to);
    }
    char buf[65536];
    long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (truncate_at >= 0 && total + (long)n > truncate_at) n = (size_t)(truncate_at - total);
        fwrite(buf, 1, n, out);
        total += (long)n;
        if (truncate_at >= 0 && total >= truncate_at) break;
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : fail("cannot write %s", to);
}

static int patch_file(const char *path, long offset, const char *hex)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return fail("cannot patch %s", path);
    fseek(f, offset, SEEK_SET);
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) fputc(hexval(hex[i]) * 16 + hexval(hex[i + 1]), f);
    return fclose(f) == 0 ? 0 : fail("cannot patch %s", path);
}

/* Writes one golden file from its description's "write" steps or "derive" rule. */
static int golden_make(const char *dir, const cJSON *doc)
{
    const cJSON *jfile = arg(doc, "file"), *derive = arg(doc, "derive");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, jfile->valuestring);
    unlink(path);
    if (derive) {
        const cJSON *from = arg(derive, "from"), *trunc = arg(derive, "truncate"), *p;
        if (!cJSON_IsString(from)) return fail("\"derive\" needs a \"from\" file");
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", dir, from->valuestring);
        if (copy_file(src, path, trunc ? (long)trunc->valuedouble : -1)) return -1;
        cJSON_ArrayForEach(p, arg(derive, "patch"))
        {
            const cJSON *off = arg(p, "offset"), *hex = arg(p, "hex");
            if (!cJSON_IsNumber(off) || !cJSON_IsString(hex)) return fail("a patch needs \"offset\" and \"hex\"");
            if (patch_file(path, (long)off->valuedouble, hex->valuestring)) return -1;
        }
        return 0;
    }
    commy_alloc *a;
    if (open_segment(&a, path, COMMY_ALLOC_CREATE | COMMY_ALLOC_EXCL, 1)) return -1;
    int rc = run_steps(a, arg(doc, "write"));
    slots_close_all();
    commy_alloc_close(a);
    return rc;
}

/* Checks one golden file: it opens read-only and passes its read phase, or it
 * is refused with the expected error. */
static int golden_check(const char *dir, const cJSON *doc)
{
    const cJSON *jfile = arg(doc, "file"), *jerr = arg(doc, "open_error");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, jfile->valuestring);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = COMMY_ALLOC_READONLY;
    commy_alloc *a = NULL;
    int rc = commy_alloc_open(&a, path, &o);
    if (jerr) {
        int want = COMMY_OK;
        if (!cJSON_IsString(jerr) || err_code(jerr->valuestring, &want)) {
            commy_alloc_close(a);
            return -1;
        }
        if (rc >= 0) {
            commy_alloc_close(a);
            return fail("%s opened, but must be refused with %s", path, jerr->valuestring);
        }
        if (rc != want)
            return fail("%s was refused with %s (%s), expected %s", path, err_name(rc), commy_error_last()->message,
                        jerr->valuestring);
        return 0;
    }
    if (rc < 0) return fail("opening %s read-only failed with %s: %s", path, err_name(rc), commy_error_last()->message);
    int rc2 = cJSON_IsArray(arg(doc, "read")) ? run_steps(a, arg(doc, "read")) : fail("a golden file needs \"read\" steps");
    slots_close_all();
    commy_alloc_close(a);
    return rc2;
}

static int golden_all(const char *dir, int regenerate)
{
    char **files = NULL;
    int n = golden_list(&files, dir);
    if (n < 0) {
        report(0, "golden", dir);
        return 0;
    }
    /* Regenerate plain files before the ones derived from them. */
    for (int pass = 0; pass < (regenerate ? 2 : 1); pass++) {
        for (int i = 0; i < n; i++) {
            char *text = read_file(files[i]);
            cJSON *doc = text ? cJSON_Parse(text) : NULL;
            free(text);
            const cJSON *jname = doc ? arg(doc, "name") : NULL;
            const char *name = cJSON_IsString(jname) ? jname->valuestring : files[i];
            if (!doc || !cJSON_IsString(arg(doc, "file"))) {
                fail("cannot parse %s or it names no \"file\"", files[i]);
                report(0, "golden", name);
            } else if (regenerate) {
                int derived = arg(doc, "derive") != NULL;
                if (derived == pass) report(golden_make(dir, doc) == 0, "regenerate", name);
            } else {
                report(golden_check(dir, doc) == 0, "golden", name);
            }
            cJSON_Delete(doc);
        }
    }
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
    return 0;
}

/* ---- concurrency across languages ---- */

#define CONC_STRIDE 100000000 /* worker id * stride + i: every pushed value says who pushed it */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Pushes id * stride + i to the deque and adds 1 to the box, i = 0, 1, ...
 * for ms milliseconds after every worker has checked in, then records how
 * many it pushed in box conc_pushed_<id>. Running for a time, not a count,
 * makes the languages overlap however fast each one is. */
static int concurrent_worker(const char *path, int id, int ms, int workers)
{
    commy_alloc *a = NULL;
    commy_deque *q = NULL;
    commy_box *count = NULL, *ready = NULL, *pushed = NULL;
    char name[64];
    snprintf(name, sizeof name, "conc_pushed_%d", id);
    int rc;
    if (open_segment(&a, path, COMMY_ALLOC_CREATE, 0)) goto bad;
    if ((rc = commy_deque_open(&q, a, "conc_queue", COMMY_T_I64, 0)) < 0 ||
        (rc = commy_box_open(&count, a, "conc_count", COMMY_T_I64, 0)) < 0 ||
        (rc = commy_box_open(&ready, a, "conc_ready", COMMY_T_I64, 0)) < 0 ||
        (rc = commy_box_open(&pushed, a, name, COMMY_T_I64, COMMY_OPEN_EXCL)) < 0) {
        fail("open failed with %s: %s", err_name(rc), commy_error_last()->message);
        goto bad;
    }
    /* Check in, then wait (on the box's futex) until every worker has. */
    commy_box_fetch_add(NULL, ready, 1);
    double deadline = now_ms() + 30000;
    for (;;) {
        int64_t in = 0;
        uint32_t ver = 0;
        commy_box_version(&ver, ready);
        commy_box_cas(&in, ready, -1, -1);
        if (in >= workers) break;
        if (now_ms() > deadline) {
            fail("only %" PRId64 " of %d workers checked in within 30 s", in, workers);
            goto bad;
        }
        commy_box_wait(ready, ver, 100);
    }
    int64_t i = 0;
    for (double end = now_ms() + ms; now_ms() < end; i++) {
        int64_t v = (int64_t)id * CONC_STRIDE + i;
        if ((rc = commy_deque_push_back(q, &v, 8)) < 0 || (rc = commy_box_fetch_add(NULL, count, 1)) < 0) {
            fail("operation %" PRId64 " failed with %s: %s", i, err_name(rc), commy_error_last()->message);
            goto bad;
        }
    }
    if ((rc = commy_box_set(pushed, &i, 8)) < 0) {
        fail("recording the count failed with %s", err_name(rc));
        goto bad;
    }
    commy_deque_close(q);
    commy_box_close(count);
    commy_box_close(ready);
    commy_box_close(pushed);
    commy_alloc_close(a);
    report(1, "concurrent", "c");
    return 0;
bad:
    commy_deque_close(q);
    commy_box_close(count);
    commy_box_close(ready);
    commy_box_close(pushed);
    commy_alloc_close(a);
    report(0, "concurrent", "c");
    return 1;
}

/* Nothing lost, nothing twice: the box counted exactly what the workers say
 * they pushed, and the deque holds each worker's values 0..n-1 exactly once,
 * in that worker's order. */
static int concurrent_check(const char *path, int nids, char **ids)
{
    commy_alloc *a = NULL;
    commy_deque *q = NULL;
    commy_box *count = NULL;
    int ok = 0;
    int64_t n[64] = {0}, next[64] = {0}, idv[64] = {0};
    static char what[256];
    const char *label = "concurrent";
    if (nids < 1 || nids > 64) {
        fail("between 1 and 64 worker ids");
        goto out;
    }
    if (open_segment(&a, path, 0, 0)) goto out;
    int rc;
    if ((rc = commy_deque_open(&q, a, "conc_queue", COMMY_T_I64, COMMY_OPEN_EXISTING)) < 0 ||
        (rc = commy_box_open(&count, a, "conc_count", COMMY_T_I64, COMMY_OPEN_EXISTING)) < 0) {
        fail("open failed with %s: %s", err_name(rc), commy_error_last()->message);
        goto out;
    }
    int64_t want = 0;
    size_t len = 0;
    for (int k = 0; k < nids; k++) {
        char name[64];
        commy_box *b = NULL;
        idv[k] = atoll(ids[k]);
        snprintf(name, sizeof name, "conc_pushed_%s", ids[k]);
        if ((rc = commy_box_open(&b, a, name, COMMY_T_I64, COMMY_OPEN_EXISTING)) < 0 ||
            (rc = commy_box_get(b, &n[k], 8, &len)) < 0) {
            commy_box_close(b);
            fail("worker %s recorded no count (%s): it did not finish", ids[k], err_name(rc));
            goto out;
        }
        commy_box_close(b);
        want += n[k];
    }
    int64_t total = 0;
    commy_box_get(count, &total, 8, &len);
    if (total != want) {
        fail("the box counted %" PRId64 ", but the workers pushed %" PRId64, total, want);
        goto out;
    }
    uint64_t qlen = 0;
    commy_deque_len(&qlen, q);
    if (qlen != (uint64_t)want) {
        fail("the deque holds %" PRIu64 " values, but the workers pushed %" PRId64, qlen, want);
        goto out;
    }
    int prev = -1;
    uint64_t handovers = 0; /* how often the deque switches from one worker's values to another's */
    for (uint64_t i = 0; i < qlen; i++) {
        int64_t v;
        if ((rc = commy_deque_get(q, i, &v, 8, &len)) < 0) {
            fail("get %" PRIu64 " failed with %s", i, err_name(rc));
            goto out;
        }
        int64_t id = v / CONC_STRIDE, seq = v % CONC_STRIDE;
        int k;
        for (k = 0; k < nids; k++)
            if (idv[k] == id) break;
        if (k == nids || seq >= n[k]) {
            fail("value %" PRId64 " at %" PRIu64 " was pushed by nobody", v, i);
            goto out;
        }
        /* Each worker's values appear once each and in its order: so seq must be the next one. */
        if (seq != next[k]) {
            fail("worker %s's value %" PRId64 " at %" PRIu64 " where %" PRId64 " was due (lost, doubled or reordered)",
                 ids[k], seq, i, next[k]);
            goto out;
        }
        next[k]++;
        if (prev >= 0 && prev != k) handovers++;
        prev = k;
    }
    int o = snprintf(what, sizeof what, "%" PRIu64 " values (", qlen);
    for (int k = 0; k < nids && o < (int)sizeof what - 40; k++)
        o += snprintf(what + o, sizeof what - (size_t)o, "%sworker %s: %" PRId64, k ? ", " : "", ids[k], n[k]);
    snprintf(what + o, sizeof what - (size_t)o, "), %" PRIu64 " hand-overs between workers", handovers);
    label = what;
    /* If the workers ran one after another the test proved nothing about concurrency. */
    if (nids > 1 && handovers < (uint64_t)nids * 2) {
        fail("the workers hardly overlapped (%" PRIu64 " hand-overs)", handovers);
        goto out;
    }
    ok = 1;
out:
    commy_deque_close(q);
    commy_box_close(count);
    commy_alloc_close(a);
    report(ok, "concurrent-check", label);
    return !ok;
}

static int usage(void)
{
    fprintf(stderr, "usage: runner_c write|read SEGDIR SCENARIO.json...\n"
                    "       runner_c golden GOLDENDIR\n"
                    "       runner_c --regenerate-golden GOLDENDIR\n"
                    "       runner_c concurrent SEG ID MS WORKERS\n"
                    "       runner_c concurrent-check SEG ID...\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) return usage();
    if (commy_version_number() != COMMY_VERSION_NUMBER) {
        fprintf(stderr, "runner_c: built against commy %s but loaded %s\n", COMMY_VERSION_STRING, commy_version_string());
        return 2;
    }
    bufs_reserve(1 << 16, 1 << 16);
    const char *mode = argv[1];
    int rc = 0;
    if ((strcmp(mode, "write") == 0 || strcmp(mode, "read") == 0) && argc >= 4) {
        for (int i = 3; i < argc; i++) run_scenario(mode, argv[2], argv[i]);
        rc = g_failed;
    } else if (strcmp(mode, "golden") == 0) {
        golden_all(argv[2], 0);
        rc = g_failed;
    } else if (strcmp(mode, "--regenerate-golden") == 0) {
        golden_all(argv[2], 1);
        rc = g_failed;
    } else if (strcmp(mode, "concurrent") == 0 && argc == 6) {
        rc = concurrent_worker(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    } else if (strcmp(mode, "concurrent-check") == 0 && argc >= 4) {
        rc = concurrent_check(argv[2], argc - 3, argv + 3);
    } else {
        return usage();
    }
    free(g_kbuf);
    free(g_vbuf);
    return rc ? 1 : 0;
}
