/* The "mirror" section of the configuration (docs/deploying.md). Separate from
 * mirror.c so the configuration fuzz target needs no Redis client. */
#include "server.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int id_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

int srv_mirror_conf_parse(srv_mirror_conf *m, const cJSON *j, char *err, size_t cap)
{
    memset(m, 0, sizeof *m);
    m->snapshot_every = 1000;
    m->timeout_ms = 2000;
    if (!j) return 0;
    if (!cJSON_IsObject(j)) return srv_config_fail(err, cap, "mirror must be an object");
    char addr[300] = "";
    if (srv_config_str(j, "address", "mirror", addr, sizeof addr, 1, err, cap)) return -1;
    /* host:port, or [v6]:port */
    char *colon = strrchr(addr, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == addr || !end || *end || end == colon + 1 || port < 1 || port > 65535)
        return srv_config_fail(err, cap, "mirror.address must be HOST:PORT (for example \"127.0.0.1:6379\")");
    *colon = '\0';
    char *host = addr;
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') host[hl - 1] = '\0', host++;
    if (!host[0] || strlen(host) >= sizeof m->host) return srv_config_fail(err, cap, "mirror.address has an empty or long host");
    snprintf(m->host, sizeof m->host, "%s", host);
    m->port = (int)port;
    if (srv_config_str(j, "server_id", "mirror", m->server_id, sizeof m->server_id, 0, err, cap)) return -1;
    if (!id_ok(m->server_id)) return srv_config_fail(err, cap, "mirror.server_id must be 1-63 bytes of [A-Za-z0-9_.-]");
    if (srv_config_str(j, "username", "mirror", m->username, sizeof m->username, 0, err, cap)) return -1;
    if (srv_config_str(j, "password", "mirror", m->password, sizeof m->password, 0, err, cap)) return -1;
    if (m->username[0] && !m->password[0]) return srv_config_fail(err, cap, "mirror.username needs mirror.password");
    if (srv_config_int(j, "snapshot_every", "mirror", &m->snapshot_every, 10, 10000000, err, cap)) return -1;
    if (srv_config_int(j, "timeout_ms", "mirror", &m->timeout_ms, 50, 60000, err, cap)) return -1;
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(j, "tls");
    if (tls) {
        if (!cJSON_IsObject(tls)) return srv_config_fail(err, cap, "mirror.tls must be an object");
        m->tls = 1;
        if (srv_config_str(tls, "ca", "mirror.tls", m->tls_ca, sizeof m->tls_ca, 1, err, cap)) return -1;
        if (srv_config_str(tls, "cert", "mirror.tls", m->tls_cert, sizeof m->tls_cert, 0, err, cap)) return -1;
        if (srv_config_str(tls, "key", "mirror.tls", m->tls_key, sizeof m->tls_key, 0, err, cap)) return -1;
        if (!m->tls_cert[0] != !m->tls_key[0]) return srv_config_fail(err, cap, "mirror.tls.cert and mirror.tls.key go together");
        if (access(m->tls_ca, R_OK) != 0) return srv_config_fail(err, cap, "mirror.tls.ca: cannot read %s", m->tls_ca);
        if (m->tls_cert[0] && access(m->tls_cert, R_OK) != 0)
            return srv_config_fail(err, cap, "mirror.tls.cert: cannot read %s", m->tls_cert);
        if (m->tls_key[0] && access(m->tls_key, R_OK) != 0)
            return srv_config_fail(err, cap, "mirror.tls.key: cannot read %s", m->tls_key);
    }
    m->enabled = 1;
    return 0;
}
