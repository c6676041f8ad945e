/* libFuzzer target for the server's configuration parser: any bytes are
 * either a configuration or a refusal that names why, never a crash. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

void srv_log(const char *level, const char *event, const char *fmt, ...)
{
    (void)level, (void)event, (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv_config c;
    char err[512] = "";
    if (srv_config_parse(&c, (const char *)data, size, "fuzz", err, sizeof err) == 0) {
        for (int i = 0; i < c.ntenants; i++)
            if (!c.tenants[i].name[0] || c.tenants[i].token_lifetime_s < 1) abort();
        srv_config_free(&c);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
