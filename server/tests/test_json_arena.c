/* The cJSON arena of the server's request parse (server/json_arena.c): trees
 * parsed inside brackets, trees made outside them surviving, documents too
 * big for the arena; and in an AddressSanitizer build, that what the arena
 * holds is poisoned once freed or once its bracket ended, so ASan reports a
 * use after free that the arena would otherwise hide. */
#include "harness.h"
#include "json_arena.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define POISONED(p) (__asan_address_is_poisoned(p) != 0)
#else
#define POISONED(p) 0
#endif

static void test_brackets(void)
{
    cJSON *outside = cJSON_Parse("{\"keep\":[1,2,3]}"); /* malloc'd: outlives every bracket */
    REQUIRE(outside);
    for (int i = 0; i < 2000; i++) {
        srv_json_arena_begin();
        cJSON *t = cJSON_Parse("{\"op\":\"get\",\"id\":7,\"service\":\"orders\",\"var\":\"v\",\"value\":[1,\"x\",{}]}");
        REQUIRE(t);
        CHECK(cJSON_GetObjectItemCaseSensitive(t, "id")->valueint == 7);
        CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(t, "service")->valuestring, "orders") == 0);
        cJSON_Delete(t);
        srv_json_arena_end();
    }
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(outside, "keep")) == 3);
    cJSON_Delete(outside);
    /* bigger than the arena: the rest comes from malloc, and cJSON_Delete
     * frees each node where it came from (a wrong free() is an ASan error, a
     * missed one a leak) */
    size_t n = 20000, len = 0;
    char *doc = malloc(n * 8 + 8);
    REQUIRE(doc);
    doc[len++] = '[';
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(doc + len, "%s\"%03zu\"", i ? "," : "", i % 1000);
    doc[len++] = ']';
    doc[len] = '\0';
    srv_json_arena_begin();
    cJSON *big = cJSON_Parse(doc);
    REQUIRE(big);
    CHECK(cJSON_GetArraySize(big) == (int)n);
    CHECK(strcmp(cJSON_GetArrayItem(big, (int)n - 1)->valuestring, "999") == 0);
    cJSON_Delete(big);
    srv_json_arena_end();
    free(doc);
}

static void test_asan_sees_misuse(void)
{
#ifndef HAVE_ASAN
    CHECK(srv_json_arena_checked() == 0);
    fprintf(stderr, "asan_sees_misuse: not an AddressSanitizer build; the poisoning is checked there\n");
#else
    CHECK(srv_json_arena_checked() == 1);
    srv_json_arena_begin();
    cJSON *t = cJSON_Parse("{\"a\":\"text\"}");
    cJSON *kept = cJSON_Parse("[1]");
    REQUIRE(t && kept);
    cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "a");
    char *s = a->valuestring;
    CHECK(!POISONED(s) && !POISONED(a));
    cJSON_Delete(t);
    CHECK(POISONED(s) && POISONED(a)); /* a use after cJSON_Delete is reported */
    CHECK(!POISONED(kept));
    srv_json_arena_end();
    CHECK(POISONED(kept)); /* so is a node kept past its bracket */
    srv_json_arena_begin();
    unsigned char *p = cJSON_malloc(5);
    REQUIRE(p);
    CHECK(!POISONED(p) && !POISONED(p + 4));
    CHECK(POISONED(p + 5)); /* overflow into the red zone */
    cJSON_free(p);
    srv_json_arena_end();
#endif
}

int main(void)
{
    srv_json_arena_install();
    harness_run("brackets", test_brackets);
    harness_run("asan_sees_misuse", test_asan_sees_misuse);
    return harness_finish();
}
