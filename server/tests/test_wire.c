/* The wire codec: typed values round-trip exactly, and every kind of bad
 * frame is refused with the right code and never crashes. */
#include "harness.h"
#include "wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse(commy_wire_request *r, const char *text)
{
    commy_wire_fault f;
    int rc = commy_wire_request_parse(r, &f, text, strlen(text), 4096);
    if (rc) CHECK(f.message[0] != '\0');
    return rc;
}

static void test_requests(void)
{
    commy_wire_request r;
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":7,\"op\":\"set\",\"service\":\"s\",\"var\":\"a:b\",\"value\":{\"t\":\"i64\",\"v\":\"-9223372036854775808\"}}"));
    CHECK(r.id == 7 && r.op == COMMY_WIRE_OP_SET && strcmp(r.var, "a:b") == 0);
    CHECK(r.has_value && r.value.type == COMMY_T_I64 && r.value.len == 8);
    int64_t x;
    memcpy(&x, r.value.data, 8);
    CHECK(x == INT64_MIN);
    commy_wire_request_free(&r);

    CHECK_RC(parse(&r, "not json"), COMMY_WIRE_EPROTO);
    CHECK_RC(parse(&r, "[1,2]"), COMMY_WIRE_EPROTO);
    CHECK_RC(parse(&r, "{\"v\":2,\"id\":1,\"op\":\"get\"}"), COMMY_WIRE_EPROTO);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":-1,\"op\":\"get\"}"), COMMY_WIRE_EPROTO);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1.5,\"op\":\"get\"}"), COMMY_WIRE_EPROTO);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"frobnicate\"}"), COMMY_WIRE_EUNKNOWNOP);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":5}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\"}"), COMMY_EINVAL); /* no var */
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"../x\",\"var\":\"a\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\",\"index\":-3}"), COMMY_ERANGE);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"i8\",\"v\":300}}"), COMMY_ERANGE);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"u64\",\"v\":\"18446744073709551616\"}}"), COMMY_ERANGE);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"i64\",\"v\":5}}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"bytes\",\"v\":\"@@@@\"}}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"blob[4]\",\"v\":\"AAE=\"}}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"bytes\",\"v\":\"AAB=\"}}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"bytes\",\"v\":\"A===\"}}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"f32\",\"v\":1e300}}"), COMMY_ERANGE);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"authenticate\",\"tenant\":\"t\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"authenticate\",\"tenant\":\"t\",\"jwt\":\"a.b.c\",\"api_key\":\"k.s\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"authenticate\",\"tenant\":\"t\",\"jwt\":\"a b.c\"}"), COMMY_EINVAL);
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"authenticate\",\"tenant\":\"t\",\"jwt\":\"eyJh.eyJz.c2ln\"}"));
    CHECK(strcmp(r.jwt, "eyJh.eyJz.c2ln") == 0 && !r.api_key[0] && !r.token[0]);
    commy_wire_request_free(&r);
    CHECK(strcmp(commy_wire_code_name(COMMY_WIRE_ELOCKED), "ELOCKED") == 0);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"range\",\"service\":\"s\",\"var\":\"a\",\"limit\":5000}"), COMMY_EINVAL);

    /* the operations sessions use (docs/protocol.md) */
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":2,\"op\":\"declare\",\"service\":\"s\",\"var\":\"m\",\"kind\":\"map\","
                       "\"key_type\":\"str\",\"value_type\":\"blob[16]\",\"flags\":\"excl\"}"));
    CHECK(r.op == COMMY_WIRE_OP_DECLARE && r.kind == COMMY_KIND_MAP && r.has_key_type && r.key_type == COMMY_T_STR &&
          r.has_value_type && r.value_type == COMMY_TYPE_BLOB(16) && r.excl && !r.existing);
    commy_wire_request_free(&r);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"declare\",\"service\":\"s\",\"var\":\"m\"}"), COMMY_EINVAL); /* no kind */
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"declare\",\"service\":\"s\",\"var\":\"m\",\"kind\":\"box\",\"key_type\":\"i65\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"declare\",\"service\":\"s\",\"var\":\"m\",\"kind\":\"box\",\"flags\":\"new\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"declare\",\"var\":\"m\",\"kind\":\"box\"}"), COMMY_EINVAL); /* no service */
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":3,\"op\":\"cas\",\"service\":\"s\",\"var\":\"n\",\"expected\":\"-9223372036854775808\",\"desired\":5}"));
    CHECK(r.op == COMMY_WIRE_OP_CAS && r.expected == INT64_MIN && r.desired == 5);
    commy_wire_request_free(&r);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"cas\",\"service\":\"s\",\"var\":\"n\",\"expected\":\"1\"}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"fetch_add\",\"service\":\"s\",\"var\":\"n\",\"delta\":\"9223372036854775808\"}"), COMMY_ERANGE);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"fetch_add\",\"service\":\"s\",\"var\":\"n\",\"delta\":1.5}"), COMMY_EINVAL);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"insert\",\"service\":\"s\",\"var\":\"v\",\"index\":0}"), COMMY_EINVAL); /* no value */
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"append\",\"service\":\"s\",\"var\":\"v\"}"), COMMY_EINVAL);
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"range\",\"service\":\"s\",\"var\":\"a\",\"skip\":\"12\"}"));
    CHECK(r.skip == 12);
    commy_wire_request_free(&r);
    CHECK_RC(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"range\",\"service\":\"s\",\"var\":\"a\",\"skip\":-1}"), COMMY_EINVAL);
    CHECK_OK(parse(&r, "{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"d\",\"end\":\"front\"}"));
    CHECK(r.has_end && r.front && !r.has_index);
    commy_wire_request_free(&r);
    CHECK(strcmp(commy_wire_code_name(COMMY_EDISCONNECTED), "EDISCONNECTED") == 0);
    CHECK(commy_wire_code_from_name("EAUTH") == COMMY_EAUTH && COMMY_WIRE_EAUTH == COMMY_EAUTH);

    commy_wire_fault f;
    char big[5000];
    memset(big, ' ', sizeof big);
    CHECK_RC(commy_wire_request_parse(&r, &f, big, sizeof big, 4096), COMMY_WIRE_ETOOBIG);
    /* a bad request still yields its id when it has one */
    CHECK_RC(commy_wire_request_parse(&r, &f, "{\"v\":1,\"id\":42,\"op\":\"nope\"}", 27, 4096), COMMY_WIRE_EUNKNOWNOP);
    CHECK(f.has_id && f.id == 42);
}

static void roundtrip(commy_type t, const void *bytes, size_t len)
{
    cJSON *j = commy_wire_value_to_json(t, bytes, len);
    REQUIRE(j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON *back_json = cJSON_Parse(text); /* through text, as on the wire */
    commy_wire_value v;
    char msg[200];
    CHECK_OK(commy_wire_value_from_json(&v, back_json, t, msg, sizeof msg));
    CHECK(v.len == len && memcmp(v.data, bytes, len) == 0);
    if (v.len != len || memcmp(v.data, bytes, len) != 0) fprintf(stderr, "  roundtrip of %s lost bytes\n", text);
    commy_wire_value_free(&v);
    free(text);
    cJSON_Delete(j);
    cJSON_Delete(back_json);
}

static void test_values(void)
{
    int64_t i64s[] = {0, -1, INT64_MIN, INT64_MAX, 9007199254740993LL};
    for (size_t i = 0; i < 5; i++) roundtrip(COMMY_T_I64, &i64s[i], 8);
    uint64_t u = UINT64_MAX;
    roundtrip(COMMY_T_U64, &u, 8);
    double ds[] = {0.1, -0.0, 1e308, INFINITY, -INFINITY, 5e-324};
    for (size_t i = 0; i < 6; i++) roundtrip(COMMY_T_F64, &ds[i], 8);
    float fs[] = {0.1f, -0.0f, 3.4028235e38f, 1e-45f};
    for (size_t i = 0; i < 4; i++) roundtrip(COMMY_T_F32, &fs[i], 4);
    int8_t i8 = -128;
    roundtrip(COMMY_T_I8, &i8, 1);
    uint32_t u32 = 4294967295u;
    roundtrip(COMMY_T_U32, &u32, 4);
    unsigned char b = 1;
    roundtrip(COMMY_T_BOOL, &b, 1);
    roundtrip(COMMY_T_STR, "h\xc3\xa9llo \"q\"", 10);
    for (size_t n = 0; n < 70; n++) {
        unsigned char bytes[70];
        for (size_t i = 0; i < n; i++) bytes[i] = (unsigned char)harness_rand();
        roundtrip(COMMY_T_BYTES, bytes, n);
        if (n) roundtrip(COMMY_TYPE_BLOB(n), bytes, n);
    }
    /* NaN comes back as a NaN */
    double nan = NAN;
    cJSON *j = commy_wire_value_to_json(COMMY_T_F64, &nan, 8);
    commy_wire_value v;
    char msg[100];
    CHECK_OK(commy_wire_value_from_json(&v, j, COMMY_T_F64, msg, sizeof msg));
    double back;
    memcpy(&back, v.data, 8);
    CHECK(isnan(back));
    commy_wire_value_free(&v);
    /* a value of another type than wanted */
    CHECK_RC(commy_wire_value_from_json(&v, j, COMMY_T_I64, msg, sizeof msg), COMMY_ETYPE);
    cJSON_Delete(j);
}

static void test_messages(void)
{
    char *s = commy_wire_reply_error(1, 9, COMMY_WIRE_EAUTH, "no");
    commy_wire_message m;
    commy_wire_fault f;
    CHECK_OK(commy_wire_message_parse(&m, &f, s, strlen(s), 4096));
    CHECK(!m.ok && m.id == 9 && m.error_code == COMMY_WIRE_EAUTH && strcmp(m.error_message, "no") == 0);
    commy_wire_message_free(&m);
    free(s);
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "reason", "revoked");
    s = commy_wire_push_build("closing", fields);
    CHECK_OK(commy_wire_message_parse(&m, &f, s, strlen(s), 4096));
    CHECK(m.is_push && strcmp(m.push, "closing") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(m.body, "reason")->valuestring, "revoked") == 0);
    commy_wire_message_free(&m);
    free(s);
    s = commy_wire_reply_ok(3, NULL);
    CHECK_OK(commy_wire_message_parse(&m, &f, s, strlen(s), 4096));
    CHECK(m.ok && m.id == 3 && cJSON_IsObject(m.result));
    commy_wire_message_free(&m);
    free(s);
}

/* The fast path (commy_wire_request_parse_fast) takes the common shapes and
 * reads them exactly as the cJSON path does; it declines the rest, which the
 * cJSON path then answers (fuzz_wire_fast checks the same on random input). */
static int same_request(const commy_wire_request *a, const commy_wire_request *b)
{
    return a->id == b->id && a->op == b->op && strcmp(a->service, b->service) == 0 && strcmp(a->var, b->var) == 0 &&
           a->kind == b->kind && a->front == b->front && a->has_end == b->has_end && a->has_index == b->has_index &&
           a->index == b->index && a->limit == b->limit && a->has_key == b->has_key && a->has_value == b->has_value &&
           a->key.type == b->key.type && a->key.len == b->key.len &&
           (!a->has_key || memcmp(a->key.data, b->key.data, a->key.len) == 0) && a->value.type == b->value.type &&
           a->value.len == b->value.len && (!a->has_value || memcmp(a->value.data, b->value.data, a->value.len) == 0);
}

static void check_fast(const char *text, int want_fast)
{
    commy_wire_request a, b;
    commy_wire_fault f;
    int fast = commy_wire_request_parse_fast(&a, text, strlen(text));
    CHECK(fast == want_fast);
    if (fast != want_fast) fprintf(stderr, "  fast path %s %s\n", fast ? "took" : "declined", text);
    if (!fast) return;
    CHECK_OK(commy_wire_request_parse_json(&b, &f, text, strlen(text), 4096));
    CHECK(same_request(&a, &b));
    commy_wire_request_free(&a);
    commy_wire_request_free(&b);
}

static void test_fast_path(void)
{
    /* taken: what the server bench, the session and the bindings send most */
    check_fast("{\"v\":1,\"id\":7,\"op\":\"get\",\"service\":\"b\",\"var\":\"k0\"}", 1);
    check_fast("{\"v\":1,\"id\":8,\"op\":\"set\",\"service\":\"b\",\"var\":\"k0\",\"kind\":\"box\",\"value\":{\"t\":\"i64\",\"v\":\"-42\"}}", 1);
    check_fast(" {\n\"value\" : {\"v\":\"AQID\",\"t\":\"blob[3]\"}, \"op\":\"set\",\"var\":\"v:1\",\"index\":\"3\",\"service\":\"s\",\"id\":9007199254740991,\"v\":1}\r\n", 1);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"m\",\"kind\":\"map\",\"key\":{\"t\":\"str\",\"v\":\"caf\xc3\xa9\"},\"value\":{\"t\":\"f64\",\"v\":-2.5e-3}}", 1);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"push\",\"service\":\"s\",\"var\":\"q\",\"end\":\"front\",\"value\":{\"t\":\"u32\",\"v\":4294967295}}", 1);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"add\",\"service\":\"s\",\"var\":\"st\",\"key\":{\"t\":\"bool\",\"v\":false}}", 1);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"f\",\"value\":{\"t\":\"f32\",\"v\":\"-inf\"}}", 1);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"len\",\"service\":\"s\",\"var\":\"a\"}", 1);
    /* declined: escapes, repeats, other members, anything the cJSON path refuses */
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"t\",\"value\":{\"t\":\"str\",\"v\":\"a\\nb\"}}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\",\"var\":\"b\"}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\",\"extra\":1}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"range\",\"service\":\"s\",\"var\":\"a\",\"limit\":5}", 0);
    check_fast("{\"v\":1,\"id\":9007199254740992,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\"}", 0);
    check_fast("{\"v\":1,\"id\":1.0,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\"}", 0);
    check_fast("{\"v\":1.0,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\"}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\"} x", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"i8\",\"v\":128}}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"u64\",\"v\":\"018\"}}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"set\",\"service\":\"s\",\"var\":\"a\",\"value\":{\"t\":\"i32\",\"v\":1e3}}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"authenticate\",\"tenant\":\"t\",\"api_key\":\"k.s\"}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"\\u0061\"}", 0);
    check_fast("{\"v\":1,\"id\":1,\"op\":\"get\",\"service\":\"s\",\"var\":\"a\"", 0);

    /* the value printer gives cJSON's text, byte for byte */
    unsigned char vals[][8] = {{0x80, 0, 0, 0, 0, 0, 0, 0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {1}};
    commy_type types[] = {COMMY_T_I64, COMMY_T_U64, COMMY_T_I8, COMMY_T_U32, COMMY_T_I16, COMMY_T_F64, COMMY_T_F32,
                          COMMY_T_BOOL, COMMY_T_BYTES, COMMY_TYPE_BLOB(5), COMMY_T_STR};
    for (size_t v = 0; v < 3; v++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            size_t len = commy_type_size(types[t]) ? commy_type_size(types[t]) : 5;
            if (types[t] == COMMY_T_BOOL && vals[v][0] > 1) continue;
            char out[256];
            size_t n = commy_wire_value_print(out, sizeof out, types[t], vals[v], len);
            cJSON *j = commy_wire_value_to_json(types[t], vals[v], len);
            char *want = j ? cJSON_PrintUnformatted(j) : NULL;
            CHECK(want ? n == strlen(want) && strcmp(out, want) == 0 : n == 0);
            if (want && strcmp(out, want) != 0) fprintf(stderr, "  printed %s, cJSON %s\n", out, want);
            free(want);
            cJSON_Delete(j);
        }
    const char *strs[] = {"plain", "q\"b\\s/\x01\x1f\b\f\n\r\t\x7f\xc3\xa9", ""};
    for (size_t i = 0; i < 3; i++) {
        char out[256];
        size_t n = commy_wire_value_print(out, sizeof out, COMMY_T_STR, strs[i], strlen(strs[i]));
        cJSON *j = commy_wire_value_to_json(COMMY_T_STR, strs[i], strlen(strs[i]));
        char *want = cJSON_PrintUnformatted(j);
        CHECK(n == strlen(want) && strcmp(out, want) == 0);
        free(want);
        cJSON_Delete(j);
    }
    char small[8];
    CHECK(commy_wire_value_print(small, sizeof small, COMMY_T_STR, "a long string", 13) == 0); /* no room: declines */
    CHECK(commy_wire_value_print(small, sizeof small, COMMY_T_STR, "a\0b", 3) == 0);
}

int main(void)
{
    harness_run("requests", test_requests);
    harness_run("fast_path", test_fast_path);
    harness_run("values", test_values);
    harness_run("messages", test_messages);
    return harness_finish();
}
