/* libFuzzer target for the JWT verifier. An input is either a compact token
 * as a client would send it, or (when it holds a newline) a raw JSON header
 * and payload that the target encodes and signs with the tenant's HS256
 * secret, so the claim checks behind the signature are reached too. Nothing
 * may crash, and a token is granted only with a valid client id and scopes. */
#include "server.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    (void)level, (void)event, (void)fmt;
}

static const char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static srv_jwt_conf conf;

static size_t b64url(char *out, const unsigned char *in, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63], out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63];
    }
    return o;
}

static void check(const char *jwt, size_t len)
{
    srv_grant g;
    char sub[SRV_NAME_MAX], why[256] = "";
    int rc = srv_jwt_verify(&g, sub, &conf, jwt, len, 1800000000, why, sizeof why);
    if (rc != COMMY_OK) {
        if (!why[0] || g.client_id[0] || g.scopes[0]) abort();
        return;
    }
    if (!srv_config_name_ok(g.client_id) || g.lifetime_s < 1) abort();
    char copy[SRV_SCOPES_MAX], *save = NULL;
    memcpy(copy, g.scopes, sizeof copy);
    for (char *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save))
        if (!srv_config_scope_ok(s)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!conf.enabled) {
        conf.enabled = 1;
        conf.hs256_len = strlen(secret);
        memcpy(conf.hs256_secret, secret, conf.hs256_len);
        strcpy(conf.audience, "commy");
        strcpy(conf.issuer, "idp");
        conf.leeway_s = 30;
    }
    check((const char *)data, size);
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || size > 4096) return 0;
    size_t hl = (size_t)(nl - data), pl = size - hl - 1;
    char *t = malloc(2 * size + 64);
    size_t n = b64url(t, data, hl);
    t[n++] = '.';
    n += b64url(t + n, nl + 1, pl);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)t, n, mac, &maclen);
    t[n++] = '.';
    n += b64url(t + n, mac, maclen);
    check(t, n);
    free(t);
    return 0;
}
