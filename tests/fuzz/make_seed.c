/* Writes seed segments for the fuzzers' corpora: a fresh segment, and one
 * with blocks and a few containers. Usage: make_seed DIR */
#include "commy.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char path[512];
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = 72 << 10;
    o.max_size = 1 << 20;
    o.journal_size = 4096;
    snprintf(path, sizeof path, "%s/fresh.seg", argv[1]);
    remove(path);
    commy_alloc *a = NULL;
    if (commy_alloc_open(&a, path, &o) != COMMY_OK) return 1;
    commy_alloc_close(a);
    snprintf(path, sizeof path, "%s/used.seg", argv[1]);
    remove(path);
    if (commy_alloc_open(&a, path, &o) != COMMY_OK) return 1;
    uint64_t off;
    for (int i = 0; i < 20; i++) commy_alloc_allocate(&off, a, (uint64_t)(16 * i + 1), 0);
    commy_alloc_free(a, off);
    commy_box *b = NULL;
    if (commy_box_open(&b, a, "counter", COMMY_T_I64, 0) == COMMY_OK) commy_box_fetch_add(NULL, b, 5);
    commy_box_close(b);
    commy_map *m = NULL;
    if (commy_map_open(&m, a, "config", COMMY_T_STR, COMMY_T_I64, 0) == COMMY_OK) {
        int64_t v = 42;
        commy_map_put(m, "answer", 6, &v, 8);
    }
    commy_map_close(m);
    commy_omap *om = NULL;
    if (commy_omap_open(&om, a, "index", COMMY_T_I64, COMMY_T_STR, 0) == COMMY_OK)
        for (int64_t k = 0; k < 50; k++) commy_omap_put(om, &k, 8, "v", 1);
    commy_omap_close(om);
    commy_deque *d = NULL;
    if (commy_deque_open(&d, a, "tasks", COMMY_T_BYTES, 0) == COMMY_OK) commy_deque_push_back(d, "job", 3);
    commy_deque_close(d);
    commy_alloc_close(a);
    return 0;
}
