/* The B+-tree engine shared by commy_omap and commy_oset (docs/format.md,
 * "Ordered containers"). Internal to core/.
 *
 * The container's block is 128 bytes: the 64-byte container header, then
 * struct commy__btmeta. Nodes are separate blocks of meta.node_size bytes
 * (a multiple of 64, 64-aligned). Every function here runs inside an
 * operation (commy__op_begin/commy__op_end) and logs each reachable node
 * before changing it, so a failure or a crash rolls the whole change back. */
#ifndef COMMY_CORE_BTREE_H
#define COMMY_CORE_BTREE_H

#include "internal.h"

#define COMMY__BT_NODE_TAG 0x4e544243u /* "CBTN" */
#define COMMY__BT_MAX_HEIGHT 48u
/* The node size used unless a slot is so large that 4 entries do not fit;
 * chosen by measurement (docs/.format-btree.md). */
#ifndef COMMY__BT_NODE_BYTES
#define COMMY__BT_NODE_BYTES 512u
#endif

/* Follows the container header in the container's block. */
struct commy__btmeta {
    uint64_t root;       /* the root node, 0 when the tree is empty */
    uint64_t garbage;    /* a tree detached by clear and still being freed, 0 if none */
    uint32_t node_size;  /* bytes of every node */
    uint16_t leaf_cap;   /* entries a leaf holds */
    uint16_t inner_cap;  /* separator keys an inner node holds (children: one more) */
    uint16_t val_off;    /* offset of a leaf's value array */
    uint16_t child_off;  /* offset of an inner node's child array */
    uint8_t height;      /* levels: 0 when empty, 1 when the root is a leaf */
    uint8_t has_vals;    /* 1 for omap, 0 for oset */
    uint8_t reserved[2];
    uint64_t nodes;      /* live nodes of the tree (not counting garbage) */
    uint64_t reserved2[3];
};
_Static_assert(sizeof(struct commy__btmeta) == 64, "btree meta is 64 bytes");

/* Every node starts with this; keys follow at offset 16. */
struct commy__btnode {
    uint32_t tag;   /* COMMY__BT_NODE_TAG */
    uint8_t level;  /* 0 for a leaf */
    uint8_t reserved;
    uint16_t n;     /* entries (leaf) or separator keys (inner) */
    uint64_t next;  /* leaf: the next leaf in key order, 0 for the last; inner: 0 */
};

#define COMMY__BT_BLOCK_SIZE 128u

/* A per-operation view of one tree. */
struct commy__bt {
    commy_alloc *a;
    struct commy__chdr *c;
    struct commy__btmeta *m;
    commy_type kt, vt;
    uint32_t ks, vs;            /* slot sizes; vs is 0 for sets */
    uint32_t nsize, lcap, icap; /* copies of the meta, validated */
    uint32_t voff, coff;
    int fast;                   /* integer key compared inline: COMMY_T_* or 0 */
    const char *name;           /* the container's name, for messages */
};

/* Node layout for a key type and a value type (vt 0: no values). */
int commy__bt_layout(struct commy__btmeta *m, commy_type kt, commy_type vt, int has_vals) COMMY__HIDDEN;

/* Builds a view of c; COMMY_ECORRUPT if its meta does not match its types.
 * layout: the layout of c's types if the caller has it (else NULL). */
int commy__bt_view(struct commy__bt *t, commy_alloc *a, struct commy__chdr *c, const char *name,
                   const struct commy__btmeta *layout) COMMY__HIDDEN;

/* Validates a key and canonicalises it into buf (8 bytes); *out receives the
 * bytes to use. */
int commy__bt_key(const void **out, const struct commy__bt *t, const void *key, size_t klen, void *buf) COMMY__HIDDEN;

/* Inserts (key, val). If the key exists: replace != 0 replaces its value,
 * else nothing changes. *added = 1 if a new entry was made. */
int commy__bt_put(int *added, struct commy__bt *t, const void *key, size_t klen, const void *val, size_t vlen,
                  int replace) COMMY__HIDDEN;
/* Removes key; COMMY_ENOTFOUND if absent. */
int commy__bt_remove(struct commy__bt *t, const void *key, size_t klen) COMMY__HIDDEN;
/* Finds key: *leaf and *idx, or COMMY_ENOTFOUND. */
int commy__bt_find(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t, const void *key, size_t klen) COMMY__HIDDEN;
/* The lock-free lookup (internal.h, "lock-free reads") of a canonical
 * integer key of ks bytes in h's tree, whose node layout is layout: 1 with
 * *found (and the value's bytes in val, at most 8) if it read a consistent
 * state, 0 to take the locked path. */
int commy__bt_find_fast(int *found, void *val, struct commy__handle *h, const struct commy__btmeta *layout,
                        const void *key) COMMY__HIDDEN;
/* The first entry with key >= key (strict 0) or > key (strict 1); key NULL:
 * the first entry. *leaf = 0 when there is none. */
int commy__bt_bound(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t, const void *key, size_t klen,
                    int strict) COMMY__HIDDEN;
/* The last entry; *leaf = 0 when empty. */
int commy__bt_last(uint64_t *leaf, uint32_t *idx, const struct commy__bt *t) COMMY__HIDDEN;
/* Copies entry idx of leaf out with the getter convention, both lengths
 * first: COMMY_ETOOSMALL copies nothing. vout NULL and vlen NULL for sets. */
int commy__bt_load(const struct commy__bt *t, uint64_t leaf, uint32_t idx, void *kout, size_t kcap, size_t *klen,
                   void *vout, size_t vcap, size_t *vlen) COMMY__HIDDEN;
/* Reads the value of entry idx with the getter convention. */
int commy__bt_load_val(const struct commy__bt *t, uint64_t leaf, uint32_t idx, void *out, size_t cap,
                       size_t *out_len) COMMY__HIDDEN;
/* Checks a cursor position names an entry of this tree's shape (bounds only). */
int commy__bt_cursor_ok(const struct commy__bt *t, uint64_t leaf, uint32_t idx) COMMY__HIDDEN;

/* Detaches the whole tree (len becomes 0); its nodes go to the garbage tree. */
int commy__bt_detach(struct commy__bt *t) COMMY__HIDDEN;
/* Frees garbage leaves while the journal has room, at most max_steps of
 * them; *more = 1 if garbage remains, *steps (if not NULL) = leaves freed. */
int commy__bt_collect(int *more, uint64_t *steps, struct commy__bt *t, uint64_t max_steps) COMMY__HIDDEN;

/* kind ops, shared by omap and oset */
int commy__bt_init(commy_alloc *a, struct commy__chdr *c, int has_vals) COMMY__HIDDEN;
int commy__bt_destroy(commy_alloc *a, struct commy__chdr *c) COMMY__HIDDEN;
int commy__bt_check(commy_alloc *a, const struct commy__chdr *c) COMMY__HIDDEN;
uint64_t commy__bt_bytes(commy_alloc *a, const struct commy__chdr *c) COMMY__HIDDEN;

/* The clear of omap and oset: detach, then free the old nodes in as many
 * operations as the journal needs. */
int commy__bt_clear(struct commy__handle *h, const struct commy__btmeta *layout) COMMY__HIDDEN;

static inline struct commy__btmeta *commy__bt_meta(struct commy__chdr *c)
{
    return (struct commy__btmeta *)(c + 1);
}

#endif
