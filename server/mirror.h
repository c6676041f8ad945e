/* Mirroring tenants across a group of commy-servers through Redis streams
 * (mirror.c; the rules are in docs/deploying.md). */
#ifndef COMMY_SERVER_MIRROR_H
#define COMMY_SERVER_MIRROR_H

#include "server.h"

/* ---- called by main.c ---- */

/* Starts the mirror's two threads (they connect in the background). */
int srv_mirror_start(const srv_mirror_conf *mc, char *err, size_t cap);
void srv_mirror_stop(void);
/* 1 when a mirror section is configured. */
int srv_mirror_active(void);
/* 1 while Redis answers. */
int srv_mirror_connected(void);

/* With S.lock held. A write request (frame: its JSON text, as the wire codec
 * parsed it) goes to Redis instead of being applied here: returns 0 and a
 * ticket that srv_ticket_done completes once the write came back in stream
 * order and was applied. Returns 1 when Redis is away: apply it locally (the
 * variable is then published as a state when Redis returns). */
int srv_mirror_submit(uint64_t *ticket, const char *tenant, const char *service, const char *frame, size_t len);
/* With S.lock held, when a connection opens a service. Returns 1 with a
 * ticket when the open must wait for the service's state to be loaded from
 * Redis (srv_ticket_done completes it with result NULL), 0 to answer now. */
int srv_mirror_open(uint64_t *ticket, const char *tenant, const char *service, int persistent);
/* With S.lock held, before the service's file is closed (last client gone):
 * publishes its unpublished changes and a snapshot. */
void srv_mirror_close(const char *tenant, const char *service);
/* With S.lock held, after delete_service: the service's stream, snapshot and
 * progress are deleted from Redis (queued; sent when Redis answers). */
void srv_mirror_forget(const char *tenant, const char *service);
/* Appends the mirror's Prometheus lines; returns the bytes written. */
size_t srv_mirror_metrics(char *buf, size_t cap);

/* ---- provided by main.c for the mirror's threads ---- */
void srv_lock(void);
void srv_unlock(void);
/* With S.lock held: the open service's segment, or NULL. */
commy_alloc *srv_service_alloc(const char *tenant, const char *service);
/* With S.lock held: a variable changed; push it to its subscribers. */
void srv_var_changed(const char *tenant, const char *service, const char *var);
/* With S.lock held: the deferred request ticket is done. code 0: reply with
 * result (consumed; NULL = the reply prepared when it was deferred). */
void srv_ticket_done(uint64_t ticket, int code, const char *msg, cJSON *result);

/* ---- the store over Redis (store_redis.c) ---- */
/* Wraps inner (which keeps keys and services): tokens live in Redis, shared
 * by the group, with inner as the fallback while Redis is away. */
int srv_store_redis_open(srv_store **out, srv_store *inner, const srv_mirror_conf *mc, char *err, size_t cap);

#endif
