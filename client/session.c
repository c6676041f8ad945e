/* commy_session: the client side of commy-server (abi/commy/session.h,
 * docs/protocol.md).
 *
 * Threads: one network thread per session runs libwebsockets and owns the
 * connection. User threads queue request frames under s->mu and wake it with
 * lws_cancel_service (the one lws call that is safe from another thread);
 * the network thread matches replies to requests by id and signals s->cv.
 * Pushes ("changed", "rotated", ...) are handled on the network thread.
 *
 * A remote service is a commy_alloc with no mapping (core/remote.c): every
 * container call arrives here as a struct commy__rop and becomes one or two
 * requests. */
#include "internal.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_FRAME (64u << 20)
#define BACKOFF_START_MS 100u

typedef struct outframe {
    struct outframe *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of room, then the frame */
} outframe;

/* A request waiting for its reply. */
typedef struct pending {
    struct pending *next;
    uint64_t id;
    int done;
    int rc;                 /* COMMY_OK, a reply's error, or EDISCONNECTED */
    commy_wire_message msg; /* the reply, owned once done */
    /* internal requests (restoring after a reconnect, refreshing) have no
     * waiter: the network thread handles their reply */
    void (*on_reply)(commy_session *s, struct pending *p, commy_wire_message *m);
    struct commy_service *svc;
    char var[COMMY_ROOT_NAME_MAX + 1];
    int last; /* the last request of a restore */
} pending;

/* A subscription: the user's (fn set) and/or the waits' (wait set). */
typedef struct sub {
    struct sub *next;
    char var[COMMY_ROOT_NAME_MAX + 1];
    commy_change_fn fn;
    void *payload;
    int user;      /* commy_service_subscribe'd */
    int wait;      /* a remote version/wait uses it */
    int active;    /* the server has it */
    uint32_t version;
} sub;

struct commy_service {
    struct commy_service *next;
    commy_session *s;
    char name[COMMY_WIRE_NAME_MAX + 1];
    int mode;               /* COMMY_SERVICE_LOCAL or _REMOTE */
    commy_alloc *alloc;     /* what commy_service_alloc hands out */
    commy_alloc *current;   /* local: the newest mapping (after rotations) */
    commy_alloc **retired;  /* local: mappings the server rotated away from */
    int nretired;
    char path[4096];        /* local: the mapped file */
    sub *subs;
    int closed;
};

struct commy_session {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct lws_context *ctx;
    struct lws *wsi;
    pthread_t thread;
    int thread_started;
    int stop;
    /* where */
    char host[256];
    char hostport[270]; /* for messages: host:port, [v6]:port */
    char origin[300];
    /* the addresses one attempt tries in turn: the URL's host (lws tries
     * each address it resolves to), or for localhost both loopback
     * addresses, whatever the resolver says (RFC 6761, as curl does) */
    const char *addrs[2];
    int naddrs, addr_i;
    int port, tls;
    uint32_t timeout_ms, reconnect_max_ms, backoff_ms;
    int reconnect;
    int insecure;
    uint32_t silence_s;
    lws_retry_bo_t idle;        /* the ping and hang-up times of each connection */
    struct timespec last_rx;    /* when the server last sent anything (a pong included) */
    char *ca_file, *cert_file, *key_file;
    SSL_CTX *ssl_ctx;   /* ours, lent to lws: lws 4.1 leaks the one it makes */
    /* the connection */
    int connected;      /* the WebSocket is open */
    int ready;          /* connected and restored: user requests may go */
    int ever_connected;
    int revoked;        /* closing/revoked: never reconnect */
    int free_on_exit;   /* closed from the network thread itself */
    char tls_error[400]; /* why the server's certificate was refused, for the connect error */
    /* the connection attempt under way (network thread only): what its TLS
     * handshake showed, to say why it failed */
    int attempting;     /* neither established nor reported failed yet */
    int cert_asked;     /* the server sent a CertificateRequest (mutual TLS) */
    int tls_seen;       /* the server's TLS stack answered: this is the server, do not try another address */
    char tls_alert[80]; /* the fatal TLS alert the server sent, if one was read */
    char last_error[600];
    lws_sorted_usec_list_t sul;
    outframe *qhead, *qtail;
    char *rx;
    size_t rxlen, rxcap;
    pending *pend;
    uint64_t next_id;
    /* authentication */
    int authed;
    char tenant[COMMY_WIRE_NAME_MAX + 1];
    char token[COMMY_WIRE_SECRET_MAX + 1];
    char client_id[COMMY_WIRE_NAME_MAX + 1];
    int64_t expires_at;
    commy_service *services;
};

static int on_net_thread(commy_session *s) { return s->thread_started && pthread_equal(pthread_self(), s->thread); }

/* ------------------------------------------------------------ the queue */

/* Queues frame (malloc'd, consumed); s->mu held. */
static int enqueue(commy_session *s, char *frame)
{
    if (!frame) return commy__err(COMMY_ENOMEM, "out of memory building a request");
    size_t len = strlen(frame);
    outframe *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) {
        free(frame);
        return commy__err(COMMY_ENOMEM, "out of memory queueing a request");
    }
    f->next = NULL;
    f->len = len;
    memcpy(f->data + LWS_PRE, frame, len);
    free(frame);
    if (s->qtail) s->qtail->next = f;
    else s->qhead = f;
    s->qtail = f;
    if (on_net_thread(s)) {
        if (s->wsi) lws_callback_on_writable(s->wsi);
    } else if (s->ctx) {
        lws_cancel_service(s->ctx);
    }
    return COMMY_OK;
}

static void queue_free(commy_session *s)
{
    while (s->qhead) {
        outframe *f = s->qhead;
        s->qhead = f->next;
        free(f);
    }
    s->qtail = NULL;
}

/* Every request in flight fails: the connection it went on is gone. */
static void fail_pending(commy_session *s)
{
    for (pending **pp = &s->pend; *pp;) {
        pending *p = *pp;
        if (p->on_reply) { /* internal: nobody waits */
            *pp = p->next;
            free(p);
            continue;
        }
        if (!p->done) {
            p->done = 1;
            p->rc = COMMY_EDISCONNECTED;
        }
        pp = &p->next;
    }
    pthread_cond_broadcast(&s->cv);
}

/* Sends an internal request whose reply on_reply handles; s->mu held. */
static int send_internal(commy_session *s, const char *op, cJSON *fields,
                         void (*on_reply)(commy_session *, pending *, commy_wire_message *), commy_service *svc,
                         const char *var, int last)
{
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        cJSON_Delete(fields);
        return COMMY_ENOMEM;
    }
    p->id = ++s->next_id;
    p->on_reply = on_reply;
    p->svc = svc;
    p->last = last;
    if (var) snprintf(p->var, sizeof p->var, "%s", var);
    p->next = s->pend;
    s->pend = p;
    return enqueue(s, commy_wire_request_build(p->id, op, fields));
}

/* Sends a request and waits for its reply. On COMMY_OK *reply holds the
 * reply (caller frees with commy_wire_message_free). fields is consumed.
 * s->mu must NOT be held. */
static int request(commy_session *s, const char *op, cJSON *fields, commy_wire_message *reply, int need_ready)
{
    memset(reply, 0, sizeof *reply);
    if (!fields) return commy__err(COMMY_ENOMEM, "out of memory building a request");
    if (on_net_thread(s)) {
        cJSON_Delete(fields);
        return commy__err(COMMY_EBUSY, "%s: a session call from inside a subscription callback would wait for "
                          "the thread that runs the callback; make it from another thread", op);
    }
    pthread_mutex_lock(&s->mu);
    if (s->stop || !s->connected || (need_ready && !s->ready)) {
        int revoked = s->revoked;
        char why[600];
        snprintf(why, sizeof why, "%s", s->last_error);
        pthread_mutex_unlock(&s->mu);
        cJSON_Delete(fields);
        return commy__err(COMMY_EDISCONNECTED, "%s: the session is %s%s%s", op,
                          revoked ? "closed by the server (revoked)" : "not connected to the server (reconnecting)",
                          why[0] ? ": " : "", why);
    }
    pending p = {0};
    p.id = ++s->next_id;
    p.next = s->pend;
    s->pend = &p;
    int rc = enqueue(s, commy_wire_request_build(p.id, op, fields));
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += s->timeout_ms / 1000;
    deadline.tv_nsec += (long)(s->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    while (rc == COMMY_OK && !p.done) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT && !p.done) {
            rc = commy__err(COMMY_ETIMEDOUT, "%s: no reply from the server within %u ms", op, s->timeout_ms);
            break;
        }
    }
    for (pending **pp = &s->pend; *pp; pp = &(*pp)->next)
        if (*pp == &p) {
            *pp = p.next;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        commy_wire_message_free(&p.msg);
        return rc;
    }
    if (p.rc == COMMY_EDISCONNECTED)
        return commy__err(COMMY_EDISCONNECTED, "%s: the connection to the server dropped before the reply", op);
    if (!p.msg.ok) {
        int code = p.msg.error_code;
        rc = commy__err(code, "%s", p.msg.error_message ? p.msg.error_message : commy_strerror(code));
        commy_wire_message_free(&p.msg);
        return rc;
    }
    *reply = p.msg;
    return COMMY_OK;
}

static void ignore_reply(commy_session *s, pending *p, commy_wire_message *m)
{
    (void)s;
    (void)p;
    (void)m;
}

/* A request whose result is not needed. From the network thread (a
 * subscription callback) it is sent without waiting for the reply. */
static int request0(commy_session *s, const char *op, cJSON *fields)
{
    if (on_net_thread(s)) {
        pthread_mutex_lock(&s->mu);
        int rc = s->connected ? send_internal(s, op, fields, ignore_reply, NULL, NULL, 0)
                              : (cJSON_Delete(fields), COMMY_EDISCONNECTED);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    commy_wire_message m;
    int rc = request(s, op, fields, &m, 1);
    commy_wire_message_free(&m);
    return rc;
}

static cJSON *svc_fields(const commy_service *svc, const char *var)
{
    cJSON *f = cJSON_CreateObject();
    if (!f) return NULL;
    cJSON_AddStringToObject(f, "service", svc->name);
    if (var) cJSON_AddStringToObject(f, "var", var);
    return f;
}

/* ------------------------------------------------------- subscriptions */

static sub *sub_find(commy_service *svc, const char *var)
{
    for (sub *b = svc->subs; b; b = b->next)
        if (strcmp(b->var, var) == 0) return b;
    return NULL;
}

static commy_service *svc_find(commy_session *s, const char *name)
{
    for (commy_service *v = s->services; v; v = v->next)
        if (strcmp(v->name, name) == 0) return v;
    return NULL;
}

static void switch_file(commy_session *s, commy_service *svc, const char *path);

/* The reply to the refresh the session sent by itself on "expiring". */
static void refresh_reply(commy_session *s, pending *p, commy_wire_message *m)
{
    (void)p;
    if (!m->ok) {
        snprintf(s->last_error, sizeof s->last_error, "refreshing the expiring token: %s: %.300s", m->error_name,
                 m->error_message ? m->error_message : "");
        return;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m->result, "token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(m->result, "expires_at");
    if (cJSON_IsString(tok)) snprintf(s->token, sizeof s->token, "%s", tok->valuestring);
    if (cJSON_IsNumber(exp)) s->expires_at = (int64_t)exp->valuedouble;
}

/* A push; on the network thread with s->mu held. */
static void on_push(commy_session *s, commy_wire_message *m)
{
    const cJSON *b = m->body;
    const cJSON *jsvc = cJSON_GetObjectItemCaseSensitive(b, "service");
    commy_service *svc = cJSON_IsString(jsvc) ? svc_find(s, jsvc->valuestring) : NULL;
    if (strcmp(m->push, "changed") == 0) {
        const cJSON *jvar = cJSON_GetObjectItemCaseSensitive(b, "var");
        const cJSON *jver = cJSON_GetObjectItemCaseSensitive(b, "version");
        if (!svc || !cJSON_IsString(jvar) || !cJSON_IsNumber(jver)) return;
        sub *u = sub_find(svc, jvar->valuestring);
        if (!u) return;
        u->version = (uint32_t)jver->valuedouble;
        pthread_cond_broadcast(&s->cv);
        if (!u->user || !u->fn) return;
        commy_change ch;
        memset(&ch, 0, sizeof ch);
        ch.service = svc->name;
        ch.var = u->var;
        ch.version = u->version;
        ch.type = COMMY_T_ANY;
        commy_wire_value val = {0};
        const cJSON *jval = cJSON_GetObjectItemCaseSensitive(b, "value");
        const cJSON *jlen = cJSON_GetObjectItemCaseSensitive(b, "len");
        if (jval && commy_wire_value_from_json(&val, jval, COMMY_T_ANY, NULL, 0) == COMMY_OK) {
            ch.type = val.type;
            ch.value = val.data;
            ch.value_len = val.len;
            ch.len = val.type == COMMY_T_STR ? val.len : 1;
        } else if (cJSON_IsString(jlen)) {
            ch.len = strtoull(jlen->valuestring, NULL, 10);
        }
        commy_change_fn fn = u->fn;
        void *payload = u->payload;
        /* the callback may call cheap session functions (they take s->mu) */
        pthread_mutex_unlock(&s->mu);
        fn(&ch, payload);
        pthread_mutex_lock(&s->mu);
        commy_wire_value_free(&val);
    } else if (strcmp(m->push, "rotated") == 0) {
        const cJSON *jpath = cJSON_GetObjectItemCaseSensitive(b, "path");
        if (svc && svc->mode == COMMY_SERVICE_LOCAL && cJSON_IsString(jpath)) switch_file(s, svc, jpath->valuestring);
    } else if (strcmp(m->push, "closing") == 0) {
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "reason");
        const char *reason = cJSON_IsString(why) ? why->valuestring : "?";
        snprintf(s->last_error, sizeof s->last_error, "the server is closing the connection (%s)", reason);
        if (strcmp(reason, "revoked") == 0) {
            s->revoked = 1;
            s->authed = 0;
            /* No `rotated` will come for us: writes waiting on a retired
             * file fail now (COMMY_ERETIRED) rather than at their timeout. */
            for (commy_service *v = s->services; v; v = v->next)
                if (v->mode == COMMY_SERVICE_LOCAL) {
                    if (v->alloc) commy__alloc_set_rotatable(v->alloc, 0);
                    if (v->current && v->current != v->alloc) commy__alloc_set_rotatable(v->current, 0);
                }
        }
    } else if (strcmp(m->push, "expiring") == 0 && s->authed && s->ready) {
        /* keep the session alive: a new token, the old one revoked */
        send_internal(s, "refresh", cJSON_CreateObject(), refresh_reply, NULL, NULL, 0);
    }
}

/* ---------------------------------------------- restoring after a drop */

static void restore_reply(commy_session *s, pending *p, commy_wire_message *m)
{
    if (!m->ok) {
        snprintf(s->last_error, sizeof s->last_error, "restoring the session: %s: %s", m->error_name,
                 m->error_message ? m->error_message : "");
        if (m->error_code == COMMY_EAUTH || m->error_code == COMMY_EEXPIRED) s->authed = 0;
    } else if (p->svc && p->var[0]) {
        sub *u = sub_find(p->svc, p->var);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->result, "version");
        if (u) {
            u->active = 1;
            if (cJSON_IsNumber(v)) u->version = (uint32_t)v->valuedouble;
        }
    } else if (p->svc && p->svc->mode == COMMY_SERVICE_LOCAL) {
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(m->result, "path");
        /* a restarted server may have made a new file: follow it */
        if (cJSON_IsString(path) && strcmp(path->valuestring, p->svc->path) != 0)
            switch_file(s, p->svc, path->valuestring);
    }
    if (p->last) {
        s->ready = 1;
        s->backoff_ms = BACKOFF_START_MS;
        pthread_cond_broadcast(&s->cv);
    }
}

/* The connection is (again) open: authenticate with the token, open the
 * services, renew the subscriptions, pipelined; ready after the last reply. */
static void restore(commy_session *s)
{
    if (!s->authed || !s->token[0]) {
        s->ready = 1;
        s->backoff_ms = BACKOFF_START_MS;
        return;
    }
    int n = 0, total = 1;
    for (commy_service *v = s->services; v; v = v->next) {
        if (v->closed) continue;
        total++;
        for (sub *u = v->subs; u; u = u->next) total++;
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "tenant", s->tenant);
    cJSON_AddStringToObject(f, "token", s->token);
    send_internal(s, "authenticate", f, restore_reply, NULL, NULL, ++n == total);
    for (commy_service *v = s->services; v; v = v->next) {
        if (v->closed) continue;
        f = svc_fields(v, NULL);
        cJSON_AddStringToObject(f, "mode", v->mode == COMMY_SERVICE_LOCAL ? "local" : "remote");
        send_internal(s, "open_service", f, restore_reply, v, NULL, ++n == total);
        for (sub *u = v->subs; u; u = u->next) {
            u->active = 0;
            send_internal(s, "subscribe", svc_fields(v, u->var), restore_reply, v, u->var, ++n == total);
        }
    }
}

/* ------------------------------------------------------ libwebsockets */

static void connect_now(commy_session *s);

static void next_address_due(lws_sorted_usec_list_t *sul)
{
    commy_session *s = lws_container_of(sul, commy_session, sul);
    pthread_mutex_lock(&s->mu);
    int go = !s->stop && !s->connected && !s->wsi;
    pthread_mutex_unlock(&s->mu);
    if (go) connect_now(s);
}

static void reconnect_due(lws_sorted_usec_list_t *sul)
{
    commy_session *s = lws_container_of(sul, commy_session, sul);
    s->addr_i = 0;
    next_address_due(sul);
}

/* The attempt failed before reaching a server (nothing answered in TLS):
 * if another address is left, try it at once, within the same attempt (no
 * error yet). s->mu held; 1 if it is tried. */
static int try_next_address(commy_session *s)
{
    if (s->stop || s->tls_seen || s->tls_error[0] || s->addr_i + 1 >= s->naddrs) return 0;
    s->addr_i++;
    s->attempting = 0;
    lws_sul_schedule(s->ctx, 0, &s->sul, next_address_due, 1);
    return 1;
}

/* s->mu held. */
static void schedule_reconnect(commy_session *s)
{
    if (s->stop || s->revoked || !s->reconnect || !s->ever_connected) return;
    uint32_t wait = s->backoff_ms ? s->backoff_ms : BACKOFF_START_MS;
    s->backoff_ms = wait * 2 > s->reconnect_max_ms ? s->reconnect_max_ms : wait * 2;
    lws_sul_schedule(s->ctx, 0, &s->sul, reconnect_due, (lws_usec_t)wait * LWS_US_PER_MS);
}

/* Why the attempt under way failed, into s->last_error; s->mu held. lws_why
 * is lws' own description. The TLS findings come first: lws reports a
 * refusal by the server's TLS stack as "read failed", "closed before
 * established" or not at all (see LWS_CALLBACK_WSI_DESTROY). */
static void attempt_failed(commy_session *s, const char *lws_why)
{
    char why[440], alert[100] = "";
    s->attempting = 0;
    if (s->tls_alert[0]) snprintf(alert, sizeof alert, " (TLS alert '%s')", s->tls_alert);
    if (s->tls_error[0])
        snprintf(why, sizeof why, "%s", s->tls_error);
    else if (s->cert_asked && !s->cert_file)
        snprintf(why, sizeof why, "the server requires a client certificate (mutual TLS) and this session has none: "
                 "set cert_file and key_file%s", alert);
    else if (s->cert_asked && alert[0])
        snprintf(why, sizeof why, "the server refused the client certificate cert_file '%.150s'%s: is it signed by "
                 "a CA that the server's tls.client_ca trusts?", s->cert_file, alert);
    else if (s->cert_asked)
        snprintf(why, sizeof why, "the server closed the connection after asking for the client certificate (%.80s): "
                 "is cert_file '%.150s' signed by a CA that the server's tls.client_ca trusts?", lws_why, s->cert_file);
    else if (alert[0])
        snprintf(why, sizeof why, "the server refused the TLS connection%s", alert);
    else
        snprintf(why, sizeof why, "%s", lws_why);
    snprintf(s->last_error, sizeof s->last_error, "cannot connect to %.150s%s: %.400s", s->hostport,
             s->naddrs > 1 && !s->tls_seen ? " (127.0.0.1 and ::1)" : "", why);
}

static void connect_now(commy_session *s)
{
    pthread_mutex_lock(&s->mu);
    s->tls_error[0] = '\0';
    s->tls_alert[0] = '\0';
    s->cert_asked = 0;
    s->tls_seen = 0;
    s->attempting = 1;
    pthread_mutex_unlock(&s->mu);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = s->ctx;
    ci.address = s->addrs[s->addr_i];
    ci.port = s->port;
    ci.path = "/";
    ci.host = s->host;
    ci.origin = s->origin;
    ci.protocol = "commy.v1";
    if (s->tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (s->insecure) ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED;
    }
    ci.userdata = s;
    ci.retry_and_idle_policy = &s->idle;
    struct lws *w = lws_client_connect_via_info(&ci);
    pthread_mutex_lock(&s->mu);
    if (!w && s->attempting) { /* else the failure callback has run and said why */
        attempt_failed(s, "the connection could not be started");
        pthread_cond_broadcast(&s->cv);
        schedule_reconnect(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_frame(commy_session *s, const char *data, size_t len)
{
    commy_wire_message m;
    commy_wire_fault f;
    if (commy_wire_message_parse(&m, &f, data, len, MAX_FRAME) != COMMY_OK) {
        snprintf(s->last_error, sizeof s->last_error, "the server sent a bad frame: %.250s", f.message);
        return;
    }
    if (m.is_push) {
        on_push(s, &m);
        commy_wire_message_free(&m);
        return;
    }
    for (pending **pp = &s->pend; *pp; pp = &(*pp)->next) {
        pending *p = *pp;
        if (!m.has_id || p->id != m.id || p->done) continue;
        if (p->on_reply) {
            *pp = p->next;
            p->on_reply(s, p, &m);
            free(p);
            commy_wire_message_free(&m);
            return;
        }
        p->msg = m;
        p->done = 1;
        p->rc = m.ok ? COMMY_OK : m.error_code;
        pthread_cond_broadcast(&s->cv);
        return;
    }
    commy_wire_message_free(&m); /* a reply to a request that gave up waiting */
}

/* Milliseconds since the server last sent anything; s->mu held. */
static int64_t silent_ms(const commy_session *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - s->last_rx.tv_sec) * 1000 + (now.tv_nsec - s->last_rx.tv_nsec) / 1000000;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    commy_session *s = lws_get_opaque_user_data(wsi);
    if (!s) s = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* OpenSSL's verdict stands (return 0); keep its reason, since lws
         * reports a refused certificate as an opaque "SSL err 1" */
        if (!len && user && !s->insecure) {
            X509_STORE_CTX *xs = user;
            int e = X509_STORE_CTX_get_error(xs);
            pthread_mutex_lock(&s->mu);
            if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
                snprintf(s->tls_error, sizeof s->tls_error, "the server's certificate does not name '%.200s' (put "
                         "one of the names in its subjectAltName into the URL, or add this one to it)", s->host);
            else
                snprintf(s->tls_error, sizeof s->tls_error, "the server's certificate did not verify against %.200s: "
                         "%s (at depth %d)", s->ca_file ? s->ca_file : "the system's CA store",
                         X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(xs));
            pthread_mutex_unlock(&s->mu);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        pthread_mutex_lock(&s->mu);
        s->attempting = 0;
        s->wsi = wsi;
        s->connected = 1;
        s->ever_connected = 1;
        s->last_error[0] = '\0';
        s->rxlen = 0;
        clock_gettime(CLOCK_MONOTONIC, &s->last_rx);
        restore(s);
        if (s->qhead) lws_callback_on_writable(wsi);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        /* lws 4.1 frees a client connection that fails after its TLS
         * handshake but before the server answers the upgrade without
         * LWS_CALLBACK_CLIENT_CONNECTION_ERROR when the failure is writing
         * the upgrade request: with TLS 1.3 a server that refuses the
         * client's certificate (or its absence) does so after the client's
         * side of the handshake is complete, and its reset makes that write
         * fail. Unreported, the attempt left connect waiting for its timeout
         * and a reconnect never scheduled. */
        if (user != s || !s->attempting) break;
        reason = LWS_CALLBACK_CLIENT_CONNECTION_ERROR;
        in = "closed before the server answered the WebSocket upgrade";
        /* fall through */
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        pthread_mutex_lock(&s->mu);
        if (reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR && try_next_address(s)) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR)
            attempt_failed(s, in ? (const char *)in : "connection failed");
        else if (!s->last_error[0] && s->connected && silent_ms(s) >= (int64_t)s->silence_s * 500)
            /* silent for longer than the ping period (a live server answers a
             * ping at once): lws hung up after silence_timeout_s */
            snprintf(s->last_error, sizeof s->last_error, "the server at %.270s sent nothing for %" PRId64
                     " ms, not even a pong (silence_timeout_s %u): taken for dead", s->hostport, silent_ms(s),
                     s->silence_s);
        else if (!s->last_error[0])
            snprintf(s->last_error, sizeof s->last_error, "the connection to %.270s closed", s->hostport);
        if (s->wsi == wsi || reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR) s->wsi = NULL;
        s->connected = 0;
        s->ready = 0;
        queue_free(s);
        fail_pending(s);
        schedule_reconnect(s);
        pthread_mutex_unlock(&s->mu);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_MONOTONIC, &s->last_rx);
        pthread_mutex_unlock(&s->mu);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_MONOTONIC, &s->last_rx);
        if (lws_is_first_fragment(wsi)) s->rxlen = 0;
        if (s->rxlen + len > MAX_FRAME) {
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        if (s->rxlen + len + 1 > s->rxcap) {
            size_t cap = (s->rxlen + len + 1) * 2;
            char *nrx = realloc(s->rx, cap);
            if (!nrx) {
                pthread_mutex_unlock(&s->mu);
                return -1;
            }
            s->rx = nrx;
            s->rxcap = cap;
        }
        memcpy(s->rx + s->rxlen, in, len);
        s->rxlen += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            on_frame(s, s->rx, s->rxlen);
            s->rxlen = 0;
        }
        pthread_mutex_unlock(&s->mu);
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        pthread_mutex_lock(&s->mu);
        outframe *f = s->qhead;
        if (f) {
            s->qhead = f->next;
            if (!s->qhead) s->qtail = NULL;
        }
        int more = s->qhead != NULL, stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            free(f);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
            return -1;
        }
        if (f) {
            int w = lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT);
            free(f);
            if (w < 0) return -1;
        }
        if (more) lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        pthread_mutex_lock(&s->mu);
        if (s->wsi && (s->qhead || s->stop)) lws_callback_on_writable(s->wsi);
        pthread_mutex_unlock(&s->mu);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"commy.v1", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void session_free(commy_session *s);

static void *net_main(void *arg)
{
    commy_session *s = arg;
    /* A write from a change callback (this thread) must not wait for a
     * `rotated` push that only this thread can process. */
    commy__retire_nowait = 1;
    connect_now(s);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop, gone = !s->wsi;
        pthread_mutex_unlock(&s->mu);
        if (stop && gone) break;
        if (lws_service(s->ctx, 0) < 0) break;
    }
    pthread_mutex_lock(&s->mu);
    int free_it = s->free_on_exit;
    pthread_mutex_unlock(&s->mu);
    if (free_it) session_free(s); /* closed from a callback on this thread */
    return NULL;
}

/* ------------------------------------------------------------ sessions */

static void lws_quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

void commy_session_options_init(commy_session_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->timeout_ms = 10000;
    o->reconnect_max_ms = 5000;
    o->reconnect = 1;
    o->silence_timeout_s = 30;
}

static int parse_url(commy_session *s, const char *url)
{
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) s->tls = 1, p = url + 6;
    else if (strncmp(url, "ws://", 5) == 0) s->tls = 0, p = url + 5;
    else return commy__err(COMMY_EINVAL, "session URL '%.100s' must start with wss:// (or ws:// for --insecure-dev)", url);
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) return commy__err(COMMY_EINVAL, "session URL '%.100s': unterminated [address]", url);
        if ((size_t)(rb - p - 1) >= sizeof s->host) return commy__err(COMMY_EINVAL, "session URL: host too long");
        memcpy(s->host, p + 1, (size_t)(rb - p - 1));
        s->host[rb - p - 1] = '\0';
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *hend = colon ? colon : end;
        if (hend == p || (size_t)(hend - p) >= sizeof s->host)
            return commy__err(COMMY_EINVAL, "session URL '%.100s' has no host", url);
        memcpy(s->host, p, (size_t)(hend - p));
        s->host[hend - p] = '\0';
    }
    s->port = s->tls ? 443 : 80;
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535)
            return commy__err(COMMY_EINVAL, "session URL '%.100s': the port must be 1 to 65535", url);
        s->port = (int)port;
    }
    snprintf(s->origin, sizeof s->origin, "%s", s->host);
    snprintf(s->hostport, sizeof s->hostport, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host, s->port);
    size_t hl = strlen(s->host);
    if (strcasecmp(s->host, "localhost") == 0 || (hl > 10 && strcasecmp(s->host + hl - 10, ".localhost") == 0)) {
        /* IPv4 first: where a server listens on one loopback address it is
         * most often that one */
        s->addrs[0] = "127.0.0.1";
        s->addrs[1] = "::1";
        s->naddrs = 2;
    } else {
        s->addrs[0] = s->host;
        s->naddrs = 1;
    }
    return COMMY_OK;
}

static char *dup_opt(const char *v) { return v ? strdup(v) : NULL; }

/* The last OpenSSL error as text, and the queue emptied. */
static const char *ssl_why(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, buf, cap);
    else snprintf(buf, cap, "no detail");
    ERR_clear_error();
    return buf;
}

/* Which session an SSL_CTX belongs to (its ex_data slot). */
static int ssl_ctx_slot = -1;
static pthread_once_t ssl_ctx_slot_once = PTHREAD_ONCE_INIT;
static void ssl_ctx_slot_init(void) { ssl_ctx_slot = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

/* OpenSSL's record of the handshake (network thread, inside lws): notes a
 * request for a client certificate and a fatal alert from the server, which
 * lws does not report, so that a refused connection can say why. */
static void tls_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    commy_session *s = ssl_ctx_slot >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_slot) : NULL;
    const unsigned char *b = buf;
    if (!s || write_p || !len) return;
    s->tls_seen = 1;
    if (content_type == SSL3_RT_HANDSHAKE && b[0] == SSL3_MT_CERTIFICATE_REQUEST)
        s->cert_asked = 1;
    else if (content_type == SSL3_RT_ALERT && len >= 2 && b[0] == SSL3_AL_FATAL) {
        const char *name = b[1] == 116 ? "certificate required" /* TLS 1.3's; OpenSSL 3.0 has no text for it */
                                        : SSL_alert_desc_string_long(b[1]);
        if (strcmp(name, "unknown") == 0) snprintf(s->tls_alert, sizeof s->tls_alert, "number %d", b[1]);
        else snprintf(s->tls_alert, sizeof s->tls_alert, "%s", name);
    }
}

/* The client TLS context, made here rather than by lws: lws 4.1 never frees
 * the SSL_CTX (and the CA store in it) that it makes for a client vhost, so
 * every session leaked one. lws borrows this one (provided_client_ssl_ctx)
 * and session_free frees it after lws_context_destroy. Certificate
 * verification stays per connection in lws: it sets SSL_VERIFY_PEER and the
 * host name (or IP address) check on each SSL it makes from this context. */
static int client_tls(commy_session *s)
{
    char why[256];
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) return commy__err(COMMY_ENOMEM, "cannot make a TLS context: %s", ssl_why(why, sizeof why));
    s->ssl_ctx = c;
    pthread_once(&ssl_ctx_slot_once, ssl_ctx_slot_init);
    if (ssl_ctx_slot >= 0 && SSL_CTX_set_ex_data(c, ssl_ctx_slot, s) == 1) SSL_CTX_set_msg_callback(c, tls_msg);
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    /* lws 4.1 cuts the name it checks at the first ':' (a port, it thinks),
     * so for an IPv6 address ("wss://[::1]:PORT") it checked no name at all
     * and took any certificate the CA signed: check the address here (each
     * connection's SSL inherits the context's verification parameters) */
    if (!s->insecure && strchr(s->host, ':') &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(c), s->host) != 1)
        return commy__err(COMMY_EINVAL, "session URL: '%.100s' is not an IPv6 address", s->host);
    if (s->ca_file ? SSL_CTX_load_verify_locations(c, s->ca_file, NULL) != 1 : SSL_CTX_set_default_verify_paths(c) != 1)
        return commy__err(COMMY_EINVAL, "cannot load the CA certificates from %s%.300s%s: %s",
                          s->ca_file ? "ca_file '" : "the system's store", s->ca_file ? s->ca_file : "",
                          s->ca_file ? "'" : "", ssl_why(why, sizeof why));
    if (s->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(c, s->cert_file) != 1)
            return commy__err(COMMY_EINVAL, "cannot load the client certificate cert_file '%.300s': %s", s->cert_file,
                              ssl_why(why, sizeof why));
        if (SSL_CTX_use_PrivateKey_file(c, s->key_file, SSL_FILETYPE_PEM) != 1)
            return commy__err(COMMY_EINVAL, "cannot load the client key key_file '%.300s': %s", s->key_file,
                              ssl_why(why, sizeof why));
        if (SSL_CTX_check_private_key(c) != 1)
            return commy__err(COMMY_EINVAL, "key_file '%.300s' is not the key of cert_file '%.300s'", s->key_file,
                              s->cert_file);
    }
    return COMMY_OK;
}

static void session_free(commy_session *s)
{
    if (s->ctx) lws_context_destroy(s->ctx);
    SSL_CTX_free(s->ssl_ctx); /* after the context: its connections used it */
    queue_free(s);
    for (pending *p = s->pend, *n; p; p = n) {
        n = p->next;
        if (p->on_reply) free(p);
    }
    free(s->rx);
    free(s->ca_file);
    free(s->cert_file);
    free(s->key_file);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int commy_session_connect(commy_session **out, const char *url, const commy_session_options *opts)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_session_connect: out is NULL");
    *out = NULL;
    if (!url) return commy__err(COMMY_EINVAL, "commy_session_connect: url is NULL");
    commy_session_options o;
    commy_session_options_init(&o);
    if (opts) {
        if (opts->struct_size < offsetof(commy_session_options, reserved) || opts->struct_size > sizeof o)
            return commy__err(COMMY_EINVAL, "commy_session_connect: opts->struct_size is %u; call "
                              "commy_session_options_init first", opts->struct_size);
        memcpy(&o, opts, opts->struct_size);
        if (!o.timeout_ms) o.timeout_ms = 10000;
        if (!o.reconnect_max_ms) o.reconnect_max_ms = 5000;
    }
    if ((o.cert_file == NULL) != (o.key_file == NULL))
        return commy__err(COMMY_EINVAL, "commy_session_connect: cert_file and key_file go together (mutual TLS)");
    commy_session *s = calloc(1, sizeof *s);
    if (!s) return commy__err(COMMY_ENOMEM, "out of memory for a session");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = parse_url(s, url);
    if (rc) {
        session_free(s);
        return rc;
    }
    s->timeout_ms = o.timeout_ms;
    s->reconnect_max_ms = o.reconnect_max_ms < BACKOFF_START_MS ? BACKOFF_START_MS : o.reconnect_max_ms;
    s->backoff_ms = BACKOFF_START_MS;
    s->reconnect = o.reconnect != 0;
    s->insecure = o.insecure_skip_verify != 0;
    if (o.silence_timeout_s > 65535) {
        session_free(s);
        return commy__err(COMMY_EINVAL, "commy_session_connect: silence_timeout_s is %u; at most 65535",
                          o.silence_timeout_s);
    }
    s->silence_s = o.silence_timeout_s ? o.silence_timeout_s : 30;
    /* lws pings a connection that has been quiet for half the timeout and
     * hangs up when nothing, not even the pong, came for the whole of it */
    s->idle.secs_since_valid_ping = (uint16_t)(s->silence_s / 2 ? s->silence_s / 2 : 1);
    s->idle.secs_since_valid_hangup = (uint16_t)s->silence_s;
    s->ca_file = dup_opt(o.ca_file);
    s->cert_file = dup_opt(o.cert_file);
    s->key_file = dup_opt(o.key_file);
    lws_set_log_level(0, lws_quiet);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = s;
    info.timeout_secs = (o.timeout_ms + 999) / 1000;
    if (s->tls) {
        if ((rc = client_tls(s))) {
            session_free(s);
            return rc;
        }
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.provided_client_ssl_ctx = s->ssl_ctx;
    }
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        session_free(s);
        return commy__err(COMMY_EINVAL, "cannot set up TLS for the session: check ca_file, cert_file and key_file");
    }
    if (pthread_create(&s->thread, NULL, net_main, s) != 0) {
        session_free(s);
        return commy__err(COMMY_ENOMEM, "cannot start the session's network thread");
    }
    s->thread_started = 1;
    /* wait for the first connection (or its failure) */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += o.timeout_ms / 1000 + 1;
    pthread_mutex_lock(&s->mu);
    while (!s->connected && !s->last_error[0])
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) break;
    int ok = s->connected;
    char why[600];
    snprintf(why, sizeof why, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        commy_session_close(s);
        return why[0] ? commy__err(COMMY_EDISCONNECTED, "%s", why)
                      : commy__err(COMMY_ETIMEDOUT, "no connection to %.200s within %u ms", url, o.timeout_ms);
    }
    *out = s;
    return COMMY_OK;
}

static void svc_detach_all(commy_session *s, int forget);

void commy_session_close(commy_session *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    s->reconnect = 0;
    svc_detach_all(s, 1);
    if (on_net_thread(s)) {
        /* from a subscription callback (a binding's finalizer, say): the
         * network thread cannot wait for itself; it closes the connection
         * and frees the session when it leaves its loop */
        s->free_on_exit = 1;
        if (s->wsi) lws_callback_on_writable(s->wsi);
        pthread_mutex_unlock(&s->mu);
        pthread_detach(pthread_self());
        return;
    }
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started) {
        lws_cancel_service(s->ctx);
        /* the network thread closes the connection and leaves */
        pthread_join(s->thread, NULL);
    }
    session_free(s);
}

int commy_session_connected(commy_session *s)
{
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int r = s->connected && s->ready;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static int got_token(commy_session *s, const char *tenant, const cJSON *res, const char *old_token)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(res, "token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(res, "expires_at");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(res, "client_id");
    pthread_mutex_lock(&s->mu);
    if (tenant) snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    if (cJSON_IsString(tok)) snprintf(s->token, sizeof s->token, "%s", tok->valuestring);
    else if (old_token) snprintf(s->token, sizeof s->token, "%s", old_token);
    if (cJSON_IsNumber(exp)) s->expires_at = (int64_t)exp->valuedouble;
    if (cJSON_IsString(cid)) snprintf(s->client_id, sizeof s->client_id, "%s", cid->valuestring);
    s->authed = s->token[0] != '\0';
    pthread_mutex_unlock(&s->mu);
    return COMMY_OK;
}

/* field is "api_key", "token" or "jwt"; secret its value. */
static int authenticate(commy_session *s, const char *tenant, const char *field, const char *secret)
{
    if (!s) return commy__err(COMMY_EINVAL, "authenticate: session is NULL");
    if (!tenant || !secret) return commy__err(COMMY_EINVAL, "authenticate: tenant and credentials are required");
    size_t max = strcmp(field, "jwt") == 0 ? COMMY_WIRE_JWT_MAX : COMMY_WIRE_SECRET_MAX;
    if (strlen(tenant) > COMMY_WIRE_NAME_MAX)
        return commy__err(COMMY_EINVAL, "authenticate: the tenant name is longer than %d bytes", COMMY_WIRE_NAME_MAX);
    if (strlen(secret) > max)
        return commy__err(COMMY_EINVAL, "authenticate: the %s is longer than %zu bytes", field, max);
    cJSON *f = cJSON_CreateObject();
    if (f) {
        cJSON_AddStringToObject(f, "tenant", tenant);
        cJSON_AddStringToObject(f, field, secret);
    }
    commy_wire_message m;
    int rc = request(s, "authenticate", f, &m, 0);
    if (rc) {
        if (rc == COMMY_EAUTH || rc == COMMY_EEXPIRED) {
            pthread_mutex_lock(&s->mu);
            s->authed = 0;
            s->token[0] = '\0';
            pthread_mutex_unlock(&s->mu);
        }
        return rc;
    }
    /* reconnects authenticate with the session token the reply carries,
     * whatever the credential was */
    got_token(s, tenant, m.result, strcmp(field, "token") == 0 ? secret : NULL);
    commy_wire_message_free(&m);
    pthread_mutex_lock(&s->mu);
    s->ready = 1;
    pthread_mutex_unlock(&s->mu);
    return COMMY_OK;
}

int commy_session_authenticate(commy_session *s, const char *tenant, const char *api_key)
{
    return authenticate(s, tenant, "api_key", api_key ? api_key : "");
}

int commy_session_authenticate_token(commy_session *s, const char *tenant, const char *token)
{
    return authenticate(s, tenant, "token", token ? token : "");
}

int commy_session_authenticate_jwt(commy_session *s, const char *tenant, const char *jwt)
{
    return authenticate(s, tenant, "jwt", jwt ? jwt : "");
}

static int copy_out(const char *v, char *out, size_t cap, size_t *out_len, const char *what)
{
    size_t n = strlen(v);
    if (out_len) *out_len = n;
    if (!n) return commy__err(COMMY_ENOTFOUND, "the session has no %s: authenticate first", what);
    if (out && cap <= n) return commy__err(COMMY_ETOOSMALL, "the %s needs %zu bytes and a NUL; the buffer has %zu", what, n, cap);
    if (out) memcpy(out, v, n + 1);
    return COMMY_OK;
}

int commy_session_token(commy_session *s, char *out, size_t cap, size_t *out_len, int64_t *expires_at)
{
    if (!s) return commy__err(COMMY_EINVAL, "commy_session_token: session is NULL");
    pthread_mutex_lock(&s->mu);
    char tok[sizeof s->token];
    memcpy(tok, s->token, sizeof tok);
    if (expires_at) *expires_at = s->expires_at;
    pthread_mutex_unlock(&s->mu);
    return copy_out(tok, out, cap, out_len, "token");
}

int commy_session_client_id(commy_session *s, char *out, size_t cap, size_t *out_len)
{
    if (!s) return commy__err(COMMY_EINVAL, "commy_session_client_id: session is NULL");
    pthread_mutex_lock(&s->mu);
    char id[sizeof s->client_id];
    memcpy(id, s->client_id, sizeof id);
    pthread_mutex_unlock(&s->mu);
    return copy_out(id, out, cap, out_len, "client id");
}

int commy_session_refresh(commy_session *s)
{
    if (!s) return commy__err(COMMY_EINVAL, "commy_session_refresh: session is NULL");
    commy_wire_message m;
    int rc = request(s, "refresh", cJSON_CreateObject(), &m, 1);
    if (rc) return rc;
    got_token(s, NULL, m.result, NULL);
    commy_wire_message_free(&m);
    return COMMY_OK;
}

int commy_session_logout(commy_session *s)
{
    if (!s) return commy__err(COMMY_EINVAL, "commy_session_logout: session is NULL");
    int rc = request0(s, "logout", cJSON_CreateObject());
    if (rc) return rc;
    pthread_mutex_lock(&s->mu);
    s->authed = 0;
    OPENSSL_cleanse(s->token, sizeof s->token);
    s->token[0] = '\0';
    s->expires_at = 0;
    svc_detach_all(s, 0); /* the server closed them */
    pthread_mutex_unlock(&s->mu);
    return COMMY_OK;
}

int commy_session_revoke_client(uint32_t *out_rotated, commy_session *s, const char *client_id)
{
    if (!s || !client_id) return commy__err(COMMY_EINVAL, "commy_session_revoke_client: session and client_id are required");
    if (!client_id[0] || strlen(client_id) > COMMY_WIRE_NAME_MAX)
        return commy__err(COMMY_EINVAL, "commy_session_revoke_client: client_id must be 1 to %d bytes", COMMY_WIRE_NAME_MAX);
    cJSON *f = cJSON_CreateObject();
    if (f) cJSON_AddStringToObject(f, "client_id", client_id);
    commy_wire_message m;
    int rc = request(s, "revoke_client", f, &m, 1);
    if (rc) return rc;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m.result, "rotated");
    if (out_rotated) *out_rotated = cJSON_IsNumber(n) ? (uint32_t)n->valuedouble : 0;
    commy_wire_message_free(&m);
    return COMMY_OK;
}

/* ------------------------------------------------------------ services */

/* s->mu held: the services stop working remotely (logout, or the session
 * is going: forget != 0 also unlinks them from s, which is about to be
 * freed). Mapped ones keep their mapping until commy_service_close. */
static void svc_detach_all(commy_session *s, int forget)
{
    for (commy_service *v = s->services; v; v = v->next) {
        v->closed = 1;
        if (forget) v->s = NULL;
    }
    if (forget) s->services = NULL;
}

/* The remote backend, at the end of this file. */
static const struct commy__remote_ops remote_ops;

int commy_session_open_service(commy_service **out, commy_session *s, const char *name, int mode)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_session_open_service: out is NULL");
    *out = NULL;
    if (!s || !name) return commy__err(COMMY_EINVAL, "commy_session_open_service: session and name are required");
    if (mode != COMMY_SERVICE_LOCAL && mode != COMMY_SERVICE_REMOTE && mode != COMMY_SERVICE_AUTO)
        return commy__err(COMMY_EINVAL, "commy_session_open_service: mode %d is not LOCAL, REMOTE or AUTO", mode);
    if (strlen(name) > COMMY_WIRE_NAME_MAX) return commy__err(COMMY_EINVAL, "service name '%.80s' is too long", name);
    commy_service *svc = calloc(1, sizeof *svc);
    if (!svc) return commy__err(COMMY_ENOMEM, "out of memory for a service");
    svc->s = s;
    snprintf(svc->name, sizeof svc->name, "%s", name);
    int rc = COMMY_EINVAL;
    if (mode != COMMY_SERVICE_REMOTE) {
        cJSON *f = svc_fields(svc, NULL);
        if (f) cJSON_AddStringToObject(f, "mode", "local");
        commy_wire_message m;
        rc = request(s, "open_service", f, &m, 1);
        if (rc == COMMY_OK) {
            const cJSON *path = cJSON_GetObjectItemCaseSensitive(m.result, "path");
            if (cJSON_IsString(path) && strlen(path->valuestring) < sizeof svc->path) {
                snprintf(svc->path, sizeof svc->path, "%s", path->valuestring);
                commy_alloc_options ao;
                commy_alloc_options_init(&ao);
                ao.flags = 0; /* the server made it: it must exist */
                rc = commy_alloc_open(&svc->alloc, svc->path, &ao);
                /* writes that meet a retired file wait for our `rotated` (docs/sessions.md) */
                if (rc == COMMY_OK) commy__alloc_set_rotatable(svc->alloc, s->timeout_ms);
            } else {
                rc = commy__err(COMMY_EPROTO, "open_service: the server gave no usable path");
            }
            commy_wire_message_free(&m);
            if (rc == COMMY_OK) svc->mode = COMMY_SERVICE_LOCAL;
        }
        /* auto: fall back to remote when local is refused or cannot map */
        if (rc && mode == COMMY_SERVICE_LOCAL) {
            free(svc);
            return rc;
        }
        if (rc && (rc == COMMY_EDISCONNECTED || rc == COMMY_ETIMEDOUT || rc == COMMY_ENOTFOUND || rc == COMMY_EAUTH ||
                   rc == COMMY_EEXPIRED)) {
            free(svc);
            return rc;
        }
    }
    if (!svc->alloc) {
        cJSON *f = svc_fields(svc, NULL);
        if (f) cJSON_AddStringToObject(f, "mode", "remote");
        rc = request0(s, "open_service", f);
        if (rc == COMMY_OK) {
            char label[COMMY_WIRE_NAME_MAX + 300];
            snprintf(label, sizeof label, "%s/%s", s->host, svc->name);
            rc = commy__alloc_remote(&svc->alloc, &remote_ops, svc, label);
        }
        if (rc) {
            free(svc);
            return rc;
        }
        svc->mode = COMMY_SERVICE_REMOTE;
    }
    svc->current = svc->alloc;
    pthread_mutex_lock(&s->mu);
    svc->next = s->services;
    s->services = svc;
    pthread_mutex_unlock(&s->mu);
    *out = svc;
    return COMMY_OK;
}

int commy_service_mode(const commy_service *svc) { return svc ? svc->mode : 0; }

int commy_service_alloc(commy_alloc **out, commy_service *svc)
{
    if (!out) return commy__err(COMMY_EINVAL, "commy_service_alloc: out is NULL");
    *out = NULL;
    if (!svc) return commy__err(COMMY_EINVAL, "commy_service_alloc: service is NULL");
    if (svc->closed || !svc->s) return commy__err(COMMY_ECLOSED, "service '%s' is closed", svc->name);
    *out = svc->alloc;
    return COMMY_OK;
}

/* Makes sure the server sends "changed" for var; user != 0 also sets the
 * callback. *version receives the current version. */
static int subscribe(commy_service *svc, const char *var, int user, commy_change_fn fn, void *payload, uint32_t *version)
{
    commy_session *s = svc->s;
    if (!s || svc->closed) return commy__err(COMMY_ECLOSED, "service '%s' is closed", svc->name);
    if (!var || strlen(var) > COMMY_ROOT_NAME_MAX || !var[0])
        return commy__err(COMMY_EINVAL, "subscribe: the variable name must be 1 to %d bytes", COMMY_ROOT_NAME_MAX);
    pthread_mutex_lock(&s->mu);
    sub *u = sub_find(svc, var);
    if (u && user && u->user) {
        pthread_mutex_unlock(&s->mu);
        return commy__err(COMMY_EEXISTS, "already subscribed to '%s' of service '%s'", var, svc->name);
    }
    if (u && u->active) {
        if (user) u->user = 1, u->fn = fn, u->payload = payload;
        else u->wait = 1;
        if (version) *version = u->version;
        pthread_mutex_unlock(&s->mu);
        return COMMY_OK;
    }
    pthread_mutex_unlock(&s->mu);
    commy_wire_message m;
    int rc = request(s, "subscribe", svc_fields(svc, var), &m, 1);
    if (rc == COMMY_EEXISTS) rc = COMMY_OK, memset(&m, 0, sizeof m); /* raced with another thread */
    if (rc) return rc;
    const cJSON *v = m.result ? cJSON_GetObjectItemCaseSensitive(m.result, "version") : NULL;
    pthread_mutex_lock(&s->mu);
    u = sub_find(svc, var);
    if (!u && (u = calloc(1, sizeof *u))) {
        snprintf(u->var, sizeof u->var, "%s", var);
        u->next = svc->subs;
        svc->subs = u;
    }
    if (u) {
        if (cJSON_IsNumber(v)) u->version = (uint32_t)v->valuedouble;
        u->active = 1;
        if (user) u->user = 1, u->fn = fn, u->payload = payload;
        else u->wait = 1;
        if (version) *version = u->version;
    }
    pthread_mutex_unlock(&s->mu);
    commy_wire_message_free(&m);
    return u ? COMMY_OK : commy__err(COMMY_ENOMEM, "out of memory for a subscription");
}

int commy_service_subscribe(commy_service *svc, const char *var, commy_change_fn fn, void *payload)
{
    if (!svc || !fn) return commy__err(COMMY_EINVAL, "commy_service_subscribe: service and fn are required");
    return subscribe(svc, var, 1, fn, payload, NULL);
}

int commy_service_unsubscribe(commy_service *svc, const char *var)
{
    if (!svc || !var) return commy__err(COMMY_EINVAL, "commy_service_unsubscribe: service and var are required");
    commy_session *s = svc->s;
    if (!s || svc->closed) return commy__err(COMMY_ECLOSED, "service '%s' is closed", svc->name);
    pthread_mutex_lock(&s->mu);
    sub *u = sub_find(svc, var);
    int found = u && u->user, keep = u && u->wait;
    if (found) {
        u->user = 0;
        u->fn = NULL;
        u->payload = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!found) return commy__err(COMMY_ENOTFOUND, "not subscribed to '%s' of service '%s'", var, svc->name);
    if (keep) return COMMY_OK; /* a remote wait still uses it */
    int rc = request0(s, "unsubscribe", svc_fields(svc, var));
    pthread_mutex_lock(&s->mu);
    for (sub **pp = &svc->subs; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            free(u);
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return rc == COMMY_EDISCONNECTED ? COMMY_OK : rc; /* no connection: nothing to undo on the server */
}

void commy_service_close(commy_service *svc)
{
    if (!svc) return;
    commy_session *s = svc->s;
    if (s) {
        pthread_mutex_lock(&s->mu);
        int was_closed = svc->closed;
        for (commy_service **pp = &s->services; *pp; pp = &(*pp)->next)
            if (*pp == svc) {
                *pp = svc->next;
                break;
            }
        pthread_mutex_unlock(&s->mu);
        if (!was_closed && s->connected) request0(s, "close_service", svc_fields(svc, NULL));
    }
    for (sub *u = svc->subs, *n; u; u = n) {
        n = u->next;
        free(u);
    }
    /* handles that followed a rotation left one reference each on the
     * mapping they came from: give those back with the mappings */
    if (svc->alloc) commy__alloc_forget_forwarded(svc->alloc);
    for (int i = 0; i < svc->nretired; i++) {
        commy__alloc_forget_forwarded(svc->retired[i]);
        commy_alloc_close(svc->retired[i]);
    }
    free(svc->retired);
    if (svc->current && svc->current != svc->alloc) commy_alloc_close(svc->current);
    commy_alloc_close(svc->alloc);
    free(svc);
}

/* Local mode: the server moved the service to path (a revocation rotated
 * it, or a restarted server made a new file). Map the new file and point
 * the old mapping at it; container handles follow on their next call
 * (core/container.c). On the network thread, s->mu held. */
static void switch_file(commy_session *s, commy_service *svc, const char *path)
{
    commy_alloc_options ao;
    commy_alloc_options_init(&ao);
    ao.flags = 0;
    commy_alloc *na = NULL;
    if (commy_alloc_open(&na, path, &ao) != COMMY_OK) {
        snprintf(s->last_error, sizeof s->last_error, "service '%s' moved to a file that cannot be mapped: %s",
                 svc->name, commy_error_last()->message);
        return;
    }
    commy__alloc_set_rotatable(na, s->timeout_ms);
    commy_alloc **r = realloc(svc->retired, (size_t)(svc->nretired + 1) * sizeof *r);
    if (!r) {
        commy_alloc_close(na);
        return;
    }
    svc->retired = r;
    commy_alloc *old = svc->current;
    /* the user's alloc stays the entry point: it forwards to the newest */
    if (old != svc->alloc) svc->retired[svc->nretired++] = old;
    snprintf(svc->path, sizeof svc->path, "%s", path);
    svc->current = na;
    commy__alloc_forward(svc->alloc, na);
    if (old != svc->alloc) commy__alloc_forward(old, na);
}

/* --------------------------------------------------- the remote backend */

static commy_session *svc_session(commy_service *svc, struct commy__handle *h)
{
    if (!svc->s || svc->closed) {
        commy__err(COMMY_ECLOSED, "container '%s': service '%s' is closed", h->name, svc->name);
        return NULL;
    }
    return svc->s;
}

/* The typed JSON of (bytes, len) as a value of t, or NULL with EINVAL. */
static cJSON *typed(commy_type t, const void *p, size_t len, const char *what, struct commy__handle *h, int *rc)
{
    char tn[32];
    if (!p && len) {
        *rc = commy__err(COMMY_EINVAL, "%s for '%s' is NULL with length %zu", what, h->name, len);
        return NULL;
    }
    cJSON *j = commy_wire_value_to_json(t, p ? p : "", len);
    if (!j) {
        int c = t == COMMY_T_STR ? commy__value_check(t, p ? p : "", len, what) : COMMY_OK;
        *rc = c ? c
                : commy__err(COMMY_EINVAL, "%s for '%s' is not a valid %s value of %zu bytes%s", what, h->name,
                             commy_type_name(tn, sizeof tn, t), len,
                             t == COMMY_T_STR ? " (a str with a NUL byte cannot travel)" : "");
    }
    return j;
}

/* Copies a typed JSON value out with the output convention. */
static int put_out(const cJSON *j, commy_type t, void *out, size_t cap, size_t *out_len, int nul, size_t *need)
{
    commy_wire_value v;
    char msg[200];
    int rc = commy_wire_value_from_json(&v, j, t, msg, sizeof msg);
    if (rc) return commy__err(COMMY_EPROTO, "the server's value does not decode: %s", msg);
    if (out_len) *out_len = v.len;
    if (need) *need = v.len;
    if (out && cap < v.len) rc = COMMY_ETOOSMALL;
    else if (out) {
        memcpy(out, v.data, v.len);
        if (nul && cap > v.len) ((char *)out)[v.len] = '\0';
    }
    commy_wire_value_free(&v);
    return rc;
}

static int too_small(struct commy__handle *h, size_t need, size_t cap)
{
    return commy__err(COMMY_ETOOSMALL, "'%s': the value needs %zu bytes, the buffer has %zu", h->name, need, cap);
}

static int dec_u64(uint64_t *out, const cJSON *res, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(res, key);
    if (cJSON_IsString(j)) {
        char *e;
        errno = 0;
        unsigned long long v = strtoull(j->valuestring, &e, 10);
        if (!*e && !errno) return *out = v, COMMY_OK;
    } else if (cJSON_IsNumber(j) && j->valuedouble >= 0) {
        return *out = (uint64_t)j->valuedouble, COMMY_OK;
    }
    return commy__err(COMMY_EPROTO, "the server's reply lacks a number \"%s\"", key);
}

static cJSON *index_json(uint64_t i)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, i);
    return cJSON_CreateString(b);
}

static int is_keyed(uint32_t k) { return k == COMMY_KIND_MAP || k == COMMY_KIND_OMAP || k == COMMY_KIND_SET || k == COMMY_KIND_OSET; }
static int has_values(uint32_t k) { return k == COMMY_KIND_MAP || k == COMMY_KIND_OMAP; }

static int r_open(void *ctx, struct commy__handle *h, uint32_t flags)
{
    commy_service *svc = ctx;
    commy_session *s = svc_session(svc, h);
    if (!s) return COMMY_ECLOSED;
    cJSON *f = svc_fields(svc, h->name);
    if (!f) return commy__err(COMMY_ENOMEM, "out of memory");
    char tn[32];
    cJSON_AddStringToObject(f, "kind", commy_kind_name(h->kind));
    if (h->kind != COMMY_KIND_STR && h->ktype != COMMY_T_ANY)
        cJSON_AddStringToObject(f, "key_type", commy_type_name(tn, sizeof tn, h->ktype));
    if (has_values(h->kind) && h->vtype != COMMY_T_ANY)
        cJSON_AddStringToObject(f, "value_type", commy_type_name(tn, sizeof tn, h->vtype));
    cJSON_AddStringToObject(f, "flags", (flags & COMMY_OPEN_EXISTING) ? "existing" : (flags & COMMY_OPEN_EXCL) ? "excl" : "create");
    commy_wire_message m;
    int rc = request(s, "declare", f, &m, 1);
    if (rc) return rc;
    const cJSON *kt = cJSON_GetObjectItemCaseSensitive(m.result, "key_type");
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(m.result, "value_type");
    if (h->kind == COMMY_KIND_STR) h->ktype = COMMY_T_STR;
    else if (!cJSON_IsString(kt) || commy_wire_type_parse(&h->ktype, kt->valuestring))
        rc = commy__err(COMMY_EPROTO, "declare: the server's reply has no key_type");
    if (!rc && has_values(h->kind) && (!cJSON_IsString(vt) || commy_wire_type_parse(&h->vtype, vt->valuestring)))
        rc = commy__err(COMMY_EPROTO, "declare: the server's reply has no value_type");
    if (!has_values(h->kind)) h->vtype = COMMY_T_ANY;
    commy_wire_message_free(&m);
    return rc;
}

static int r_version(void *ctx, struct commy__handle *h, uint32_t *out)
{
    commy_service *svc = ctx;
    if (!svc_session(svc, h)) return COMMY_ECLOSED;
    return subscribe(svc, h->name, 0, NULL, NULL, out);
}

static int r_wait(void *ctx, struct commy__handle *h, uint32_t seen, int32_t timeout_ms)
{
    commy_service *svc = ctx;
    commy_session *s = svc_session(svc, h);
    if (!s) return COMMY_ECLOSED;
    uint32_t cur;
    int rc = subscribe(svc, h->name, 0, NULL, NULL, &cur);
    if (rc) return rc;
    if (cur != seen) return COMMY_OK;
    if (timeout_ms == 0) return commy__err(COMMY_ETIMEDOUT, "container '%s' did not change", h->name);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms > 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    rc = COMMY_ETIMEDOUT;
    for (;;) {
        sub *u = sub_find(svc, h->name);
        if (!u || svc->closed || s->stop) {
            rc = COMMY_ECLOSED;
            break;
        }
        if (u->version != seen) {
            rc = COMMY_OK;
            break;
        }
        /* woken by "changed" pushes (and renewed subscriptions); no polling */
        int w = timeout_ms > 0 ? pthread_cond_timedwait(&s->cv, &s->mu, &deadline) : pthread_cond_wait(&s->cv, &s->mu);
        if (w == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc == COMMY_ETIMEDOUT)
        return commy__err(COMMY_ETIMEDOUT, "container '%s' did not change within %" PRId32 " ms", h->name, timeout_ms);
    if (rc == COMMY_ECLOSED) return commy__err(COMMY_ECLOSED, "service '%s' closed while waiting", svc->name);
    return COMMY_OK;
}

/* range: entries of a map or set; the reply's result in *m. */
static int fetch_range(commy_session *s, commy_service *svc, struct commy__handle *h, const void *from, size_t flen,
                       uint64_t skip, uint32_t limit, commy_wire_message *m)
{
    int rc = COMMY_OK;
    cJSON *f = svc_fields(svc, h->name);
    if (!f) return commy__err(COMMY_ENOMEM, "out of memory");
    if (from) {
        cJSON *k = typed(h->ktype, from, flen, "key", h, &rc);
        if (!k) {
            cJSON_Delete(f);
            return rc;
        }
        cJSON_AddItemToObject(f, "from", k);
    }
    if (skip) cJSON_AddItemToObject(f, "skip", index_json(skip));
    cJSON_AddNumberToObject(f, "limit", limit);
    return request(s, "range", f, m, 1);
}

/* Copies entry e ([key, value] or key) out; ETOOSMALL stores both lengths. */
static int entry_out(struct commy__handle *h, const cJSON *e, struct commy__rop *op)
{
    const cJSON *kj = has_values(h->kind) ? cJSON_GetArrayItem(e, 0) : e;
    const cJSON *vj = has_values(h->kind) ? cJSON_GetArrayItem(e, 1) : NULL;
    size_t kneed = 0, vneed = 0;
    int rk = put_out(kj, h->ktype, NULL, 0, op->klen_out, 0, &kneed);
    if (rk) return rk;
    int rv = vj ? put_out(vj, h->vtype, NULL, 0, op->out_len, 0, &vneed) : COMMY_OK;
    if (rv) return rv;
    if ((op->kout && op->kcap < kneed) || (vj && op->out && op->cap < vneed))
        return commy__err(COMMY_ETOOSMALL, "'%s': the entry needs %zu key and %zu value bytes", h->name, kneed, vneed);
    if (op->kout) put_out(kj, h->ktype, op->kout, op->kcap, NULL, 0, NULL);
    if (vj && op->out) put_out(vj, h->vtype, op->out, op->cap, NULL, 0, NULL);
    return COMMY_OK;
}

static int r_ordered(commy_session *s, commy_service *svc, struct commy__handle *h, struct commy__rop *op)
{
    if (h->kind != COMMY_KIND_OMAP && h->kind != COMMY_KIND_OSET) return commy__remote_unsupported(h->a, op->fn);
    commy_wire_message m;
    int rc;
    const cJSON *entries, *e;
    for (int tries = 0; tries < 4; tries++) {
        uint64_t skip = 0;
        if (op->op == COMMY__ROP_LAST) {
            /* the protocol ranges forwards only: count, then fetch the last */
            cJSON *f = svc_fields(svc, h->name);
            rc = request(s, "len", f, &m, 1);
            uint64_t n = 0;
            if (!rc) rc = dec_u64(&n, m.result, "len");
            commy_wire_message_free(&m);
            if (rc) return rc;
            if (n == 0) return commy__err(COMMY_EEMPTY, "ordered container '%s' is empty", h->name);
            skip = n - 1;
        }
        int lower = op->op == COMMY__ROP_LOWER || op->op == COMMY__ROP_UPPER;
        if (lower && !op->key) return commy__err(COMMY_EINVAL, "%s: key is NULL", op->fn);
        rc = fetch_range(s, svc, h, lower ? op->key : NULL, op->klen, skip, op->op == COMMY__ROP_UPPER ? 2 : 1, &m);
        if (rc) return rc;
        entries = cJSON_GetObjectItemCaseSensitive(m.result, "entries");
        e = cJSON_GetArrayItem(entries, 0);
        if (op->op == COMMY__ROP_UPPER && e) {
            /* skip the entry equal to the key itself */
            const cJSON *kj = has_values(h->kind) ? cJSON_GetArrayItem(e, 0) : e;
            commy_wire_value kv;
            if (commy_wire_value_from_json(&kv, kj, h->ktype, NULL, 0) == COMMY_OK) {
                char buf1[8], buf2[8];
                const void *a = commy__key_canon(h->ktype, kv.data, kv.len, buf1);
                const void *b = commy__key_canon(h->ktype, op->key, op->klen, buf2);
                if (kv.len == op->klen && memcmp(a, b, kv.len) == 0) e = cJSON_GetArrayItem(entries, 1);
                commy_wire_value_free(&kv);
            }
        }
        if (e || op->op != COMMY__ROP_LAST) break;
        commy_wire_message_free(&m); /* it shrank meanwhile: count again */
    }
    if (!e) {
        commy_wire_message_free(&m);
        if (op->op == COMMY__ROP_FIRST || op->op == COMMY__ROP_LAST)
            return commy__err(COMMY_EEMPTY, "ordered container '%s' is empty", h->name);
        return commy__err(COMMY_ENOTFOUND, "ordered container '%s' has no key %s the one given", h->name,
                          op->op == COMMY__ROP_LOWER ? "at or above" : "above");
    }
    rc = entry_out(h, e, op);
    commy_wire_message_free(&m);
    return rc;
}

/* Cursors on a remote container: pos counts the entries already returned,
 * version is the container's at the start (a change gives ECONCURRENT, as
 * in the core). */
static int r_next(commy_session *s, commy_service *svc, struct commy__handle *h, struct commy__rop *op)
{
    commy_cursor *c = op->cursor;
    if (!c) return commy__err(COMMY_EINVAL, "%s: cursor is NULL", op->fn);
    if (!is_keyed(h->kind)) return commy__remote_unsupported(h->a, op->fn);
    if (c->state == 2) return COMMY_DONE;
    if (c->state > 2) return commy__err(COMMY_EINVAL, "'%s': the cursor is not one of its cursors", h->name);
    commy_wire_message m;
    int rc = fetch_range(s, svc, h, NULL, 0, c->state ? c->pos : 0, 1, &m);
    if (rc) return rc;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(m.result, "version");
    uint32_t v = cJSON_IsNumber(ver) ? (uint32_t)ver->valuedouble : 0;
    if (c->state == 1 && v != c->version) {
        commy_wire_message_free(&m);
        return commy__err(COMMY_ECONCURRENT, "'%s' changed while a cursor was iterating it; start again", h->name);
    }
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m.result, "entries"), 0);
    if (!e) {
        commy_wire_message_free(&m);
        c->state = 2;
        c->version = v;
        return COMMY_DONE;
    }
    rc = entry_out(h, e, op);
    commy_wire_message_free(&m);
    if (rc) return rc;
    c->pos = (c->state ? c->pos : 0) + 1;
    c->version = v;
    c->state = 1;
    return COMMY_ROW;
}

static int r_call(void *ctx, struct commy__handle *h, struct commy__rop *op)
{
    commy_service *svc = ctx;
    commy_session *s = svc_session(svc, h);
    if (!s) return COMMY_ECLOSED;
    uint32_t kind = h->kind;
    commy_type vt = has_values(kind) ? h->vtype : h->ktype;
    int rc = COMMY_OK;
    switch (op->op) {
    case COMMY__ROP_FIRST: case COMMY__ROP_LAST: case COMMY__ROP_LOWER: case COMMY__ROP_UPPER:
        return r_ordered(s, svc, h, op);
    case COMMY__ROP_NEXT:
        return r_next(s, svc, h, op);
    case COMMY__ROP_SEEK:
        if (!op->cursor) return commy__err(COMMY_EINVAL, "%s: cursor is NULL", op->fn);
        if (op->key)
            return commy__err(COMMY_ENOTSUP, "%s from a key is not available on a remote service ('%s'); use "
                              "lower_bound, or a cursor from the start", op->fn, h->a->path);
        memset(op->cursor, 0, sizeof *op->cursor);
        return COMMY_OK;
    case COMMY__ROP_RESERVE:
        return COMMY_OK; /* capacity is the server's business */
    case COMMY__ROP_POP_WAIT: {
        /* pop; when empty, sleep on the version the server pushes, and again */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            uint32_t ver;
            if ((rc = r_version(ctx, h, &ver))) return rc;
            struct commy__rop pop = *op;
            pop.op = COMMY__ROP_POP;
            rc = r_call(ctx, h, &pop);
            if (rc != COMMY_EEMPTY) return rc;
            int32_t left = op->timeout_ms;
            if (left > 0) {
                clock_gettime(CLOCK_MONOTONIC, &t1);
                int64_t spent = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
                if (spent >= left) return commy__err(COMMY_ETIMEDOUT, "deque '%s' stayed empty for %d ms", h->name, op->timeout_ms);
                left -= (int32_t)spent;
            }
            if (left == 0) return commy__err(COMMY_ETIMEDOUT, "deque '%s' is empty", h->name);
            rc = r_wait(ctx, h, ver, left);
            if (rc && rc != COMMY_ETIMEDOUT) return rc;
        }
    }
    default:
        break;
    }
    const char *wop = NULL;
    cJSON *f = svc_fields(svc, h->name);
    if (!f) return commy__err(COMMY_ENOMEM, "out of memory");
    cJSON *j;
    /* the key, for the keyed kinds */
    if (op->key || (is_keyed(kind) && (op->op == COMMY__ROP_GET || op->op == COMMY__ROP_SET || op->op == COMMY__ROP_REMOVE ||
                                       op->op == COMMY__ROP_ADD || op->op == COMMY__ROP_CONTAINS))) {
        if (!(j = typed(h->ktype, op->key, op->klen, "key", h, &rc))) goto fail;
        cJSON_AddItemToObject(f, "key", j);
    }
    if (op->has_val) {
        if (!(j = typed(vt, op->val, op->vlen, "value", h, &rc))) goto fail;
        cJSON_AddItemToObject(f, "value", j);
    }
    if (op->has_index) cJSON_AddItemToObject(f, "index", index_json(op->index));
    if (kind == COMMY_KIND_DEQUE && (op->op == COMMY__ROP_PUSH || op->op == COMMY__ROP_POP ||
                                     (op->op == COMMY__ROP_GET && !op->has_index)))
        cJSON_AddStringToObject(f, "end", op->front ? "front" : "back");
    switch (op->op) {
    case COMMY__ROP_GET: wop = "get"; break;
    case COMMY__ROP_SET: wop = "set"; break;
    case COMMY__ROP_PUSH: wop = "push"; break;
    case COMMY__ROP_POP: wop = "pop"; break;
    case COMMY__ROP_INSERT: wop = "insert"; break;
    case COMMY__ROP_APPEND: wop = "append"; break;
    case COMMY__ROP_REMOVE: wop = "remove"; break;
    case COMMY__ROP_CLEAR: wop = "clear"; break;
    case COMMY__ROP_ADD: wop = "add"; break;
    case COMMY__ROP_CONTAINS: wop = "contains"; break;
    case COMMY__ROP_LEN: case COMMY__ROP_CAPACITY: wop = "len"; break;
    case COMMY__ROP_CAS: {
        char b[24];
        snprintf(b, sizeof b, "%" PRId64, op->i1);
        cJSON_AddStringToObject(f, "expected", b);
        snprintf(b, sizeof b, "%" PRId64, op->i2);
        cJSON_AddStringToObject(f, "desired", b);
        wop = "cas";
        break;
    }
    case COMMY__ROP_FETCH_ADD: {
        char b[24];
        snprintf(b, sizeof b, "%" PRId64, op->i1);
        cJSON_AddStringToObject(f, "delta", b);
        wop = "fetch_add";
        break;
    }
    default:
        cJSON_Delete(f);
        return commy__remote_unsupported(h->a, op->fn);
    }
    commy_wire_message m;
    rc = request(s, wop, f, &m, 1);
    if (rc) return rc;
    const cJSON *res = m.result;
    switch (op->op) {
    case COMMY__ROP_GET: case COMMY__ROP_POP: {
        size_t need = 0;
        rc = put_out(cJSON_GetObjectItemCaseSensitive(res, "value"), vt, op->out, op->cap, op->out_len,
                     kind == COMMY_KIND_STR, &need);
        if (rc == COMMY_ETOOSMALL) rc = too_small(h, need, op->cap);
        break;
    }
    case COMMY__ROP_ADD: case COMMY__ROP_CONTAINS: {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(res, op->op == COMMY__ROP_ADD ? "added" : "present");
        if (!cJSON_IsBool(b)) rc = commy__err(COMMY_EPROTO, "%s: the reply lacks a boolean", wop);
        else if (op->out_flag) *op->out_flag = cJSON_IsTrue(b);
        break;
    }
    case COMMY__ROP_LEN: case COMMY__ROP_CAPACITY: {
        uint64_t n = 0;
        rc = dec_u64(&n, res, "len");
        if (!rc && op->out_u64) *op->out_u64 = n;
        break;
    }
    case COMMY__ROP_CAS: case COMMY__ROP_FETCH_ADD: {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(res, "old");
        char *e = NULL;
        long long v = cJSON_IsString(o) ? strtoll(o->valuestring, &e, 10) : 0;
        if (!e || *e) rc = commy__err(COMMY_EPROTO, "%s: the reply lacks \"old\"", wop);
        else if (op->out_i64) *op->out_i64 = v;
        break;
    }
    default:
        break;
    }
    commy_wire_message_free(&m);
    return rc;
fail:
    cJSON_Delete(f);
    return rc;
}

static const struct commy__remote_ops remote_ops = {
    .open = r_open,
    .call = r_call,
    .version = r_version,
    .wait = r_wait,
    .release = NULL,
};
