/* commy_set: a hash set, a map without values on the engine of hashtab.c
 * (docs/format.md, "map and set"). */
#include "hashtab.h"

#include <stdlib.h>

struct commy_set {
    struct commy__handle h;
};

const struct commy__kind_ops commy__set_ops = {
    .kind = COMMY_KIND_SET,
    .block_size = sizeof(struct commy__chdr),
    .init = commy__ht_init,
    .destroy = commy__ht_destroy,
    .check = commy__ht_check,
    .bytes = commy__ht_bytes,
};

int commy_set_open(commy_set **out, commy_alloc *a, const char *name, commy_type key, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_set_open: out is NULL");
    *out = NULL;
    commy_set *s = calloc(1, sizeof *s);
    if (s == NULL) return commy__err(COMMY_ENOMEM, "commy_set_open: out of memory for the handle of '%s'", name ? name : "?");
    int rc = commy__handle_open(&s->h, a, name, COMMY_KIND_SET, key, COMMY_T_ANY, flags);
    if (rc) {
        free(s);
        return rc;
    }
    commy__ht_handle_layout(&s->h);
    *out = s;
    return COMMY_OK;
}

int commy_set_type(commy_type *out, commy_set *s)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_set_type: out is NULL");
    COMMY__CHECK_HANDLE(s);
    if (s->h.a == NULL) return commy__err(COMMY_ECLOSED, "commy_set_type: the handle is closed");
    *out = s->h.ktype;
    return COMMY_OK;
}

int commy_set_len(uint64_t *out, commy_set *s)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    return commy__ht_len(out, &s->h);
}

int commy_set_add(int *out_added, commy_set *s, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_ADD, .key = key, .klen = klen, .out_flag = out_added);
    return commy__ht_put(out_added, &s->h, key, klen, NULL, 0, 0);
}

int commy_set_remove(commy_set *s, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_REMOVE, .key = key, .klen = klen);
    return commy__ht_remove(&s->h, key, klen);
}

int commy_set_contains(int *out, commy_set *s, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_CONTAINS, .key = key, .klen = klen, .out_flag = out);
    return commy__ht_contains(out, &s->h, key, klen);
}

int commy_set_clear(commy_set *s)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_CLEAR);
    return commy__ht_clear(&s->h);
}

int commy_set_next(commy_set *s, commy_cursor *c, void *kout, size_t kcap, size_t *klen)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_NEXT, .cursor = c, .kout = kout, .kcap = kcap, .klen_out = klen);
    return commy__ht_next(&s->h, c, kout, kcap, klen, NULL, 0, NULL);
}

void commy_set_close(commy_set *s)
{
    if (s == NULL) return;
    commy__handle_release(&s->h);
    free(s);
}

int commy_set_version(uint32_t *out, commy_set *s)
{
    COMMY__CHECK_HANDLE(s);
    return commy__op_version(out, &s->h);
}

int commy_set_wait(commy_set *s, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(s);
    return commy__op_wait(&s->h, seen, timeout_ms);
}
