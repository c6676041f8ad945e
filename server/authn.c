/* The decision behind authenticate with an API key or a JWT, per tenant mode:
 *   server_managed  the server checks the key (PBKDF2) or the JWT;
 *   tenant_managed  the tenant's HTTPS callback decides and names the grant;
 *   hybrid          both must allow; the scopes are the intersection and the
 *                   lifetime the shorter one.
 * Around it: failed-login lockouts (in the store) and the audit log. Runs on
 * the event-loop thread without the server lock; a callback blocks it for at
 * most the tenant's callback.timeout_ms. */
#include "server.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static void refuse(srv_authn_result *out, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    out->code = code;
}

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

void srv_authn_check(srv_authn_result *out, srv_store *store, const srv_tenant_conf *t, const char *tenant_name,
                     const char *api_key, const char *jwt, const char *peer)
{
    memset(out, 0, sizeof *out);
    snprintf(out->method, sizeof out->method, "%s", api_key ? "api_key" : "jwt");
    const char *cred = api_key ? api_key : jwt;
    int64_t now = (int64_t)time(NULL);
    char addr[64], identity[SRV_NAME_MAX] = "", why[SRV_SCOPES_MAX + 128] = "";
    /* peer is "ADDR:PORT"; the address alone is what a lockout counts */
    snprintf(addr, sizeof addr, "%s", peer);
    char *colon = strrchr(addr, ':');
    if (colon) *colon = '\0';
    if (!t) {
        srv_log("warn", "auth_failure", "peer %s tenant %s: unknown tenant", peer, tenant_name);
        srv_audit("auth_failure", tenant_name, NULL, peer, out->method, "unknown tenant");
        return refuse(out, COMMY_WIRE_EAUTH, "authentication failed: unknown tenant or key, or a wrong secret");
    }
    /* who the attempt claims to be, before anything is verified */
    srv_key_conf key;
    int key_found = 0;
    if (api_key) {
        const char *dot = strchr(api_key, '.');
        if (dot && (size_t)(dot - api_key) < sizeof identity) {
            memcpy(identity, api_key, (size_t)(dot - api_key));
            identity[dot - api_key] = '\0';
        }
        if (!srv_config_name_ok(identity)) identity[0] = '\0';
        if (identity[0] && t->mode != SRV_AUTH_TENANT_MANAGED)
            key_found = store->key_get(store, t->name, identity, &key) == COMMY_OK;
        /* a server-checked key id that does not exist protects nobody: no row for it */
        if (t->mode != SRV_AUTH_TENANT_MANAGED && !key_found) identity[0] = '\0';
    }
    srv_grant g, jg;
    int jwt_rc = COMMY_WIRE_EAUTH;
    char jwt_why[256] = "";
    if (jwt) {
        /* verified now when the server checks JWTs; the sub is read either way */
        const srv_jwt_conf none = {0};
        jwt_rc = srv_jwt_verify(&jg, identity, t->mode == SRV_AUTH_TENANT_MANAGED ? &none : &t->jwt, jwt,
                                strlen(jwt), now, jwt_why, sizeof jwt_why);
    }

    subjects subj;
    lockout_subjects(&subj, &t->lockout, identity, addr);
    for (int i = 0; i < subj.n; i++) {
        int64_t until = 0;
        if (store->lockout_check(store, t->name, subj.s[i], now, &until) != COMMY_OK) {
            srv_audit("auth_failure", t->name, identity, peer, out->method, "the lockout store failed");
            return refuse(out, COMMY_EIO, "authentication is unavailable: the server's store failed");
        }
        if (until) {
            snprintf(why, sizeof why, "locked out (%s) until %lld", subj.s[i], (long long)until);
            srv_log("warn", "auth_locked", "peer %s tenant %s: %s", peer, t->name, why);
            srv_audit("locked_refused", t->name, identity, peer, out->method, why);
            return refuse(out, COMMY_WIRE_ELOCKED,
                          "too many failed logins: further attempts are refused for another %lld s",
                          (long long)(until - now));
        }
    }

    int ok = 0, counts = 1; /* counts: the failure is a guess (an expired but genuine JWT is not) */
    int code = COMMY_WIRE_EAUTH;
    const char *client_msg = "authentication failed: unknown tenant or key, or a wrong secret";
    memset(&g, 0, sizeof g);
    if (t->mode != SRV_AUTH_TENANT_MANAGED) {
        if (api_key) {
            const char *dot = strchr(api_key, '.');
            ok = key_found && dot && srv_auth_verify_secret(key.hash, dot + 1);
            if (ok) {
                snprintf(g.client_id, sizeof g.client_id, "%s", key.client_id);
                snprintf(g.scopes, sizeof g.scopes, "%s", key.scopes);
            } else {
                snprintf(why, sizeof why, "%s", key_found ? "wrong secret" : "unknown key id");
            }
        } else {
            ok = jwt_rc == COMMY_OK;
            if (ok) g = jg;
            else {
                snprintf(why, sizeof why, "%s", jwt_why);
                client_msg = jwt_rc == COMMY_WIRE_EEXPIRED ? "authentication failed: the JWT expired"
                                                           : "authentication failed: the JWT was not accepted";
                if (jwt_rc == COMMY_WIRE_EEXPIRED) code = COMMY_WIRE_EEXPIRED, counts = 0;
            }
        }
    }
    if (t->mode == SRV_AUTH_TENANT_MANAGED || (t->mode == SRV_AUTH_HYBRID && ok)) {
        srv_grant cg;
        char cwhy[256];
        int v = srv_callback_call(&cg, &t->callback, t->name, out->method, cred, addr,
                                  t->mode == SRV_AUTH_HYBRID ? g.client_id : NULL, cwhy, sizeof cwhy);
        ok = 0;
        if (v < 0) {
            srv_log("error", "auth_callback", "tenant %s: %s", t->name, cwhy);
            snprintf(why, sizeof why, "%s", cwhy);
            client_msg = "authentication failed: the tenant's auth service gave no usable answer";
            counts = 0; /* the tenant's outage is not the client's guess */
        } else if (v == 0) {
            snprintf(why, sizeof why, "%s", cwhy);
            client_msg = "authentication failed: the tenant refused it";
        } else if (t->mode == SRV_AUTH_TENANT_MANAGED) {
            if (!cg.client_id[0]) {
                srv_log("error", "auth_callback", "tenant %s: the callback allowed but named no client_id", t->name);
                snprintf(why, sizeof why, "the callback's answer is garbage: allowed without a client_id");
                client_msg = "authentication failed: the tenant's auth service gave no usable answer";
                counts = 0;
            } else {
                g = cg;
                ok = 1;
            }
        } else if (cg.client_id[0] && strcmp(cg.client_id, g.client_id) != 0) {
            snprintf(why, sizeof why, "the callback named client %s, the credential is %s's", cg.client_id,
                     g.client_id);
            client_msg = "authentication failed: the tenant refused it";
        } else {
            intersect(g.scopes, sizeof g.scopes, cg.scopes);
            if (cg.lifetime_s && (!g.lifetime_s || cg.lifetime_s < g.lifetime_s)) g.lifetime_s = cg.lifetime_s;
            ok = 1;
        }
    }

    if (!ok) {
        srv_log("warn", "auth_failure", "peer %s tenant %s %s%s%s: %s", peer, t->name, out->method,
                identity[0] ? " " : "", identity, why);
        srv_audit(code == COMMY_WIRE_EEXPIRED ? "token_expired" : "auth_failure", t->name, identity, peer,
                  out->method, why);
        for (int i = 0; counts && i < subj.n; i++) {
            int64_t until = 0;
            if (store->lockout_fail(store, t->name, subj.s[i], now, t->lockout.max_failures, t->lockout.lock_s,
                                    &until) == COMMY_OK &&
                until) {
                char d[200];
                snprintf(d, sizeof d, "%s locked for %d s after %d failed logins", subj.s[i], t->lockout.lock_s,
                         t->lockout.max_failures);
                srv_log("warn", "lockout", "tenant %s: %s", t->name, d);
                srv_audit("lockout", t->name, identity, peer, out->method, d);
            }
        }
        return refuse(out, code, "%s", client_msg);
    }
    if (!g.lifetime_s || g.lifetime_s > t->token_lifetime_s) g.lifetime_s = t->token_lifetime_s;
    out->grant = g;
    for (int i = 0; i < subj.n; i++) store->lockout_clear(store, t->name, subj.s[i]);
    snprintf(why, sizeof why, "scopes [%s], lifetime %d s", g.scopes, g.lifetime_s);
    srv_audit("auth_success", t->name, g.client_id, peer, out->method, why);
}
