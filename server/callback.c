/* The tenant's HTTPS auth callback (TenantManaged and Hybrid modes): the
 * server POSTs the credential as JSON with libcurl and grants what the answer
 * says. The answer is untrusted bytes: bounded, parsed strictly, and anything
 * that is not a well-formed verdict is a refusal. */
#include "server.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 16384

static int verdict(int v, char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return v;
}

/* Untrusted text made fit for a log line: printable ASCII, at most n bytes. */
static void sanitize(char *dst, size_t n, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < n; i++) dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

int srv_callback_parse(srv_grant *out, const char *body, size_t len, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (len > ANSWER_MAX) return verdict(-1, why, cap, "the answer is larger than %d bytes", ANSWER_MAX);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) return verdict(-1, why, cap, "the answer is not JSON");
    int rc = -1;
    while (end && end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
    if (!end || end != body + len) {
        verdict(-1, why, cap, "the answer has bytes after its JSON value");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        verdict(-1, why, cap, "the answer is not a JSON object");
        goto out;
    }
    /* a key given twice has no one meaning */
    static const char *const known[] = {"allow", "client_id", "scopes", "lifetime_s", "reason"};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        int n = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, root) n += it->string && strcmp(it->string, known[k]) == 0;
        if (n > 1) {
            verdict(-1, why, cap, "the answer names \"%s\" twice", known[k]);
            goto out;
        }
    }
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(root, "allow");
    if (!cJSON_IsBool(allow)) {
        verdict(-1, why, cap, "the answer needs \"allow\": true or false");
        goto out;
    }
    if (!cJSON_IsTrue(allow)) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
        char r[160] = "no reason given";
        if (cJSON_IsString(reason) && reason->valuestring[0]) sanitize(r, sizeof r, reason->valuestring);
        rc = verdict(0, why, cap, "the callback denied it: %s", r);
        goto out;
    }
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(root, "client_id");
    if (cid) {
        if (!cJSON_IsString(cid) || !srv_config_name_ok(cid->valuestring)) {
            verdict(-1, why, cap, "the answer's \"client_id\" must be 1-63 bytes of [A-Za-z0-9_.-]");
            goto out;
        }
        snprintf(out->client_id, sizeof out->client_id, "%s", cid->valuestring);
    }
    const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(root, "scopes");
    if (!cJSON_IsArray(scopes)) {
        verdict(-1, why, cap, "the answer needs \"scopes\": an array of scope strings");
        goto out;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, scopes)
    {
        if (!cJSON_IsString(s) || !srv_config_scope_ok(s->valuestring)) {
            char shown[80] = "?";
            if (cJSON_IsString(s)) sanitize(shown, sizeof shown, s->valuestring);
            verdict(-1, why, cap, "the answer's scope '%s' is not one (read, write, admin, service:NAME:read|write)",
                    shown);
            goto out;
        }
        size_t used = strlen(out->scopes);
        if (used + strlen(s->valuestring) + 2 > sizeof out->scopes) {
            verdict(-1, why, cap, "the answer grants more scopes than fit");
            goto out;
        }
        snprintf(out->scopes + used, sizeof out->scopes - used, "%s%s", used ? " " : "", s->valuestring);
    }
    const cJSON *life = cJSON_GetObjectItemCaseSensitive(root, "lifetime_s");
    if (life) {
        if (!cJSON_IsNumber(life) || !(life->valuedouble >= 1 && life->valuedouble <= 30 * 24 * 3600) ||
            life->valuedouble != (double)(int)life->valuedouble) {
            verdict(-1, why, cap, "the answer's \"lifetime_s\" must be an integer from 1 to 2592000");
            goto out;
        }
        out->lifetime_s = (int)life->valuedouble;
    }
    rc = verdict(1, why, cap, "allowed");
out:
    cJSON_Delete(root);
    if (rc != 1) memset(out, 0, sizeof *out);
    return rc;
}

typedef struct answer {
    char buf[ANSWER_MAX];
    size_t len;
    int too_big;
} answer;

static size_t on_data(char *p, size_t size, size_t n, void *payload)
{
    answer *a = payload;
    size_t add = size * n;
    if (add > ANSWER_MAX - a->len) {
        a->too_big = 1;
        return 0; /* libcurl stops the transfer */
    }
    memcpy(a->buf + a->len, p, add);
    a->len += add;
    return add;
}

int srv_callback_call(srv_grant *out, const srv_callback_conf *cc, const char *tenant, const char *method,
                      const char *credential, const char *peer_addr, const char *verified_client, char *why,
                      size_t cap)
{
    memset(out, 0, sizeof *out);
    cJSON *req = cJSON_CreateObject();
    if (!req) return verdict(-1, why, cap, "out of memory");
    cJSON_AddStringToObject(req, "tenant", tenant);
    cJSON_AddStringToObject(req, "method", method);
    cJSON_AddStringToObject(req, "credential", credential);
    cJSON_AddStringToObject(req, "peer", peer_addr);
    if (verified_client) cJSON_AddStringToObject(req, "client_id", verified_client);
    char *text = cJSON_PrintUnformatted(req);
    /* the tree holds the credential too */
    cJSON *cred = cJSON_GetObjectItemCaseSensitive(req, "credential");
    if (cred && cred->valuestring) OPENSSL_cleanse(cred->valuestring, strlen(cred->valuestring));
    cJSON_Delete(req);
    answer *a = calloc(1, sizeof *a);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *hdr2 = hdr ? curl_slist_append(hdr, "Expect:") : NULL; /* no 100-continue round trip */
    int rc = -1;
    if (!text || !a || !h || !hdr2) {
        verdict(-1, why, cap, "out of memory");
        goto out;
    }
    hdr = hdr2;
    curl_easy_setopt(h, CURLOPT_URL, cc->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cc->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cc->timeout_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cc->ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, cc->ca_file);
    if (cc->client_cert[0]) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, cc->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, cc->client_key);
    }
    curl_easy_setopt(h, CURLOPT_USERAGENT, "commy-server");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    CURLcode cr = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (a->too_big) verdict(-1, why, cap, "the callback's answer is larger than %d bytes", ANSWER_MAX);
    else if (cr == CURLE_OPERATION_TIMEDOUT)
        verdict(-1, why, cap, "the callback did not answer within %d ms", cc->timeout_ms);
    else if (cr != CURLE_OK) verdict(-1, why, cap, "the callback failed: %s", curl_easy_strerror(cr));
    else if (status != 200) verdict(-1, why, cap, "the callback answered HTTP %ld", status);
    else {
        char inner[200];
        rc = srv_callback_parse(out, a->buf, a->len, inner, sizeof inner);
        if (rc < 0) verdict(-1, why, cap, "the callback's answer is garbage: %s", inner);
        else verdict(rc, why, cap, "%s", inner);
    }
out:
    if (text) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(a);
    return rc;
}
