/* The SQLite backend of the storage interface: one file under the data root.
 * Statements are prepared per call: the server's rate of auth events is low
 * and this keeps the backend free of cached state. */
#include "server.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqlite_store {
    srv_store ops;
    sqlite3 *db;
} sqlite_store;

static sqlite3 *db_of(srv_store *s) { return ((sqlite_store *)s)->db; }

static int fail(sqlite3 *db, const char *what)
{
    srv_log("error", "store", "{\"op\":\"%s\",\"sqlite\":\"%s\"}", what, sqlite3_errmsg(db));
    return COMMY_EIO;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        srv_log("error", "store", "{\"sql\":\"%s\"}", msg ? msg : "?");
        sqlite3_free(msg);
        return COMMY_EIO;
    }
    return COMMY_OK;
}

/* Durability. The store runs in WAL mode with synchronous=NORMAL: a commit
 * is in the WAL (the OS's page cache) when it returns and reaches the disk at
 * the next checkpoint, so it survives the server's crash but not always the
 * machine's (power loss, kernel panic): then the last commits may be lost.
 * For a login, a lost token only means logging in again, and it pays no
 * fsync. A revocation (logout, refresh, revoke_client) must not be undone
 * that way, or a token its owner gave up would be valid again: those commit
 * with synchronous=FULL (one fsync of the WAL). The connection is shared by
 * threads; its mutex (recursive) keeps another revocation from setting
 * NORMAL back before this one commits. */
static void durable_begin(sqlite3 *db)
{
    sqlite3_mutex_enter(sqlite3_db_mutex(db));
    sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
}

static void durable_end(sqlite3 *db)
{
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    sqlite3_mutex_leave(sqlite3_db_mutex(db));
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static int key_put(srv_store *s, const char *tenant, const srv_key_conf *k)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO api_keys(tenant,key_id,hash,scopes,client_id) VALUES(?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(db, "key_put");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->scopes, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, k->client_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "key_put");
    sqlite3_finalize(st);
    return rc;
}

static int key_get(srv_store *s, const char *tenant, const char *key_id, srv_key_conf *out)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT hash,scopes,client_id FROM api_keys WHERE tenant=? AND key_id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(db, "key_get");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->id, sizeof out->id, "%s", key_id);
        copy_col(out->hash, sizeof out->hash, st, 0);
        copy_col(out->scopes, sizeof out->scopes, st, 1);
        copy_col(out->client_id, sizeof out->client_id, st, 2);
        rc = COMMY_OK;
    } else rc = rc == SQLITE_DONE ? COMMY_ENOTFOUND : fail(db, "key_get");
    sqlite3_finalize(st);
    return rc;
}

static int token_put_db(sqlite3 *db, const unsigned char hash[32], const srv_token *t)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO tokens(hash,tenant,client_id,scopes,expires_at,revoked,not_after)"
                           " VALUES(?,?,?,?,?,0,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(db, "token_put");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->scopes, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t->expires_at);
    sqlite3_bind_int64(st, 6, t->not_after);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "token_put");
    sqlite3_finalize(st);
    return rc;
}

static int token_put(srv_store *s, const unsigned char hash[32], const srv_token *t)
{
    return token_put_db(db_of(s), hash, t);
}

static int token_get(srv_store *s, const unsigned char hash[32], srv_token *out)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT tenant,client_id,scopes,expires_at,not_after FROM tokens WHERE hash=? AND revoked=0",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(db, "token_get");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(out->tenant, sizeof out->tenant, st, 0);
        copy_col(out->client_id, sizeof out->client_id, st, 1);
        copy_col(out->scopes, sizeof out->scopes, st, 2);
        out->expires_at = sqlite3_column_int64(st, 3);
        out->not_after = sqlite3_column_int64(st, 4);
        rc = COMMY_OK;
    } else rc = rc == SQLITE_DONE ? COMMY_ENOTFOUND : fail(db, "token_get");
    sqlite3_finalize(st);
    return rc;
}

static int token_revoke_db(sqlite3 *db, const unsigned char hash[32], int *changed)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE tokens SET revoked=1 WHERE hash=? AND revoked=0", -1, &st, NULL) != SQLITE_OK)
        return fail(db, "token_revoke");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "token_revoke");
    if (changed) *changed = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

static int token_revoke(srv_store *s, const unsigned char hash[32])
{
    durable_begin(db_of(s));
    int rc = token_revoke_db(db_of(s), hash, NULL);
    durable_end(db_of(s));
    return rc;
}

static int token_rotate(srv_store *s, const unsigned char old_hash[32], const unsigned char new_hash[32],
                        const srv_token *t)
{
    sqlite3 *db = db_of(s);
    durable_begin(db);
    if (exec(db, "BEGIN IMMEDIATE")) {
        durable_end(db);
        return COMMY_EIO;
    }
    int changed = 0;
    int rc = token_revoke_db(db, old_hash, &changed);
    /* the old token must still have been live: two refreshes of one token
     * race, and only one of them may win */
    if (rc == COMMY_OK && changed != 1) rc = COMMY_ENOTFOUND;
    if (rc == COMMY_OK) rc = token_put_db(db, new_hash, t);
    if (rc == COMMY_OK) rc = exec(db, "COMMIT");
    if (rc != COMMY_OK) exec(db, "ROLLBACK");
    durable_end(db);
    return rc;
}

static int token_revoke_client(srv_store *s, const char *tenant, const char *client_id)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE tokens SET revoked=1 WHERE tenant=? AND client_id=?", -1, &st, NULL) != SQLITE_OK)
        return fail(db, "token_revoke_client");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, client_id, -1, SQLITE_STATIC);
    durable_begin(db);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "token_revoke_client");
    durable_end(db);
    sqlite3_finalize(st);
    return rc;
}

static int service_put(srv_store *s, const char *tenant, const srv_service_row *row)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO services(tenant,name,file,persistent) VALUES(?,?,?,?)", -1,
                           &st, NULL) != SQLITE_OK)
        return fail(db, "service_put");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->file, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, row->persistent);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "service_put");
    sqlite3_finalize(st);
    return rc;
}

static int service_get(srv_store *s, const char *tenant, const char *name, srv_service_row *out)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT file,persistent FROM services WHERE tenant=? AND name=?", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(db, "service_get");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->name, sizeof out->name, "%s", name);
        copy_col(out->file, sizeof out->file, st, 0);
        out->persistent = sqlite3_column_int(st, 1);
        rc = COMMY_OK;
    } else rc = rc == SQLITE_DONE ? COMMY_ENOTFOUND : fail(db, "service_get");
    sqlite3_finalize(st);
    return rc;
}

static int service_delete(srv_store *s, const char *tenant, const char *name)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM services WHERE tenant=? AND name=?", -1, &st, NULL) != SQLITE_OK)
        return fail(db, "service_delete");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? (sqlite3_changes(db) ? COMMY_OK : COMMY_ENOTFOUND)
                                             : fail(db, "service_delete");
    sqlite3_finalize(st);
    return rc;
}

static int service_list(srv_store *s, const char *tenant, int (*fn)(const srv_service_row *, void *), void *payload)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT name,file,persistent FROM services WHERE tenant=? ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return fail(db, "service_list");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        srv_service_row row;
        copy_col(row.name, sizeof row.name, st, 0);
        copy_col(row.file, sizeof row.file, st, 1);
        row.persistent = sqlite3_column_int(st, 2);
        if (fn(&row, payload)) break;
    }
    rc = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? COMMY_OK : fail(db, "service_list");
    sqlite3_finalize(st);
    return rc;
}

/* ---- lockouts: one row per (tenant, subject) ---- */

static int lockout_fail(srv_store *s, const char *tenant, const char *subject, int64_t now, int max_failures,
                        int lock_s, int64_t *locked_until)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st = NULL;
    *locked_until = 0;
    /* one transaction: two connections failing at once must both count */
    if (exec(db, "BEGIN IMMEDIATE")) return COMMY_EIO;
    int rc = COMMY_OK;
    int64_t failures = 0, until = 0;
    if (sqlite3_prepare_v2(db, "SELECT failures,locked_until FROM lockouts WHERE tenant=? AND subject=?", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = fail(db, "lockout_fail");
        goto out;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        failures = sqlite3_column_int64(st, 0);
        until = sqlite3_column_int64(st, 1);
    } else if (step != SQLITE_DONE) {
        rc = fail(db, "lockout_fail");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (until > now) goto out; /* already locked: the lock is not extended */
    failures++;
    if (failures >= max_failures) {
        until = now + lock_s;
        failures = 0;
        *locked_until = until;
    } else {
        until = 0;
    }
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO lockouts(tenant,subject,failures,locked_until) VALUES(?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = fail(db, "lockout_fail");
        goto out;
    }
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, failures);
    sqlite3_bind_int64(st, 4, until);
    if (sqlite3_step(st) != SQLITE_DONE) rc = fail(db, "lockout_fail");
out:
    sqlite3_finalize(st);
    if (rc == COMMY_OK) rc = exec(db, "COMMIT");
    if (rc != COMMY_OK) {
        exec(db, "ROLLBACK");
        *locked_until = 0;
    }
    return rc;
}

static int lockout_check(srv_store *s, const char *tenant, const char *subject, int64_t now, int64_t *locked_until)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    *locked_until = 0;
    if (sqlite3_prepare_v2(db, "SELECT locked_until FROM lockouts WHERE tenant=? AND subject=?", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(db, "lockout_check");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t until = sqlite3_column_int64(st, 0);
        if (until > now) *locked_until = until;
        rc = COMMY_OK;
    } else rc = rc == SQLITE_DONE ? COMMY_OK : fail(db, "lockout_check");
    sqlite3_finalize(st);
    return rc;
}

static int lockout_clear(srv_store *s, const char *tenant, const char *subject)
{
    sqlite3 *db = db_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM lockouts WHERE tenant=? AND subject=?", -1, &st, NULL) != SQLITE_OK)
        return fail(db, "lockout_clear");
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? COMMY_OK : fail(db, "lockout_clear");
    sqlite3_finalize(st);
    return rc;
}

static void store_close(srv_store *s)
{
    if (!s) return;
    sqlite3_close(db_of(s));
    free(s);
}

int srv_store_sqlite_open(srv_store **out, const char *path, char *err, size_t cap)
{
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s) return snprintf(err, cap, "out of memory"), COMMY_ENOMEM;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, cap, "cannot open the store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return COMMY_EIO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec(s->db, "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;" /* see durable_begin */
                    "CREATE TABLE IF NOT EXISTS api_keys(tenant TEXT, key_id TEXT, hash TEXT, scopes TEXT,"
                    " client_id TEXT, PRIMARY KEY(tenant,key_id));"
                    "CREATE TABLE IF NOT EXISTS tokens(hash BLOB PRIMARY KEY, tenant TEXT, client_id TEXT,"
                    " scopes TEXT, expires_at INTEGER, revoked INTEGER, not_after INTEGER NOT NULL DEFAULT 0);"
                    "CREATE INDEX IF NOT EXISTS tokens_client ON tokens(tenant, client_id);"
                    "CREATE TABLE IF NOT EXISTS services(tenant TEXT, name TEXT, file TEXT, persistent INTEGER,"
                    " PRIMARY KEY(tenant,name));"
                    "CREATE TABLE IF NOT EXISTS lockouts(tenant TEXT, subject TEXT, failures INTEGER,"
                    " locked_until INTEGER, PRIMARY KEY(tenant,subject));")) {
        snprintf(err, cap, "cannot create the tables of the store %s", path);
        sqlite3_close(s->db);
        free(s);
        return COMMY_EIO;
    }
    /* stores made before tokens had not_after get the column (an error means it is there) */
    sqlite3_exec(s->db, "ALTER TABLE tokens ADD COLUMN not_after INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL);
    s->ops = (srv_store){.key_put = key_put, .key_get = key_get, .token_put = token_put, .token_get = token_get,
                         .token_rotate = token_rotate, .token_revoke = token_revoke,
                         .token_revoke_client = token_revoke_client, .service_put = service_put,
                         .service_get = service_get, .service_delete = service_delete,
                         .service_list = service_list, .close = store_close, .lockout_fail = lockout_fail,
                         .lockout_check = lockout_check, .lockout_clear = lockout_clear};
    *out = &s->ops;
    return COMMY_OK;
}
