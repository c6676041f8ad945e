/* The wire codec of commy's server protocol (docs/protocol.md): the one module
 * that parses and builds frames, shared by commy-server and the session
 * client. Internal: never installed; it exposes cJSON types on purpose.
 *
 * Parsing never trusts its input: every field is type-checked and bounded,
 * and a failure leaves a protocol error code (COMMY_WIRE_E*) and a sentence
 * in the message's err fields. */
#ifndef COMMY_CLIENT_WIRE_H
#define COMMY_CLIENT_WIRE_H

#include "commy.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define COMMY_WIRE_VERSION 1
#define COMMY_WIRE_NAME_MAX 63
#define COMMY_WIRE_SECRET_MAX 256
#define COMMY_WIRE_JWT_MAX 8192
#define COMMY_WIRE_RANGE_MAX 1000

/* Protocol-level error codes, as they appear in replies ("EPROTO", ...).
 * They are public codes of abi/commy/errors.h since sessions return them;
 * the wire carries names, never numbers. */
#define COMMY_WIRE_EPROTO COMMY_EPROTO
#define COMMY_WIRE_EUNKNOWNOP COMMY_EUNKNOWNOP
#define COMMY_WIRE_ETOOBIG COMMY_ETOOBIG
#define COMMY_WIRE_EAUTH COMMY_EAUTH
#define COMMY_WIRE_EEXPIRED COMMY_EEXPIRED
#define COMMY_WIRE_EFORBIDDEN COMMY_EFORBIDDEN
#define COMMY_WIRE_ELOCKED COMMY_ELOCKED

typedef enum commy_wire_op {
    COMMY_WIRE_OP_NONE = 0,
    COMMY_WIRE_OP_AUTHENTICATE,
    COMMY_WIRE_OP_REFRESH,
    COMMY_WIRE_OP_LOGOUT,
    COMMY_WIRE_OP_LIST_SERVICES,
    COMMY_WIRE_OP_CREATE_SERVICE,
    COMMY_WIRE_OP_DELETE_SERVICE,
    COMMY_WIRE_OP_OPEN_SERVICE,
    COMMY_WIRE_OP_CLOSE_SERVICE,
    COMMY_WIRE_OP_GET,
    COMMY_WIRE_OP_SET,
    COMMY_WIRE_OP_PUSH,
    COMMY_WIRE_OP_POP,
    COMMY_WIRE_OP_ADD,
    COMMY_WIRE_OP_REMOVE,
    COMMY_WIRE_OP_CONTAINS,
    COMMY_WIRE_OP_LEN,
    COMMY_WIRE_OP_RANGE,
    COMMY_WIRE_OP_SUBSCRIBE,
    COMMY_WIRE_OP_UNSUBSCRIBE,
    COMMY_WIRE_OP_REVOKE_CLIENT,
    /* for commy_session: the core's calls that the first set could not express */
    COMMY_WIRE_OP_DECLARE,
    COMMY_WIRE_OP_CLEAR,
    COMMY_WIRE_OP_INSERT,
    COMMY_WIRE_OP_APPEND,
    COMMY_WIRE_OP_CAS,
    COMMY_WIRE_OP_FETCH_ADD,
    COMMY_WIRE_OP_COUNT_
} commy_wire_op;

/* A typed value: its commy_type and its bytes in the native representation
 * the core takes (docs/format.md). data is owned (malloc) by the value. */
typedef struct commy_wire_value {
    commy_type type;
    unsigned char *data;
    size_t len;
} commy_wire_value;

/* A validated request. Strings point into the request's own storage and live
 * until commy_wire_request_free. Absent optional fields are NULL / has_* 0. */
typedef struct commy_wire_request {
    uint64_t id;
    commy_wire_op op;
    const char *op_name;
    char tenant[COMMY_WIRE_NAME_MAX + 1];
    char service[COMMY_WIRE_NAME_MAX + 1];
    char var[COMMY_WIRE_NAME_MAX + 1];
    char client_id[COMMY_WIRE_NAME_MAX + 1];
    char api_key[COMMY_WIRE_SECRET_MAX + 1];
    char token[COMMY_WIRE_SECRET_MAX + 1];
    char jwt[COMMY_WIRE_JWT_MAX + 1];
    uint32_t kind;      /* COMMY_KIND_* or 0 when absent */
    int mode_local;     /* open_service: 1 local, 0 remote */
    int front;          /* push/pop: 1 front, 0 back */
    int persistent;     /* create_service */
    int has_index;
    uint64_t index;
    int has_key, has_value, has_from;
    commy_wire_value key, value, from;
    uint32_t limit;     /* range: 1..COMMY_WIRE_RANGE_MAX */
    int has_end;        /* "end" was given (deque get: front/back element) */
    int has_key_type, has_value_type; /* declare */
    commy_type key_type, value_type;
    int existing, excl; /* declare: "flags" */
    int64_t expected, desired, delta; /* cas, fetch_add */
    uint64_t skip;      /* range: entries to pass over first */
} commy_wire_request;

/* The outcome of a failed parse: code (COMMY_WIRE_E* or COMMY_E*), a sentence,
 * and the request id if one could be read (has_id). */
typedef struct commy_wire_fault {
    int code;
    int has_id;
    uint64_t id;
    char message[256];
} commy_wire_fault;

/* Parses one text frame of len bytes (not NUL-terminated) into *out.
 * max_len bounds the frame; larger frames are COMMY_WIRE_ETOOBIG.
 * Returns COMMY_OK or the fault's code (and fills *fault). On failure *out
 * holds nothing that needs freeing. */
int commy_wire_request_parse(commy_wire_request *out, commy_wire_fault *fault, const char *frame, size_t len,
                             size_t max_len);
/* The two halves of commy_wire_request_parse, for the differential fuzz
 * target and the tests: _fast reads the common shapes in one pass and returns
 * 1 with *out filled, or 0 (nothing to free) when it declines the frame;
 * _json is the cJSON path that answers every frame. Whatever _fast accepts,
 * _json accepts with the same request. */
int commy_wire_request_parse_fast(commy_wire_request *out, const char *frame, size_t len);
int commy_wire_request_parse_json(commy_wire_request *out, commy_wire_fault *fault, const char *frame, size_t len,
                                  size_t max_len);
/* Releases the values a parsed request owns. Accepts a zeroed request. */
void commy_wire_request_free(commy_wire_request *r);

/* A parsed server frame (reply or push), for the session client and tests. */
typedef struct commy_wire_message {
    int is_push;
    /* reply */
    int has_id;
    uint64_t id;
    int ok;
    int error_code;              /* COMMY_E* / COMMY_WIRE_E*, 0 when ok */
    char error_name[32];
    const char *error_message;   /* borrowed from root */
    const cJSON *result;         /* borrowed from root; an object when ok */
    /* push */
    char push[16];               /* "changed", "rotated", "expiring", "closing" */
    const cJSON *body;           /* the whole object, borrowed */
    cJSON *root;                 /* owned */
} commy_wire_message;

int commy_wire_message_parse(commy_wire_message *out, commy_wire_fault *fault, const char *frame, size_t len,
                             size_t max_len);
void commy_wire_message_free(commy_wire_message *m);

/* ---- building frames. Every builder returns a malloc'd NUL-terminated JSON
 * string (caller frees), or NULL when out of memory. ---- */

/* A request: op plus the fields object (may be NULL; consumed). */
char *commy_wire_request_build(uint64_t id, const char *op, cJSON *fields);
/* A success reply with result (may be NULL for {}; consumed). */
char *commy_wire_reply_ok(uint64_t id, cJSON *result);
/* The same success reply printed into out (cap bytes, NUL-terminated), with
 * result as JSON text of rlen bytes (NULL for {}). Returns the frame's
 * length, or 0 when it does not fit. */
size_t commy_wire_reply_ok_print(char *out, size_t cap, uint64_t id, const char *result, size_t rlen);
/* An error reply; has_id 0 gives "id": null. */
char *commy_wire_reply_error(int has_id, uint64_t id, int code, const char *message);
/* A push: kind ("changed", ...) plus fields (consumed, may be NULL). */
char *commy_wire_push_build(const char *kind, cJSON *fields);

/* ---- typed values ---- */

/* Converts a JSON typed value {"t":..,"v":..} into *out (owned bytes).
 * want: COMMY_T_ANY to accept the value's own type, else the value must have
 * exactly this type (COMMY_ETYPE otherwise). Errors: COMMY_EINVAL (shape,
 * base64), COMMY_ERANGE (number outside the type), COMMY_ETYPE. msg (cap
 * bytes) receives a sentence. */
int commy_wire_value_from_json(commy_wire_value *out, const cJSON *json, commy_type want, char *msg, size_t cap);
/* Builds the JSON typed value of (t, bytes, len); NULL on ENOMEM or when the
 * bytes are not a valid value of t. */
cJSON *commy_wire_value_to_json(commy_type t, const void *bytes, size_t len);
void commy_wire_value_free(commy_wire_value *v);
/* Prints the JSON typed value of (t, bytes, len) into out (cap bytes,
 * NUL-terminated), byte for byte as cJSON prints commy_wire_value_to_json's
 * object, without building it. Returns the length, or 0 when it does not fit
 * or when commy_wire_value_to_json would give NULL. */
size_t commy_wire_value_print(char *out, size_t cap, commy_type t, const void *bytes, size_t len);
/* Parses a type name ("i64", "blob[16]") into *out. COMMY_EINVAL if unknown. */
int commy_wire_type_parse(commy_type *out, const char *name);

/* ---- names ---- */
const char *commy_wire_op_name(commy_wire_op op);
/* "EINVAL", "EAUTH", ...; "EUNKNOWN" for an unknown code. */
const char *commy_wire_code_name(int code);
/* The code for a name, or 0 if unknown. */
int commy_wire_code_from_name(const char *name);
/* COMMY_KIND_* for "box", ..., or 0. */
uint32_t commy_wire_kind_parse(const char *name);

/* base64 (RFC 4648 with padding). encode returns a malloc'd string. decode
 * returns COMMY_OK and a malloc'd buffer, or COMMY_EINVAL for bad input. */
char *commy_wire_base64_encode(const void *data, size_t len);
int commy_wire_base64_decode(unsigned char **out, size_t *out_len, const char *text, size_t text_len);

#endif
