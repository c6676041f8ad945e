/* Remote operations on a service's variables, applied with the core C API. */
#ifndef COMMY_SERVER_OPS_H
#define COMMY_SERVER_OPS_H

#include "server.h"

/* An open variable of any kind. */
typedef struct srv_var {
    uint32_t kind;
    void *h;
    commy_type kt, vt;
} srv_var;

/* Opens the existing variable name (COMMY_ENOTFOUND if there is none). */
int srv_var_open(srv_var *out, commy_alloc *a, const char *name);
void srv_var_close(srv_var *v);
int srv_var_version(uint32_t *out, srv_var *v);
int srv_var_wait(srv_var *v, uint32_t seen, int32_t timeout_ms);
/* The push body for a change: "value" for box/str, "len" otherwise. */
int srv_var_snapshot(cJSON *fields, srv_var *v);

/* Opens name with this kind and types, creating it if it is missing (the
 * mirror applies whole states with it). */
int srv_var_open_kind(srv_var *out, commy_alloc *a, const char *name, uint32_t kind, commy_type kt, commy_type vt);
/* The variable's whole state as JSON, {"kind", "kt", ["vt"], "s"}, with typed
 * values as the wire codec writes them (state.c). Hold the segment lock
 * (commy_alloc_lock) around it for one consistent state. */
int srv_state_capture(cJSON **out, srv_var *v);
/* Makes variable name of a hold exactly the state st (from srv_state_capture),
 * creating it if needed. *changed is 1 if anything was written. */
int srv_state_apply(int *changed, commy_alloc *a, const char *name, const cJSON *st, char *msg, size_t cap);

/* Applies a variable request (get ... range) to a. *result receives the
 * reply's result object (NULL for {}). On failure returns the code with a
 * sentence in msg. */
int srv_ops_apply(cJSON **result, commy_alloc *a, const commy_wire_request *r, char *msg, size_t cap);
/* The open variables of one service's file, kept between requests (NULL =
 * none yet). srv_ops_apply_cached is srv_ops_apply that opens a variable
 * once instead of on every request. Flush before the file is closed or
 * replaced; one thread at a time (the server's S.lock). */
typedef struct srv_var_cache srv_var_cache;
/* Room for a result printed as JSON text. srv_ops_apply_cached puts a result
 * of one typed value (get, pop) here as {"value":...} (len > 0, NUL-terminated)
 * rather than in a cJSON tree, when it fits. */
typedef struct srv_text {
    char *p;
    size_t cap, len;
} srv_text;
/* text may be NULL. On success the result is text (text->len > 0), else
 * *result, where NULL stands for {}. */
int srv_ops_apply_cached(cJSON **result, srv_text *text, srv_var_cache **cache, commy_alloc *a,
                         const commy_wire_request *r, char *msg, size_t cap);
void srv_var_cache_flush(srv_var_cache **cache);
/* 1 if the op writes. */
int srv_ops_writes(commy_wire_op op);
/* 1 if the request needs the write permission on a (declare: when it creates). */
int srv_ops_request_writes(commy_alloc *a, const commy_wire_request *r);
/* Copies every root of src into dst (empty), root by root, with the C API. */
int srv_ops_copy(commy_alloc *dst, commy_alloc *src, char *msg, size_t cap);

#endif
