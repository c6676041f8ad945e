/* libFuzzer target: arbitrary bytes as a segment file. Opening must return
 * an error or a handle; with a handle, every read-side call and a few
 * allocations must keep working or fail cleanly. Never a crash or a hang. */
#include "commy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void walk(commy_alloc *a)
{
    commy_segment_info info;
    commy_heap_stats st;
    commy_alloc_info(&info, a);
    commy_alloc_stats(&st, a);
    for (uint32_t i = 0; i < 32; i++) {
        commy_process_info pi;
        commy_alloc_process(&pi, a, i);
    }
    int healthy = commy_alloc_check(a) == COMMY_OK;
    uint64_t n = 0;
    if (commy_root_count(&n, a) == COMMY_OK)
        for (uint64_t i = 0; i < n && i < 64; i++) {
            commy_root_info ri;
            commy_root_at(&ri, a, i);
        }
    if (healthy && !info.readonly) {
        /* Only a file that checks clean is written to: that is the contract. */
        uint64_t o1 = 0, o2 = 0;
        if (commy_alloc_allocate(&o1, a, 100, 0) == COMMY_OK) memset(commy_alloc_ptr(a, o1), 0xab, 100);
        commy_alloc_allocate(&o2, a, 5000, 256);
        if (o1) commy_alloc_free(a, o1);
        if (o2) commy_alloc_free(a, o2);
        if (commy_alloc_check(a) != COMMY_OK) abort(); /* a clean file must stay clean */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) snprintf(path, sizeof path, "/tmp/commy-fuzz-%d.seg", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0; /* never create: the bytes are the file */
    o.lock_timeout_ms = 1000;
    o.create_timeout_ms = 100;
    commy_alloc *a = NULL;
    if (commy_alloc_open(&a, path, &o) == COMMY_OK) {
        walk(a);
        commy_alloc_close(a);
    }
    o.flags = COMMY_ALLOC_READONLY;
    if (commy_alloc_open(&a, path, &o) == COMMY_OK) {
        walk(a);
        commy_alloc_close(a);
    }
    unlink(path);
    return 0;
}
