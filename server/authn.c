/* The decision behind authenticate with an API key or a JWT, per tenant mode:
 *   server_managed  the server checks the key (PBKDF2) or the JWT;
 *   tenant_managed  the tenant's HTTPS callback decides and names the grant;
 *   hybrid          both must allow; the scopes are the intersection and the
 *                   lifetime the shorter one.
 * Around it: failed-login lockouts (in the store) and the audit log.
 *
 * Three phases, so that the slow part never holds up the event loop: begin
 * and finish touch the store and run on the loop thread; work (PBKDF2, the
 * JWT signature, the tenant's callback) touches nothing shared and runs on
 * one of a few auth threads. */
#include "server.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static int has_scope(const char *scopes, const char *want, size_t n)
{
    for (const char *p = scopes; *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && memcmp(p, want, n) == 0) return 1;
        p += len;
        while (*p == ' ') p++;
    }
    return 0;
}

/* a := the scopes of a that b has too */
static void intersect(char *a, size_t cap, const char *b)
{
    char keep[SRV_SCOPES_MAX] = "";
    for (const char *p = a; *p;) {
        size_t len = strcspn(p, " ");
        if (len && has_scope(b, p, len)) {
            size_t used = strlen(keep);
            snprintf(keep + used, sizeof keep - used, "%s%.*s", used ? " " : "", (int)len, p);
        }
        p += len;
        while (*p == ' ') p++;
    }
    snprintf(a, cap, "%s", keep);
}

/* The lockout subjects of an attempt: "id:NAME" (the claimed identity) and
 * "addr:IP" (the source address), as the tenant's lockout.by asks. */
typedef struct subjects {
    char s[2][SRV_NAME_MAX + 80];
    int n;
} subjects;

static void lockout_subjects(subjects *out, const srv_lockout_conf *lc, const char *identity, const char *addr)
{
    out->n = 0;
    if (!lc->max_failures) return;
    if (lc->by_identity && identity[0]) snprintf(out->s[out->n++], sizeof out->s[0], "id:%s", identity);
    if (lc->by_address && addr[0]) snprintf(out->s[out->n++], sizeof out->s[0], "addr:%s", addr);
}

struct srv_authn {
    const srv_tenant_conf *t;
    char tenant_name[SRV_NAME_MAX];
    char method[16];
    char cred[COMMY_WIRE_JWT_MAX + 1];
    int is_jwt;
    char peer[64], addr[64];
    char identity[SRV_NAME_MAX]; /* claimed, unverified */
    srv_key_conf key;
    int key_found;
    subjects subj;
    int64_t now;
    /* the outcome */
    int decided; /* begin already knows it (unknown tenant, locked, store down) */
    int ok, counts, code;
    const char *client_msg;
    char why[SRV_SCOPES_MAX + 128];
    char jwt_why[256];
    int jwt_rc;
    srv_grant g, jg;
    char locked_msg[128];
    /* the auth threads' queue */
    struct srv_authn *next;
    void (*done)(srv_authn *, void *);
    void *payload;
};

static int decide(srv_authn *a, int code, const char *client_msg)
{
    a->decided = 1;
    a->ok = 0;
    a->counts = 0;
    a->code = code;
    a->client_msg = client_msg;
    return 1;
}

int srv_authn_begin(srv_authn **out, srv_store *store, const srv_tenant_conf *t, const char *tenant_name,
                    const char *api_key, const char *jwt, const char *peer)
{
    srv_authn *a = calloc(1, sizeof *a);
    *out = a;
    if (!a) return 1;
    a->t = t;
    snprintf(a->tenant_name, sizeof a->tenant_name, "%s", tenant_name);
    snprintf(a->method, sizeof a->method, "%s", api_key ? "api_key" : "jwt");
    snprintf(a->cred, sizeof a->cred, "%s", api_key ? api_key : jwt);
    a->is_jwt = !api_key;
    snprintf(a->peer, sizeof a->peer, "%s", peer);
    /* peer is "ADDR:PORT"; the address alone is what a lockout counts */
    snprintf(a->addr, sizeof a->addr, "%s", peer);
    char *colon = strrchr(a->addr, ':');
    if (colon) *colon = '\0';
    a->now = (int64_t)time(NULL);
    a->code = COMMY_WIRE_EAUTH;
    a->counts = 1; /* a failure is a guess unless shown otherwise */
    a->client_msg = "authentication failed: unknown tenant or key, or a wrong secret";
    if (!t) {
        snprintf(a->why, sizeof a->why, "unknown tenant");
        return decide(a, COMMY_WIRE_EAUTH, a->client_msg);
    }
    /* who the attempt claims to be, before anything is verified */
    if (api_key) {
        const char *dot = strchr(api_key, '.');
        if (dot && (size_t)(dot - api_key) < sizeof a->identity) {
            memcpy(a->identity, api_key, (size_t)(dot - api_key));
            a->identity[dot - api_key] = '\0';
        }
        if (!srv_config_name_ok(a->identity)) a->identity[0] = '\0';
        if (a->identity[0] && t->mode != SRV_AUTH_TENANT_MANAGED)
            a->key_found = store->key_get(store, t->name, a->identity, &a->key) == COMMY_OK;
        /* a server-checked key id that does not exist protects nobody: no row for it */
        if (t->mode != SRV_AUTH_TENANT_MANAGED && !a->key_found) a->identity[0] = '\0';
    } else {
        /* verified now when the server checks JWTs (cheap next to PBKDF2); the sub is read either way */
        const srv_jwt_conf none = {0};
        a->jwt_rc = srv_jwt_verify(&a->jg, a->identity, t->mode == SRV_AUTH_TENANT_MANAGED ? &none : &t->jwt, jwt,
                                   strlen(jwt), a->now, a->jwt_why, sizeof a->jwt_why);
    }
    lockout_subjects(&a->subj, &t->lockout, a->identity, a->addr);
    for (int i = 0; i < a->subj.n; i++) {
        int64_t until = 0;
        if (store->lockout_check(store, t->name, a->subj.s[i], a->now, &until) != COMMY_OK) {
            snprintf(a->why, sizeof a->why, "the lockout store failed");
            return decide(a, COMMY_EIO, "authentication is unavailable: the server's store failed");
        }
        if (until) {
            snprintf(a->why, sizeof a->why, "locked out (%s) until %lld", a->subj.s[i], (long long)until);
            snprintf(a->locked_msg, sizeof a->locked_msg,
                     "too many failed logins: further attempts are refused for another %lld s",
                     (long long)(until - a->now));
            return decide(a, COMMY_WIRE_ELOCKED, a->locked_msg);
        }
    }
    return 0;
}

void srv_authn_work(srv_authn *a)
{
    const srv_tenant_conf *t = a->t;
    if (a->decided) return;
    int ok = 0;
    srv_grant g;
    memset(&g, 0, sizeof g);
    if (t->mode != SRV_AUTH_TENANT_MANAGED) {
        if (!a->is_jwt) {
            const char *dot = strchr(a->cred, '.');
            ok = a->key_found && dot && srv_auth_verify_secret(a->key.hash, dot + 1);
            if (ok) {
                snprintf(g.client_id, sizeof g.client_id, "%s", a->key.client_id);
                snprintf(g.scopes, sizeof g.scopes, "%s", a->key.scopes);
            } else {
                snprintf(a->why, sizeof a->why, "%s", a->key_found ? "wrong secret" : "unknown key id");
            }
        } else {
            ok = a->jwt_rc == COMMY_OK;
            if (ok) g = a->jg;
            else {
                snprintf(a->why, sizeof a->why, "%s", a->jwt_why);
                a->client_msg = "authentication failed: the JWT was not accepted";
                if (a->jwt_rc == COMMY_WIRE_EEXPIRED) {
                    /* a genuine token that went stale is no guess */
                    a->client_msg = "authentication failed: the JWT expired";
                    a->code = COMMY_WIRE_EEXPIRED;
                    a->counts = 0;
                }
            }
        }
    }
    if (t->mode == SRV_AUTH_TENANT_MANAGED || (t->mode == SRV_AUTH_HYBRID && ok)) {
        srv_grant cg;
        char cwhy[256];
        int v = srv_callback_call(&cg, &t->callback, t->name, a->method, a->cred, a->addr,
                                  t->mode == SRV_AUTH_HYBRID ? g.client_id : NULL, cwhy, sizeof cwhy);
        ok = 0;
        if (v < 0) {
            srv_log("error", "auth_callback", "tenant %s: %s", t->name, cwhy);
            snprintf(a->why, sizeof a->why, "%s", cwhy);
            a->client_msg = "authentication failed: the tenant's auth service gave no usable answer";
            a->counts = 0; /* the tenant's outage is not the client's guess */
        } else if (v == 0) {
            snprintf(a->why, sizeof a->why, "%s", cwhy);
            a->client_msg = "authentication failed: the tenant refused it";
        } else if (t->mode == SRV_AUTH_TENANT_MANAGED) {
            if (!cg.client_id[0]) {
                srv_log("error", "auth_callback", "tenant %s: the callback allowed but named no client_id", t->name);
                snprintf(a->why, sizeof a->why, "the callback's answer is garbage: allowed without a client_id");
                a->client_msg = "authentication failed: the tenant's auth service gave no usable answer";
                a->counts = 0;
            } else {
                g = cg;
                ok = 1;
            }
        } else if (cg.client_id[0] && strcmp(cg.client_id, g.client_id) != 0) {
            snprintf(a->why, sizeof a->why, "the callback named client %s, the credential is %s's", cg.client_id,
                     g.client_id);
            a->client_msg = "authentication failed: the tenant refused it";
        } else {
            intersect(g.scopes, sizeof g.scopes, cg.scopes);
            if (cg.lifetime_s && (!g.lifetime_s || cg.lifetime_s < g.lifetime_s)) g.lifetime_s = cg.lifetime_s;
            ok = 1;
        }
    }
    a->ok = ok;
    a->g = g;
}

void srv_authn_finish(srv_authn *a, srv_store *store, srv_authn_result *out)
{
    memset(out, 0, sizeof *out);
    if (!a) {
        out->code = COMMY_ENOMEM;
        snprintf(out->message, sizeof out->message, "out of memory");
        return;
    }
    const srv_tenant_conf *t = a->t;
    snprintf(out->method, sizeof out->method, "%s", a->method);
    if (a->decided && a->code == COMMY_WIRE_ELOCKED) {
        srv_log("warn", "auth_locked", "peer %s tenant %s: %s", a->peer, t->name, a->why);
        srv_audit("locked_refused", t->name, a->identity, a->peer, a->method, a->why);
        out->code = COMMY_WIRE_ELOCKED;
        snprintf(out->message, sizeof out->message, "%s", a->locked_msg);
    } else if (!a->ok) {
        srv_log("warn", "auth_failure", "peer %s tenant %s %s%s%s: %s", a->peer, t ? t->name : a->tenant_name,
                a->method, a->identity[0] ? " " : "", a->identity, a->why);
        srv_audit(a->code == COMMY_WIRE_EEXPIRED ? "token_expired" : "auth_failure", t ? t->name : a->tenant_name,
                  a->identity, a->peer, a->method, a->why);
        for (int i = 0; a->counts && i < a->subj.n; i++) {
            int64_t until = 0;
            if (store->lockout_fail(store, t->name, a->subj.s[i], a->now, t->lockout.max_failures, t->lockout.lock_s,
                                    &until) == COMMY_OK &&
                until) {
                char d[200];
                snprintf(d, sizeof d, "%s locked for %d s after %d failed logins", a->subj.s[i], t->lockout.lock_s,
                         t->lockout.max_failures);
                srv_log("warn", "lockout", "tenant %s: %s", t->name, d);
                srv_audit("lockout", t->name, a->identity, a->peer, a->method, d);
            }
        }
        out->code = a->code;
        snprintf(out->message, sizeof out->message, "%s", a->client_msg);
    } else {
        srv_grant g = a->g;
        g.bounded = g.lifetime_s != 0;
        if (!g.lifetime_s || g.lifetime_s > t->token_lifetime_s) g.lifetime_s = t->token_lifetime_s;
        out->grant = g;
        for (int i = 0; i < a->subj.n; i++) store->lockout_clear(store, t->name, a->subj.s[i]);
        snprintf(a->why, sizeof a->why, "scopes [%s], lifetime %d s", g.scopes, g.lifetime_s);
        srv_audit("auth_success", t->name, g.client_id, a->peer, a->method, a->why);
    }
    srv_authn_free(a);
}

void srv_authn_free(srv_authn *a)
{
    if (!a) return;
    OPENSSL_cleanse(a->cred, sizeof a->cred);
    free(a);
}

/* ---- the auth threads ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t th[SRV_AUTHN_THREADS];
    int n;
    int stop;
    srv_authn *head, *tail;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&W.lock);
    for (;;) {
        while (!W.head && !W.stop) pthread_cond_wait(&W.wake, &W.lock);
        if (!W.head) break; /* stopping, and every queued check is done */
        srv_authn *a = W.head;
        W.head = a->next;
        if (!W.head) W.tail = NULL;
        pthread_mutex_unlock(&W.lock);
        srv_authn_work(a);
        a->done(a, a->payload);
        pthread_mutex_lock(&W.lock);
    }
    pthread_mutex_unlock(&W.lock);
    return NULL;
}

int srv_authn_start(void)
{
    /* before the threads: libcurl's global set-up is only safe single-threaded on older builds */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return COMMY_EIO;
    pthread_mutex_lock(&W.lock);
    W.stop = 0;
    while (W.n < SRV_AUTHN_THREADS && pthread_create(&W.th[W.n], NULL, worker_main, NULL) == 0) W.n++;
    int n = W.n;
    pthread_mutex_unlock(&W.lock);
    return n ? COMMY_OK : COMMY_ENOMEM;
}

int srv_authn_offload(srv_authn *a, void (*done)(srv_authn *, void *), void *payload)
{
    pthread_mutex_lock(&W.lock);
    if (!W.n || W.stop) {
        pthread_mutex_unlock(&W.lock);
        return COMMY_EBUSY;
    }
    a->done = done;
    a->payload = payload;
    a->next = NULL;
    if (W.tail) W.tail->next = a;
    else W.head = a;
    W.tail = a;
    pthread_cond_signal(&W.wake);
    pthread_mutex_unlock(&W.lock);
    return COMMY_OK;
}

void srv_authn_stop(void)
{
    pthread_mutex_lock(&W.lock);
    W.stop = 1;
    pthread_cond_broadcast(&W.wake);
    int n = W.n;
    pthread_mutex_unlock(&W.lock);
    for (int i = 0; i < n; i++) pthread_join(W.th[i], NULL);
    pthread_mutex_lock(&W.lock);
    W.n = 0;
    pthread_mutex_unlock(&W.lock);
}
