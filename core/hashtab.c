/* The hash table engine of commy_map and commy_set (docs/format.md, "map
 * and set").
 *
 * SwissTable-style open addressing rather than Robin Hood: an insert writes
 * one control byte and one slot, a remove one control byte, whatever the
 * neighbourhood looks like. Robin Hood moves entries on both (displacement on
 * insert, backward shift on remove), and every moved entry would cost a
 * journal record. Here the slot bytes of an insert are not even logged: a
 * slot whose control byte says empty is unreachable, and the journal restores
 * that control byte on rollback.
 *
 * Table block:  u64 cap | u64 growth_left | u64 next | u64 drain | ctrl[cap + 8] (padded to 8) | slots
 * ctrl: 0x80 empty, 0xFE deleted, 0x00-0x7F full with the low 7 hash bits.
 * ctrl[cap + i] mirrors ctrl[i] for i < 8 so that a group of 8 control bytes
 * starting anywhere can be read with one unaligned load. */
#include "hashtab.h"

#include <inttypes.h>
#include <stdio.h>

#define GW 8 /* slots per probed group */
#define CTRL_EMPTY 0x80u
#define CTRL_DELETED 0xFEu
#define MIN_CAP 8u
#define MAX_CAP (UINT64_C(1) << 40)
#define TAB_HDR 32u

static const uint64_t LSBS = UINT64_C(0x0101010101010101);
static const uint64_t MSBS = UINT64_C(0x8080808080808080);

struct table {
    uint64_t cap;         /* slots, a power of two >= 8 */
    uint64_t growth_left; /* inserts into empty slots allowed before a rehash */
    uint64_t next;        /* detached by a clear: the next table waiting to be freed */
    uint64_t drain;       /* detached by a clear: slots below this no longer own blocks */
};

/* Everything one operation needs to know about a container's table. */
struct ht {
    commy_alloc *a;
    struct commy__chdr *c;
    commy_type kt, vt;
    uint32_t kslot, vslot, voff, stride;
    int is_map, kvar, vvar;
    int numkey; /* a number or bool: hashed inline */
    uint64_t seed;
    struct table *tab; /* NULL when there is no table yet */
    uint64_t cap, mask;
    uint8_t *ctrl;
    char *slots;
};

static inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

static uint32_t type_align(commy_type t, uint32_t slot)
{
    if (commy__is_var(t)) return 8;
    return (slot == 1 || slot == 2 || slot == 4 || slot == 8) ? slot : 1;
}

static inline uint64_t max_load(uint64_t cap) { return cap - cap / 8; }

static inline uint64_t ctrl_bytes(uint64_t cap) { return align_up(cap + GW, 8); }

static uint64_t table_bytes(uint64_t cap, uint32_t stride) { return TAB_HDR + ctrl_bytes(cap) + cap * stride; }

/* The smallest capacity that holds n entries at most half full (7/16 of the
 * slots), so a freshly sized table takes many inserts before the next rehash. */
static uint64_t cap_for(uint64_t n)
{
    uint64_t cap = MIN_CAP;
    while (cap < MAX_CAP && n * 16 > cap * 7) cap <<= 1;
    return cap;
}

/* h, when the caller has a handle, carries the slot layout already worked out. */
static void layout(struct ht *t, commy_alloc *a, struct commy__chdr *c, const struct commy__handle *h)
{
    t->a = a;
    t->c = c;
    if (h && h->stride) {
        t->is_map = h->kind == COMMY_KIND_MAP;
        t->kt = h->ktype;
        t->vt = t->is_map ? h->vtype : 0;
        t->kslot = h->kslot;
        t->vslot = t->is_map ? h->vslot : 0;
        t->kvar = commy__is_var(t->kt);
        t->vvar = t->is_map && commy__is_var(t->vt);
        t->numkey = !t->kvar && COMMY_TYPE_BASE(t->kt) != COMMY_T_BLOB;
        t->voff = h->voff;
        t->stride = h->stride;
        t->seed = c->body[1];
        return;
    }
    if (h) {
        t->is_map = h->kind == COMMY_KIND_MAP;
        t->kt = h->ktype;
        t->vt = t->is_map ? h->vtype : 0;
        t->kslot = h->kslot;
        t->vslot = t->is_map ? h->vslot : 0;
    } else {
        t->is_map = c->kind == COMMY_KIND_MAP;
        t->kt = c->key_type;
        t->vt = t->is_map ? c->val_type : 0;
        t->kslot = commy__slot_size(t->kt);
        t->vslot = t->is_map ? commy__slot_size(t->vt) : 0;
    }
    t->kvar = commy__is_var(t->kt);
    t->vvar = t->is_map && commy__is_var(t->vt);
    t->numkey = !t->kvar && COMMY_TYPE_BASE(t->kt) != COMMY_T_BLOB;
    uint32_t ka = type_align(t->kt, t->kslot), va = t->is_map ? type_align(t->vt, t->vslot) : 1;
    t->voff = (uint32_t)align_up(t->kslot, va);
    t->stride = (uint32_t)align_up(t->voff + t->vslot, ka > va ? ka : va);
    t->seed = c->body[1];
}

void commy__ht_handle_layout(struct commy__handle *h)
{
    struct ht t;
    struct commy__chdr c = {0};
    h->stride = 0;
    layout(&t, h->a, &c, h);
    h->voff = t.voff;
    h->stride = t.stride;
    uint32_t kb = COMMY_TYPE_BASE(h->ktype);
    h->fast8 = (kb == COMMY_T_I64 || kb == COMMY_T_U64 || kb == COMMY_T_F64) && h->kslot == 8 &&
               (h->kind != COMMY_KIND_MAP || (!commy__is_var(h->vtype) && h->vslot <= 8));
}

static void attach(struct ht *t, uint64_t off)
{
    t->tab = commy__at(t->a, off);
    t->cap = t->tab->cap;
    t->mask = t->cap - 1;
    t->ctrl = (uint8_t *)t->tab + TAB_HDR;
    t->slots = (char *)t->ctrl + ctrl_bytes(t->cap);
}

/* Builds the view of c's table, refusing a table that would send a probe
 * outside the heap (a damaged file, or a torn read on a read-only mapping). */
static int view(struct ht *t, commy_alloc *a, struct commy__chdr *c, const struct commy__handle *h)
{
    layout(t, a, c, h);
    t->tab = NULL;
    t->cap = t->mask = 0;
    t->ctrl = NULL;
    t->slots = NULL;
    if (t->kslot == 0 || (t->is_map && t->vslot == 0))
        return commy__err(COMMY_ECORRUPT, "segment '%s': a hash container declares invalid types", a->path);
    uint64_t off = c->body[0];
    if (off == 0) return COMMY_OK;
    if ((off & 15) || !commy__in_heap(a, off, TAB_HDR)) goto bad;
    uint64_t cap = ((struct table *)commy__at(a, off))->cap;
    if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) || !commy__in_heap(a, off, table_bytes(cap, t->stride)))
        goto bad;
    attach(t, off);
    return COMMY_OK;
bad:
    return commy__err(COMMY_ECORRUPT, "segment '%s': the hash table at offset %" PRIu64 " is damaged; run commy_alloc_check",
                      a->path, off);
}

static inline char *slot_at(const struct ht *t, uint64_t i) { return t->slots + i * t->stride; }

static inline uint64_t group_at(const struct ht *t, uint64_t pos)
{
    uint64_t g;
    memcpy(&g, t->ctrl + pos, 8);
    return g;
}

/* Bytes equal to b (may report false positives above a true match; callers compare keys). */
static inline uint64_t match_byte(uint64_t g, uint8_t b)
{
    uint64_t x = g ^ (LSBS * b);
    return (x - LSBS) & ~x & MSBS;
}
/* 0x80: the top bit set and bit 1 clear (0xFE has bit 1 set). */
static inline uint64_t match_empty(uint64_t g) { return g & ~(g << 6) & MSBS; }
/* Empty or deleted: the top bit. */
static inline uint64_t match_free(uint64_t g) { return g & MSBS; }

/* commy__value_hash of a canonical key. Numbers and bool take the normative
 * formula of docs/format.md inline (their zero-extended little-endian bytes
 * through the mixer): it is the hot path of every operation, and
 * commy_alloc_check compares every stored control byte with
 * commy__value_hash, so a divergence cannot go unnoticed. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static inline uint64_t key_hash(const struct ht *t, const void *k, size_t klen)
{
    if (t->numkey) {
        uint64_t x = 0;
        commy__copy_small(&x, k, t->kslot); /* little-endian: zero-extends */
        return mix64(x ^ t->seed);
    }
    return commy__value_hash(t->kt, k, klen, t->seed);
}

static inline int key_eq(const struct ht *t, const char *s, const void *k, size_t klen)
{
    if (!t->kvar) {
        switch (t->kslot) {
        case 8: {
            uint64_t x, y;
            memcpy(&x, s, 8);
            memcpy(&y, k, 8);
            return x == y;
        }
        case 4: {
            uint32_t x, y;
            memcpy(&x, s, 4);
            memcpy(&y, k, 4);
            return x == y;
        }
        default: return memcmp(s, k, t->kslot) == 0;
        }
    }
    struct commy__var v;
    memcpy(&v, s, sizeof v);
    if (v.len != klen) return 0;
    if (klen == 0) return 1;
    if (!commy__in_heap(t->a, v.off, v.len)) return 0;
    return memcmp(commy__at(t->a, v.off), k, klen) == 0;
}

/* Looks up a canonical key: 1 and *idx if present, 0 if not. */
static int find(const struct ht *t, const void *k, size_t klen, uint64_t hash, uint64_t *idx)
{
    if (t->cap == 0) return 0;
    uint8_t h2 = (uint8_t)(hash & 0x7f);
    uint64_t pos = (hash >> 7) & t->mask;
    for (uint64_t step = 0; step <= t->cap; step += GW) {
        pos = (pos + step) & t->mask;
        uint64_t g = group_at(t, pos);
        for (uint64_t m = match_byte(g, h2); m; m &= m - 1) {
            uint64_t i = (pos + ((uint64_t)__builtin_ctzll(m) >> 3)) & t->mask;
            if (key_eq(t, slot_at(t, i), k, klen)) {
                *idx = i;
                return 1;
            }
        }
        if (match_empty(g)) return 0;
    }
    return 0; /* only a damaged table has no empty slot */
}

/* The first empty or deleted slot on key's probe sequence, or UINT64_MAX if none. */
static uint64_t find_free(const struct ht *t, uint64_t hash)
{
    uint64_t pos = (hash >> 7) & t->mask;
    for (uint64_t step = 0; step <= t->cap; step += GW) {
        pos = (pos + step) & t->mask;
        uint64_t m = match_free(group_at(t, pos));
        if (m) return (pos + ((uint64_t)__builtin_ctzll(m) >> 3)) & t->mask;
    }
    return UINT64_MAX;
}

/* Writes a control byte and its mirror in a table nobody can reach yet. */
static inline void set_ctrl_raw(struct ht *t, uint64_t i, uint8_t b)
{
    t->ctrl[i] = b;
    if (i < GW) t->ctrl[t->cap + i] = b;
}

static int set_ctrl(struct ht *t, uint64_t i, uint8_t b)
{
    int rc = commy__put(t->a, &t->ctrl[i], &b, 1);
    if (rc == 0 && i < GW) rc = commy__put(t->a, &t->ctrl[t->cap + i], &b, 1);
    return rc;
}

static uint64_t stored_hash(const struct ht *t, const char *s)
{
    if (!t->kvar) return key_hash(t, s, t->kslot);
    return commy__slot_hash(t->a, s, t->kt, t->seed);
}

/* Rebuilds the table at newcap in a fresh block and swaps it in: only the
 * offset swap and the allocator's own changes are journaled. */
static int resize(struct ht *t, uint64_t newcap)
{
    commy_alloc *a = t->a;
    uint64_t len = t->c->len;
    if (newcap > MAX_CAP || max_load(newcap) < len)
        return commy__err(COMMY_ENOSPC, "hash table cannot hold %" PRIu64 " entries", len + 1);
    uint64_t off;
    int rc = commy__alloc(&off, a, table_bytes(newcap, t->stride), 16);
    if (rc) return rc;
    struct ht n = *t;
    struct table *nt = commy__at(a, off);
    nt->cap = newcap;
    nt->growth_left = max_load(newcap) - len;
    nt->next = nt->drain = 0;
    attach(&n, off);
    memset(n.ctrl, CTRL_EMPTY, ctrl_bytes(newcap));
    for (uint64_t i = 0; i < t->cap; i++) {
        if (t->ctrl[i] & 0x80) continue;
        const char *s = slot_at(t, i);
        uint64_t h = stored_hash(t, s);
        uint64_t j = find_free(&n, h);
        memcpy(slot_at(&n, j), s, t->stride);
        set_ctrl_raw(&n, j, (uint8_t)(h & 0x7f));
    }
    uint64_t old = t->tab ? commy__off(a, t->tab) : 0;
    rc = commy__put64(a, &t->c->body[0], off);
    if (rc == 0 && old) rc = commy__free(a, old);
    if (rc == 0) *t = n;
    return rc;
}

/* Frees what the full slots own (bytes/str keys and values). */
static int free_entries(struct ht *t)
{
    if (!t->kvar && !t->vvar) return COMMY_OK;
    for (uint64_t i = 0; i < t->cap; i++) {
        if (t->ctrl[i] & 0x80) continue;
        char *s = slot_at(t, i);
        int rc = commy__value_free(t->a, s, t->kt);
        if (rc == 0 && t->vvar) rc = commy__value_free(t->a, s + t->voff, t->vt);
        if (rc) return rc;
    }
    return COMMY_OK;
}

/* A table of the garbage list (tables detached by a clear), validated. */
static int garbage_view(struct ht *g, const struct ht *t, uint64_t off)
{
    *g = *t;
    if ((off & 15) || !commy__in_heap(t->a, off, TAB_HDR)) goto bad;
    uint64_t cap = ((struct table *)commy__at(t->a, off))->cap;
    if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) || !commy__in_heap(t->a, off, table_bytes(cap, t->stride)))
        goto bad;
    attach(g, off);
    if (g->tab->drain > cap) goto bad;
    return COMMY_OK;
bad:
    return commy__err(COMMY_ECORRUPT, "segment '%s': the detached hash table at offset %" PRIu64
                      " is damaged; run commy_alloc_check", t->a->path, off);
}

/* Frees up to budget entries' blocks of the tables a clear detached
 * (body[2]), and each table once it owns nothing. Every step is journaled,
 * so any prefix of the work is a consistent state. */
static int drain(struct ht *t, uint64_t budget)
{
    struct commy__chdr *c = t->c;
    while (budget > 0 && c->body[2] != 0) {
        uint64_t off = c->body[2];
        struct ht g;
        int rc = garbage_view(&g, t, off);
        if (rc) return rc;
        uint64_t i = g.tab->drain;
        for (; i < g.cap && budget > 0; i++) {
            if (g.ctrl[i] & 0x80) continue;
            char *s = slot_at(&g, i);
            rc = t->kvar ? commy__value_free(t->a, s, t->kt) : COMMY_OK;
            if (rc == 0 && t->vvar) rc = commy__value_free(t->a, s + t->voff, t->vt);
            if (rc) return rc;
            budget--;
        }
        if (i < g.cap) return commy__put64(t->a, &g.tab->drain, i);
        rc = commy__put64(t->a, &c->body[2], g.tab->next);
        if (rc == 0) rc = commy__free(t->a, off);
        if (rc) return rc;
    }
    return COMMY_OK;
}

/* Reclaims a little of what a clear left behind (after a crash, or in a
 * batch), when the journal has room to spare. */
/* Entries one step may free: a free journals a few hundred bytes, and an
 * entry may own two blocks. */
static uint64_t drain_budget(const struct ht *t, uint64_t share)
{
    uint64_t n = commy__journal_room(t->a) / share;
    return n ? n : 1;
}

static inline int drain_some(struct ht *t)
{
    if (t->c->body[2] == 0 || commy__journal_room(t->a) < 65536) return COMMY_OK;
    return drain(t, 16);
}

/* ------------------------------------------------------------- kind hooks */

int commy__ht_init(commy_alloc *a, struct commy__chdr *c)
{
    (void)a;
    /* The table comes with the first insert; an empty container costs only its header. */
    c->body[0] = 0;
    c->body[1] = commy__random64();
    c->body[2] = 0;
    return COMMY_OK;
}

int commy__ht_destroy(commy_alloc *a, struct commy__chdr *c)
{
    struct ht t;
    int rc = view(&t, a, c, NULL);
    if (rc == 0) rc = drain(&t, UINT64_MAX);
    if (rc || t.tab == NULL) return rc;
    rc = free_entries(&t);
    return rc ? rc : commy__free(a, c->body[0]);
}

/* Bytes of the blocks the full slots from `from` on own. */
static uint64_t owned_bytes(const struct ht *t, uint64_t from)
{
    uint64_t n = 0;
    if (!t->kvar && !t->vvar) return 0;
    for (uint64_t i = from; i < t->cap; i++) {
        if (t->ctrl[i] & 0x80) continue;
        struct commy__var v;
        const char *s = slot_at(t, i);
        if (t->kvar) {
            memcpy(&v, s, sizeof v);
            if (v.off) n += commy__block_size(t->a, v.off);
        }
        if (t->vvar) {
            memcpy(&v, s + t->voff, sizeof v);
            if (v.off) n += commy__block_size(t->a, v.off);
        }
    }
    return n;
}

uint64_t commy__ht_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    struct ht t, g;
    if (view(&t, a, (struct commy__chdr *)c, NULL)) return 0;
    uint64_t n = 0;
    if (t.tab) n += commy__block_size(a, c->body[0]) + owned_bytes(&t, 0);
    uint64_t off = c->body[2];
    for (uint64_t steps = 0; off != 0 && steps < (1u << 20); steps++) {
        if (garbage_view(&g, &t, off)) break;
        n += commy__block_size(a, off) + owned_bytes(&g, g.tab->drain);
        off = g.tab->next;
    }
    return n;
}

int commy__ht_check(commy_alloc *a, const struct commy__chdr *c)
{
    struct ht t;
    int rc = view(&t, a, (struct commy__chdr *)c, NULL);
    if (rc) return rc;
    const char *kname = t.is_map ? "map" : "set";
    uint64_t at = commy__off(a, c);
    uint64_t goff = c->body[2], steps = 0;
    for (; goff != 0 && steps < (1u << 20); steps++) {
        struct ht g;
        rc = garbage_view(&g, &t, goff);
        if (rc) return rc;
        if (commy__block_size(a, goff) < table_bytes(g.cap, g.stride))
            return commy__err(COMMY_ECORRUPT, "segment '%s': a detached table of the %s at offset %" PRIu64
                              " is not a live block", a->path, kname, at);
        for (uint64_t i = g.tab->drain; i < g.cap; i++) {
            if (g.ctrl[i] & 0x80) continue;
            rc = commy__slot_check(a, slot_at(&g, i), t.kt);
            if (rc == 0 && t.is_map) rc = commy__slot_check(a, slot_at(&g, i) + t.voff, t.vt);
            if (rc) return rc;
        }
        goff = g.tab->next;
    }
    if (goff != 0)
        return commy__err(COMMY_ECORRUPT, "segment '%s': the detached tables of the %s at offset %" PRIu64
                          " form a cycle", a->path, kname, at);
    if (t.tab == NULL) {
        if (c->len != 0)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64 " has no table but %" PRIu64
                              " entries", a->path, kname, at, c->len);
        return COMMY_OK;
    }
    uint64_t bs = commy__block_size(a, c->body[0]);
    if (bs < table_bytes(t.cap, t.stride))
        return commy__err(COMMY_ECORRUPT, "segment '%s': the table of the %s at offset %" PRIu64
                          " is not a live block of %" PRIu64 " bytes", a->path, kname, at, table_bytes(t.cap, t.stride));
    for (uint64_t i = 0; i < GW; i++)
        if (t.ctrl[t.cap + i] != t.ctrl[i])
            return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64
                              " has a control byte mirror that differs at slot %" PRIu64, a->path, kname, at, i);
    uint64_t full = 0, deleted = 0;
    for (uint64_t i = 0; i < t.cap; i++) {
        uint8_t b = t.ctrl[i];
        if (b == CTRL_EMPTY) continue;
        if (b == CTRL_DELETED) {
            deleted++;
            continue;
        }
        if (b & 0x80)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64 " has control byte 0x%02x at slot %"
                              PRIu64, a->path, kname, at, b, i);
        full++;
        const char *s = slot_at(&t, i);
        rc = commy__slot_check(a, s, t.kt);
        if (rc == 0 && t.is_map) rc = commy__slot_check(a, s + t.voff, t.vt);
        if (rc) return rc;
        size_t kl;
        const void *k = commy__value_bytes(a, s, t.kt, &kl);
        unsigned char cb[8];
        if (!t.kvar && commy__key_canon(t.kt, k, kl, cb) != k && memcmp(cb, k, kl) != 0)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64 " holds a float key at slot %"
                              PRIu64 " that is not canonical", a->path, kname, at, i);
        uint64_t h = commy__value_hash(t.kt, k, kl, t.seed), j = UINT64_MAX;
        if ((h & 0x7f) != b || !find(&t, k, kl, h, &j) || j != i)
            return commy__err(COMMY_ECORRUPT, "segment '%s': the key at slot %" PRIu64 " of the %s at offset %" PRIu64
                              " cannot be found by its hash (or is a duplicate)", a->path, i, kname, at);
    }
    if (full != c->len)
        return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64 " says %" PRIu64 " entries but holds %"
                          PRIu64, a->path, kname, at, c->len, full);
    if (full + deleted + t.tab->growth_left != max_load(t.cap))
        return commy__err(COMMY_ECORRUPT, "segment '%s': the %s at offset %" PRIu64 " has growth_left %" PRIu64
                          " with %" PRIu64 " full and %" PRIu64 " deleted of %" PRIu64 " slots", a->path, kname, at,
                          t.tab->growth_left, full, deleted, t.cap);
    return COMMY_OK;
}

/* ------------------------------------------------------------ operations */

/* Prefixes the last error's message with the container's name: the type
 * helpers cannot know it. The message is copied first: commy__err reuses its buffer. */
static int renamed(struct commy__handle *h, int rc)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", commy_error_last()->message);
    return commy__err(rc, "%s '%s': %s", h->kind == COMMY_KIND_MAP ? "map" : "set", h->name, msg);
}

static int check_key(struct commy__handle *h, const void *key, size_t klen)
{
    /* Numbers: the length is the whole check (bool and the rest go the long way). */
    uint32_t base = COMMY_TYPE_BASE(h->ktype);
    if (key != NULL && klen == h->kslot && base >= COMMY_T_I8 && base <= COMMY_T_F64) return COMMY_OK;
    int rc = commy__value_check(h->ktype, key, klen, "key");
    if (rc) return renamed(h, rc);
    return COMMY_OK;
}

static inline const void *canon(const struct commy__handle *h, const void *key, size_t klen, unsigned char *buf)
{
    uint32_t base = COMMY_TYPE_BASE(h->ktype);
    return base == COMMY_T_F32 || base == COMMY_T_F64 ? commy__key_canon(h->ktype, key, klen, buf) : key;
}

/* Starts fetching the cache lines a lookup of a number key will read, before
 * the lock is taken: the fetch (usually a miss to memory in a big table)
 * then overlaps the locking. Reads without the lock, so everything read is
 * only a hint: a prefetch of a wrong address is harmless and the real lookup
 * happens under the lock. Plain relaxed loads; bounded to the mapping. */
static inline void prefetch_key(const struct commy__handle *h, const void *k)
{
    commy_alloc *a = h->a;
    uint32_t base = COMMY_TYPE_BASE(h->ktype);
    if (a == NULL || base < COMMY_T_I8 || base > COMMY_T_F64 || h->off + 64 > a->size) return;
    struct commy__chdr *c = commy__at(a, h->off);
    uint64_t off = __atomic_load_n(&c->body[0], __ATOMIC_RELAXED);
    if (off == 0 || off > a->size - TAB_HDR) return;
    uint64_t cap = __atomic_load_n(&((struct table *)commy__at(a, off))->cap, __ATOMIC_RELAXED);
    if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1))) return;
    uint64_t x = 0;
    memcpy(&x, k, h->kslot);
    uint64_t hash = mix64(x ^ __atomic_load_n(&c->body[1], __ATOMIC_RELAXED));
    uint64_t pos = (hash >> 7) & (cap - 1);
    uint32_t stride = h->kind == COMMY_KIND_MAP ? 0 : h->kslot;
    if (stride == 0) {
        struct ht t;
        layout(&t, a, c, h);
        stride = t.stride;
    }
    uint64_t slot = off + TAB_HDR + ctrl_bytes(cap) + pos * stride;
    if (slot + stride > a->size) return;
    __builtin_prefetch(commy__at(a, off + TAB_HDR + pos));
    __builtin_prefetch(commy__at(a, slot));
}

static int not_found(struct commy__handle *h)
{
    return commy__err(COMMY_ENOTFOUND, "%s '%s' has no such key", h->kind == COMMY_KIND_MAP ? "map" : "set", h->name);
}

static int put_locked(struct ht *t, const void *k, size_t klen, uint64_t hash, const void *val, size_t vlen,
                      int replace, int *added, int *changed)
{
    commy_alloc *a = t->a;
    uint64_t i;
    if (find(t, k, klen, hash, &i)) {
        if (!replace || !t->is_map) return COMMY_OK;
        char *vs = slot_at(t, i) + t->voff;
        if (!t->vvar) {
            if (memcmp(vs, val, t->vslot) == 0) return COMMY_OK;
            int rc = commy__put(a, vs, val, t->vslot);
            if (rc == 0) *changed = 1;
            return rc;
        }
        struct commy__var old;
        memcpy(&old, vs, sizeof old);
        int rc = commy__value_store(a, vs, t->vt, val, vlen, 1);
        if (rc == 0) rc = commy__value_free(a, &old, t->vt);
        if (rc == 0) *changed = 1;
        return rc;
    }
    uint64_t len = t->c->len;
    i = t->cap ? find_free(t, hash) : UINT64_MAX;
    if (i == UINT64_MAX || (t->tab->growth_left == 0 && t->ctrl[i] != CTRL_DELETED)) {
        /* Full: grow, or just drop the tombstones when live entries fill at most half. */
        uint64_t newcap = t->cap == 0 ? MIN_CAP : (len + 1) * 2 <= max_load(t->cap) ? t->cap : t->cap * 2;
        int rc = resize(t, newcap);
        if (rc) return rc;
        i = find_free(t, hash);
    }
    /* The slot is unreachable until its control byte says full, and that
     * byte is journaled: the slot itself needs no journal record. */
    char *s = slot_at(t, i);
    int rc = COMMY_OK;
    if (!t->kvar)
        memcpy(s, k, t->kslot);
    else
        rc = commy__value_store(a, s, t->kt, k, klen, 0);
    if (rc == 0 && t->is_map) {
        if (!t->vvar)
            memcpy(s + t->voff, val, t->vslot);
        else
            rc = commy__value_store(a, s + t->voff, t->vt, val, vlen, 0);
    }
    if (rc) return rc;
    int was_empty = t->ctrl[i] == CTRL_EMPTY;
    rc = set_ctrl(t, i, (uint8_t)(hash & 0x7f));
    if (rc == 0 && was_empty) rc = commy__put64(a, &t->tab->growth_left, t->tab->growth_left - 1);
    if (rc == 0) rc = commy__put64(a, &t->c->len, len + 1);
    if (rc == 0) *added = *changed = 1;
    return rc;
}

int commy__ht_put(int *out_added, struct commy__handle *h, const void *key, size_t klen, const void *val, size_t vlen,
                  int replace)
{
    COMMY__CHECK_HANDLE(h);
    int rc = check_key(h, key, klen);
    if (rc) return rc;
    uint32_t vbase = COMMY_TYPE_BASE(h->vtype);
    if (h->kind == COMMY_KIND_MAP && !(val != NULL && vlen == h->vslot && vbase >= COMMY_T_I8 && vbase <= COMMY_T_F64)) {
        rc = commy__value_check(h->vtype, val, vlen, "value");
        if (rc) return renamed(h, rc);
    }
    unsigned char kb[8];
    const void *k = canon(h, key, klen, kb);
    uint64_t sp;
    struct commy__chdr *c;
    prefetch_key(h, k);
    rc = commy__op_begin(h, 1, &sp, &c);
    if (rc) return rc;
    struct ht t;
    int added = 0, changed = 0;
    rc = view(&t, h->a, c, h);
    if (rc == 0) rc = drain_some(&t);
    if (rc == 0) rc = put_locked(&t, k, klen, key_hash(&t, k, klen), val, vlen, replace, &added, &changed);
    rc = commy__op_end(h, sp, rc, changed);
    if (rc == 0 && out_added) *out_added = added;
    return rc;
}

/* The lock-free lookup of a fixed-size key (internal.h, "lock-free reads"):
 * 1 if the answer is consistent, with *found and, if found, the value's
 * vslot bytes in val (at most 8 bytes); 0 to take the locked path. */
static int find_fast(int *found, char *val, struct commy__handle *h, const void *k, size_t klen)
{
    struct commy__snap s;
    for (int tries = 0; tries < 2; tries++) {
        struct commy__chdr *c = commy__snap_begin(&s, h);
        if (c == NULL) return 0;
        struct ht t;
        layout(&t, s.a, c, h);
        uint64_t off = c->body[0], i = 0;
        if (off == 0) {
            *found = 0;
        } else {
            if ((off & 15) || !commy__snap_in_file(s.a, off, TAB_HDR)) return 0;
            uint64_t cap = ((volatile struct table *)commy__at(s.a, off))->cap;
            if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) ||
                !commy__snap_in_file(s.a, off, table_bytes(cap, t.stride)))
                return 0;
            attach(&t, off);
            t.cap = cap; /* the value checked above, whatever the block says now */
            t.mask = cap - 1;
            t.slots = (char *)t.ctrl + ctrl_bytes(cap);
            *found = find(&t, k, klen, key_hash(&t, k, klen), &i);
            if (*found && t.is_map) commy__copy_small(val, slot_at(&t, i) + t.voff, t.vslot);
        }
        if (commy__snap_valid(&s, h, c)) return 1;
    }
    return 0;
}

/* find_fast for an 8-byte number key (i64, u64, f64), the common case,
 * with everything in registers. */
static int find_fast8(int *found, char *val, struct commy__handle *h, uint64_t key)
{
    struct commy__snap s;
    uint64_t stride = h->stride, voff = h->voff;
    for (int tries = 0; tries < 2; tries++) {
        struct commy__chdr *c = commy__snap_begin(&s, h);
        if (c == NULL) return 0;
        commy_alloc *a = s.a;
        uint64_t off = c->body[0], seed = c->body[1];
        const char *hit = NULL;
        if (off != 0) {
            if ((off & 15) || !commy__snap_in_file(a, off, TAB_HDR)) return 0;
            uint64_t cap = ((volatile struct table *)commy__at(a, off))->cap;
            if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) || !commy__snap_in_file(a, off, table_bytes(cap, (uint32_t)stride)))
                return 0;
            const uint8_t *ctrl = (const uint8_t *)commy__at(a, off) + TAB_HDR;
            const char *slots = (const char *)ctrl + ctrl_bytes(cap);
            uint64_t hash = mix64(key ^ seed), mask = cap - 1, pos = (hash >> 7) & mask;
            uint8_t h2 = (uint8_t)(hash & 0x7f);
            /* The slot a hit most likely is in: fetch it alongside the control
             * bytes, not after them (in a big table both are cache misses). */
            __builtin_prefetch(slots + pos * stride);
            for (uint64_t step = 0; step <= cap && hit == NULL; step += GW) {
                pos = (pos + step) & mask;
                uint64_t g;
                memcpy(&g, ctrl + pos, 8);
                for (uint64_t m = match_byte(g, h2); m; m &= m - 1) {
                    const char *slot = slots + ((pos + ((uint64_t)__builtin_ctzll(m) >> 3)) & mask) * stride;
                    uint64_t k;
                    memcpy(&k, slot, 8);
                    if (k == key) {
                        hit = slot;
                        break;
                    }
                }
                if (match_empty(g)) break;
            }
            if (hit && h->kind == COMMY_KIND_MAP) commy__copy_small(val, hit + voff, h->vslot);
        }
        if (commy__snap_valid(&s, h, c)) {
            *found = hit != NULL;
            return 1;
        }
    }
    return 0;
}

/* The key and value types the lock-free lookup handles: numbers and small
 * blobs, whose bytes are the whole value. */
static inline int fast_types(const struct commy__handle *h)
{
    uint32_t kb = COMMY_TYPE_BASE(h->ktype);
    return !commy__is_var(h->ktype) && kb != COMMY_T_BLOB && h->kslot <= 8 &&
           (h->kind != COMMY_KIND_MAP || (!commy__is_var(h->vtype) && h->vslot <= 8));
}

int commy__ht_get(struct commy__handle *h, const void *key, size_t klen, void *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(h);
    if (h->fast8 && key != NULL && klen == 8 && out != NULL && cap >= h->vslot) {
        /* The common case without the general checks: any 8 bytes are a
         * valid i64, u64 or f64 key (f64 made canonical). */
        uint64_t k8;
        memcpy(&k8, key, 8);
        if (COMMY_TYPE_BASE(h->ktype) == COMMY_T_F64) commy__key_canon(h->ktype, key, 8, &k8);
        char val[8];
        int found;
        if (find_fast8(&found, val, h, k8)) {
            if (!found) return not_found(h);
            commy__copy_small(out, val, h->vslot);
            if (out_len) *out_len = h->vslot;
            return COMMY_OK;
        }
    }
    int rc = check_key(h, key, klen);
    if (rc) return rc;
    unsigned char kb[8];
    const void *k = canon(h, key, klen, kb);
    if (fast_types(h) && out != NULL && cap >= h->vslot) {
        char val[8];
        int found;
        uint64_t k8 = 0;
        if (h->kslot == 8) memcpy(&k8, k, 8);
        if (h->kslot == 8 ? find_fast8(&found, val, h, k8) : find_fast(&found, val, h, k, klen)) {
            if (!found) return not_found(h);
            commy__copy_small(out, val, h->vslot);
            if (out_len) *out_len = h->vslot;
            return COMMY_OK;
        }
    }
    uint64_t sp;
    struct commy__chdr *c;
    prefetch_key(h, k);
    rc = commy__op_begin(h, 0, &sp, &c);
    if (rc) return rc;
    struct ht t;
    uint64_t i;
    rc = view(&t, h->a, c, h);
    if (rc == 0) {
        if (!find(&t, k, klen, key_hash(&t, k, klen), &i))
            rc = not_found(h);
        else if (!t.vvar && t.vslot == 8 && out && cap >= 8) {
            memcpy(out, slot_at(&t, i) + t.voff, 8); /* the common case, without a call */
            if (out_len) *out_len = 8;
        } else
            rc = commy__value_load(h->a, slot_at(&t, i) + t.voff, t.vt, out, cap, out_len);
    }
    return commy__op_end(h, sp, rc, 0);
}

int commy__ht_contains(int *out, struct commy__handle *h, const void *key, size_t klen)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "contains: out is NULL");
    COMMY__CHECK_HANDLE(h);
    int rc = check_key(h, key, klen);
    if (rc) return rc;
    unsigned char kb[8];
    const void *k = canon(h, key, klen, kb);
    if (fast_types(h)) {
        char val[8];
        uint64_t k8 = 0;
        if (h->kslot == 8) memcpy(&k8, k, 8);
        if (h->kslot == 8 ? find_fast8(out, val, h, k8) : find_fast(out, val, h, k, klen)) return COMMY_OK;
    }
    uint64_t sp;
    struct commy__chdr *c;
    prefetch_key(h, k);
    rc = commy__op_begin(h, 0, &sp, &c);
    if (rc) return rc;
    struct ht t;
    uint64_t i;
    rc = view(&t, h->a, c, h);
    if (rc == 0) *out = find(&t, k, klen, key_hash(&t, k, klen), &i);
    return commy__op_end(h, sp, rc, 0);
}

/* After many removes, move to a smaller table. Optional: if the segment has
 * no room for the new block, the remove still succeeds with the big table. */
static void maybe_shrink(struct ht *t)
{
    if (t->cap <= MIN_CAP || t->c->len * 32 >= t->cap * 7) return;
    uint64_t newcap = cap_for(t->c->len);
    /* The journal must have room: a nested EJOURNAL would abort the whole batch. */
    if (newcap >= t->cap || commy__journal_room(t->a) < 16384) return;
    uint64_t sp;
    if (commy__begin(t->a, 1, &sp)) return;
    int rc = resize(t, newcap);
    /* Roll back just this attempt (any failure code but EJOURNAL does that). */
    commy__end(t->a, sp, rc ? COMMY_ENOSPC : COMMY_OK);
}

int commy__ht_remove(struct commy__handle *h, const void *key, size_t klen)
{
    COMMY__CHECK_HANDLE(h);
    int rc = check_key(h, key, klen);
    if (rc) return rc;
    unsigned char kb[8];
    const void *k = canon(h, key, klen, kb);
    uint64_t sp;
    struct commy__chdr *c;
    prefetch_key(h, k);
    rc = commy__op_begin(h, 1, &sp, &c);
    if (rc) return rc;
    struct ht t;
    uint64_t i;
    int changed = 0;
    rc = view(&t, h->a, c, h);
    if (rc == 0) rc = drain_some(&t);
    if (rc == 0 && !find(&t, k, klen, key_hash(&t, k, klen), &i)) rc = not_found(h);
    if (rc == 0) {
        char *s = slot_at(&t, i);
        rc = commy__value_free(h->a, s, t.kt);
        if (rc == 0 && t.vvar) rc = commy__value_free(h->a, s + t.voff, t.vt);
        /* A slot may go back to empty (and give its growth back) only if no
         * probe ever passed over it: some window of 8 around it has an empty. */
        uint64_t before = match_empty(group_at(&t, (i - GW) & t.mask));
        uint64_t after = match_empty(group_at(&t, i));
        int to_empty = before && after &&
                       ((uint64_t)__builtin_ctzll(after) >> 3) + ((uint64_t)__builtin_clzll(before) >> 3) < GW;
        if (rc == 0) rc = set_ctrl(&t, i, to_empty ? CTRL_EMPTY : CTRL_DELETED);
        if (rc == 0 && to_empty) rc = commy__put64(h->a, &t.tab->growth_left, t.tab->growth_left + 1);
        if (rc == 0) rc = commy__put64(h->a, &c->len, c->len - 1);
        if (rc == 0) {
            changed = 1;
            maybe_shrink(&t);
        }
    }
    return commy__op_end(h, sp, rc, changed);
}

int commy__ht_clear(struct commy__handle *h)
{
    COMMY__CHECK_HANDLE(h);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(h, 1, &sp, &c);
    if (rc) return rc;
    struct ht t;
    int changed = 0, nested = h->a->depth > 1;
    rc = view(&t, h->a, c, h);
    if (rc == 0 && t.tab != NULL) {
        uint64_t off = c->body[0];
        if (!t.kvar && !t.vvar) {
            rc = commy__put64(h->a, &c->body[0], 0);
            if (rc == 0) rc = commy__free(h->a, off);
        } else {
            /* Freeing every entry's blocks in this one step could outgrow the
             * journal: detach the table whole (the map is empty from here on)
             * and free its blocks in bounded steps below. */
            rc = commy__put64(h->a, &t.tab->next, c->body[2]);
            if (rc == 0) rc = commy__put64(h->a, &t.tab->drain, 0);
            if (rc == 0) rc = commy__put64(h->a, &c->body[2], off);
            if (rc == 0) rc = commy__put64(h->a, &c->body[0], 0);
            /* Inside a batch the steps cannot be committed apart: take a
             * bite that leaves the batch most of the journal; later writes
             * to this container take the rest. */
            if (rc == 0 && nested) rc = drain(&t, drain_budget(&t, 8192));
        }
        if (rc == 0 && c->len) rc = commy__put64(h->a, &c->len, 0);
        changed = 1;
    }
    rc = commy__op_end(h, sp, rc, changed);
    while (rc == 0 && !nested) {
        rc = commy__op_begin(h, 1, &sp, &c);
        if (rc) break;
        if (c->body[2] == 0) {
            commy__op_end(h, sp, 0, 0);
            break;
        }
        rc = view(&t, h->a, c, h);
        if (rc == 0) rc = drain(&t, drain_budget(&t, 2048));
        rc = commy__op_end(h, sp, rc, 0);
    }
    return rc;
}

int commy__ht_len(uint64_t *out, struct commy__handle *h)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "len: out is NULL");
    COMMY__CHECK_HANDLE(h);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->len;
    return commy__op_end(h, sp, rc, 0);
}

int commy__ht_next(struct commy__handle *h, commy_cursor *cur, void *kout, size_t kcap, size_t *klen, void *vout,
                   size_t vcap, size_t *vlen)
{
    COMMY__CHECK_HANDLE(h);
    if (cur == NULL) return commy__err(COMMY_EINVAL, "next: the cursor is NULL");
    if (cur->state > 2) return commy__err(COMMY_EINVAL, "next: the cursor is not initialised (state %u)", cur->state);
    if (cur->state == 2) return COMMY_DONE;
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(h, 0, &sp, &c);
    if (rc) return rc;
    uint32_t ver = atomic_load_explicit(&c->version, memory_order_acquire);
    if (cur->state == 0) {
        cur->version = ver;
        cur->pos = 0;
        cur->aux = 0;
        cur->state = 1;
    } else if (cur->version != ver) {
        rc = commy__err(COMMY_ECONCURRENT, "%s '%s' changed while a cursor was iterating it; start again",
                        h->kind == COMMY_KIND_MAP ? "map" : "set", h->name);
        return commy__end(h->a, sp, rc);
    }
    struct ht t;
    rc = view(&t, h->a, c, h);
    if (rc) return commy__end(h->a, sp, rc);
    uint64_t i = cur->pos;
    while (i < t.cap && (t.ctrl[i] & 0x80)) i++;
    if (i >= t.cap) {
        cur->pos = t.cap;
        cur->state = 2;
        return commy__end(h->a, sp, COMMY_DONE);
    }
    const char *s = slot_at(&t, i);
    size_t kl, vl = 0;
    const void *kp = commy__value_bytes(h->a, s, t.kt, &kl), *vp = "";
    if (t.is_map) vp = commy__value_bytes(h->a, s + t.voff, t.vt, &vl);
    if (kp == NULL || vp == NULL)
        return commy__end(h->a, sp, commy__err(COMMY_ECORRUPT, "segment '%s': an entry of '%s' points outside the heap; "
                                               "run commy_alloc_check", h->a->path, h->name));
    if (klen) *klen = kl;
    if (vlen && t.is_map) *vlen = vl;
    if ((kout && kcap < kl) || (t.is_map && vout && vcap < vl))
        return commy__end(h->a, sp, commy__err(COMMY_ETOOSMALL, "next: the entry needs %zu key bytes and %zu value bytes;"
                                               " the buffers hold %zu and %zu", kl, vl, kcap, vcap));
    if (kout && kl) memcpy(kout, kp, kl);
    if (t.is_map && vout && vl) memcpy(vout, vp, vl);
    cur->pos = i + 1;
    return commy__end(h->a, sp, COMMY_ROW);
}
