/* The wire codec (docs/protocol.md). Every input is untrusted: fields are
 * checked for JSON type, range and length before anything uses them. */
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[COMMY_WIRE_OP_COUNT_] = {
    [COMMY_WIRE_OP_NONE] = "",
    [COMMY_WIRE_OP_AUTHENTICATE] = "authenticate",
    [COMMY_WIRE_OP_REFRESH] = "refresh",
    [COMMY_WIRE_OP_LOGOUT] = "logout",
    [COMMY_WIRE_OP_LIST_SERVICES] = "list_services",
    [COMMY_WIRE_OP_CREATE_SERVICE] = "create_service",
    [COMMY_WIRE_OP_DELETE_SERVICE] = "delete_service",
    [COMMY_WIRE_OP_OPEN_SERVICE] = "open_service",
    [COMMY_WIRE_OP_CLOSE_SERVICE] = "close_service",
    [COMMY_WIRE_OP_GET] = "get",
    [COMMY_WIRE_OP_SET] = "set",
    [COMMY_WIRE_OP_PUSH] = "push",
    [COMMY_WIRE_OP_POP] = "pop",
    [COMMY_WIRE_OP_ADD] = "add",
    [COMMY_WIRE_OP_REMOVE] = "remove",
    [COMMY_WIRE_OP_CONTAINS] = "contains",
    [COMMY_WIRE_OP_LEN] = "len",
    [COMMY_WIRE_OP_RANGE] = "range",
    [COMMY_WIRE_OP_SUBSCRIBE] = "subscribe",
    [COMMY_WIRE_OP_UNSUBSCRIBE] = "unsubscribe",
    [COMMY_WIRE_OP_REVOKE_CLIENT] = "revoke_client",
    [COMMY_WIRE_OP_DECLARE] = "declare",
    [COMMY_WIRE_OP_CLEAR] = "clear",
    [COMMY_WIRE_OP_INSERT] = "insert",
    [COMMY_WIRE_OP_APPEND] = "append",
    [COMMY_WIRE_OP_CAS] = "cas",
    [COMMY_WIRE_OP_FETCH_ADD] = "fetch_add",
};

const char *commy_wire_op_name(commy_wire_op op)
{
    return (op > 0 && op < COMMY_WIRE_OP_COUNT_) ? op_names[op] : "unknown";
}

static const struct {
    int code;
    const char *name;
} code_names[] = {
    {COMMY_EINVAL, "EINVAL"},       {COMMY_ENOMEM, "ENOMEM"},         {COMMY_EIO, "EIO"},
    {COMMY_ENOTFOUND, "ENOTFOUND"}, {COMMY_EEXISTS, "EEXISTS"},       {COMMY_ETYPE, "ETYPE"},
    {COMMY_ELAYOUT, "ELAYOUT"},     {COMMY_ECORRUPT, "ECORRUPT"},     {COMMY_ENOSPC, "ENOSPC"},
    {COMMY_ETIMEDOUT, "ETIMEDOUT"}, {COMMY_EBUSY, "EBUSY"},           {COMMY_EPERM, "EPERM"},
    {COMMY_ECLOSED, "ECLOSED"},     {COMMY_ERANGE, "ERANGE"},         {COMMY_EEMPTY, "EEMPTY"},
    {COMMY_ETOOSMALL, "ETOOSMALL"}, {COMMY_ECONCURRENT, "ECONCURRENT"}, {COMMY_EUTF8, "EUTF8"},
    {COMMY_EBADFREE, "EBADFREE"},   {COMMY_ENOTSUP, "ENOTSUP"},       {COMMY_EJOURNAL, "EJOURNAL"},
    {COMMY_WIRE_EPROTO, "EPROTO"},  {COMMY_WIRE_EUNKNOWNOP, "EUNKNOWNOP"}, {COMMY_WIRE_ETOOBIG, "ETOOBIG"},
    {COMMY_WIRE_EAUTH, "EAUTH"},    {COMMY_WIRE_EEXPIRED, "EEXPIRED"}, {COMMY_WIRE_EFORBIDDEN, "EFORBIDDEN"},
    {COMMY_WIRE_ELOCKED, "ELOCKED"},
    {COMMY_EDISCONNECTED, "EDISCONNECTED"}, {COMMY_ERETIRED, "ERETIRED"},
};

const char *commy_wire_code_name(int code)
{
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        if (code_names[i].code == code) return code_names[i].name;
    return "EUNKNOWN";
}

int commy_wire_code_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof code_names / sizeof code_names[0]; i++)
        if (strcmp(code_names[i].name, name) == 0) return code_names[i].code;
    return 0;
}

uint32_t commy_wire_kind_parse(const char *name)
{
    static const char *const kinds[] = {NULL, "box", "vec", "str", "deque", "map", "set", "omap", "oset"};
    for (uint32_t k = 1; name && k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kinds[k], name) == 0) return k;
    return 0;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of data at o (4 bytes per 3, rounded up); returns the end. */
static char *base64_into(char *o, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return o;
}

char *commy_wire_base64_encode(const void *data, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    *base64_into(out, data, len) = '\0';
    return out;
}

static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int commy_wire_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t n)
{
    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0) return COMMY_EINVAL;
    size_t pad = 0;
    if (n >= 1 && text[n - 1] == '=') pad++;
    if (n >= 2 && text[n - 2] == '=') pad++;
    size_t len = n / 4 * 3 - pad;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) return COMMY_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int d[4];
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)text[i + j];
            /* '=' only as the final one or two characters */
            if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || text[i + 3] == '=')) d[j] = 0;
            else if ((d[j] = b64_digit(c)) < 0) {
                free(buf);
                return COMMY_EINVAL;
            }
        }
        uint32_t v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
        /* bits below the padding must be zero: one spelling per value */
        if (i + 4 == n && ((pad == 2 && (v & 0xffff)) || (pad == 1 && (v & 0xff)))) {
            free(buf);
            return COMMY_EINVAL;
        }
        unsigned char bytes[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
        for (int j = 0; j < 3 && o < len; j++) buf[o++] = bytes[j];
    }
    *out = buf;
    *out_len = len;
    return COMMY_OK;
}

/* ---- typed values ---- */

int commy_wire_type_parse(commy_type *out, const char *name)
{
    static const char *const names[] = {NULL, "i8", "i16", "i32", "i64", "u8", "u16", "u32",
                                        "u64", "f32", "f64", "bool", "bytes", "str"};
    if (!name) return COMMY_EINVAL;
    for (uint32_t t = 1; t < sizeof names / sizeof names[0]; t++)
        if (strcmp(names[t], name) == 0) return *out = t, COMMY_OK;
    unsigned n = 0;
    char tail = 0;
    if (strncmp(name, "blob[", 5) == 0 && name[5] >= '1' && name[5] <= '9' &&
        sscanf(name + 5, "%5u]%c", &n, &tail) == 1 && n >= 1 && n <= 65535) {
        char canon[16];
        snprintf(canon, sizeof canon, "blob[%u]", n);
        if (strcmp(canon, name) != 0) return COMMY_EINVAL;
        *out = COMMY_TYPE_BLOB(n);
        return COMMY_OK;
    }
    return COMMY_EINVAL;
}

static int vfail(char *msg, size_t cap, int code, const char *fmt, ...)
{
    if (msg && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* A decimal string of at most 20 digits with an optional '-' into either
 * signed or unsigned 64 bits. */
static int parse_dec64(const char *s, int is_signed, int64_t *si, uint64_t *ui)
{
    size_t n = strlen(s);
    if (n == 0 || n > 20) return COMMY_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '-') neg = 1, p++;
    if (!*p) return COMMY_EINVAL;
    if (p[0] == '0' && p[1]) return COMMY_EINVAL; /* no leading zeros: one spelling per number */
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return COMMY_EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return COMMY_ERANGE;
        v = v * 10 + d;
    }
    if (is_signed) {
        if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return COMMY_ERANGE;
        *si = neg ? (int64_t)(0 - v) : (int64_t)v;
    } else {
        if (neg) return COMMY_ERANGE;
        *ui = v;
    }
    return COMMY_OK;
}

/* d as an f32 or f64 value into num (*len its size); -1 when it does not fit f32. */
static int float_bytes(unsigned char *num, size_t *len, commy_type base, double d)
{
    if (base == COMMY_T_F32) {
        if (isfinite(d) && fabs(d) > 3.4028234663852886e38) return -1;
        float f = (float)d;
        memcpy(num, &f, 4);
        *len = 4;
    } else {
        memcpy(num, &d, 8);
        *len = 8;
    }
    return 0;
}

int commy_wire_value_from_json(commy_wire_value *out, const cJSON *json, commy_type want, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(json)) return vfail(msg, cap, COMMY_EINVAL, "a typed value must be an object {\"t\":..., \"v\":...}");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(json, "t");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "v");
    if (!cJSON_IsString(t) || !v) return vfail(msg, cap, COMMY_EINVAL, "a typed value needs a string \"t\" and a \"v\"");
    commy_type type;
    if (commy_wire_type_parse(&type, t->valuestring) != COMMY_OK)
        return vfail(msg, cap, COMMY_EINVAL, "unknown value type '%.40s'", t->valuestring);
    if (want != COMMY_T_ANY && want != type) {
        char a[24], b[24];
        return vfail(msg, cap, COMMY_ETYPE, "the value is %s but the variable holds %s",
                     commy_type_name(a, sizeof a, type), commy_type_name(b, sizeof b, want));
    }
    unsigned char num[8];
    const void *src = num;
    size_t len = 0;
    unsigned char *owned = NULL;
    uint32_t base = COMMY_TYPE_BASE(type);
    switch (base) {
    case COMMY_T_I8: case COMMY_T_I16: case COMMY_T_I32: case COMMY_T_U8: case COMMY_T_U16: case COMMY_T_U32: {
        if (!cJSON_IsNumber(v)) return vfail(msg, cap, COMMY_EINVAL, "%s values are JSON integers", t->valuestring);
        double d = v->valuedouble;
        if (!(d == floor(d))) return vfail(msg, cap, COMMY_EINVAL, "%s value is not an integer", t->valuestring);
        static const double lo[] = {0, -128.0, -32768.0, -2147483648.0, 0, 0, 0, 0};
        static const double hi[] = {0, 127.0, 32767.0, 2147483647.0, 0, 255.0, 65535.0, 4294967295.0};
        if (d < lo[base] || d > hi[base]) return vfail(msg, cap, COMMY_ERANGE, "%.0f does not fit %s", d, t->valuestring);
        len = commy_type_size(type);
        if (base <= COMMY_T_I32) {
            int32_t x = (int32_t)d;
            memcpy(num, &x, len); /* little-endian: the low bytes come first */
        } else {
            uint32_t x = (uint32_t)d;
            memcpy(num, &x, len);
        }
        break;
    }
    case COMMY_T_I64: case COMMY_T_U64: {
        if (!cJSON_IsString(v)) return vfail(msg, cap, COMMY_EINVAL, "%s values are decimal strings", t->valuestring);
        int64_t si = 0;
        uint64_t ui = 0;
        int rc = parse_dec64(v->valuestring, base == COMMY_T_I64, &si, &ui);
        if (rc) return vfail(msg, cap, rc, "'%.40s' is not a %s", v->valuestring, t->valuestring);
        if (base == COMMY_T_I64) memcpy(num, &si, 8);
        else memcpy(num, &ui, 8);
        len = 8;
        break;
    }
    case COMMY_T_F32: case COMMY_T_F64: {
        double d;
        if (cJSON_IsNumber(v)) d = v->valuedouble;
        else if (cJSON_IsString(v) && strcmp(v->valuestring, "nan") == 0) d = NAN;
        else if (cJSON_IsString(v) && strcmp(v->valuestring, "inf") == 0) d = INFINITY;
        else if (cJSON_IsString(v) && strcmp(v->valuestring, "-inf") == 0) d = -INFINITY;
        else if (cJSON_IsString(v) && strcmp(v->valuestring, "-0") == 0) d = -0.0;
        else return vfail(msg, cap, COMMY_EINVAL, "%s values are numbers or \"nan\", \"inf\", \"-inf\", \"-0\"", t->valuestring);
        if (float_bytes(num, &len, base, d) != 0) return vfail(msg, cap, COMMY_ERANGE, "%g does not fit f32", d);
        break;
    }
    case COMMY_T_BOOL:
        if (!cJSON_IsBool(v)) return vfail(msg, cap, COMMY_EINVAL, "bool values are true or false");
        num[0] = cJSON_IsTrue(v) ? 1 : 0;
        len = 1;
        break;
    case COMMY_T_STR:
        if (!cJSON_IsString(v)) return vfail(msg, cap, COMMY_EINVAL, "str values are JSON strings");
        src = v->valuestring;
        len = strlen(v->valuestring);
        break;
    case COMMY_T_BYTES: case COMMY_T_BLOB: {
        if (!cJSON_IsString(v)) return vfail(msg, cap, COMMY_EINVAL, "%s values are base64 strings", t->valuestring);
        int rc = commy_wire_base64_decode(&owned, &len, v->valuestring, strlen(v->valuestring));
        if (rc) return vfail(msg, cap, rc, "the %s value is not valid base64", t->valuestring);
        if (base == COMMY_T_BLOB && len != COMMY_TYPE_BLOB_SIZE(type)) {
            free(owned);
            return vfail(msg, cap, COMMY_EINVAL, "a %s value must be exactly %u bytes, not %zu", t->valuestring,
                         COMMY_TYPE_BLOB_SIZE(type), len);
        }
        break;
    }
    default:
        return vfail(msg, cap, COMMY_EINVAL, "unknown value type");
    }
    if (!owned) {
        owned = malloc(len ? len : 1);
        if (!owned) return vfail(msg, cap, COMMY_ENOMEM, "out of memory");
        memcpy(owned, src, len);
    }
    out->type = type;
    out->data = owned;
    out->len = len;
    return COMMY_OK;
}

void commy_wire_value_free(commy_wire_value *v)
{
    if (!v) return;
    free(v->data);
    v->data = NULL;
    v->len = 0;
}

static cJSON *float_json(double d)
{
    if (isnan(d)) return cJSON_CreateString("nan");
    if (isinf(d)) return cJSON_CreateString(d > 0 ? "inf" : "-inf");
    if (d == 0 && signbit(d)) return cJSON_CreateString("-0");
    return cJSON_CreateNumber(d);
}

cJSON *commy_wire_value_to_json(commy_type type, const void *bytes, size_t len)
{
    char tname[24];
    if (!commy_type_valid(type) || type == COMMY_T_ANY) return NULL;
    uint32_t fixed = commy_type_size(type);
    if (fixed && len != fixed) return NULL;
    cJSON *v = NULL;
    char buf[32];
    switch (COMMY_TYPE_BASE(type)) {
    case COMMY_T_I8: { int8_t x; memcpy(&x, bytes, 1); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_I16: { int16_t x; memcpy(&x, bytes, 2); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_I32: { int32_t x; memcpy(&x, bytes, 4); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_U8: { uint8_t x; memcpy(&x, bytes, 1); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_U16: { uint16_t x; memcpy(&x, bytes, 2); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_U32: { uint32_t x; memcpy(&x, bytes, 4); v = cJSON_CreateNumber(x); break; }
    case COMMY_T_I64: { int64_t x; memcpy(&x, bytes, 8); snprintf(buf, sizeof buf, "%" PRId64, x); v = cJSON_CreateString(buf); break; }
    case COMMY_T_U64: { uint64_t x; memcpy(&x, bytes, 8); snprintf(buf, sizeof buf, "%" PRIu64, x); v = cJSON_CreateString(buf); break; }
    case COMMY_T_F32: { float x; memcpy(&x, bytes, 4); v = float_json(x); break; }
    case COMMY_T_F64: { double x; memcpy(&x, bytes, 8); v = float_json(x); break; }
    case COMMY_T_BOOL: {
        unsigned char b = *(const unsigned char *)bytes;
        if (b > 1) return NULL;
        v = cJSON_CreateBool(b);
        break;
    }
    case COMMY_T_STR: {
        /* cJSON strings end at NUL; a str with an embedded NUL cannot travel */
        if (memchr(bytes, 0, len)) return NULL;
        char *s = malloc(len + 1);
        if (!s) return NULL;
        memcpy(s, bytes, len);
        s[len] = '\0';
        v = cJSON_CreateString(s);
        free(s);
        break;
    }
    case COMMY_T_BYTES: case COMMY_T_BLOB: {
        char *s = commy_wire_base64_encode(bytes, len);
        if (!s) return NULL;
        v = cJSON_CreateString(s);
        free(s);
        break;
    }
    default:
        return NULL;
    }
    cJSON *obj = cJSON_CreateObject();
    if (!v || !obj || !cJSON_AddStringToObject(obj, "t", commy_type_name(tname, sizeof tname, type))) {
        cJSON_Delete(v);
        cJSON_Delete(obj);
        return NULL;
    }
    cJSON_AddItemToObject(obj, "v", v);
    return obj;
}

/* Prints the typed value as cJSON_PrintUnformatted prints
 * commy_wire_value_to_json's object for it, without building the object: the
 * server replies to a get with it. */
size_t commy_wire_value_print(char *out, size_t cap, commy_type type, const void *bytes, size_t len)
{
    if (!cap || !commy_type_valid(type) || type == COMMY_T_ANY) return 0;
    uint32_t fixed = commy_type_size(type), base = COMMY_TYPE_BASE(type);
    if (fixed && len != fixed) return 0;
    if (base == COMMY_T_F32 || base == COMMY_T_F64) {
        /* cJSON's number printing ("%1.15g", read back, else "%1.17g"): its own */
        cJSON *j = commy_wire_value_to_json(type, bytes, len);
        int ok = j && cJSON_PrintPreallocated(j, out, (int)(cap > INT32_MAX ? INT32_MAX : cap), 0);
        cJSON_Delete(j);
        return ok ? strlen(out) : 0;
    }
    static const char *const names[] = {"", "i8", "i16", "i32", "i64", "u8", "u16", "u32",
                                        "u64", "f32", "f64", "bool", "bytes", "str"};
    char blob[24];
    const char *tname = base < sizeof names / sizeof names[0] ? names[base] : commy_type_name(blob, sizeof blob, type);
    size_t tn = strlen(tname);
    /* the longest a value prints: 6 bytes per str byte (\u00XX), base64's 4
     * per 3, 22 for an integer, plus the frame {"t":"","v":} */
    size_t most = base == COMMY_T_STR ? len * 6 + 2 : (base == COMMY_T_BYTES || base == COMMY_T_BLOB) ? (len + 2) / 3 * 4 + 2 : 24;
    if (len > SIZE_MAX / 8 || tn + most + 16 > cap) return 0;
    char *o = out;
    memcpy(o, "{\"t\":\"", 6), o += 6;
    memcpy(o, tname, tn), o += tn;
    memcpy(o, "\",\"v\":", 6), o += 6;
    switch (base) {
    case COMMY_T_I8: case COMMY_T_I16: case COMMY_T_I32: case COMMY_T_U8: case COMMY_T_U16: case COMMY_T_U32:
    case COMMY_T_I64: case COMMY_T_U64: {
        int64_t s = 0;
        uint64_t u;
        switch (base) {
        case COMMY_T_I8: { int8_t x; memcpy(&x, bytes, 1); s = x; break; }
        case COMMY_T_I16: { int16_t x; memcpy(&x, bytes, 2); s = x; break; }
        case COMMY_T_I32: { int32_t x; memcpy(&x, bytes, 4); s = x; break; }
        case COMMY_T_U8: { uint8_t x; memcpy(&x, bytes, 1); s = x; break; }
        case COMMY_T_U16: { uint16_t x; memcpy(&x, bytes, 2); s = x; break; }
        case COMMY_T_U32: { uint32_t x; memcpy(&x, bytes, 4); s = x; break; }
        case COMMY_T_I64: memcpy(&s, bytes, 8); break;
        }
        int quoted = base == COMMY_T_I64 || base == COMMY_T_U64; /* 64-bit integers travel as strings */
        if (base == COMMY_T_U64) memcpy(&u, bytes, 8);
        else u = s < 0 ? 0 - (uint64_t)s : (uint64_t)s;
        char digits[24], *d = digits + sizeof digits;
        do *--d = (char)('0' + u % 10); while ((u /= 10) != 0);
        if (base != COMMY_T_U64 && s < 0) *--d = '-';
        if (quoted) *o++ = '"';
        memcpy(o, d, (size_t)(digits + sizeof digits - d)), o += digits + sizeof digits - d;
        if (quoted) *o++ = '"';
        break;
    }
    case COMMY_T_BOOL: {
        unsigned char b = *(const unsigned char *)bytes;
        if (b > 1) return 0;
        memcpy(o, b ? "true" : "false", 5 - b), o += 5 - b;
        break;
    }
    case COMMY_T_STR: {
        const unsigned char *p = bytes;
        if (memchr(p, 0, len)) return 0; /* U+0000 cannot be carried */
        static const char hex[] = "0123456789abcdef";
        *o++ = '"';
        for (size_t i = 0; i < len; i++) {
            unsigned char c = p[i];
            if (c >= 0x20 && c != '"' && c != '\\') {
                *o++ = (char)c;
                continue;
            }
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default: memcpy(o, "u00", 3), o += 3, *o++ = hex[c >> 4], *o++ = hex[c & 15]; break;
            }
        }
        *o++ = '"';
        break;
    }
    case COMMY_T_BYTES: case COMMY_T_BLOB:
        *o++ = '"';
        o = base64_into(o, bytes, len);
        *o++ = '"';
        break;
    default:
        return 0;
    }
    *o++ = '}';
    *o = '\0';
    return (size_t)(o - out);
}

/* ---- requests ---- */

static int fault(commy_wire_fault *f, int code, const char *fmt, ...)
{
    if (f) {
        f->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof f->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* An integer in 0..2^53-1 from a JSON number or, if strings are allowed, a
 * decimal string. */
static int get_u64(uint64_t *out, const cJSON *j, int allow_string)
{
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (!(d >= 0 && d <= 9007199254740991.0 && d == floor(d))) return COMMY_ERANGE;
        *out = (uint64_t)d;
        return COMMY_OK;
    }
    if (allow_string && cJSON_IsString(j)) {
        int64_t si;
        return parse_dec64(j->valuestring, 0, &si, out);
    }
    return COMMY_EINVAL;
}

static int name_ok(const char *s, int root)
{
    size_t n = strlen(s);
    if (n < 1 || n > COMMY_WIRE_NAME_MAX) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-' || (root && c == ':')))
            return 0;
    }
    return !(s[0] == '.' && !root); /* service names become no path, but refuse dot names anyway */
}

/* The members a request may have, found in one pass over the object (the
 * first of a repeated key, as cJSON_GetObjectItemCaseSensitive finds),
 * rather than one pass per key asked for. */
static const char *const field_names[] = {"id", "v", "op", "service", "var", "key", "value", "from", "index", "kind",
                                          "end", "limit", "skip", "key_type", "value_type", "flags", "expected",
                                          "desired", "delta", "tenant", "api_key", "token", "jwt", "persistent",
                                          "mode", "client_id"};
#define NFIELDS (int)(sizeof field_names / sizeof field_names[0])

typedef struct req_fields {
    const cJSON *item[NFIELDS];
} req_fields;

static int field_index(const char *name)
{
    for (int i = 0; i < NFIELDS; i++)
        if (name[0] == field_names[i][0] && strcmp(name, field_names[i]) == 0) return i;
    return -1;
}

static void index_fields(req_fields *fl, const cJSON *obj)
{
    memset(fl, 0, sizeof *fl);
    for (const cJSON *c = obj->child; c; c = c->next) {
        int i = c->string ? field_index(c->string) : -1;
        if (i >= 0 && !fl->item[i]) fl->item[i] = c;
    }
}

static const cJSON *field(const req_fields *fl, const char *name)
{
    int i = field_index(name);
    return i >= 0 ? fl->item[i] : NULL;
}

/* Copies string field `key` into dst (cap bytes) after checking it; required
 * fields missing are EINVAL. kind: 0 secret (any printable), 1 name, 2 root name. */
static int get_str(commy_wire_fault *f, const req_fields *root, const char *key, char *dst, size_t cap, int required,
                   int kind)
{
    const cJSON *j = field(root, key);
    if (!j) return required ? fault(f, COMMY_EINVAL, "the request needs a string \"%s\"", key) : COMMY_OK;
    if (!cJSON_IsString(j)) return fault(f, COMMY_EINVAL, "\"%s\" must be a string", key);
    size_t n = strlen(j->valuestring);
    if (n == 0 || n >= cap) return fault(f, COMMY_EINVAL, "\"%s\" must be 1 to %zu bytes", key, cap - 1);
    if (kind == 0) {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)j->valuestring[i] < 0x21 || (unsigned char)j->valuestring[i] > 0x7e)
                return fault(f, COMMY_EINVAL, "\"%s\" must be printable ASCII", key);
    } else if (!name_ok(j->valuestring, kind == 2)) {
        return fault(f, COMMY_EINVAL, "\"%s\" must be a name of [A-Za-z0-9_.-]%s", key, kind == 2 ? " or ':'" : "");
    }
    memcpy(dst, j->valuestring, n + 1);
    return COMMY_OK;
}

static int get_value(commy_wire_fault *f, const req_fields *root, const char *key, commy_wire_value *dst, int *has)
{
    const cJSON *j = field(root, key);
    if (!j) return COMMY_OK;
    char msg[200];
    int rc = commy_wire_value_from_json(dst, j, COMMY_T_ANY, msg, sizeof msg);
    if (rc) return fault(f, rc, "\"%s\": %s", key, msg);
    *has = 1;
    return COMMY_OK;
}

/* A required signed 64-bit integer: a decimal string (or a JSON integer
 * within +-2^53). */
static int get_i64(commy_wire_fault *f, const req_fields *root, const char *key, int64_t *out)
{
    const cJSON *j = field(root, key);
    uint64_t u;
    if (cJSON_IsString(j)) {
        int rc = parse_dec64(j->valuestring, 1, out, &u);
        if (rc) return fault(f, rc, "\"%s\" must be a decimal string of a signed 64-bit integer", key);
        return COMMY_OK;
    }
    if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) && fabs(j->valuedouble) <= 9007199254740991.0) {
        *out = (int64_t)j->valuedouble;
        return COMMY_OK;
    }
    return fault(f, COMMY_EINVAL, "the request needs \"%s\": a signed 64-bit integer (decimal string)", key);
}

/* An optional type name ("i64", "blob[16]"). */
static int get_type(commy_wire_fault *f, const req_fields *root, const char *key, commy_type *out, int *has)
{
    const cJSON *j = field(root, key);
    if (!j) return COMMY_OK;
    if (!cJSON_IsString(j) || commy_wire_type_parse(out, j->valuestring) != COMMY_OK)
        return fault(f, COMMY_EINVAL, "\"%s\" must be a type name such as \"i64\" or \"blob[16]\"", key);
    *has = 1;
    return COMMY_OK;
}

static int require(commy_wire_fault *f, int present, const char *op, const char *what)
{
    return present ? COMMY_OK : fault(f, COMMY_EINVAL, "%s needs %s", op, what);
}

static int parse_fields(commy_wire_request *r, commy_wire_fault *f, const req_fields *root)
{
    int rc;
    const char *op = r->op_name;
#define TRY(x) do { if ((rc = (x)) != COMMY_OK) return rc; } while (0)
    int needs_var = (r->op >= COMMY_WIRE_OP_GET && r->op <= COMMY_WIRE_OP_UNSUBSCRIBE) || r->op >= COMMY_WIRE_OP_DECLARE;
    int needs_service = (r->op >= COMMY_WIRE_OP_CREATE_SERVICE && r->op <= COMMY_WIRE_OP_UNSUBSCRIBE) || needs_var;
    TRY(get_str(f, root, "service", r->service, sizeof r->service, needs_service, 1));
    TRY(get_str(f, root, "var", r->var, sizeof r->var, needs_var, 2));
    TRY(get_value(f, root, "key", &r->key, &r->has_key));
    TRY(get_value(f, root, "value", &r->value, &r->has_value));
    TRY(get_value(f, root, "from", &r->from, &r->has_from));
    const cJSON *j;
    if ((j = field(root, "index"))) {
        int e = get_u64(&r->index, j, 1);
        if (e) return fault(f, e, "\"index\" must be a non-negative integer or decimal string");
        r->has_index = 1;
    }
    if ((j = field(root, "kind"))) {
        if (!cJSON_IsString(j) || !(r->kind = commy_wire_kind_parse(j->valuestring)))
            return fault(f, COMMY_EINVAL, "\"kind\" must be one of box, vec, str, deque, map, set, omap, oset");
    }
    if ((j = field(root, "end"))) {
        r->has_end = 1;
        if (cJSON_IsString(j) && strcmp(j->valuestring, "front") == 0) r->front = 1;
        else if (!(cJSON_IsString(j) && strcmp(j->valuestring, "back") == 0))
            return fault(f, COMMY_EINVAL, "\"end\" must be \"back\" or \"front\"");
    }
    r->limit = 100;
    if ((j = field(root, "limit"))) {
        uint64_t l;
        if (get_u64(&l, j, 0) || l < 1 || l > COMMY_WIRE_RANGE_MAX)
            return fault(f, COMMY_EINVAL, "\"limit\" must be an integer from 1 to %d", COMMY_WIRE_RANGE_MAX);
        r->limit = (uint32_t)l;
    }
    if ((j = field(root, "skip"))) {
        if (get_u64(&r->skip, j, 1)) return fault(f, COMMY_EINVAL, "\"skip\" must be a non-negative integer or decimal string");
    }
    switch (r->op) {
    case COMMY_WIRE_OP_DECLARE:
        TRY(require(f, r->kind != 0, op, "a \"kind\""));
        TRY(get_type(f, root, "key_type", &r->key_type, &r->has_key_type));
        TRY(get_type(f, root, "value_type", &r->value_type, &r->has_value_type));
        if ((j = field(root, "flags"))) {
            if (cJSON_IsString(j) && strcmp(j->valuestring, "existing") == 0) r->existing = 1;
            else if (cJSON_IsString(j) && strcmp(j->valuestring, "excl") == 0) r->excl = 1;
            else if (!(cJSON_IsString(j) && strcmp(j->valuestring, "create") == 0))
                return fault(f, COMMY_EINVAL, "\"flags\" must be \"create\", \"existing\" or \"excl\"");
        }
        break;
    case COMMY_WIRE_OP_INSERT:
        TRY(require(f, r->has_value && r->has_index, op, "an \"index\" and a typed \"value\""));
        break;
    case COMMY_WIRE_OP_APPEND: TRY(require(f, r->has_value, op, "a typed \"value\"")); break;
    case COMMY_WIRE_OP_CAS:
        TRY(get_i64(f, root, "expected", &r->expected));
        TRY(get_i64(f, root, "desired", &r->desired));
        break;
    case COMMY_WIRE_OP_FETCH_ADD: TRY(get_i64(f, root, "delta", &r->delta)); break;
    case COMMY_WIRE_OP_AUTHENTICATE:
        TRY(get_str(f, root, "tenant", r->tenant, sizeof r->tenant, 1, 1));
        TRY(get_str(f, root, "api_key", r->api_key, sizeof r->api_key, 0, 0));
        TRY(get_str(f, root, "token", r->token, sizeof r->token, 0, 0));
        TRY(get_str(f, root, "jwt", r->jwt, sizeof r->jwt, 0, 0));
        if (!!r->api_key[0] + !!r->token[0] + !!r->jwt[0] != 1)
            return fault(f, COMMY_EINVAL, "authenticate needs exactly one of \"api_key\", \"token\" and \"jwt\"");
        break;
    case COMMY_WIRE_OP_CREATE_SERVICE:
        if ((j = field(root, "persistent"))) {
            if (!cJSON_IsBool(j)) return fault(f, COMMY_EINVAL, "\"persistent\" must be true or false");
            r->persistent = cJSON_IsTrue(j);
        }
        break;
    case COMMY_WIRE_OP_OPEN_SERVICE: {
        j = field(root, "mode");
        if (cJSON_IsString(j) && strcmp(j->valuestring, "local") == 0) r->mode_local = 1;
        else if (!(cJSON_IsString(j) && strcmp(j->valuestring, "remote") == 0))
            return fault(f, COMMY_EINVAL, "open_service needs \"mode\": \"local\" or \"remote\"");
        break;
    }
    case COMMY_WIRE_OP_SET: TRY(require(f, r->has_value, op, "a typed \"value\"")); break;
    case COMMY_WIRE_OP_PUSH: TRY(require(f, r->has_value, op, "a typed \"value\"")); break;
    case COMMY_WIRE_OP_ADD: case COMMY_WIRE_OP_CONTAINS: TRY(require(f, r->has_key, op, "a typed \"key\"")); break;
    case COMMY_WIRE_OP_REMOVE: TRY(require(f, r->has_key || r->has_index, op, "a typed \"key\" or an \"index\"")); break;
    case COMMY_WIRE_OP_REVOKE_CLIENT:
        TRY(get_str(f, root, "client_id", r->client_id, sizeof r->client_id, 1, 1));
        break;
    default: break;
    }
    return COMMY_OK;
#undef TRY
}

/* the secrets sit together, between the small fields parse clears */
_Static_assert(offsetof(commy_wire_request, token) > offsetof(commy_wire_request, api_key) &&
                   offsetof(commy_wire_request, jwt) > offsetof(commy_wire_request, token) &&
                   offsetof(commy_wire_request, kind) - offsetof(commy_wire_request, api_key) <
                       2 * (COMMY_WIRE_SECRET_MAX + 1) + COMMY_WIRE_JWT_MAX + 1 + 8,
               "commy_wire_request: api_key, token and jwt must be adjacent, followed by kind");

/* ---- the fast path: a strict parser for the common request shapes ----
 *
 * Most frames are small objects of known members: get, set, push ... of one
 * variable with at most a typed value and a key or index. cJSON builds a
 * tree of some twenty nodes for one, which was a fifth of the server's
 * instructions per request. commy_wire_request_parse_fast reads such a
 * frame in one pass straight into the request, and declines (returns 0)
 * everything it does not take in full: other members, repeated members,
 * escapes in strings, control characters, numbers that are not plain
 * integers where an integer is wanted, every value the cJSON path would
 * refuse. A declined frame goes to the cJSON path, which gives the one
 * answer for it (and the only error replies). What the fast path accepts,
 * it accepts with exactly the request the cJSON path builds: fuzz_wire_fast
 * checks that. */

typedef struct fast {
    const char *p, *e;
} fast;

static void fast_ws(fast *s)
{
    /* JSON's four whitespace characters (cJSON skips every byte <= 32: the
     * others are declined) */
    while (s->p < s->e && (unsigned char)*s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* The bytes that end a plain string's run: '"', '\\' and the control
 * characters. */
#define FAST_X16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char fast_stop[256] = {FAST_X16, FAST_X16, 0, 0, 1 /* '"' */, [92] = 1 /* '\\' */};
#undef FAST_X16

/* A string without escapes and control characters; its bytes are
 * [*out, *out + *n). */
static int fast_str(fast *s, const char **out, size_t *n)
{
    if (s->p >= s->e || *s->p != '"') return 0;
    const char *q = s->p + 1;
    while (q < s->e && !fast_stop[(unsigned char)*q]) q++;
    if (q >= s->e || *q != '"') return 0;
    *out = s->p + 1;
    *n = (size_t)(q - s->p - 1);
    s->p = q + 1;
    return 1;
}

/* A number in JSON's grammar, at most 63 bytes (cJSON reads up to 63).
 * *integer: no fraction and no exponent. */
static int fast_num(fast *s, const char **out, size_t *n, int *integer)
{
    const char *q = s->p, *e = s->e;
    if (q < e && *q == '-') q++;
    if (q >= e) return 0;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < e && *q >= '0' && *q <= '9') q++;
    else return 0;
    *integer = 1;
    if (q < e && *q == '.') {
        const char *d = ++q;
        while (q < e && *q >= '0' && *q <= '9') q++;
        if (q == d) return 0;
        *integer = 0;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        const char *d = q;
        while (q < e && *q >= '0' && *q <= '9') q++;
        if (q == d) return 0;
        *integer = 0;
    }
    if (q - s->p > 63) return 0;
    *out = s->p;
    *n = (size_t)(q - s->p);
    s->p = q;
    return 1;
}

/* After a member's value: whitespace, then ',' (1, more members) or '}' (2). */
static int fast_next(fast *s)
{
    fast_ws(s);
    if (s->p >= s->e) return 0;
    char c = *s->p++;
    return c == ',' ? 1 : c == '}' ? 2 : 0;
}

/* A member's name and the ':' after it. */
static int fast_key(fast *s, const char **k, size_t *kn)
{
    fast_ws(s);
    if (!fast_str(s, k, kn)) return 0;
    fast_ws(s);
    if (s->p >= s->e || *s->p != ':') return 0;
    s->p++;
    fast_ws(s);
    return 1;
}

#define FAST_IS(k, kn, lit) ((kn) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* A plain integer token ("-"? digits, as fast_num read it) of at most
 * 16 digits into *out; 0 for more digits. */
static int fast_int(int64_t *out, const char *t, size_t n)
{
    int neg = t[0] == '-';
    if (n - (size_t)neg > 16) return 0;
    int64_t v = 0;
    for (size_t i = (size_t)neg; i < n; i++) v = v * 10 + (t[i] - '0');
    *out = neg ? -v : v;
    return 1;
}

/* An id, index, ...: a non-negative plain integer of at most 2^53-1 (no
 * "-0": cJSON's -0.0 passes get_u64, but declining it is always right). */
static int fast_u53(uint64_t *out, const char *t, size_t n, int integer)
{
    int64_t v;
    if (!integer || t[0] == '-' || !fast_int(&v, t, n) || v > 9007199254740991ll) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* A decimal string (parse_dec64's rules) of a 64-bit integer. */
static int fast_dec64(const char *t, size_t n, int is_signed, int64_t *si, uint64_t *ui)
{
    char b[24];
    if (n == 0 || n > 20) return 0;
    memcpy(b, t, n);
    b[n] = '\0';
    return parse_dec64(b, is_signed, si, ui) == COMMY_OK;
}

/* A typed value {"t": ..., "v": ...} into *out (owned bytes), as
 * commy_wire_value_from_json(..., COMMY_T_ANY) makes it. */
static int fast_value(fast *s, commy_wire_value *out)
{
    const char *t = NULL, *v = NULL;
    size_t tn = 0, vn = 0;
    int vkind = 0, integer = 0; /* vkind: 's' string, 'n' number, 't' true, 'f' false */
    if (s->p >= s->e || *s->p != '{') return 0;
    s->p++;
    for (int more = 1; more == 1;) {
        const char *k;
        size_t kn;
        if (!fast_key(s, &k, &kn)) return 0;
        if (FAST_IS(k, kn, "t")) {
            if (t || !fast_str(s, &t, &tn)) return 0;
        } else if (FAST_IS(k, kn, "v") && !vkind) {
            if (s->p >= s->e) return 0;
            if (*s->p == '"') {
                if (!fast_str(s, &v, &vn)) return 0;
                vkind = 's';
            } else if (s->e - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
                s->p += 4;
                vkind = 't';
            } else if (s->e - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
                s->p += 5;
                vkind = 'f';
            } else {
                if (!fast_num(s, &v, &vn, &integer)) return 0;
                vkind = 'n';
            }
        } else {
            return 0;
        }
        if (!(more = fast_next(s))) return 0;
    }
    if (!t || !vkind || tn == 0 || tn > 15) return 0;
    commy_type type = 0;
    if (tn < 8) { /* the plain types: one 8-byte compare each (commy_wire_type_parse's order) */
        static const char names[][8] = {"", "i8", "i16", "i32", "i64", "u8", "u16", "u32",
                                        "u64", "f32", "f64", "bool", "bytes", "str"};
        char k[8] = {0};
        memcpy(k, t, tn);
        for (uint32_t i = 1; i < sizeof names / sizeof names[0] && !type; i++)
            if (memcmp(k, names[i], 8) == 0) type = i;
    }
    if (!type) {
        char tname[16];
        memcpy(tname, t, tn);
        tname[tn] = '\0';
        if (commy_wire_type_parse(&type, tname) != COMMY_OK) return 0;
    }
    unsigned char num[8];
    const void *src = num;
    size_t len = 0;
    unsigned char *owned = NULL;
    uint32_t base = COMMY_TYPE_BASE(type);
    switch (base) {
    case COMMY_T_I8: case COMMY_T_I16: case COMMY_T_I32: case COMMY_T_U8: case COMMY_T_U16: case COMMY_T_U32: {
        static const int64_t lo[] = {0, -128, -32768, -2147483648ll, 0, 0, 0, 0};
        static const int64_t hi[] = {0, 127, 32767, 2147483647ll, 0, 255, 65535, 4294967295ll};
        int64_t x;
        if (vkind != 'n' || !integer || (v[0] == '-' && v[1] == '0') || !fast_int(&x, v, vn) || x < lo[base] ||
            x > hi[base])
            return 0;
        len = commy_type_size(type);
        if (base <= COMMY_T_I32) {
            int32_t y = (int32_t)x;
            memcpy(num, &y, len);
        } else {
            uint32_t y = (uint32_t)x;
            memcpy(num, &y, len);
        }
        break;
    }
    case COMMY_T_I64: case COMMY_T_U64: {
        int64_t si = 0;
        uint64_t ui = 0;
        if (vkind != 's' || !fast_dec64(v, vn, base == COMMY_T_I64, &si, &ui)) return 0;
        if (base == COMMY_T_I64) memcpy(num, &si, 8);
        else memcpy(num, &ui, 8);
        len = 8;
        break;
    }
    case COMMY_T_F32: case COMMY_T_F64: {
        double d;
        if (vkind == 'n') {
            char b[64];
            memcpy(b, v, vn);
            b[vn] = '\0';
            d = strtod(b, NULL); /* a token of JSON's grammar: strtod takes all of it, as in cJSON */
        } else if (vkind == 's' && FAST_IS(v, vn, "nan")) d = NAN;
        else if (vkind == 's' && FAST_IS(v, vn, "inf")) d = INFINITY;
        else if (vkind == 's' && FAST_IS(v, vn, "-inf")) d = -INFINITY;
        else if (vkind == 's' && FAST_IS(v, vn, "-0")) d = -0.0;
        else return 0;
        if (float_bytes(num, &len, base, d) != 0) return 0;
        break;
    }
    case COMMY_T_BOOL:
        if (vkind != 't' && vkind != 'f') return 0;
        num[0] = vkind == 't';
        len = 1;
        break;
    case COMMY_T_STR:
        if (vkind != 's') return 0;
        src = v;
        len = vn;
        break;
    case COMMY_T_BYTES: case COMMY_T_BLOB:
        if (vkind != 's' || commy_wire_base64_decode(&owned, &len, v, vn) != COMMY_OK) return 0;
        if (base == COMMY_T_BLOB && len != COMMY_TYPE_BLOB_SIZE(type)) {
            free(owned);
            return 0;
        }
        break;
    default:
        return 0;
    }
    if (!owned) {
        if (!(owned = malloc(len ? len : 1))) return 0;
        memcpy(owned, src, len);
    }
    out->type = type;
    out->data = owned;
    out->len = len;
    return 1;
}

/* A name member (service, var) as get_str and name_ok check it, into dst
 * (64 bytes). */
static int fast_name(char *dst, const char *t, size_t n, int root)
{
    /* 1: [A-Za-z0-9_.-], 2: ':' (root names only) */
    static const unsigned char ok[256] = {
        ['-'] = 1, ['.'] = 1, ['_'] = 1, [':'] = 2,
        ['0'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ['A'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ['a'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    };
    unsigned char allow = root ? 3 : 1;
    if (n == 0 || n > COMMY_WIRE_NAME_MAX || (t[0] == '.' && !root)) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(ok[(unsigned char)t[i]] & allow)) return 0;
    memcpy(dst, t, n);
    dst[n] = '\0';
    return 1;
}

static void request_clear(commy_wire_request *r)
{
    /* everything but the secret buffers (over 8 KiB, on every request's
     * path): those only need to read as empty strings until get_str fills one */
    memset(r, 0, offsetof(commy_wire_request, api_key));
    r->api_key[0] = r->token[0] = r->jwt[0] = '\0';
    memset(&r->kind, 0, sizeof *r - offsetof(commy_wire_request, kind));
}

int commy_wire_request_parse_fast(commy_wire_request *r, const char *frame, size_t len)
{
    request_clear(r);
    fast s = {frame, frame + len};
    const char *id = NULL, *v = NULL, *op = NULL, *service = NULL, *var = NULL, *index = NULL, *kind = NULL, *end = NULL;
    size_t idn = 0, vn = 0, opn = 0, servicen = 0, varn = 0, indexn = 0, kindn = 0, endn = 0;
    int id_int = 0, v_int = 0, index_int = 0, index_str = 0, v_num = 0;
    fast_ws(&s);
    if (s.p >= s.e || *s.p != '{') return 0;
    s.p++;
    for (int more = 1; more == 1;) {
        const char *k;
        size_t kn;
        if (!fast_key(&s, &k, &kn)) goto decline;
        if (FAST_IS(k, kn, "id")) {
            if (id || !fast_num(&s, &id, &idn, &id_int)) goto decline;
        } else if (FAST_IS(k, kn, "v")) {
            if (v || !fast_num(&s, &v, &vn, &v_int)) goto decline;
            v_num = 1;
        } else if (FAST_IS(k, kn, "op")) {
            if (op || !fast_str(&s, &op, &opn)) goto decline;
        } else if (FAST_IS(k, kn, "service")) {
            if (service || !fast_str(&s, &service, &servicen)) goto decline;
        } else if (FAST_IS(k, kn, "var")) {
            if (var || !fast_str(&s, &var, &varn)) goto decline;
        } else if (FAST_IS(k, kn, "kind")) {
            if (kind || !fast_str(&s, &kind, &kindn)) goto decline;
        } else if (FAST_IS(k, kn, "end")) {
            if (end || !fast_str(&s, &end, &endn)) goto decline;
        } else if (FAST_IS(k, kn, "index")) {
            if (index) goto decline;
            if (s.p < s.e && *s.p == '"') {
                if (!fast_str(&s, &index, &indexn)) goto decline;
                index_str = 1;
            } else if (!fast_num(&s, &index, &indexn, &index_int)) {
                goto decline;
            }
        } else if (FAST_IS(k, kn, "key")) {
            if (r->has_key || !fast_value(&s, &r->key)) goto decline;
            r->has_key = 1;
        } else if (FAST_IS(k, kn, "value")) {
            if (r->has_value || !fast_value(&s, &r->value)) goto decline;
            r->has_value = 1;
        } else {
            goto decline; /* other members, known or not: the cJSON path */
        }
        more = fast_next(&s);
        if (!more) goto decline;
    }
    fast_ws(&s);
    if (s.p != s.e) goto decline; /* (cJSON ignores what follows; the cJSON path decides) */
    if (!id || !fast_u53(&r->id, id, idn, id_int)) goto decline;
    if (!v_num || !FAST_IS(v, vn, "1")) goto decline;
    if (!op) goto decline;
    for (int i = 1; i < COMMY_WIRE_OP_COUNT_; i++)
        if (opn && op_names[i][0] == op[0] && strlen(op_names[i]) == opn && memcmp(op_names[i], op, opn) == 0) {
            r->op = (commy_wire_op)i;
            break;
        }
    switch (r->op) {
    case COMMY_WIRE_OP_NONE:            /* EUNKNOWNOP */
    case COMMY_WIRE_OP_AUTHENTICATE:    /* credentials */
    case COMMY_WIRE_OP_OPEN_SERVICE:    /* mode */
    case COMMY_WIRE_OP_REVOKE_CLIENT:   /* client_id */
    case COMMY_WIRE_OP_DECLARE:         /* types, flags */
    case COMMY_WIRE_OP_CAS:             /* 64-bit operands */
    case COMMY_WIRE_OP_FETCH_ADD:
        goto decline;
    default:
        break;
    }
    r->op_name = op_names[r->op];
    int needs_var = (r->op >= COMMY_WIRE_OP_GET && r->op <= COMMY_WIRE_OP_UNSUBSCRIBE) || r->op >= COMMY_WIRE_OP_DECLARE;
    int needs_service = (r->op >= COMMY_WIRE_OP_CREATE_SERVICE && r->op <= COMMY_WIRE_OP_UNSUBSCRIBE) || needs_var;
    if (service ? !fast_name(r->service, service, servicen, 0) : needs_service) goto decline;
    if (var ? !fast_name(r->var, var, varn, 1) : needs_var) goto decline;
    if (index) {
        int64_t si;
        if (index_str ? !fast_dec64(index, indexn, 0, &si, &r->index) : !fast_u53(&r->index, index, indexn, index_int))
            goto decline;
        r->has_index = 1;
    }
    if (kind) {
        char b[8];
        if (kindn >= sizeof b) goto decline;
        memcpy(b, kind, kindn);
        b[kindn] = '\0';
        if (!(r->kind = commy_wire_kind_parse(b))) goto decline;
    }
    if (end) {
        r->has_end = 1;
        if (FAST_IS(end, endn, "front")) r->front = 1;
        else if (!FAST_IS(end, endn, "back")) goto decline;
    }
    r->limit = 100;
    switch (r->op) {
    case COMMY_WIRE_OP_SET: case COMMY_WIRE_OP_PUSH: case COMMY_WIRE_OP_APPEND:
        if (!r->has_value) goto decline;
        break;
    case COMMY_WIRE_OP_INSERT:
        if (!r->has_value || !r->has_index) goto decline;
        break;
    case COMMY_WIRE_OP_ADD: case COMMY_WIRE_OP_CONTAINS:
        if (!r->has_key) goto decline;
        break;
    case COMMY_WIRE_OP_REMOVE:
        if (!r->has_key && !r->has_index) goto decline;
        break;
    default: break;
    }
    return 1;
decline:
    commy_wire_value_free(&r->key);
    commy_wire_value_free(&r->value);
    return 0;
}

#undef FAST_IS

int commy_wire_request_parse(commy_wire_request *r, commy_wire_fault *f, const char *frame, size_t len, size_t max_len)
{
    if (len <= max_len && commy_wire_request_parse_fast(r, frame, len)) {
        if (f) f->code = 0, f->has_id = 1, f->id = r->id, f->message[0] = '\0';
        return COMMY_OK;
    }
    return commy_wire_request_parse_json(r, f, frame, len, max_len);
}

int commy_wire_request_parse_json(commy_wire_request *r, commy_wire_fault *f, const char *frame, size_t len,
                                  size_t max_len)
{
    request_clear(r);
    if (f) f->code = f->has_id = 0, f->id = 0, f->message[0] = '\0';
    if (len > max_len) return fault(f, COMMY_WIRE_ETOOBIG, "the frame is %zu bytes; the limit is %zu", len, max_len);
    cJSON *root = cJSON_ParseWithLength(frame, len);
    if (!root) return fault(f, COMMY_WIRE_EPROTO, "the frame is not valid JSON");
    int rc;
    if (!cJSON_IsObject(root)) {
        rc = fault(f, COMMY_WIRE_EPROTO, "a frame must be a JSON object");
        goto out;
    }
    req_fields fl;
    index_fields(&fl, root);
    const cJSON *id = field(&fl, "id");
    if (!id || get_u64(&r->id, id, 0) != COMMY_OK) {
        rc = fault(f, COMMY_WIRE_EPROTO, "\"id\" must be an integer from 0 to 2^53-1");
        goto out;
    }
    if (f) f->has_id = 1, f->id = r->id;
    const cJSON *v = field(&fl, "v");
    if (!cJSON_IsNumber(v) || v->valuedouble != COMMY_WIRE_VERSION) {
        rc = fault(f, COMMY_WIRE_EPROTO, "\"v\" must be %d: this server speaks protocol version %d", COMMY_WIRE_VERSION,
                   COMMY_WIRE_VERSION);
        goto out;
    }
    const cJSON *op = field(&fl, "op");
    if (!cJSON_IsString(op)) {
        rc = fault(f, COMMY_EINVAL, "\"op\" must be a string");
        goto out;
    }
    for (int i = 1; i < COMMY_WIRE_OP_COUNT_ && r->op == COMMY_WIRE_OP_NONE; i++)
        if (strcmp(op_names[i], op->valuestring) == 0) r->op = (commy_wire_op)i;
    if (r->op == COMMY_WIRE_OP_NONE) {
        rc = fault(f, COMMY_WIRE_EUNKNOWNOP, "unknown operation '%.40s'", op->valuestring);
        goto out;
    }
    r->op_name = op_names[r->op];
    rc = parse_fields(r, f, &fl);
out:
    cJSON_Delete(root);
    if (rc) {
        uint64_t keep = r->id;
        commy_wire_request_free(r);
        memset(r, 0, sizeof *r);
        r->id = keep;
    }
    return rc;
}

void commy_wire_request_free(commy_wire_request *r)
{
    if (!r) return;
    commy_wire_value_free(&r->key);
    commy_wire_value_free(&r->value);
    commy_wire_value_free(&r->from);
}

/* ---- replies and pushes ---- */

int commy_wire_message_parse(commy_wire_message *m, commy_wire_fault *f, const char *frame, size_t len, size_t max_len)
{
    memset(m, 0, sizeof *m);
    if (f) memset(f, 0, sizeof *f);
    if (len > max_len) return fault(f, COMMY_WIRE_ETOOBIG, "the frame is %zu bytes; the limit is %zu", len, max_len);
    cJSON *root = cJSON_ParseWithLength(frame, len);
    if (!root) return fault(f, COMMY_WIRE_EPROTO, "the frame is not valid JSON");
    int rc = COMMY_WIRE_EPROTO;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(v) || v->valuedouble != COMMY_WIRE_VERSION) {
        fault(f, rc, "a frame must be a JSON object with \"v\": %d", COMMY_WIRE_VERSION);
        goto fail;
    }
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(root, "push");
    if (push) {
        if (!cJSON_IsString(push) || strlen(push->valuestring) >= sizeof m->push) {
            fault(f, rc, "\"push\" must be a short string");
            goto fail;
        }
        m->is_push = 1;
        strcpy(m->push, push->valuestring);
        m->body = root;
        m->root = root;
        return COMMY_OK;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (cJSON_IsNull(id)) m->has_id = 0;
    else if (id && get_u64(&m->id, id, 0) == COMMY_OK) m->has_id = 1;
    else {
        fault(f, rc, "a reply's \"id\" must be an integer or null");
        goto fail;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    if (!cJSON_IsBool(ok)) {
        fault(f, rc, "a reply needs \"ok\": true or false");
        goto fail;
    }
    m->ok = cJSON_IsTrue(ok);
    if (m->ok) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "result");
        if (!cJSON_IsObject(res)) {
            fault(f, rc, "a successful reply needs an object \"result\"");
            goto fail;
        }
        m->result = res;
    } else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        if (!cJSON_IsObject(err) || !cJSON_IsString(code) || !cJSON_IsString(msg) ||
            strlen(code->valuestring) >= sizeof m->error_name) {
            fault(f, rc, "a failed reply needs \"error\": {\"code\": string, \"message\": string}");
            goto fail;
        }
        strcpy(m->error_name, code->valuestring);
        m->error_code = commy_wire_code_from_name(code->valuestring);
        if (!m->error_code) m->error_code = COMMY_WIRE_EPROTO;
        m->error_message = msg->valuestring;
    }
    m->body = root;
    m->root = root;
    return COMMY_OK;
fail:
    cJSON_Delete(root);
    memset(m, 0, sizeof *m);
    return rc;
}

void commy_wire_message_free(commy_wire_message *m)
{
    if (!m) return;
    cJSON_Delete(m->root);
    memset(m, 0, sizeof *m);
}

static char *finish(cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return s;
}

char *commy_wire_request_build(uint64_t id, const char *op, cJSON *fields)
{
    cJSON *obj = fields ? fields : cJSON_CreateObject();
    if (!obj) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "v");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "op");
    if (!cJSON_AddNumberToObject(obj, "v", COMMY_WIRE_VERSION) || !cJSON_AddNumberToObject(obj, "id", (double)id) ||
        !cJSON_AddStringToObject(obj, "op", op)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return finish(obj);
}

#define WIRE_STR_(x) #x
#define WIRE_STR(x) WIRE_STR_(x)

size_t commy_wire_reply_ok_print(char *out, size_t cap, uint64_t id, const char *result, size_t rlen)
{
    /* the envelope by hand: it is on every request's path, and cJSON prints
     * each number with "%1.15g" and reads it back to check */
    static const char head[] = "{\"v\":" WIRE_STR(COMMY_WIRE_VERSION) ",\"id\":", mid[] = ",\"ok\":true,\"result\":";
    if (!result) result = "{}", rlen = 2;
    char digits[24], *d = digits + sizeof digits;
    do *--d = (char)('0' + id % 10); while ((id /= 10) != 0);
    size_t nd = (size_t)(digits + sizeof digits - d);
    if (rlen > cap || sizeof head - 1 + nd + sizeof mid - 1 + rlen + 2 > cap) return 0;
    char *o = out;
    memcpy(o, head, sizeof head - 1), o += sizeof head - 1;
    memcpy(o, d, nd), o += nd;
    memcpy(o, mid, sizeof mid - 1), o += sizeof mid - 1;
    memcpy(o, result, rlen), o += rlen;
    memcpy(o, "}", 2);
    return (size_t)(o + 1 - out);
}

char *commy_wire_reply_ok(uint64_t id, cJSON *result)
{
    char stack[256], *body = NULL;
    size_t n = 2;
    if (result) {
        body = cJSON_PrintPreallocated(result, stack, sizeof stack, 0) ? stack : cJSON_PrintUnformatted(result);
        cJSON_Delete(result);
        if (!body) return NULL;
        n = strlen(body);
    }
    size_t cap = n + 64;
    char *out = malloc(cap);
    if (out && !commy_wire_reply_ok_print(out, cap, id, body, n)) {
        free(out);
        out = NULL;
    }
    if (body != stack) free(body);
    return out;
}

char *commy_wire_reply_error(int has_id, uint64_t id, int code, const char *message)
{
    cJSON *obj = cJSON_CreateObject(), *err = cJSON_CreateObject();
    if (!obj || !err) {
        cJSON_Delete(obj);
        cJSON_Delete(err);
        return NULL;
    }
    cJSON_AddNumberToObject(obj, "v", COMMY_WIRE_VERSION);
    if (has_id) cJSON_AddNumberToObject(obj, "id", (double)id);
    else cJSON_AddNullToObject(obj, "id");
    cJSON_AddFalseToObject(obj, "ok");
    cJSON_AddStringToObject(err, "code", commy_wire_code_name(code));
    cJSON_AddStringToObject(err, "message", message ? message : "");
    cJSON_AddItemToObject(obj, "error", err);
    return finish(obj);
}

char *commy_wire_push_build(const char *kind, cJSON *fields)
{
    cJSON *obj = fields ? fields : cJSON_CreateObject();
    if (!obj) return NULL;
    cJSON *v = cJSON_CreateNumber(COMMY_WIRE_VERSION), *p = cJSON_CreateString(kind);
    if (!v || !p) {
        cJSON_Delete(v);
        cJSON_Delete(p);
        cJSON_Delete(obj);
        return NULL;
    }
    /* v and push first so a reader sees what the frame is at a glance */
    cJSON *out = cJSON_CreateObject();
    if (!out) {
        cJSON_Delete(v);
        cJSON_Delete(p);
        cJSON_Delete(obj);
        return NULL;
    }
    cJSON_AddItemToObject(out, "v", v);
    cJSON_AddItemToObject(out, "push", p);
    cJSON *child = obj->child;
    while (child) {
        cJSON *next = child->next;
        cJSON_DetachItemViaPointer(obj, child);
        if (strcmp(child->string ? child->string : "", "v") && strcmp(child->string ? child->string : "", "push"))
            cJSON_AddItemToObject(out, child->string, child);
        else
            cJSON_Delete(child);
        child = next;
    }
    cJSON_Delete(obj);
    return finish(out);
}
