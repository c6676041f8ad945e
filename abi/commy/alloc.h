/* The segment: a memory-mapped file holding a crash-safe heap.
 *
 * A segment is opened (or created) by path. Several processes may have it open
 * at once; all of them allocate and free inside it under one process-shared
 * robust lock. If a process dies while holding the lock, the next one to take
 * it rolls back the dead process's half-done change from the segment's
 * journal, so the heap and every container stay consistent.
 *
 * Offsets, not pointers, are what processes share: an offset is the distance
 * from the start of the file and means the same block in every process.
 * Each process maps the segment once at its maximum size, so an address
 * returned by commy_alloc_ptr never moves, not even when the file grows. */
#ifndef COMMY_ALLOC_H
#define COMMY_ALLOC_H

#include "common.h"

typedef struct commy_alloc commy_alloc;

/* Flags for commy_alloc_options.flags. */
#define COMMY_ALLOC_CREATE 0x1u           /* create the file if it does not exist (default) */
#define COMMY_ALLOC_EXCL 0x2u             /* with CREATE: fail with COMMY_EEXISTS if it exists */
#define COMMY_ALLOC_READONLY 0x4u         /* map read-only: no lock, no process slot; every write is COMMY_EPERM */
#define COMMY_ALLOC_HEARTBEAT_THREAD 0x8u /* run a background thread that heartbeats every heartbeat_interval_ms */

#define COMMY_ALLOC_OPTIONS_VERSION 1

typedef struct commy_alloc_options {
    uint32_t version;               /* COMMY_ALLOC_OPTIONS_VERSION; set by commy_alloc_options_init */
    uint32_t flags;                 /* COMMY_ALLOC_*; default COMMY_ALLOC_CREATE */
    uint64_t initial_size;          /* bytes of a new file; default 1 MiB, minimum 64 KiB + journal */
    uint64_t max_size;              /* the file never grows past this; default 1 GiB, at most 512 GiB */
    uint32_t journal_size;          /* bytes of the undo journal in a new file; default 256 KiB */
    uint32_t mode;                  /* permission bits of a new file; default 0600 */
    uint32_t heartbeat_interval_ms; /* the background thread's period; default 1000 */
    uint32_t stale_after_ms;        /* a heartbeating process silent this long is dead; default 5000 */
    uint32_t create_timeout_ms;     /* how long to wait for another process creating the file; default 5000 */
    uint32_t lock_timeout_ms;       /* how long an operation waits for the segment lock; 0 = forever (default) */
    uint64_t reserved[4];           /* zero */
} commy_alloc_options;

/* Statistics of the heap, filled by commy_alloc_stats. */
typedef struct commy_heap_stats {
    uint64_t file_size;     /* current size of the file in bytes */
    uint64_t max_size;      /* the most the file may grow to */
    uint64_t heap_size;     /* bytes managed by the allocator (blocks, headers included) */
    uint64_t used;          /* bytes in live blocks, headers included */
    uint64_t free;          /* bytes in free blocks, headers included */
    uint64_t largest_free;  /* payload bytes of the largest free block */
    uint64_t live_allocs;   /* number of live allocations */
    uint64_t free_blocks;   /* number of free blocks */
    uint64_t recoveries;    /* times a dead lock holder's change was rolled back */
    uint32_t attached;      /* live processes in the process table */
    uint32_t reserved32;
} commy_heap_stats;


/* The segment's header, as commy_alloc_info reports it (docs/format.md). */
typedef struct commy_segment_info {
    uint16_t layout_major;     /* layout version of the file */
    uint16_t layout_minor;
    uint32_t header_size;      /* 4096 */
    uint32_t flags;            /* header flags (none defined in layout 1.0) */
    uint32_t creator_version;  /* commy_version_number() of the library that created the file */
    uint64_t size;             /* current size of the file as published in the header */
    uint64_t max_size;
    uint64_t journal_offset;   /* the undo journal */
    uint64_t journal_size;
    uint64_t journal_used;     /* bytes of journal in use: non-zero only inside a change */
    uint64_t heap_offset;      /* first block of the heap */
    uint64_t root_offset;      /* the root directory, 0 if none yet */
    uint64_t created_ns;       /* creation time, ns since the Unix epoch */
    uint64_t recoveries;       /* times a dead lock holder's change was rolled back */
    uint32_t process_slots;    /* slots in the process table */
    uint32_t readonly;         /* 1 if this handle is read-only */
} commy_segment_info;

/* One slot of the process table, as commy_alloc_process reports it. */
typedef struct commy_process_info {
    uint32_t slot;
    uint32_t state;            /* 0 free, 1 attached */
    uint32_t pid;
    uint32_t alive;            /* 1 if the process exists with the same start time and, if it heartbeats, is not stale */
    uint64_t start_time;       /* the process's start time in clock ticks since boot (/proc/PID/stat) */
    uint64_t heartbeat_age_ms; /* ms since the last heartbeat, UINT64_MAX if it never heartbeat */
} commy_process_info;

COMMY_BEGIN_DECLS

/* Fills opts with the defaults. Never fails. */
COMMY_API void commy_alloc_options_init(commy_alloc_options *opts);

/* Opens the segment at path, creating it if COMMY_ALLOC_CREATE is set and it
 * does not exist. When several processes create the same path at once exactly
 * one initialises it; the others wait (up to create_timeout_ms) and attach.
 * A file left half-initialised by a killed creator is initialised again.
 * Everything in the header is validated before use.
 *
 * out:  receives the handle; release it with commy_alloc_close.
 * path: the file.
 * opts: NULL for defaults (see commy_alloc_options_init).
 *
 * Errors: COMMY_EINVAL (bad options), COMMY_ENOTFOUND (missing, no CREATE),
 * COMMY_EEXISTS (EXCL), COMMY_ECORRUPT (foreign, truncated or damaged file),
 * COMMY_ELAYOUT (another layout major), COMMY_ETIMEDOUT (a creator never
 * finished), COMMY_EBUSY (process table full), COMMY_EPERM, COMMY_EIO.
 * Blocks: up to create_timeout_ms while another process creates the file. */
COMMY_API int commy_alloc_open(commy_alloc **out, const char *path, const commy_alloc_options *opts);

/* Closes the handle: releases this process's slot and stops its heartbeat
 * thread. Container handles opened from it stay safe to call (they fail with
 * COMMY_ECLOSED); the mapping goes when the last of them is closed.
 * Accepts NULL. Never fails. */
COMMY_API void commy_alloc_close(commy_alloc *a);

/* Allocates size bytes aligned to align (a power of two from 8 to 4096; 0
 * means 16) and stores the block's offset in *out. The file grows when the
 * heap is full, up to max_size.
 * Errors: COMMY_EINVAL, COMMY_ENOSPC (max_size reached), COMMY_EPERM
 * (read-only), COMMY_ECLOSED, COMMY_ECORRUPT, COMMY_EIO.
 * Blocks: on the segment lock. */
COMMY_API int commy_alloc_allocate(uint64_t *out, commy_alloc *a, uint64_t size, uint64_t align);

/* Frees the block at offset. An offset that is not a live allocation (double
 * free, an offset inside a block, out of range) is COMMY_EBADFREE and changes
 * nothing. Blocks: on the segment lock. */
COMMY_API int commy_alloc_free(commy_alloc *a, uint64_t offset);

/* The usable size of the live block at offset (at least what was asked).
 * Errors: COMMY_EBADFREE if offset is not a live allocation. */
COMMY_API int commy_alloc_block_size(uint64_t *out, commy_alloc *a, uint64_t offset);

/* The address of offset in this process, or NULL if the offset lies outside
 * the file. Borrowed: valid until the segment is closed (growth never moves
 * the mapping). Reads and writes through it are not locked: use
 * commy_alloc_lock around them if other processes touch the same bytes. */
COMMY_API void *commy_alloc_ptr(commy_alloc *a, uint64_t offset);

/* The offset of an address inside this process's mapping, or 0 if it is not
 * inside it. */
COMMY_API uint64_t commy_alloc_offset(commy_alloc *a, const void *ptr);

/* Fills *out with the heap's statistics. Blocks: on the segment lock. */
COMMY_API int commy_alloc_stats(commy_heap_stats *out, commy_alloc *a);

/* Walks the whole segment (header, every block, free lists, journal, root
 * directory and every container) and checks that it is consistent.
 * Returns COMMY_OK, or COMMY_ECORRUPT with a message naming the first fault.
 * Blocks: on the segment lock; takes time proportional to the heap. */
COMMY_API int commy_alloc_check(commy_alloc *a);

/* Records that this process is alive (its slot's heartbeat). Cheap; never
 * blocks. Processes that heartbeat once are judged by heartbeat age from then on. */
COMMY_API int commy_alloc_heartbeat(commy_alloc *a);

/* Gives free space at the end of the heap back to the file system. Other
 * processes see the smaller size on their next operation.
 * Blocks: on the segment lock. */
COMMY_API int commy_alloc_shrink_to_fit(commy_alloc *a);

/* Takes the segment lock for a batch: every commy call made by this thread
 * on this segment until commy_alloc_unlock is one atomic change for other
 * processes and for crash recovery. Nests. timeout_ms 0 waits forever.
 * Errors: COMMY_ETIMEDOUT, COMMY_EPERM (read-only), COMMY_ECLOSED.
 * If a batch outgrows the journal, its operation fails with COMMY_EJOURNAL,
 * the whole batch is rolled back and later calls in it fail until unlock. */
COMMY_API int commy_alloc_lock(commy_alloc *a, uint32_t timeout_ms);

/* Ends a batch begun by commy_alloc_lock and commits it.
 * Errors: COMMY_EINVAL if this thread does not hold the lock; COMMY_EJOURNAL
 * if the batch was rolled back. */
COMMY_API int commy_alloc_unlock(commy_alloc *a);

/* Reclaims slots of processes that are gone and returns how many remain live
 * in *out (may be NULL). Runs implicitly at open. */
COMMY_API int commy_alloc_reap(uint32_t *out, commy_alloc *a);

/* The path the segment was opened with. Borrowed; valid until the handle
 * goes. NULL for NULL. */
COMMY_API const char *commy_alloc_path(const commy_alloc *a);

/* Describes the segment's header. Never blocks. */
COMMY_API int commy_alloc_info(commy_segment_info *out, commy_alloc *a);

/* Describes process-table slot number slot (0 <= slot < process_slots).
 * Errors: COMMY_ERANGE. Never blocks. */
COMMY_API int commy_alloc_process(commy_process_info *out, commy_alloc *a, uint32_t slot);

COMMY_END_DECLS

#endif
