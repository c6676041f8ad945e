/* A blocking Redis connection for the mirror's own threads (never the lws
 * loop): hiredis formats commands and parses replies; the bytes travel over
 * a plain socket or OpenSSL, so TLS works with Debian's hiredis 0.14, which
 * has no TLS of its own. */
#ifndef COMMY_SERVER_REDIS_H
#define COMMY_SERVER_REDIS_H

#include "server.h"

#include <hiredis/hiredis.h>

typedef struct srv_redis srv_redis;

/* Connects (timeout from mc), does TLS and AUTH as configured. */
int srv_redis_open(srv_redis **out, const srv_mirror_conf *mc, char *err, size_t cap);
void srv_redis_close(srv_redis *r);
/* Sends one command and reads its reply. NULL on an I/O error or timeout
 * (the connection is then unusable: close it). extra_ms lengthens this
 * command's read timeout (XREAD BLOCK). Free the reply with freeReplyObject. */
redisReply *srv_redis_argv(srv_redis *r, int argc, const char **argv, const size_t *lens, int extra_ms);
/* Pipelining: append commands, flush them in one write, then read one reply
 * per command in order (NULL on an I/O error, as above). */
int srv_redis_append(srv_redis *r, int argc, const char **argv, const size_t *lens);
int srv_redis_flush(srv_redis *r);
redisReply *srv_redis_read(srv_redis *r);
/* printf-like, with hiredis's %s and %b. */
redisReply *srv_redis_cmd(srv_redis *r, const char *fmt, ...);

#endif
