/* The heap: a two-level segregated fit (TLSF) allocator over offsets.
 *
 * Every block starts with a 16-byte header: the previous physical block's
 * offset with two flags in its low bits, and the block's size with a 24-bit
 * tag in its high bits. The tag mixes the block's offset, its size and the
 * segment's salt, so freeing an offset that is not a block's start is caught
 * (COMMY_EBADFREE) instead of corrupting the heap. Free blocks hold their free
 * list links after the header. The last 16 bytes of the heap are a permanent
 * "sentinel" block that ends the physical chain.
 *
 * Every write to a reachable header, link, list head or bitmap goes through
 * the journal (commy__put64), so a process killed mid-operation is rolled back. */
#include "segment.h"

#include <inttypes.h>
#include <stdlib.h>

#define F_FREE 1u
#define F_PREV_FREE 2u
#define F_QUICK 4u /* used block cached in a quick list: neither live nor coalescable */
#define FLAG_MASK 15u
#define SIZE_MASK ((1ull << 40) - 1)
#define MIN_BLOCK 32u
#define HDR 16u

struct blk {
    uint64_t prev; /* previous physical block | flags */
    uint64_t size; /* size (headers included) | tag << 40 */
    uint64_t next_free;
    uint64_t prev_free;
};

static inline struct blk *B(const commy_alloc *a, uint64_t off) { return (struct blk *)(a->base + off); }
static inline struct commy__heap_state *HS(const commy_alloc *a) { return &a->hdr->heap; }
static inline uint64_t bsize(const struct blk *b) { return b->size & SIZE_MASK; }
static inline uint64_t bprev(const struct blk *b) { return b->prev & ~(uint64_t)FLAG_MASK & SIZE_MASK; }
static inline unsigned bflags(const struct blk *b) { return (unsigned)(b->prev & FLAG_MASK); }
static inline uint64_t heap_end(const commy_alloc *a) { return a->size - HDR; /* the sentinel */ }

static inline uint64_t tag(const commy_alloc *a, uint64_t off, uint64_t size)
{
    uint64_t x = (off * 0x9E3779B97F4A7C15ull) ^ (size * 0xC2B2AE3D27D4EB4Full) ^ a->hdr->salt;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return x >> 40; /* 24 bits */
}

static inline int tag_ok(const commy_alloc *a, uint64_t off)
{
    const struct blk *b = B(a, off);
    return (b->size >> 40) == tag(a, off, bsize(b));
}

static inline int put_size(commy_alloc *a, uint64_t off, uint64_t size)
{
    return commy__put64(a, &B(a, off)->size, size | (tag(a, off, size) << 40));
}

static inline int put_prev(commy_alloc *a, uint64_t off, uint64_t prev, unsigned flags)
{
    return commy__put64(a, &B(a, off)->prev, prev | flags);
}

/* A block offset that may be followed: aligned, inside the heap, tagged. */
static inline int blk_ok(const commy_alloc *a, uint64_t off)
{
    return (off & 15) == 0 && off >= a->hdr->heap_off && off + MIN_BLOCK <= heap_end(a) && tag_ok(a, off);
}

static int corrupt(const commy_alloc *a, const char *what, uint64_t off)
{
    return commy__err(COMMY_ECORRUPT, "segment '%s': heap damaged: %s at offset %" PRIu64, a->path, what, off);
}

/* ------------------------------------------------------------ classes */

static inline void mapping(uint64_t size, unsigned *fl, unsigned *sl)
{
    if (size < COMMY__SMALL) {
        *fl = 0;
        *sl = (unsigned)(size >> 4);
    } else {
        unsigned f = 63u - (unsigned)__builtin_clzll(size);
        *sl = (unsigned)(size >> (f - COMMY__SL_LOG)) ^ COMMY__SL_COUNT;
        *fl = f - (COMMY__FL_SHIFT - 1);
    }
}

/* A request rounded up to the next class boundary: every block of that
 * class and above is at least this big. */
static inline uint64_t search_size(uint64_t size)
{
    if (size >= COMMY__SMALL) {
        unsigned f = 63u - (unsigned)__builtin_clzll(size);
        size += (1ull << (f - COMMY__SL_LOG)) - 1;
    }
    return size;
}

/* The class to search from: the smallest whose every block is >= size. */
static inline void mapping_search(uint64_t size, unsigned *fl, unsigned *sl)
{
    mapping(search_size(size), fl, sl);
}

/* Sets or clears bit sl of sl_bitmap[fl], logging the aligned word around it
 * (one 8-byte entry is cheaper than a byte-sized one through memcpy). */
static inline int set_sl_bit(commy_alloc *a, unsigned fl, unsigned sl, int on)
{
    struct commy__heap_state *hs = HS(a);
    uint64_t *word = (uint64_t *)(void *)&hs->sl_bitmap[fl & ~7u];
    int rc = commy__log(a, word, 8);
    if (rc == 0) {
        if (on) hs->sl_bitmap[fl] = (uint8_t)(hs->sl_bitmap[fl] | (1u << sl));
        else hs->sl_bitmap[fl] = (uint8_t)(hs->sl_bitmap[fl] & ~(1u << sl));
    }
    return rc;
}

static int list_insert(commy_alloc *a, uint64_t off, uint64_t size)
{
    struct commy__heap_state *hs = HS(a);
    unsigned fl, sl;
    mapping(size, &fl, &sl);
    if (fl >= COMMY__FL_COUNT) return corrupt(a, "block size out of range", off);
    uint64_t head = hs->heads[fl][sl];
    int rc = commy__put64(a, &B(a, off)->next_free, head);
    rc = rc ? rc : commy__put64(a, &B(a, off)->prev_free, 0);
    if (rc == 0 && head) rc = commy__put64(a, &B(a, head)->prev_free, off);
    rc = rc ? rc : commy__put64(a, &hs->heads[fl][sl], off);
    if (rc == 0 && !(hs->sl_bitmap[fl] & (1u << sl))) {
        rc = set_sl_bit(a, fl, sl, 1);
        if (rc == 0 && !(hs->fl_bitmap & (1ull << fl))) rc = commy__put64(a, &hs->fl_bitmap, hs->fl_bitmap | (1ull << fl));
    }
    return rc;
}

static int list_remove(commy_alloc *a, uint64_t off, uint64_t size)
{
    struct commy__heap_state *hs = HS(a);
    struct blk *b = B(a, off);
    unsigned fl, sl;
    mapping(size, &fl, &sl);
    if (fl >= COMMY__FL_COUNT) return corrupt(a, "block size out of range", off);
    uint64_t next = b->next_free, prev = b->prev_free;
    if ((next && !blk_ok(a, next)) || (prev && !blk_ok(a, prev))) return corrupt(a, "free list link", off);
    int rc = 0;
    if (next) rc = commy__put64(a, &B(a, next)->prev_free, prev);
    if (rc == 0 && prev) rc = commy__put64(a, &B(a, prev)->next_free, next);
    if (rc == 0 && hs->heads[fl][sl] == off) {
        if (prev) return corrupt(a, "free list head has a predecessor", off);
        rc = commy__put64(a, &hs->heads[fl][sl], next);
        if (rc == 0 && next == 0) {
            rc = set_sl_bit(a, fl, sl, 0);
            if (rc == 0 && hs->sl_bitmap[fl] == 0) rc = commy__put64(a, &hs->fl_bitmap, hs->fl_bitmap & ~(1ull << fl));
        }
    } else if (rc == 0 && prev == 0) {
        return corrupt(a, "free block missing from its list", off);
    }
    return rc;
}

/* The head of a non-empty list whose blocks are all >= size, or 0. */
static uint64_t find_free(const commy_alloc *a, uint64_t size)
{
    const struct commy__heap_state *hs = HS(a);
    unsigned fl, sl;
    mapping_search(size, &fl, &sl);
    if (fl >= COMMY__FL_COUNT) return 0;
    unsigned sl_map = hs->sl_bitmap[fl] & (~0u << sl) & 0xffu;
    if (!sl_map) {
        uint64_t fl_map = fl + 1 < 64 ? hs->fl_bitmap & (~0ull << (fl + 1)) : 0;
        if (!fl_map) return 0;
        fl = (unsigned)__builtin_ctzll(fl_map);
        if (fl >= COMMY__FL_COUNT) return 0;
        sl_map = hs->sl_bitmap[fl];
        if (!sl_map) return 0;
    }
    sl = (unsigned)__builtin_ctz(sl_map);
    return hs->heads[fl][sl];
}

/* ------------------------------------------------------------ blocks */

/* Logs the header and free-list links of a block that a merge is about to
 * make the inside of a bigger free block. Nothing in the merge writes them,
 * but the merged block may be handed out later in the same change and its
 * new owner writes over them without logging (a fresh block): a rollback
 * that restores the blocks around them must find them intact. (Before this,
 * a change that released cached blocks (quick_flush) and then allocated over
 * them left, after a kill, a block whose size word was the new owner's data.) */
static inline int absorb(commy_alloc *a, uint64_t off) { return commy__log(a, B(a, off), sizeof(struct blk)); }

/* Makes [off, off+size) a free block after prev (whose FREE flag is prev_free),
 * fixes the next block's back link and inserts it into its list. */
static int make_free(commy_alloc *a, uint64_t off, uint64_t size, uint64_t prev, unsigned prev_flag)
{
    int rc = put_prev(a, off, prev, F_FREE | prev_flag);
    rc = rc ? rc : put_size(a, off, size);
    uint64_t next = off + size;
    if (rc == 0) rc = put_prev(a, next, off, (bflags(B(a, next)) & (F_FREE | F_QUICK)) | F_PREV_FREE);
    return rc ? rc : list_insert(a, off, size);
}

/* Cuts the used block at off down to size if the rest makes a block of its own. */
static int trim(commy_alloc *a, uint64_t off, uint64_t size)
{
    uint64_t have = bsize(B(a, off));
    if (have - size < MIN_BLOCK) return COMMY_OK;
    uint64_t rest = off + size, rest_size = have - size;
    uint64_t next = off + have;
    int rc = put_size(a, off, size);
    if (rc) return rc;
    /* Merge the remainder with a free successor so free blocks never touch. */
    if (bflags(B(a, next)) & F_FREE) {
        uint64_t nsz = bsize(B(a, next));
        rc = absorb(a, next);
        rc = rc ? rc : list_remove(a, next, nsz);
        if (rc) return rc;
        rest_size += nsz;
    }
    return make_free(a, rest, rest_size, off, 0);
}

static int heap_grow(commy_alloc *a, uint64_t need)
{
    uint64_t old_end = heap_end(a);
    struct blk *s = B(a, old_end);
    uint64_t last = bprev(s);
    unsigned last_free = bflags(s) & F_PREV_FREE;
    /* The old sentinel becomes the inside of a free block, which this very
     * change may hand out and fill without logging (a fresh block). If the
     * change is rolled back, the size goes back and the sentinel must be
     * there again: log it now, though nothing here writes it. */
    int rc = commy__log(a, s, HDR);
    if (rc) return rc;
    /* Enough for the request even if the last block is used: a block the
     * search will find must reach the request's rounded-up class. */
    rc = commy__grow(a, a->size + search_size(need) + MIN_BLOCK);
    if (rc) return rc;
    uint64_t new_end = heap_end(a);
    /* The new sentinel. */
    rc = put_prev(a, new_end, old_end, F_PREV_FREE);
    rc = rc ? rc : put_size(a, new_end, HDR);
    if (rc) return rc;
    uint64_t start = old_end, size = new_end - old_end;
    if (last_free) {
        uint64_t lsz = bsize(B(a, last));
        rc = list_remove(a, last, lsz);
        if (rc) return rc;
        start = last;
        size += lsz;
        return make_free(a, start, size, bprev(B(a, last)), bflags(B(a, last)) & F_PREV_FREE);
    }
    return make_free(a, start, size, last, 0);
}

static int take(commy_alloc *a, uint64_t off)
{
    struct blk *b = B(a, off);
    uint64_t sz = bsize(b);
    /* The caller overwrites the free-list links with its data: log them so a
     * rollback that frees the block again finds valid links. */
    int rc = commy__log(a, &b->next_free, 16);
    rc = rc ? rc : list_remove(a, off, sz);
    rc = rc ? rc : put_prev(a, off, bprev(b), bflags(b) & F_PREV_FREE);
    uint64_t next = off + sz;
    if (rc == 0) rc = put_prev(a, next, off, bflags(B(a, next)) & (F_FREE | F_QUICK));
    return rc;
}

/* Adjusts the live counters (used, live: adjacent in the header) with one journal entry. */
static inline int count_live(commy_alloc *a, int64_t bytes, int64_t blocks)
{
    struct commy__heap_state *hs = HS(a);
    int rc = commy__log(a, &hs->used, 16);
    if (rc == 0) {
        hs->used += (uint64_t)bytes;
        hs->live += (uint64_t)blocks;
    }
    return rc;
}

/* ------------------------------------------------------------ quick lists */

static inline struct commy__quick *QK(const commy_alloc *a) { return &a->hdr->quick; }
static inline unsigned quick_class(uint64_t size) { return (unsigned)(size / 16 - 2); }

/* Cached bytes stay below an eighth of the heap (at least 256 KiB), so
 * uncoalesced blocks cannot starve large requests for long. */
static inline uint64_t quick_limit(const commy_alloc *a)
{
    uint64_t l = (a->size - a->hdr->heap_off) / 8;
    return l > (256u << 10) ? l : (256u << 10);
}

/* Takes a cached block of exactly `need` bytes, if any: *out = its offset. */
static int quick_pop(commy_alloc *a, uint64_t need, uint64_t *out)
{
    struct commy__quick *q = QK(a);
    unsigned c = quick_class(need);
    uint64_t off = q->heads[c];
    *out = 0;
    if (!off) return COMMY_OK;
    struct blk *b = B(a, off);
    if (!blk_ok(a, off) || !(bflags(b) & F_QUICK) || bsize(b) != need) return corrupt(a, "quick list entry", off);
    uint64_t next = b->next_free;
    if (next && !blk_ok(a, next)) return corrupt(a, "quick list link", off);
    /* The new owner writes over the link unlogged: log it so a rollback that
     * re-caches the block finds its link again. */
    int rc = commy__log(a, &b->next_free, 8);
    rc = rc ? rc : commy__put64(a, &q->heads[c], next);
    rc = rc ? rc : commy__put64(a, &b->prev, b->prev & ~(uint64_t)F_QUICK);
    rc = rc ? rc : commy__put64(a, &q->bytes, q->bytes - need);
    if (rc == 0) *out = off;
    return rc;
}

static int quick_push(commy_alloc *a, uint64_t off, uint64_t size)
{
    struct commy__quick *q = QK(a);
    unsigned c = quick_class(size);
    struct blk *b = B(a, off);
    /* The link overwrites the first payload word: logged, so a rollback gives the data back. */
    int rc = commy__put64(a, &b->next_free, q->heads[c]);
    rc = rc ? rc : commy__put64(a, &b->prev, b->prev | F_QUICK);
    rc = rc ? rc : commy__put64(a, &q->heads[c], off);
    return rc ? rc : commy__put64(a, &q->bytes, q->bytes + size);
}

static int release_block(commy_alloc *a, uint64_t off);

/* Gives cached blocks back to the coalescing heap, as far as the journal has
 * room in this operation; returns whether any was released. */
static int quick_flush(commy_alloc *a, int *released)
{
    struct commy__quick *q = QK(a);
    *released = 0;
    for (unsigned c = 0; c < COMMY__QUICK_CLASSES; c++) {
        while (q->heads[c] && commy__journal_room(a) > (16u << 10)) {
            uint64_t off;
            int rc = quick_pop(a, (c + 2) * 16ull, &off);
            rc = rc ? rc : release_block(a, off);
            if (rc) return rc;
            *released = 1;
        }
    }
    return COMMY_OK;
}

int commy__alloc(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align)
{
    if (align == 0) align = COMMY__ALIGN;
    if (align < 8 || align > 4096 || (align & (align - 1)))
        return commy__err(COMMY_EINVAL, "allocation alignment %" PRIu64 " is not a power of two from 8 to 4096", align);
    if (size > COMMY__MAX_SIZE_LIMIT)
        return commy__err(COMMY_ENOSPC, "segment '%s': an allocation of %" PRIu64 " bytes can never fit", a->path, size);
    if (align < COMMY__ALIGN) align = COMMY__ALIGN;
    uint64_t need = ((size ? size : 1) + 15) & ~(uint64_t)15;
    need += HDR;
    if (need < MIN_BLOCK) need = MIN_BLOCK;
    uint64_t search = align > COMMY__ALIGN ? need + align + MIN_BLOCK : need;
    if (align == COMMY__ALIGN && need <= COMMY__QUICK_MAX) {
        uint64_t q;
        int rc = quick_pop(a, need, &q);
        if (rc) return rc;
        if (q) {
            rc = count_live(a, (int64_t)need, 1);
            if (rc == 0) *out = q + HDR;
            return rc;
        }
    }
    uint64_t off = find_free(a, search);
    if (!off && QK(a)->bytes) {
        int released, rc = quick_flush(a, &released);
        if (rc) return rc;
        if (released) off = find_free(a, search);
    }
    if (!off) {
        int rc = heap_grow(a, search);
        if (rc) return rc;
        off = find_free(a, search);
        if (!off) return corrupt(a, "no free block after growth", a->size);
    }
    if (!blk_ok(a, off) || !(bflags(B(a, off)) & F_FREE)) return corrupt(a, "free list entry", off);
    int rc = take(a, off);
    if (rc) return rc;
    if (align > COMMY__ALIGN) {
        uint64_t p = (off + HDR + align - 1) & ~(align - 1);
        if (p != off + HDR) {
            while (p - HDR - off < MIN_BLOCK) p += align;
            /* Give the gap before the aligned payload back as a free block. */
            uint64_t gap = p - HDR - off, total = bsize(B(a, off)), prev = bprev(B(a, off));
            unsigned prev_flags = bflags(B(a, off)) & F_PREV_FREE;
            uint64_t aligned = off + gap;
            rc = put_prev(a, aligned, off, F_PREV_FREE);
            rc = rc ? rc : put_size(a, aligned, total - gap);
            uint64_t after = aligned + total - gap;
            rc = rc ? rc : put_prev(a, after, aligned, bflags(B(a, after)) & (F_FREE | F_QUICK));
            if (rc) return rc;
            if (prev_flags) {
                /* The gap touches a free block: merge them. */
                uint64_t psz = bsize(B(a, prev));
                rc = absorb(a, off);
                rc = rc ? rc : list_remove(a, prev, psz);
                rc = rc ? rc : put_prev(a, prev, bprev(B(a, prev)), F_FREE | (bflags(B(a, prev)) & F_PREV_FREE));
                rc = rc ? rc : put_size(a, prev, psz + gap);
                rc = rc ? rc : put_prev(a, aligned, prev, F_PREV_FREE);
                rc = rc ? rc : list_insert(a, prev, psz + gap);
            } else {
                rc = put_prev(a, off, prev, F_FREE);
                rc = rc ? rc : put_size(a, off, gap);
                rc = rc ? rc : list_insert(a, off, gap);
            }
            if (rc) return rc;
            off = aligned;
        }
    }
    rc = trim(a, off, need);
    if (rc) return rc;
    rc = count_live(a, (int64_t)bsize(B(a, off)), 1);
    if (rc) return rc;
    *out = off + HDR;
    return COMMY_OK;
}

static int bad_free(const commy_alloc *a, uint64_t p, int double_free);
static uint64_t live_block(const commy_alloc *a, uint64_t p, int *double_free);

int commy__extend(commy_alloc *a, uint64_t p, uint64_t size)
{
    int df;
    uint64_t off = live_block(a, p, &df);
    if (off == 0) return bad_free(a, p, df);
    if (size > COMMY__MAX_SIZE_LIMIT) return 1;
    uint64_t need = ((size ? size : 1) + 15) & ~(uint64_t)15;
    need += HDR;
    uint64_t sz = bsize(B(a, off));
    if (need <= sz) return COMMY_OK;
    for (int grown = 0;; grown = 1) {
        uint64_t next = off + sz;
        if (next == heap_end(a) && !grown) {
            /* The last block: grow the heap behind it, then merge. */
            int rc = heap_grow(a, need - sz);
            if (rc) return rc == COMMY_ENOSPC ? 1 : rc;
            continue;
        }
        if (!(bflags(B(a, next)) & F_FREE)) return 1;
        if (!blk_ok(a, next)) return corrupt(a, "next block", next);
        uint64_t nsz = bsize(B(a, next));
        if (sz + nsz < need) {
            if (grown || next + nsz != heap_end(a)) return 1;
            int rc = heap_grow(a, need - sz);
            if (rc) return rc == COMMY_ENOSPC ? 1 : rc;
            continue;
        }
        /* Take the free successor whole, then give back what is not needed.
         * Its header and links become the caller's bytes, written without
         * logging: log them, so a rollback gets the free block back intact. */
        int rc = commy__log(a, B(a, next), sizeof(struct blk));
        rc = rc ? rc : list_remove(a, next, nsz);
        rc = rc ? rc : put_size(a, off, sz + nsz);
        uint64_t after = next + nsz;
        if (rc == 0) rc = put_prev(a, after, off, bflags(B(a, after)) & (F_FREE | F_QUICK));
        rc = rc ? rc : trim(a, off, need);
        rc = rc ? rc : count_live(a, (int64_t)bsize(B(a, off)) - (int64_t)sz, 0);
        return rc;
    }
}

int commy__calloc(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align)
{
    int rc = commy__alloc(out, a, size, align);
    if (rc == 0) memset(a->base + *out, 0, size);
    return rc;
}

/* Validates that payload offset p is a live block; returns its header offset or 0. */
static uint64_t live_block(const commy_alloc *a, uint64_t p, int *double_free)
{
    *double_free = 0;
    if (p < a->hdr->heap_off + HDR || (p & 15) || p > heap_end(a)) return 0;
    uint64_t off = p - HDR;
    if (off >= heap_end(a) || !tag_ok(a, off)) return 0;
    const struct blk *b = B(a, off);
    uint64_t sz = bsize(b);
    if (sz < MIN_BLOCK || (sz & 15) || sz > heap_end(a) - off) return 0;
    const struct blk *n = B(a, off + sz);
    if (bprev(n) != off || !tag_ok(a, off + sz)) return 0;
    if (bflags(b) & (F_FREE | F_QUICK)) {
        *double_free = 1;
        return 0;
    }
    return off;
}

uint64_t commy__block_size(const commy_alloc *a, uint64_t p)
{
    int df;
    uint64_t off = live_block(a, p, &df);
    return off ? bsize(B(a, off)) - HDR : 0;
}

/* Returns the used block at off to the free lists, merging it with free
 * neighbours. The caller has already taken it out of the live counters. */
static int release_block(commy_alloc *a, uint64_t off)
{
    struct blk *b = B(a, off);
    uint64_t sz = bsize(b), start = off, total = sz;
    uint64_t prev = bprev(b);
    unsigned prev_flag = bflags(b) & F_PREV_FREE;
    int rc = 0;
    uint64_t next = off + sz;
    if (bflags(B(a, next)) & F_FREE) {
        if (!blk_ok(a, next)) return corrupt(a, "next block", next);
        uint64_t nsz = bsize(B(a, next));
        rc = absorb(a, next);
        rc = rc ? rc : list_remove(a, next, nsz);
        total += nsz;
    }
    if (rc == 0 && prev_flag) {
        if (!blk_ok(a, prev) || prev + bsize(B(a, prev)) != off) return corrupt(a, "previous block", prev);
        uint64_t psz = bsize(B(a, prev));
        rc = absorb(a, off);
        rc = rc ? rc : list_remove(a, prev, psz);
        start = prev;
        total += psz;
        prev_flag = bflags(B(a, prev)) & F_PREV_FREE;
        prev = bprev(B(a, prev));
    }
    return rc ? rc : make_free(a, start, total, prev, prev_flag);
}

static int bad_free(const commy_alloc *a, uint64_t p, int double_free)
{
    return commy__err(COMMY_EBADFREE, double_free ? "segment '%s': double free of offset %" PRIu64
                                                  : "segment '%s': offset %" PRIu64 " is not a live allocation",
                      a->path, p);
}

int commy__free(commy_alloc *a, uint64_t p)
{
    if (p == 0) return COMMY_OK;
    int df;
    if (!live_block(a, p, &df)) return bad_free(a, p, df);
    if (a->npending <= 256)
        for (uint32_t i = 0; i < a->npending; i++)
            if (a->pending[i] == p) return bad_free(a, p, 1);
    if (a->npending == a->pending_cap) {
        uint32_t cap = a->pending_cap ? a->pending_cap * 2 : 16;
        uint64_t *n = realloc(a->pending, cap * sizeof *n);
        if (!n) return commy__err(COMMY_ENOMEM, "segment '%s': out of memory recording a free", a->path);
        a->pending = n;
        a->pending_cap = cap;
    }
    a->pending[a->npending++] = p;
    return COMMY_OK;
}

int commy__free_now(commy_alloc *a, uint64_t p)
{
    /* commy__free validated p in this change, and nothing since can have
     * made it anything but a live block: re-check only the cheap part. */
    uint64_t off = p - HDR;
    if (bflags(B(a, off)) & (F_FREE | F_QUICK)) return bad_free(a, p, 1);
    uint64_t sz = bsize(B(a, off));
    int rc = count_live(a, -(int64_t)sz, -1);
    if (rc) return rc;
    if (sz <= COMMY__QUICK_MAX && QK(a)->bytes + sz <= quick_limit(a)) return quick_push(a, off, sz);
    return release_block(a, off);
}

/* ------------------------------------------------------------ segment hooks */

int commy__heap_init(commy_alloc *a)
{
    struct commy__heap_state *hs = HS(a);
    memset(hs, 0, sizeof *hs);
    memset(QK(a), 0, sizeof *QK(a));
    uint64_t first = a->hdr->heap_off, end = heap_end(a);
    B(a, end)->prev = first | F_PREV_FREE;
    B(a, end)->size = HDR | (tag(a, end, HDR) << 40);
    return make_free(a, first, end - first, 0, 0);
}

void commy__heap_stats(commy_alloc *a, commy_heap_stats *out)
{
    const struct commy__heap_state *hs = HS(a);
    memset(out, 0, sizeof *out);
    out->heap_size = a->size - a->hdr->heap_off;
    out->used = hs->used;
    out->free = out->heap_size - HDR - hs->used;
    out->live_allocs = hs->live;
    uint64_t largest = 0, blocks = 0;
    for (unsigned f = 0; f < COMMY__FL_COUNT; f++)
        for (unsigned s = 0; s < COMMY__SL_COUNT; s++)
            for (uint64_t o = hs->heads[f][s], n = 0; o && n < (1u << 24); o = B(a, o)->next_free, n++) {
                if (!blk_ok(a, o)) break;
                blocks++;
                if (bsize(B(a, o)) > largest) largest = bsize(B(a, o));
            }
    out->free_blocks = blocks;
    out->largest_free = largest > HDR ? largest - HDR : 0;
}

int commy__heap_check(commy_alloc *a)
{
    const struct commy__heap_state *hs = HS(a);
    uint64_t off = a->hdr->heap_off, end = heap_end(a), prev = 0;
    unsigned prev_free = 0;
    uint64_t used = 0, live = 0, free_blocks = 0, quick_blocks = 0, quick_bytes = 0;
    if (!tag_ok(a, end) || bsize(B(a, end)) != HDR) return corrupt(a, "sentinel block", end);
    while (off < end) {
        const struct blk *b = B(a, off);
        uint64_t sz = bsize(b);
        if (!tag_ok(a, off)) return corrupt(a, "block tag", off);
        if (sz < MIN_BLOCK || (sz & 15) || sz > end - off) return corrupt(a, "block size", off);
        if (bprev(b) != prev) return corrupt(a, "back link", off);
        if (((bflags(b) & F_PREV_FREE) != 0) != (prev_free != 0)) return corrupt(a, "previous-free flag", off);
        unsigned is_free = bflags(b) & F_FREE;
        if (is_free && prev_free) return corrupt(a, "two adjacent free blocks", off);
        if (is_free && (bflags(b) & F_QUICK)) return corrupt(a, "block both free and cached", off);
        if (is_free) {
            free_blocks++;
        } else if (bflags(b) & F_QUICK) {
            quick_blocks++;
            quick_bytes += sz;
        } else {
            used += sz;
            live++;
        }
        prev = off;
        prev_free = is_free;
        off += sz;
    }
    if (off != end) return corrupt(a, "block chain overruns the heap", off);
    if (bprev(B(a, end)) != prev || ((bflags(B(a, end)) & F_PREV_FREE) != 0) != (prev_free != 0))
        return corrupt(a, "sentinel back link", end);
    if (used != hs->used || live != hs->live)
        return commy__err(COMMY_ECORRUPT, "segment '%s': heap counters say %" PRIu64 " bytes in %" PRIu64
                          " blocks, the blocks say %" PRIu64 " in %" PRIu64, a->path, hs->used, hs->live, used, live);
    uint64_t listed = 0;
    for (unsigned f = 0; f < COMMY__FL_COUNT; f++) {
        for (unsigned s = 0; s < COMMY__SL_COUNT; s++) {
            uint64_t o = hs->heads[f][s], back = 0;
            int bit = (hs->sl_bitmap[f] >> s) & 1;
            if ((o != 0) != bit) return corrupt(a, "free list bitmap", f * 8 + s);
            while (o) {
                if (!blk_ok(a, o) || !(bflags(B(a, o)) & F_FREE)) return corrupt(a, "free list entry", o);
                unsigned ff, ss;
                mapping(bsize(B(a, o)), &ff, &ss);
                if (ff != f || ss != s) return corrupt(a, "block in the wrong size class", o);
                if (B(a, o)->prev_free != back) return corrupt(a, "free list back link", o);
                if (++listed > free_blocks) return corrupt(a, "free list loops or lists a used block", o);
                back = o;
                o = B(a, o)->next_free;
            }
        }
        if (((hs->fl_bitmap >> f) & 1) != (hs->sl_bitmap[f] != 0)) return corrupt(a, "first-level bitmap", f);
    }
    if (listed != free_blocks) return corrupt(a, "free blocks missing from the lists", listed);
    const struct commy__quick *q = QK(a);
    uint64_t cached = 0;
    for (unsigned c = 0; c < 32; c++) {
        for (uint64_t o = q->heads[c]; o; o = B(a, o)->next_free) {
            if (c >= COMMY__QUICK_CLASSES || !blk_ok(a, o) || !(bflags(B(a, o)) & F_QUICK) ||
                quick_class(bsize(B(a, o))) != c)
                return corrupt(a, "quick list entry", o);
            if (++cached > quick_blocks) return corrupt(a, "quick list loops or lists a live block", o);
        }
    }
    if (cached != quick_blocks || quick_bytes != q->bytes) return corrupt(a, "quick list totals", cached);
    return COMMY_OK;
}

int commy__heap_flush(commy_alloc *a, int *more)
{
    int released, rc = quick_flush(a, &released);
    *more = rc == 0 && QK(a)->bytes != 0;
    return rc;
}

int commy__heap_shrink(commy_alloc *a, uint64_t *new_size)
{
    *new_size = 0;
    int released, frc = quick_flush(a, &released);
    if (frc) return frc;
    uint64_t end = heap_end(a);
    const struct blk *s = B(a, end);
    if (!(bflags(s) & F_PREV_FREE)) return COMMY_OK;
    uint64_t last = bprev(s);
    if (!blk_ok(a, last)) return corrupt(a, "last block", last);
    uint64_t lsz = bsize(B(a, last));
    uint64_t min_size = a->hdr->heap_off + COMMY__MIN_HEAP;
    /* Keep the last free block at least MIN_BLOCK, or drop it entirely. */
    uint64_t cut_end = (last + MIN_BLOCK + HDR + 4095) & ~(uint64_t)4095;
    if (cut_end < min_size) cut_end = min_size;
    if (cut_end >= a->size) return COMMY_OK;
    uint64_t new_sentinel = cut_end - HDR;
    int rc = list_remove(a, last, lsz);
    if (rc) return rc;
    uint64_t lprev = bprev(B(a, last));
    unsigned lflag = bflags(B(a, last)) & F_PREV_FREE;
    uint64_t nsz = new_sentinel - last;
    rc = put_prev(a, new_sentinel, last, F_PREV_FREE);
    rc = rc ? rc : put_size(a, new_sentinel, HDR);
    rc = rc ? rc : put_prev(a, last, lprev, F_FREE | lflag);
    rc = rc ? rc : put_size(a, last, nsz);
    rc = rc ? rc : list_insert(a, last, nsz);
    rc = rc ? rc : commy__put64(a, (uint64_t *)&a->hdr->size, cut_end);
    if (rc) return rc;
    a->size = cut_end;
    *new_size = cut_end;
    return COMMY_OK;
}

/* ------------------------------------------------------------ public API */

int commy_alloc_allocate(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_allocate: out is NULL");
    COMMY__CHECK_HANDLE(a);
    uint64_t sp;
    int rc = commy__begin(a, 1, &sp);
    if (rc) return rc;
    return commy__end(a, sp, commy__alloc(out, a, size, align));
}

int commy_alloc_free(commy_alloc *a, uint64_t offset)
{
    COMMY__CHECK_HANDLE(a);
    if (offset == 0) return commy__err(COMMY_EBADFREE, "commy_alloc_free: offset 0 is never an allocation");
    uint64_t sp;
    int rc = commy__begin(a, 1, &sp);
    if (rc) return rc;
    return commy__end(a, sp, commy__free(a, offset));
}

int commy_alloc_block_size(uint64_t *out, commy_alloc *a, uint64_t offset)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_alloc_block_size: out is NULL");
    COMMY__CHECK_HANDLE(a);
    uint64_t sp;
    int rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    uint64_t n = commy__block_size(a, offset);
    if (!n) rc = commy__err(COMMY_EBADFREE, "segment '%s': offset %" PRIu64 " is not a live allocation", a->path, offset);
    else *out = n;
    return commy__end(a, sp, rc);
}
