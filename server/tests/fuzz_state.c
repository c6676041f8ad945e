/* libFuzzer target for the mirror's variable states (server/state.c): the
 * JSON that stream entries and snapshots carry from Redis. Any bytes are
 * either applied or refused with a message, never a crash; a state that was
 * applied reads back as a state that applying again changes nothing. */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    (void)level, (void)event, (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *st = cJSON_ParseWithLength((const char *)data, size);
    if (!st) return 0;
    char path[] = "/tmp/commy-fuzz-state-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
    unlink(path);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.max_size = 16u << 20;
    commy_alloc *a;
    if (commy_alloc_open(&a, path, &o)) abort();
    char msg[256] = "";
    int changed = 0;
    if (srv_state_apply(&changed, a, "v", st, msg, sizeof msg) == COMMY_OK) {
        srv_var v;
        cJSON *back = NULL;
        if (srv_var_open(&v, a, "v") || srv_state_capture(&back, &v)) abort();
        srv_var_close(&v);
        if (srv_state_apply(&changed, a, "v", back, msg, sizeof msg) || changed) abort();
        cJSON_Delete(back);
    } else if (!msg[0]) {
        abort();
    }
    cJSON_Delete(st);
    commy_alloc_close(a);
    unlink(path);
    return 0;
}
