/* Credentials: salted PBKDF2 hashes of API keys, random tokens, and the demo
 * certificate. Only hashes are ever stored. */
#include "server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(char *out, const unsigned char *b, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(unsigned char *out, size_t n, const char *s, size_t len)
{
    if (len != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

int srv_auth_random_hex(char *out, size_t n)
{
    unsigned char buf[64];
    if (n > sizeof buf || RAND_bytes(buf, (int)n) != 1) return COMMY_EIO;
    to_hex(out, buf, n);
    OPENSSL_cleanse(buf, sizeof buf);
    return COMMY_OK;
}

void srv_auth_sha256(unsigned char out[32], const char *text)
{
    unsigned int len = 32;
    EVP_Digest(text, strlen(text), out, &len, EVP_sha256(), NULL);
}

int srv_auth_hash_secret(char *out, size_t cap, const char *secret, int iterations)
{
    unsigned char salt[16], dk[32];
    char salt_hex[33], dk_hex[65];
    if (RAND_bytes(salt, sizeof salt) != 1) return COMMY_EIO;
    if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sizeof salt, iterations, EVP_sha256(), sizeof dk, dk) != 1)
        return COMMY_EIO;
    to_hex(salt_hex, salt, sizeof salt);
    to_hex(dk_hex, dk, sizeof dk);
    if ((size_t)snprintf(out, cap, "pbkdf2-sha256$%d$%s$%s", iterations, salt_hex, dk_hex) >= cap) return COMMY_EINVAL;
    return COMMY_OK;
}

int srv_auth_verify_secret(const char *stored, const char *secret)
{
    int iter = 0, n = 0;
    if (sscanf(stored, "pbkdf2-sha256$%d$%n", &iter, &n) != 1 || n == 0 || iter < 1 || iter > 10000000) return 0;
    const char *salt = stored + n, *dollar = strchr(salt, '$');
    if (!dollar) return 0;
    unsigned char s[64], want[32], got[32];
    size_t slen = (size_t)(dollar - salt) / 2;
    if (slen == 0 || slen > sizeof s || from_hex(s, slen, salt, (size_t)(dollar - salt)) ||
        from_hex(want, 32, dollar + 1, strlen(dollar + 1)))
        return 0;
    if (PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), s, (int)slen, iter, EVP_sha256(), 32, got) != 1) return 0;
    return CRYPTO_memcmp(got, want, 32) == 0;
}

int srv_auth_make_cert(const char *cert_path, const char *key_path, char *err, size_t cap)
{
    int rc = COMMY_EIO;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f = NULL;
    if (!pkey || !x) goto out;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, name);
    /* the names a client checks: the printed URL says 127.0.0.1, and OpenSSL
     * matches an IP address only against an IP subjectAltName, never the CN */
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (!san || !X509_add_ext(x, san, -1)) {
        X509_EXTENSION_free(san);
        goto out;
    }
    X509_EXTENSION_free(san);
    if (!X509_sign(x, pkey, EVP_sha256())) goto out;
    if (!(f = fopen(key_path, "w")) || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL)) goto out;
    fclose(f);
    if (!(f = fopen(cert_path, "w")) || !PEM_write_X509(f, x)) goto out;
    rc = COMMY_OK;
out:
    if (f) fclose(f);
    if (rc) snprintf(err, cap, "cannot make the demo certificate %s", cert_path);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}
