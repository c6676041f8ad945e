/* Remote services: a commy_alloc with no mapping, whose container calls go
 * to a backend (client/session.c implements it with the wire protocol).
 * Core stays ignorant of servers: it only packs calls (internal.h,
 * COMMY__REMOTE) and hands them over. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int commy__alloc_remote(commy_alloc **out, const struct commy__remote_ops *ops, void *ctx, const char *label)
{
    *out = NULL;
    commy_alloc *a = calloc(1, sizeof *a);
    if (a == NULL) return commy__err(COMMY_ENOMEM, "out of memory for a remote service");
    a->path = strdup(label ? label : "remote");
    if (a->path == NULL) {
        free(a);
        return commy__err(COMMY_ENOMEM, "out of memory for a remote service");
    }
    a->fd = -1;
    a->slot = -1;
    a->remote = ops;
    a->remote_ctx = ctx;
    atomic_init(&a->refs, 1);
    atomic_init(&a->closed, 0);
    atomic_init(&a->owned, 0);
    *out = a;
    return COMMY_OK;
}

int commy__remote_unsupported(commy_alloc *a, const char *fn)
{
    return commy__err(COMMY_ENOTSUP, "%s is not available on a remote service ('%s'): it needs the mapped file; "
                      "open the service in local mode", fn, a->path);
}

int commy__remote_call(struct commy__handle *h, struct commy__rop *op)
{
    commy_alloc *a = h->a;
    if (atomic_load_explicit(&a->closed, memory_order_relaxed))
        return commy__err(COMMY_ECLOSED, "container '%s': service '%s' is closed", h->name, a->path);
    if (op->op == COMMY__ROP_NONE) return commy__remote_unsupported(a, op->fn);
    return a->remote->call(a->remote_ctx, h, op);
}

void commy__alloc_forget_forwarded(commy_alloc *a)
{
    unsigned n = atomic_exchange(&a->forwarded_refs, 0);
    while (n--) commy__alloc_release(a);
}
