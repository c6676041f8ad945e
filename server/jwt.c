/* JWT authentication (RFC 7519): compact JWS with HS256 or RS256 only.
 * Every byte is untrusted: the parts are bounded, base64url is decoded
 * strictly, alg "none" and every other algorithm are refused, and the HS256
 * MAC is compared in constant time. Nothing here logs or keeps the token. */
#include "server.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int refuse(char *why, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return code;
}

static int b64url_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* base64url without padding (RFC 7515 section 2), canonical only: unused
 * trailing bits must be zero. Returns the decoded length, or -1. */
static long b64url_decode(unsigned char *out, size_t cap, const char *in, size_t len)
{
    if (len % 4 == 1) return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int d = b64url_digit((unsigned char)in[i]);
        if (d < 0) return -1;
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap) return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1;
    return (long)n;
}

/* Decodes a base64url part holding one JSON object and nothing else. */
static cJSON *json_part(const char *in, size_t len)
{
    unsigned char *buf = malloc(len + 1);
    if (!buf) return NULL;
    long n = b64url_decode(buf, len, in, len);
    cJSON *j = NULL;
    if (n > 0) {
        const char *end = NULL;
        j = cJSON_ParseWithLengthOpts((const char *)buf, (size_t)n, &end, 0);
        if (j) {
            while (end < (const char *)buf + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
            if (!cJSON_IsObject(j) || end != (const char *)buf + n) {
                cJSON_Delete(j);
                j = NULL;
            }
        }
    }
    free(buf);
    return j;
}

/* A NumericDate claim as whole seconds; -1 when it has the wrong shape. */
static int numeric_date(int64_t *out, const cJSON *j)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0 && j->valuedouble < 1e13)) return -1;
    *out = (int64_t)j->valuedouble;
    return 0;
}

static int add_scope(char *scopes, size_t cap, const char *s, size_t n)
{
    char one[SRV_SCOPES_MAX];
    if (n == 0) return 0;
    if (n >= sizeof one) return 0; /* longer than any scope: not one of ours */
    memcpy(one, s, n);
    one[n] = '\0';
    if (!srv_config_scope_ok(one)) return 0; /* an identity provider's other scopes are not ours */
    size_t used = strlen(scopes);
    if (used + n + 2 > cap) return -1;
    snprintf(scopes + used, cap - used, "%s%s", used ? " " : "", one);
    return 0;
}

int srv_jwt_verify(srv_grant *out, char *subject, const srv_jwt_conf *jc, const char *jwt, size_t len, int64_t now,
                   char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (subject) subject[0] = '\0';
    if (len == 0 || len > COMMY_WIRE_JWT_MAX)
        return refuse(why, cap, COMMY_WIRE_EAUTH, "the JWT is empty or longer than %d bytes", COMMY_WIRE_JWT_MAX);
    const char *d1 = memchr(jwt, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)) || d1 == jwt || d2 == d1 + 1 || d2 + 1 == jwt + len)
        return refuse(why, cap, COMMY_WIRE_EAUTH, "the JWT is not a signed compact JWS (three non-empty base64url parts)");
    int rc = COMMY_WIRE_EAUTH;
    cJSON *head = json_part(jwt, (size_t)(d1 - jwt));
    cJSON *body = json_part(d1 + 1, (size_t)(d2 - d1 - 1));
    unsigned char *sig = NULL;
    if (!head || !body) {
        refuse(why, cap, rc, "the JWT's header or payload is not base64url of a JSON object");
        goto out;
    }
    /* the subject, unverified, only for counting failed logins */
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(body, "sub");
    if (subject && cJSON_IsString(sub) && srv_config_name_ok(sub->valuestring))
        snprintf(subject, SRV_NAME_MAX, "%s", sub->valuestring);
    if (!jc || !jc->enabled) {
        refuse(why, cap, rc, "this tenant accepts no JWT");
        goto out;
    }

    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(head, "alg");
    int hs = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;
    int rs = cJSON_IsString(alg) && strcmp(alg->valuestring, "RS256") == 0;
    if (!hs && !rs) {
        refuse(why, cap, rc, "the JWT's alg is not accepted (HS256 or RS256 only; never \"none\")");
        goto out;
    }
    if ((hs && !jc->hs256_len) || (rs && !jc->rs256_key)) {
        refuse(why, cap, rc, "the JWT is signed with %s, which this tenant does not accept", hs ? "HS256" : "RS256");
        goto out;
    }
    if (cJSON_GetObjectItemCaseSensitive(head, "crit")) {
        refuse(why, cap, rc, "the JWT's header has \"crit\" extensions, which this server does not understand");
        goto out;
    }
    size_t siglen_text = len - (size_t)(d2 + 1 - jwt);
    sig = malloc(siglen_text + 1);
    long siglen = sig ? b64url_decode(sig, siglen_text, d2 + 1, siglen_text) : -1;
    const unsigned char *signed_part = (const unsigned char *)jwt;
    size_t signed_len = (size_t)(d2 - jwt);
    int good = 0;
    if (siglen > 0 && hs) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (HMAC(EVP_sha256(), jc->hs256_secret, (int)jc->hs256_len, signed_part, signed_len, mac, &maclen) &&
            maclen == 32 && siglen == 32)
            good = CRYPTO_memcmp(mac, sig, 32) == 0;
        OPENSSL_cleanse(mac, sizeof mac);
    } else if (siglen > 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        good = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)jc->rs256_key) == 1 &&
               EVP_DigestVerify(ctx, sig, (size_t)siglen, signed_part, signed_len) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (!good) {
        refuse(why, cap, rc, "the JWT's signature does not verify");
        goto out;
    }

    /* the claims, now that they are known to come from the key holder */
    int64_t exp, nbf;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(body, "exp");
    if (!j || numeric_date(&exp, j)) {
        refuse(why, cap, rc, "the JWT needs an \"exp\" claim (a NumericDate)");
        goto out;
    }
    if (now >= exp + jc->leeway_s) {
        rc = refuse(why, cap, COMMY_WIRE_EEXPIRED, "the JWT expired");
        goto out;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(body, "nbf"))) {
        if (numeric_date(&nbf, j)) {
            refuse(why, cap, rc, "the JWT's \"nbf\" is not a NumericDate");
            goto out;
        }
        if (now + jc->leeway_s < nbf) {
            refuse(why, cap, rc, "the JWT is not valid yet (nbf)");
            goto out;
        }
    }
    j = cJSON_GetObjectItemCaseSensitive(body, "aud");
    int aud_ok = cJSON_IsString(j) && strcmp(j->valuestring, jc->audience) == 0;
    if (cJSON_IsArray(j)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, j) aud_ok |= cJSON_IsString(a) && strcmp(a->valuestring, jc->audience) == 0;
    }
    if (!aud_ok) {
        refuse(why, cap, rc, "the JWT is not meant for this audience (aud)");
        goto out;
    }
    if (jc->issuer[0]) {
        j = cJSON_GetObjectItemCaseSensitive(body, "iss");
        if (!cJSON_IsString(j) || strcmp(j->valuestring, jc->issuer) != 0) {
            refuse(why, cap, rc, "the JWT comes from another issuer (iss)");
            goto out;
        }
    }
    if (!cJSON_IsString(sub) || !srv_config_name_ok(sub->valuestring)) {
        refuse(why, cap, rc, "the JWT's \"sub\" must be a client id: 1-63 bytes of [A-Za-z0-9_.-]");
        goto out;
    }
    snprintf(out->client_id, sizeof out->client_id, "%s", sub->valuestring);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(body, "scope");
    const cJSON *scs = cJSON_GetObjectItemCaseSensitive(body, "scopes");
    if (sc) {
        if (!cJSON_IsString(sc)) {
            refuse(why, cap, rc, "the JWT's \"scope\" must be a space-separated string");
            goto out;
        }
        for (const char *p = sc->valuestring; *p;) {
            size_t n = strcspn(p, " ");
            if (add_scope(out->scopes, sizeof out->scopes, p, n)) {
                refuse(why, cap, rc, "the JWT grants more scopes than fit");
                goto out;
            }
            p += n;
            while (*p == ' ') p++;
        }
    } else if (scs) {
        const cJSON *a;
        if (!cJSON_IsArray(scs)) {
            refuse(why, cap, rc, "the JWT's \"scopes\" must be an array of strings");
            goto out;
        }
        cJSON_ArrayForEach(a, scs)
        {
            if (!cJSON_IsString(a)) {
                refuse(why, cap, rc, "the JWT's \"scopes\" must be an array of strings");
                goto out;
            }
            if (add_scope(out->scopes, sizeof out->scopes, a->valuestring, strlen(a->valuestring))) {
                refuse(why, cap, rc, "the JWT grants more scopes than fit");
                goto out;
            }
        }
    }
    out->lifetime_s = exp - now > 0 ? (exp - now > INT32_MAX ? INT32_MAX : (int)(exp - now)) : 1;
    rc = COMMY_OK;
out:
    if (rc != COMMY_OK) {
        out->client_id[0] = out->scopes[0] = '\0';
        out->lifetime_s = 0;
    }
    free(sig);
    cJSON_Delete(head);
    cJSON_Delete(body);
    return rc;
}

void *srv_jwt_load_rs256(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return refuse(why, cap, 0, "cannot read %s", path), NULL;
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!k) return refuse(why, cap, 0, "%s holds no PEM public key", path), NULL;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) < 2048) {
        EVP_PKEY_free(k);
        return refuse(why, cap, 0, "%s must be an RSA public key of 2048 bits or more", path), NULL;
    }
    return k;
}

void srv_jwt_free_key(void *key) { EVP_PKEY_free(key); }
