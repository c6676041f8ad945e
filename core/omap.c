/* commy_omap: the ordered map, on the B+-tree engine of btree.c.
 * Every call is one operation under the segment lock; writes roll back on
 * failure, so an error leaves the map as it was. */
#include "btree.h"

#include <stdlib.h>

struct commy_omap {
    struct commy__handle h;
    struct commy__btmeta layout; /* of h's types, computed at open */
};

static int omap_init(commy_alloc *a, struct commy__chdr *c) { return commy__bt_init(a, c, 1); }

const struct commy__kind_ops commy__omap_ops = {
    .kind = COMMY_KIND_OMAP,
    .block_size = COMMY__BT_BLOCK_SIZE,
    .init = omap_init,
    .destroy = commy__bt_destroy,
    .check = commy__bt_check,
    .bytes = commy__bt_bytes,
};

/* Begins an operation and builds the tree view; on failure nothing is held. */
static int begin(commy_omap *m, int write, uint64_t *sp, struct commy__bt *t)
{
    struct commy__chdr *c;
    int rc = commy__op_begin(&m->h, write, sp, &c);
    if (rc) return rc;
    rc = commy__bt_view(t, m->h.a, c, m->h.name, &m->layout);
    if (rc) return commy__op_end(&m->h, *sp, rc, 0);
    return COMMY_OK;
}

static int not_found(const commy_omap *m)
{
    return commy__err(COMMY_ENOTFOUND, "ordered map '%s' has no such key", m->h.name);
}

int commy_omap_open(commy_omap **out, commy_alloc *a, const char *name, commy_type key, commy_type val, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_omap_open: out is NULL");
    *out = NULL;
    commy_omap *m = calloc(1, sizeof *m);
    if (m == NULL) return commy__err(COMMY_ENOMEM, "commy_omap_open: out of memory");
    int rc = commy__handle_open(&m->h, a, name, COMMY_KIND_OMAP, key, val, flags);
    if (rc) {
        free(m);
        return rc;
    }
    if (commy__bt_layout(&m->layout, m->h.ktype, m->h.vtype, 1) != COMMY_OK) m->layout.has_vals = 2; /* never matches */
    *out = m;
    return COMMY_OK;
}

void commy_omap_close(commy_omap *m)
{
    if (m == NULL) return;
    commy__handle_release(&m->h);
    free(m);
}

int commy_omap_types(commy_type *out_key, commy_type *out_val, commy_omap *m)
{
    COMMY__CHECK_HANDLE(m);
    if (out_key) *out_key = m->h.ktype;
    if (out_val) *out_val = m->h.vtype;
    return COMMY_OK;
}

int commy_omap_len(uint64_t *out, commy_omap *m)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_omap_len: out is NULL");
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&m->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->len;
    return commy__op_end(&m->h, sp, COMMY_OK, 0);
}

int commy_omap_put(commy_omap *m, const void *key, size_t klen, const void *val, size_t vlen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_SET, .key = key, .klen = klen, .val = val, .vlen = vlen, .has_val = 1);
    if (val == NULL && vlen)
        return commy__err(COMMY_EINVAL, "ordered map '%s': value is NULL with length %zu", m->h.name, vlen);
    int rc = commy__value_check(m->h.vtype, val ? val : "", vlen, "value");
    if (rc) return rc;
    uint64_t sp;
    struct commy__bt t;
    if ((rc = begin(m, 1, &sp, &t))) return rc;
    const void *k;
    char buf[8];
    int added = 0, more;
    rc = commy__bt_key(&k, &t, key, klen, buf);
    /* Leftovers of an interrupted clear go back to the heap a little at a time. */
    if (rc == 0 && t.m->garbage) rc = commy__bt_collect(&more, NULL, &t, 4);
    if (rc == 0) rc = commy__bt_put(&added, &t, k, klen, val ? val : "", vlen, 1);
    return commy__op_end(&m->h, sp, rc, rc == 0);
}

int commy_omap_get(commy_omap *m, const void *key, size_t klen, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_GET, .key = key, .klen = klen, .out = out, .cap = cap, .out_len = out_len);
    /* Integer keys of the right length: no canonical form to make, no lock. */
    if (key != NULL && klen == m->h.kslot && out != NULL && cap >= m->h.vslot && m->layout.has_vals == 1) {
        char val[8];
        int found;
        if (commy__bt_find_fast(&found, val, &m->h, &m->layout, key)) {
            if (!found) return not_found(m);
            commy__copy_small(out, val, m->h.vslot);
            if (out_len) *out_len = m->h.vslot;
            return COMMY_OK;
        }
    }
    uint64_t sp, leaf;
    uint32_t idx;
    struct commy__bt t;
    int rc = begin(m, 0, &sp, &t);
    if (rc) return rc;
    const void *k;
    char buf[8];
    rc = commy__bt_key(&k, &t, key, klen, buf);
    if (rc == 0) rc = commy__bt_find(&leaf, &idx, &t, k, klen);
    if (rc == COMMY_ENOTFOUND) rc = not_found(m);
    if (rc == 0) rc = commy__bt_load_val(&t, leaf, idx, out, cap, out_len);
    return commy__op_end(&m->h, sp, rc, 0);
}

int commy_omap_remove(commy_omap *m, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_REMOVE, .key = key, .klen = klen);
    uint64_t sp;
    struct commy__bt t;
    int rc = begin(m, 1, &sp, &t);
    if (rc) return rc;
    const void *k;
    char buf[8];
    rc = commy__bt_key(&k, &t, key, klen, buf);
    if (rc == 0) rc = commy__bt_remove(&t, k, klen);
    if (rc == COMMY_ENOTFOUND) rc = not_found(m);
    return commy__op_end(&m->h, sp, rc, rc == 0);
}

int commy_omap_contains(int *out, commy_omap *m, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_CONTAINS, .key = key, .klen = klen, .out_flag = out);
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_omap_contains: out is NULL");
    uint64_t sp, leaf;
    uint32_t idx;
    struct commy__bt t;
    int rc = begin(m, 0, &sp, &t);
    if (rc) return rc;
    const void *k;
    char buf[8];
    rc = commy__bt_key(&k, &t, key, klen, buf);
    if (rc == 0) {
        rc = commy__bt_find(&leaf, &idx, &t, k, klen);
        *out = rc == 0;
        if (rc == COMMY_ENOTFOUND) rc = COMMY_OK;
    }
    return commy__op_end(&m->h, sp, rc, 0);
}

int commy_omap_clear(commy_omap *m)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_CLEAR);
    return commy__bt_clear(&m->h, &m->layout);
}

/* first, last and the bounds: one entry found by `how`, copied out. */
enum pick { PICK_FIRST, PICK_LAST, PICK_LOWER, PICK_UPPER };

static int pick(commy_omap *m, enum pick how, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out,
                void *vout, size_t vcap, size_t *vlen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_FIRST + (int)how, .key = key, .klen = klen, .kout = kout, .kcap = kcap, .klen_out = klen_out, .out = vout, .cap = vcap, .out_len = vlen);
    uint64_t sp, leaf = 0;
    uint32_t idx = 0;
    struct commy__bt t;
    int rc = begin(m, 0, &sp, &t);
    if (rc) return rc;
    const void *k = NULL;
    char buf[8];
    if (how == PICK_LOWER || how == PICK_UPPER) rc = commy__bt_key(&k, &t, key, klen, buf);
    if (rc == 0) {
        if (how == PICK_LAST) rc = commy__bt_last(&leaf, &idx, &t);
        else rc = commy__bt_bound(&leaf, &idx, &t, k, klen, how == PICK_UPPER);
    }
    if (rc == 0 && leaf == 0)
        rc = how == PICK_FIRST || how == PICK_LAST
                 ? commy__err(COMMY_EEMPTY, "ordered map '%s' is empty", m->h.name)
                 : commy__err(COMMY_ENOTFOUND, "ordered map '%s' has no key %s the one given", m->h.name,
                              how == PICK_LOWER ? "at or above" : "above");
    if (rc == 0) rc = commy__bt_load(&t, leaf, idx, kout, kcap, klen_out, vout, vcap, vlen);
    return commy__op_end(&m->h, sp, rc, 0);
}

int commy_omap_first(commy_omap *m, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen)
{
    return pick(m, PICK_FIRST, NULL, 0, kout, kcap, klen, vout, vcap, vlen);
}

int commy_omap_last(commy_omap *m, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap, size_t *vlen)
{
    return pick(m, PICK_LAST, NULL, 0, kout, kcap, klen, vout, vcap, vlen);
}

int commy_omap_lower_bound(commy_omap *m, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out,
                           void *vout, size_t vcap, size_t *vlen)
{
    return pick(m, PICK_LOWER, key, klen, kout, kcap, klen_out, vout, vcap, vlen);
}

int commy_omap_upper_bound(commy_omap *m, const void *key, size_t klen, void *kout, size_t kcap, size_t *klen_out,
                           void *vout, size_t vcap, size_t *vlen)
{
    return pick(m, PICK_UPPER, key, klen, kout, kcap, klen_out, vout, vcap, vlen);
}

int commy_omap_seek(commy_cursor *cur, commy_omap *m, const void *key, size_t klen, int inclusive)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_SEEK, .cursor = cur, .key = key, .klen = klen, .inclusive = inclusive);
    if (cur == NULL) return commy__err(COMMY_EINVAL, "commy_omap_seek: cursor is NULL");
    uint64_t sp, leaf = 0;
    uint32_t idx = 0;
    struct commy__bt t;
    int rc = begin(m, 0, &sp, &t);
    if (rc) return rc;
    const void *k = NULL;
    char buf[8];
    if (key) rc = commy__bt_key(&k, &t, key, klen, buf);
    if (rc == 0) rc = commy__bt_bound(&leaf, &idx, &t, k, klen, !inclusive);
    if (rc == 0) {
        cur->pos = leaf;
        cur->aux = idx;
        cur->version = atomic_load_explicit(&t.c->version, memory_order_acquire);
        cur->state = leaf ? 1 : 2;
    }
    return commy__op_end(&m->h, sp, rc, 0);
}

int commy_omap_next(commy_omap *m, commy_cursor *cur, void *kout, size_t kcap, size_t *klen, void *vout, size_t vcap,
                    size_t *vlen)
{
    COMMY__CHECK_HANDLE(m);
    COMMY__REMOTE(&m->h, .op = COMMY__ROP_NEXT, .cursor = cur, .kout = kout, .kcap = kcap, .klen_out = klen, .out = vout, .cap = vcap, .out_len = vlen);
    if (cur == NULL) return commy__err(COMMY_EINVAL, "commy_omap_next: cursor is NULL");
    if (cur->state == 2) return COMMY_DONE;
    if (cur->state > 2)
        return commy__err(COMMY_EINVAL, "ordered map '%s': the cursor is not one of its cursors", m->h.name);
    uint64_t sp;
    struct commy__bt t;
    int rc = begin(m, 0, &sp, &t);
    if (rc) return rc;
    uint32_t ver = atomic_load_explicit(&t.c->version, memory_order_acquire);
    uint64_t leaf = cur->pos;
    uint32_t idx = (uint32_t)cur->aux;
    if (cur->state == 0) {
        rc = commy__bt_bound(&leaf, &idx, &t, NULL, 0, 0);
    } else if (cur->version != ver) {
        rc = commy__err(COMMY_ECONCURRENT, "ordered map '%s' changed while a cursor was iterating it; start again",
                        m->h.name);
    } else if (leaf && (cur->aux > UINT32_MAX || !commy__bt_cursor_ok(&t, leaf, idx))) {
        rc = commy__err(COMMY_EINVAL, "ordered map '%s': the cursor is not one of its cursors", m->h.name);
    }
    if (rc) return commy__op_end(&m->h, sp, rc, 0);
    if (leaf == 0) {
        cur->state = 2;
        cur->version = ver;
        return commy__op_end(&m->h, sp, COMMY_DONE, 0);
    }
    rc = commy__bt_load(&t, leaf, idx, kout, kcap, klen, vout, vcap, vlen);
    if (rc == 0) {
        const struct commy__btnode *nd = commy__at(t.a, leaf);
        if (idx + 1u < nd->n) {
            cur->pos = leaf;
            cur->aux = idx + 1u;
        } else {
            cur->pos = nd->next;
            cur->aux = 0;
        }
        cur->version = ver;
        cur->state = 1;
        rc = COMMY_ROW;
    }
    return commy__op_end(&m->h, sp, rc, 0);
}

int commy_omap_version(uint32_t *out, commy_omap *m)
{
    COMMY__CHECK_HANDLE(m);
    return commy__op_version(out, &m->h);
}

int commy_omap_wait(commy_omap *m, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(m);
    return commy__op_wait(&m->h, seen, timeout_ms);
}
