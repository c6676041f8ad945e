/* The audit log: one JSON line per authentication event (success, failure
 * and why, lockout, refresh, logout, revocation, expired tokens), appended
 * to a file of mode 0600. Callers pass identifiers and reasons only: no key,
 * token or JWT ever reaches this file. */
#include "server.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int audit_fd = -1;
static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;

int srv_audit_open(const char *path, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return snprintf(err, cap, "cannot open the audit log %s: %s", path, strerror(errno)), COMMY_EIO;
    pthread_mutex_lock(&audit_lock);
    if (audit_fd >= 0) close(audit_fd);
    audit_fd = fd;
    pthread_mutex_unlock(&audit_lock);
    return COMMY_OK;
}

void srv_audit_close(void)
{
    pthread_mutex_lock(&audit_lock);
    if (audit_fd >= 0) close(audit_fd);
    audit_fd = -1;
    pthread_mutex_unlock(&audit_lock);
}

void srv_audit(const char *event, const char *tenant, const char *client_id, const char *peer, const char *method,
               const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    char when[40];
    cJSON_AddStringToObject(o, "ts", srv_log_time(when, sizeof when));
    cJSON_AddStringToObject(o, "event", event);
    if (tenant && tenant[0]) cJSON_AddStringToObject(o, "tenant", tenant);
    if (client_id && client_id[0]) cJSON_AddStringToObject(o, "client_id", client_id);
    if (peer && peer[0]) cJSON_AddStringToObject(o, "peer", peer);
    if (method && method[0]) cJSON_AddStringToObject(o, "method", method);
    if (detail && detail[0]) cJSON_AddStringToObject(o, "detail", detail);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return;
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the NUL: one write per line keeps lines whole under O_APPEND */
    pthread_mutex_lock(&audit_lock);
    if (audit_fd >= 0 && write(audit_fd, line, len + 1) != (ssize_t)(len + 1))
        srv_log("error", "audit", "cannot append to the audit log: %s", strerror(errno));
    pthread_mutex_unlock(&audit_lock);
    free(line);
}
