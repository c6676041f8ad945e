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
        for (int i = 0; i < c.ntenants; i++) {
            const srv_tenant_conf *t = &c.tenants[i];
            if (!t->name[0] || t->token_lifetime_s < 1) abort();
            /* the auth settings hold together: a callback where one is called, a key where JWTs are checked */
            if ((t->mode != SRV_AUTH_SERVER_MANAGED) != (strncmp(t->callback.url, "https://", 8) == 0)) abort();
            if (t->jwt.enabled && !t->jwt.hs256_len && !t->jwt.rs256_key) abort();
            if (t->lockout.max_failures && !t->lockout.by_identity && !t->lockout.by_address) abort();
        }
        srv_config_free(&c);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
