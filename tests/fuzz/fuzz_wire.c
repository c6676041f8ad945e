/* libFuzzer target for the wire codec: requests, replies and pushes from
 * untrusted bytes. Every frame the parser accepts must survive a round trip of
 * its typed values, and nothing may crash or leak. */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static void roundtrip(const commy_wire_value *v)
{
    cJSON *j = commy_wire_value_to_json(v->type, v->data, v->len);
    if (!j) {
        /* only a str with an embedded NUL cannot be carried */
        if (COMMY_TYPE_BASE(v->type) != COMMY_T_STR || !memchr(v->data, 0, v->len)) abort();
        return;
    }
    commy_wire_value back;
    char msg[200];
    if (commy_wire_value_from_json(&back, j, v->type, msg, sizeof msg) != COMMY_OK) abort();
    if (back.len != v->len || memcmp(back.data, v->data, v->len) != 0) abort();
    commy_wire_value_free(&back);
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    commy_wire_request r;
    commy_wire_fault f;
    if (commy_wire_request_parse(&r, &f, (const char *)data, size, 1 << 20) == COMMY_OK) {
        if (r.has_key) roundtrip(&r.key);
        if (r.has_value) roundtrip(&r.value);
        if (r.has_from) roundtrip(&r.from);
        commy_wire_request_free(&r);
    } else if (f.message[0] == '\0') {
        abort(); /* every refusal says why */
    } else {
        char *reply = commy_wire_reply_error(f.has_id, f.id, f.code, f.message);
        free(reply);
    }
    commy_wire_message m;
    if (commy_wire_message_parse(&m, &f, (const char *)data, size, 1 << 20) == COMMY_OK) commy_wire_message_free(&m);
    return 0;
}
