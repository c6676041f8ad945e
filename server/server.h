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

typedef struct srv_tenant_conf {
    char name[SRV_NAME_MAX];
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
const srv_tenant_conf *srv_config_tenant(const srv_config *c, const char *name);

/* ---- storage interface (store_sqlite.c implements it) ---- */

typedef struct srv_token {
    char tenant[SRV_NAME_MAX];
    char client_id[SRV_NAME_MAX];
    char scopes[SRV_SCOPES_MAX];
    int64_t expires_at;
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

/* ---- logging (main.c) ---- */
void srv_log(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
