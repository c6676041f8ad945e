/* commy_session: reach a service of commy-server (docs/protocol.md) from C.
 *
 * A session is one secure WebSocket connection to a server. After
 * commy_session_authenticate, commy_session_open_service opens one of the
 * tenant's services in one of two modes:
 *
 *   local   the server hands over the service file's path and the session
 *           maps it with the core (commy_alloc_open): every container call
 *           runs at shared-memory speed. Only for a client on the same
 *           machine with read and write permission on the service.
 *   remote  every container call becomes a request to the server and waits
 *           for its reply.
 *   auto    local when the server allows it, remote otherwise.
 *
 * Either way commy_service_alloc gives a commy_alloc on which the ordinary
 * calls work (commy_box_open, commy_map_put, commy_vec_push, ...), so code
 * written against the core runs unchanged on a remote service. The few calls
 * that hand out pointers into the mapping (commy_vec_data, commy_str_borrow,
 * commy_alloc_ptr, commy_alloc_lock, ...) fail with COMMY_ENOTSUP on a
 * remote service.
 *
 * Changes reach a client in two ways: commy_service_subscribe calls a
 * function for every change of a variable, and commy_<kind>_wait on a
 * remote container sleeps until the server reports a change (it subscribes
 * on first use).
 *
 * When the server announces that the token is about to expire, the session
 * refreshes it by itself (the old token is revoked; commy_session_token
 * gives the new one).
 *
 * When the connection drops, the session reconnects in the background with
 * exponential backoff (capped by opts.reconnect_max_ms), authenticates again
 * with its token, opens its services again and renews every subscription.
 * Calls made while it is disconnected fail at once with
 * COMMY_EDISCONNECTED; callers retry when they wish.
 *
 * Threads: a session runs one network thread. Every function may be called
 * from any thread; remote calls from several threads are in flight at once.
 * Subscription callbacks run on the network thread: they must return quickly
 * and must not make remote calls that need a reply (those fail with
 * COMMY_EBUSY there). commy_service_unsubscribe, commy_service_close and
 * commy_session_close may be called from a callback: they send their
 * request without waiting, and the session is freed when its network thread
 * leaves.
 *
 * Includes only C standard headers (through common.h). */
#ifndef COMMY_SESSION_H
#define COMMY_SESSION_H

#include "alloc.h"
#include "common.h"
#include "types.h"

typedef struct commy_session commy_session;
typedef struct commy_service commy_service;

/* Modes of commy_session_open_service. */
#define COMMY_SERVICE_LOCAL 1
#define COMMY_SERVICE_REMOTE 2
#define COMMY_SERVICE_AUTO 3

/* Options of commy_session_connect. Set struct_size to sizeof(commy_session_options)
 * (commy_session_options_init does it) so later versions can add fields. */
typedef struct commy_session_options {
    uint32_t struct_size;
    uint32_t timeout_ms;        /* how long a request waits for its reply, and connect for the handshake; default 10000 */
    const char *ca_file;        /* PEM file of the CA that signed the server's certificate; NULL: the system's store */
    const char *cert_file;      /* PEM client certificate for mutual TLS; NULL: none */
    const char *key_file;       /* its private key */
    uint32_t insecure_skip_verify; /* 1: accept any server certificate (tests only; logs nothing) */
    uint32_t reconnect_max_ms;  /* the backoff between reconnect attempts doubles from 100 ms up to this; default 5000; */
    uint32_t reconnect;         /* 1 (default): reconnect after a drop; 0: stay disconnected */
    uint32_t silence_timeout_s; /* a server that sends nothing, not even the answer to a ping, for this many
                                   seconds is taken for dead: the connection is dropped and the reconnect
                                   logic runs. The session pings after half of it. 1 to 65535; 0: default 30 */
    uint64_t reserved[4];       /* zero */
} commy_session_options;

/* One change of a subscribed variable, as commy_service_subscribe reports it.
 * Every pointer is borrowed for the duration of the callback. */
typedef struct commy_change {
    const char *service;   /* the service's name */
    const char *var;       /* the variable (root) name */
    uint32_t version;      /* the container's change counter after the change */
    uint32_t kind;         /* COMMY_KIND_* if known, else 0 */
    commy_type type;       /* type of value for box and str, else COMMY_T_ANY */
    const void *value;     /* box and str: the new value (native bytes as commy_box_get gives them); else NULL */
    size_t value_len;
    uint64_t len;          /* the collections: their length after the change; box 1, str its byte length */
} commy_change;

/* Called for each change, on the session's network thread (see above). */
typedef void (*commy_change_fn)(const commy_change *change, void *payload);

COMMY_BEGIN_DECLS

/* Fills opts with the defaults. Never fails. */
COMMY_API void commy_session_options_init(commy_session_options *opts);

/* Connects to a commy-server and completes the WebSocket handshake.
 *
 * out:  receives the session; release it with commy_session_close.
 * url:  "wss://HOST:PORT" (or "ws://HOST:PORT" for a server run with
 *       --insecure-dev). A path after the port is ignored.
 * opts: NULL for defaults.
 *
 * Errors: COMMY_EINVAL (bad URL or options), COMMY_EDISCONNECTED (the server
 * cannot be reached, or TLS failed: the message says which),
 * COMMY_ETIMEDOUT, COMMY_ENOMEM.
 * Blocks: until connected, up to opts.timeout_ms. */
COMMY_API int commy_session_connect(commy_session **out, const char *url, const commy_session_options *opts);

/* Authenticates with an API key ("KEYID.SECRET") for tenant. On success the
 * session holds a token (commy_session_token) that it uses to reconnect.
 * Errors: COMMY_EAUTH (unknown tenant or key, wrong secret: one answer for
 * all three), COMMY_EINVAL, COMMY_EDISCONNECTED, COMMY_ETIMEDOUT.
 * Blocks: for one round trip. */
COMMY_API int commy_session_authenticate(commy_session *s, const char *tenant, const char *api_key);

/* Authenticates with a token from an earlier session (also one of another
 * process, or from before a server restart).
 * Errors: COMMY_EAUTH (unknown or revoked), COMMY_EEXPIRED, as above. */
COMMY_API int commy_session_authenticate_token(commy_session *s, const char *tenant, const char *token);

/* Authenticates with a JWT (compact JWS, at most 8192 bytes) for a tenant
 * whose server configuration accepts JWTs (HS256 or RS256; docs/protocol.md
 * says which claims are checked). The JWT's sub becomes the client id, its
 * scope the permissions. Like commy_session_authenticate, the session then
 * holds a token that it uses to reconnect; the session, refreshes included,
 * lives no longer than the JWT's exp.
 * Errors: COMMY_EAUTH (bad signature, audience, issuer, ... or a tenant that
 * takes no JWT: one answer), COMMY_EEXPIRED (past exp), COMMY_ELOCKED,
 * COMMY_EINVAL (NULL or too long), COMMY_EDISCONNECTED, COMMY_ETIMEDOUT.
 * Blocks: for one round trip. */
COMMY_API int commy_session_authenticate_jwt(commy_session *s, const char *tenant, const char *jwt);

/* Copies the session's current token (NUL-terminated) into out, which has
 * cap bytes; *out_len (may be NULL) receives its length. *expires_at (may be
 * NULL) receives its expiry in Unix seconds.
 * Errors: COMMY_ENOTFOUND (not authenticated), COMMY_ETOOSMALL (cap <= length;
 * the length is stored). Never blocks. */
COMMY_API int commy_session_token(commy_session *s, char *out, size_t cap, size_t *out_len, int64_t *expires_at);

/* The client id the server gave this session's credentials, copied like
 * commy_session_token. Errors: COMMY_ENOTFOUND, COMMY_ETOOSMALL. */
COMMY_API int commy_session_client_id(commy_session *s, char *out, size_t cap, size_t *out_len);

/* Replaces the token with a new one; the server revokes the old one in the
 * same step. Errors: COMMY_EAUTH, COMMY_EEXPIRED, COMMY_EDISCONNECTED,
 * COMMY_ETIMEDOUT. Blocks: for one round trip. */
COMMY_API int commy_session_refresh(commy_session *s);

/* Revokes the token and closes every service opened through this session
 * on the server. Services stay allocated here until commy_service_close:
 * calls on remote ones fail with COMMY_ECLOSED; local ones keep their
 * mapping until then. Blocks: for one round trip. */
COMMY_API int commy_session_logout(commy_session *s);

/* Admin: revokes every token of client_id, closes its connections and
 * rotates the service files it had mapped (the other local clients follow
 * the new file without noticing). *out_rotated (may be NULL) receives the
 * number of services rotated.
 * Errors: COMMY_EFORBIDDEN (needs the admin scope), COMMY_EINVAL,
 * COMMY_EDISCONNECTED, COMMY_ETIMEDOUT. Blocks: for one round trip. */
COMMY_API int commy_session_revoke_client(uint32_t *out_rotated, commy_session *s, const char *client_id);

/* 1 if the session is connected and authenticated (or needs no
 * authentication yet), 0 while it is disconnected or reconnecting. */
COMMY_API int commy_session_connected(commy_session *s);

/* Closes the connection and frees the session. Services opened from it may
 * be closed before or after: afterwards calls on remote ones fail with
 * COMMY_ECLOSED, local ones keep their mapping, and commy_service_close
 * still frees them. Accepts NULL. Blocks until the network thread ends (at
 * most a moment). */
COMMY_API void commy_session_close(commy_session *s);

/* Opens the service called name in mode COMMY_SERVICE_LOCAL, _REMOTE or
 * _AUTO.
 * Errors: COMMY_ENOTFOUND (no such service, or one of another tenant),
 * COMMY_EFORBIDDEN (no permission), COMMY_EPERM (local refused: not on
 * this machine), COMMY_EINVAL, COMMY_EDISCONNECTED, COMMY_ETIMEDOUT, and
 * the errors of commy_alloc_open when the file cannot be mapped.
 * Blocks: for one round trip, plus mapping the file. */
COMMY_API int commy_session_open_service(commy_service **out, commy_session *s, const char *name, int mode);

/* COMMY_SERVICE_LOCAL or COMMY_SERVICE_REMOTE: how the service was opened
 * (never AUTO); 0 for NULL. */
COMMY_API int commy_service_mode(const commy_service *svc);

/* The commy_alloc of the service, on which every commy_<kind>_open and
 * commy_root_* call works. Borrowed: owned by the service, valid until
 * commy_service_close (container handles opened on it stay safe to call
 * after that and fail with COMMY_ECLOSED). In local mode it maps the
 * service file; after the server rotates the file (a revocation) container
 * handles switch to the new file on their next call.
 * Errors: COMMY_EINVAL (NULL), COMMY_ECLOSED. Never blocks. */
COMMY_API int commy_service_alloc(commy_alloc **out, commy_service *svc);

/* Calls fn(change, payload) for every change of variable var made after
 * this returns, in the order the server saw them, until
 * commy_service_unsubscribe. One subscription per variable and service.
 * Changes made through the protocol are each reported; changes made
 * through a mapped file may be coalesced (docs/protocol.md).
 * Errors: COMMY_ENOTFOUND (no such variable), COMMY_EEXISTS (already
 * subscribed), COMMY_EFORBIDDEN, COMMY_EDISCONNECTED, COMMY_ETIMEDOUT.
 * Blocks: for one round trip. */
COMMY_API int commy_service_subscribe(commy_service *svc, const char *var, commy_change_fn fn, void *payload);

/* Ends the subscription to var. fn is not called after this returns
 * (unless from a callback already running on the network thread).
 * Errors: COMMY_ENOTFOUND (not subscribed). Blocks: for one round trip. */
COMMY_API int commy_service_unsubscribe(commy_service *svc, const char *var);

/* Closes the service on the server, unmaps it and frees svc. Accepts NULL.
 * Blocks: for one round trip if connected. */
COMMY_API void commy_service_close(commy_service *svc);

COMMY_END_DECLS

#endif
