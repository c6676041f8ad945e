/* libFuzzer target, differential: the wire codec's fast request parser
 * (commy_wire_request_parse_fast, a strict one-pass reader of the common
 * shapes) against its cJSON path (commy_wire_request_parse_json). Whatever the
 * fast path accepts, the cJSON path must accept with the very same request:
 * every field, every value's type and bytes. The fast path may decline
 * anything; it must never accept what the cJSON path refuses or read it
 * differently. The typed-value printer the server replies with
 * (commy_wire_value_print) is held to cJSON's print of the same value. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static void same_value(int has, const commy_wire_value *a, const commy_wire_value *b)
{
    if (!has) {
        if (a->data || b->data || a->len || b->len) abort();
        return;
    }
    if (a->type != b->type || a->len != b->len || memcmp(a->data, b->data, a->len) != 0) abort();
}

/* The printer against cJSON's print of commy_wire_value_to_json. */
static void same_print(const commy_wire_value *v)
{
    char fastbuf[512];
    size_t n = commy_wire_value_print(fastbuf, sizeof fastbuf, v->type, v->data, v->len);
    cJSON *j = commy_wire_value_to_json(v->type, v->data, v->len);
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (n) {
        /* printed: exactly cJSON's text */
        if (!text || strlen(text) != n || memcmp(text, fastbuf, n) != 0 || fastbuf[n] != '\0') abort();
    } else if (text && strlen(text) * 6 + 64 < sizeof fastbuf) {
        abort(); /* declined although it fits even at its worst (6 bytes a str byte) and cJSON prints it */
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    commy_wire_request a, b;
    commy_wire_fault f;
    const char *frame = (const char *)data;
    if (!commy_wire_request_parse_fast(&a, frame, size)) return 0;
    if (commy_wire_request_parse_json(&b, &f, frame, size, size) != COMMY_OK) abort();
    if (a.id != b.id || a.op != b.op || a.op_name != b.op_name) abort();
    if (strcmp(a.tenant, b.tenant) || strcmp(a.service, b.service) || strcmp(a.var, b.var) ||
        strcmp(a.client_id, b.client_id) || strcmp(a.api_key, b.api_key) || strcmp(a.token, b.token) ||
        strcmp(a.jwt, b.jwt))
        abort();
    if (a.kind != b.kind || a.mode_local != b.mode_local || a.front != b.front || a.persistent != b.persistent ||
        a.has_index != b.has_index || a.index != b.index || a.has_key != b.has_key || a.has_value != b.has_value ||
        a.has_from != b.has_from || a.limit != b.limit || a.has_end != b.has_end || a.has_key_type != b.has_key_type ||
        a.has_value_type != b.has_value_type || a.key_type != b.key_type || a.value_type != b.value_type ||
        a.existing != b.existing || a.excl != b.excl || a.expected != b.expected || a.desired != b.desired ||
        a.delta != b.delta || a.skip != b.skip)
        abort();
    same_value(a.has_key, &a.key, &b.key);
    same_value(a.has_value, &a.value, &b.value);
    same_value(a.has_from, &a.from, &b.from);
    if (a.has_key) same_print(&a.key);
    if (a.has_value) same_print(&a.value);
    commy_wire_request_free(&a);
    commy_wire_request_free(&b);
    return 0;
}
