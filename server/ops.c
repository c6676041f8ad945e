/* Remote operations, applied with the core's public C API: the server is just
 * another process attached to the service file. */
#include "ops.h"
#include "../core/internal.h" /* commy__alloc_retire: the server's side of a rotation */

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    unsigned char *p;
    size_t cap, len;
    int fixed; /* p is the caller's (stack) buffer: never realloc'd nor freed here */
} buf;

static int buf_grow(buf *b, size_t need)
{
    if (need <= b->cap) return 0;
    unsigned char *p = b->fixed ? malloc(need) : realloc(b->p, need);
    b->fixed = 0; /* the contents need not survive a grow: the getter runs again */
    if (!p) return -1;
    b->p = p;
    b->cap = need;
    return 0;
}

/* Runs a getter, growing the buffer when the core says ETOOSMALL. */
#define WITH_BUF(b, rc, expr)                                                                   \
    do {                                                                                        \
        for (int tries_ = 0; tries_ < 4; tries_++) {                                            \
            rc = (expr);                                                                        \
            if (rc != COMMY_ETOOSMALL) break;                                                   \
            if (buf_grow(&(b), (b).len + 1)) { rc = COMMY_ENOMEM; break; }                      \
        }                                                                                       \
    } while (0)

#define WITH_BUF2(b1, b2, rc, expr)                                                             \
    do {                                                                                        \
        for (int tries_ = 0; tries_ < 4; tries_++) {                                            \
            rc = (expr);                                                                        \
            if (rc != COMMY_ETOOSMALL) break;                                                   \
            if (buf_grow(&(b1), (b1).len + 1) || buf_grow(&(b2), (b2).len + 1)) { rc = COMMY_ENOMEM; break; } \
        }                                                                                       \
    } while (0)

static int say(char *msg, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return code;
}

static int core_fail(char *msg, size_t cap, int rc)
{
    return say(msg, cap, rc, "%s", commy_error_last()->code == rc && commy_error_last()->message[0]
                                       ? commy_error_last()->message
                                       : commy_strerror(rc));
}

static int open_kind(srv_var *v, commy_alloc *a, const char *name, uint32_t kind, commy_type kt, commy_type vt,
                     uint32_t flags)
{
    int rc;
    v->kind = kind;
    switch (kind) {
    case COMMY_KIND_BOX: rc = commy_box_open((commy_box **)&v->h, a, name, kt, flags); break;
    case COMMY_KIND_VEC: rc = commy_vec_open((commy_vec **)&v->h, a, name, kt, flags); break;
    case COMMY_KIND_STR: rc = commy_str_open((commy_str **)&v->h, a, name, flags); break;
    case COMMY_KIND_DEQUE: rc = commy_deque_open((commy_deque **)&v->h, a, name, kt, flags); break;
    case COMMY_KIND_MAP: rc = commy_map_open((commy_map **)&v->h, a, name, kt, vt, flags); break;
    case COMMY_KIND_SET: rc = commy_set_open((commy_set **)&v->h, a, name, kt, flags); break;
    case COMMY_KIND_OMAP: rc = commy_omap_open((commy_omap **)&v->h, a, name, kt, vt, flags); break;
    case COMMY_KIND_OSET: rc = commy_oset_open((commy_oset **)&v->h, a, name, kt, flags); break;
    default: return COMMY_EINVAL;
    }
    if (rc) {
        v->h = NULL;
        return rc;
    }
    commy_root_info info;
    if ((rc = commy_root_find(&info, a, name)) != COMMY_OK) {
        srv_var_close(v);
        return rc;
    }
    v->kt = kind == COMMY_KIND_STR ? COMMY_T_STR : info.key_type;
    v->vt = info.value_type;
    return COMMY_OK;
}

int srv_var_open(srv_var *out, commy_alloc *a, const char *name)
{
    memset(out, 0, sizeof *out);
    commy_root_info info;
    int rc = commy_root_find(&info, a, name);
    if (rc) return rc;
    return open_kind(out, a, name, info.kind, COMMY_T_ANY, COMMY_T_ANY, COMMY_OPEN_EXISTING);
}

int srv_var_open_kind(srv_var *out, commy_alloc *a, const char *name, uint32_t kind, commy_type kt, commy_type vt)
{
    memset(out, 0, sizeof *out);
    return open_kind(out, a, name, kind, kt, vt, 0);
}

void srv_var_close(srv_var *v)
{
    if (!v || !v->h) return;
    switch (v->kind) {
    case COMMY_KIND_BOX: commy_box_close(v->h); break;
    case COMMY_KIND_VEC: commy_vec_close(v->h); break;
    case COMMY_KIND_STR: commy_str_close(v->h); break;
    case COMMY_KIND_DEQUE: commy_deque_close(v->h); break;
    case COMMY_KIND_MAP: commy_map_close(v->h); break;
    case COMMY_KIND_SET: commy_set_close(v->h); break;
    case COMMY_KIND_OMAP: commy_omap_close(v->h); break;
    case COMMY_KIND_OSET: commy_oset_close(v->h); break;
    }
    v->h = NULL;
}

int srv_var_version(uint32_t *out, srv_var *v)
{
    switch (v->kind) {
    case COMMY_KIND_BOX: return commy_box_version(out, v->h);
    case COMMY_KIND_VEC: return commy_vec_version(out, v->h);
    case COMMY_KIND_STR: return commy_str_version(out, v->h);
    case COMMY_KIND_DEQUE: return commy_deque_version(out, v->h);
    case COMMY_KIND_MAP: return commy_map_version(out, v->h);
    case COMMY_KIND_SET: return commy_set_version(out, v->h);
    case COMMY_KIND_OMAP: return commy_omap_version(out, v->h);
    case COMMY_KIND_OSET: return commy_oset_version(out, v->h);
    }
    return COMMY_EINVAL;
}

int srv_var_wait(srv_var *v, uint32_t seen, int32_t timeout_ms)
{
    switch (v->kind) {
    case COMMY_KIND_BOX: return commy_box_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_VEC: return commy_vec_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_STR: return commy_str_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_DEQUE: return commy_deque_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_MAP: return commy_map_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_SET: return commy_set_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_OMAP: return commy_omap_wait(v->h, seen, timeout_ms);
    case COMMY_KIND_OSET: return commy_oset_wait(v->h, seen, timeout_ms);
    }
    return COMMY_EINVAL;
}

static int var_len(uint64_t *out, srv_var *v)
{
    switch (v->kind) {
    case COMMY_KIND_BOX: *out = 1; return COMMY_OK;
    case COMMY_KIND_VEC: return commy_vec_len(out, v->h);
    case COMMY_KIND_STR: return commy_str_len(out, v->h);
    case COMMY_KIND_DEQUE: return commy_deque_len(out, v->h);
    case COMMY_KIND_MAP: return commy_map_len(out, v->h);
    case COMMY_KIND_SET: return commy_set_len(out, v->h);
    case COMMY_KIND_OMAP: return commy_omap_len(out, v->h);
    case COMMY_KIND_OSET: return commy_oset_len(out, v->h);
    }
    return COMMY_EINVAL;
}

static cJSON *len_json(uint64_t n)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, n);
    return cJSON_CreateString(s);
}

static int add_value(cJSON *obj, const char *key, commy_type t, const buf *b)
{
    cJSON *j = commy_wire_value_to_json(t, b->p, b->len);
    if (!j) return COMMY_ENOTSUP;
    cJSON_AddItemToObject(obj, key, j);
    return COMMY_OK;
}

int srv_var_snapshot(cJSON *fields, srv_var *v)
{
    buf b = {0};
    int rc;
    if (buf_grow(&b, 256)) return COMMY_ENOMEM;
    if (v->kind == COMMY_KIND_BOX) {
        WITH_BUF(b, rc, commy_box_get(v->h, b.p, b.cap, &b.len));
        if (!rc) rc = add_value(fields, "value", v->kt, &b);
    } else if (v->kind == COMMY_KIND_STR) {
        WITH_BUF(b, rc, commy_str_get(v->h, (char *)b.p, b.cap, &b.len));
        if (!rc) rc = add_value(fields, "value", COMMY_T_STR, &b);
    } else {
        uint64_t n;
        rc = var_len(&n, v);
        if (!rc) cJSON_AddItemToObject(fields, "len", len_json(n));
    }
    free(b.p);
    return rc;
}

int srv_ops_writes(commy_wire_op op)
{
    return op == COMMY_WIRE_OP_SET || op == COMMY_WIRE_OP_PUSH || op == COMMY_WIRE_OP_POP || op == COMMY_WIRE_OP_ADD ||
           op == COMMY_WIRE_OP_REMOVE || op == COMMY_WIRE_OP_CLEAR || op == COMMY_WIRE_OP_INSERT ||
           op == COMMY_WIRE_OP_APPEND || op == COMMY_WIRE_OP_CAS || op == COMMY_WIRE_OP_FETCH_ADD;
}

int srv_ops_request_writes(commy_alloc *a, const commy_wire_request *r)
{
    if (r->op != COMMY_WIRE_OP_DECLARE) return srv_ops_writes(r->op);
    /* declaring an existing variable only reads; creating one writes */
    commy_root_info info;
    return !r->existing && commy_root_find(&info, a, r->var) == COMMY_ENOTFOUND;
}

static int type_json(cJSON *obj, const char *key, commy_type t)
{
    char name[24];
    return cJSON_AddStringToObject(obj, key, commy_type_name(name, sizeof name, t)) ? COMMY_OK : COMMY_ENOMEM;
}

/* declare: open (or create) a variable with the core's own kind and type
 * check, so a remote commy_<kind>_open fails exactly as a local one. */
static int declare(cJSON **result, commy_alloc *a, const commy_wire_request *r, char *msg, size_t cap)
{
    srv_var v;
    uint32_t flags = r->existing ? COMMY_OPEN_EXISTING : r->excl ? COMMY_OPEN_EXCL : 0;
    commy_type kt = r->kind == COMMY_KIND_STR ? COMMY_T_ANY : r->has_key_type ? r->key_type : COMMY_T_ANY;
    commy_type vt = r->has_value_type ? r->value_type : COMMY_T_ANY;
    int rc = open_kind(&v, a, r->var, r->kind, kt, vt, flags);
    if (rc) return core_fail(msg, cap, rc);
    uint32_t ver = 0;
    cJSON *res = cJSON_CreateObject();
    rc = res ? srv_var_version(&ver, &v) : COMMY_ENOMEM;
    if (!rc && !cJSON_AddStringToObject(res, "kind", commy_kind_name(v.kind))) rc = COMMY_ENOMEM;
    if (!rc && v.kind != COMMY_KIND_STR) rc = type_json(res, "key_type", v.kt);
    if (!rc && (v.kind == COMMY_KIND_MAP || v.kind == COMMY_KIND_OMAP)) rc = type_json(res, "value_type", v.vt);
    if (!rc && !cJSON_AddNumberToObject(res, "version", ver)) rc = COMMY_ENOMEM;
    srv_var_close(&v);
    if (rc) {
        cJSON_Delete(res);
        return say(msg, cap, rc, "out of memory");
    }
    *result = res;
    return COMMY_OK;
}

static cJSON *i64_json(int64_t x)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRId64, x);
    return cJSON_CreateString(s);
}

static int check_type(const commy_wire_value *val, commy_type want, const char *what, char *msg, size_t cap)
{
    if (val->type == want) return COMMY_OK;
    char a[24], b[24];
    return say(msg, cap, COMMY_ETYPE, "the %s is %s but the variable holds %s", what,
               commy_type_name(a, sizeof a, val->type), commy_type_name(b, sizeof b, want));
}

/* Opens the variable the request names, creating it when the request is a
 * write that names a kind. */
static int open_for(srv_var *v, commy_alloc *a, const commy_wire_request *r, char *msg, size_t cap)
{
    int rc = srv_var_open(v, a, r->var);
    if (rc != COMMY_ENOTFOUND) return rc ? core_fail(msg, cap, rc) : COMMY_OK;
    if (!srv_ops_writes(r->op) || !r->kind || r->op == COMMY_WIRE_OP_POP || r->op == COMMY_WIRE_OP_REMOVE)
        return say(msg, cap, COMMY_ENOTFOUND, "variable '%s' not found%s", r->var,
                   srv_ops_writes(r->op) ? "; name its \"kind\" to create it" : "");
    commy_type kt = COMMY_T_ANY, vt = COMMY_T_ANY;
    switch (r->kind) {
    case COMMY_KIND_BOX: case COMMY_KIND_VEC: case COMMY_KIND_DEQUE:
        if (!r->has_value) return say(msg, cap, COMMY_EINVAL, "creating a %s needs a typed \"value\"", r->op_name);
        kt = r->value.type;
        break;
    case COMMY_KIND_STR: break;
    case COMMY_KIND_MAP: case COMMY_KIND_OMAP:
        if (!r->has_key || !r->has_value) return say(msg, cap, COMMY_EINVAL, "creating a map needs a typed \"key\" and \"value\"");
        kt = r->key.type;
        vt = r->value.type;
        break;
    case COMMY_KIND_SET: case COMMY_KIND_OSET:
        if (!r->has_key) return say(msg, cap, COMMY_EINVAL, "creating a set needs a typed \"key\"");
        kt = r->key.type;
        break;
    }
    rc = open_kind(v, a, r->var, r->kind, kt, vt, 0);
    return rc ? core_fail(msg, cap, rc) : COMMY_OK;
}

static int need(int present, const char *what, const commy_wire_request *r, const srv_var *v, char *msg, size_t cap)
{
    return present ? COMMY_OK
                   : say(msg, cap, COMMY_EINVAL, "%s on a %s needs %s", r->op_name, commy_kind_name(v->kind), what);
}

static int range(cJSON *res, srv_var *v, const commy_wire_request *r, char *msg, size_t cap)
{
    int ordered = v->kind == COMMY_KIND_OMAP || v->kind == COMMY_KIND_OSET;
    int hashed = v->kind == COMMY_KIND_MAP || v->kind == COMMY_KIND_SET;
    int pairs = v->kind == COMMY_KIND_OMAP || v->kind == COMMY_KIND_MAP;
    if (!ordered && !hashed)
        return say(msg, cap, COMMY_ENOTSUP, "range works on maps and sets, not %s", commy_kind_name(v->kind));
    int rc;
    if (r->has_from && !ordered) return say(msg, cap, COMMY_EINVAL, "\"from\" needs an ordered kind (omap, oset)");
    if (r->has_from && (rc = check_type(&r->from, v->kt, "\"from\" key", msg, cap))) return rc;
    commy_cursor c = COMMY_CURSOR_INIT;
    const void *from = r->has_from ? r->from.data : NULL;
    size_t flen = r->has_from ? r->from.len : 0;
    uint32_t ver = 0;
    if ((rc = srv_var_version(&ver, v))) return core_fail(msg, cap, rc);
    cJSON_AddNumberToObject(res, "version", ver);
    rc = v->kind == COMMY_KIND_OMAP ? commy_omap_seek(&c, v->h, from, flen, 1)
       : v->kind == COMMY_KIND_OSET ? commy_oset_seek(&c, v->h, from, flen, 1) : COMMY_OK;
    if (rc) return core_fail(msg, cap, rc);
    uint64_t skip = r->skip;
    cJSON *entries = cJSON_AddArrayToObject(res, "entries");
    buf k = {0}, val = {0};
    if (buf_grow(&k, 256) || buf_grow(&val, 256)) rc = COMMY_ENOMEM;
    uint32_t n = 0;
    int more = 0;
    while (rc == COMMY_OK) {
        if (v->kind == COMMY_KIND_OMAP)
            WITH_BUF2(k, val, rc, commy_omap_next(v->h, &c, k.p, k.cap, &k.len, val.p, val.cap, &val.len));
        else if (v->kind == COMMY_KIND_MAP)
            WITH_BUF2(k, val, rc, commy_map_next(v->h, &c, k.p, k.cap, &k.len, val.p, val.cap, &val.len));
        else if (v->kind == COMMY_KIND_SET)
            WITH_BUF(k, rc, commy_set_next(v->h, &c, k.p, k.cap, &k.len));
        else
            WITH_BUF(k, rc, commy_oset_next(v->h, &c, k.p, k.cap, &k.len));
        if (rc != COMMY_ROW) break;
        if (skip) {
            skip--;
            rc = COMMY_OK;
            continue;
        }
        if (n == r->limit) {
            more = 1;
            rc = COMMY_DONE;
            break;
        }
        cJSON *kj = commy_wire_value_to_json(v->kt, k.p, k.len);
        if (pairs) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, kj);
            cJSON_AddItemToArray(pair, commy_wire_value_to_json(v->vt, val.p, val.len));
            cJSON_AddItemToArray(entries, pair);
        } else {
            cJSON_AddItemToArray(entries, kj);
        }
        n++;
        rc = COMMY_OK;
    }
    free(k.p);
    free(val.p);
    if (rc < 0) return core_fail(msg, cap, rc);
    cJSON_AddBoolToObject(res, "more", more);
    return COMMY_OK;
}

static int apply_on(cJSON **result, srv_text *text, srv_var *vp, const commy_wire_request *r, char *msg, size_t cap);

int srv_ops_apply(cJSON **result, commy_alloc *a, const commy_wire_request *r, char *msg, size_t cap)
{
    *result = NULL;
    if (r->op == COMMY_WIRE_OP_DECLARE) return declare(result, a, r, msg, cap);
    srv_var v;
    int rc = open_for(&v, a, r, msg, cap);
    if (rc) return rc;
    rc = apply_on(result, NULL, &v, r, msg, cap);
    srv_var_close(&v);
    return rc;
}

/* ---- the open variables of a service, kept between requests ---- */

/* Direct-mapped by name: a variable is never deleted and never changes kind
 * or types, so a handle stays right for as long as its file is the service's
 * (rotate and the service's end flush the cache). */
#define VCACHE_SLOTS 256

struct srv_var_cache {
    commy_alloc *alloc;
    struct {
        char name[COMMY_WIRE_NAME_MAX + 1];
        srv_var v;
    } slot[VCACHE_SLOTS];
};

void srv_var_cache_flush(srv_var_cache **cache)
{
    srv_var_cache *c = *cache;
    if (!c) return;
    for (int i = 0; i < VCACHE_SLOTS; i++) srv_var_close(&c->slot[i].v);
    free(c);
    *cache = NULL;
}

int srv_ops_apply_cached(cJSON **result, srv_text *text, srv_var_cache **cache, commy_alloc *a,
                         const commy_wire_request *r, char *msg, size_t cap)
{
    *result = NULL;
    if (text) text->len = 0;
    if (r->op == COMMY_WIRE_OP_DECLARE) return declare(result, a, r, msg, cap);
    if (*cache && (*cache)->alloc != a) srv_var_cache_flush(cache);
    if (!*cache) {
        if (!(*cache = calloc(1, sizeof **cache))) return srv_ops_apply(result, a, r, msg, cap);
        (*cache)->alloc = a;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)r->var; *p; p++) h = (h ^ *p) * 16777619u;
    srv_var_cache *c = *cache;
    int i = (int)(h % VCACHE_SLOTS);
    uint32_t ver;
    /* a variable removed (commy_root_remove by a local client) since it was
     * opened: the request goes to whatever the name means now, as uncached
     * (a removal after this check fails the op as it would a fresh handle) */
    if (c->slot[i].v.h && strcmp(c->slot[i].name, r->var) == 0 &&
        srv_var_version(&ver, &c->slot[i].v) != COMMY_ENOTFOUND)
        return apply_on(result, text, &c->slot[i].v, r, msg, cap);
    srv_var v;
    int rc = open_for(&v, a, r, msg, cap);
    if (rc) return rc;
    srv_var_close(&c->slot[i].v);
    c->slot[i].v = v;
    snprintf(c->slot[i].name, sizeof c->slot[i].name, "%s", r->var);
    return apply_on(result, text, &c->slot[i].v, r, msg, cap);
}

/* The result object, made when the first member goes in (NULL stands for {}). */
static cJSON *obj(cJSON **res)
{
    if (!*res) *res = cJSON_CreateObject();
    return *res;
}

/* A result of one typed value: printed straight into text as
 * {"value":...} when the caller gave room for it, else as a cJSON member. */
static int put_value(cJSON **res, srv_text *text, commy_type t, const buf *b)
{
    static const char head[] = "{\"value\":";
    if (text && text->cap > sizeof head + 1) {
        size_t n = commy_wire_value_print(text->p + sizeof head - 1, text->cap - sizeof head, t, b->p, b->len);
        if (n) {
            memcpy(text->p, head, sizeof head - 1);
            memcpy(text->p + sizeof head - 1 + n, "}", 2);
            text->len = sizeof head + n;
            return COMMY_OK;
        }
    }
    return obj(res) ? add_value(*res, "value", t, b) : COMMY_ENOMEM;
}

/* Applies r to the open variable *vp (left open). A result is *result, or
 * text (when given and text->len ends up > 0). */
static int apply_on(cJSON **result, srv_text *text, srv_var *vp, const commy_wire_request *r, char *msg, size_t cap)
{
    srv_var v = *vp;
    int rc;
    cJSON *res = NULL;
    unsigned char first[256];
    buf b = {first, sizeof first, 0, 0};
    uint32_t kind = v.kind;
    int keyed = kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP || kind == COMMY_KIND_SET || kind == COMMY_KIND_OSET;
    int indexed = kind == COMMY_KIND_VEC || kind == COMMY_KIND_DEQUE;
    commy_type vtype = (kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP) ? v.vt : v.kt;
    if (r->has_key && keyed && (rc = check_type(&r->key, v.kt, "key", msg, cap))) goto out;
    if (r->has_value && !keyed && (rc = check_type(&r->value, vtype, "value", msg, cap))) goto out;
    if (r->has_value && (kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP) &&
        (rc = check_type(&r->value, vtype, "value", msg, cap)))
        goto out;
    const void *key = r->key.data;
    size_t klen = r->key.len;
    switch (r->op) {
    case COMMY_WIRE_OP_GET:
        if (kind == COMMY_KIND_BOX) WITH_BUF(b, rc, commy_box_get(v.h, b.p, b.cap, &b.len));
        else if (kind == COMMY_KIND_STR) WITH_BUF(b, rc, commy_str_get(v.h, (char *)b.p, b.cap, &b.len));
        else if (kind == COMMY_KIND_DEQUE && !r->has_index && r->has_end) {
            if (r->front) WITH_BUF(b, rc, commy_deque_front(v.h, b.p, b.cap, &b.len));
            else WITH_BUF(b, rc, commy_deque_back(v.h, b.p, b.cap, &b.len));
        } else if (indexed) {
            if ((rc = need(r->has_index, "an \"index\"", r, &v, msg, cap))) goto out;
            if (kind == COMMY_KIND_VEC) WITH_BUF(b, rc, commy_vec_get(v.h, r->index, b.p, b.cap, &b.len));
            else WITH_BUF(b, rc, commy_deque_get(v.h, r->index, b.p, b.cap, &b.len));
        } else if (kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP) {
            if ((rc = need(r->has_key, "a typed \"key\"", r, &v, msg, cap))) goto out;
            if (kind == COMMY_KIND_MAP) WITH_BUF(b, rc, commy_map_get(v.h, key, klen, b.p, b.cap, &b.len));
            else WITH_BUF(b, rc, commy_omap_get(v.h, key, klen, b.p, b.cap, &b.len));
        } else {
            rc = say(msg, cap, COMMY_ENOTSUP, "get does not apply to a %s: use contains or range", commy_kind_name(kind));
            goto out;
        }
        if (rc == COMMY_OK && (rc = put_value(&res, text, vtype, &b)))
            say(msg, cap, rc, "the value cannot be carried as JSON (a str with a NUL byte)");
        break;
    case COMMY_WIRE_OP_SET:
        if (kind == COMMY_KIND_BOX) rc = commy_box_set(v.h, r->value.data, r->value.len);
        else if (kind == COMMY_KIND_STR) rc = commy_str_set(v.h, (const char *)r->value.data, r->value.len);
        else if (indexed) {
            if ((rc = need(r->has_index, "an \"index\"", r, &v, msg, cap))) goto out;
            rc = kind == COMMY_KIND_VEC ? commy_vec_set(v.h, r->index, r->value.data, r->value.len)
                                        : commy_deque_set(v.h, r->index, r->value.data, r->value.len);
        } else if (kind == COMMY_KIND_MAP || kind == COMMY_KIND_OMAP) {
            if ((rc = need(r->has_key, "a typed \"key\"", r, &v, msg, cap))) goto out;
            rc = kind == COMMY_KIND_MAP ? commy_map_put(v.h, key, klen, r->value.data, r->value.len)
                                        : commy_omap_put(v.h, key, klen, r->value.data, r->value.len);
        } else {
            rc = say(msg, cap, COMMY_ENOTSUP, "set does not apply to a %s: use add", commy_kind_name(kind));
            goto out;
        }
        break;
    case COMMY_WIRE_OP_PUSH:
        if (kind == COMMY_KIND_VEC) {
            if (r->front) { rc = say(msg, cap, COMMY_ENOTSUP, "a vec pushes at the back only"); goto out; }
            rc = commy_vec_push(v.h, r->value.data, r->value.len);
        } else if (kind == COMMY_KIND_DEQUE) {
            rc = r->front ? commy_deque_push_front(v.h, r->value.data, r->value.len)
                          : commy_deque_push_back(v.h, r->value.data, r->value.len);
        } else {
            rc = say(msg, cap, COMMY_ENOTSUP, "push applies to vec and deque, not %s", commy_kind_name(kind));
            goto out;
        }
        break;
    case COMMY_WIRE_OP_POP:
        if (kind == COMMY_KIND_VEC && !r->front) WITH_BUF(b, rc, commy_vec_pop(v.h, b.p, b.cap, &b.len));
        else if (kind == COMMY_KIND_DEQUE && r->front) WITH_BUF(b, rc, commy_deque_pop_front(v.h, b.p, b.cap, &b.len));
        else if (kind == COMMY_KIND_DEQUE) WITH_BUF(b, rc, commy_deque_pop_back(v.h, b.p, b.cap, &b.len));
        else {
            rc = say(msg, cap, COMMY_ENOTSUP, "pop applies to vec (back) and deque, not %s", commy_kind_name(kind));
            goto out;
        }
        if (rc == COMMY_OK) rc = put_value(&res, text, vtype, &b);
        break;
    case COMMY_WIRE_OP_ADD: {
        int added = 0;
        if (kind == COMMY_KIND_SET) rc = commy_set_add(&added, v.h, key, klen);
        else if (kind == COMMY_KIND_OSET) rc = commy_oset_add(&added, v.h, key, klen);
        else { rc = say(msg, cap, COMMY_ENOTSUP, "add applies to set and oset, not %s", commy_kind_name(kind)); goto out; }
        if (!rc) cJSON_AddBoolToObject(obj(&res), "added", added);
        break;
    }
    case COMMY_WIRE_OP_REMOVE:
        if (kind == COMMY_KIND_VEC) {
            if ((rc = need(r->has_index, "an \"index\"", r, &v, msg, cap))) goto out;
            rc = commy_vec_remove(v.h, r->index);
        } else if (keyed) {
            if ((rc = need(r->has_key, "a typed \"key\"", r, &v, msg, cap))) goto out;
            rc = kind == COMMY_KIND_MAP ? commy_map_remove(v.h, key, klen)
               : kind == COMMY_KIND_OMAP ? commy_omap_remove(v.h, key, klen)
               : kind == COMMY_KIND_SET ? commy_set_remove(v.h, key, klen)
                                        : commy_oset_remove(v.h, key, klen);
        } else {
            rc = say(msg, cap, COMMY_ENOTSUP, "remove does not apply to a %s", commy_kind_name(kind));
            goto out;
        }
        break;
    case COMMY_WIRE_OP_CONTAINS: {
        int present = 0;
        if (!keyed) { rc = say(msg, cap, COMMY_ENOTSUP, "contains applies to maps and sets, not %s", commy_kind_name(kind)); goto out; }
        rc = kind == COMMY_KIND_MAP ? commy_map_contains(&present, v.h, key, klen)
           : kind == COMMY_KIND_OMAP ? commy_omap_contains(&present, v.h, key, klen)
           : kind == COMMY_KIND_SET ? commy_set_contains(&present, v.h, key, klen)
                                    : commy_oset_contains(&present, v.h, key, klen);
        if (!rc) cJSON_AddBoolToObject(obj(&res), "present", present);
        break;
    }
    case COMMY_WIRE_OP_LEN: {
        uint64_t n = 0;
        rc = var_len(&n, &v);
        if (!rc) {
            cJSON_AddItemToObject(obj(&res), "len", len_json(n));
            cJSON_AddStringToObject(res, "kind", commy_kind_name(kind));
        }
        break;
    }
    case COMMY_WIRE_OP_RANGE:
        rc = obj(&res) ? range(res, &v, r, msg, cap) : say(msg, cap, COMMY_ENOMEM, "out of memory");
        goto out;
    case COMMY_WIRE_OP_CLEAR:
        switch (kind) {
        case COMMY_KIND_VEC: rc = commy_vec_clear(v.h); break;
        case COMMY_KIND_STR: rc = commy_str_clear(v.h); break;
        case COMMY_KIND_DEQUE: rc = commy_deque_clear(v.h); break;
        case COMMY_KIND_MAP: rc = commy_map_clear(v.h); break;
        case COMMY_KIND_SET: rc = commy_set_clear(v.h); break;
        case COMMY_KIND_OMAP: rc = commy_omap_clear(v.h); break;
        case COMMY_KIND_OSET: rc = commy_oset_clear(v.h); break;
        default: rc = say(msg, cap, COMMY_ENOTSUP, "clear does not apply to a box: set it"); goto out;
        }
        break;
    case COMMY_WIRE_OP_INSERT:
        if (kind != COMMY_KIND_VEC) { rc = say(msg, cap, COMMY_ENOTSUP, "insert applies to vec, not %s", commy_kind_name(kind)); goto out; }
        rc = commy_vec_insert(v.h, r->index, r->value.data, r->value.len);
        break;
    case COMMY_WIRE_OP_APPEND:
        if (kind != COMMY_KIND_STR) { rc = say(msg, cap, COMMY_ENOTSUP, "append applies to str, not %s", commy_kind_name(kind)); goto out; }
        rc = commy_str_append(v.h, (const char *)r->value.data, r->value.len);
        break;
    case COMMY_WIRE_OP_CAS: case COMMY_WIRE_OP_FETCH_ADD: {
        if (kind != COMMY_KIND_BOX) { rc = say(msg, cap, COMMY_ENOTSUP, "%s applies to an integer box, not %s", r->op_name, commy_kind_name(kind)); goto out; }
        int64_t old = 0;
        rc = r->op == COMMY_WIRE_OP_CAS ? commy_box_cas(&old, v.h, r->expected, r->desired)
                                        : commy_box_fetch_add(&old, v.h, r->delta);
        if (!rc) cJSON_AddItemToObject(obj(&res), "old", i64_json(old));
        break;
    }
    default:
        rc = say(msg, cap, COMMY_EINVAL, "%s is not a variable operation", r->op_name);
        goto out;
    }
    if (rc) core_fail(msg, cap, rc);
out:
    if (b.p != first) free(b.p);
    if (rc) cJSON_Delete(res);
    else *result = res;
    return rc;
}

/* ---- copying a whole service, root by root ---- */

static int copy_root(commy_alloc *dst, commy_alloc *src, const commy_root_info *info)
{
    srv_var s, d;
    int rc = open_kind(&s, src, info->name, info->kind, COMMY_T_ANY, COMMY_T_ANY, COMMY_OPEN_EXISTING);
    if (rc) return rc;
    rc = open_kind(&d, dst, info->name, info->kind, info->key_type, info->value_type, COMMY_OPEN_EXCL);
    if (rc) {
        srv_var_close(&s);
        return rc;
    }
    buf k = {0}, v = {0};
    if (buf_grow(&k, 256) || buf_grow(&v, 256)) rc = COMMY_ENOMEM;
    commy_cursor c = COMMY_CURSOR_INIT;
    uint64_t n = 0;
    switch (rc ? 0 : info->kind) {
    case COMMY_KIND_BOX:
        WITH_BUF(v, rc, commy_box_get(s.h, v.p, v.cap, &v.len));
        if (!rc) rc = commy_box_set(d.h, v.p, v.len);
        break;
    case COMMY_KIND_STR:
        WITH_BUF(v, rc, commy_str_get(s.h, (char *)v.p, v.cap, &v.len));
        if (!rc) rc = commy_str_set(d.h, (const char *)v.p, v.len);
        break;
    case COMMY_KIND_VEC:
        rc = commy_vec_len(&n, s.h);
        for (uint64_t i = 0; !rc && i < n; i++) {
            WITH_BUF(v, rc, commy_vec_get(s.h, i, v.p, v.cap, &v.len));
            if (!rc) rc = commy_vec_push(d.h, v.p, v.len);
        }
        break;
    case COMMY_KIND_DEQUE:
        rc = commy_deque_len(&n, s.h);
        for (uint64_t i = 0; !rc && i < n; i++) {
            WITH_BUF(v, rc, commy_deque_get(s.h, i, v.p, v.cap, &v.len));
            if (!rc) rc = commy_deque_push_back(d.h, v.p, v.len);
        }
        break;
    case COMMY_KIND_MAP: case COMMY_KIND_OMAP:
        for (;;) {
            if (info->kind == COMMY_KIND_MAP) WITH_BUF2(k, v, rc, commy_map_next(s.h, &c, k.p, k.cap, &k.len, v.p, v.cap, &v.len));
            else WITH_BUF2(k, v, rc, commy_omap_next(s.h, &c, k.p, k.cap, &k.len, v.p, v.cap, &v.len));
            if (rc != COMMY_ROW) break;
            rc = info->kind == COMMY_KIND_MAP ? commy_map_put(d.h, k.p, k.len, v.p, v.len)
                                              : commy_omap_put(d.h, k.p, k.len, v.p, v.len);
            if (rc) break;
        }
        break;
    case COMMY_KIND_SET: case COMMY_KIND_OSET:
        for (;;) {
            if (info->kind == COMMY_KIND_SET) WITH_BUF(k, rc, commy_set_next(s.h, &c, k.p, k.cap, &k.len));
            else WITH_BUF(k, rc, commy_oset_next(s.h, &c, k.p, k.cap, &k.len));
            if (rc != COMMY_ROW) break;
            rc = info->kind == COMMY_KIND_SET ? commy_set_add(NULL, d.h, k.p, k.len) : commy_oset_add(NULL, d.h, k.p, k.len);
            if (rc) break;
        }
        break;
    }
    if (rc == COMMY_DONE) rc = COMMY_OK;
    free(k.p);
    free(v.p);
    srv_var_close(&s);
    srv_var_close(&d);
    return rc;
}

int srv_ops_copy(commy_alloc *dst, commy_alloc *src, char *msg, size_t cap)
{
    /* The source's lock keeps local writers out while we copy, so the copy is
     * one consistent snapshot (nesting: the reads below take it again). */
    int rc = commy_alloc_lock(src, 10000);
    if (rc) return core_fail(msg, cap, rc);
    /* Retire the source first (docs/format.md, "Retirement"): from here on
     * no write lands in it, locked or not, so nothing written after the copy
     * is lost; local clients retry theirs in the new file. */
    if ((rc = commy__alloc_retire(src, 5000)) != COMMY_OK) {
        commy_alloc_unlock(src);
        return core_fail(msg, cap, rc);
    }
    uint64_t n = 0;
    rc = commy_root_count(&n, src);
    for (uint64_t i = 0; !rc && i < n; i++) {
        commy_root_info info;
        rc = commy_root_at(&info, src, i);
        if (!rc) rc = copy_root(dst, src, &info);
        if (rc) say(msg, cap, rc, "copying root %" PRIu64 ": %s", i, commy_error_last()->message);
    }
    /* A failed copy leaves the service in the old file: writable again. */
    if (rc) commy__alloc_unretire(src);
    commy_alloc_unlock(src);
    return rc;
}
