/* commy_map: a hash map on the engine of hashtab.c (docs/format.md, "map and set"). */
#include "hashtab.h"

#include <stdlib.h>

struct commy_map {
    struct commy__handle h;
};

const struct commy__kind_ops commy__map_ops = {
    .kind = COMMY_KIND_MAP,
    .block_size = sizeof(struct commy__chdr),
    .init = commy__ht_init,
    .destroy = commy__ht_destroy,
    .check = commy__ht_check,
    .bytes = commy__ht_bytes,
};

int commy_map_open(commy_map **out, commy_alloc *a, const char *name, commy_type key, commy_type val, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_map_open: out is NULL");
    *out = NULL;
    commy_map *m = calloc(1, sizeof *m);
    if (m == NULL) return commy__err(COMMY_ENOMEM, "commy_map_open: out of memory for the handle of '%s'", name ? name : "?");
    int rc = commy__handle_open(&m->h, a, name, COMMY_KIND_MAP, key, val, flags);
    if (rc) {
        free(m);
        return rc;
    }
    commy__ht_handle_layout(&m->h);
    *out = m;
    return COMMY_OK;
}

int commy_map_types(commy_type *out_key, commy_type *out_val, commy_map *m)
{
    COMMY__CHECK_HANDLE(m);
    if (m->h.a == NULL) return commy__err(COMMY_ECLOSED, "commy_map_types: the handle is closed");
    if (out_key) *out_key = m->h.ktype;
    if (out_val) *out_val = m->h.vtype;
    return COMMY_OK;
}

int commy_map_len(uint64_t *out, commy_map *m)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    return commy__ht_len(out, &m->h);
}

int commy_map_put(commy_map *m, const void *key, size_t klen, const void *val, size_t vlen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_SET, .key = key, .klen = klen, .val = val, .vlen = vlen, .has_val = 1);
    return commy__ht_put(NULL, &m->h, key, klen, val, vlen, 1);
}

int commy_map_get(commy_map *m, const void *key, size_t klen, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_GET, .key = key, .klen = klen, .out = out, .cap = cap, .out_len = out_len);
    return commy__ht_get(&m->h, key, klen, out, cap, out_len);
}

int commy_map_remove(commy_map *m, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_REMOVE, .key = key, .klen = klen);
    return commy__ht_remove(&m->h, key, klen);
}

int commy_map_contains(int *out, commy_map *m, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_CONTAINS, .key = key, .klen = klen, .out_flag = out);
    return commy__ht_contains(out, &m->h, key, klen);
}

int commy_map_clear(commy_map *m)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_CLEAR);
    return commy__ht_clear(&m->h);
}

int commy_map_next(commy_map *m, commy_cursor *c, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap,
                   size_t *vlen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_NEXT, .cursor = c, .kout = kout, .kcap = kcap, .klen_out = klen, .out = vout, .cap = vcap, .out_len = vlen);
    return commy__ht_next(&m->h, c, kout, kcap, klen, vout, vcap, vlen);
}

void commy_map_close(commy_map *m)
{
    if (m == NULL) return;
    commy__handle_release(&m->h);
    free(m);
}

int commy_map_version(uint32_t *out, commy_map *m)
{
    COMMY__CHECK_HANDLE(m);
    return commy__op_version(out, &m->h);
}

int commy_map_wait(commy_map *m, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(m);
    return commy__op_wait(&m->h, seen, timeout_ms);
}
