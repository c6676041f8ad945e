/* A variable's whole state as JSON, and making a variable hold such a state:
 * the mirror's "state" stream entries and its snapshots (docs/deploying.md).
 * Values are typed values as the wire codec writes them (docs/protocol.md). */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    unsigned char *p;
    size_t cap, len;
} sbuf;

static int grow(sbuf *b)
{
    size_t n = b->cap ? b->cap * 2 : 256;
    if (b->len + 1 > n) n = b->len + 1;
    unsigned char *p = realloc(b->p, n);
    if (!p) return -1;
    b->p = p;
    b->cap = n;
    return 0;
}

/* Runs a getter until the buffers are big enough. */
#define GET(rc, expr, ...)                                                                  \
    do {                                                                                    \
        if (!k.p && grow(&k)) { rc = COMMY_ENOMEM; break; }                                 \
        if (!val.p && grow(&val)) { rc = COMMY_ENOMEM; break; }                             \
        for (int t_ = 0; t_ < 6; t_++) {                                                    \
            rc = (expr);                                                                    \
            if (rc != COMMY_ETOOSMALL) break;                                               \
            if (grow(&k) || grow(&val)) { rc = COMMY_ENOMEM; break; }                       \
        }                                                                                   \
    } while (0)

static cJSON *typed(commy_type t, const sbuf *b)
{
    return commy_wire_value_to_json(t, b->p, b->len);
}

static int capture_locked(cJSON *o, srv_var *v)
{
    sbuf k = {0}, val = {0};
    int rc = COMMY_OK;
    uint64_t n = 0;
    commy_cursor c = COMMY_CURSOR_INIT;
    cJSON *s = NULL, *item;
    switch (v->kind) {
    case COMMY_KIND_BOX:
        GET(rc, commy_box_get(v->h, val.p, val.cap, &val.len));
        if (!rc && !(s = typed(v->kt, &val))) rc = COMMY_ENOTSUP;
        break;
    case COMMY_KIND_STR:
        GET(rc, commy_str_get(v->h, (char *)val.p, val.cap, &val.len));
        if (!rc && !(s = typed(COMMY_T_STR, &val))) rc = COMMY_ENOTSUP;
        break;
    case COMMY_KIND_VEC: case COMMY_KIND_DEQUE:
        s = cJSON_CreateArray();
        rc = v->kind == COMMY_KIND_VEC ? commy_vec_len(&n, v->h) : commy_deque_len(&n, v->h);
        for (uint64_t i = 0; !rc && i < n; i++) {
            if (v->kind == COMMY_KIND_VEC) GET(rc, commy_vec_get(v->h, i, val.p, val.cap, &val.len));
            else GET(rc, commy_deque_get(v->h, i, val.p, val.cap, &val.len));
            if (!rc && !(item = typed(v->kt, &val))) rc = COMMY_ENOTSUP;
            if (!rc) cJSON_AddItemToArray(s, item);
        }
        break;
    case COMMY_KIND_MAP: case COMMY_KIND_OMAP:
        s = cJSON_CreateArray();
        for (;;) {
            if (v->kind == COMMY_KIND_MAP) GET(rc, commy_map_next(v->h, &c, k.p, k.cap, &k.len, val.p, val.cap, &val.len));
            else GET(rc, commy_omap_next(v->h, &c, k.p, k.cap, &k.len, val.p, val.cap, &val.len));
            if (rc != COMMY_ROW) break;
            rc = COMMY_OK;
            cJSON *pair = cJSON_CreateArray(), *kj = typed(v->kt, &k), *vj = typed(v->vt, &val);
            cJSON_AddItemToArray(s, pair);
            if (!kj || !vj) {
                cJSON_Delete(kj);
                cJSON_Delete(vj);
                rc = COMMY_ENOTSUP;
                break;
            }
            cJSON_AddItemToArray(pair, kj);
            cJSON_AddItemToArray(pair, vj);
        }
        break;
    case COMMY_KIND_SET: case COMMY_KIND_OSET:
        s = cJSON_CreateArray();
        for (;;) {
            if (v->kind == COMMY_KIND_SET) GET(rc, commy_set_next(v->h, &c, k.p, k.cap, &k.len));
            else GET(rc, commy_oset_next(v->h, &c, k.p, k.cap, &k.len));
            if (rc != COMMY_ROW) break;
            rc = COMMY_OK;
            if (!(item = typed(v->kt, &k))) { rc = COMMY_ENOTSUP; break; }
            cJSON_AddItemToArray(s, item);
        }
        break;
    default:
        rc = COMMY_EINVAL;
    }
    if (rc == COMMY_DONE) rc = COMMY_OK;
    free(k.p);
    free(val.p);
    if (rc) {
        cJSON_Delete(s);
        return rc;
    }
    cJSON_AddItemToObject(o, "s", s);
    return COMMY_OK;
}

int srv_state_capture(cJSON **out, srv_var *v)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return COMMY_ENOMEM;
    char tn[32];
    cJSON_AddStringToObject(o, "kind", commy_kind_name(v->kind));
    if (v->kind != COMMY_KIND_STR) cJSON_AddStringToObject(o, "kt", commy_type_name(tn, sizeof tn, v->kt));
    if (v->kind == COMMY_KIND_MAP || v->kind == COMMY_KIND_OMAP)
        cJSON_AddStringToObject(o, "vt", commy_type_name(tn, sizeof tn, v->vt));
    int rc = capture_locked(o, v);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    *out = o;
    return COMMY_OK;
}

static int decode(commy_wire_value *out, const cJSON *j, commy_type t, char *msg, size_t cap)
{
    return commy_wire_value_from_json(out, j, t, msg, cap);
}

/* The JSON text of a typed value, as a key for comparing members. */
static int contains_json(const cJSON *arr, const cJSON *item, int pairs)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const cJSON *k = pairs ? cJSON_GetArrayItem(e, 0) : e;
        if (k && cJSON_Compare(k, item, 1)) return 1;
    }
    return 0;
}

static int apply_locked(int *changed, srv_var *v, const cJSON *target, char *msg, size_t cap)
{
    cJSON *curo = cJSON_CreateObject();
    if (!curo) return COMMY_ENOMEM;
    int rc = capture_locked(curo, v);
    if (rc) {
        cJSON_Delete(curo);
        snprintf(msg, cap, "cannot read the variable: %s", commy_strerror(rc));
        return rc;
    }
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(curo, "s");
    if (cJSON_Compare(cur, target, 1)) {
        cJSON_Delete(curo);
        return COMMY_OK;
    }
    *changed = 1;
    commy_wire_value a = {0}, b = {0};
    sbuf k = {0}, val = {0};
    const cJSON *e;
    uint64_t n = 0, m = (uint64_t)cJSON_GetArraySize(target);
    switch (v->kind) {
    case COMMY_KIND_BOX:
        if (!(rc = decode(&a, target, v->kt, msg, cap))) rc = commy_box_set(v->h, a.data, a.len);
        break;
    case COMMY_KIND_STR:
        if (!(rc = decode(&a, target, COMMY_T_STR, msg, cap))) rc = commy_str_set(v->h, (const char *)a.data, a.len);
        break;
    case COMMY_KIND_VEC: case COMMY_KIND_DEQUE: {
        int vec = v->kind == COMMY_KIND_VEC;
        if (!cJSON_IsArray(target)) { rc = COMMY_EINVAL; break; }
        rc = vec ? commy_vec_len(&n, v->h) : commy_deque_len(&n, v->h);
        for (; !rc && n > m; n--)
            GET(rc, vec ? commy_vec_pop(v->h, val.p, val.cap, &val.len) : commy_deque_pop_back(v->h, val.p, val.cap, &val.len));
        uint64_t i = 0;
        cJSON_ArrayForEach(e, target)
        {
            if (rc) break;
            commy_wire_value_free(&a);
            if ((rc = decode(&a, e, v->kt, msg, cap))) break;
            if (i < n) rc = vec ? commy_vec_set(v->h, i, a.data, a.len) : commy_deque_set(v->h, i, a.data, a.len);
            else rc = vec ? commy_vec_push(v->h, a.data, a.len) : commy_deque_push_back(v->h, a.data, a.len);
            i++;
        }
        break;
    }
    case COMMY_KIND_MAP: case COMMY_KIND_OMAP: case COMMY_KIND_SET: case COMMY_KIND_OSET: {
        int pairs = v->kind == COMMY_KIND_MAP || v->kind == COMMY_KIND_OMAP;
        if (!cJSON_IsArray(target)) { rc = COMMY_EINVAL; break; }
        cJSON_ArrayForEach(e, target)
        {
            commy_wire_value_free(&a);
            commy_wire_value_free(&b);
            const cJSON *kj = pairs ? cJSON_GetArrayItem(e, 0) : e;
            if ((rc = decode(&a, kj, v->kt, msg, cap))) break;
            if (pairs && (rc = decode(&b, cJSON_GetArrayItem(e, 1), v->vt, msg, cap))) break;
            switch (v->kind) {
            case COMMY_KIND_MAP: rc = commy_map_put(v->h, a.data, a.len, b.data, b.len); break;
            case COMMY_KIND_OMAP: rc = commy_omap_put(v->h, a.data, a.len, b.data, b.len); break;
            case COMMY_KIND_SET: rc = commy_set_add(NULL, v->h, a.data, a.len); break;
            default: rc = commy_oset_add(NULL, v->h, a.data, a.len); break;
            }
            if (rc) break;
        }
        /* then drop the members the state does not have */
        cJSON_ArrayForEach(e, cur)
        {
            if (rc) break;
            const cJSON *kj = pairs ? cJSON_GetArrayItem(e, 0) : e;
            if (contains_json(target, kj, pairs)) continue;
            commy_wire_value_free(&a);
            if ((rc = decode(&a, kj, v->kt, msg, cap))) break;
            switch (v->kind) {
            case COMMY_KIND_MAP: rc = commy_map_remove(v->h, a.data, a.len); break;
            case COMMY_KIND_OMAP: rc = commy_omap_remove(v->h, a.data, a.len); break;
            case COMMY_KIND_SET: rc = commy_set_remove(v->h, a.data, a.len); break;
            default: rc = commy_oset_remove(v->h, a.data, a.len); break;
            }
            if (rc == COMMY_ENOTFOUND) rc = COMMY_OK;
        }
        break;
    }
    default:
        rc = COMMY_EINVAL;
    }
    if (rc && !msg[0]) snprintf(msg, cap, "%s", commy_error_last()->message[0] ? commy_error_last()->message : commy_strerror(rc));
    commy_wire_value_free(&a);
    commy_wire_value_free(&b);
    free(k.p);
    free(val.p);
    cJSON_Delete(curo);
    return rc;
}

int srv_state_apply(int *changed, commy_alloc *a, const char *name, const cJSON *st, char *msg, size_t cap)
{
    *changed = 0;
    msg[0] = '\0';
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(st, "kind"), *kt = cJSON_GetObjectItemCaseSensitive(st, "kt"),
                *vt = cJSON_GetObjectItemCaseSensitive(st, "vt"), *s = cJSON_GetObjectItemCaseSensitive(st, "s");
    uint32_t k = cJSON_IsString(kind) ? commy_wire_kind_parse(kind->valuestring) : 0;
    commy_type kty = COMMY_T_STR, vty = COMMY_T_ANY;
    if (!k || !s || (k != COMMY_KIND_STR && (!cJSON_IsString(kt) || commy_wire_type_parse(&kty, kt->valuestring))) ||
        ((k == COMMY_KIND_MAP || k == COMMY_KIND_OMAP) && (!cJSON_IsString(vt) || commy_wire_type_parse(&vty, vt->valuestring))))
        return snprintf(msg, cap, "a malformed state for '%s'", name), COMMY_EINVAL;
    if (k == COMMY_KIND_STR) kty = COMMY_T_ANY;
    srv_var v;
    int rc = srv_var_open_kind(&v, a, name, k, kty, vty);
    if (rc) return snprintf(msg, cap, "cannot open '%s' as %s: %s", name, kind->valuestring, commy_error_last()->message), rc;
    rc = commy_alloc_lock(a, 10000);
    if (!rc) {
        rc = apply_locked(changed, &v, s, msg, cap);
        commy_alloc_unlock(a);
    }
    srv_var_close(&v);
    return rc;
}
