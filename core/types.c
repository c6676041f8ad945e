/* Element types: validation, canonical keys, storage in slots, ordering and
 * hashing. The rules are part of the file format (docs/format.md, "Element
 * types"): every process and every language must order and hash alike. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

/* ------------------------------------------------------------ type codes */

int commy_type_valid(commy_type t)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    if (base == COMMY_T_BLOB) {
        uint32_t n = COMMY_TYPE_BLOB_SIZE(t);
        return n >= 1 && n <= 65535;
    }
    return base >= COMMY_T_I8 && base <= COMMY_T_STR && (t >> 8) == 0;
}

uint32_t commy_type_size(commy_type t)
{
    if (!commy_type_valid(t)) return 0;
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I8: case COMMY_T_U8: case COMMY_T_BOOL: return 1;
    case COMMY_T_I16: case COMMY_T_U16: return 2;
    case COMMY_T_I32: case COMMY_T_U32: case COMMY_T_F32: return 4;
    case COMMY_T_I64: case COMMY_T_U64: case COMMY_T_F64: return 8;
    case COMMY_T_BLOB: return COMMY_TYPE_BLOB_SIZE(t);
    default: return 0; /* bytes, str */
    }
}

uint32_t commy__slot_size(commy_type t)
{
    if (!commy_type_valid(t)) return 0;
    return commy__is_var(t) ? (uint32_t)sizeof(struct commy__var) : commy_type_size(t);
}

const char *commy_type_name(char *buf, size_t cap, commy_type t)
{
    static const char *const names[] = {"any", "i8", "i16", "i32", "i64", "u8", "u16", "u32",
                                        "u64", "f32", "f64", "bool", "bytes", "str"};
    if (buf == NULL || cap == 0) return buf;
    if (t == COMMY_T_ANY)
        snprintf(buf, cap, "any");
    else if (!commy_type_valid(t))
        snprintf(buf, cap, "invalid(0x%" PRIx32 ")", (uint32_t)t);
    else if (COMMY_TYPE_BASE(t) == COMMY_T_BLOB)
        snprintf(buf, cap, "blob[%" PRIu32 "]", COMMY_TYPE_BLOB_SIZE(t));
    else
        snprintf(buf, cap, "%s", names[COMMY_TYPE_BASE(t)]);
    return buf;
}

const char *commy_kind_name(uint32_t kind)
{
    static const char *const names[] = {"unknown", "box", "vec", "str", "deque", "map", "set", "omap", "oset"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

void commy_cursor_reset(commy_cursor *c)
{
    if (c) *c = (commy_cursor)COMMY_CURSOR_INIT;
}

/* ----------------------------------------------------------------- UTF-8 */

/* Offset of the first byte that does not start a valid UTF-8 sequence
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        /* ASCII runs dominate real strings: skip them 8 bytes at a time. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) n = 2;
        else if (c == 0xe0) n = 3, lo = 0xa0;             /* no overlong 3-byte forms */
        else if (c == 0xed) n = 3, hi = 0x9f;             /* no surrogates D800-DFFF */
        else if (c >= 0xe1 && c <= 0xef) n = 3;
        else if (c == 0xf0) n = 4, lo = 0x90;             /* no overlong 4-byte forms */
        else if (c >= 0xf1 && c <= 0xf3) n = 4;
        else if (c == 0xf4) n = 4, hi = 0x8f;             /* nothing above U+10FFFF */
        else return i;                                    /* 80-C1, F5-FF never start a sequence */
        if (len - i < n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80) return i;
        i += n;
    }
    return len;
}

/* ------------------------------------------------------------ validation */

int commy__value_check(commy_type t, const void *val, size_t len, const char *what)
{
    char tn[32];
    if (what == NULL) what = "value";
    if (!commy_type_valid(t))
        return commy__err(COMMY_EINVAL, "%s: 0x%" PRIx32 " is not a valid element type", what, (uint32_t)t);
    if (val == NULL && len != 0)
        return commy__err(COMMY_EINVAL, "%s: the value pointer is NULL but its length is %zu", what, len);
    if (!commy__is_var(t)) {
        uint32_t size = commy_type_size(t);
        if (len != size)
            return commy__err(COMMY_EINVAL, "%s: a %s is %" PRIu32 " bytes, but %zu bytes were given", what,
                              commy_type_name(tn, sizeof tn, t), size, len);
        if (COMMY_TYPE_BASE(t) == COMMY_T_BOOL && *(const unsigned char *)val > 1)
            return commy__err(COMMY_EINVAL, "%s: a bool is the byte 0 or 1, not %u", what,
                              (unsigned)*(const unsigned char *)val);
        return COMMY_OK;
    }
    if (COMMY_TYPE_BASE(t) == COMMY_T_STR) {
        size_t bad = utf8_invalid_at(val, len);
        if (bad != len)
            return commy__err(COMMY_EUTF8, "%s: the string is not valid UTF-8: byte 0x%02x at offset %zu of %zu", what,
                              ((const unsigned char *)val)[bad], bad, len);
    }
    return COMMY_OK;
}

/* ---------------------------------------------------------- canonical keys */

static uint64_t canon_f64_bits(uint64_t b)
{
    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (b & 0x000fffffffffffffull)) return 0x7ff8000000000000ull;
    if (b == 0x8000000000000000ull) return 0;
    return b;
}

static uint32_t canon_f32_bits(uint32_t b)
{
    if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu)) return 0x7fc00000u;
    if (b == 0x80000000u) return 0;
    return b;
}

const void *commy__key_canon(commy_type t, const void *val, size_t len, void *buf)
{
    if (COMMY_TYPE_BASE(t) == COMMY_T_F64 && len == 8) {
        uint64_t b;
        memcpy(&b, val, 8);
        b = canon_f64_bits(b);
        memcpy(buf, &b, 8);
        return buf;
    }
    if (COMMY_TYPE_BASE(t) == COMMY_T_F32 && len == 4) {
        uint32_t b;
        memcpy(&b, val, 4);
        b = canon_f32_bits(b);
        memcpy(buf, &b, 4);
        return buf;
    }
    return val;
}

/* --------------------------------------------------------------- storage */

/* Reads a slot's var descriptor (slots of blob arrays need not be aligned). */
static struct commy__var var_of(const void *slot)
{
    struct commy__var v;
    memcpy(&v, slot, sizeof v);
    return v;
}

int commy__value_store(commy_alloc *a, void *slot, commy_type t, const void *val, size_t len, int log)
{
    uint32_t ss = commy__slot_size(t);
    if (ss == 0) return commy__err(COMMY_EINVAL, "0x%" PRIx32 " is not a valid element type", (uint32_t)t);
    if (!commy__is_var(t)) {
        if (len != ss) return commy__err(COMMY_EINVAL, "a value of %zu bytes does not fit a %" PRIu32 "-byte slot", len, ss);
        if (log) {
            int rc = commy__log(a, slot, ss);
            if (rc) return rc;
        }
        memcpy(slot, val, ss);
        return COMMY_OK;
    }
    struct commy__var v = {0, (uint64_t)len};
    if (len != 0) {
        /* The new block is unreachable until the slot points at it: no logging. */
        int rc = commy__alloc(&v.off, a, (uint64_t)len, 8);
        if (rc) return rc;
        memcpy(commy__at(a, v.off), val, len);
    }
    if (log) {
        int rc = commy__log(a, slot, sizeof v);
        if (rc) return rc; /* the caller's rollback frees the block */
    }
    memcpy(slot, &v, sizeof v);
    return COMMY_OK;
}

int commy__value_free(commy_alloc *a, const void *slot, commy_type t)
{
    if (!commy__is_var(t)) return COMMY_OK;
    struct commy__var v = var_of(slot);
    return v.off ? commy__free(a, v.off) : COMMY_OK;
}

const void *commy__value_bytes(const commy_alloc *a, const void *slot, commy_type t, size_t *len)
{
    if (!commy__is_var(t)) {
        *len = commy_type_size(t);
        return slot;
    }
    struct commy__var v = var_of(slot);
    if (v.len == 0) {
        *len = 0;
        return "";
    }
    /* A damaged slot must not make a reader fault: bound it to the heap. */
    if (!commy__in_heap(a, v.off, v.len)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)v.len;
    return commy__at(a, v.off);
}

int commy__value_load(commy_alloc *a, const void *slot, commy_type t, void *out, size_t cap, size_t *out_len)
{
    size_t len;
    const void *p = commy__value_bytes(a, slot, t, &len);
    if (p == NULL)
        return commy__err(COMMY_ECORRUPT, "segment '%s': a stored value points outside the heap; run commy_alloc_check",
                          a->path);
    if (out_len) *out_len = len;
    if (out == NULL) return COMMY_OK;
    if (cap < len)
        return commy__err(COMMY_ETOOSMALL, "the value is %zu bytes but the buffer holds %zu; the needed length was stored",
                          len, cap);
    if (len) memcpy(out, p, len);
    return COMMY_OK;
}

/* -------------------------------------------------------------- ordering */

/* Maps a float's bits to an unsigned integer ordered like the floats, after
 * canonicalisation: -inf < ... < -0.0 == +0.0 < ... < +inf < NaN. */
static uint64_t f64_order(uint64_t b)
{
    b = canon_f64_bits(b);
    return (b >> 63) ? ~b : b | 0x8000000000000000ull;
}

static uint32_t f32_order(uint32_t b)
{
    b = canon_f32_bits(b);
    return (b >> 31) ? ~b : b | 0x80000000u;
}

#define CMP3(x, y) (((x) > (y)) - ((x) < (y)))

/* Orders two values of type t given as bytes. */
static int bytes_cmp(commy_type t, const void *x, size_t xl, const void *y, size_t yl)
{
    switch (COMMY_TYPE_BASE(t)) {
    case COMMY_T_I8: { int8_t p, q; memcpy(&p, x, 1); memcpy(&q, y, 1); return CMP3(p, q); }
    case COMMY_T_I16: { int16_t p, q; memcpy(&p, x, 2); memcpy(&q, y, 2); return CMP3(p, q); }
    case COMMY_T_I32: { int32_t p, q; memcpy(&p, x, 4); memcpy(&q, y, 4); return CMP3(p, q); }
    case COMMY_T_I64: { int64_t p, q; memcpy(&p, x, 8); memcpy(&q, y, 8); return CMP3(p, q); }
    case COMMY_T_U8: case COMMY_T_BOOL: { uint8_t p, q; memcpy(&p, x, 1); memcpy(&q, y, 1); return CMP3(p, q); }
    case COMMY_T_U16: { uint16_t p, q; memcpy(&p, x, 2); memcpy(&q, y, 2); return CMP3(p, q); }
    case COMMY_T_U32: { uint32_t p, q; memcpy(&p, x, 4); memcpy(&q, y, 4); return CMP3(p, q); }
    case COMMY_T_U64: { uint64_t p, q; memcpy(&p, x, 8); memcpy(&q, y, 8); return CMP3(p, q); }
    case COMMY_T_F32: {
        uint32_t p, q;
        memcpy(&p, x, 4);
        memcpy(&q, y, 4);
        p = f32_order(p);
        q = f32_order(q);
        return CMP3(p, q);
    }
    case COMMY_T_F64: {
        uint64_t p, q;
        memcpy(&p, x, 8);
        memcpy(&q, y, 8);
        p = f64_order(p);
        q = f64_order(q);
        return CMP3(p, q);
    }
    default: { /* blob, bytes, str: bytewise, a prefix first */
        size_t n = xl < yl ? xl : yl;
        int c = n ? memcmp(x, y, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return CMP3(xl, yl);
    }
    }
}

int commy__value_cmp(const commy_alloc *a, const void *slot, commy_type t, const void *val, size_t len)
{
    size_t sl;
    const void *sp = commy__value_bytes(a, slot, t, &sl);
    if (sp == NULL) sp = "";
    return bytes_cmp(t, sp, sl, val, len);
}

int commy__slot_cmp(const commy_alloc *a, const void *x, const void *y, commy_type t)
{
    size_t xl, yl;
    const void *xp = commy__value_bytes(a, x, t, &xl);
    const void *yp = commy__value_bytes(a, y, t, &yl);
    if (xp == NULL) xp = "";
    if (yp == NULL) yp = "";
    return bytes_cmp(t, xp, xl, yp, yl);
}

/* --------------------------------------------------------------- hashing */

/* The mixer of docs/format.md: two multiply-xorshift rounds. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static inline uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint64_t commy__value_hash(commy_type t, const void *val, size_t len, uint64_t seed)
{
    uint32_t base = COMMY_TYPE_BASE(t);
    const unsigned char *p = val;
    if (base != COMMY_T_BLOB && base != COMMY_T_BYTES && base != COMMY_T_STR) {
        /* Numbers and bool: their canonical little-endian bytes, zero-extended. */
        unsigned char buf[8];
        if (base == COMMY_T_F32 || base == COMMY_T_F64) p = commy__key_canon(t, val, len, buf);
        return mix64(load_le(p, len > 8 ? 8 : len) ^ seed);
    }
    uint64_t h = seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8); /* little-endian host, as the whole format assumes */
        h = mix64(h ^ w);
    }
    if (i < len) h = mix64(h ^ load_le(p + i, len - i));
    return mix64(h);
}

uint64_t commy__slot_hash(const commy_alloc *a, const void *slot, commy_type t, uint64_t seed)
{
    size_t len;
    const void *p = commy__value_bytes(a, slot, t, &len);
    if (p == NULL) p = "";
    return commy__value_hash(t, p, len, seed);
}

/* ---------------------------------------------------------------- checks */

int commy__slot_check(const commy_alloc *a, const void *slot, commy_type t)
{
    if (!commy_type_valid(t))
        return commy__err(COMMY_ECORRUPT, "segment '%s': a container declares the invalid type 0x%" PRIx32, a->path,
                          (uint32_t)t);
    uint64_t where = commy__off(a, slot);
    if (COMMY_TYPE_BASE(t) == COMMY_T_BOOL && *(const unsigned char *)slot > 1)
        return commy__err(COMMY_ECORRUPT, "segment '%s': the bool at offset %" PRIu64 " holds %u", a->path, where,
                          (unsigned)*(const unsigned char *)slot);
    if (!commy__is_var(t)) return COMMY_OK;
    struct commy__var v = var_of(slot);
    if (v.len == 0) {
        if (v.off != 0)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the empty value at offset %" PRIu64 " points at a block",
                              a->path, where);
        return COMMY_OK;
    }
    if (!commy__in_heap(a, v.off, v.len))
        return commy__err(COMMY_ECORRUPT, "segment '%s': the value at offset %" PRIu64 " points outside the heap",
                          a->path, where);
    uint64_t bs = commy__block_size(a, v.off);
    if (bs < v.len)
        return commy__err(COMMY_ECORRUPT,
                          bs ? "segment '%s': the value at offset %" PRIu64 " is longer than its block"
                             : "segment '%s': the value at offset %" PRIu64 " points at a block that is not live",
                          a->path, where);
    if (COMMY_TYPE_BASE(t) == COMMY_T_STR) {
        const unsigned char *s = commy__at(a, v.off);
        size_t bad = utf8_invalid_at(s, (size_t)v.len);
        if (bad != v.len)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the string at offset %" PRIu64
                              " is not valid UTF-8 at byte %zu", a->path, v.off, bad);
    }
    return COMMY_OK;
}
