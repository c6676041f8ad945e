/* commy-server internals shared by the files of server/. Never installed. */
#ifndef COMMY_SERVER_H
#define COMMY_SERVER_H

#include "commy.h"
#include "wire.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define SRV_NAME_MAX 64
#define SRV_SCOPES_MAX 512

/* ---- configuration (config.c) ---- */

typedef struct srv_key_conf {
    char id[SRV_NAME_MAX];
    char hash[256];
    char scopes[SRV_SCOPES_MAX]; /* space-separated */
    char client_id[SRV_NAME_MAX];
} srv_key_conf;

typedef struct srv_service_conf {
    char name[SRV_NAME_MAX];
    int persistent;
} srv_service_conf;

/* Who checks a tenant's credentials (server/authn.c). */
typedef enum srv_auth_mode { SRV_AUTH_SERVER_MANAGED = 0, SRV_AUTH_TENANT_MANAGED, SRV_AUTH_HYBRID } srv_auth_mode;

/* JWT verification (server/jwt.c). At least one of the two keys is set. */
typedef struct srv_jwt_conf {
    int enabled;
    unsigned char hs256_secret[512];
    size_t hs256_len; /* 0: no HS256 */
    void *rs256_key;  /* EVP_PKEY * (RSA public key), owned; NULL: no RS256 */
    char audience[256];
    char issuer[256]; /* "" when not checked */
    int leeway_s;
} srv_jwt_conf;

/* The tenant's HTTPS auth callback (server/callback.c). */
typedef struct srv_callback_conf {
    char url[1024];
    int timeout_ms;
    char ca_file[PATH_MAX];
    char client_cert[PATH_MAX], client_key[PATH_MAX];
} srv_callback_conf;

typedef struct srv_lockout_conf {
    int max_failures; /* 0: no lockout */
    int lock_s;
    int by_identity, by_address;
} srv_lockout_conf;

typedef struct srv_tenant_conf {
    char name[SRV_NAME_MAX];
    srv_auth_mode mode;
    srv_jwt_conf jwt;
    srv_callback_conf callback;
    srv_lockout_conf lockout;
    int token_lifetime_s;
    srv_key_conf *keys;
    int nkeys;
    srv_service_conf *services;
    int nservices;
} srv_tenant_conf;

/* The "mirror" section (docs/deploying.md): the Redis that links a group of
 * servers. enabled 0 when the section is absent: the server runs alone. */
typedef struct srv_mirror_conf {
    int enabled;
    char host[256];
    int port;
    int tls; /* the "tls" object was given */
    char tls_ca[PATH_MAX], tls_cert[PATH_MAX], tls_key[PATH_MAX];
    char username[128], password[256];
    char server_id[SRV_NAME_MAX]; /* "" = a random one at start */
    int snapshot_every;           /* stream entries between snapshots (the retention bound) */
    int timeout_ms;               /* connect and command timeout */
} srv_mirror_conf;

/* Parses the "mirror" object (NULL: absent, mirror disabled) into *out. */
int srv_mirror_conf_parse(srv_mirror_conf *out, const cJSON *j, char *err, size_t cap);

typedef struct srv_config {
    char address[64];
    int port;
    char cert[PATH_MAX], key[PATH_MAX], client_ca[PATH_MAX];
    char data_root[PATH_MAX];
    int max_connections;
    size_t max_message_bytes;
    int outbound_queue_cap;
    int ping_interval_s;
    int stall_timeout_s;
    int insecure_dev;
    char audit_log[PATH_MAX]; /* "" = data_root/audit.log */
    srv_tenant_conf *tenants;
    int ntenants;
    srv_mirror_conf mirror;
} srv_config;

/* Reads and validates FILE. On failure returns -1 with a message naming the
 * field in err. */
int srv_config_load(srv_config *out, const char *path, char *err, size_t cap);
/* The same from len bytes of JSON text; origin names it in messages. */
int srv_config_parse(srv_config *out, const char *text, size_t len, const char *origin, char *err, size_t cap);
/* The --demo configuration: temp data root, self-signed certificate, one
 * tenant "demo" with a fresh API key written to *api_key_out (cap bytes). */
int srv_config_demo(srv_config *out, char *api_key_out, size_t cap, char *err, size_t errcap);
void srv_config_free(srv_config *c);
/* Field helpers shared by the configuration's sections (config.c,
 * mirror_config.c). Each returns 0, or -1 with a message naming PATH.KEY in
 * err: srv_config_fail formats that message; srv_config_int reads an optional
 * integer within [lo, hi] (absent keeps *dst); srv_config_str an optional or
 * required non-empty string shorter than dcap. */
int srv_config_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int srv_config_int(const cJSON *obj, const char *key, const char *path, int *dst, int lo, int hi, char *err, size_t cap);
int srv_config_str(const cJSON *obj, const char *key, const char *path, char *dst, size_t dcap, int required, char *err,
                   size_t cap);
const srv_tenant_conf *srv_config_tenant(const srv_config *c, const char *name);
/* 1 if s is a tenant, service or client name: 1-63 bytes of [A-Za-z0-9_.-], no leading dot */
int srv_config_name_ok(const char *s);
/* 1 if s is a scope: read, write, admin, service:NAME:read|write */
int srv_config_scope_ok(const char *s);

/* ---- storage interface (store_sqlite.c implements it) ---- */

typedef struct srv_token {
    char tenant[SRV_NAME_MAX];
    char client_id[SRV_NAME_MAX];
    char scopes[SRV_SCOPES_MAX];
    int64_t expires_at;
    int64_t not_after; /* 0, or the end of the grant (a JWT's exp, a callback's lifetime_s): refresh never passes it */
} srv_token;

typedef struct srv_service_row {
    char name[SRV_NAME_MAX];
    char file[128]; /* "" while no file exists */
    int persistent;
} srv_service_row;

/* Where credentials, tokens and the service directory live. Every function
 * returns COMMY_OK or a negative code; another backend implements the same
 * table of functions. */
typedef struct srv_store srv_store;
struct srv_store {
    int (*key_put)(srv_store *s, const char *tenant, const srv_key_conf *k);
    int (*key_get)(srv_store *s, const char *tenant, const char *key_id, srv_key_conf *out);
    int (*token_put)(srv_store *s, const unsigned char hash[32], const srv_token *t);
    /* COMMY_ENOTFOUND if unknown or revoked (expired ones are returned) */
    int (*token_get)(srv_store *s, const unsigned char hash[32], srv_token *out);
    /* revokes old and stores new in one transaction */
    int (*token_rotate)(srv_store *s, const unsigned char old_hash[32], const unsigned char new_hash[32],
                        const srv_token *t);
    int (*token_revoke)(srv_store *s, const unsigned char hash[32]);
    int (*token_revoke_client)(srv_store *s, const char *tenant, const char *client_id);
    int (*service_put)(srv_store *s, const char *tenant, const srv_service_row *row);
    int (*service_get)(srv_store *s, const char *tenant, const char *name, srv_service_row *out);
    int (*service_delete)(srv_store *s, const char *tenant, const char *name);
    /* calls fn for each service of tenant; fn returns nonzero to stop */
    int (*service_list)(srv_store *s, const char *tenant, int (*fn)(const srv_service_row *, void *), void *payload);
    void (*close)(srv_store *s);
    /* Failed-login lockouts, keyed by (tenant, subject); subject is "id:NAME"
     * or "addr:IP" (server/authn.c). now is unix seconds.
     * lockout_fail counts one failure; when the count reaches max_failures it
     * locks the subject until now + lock_s, resets the count, and sets
     * *locked_until to that time (0 when this failure did not lock). */
    int (*lockout_fail)(srv_store *s, const char *tenant, const char *subject, int64_t now, int max_failures,
                        int lock_s, int64_t *locked_until);
    /* *locked_until = the end of a lock still running at now, else 0 */
    int (*lockout_check)(srv_store *s, const char *tenant, const char *subject, int64_t now, int64_t *locked_until);
    /* forgets the subject's failures and lock (a successful login) */
    int (*lockout_clear)(srv_store *s, const char *tenant, const char *subject);
};

int srv_store_sqlite_open(srv_store **out, const char *path, char *err, size_t cap);

/* ---- credentials (auth.c) ---- */

/* "pbkdf2-sha256$ITER$SALTHEX$HASHHEX" for secret. */
int srv_auth_hash_secret(char *out, size_t cap, const char *secret, int iterations);
/* 1 if secret matches the stored hash (constant-time compare), 0 if not. */
int srv_auth_verify_secret(const char *stored, const char *secret);
/* n random bytes as 2n hex characters (+NUL) into out. */
int srv_auth_random_hex(char *out, size_t n);
void srv_auth_sha256(unsigned char out[32], const char *text);
/* A self-signed certificate and key for the demo. */
int srv_auth_make_cert(const char *cert_path, const char *key_path, char *err, size_t cap);

/* ---- authentication decisions (authn.c, jwt.c, callback.c, audit.c) ---- */

/* What a successful check grants. */
typedef struct srv_grant {
    char client_id[SRV_NAME_MAX];
    char scopes[SRV_SCOPES_MAX]; /* space-separated */
    int lifetime_s;              /* the session token's lifetime */
    int bounded;                 /* lifetime_s is the grant's own end (JWT exp, callback lifetime_s) */
} srv_grant;

/* Verifies a compact JWS (HS256 or RS256) of len bytes against jc at time now:
 * signature, exp, nbf, aud, iss. On success fills out (client_id from sub,
 * scopes from "scope" or "scopes"; scopes commy does not know are dropped;
 * lifetime_s = seconds until exp). Returns COMMY_OK, COMMY_WIRE_EEXPIRED for
 * an expired token, or COMMY_WIRE_EAUTH with the reason in why. subject (cap
 * SRV_NAME_MAX, may be NULL) receives the unverified sub when it can be read,
 * for lockout accounting only. Never logs the token. */
int srv_jwt_verify(srv_grant *out, char *subject, const srv_jwt_conf *jc, const char *jwt, size_t len, int64_t now,
                   char *why, size_t cap);
/* Loads an RSA public key (PEM) for RS256; NULL with a reason in why. */
void *srv_jwt_load_rs256(const char *path, char *why, size_t cap);
void srv_jwt_free_key(void *key);

/* Parses a tenant callback's answer (untrusted, len bytes, no NUL needed).
 * Returns 1 allowed (out filled; lifetime_s 0 when the answer set none),
 * 0 denied (why holds the callback's reason, sanitised), -1 garbage (why says
 * what is wrong). */
int srv_callback_parse(srv_grant *out, const char *body, size_t len, char *why, size_t cap);
/* POSTs the credential to cc->url and parses the answer; blocks for at most
 * cc->timeout_ms. verified_client is the client id the server already checked
 * (Hybrid) or NULL. Same returns as srv_callback_parse; a timeout, a transport
 * error or a non-200 status is -1. */
int srv_callback_call(srv_grant *out, const srv_callback_conf *cc, const char *tenant, const char *method,
                      const char *credential, const char *peer_addr, const char *verified_client, char *why,
                      size_t cap);

/* The audit log: JSON lines, one per auth event, never a secret. */
int srv_audit_open(const char *path, char *err, size_t cap);
void srv_audit_close(void);
/* Any string argument may be NULL (left out). */
void srv_audit(const char *event, const char *tenant, const char *client_id, const char *peer, const char *method,
               const char *detail);

/* The outcome of an authenticate with api_key or jwt: code 0 granted (grant
 * filled) or a wire code and a message for the client. */
typedef struct srv_authn_result {
    int code;
    char message[256];
    char method[16];
    srv_grant grant;
} srv_authn_result;

/* One authenticate with api_key or jwt, checked in three phases so that the
 * slow part (PBKDF2, a JWT signature, the tenant's callback) runs off the
 * event loop while the store is only used from the loop thread:
 *   srv_authn_begin   loop thread: copies the credential, looks up the key and
 *                     the lockouts. Returns 1 when the outcome is already known
 *                     (unknown tenant, locked out, out of memory: *out NULL),
 *                     else 0.
 *   srv_authn_work    any thread, no locks: the checks themselves.
 *   srv_authn_finish  loop thread: counts the failure or clears the lockouts,
 *                     writes the log and audit lines, fills result, frees a
 *                     (NULL gives ENOMEM). */
typedef struct srv_authn srv_authn;
int srv_authn_begin(srv_authn **out, srv_store *store, const srv_tenant_conf *t, const char *tenant_name,
                    const char *api_key, const char *jwt, const char *peer);
void srv_authn_work(srv_authn *a);
void srv_authn_finish(srv_authn *a, srv_store *store, srv_authn_result *result);
void srv_authn_free(srv_authn *a);

/* The auth threads: srv_authn_offload queues a for srv_authn_work on one of
 * them, then calls done(a, payload) on that thread. COMMY_EBUSY when the
 * threads are not running (the caller then works inline). srv_authn_stop
 * finishes every queued check, then joins the threads. */
#define SRV_AUTHN_THREADS 4
int srv_authn_start(void);
int srv_authn_offload(srv_authn *a, void (*done)(srv_authn *, void *), void *payload);
void srv_authn_stop(void);

/* ---- logging (main.c) ---- */
/* The current UTC time as "2026-01-02T03:04:05.678Z" into out (40 bytes suffice); returns out. */
const char *srv_log_time(char *out, size_t cap);
void srv_log(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the peer's user (peer.c) ---- */
/* The uid owning the other end of the loopback TCP connection fd (Linux: sock_diag).
 * 0, or -1 with the reason in msg when it cannot be established. */
int srv_peer_uid(unsigned *uid, int fd, char *msg, size_t cap);
/* COMMY_OK when that uid is the server's euid; else COMMY_EPERM and why in msg
 * (another user, or unknown: local mode fails closed). */
int srv_peer_same_user(int fd, char *msg, size_t cap);

#endif
