/* The B+-tree under commy_omap and commy_oset.
 *
 * Leaves hold the entries (keys, then values, in two arrays so a search
 * touches only keys) and are linked in key order for scans. Inner nodes hold
 * separator keys and child offsets: child i holds keys k with
 * sep[i-1] <= k < sep[i]. A separator is a copy of the smallest key of its
 * right subtree when it was made; for bytes/str keys the copy owns its own
 * block, so removing the leaf key never leaves a separator dangling.
 *
 * Crash safety: every reachable node is logged whole (commy__log) before it
 * is changed in place; nodes allocated by the same operation are not logged.
 * Balance: a node below half full after a removal borrows from a sibling or
 * merges with it, so every leaf stays at the same depth. */
#include "btree.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define NODE(t, off) ((struct commy__btnode *)commy__at((t)->a, (off)))
#define KEYS(nd) ((char *)(nd) + 16)
#define KEY(t, nd, i) (KEYS(nd) + (size_t)(i) * (t)->ks)
#define VAL(t, nd, i) ((char *)(nd) + (t)->voff + (size_t)(i) * (t)->vs)
#define KIDS(t, nd) ((uint64_t *)((char *)(nd) + (t)->coff))

/* ------------------------------------------------------------ layout */

static uint32_t round8(uint32_t x) { return (x + 7u) & ~7u; }

int commy__bt_layout(struct commy__btmeta *m, commy_type kt, commy_type vt, int has_vals)
{
    uint32_t ks = commy__slot_size(kt), vs = has_vals ? commy__slot_size(vt) : 0;
    if (ks == 0 || (has_vals && vs == 0)) return COMMY_EINVAL;
    /* At least 4 entries and 4 separators per node, so halves never go empty. */
    uint64_t need_leaf = 16 + round8(4 * ks) + 4 * (uint64_t)vs;
    uint64_t need_inner = 16 + round8(4 * ks) + 5 * 8;
    uint64_t size = COMMY__BT_NODE_BYTES;
    if (size < need_leaf) size = need_leaf;
    if (size < need_inner) size = need_inner;
    size = (size + 63) & ~(uint64_t)63;
    if (size > 60000) return COMMY_EINVAL; /* offsets in the meta are 16-bit */
    uint32_t lcap = (uint32_t)((size - 16) / (ks + vs));
    while (lcap > 4 && 16 + round8(lcap * ks) + (uint64_t)lcap * vs > size) lcap--;
    uint32_t icap = (uint32_t)((size - 24) / (ks + 8));
    while (icap > 4 && 16 + round8(icap * ks) + (uint64_t)(icap + 1) * 8 > size) icap--;
    if (lcap > 65535) lcap = 65535;
    if (icap > 65534) icap = 65534;
    m->node_size = (uint32_t)size;
    m->leaf_cap = (uint16_t)lcap;
    m->inner_cap = (uint16_t)icap;
    m->val_off = (uint16_t)(16 + round8(lcap * ks));
    m->child_off = (uint16_t)(16 + round8(icap * ks));
    m->has_vals = (uint8_t)(has_vals != 0);
    return COMMY_OK;
}

static int fast_kind(commy_type kt)
{
    switch (COMMY_TYPE_BASE(kt)) {
    case COMMY_T_I8: case COMMY_T_I16: case COMMY_T_I32: case COMMY_T_I64:
    case COMMY_T_U8: case COMMY_T_U16: case COMMY_T_U32: case COMMY_T_U64:
        return (int)COMMY_TYPE_BASE(kt);
    default:
        return 0;
    }
}

int commy__bt_view(struct commy__bt *t, commy_alloc *a, struct commy__chdr *c, const char *name,
                   const struct commy__btmeta *layout)
{
    struct commy__btmeta *m = commy__bt_meta(c), want;
    t->a = a;
    t->c = c;
    t->m = m;
    t->name = name ? name : "?";
    if (m->has_vals != (c->kind == COMMY_KIND_OMAP))
        return commy__err(COMMY_ECORRUPT, "ordered container '%s': its tree header is damaged; run commy_alloc_check",
                          t->name);
    t->kt = c->key_type;
    t->vt = m->has_vals ? c->val_type : 0;
    memset(&want, 0, sizeof want);
    /* The layout is a function of the types: a handle computes it once. */
    int lrc = COMMY_OK;
    if (layout && layout->has_vals == m->has_vals) want = *layout;
    else lrc = commy__bt_layout(&want, t->kt, t->vt, m->has_vals);
    if (lrc != COMMY_OK || want.node_size != m->node_size ||
        want.leaf_cap != m->leaf_cap || want.inner_cap != m->inner_cap || want.val_off != m->val_off ||
        want.child_off != m->child_off || m->height > COMMY__BT_MAX_HEIGHT || (m->root == 0) != (m->height == 0))
        return commy__err(COMMY_ECORRUPT, "ordered container '%s': its tree header is damaged; run commy_alloc_check",
                          t->name);
    t->ks = commy__slot_size(t->kt);
    t->vs = m->has_vals ? commy__slot_size(t->vt) : 0;
    t->nsize = m->node_size;
    t->lcap = m->leaf_cap;
    t->icap = m->inner_cap;
    t->voff = m->val_off;
    t->coff = m->child_off;
    t->fast = fast_kind(t->kt);
    return COMMY_OK;
}

int commy__bt_key(const void **out, const struct commy__bt *t, const void *key, size_t klen, void *buf)
{
    if (key == NULL && klen != 0)
        return commy__err(COMMY_EINVAL, "ordered container '%s': key is NULL with length %zu", t->name, klen);
    if (!(t->fast && klen == t->ks)) {
        int rc = commy__value_check(t->kt, key, klen, "key");
        if (rc) {
            char what[COMMY_ROOT_NAME_MAX + 40];
            snprintf(what, sizeof what, "key of ordered container '%s'", t->name);
            return commy__value_check(t->kt, key, klen, what);
        }
    }
    *out = commy__key_canon(t->kt, key ? key : "", klen, buf);
    return COMMY_OK;
}

/* ------------------------------------------------------------ search */

/* Index of the first key in keys[0..n) that is >= p (upper 0) or > p (upper 1). */
#define SEARCH_INT(T)                                                          \
    do {                                                                       \
        T v;                                                                   \
        memcpy(&v, p, sizeof v);                                               \
        const T *k = (const T *)(const void *)keys;                            \
        uint32_t lo = 0, hi = n;                                               \
        if (upper) {                                                           \
            while (lo < hi) {                                                  \
                uint32_t mid = (lo + hi) >> 1;                                 \
                if (k[mid] <= v) lo = mid + 1; else hi = mid;                  \
            }                                                                  \
        } else {                                                               \
            while (lo < hi) {                                                  \
                uint32_t mid = (lo + hi) >> 1;                                 \
                if (k[mid] < v) lo = mid + 1; else hi = mid;                   \
            }                                                                  \
        }                                                                      \
        return lo;                                                             \
    } while (0)

static inline uint32_t search(const struct commy__bt *t, const char *keys, uint32_t n, const void *p, size_t plen,
                              int upper)
{
    switch (t->fast) {
    case COMMY_T_I64: SEARCH_INT(int64_t);
    case COMMY_T_U64: SEARCH_INT(uint64_t);
    case COMMY_T_I32: SEARCH_INT(int32_t);
    case COMMY_T_U32: SEARCH_INT(uint32_t);
    case COMMY_T_I16: SEARCH_INT(int16_t);
    case COMMY_T_U16: SEARCH_INT(uint16_t);
    case COMMY_T_I8: SEARCH_INT(int8_t);
    case COMMY_T_U8: SEARCH_INT(uint8_t);
    default: break;
    }
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1;
        int c = commy__value_cmp(t->a, keys + (size_t)mid * t->ks, t->kt, p, plen);
        if (upper ? c <= 0 : c < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static inline int key_eq(const struct commy__bt *t, const void *slot, const void *p, size_t plen)
{
    if (t->fast) return memcmp(slot, p, t->ks) == 0;
    return commy__value_cmp(t->a, slot, t->kt, p, plen) == 0;
}

/* A node offset read from the tree, checked before use: a damaged tree gives
 * COMMY_ECORRUPT, never a wild read. */
static inline int node_ok(const struct commy__bt *t, uint64_t off, unsigned level)
{
    if (!commy__in_heap(t->a, off, t->nsize) || (off & 63)) return 0;
    const struct commy__btnode *nd = NODE(t, off);
    return nd->tag == COMMY__BT_NODE_TAG && nd->level == level && nd->n <= (level ? t->icap : t->lcap);
}

static int corrupt(const struct commy__bt *t, uint64_t off)
{
    return commy__err(COMMY_ECORRUPT,
                      "ordered container '%s': node at offset %" PRIu64 " is damaged; run commy_alloc_check", t->name,
                      off);
}

struct path {
    uint64_t node[COMMY__BT_MAX_HEIGHT];
    uint32_t idx[COMMY__BT_MAX_HEIGHT];
};

/* Walks from the root to the leaf where key belongs (upper-bound descent),
 * recording the path. Returns the depth of the leaf. */
static int descend(struct path *pa, const struct commy__bt *t, const void *p, size_t plen, int *leaf_depth)
{
    uint64_t off = t->m->root;
    unsigned h = t->m->height;
    for (unsigned d = 0; d < h; d++) {
        unsigned level = h - 1 - d;
        if (!node_ok(t, off, level)) return corrupt(t, off);
        struct commy__btnode *nd = NODE(t, off);
        pa->node[d] = off;
        if (level == 0) {
            *leaf_depth = (int)d;
            return COMMY_OK;
        }
        uint32_t i = p ? search(t, KEYS(nd), nd->n, p, plen, 1) : 0;
        pa->idx[d] = i;
        off = KIDS(t, nd)[i];
    }
    return corrupt(t, t->m->root);
}

int commy__bt_find(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t, const void *key, size_t klen)
{
    if (t->m->root == 0) return COMMY_ENOTFOUND;
    struct path pa;
    int d, rc = descend(&pa, t, key, klen, &d);
    if (rc) return rc;
    struct commy__btnode *nd = NODE(t, pa.node[d]);
    uint32_t i = search(t, KEYS(nd), nd->n, key, klen, 0);
    if (i >= nd->n || !key_eq(t, KEY(t, nd, i), key, klen)) return COMMY_ENOTFOUND;
    *leaf = pa.node[d];
    *idx = i;
    return COMMY_OK;
}

int commy__bt_find_fast(int *found, void *val, struct commy__handle *h, const struct commy__btmeta *layout,
                        const void *key)
{
    commy_alloc *a = h->a;
    struct commy__bt t;
    memset(&t, 0, sizeof t);
    t.a = a;
    t.kt = h->ktype;
    t.vt = layout->has_vals ? h->vtype : 0;
    t.ks = h->kslot;
    t.vs = layout->has_vals ? h->vslot : 0;
    t.nsize = layout->node_size;
    t.lcap = layout->leaf_cap;
    t.icap = layout->inner_cap;
    t.voff = layout->val_off;
    t.coff = layout->child_off;
    t.fast = fast_kind(t.kt);
    t.name = h->name;
    if (!t.fast || t.vs > 8 || commy__is_var(t.vt)) return 0;
    struct commy__snap s;
    for (int tries = 0; tries < 2; tries++) {
        struct commy__chdr *c = commy__snap_begin(&s, h);
        if (c == NULL) return 0;
        t.a = a = s.a;
        if (h->off > a->size - COMMY__BT_BLOCK_SIZE) return 0;
        const struct commy__btmeta *m = commy__bt_meta(c);
        uint64_t off = m->root;
        unsigned height = m->height;
        int hit = 0;
        if (height > COMMY__BT_MAX_HEIGHT || (off == 0) != (height == 0)) return 0;
        for (unsigned d = 0; d < height; d++) {
            unsigned level = height - 1 - d;
            /* Everything here may be a block freed and reused meanwhile:
             * checked only for bounds now, and for meaning by the sequence
             * check below. n is read once. */
            if ((off & 63) || !commy__snap_in_file(a, off, t.nsize)) return 0;
            const struct commy__btnode *nd = NODE(&t, off);
            uint32_t n = nd->n;
            if (n > (level ? t.icap : t.lcap) || nd->level != level) return 0;
            if (level > 0) {
                off = KIDS(&t, nd)[search(&t, KEYS(nd), n, key, t.ks, 1)];
                continue;
            }
            uint32_t i = search(&t, KEYS(nd), n, key, t.ks, 0);
            if (i < n && memcmp(KEY(&t, nd, i), key, t.ks) == 0) {
                hit = 1;
                if (t.vs) commy__copy_small(val, VAL(&t, nd, i), t.vs);
            }
        }
        if (commy__snap_valid(&s, h, c)) {
            *found = hit;
            return 1;
        }
    }
    return 0;
}

int commy__bt_bound(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t, const void *key, size_t klen,
                    int strict)
{
    *leaf = 0;
    *idx = 0;
    if (t->m->root == 0) return COMMY_OK;
    struct path pa;
    int d, rc = descend(&pa, t, key, klen, &d);
    if (rc) return rc;
    uint64_t off = pa.node[d];
    struct commy__btnode *nd = NODE(t, off);
    uint32_t i = key ? search(t, KEYS(nd), nd->n, key, klen, strict) : 0;
    /* The bound may be the first entry of a following leaf (skip empty ones
     * defensively: only a damaged tree has them). */
    for (unsigned guard = 0; i >= nd->n; guard++) {
        off = nd->next;
        if (off == 0) return COMMY_OK;
        if (!node_ok(t, off, 0) || guard > 64) return corrupt(t, off);
        nd = NODE(t, off);
        i = 0;
    }
    *leaf = off;
    *idx = i;
    return COMMY_OK;
}

int commy__bt_last(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t)
{
    *leaf = 0;
    *idx = 0;
    uint64_t off = t->m->root;
    unsigned h = t->m->height;
    for (unsigned d = 0; d < h; d++) {
        unsigned level = h - 1 - d;
        if (!node_ok(t, off, level)) return corrupt(t, off);
        struct commy__btnode *nd = NODE(t, off);
        if (level == 0) {
            if (nd->n == 0) return COMMY_OK;
            *leaf = off;
            *idx = nd->n - 1u;
            return COMMY_OK;
        }
        off = KIDS(t, nd)[nd->n];
    }
    return COMMY_OK;
}

int commy__bt_cursor_ok(const struct commy__bt *t, uint64_t leaf, uint32_t idx)
{
    return node_ok(t, leaf, 0) && idx < NODE(t, leaf)->n;
}

/* ------------------------------------------------------------ loading */

static const void *slot_bytes(const struct commy__bt *t, const void *slot, commy_type ty, size_t *len)
{
    return commy__value_bytes(t->a, slot, ty, len);
}

int commy__bt_load(const struct commy__bt *t, uint64_t leaf, uint32_t idx, void *kout, size_t kcap, size_t *klen,
                   void *vout, size_t vcap, size_t *vlen)
{
    struct commy__btnode *nd = NODE(t, leaf);
    size_t kl = 0, vl = 0;
    const void *kb = slot_bytes(t, KEY(t, nd, idx), t->kt, &kl);
    const void *vb = NULL;
    if (t->vs) vb = slot_bytes(t, VAL(t, nd, idx), t->vt, &vl);
    if (kb == NULL || (t->vs && vb == NULL)) return corrupt(t, leaf);
    if (klen) *klen = kl;
    if (vlen) *vlen = vl;
    if ((kout && kcap < kl) || (t->vs && vout && vcap < vl))
        return commy__err(COMMY_ETOOSMALL,
                          "ordered container '%s': the entry needs %zu key bytes and %zu value bytes; the buffers hold "
                          "%zu and %zu",
                          t->name, kl, vl, kout ? kcap : kl, vout ? vcap : vl);
    if (kout && kl) memcpy(kout, kb, kl);
    if (t->vs && vout && vl) memcpy(vout, vb, vl);
    return COMMY_OK;
}

int commy__bt_load_val(const struct commy__bt *t, uint64_t leaf, uint32_t idx, void *out, size_t cap,
                       size_t *out_len)
{
    return commy__value_load(t->a, VAL(t, NODE(t, leaf), idx), t->vt, out, cap, out_len);
}

/* ------------------------------------------------------------ nodes */

static int node_new(uint64_t *out, struct commy__bt *t, unsigned level)
{
    int rc = commy__alloc(out, t->a, t->nsize, 64);
    if (rc) return rc;
    struct commy__btnode *nd = NODE(t, *out);
    memset(nd, 0, t->nsize);
    nd->tag = COMMY__BT_NODE_TAG;
    nd->level = (uint8_t)level;
    return commy__put64(t->a, &t->m->nodes, t->m->nodes + 1);
}

static int node_free(struct commy__bt *t, uint64_t off)
{
    int rc = commy__free(t->a, off);
    return rc ? rc : commy__put64(t->a, &t->m->nodes, t->m->nodes - 1);
}

/* Logs a node's used bytes before an in-place change. */
static inline int touch(struct commy__bt *t, uint64_t off)
{
    return commy__log(t->a, NODE(t, off), t->nsize);
}

/* Copies a key slot into a separator slot that owns its bytes. */
static int sep_copy(struct commy__bt *t, void *dst, const void *src)
{
    if (!commy__is_var(t->kt)) {
        memcpy(dst, src, t->ks);
        return COMMY_OK;
    }
    size_t len = 0;
    const void *b = slot_bytes(t, src, t->kt, &len);
    if (b == NULL) return corrupt(t, commy__off(t->a, src));
    return commy__value_store(t->a, dst, t->kt, b, len, 0);
}

static void move_slots(void *dst, const void *src, size_t n, size_t size) { memmove(dst, src, n * size); }

/* ------------------------------------------------------------ insert */

/* Inserts separator sep (an owned slot) and right child at position i of the
 * inner node at depth d, splitting upward as needed. */
static int inner_insert(struct commy__bt *t, struct path *pa, int d, char *sep, uint64_t right)
{
    for (;;) {
        if (d < 0) {
            /* The root split: a new root with one separator. */
            uint64_t root;
            int rc = node_new(&root, t, t->m->height);
            if (rc) return rc;
            struct commy__btnode *r = NODE(t, root);
            r->n = 1;
            memcpy(KEY(t, r, 0), sep, t->ks);
            KIDS(t, r)[0] = t->m->root;
            KIDS(t, r)[1] = right;
            rc = commy__log(t->a, t->m, sizeof *t->m);
            if (rc) return rc;
            t->m->root = root;
            t->m->height++;
            return COMMY_OK;
        }
        uint64_t off = pa->node[d];
        uint32_t ci = pa->idx[d];
        struct commy__btnode *nd = NODE(t, off);
        uint32_t n = nd->n;
        int rc = touch(t, off);
        if (rc) return rc;
        if (n < t->icap) {
            move_slots(KEY(t, nd, ci + 1), KEY(t, nd, ci), n - ci, t->ks);
            memcpy(KEY(t, nd, ci), sep, t->ks);
            uint64_t *k = KIDS(t, nd);
            memmove(k + ci + 2, k + ci + 1, (size_t)(n - ci) * 8);
            k[ci + 1] = right;
            nd->n = (uint16_t)(n + 1);
            return COMMY_OK;
        }
        /* Split: the combined icap+1 keys; key m goes up. */
        uint64_t roff;
        rc = node_new(&roff, t, nd->level);
        if (rc) return rc;
        nd = NODE(t, off);
        struct commy__btnode *r = NODE(t, roff);
        uint32_t m = (n + 1) / 2;
        char upbuf[64];
        char *up = t->ks <= sizeof upbuf ? upbuf : malloc(t->ks);
        if (!up) return commy__err(COMMY_ENOMEM, "ordered container '%s': out of memory", t->name);
        uint64_t *lk = KIDS(t, nd), *rk = KIDS(t, r);
        /* combined key j, child j */
#define CK(j) ((j) < ci ? KEY(t, nd, (j)) : (j) == ci ? sep : KEY(t, nd, (j)-1))
#define CC(j) ((j) <= ci ? lk[(j)] : (j) == ci + 1 ? right : lk[(j)-1])
        for (uint32_t j = m + 1; j <= n; j++) memcpy(KEY(t, r, j - m - 1), CK(j), t->ks);
        for (uint32_t j = m + 1; j <= n + 1; j++) rk[j - m - 1] = CC(j);
        memcpy(up, CK(m), t->ks);
#undef CK
#undef CC
        r->n = (uint16_t)(n - m);
        if (ci < m) {
            move_slots(KEY(t, nd, ci + 1), KEY(t, nd, ci), m - 1 - ci, t->ks);
            memcpy(KEY(t, nd, ci), sep, t->ks);
            memmove(lk + ci + 2, lk + ci + 1, (size_t)(m - 1 - ci) * 8);
            lk[ci + 1] = right;
        }
        nd->n = (uint16_t)m;
        memcpy(sep, up, t->ks);
        if (up != upbuf) free(up);
        right = roff;
        d--;
    }
}

int commy__bt_put(int *added, struct commy__bt *t, const void *key, size_t klen, const void *val, size_t vlen,
                  int replace)
{
    *added = 0;
    int rc;
    if (t->m->root == 0) {
        uint64_t off;
        rc = node_new(&off, t, 0);
        if (rc) return rc;
        rc = commy__log(t->a, t->m, 64);
        if (rc) return rc;
        t->m->root = off;
        t->m->height = 1;
    }
    struct path pa;
    int d;
    rc = descend(&pa, t, key, klen, &d);
    if (rc) return rc;
    uint64_t off = pa.node[d];
    struct commy__btnode *nd = NODE(t, off);
    uint32_t n = nd->n, i = search(t, KEYS(nd), n, key, klen, 0);
    if (i < n && key_eq(t, KEY(t, nd, i), key, klen)) {
        if (!replace || !t->vs) return COMMY_OK;
        /* Store the new value before freeing the old so a failed allocation leaves it intact. */
        char old[16];
        void *slot = VAL(t, nd, i);
        int var = commy__is_var(t->vt);
        if (var) memcpy(old, slot, 16);
        rc = commy__value_store(t->a, slot, t->vt, val, vlen, 1);
        if (rc == 0 && var) rc = commy__value_free(t->a, old, t->vt);
        return rc;
    }
    uint64_t target = off;
    uint32_t ti = i;
    uint64_t roff = 0;
    if (n < t->lcap) {
        rc = touch(t, off);
        if (rc) return rc;
        move_slots(KEY(t, nd, i + 1), KEY(t, nd, i), n - i, t->ks);
        if (t->vs) move_slots(VAL(t, nd, i + 1), VAL(t, nd, i), n - i, t->vs);
        nd->n = (uint16_t)(n + 1);
    } else {
        rc = node_new(&roff, t, 0);
        if (rc) return rc;
        nd = NODE(t, off);
        rc = touch(t, off);
        if (rc) return rc;
        struct commy__btnode *r = NODE(t, roff);
        uint32_t mid = (n + 1) / 2; /* entries the left keeps of the n+1 */
        uint32_t from = i < mid ? mid - 1 : mid;
        memcpy(KEY(t, r, 0), KEY(t, nd, from), (size_t)(n - from) * t->ks);
        if (t->vs) memcpy(VAL(t, r, 0), VAL(t, nd, from), (size_t)(n - from) * t->vs);
        r->n = (uint16_t)(n - from);
        nd->n = (uint16_t)from;
        r->next = nd->next;
        nd->next = roff;
        struct commy__btnode *tn = nd;
        if (i >= mid) {
            target = roff;
            ti = i - mid;
            tn = r;
        }
        uint32_t tnn = tn->n;
        move_slots(KEY(t, tn, ti + 1), KEY(t, tn, ti), tnn - ti, t->ks);
        if (t->vs) move_slots(VAL(t, tn, ti + 1), VAL(t, tn, ti), tnn - ti, t->vs);
        tn->n = (uint16_t)(tnn + 1);
    }
    struct commy__btnode *tn = NODE(t, target);
    rc = commy__value_store(t->a, KEY(t, tn, ti), t->kt, key, klen, 0);
    if (rc == 0 && t->vs) rc = commy__value_store(t->a, VAL(t, tn, ti), t->vt, val, vlen, 0);
    if (rc) return rc;
    if (roff) {
        char sep[64];
        char *sp = t->ks <= sizeof sep ? sep : malloc(t->ks);
        if (!sp) return commy__err(COMMY_ENOMEM, "ordered container '%s': out of memory", t->name);
        rc = sep_copy(t, sp, KEY(t, NODE(t, roff), 0));
        if (rc == 0) rc = inner_insert(t, &pa, d - 1, sp, roff);
        if (sp != sep) free(sp);
        if (rc) return rc;
    }
    rc = commy__put64(t->a, &t->c->len, t->c->len + 1);
    if (rc == 0) *added = 1;
    return rc;
}

/* ------------------------------------------------------------ remove */

/* Frees what an entry's slots own. */
static int entry_free(struct commy__bt *t, struct commy__btnode *nd, uint32_t i)
{
    int rc = commy__value_free(t->a, KEY(t, nd, i), t->kt);
    if (rc == 0 && t->vs) rc = commy__value_free(t->a, VAL(t, nd, i), t->vt);
    return rc;
}

/* Replaces separator slot dst (owned) with a copy of key slot src. */
static int sep_replace(struct commy__bt *t, void *dst, const void *src)
{
    if (!commy__is_var(t->kt)) {
        memcpy(dst, src, t->ks);
        return COMMY_OK;
    }
    char old[16];
    memcpy(old, dst, 16);
    int rc = sep_copy(t, dst, src);
    return rc ? rc : commy__value_free(t->a, old, t->kt);
}

/* Removes separator i and child i+1 from inner node nd (already logged). */
static void inner_drop(struct commy__bt *t, struct commy__btnode *nd, uint32_t i)
{
    uint32_t n = nd->n;
    move_slots(KEY(t, nd, i), KEY(t, nd, i + 1), n - i - 1, t->ks);
    uint64_t *k = KIDS(t, nd);
    memmove(k + i + 1, k + i + 2, (size_t)(n - i - 1) * 8);
    nd->n = (uint16_t)(n - 1);
}

/* Restores the fill of the node at depth d (below its minimum) from a sibling. */
static int rebalance(struct commy__bt *t, struct path *pa, int d)
{
    uint64_t poff = pa->node[d - 1];
    struct commy__btnode *p = NODE(t, poff);
    uint32_t ci = pa->idx[d - 1];
    uint64_t off = pa->node[d];
    struct commy__btnode *nd = NODE(t, off);
    int leaf = nd->level == 0;
    uint32_t min = leaf ? t->lcap / 2 : t->icap / 2;
    uint64_t *pk = KIDS(t, p);
    uint64_t loff = ci > 0 ? pk[ci - 1] : 0, roff = ci < p->n ? pk[ci + 1] : 0;
    if (loff && !node_ok(t, loff, nd->level)) return corrupt(t, loff);
    if (roff && !node_ok(t, roff, nd->level)) return corrupt(t, roff);
    struct commy__btnode *l = loff ? NODE(t, loff) : NULL, *r = roff ? NODE(t, roff) : NULL;
    int rc = touch(t, poff);
    if (rc == 0) rc = touch(t, off);
    if (rc) return rc;
    uint32_t n = nd->n;
    if (l && l->n > min) {
        if ((rc = touch(t, loff))) return rc;
        uint32_t ln = l->n;
        move_slots(KEY(t, nd, 1), KEY(t, nd, 0), n, t->ks);
        if (leaf) {
            if (t->vs) move_slots(VAL(t, nd, 1), VAL(t, nd, 0), n, t->vs);
            memcpy(KEY(t, nd, 0), KEY(t, l, ln - 1), t->ks);
            if (t->vs) memcpy(VAL(t, nd, 0), VAL(t, l, ln - 1), t->vs);
            rc = sep_replace(t, KEY(t, p, ci - 1), KEY(t, nd, 0));
        } else {
            uint64_t *k = KIDS(t, nd);
            memmove(k + 1, k, (size_t)(n + 1) * 8);
            memcpy(KEY(t, nd, 0), KEY(t, p, ci - 1), t->ks);
            k[0] = KIDS(t, l)[ln];
            memcpy(KEY(t, p, ci - 1), KEY(t, l, ln - 1), t->ks);
        }
        l->n = (uint16_t)(ln - 1);
        nd->n = (uint16_t)(n + 1);
        return rc;
    }
    if (r && r->n > min) {
        if ((rc = touch(t, roff))) return rc;
        uint32_t rn = r->n;
        if (leaf) {
            memcpy(KEY(t, nd, n), KEY(t, r, 0), t->ks);
            if (t->vs) memcpy(VAL(t, nd, n), VAL(t, r, 0), t->vs);
            move_slots(KEY(t, r, 0), KEY(t, r, 1), rn - 1, t->ks);
            if (t->vs) move_slots(VAL(t, r, 0), VAL(t, r, 1), rn - 1, t->vs);
            r->n = (uint16_t)(rn - 1);
            nd->n = (uint16_t)(n + 1);
            return sep_replace(t, KEY(t, p, ci), KEY(t, r, 0));
        }
        uint64_t *k = KIDS(t, nd), *rk = KIDS(t, r);
        memcpy(KEY(t, nd, n), KEY(t, p, ci), t->ks);
        k[n + 1] = rk[0];
        memcpy(KEY(t, p, ci), KEY(t, r, 0), t->ks);
        move_slots(KEY(t, r, 0), KEY(t, r, 1), rn - 1, t->ks);
        memmove(rk, rk + 1, (size_t)rn * 8);
        r->n = (uint16_t)(rn - 1);
        nd->n = (uint16_t)(n + 1);
        return COMMY_OK;
    }
    /* Merge the pair (j, j+1) into j. */
    uint32_t j = l ? ci - 1 : ci;
    uint64_t aoff = l ? loff : off, boff = l ? off : roff;
    if (boff == 0) return corrupt(t, poff);
    struct commy__btnode *A = NODE(t, aoff), *B = NODE(t, boff);
    if ((rc = touch(t, aoff))) return rc;
    uint32_t an = A->n, bn = B->n;
    if (leaf) {
        memcpy(KEY(t, A, an), KEY(t, B, 0), (size_t)bn * t->ks);
        if (t->vs) memcpy(VAL(t, A, an), VAL(t, B, 0), (size_t)bn * t->vs);
        A->n = (uint16_t)(an + bn);
        A->next = B->next;
        if ((rc = commy__value_free(t->a, KEY(t, p, j), t->kt))) return rc;
    } else {
        memcpy(KEY(t, A, an), KEY(t, p, j), t->ks);
        memcpy(KEY(t, A, an + 1), KEY(t, B, 0), (size_t)bn * t->ks);
        memcpy(KIDS(t, A) + an + 1, KIDS(t, B), (size_t)(bn + 1) * 8);
        A->n = (uint16_t)(an + 1 + bn);
    }
    inner_drop(t, p, j);
    return node_free(t, boff);
}

int commy__bt_remove(struct commy__bt *t, const void *key, size_t klen)
{
    if (t->m->root == 0) return COMMY_ENOTFOUND;
    struct path pa;
    int d, rc = descend(&pa, t, key, klen, &d);
    if (rc) return rc;
    uint64_t off = pa.node[d];
    struct commy__btnode *nd = NODE(t, off);
    uint32_t n = nd->n, i = search(t, KEYS(nd), n, key, klen, 0);
    if (i >= n || !key_eq(t, KEY(t, nd, i), key, klen)) return COMMY_ENOTFOUND;
    if ((rc = touch(t, off))) return rc;
    if ((rc = entry_free(t, nd, i))) return rc;
    move_slots(KEY(t, nd, i), KEY(t, nd, i + 1), n - i - 1, t->ks);
    if (t->vs) move_slots(VAL(t, nd, i), VAL(t, nd, i + 1), n - i - 1, t->vs);
    nd->n = (uint16_t)(n - 1);
    for (; d > 0; d--) {
        struct commy__btnode *x = NODE(t, pa.node[d]);
        uint32_t min = x->level == 0 ? t->lcap / 2 : t->icap / 2;
        if (x->n >= min) break;
        if ((rc = rebalance(t, &pa, d))) return rc;
    }
    struct commy__btnode *root = NODE(t, t->m->root);
    if (root->n == 0) {
        uint64_t old = t->m->root;
        if ((rc = commy__log(t->a, t->m, 64))) return rc;
        if (root->level == 0) {
            t->m->root = 0;
            t->m->height = 0;
        } else {
            t->m->root = KIDS(t, root)[0];
            t->m->height--;
        }
        if ((rc = node_free(t, old))) return rc;
    }
    return commy__put64(t->a, &t->c->len, t->c->len - 1);
}

/* ------------------------------------------------------------ clear */

int commy__bt_detach(struct commy__bt *t)
{
    if (t->m->root == 0) return COMMY_OK;
    uint64_t g = t->m->root;
    if (t->m->garbage) {
        /* An earlier clear is still being freed: hang both trees under one
         * node with an empty separator so the collector walks them as one. */
        unsigned lv = NODE(t, t->m->root)->level;
        if (commy__in_heap(t->a, t->m->garbage, 16) && NODE(t, t->m->garbage)->level > lv)
            lv = NODE(t, t->m->garbage)->level;
        if (lv + 1 >= COMMY__BT_MAX_HEIGHT) return corrupt(t, t->m->garbage);
        int rc = commy__calloc(&g, t->a, t->nsize, 64);
        if (rc) return rc;
        struct commy__btnode *nd = NODE(t, g);
        nd->tag = COMMY__BT_NODE_TAG;
        nd->level = (uint8_t)(lv + 1);
        nd->n = 1;
        KIDS(t, nd)[0] = t->m->garbage;
        KIDS(t, nd)[1] = t->m->root;
    }
    int rc = commy__log(t->a, t->m, sizeof *t->m);
    if (rc) return rc;
    t->m->garbage = g;
    t->m->root = 0;
    t->m->height = 0;
    t->m->nodes = 0;
    return commy__put64(t->a, &t->c->len, 0);
}

/* Frees what a garbage node owns and the node; the caller unlinks it. */
static int free_garbage_node(struct commy__bt *t, uint64_t off)
{
    struct commy__btnode *nd = NODE(t, off);
    int rc = COMMY_OK;
    if (commy__is_var(t->kt) || (t->vs && commy__is_var(t->vt)))
        for (uint32_t i = 0; rc == 0 && i < nd->n; i++) {
            if (nd->level == 0) rc = entry_free(t, nd, i);
            else rc = commy__value_free(t->a, KEY(t, nd, i), t->kt);
        }
    return rc ? rc : commy__free(t->a, off);
}

/* Removes the rightmost leaf of the garbage tree and any inner node left
 * without children. Each step is consistent on its own. */
static int collect_step(struct commy__bt *t)
{
    uint64_t path[COMMY__BT_MAX_HEIGHT];
    uint64_t off = t->m->garbage;
    unsigned d = 0;
    for (;;) {
        if (!commy__in_heap(t->a, off, t->nsize) || (off & 63) || NODE(t, off)->tag != COMMY__BT_NODE_TAG ||
            NODE(t, off)->n > (NODE(t, off)->level ? t->icap : t->lcap) || d >= COMMY__BT_MAX_HEIGHT)
            return corrupt(t, off);
        path[d] = off;
        struct commy__btnode *nd = NODE(t, off);
        if (nd->level == 0) break;
        off = KIDS(t, nd)[nd->n];
        d++;
    }
    /* Free the leaf, then walk up while the parent loses its only child. */
    int rc = free_garbage_node(t, path[d]);
    while (rc == 0) {
        if (d == 0) return commy__put64(t->a, &t->m->garbage, 0);
        struct commy__btnode *p = NODE(t, path[d - 1]);
        if (p->n == 0) {
            /* Its separators are gone already; free the node itself. */
            rc = commy__free(t->a, path[d - 1]);
            d--;
            continue;
        }
        rc = commy__value_free(t->a, KEY(t, p, p->n - 1), t->kt);
        if (rc == 0) {
            rc = commy__log(t->a, p, 16);
            if (rc == 0) p->n--;
        }
        return rc;
    }
    return rc;
}

int commy__bt_collect(int *more, uint64_t *steps, struct commy__bt *t, uint64_t max_nodes)
{
    /* A generous bound on the journal one step needs: each free logs a few
     * allocator words (1 KiB is ample: about 20 words with coalescing); a step frees one leaf, what its
     * slots own, and at most one node and one separator per level above. */
    uint64_t levels = 0;
    if (t->m->garbage && commy__in_heap(t->a, t->m->garbage, 16)) levels = NODE(t, t->m->garbage)->level;
    uint64_t frees = 1 + 2 * levels;
    if (commy__is_var(t->kt)) frees += t->lcap;
    if (t->vs && commy__is_var(t->vt)) frees += t->lcap;
    uint64_t need = frees * 1024 + levels * 64;
    int rc = COMMY_OK;
    uint64_t i = 0;
    for (; i < max_nodes && t->m->garbage && commy__journal_room(t->a) > need; i++)
        if ((rc = collect_step(t))) break;
    *more = t->m->garbage != 0;
    if (steps) *steps = i;
    return rc;
}

/* ------------------------------------------------------------ kind ops */

int commy__bt_init(commy_alloc *a, struct commy__chdr *c, int has_vals)
{
    (void)a;
    struct commy__btmeta *m = commy__bt_meta(c);
    memset(m, 0, sizeof *m);
    int rc = commy__bt_layout(m, c->key_type, has_vals ? c->val_type : 0, has_vals);
    if (rc) {
        char kb[32], vb[32];
        return commy__err(COMMY_EINVAL, "ordered container: key type %s / value type %s cannot be stored in a tree",
                          commy_type_name(kb, sizeof kb, c->key_type), commy_type_name(vb, sizeof vb, c->val_type));
    }
    return COMMY_OK;
}

/* Frees a whole subtree, depth first. */
static int free_tree(struct commy__bt *t, uint64_t off, unsigned depth, uint64_t *budget)
{
    if (off == 0) return COMMY_OK;
    if (depth > COMMY__BT_MAX_HEIGHT || (*budget)-- == 0 || !commy__in_heap(t->a, off, t->nsize) || (off & 63) ||
        NODE(t, off)->tag != COMMY__BT_NODE_TAG)
        return corrupt(t, off);
    struct commy__btnode *nd = NODE(t, off);
    if (nd->level) {
        if (nd->n > t->icap) return corrupt(t, off);
        for (uint32_t i = 0; i <= nd->n; i++) {
            int rc = free_tree(t, KIDS(t, nd)[i], depth + 1, budget);
            if (rc) return rc;
        }
    } else if (nd->n > t->lcap) {
        return corrupt(t, off);
    }
    return free_garbage_node(t, off);
}

int commy__bt_destroy(commy_alloc *a, struct commy__chdr *c)
{
    struct commy__bt t;
    int rc = commy__bt_view(&t, a, c, NULL, NULL);
    if (rc) return rc;
    uint64_t budget = a->size / t.nsize + 1;
    rc = free_tree(&t, t.m->root, 0, &budget);
    if (rc == 0) rc = free_tree(&t, t.m->garbage, 0, &budget);
    if (rc == COMMY_EJOURNAL)
        /* Removal is one operation; clear frees a big tree over several. */
        return commy__err(COMMY_EJOURNAL,
                          "ordered container of %" PRIu64 " entries in %" PRIu64 " nodes is too big to free in one "
                          "operation of this segment's journal; clear it (commy_omap_clear/commy_oset_clear) and "
                          "remove it again",
                          c->len, t.m->nodes);
    if (rc == 0) {
        rc = commy__log(a, t.m, 64);
        if (rc == 0) {
            t.m->root = t.m->garbage = 0;
            t.m->height = 0;
            t.m->nodes = 0;
        }
    }
    return rc;
}

struct walk {
    uint64_t entries, nodes, budget, bytes;
    uint64_t prev_leaf;   /* the last leaf visited, to check the chain */
    const char *last_key; /* the last key seen, to check order across leaves */
    int count_bytes;
};

static int check_fail(const struct commy__bt *t, uint64_t off, const char *what)
{
    return commy__err(COMMY_ECORRUPT, "ordered container '%s': node at offset %" PRIu64 ": %s", t->name, off, what);
}

/* lo, hi: separator slots bounding this subtree's keys (NULL: unbounded). */
static int walk_node(struct commy__bt *t, struct walk *w, uint64_t off, unsigned level, int is_root, const char *lo,
                     const char *hi)
{
    if (w->budget-- == 0) return check_fail(t, off, "the tree has more nodes than fit in the segment (a cycle?)");
    if (!commy__in_heap(t->a, off, t->nsize) || (off & 63)) return check_fail(t, off, "offset outside the heap");
    if (commy__block_size(t->a, off) < t->nsize) return check_fail(t, off, "not a live block of a node's size");
    struct commy__btnode *nd = NODE(t, off);
    if (nd->tag != COMMY__BT_NODE_TAG) return check_fail(t, off, "bad node tag");
    if (nd->level != level) return check_fail(t, off, "leaves are not all at the same depth");
    uint32_t cap = level ? t->icap : t->lcap, min = is_root ? 1 : cap / 2, n = nd->n;
    if (n > cap || n < min) return check_fail(t, off, "fill outside its bounds");
    w->nodes++;
    if (w->count_bytes) w->bytes += commy__block_size(t->a, off);
    for (uint32_t i = 0; i < n; i++) {
        const char *k = KEY(t, nd, i);
        if (commy__slot_check(t->a, k, t->kt) != COMMY_OK) return check_fail(t, off, "a key's bytes are damaged");
        if (w->count_bytes && commy__is_var(t->kt)) w->bytes += commy__block_size(t->a, ((const struct commy__var *)(const void *)k)->off);
        if (i > 0 && commy__slot_cmp(t->a, KEY(t, nd, i - 1), k, t->kt) >= 0)
            return check_fail(t, off, "keys out of order within the node");
        if (lo && commy__slot_cmp(t->a, k, lo, t->kt) < 0) return check_fail(t, off, "a key below its separator");
        if (hi && commy__slot_cmp(t->a, k, hi, t->kt) >= 0) return check_fail(t, off, "a key at or above its separator");
        if (level == 0 && t->vs) {
            const char *v = VAL(t, nd, i);
            if (commy__slot_check(t->a, v, t->vt) != COMMY_OK) return check_fail(t, off, "a value's bytes are damaged");
            if (w->count_bytes && commy__is_var(t->vt))
                w->bytes += commy__block_size(t->a, ((const struct commy__var *)(const void *)v)->off);
        }
    }
    if (level == 0) {
        if (w->prev_leaf && NODE(t, w->prev_leaf)->next != off) return check_fail(t, off, "the leaf chain skips this leaf");
        if (w->last_key && n && commy__slot_cmp(t->a, w->last_key, KEY(t, nd, 0), t->kt) >= 0)
            return check_fail(t, off, "keys out of order across leaves");
        if (n) w->last_key = KEY(t, nd, n - 1);
        w->prev_leaf = off;
        w->entries += n;
        return COMMY_OK;
    }
    for (uint32_t i = 0; i <= n; i++) {
        int rc = walk_node(t, w, KIDS(t, nd)[i], level - 1, 0, i ? KEY(t, nd, i - 1) : lo, i < n ? KEY(t, nd, i) : hi);
        if (rc) return rc;
    }
    return COMMY_OK;
}

/* Garbage: only bounds and ownership, for bytes and destroy. */
static int walk_garbage(struct commy__bt *t, struct walk *w, uint64_t off, unsigned depth)
{
    if (w->budget-- == 0 || depth > COMMY__BT_MAX_HEIGHT || !commy__in_heap(t->a, off, t->nsize) || (off & 63) ||
        commy__block_size(t->a, off) < t->nsize || NODE(t, off)->tag != COMMY__BT_NODE_TAG)
        return check_fail(t, off, "a node being freed by clear is damaged");
    struct commy__btnode *nd = NODE(t, off);
    if (nd->n > (nd->level ? t->icap : t->lcap)) return check_fail(t, off, "a node being freed by clear is damaged");
    w->bytes += commy__block_size(t->a, off);
    for (uint32_t i = 0; i < nd->n; i++) {
        const char *k = KEY(t, nd, i);
        if (commy__is_var(t->kt)) w->bytes += commy__block_size(t->a, ((const struct commy__var *)(const void *)k)->off);
        if (nd->level == 0 && t->vs && commy__is_var(t->vt))
            w->bytes += commy__block_size(t->a, ((const struct commy__var *)(const void *)VAL(t, nd, i))->off);
    }
    if (nd->level)
        for (uint32_t i = 0; i <= nd->n; i++) {
            int rc = walk_garbage(t, w, KIDS(t, nd)[i], depth + 1);
            if (rc) return rc;
        }
    return COMMY_OK;
}

static int walk(struct commy__bt *t, struct walk *w)
{
    memset(w, 0, sizeof *w);
    w->budget = t->a->size / t->nsize + 1;
    int rc = COMMY_OK;
    if (t->m->root) {
        rc = walk_node(t, w, t->m->root, t->m->height - 1u, 1, NULL, NULL);
        if (rc == 0 && NODE(t, w->prev_leaf)->next != 0) rc = check_fail(t, w->prev_leaf, "the last leaf links onward");
    }
    return rc;
}

int commy__bt_check(commy_alloc *a, const struct commy__chdr *c)
{
    struct commy__bt t;
    int rc = commy__bt_view(&t, a, (struct commy__chdr *)c, NULL, NULL);
    if (rc) return rc;
    struct walk w;
    rc = walk(&t, &w);
    if (rc) return rc;
    if (w.entries != c->len)
        return commy__err(COMMY_ECORRUPT, "ordered container: header says %" PRIu64 " entries, the tree holds %" PRIu64,
                          c->len, w.entries);
    if (w.nodes != t.m->nodes)
        return commy__err(COMMY_ECORRUPT, "ordered container: header counts %" PRIu64 " nodes, the tree has %" PRIu64,
                          t.m->nodes, w.nodes);
    if (t.m->garbage) {
        w.budget = a->size / t.nsize + 1;
        rc = walk_garbage(&t, &w, t.m->garbage, 0);
    }
    return rc;
}

uint64_t commy__bt_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    struct commy__bt t;
    if (commy__bt_view(&t, a, (struct commy__chdr *)c, NULL, NULL) != COMMY_OK) return 0;
    struct walk w;
    memset(&w, 0, sizeof w);
    w.budget = a->size / t.nsize + 1;
    w.count_bytes = 1;
    if (t.m->root) (void)walk_node(&t, &w, t.m->root, t.m->height - 1u, 1, NULL, NULL);
    uint64_t bytes = w.bytes;
    if (t.m->garbage) {
        w.bytes = 0;
        w.budget = a->size / t.nsize + 1;
        if (walk_garbage(&t, &w, t.m->garbage, 0) == COMMY_OK) bytes += w.bytes;
    }
    return bytes;
}

int commy__bt_clear(struct commy__handle *h, const struct commy__btmeta *layout)
{
    /* The first operation empties the map at once (the tree moves to
     * meta.garbage) and frees what the journal allows; further operations
     * free the rest. A crash in between leaves the rest in meta.garbage,
     * still owned and accounted for, for the next clear to free. */
    for (int first = 1;; first = 0) {
        uint64_t sp;
        struct commy__chdr *c;
        int rc = commy__op_begin(h, 1, &sp, &c);
        if (rc) return rc;
        struct commy__bt t;
        rc = commy__bt_view(&t, h->a, c, h->name, layout);
        int more = 0, changed = 0;
        uint64_t steps = 0;
        if (rc == 0 && first && t.m->root) {
            rc = commy__bt_detach(&t);
            changed = 1;
        }
        if (rc == 0) rc = commy__bt_collect(&more, &steps, &t, UINT64_MAX);
        int progress = rc == 0 && (changed || steps > 0);
        rc = commy__op_end(h, sp, rc, changed);
        if (rc) return rc;
        /* No progress: a batch holds the journal; a later clear finishes. */
        if (!more || !progress) return COMMY_OK;
    }
}
