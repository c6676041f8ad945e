/* commy-server: tenants, services, auth and the WebSocket protocol
 * (docs/protocol.md) on libwebsockets.
 *
 * Threads: libwebsockets runs on the main thread and owns every connection.
 * One watcher thread per subscribed variable sleeps in the container's wait
 * call (a futex in the mapped file) and queues "changed" pushes. All shared
 * state sits behind S.lock; the watchers wake the service loop with
 * lws_cancel_service, which is the one lws call that is safe from another
 * thread. */
#include "mirror.h"
#include "json_arena.h"
#include "ops.h"
#include "server.h"
#include "../core/internal.h" /* commy__alloc_retired: a rotation that died half-way */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPENS 32
#define MAX_SUBS 128
#define MAX_PEND 64 /* writes of one connection waiting for the mirror at once */
#define EXPIRING_NOTICE_S 60

typedef struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of room, then the frame */
} outmsg;

struct service;

typedef struct conn {
    struct conn *next;
    struct lws *wsi;
    char peer[64];
    int loopback;
    int authed;
    srv_token tok;
    unsigned char token_hash[32];
    int warned_expiring;
    struct {
        struct service *svc;
        int local;
    } opens[MAX_OPENS];
    int nopens;
    struct {
        struct service *svc;
        char var[SRV_NAME_MAX];
    } subs[MAX_SUBS];
    int nsubs;
    outmsg *qhead, *qtail;
    int qlen;
    time_t last_progress;
    time_t last_seen; /* the last frame or pong from the peer */
    time_t last_ping;
    int ping_due;
    int want_write;
    int kill;      /* close after the queue drains (revoked, too big) */
    int kill_now;  /* cut at once (slow consumer) */
    int kill_sent; /* the async kill was scheduled */
    char kill_reason[32];
    /* an authenticate with api_key or jwt being checked by the auth threads
     * (server/authn.c): every later frame waits behind it */
    srv_authn *authn;
    commy_wire_request *authn_req;
    int authn_ready;       /* the check is done: the loop answers it */
    struct conn *zombie;   /* closed while checked: on S.zombies until the check ends */
    srv_authn_result pre;  /* the outcome op_authenticate answers with */
    char *rx;
    size_t rxlen;
    size_t rxcap;
    struct conn *ra_next; /* on S.ra_head: a TLS record was read since the last pass */
    int ra_queued;
    int rx_binary, rx_toobig;
    /* a request waiting for the mirror (mirror.h): later frames wait behind it */
    const char *cur_frame;
    size_t cur_len;
    struct {
        uint64_t ticket, id;
        cJSON *result; /* the reply prepared for a deferred open */
        char *reply;   /* the reply, once done (sent when those before it are) */
    } pend[MAX_PEND];
    int npend;
    outmsg *bhead, *btail;
    int rx_paused, resume, resuming;
} conn;

typedef struct watch {
    struct watch *next;
    struct service *svc;
    char var[SRV_NAME_MAX];
    srv_var wh; /* the watcher thread's handle: only it waits on it */
    srv_var rh; /* read under S.lock for snapshots */
    uint32_t last_pushed;
    int nsubs;
    int stop;
    int failed; /* wait errors seen */
} watch;

typedef struct service {
    struct service *next;
    char tenant[SRV_NAME_MAX];
    char name[SRV_NAME_MAX];
    char file[128];
    char path[PATH_MAX];
    int persistent;
    commy_alloc *alloc;
    srv_var_cache *vars; /* open variables of alloc (ops.h) */
    int refs;
    watch *watches;
} service;

static struct {
    srv_config cfg;
    srv_store *store;
    struct lws_context *ctx;
    pthread_t lws_thread;
    pthread_mutex_t lock;
    conn *conns;
    int nconns;
    conn *zombies; /* closed connections whose authenticate the auth threads still check */
    service *services;
    conn *ra_head; /* connections to look at for records read ahead (ra_pass) */
    lws_sorted_usec_list_t tick;
    volatile sig_atomic_t stop;
    /* metrics */
    uint64_t connections_total, messages_in, messages_out, bytes_in, bytes_out;
    uint64_t auth_ok, auth_failures, slow_cut, pushes;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- logging ---- */

const char *srv_log_time(char *out, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return out;
}

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    char when[40];
    cJSON_AddStringToObject(o, "ts", srv_log_time(when, sizeof when));
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "msg", text);
    char *line = cJSON_PrintUnformatted(o);
    if (line) fprintf(stderr, "%s\n", line);
    free(line);
    cJSON_Delete(o);
}

static void lws_emit(int level, const char *line)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", line);
    size_t n = strlen(copy);
    while (n && (copy[n - 1] == '\n' || copy[n - 1] == '\r')) copy[--n] = '\0';
    srv_log(level == LLL_ERR ? "error" : "warn", "lws", "%s", copy);
}

/* ---- the outbound queue (S.lock held) ---- */

static void wake(conn *c)
{
    c->want_write = 1;
    if (pthread_equal(pthread_self(), S.lws_thread)) {
        if (c->kill_now && !c->kill_sent) {
            c->kill_sent = 1;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        } else {
            lws_callback_on_writable(c->wsi);
        }
    } else {
        lws_cancel_service(S.ctx);
    }
}

/* Queues a copy of the frame's len bytes for c. A queue past the cap
 * marks c as a slow consumer: it is cut, and nobody else waits for it. */
static void enqueue_bytes(conn *c, const char *frame, size_t len)
{
    if (c->kill_now) return;
    if (c->qlen >= S.cfg.outbound_queue_cap) {
        c->kill_now = 1;
        snprintf(c->kill_reason, sizeof c->kill_reason, "slow_consumer");
        S.slow_cut++;
        srv_log("warn", "slow_consumer", "peer %s: outbound queue passed %d frames; cutting it", c->peer,
                S.cfg.outbound_queue_cap);
        wake(c);
        return;
    }
    outmsg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return;
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, frame, len);
    if (c->qtail) c->qtail->next = m;
    else {
        c->qhead = m;
        c->last_progress = time(NULL); /* the stall clock starts when the queue stops being empty */
    }
    c->qtail = m;
    c->qlen++;
    wake(c);
}

/* Queues frame (a malloc'd string, consumed) for c. */
static void enqueue(conn *c, char *frame)
{
    if (!frame) return;
    enqueue_bytes(c, frame, strlen(frame));
    free(frame);
}

static void queue_free(conn *c)
{
    while (c->qhead) {
        outmsg *m = c->qhead;
        c->qhead = m->next;
        free(m);
    }
    c->qtail = NULL;
    c->qlen = 0;
}

/* ---- services and watchers (S.lock held) ---- */

static int notify(watch *w);

static void *watch_main(void *arg)
{
    watch *w = arg;
    pthread_mutex_lock(&S.lock);
    for (;;) {
        if (w->stop) break;
        uint32_t seen = w->last_pushed;
        pthread_mutex_unlock(&S.lock);
        /* the timeout only bounds how long a stopped watcher lingers; changes
         * wake it at once through the container's futex */
        int rc = srv_var_wait(&w->wh, seen, 1000);
        pthread_mutex_lock(&S.lock);
        if (w->stop) break;
        if (rc == COMMY_OK) notify(w);
        else if (rc != COMMY_ETIMEDOUT) {
            /* the root was removed under us, say: log it once, then wait for
             * the subscribers to leave without spinning */
            if (!w->failed++)
                srv_log("error", "watch", "service %s variable %s: wait failed: %s", w->svc->name, w->var,
                        commy_strerror(rc));
            struct timespec ts = {1, 0};
            pthread_mutex_unlock(&S.lock);
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&S.lock);
        }
    }
    pthread_mutex_unlock(&S.lock);
    srv_var_close(&w->wh);
    srv_var_close(&w->rh);
    free(w);
    return NULL;
}

static watch *watch_find(service *s, const char *var)
{
    for (watch *w = s->watches; w; w = w->next)
        if (strcmp(w->var, var) == 0) return w;
    return NULL;
}

static int watch_start(watch **out, service *s, const char *var, char *msg, size_t cap)
{
    watch *w = calloc(1, sizeof *w);
    if (!w) return snprintf(msg, cap, "out of memory"), COMMY_ENOMEM;
    w->svc = s;
    snprintf(w->var, sizeof w->var, "%s", var);
    int rc = srv_var_open(&w->wh, s->alloc, var);
    if (!rc) rc = srv_var_open(&w->rh, s->alloc, var);
    if (!rc) rc = srv_var_version(&w->last_pushed, &w->rh);
    if (rc) {
        snprintf(msg, cap, rc == COMMY_ENOTFOUND ? "variable '%s' not found" : "cannot watch '%s': %s", var,
                 commy_error_last()->message);
        srv_var_close(&w->wh);
        srv_var_close(&w->rh);
        free(w);
        return rc;
    }
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&th, &attr, watch_main, w) != 0) {
        pthread_attr_destroy(&attr);
        srv_var_close(&w->wh);
        srv_var_close(&w->rh);
        free(w);
        return snprintf(msg, cap, "cannot start a watcher thread"), COMMY_ENOMEM;
    }
    pthread_attr_destroy(&attr);
    w->next = s->watches;
    s->watches = w;
    *out = w;
    return COMMY_OK;
}

/* Unlinks w; its thread frees it when it wakes. */
static void watch_stop(watch *w)
{
    service *s = w->svc;
    for (watch **p = &s->watches; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    w->stop = 1;
}

/* Sends a "changed" push to every subscriber of w if the variable's version
 * moved since the last push. Called by remote writes and by the watcher, both
 * under S.lock, which gives each service one order of pushes. */
static int notify(watch *w)
{
    uint32_t v0, v1;
    cJSON *fields = NULL;
    for (int tries = 0; tries < 8; tries++) {
        cJSON_Delete(fields);
        fields = cJSON_CreateObject();
        if (!fields || srv_var_version(&v0, &w->rh)) break;
        if (v0 == w->last_pushed) {
            cJSON_Delete(fields);
            return 0;
        }
        if (srv_var_snapshot(fields, &w->rh) || srv_var_version(&v1, &w->rh)) break;
        if (v0 != v1) continue; /* a writer moved it while we read: read again */
        w->last_pushed = v0;
        cJSON_AddStringToObject(fields, "service", w->svc->name);
        cJSON_AddStringToObject(fields, "var", w->var);
        cJSON_AddNumberToObject(fields, "version", v0);
        char *frame = commy_wire_push_build("changed", fields);
        fields = NULL;
        if (!frame) return 0;
        size_t flen = strlen(frame); /* printed once, copied into each subscriber's queue */
        for (conn *c = S.conns; c; c = c->next)
            for (int i = 0; i < c->nsubs; i++)
                if (c->subs[i].svc == w->svc && strcmp(c->subs[i].var, w->var) == 0) {
                    enqueue_bytes(c, frame, flen);
                    S.pushes++;
                }
        free(frame);
        return 1;
    }
    cJSON_Delete(fields);
    return 0;
}

static service *service_find(const char *tenant, const char *name)
{
    for (service *s = S.services; s; s = s->next)
        if (strcmp(s->tenant, tenant) == 0 && strcmp(s->name, name) == 0) return s;
    return NULL;
}

static int tenant_dir(char *out, size_t cap, const char *tenant)
{
    char top[PATH_MAX];
    if ((size_t)snprintf(top, sizeof top, "%s/tenants", S.cfg.data_root) >= sizeof top) return COMMY_EINVAL;
    if (mkdir(top, 0700) != 0 && errno != EEXIST) return COMMY_EIO;
    if ((size_t)snprintf(out, cap, "%s/%s", top, tenant) >= cap) return COMMY_EINVAL;
    if (mkdir(out, 0700) != 0 && errno != EEXIST) return COMMY_EIO;
    chmod(out, 0700);
    return COMMY_OK;
}

/* A service file under a fresh 128-bit random name. */
static int new_file(char *file, size_t fcap, char *path, size_t pcap, const char *tenant, commy_alloc **out)
{
    char dir[PATH_MAX], hex[33];
    int rc = tenant_dir(dir, sizeof dir, tenant);
    if (rc) return rc;
    if (srv_auth_random_hex(hex, 16)) return COMMY_EIO;
    snprintf(file, fcap, "%s.commy", hex);
    if ((size_t)snprintf(path, pcap, "%s/%s", dir, file) >= pcap) return COMMY_EINVAL;
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = COMMY_ALLOC_CREATE | COMMY_ALLOC_EXCL;
    rc = commy_alloc_open(out, path, &o);
    if (rc) return rc;
    chmod(path, 0600);
    return COMMY_OK;
}

static int service_acquire(service **out, const char *tenant, const char *name, char *msg, size_t cap)
{
    service *s = service_find(tenant, name);
    if (s) {
        s->refs++;
        *out = s;
        return COMMY_OK;
    }
    srv_service_row row;
    int rc = S.store->service_get(S.store, tenant, name, &row);
    if (rc) return snprintf(msg, cap, "service '%s' not found", name), COMMY_ENOTFOUND;
    s = calloc(1, sizeof *s);
    if (!s) return snprintf(msg, cap, "out of memory"), COMMY_ENOMEM;
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->persistent = row.persistent;
    char dir[PATH_MAX];
    if (row.file[0] && tenant_dir(dir, sizeof dir, tenant) == COMMY_OK) {
        snprintf(s->file, sizeof s->file, "%s", row.file);
        if ((size_t)snprintf(s->path, sizeof s->path, "%s/%s", dir, row.file) >= sizeof s->path) s->path[0] = '\0';
        commy_alloc_options o;
        commy_alloc_options_init(&o);
        o.flags = 0; /* must exist: a persistent file from before */
        rc = commy_alloc_open(&s->alloc, s->path, &o);
        if (rc) srv_log("warn", "service", "service %s/%s: file %s unusable (%s); starting a new one", tenant, name,
                        row.file, commy_error_last()->message);
        if (rc == COMMY_OK && commy__alloc_retired(s->alloc)) {
            /* A rotation died before its new file was recorded (it is still
             * this one): no client was told of another file, so this one
             * stays the service's. */
            srv_log("warn", "service", "service %s/%s: file %s was left retired by an unfinished rotation; using it",
                    tenant, name, row.file);
            commy__alloc_unretire(s->alloc);
        }
    }
    if (!s->alloc) {
        rc = new_file(s->file, sizeof s->file, s->path, sizeof s->path, tenant, &s->alloc);
        if (rc) {
            snprintf(msg, cap, "cannot create the file of service '%s': %s", name, commy_error_last()->message);
            free(s);
            return rc;
        }
        snprintf(row.file, sizeof row.file, "%s", s->file);
        S.store->service_put(S.store, tenant, &row);
    }
    s->refs = 1;
    s->next = S.services;
    S.services = s;
    srv_log("info", "service_open", "tenant %s service %s file %s", tenant, name, s->file);
    *out = s;
    return COMMY_OK;
}

static void service_release(service *s)
{
    if (--s->refs > 0) return;
    if (srv_mirror_active()) srv_mirror_close(s->tenant, s->name);
    while (s->watches) watch_stop(s->watches);
    for (service **p = &S.services; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    srv_var_cache_flush(&s->vars);
    commy_alloc_close(s->alloc);
    if (!s->persistent) {
        /* the last client left: the data goes with it */
        unlink(s->path);
        srv_service_row row;
        if (S.store->service_get(S.store, s->tenant, s->name, &row) == COMMY_OK) {
            row.file[0] = '\0';
            S.store->service_put(S.store, s->tenant, &row);
        }
        srv_log("info", "service_deleted", "tenant %s service %s: last client left, file removed", s->tenant, s->name);
    }
    free(s);
}

/* ---- connection bookkeeping (S.lock held) ---- */

static int open_index(conn *c, const char *service_name)
{
    for (int i = 0; i < c->nopens; i++)
        if (strcmp(c->opens[i].svc->name, service_name) == 0) return i;
    return -1;
}

static void unsubscribe_at(conn *c, int i)
{
    watch *w = watch_find(c->subs[i].svc, c->subs[i].var);
    if (w && --w->nsubs <= 0) watch_stop(w);
    c->subs[i] = c->subs[--c->nsubs];
}

static void close_open(conn *c, int i)
{
    service *s = c->opens[i].svc;
    for (int j = c->nsubs - 1; j >= 0; j--)
        if (c->subs[j].svc == s) unsubscribe_at(c, j);
    c->opens[i] = c->opens[--c->nopens];
    service_release(s);
}

static void close_all(conn *c)
{
    while (c->nopens) close_open(c, c->nopens - 1);
}

/* ---- permissions ---- */

static int has_scope(const char *scopes, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = scopes; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, want, n) == 0) return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

/* "read" or "write", on service (NULL: the plain scope only) */
static int allowed(const conn *c, const char *what, const char *service_name)
{
    if (has_scope(c->tok.scopes, what)) return 1;
    if (!service_name || strcmp(what, "admin") == 0) return 0;
    char s[160];
    snprintf(s, sizeof s, "service:%s:%s", service_name, what);
    return has_scope(c->tok.scopes, s);
}

static cJSON *scopes_json(const char *scopes)
{
    cJSON *a = cJSON_CreateArray();
    char copy[SRV_SCOPES_MAX], *save = NULL;
    snprintf(copy, sizeof copy, "%s", scopes);
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        cJSON_AddItemToArray(a, cJSON_CreateString(t));
    return a;
}

/* ---- requests ---- */

static void pend_push(conn *c, uint64_t ticket, uint64_t id, cJSON *result)
{
    c->pend[c->npend].ticket = ticket;
    c->pend[c->npend].id = id;
    c->pend[c->npend].result = result;
    c->pend[c->npend].reply = NULL;
    c->npend++;
}

typedef struct reply {
    int deferred; /* answered later by srv_ticket_done */
    int code;
    char msg[512];
    cJSON *result; /* NULL: {} (or text) */
    srv_text text; /* a variable operation's result printed as JSON, when text.len > 0 */
} reply;

static int fail(reply *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return r->code = code;
}

static int issue_token(reply *rp, conn *c, const srv_tenant_conf *t, const char *client_id, const char *scopes,
                       int lifetime_s, int64_t not_after, const unsigned char *old_hash)
{
    char token[65];
    if (srv_auth_random_hex(token, 32)) return fail(rp, COMMY_EIO, "no randomness for a token");
    srv_token tok = {0};
    snprintf(tok.tenant, sizeof tok.tenant, "%s", t->name);
    snprintf(tok.client_id, sizeof tok.client_id, "%s", client_id);
    snprintf(tok.scopes, sizeof tok.scopes, "%s", scopes);
    tok.expires_at = (int64_t)time(NULL) + lifetime_s;
    tok.not_after = not_after;
    if (not_after && tok.expires_at > not_after) tok.expires_at = not_after;
    unsigned char hash[32];
    srv_auth_sha256(hash, token);
    int rc = old_hash ? S.store->token_rotate(S.store, old_hash, hash, &tok) : S.store->token_put(S.store, hash, &tok);
    if (rc == COMMY_ENOTFOUND) return fail(rp, COMMY_WIRE_EAUTH, "the token was already refreshed or revoked");
    if (rc) return fail(rp, rc, "the token store failed");
    c->authed = 1;
    c->tok = tok;
    memcpy(c->token_hash, hash, 32);
    c->warned_expiring = 0;
    rp->result = cJSON_CreateObject();
    cJSON_AddStringToObject(rp->result, "token", token);
    cJSON_AddNumberToObject(rp->result, "expires_at", (double)tok.expires_at);
    cJSON_AddStringToObject(rp->result, "client_id", client_id);
    cJSON_AddItemToObject(rp->result, "permissions", scopes_json(scopes));
    OPENSSL_cleanse(token, sizeof token);
    return 0;
}

static int op_authenticate(reply *rp, conn *c, const commy_wire_request *r)
{
    const srv_tenant_conf *t = srv_config_tenant(&S.cfg, r->tenant);
    if (c->authed) close_all(c);
    c->authed = 0;
    if (r->api_key[0] || r->jwt[0]) {
        /* decided by preauthenticate (server/authn.c), which also logged and audited it */
        const srv_authn_result *a = &c->pre;
        if (a->code) {
            S.auth_failures++;
            return fail(rp, a->code, "%s", a->message);
        }
        int64_t end = a->grant.bounded ? (int64_t)time(NULL) + a->grant.lifetime_s : 0;
        if (issue_token(rp, c, t, a->grant.client_id, a->grant.scopes, a->grant.lifetime_s, end, NULL))
            return rp->code;
    } else {
        unsigned char hash[32];
        srv_token tok;
        srv_auth_sha256(hash, r->token);
        if (!t || S.store->token_get(S.store, hash, &tok) != COMMY_OK || strcmp(tok.tenant, t->name) != 0) {
            S.auth_failures++;
            srv_log("warn", "auth_failure", "peer %s tenant %s: unknown or revoked token", c->peer, r->tenant);
            srv_audit("auth_failure", r->tenant, NULL, c->peer, "token", "unknown or revoked token");
            return fail(rp, COMMY_WIRE_EAUTH, "authentication failed: the token is unknown or revoked");
        }
        if (tok.expires_at <= (int64_t)time(NULL)) {
            S.auth_failures++;
            srv_audit("token_expired", tok.tenant, tok.client_id, c->peer, "token", "authenticate with an expired token");
            return fail(rp, COMMY_WIRE_EEXPIRED, "the token expired; authenticate with a key");
        }
        c->authed = 1;
        c->tok = tok;
        memcpy(c->token_hash, hash, 32);
        c->warned_expiring = 0;
        rp->result = cJSON_CreateObject();
        cJSON_AddNumberToObject(rp->result, "expires_at", (double)tok.expires_at);
        cJSON_AddStringToObject(rp->result, "client_id", tok.client_id);
        cJSON_AddItemToObject(rp->result, "permissions", scopes_json(tok.scopes));
        srv_audit("auth_success", tok.tenant, tok.client_id, c->peer, "token", "session resumed");
    }
    S.auth_ok++;
    srv_log("info", "auth_success", "peer %s tenant %s client %s", c->peer, c->tok.tenant, c->tok.client_id);
    return 0;
}

typedef struct list_ctx {
    cJSON *arr;
    conn *c;
} list_ctx;

static int list_one(const srv_service_row *row, void *payload)
{
    list_ctx *l = payload;
    if (!allowed(l->c, "read", row->name)) return 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", row->name);
    cJSON_AddBoolToObject(o, "persistent", row->persistent);
    cJSON_AddBoolToObject(o, "open", service_find(l->c->tok.tenant, row->name) != NULL);
    cJSON_AddItemToArray(l->arr, o);
    return 0;
}

static int rotate(service *s, const char *revoked_client, char *msg, size_t cap);

static int dispatch(reply *rp, conn *c, const commy_wire_request *r)
{
    if (r->op == COMMY_WIRE_OP_AUTHENTICATE) return op_authenticate(rp, c, r);
    if (!c->authed) return fail(rp, COMMY_WIRE_EAUTH, "authenticate first");
    if (c->tok.expires_at <= (int64_t)time(NULL)) {
        srv_audit("token_expired", c->tok.tenant, c->tok.client_id, c->peer, "token", r->op_name);
        c->authed = 0;
        close_all(c);
        return fail(rp, COMMY_WIRE_EEXPIRED, "the session token expired; authenticate again");
    }
    const char *tenant = c->tok.tenant;
    const srv_tenant_conf *t = srv_config_tenant(&S.cfg, tenant);
    int i, rc;
    switch (r->op) {
    case COMMY_WIRE_OP_REFRESH:
        if (!t) return fail(rp, COMMY_WIRE_EAUTH, "the tenant no longer exists");
        {
            unsigned char old[32];
            memcpy(old, c->token_hash, 32);
            char client[SRV_NAME_MAX], scopes[SRV_SCOPES_MAX];
            snprintf(client, sizeof client, "%s", c->tok.client_id);
            snprintf(scopes, sizeof scopes, "%s", c->tok.scopes);
            /* a grant with its own end (a JWT's exp, a callback's lifetime_s) is not extended */
            int64_t end = c->tok.not_after;
            if (issue_token(rp, c, t, client, scopes, t->token_lifetime_s, end, old)) {
                srv_audit("refresh_failed", tenant, client, c->peer, "token", rp->msg);
                c->authed = 0;
                return rp->code;
            }
            /* no "expiring" notice for a token that no refresh can extend */
            if (end && c->tok.expires_at - (int64_t)time(NULL) <= EXPIRING_NOTICE_S) c->warned_expiring = 1;
        }
        srv_log("info", "refresh", "tenant %s client %s", tenant, c->tok.client_id);
        srv_audit("refresh", tenant, c->tok.client_id, c->peer, "token", NULL);
        return 0;
    case COMMY_WIRE_OP_LOGOUT:
        S.store->token_revoke(S.store, c->token_hash);
        srv_log("info", "logout", "tenant %s client %s", tenant, c->tok.client_id);
        srv_audit("logout", tenant, c->tok.client_id, c->peer, "token", NULL);
        close_all(c);
        c->authed = 0;
        return 0;
    case COMMY_WIRE_OP_LIST_SERVICES: {
        list_ctx l = {cJSON_CreateArray(), c};
        S.store->service_list(S.store, tenant, list_one, &l);
        rp->result = cJSON_CreateObject();
        cJSON_AddItemToObject(rp->result, "services", l.arr);
        return 0;
    }
    case COMMY_WIRE_OP_CREATE_SERVICE: {
        if (!allowed(c, "admin", NULL)) return fail(rp, COMMY_WIRE_EFORBIDDEN, "create_service needs the admin scope");
        srv_service_row row = {0};
        if (S.store->service_get(S.store, tenant, r->service, &row) == COMMY_OK)
            return fail(rp, COMMY_EEXISTS, "service '%s' already exists", r->service);
        snprintf(row.name, sizeof row.name, "%s", r->service);
        row.persistent = r->persistent;
        if ((rc = S.store->service_put(S.store, tenant, &row))) return fail(rp, rc, "the store failed");
        srv_log("info", "service_created", "tenant %s service %s", tenant, r->service);
        return 0;
    }
    case COMMY_WIRE_OP_DELETE_SERVICE: {
        if (!allowed(c, "admin", NULL)) return fail(rp, COMMY_WIRE_EFORBIDDEN, "delete_service needs the admin scope");
        if (service_find(tenant, r->service)) return fail(rp, COMMY_EBUSY, "service '%s' is open; close it first", r->service);
        srv_service_row row;
        if (S.store->service_get(S.store, tenant, r->service, &row) != COMMY_OK)
            return fail(rp, COMMY_ENOTFOUND, "service '%s' not found", r->service);
        char dir[PATH_MAX], path[PATH_MAX + 200];
        if (row.file[0] && tenant_dir(dir, sizeof dir, tenant) == COMMY_OK) {
            snprintf(path, sizeof path, "%s/%s", dir, row.file);
            unlink(path);
        }
        S.store->service_delete(S.store, tenant, r->service);
        if (srv_mirror_active()) srv_mirror_forget(tenant, r->service); /* its data in Redis goes too */
        srv_log("info", "service_deleted", "tenant %s service %s", tenant, r->service);
        return 0;
    }
    case COMMY_WIRE_OP_OPEN_SERVICE: {
        /* permission before existence, and both fail alike for another
         * tenant's name: nothing leaks */
        if (!allowed(c, "read", r->service) || (r->mode_local && !allowed(c, "write", r->service)))
            return fail(rp, COMMY_WIRE_EFORBIDDEN, "opening '%s' %s needs %s", r->service,
                        r->mode_local ? "locally" : "remotely", r->mode_local ? "read and write" : "read");
        if (r->mode_local && !c->loopback)
            return fail(rp, COMMY_EPERM, "local mode is only for clients on this machine (a loopback connection)");
        if (r->mode_local && (rc = srv_peer_same_user(lws_get_socket_fd(c->wsi), rp->msg, sizeof rp->msg)))
            return rp->code = rc; /* another user's client (or an unknown one) gets no path */
        i = open_index(c, r->service);
        if (i < 0) {
            if (c->nopens == MAX_OPENS) return fail(rp, COMMY_EBUSY, "at most %d services per connection", MAX_OPENS);
            service *s;
            if ((rc = service_acquire(&s, tenant, r->service, rp->msg, sizeof rp->msg))) return rp->code = rc;
            i = c->nopens++;
            c->opens[i].svc = s;
            c->opens[i].local = 0;
        }
        c->opens[i].local |= r->mode_local;
        rp->result = cJSON_CreateObject();
        cJSON_AddStringToObject(rp->result, "mode", r->mode_local ? "local" : "remote");
        if (r->mode_local) cJSON_AddStringToObject(rp->result, "path", c->opens[i].svc->path);
        uint64_t ticket;
        if (srv_mirror_active() &&
            srv_mirror_open(&ticket, tenant, r->service, c->opens[i].svc->persistent)) {
            /* answered once the service's state came from Redis */
            pend_push(c, ticket, r->id, rp->result);
            rp->result = NULL;
            rp->deferred = 1;
        }
        return 0;
    }
    case COMMY_WIRE_OP_CLOSE_SERVICE:
        if ((i = open_index(c, r->service)) < 0) return fail(rp, COMMY_ENOTFOUND, "service '%s' is not open here", r->service);
        close_open(c, i);
        return 0;
    case COMMY_WIRE_OP_REVOKE_CLIENT: {
        if (!allowed(c, "admin", NULL)) return fail(rp, COMMY_WIRE_EFORBIDDEN, "revoke_client needs the admin scope");
        S.store->token_revoke_client(S.store, tenant, r->client_id);
        service *touched[64];
        int nt = 0, nconn = 0;
        for (conn *o = S.conns; o; o = o->next) {
            if (!o->authed || strcmp(o->tok.tenant, tenant) || strcmp(o->tok.client_id, r->client_id)) continue;
            for (int k = 0; k < o->nopens; k++) {
                int seen = 0;
                for (int m = 0; m < nt; m++) seen |= touched[m] == o->opens[k].svc;
                if (!seen && o->opens[k].local && nt < 64) touched[nt++] = o->opens[k].svc;
            }
        }
        int rotated = 0;
        for (int m = 0; m < nt; m++) {
            char why[256];
            if (rotate(touched[m], r->client_id, why, sizeof why) == COMMY_OK) rotated++;
            else srv_log("error", "rotate", "service %s: %s", touched[m]->name, why);
        }
        for (conn *o = S.conns; o; o = o->next) {
            if (!o->authed || strcmp(o->tok.tenant, tenant) || strcmp(o->tok.client_id, r->client_id)) continue;
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "reason", "revoked");
            enqueue(o, commy_wire_push_build("closing", f));
            close_all(o);
            o->authed = 0;
            o->kill = 1;
            snprintf(o->kill_reason, sizeof o->kill_reason, "revoked");
            nconn++;
        }
        srv_log("info", "revoke", "tenant %s client %s: %d connections closed, %d services rotated", tenant,
                r->client_id, nconn, rotated);
        {
            char d[160];
            snprintf(d, sizeof d, "revoked by %s: %d connections closed, %d services rotated", c->tok.client_id,
                     nconn, rotated);
            srv_audit("revoke", tenant, r->client_id, c->peer, NULL, d);
        }
        rp->result = cJSON_CreateObject();
        cJSON_AddNumberToObject(rp->result, "rotated", rotated);
        cJSON_AddNumberToObject(rp->result, "connections", nconn);
        return 0;
    }
    default:
        break;
    }
    /* variable operations */
    if ((i = open_index(c, r->service)) < 0)
        return fail(rp, COMMY_ENOTFOUND, "service '%s' is not open on this connection (open_service first)", r->service);
    service *s = c->opens[i].svc;
    int writes = srv_ops_request_writes(s->alloc, r);
    if (!allowed(c, writes ? "write" : "read", s->name))
        return fail(rp, COMMY_WIRE_EFORBIDDEN, "%s on '%s' needs the %s permission", r->op_name, s->name,
                    writes ? "write" : "read");
    if (r->op == COMMY_WIRE_OP_SUBSCRIBE) {
        for (int k = 0; k < c->nsubs; k++)
            if (c->subs[k].svc == s && strcmp(c->subs[k].var, r->var) == 0) return fail(rp, COMMY_EEXISTS, "already subscribed to '%s'", r->var);
        if (c->nsubs == MAX_SUBS) return fail(rp, COMMY_EBUSY, "at most %d subscriptions per connection", MAX_SUBS);
        watch *w = watch_find(s, r->var);
        if (!w && (rc = watch_start(&w, s, r->var, rp->msg, sizeof rp->msg))) return rp->code = rc;
        w->nsubs++;
        c->subs[c->nsubs].svc = s;
        snprintf(c->subs[c->nsubs].var, sizeof c->subs[c->nsubs].var, "%s", r->var);
        c->nsubs++;
        rp->result = cJSON_CreateObject();
        cJSON_AddNumberToObject(rp->result, "version", w->last_pushed);
        return 0;
    }
    if (r->op == COMMY_WIRE_OP_UNSUBSCRIBE) {
        for (int k = 0; k < c->nsubs; k++)
            if (c->subs[k].svc == s && strcmp(c->subs[k].var, r->var) == 0) {
                unsubscribe_at(c, k);
                return 0;
            }
        return fail(rp, COMMY_ENOTFOUND, "not subscribed to '%s'", r->var);
    }
    uint64_t ticket;
    if (writes && srv_mirror_active()) {
        /* applied in stream order, here as everywhere (mirror.c) */
        if (c->npend < MAX_PEND && srv_mirror_submit(&ticket, s->tenant, s->name, c->cur_frame, c->cur_len) == 0) {
            pend_push(c, ticket, r->id, NULL);
            rp->deferred = 1;
            return 0;
        }
        if (c->npend) return fail(rp, COMMY_EBUSY, "waits behind the pending writes"); /* handle_frame: waits */
    }
    rc = srv_ops_apply_cached(&rp->result, &rp->text, &s->vars, s->alloc, r, rp->msg, sizeof rp->msg);
    if (rc) return rp->code = rc;
    if (writes) {
        /* push now, in this order, rather than wait for the watcher to notice */
        watch *w = watch_find(s, r->var);
        if (w) notify(w);
    }
    return 0;
}

/* ---- revocation: move a service to a new file ---- */

static int rotate(service *s, const char *revoked_client, char *msg, size_t cap)
{
    char file[128], path[PATH_MAX];
    commy_alloc *na;
    int rc = new_file(file, sizeof file, path, sizeof path, s->tenant, &na);
    if (rc) return snprintf(msg, cap, "cannot create a new file: %s", commy_error_last()->message), rc;
    if ((rc = srv_ops_copy(na, s->alloc, msg, cap))) {
        commy_alloc_close(na);
        unlink(path);
        return rc;
    }
    char old_path[PATH_MAX];
    snprintf(old_path, sizeof old_path, "%s", s->path);
    /* watchers hold handles on the old file: start new ones on the new file */
    watch *old = s->watches;
    s->watches = NULL;
    commy_alloc *oa = s->alloc;
    srv_var_cache_flush(&s->vars);
    s->alloc = na;
    snprintf(s->file, sizeof s->file, "%s", file);
    snprintf(s->path, sizeof s->path, "%s", path);
    while (old) {
        watch *next = old->next;
        watch *nw;
        char why[200];
        if (watch_start(&nw, s, old->var, why, sizeof why) == COMMY_OK) nw->nsubs = old->nsubs;
        else srv_log("error", "rotate", "service %s: cannot watch %s again: %s", s->name, old->var, why);
        old->stop = 1;
        old = next;
    }
    commy_alloc_close(oa);
    srv_service_row row;
    if (S.store->service_get(S.store, s->tenant, s->name, &row) == COMMY_OK) {
        snprintf(row.file, sizeof row.file, "%s", file);
        S.store->service_put(S.store, s->tenant, &row);
    }
    for (conn *o = S.conns; o; o = o->next) {
        if (!o->authed || strcmp(o->tok.tenant, s->tenant) || strcmp(o->tok.client_id, revoked_client) == 0) continue;
        for (int k = 0; k < o->nopens; k++)
            if (o->opens[k].svc == s && o->opens[k].local) {
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "service", s->name);
                cJSON_AddStringToObject(f, "path", s->path);
                enqueue(o, commy_wire_push_build("rotated", f));
            }
    }
    unlink(old_path);
    srv_log("info", "rotated", "tenant %s service %s: new file %s", s->tenant, s->name, file);
    return COMMY_OK;
}

/* ---- authenticate off the loop (server/authn.c) ---- */

/* On an auth thread: the check is done; the loop answers it. */
static void authn_done(srv_authn *a, void *payload)
{
    (void)a;
    conn *c = payload;
    pthread_mutex_lock(&S.lock);
    c->authn_ready = 1;
    lws_cancel_service(S.ctx); /* the context outlives the auth threads (main) */
    pthread_mutex_unlock(&S.lock);
}

/* S.lock held, lws thread. An authenticate with api_key or jwt: PBKDF2 is
 * slow on purpose and a tenant's callback waits on the network, so the check
 * goes to the auth threads and the connection's later frames wait behind it
 * (as behind a mirrored request). Returns 1 when deferred; 0 when c->pre
 * already holds the outcome (decided at once, or no auth threads). */
static int authn_start(conn *c, commy_wire_request *r)
{
    const srv_tenant_conf *t = srv_config_tenant(&S.cfg, r->tenant); /* the config never changes after start */
    srv_authn *a;
    commy_wire_request *copy;
    if (srv_authn_begin(&a, S.store, t, r->tenant, r->api_key[0] ? r->api_key : NULL, r->jwt[0] ? r->jwt : NULL,
                        c->peer) == 0) {
        if ((copy = malloc(sizeof *copy)) && srv_authn_offload(a, authn_done, c) == COMMY_OK) {
            *copy = *r; /* takes r's values */
            memset(&r->key, 0, sizeof r->key);
            memset(&r->value, 0, sizeof r->value);
            memset(&r->from, 0, sizeof r->from);
            OPENSSL_cleanse(r->api_key, sizeof r->api_key);
            OPENSSL_cleanse(r->jwt, sizeof r->jwt);
            c->authn = a;
            c->authn_req = copy;
            c->authn_ready = 0;
            return 1;
        }
        free(copy);
        srv_authn_work(a); /* the auth threads are gone: check here */
    }
    srv_authn_finish(a, S.store, &c->pre);
    return 0;
}

static void authn_forget(conn *c)
{
    if (c->authn_req) {
        OPENSSL_cleanse(c->authn_req->api_key, sizeof c->authn_req->api_key);
        OPENSSL_cleanse(c->authn_req->jwt, sizeof c->authn_req->jwt);
        commy_wire_request_free(c->authn_req);
        free(c->authn_req);
        c->authn_req = NULL;
    }
    srv_authn_free(c->authn);
    c->authn = NULL;
}

static char *answer(conn *c, const commy_wire_request *r, reply *rp);

/* S.lock held, lws thread: answers the checks the auth threads finished,
 * and lets the frames behind them go on; closed connections only count
 * their failure and go. */
static void authn_collect(void)
{
    for (conn *c = S.conns; c; c = c->next) {
        if (!c->authn || !c->authn_ready) continue;
        srv_authn_finish(c->authn, S.store, &c->pre);
        c->authn = NULL;
        reply rp = {0};
        dispatch(&rp, c, c->authn_req);
        enqueue(c, answer(c, c->authn_req, &rp));
        authn_forget(c);
        c->last_seen = time(NULL); /* its frames waited unread, pongs too */
        c->resume = 1;
    }
    for (conn **z = &S.zombies; *z;) {
        conn *c = *z;
        if (!c->authn_ready) {
            z = &c->zombie;
            continue;
        }
        *z = c->zombie;
        srv_authn_finish(c->authn, S.store, &c->pre); /* a failure counts though the client left */
        c->authn = NULL;
        authn_forget(c);
        free(c->rx);
        free(c);
    }
}

/* A reply may be written at once when nothing is queued before it and the
 * socket takes it: a request then costs no extra turn of the service loop.
 * Only on the lws thread, from the receive callback (S.lock held; dropped
 * around the write). */
static int can_write_now(conn *c)
{
    return !c->qhead && !c->ping_due && !c->kill && !c->kill_now && !lws_partial_buffered(c->wsi);
}

/* Writes the len bytes at p, which has LWS_PRE bytes of room before it
 * (can_write_now(c) said yes). */
static void write_now(conn *c, unsigned char *p, size_t len)
{
    /* not under S.lock, like every lws_write here (only this thread frees c) */
    pthread_mutex_unlock(&S.lock);
    int w = lws_write(c->wsi, p, len, LWS_WRITE_TEXT);
    pthread_mutex_lock(&S.lock);
    if (w < (int)len) {
        c->kill_now = 1; /* the connection is broken: close it */
        snprintf(c->kill_reason, sizeof c->kill_reason, "write_failed");
        wake(c);
        return;
    }
    S.messages_out++;
    S.bytes_out += len;
    c->last_progress = time(NULL);
}

/* Writes frame (a malloc'd string) at once if it may go now; returns 1 if
 * the frame was consumed. */
static int reply_now(conn *c, char *frame)
{
    if (!frame || !can_write_now(c)) return 0;
    size_t len = strlen(frame);
    unsigned char stack[LWS_PRE + 1024], *b = len <= 1024 ? stack : malloc(LWS_PRE + len);
    if (!b) return 0;
    memcpy(b + LWS_PRE, frame, len);
    free(frame);
    write_now(c, b + LWS_PRE, len);
    if (b != stack) free(b);
    return 1;
}

/* Wipes the credentials a request carried. Only a filled buffer is wiped:
 * the three are over 8 KiB, and most requests carry none. */
static void forget_secrets(commy_wire_request *r)
{
    if (r->api_key[0]) OPENSSL_cleanse(r->api_key, sizeof r->api_key);
    if (r->token[0]) OPENSSL_cleanse(r->token, sizeof r->token);
    if (r->jwt[0]) OPENSSL_cleanse(r->jwt, sizeof r->jwt);
}

/* Called with S.lock held; drops it while parsing (only this thread frees a
 * conn, so c stays valid). Credentials are checked on the auth threads
 * (authn_start). */
static int handle_frame(conn *c, const char *data, size_t len)
{
    commy_wire_request r;
    commy_wire_fault f;
    char *out;
    pthread_mutex_unlock(&S.lock);
    srv_json_arena_begin(); /* the request's cJSON tree lives and dies in the parse */
    int rc = commy_wire_request_parse(&r, &f, data, len, S.cfg.max_message_bytes);
    srv_json_arena_end();
    pthread_mutex_lock(&S.lock);
    /* while writes wait for the mirror, only more writes may join them: any
     * other request, answered now, would overtake their replies */
    int npend0 = c->npend;
    if (c->authn || (npend0 && (rc || !srv_ops_writes(r.op) || c->tok.expires_at <= (int64_t)time(NULL)))) {
        /* an authenticate being checked, or writes waiting for the mirror that
         * only more writes may join: anything answered now would overtake */
        if (!rc) {
            forget_secrets(&r);
            commy_wire_request_free(&r);
        }
        return 1;
    }
    if (rc) {
        srv_log("warn", "bad_request", "peer %s: %s", c->peer, f.message);
        out = commy_wire_reply_error(f.has_id, f.id, rc, f.message);
    } else if (r.op == COMMY_WIRE_OP_AUTHENTICATE && (r.api_key[0] || r.jwt[0]) && authn_start(c, &r)) {
        commy_wire_request_free(&r); /* answered by authn_collect */
        return 0;
    } else {
        char text[512];
        reply rp = {.text = {text, sizeof text, 0}};
        c->cur_frame = data;
        c->cur_len = len;
        dispatch(&rp, c, &r);
        c->cur_frame = NULL;
        if (rp.deferred || npend0) {
            /* deferred; or a write that could not join the pending ones (it
             * had no effect): it waits and is handled again */
            if (!rp.deferred) cJSON_Delete(rp.result);
            commy_wire_request_free(&r);
            return !rp.deferred;
        }
        if (!rp.code && !rp.result) {
            /* {} or a printed value: the frame is printed once, where lws
             * writes it from (LWS_PRE bytes of room before it) */
            unsigned char fb[LWS_PRE + sizeof text + 64];
            size_t n = commy_wire_reply_ok_print((char *)fb + LWS_PRE, sizeof fb - LWS_PRE, r.id,
                                                 rp.text.len ? text : NULL, rp.text.len);
            if (n) {
                commy_wire_request_free(&r);
                forget_secrets(&r);
                if (!c->resuming && can_write_now(c)) write_now(c, fb + LWS_PRE, n);
                else enqueue_bytes(c, (char *)fb + LWS_PRE, n);
                return 0;
            }
            rp.code = COMMY_EIO; /* cannot be: the room is sized for the frame */
            snprintf(rp.msg, sizeof rp.msg, "the reply did not fit its buffer");
        }
        out = answer(c, &r, &rp);
        commy_wire_request_free(&r);
    }
    forget_secrets(&r);
    if (c->resuming || !reply_now(c, out)) enqueue(c, out); /* reply_now only from the receive callback */
    return 0;
}

/* The reply frame for a dispatched request. */
static char *answer(conn *c, const commy_wire_request *r, reply *rp)
{
    if (!rp->code) return commy_wire_reply_ok(r->id, rp->result);
    if (rp->code == COMMY_ENOMEM || rp->code == COMMY_EIO)
        srv_log("error", "request", "peer %s op %s: %s", c->peer, r->op_name, rp->msg);
    cJSON_Delete(rp->result);
    return commy_wire_reply_error(1, r->id, rp->code, rp->msg);
}

/* ---- requests the mirror answers later (mirror.h) ---- */

void srv_lock(void) { pthread_mutex_lock(&S.lock); }
void srv_unlock(void) { pthread_mutex_unlock(&S.lock); }

commy_alloc *srv_service_alloc(const char *tenant, const char *name)
{
    service *s = service_find(tenant, name);
    return s ? s->alloc : NULL;
}

void srv_var_changed(const char *tenant, const char *name, const char *var)
{
    service *s = service_find(tenant, name);
    watch *w = s ? watch_find(s, var) : NULL;
    if (w) notify(w);
}

void srv_ticket_done(uint64_t ticket, int code, const char *msg, cJSON *result)
{
    for (conn *c = S.conns; c; c = c->next)
        for (int k = 0; k < c->npend; k++) {
            if (c->pend[k].ticket != ticket || c->pend[k].reply) continue;
            uint64_t id = c->pend[k].id;
            if (code) {
                cJSON_Delete(result);
                cJSON_Delete(c->pend[k].result);
                c->pend[k].reply = commy_wire_reply_error(1, id, code, msg ? msg : commy_strerror(code));
            } else {
                if (result) cJSON_Delete(c->pend[k].result);
                c->pend[k].reply = commy_wire_reply_ok(id, result ? result : c->pend[k].result);
            }
            c->pend[k].result = NULL;
            if (!c->pend[k].reply) c->pend[k].reply = strdup("");
            /* replies leave in request order */
            int n = 0;
            while (n < c->npend && c->pend[n].reply) {
                if (c->pend[n].reply[0]) enqueue(c, c->pend[n].reply);
                else free(c->pend[n].reply);
                n++;
            }
            memmove(c->pend, c->pend + n, (size_t)(c->npend - n) * sizeof c->pend[0]);
            c->npend -= n;
            c->resume = 1; /* the frames that waited go on, on the lws thread */
            lws_cancel_service(S.ctx);
            return;
        }
    cJSON_Delete(result); /* the connection left meanwhile */
}

static void backlog_add(conn *c, const char *data, size_t len)
{
    outmsg *m = malloc(sizeof *m + len + 1);
    if (!m) return;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    if (c->btail) c->btail->next = m;
    else c->bhead = m;
    c->btail = m;
}

static void backlog_free(conn *c)
{
    while (c->bhead) {
        outmsg *m = c->bhead;
        c->bhead = m->next;
        free(m);
    }
    c->btail = NULL;
}

/* On the lws thread with S.lock held: the frames that waited behind a
 * deferred request, in order, until one is deferred again. */
/* ---- records read ahead ----
 * With read ahead on, one SSL_read() may pull several records off the socket
 * and return the first; the rest wait in OpenSSL's buffer, where neither
 * poll() nor lws (which checks SSL_pending(), decrypted bytes only) sees
 * them. Every record read puts its connection on S.ra_head; after each turn
 * of the loop ra_pass() gives each one that still holds buffered bytes one
 * POLLIN of its own, and while any of those read another record the next
 * turn polls without sleeping, so a client that streams records shares the
 * loop with the others. A partial record ends it: its header was counted
 * once, and the next SSL_read() finds the socket empty and waits for poll()
 * like any other. All of this runs on the lws thread only. */

static void ra_note(conn *c)
{
    if (c->ra_queued) return;
    c->ra_queued = 1;
    c->ra_next = S.ra_head;
    S.ra_head = c;
}

static void ra_forget(conn *c)
{
    if (!c->ra_queued) return;
    for (conn **q = &S.ra_head; *q; q = &(*q)->ra_next)
        if (*q == c) {
            *q = c->ra_next;
            break;
        }
    c->ra_queued = 0;
}

static void ra_record_read(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version, (void)buf, (void)len, (void)ssl;
    if (!write_p && content_type == SSL3_RT_HEADER && arg) ra_note(arg);
}

static void ra_pass(void)
{
    /* the fds first, the list emptied: each POLLIN may close and free any of
     * these conns, and puts back on the list those that read a record */
    static int *fds;
    static size_t cap;
    size_t n = 0;
    conn *c = S.ra_head, *keep = NULL;
    S.ra_head = NULL;
    while (c) {
        conn *next = c->ra_next;
        SSL *ssl = lws_get_ssl(c->wsi);
        if (ssl && !c->rx_paused && SSL_has_pending(ssl)) {
            if (n == cap) {
                int *f = realloc(fds, (cap ? 2 * cap : 64) * sizeof *f);
                if (!f) { /* out of memory: it stays queued for the next turn */
                    c->ra_next = keep;
                    keep = c;
                    c = next;
                    continue;
                }
                fds = f;
                cap = cap ? 2 * cap : 64;
            }
            fds[n++] = lws_get_socket_fd(c->wsi);
        }
        c->ra_queued = 0;
        c = next;
    }
    S.ra_head = keep;
    for (size_t i = 0; i < n; i++) {
        struct lws_pollfd pfd = {.fd = fds[i], .events = LWS_POLLIN, .revents = LWS_POLLIN};
        lws_service_fd(S.ctx, &pfd);
    }
}

static void resume_conn(conn *c)
{
    c->resume = 0;
    c->resuming = 1;
    while (c->bhead) {
        outmsg *m = c->bhead;
        if (handle_frame(c, (const char *)m->data, m->len)) break; /* still waits */
        c->bhead = m->next;
        if (!c->bhead) c->btail = NULL;
        free(m);
    }
    c->resuming = 0;
    if (!c->bhead && c->npend < MAX_PEND && c->rx_paused) {
        c->last_seen = time(NULL); /* its frames waited unread, pongs too */
        c->rx_paused = 0;
        lws_rx_flow_control(c->wsi, 1);
        ra_note(c); /* records read ahead while paused wait for no poll */
    }
}

/* ---- metrics ---- */

static char *metrics_text(size_t *len)
{
    size_t cap = 4096;
    char *b = malloc(cap);
    if (!b) return NULL;
    int nservices = 0, qmax = 0;
    long qsum = 0;
    for (service *s = S.services; s; s = s->next) nservices++;
    for (conn *c = S.conns; c; c = c->next) {
        qsum += c->qlen;
        if (c->qlen > qmax) qmax = c->qlen;
    }
    int n = snprintf(b, cap,
                     "# TYPE commy_connections gauge\ncommy_connections %d\n"
                     "# TYPE commy_connections_total counter\ncommy_connections_total %llu\n"
                     "# TYPE commy_messages_received_total counter\ncommy_messages_received_total %llu\n"
                     "# TYPE commy_messages_sent_total counter\ncommy_messages_sent_total %llu\n"
                     "# TYPE commy_bytes_received_total counter\ncommy_bytes_received_total %llu\n"
                     "# TYPE commy_bytes_sent_total counter\ncommy_bytes_sent_total %llu\n"
                     "# TYPE commy_auth_successes_total counter\ncommy_auth_successes_total %llu\n"
                     "# TYPE commy_auth_failures_total counter\ncommy_auth_failures_total %llu\n"
                     "# TYPE commy_pushes_total counter\ncommy_pushes_total %llu\n"
                     "# TYPE commy_slow_consumers_cut_total counter\ncommy_slow_consumers_cut_total %llu\n"
                     "# TYPE commy_services_open gauge\ncommy_services_open %d\n"
                     "# TYPE commy_outbound_queue_frames gauge\ncommy_outbound_queue_frames %ld\n"
                     "# TYPE commy_outbound_queue_frames_max gauge\ncommy_outbound_queue_frames_max %d\n",
                     S.nconns, (unsigned long long)S.connections_total, (unsigned long long)S.messages_in,
                     (unsigned long long)S.messages_out, (unsigned long long)S.bytes_in,
                     (unsigned long long)S.bytes_out, (unsigned long long)S.auth_ok,
                     (unsigned long long)S.auth_failures, (unsigned long long)S.pushes,
                     (unsigned long long)S.slow_cut, nservices, qsum, qmax);
    if (n >= 0 && (size_t)n < cap) n += (int)srv_mirror_metrics(b + n, cap - (size_t)n);
    *len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    return b;
}

/* ---- libwebsockets ---- */

typedef struct pss {
    conn *c;
    char *body; /* /metrics response */
    size_t body_len;
} pss;

static int peer_is_loopback(struct lws *wsi, char *peer, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = lws_get_socket_fd(wsi);
    snprintf(peer, cap, "?");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    char addr[INET6_ADDRSTRLEN] = "?";
    int loop = 0, port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        loop = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        loop = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
        port = ntohs(in6->sin6_port);
    }
    snprintf(peer, cap, "%s:%d", addr, port);
    return loop;
}

static void tick(lws_sorted_usec_list_t *sul)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&S.lock);
    for (conn *c = S.conns; c; c = c->next) {
        if (c->qlen && now - c->last_progress >= S.cfg.stall_timeout_s && !c->kill_now) {
            c->kill_now = 1;
            snprintf(c->kill_reason, sizeof c->kill_reason, "slow_consumer");
            S.slow_cut++;
            srv_log("warn", "slow_consumer", "peer %s: %d frames not drained for %d s; cutting it", c->peer, c->qlen,
                    S.cfg.stall_timeout_s);
        }
        if (c->kill_now && !c->kill_sent) {
            c->kill_sent = 1;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        if (now - c->last_seen >= 2 * S.cfg.ping_interval_s && !c->rx_paused) {
            /* (not while we stopped reading it: its pongs wait unread) */
            /* two intervals without a pong or any frame: the peer is gone */
            c->kill_now = c->kill_sent = 1;
            snprintf(c->kill_reason, sizeof c->kill_reason, "ping_timeout");
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        if (now - c->last_ping >= S.cfg.ping_interval_s) {
            c->ping_due = 1;
            c->last_ping = now;
            lws_callback_on_writable(c->wsi);
        }
        if (c->authed && !c->warned_expiring && c->tok.expires_at - now <= EXPIRING_NOTICE_S) {
            c->warned_expiring = 1;
            cJSON *f = cJSON_CreateObject();
            cJSON_AddNumberToObject(f, "expires_at", (double)c->tok.expires_at);
            enqueue(c, commy_wire_push_build("expiring", f));
        }
    }
    pthread_mutex_unlock(&S.lock);
    lws_sul_schedule(S.ctx, 0, sul, tick, LWS_US_PER_SEC);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* lws asks us to judge the client certificate (0 = accept): keep
         * OpenSSL's verdict against the configured client CA */
        if (!len) srv_log("warn", "auth_failure", "a client certificate did not verify against tls.client_ca");
        return len ? 0 : 1;
    case LWS_CALLBACK_HTTP: {
        const char *uri = in;
        if (!p) return -1;
        if (!uri || strcmp(uri, "/metrics") != 0) {
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
            return lws_http_transaction_completed(wsi) ? -1 : 0;
        }
        pthread_mutex_lock(&S.lock);
        p->body = metrics_text(&p->body_len);
        pthread_mutex_unlock(&S.lock);
        if (!p->body) return -1;
        unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *pos = start, *end = hdr + sizeof hdr - 1;
        if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4", p->body_len, &pos, end) ||
            lws_finalize_write_http_header(wsi, start, &pos, end))
            return 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!p || !p->body) return -1;
        unsigned char *b = malloc(LWS_PRE + p->body_len);
        if (!b) return -1;
        memcpy(b + LWS_PRE, p->body, p->body_len);
        int w = lws_write(wsi, b + LWS_PRE, p->body_len, LWS_WRITE_HTTP_FINAL);
        free(b);
        free(p->body);
        p->body = NULL;
        if (w < 0) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p) { /* NULL when the peer left before sending a request */
            free(p->body);
            p->body = NULL;
        }
        break;
    case LWS_CALLBACK_ESTABLISHED: {
        if (!p) return -1;
        conn *c = calloc(1, sizeof *c);
        if (!c) return -1;
        c->wsi = wsi;
        c->loopback = peer_is_loopback(wsi, c->peer, sizeof c->peer);
        c->last_progress = c->last_seen = c->last_ping = time(NULL);
        pthread_mutex_lock(&S.lock);
        if (S.nconns >= S.cfg.max_connections) {
            pthread_mutex_unlock(&S.lock);
            srv_log("warn", "refused", "peer %s: %d connections is the limit", c->peer, S.cfg.max_connections);
            free(c);
            lws_close_reason(wsi, (enum lws_close_status)1013 /* try again later */, (unsigned char *)"too many connections", 20);
            return -1;
        }
        c->next = S.conns;
        S.conns = c;
        S.nconns++;
        S.connections_total++;
        p->c = c;
        pthread_mutex_unlock(&S.lock);
        /* lws sets SSL_MODE_RELEASE_BUFFERS on its TLS context: OpenSSL then
         * frees its read and write buffers (about 17 KiB each) after every
         * SSL_read and SSL_write and mallocs them again for the next one,
         * ~1k instructions per request (bench/server_instr.sh). An
         * established connection keeps them, as redis-server's do. */
        SSL *ssl = lws_get_ssl(wsi);
        if (ssl) SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        /* Read ahead: one read() takes whatever the socket holds, where
         * OpenSSL would otherwise read each record's 5-byte header and then
         * its body, two reads per request (as redis-server does). Records
         * read ahead are invisible to poll() and to lws, which only looks
         * at SSL_pending() (decrypted bytes); ra_pass() serves them. */
        if (ssl) {
            SSL_set_msg_callback_arg(ssl, c);
            SSL_set_msg_callback(ssl, ra_record_read);
            SSL_set_read_ahead(ssl, 1);
        }
        srv_log("info", "connect", "peer %s%s", c->peer, c->loopback ? " (loopback)" : "");
        break;
    }
    case LWS_CALLBACK_CLOSED: {
        conn *c = p ? p->c : NULL;
        if (!c) break;
        SSL *ssl = lws_get_ssl(wsi);
        if (ssl) SSL_set_msg_callback(ssl, NULL);
        ra_forget(c);
        pthread_mutex_lock(&S.lock);
        close_all(c);
        for (conn **q = &S.conns; *q; q = &(*q)->next)
            if (*q == c) {
                *q = c->next;
                break;
            }
        S.nconns--;
        queue_free(c);
        backlog_free(c);
        for (int k = 0; k < c->npend; k++) {
            cJSON_Delete(c->pend[k].result);
            free(c->pend[k].reply);
        }
        int zombie = c->authn && !c->authn_ready;
        if (zombie) { /* an auth thread still holds c: authn_collect frees it */
            c->zombie = S.zombies;
            S.zombies = c;
        } else if (c->authn) {
            srv_authn_finish(c->authn, S.store, &c->pre); /* a failure counts though the client left */
            c->authn = NULL;
        }
        if (!zombie) authn_forget(c);
        pthread_mutex_unlock(&S.lock);
        srv_log("info", "disconnect", "peer %s%s%s", c->peer, c->kill_reason[0] ? ": " : "", c->kill_reason);
        if (!zombie) {
            free(c->rx);
            free(c);
        }
        p->c = NULL;
        break;
    }
    case LWS_CALLBACK_RECEIVE: {
        conn *c = p ? p->c : NULL;
        if (!c) return -1;
        const char *direct = NULL; /* the frame, when it came in one piece */
        if (lws_is_first_fragment(wsi)) {
            c->rxlen = 0;
            c->rx_binary = lws_frame_is_binary(wsi);
            c->rx_toobig = 0;
        }
        if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi) &&
            !c->rx_binary && len && len <= S.cfg.max_message_bytes) {
            direct = in; /* handled where lws put it, not copied */
            c->rxlen = len;
        } else if (!c->rx_toobig && !c->rx_binary) {
            if (c->rxlen + len > S.cfg.max_message_bytes) {
                c->rx_toobig = 1;
            } else {
                if (c->rxlen + len + 1 > c->rxcap) {
                    size_t cap = c->rxlen + len + 1 < 4096 ? 4096 : c->rxlen + len + 1;
                    char *nrx = realloc(c->rx, cap);
                    if (!nrx) return -1;
                    c->rx = nrx;
                    c->rxcap = cap;
                }
                memcpy(c->rx + c->rxlen, in, len);
                c->rxlen += len;
            }
        }
        pthread_mutex_lock(&S.lock);
        c->last_seen = time(NULL);
        S.bytes_in += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            S.messages_in++;
            if (c->rx_binary) {
                enqueue(c, commy_wire_reply_error(0, 0, COMMY_WIRE_EPROTO, "binary frames are not part of the protocol; send JSON text"));
            } else if (c->rx_toobig) {
                char m[128];
                snprintf(m, sizeof m, "the frame is larger than the limit of %zu bytes", S.cfg.max_message_bytes);
                enqueue(c, commy_wire_reply_error(0, 0, COMMY_WIRE_ETOOBIG, m));
                c->kill = 1;
                snprintf(c->kill_reason, sizeof c->kill_reason, "too_big");
            } else {
                const char *frame = direct ? direct : c->rx; /* (c->rx as it is now: the copy may have moved it) */
                if (c->bhead || handle_frame(c, frame, c->rxlen))
                    backlog_add(c, frame, c->rxlen); /* replies go out in request order */
            }
            if ((c->bhead || c->npend >= MAX_PEND) && !c->rx_paused) {
                c->rx_paused = 1;
                lws_rx_flow_control(wsi, 0);
            }
            c->rxlen = 0;
            if (c->rxcap > 65536) {
                free(c->rx); /* big buffers are not kept between frames */
                c->rx = NULL;
                c->rxcap = 0;
            }
        }
        pthread_mutex_unlock(&S.lock);
        break;
    }
    case LWS_CALLBACK_RECEIVE_PONG:
        if (p && p->c) {
            pthread_mutex_lock(&S.lock);
            p->c->last_seen = time(NULL);
            pthread_mutex_unlock(&S.lock);
        }
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        conn *c = p ? p->c : NULL;
        if (!c) return -1;
        pthread_mutex_lock(&S.lock);
        int ping = c->ping_due;
        c->ping_due = 0;
        pthread_mutex_unlock(&S.lock);
        if (ping) {
            /* a payload, because lws 4.1 reports no empty pong to the protocol */
            unsigned char pb[LWS_PRE + 8];
            memcpy(pb + LWS_PRE, "commy-ok", 8);
            if (lws_write(wsi, pb + LWS_PRE, 8, LWS_WRITE_PING) < 0) return -1;
            lws_callback_on_writable(wsi); /* the queue goes on the next turn */
            break;
        }
        /* several frames per writable turn, as long as the socket takes
         * them: one poll round per frame starves 1,000 busy connections */
        size_t sent = 0, nsent = 0;
        int fd = lws_get_socket_fd(wsi), corked = 0;
        for (int burst = 0; burst < 64; burst++) {
            pthread_mutex_lock(&S.lock);
            c->want_write = 0;
            outmsg *m = c->qhead;
            if (m) {
                c->qhead = m->next;
                if (!c->qhead) c->qtail = NULL;
                c->qlen--;
            }
            pthread_mutex_unlock(&S.lock);
            if (!m) break;
            if (burst == 0 && m->next && !corked) {
                /* more than one frame to go: let TCP pack them into full segments */
                corked = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_CORK, &corked, sizeof corked);
            }
            int w = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
            size_t flen = m->len;
            free(m);
            if (w < (int)flen) return -1;
            sent += flen;
            nsent++;
            if (lws_send_pipe_choked(wsi)) break;
        }
        if (corked) {
            corked = 0;
            setsockopt(fd, IPPROTO_TCP, TCP_CORK, &corked, sizeof corked);
        }
        pthread_mutex_lock(&S.lock);
        S.messages_out += nsent;
        S.bytes_out += sent;
        c->last_progress = time(NULL);
        int more = c->qhead != NULL, kill = c->kill || c->kill_now;
        pthread_mutex_unlock(&S.lock);
        if (more) lws_callback_on_writable(wsi);
        else if (kill) {
            int code = strcmp(c->kill_reason, "too_big") == 0 ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
                                                               : LWS_CLOSE_STATUS_POLICY_VIOLATION;
            lws_close_reason(wsi, code, (unsigned char *)c->kill_reason, strlen(c->kill_reason));
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        pthread_mutex_lock(&S.lock);
        authn_collect();
        for (conn *c = S.conns; c; c = c->next) {
            if (c->resume) resume_conn(c);
            if (c->kill_now && !c->kill_sent) {
                c->kill_sent = 1;
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            } else if (c->want_write) {
                lws_callback_on_writable(c->wsi);
            }
        }
        pthread_mutex_unlock(&S.lock);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"commy.v1", callback, sizeof(pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    S.stop = 1;
    if (S.ctx) lws_cancel_service(S.ctx);
}

/* Loads the configuration's keys and services into the store and removes
 * service files that a crash left behind. */
static int sync_store(char *err, size_t cap)
{
    for (int i = 0; i < S.cfg.ntenants; i++) {
        srv_tenant_conf *t = &S.cfg.tenants[i];
        for (int k = 0; k < t->nkeys; k++)
            if (S.store->key_put(S.store, t->name, &t->keys[k]))
                return snprintf(err, cap, "cannot store key %s", t->keys[k].id), -1;
        for (int k = 0; k < t->nservices; k++) {
            srv_service_row row = {0};
            if (S.store->service_get(S.store, t->name, t->services[k].name, &row) != COMMY_OK)
                snprintf(row.name, sizeof row.name, "%s", t->services[k].name);
            row.persistent = t->services[k].persistent;
            if (!row.persistent && row.file[0]) {
                char dir[PATH_MAX], path[PATH_MAX + 200];
                if (tenant_dir(dir, sizeof dir, t->name) == COMMY_OK) {
                    snprintf(path, sizeof path, "%s/%s", dir, row.file);
                    unlink(path);
                }
                row.file[0] = '\0';
            }
            if (S.store->service_put(S.store, t->name, &row))
                return snprintf(err, cap, "cannot store service %s", row.name), -1;
        }
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: commy-server --config FILE [--insecure-dev] [--port N]\n"
               "       commy-server --demo [--insecure-dev] [--port N]\n"
               "       commy-server --hash-key SECRET   (prints the hash to put in a config's api_keys)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"demo", no_argument, NULL, 'd'},
        {"insecure-dev", no_argument, NULL, 'i'}, {"port", required_argument, NULL, 'p'},
        {"hash-key", required_argument, NULL, 'k'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int demo = 0, insecure = 0, port = -1, opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'd': demo = 1; break;
        case 'i': insecure = 1; break;
        case 'p': port = atoi(optarg); break;
        case 'k': {
            char out[256];
            if (srv_auth_hash_secret(out, sizeof out, optarg, 100000)) return 1;
            printf("%s\n", out);
            return 0;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config == !demo) {
        usage(stderr);
        return 2;
    }
    srv_json_arena_install();
    umask(077);
    char err[512], api_key[128] = "";
    if (demo ? srv_config_demo(&S.cfg, api_key, sizeof api_key, err, sizeof err)
             : srv_config_load(&S.cfg, config, err, sizeof err)) {
        srv_log("error", "config", "%s", err);
        fprintf(stderr, "commy-server: bad configuration: %s\n", err);
        return 1;
    }
    if (port >= 0) S.cfg.port = port;
    S.cfg.insecure_dev = insecure;
    if (!insecure && (!S.cfg.cert[0] || !S.cfg.key[0])) {
        fprintf(stderr, "commy-server: bad configuration: tls.cert and tls.key are required (or --insecure-dev)\n");
        return 1;
    }
    if (mkdir(S.cfg.data_root, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "commy-server: bad configuration: data_root %s: %s\n", S.cfg.data_root, strerror(errno));
        return 1;
    }
    char dbpath[PATH_MAX + 32];
    snprintf(dbpath, sizeof dbpath, "%s/commy-server.db", S.cfg.data_root);
    char audit_path[PATH_MAX + 32];
    snprintf(audit_path, sizeof audit_path, "%s", S.cfg.audit_log);
    if (!audit_path[0]) snprintf(audit_path, sizeof audit_path, "%s/audit.log", S.cfg.data_root);
    if (srv_audit_open(audit_path, err, sizeof err) || srv_store_sqlite_open(&S.store, dbpath, err, sizeof err) ||
        sync_store(err, sizeof err)) {
        fprintf(stderr, "commy-server: %s\n", err);
        return 1;
    }
    if (S.cfg.mirror.enabled && srv_store_redis_open(&S.store, S.store, &S.cfg.mirror, err, sizeof err)) {
        fprintf(stderr, "commy-server: %s\n", err);
        return 1;
    }
    if (srv_authn_start() != COMMY_OK)
        srv_log("warn", "auth", "no auth threads: credentials are checked on the event loop");
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = S.cfg.port;
    info.iface = S.cfg.address;
    info.protocols = protocols;
    info.timeout_secs = 10;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * (strchr(S.cfg.address, ':') == NULL);
    if (!insecure) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = S.cfg.cert;
        info.ssl_private_key_filepath = S.cfg.key;
        if (S.cfg.client_ca[0]) {
            info.ssl_ca_filepath = S.cfg.client_ca;
            info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
        }
    } else {
        srv_log("warn", "insecure", "--insecure-dev: serving plain ws:// without TLS; never use this in production");
    }
    S.lws_thread = pthread_self();
    S.ctx = lws_create_context(&info);
    if (!S.ctx) {
        fprintf(stderr, "commy-server: cannot listen on %s:%d (see the log above)\n", S.cfg.address, S.cfg.port);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (srv_mirror_start(&S.cfg.mirror, err, sizeof err)) {
        fprintf(stderr, "commy-server: %s\n", err);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_sul_schedule(S.ctx, 0, &S.tick, tick, LWS_US_PER_SEC);
    int v6 = strchr(S.cfg.address, ':') != NULL; /* a URL writes an IPv6 address in brackets */
    srv_log("info", "listening", "%s://%s%s%s:%d data_root %s", insecure ? "ws" : "wss", v6 ? "[" : "", S.cfg.address,
            v6 ? "]" : "", S.cfg.port, S.cfg.data_root);
    if (demo) {
        printf("{\"demo\":true,\"url\":\"%s://%s:%d\",\"tenant\":\"demo\",\"service\":\"demo\",\"api_key\":\"%s\","
               "\"data_root\":\"%s\",\"cert\":\"%s\"}\n",
               insecure ? "ws" : "wss", S.cfg.address, S.cfg.port, api_key, S.cfg.data_root, S.cfg.cert);
        fflush(stdout);
    }
    while (!S.stop) {
        if (lws_service(S.ctx, S.ra_head ? -1 : 0) < 0) break; /* -1: poll, do not sleep */
        ra_pass();
    }
    srv_log("info", "shutdown", "stopping");
    /* tell every client why, and give the frames up to a second to leave */
    pthread_mutex_lock(&S.lock);
    for (conn *c = S.conns; c; c = c->next) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "reason", "shutdown");
        enqueue(c, commy_wire_push_build("closing", f));
        c->kill = 1;
        snprintf(c->kill_reason, sizeof c->kill_reason, "shutdown");
    }
    pthread_mutex_unlock(&S.lock);
    for (struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0) == 0;) {
        pthread_mutex_lock(&S.lock);
        int left = S.nconns;
        pthread_mutex_unlock(&S.lock);
        if (!left) break;
        lws_service(S.ctx, 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        static time_t first;
        if (!first) first = t0.tv_sec;
        if (t1.tv_sec - first >= 1) break;
    }
    /* every service closes before the mirror stops, so its last state and a
     * snapshot reach Redis */
    pthread_mutex_lock(&S.lock);
    for (conn *c = S.conns; c; c = c->next) close_all(c);
    pthread_mutex_unlock(&S.lock);
    srv_mirror_stop();
    srv_authn_stop(); /* every check ends (within its callback's timeout) */
    pthread_mutex_lock(&S.lock);
    authn_collect();
    pthread_mutex_unlock(&S.lock);
    lws_context_destroy(S.ctx);
    S.store->close(S.store);
    srv_audit_close();
    srv_config_free(&S.cfg);
    return 0;
}
