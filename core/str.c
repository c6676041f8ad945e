/* commy_str: one UTF-8 string.
 *
 * Layout (docs/format.md, "str"): body[0] is the offset of the block holding
 * the bytes (0 while the capacity is 0), body[1] the capacity in bytes (the
 * usable size of that block), body[2] zero; the header's len is the length
 * in bytes. The bytes are not NUL-terminated.
 *
 * Crash safety: bytes past len are unreachable, so an append that fits the
 * capacity copies without logging and logs only len. Set, and an append that
 * does not fit, build the new contents in a fresh block and swap the offset;
 * the old block is freed last, after every allocation of the operation. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct commy_str {
    struct commy__handle h;
};

/* Inside a batch (commy_alloc_lock) the journal spans several operations, so
 * "unreachable, no log needed" no longer holds: a slot past len may have been
 * reachable when the batch began, and a fresh block may reuse one freed
 * earlier in the batch. There every such write is logged too. */
static inline int batching(const commy_alloc *a) { return a->depth > 1; }

/* --------------------------------------------------------------- kind ops */

static int str_init(commy_alloc *a, struct commy__chdr *c) { return COMMY_OK; /* empty: all zero */ }

static int str_destroy(commy_alloc *a, struct commy__chdr *c) { return commy__free(a, c->body[0]); }

static int str_check(commy_alloc *a, const struct commy__chdr *c)
{
    uint64_t at = commy__off(a, c);
    uint64_t off = c->body[0], cap = c->body[1];
    if (c->body[2] != 0 || (off == 0) != (cap == 0) || c->len > cap)
        return commy__err(COMMY_ECORRUPT, "str at offset %" PRIu64 ": length %" PRIu64 ", capacity %" PRIu64
                          " and buffer %" PRIu64 " do not agree", at, c->len, cap, off);
    if (cap == 0) return COMMY_OK;
    if (commy__block_size(a, off) < cap)
        return commy__err(COMMY_ECORRUPT, "str at offset %" PRIu64 ": its buffer %" PRIu64 " is not a live block of %"
                          PRIu64 " bytes", at, off, cap);
    if (commy__value_check(COMMY_T_STR, commy__at(a, off), (size_t)c->len, "stored string") != COMMY_OK)
        return commy__err(COMMY_ECORRUPT, "str at offset %" PRIu64 ": its contents are not valid UTF-8", at);
    return COMMY_OK;
}

static uint64_t str_bytes(commy_alloc *a, const struct commy__chdr *c)
{
    return c->body[0] ? commy__block_size(a, c->body[0]) : 0;
}

const struct commy__kind_ops commy__str_ops = {
    .kind = COMMY_KIND_STR,
    .block_size = sizeof(struct commy__chdr),
    .init = str_init,
    .destroy = str_destroy,
    .check = str_check,
    .bytes = str_bytes,
};

/* ------------------------------------------------------------ the handle */

int commy_str_open(commy_str **out, commy_alloc *a, const char *name, uint32_t flags)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_str_open: out is NULL");
    *out = NULL;
    COMMY__CHECK_HANDLE(a);
    commy_str *s = calloc(1, sizeof *s);
    if (s == NULL) return commy__err(COMMY_ENOMEM, "commy_str_open: out of memory for the handle");
    int rc = commy__handle_open(&s->h, a, name, COMMY_KIND_STR, COMMY_T_STR, 0, flags);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return COMMY_OK;
}

void commy_str_close(commy_str *s)
{
    if (s == NULL) return;
    commy__handle_release(&s->h);
    free(s);
}

int commy_str_version(uint32_t *out, commy_str *s)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_str_version: out is NULL");
    COMMY__CHECK_HANDLE(s);
    return commy__op_version(out, &s->h);
}

int commy_str_wait(commy_str *s, uint32_t seen, int32_t timeout_ms)
{
    COMMY__CHECK_HANDLE(s);
    return commy__op_wait(&s->h, seen, timeout_ms);
}

/* ---------------------------------------------------------------- helpers */

static int check_text(commy_str *s, const char *utf8, size_t len)
{
    char what[COMMY_ROOT_NAME_MAX + 32];
    snprintf(what, sizeof what, "text for str '%s'", s->h.name);
    return commy__value_check(COMMY_T_STR, utf8, len, what);
}

/* Builds a buffer of at least cap bytes holding the current bytes followed by
 * (more, n) and swaps it in; the old buffer's offset goes to *old_off, for
 * the caller to free last. keep != 0 keeps the current bytes. */
static int rebuild(commy_str *s, struct commy__chdr *c, uint64_t cap, int keep, const char *more, size_t n,
                   uint64_t *old_off)
{
    commy_alloc *a = s->h.a;
    uint64_t off;
    int rc = commy__alloc(&off, a, cap, 8);
    if (rc) return rc;
    char *dst = commy__at(a, off);
    if (batching(a) && (rc = commy__log(a, dst, cap)) != 0) return rc;
    uint64_t kept = keep ? c->len : 0;
    if (kept) memcpy(dst, commy__at(a, c->body[0]), kept);
    if (n) memcpy(dst + kept, more, n);
    *old_off = c->body[0];
    /* The block may be larger than asked: use all of it for later appends. */
    rc = commy__put64(a, &c->body[0], off);
    if (rc == 0) rc = commy__put64(a, &c->body[1], commy__block_size(a, off));
    if (rc == 0) rc = commy__put64(a, &c->len, kept + n);
    return rc;
}

/* ------------------------------------------------------------- operations */

int commy_str_len(uint64_t *out, commy_str *s)
{
    if (out == NULL) return commy__err(COMMY_EINVAL, "commy_str_len: out is NULL");
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_LEN, .out_u64 = out);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&s->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->len;
    return commy__op_end(&s->h, sp, COMMY_OK, 0);
}

int commy_str_set(commy_str *s, const char *utf8, size_t len)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_SET, .val = utf8, .vlen = len, .has_val = 1);
    int rc = check_text(s, utf8, len);
    if (rc) return rc;
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    rc = commy__op_begin(&s->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = s->h.a;
    if (len == 0) {
        old = c->body[0];
        rc = commy__put64(a, &c->len, 0);
        if (rc == 0) rc = commy__put64(a, &c->body[0], 0);
        if (rc == 0) rc = commy__put64(a, &c->body[1], 0);
    } else {
        rc = rebuild(s, c, len, 0, utf8, len, &old);
    }
    if (rc == 0) rc = commy__free(a, old);
    return commy__op_end(&s->h, sp, rc, rc == 0);
}

int commy_str_append(commy_str *s, const char *utf8, size_t len)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_APPEND, .val = utf8, .vlen = len, .has_val = 1);
    int rc = check_text(s, utf8, len);
    if (rc) return rc;
    uint64_t sp, old = 0;
    struct commy__chdr *c;
    rc = commy__op_begin(&s->h, 1, &sp, &c);
    if (rc) return rc;
    if (len == 0) return commy__op_end(&s->h, sp, COMMY_OK, 0);
    commy_alloc *a = s->h.a;
    uint64_t n = c->len, cap = c->body[1];
    if (len > UINT64_MAX / 4 - n) {
        rc = commy__err(COMMY_ENOSPC, "str '%s': appending %zu bytes to %" PRIu64 " cannot fit any segment",
                        s->h.name, len, n);
    } else if (n + len <= cap) {
        /* Bytes past len are unreachable: copy first, then log only len. */
        char *end = (char *)commy__at(a, c->body[0]) + n;
        if (batching(a)) rc = commy__log(a, end, len);
        if (rc == 0) memcpy(end, utf8, len);
        if (rc == 0) rc = commy__put64(a, &c->len, n + len);
    } else {
        uint64_t want = cap + cap / 2;
        if (want < n + len) want = n + len;
        rc = rebuild(s, c, want, 1, utf8, len, &old);
        if (rc == 0) rc = commy__free(a, old);
    }
    return commy__op_end(&s->h, sp, rc, rc == 0);
}

int commy_str_get(commy_str *s, char *out, size_t cap, size_t *out_len)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_GET, .out = out, .cap = cap, .out_len = out_len);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&s->h, 0, &sp, &c);
    if (rc) return rc;
    size_t n = (size_t)c->len;
    if (out_len) *out_len = n;
    if (out != NULL) {
        if (cap < n)
            rc = commy__err(COMMY_ETOOSMALL, "str '%s' is %zu bytes but the buffer holds %zu; the needed length was "
                            "stored", s->h.name, n, cap);
        else {
            if (n) memcpy(out, commy__at(s->h.a, c->body[0]), n);
            if (cap > n) out[n] = '\0';
        }
    }
    return commy__op_end(&s->h, sp, rc, 0);
}

int commy_str_borrow(const char **out, size_t *out_len, commy_str *s)
{
    if (out == NULL || out_len == NULL) return commy__err(COMMY_EINVAL, "commy_str_borrow: out or out_len is NULL");
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_NONE);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&s->h, 0, &sp, &c);
    if (rc) return rc;
    *out = c->body[0] ? (const char *)commy__at(s->h.a, c->body[0]) : "";
    *out_len = (size_t)c->len;
    return commy__op_end(&s->h, sp, COMMY_OK, 0);
}

int commy_str_clear(commy_str *s)
{
    COMMY__CHECK_HANDLE(s);
    COMMY__REMOTE(&s->h, .op = COMMY__ROP_CLEAR);
    uint64_t sp;
    struct commy__chdr *c;
    int rc = commy__op_begin(&s->h, 1, &sp, &c);
    if (rc) return rc;
    commy_alloc *a = s->h.a;
    uint64_t old = c->body[0];
    int changed = old != 0 || c->len != 0;
    if (changed) {
        rc = commy__put64(a, &c->len, 0);
        if (rc == 0) rc = commy__put64(a, &c->body[0], 0);
        if (rc == 0) rc = commy__put64(a, &c->body[1], 0);
        if (rc == 0) rc = commy__free(a, old);
    }
    return commy__op_end(&s->h, sp, rc, changed && rc == 0);
}
