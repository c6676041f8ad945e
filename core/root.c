/* The root directory: the segment's table of named containers.
 *
 * The header's root field holds the offset of one heap block (0 until the
 * first root): a 64-byte head, then `capacity` fixed 80-byte entries of
 * which the first `count` are live, in creation order (docs/format.md,
 * "Root directory"). It grows by copying into a block twice the size and
 * swapping the header's offset, one logged write. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

#define ROOT_DIR_MAGIC 0x52594d43u /* "CMYR" */
#define ROOT_DIR_FIRST_CAPACITY 8u

struct root_dir {
    uint32_t magic;
    uint32_t entry_size; /* sizeof(struct root_entry), for readers of later layouts */
    uint64_t count;
    uint64_t capacity;
    uint64_t reserved[5];
};
_Static_assert(sizeof(struct root_dir) == 64, "root directory head is 64 bytes");

struct root_entry {
    char name[COMMY_ROOT_NAME_MAX + 1]; /* NUL-padded */
    uint32_t kind;
    uint32_t reserved;
    uint64_t off; /* the container's block */
};
_Static_assert(sizeof(struct root_entry) == 80, "root entry is 80 bytes");

static int name_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == ':' || c == '-';
}

/* COMMY_OK if name is 1 to 63 bytes of [A-Za-z0-9_.:-]. */
static int name_check(const char *name)
{
    if (name == NULL) return commy__err(COMMY_EINVAL, "root name is NULL");
    size_t n = strnlen(name, COMMY_ROOT_NAME_MAX + 1);
    if (n == 0) return commy__err(COMMY_EINVAL, "root name is empty; use 1 to %d bytes of A-Z a-z 0-9 _ . : -",
                                  COMMY_ROOT_NAME_MAX);
    if (n > COMMY_ROOT_NAME_MAX)
        return commy__err(COMMY_EINVAL, "root name '%.20s...' is longer than %d bytes", name, COMMY_ROOT_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!name_byte_ok(c)) {
            char shown[8];
            if (c >= 0x20 && c < 0x7f) snprintf(shown, sizeof shown, "'%c'", c);
            else snprintf(shown, sizeof shown, "0x%02x", c);
            return commy__err(COMMY_EINVAL, "root name has %s at byte %zu; names use only A-Z a-z 0-9 _ . : -", shown,
                              i);
        }
    }
    return COMMY_OK;
}

static int dir_bad(commy_alloc *a, const char *what)
{
    return commy__err(COMMY_ECORRUPT, "segment '%s': root directory damaged: %s; run commy_alloc_check", a->path, what);
}

/* The directory, bounds-checked, or NULL (with *rc = 0 if there is none yet,
 * COMMY_ECORRUPT if it is damaged). */
static struct root_dir *dir_get(commy_alloc *a, int *rc)
{
    *rc = COMMY_OK;
    uint64_t off = *commy__root_field(a);
    if (off == 0) return NULL;
    if ((off & 7) || !commy__in_heap(a, off, sizeof(struct root_dir))) {
        *rc = dir_bad(a, "its offset is outside the heap");
        return NULL;
    }
    struct root_dir *d = commy__at(a, off);
    if (d->magic != ROOT_DIR_MAGIC || d->entry_size != sizeof(struct root_entry)) {
        *rc = dir_bad(a, "bad magic");
        return NULL;
    }
    if (d->count > d->capacity || d->capacity > (a->size / sizeof(struct root_entry)) ||
        !commy__in_heap(a, off + sizeof *d, d->capacity * sizeof(struct root_entry))) {
        *rc = dir_bad(a, "its count or capacity does not fit the segment");
        return NULL;
    }
    return d;
}

static struct root_entry *entries(struct root_dir *d) { return (struct root_entry *)(d + 1); }

/* Index of name in d, or -1. name is valid (so at most 63 bytes). */
static int64_t dir_find(struct root_dir *d, const char *name)
{
    size_t n = strlen(name) + 1;
    struct root_entry *e = entries(d);
    for (uint64_t i = 0; i < d->count; i++)
        if (memcmp(e[i].name, name, n) == 0) return (int64_t)i;
    return -1;
}

int commy__root_lookup(uint64_t *out, commy_alloc *a, const char *name)
{
    int rc = name_check(name);
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    if (d == NULL) return rc ? rc : COMMY_ENOTFOUND;
    int64_t i = dir_find(d, name);
    if (i < 0) return COMMY_ENOTFOUND;
    *out = entries(d)[i].off;
    return COMMY_OK;
}

int commy__root_add(commy_alloc *a, const char *name, uint64_t container_off)
{
    int rc = name_check(name);
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    if (rc) return rc;
    if (d && dir_find(d, name) >= 0)
        return commy__err(COMMY_EEXISTS, "root '%s' already exists in segment '%s'", name, a->path);
    if (d == NULL || d->count == d->capacity) {
        uint64_t cap = d ? d->capacity * 2 : ROOT_DIR_FIRST_CAPACITY;
        uint64_t noff;
        rc = commy__calloc(&noff, a, sizeof(struct root_dir) + cap * sizeof(struct root_entry), 64);
        if (rc) return rc;
        struct root_dir *nd = commy__at(a, noff);
        nd->magic = ROOT_DIR_MAGIC;
        nd->entry_size = sizeof(struct root_entry);
        nd->capacity = cap;
        if (d) {
            nd->count = d->count;
            memcpy(entries(nd), entries(d), d->count * sizeof(struct root_entry));
        }
        uint64_t old = *commy__root_field(a);
        rc = commy__put64(a, commy__root_field(a), noff);
        if (rc == 0 && old) rc = commy__free(a, old);
        if (rc) return rc;
        d = nd;
    }
    struct root_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.name, sizeof e.name, "%s", name);
    struct commy__chdr *c = commy__container_at(a, container_off);
    if (c == NULL) return commy_error_last()->code;
    e.kind = c->kind;
    e.off = container_off;
    rc = commy__put(a, &entries(d)[d->count], &e, sizeof e);
    if (rc == 0) rc = commy__put64(a, &d->count, d->count + 1);
    return rc;
}

/* ------------------------------------------------------------ the public API */

static int fill_info(commy_root_info *out, commy_alloc *a, const struct root_entry *e)
{
    struct commy__chdr *c = commy__container_at(a, e->off);
    if (c == NULL) return commy_error_last()->code;
    memset(out, 0, sizeof *out);
    memcpy(out->name, e->name, COMMY_ROOT_NAME_MAX);
    out->name[COMMY_ROOT_NAME_MAX] = '\0';
    out->kind = c->kind;
    out->key_type = c->key_type;
    out->value_type = (c->kind == COMMY_KIND_MAP || c->kind == COMMY_KIND_OMAP) ? c->val_type : COMMY_T_ANY;
    out->len = c->kind == COMMY_KIND_BOX ? 1 : c->len;
    out->bytes = commy__block_size(a, e->off);
    const struct commy__kind_ops *ops = commy__kind_ops_of(c->kind);
    /* The byte count walks the container's storage, trusting its lengths:
     * only after the container checks out (a damaged file must not crash). */
    if (ops && ops->check) {
        int rc = ops->check(a, c);
        if (rc) return rc;
    }
    if (ops && ops->bytes) out->bytes += ops->bytes(a, c);
    return COMMY_OK;
}

int commy_root_count(uint64_t *out, commy_alloc *a)
{
    COMMY__CHECK_HANDLE(a);
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_root_count: out is NULL");
    uint64_t sp;
    int rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    if (rc == 0) *out = d ? d->count : 0;
    return commy__end(a, sp, rc);
}

int commy_root_at(commy_root_info *out, commy_alloc *a, uint64_t index)
{
    COMMY__CHECK_HANDLE(a);
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_root_at: out is NULL");
    uint64_t sp;
    int rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    if (rc == 0) {
        uint64_t n = d ? d->count : 0;
        if (index >= n)
            rc = commy__err(COMMY_ERANGE, "root index %" PRIu64 " is out of range: segment '%s' has %" PRIu64 " roots",
                            index, a->path, n);
        else
            rc = fill_info(out, a, &entries(d)[index]);
    }
    return commy__end(a, sp, rc);
}

int commy_root_find(commy_root_info *out, commy_alloc *a, const char *name)
{
    COMMY__CHECK_HANDLE(a);
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_root_find: out is NULL");
    int rc = name_check(name);
    if (rc) return rc;
    uint64_t sp;
    rc = commy__begin(a, 0, &sp);
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    if (rc == 0) {
        int64_t i = d ? dir_find(d, name) : -1;
        if (i < 0) rc = commy__err(COMMY_ENOTFOUND, "root '%s' does not exist in segment '%s'", name, a->path);
        else rc = fill_info(out, a, &entries(d)[i]);
    }
    return commy__end(a, sp, rc);
}

int commy_root_remove(commy_alloc *a, const char *name)
{
    COMMY__CHECK_HANDLE(a);
    int rc = name_check(name);
    if (rc) return rc;
    uint64_t sp;
    /* A session's service after a rotation: remove it from the newest file
     * (waiting for it if the server just retired this one). */
    for (;;) {
        for (commy_alloc *nx; (nx = atomic_load_explicit(&a->forward, memory_order_acquire)) != NULL;) a = nx;
        rc = commy__begin(a, 1, &sp);
        if (rc != COMMY_ERETIRED || (atomic_load_explicit(&a->owned, memory_order_relaxed) && a->owner == commy__me))
            break;
        if ((rc = commy__retired_wait(a)) != COMMY_OK) return rc;
    }
    if (rc) return rc;
    struct root_dir *d = dir_get(a, &rc);
    int64_t i = d ? dir_find(d, name) : -1;
    if (rc == 0 && i < 0) rc = commy__err(COMMY_ENOTFOUND, "root '%s' does not exist in segment '%s'", name, a->path);
    struct commy__chdr *c = NULL;
    const struct commy__kind_ops *ops = NULL;
    if (rc == 0) {
        uint64_t off = entries(d)[i].off;
        c = commy__container_at(a, off);
        if (c == NULL) rc = commy_error_last()->code;
        if (rc == 0) {
            ops = commy__kind_ops_of(c->kind);
            if (ops == NULL)
                rc = commy__err(COMMY_ENOTSUP, "root '%s' is a %s, which is not built into this library: it cannot "
                                "free what the container holds", name, commy_kind_name(c->kind));
        }
        if (rc == 0 && ops->destroy) rc = ops->destroy(a, c);
        /* Stale handles check magic and instance: clear both before the block
         * can be reused, so no handle mistakes a new container for this one. */
        if (rc == 0) rc = commy__put32(a, &c->magic, 0);
        if (rc == 0) rc = commy__put64(a, &c->instance, 0);
        /* Wake waiters now: they see the magic gone (cleared above, before the version moved). */
        if (rc == 0) commy__changed(a, c);
        if (rc == 0) rc = commy__free(a, off);
    }
    if (rc == 0) {
        struct root_entry *e = entries(d);
        uint64_t tail = (d->count - (uint64_t)i - 1) * sizeof *e;
        /* Keep creation order: shift the later entries down by one. */
        if (tail) rc = commy__log(a, &e[i], tail);
        if (rc == 0) {
            memmove(&e[i], &e[i + 1], tail);
            rc = commy__put(a, &e[d->count - 1], &(struct root_entry){0}, sizeof *e);
        }
        if (rc == 0) rc = commy__put64(a, &d->count, d->count - 1);
    }
    return commy__end(a, sp, rc);
}

/* ------------------------------------------------------------ consistency */

/* A copy of this thread's last message, to quote it in a new one (the record's
 * buffer is the one being written). */
static const char *last_message(void)
{
    static _Thread_local char copy[512];
    snprintf(copy, sizeof copy, "%s", commy_error_last()->message);
    return copy;
}

int commy__roots_check(commy_alloc *a)
{
    int rc;
    struct root_dir *d = dir_get(a, &rc);
    if (d == NULL) return rc;
    uint64_t doff = *commy__root_field(a);
    uint64_t need = sizeof *d + d->capacity * sizeof(struct root_entry);
    if (commy__block_size(a, doff) < need) return dir_bad(a, "it is not a live block of its size");
    struct root_entry *e = entries(d);
    for (uint64_t i = 0; i < d->count; i++) {
        char name[COMMY_ROOT_NAME_MAX + 1];
        if (memchr(e[i].name, '\0', sizeof e[i].name) == NULL)
            return commy__err(COMMY_ECORRUPT, "segment '%s': root entry %" PRIu64 " has an unterminated name", a->path, i);
        memcpy(name, e[i].name, sizeof name);
        if (name_check(name))
            return commy__err(COMMY_ECORRUPT, "segment '%s': root entry %" PRIu64 " has an invalid name", a->path, i);
        for (uint64_t j = 0; j < i; j++) {
            if (strcmp(e[j].name, name) == 0)
                return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s' appears twice", a->path, name);
            if (e[j].off == e[i].off)
                return commy__err(COMMY_ECORRUPT, "segment '%s': roots '%s' and '%s' share one container", a->path,
                                  e[j].name, name);
        }
        struct commy__chdr *c = commy__container_at(a, e[i].off);
        if (c == NULL) return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s': %s", a->path, name, last_message());
        if (c->kind != e[i].kind)
            return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s' is listed as a %s but its container is a %s",
                              a->path, name, commy_kind_name(e[i].kind), commy_kind_name(c->kind));
        const struct commy__kind_ops *ops = commy__kind_ops_of(c->kind);
        int has_val = c->kind == COMMY_KIND_MAP || c->kind == COMMY_KIND_OMAP;
        if (!commy_type_valid(c->key_type) || (has_val ? !commy_type_valid(c->val_type) : c->val_type != 0))
            return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s' declares invalid element types", a->path, name);
        uint64_t bs = commy__block_size(a, e[i].off);
        if (bs == 0 || (ops && bs < ops->block_size))
            return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s': its container is not a live block of its size",
                              a->path, name);
        if (ops && ops->check) {
            rc = ops->check(a, c);
            if (rc) {
                if (rc == COMMY_ECORRUPT) return rc;
                return commy__err(COMMY_ECORRUPT, "segment '%s': root '%s': %s", a->path, name, last_message());
            }
        }
    }
    return COMMY_OK;
}
