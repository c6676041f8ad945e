/* The per-thread error record and the static texts of the codes. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char message[1024];
static _Thread_local commy_error last = {COMMY_OK, ""};

int commy__err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    last.code = code;
    last.message = message;
    return code;
}

const commy_error *commy_error_last(void)
{
    if (last.message == NULL) last.message = "";
    return &last;
}

void commy_error_clear(void)
{
    last.code = COMMY_OK;
    message[0] = '\0';
    last.message = message;
}

const char *commy_strerror(int code)
{
    switch (code) {
    case COMMY_OK: return "success";
    case COMMY_EINVAL: return "invalid argument";
    case COMMY_ENOMEM: return "out of memory";
    case COMMY_EIO: return "input/output error";
    case COMMY_ENOTFOUND: return "not found";
    case COMMY_EEXISTS: return "already exists";
    case COMMY_ETYPE: return "type mismatch";
    case COMMY_ELAYOUT: return "unsupported segment layout version";
    case COMMY_ECORRUPT: return "segment is corrupted or not a commy segment";
    case COMMY_ENOSPC: return "no space left in segment";
    case COMMY_ETIMEDOUT: return "timed out";
    case COMMY_EBUSY: return "resource busy";
    case COMMY_EPERM: return "permission denied";
    case COMMY_ECLOSED: return "handle or segment is closed";
    case COMMY_ERANGE: return "out of range";
    case COMMY_EEMPTY: return "container is empty";
    case COMMY_ETOOSMALL: return "buffer too small";
    case COMMY_ECONCURRENT: return "container changed during iteration";
    case COMMY_EUTF8: return "invalid UTF-8";
    case COMMY_EBADFREE: return "not a live allocation";
    case COMMY_ENOTSUP: return "operation not supported for this type";
    case COMMY_EJOURNAL: return "batch too large for the journal; rolled back";
    case COMMY_EPROTO: return "protocol error";
    case COMMY_EUNKNOWNOP: return "unknown operation";
    case COMMY_ETOOBIG: return "message too big";
    case COMMY_EAUTH: return "authentication failed";
    case COMMY_EEXPIRED: return "session token expired";
    case COMMY_EFORBIDDEN: return "operation not permitted by the token's scopes";
    case COMMY_EDISCONNECTED: return "not connected to the server";
    case COMMY_ELOCKED: return "locked out after too many failed logins";
    case COMMY_ERETIRED: return "the segment was retired: its service moved to a new file";
    default: return "unknown error";
    }
}
