/* See json_arena.h. */
#include "json_arena.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Under AddressSanitizer the arena keeps its speed trick but not its blind
 * spot: a bump arena hands out memory ASan thinks is one live global, so a
 * node used after cJSON_Delete, or kept past the bracket, read whatever the
 * next request put there and nobody noticed. Here every allocation gets a
 * poisoned header (its size, and a red zone against overflow from the one
 * before), free poisons the node, and end poisons the whole arena. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define HEADER 16u
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define HEADER 0u
#endif

#define ARENA_BYTES (64 * 1024)

/* One arena, used only by the thread inside a bracket (the lws thread). */
static alignas(16) unsigned char arena[ARENA_BYTES];
static size_t used;
static _Thread_local int active;

static void *arena_malloc(size_t n)
{
    if (active) {
        size_t need = ((n + 15) & ~(size_t)15) + HEADER;
        if (need >= n && need <= ARENA_BYTES - used) {
            unsigned char *p = arena + used + HEADER;
            used += need;
#ifdef ARENA_ASAN
            ASAN_UNPOISON_MEMORY_REGION(p - HEADER, sizeof n);
            memcpy(p - HEADER, &n, sizeof n);
            ASAN_POISON_MEMORY_REGION(p - HEADER, sizeof n);
#endif
            ASAN_UNPOISON_MEMORY_REGION(p, n);
            return p;
        }
    }
    return malloc(n); /* too big for what is left, or not in a bracket */
}

static void arena_free(void *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)arena;
    if (a >= lo && a < lo + ARENA_BYTES) { /* freed with the arena */
#ifdef ARENA_ASAN
        size_t n;
        ASAN_UNPOISON_MEMORY_REGION((unsigned char *)p - HEADER, sizeof n);
        memcpy(&n, (unsigned char *)p - HEADER, sizeof n);
        ASAN_POISON_MEMORY_REGION((unsigned char *)p - HEADER, HEADER + n);
#endif
        return;
    }
    free(p);
}

void srv_json_arena_install(void)
{
    cJSON_Hooks h = {arena_malloc, arena_free};
    cJSON_InitHooks(&h);
    ASAN_POISON_MEMORY_REGION(arena, ARENA_BYTES);
}

void srv_json_arena_begin(void)
{
    used = 0;
    active = 1;
}

void srv_json_arena_end(void)
{
    active = 0;
    used = 0;
    ASAN_POISON_MEMORY_REGION(arena, ARENA_BYTES);
}

int srv_json_arena_checked(void)
{
#ifdef ARENA_ASAN
    return 1;
#else
    return 0;
#endif
}
