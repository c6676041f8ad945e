/* libFuzzer target for the parser of a tenant callback's answer: any bytes
 * are an allow with a well-formed grant, a deny, or garbage with a reason;
 * never a crash. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    (void)level, (void)event, (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_grant g;
    char why[256] = "";
    int v = srv_callback_parse(&g, (const char *)data, size, why, sizeof why);
    if (v < -1 || v > 1 || !why[0]) abort();
    if (v == 1) {
        if (g.client_id[0] && !srv_config_name_ok(g.client_id)) abort();
        if (g.lifetime_s < 0 || g.lifetime_s > 30 * 24 * 3600) abort();
        char copy[SRV_SCOPES_MAX], *save = NULL;
        memcpy(copy, g.scopes, sizeof copy);
        for (char *s = strtok_r(copy, " ", &save); s; s = strtok_r(NULL, " ", &save))
            if (!srv_config_scope_ok(s)) abort();
    } else if (g.client_id[0] || g.scopes[0]) {
        abort(); /* a refusal grants nothing */
    }
    return 0;
}
