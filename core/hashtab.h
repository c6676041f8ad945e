/* The hash table engine under commy_map and commy_set (docs/format.md, "map
 * and set"). Open addressing, SwissTable-style: one control byte per slot
 * holding 7 bits of the key's hash, probed 8 slots at a time.
 *
 * The container header's body holds:
 *   body[0] offset of the table block, 0 while the container has no table
 *   body[1] the hash seed, random per container
 *   body[2] the list of tables a clear detached, still being freed (0: none)
 * A set is a map whose value type has no bytes (vslot 0). */
#ifndef COMMY_CORE_HASHTAB_H
#define COMMY_CORE_HASHTAB_H

#include "internal.h"

/* Fills h->voff and h->stride (called when a map or set handle opens). */
void commy__ht_handle_layout(struct commy__handle *h) COMMY__HIDDEN;

/* Kind hooks shared by map and set. */
int commy__ht_init(commy_alloc *a, struct commy__chdr *c) COMMY__HIDDEN;
int commy__ht_destroy(commy_alloc *a, struct commy__chdr *c) COMMY__HIDDEN;
int commy__ht_check(commy_alloc *a, const struct commy__chdr *c) COMMY__HIDDEN;
uint64_t commy__ht_bytes(commy_alloc *a, const struct commy__chdr *c) COMMY__HIDDEN;

/* Inserts key -> val (val ignored for a set). replace != 0 overwrites the
 * value of a present key; replace == 0 leaves it alone. *out_added (may be
 * NULL) = 1 if the key was new. */
int commy__ht_put(int *out_added, struct commy__handle *h, const void *key, size_t klen, const void *val, size_t vlen,
                  int replace) COMMY__HIDDEN;
/* Copies the value of key out (map), with the getter output convention. */
int commy__ht_get(struct commy__handle *h, const void *key, size_t klen, void *out, size_t cap,
                  size_t *out_len) COMMY__HIDDEN;
int commy__ht_contains(int *out, struct commy__handle *h, const void *key, size_t klen) COMMY__HIDDEN;
int commy__ht_remove(struct commy__handle *h, const void *key, size_t klen) COMMY__HIDDEN;
int commy__ht_clear(struct commy__handle *h) COMMY__HIDDEN;
int commy__ht_len(uint64_t *out, struct commy__handle *h) COMMY__HIDDEN;
/* One cursor step; vout/vcap/vlen unused for a set. */
int commy__ht_next(struct commy__handle *h, commy_cursor *cur, void *kout, size_t kcap, size_t *klen, void *vout,
                   size_t vcap, size_t *vlen) COMMY__HIDDEN;

#endif
