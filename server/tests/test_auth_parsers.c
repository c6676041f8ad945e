/* The two auth parsers of untrusted bytes, case by case: the JWT verifier
 * (server/jwt.c) with tokens made here (HMAC-SHA256 and RSA signatures by
 * OpenSSL), and the parser of a tenant callback's answer (server/callback.c). */
#include "harness.h"
#include "server.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    (void)level, (void)event, (void)fmt;
}

#define NOW 1800000000LL
static const char secret[] = "unit-test-secret-unit-test-secret-0123";
static EVP_PKEY *rsa, *rsa_other;

static void b64url(char *out, const unsigned char *in, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63], out[o++] = a[(v >> 6) & 63], out[o++] = a[v & 63];
    }
    if (n - i >= 1) {
        uint32_t v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18], out[o++] = a[(v >> 12) & 63];
        if (n - i == 2) out[o++] = a[(v >> 6) & 63];
    }
    out[o] = '\0';
}

/* header.payload.signature: alg "HS256" signs with key (klen bytes), "RS256"
 * with pkey, anything else gets the HS256 signature of key. */
static char *make(const char *header, const char *payload, const void *key, size_t klen, EVP_PKEY *pkey)
{
    char *t = malloc(8192);
    b64url(t, (const unsigned char *)header, strlen(header));
    strcat(t, ".");
    b64url(t + strlen(t), (const unsigned char *)payload, strlen(payload));
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    if (pkey) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        REQUIRE(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
                EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)t, strlen(t)) == 1);
        EVP_MD_CTX_free(ctx);
    } else {
        unsigned int l = 0;
        HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)t, strlen(t), sig, &l);
        siglen = l;
    }
    strcat(t, ".");
    b64url(t + strlen(t), sig, siglen);
    return t;
}

static srv_jwt_conf conf(int hs, int rs, const char *issuer)
{
    srv_jwt_conf c;
    memset(&c, 0, sizeof c);
    c.enabled = 1;
    if (hs) {
        c.hs256_len = strlen(secret);
        memcpy(c.hs256_secret, secret, c.hs256_len);
    }
    if (rs) c.rs256_key = rsa;
    snprintf(c.audience, sizeof c.audience, "commy");
    snprintf(c.issuer, sizeof c.issuer, "%s", issuer);
    c.leeway_s = 30;
    return c;
}

static int verify_at(const srv_jwt_conf *c, const char *jwt, long long now, srv_grant *g, char *sub)
{
    char why[256] = "";
    int rc = srv_jwt_verify(g, sub, c, jwt, strlen(jwt), now, why, sizeof why);
    if (rc != COMMY_OK && !why[0]) {
        fprintf(stderr, "  a refusal without a reason\n");
        harness_failures++;
    }
    return rc;
}

static int hs(const srv_jwt_conf *c, const char *payload)
{
    srv_grant g;
    char *t = make("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, secret, strlen(secret), NULL);
    int rc = verify_at(c, t, NOW, &g, NULL);
    free(t);
    return rc;
}

static void test_jwt_claims(void)
{
    srv_jwt_conf c = conf(1, 0, "idp");
    srv_grant g;
    char sub[SRV_NAME_MAX];
    char *t = make("{\"alg\":\"HS256\"}",
                   "{\"sub\":\"alice\",\"aud\":\"commy\",\"iss\":\"idp\",\"exp\":1800000600,"
                   "\"scope\":\"read openid  service:a:write\"}",
                   secret, strlen(secret), NULL);
    CHECK_OK(verify_at(&c, t, NOW, &g, sub));
    CHECK(strcmp(g.client_id, "alice") == 0 && strcmp(sub, "alice") == 0);
    CHECK(strcmp(g.scopes, "read service:a:write") == 0); /* openid is not ours */
    CHECK(g.lifetime_s == 600);
    /* exp with the leeway: valid up to exp + 29, expired from exp + 30 */
    CHECK_OK(verify_at(&c, t, 1800000629LL, &g, NULL));
    CHECK(g.lifetime_s == 1);
    CHECK_RC(verify_at(&c, t, 1800000630LL, &g, NULL), COMMY_WIRE_EEXPIRED);
    CHECK(!g.client_id[0] && !g.scopes[0]);
    free(t);

    const char *base = "\"sub\":\"bob\",\"iss\":\"idp\",\"exp\":1800000600";
    char p[1024];
#define CASE(rc, fmt, ...)                                                                                           \
    do {                                                                                                           \
        snprintf(p, sizeof p, fmt, __VA_ARGS__);                                                                   \
        int got_ = hs(&c, p);                                                                                      \
        if (got_ != (rc)) fprintf(stderr, "  %s: got %d\n", p, got_);                                              \
        CHECK_RC(got_, rc);                                                                                        \
    } while (0)
    CASE(COMMY_OK, "{%s,\"aud\":[\"x\",\"commy\"],\"scopes\":[\"admin\",\"nope\"]}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":[\"x\",\"y\"]}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":7}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s}", base); /* no aud */
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"bob\",\"aud\":\"commy\",\"iss\":\"other\",\"exp\":1800000600%s}", "");
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"bob\",\"aud\":\"commy\",\"exp\":1800000600%s}", ""); /* no iss */
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"bob\",\"aud\":\"commy\",\"iss\":\"idp\"%s}", "");    /* no exp */
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"bob\",\"aud\":\"commy\",\"iss\":\"idp\",\"exp\":\"1800000600\"%s}", "");
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"bob\",\"aud\":\"commy\",\"iss\":\"idp\",\"exp\":1e300%s}", "");
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"nbf\":1800000031}", base); /* not yet, even with leeway */
    CASE(COMMY_OK, "{%s,\"aud\":\"commy\",\"nbf\":1800000030}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"nbf\":\"soon\"}", base);
    CASE(COMMY_WIRE_EAUTH, "{\"sub\":\"../x\",\"aud\":\"commy\",\"iss\":\"idp\",\"exp\":1800000600%s}", "");
    CASE(COMMY_WIRE_EAUTH, "{\"aud\":\"commy\",\"iss\":\"idp\",\"exp\":1800000600%s}", ""); /* no sub */
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"scope\":[\"read\"]}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"scopes\":\"read\"}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"scopes\":[\"read\",1]}", base);
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\"} trailing", base);
    CASE(COMMY_WIRE_EAUTH, "[%s]", "1");
    /* more granted scopes than a token holds is a refusal, not a silent cut */
    char many[4096] = "";
    for (int i = 0; i < 200; i++) strcat(many, "read ");
    CASE(COMMY_WIRE_EAUTH, "{%s,\"aud\":\"commy\",\"scope\":\"%s\"}", base, many);
    /* without a configured issuer, iss is not looked at */
    srv_jwt_conf noiss = conf(1, 0, "");
    snprintf(p, sizeof p, "{\"sub\":\"bob\",\"aud\":\"commy\",\"iss\":\"anyone\",\"exp\":1800000600}");
    CHECK_OK(hs(&noiss, p));
#undef CASE
}

static void test_jwt_shapes(void)
{
    srv_jwt_conf c = conf(1, 1, "");
    srv_grant g;
    char sub[SRV_NAME_MAX];
    const char *claims = "{\"sub\":\"carol\",\"aud\":\"commy\",\"exp\":1800000600}";
    char *good = make("{\"alg\":\"HS256\"}", claims, secret, strlen(secret), NULL);
    CHECK_OK(verify_at(&c, good, NOW, &g, NULL));

    /* a wrong key: refused, but the claimed sub is read for lockout counting */
    char *t = make("{\"alg\":\"HS256\"}", claims, "another-key-another-key-another-key", 35, NULL);
    CHECK_RC(verify_at(&c, t, NOW, &g, sub), COMMY_WIRE_EAUTH);
    CHECK(strcmp(sub, "carol") == 0 && !g.client_id[0]);
    free(t);
    static const char *const bad_headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"hs256\"}", "{\"alg\":\"HS512\"}",
                                              "{\"typ\":\"JWT\"}", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                                              "{\"alg\":[\"HS256\"]}", "not json", NULL};
    for (int i = 0; bad_headers[i]; i++) {
        t = make(bad_headers[i], claims, secret, strlen(secret), NULL);
        CHECK_RC(verify_at(&c, t, NOW, &g, NULL), COMMY_WIRE_EAUTH);
        free(t);
    }
    /* alg none with an empty signature */
    char none[1024], h[64], b[512];
    b64url(h, (const unsigned char *)"{\"alg\":\"none\"}", 14);
    b64url(b, (const unsigned char *)claims, strlen(claims));
    snprintf(none, sizeof none, "%s.%s.", h, b);
    CHECK_RC(verify_at(&c, none, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    /* the compact form exactly: three non-empty parts of canonical base64url */
    char *d2 = strrchr(good, '.');
    char buf[2048];
    snprintf(buf, sizeof buf, "%s=", good); /* padding */
    CHECK_RC(verify_at(&c, buf, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    snprintf(buf, sizeof buf, "%s.x", good); /* four parts */
    CHECK_RC(verify_at(&c, buf, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    snprintf(buf, sizeof buf, "%.*s", (int)(d2 - good), good); /* two parts */
    CHECK_RC(verify_at(&c, buf, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    snprintf(buf, sizeof buf, "%.*s", (int)(d2 - good) + 12, good); /* a short signature */
    CHECK_RC(verify_at(&c, buf, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    /* the last character of a 32-byte signature carries 2 unused bits: setting one changes no byte
     * of the MAC, and must still be refused (only the canonical encoding is accepted) */
    snprintf(buf, sizeof buf, "%s", good);
    char *last = buf + strlen(buf) - 1;
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, *last) - alpha);
    *last = alpha[v ^ 1];
    CHECK_RC(verify_at(&c, buf, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    CHECK_RC(verify_at(&c, "", NOW, &g, NULL), COMMY_WIRE_EAUTH);
    CHECK_RC(verify_at(&c, "..", NOW, &g, NULL), COMMY_WIRE_EAUTH);
    CHECK_RC(verify_at(&c, "a*b.c.d", NOW, &g, NULL), COMMY_WIRE_EAUTH);
    /* a tenant without JWT refuses a good token */
    srv_jwt_conf off = conf(1, 0, "");
    off.enabled = 0;
    CHECK_RC(verify_at(&off, good, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    free(good);
}

static void test_jwt_rs256(void)
{
    srv_jwt_conf both = conf(1, 1, ""), hs_only = conf(1, 0, ""), rs_only = conf(0, 1, "");
    srv_grant g;
    const char *claims = "{\"sub\":\"dave\",\"aud\":\"commy\",\"exp\":1800000600,\"scopes\":[\"read\"]}";
    char *t = make("{\"alg\":\"RS256\"}", claims, NULL, 0, rsa);
    CHECK_OK(verify_at(&both, t, NOW, &g, NULL));
    CHECK(strcmp(g.client_id, "dave") == 0 && strcmp(g.scopes, "read") == 0);
    CHECK_OK(verify_at(&rs_only, t, NOW, &g, NULL));
    CHECK_RC(verify_at(&hs_only, t, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    free(t);
    t = make("{\"alg\":\"RS256\"}", claims, NULL, 0, rsa_other);
    CHECK_RC(verify_at(&both, t, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    free(t);
    /* algorithm confusion: an HMAC keyed with the RSA public key's PEM, on a tenant that has only RS256 */
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa);
    char *pem;
    long pemlen = BIO_get_mem_data(bio, &pem);
    t = make("{\"alg\":\"HS256\"}", claims, pem, (size_t)pemlen, NULL);
    CHECK_RC(verify_at(&rs_only, t, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    free(t);
    t = make("{\"alg\":\"RS256\"}", claims, pem, (size_t)pemlen, NULL); /* an HMAC under an RS256 header */
    CHECK_RC(verify_at(&rs_only, t, NOW, &g, NULL), COMMY_WIRE_EAUTH);
    free(t);
    BIO_free(bio);
}

static int parse_answer(const char *body, srv_grant *g)
{
    char why[256] = "";
    int v = srv_callback_parse(g, body, strlen(body), why, sizeof why);
    if (!why[0]) {
        fprintf(stderr, "  no reason for %s\n", body);
        harness_failures++;
    }
    return v;
}

static void test_callback_answers(void)
{
    srv_grant g;
    char why[256];
    CHECK(parse_answer("{\"allow\": true, \"client_id\": \"erin\", \"scopes\": [\"read\", \"service:x:write\"], "
                       "\"lifetime_s\": 60, \"extra\": {\"ignored\": 1}}\r\n",
                       &g) == 1);
    CHECK(strcmp(g.client_id, "erin") == 0 && strcmp(g.scopes, "read service:x:write") == 0 && g.lifetime_s == 60);
    CHECK(parse_answer("{\"allow\":true,\"scopes\":[]}", &g) == 1);
    CHECK(!g.client_id[0] && !g.scopes[0] && g.lifetime_s == 0);
    const char *deny = "{\"allow\":false,\"reason\":\"no\\u0007way\"}";
    CHECK(srv_callback_parse(&g, deny, strlen(deny), why, sizeof why) == 0);
    CHECK(strstr(why, "no?way") != NULL);
    CHECK(!g.client_id[0]);
    static const char *const garbage[] = {
        "", "null", "[]", "\"allow\"", "{\"allow\":1,\"scopes\":[]}", "{\"scopes\":[\"read\"]}",
        "{\"allow\":true}", "{\"allow\":true,\"scopes\":\"read\"}", "{\"allow\":true,\"scopes\":[\"root\"]}",
        "{\"allow\":true,\"scopes\":[7]}", "{\"allow\":true,\"scopes\":[],\"client_id\":\"a b\"}",
        "{\"allow\":true,\"scopes\":[],\"client_id\":5}", "{\"allow\":true,\"scopes\":[],\"lifetime_s\":0}",
        "{\"allow\":true,\"scopes\":[],\"lifetime_s\":1.5}", "{\"allow\":true,\"scopes\":[],\"lifetime_s\":1e12}",
        "{\"allow\":true,\"scopes\":[]} {}", "{\"allow\":true,\"allow\":false,\"scopes\":[]}",
        "{\"allow\":true,\"scopes\":[],\"scopes\":[\"admin\"]}", "{\"allow\":true,\"scopes\":[]", NULL};
    for (int i = 0; garbage[i]; i++) {
        int v = parse_answer(garbage[i], &g);
        if (v != -1) fprintf(stderr, "  accepted: %s\n", garbage[i]);
        CHECK(v == -1 && !g.client_id[0] && !g.scopes[0]);
    }
    /* bounded: 16 KiB of answer at most, whatever it holds */
    size_t n = 17000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"allow\":true,\"scopes\":[]}", 26);
    big[n] = '\0';
    CHECK(parse_answer(big, &g) == -1);
    CHECK(srv_callback_parse(&g, big, 26, why, sizeof why) == 1); /* the same, within the bound */
    /* not NUL-terminated: only len bytes are read */
    memcpy(big, "{\"allow\":false}xxxx", 19);
    CHECK(srv_callback_parse(&g, big, 15, why, sizeof why) == 0);
    free(big);
}

/* A fresh RSA key from the openssl tool: EVP_RSA_gen in this process takes
 * half a minute under valgrind (the CI suite runs this test there), a child
 * process is not traced. */
static EVP_PKEY *rsa_key(void)
{
    FILE *p = popen("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null", "r");
    REQUIRE(p);
    EVP_PKEY *k = PEM_read_PrivateKey(p, NULL, NULL, NULL);
    REQUIRE(pclose(p) == 0);
    return k;
}

int main(void)
{
    rsa = rsa_key();
    rsa_other = rsa_key();
    REQUIRE(rsa && rsa_other);
    harness_run("jwt_claims", test_jwt_claims);
    harness_run("jwt_shapes", test_jwt_shapes);
    harness_run("jwt_rs256", test_jwt_rs256);
    harness_run("callback_answers", test_callback_answers);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    return harness_finish();
}
