/* Mirroring through Redis (docs/deploying.md, "A mirrored group").
 *
 * Each service has one stream, commy:{tenant}:{service}:stream. Its entries
 * are the service's writes in the one order every server applies them:
 *   k=op     a remote client's write request, the JSON frame the wire codec
 *            parsed; nobody applies it before it is in the stream, the server
 *            that took it included, so the stream ID order is the order.
 *   k=state  a variable's whole state, published when the server saw a change
 *            it did not make itself in stream order: a write by a local
 *            client through the mapped file, or any write while Redis was away.
 * A state for a variable with unpublished local changes is skipped: that
 * server's own state entry follows it in the stream and wins everywhere.
 *
 * Threads: the lws loop never talks to Redis. A writer thread XADDs what the
 * loop queues (a mutex and a condition variable); a reader thread follows the
 * streams with XREAD BLOCK, applies entries under S.lock, notices local
 * changes by their containers' version counters, loads services from
 * snapshots, and answers deferred requests through srv_ticket_done, whose
 * frames wake the loop with lws_cancel_service. Each thread has its own
 * connection. Lock order: S.lock, then Q.lock. */
#include "mirror.h"
#include "ops.h"
#include "redis.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RESERVED_ROOT "commy.mirror.last_id"
#define XREAD_BLOCK_MS 20
#define BATCH 500
#define PIPELINE 64
#define PROGRESS_WINDOW_MS "30000" /* a server silent this long no longer holds back trimming */

typedef struct mvar {
    char name[SRV_NAME_MAX];
    srv_var h;
    uint32_t synced; /* the version after our last apply or publish */
    int dirty;       /* a change nobody published yet */
    int own_pending; /* our state entries not yet read back */
} mvar;

typedef struct msvc {
    struct msvc *next;
    char tenant[SRV_NAME_MAX], name[SRV_NAME_MAX];
    char stream[200], snap[200], progress[200];
    char last_id[48];
    int persistent;
    int loaded;  /* the state from Redis is in the file */
    int catchup; /* check the snapshot and read the stream before following */
    commy_alloc *bound;
    mvar *vars;
    int nvars, capvars;
    uint64_t since_snapshot;
    uint64_t *waiters;
    int nwaiters;
} msvc;

enum { J_OP, J_STATE, J_SNAPSHOT, J_DELETE };

typedef struct job {
    struct job *next;
    int kind;
    uint64_t ticket;
    char tenant[SRV_NAME_MAX], service[SRV_NAME_MAX], var[SRV_NAME_MAX];
    char stream[200], snap[200], progress[200], snap_id[48];
    char *payload;
    size_t len;
} job;

typedef struct inflight {
    struct inflight *next;
    uint64_t ticket;
    char tenant[SRV_NAME_MAX], service[SRV_NAME_MAX];
    char *frame;
    size_t len;
    int local; /* applied here while Redis was away: skip it when it comes back */
    char id[48]; /* its entry, once XADD answered */
} inflight;

static struct {
    srv_mirror_conf conf;
    int active;
    char origin[SRV_NAME_MAX + 40];
    pthread_t reader, writer;
    atomic_int stop;
    atomic_int connected;
    atomic_int reset; /* the writer lost its connection: the reader starts over too */
    /* under S.lock */
    msvc *svcs;
    inflight *inflight;
    int ninflight;
    uint64_t next_ticket;
    /* the writer's queue */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    job *qhead, *qtail;
    int qlen;
    /* metrics */
    atomic_ullong applied, published, disconnects, snapshots, local_fallbacks, snapshot_loads;
    /* the age of the entries applied (now - the time in their ID): the
     * largest of the last whole second, and of the one running */
    atomic_llong lag_ms, lag_window_ms;
    int following; /* the reader applies what XREAD brought (not a catch-up of old entries) */
} M = {.qlock = PTHREAD_MUTEX_INITIALIZER, .qcond = PTHREAD_COND_INITIALIZER};

int srv_mirror_active(void) { return M.active; }
int srv_mirror_connected(void) { return M.active && atomic_load(&M.connected); }

/* ---- stream IDs ---- */

static int id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    char *e;
    *ms = strtoull(s, &e, 10);
    if (*e != '-') return -1;
    *seq = strtoull(e + 1, &e, 10);
    return *e ? -1 : 0;
}

static int id_cmp(const char *a, const char *b)
{
    uint64_t am, as, bm, bs;
    if (id_parse(a, &am, &as) || id_parse(b, &bm, &bs)) return 0;
    return am < bm ? -1 : am > bm ? 1 : as < bs ? -1 : as > bs;
}

/* ---- the writer's queue ---- */

static void job_free(job *j)
{
    if (!j) return;
    free(j->payload);
    free(j);
}

static void push_job(job *j)
{
    pthread_mutex_lock(&M.qlock);
    if (M.qtail) M.qtail->next = j;
    else M.qhead = j;
    M.qtail = j;
    M.qlen++;
    pthread_cond_signal(&M.qcond);
    pthread_mutex_unlock(&M.qlock);
}

static job *new_job(int kind, const msvc *s)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->kind = kind;
    snprintf(j->tenant, sizeof j->tenant, "%s", s->tenant);
    snprintf(j->service, sizeof j->service, "%s", s->name);
    snprintf(j->stream, sizeof j->stream, "%s", s->stream);
    snprintf(j->snap, sizeof j->snap, "%s", s->snap);
    snprintf(j->progress, sizeof j->progress, "%s", s->progress);
    return j;
}

/* ---- services and their variables (S.lock held) ---- */

static msvc *svc_find(const char *tenant, const char *name)
{
    for (msvc *s = M.svcs; s; s = s->next)
        if (strcmp(s->tenant, tenant) == 0 && strcmp(s->name, name) == 0) return s;
    return NULL;
}

static msvc *svc_by_stream(const char *stream, size_t len)
{
    for (msvc *s = M.svcs; s; s = s->next)
        if (strlen(s->stream) == len && memcmp(s->stream, stream, len) == 0) return s;
    return NULL;
}

static void vars_close(msvc *s)
{
    for (int i = 0; i < s->nvars; i++) srv_var_close(&s->vars[i].h);
}

/* The segment of s, with the variable handles rebound after a rotation. */
static commy_alloc *svc_alloc(msvc *s)
{
    commy_alloc *a = srv_service_alloc(s->tenant, s->name);
    if (a && a != s->bound) {
        for (int i = 0; i < s->nvars; i++) {
            mvar *v = &s->vars[i];
            srv_var_close(&v->h);
            if (srv_var_open(&v->h, a, v->name) == COMMY_OK) srv_var_version(&v->synced, &v->h);
        }
        s->bound = a;
    }
    return a;
}

static void var_sync(mvar *v)
{
    if (v->h.h) srv_var_version(&v->synced, &v->h);
}

/* The tracked variable name of s, opened if it exists. created_dirty: a
 * variable we meet for the first time carries a change nobody published. */
static mvar *var_get(msvc *s, commy_alloc *a, const char *name, int created_dirty)
{
    mvar *v = NULL;
    for (int i = 0; i < s->nvars; i++)
        if (strcmp(s->vars[i].name, name) == 0) v = &s->vars[i];
    if (!v) {
        if (s->nvars == s->capvars) {
            int n = s->capvars ? s->capvars * 2 : 8;
            mvar *nv = realloc(s->vars, (size_t)n * sizeof *nv);
            if (!nv) return NULL;
            s->vars = nv;
            s->capvars = n;
        }
        v = &s->vars[s->nvars++];
        memset(v, 0, sizeof *v);
        snprintf(v->name, sizeof v->name, "%s", name);
        if (srv_var_open(&v->h, a, name) == COMMY_OK) {
            var_sync(v);
            v->dirty = created_dirty;
        }
        return v;
    }
    if (!v->h.h && srv_var_open(&v->h, a, name) == COMMY_OK) {
        var_sync(v);
        v->dirty = created_dirty;
    }
    return v;
}

/* Marks variables that changed behind our back (local clients, or writes
 * applied here while Redis was away). */
static void scan(msvc *s, commy_alloc *a)
{
    uint64_t n = 0;
    if (commy_root_count(&n, a)) return;
    for (uint64_t i = 0; i < n; i++) {
        commy_root_info info;
        if (commy_root_at(&info, a, i) || strcmp(info.name, RESERVED_ROOT) == 0) continue;
        mvar *v = var_get(s, a, info.name, 1);
        uint32_t now;
        if (v && v->h.h && srv_var_version(&now, &v->h) == COMMY_OK && now != v->synced) v->dirty = 1;
    }
}

/* Queues a state entry for each dirty variable of s (connected and loaded). */
static void publish_dirty(msvc *s, commy_alloc *a)
{
    for (int i = 0; i < s->nvars; i++) {
        mvar *v = &s->vars[i];
        if (!v->dirty || !v->h.h) continue;
        if (commy_alloc_lock(a, 1000)) return;
        cJSON *st = NULL;
        uint32_t ver = 0;
        int rc = srv_var_version(&ver, &v->h);
        if (!rc) rc = srv_state_capture(&st, &v->h);
        commy_alloc_unlock(a);
        if (rc) {
            srv_log("error", "mirror", "service %s/%s variable %s: cannot read its state: %s", s->tenant, s->name,
                    v->name, commy_strerror(rc));
            v->dirty = 0;
            continue;
        }
        job *j = new_job(J_STATE, s);
        char *text = cJSON_PrintUnformatted(st);
        cJSON_Delete(st);
        if (!j || !text) {
            free(text);
            job_free(j);
            return;
        }
        snprintf(j->var, sizeof j->var, "%s", v->name);
        j->payload = text;
        j->len = strlen(text);
        v->synced = ver;
        v->dirty = 0;
        v->own_pending++;
        push_job(j);
    }
}

/* The whole service as one snapshot at its last applied ID. */
static void queue_snapshot(msvc *s, commy_alloc *a)
{
    if (strcmp(s->last_id, "0-0") == 0 || commy_alloc_lock(a, 1000)) return;
    cJSON *root = cJSON_CreateObject(), *vars = cJSON_AddObjectToObject(root, "vars");
    cJSON_AddStringToObject(root, "id", s->last_id);
    uint64_t n = 0;
    int rc = commy_root_count(&n, a);
    for (uint64_t i = 0; !rc && i < n; i++) {
        commy_root_info info;
        srv_var v;
        if (commy_root_at(&info, a, i) || strcmp(info.name, RESERVED_ROOT) == 0) continue;
        if (srv_var_open(&v, a, info.name)) continue;
        cJSON *st = NULL;
        rc = srv_state_capture(&st, &v);
        srv_var_close(&v);
        if (!rc) cJSON_AddItemToObject(vars, info.name, st);
    }
    commy_alloc_unlock(a);
    char *text = rc ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    job *j = text ? new_job(J_SNAPSHOT, s) : NULL;
    if (!j) {
        free(text);
        if (rc) srv_log("error", "mirror", "service %s/%s: cannot snapshot: %s", s->tenant, s->name, commy_strerror(rc));
        return;
    }
    snprintf(j->snap_id, sizeof j->snap_id, "%s", s->last_id);
    j->payload = text;
    j->len = strlen(text);
    s->since_snapshot = 0;
    push_job(j);
}

static void persist_id(msvc *s, commy_alloc *a)
{
    if (!s->persistent) return;
    commy_str *str;
    if (commy_str_open(&str, a, RESERVED_ROOT, 0) == COMMY_OK) {
        commy_str_set(str, s->last_id, strlen(s->last_id));
        commy_str_close(str);
    }
}

static void inflight_free(inflight *f);

/* ---- main.c's hooks (S.lock held) ---- */

int srv_mirror_submit(uint64_t *ticket, const char *tenant, const char *service, const char *frame, size_t len)
{
    msvc *s = svc_find(tenant, service);
    if (!s || !atomic_load(&M.connected) || !s->loaded) return 1;
    inflight *f = calloc(1, sizeof *f);
    job *j = new_job(J_OP, s);
    char *copy = malloc(len + 1), *copy2 = malloc(len + 1);
    if (!f || !j || !copy || !copy2) {
        free(f), job_free(j), free(copy), free(copy2);
        return 1;
    }
    memcpy(copy, frame, len);
    copy[len] = '\0';
    memcpy(copy2, copy, len + 1);
    *ticket = ++M.next_ticket;
    f->ticket = j->ticket = *ticket;
    snprintf(f->tenant, sizeof f->tenant, "%s", tenant);
    snprintf(f->service, sizeof f->service, "%s", service);
    f->frame = copy;
    f->len = len;
    inflight **tail = &M.inflight; /* in submission order: a fall-back applies them so */
    while (*tail) tail = &(*tail)->next;
    *tail = f;
    M.ninflight++;
    j->payload = copy2;
    j->len = len;
    push_job(j);
    return 0;
}

int srv_mirror_open(uint64_t *ticket, const char *tenant, const char *service, int persistent)
{
    msvc *s = svc_find(tenant, service);
    commy_alloc *a = srv_service_alloc(tenant, service);
    if (!a) return 0;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return 0;
        snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
        snprintf(s->name, sizeof s->name, "%s", service);
        snprintf(s->stream, sizeof s->stream, "commy:%s:%s:stream", tenant, service);
        snprintf(s->snap, sizeof s->snap, "commy:%s:%s:snapshot", tenant, service);
        snprintf(s->progress, sizeof s->progress, "commy:%s:%s:progress", tenant, service);
        snprintf(s->last_id, sizeof s->last_id, "0-0");
        s->persistent = persistent;
        s->catchup = 1;
        s->bound = a;
        /* a persistent file from before: its data is what it was at the ID it
         * recorded; the stream after that ID brings it up to date */
        commy_str *str;
        char idbuf[48];
        size_t n = 0;
        if (persistent && commy_str_open(&str, a, RESERVED_ROOT, COMMY_OPEN_EXISTING) == COMMY_OK) {
            if (commy_str_get(str, idbuf, sizeof idbuf - 1, &n) == COMMY_OK) {
                idbuf[n] = '\0';
                uint64_t x, y;
                if (!id_parse(idbuf, &x, &y)) snprintf(s->last_id, sizeof s->last_id, "%s", idbuf);
            }
            commy_str_close(str);
        }
        uint64_t nroots = 0;
        commy_root_count(&nroots, a);
        for (uint64_t i = 0; i < nroots; i++) {
            commy_root_info info;
            if (commy_root_at(&info, a, i) == COMMY_OK && strcmp(info.name, RESERVED_ROOT) != 0)
                var_get(s, a, info.name, 0); /* what the file holds is not a new change */
        }
        s->next = M.svcs;
        M.svcs = s;
    }
    if (s->loaded || !atomic_load(&M.connected)) return 0;
    uint64_t *w = realloc(s->waiters, (size_t)(s->nwaiters + 1) * sizeof *w);
    if (!w) return 0;
    s->waiters = w;
    *ticket = ++M.next_ticket;
    w[s->nwaiters++] = *ticket;
    return 1;
}

void srv_mirror_close(const char *tenant, const char *service)
{
    msvc *s = svc_find(tenant, service);
    if (!s) return;
    commy_alloc *a = svc_alloc(s);
    if (a) {
        scan(s, a);
        publish_dirty(s, a); /* queued even while Redis is away: sent when it returns */
        queue_snapshot(s, a);
    }
    for (int i = 0; i < s->nwaiters; i++) srv_ticket_done(s->waiters[i], 0, NULL, NULL);
    /* writes still on their way belong to connections that left: when they
     * come back (if the service opens again) they are applied as anyone's */
    for (inflight **p = &M.inflight; *p;) {
        inflight *f = *p;
        if (strcmp(f->tenant, tenant) || strcmp(f->service, service)) {
            p = &f->next;
            continue;
        }
        *p = f->next;
        M.ninflight--;
        inflight_free(f);
    }
    vars_close(s);
    for (msvc **p = &M.svcs; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    free(s->vars);
    free(s->waiters);
    free(s);
}

void srv_mirror_forget(const char *tenant, const char *service)
{
    msvc tmp = {0};
    snprintf(tmp.tenant, sizeof tmp.tenant, "%s", tenant);
    snprintf(tmp.name, sizeof tmp.name, "%s", service);
    snprintf(tmp.stream, sizeof tmp.stream, "commy:%s:%s:stream", tenant, service);
    snprintf(tmp.snap, sizeof tmp.snap, "commy:%s:%s:snapshot", tenant, service);
    snprintf(tmp.progress, sizeof tmp.progress, "commy:%s:%s:progress", tenant, service);
    job *j = new_job(J_DELETE, &tmp);
    if (j) push_job(j);
}

/* ---- applying stream entries (S.lock held) ---- */

static inflight *inflight_take(uint64_t ticket)
{
    for (inflight **p = &M.inflight; *p; p = &(*p)->next)
        if ((*p)->ticket == ticket) {
            inflight *f = *p;
            *p = f->next;
            M.ninflight--;
            return f;
        }
    return NULL;
}

static void inflight_free(inflight *f)
{
    if (!f) return;
    free(f->frame);
    free(f);
}

/* Applies a write request frame to service s; completes ticket if nonzero. */
static void apply_op(msvc *s, commy_alloc *a, const char *frame, size_t len, uint64_t ticket)
{
    commy_wire_request r;
    commy_wire_fault fault;
    char msg[512] = "";
    cJSON *res = NULL;
    int rc = commy_wire_request_parse(&r, &fault, frame, len, len + 1);
    if (rc) {
        if (ticket) srv_ticket_done(ticket, rc, fault.message, NULL);
        return;
    }
    mvar *v = var_get(s, a, r.var, 1);
    uint32_t now;
    if (v && v->h.h && srv_var_version(&now, &v->h) == COMMY_OK && now != v->synced) v->dirty = 1;
    rc = srv_ops_apply(&res, a, &r, msg, sizeof msg);
    if (v) {
        if (!v->h.h) srv_var_open(&v->h, a, r.var); /* created by this write */
        var_sync(v);
    }
    if (ticket) srv_ticket_done(ticket, rc, msg, res);
    else cJSON_Delete(res);
    if (!rc) srv_var_changed(s->tenant, s->name, r.var);
    commy_wire_request_free(&r);
}

/* A state for var (from a stream entry or a snapshot). mine: our own entry. */
static void apply_state(msvc *s, commy_alloc *a, const char *var, const char *text, size_t len, int mine)
{
    mvar *v = var_get(s, a, var, 1);
    if (!v) return;
    uint32_t now;
    if (v->h.h && srv_var_version(&now, &v->h) == COMMY_OK && now != v->synced) v->dirty = 1;
    if (mine && v->own_pending > 0) v->own_pending--;
    /* a newer state of ours follows in the stream, and wins there */
    if (v->dirty || v->own_pending > 0) return;
    cJSON *st = cJSON_ParseWithLength(text, len);
    char msg[256];
    int changed = 0;
    int rc = st ? srv_state_apply(&changed, a, var, st, msg, sizeof msg) : COMMY_EINVAL;
    cJSON_Delete(st);
    if (rc) {
        srv_log("error", "mirror", "service %s/%s variable %s: cannot apply a state: %s", s->tenant, s->name, var,
                st ? msg : "not JSON");
        return;
    }
    if (!v->h.h) srv_var_open(&v->h, a, var);
    var_sync(v);
    if (changed) srv_var_changed(s->tenant, s->name, var);
}

static const redisReply *field(const redisReply *kv, const char *name)
{
    for (size_t i = 0; kv && i + 1 < kv->elements; i += 2)
        if (kv->element[i]->type == REDIS_REPLY_STRING && strcmp(kv->element[i]->str, name) == 0)
            return kv->element[i + 1]->type == REDIS_REPLY_STRING ? kv->element[i + 1] : NULL;
    return NULL;
}

/* One entry [id, [field, value, ...]] of s's stream. */
static void apply_entry(msvc *s, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) return;
    const char *id = e->element[0]->str;
    if (id_cmp(id, s->last_id) <= 0) return; /* seen already */
    commy_alloc *a = svc_alloc(s);
    if (!a) return;
    const redisReply *kv = e->element[1];
    const redisReply *o = field(kv, "o"), *k = field(kv, "k"), *t = field(kv, "t"), *v = field(kv, "v"),
                     *f = field(kv, "f");
    snprintf(s->last_id, sizeof s->last_id, "%s", id);
    s->since_snapshot++;
    atomic_fetch_add(&M.applied, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long age = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - strtoll(id, NULL, 10);
    if (M.following && age > atomic_load(&M.lag_window_ms)) atomic_store(&M.lag_window_ms, age);
    if (!o || !k || !f) return;
    int mine = strcmp(o->str, M.origin) == 0;
    if (strcmp(k->str, "op") == 0) {
        uint64_t ticket = mine && t ? strtoull(t->str, NULL, 10) : 0;
        inflight *fl = ticket ? inflight_take(ticket) : NULL;
        if (fl && fl->local) {
            inflight_free(fl); /* applied here already, while Redis was away */
            return;
        }
        apply_op(s, a, f->str, f->len, fl ? ticket : 0);
        inflight_free(fl);
    } else if (strcmp(k->str, "state") == 0 && v) {
        apply_state(s, a, v->str, f->str, f->len, mine);
    }
    persist_id(s, a);
}

/* Opens waiting for a load are answered with what the file holds. */
static void release_waiters(void)
{
    for (msvc *s = M.svcs; s; s = s->next) {
        for (int i = 0; i < s->nwaiters; i++) srv_ticket_done(s->waiters[i], 0, NULL, NULL);
        s->nwaiters = 0;
    }
}

/* Redis went away: writes waiting for their stream order are applied here. */
static void fall_back(void)
{
    for (inflight *f = M.inflight; f; f = f->next) {
        if (f->local) continue;
        f->local = 1;
        msvc *s = svc_find(f->tenant, f->service);
        commy_alloc *a = s ? svc_alloc(s) : NULL;
        if (!a) {
            srv_ticket_done(f->ticket, COMMY_ECLOSED, "the service was closed", NULL);
            continue;
        }
        atomic_fetch_add(&M.local_fallbacks, 1);
        apply_op(s, a, f->frame, f->len, f->ticket);
        scan(s, a); /* the write is now a local change to publish */
    }
    for (msvc *s = M.svcs; s; s = s->next) s->catchup = 1;
}

/* ---- the reader thread ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void lost(srv_redis **r, const char *why)
{
    srv_redis_close(*r);
    *r = NULL;
    if (atomic_exchange(&M.connected, 0)) {
        atomic_fetch_add(&M.disconnects, 1);
        srv_log("error", "mirror_disconnected", "Redis %s:%d: %s; serving local clients alone until it returns",
                M.conf.host, M.conf.port, why);
    }
    srv_lock();
    fall_back();
    srv_unlock();
}

/* Brings s up to date: the snapshot if it is newer than what we applied, then
 * the stream after it. */
static int catch_up(srv_redis *r, const char *tenant, const char *name)
{
    char stream[200], snap[200], last[52];
    srv_lock();
    msvc *s = svc_find(tenant, name);
    if (!s) return srv_unlock(), 0;
    snprintf(stream, sizeof stream, "%s", s->stream);
    snprintf(snap, sizeof snap, "%s", s->snap);
    srv_unlock();
    /* the snapshot is needed when entries after our last ID were trimmed, or
     * to start a fresh copy from it rather than from the first entry */
    redisReply *rep = srv_redis_cmd(r, "HMGET %s id trimmed", snap);
    if (!rep) return -1;
    int need = 0;
    srv_lock();
    s = svc_find(tenant, name);
    if (s && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
        id_cmp(rep->element[0]->str, s->last_id) > 0)
        need = strcmp(s->last_id, "0-0") == 0 ||
               (rep->element[1]->type == REDIS_REPLY_STRING && id_cmp(s->last_id, rep->element[1]->str) < 0);
    srv_unlock();
    freeReplyObject(rep);
    rep = need ? srv_redis_cmd(r, "HMGET %s id data", snap) : NULL;
    if (need && !rep) return -1;
    srv_lock();
    s = svc_find(tenant, name);
    commy_alloc *a = s ? svc_alloc(s) : NULL;
    if (a && rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING && id_cmp(rep->element[0]->str, s->last_id) > 0) {
        cJSON *root = cJSON_ParseWithLength(rep->element[1]->str, rep->element[1]->len);
        cJSON *vars = cJSON_GetObjectItemCaseSensitive(root, "vars"), *st;
        cJSON_ArrayForEach(st, vars)
        {
            char *text = cJSON_PrintUnformatted(st);
            if (text) apply_state(s, a, st->string, text, strlen(text), 0);
            free(text);
        }
        cJSON_Delete(root);
        snprintf(s->last_id, sizeof s->last_id, "%s", rep->element[0]->str);
        persist_id(s, a);
        atomic_fetch_add(&M.snapshot_loads, 1);
        /* our writes the snapshot already holds will not come back one by
         * one (the progress reports make this rare: see SNAPSHOT_LUA) */
        for (inflight *f = M.inflight, *next; f; f = next) {
            next = f->next;
            if (f->local || !f->id[0] || id_cmp(f->id, s->last_id) > 0 || strcmp(f->tenant, s->tenant) ||
                strcmp(f->service, s->name))
                continue;
            inflight *t = inflight_take(f->ticket);
            srv_ticket_done(t->ticket, 0, NULL, cJSON_CreateObject());
            inflight_free(t);
        }
    }
    if (rep) freeReplyObject(rep);
    for (;;) {
        if (!s) return srv_unlock(), 0;
        snprintf(last, sizeof last, "(%s", s->last_id);
        srv_unlock();
        rep = srv_redis_cmd(r, "XRANGE %s %s + COUNT %d", stream, last, BATCH);
        if (!rep) return -1;
        srv_lock();
        s = svc_find(tenant, name);
        size_t n = rep->type == REDIS_REPLY_ARRAY ? rep->elements : 0;
        for (size_t i = 0; s && i < n; i++) apply_entry(s, rep->element[i]);
        freeReplyObject(rep);
        if (n < BATCH) break;
    }
    char progress[200], report[100];
    if (s) {
        snprintf(progress, sizeof progress, "%s", s->progress);
        snprintf(report, sizeof report, "%s %lld", s->last_id, (long long)time(NULL) * 1000);
    }
    srv_unlock();
    if (s) {
        /* how far we are: the snapshots do not trim what we have not read */
        rep = srv_redis_cmd(r, "HSET %s %s %s", progress, M.origin, report);
        if (!rep) return -1;
        freeReplyObject(rep);
    }
    srv_lock();
    s = svc_find(tenant, name);
    if (s) {
        s->catchup = 0;
        s->loaded = 1;
        for (int i = 0; i < s->nwaiters; i++) srv_ticket_done(s->waiters[i], 0, NULL, NULL);
        s->nwaiters = 0;
    }
    srv_unlock();
    return 0;
}

static void *reader_main(void *arg)
{
    (void)arg;
    srv_redis *r = NULL;
    int backoff = 50;
    time_t last_check = time(NULL);
    while (!atomic_load(&M.stop)) {
        if (r && atomic_exchange(&M.reset, 0)) lost(&r, "the writer's connection failed");
        if (!r) {
            char err[256];
            srv_lock();
            for (msvc *s = M.svcs; s; s = s->next) {
                commy_alloc *a = svc_alloc(s);
                if (a) scan(s, a); /* keep noticing local changes while alone */
            }
            srv_unlock();
            if (srv_redis_open(&r, &M.conf, err, sizeof err)) {
                static int said;
                if (!said++) srv_log("error", "mirror", "%s; retrying", err);
                srv_lock();
                release_waiters(); /* Redis is away: they get what this server has */
                srv_unlock();
                sleep_ms(backoff);
                backoff = backoff < 1000 ? backoff * 2 : 1000;
                continue;
            }
            backoff = 50;
            srv_lock();
            for (msvc *s = M.svcs; s; s = s->next) s->catchup = 1;
            atomic_store(&M.connected, 1);
            srv_unlock();
            srv_log("info", "mirror_connected", "Redis %s:%d as %s", M.conf.host, M.conf.port, M.origin);
        }
        /* services to catch up, and the streams to follow */
        int n = 0, cap = 0, ncatch = 0;
        char (*keys)[200] = NULL, (*ids)[48] = NULL, (*catch)[2][SRV_NAME_MAX] = NULL;
        srv_lock();
        if (time(NULL) != last_check) {
            /* once a second: were entries we have not read trimmed away? */
            last_check = time(NULL);
            atomic_store(&M.lag_ms, atomic_exchange(&M.lag_window_ms, 0));
            for (msvc *s = M.svcs; s; s = s->next) s->catchup = 1;
        }
        for (msvc *s = M.svcs; s; s = s->next) cap++;
        if (cap) {
            keys = calloc((size_t)cap, sizeof *keys);
            ids = calloc((size_t)cap, sizeof *ids);
            catch = calloc((size_t)cap, sizeof *catch);
        }
        for (msvc *s = M.svcs; s && keys && ids && catch; s = s->next) {
            commy_alloc *a = svc_alloc(s);
            if (!a) continue;
            scan(s, a);
            if (s->loaded) publish_dirty(s, a);
            if (s->since_snapshot >= (uint64_t)M.conf.snapshot_every) queue_snapshot(s, a);
            if (s->catchup) {
                snprintf(catch[ncatch][0], SRV_NAME_MAX, "%s", s->tenant);
                snprintf(catch[ncatch][1], SRV_NAME_MAX, "%s", s->name);
                ncatch++;
                continue;
            }
            snprintf(keys[n], 200, "%s", s->stream);
            snprintf(ids[n], 48, "%s", s->last_id);
            n++;
        }
        srv_unlock();
        int bad = 0;
        for (int i = 0; i < ncatch && !bad; i++) bad = catch_up(r, catch[i][0], catch[i][1]) != 0;
        if (!bad && n) {
            int argc = 6 + 2 * n;
            const char **argv = calloc((size_t)argc, sizeof *argv);
            char block[16];
            snprintf(block, sizeof block, "%d", XREAD_BLOCK_MS);
            if (argv) {
                argv[0] = "XREAD", argv[1] = "COUNT", argv[2] = "500", argv[3] = "BLOCK", argv[4] = block;
                argv[5] = "STREAMS";
                for (int i = 0; i < n; i++) argv[6 + i] = keys[i], argv[6 + n + i] = ids[i];
                redisReply *rep = srv_redis_argv(r, argc, argv, NULL, XREAD_BLOCK_MS);
                free(argv);
                if (!rep) bad = 1;
                else {
                    if (rep->type == REDIS_REPLY_ARRAY) {
                        srv_lock();
                        M.following = 1;
                        for (size_t i = 0; i < rep->elements; i++) {
                            const redisReply *sr = rep->element[i];
                            if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2) continue;
                            msvc *s = svc_by_stream(sr->element[0]->str, sr->element[0]->len);
                            for (size_t j = 0; s && j < sr->element[1]->elements; j++)
                                apply_entry(s, sr->element[1]->element[j]);
                        }
                        M.following = 0;
                        srv_unlock();
                    } else if (rep->type == REDIS_REPLY_ERROR) {
                        srv_log("error", "mirror", "XREAD: %s", rep->str);
                        sleep_ms(100);
                    }
                    freeReplyObject(rep);
                }
            }
        } else if (!bad) {
            /* nothing to follow: still notice a Redis that went away */
            static time_t pinged;
            if (pinged != time(NULL)) {
                pinged = time(NULL);
                redisReply *rep = srv_redis_cmd(r, "PING");
                if (rep) freeReplyObject(rep);
                else bad = 1;
            }
            if (!bad) sleep_ms(XREAD_BLOCK_MS);
        }
        free(keys);
        free(ids);
        free(catch);
        if (bad) lost(&r, "the connection failed");
    }
    srv_redis_close(r);
    return NULL;
}

/* ---- the writer thread ---- */

/* Stores a snapshot unless a newer one is there, and trims the stream to the
 * entries after the previous snapshot that every live server (one that
 * reported its progress within ARGV[3] ms) has applied. KEYS: snapshot,
 * stream, progress. ARGV: id, data, window. */
static const char SNAPSHOT_LUA[] =
    "local function less(x, y)\n"
    "  local a1, b1 = string.match(x, '^(%d+)-(%d+)$')\n"
    "  local a2, b2 = string.match(y, '^(%d+)-(%d+)$')\n"
    "  a1, b1, a2, b2 = tonumber(a1), tonumber(b1), tonumber(a2), tonumber(b2)\n"
    "  return a1 < a2 or (a1 == a2 and b1 < b2)\n"
    "end\n"
    "local cur = redis.call('HGET', KEYS[1], 'id')\n"
    "if cur and not less(cur, ARGV[1]) then return 0 end\n"
    "local minid = cur\n"
    "if minid then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  local p = redis.call('HGETALL', KEYS[3])\n"
    "  for i = 1, #p, 2 do\n"
    "    local id, ms = string.match(p[i + 1], '^(%d+-%d+) (%d+)$')\n"
    "    if id and now - tonumber(ms) < tonumber(ARGV[3]) then\n"
    "      if less(id, minid) then minid = id end\n"
    "    elseif not id or now - tonumber(ms) > 86400000 then\n"
    "      redis.call('HDEL', KEYS[3], p[i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'data', ARGV[2], 'trimmed', minid or '0-0')\n"
    "if minid then redis.call('XTRIM', KEYS[2], 'MINID', minid) end\n"
    "return 1\n";

/* Appends j's command to the pipeline. */
static int append_job(srv_redis *r, job *j)
{
    char ticket[24];
    snprintf(ticket, sizeof ticket, "%" PRIu64, j->ticket);
    if (j->kind == J_OP) {
        const char *argv[] = {"XADD", j->stream, "*", "o", M.origin, "k", "op", "t", ticket, "f", j->payload};
        size_t lens[] = {4, strlen(j->stream), 1, 1, strlen(M.origin), 1, 2, 1, strlen(ticket), 1, j->len};
        return srv_redis_append(r, 11, argv, lens);
    }
    if (j->kind == J_STATE) {
        const char *argv[] = {"XADD", j->stream, "*", "o", M.origin, "k", "state", "v", j->var, "f", j->payload};
        size_t lens[] = {4, strlen(j->stream), 1, 1, strlen(M.origin), 1, 5, 1, strlen(j->var), 1, j->len};
        return srv_redis_append(r, 11, argv, lens);
    }
    if (j->kind == J_DELETE) {
        const char *argv[] = {"DEL", j->stream, j->snap, j->progress};
        return srv_redis_append(r, 4, argv, NULL);
    }
    const char *argv[] = {"EVAL", SNAPSHOT_LUA, "3", j->snap, j->stream, j->progress, j->snap_id, j->payload,
                          PROGRESS_WINDOW_MS};
    size_t lens[] = {4, strlen(SNAPSHOT_LUA), 1, strlen(j->snap), strlen(j->stream), strlen(j->progress),
                     strlen(j->snap_id), j->len, strlen(PROGRESS_WINDOW_MS)};
    return srv_redis_append(r, 9, argv, lens);
}

/* Handles the reply to j (consumed). */
static void job_done(job *j, redisReply *rep)
{
    if (j->kind == J_SNAPSHOT && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        atomic_fetch_add(&M.snapshots, 1);
    if (rep->type == REDIS_REPLY_ERROR) {
        srv_log("error", "mirror", "service %s/%s: Redis refused a %s: %s", j->tenant, j->service,
                j->kind == J_SNAPSHOT ? "snapshot" : "stream entry", rep->str);
        if (j->kind == J_OP) {
            srv_lock();
            inflight_free(inflight_take(j->ticket));
            srv_ticket_done(j->ticket, COMMY_EIO, "the mirror refused the write", NULL);
            srv_unlock();
        }
    } else {
        atomic_fetch_add(&M.published, 1);
        if (j->kind == J_OP && rep->type == REDIS_REPLY_STRING) {
            srv_lock();
            for (inflight *f = M.inflight; f; f = f->next)
                if (f->ticket == j->ticket) snprintf(f->id, sizeof f->id, "%s", rep->str);
            srv_unlock();
        }
    }
    freeReplyObject(rep);
}

/* The connection failed with j unsent (or sent without an answer). */
static void job_failed(job *j)
{
    srv_lock();
    if (j->kind == J_STATE) {
        msvc *s = svc_find(j->tenant, j->service);
        for (int i = 0; s && i < s->nvars; i++)
            if (strcmp(s->vars[i].name, j->var) == 0) {
                if (s->vars[i].own_pending > 0) s->vars[i].own_pending--;
                s->vars[i].dirty = 1; /* published again, from the state it has then */
            }
    }
    srv_unlock();
}

static void *writer_main(void *arg)
{
    (void)arg;
    srv_redis *r = NULL;
    int backoff = 50;
    for (;;) {
        pthread_mutex_lock(&M.qlock);
        while (!M.qhead && !atomic_load(&M.stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&M.qcond, &M.qlock, &ts) && r && !M.qhead) {
                /* idle: a PING finds a dead connection before a write does */
                pthread_mutex_unlock(&M.qlock);
                redisReply *rep = srv_redis_cmd(r, "PING");
                if (rep) freeReplyObject(rep);
                else {
                    srv_redis_close(r);
                    r = NULL;
                }
                pthread_mutex_lock(&M.qlock);
            }
        }
        job *j = M.qhead;
        pthread_mutex_unlock(&M.qlock);
        /* at a stop, what is queued still goes out while Redis answers */
        if (atomic_load(&M.stop) && (!j || !r)) break;
        if (!r) {
            char err[256];
            if (srv_redis_open(&r, &M.conf, err, sizeof err)) {
                /* writes waiting for the stream are applied here instead (the
                 * reader does it for those it holds); states and snapshots wait */
                sleep_ms(backoff);
                backoff = backoff < 1000 ? backoff * 2 : 1000;
                pthread_mutex_lock(&M.qlock);
                job **p = &M.qhead, *prev = NULL;
                job *ops = NULL;
                while (*p) {
                    job *x = *p;
                    if (x->kind == J_OP) {
                        *p = x->next;
                        M.qlen--;
                        x->next = ops;
                        ops = x;
                    } else {
                        prev = x;
                        p = &x->next;
                    }
                }
                M.qtail = prev;
                pthread_mutex_unlock(&M.qlock);
                if (ops) {
                    srv_lock();
                    fall_back();
                    /* never sent, so never read back: forget them */
                    for (job *x = ops; x; x = x->next) inflight_free(inflight_take(x->ticket));
                    srv_unlock();
                }
                while (ops) {
                    job *x = ops;
                    ops = x->next;
                    job_free(x);
                }
                continue;
            }
            backoff = 50;
        }
        /* up to PIPELINE queued jobs in one write, then their replies */
        job *batch[PIPELINE];
        int n = 0, answered = 0, broken = 0;
        pthread_mutex_lock(&M.qlock);
        for (job *x = M.qhead; x && n < PIPELINE; x = x->next) batch[n++] = x;
        pthread_mutex_unlock(&M.qlock);
        for (int i = 0; i < n && !broken; i++) broken = append_job(r, batch[i]) != 0;
        if (!broken) broken = srv_redis_flush(r) != 0;
        while (answered < n && !broken) {
            redisReply *rep = srv_redis_read(r);
            if (!rep) broken = 1;
            else job_done(batch[answered++], rep);
        }
        if (broken) {
            srv_redis_close(r);
            r = NULL;
            /* an XADD without an answer may or may not be in the stream: an op
             * stays in flight (the reader applies it here if Redis stays away,
             * and skips it if it comes back in the stream); a state is
             * published again; a snapshot or a deletion is sent again */
            atomic_store(&M.reset, 1);
            for (int i = answered; i < n; i++)
                if (batch[i]->kind == J_STATE) job_failed(batch[i]);
        }
        pthread_mutex_lock(&M.qlock);
        for (int i = 0; i < n; i++) { /* the batch is the queue's head: only this thread removes */
            M.qhead = M.qhead->next;
            if (!M.qhead) M.qtail = NULL;
            M.qlen--;
        }
        for (int i = n - 1; i >= answered; i--)
            if (batch[i]->kind == J_SNAPSHOT || batch[i]->kind == J_DELETE) {
                batch[i]->next = M.qhead;
                M.qhead = batch[i];
                if (!M.qtail) M.qtail = batch[i];
                M.qlen++;
                batch[i] = NULL;
            }
        pthread_mutex_unlock(&M.qlock);
        for (int i = 0; i < n; i++) job_free(batch[i]);
    }
    srv_redis_close(r);
    return NULL;
}

/* ---- start, stop, metrics ---- */

int srv_mirror_start(const srv_mirror_conf *mc, char *err, size_t cap)
{
    if (!mc->enabled) return 0;
    M.conf = *mc;
    M.active = 1;
    char inc[17];
    if (srv_auth_random_hex(inc, 8)) return snprintf(err, cap, "no randomness"), -1;
    /* the incarnation makes entries from before a restart foreign: nothing in
     * flight survives the process */
    if (mc->server_id[0]) snprintf(M.origin, sizeof M.origin, "%s/%s", mc->server_id, inc);
    else snprintf(M.origin, sizeof M.origin, "server-%s", inc);
    if (pthread_create(&M.reader, NULL, reader_main, NULL) || pthread_create(&M.writer, NULL, writer_main, NULL))
        return snprintf(err, cap, "cannot start the mirror threads"), -1;
    return 0;
}

void srv_mirror_stop(void)
{
    if (!M.active) return;
    atomic_store(&M.stop, 1);
    pthread_mutex_lock(&M.qlock);
    pthread_cond_broadcast(&M.qcond);
    pthread_mutex_unlock(&M.qlock);
    pthread_join(M.writer, NULL);
    pthread_join(M.reader, NULL);
    while (M.qhead) {
        job *j = M.qhead;
        M.qhead = j->next;
        job_free(j);
    }
    while (M.inflight) inflight_free(inflight_take(M.inflight->ticket));
    while (M.svcs) {
        msvc *s = M.svcs;
        M.svcs = s->next;
        vars_close(s);
        free(s->vars);
        free(s->waiters);
        free(s);
    }
    M.active = 0;
}

size_t srv_mirror_metrics(char *buf, size_t cap)
{
    if (!M.active) return 0;
    int dirty = 0;
    for (msvc *s = M.svcs; s; s = s->next)
        for (int i = 0; i < s->nvars; i++) dirty += s->vars[i].dirty;
    pthread_mutex_lock(&M.qlock);
    int q = M.qlen;
    pthread_mutex_unlock(&M.qlock);
    int n = snprintf(buf, cap,
                     "# TYPE commy_mirror_connected gauge\ncommy_mirror_connected %d\n"
                     "# TYPE commy_mirror_outbox gauge\ncommy_mirror_outbox %d\n"
                     "# TYPE commy_mirror_inflight_writes gauge\ncommy_mirror_inflight_writes %d\n"
                     "# TYPE commy_mirror_unpublished_vars gauge\ncommy_mirror_unpublished_vars %d\n"
                     "# TYPE commy_mirror_applied_total counter\ncommy_mirror_applied_total %llu\n"
                     "# TYPE commy_mirror_published_total counter\ncommy_mirror_published_total %llu\n"
                     "# TYPE commy_mirror_snapshots_total counter\ncommy_mirror_snapshots_total %llu\n"
                     "# TYPE commy_mirror_disconnects_total counter\ncommy_mirror_disconnects_total %llu\n"
                     "# TYPE commy_mirror_local_fallbacks_total counter\ncommy_mirror_local_fallbacks_total %llu\n"
                     "# TYPE commy_mirror_snapshot_loads_total counter\ncommy_mirror_snapshot_loads_total %llu\n"
                     "# TYPE commy_mirror_lag_ms gauge\ncommy_mirror_lag_ms %lld\n",
                     atomic_load(&M.connected), q, M.ninflight, dirty, (unsigned long long)atomic_load(&M.applied),
                     (unsigned long long)atomic_load(&M.published), (unsigned long long)atomic_load(&M.snapshots),
                     (unsigned long long)atomic_load(&M.disconnects),
                     (unsigned long long)atomic_load(&M.local_fallbacks),
                     (unsigned long long)atomic_load(&M.snapshot_loads), (long long)atomic_load(&M.lag_ms));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
