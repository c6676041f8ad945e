/* The server's JSON configuration. Every field is checked; a bad one is
 * refused at start with its path in the message ("tenants[0].auth.api_keys"). */
#include "server.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int srv_config_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_config_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > COMMY_WIRE_NAME_MAX || s[0] == '.') return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* An optional integer field within [lo, hi]; absent keeps *dst. */
int srv_config_int(const cJSON *obj, const char *key, const char *path, int *dst, int lo, int hi, char *err, size_t cap)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) return 0;
    /* the range first: converting a huge double to an integer is undefined */
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi) ||
        j->valuedouble != (double)(int)j->valuedouble)
        return srv_config_fail(err, cap, "%s.%s must be an integer from %d to %d", path, key, lo, hi);
    *dst = (int)j->valuedouble;
    return 0;
}

int srv_config_str(const cJSON *obj, const char *key, const char *path, char *dst, size_t dcap, int required,
                   char *err, size_t cap)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j) return required ? srv_config_fail(err, cap, "%s.%s is required", path, key) : 0;
    if (!cJSON_IsString(j) || !j->valuestring[0] || strlen(j->valuestring) >= dcap)
        return srv_config_fail(err, cap, "%s.%s must be a non-empty string shorter than %zu bytes", path, key, dcap);
    memcpy(dst, j->valuestring, strlen(j->valuestring) + 1);
    return 0;
}

static const char *const known_scopes[] = {"read", "write", "admin", NULL};

int srv_config_scope_ok(const char *scope)
{
    for (int i = 0; known_scopes[i]; i++)
        if (strcmp(scope, known_scopes[i]) == 0) return 1;
    /* service:NAME:read / service:NAME:write */
    if (strncmp(scope, "service:", 8) != 0) return 0;
    const char *colon = strrchr(scope, ':');
    if (colon == scope + 7) return 0;
    char svc[SRV_NAME_MAX];
    size_t n = (size_t)(colon - (scope + 8));
    if (n == 0 || n >= sizeof svc) return 0;
    memcpy(svc, scope + 8, n);
    svc[n] = '\0';
    return srv_config_name_ok(svc) && (strcmp(colon + 1, "read") == 0 || strcmp(colon + 1, "write") == 0);
}

static int readable(const char *path, const char *field, char *err, size_t cap)
{
    if (path[0] && access(path, R_OK) != 0) return srv_config_fail(err, cap, "%s: cannot read %s", field, path);
    return 0;
}

/* auth.mode, auth.jwt, auth.callback, auth.lockout of one tenant. */
static int load_auth_modes(srv_tenant_conf *t, const cJSON *auth, const char *apath, char *err, size_t cap)
{
    char mode[32] = "server_managed", f[160];
    if (srv_config_str(auth, "mode", apath, mode, sizeof mode, 0, err, cap)) return -1;
    if (strcmp(mode, "server_managed") == 0) t->mode = SRV_AUTH_SERVER_MANAGED;
    else if (strcmp(mode, "tenant_managed") == 0) t->mode = SRV_AUTH_TENANT_MANAGED;
    else if (strcmp(mode, "hybrid") == 0) t->mode = SRV_AUTH_HYBRID;
    else return srv_config_fail(err, cap, "%s.mode '%s' must be \"server_managed\", \"tenant_managed\" or \"hybrid\"", apath, mode);

    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(auth, "callback");
    snprintf(f, sizeof f, "%s.callback", apath);
    if (cb && !cJSON_IsObject(cb)) return srv_config_fail(err, cap, "%s must be an object", f);
    if (t->mode != SRV_AUTH_SERVER_MANAGED && !cb)
        return srv_config_fail(err, cap, "%s is required when mode is \"%s\"", f, mode);
    if (t->mode == SRV_AUTH_SERVER_MANAGED && cb)
        return srv_config_fail(err, cap, "%s is only used when mode is \"tenant_managed\" or \"hybrid\"", f);
    if (cb) {
        srv_callback_conf *cc = &t->callback;
        char sub[200];
        if (srv_config_str(cb, "url", f, cc->url, sizeof cc->url, 1, err, cap)) return -1;
        if (strncmp(cc->url, "https://", 8) != 0 || !cc->url[8])
            return srv_config_fail(err, cap, "%s.url must be an https:// URL", f);
        for (const char *p = cc->url; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                return srv_config_fail(err, cap, "%s.url must be printable ASCII without spaces", f);
        cc->timeout_ms = 2000;
        if (srv_config_int(cb, "timeout_ms", f, &cc->timeout_ms, 50, 60000, err, cap)) return -1;
        if (srv_config_str(cb, "ca_file", f, cc->ca_file, sizeof cc->ca_file, 0, err, cap) ||
            srv_config_str(cb, "client_cert", f, cc->client_cert, sizeof cc->client_cert, 0, err, cap) ||
            srv_config_str(cb, "client_key", f, cc->client_key, sizeof cc->client_key, 0, err, cap))
            return -1;
        if (!cc->client_cert[0] != !cc->client_key[0])
            return srv_config_fail(err, cap, "%s.client_cert and %s.client_key go together", f, f);
        snprintf(sub, sizeof sub, "%s.ca_file", f);
        if (readable(cc->ca_file, sub, err, cap)) return -1;
        snprintf(sub, sizeof sub, "%s.client_cert", f);
        if (readable(cc->client_cert, sub, err, cap)) return -1;
        snprintf(sub, sizeof sub, "%s.client_key", f);
        if (readable(cc->client_key, sub, err, cap)) return -1;
    }

    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(auth, "jwt");
    snprintf(f, sizeof f, "%s.jwt", apath);
    if (jw && !cJSON_IsObject(jw)) return srv_config_fail(err, cap, "%s must be an object", f);
    if (jw && t->mode == SRV_AUTH_TENANT_MANAGED)
        return srv_config_fail(err, cap, "%s: a tenant_managed tenant verifies no JWT itself (its callback does); use \"hybrid\"", f);
    if (jw) {
        srv_jwt_conf *jc = &t->jwt;
        char secret[sizeof jc->hs256_secret] = "", keyfile[PATH_MAX] = "";
        if (srv_config_str(jw, "hs256_secret", f, secret, sizeof secret, 0, err, cap)) return -1;
        if (secret[0] && strlen(secret) < 32)
            return srv_config_fail(err, cap, "%s.hs256_secret must be at least 32 bytes (RFC 7518: a key as long as the hash)", f);
        jc->hs256_len = strlen(secret);
        memcpy(jc->hs256_secret, secret, jc->hs256_len);
        memset(secret, 0, sizeof secret);
        if (srv_config_str(jw, "rs256_public_key", f, keyfile, sizeof keyfile, 0, err, cap)) return -1;
        if (keyfile[0]) {
            char why[256];
            if (!(jc->rs256_key = srv_jwt_load_rs256(keyfile, why, sizeof why)))
                return srv_config_fail(err, cap, "%s.rs256_public_key: %s", f, why);
        }
        if (!jc->hs256_len && !jc->rs256_key) return srv_config_fail(err, cap, "%s needs hs256_secret or rs256_public_key", f);
        if (srv_config_str(jw, "audience", f, jc->audience, sizeof jc->audience, 1, err, cap)) return -1;
        if (srv_config_str(jw, "issuer", f, jc->issuer, sizeof jc->issuer, 0, err, cap)) return -1;
        jc->leeway_s = 30;
        if (srv_config_int(jw, "leeway_s", f, &jc->leeway_s, 0, 300, err, cap)) return -1;
        jc->enabled = 1;
    }

    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(auth, "lockout");
    snprintf(f, sizeof f, "%s.lockout", apath);
    srv_lockout_conf *lc = &t->lockout;
    lc->max_failures = 5;
    lc->lock_s = 300;
    lc->by_identity = 1;
    if (lo && !cJSON_IsObject(lo)) return srv_config_fail(err, cap, "%s must be an object", f);
    if (lo) {
        char by[16] = "identity";
        if (srv_config_int(lo, "max_failures", f, &lc->max_failures, 0, 1000, err, cap) ||
            srv_config_int(lo, "lock_s", f, &lc->lock_s, 1, 7 * 24 * 3600, err, cap) ||
            srv_config_str(lo, "by", f, by, sizeof by, 0, err, cap))
            return -1;
        lc->by_identity = strcmp(by, "identity") == 0 || strcmp(by, "both") == 0;
        lc->by_address = strcmp(by, "address") == 0 || strcmp(by, "both") == 0;
        if (!lc->by_identity && !lc->by_address)
            return srv_config_fail(err, cap, "%s.by must be \"identity\", \"address\" or \"both\"", f);
    }
    return 0;
}

static int load_tenant(srv_tenant_conf *t, const cJSON *j, int idx, char *err, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "tenants[%d]", idx);
    if (!cJSON_IsObject(j)) return srv_config_fail(err, cap, "%s must be an object", path);
    if (srv_config_str(j, "name", path, t->name, sizeof t->name, 1, err, cap)) return -1;
    if (!srv_config_name_ok(t->name)) return srv_config_fail(err, cap, "%s.name must be 1-63 bytes of [A-Za-z0-9_.-]", path);
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(j, "auth");
    if (!cJSON_IsObject(auth)) return srv_config_fail(err, cap, "%s.auth must be an object", path);
    char apath[80];
    snprintf(apath, sizeof apath, "%s.auth", path);
    if (load_auth_modes(t, auth, apath, err, cap)) return -1;
    t->token_lifetime_s = 3600;
    if (srv_config_int(auth, "token_lifetime_s", apath, &t->token_lifetime_s, 1, 30 * 24 * 3600, err, cap)) return -1;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(auth, "api_keys");
    if (keys && !cJSON_IsArray(keys)) return srv_config_fail(err, cap, "%s.api_keys must be an array", apath);
    int nk = cJSON_GetArraySize(keys);
    t->keys = calloc((size_t)nk + 1, sizeof *t->keys);
    if (!t->keys) return srv_config_fail(err, cap, "out of memory");
    for (int i = 0; i < nk; i++) {
        const cJSON *k = cJSON_GetArrayItem(keys, i);
        srv_key_conf *kc = &t->keys[t->nkeys++];
        char kpath[128];
        snprintf(kpath, sizeof kpath, "%s.api_keys[%d]", apath, i);
        if (!cJSON_IsObject(k)) return srv_config_fail(err, cap, "%s must be an object", kpath);
        if (srv_config_str(k, "id", kpath, kc->id, sizeof kc->id, 1, err, cap)) return -1;
        if (!srv_config_name_ok(kc->id) || strchr(kc->id, '.')) return srv_config_fail(err, cap, "%s.id must be [A-Za-z0-9_-], no dots", kpath);
        if (srv_config_str(k, "hash", kpath, kc->hash, sizeof kc->hash, 1, err, cap)) return -1;
        if (strncmp(kc->hash, "pbkdf2-sha256$", 14) != 0)
            return srv_config_fail(err, cap, "%s.hash must be a pbkdf2-sha256$... hash (make one with commy-server --hash-key)", kpath);
        snprintf(kc->client_id, sizeof kc->client_id, "%s", kc->id);
        if (srv_config_str(k, "client_id", kpath, kc->client_id, sizeof kc->client_id, 0, err, cap)) return -1;
        if (!srv_config_name_ok(kc->client_id)) return srv_config_fail(err, cap, "%s.client_id must be 1-63 bytes of [A-Za-z0-9_.-]", kpath);
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(k, "scopes");
        if (!cJSON_IsArray(sc)) return srv_config_fail(err, cap, "%s.scopes must be an array of strings", kpath);
        const cJSON *s;
        cJSON_ArrayForEach(s, sc)
        {
            if (!cJSON_IsString(s) || !srv_config_scope_ok(s->valuestring))
                return srv_config_fail(err, cap, "%s.scopes: '%s' is not a scope (read, write, admin, service:NAME:read|write)",
                           kpath, cJSON_IsString(s) ? s->valuestring : "?");
            size_t used = strlen(kc->scopes);
            if (used + strlen(s->valuestring) + 2 > sizeof kc->scopes) return srv_config_fail(err, cap, "%s.scopes is too long", kpath);
            snprintf(kc->scopes + used, sizeof kc->scopes - used, "%s%s", used ? " " : "", s->valuestring);
        }
    }
    if (t->mode == SRV_AUTH_TENANT_MANAGED && t->nkeys)
        return srv_config_fail(err, cap, "%s.api_keys: a tenant_managed tenant checks no keys itself (its callback does); use "
                             "\"hybrid\" for both", apath);
    if (t->mode == SRV_AUTH_HYBRID && !t->nkeys && !t->jwt.enabled)
        return srv_config_fail(err, cap, "%s.mode \"hybrid\" needs api_keys or jwt for the server's half of the check", apath);
    const cJSON *svcs = cJSON_GetObjectItemCaseSensitive(j, "services");
    if (svcs && !cJSON_IsArray(svcs)) return srv_config_fail(err, cap, "%s.services must be an array", path);
    int ns = cJSON_GetArraySize(svcs);
    t->services = calloc((size_t)ns + 1, sizeof *t->services);
    if (!t->services) return srv_config_fail(err, cap, "out of memory");
    for (int i = 0; i < ns; i++) {
        const cJSON *s = cJSON_GetArrayItem(svcs, i);
        srv_service_conf *sc = &t->services[t->nservices++];
        char spath[96];
        snprintf(spath, sizeof spath, "%s.services[%d]", path, i);
        if (!cJSON_IsObject(s)) return srv_config_fail(err, cap, "%s must be an object", spath);
        if (srv_config_str(s, "name", spath, sc->name, sizeof sc->name, 1, err, cap)) return -1;
        if (!srv_config_name_ok(sc->name)) return srv_config_fail(err, cap, "%s.name must be 1-63 bytes of [A-Za-z0-9_.-]", spath);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(s, "persistent");
        if (p && !cJSON_IsBool(p)) return srv_config_fail(err, cap, "%s.persistent must be true or false", spath);
        sc->persistent = cJSON_IsTrue(p);
    }
    return 0;
}

static void defaults(srv_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->address, sizeof c->address, "127.0.0.1");
    c->port = 8443;
    c->max_connections = 1024;
    c->max_message_bytes = 1 << 20;
    c->outbound_queue_cap = 1024;
    c->ping_interval_s = 30;
    c->stall_timeout_s = 30;
}

int srv_config_load(srv_config *c, const char *file, char *err, size_t cap)
{
    defaults(c);
    FILE *f = fopen(file, "r");
    if (!f) return srv_config_fail(err, cap, "cannot read the configuration %s: %s", file, strerror(errno));
    char *text = NULL;
    size_t len = 0, got;
    char buf[4096];
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + got > (4u << 20)) {
            fclose(f);
            free(text);
            return srv_config_fail(err, cap, "the configuration %s is larger than 4 MiB", file);
        }
        char *t = realloc(text, len + got + 1);
        if (!t) break;
        text = t;
        memcpy(text + len, buf, got);
        len += got;
    }
    fclose(f);
    int rc = srv_config_parse(c, text ? text : "", len, file, err, cap);
    free(text);
    return rc;
}

int srv_config_parse(srv_config *c, const char *text, size_t len, const char *origin, char *err, size_t cap)
{
    defaults(c);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        return srv_config_fail(err, cap, "the configuration %s is not valid JSON (near byte %ld)", origin,
                   end ? (long)(end - text) : 0L);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        srv_config_fail(err, cap, "the configuration must be a JSON object");
        goto out;
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "listen");
    if (l) {
        if (!cJSON_IsObject(l)) { srv_config_fail(err, cap, "listen must be an object"); goto out; }
        if (srv_config_str(l, "address", "listen", c->address, sizeof c->address, 0, err, cap)) goto out;
        /* lws takes an address or an interface's name; anything else (a host
         * name such as "localhost") it reports in its log and then serves
         * nothing */
        unsigned char sa[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, c->address, sa) != 1 && inet_pton(AF_INET6, c->address, sa) != 1 &&
            if_nametoindex(c->address) == 0) {
            srv_config_fail(err, cap, "listen.address '%s' must be an IP address (127.0.0.1 or ::1 for loopback only, "
                            "0.0.0.0 for every IPv4 address, \"::\" for every address) or a network interface's name; "
                            "host names are not resolved", c->address);
            goto out;
        }
        if (srv_config_int(l, "port", "listen", &c->port, 0, 65535, err, cap)) goto out;
    }
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(root, "tls");
    if (tls) {
        if (!cJSON_IsObject(tls)) { srv_config_fail(err, cap, "tls must be an object"); goto out; }
        if (srv_config_str(tls, "cert", "tls", c->cert, sizeof c->cert, 1, err, cap)) goto out;
        if (srv_config_str(tls, "key", "tls", c->key, sizeof c->key, 1, err, cap)) goto out;
        if (srv_config_str(tls, "client_ca", "tls", c->client_ca, sizeof c->client_ca, 0, err, cap)) goto out;
        if (access(c->cert, R_OK) != 0) { srv_config_fail(err, cap, "tls.cert: cannot read %s", c->cert); goto out; }
        if (access(c->key, R_OK) != 0) { srv_config_fail(err, cap, "tls.key: cannot read %s", c->key); goto out; }
        if (c->client_ca[0] && access(c->client_ca, R_OK) != 0) { srv_config_fail(err, cap, "tls.client_ca: cannot read %s", c->client_ca); goto out; }
    }
    if (srv_config_str(root, "data_root", "config", c->data_root, sizeof c->data_root - 256, 1, err, cap)) goto out;
    if (srv_config_str(root, "audit_log", "config", c->audit_log, sizeof c->audit_log, 0, err, cap)) goto out;
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(root, "limits");
    if (lim) {
        int mm = (int)c->max_message_bytes;
        if (!cJSON_IsObject(lim)) { srv_config_fail(err, cap, "limits must be an object"); goto out; }
        if (srv_config_int(lim, "max_connections", "limits", &c->max_connections, 1, 100000, err, cap) ||
            srv_config_int(lim, "max_message_bytes", "limits", &mm, 256, 64 << 20, err, cap) ||
            srv_config_int(lim, "outbound_queue_cap", "limits", &c->outbound_queue_cap, 1, 1000000, err, cap) ||
            srv_config_int(lim, "ping_interval_s", "limits", &c->ping_interval_s, 1, 3600, err, cap) ||
            srv_config_int(lim, "stall_timeout_s", "limits", &c->stall_timeout_s, 1, 3600, err, cap))
            goto out;
        c->max_message_bytes = (size_t)mm;
    }
    if (srv_mirror_conf_parse(&c->mirror, cJSON_GetObjectItemCaseSensitive(root, "mirror"), err, cap)) goto out;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tenants");
    if (!cJSON_IsArray(ts) || cJSON_GetArraySize(ts) == 0) {
        srv_config_fail(err, cap, "tenants must be a non-empty array");
        goto out;
    }
    c->tenants = calloc((size_t)cJSON_GetArraySize(ts), sizeof *c->tenants);
    if (!c->tenants) { srv_config_fail(err, cap, "out of memory"); goto out; }
    const cJSON *t;
    cJSON_ArrayForEach(t, ts)
    {
        if (load_tenant(&c->tenants[c->ntenants], t, c->ntenants, err, cap)) { c->ntenants++; goto out; }
        for (int i = 0; i < c->ntenants; i++)
            if (strcmp(c->tenants[i].name, c->tenants[c->ntenants].name) == 0) {
                srv_config_fail(err, cap, "tenants[%d].name '%s' is used twice", c->ntenants, c->tenants[i].name);
                c->ntenants++;
                goto out;
            }
        c->ntenants++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) srv_config_free(c);
    return rc;
}

int srv_config_demo(srv_config *c, char *api_key, size_t akcap, char *err, size_t cap)
{
    defaults(c);
    snprintf(c->data_root, sizeof c->data_root, "%s/commy-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(c->data_root)) return srv_config_fail(err, cap, "cannot make a temp data root: %s", strerror(errno));
    if ((size_t)snprintf(c->cert, sizeof c->cert, "%s/demo-cert.pem", c->data_root) >= sizeof c->cert ||
        (size_t)snprintf(c->key, sizeof c->key, "%s/demo-key.pem", c->data_root) >= sizeof c->key)
        return srv_config_fail(err, cap, "TMPDIR is too long");
    if (srv_auth_make_cert(c->cert, c->key, err, cap)) return -1;
    c->tenants = calloc(1, sizeof *c->tenants);
    srv_tenant_conf *t = c->tenants;
    if (!t || !(t->keys = calloc(1, sizeof *t->keys)) || !(t->services = calloc(1, sizeof *t->services)))
        return srv_config_fail(err, cap, "out of memory");
    c->ntenants = 1;
    snprintf(t->name, sizeof t->name, "demo");
    t->token_lifetime_s = 3600;
    t->lockout = (srv_lockout_conf){.max_failures = 5, .lock_s = 300, .by_identity = 1};
    t->nkeys = 1;
    snprintf(t->keys[0].id, sizeof t->keys[0].id, "demo");
    snprintf(t->keys[0].client_id, sizeof t->keys[0].client_id, "demo");
    snprintf(t->keys[0].scopes, sizeof t->keys[0].scopes, "read write admin");
    char secret[65];
    if (srv_auth_random_hex(secret, 24)) return srv_config_fail(err, cap, "no randomness");
    snprintf(api_key, akcap, "demo.%s", secret);
    if (srv_auth_hash_secret(t->keys[0].hash, sizeof t->keys[0].hash, secret, 100000))
        return srv_config_fail(err, cap, "cannot hash the demo key");
    t->nservices = 1;
    snprintf(t->services[0].name, sizeof t->services[0].name, "demo");
    return 0;
}

void srv_config_free(srv_config *c)
{
    for (int i = 0; c->tenants && i < c->ntenants; i++) {
        srv_jwt_free_key(c->tenants[i].jwt.rs256_key);
        OPENSSL_cleanse(c->tenants[i].jwt.hs256_secret, sizeof c->tenants[i].jwt.hs256_secret);
        free(c->tenants[i].keys);
        free(c->tenants[i].services);
    }
    free(c->tenants);
    c->tenants = NULL;
    c->ntenants = 0;
}

const srv_tenant_conf *srv_config_tenant(const srv_config *c, const char *name)
{
    for (int i = 0; i < c->ntenants; i++)
        if (strcmp(c->tenants[i].name, name) == 0) return &c->tenants[i];
    return NULL;
}
