/* The segment's directory of named roots: every container lives under a name.
 * Names are 1 to 63 bytes of [A-Za-z0-9_.:-]; anything else is COMMY_EINVAL. */
#ifndef COMMY_ROOT_H
#define COMMY_ROOT_H

#include "alloc.h"
#include "types.h"

#define COMMY_ROOT_NAME_MAX 63

typedef struct commy_root_info {
    char name[COMMY_ROOT_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t kind;                      /* COMMY_KIND_* */
    commy_type key_type;                /* element type for box/vec/str/deque/set/oset; key type for maps */
    commy_type value_type;              /* value type for maps, COMMY_T_ANY otherwise */
    uint32_t reserved;
    uint64_t len;   /* elements (entries, bytes for str, 1 for box) */
    uint64_t bytes; /* heap bytes the container holds, headers included */
} commy_root_info;

COMMY_BEGIN_DECLS

/* Number of roots in *out. Blocks: on the segment lock. */
COMMY_API int commy_root_count(uint64_t *out, commy_alloc *a);

/* Describes the root at index (0 <= index < count, in creation order).
 * Errors: COMMY_ERANGE. Blocks: on the segment lock. */
COMMY_API int commy_root_at(commy_root_info *out, commy_alloc *a, uint64_t index);

/* Describes the root called name. Errors: COMMY_ENOTFOUND, COMMY_EINVAL (bad name). */
COMMY_API int commy_root_find(commy_root_info *out, commy_alloc *a, const char *name);

/* Removes the root called name and frees everything its container holds.
 * Handles still open on it fail with COMMY_ENOTFOUND from then on.
 * Errors: COMMY_ENOTFOUND, COMMY_EINVAL, COMMY_EPERM. Blocks: on the segment lock. */
COMMY_API int commy_root_remove(commy_alloc *a, const char *name);

COMMY_END_DECLS

#endif
