/* The segment file's header (layout 1.0), shared by segment.c and heap.c.
 * docs/format.md is the normative description; the static asserts pin it. */
#ifndef COMMY_CORE_SEGMENT_H
#define COMMY_CORE_SEGMENT_H

#include "internal.h"

#define COMMY__MAGIC 0x474553594d4d4f43ull      /* the bytes "COMMYSEG" */
#define COMMY__MAGIC_INIT 0x494e49594d4d4f43ull /* the bytes "COMMYINI": being initialised */
#define COMMY__HEADER_SIZE 4096u
#define COMMY__LOCK_OFF 128u
#define COMMY__PROC_OFF 512u
#define COMMY__PROC_SLOTS 32u
#define COMMY__HEAP_STATE_OFF 1536u
#define COMMY__MAX_SIZE_LIMIT (512ull << 30)
#define COMMY__MIN_HEAP (64u << 10)

/* TLSF: 16-byte granules, 8 second-level classes, first level up to 2^39. */
#define COMMY__ALIGN 16u
#define COMMY__SL_LOG 3
#define COMMY__SL_COUNT (1u << COMMY__SL_LOG)
#define COMMY__FL_SHIFT (COMMY__SL_LOG + 4)     /* sizes below 128 are "small": linear classes */
#define COMMY__SMALL (1u << COMMY__FL_SHIFT)
#define COMMY__FL_COUNT 34                      /* fl 0 small, fl 1..33 for 2^7 .. 2^39 */

struct commy__proc {
    _Atomic uint32_t pid;          /* 0: free */
    _Atomic uint32_t state;        /* 0 free, 1 attached */
    uint64_t start_time;           /* /proc/PID/stat field 22, clock ticks since boot */
    _Atomic uint64_t heartbeat_ms; /* CLOCK_BOOTTIME in ms; 0: never heartbeat */
    _Atomic uint64_t inflight;     /* lock-free box writes of this process in progress (docs/format.md, "Retirement") */
};
_Static_assert(sizeof(struct commy__proc) == 32, "process slot is 32 bytes");

struct commy__heap_state {
    uint64_t fl_bitmap;                  /* bit f set: some sl list of fl f is non-empty */
    uint8_t sl_bitmap[40];               /* [f] bit s set: list (f, s) non-empty */
    uint64_t used;                       /* bytes of live blocks, headers included */
    uint64_t live;                       /* live allocations */
    uint64_t reserved[2];
    uint64_t heads[COMMY__FL_COUNT][COMMY__SL_COUNT]; /* first free block of each class, 0: empty */
};

/* Quick lists: freed blocks of up to 512 bytes are cached by exact size,
 * without coalescing, so a free and a re-allocation of the same size touch a
 * handful of words instead of splitting and merging. */
#define COMMY__QUICK_MAX 512u
#define COMMY__QUICK_CLASSES 31 /* block sizes 32, 48, ..., 512 */
struct commy__quick {
    uint64_t heads[32]; /* [size / 16 - 2]: first cached block, 0: empty */
    uint64_t bytes;     /* bytes of all cached blocks */
    uint64_t reserved;
};

struct commy__header {
    uint64_t magic;                  /*   0 */
    uint16_t layout_major;           /*   8 */
    uint16_t layout_minor;           /*  10 */
    uint32_t header_size;            /*  12 */
    uint32_t flags;                  /*  16 */
    uint32_t creator_version;        /*  20 */
    _Atomic uint64_t size;           /*  24: published with release order after the file grew */
    uint64_t max_size;               /*  32 */
    uint64_t journal_off;            /*  40 */
    uint64_t journal_size;           /*  48 */
    uint64_t heap_off;               /*  56 */
    uint64_t root_off;               /*  64 */
    uint64_t created_ns;             /*  72 */
    uint64_t salt;                   /*  80: random, mixes block tags */
    uint32_t proc_slots;             /*  88 */
    uint32_t proc_slot_size;         /*  92 */
    uint64_t proc_off;               /*  96 */
    uint64_t heap_state_off;         /* 104 */
    _Atomic uint64_t recoveries;     /* 112 */
    uint64_t lock_off;               /* 120 */
    _Atomic uint64_t lock;           /* 128: owner start32 << 32 | waiters bit 31 | owner tid (segment.c) */
    uint64_t lock_reserved[6];
    _Atomic uint64_t retired;        /* 184: 1 once the server moved the service away (docs/format.md, "Retirement") */
    struct commy__wait_bucket wait[COMMY__WAIT_BUCKETS]; /* 192: the wait table (container.c) */
    struct commy__proc procs[COMMY__PROC_SLOTS];  /* 512 */
    struct commy__heap_state heap;                /* 1536 */
    struct commy__quick quick;                    /* 3792 */
    uint8_t reserved2[COMMY__HEADER_SIZE - COMMY__HEAP_STATE_OFF - sizeof(struct commy__heap_state) -
                      sizeof(struct commy__quick)];
};
_Static_assert(sizeof(struct commy__header) == COMMY__HEADER_SIZE, "header is 4096 bytes");
_Static_assert(__builtin_offsetof(struct commy__header, lock) == COMMY__LOCK_OFF, "lock offset");
_Static_assert(__builtin_offsetof(struct commy__header, wait) == COMMY__WAIT_OFF, "wait table offset");
_Static_assert(COMMY__WAIT_OFF + COMMY__WAIT_BUCKETS * sizeof(struct commy__wait_bucket) == COMMY__PROC_OFF,
               "the wait table fills 192..511");
_Static_assert(__builtin_offsetof(struct commy__header, procs) == COMMY__PROC_OFF, "process table offset");
_Static_assert(__builtin_offsetof(struct commy__header, retired) == 184, "retired mark offset");
_Static_assert(__builtin_offsetof(struct commy__header, retired) ==
                   COMMY__LOCK_OFF + 8 * COMMY__RETIRED_AFTER_LOCK, "retired mark, from the lock word");
_Static_assert(__builtin_offsetof(struct commy__header, heap) == COMMY__HEAP_STATE_OFF, "heap state offset");
_Static_assert(__builtin_offsetof(struct commy__header, quick) == 3792, "quick lists offset");

/* The undo journal's head, at journal_off. Entries follow it. */
struct commy__journal {
    _Atomic uint64_t used;  /* bytes of entries after this head; 0: nothing to undo */
    uint64_t reserved;
};

/* heap.c, for segment.c */
int commy__heap_init(commy_alloc *a) COMMY__HIDDEN;
int commy__heap_check(commy_alloc *a) COMMY__HIDDEN;
void commy__heap_stats(commy_alloc *a, commy_heap_stats *out) COMMY__HIDDEN;
int commy__heap_shrink(commy_alloc *a, uint64_t *new_size) COMMY__HIDDEN;
/* Returns cached small blocks to the coalescing heap as far as the journal
 * allows in one operation; *more says whether some remain. */
int commy__heap_flush(commy_alloc *a, int *more) COMMY__HIDDEN;
/* Really frees a block now (commy__free defers to the commit). */
int commy__free_now(commy_alloc *a, uint64_t off) COMMY__HIDDEN;
/* segment.c, for heap.c: grows the file to at least min_size. */
int commy__grow(commy_alloc *a, uint64_t min_size) COMMY__HIDDEN;

#endif
