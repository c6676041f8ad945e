/* See json_arena.h. */
#include "json_arena.h"

#include <cjson/cJSON.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_BYTES (64 * 1024)

/* One arena, used only by the thread inside a bracket (the lws thread). */
static alignas(16) unsigned char arena[ARENA_BYTES];
static size_t used;
static _Thread_local int active;

static void *arena_malloc(size_t n)
{
    if (active) {
        size_t need = (n + 15) & ~(size_t)15;
        if (need >= n && need <= ARENA_BYTES - used) {
            void *p = arena + used;
            used += need;
            return p;
        }
    }
    return malloc(n); /* too big for what is left, or not in a bracket */
}

static void arena_free(void *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)arena;
    if (a >= lo && a < lo + ARENA_BYTES) return; /* freed with the arena */
    free(p);
}

void srv_json_arena_install(void)
{
    cJSON_Hooks h = {arena_malloc, arena_free};
    cJSON_InitHooks(&h);
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
}
