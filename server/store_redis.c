/* The store over Redis for a mirrored group: session tokens and login
 * lockouts live in Redis, so every server of the group honours them; API keys
 * and the service directory stay in the inner (SQLite) store, which each
 * server fills from its own configuration.
 *
 * Keys (docs/deploying.md):
 *   commy:token:HEX                    hash tenant, client, scopes, exp, revoked
 *   commy:client-tokens:TENANT:CLIENT  set of HEX (for revoke_client)
 *   commy:lockout:TENANT:SUBJECT       hash failures, locked_until
 *
 * Every call is written through to the inner store too. While Redis does
 * not answer (or when the mirror says it is away) the inner store answers
 * alone: tokens issued meanwhile reach Redis the next time they are read
 * where Redis answers; a revocation made elsewhere during the outage is
 * seen here when Redis returns. Calls run on the lws thread, so the
 * connection has a short timeout. */
#include "mirror.h"
#include "redis.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_TIMEOUT_MS 300

typedef struct redis_store {
    srv_store ops;
    srv_store *inner;
    srv_mirror_conf conf;
    srv_redis *r;
    pthread_mutex_t lock;
} redis_store;

static redis_store *rs_of(srv_store *s) { return (redis_store *)s; }

static void hex(char out[65], const unsigned char h[32])
{
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Runs one command; NULL when Redis is away (the caller falls back). */
static redisReply *run(redis_store *s, int argc, const char **argv)
{
    if (!srv_mirror_connected()) return NULL;
    pthread_mutex_lock(&s->lock);
    char err[256];
    if (!s->r && srv_redis_open(&s->r, &s->conf, err, sizeof err)) {
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    redisReply *rep = srv_redis_argv(s->r, argc, argv, NULL, 0);
    if (!rep) {
        srv_redis_close(s->r);
        s->r = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        srv_log("error", "store", "Redis: %s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static const char PUT_LUA[] =
    "redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'client', ARGV[2], 'scopes', ARGV[3], 'exp', ARGV[4],"
    " 'revoked', '0', 'nafter', ARGV[6])\n"
    "redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[4]) + 86400)\n"
    "redis.call('SADD', KEYS[2], ARGV[5])\n"
    "redis.call('EXPIRE', KEYS[2], 40 * 86400)\n"
    "return 1\n";

static int put_redis(redis_store *s, const unsigned char hash[32], const srv_token *t)
{
    char h[65], tk[100], ck[200], exp[24], nafter[24];
    hex(h, hash);
    snprintf(tk, sizeof tk, "commy:token:%s", h);
    snprintf(ck, sizeof ck, "commy:client-tokens:%s:%s", t->tenant, t->client_id);
    snprintf(exp, sizeof exp, "%" PRId64, t->expires_at);
    snprintf(nafter, sizeof nafter, "%" PRId64, t->not_after);
    const char *argv[] = {"EVAL", PUT_LUA, "2", tk, ck, t->tenant, t->client_id, t->scopes, exp, h, nafter};
    redisReply *rep = run(s, 11, argv);
    if (!rep) return COMMY_EIO;
    freeReplyObject(rep);
    return COMMY_OK;
}

static int token_put(srv_store *st, const unsigned char hash[32], const srv_token *t)
{
    redis_store *s = rs_of(st);
    int rc = s->inner->token_put(s->inner, hash, t);
    put_redis(s, hash, t);
    return rc;
}

static int token_get(srv_store *st, const unsigned char hash[32], srv_token *out)
{
    redis_store *s = rs_of(st);
    char h[65], tk[100];
    hex(h, hash);
    snprintf(tk, sizeof tk, "commy:token:%s", h);
    const char *argv[] = {"HMGET", tk, "tenant", "client", "scopes", "exp", "revoked", "nafter"};
    redisReply *rep = run(s, 8, argv);
    if (!rep) return s->inner->token_get(s->inner, hash, out);
    int rc;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 6 && rep->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *const *e = (const redisReply *const *)rep->element;
        int ok = e[1]->type == REDIS_REPLY_STRING && e[2]->type == REDIS_REPLY_STRING &&
                 e[3]->type == REDIS_REPLY_STRING && e[4]->type == REDIS_REPLY_STRING;
        if (!ok || strcmp(e[4]->str, "0") != 0) rc = COMMY_ENOTFOUND; /* revoked somewhere in the group */
        else {
            memset(out, 0, sizeof *out);
            snprintf(out->tenant, sizeof out->tenant, "%s", e[0]->str);
            snprintf(out->client_id, sizeof out->client_id, "%s", e[1]->str);
            snprintf(out->scopes, sizeof out->scopes, "%s", e[2]->str);
            out->expires_at = strtoll(e[3]->str, NULL, 10);
            if (e[5]->type == REDIS_REPLY_STRING) out->not_after = strtoll(e[5]->str, NULL, 10);
            rc = COMMY_OK;
        }
    } else {
        /* not in Redis: one issued here while Redis was away? publish it */
        rc = s->inner->token_get(s->inner, hash, out);
        if (rc == COMMY_OK) put_redis(s, hash, out);
    }
    freeReplyObject(rep);
    return rc;
}

static const char REVOKE_LUA[] =
    "redis.call('HSET', KEYS[1], 'revoked', '1')\n"
    "if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 40 * 86400) end\n"
    "return 1\n";

static int revoke_redis(redis_store *s, const unsigned char hash[32])
{
    char h[65], tk[100];
    hex(h, hash);
    snprintf(tk, sizeof tk, "commy:token:%s", h);
    const char *argv[] = {"EVAL", REVOKE_LUA, "1", tk};
    redisReply *rep = run(s, 4, argv);
    if (!rep) return COMMY_EIO;
    freeReplyObject(rep);
    return COMMY_OK;
}

static int token_revoke(srv_store *st, const unsigned char hash[32])
{
    redis_store *s = rs_of(st);
    int rc = s->inner->token_revoke(s->inner, hash);
    revoke_redis(s, hash);
    return rc;
}

/* 1 rotated, 0 the old one is revoked, -1 Redis does not know it */
static const char ROTATE_LUA[] =
    "local r = redis.call('HGET', KEYS[1], 'revoked')\n"
    "if not r then return -1 end\n"
    "if r ~= '0' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'revoked', '1')\n"
    "redis.call('HSET', KEYS[2], 'tenant', ARGV[1], 'client', ARGV[2], 'scopes', ARGV[3], 'exp', ARGV[4],"
    " 'revoked', '0', 'nafter', ARGV[6])\n"
    "redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[4]) + 86400)\n"
    "redis.call('SADD', KEYS[3], ARGV[5])\n"
    "redis.call('EXPIRE', KEYS[3], 40 * 86400)\n"
    "return 1\n";

static int token_rotate(srv_store *st, const unsigned char old_hash[32], const unsigned char new_hash[32],
                        const srv_token *t)
{
    redis_store *s = rs_of(st);
    char oh[65], nh[65], ok[100], nk[100], ck[200], exp[24], nafter[24];
    hex(oh, old_hash);
    hex(nh, new_hash);
    snprintf(ok, sizeof ok, "commy:token:%s", oh);
    snprintf(nk, sizeof nk, "commy:token:%s", nh);
    snprintf(ck, sizeof ck, "commy:client-tokens:%s:%s", t->tenant, t->client_id);
    snprintf(exp, sizeof exp, "%" PRId64, t->expires_at);
    snprintf(nafter, sizeof nafter, "%" PRId64, t->not_after);
    const char *argv[] = {"EVAL", ROTATE_LUA, "3", ok, nk, ck, t->tenant, t->client_id, t->scopes, exp, nh, nafter};
    redisReply *rep = run(s, 12, argv);
    long long verdict = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep) freeReplyObject(rep);
    if (verdict == 0) return COMMY_ENOTFOUND; /* refreshed or revoked elsewhere */
    int rc = s->inner->token_rotate(s->inner, old_hash, new_hash, t);
    if (verdict < 0 && rc == COMMY_OK) {
        /* a token Redis never saw (issued during an outage): publish the pair */
        revoke_redis(s, old_hash);
        put_redis(s, new_hash, t);
    }
    if (verdict == 1 && rc == COMMY_ENOTFOUND) rc = s->inner->token_put(s->inner, new_hash, t);
    return rc;
}

static const char REVOKE_CLIENT_LUA[] =
    "for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local k = 'commy:token:' .. h\n"
    "  if redis.call('EXISTS', k) == 1 then redis.call('HSET', k, 'revoked', '1') end\n"
    "end\n"
    "return 1\n";

static int token_revoke_client(srv_store *st, const char *tenant, const char *client_id)
{
    redis_store *s = rs_of(st);
    int rc = s->inner->token_revoke_client(s->inner, tenant, client_id);
    char ck[200];
    snprintf(ck, sizeof ck, "commy:client-tokens:%s:%s", tenant, client_id);
    const char *argv[] = {"EVAL", REVOKE_CLIENT_LUA, "1", ck};
    redisReply *rep = run(s, 4, argv);
    if (rep) freeReplyObject(rep);
    return rc;
}

/* ---- lockouts ---- */

static const char FAIL_LUA[] =
    "local now = tonumber(ARGV[1])\n"
    "local untl = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')\n"
    "if untl > now then return 0 end\n"
    "local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)\n"
    "if f >= tonumber(ARGV[2]) then\n"
    "  local u = now + tonumber(ARGV[3])\n"
    "  redis.call('HSET', KEYS[1], 'failures', 0, 'locked_until', u)\n"
    "  redis.call('EXPIREAT', KEYS[1], u + 86400)\n"
    "  return u\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'locked_until', 0)\n"
    "redis.call('EXPIRE', KEYS[1], 86400)\n"
    "return 0\n";

static int lockout_fail(srv_store *st, const char *tenant, const char *subject, int64_t now, int max_failures,
                        int lock_s, int64_t *locked_until)
{
    redis_store *s = rs_of(st);
    int64_t local_until = 0;
    int rc = s->inner->lockout_fail(s->inner, tenant, subject, now, max_failures, lock_s, &local_until);
    char key[300], ns[24], mf[16], ls[16];
    snprintf(key, sizeof key, "commy:lockout:%s:%s", tenant, subject);
    snprintf(ns, sizeof ns, "%" PRId64, now);
    snprintf(mf, sizeof mf, "%d", max_failures);
    snprintf(ls, sizeof ls, "%d", lock_s);
    const char *argv[] = {"EVAL", FAIL_LUA, "1", key, ns, mf, ls};
    redisReply *rep = run(s, 7, argv);
    if (!rep) {
        *locked_until = local_until;
        return rc;
    }
    *locked_until = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    return COMMY_OK;
}

static int lockout_check(srv_store *st, const char *tenant, const char *subject, int64_t now, int64_t *locked_until)
{
    redis_store *s = rs_of(st);
    char key[300];
    snprintf(key, sizeof key, "commy:lockout:%s:%s", tenant, subject);
    const char *argv[] = {"HGET", key, "locked_until"};
    redisReply *rep = run(s, 3, argv);
    if (!rep) return s->inner->lockout_check(s->inner, tenant, subject, now, locked_until);
    int64_t until = rep->type == REDIS_REPLY_STRING ? strtoll(rep->str, NULL, 10) : 0;
    freeReplyObject(rep);
    *locked_until = until > now ? until : 0;
    return COMMY_OK;
}

static int lockout_clear(srv_store *st, const char *tenant, const char *subject)
{
    redis_store *s = rs_of(st);
    int rc = s->inner->lockout_clear(s->inner, tenant, subject);
    char key[300];
    snprintf(key, sizeof key, "commy:lockout:%s:%s", tenant, subject);
    const char *argv[] = {"DEL", key};
    redisReply *rep = run(s, 2, argv);
    if (rep) freeReplyObject(rep);
    return rc;
}

/* ---- what stays in the inner store ---- */

static int key_put(srv_store *s, const char *tenant, const srv_key_conf *k)
{
    return rs_of(s)->inner->key_put(rs_of(s)->inner, tenant, k);
}
static int key_get(srv_store *s, const char *tenant, const char *key_id, srv_key_conf *out)
{
    return rs_of(s)->inner->key_get(rs_of(s)->inner, tenant, key_id, out);
}
static int service_put(srv_store *s, const char *tenant, const srv_service_row *row)
{
    return rs_of(s)->inner->service_put(rs_of(s)->inner, tenant, row);
}
static int service_get(srv_store *s, const char *tenant, const char *name, srv_service_row *out)
{
    return rs_of(s)->inner->service_get(rs_of(s)->inner, tenant, name, out);
}
static int service_delete(srv_store *s, const char *tenant, const char *name)
{
    return rs_of(s)->inner->service_delete(rs_of(s)->inner, tenant, name);
}
static int service_list(srv_store *s, const char *tenant, int (*fn)(const srv_service_row *, void *), void *payload)
{
    return rs_of(s)->inner->service_list(rs_of(s)->inner, tenant, fn, payload);
}

static void store_close(srv_store *st)
{
    if (!st) return;
    redis_store *s = rs_of(st);
    s->inner->close(s->inner);
    srv_redis_close(s->r);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int srv_store_redis_open(srv_store **out, srv_store *inner, const srv_mirror_conf *mc, char *err, size_t cap)
{
    redis_store *s = calloc(1, sizeof *s);
    if (!s) return snprintf(err, cap, "out of memory"), COMMY_ENOMEM;
    s->inner = inner;
    s->conf = *mc;
    if (s->conf.timeout_ms > STORE_TIMEOUT_MS) s->conf.timeout_ms = STORE_TIMEOUT_MS;
    pthread_mutex_init(&s->lock, NULL);
    s->ops = (srv_store){
        .key_put = key_put,
        .key_get = key_get,
        .token_put = token_put,
        .token_get = token_get,
        .token_rotate = token_rotate,
        .token_revoke = token_revoke,
        .token_revoke_client = token_revoke_client,
        .service_put = service_put,
        .service_get = service_get,
        .service_delete = service_delete,
        .service_list = service_list,
        .close = store_close,
        .lockout_fail = lockout_fail,
        .lockout_check = lockout_check,
        .lockout_clear = lockout_clear,
    };
    *out = &s->ops;
    return COMMY_OK;
}
