/* Error codes and the per-thread error record.
 *
 * Every function that can fail returns int: COMMY_OK (0) or a negative
 * COMMY_E* code. The codes are pinned forever: new ones are only appended.
 * After a failure, commy_error_last() describes it in a sentence. */
#ifndef COMMY_ERRORS_H
#define COMMY_ERRORS_H

#include "common.h"

#define COMMY_OK 0
#define COMMY_EINVAL -1       /* a bad argument: NULL handle, bad name, wrong value length, bad options */
#define COMMY_ENOMEM -2       /* this process is out of memory */
#define COMMY_EIO -3          /* a system call on the file failed (message carries errno's text) */
#define COMMY_ENOTFOUND -4    /* no such file, root, key or element */
#define COMMY_EEXISTS -5      /* already exists (exclusive create) */
#define COMMY_ETYPE -6        /* a container or value of another kind or type than asked for */
#define COMMY_ELAYOUT -7      /* the file was written by a layout major this library does not read */
#define COMMY_ECORRUPT -8     /* the file is not a commy segment, is truncated or is damaged */
#define COMMY_ENOSPC -9       /* the segment reached its maximum size */
#define COMMY_ETIMEDOUT -10   /* a wait ran out of time */
#define COMMY_EBUSY -11       /* a resource is taken: process table full, lock held too long */
#define COMMY_EPERM -12       /* not allowed: a write through a read-only segment, file permissions */
#define COMMY_ECLOSED -13     /* the handle or its segment was closed */
#define COMMY_ERANGE -14      /* an index out of range, or a number that does not fit the declared type */
#define COMMY_EEMPTY -15      /* pop, front or back of an empty container */
#define COMMY_ETOOSMALL -16   /* the output buffer is too small; the needed length was stored */
#define COMMY_ECONCURRENT -17 /* the container changed while a cursor was iterating it */
#define COMMY_EUTF8 -18       /* a string that is not valid UTF-8 */
#define COMMY_EBADFREE -19    /* free of an offset that is not a live allocation (double free, wild offset) */
#define COMMY_ENOTSUP -20     /* an operation the container's type does not support */
#define COMMY_EJOURNAL -21    /* a batch grew beyond the journal: it was rolled back */
/* commy-server and commy_session (docs/protocol.md) */
#define COMMY_EPROTO -22        /* a frame that breaks the protocol (bad JSON, wrong version, binary frame) */
#define COMMY_EUNKNOWNOP -23    /* a request naming no operation the server knows */
#define COMMY_ETOOBIG -24       /* a frame larger than the server's message limit */
#define COMMY_EAUTH -25         /* authentication failed, or a request before authenticating */
#define COMMY_EEXPIRED -26      /* the session token expired: authenticate again */
#define COMMY_EFORBIDDEN -27    /* the token's permissions do not allow the operation */
#define COMMY_EDISCONNECTED -28 /* the session has no connection to the server (it may be reconnecting) */
#define COMMY_ELOCKED -29       /* too many failed logins: the credentials are locked out for a while */
#define COMMY_ERETIRED -30      /* a write to a segment retired by its server (the service moved to a new file) */

/* The last failure on the calling thread. */
typedef struct commy_error {
    int code;            /* the COMMY_E* code */
    const char *message; /* a sentence a user can act on; valid until the next commy call on this thread */
} commy_error;

COMMY_BEGIN_DECLS

/* The record of the last failure on this thread. Never NULL: after a success
 * it may still describe an earlier failure, so read it only after a negative
 * return. Borrowed: owned by the thread; do not free. Never blocks. */
COMMY_API const commy_error *commy_error_last(void);

/* Forgets the last failure on this thread (code becomes COMMY_OK). */
COMMY_API void commy_error_clear(void);

/* Static text for a code, e.g. "no space left in segment". Unknown codes give
 * "unknown error". Never NULL; never blocks. */
COMMY_API const char *commy_strerror(int code);

COMMY_END_DECLS

#endif
