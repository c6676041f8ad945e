/* The load test's client: N concurrent WSS connections in one libwebsockets
 * context against a running commy-server (started by test_load.py).
 *
 * Every client authenticates with an API key, opens service s<i % S>,
 * subscribes to its str variable "feed", and once all N are subscribed writes
 * W values "<i>-<k>" one after the other (one request outstanding). Every
 * client must then see every write of its service exactly once, each writer's
 * values in the order written, versions only going up, and the same sequence
 * as every other subscriber of the service. A probe connection keeps asking
 * the server for the variable's length during the storm: every request must be
 * answered. Any error, close, lost or duplicated push fails the run.
 *
 * usage: load_client PORT CAFILE TENANT APIKEY CLIENTS WRITES SERVICES
 * Prints one summary line; exit status 0 = every check passed. */
#include "wire.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { ST_CONNECTING, ST_AUTH, ST_OPEN, ST_SETUP, ST_SUB, ST_READY, ST_WRITING, ST_DONE };

typedef struct client {
    struct lws *wsi;
    int idx; /* -1: the probe */
    int svc;
    int state;
    uint64_t next_id, waiting_id;
    char *out; /* the frame to send when writable (LWS_PRE room in front) */
    size_t outlen;
    char *rx;
    size_t rxlen, rxcap;
    int writes_acked;
    long pushes;
    uint32_t last_version;
    uint64_t hash;  /* FNV-1a over the sequence of values seen */
    int *next_k;    /* per writer: the next value index expected from it */
    int closed;
} client;

static struct {
    int port;
    const char *ca, *tenant, *key;
    int n, writes, nsvc;
    client *cl;
    client probe;
    int subscribed, done, failed, connected;
    int setup_left;
    long probe_replies;
    int storm;
    struct lws_context *ctx;
    char first_error[512];
} G;

static void failf(const char *fmt, ...)
{
    G.failed++;
    if (G.first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(G.first_error, sizeof G.first_error, fmt, ap);
    va_end(ap);
}

static void send_req(client *c, const char *op, cJSON *fields)
{
    uint64_t id = ++c->next_id;
    char *text = commy_wire_request_build(id, op, fields);
    if (!text) {
        failf("out of memory");
        return;
    }
    size_t len = strlen(text);
    free(c->out);
    c->out = malloc(LWS_PRE + len);
    if (!c->out) {
        free(text);
        failf("out of memory");
        return;
    }
    memcpy(c->out + LWS_PRE, text, len);
    c->outlen = len;
    free(text);
    c->waiting_id = id;
    lws_callback_on_writable(c->wsi);
}

static cJSON *svc_fields(client *c, int svc)
{
    cJSON *f = cJSON_CreateObject();
    char name[16];
    snprintf(name, sizeof name, "s%d", svc);
    cJSON_AddStringToObject(f, "service", name);
    (void)c;
    return f;
}

static void send_write(client *c)
{
    cJSON *f = svc_fields(c, c->svc);
    cJSON_AddStringToObject(f, "var", "feed");
    cJSON *v = cJSON_AddObjectToObject(f, "value");
    char val[32];
    snprintf(val, sizeof val, "%d-%d", c->idx, c->writes_acked);
    cJSON_AddStringToObject(v, "t", "str");
    cJSON_AddStringToObject(v, "v", val);
    send_req(c, "set", f);
}

static void probe_next(void)
{
    client *p = &G.probe;
    cJSON *f = svc_fields(p, (int)(G.probe_replies % G.nsvc));
    cJSON_AddStringToObject(f, "var", "feed");
    send_req(p, "len", f);
}

static void start_storm(void)
{
    G.storm = 1;
    for (int i = 0; i < G.n; i++) {
        G.cl[i].state = ST_WRITING;
        send_write(&G.cl[i]);
    }
    probe_next();
}

static int client_finished(client *c)
{
    int per = 0;
    for (int j = c->svc; j < G.n; j += G.nsvc) per++;
    return c->writes_acked == G.writes && c->pushes == (long)per * G.writes;
}

static void on_push(client *c, const commy_wire_message *m)
{
    if (strcmp(m->push, "changed") != 0) {
        failf("client %d: unexpected push %s", c->idx, m->push);
        return;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(m->body, "version");
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(m->body, "value");
    const cJSON *v = val ? cJSON_GetObjectItemCaseSensitive(val, "v") : NULL;
    if (c->idx < 0) return; /* the probe subscribes to nothing */
    if (!cJSON_IsNumber(ver) || !cJSON_IsString(v)) {
        failf("client %d: a changed push without version or value", c->idx);
        return;
    }
    if (!G.storm) {
        failf("client %d: a push before any write", c->idx);
        return;
    }
    uint32_t version = (uint32_t)ver->valuedouble;
    if (c->pushes && version <= c->last_version) failf("client %d: version %u after %u", c->idx, version, c->last_version);
    c->last_version = version;
    int j, k;
    if (sscanf(v->valuestring, "%d-%d", &j, &k) != 2 || j < 0 || j >= G.n || j % G.nsvc != c->svc) {
        failf("client %d: a value %s that no writer of its service wrote", c->idx, v->valuestring);
        return;
    }
    if (c->next_k[j] != k) {
        failf("client %d: from writer %d got value %d, expected %d (lost, duplicated or reordered)", c->idx, j, k,
              c->next_k[j]);
        return;
    }
    c->next_k[j]++;
    for (const char *s = v->valuestring; *s; s++) c->hash = (c->hash ^ (unsigned char)*s) * 1099511628211ull;
    c->hash = (c->hash ^ ';') * 1099511628211ull;
    c->pushes++;
}

static void check_done(client *c)
{
    if (c->state == ST_WRITING && client_finished(c)) {
        c->state = ST_DONE;
        G.done++;
    }
}

static void on_reply(client *c, const commy_wire_message *m)
{
    if (!m->has_id || m->id != c->waiting_id) {
        failf("client %d: a reply to id %llu, expected %llu", c->idx, (unsigned long long)m->id,
              (unsigned long long)c->waiting_id);
        return;
    }
    if (!m->ok) {
        failf("client %d: state %d: %s: %s", c->idx, c->state, m->error_name,
              m->error_message ? m->error_message : "");
        return;
    }
    if (c->idx < 0) { /* the probe */
        if (c->state == ST_AUTH) {
            c->state = ST_SETUP;
            G.setup_left = G.nsvc * 2;
        }
        if (c->state == ST_SETUP) {
            /* open every service and create its variable; keeping them open
             * keeps the (non-persistent) service files alive */
            if (G.setup_left == 0) {
                c->state = ST_READY;
                return; /* the clients connect now (main loop) */
            }
            int s = (G.nsvc * 2 - G.setup_left) / 2, create = (G.nsvc * 2 - G.setup_left) % 2;
            G.setup_left--;
            cJSON *f = svc_fields(c, s);
            if (!create) {
                cJSON_AddStringToObject(f, "mode", "remote");
                send_req(c, "open_service", f);
            } else {
                cJSON_AddStringToObject(f, "var", "feed");
                cJSON_AddStringToObject(f, "kind", "str");
                cJSON *v = cJSON_AddObjectToObject(f, "value");
                cJSON_AddStringToObject(v, "t", "str");
                cJSON_AddStringToObject(v, "v", "init");
                send_req(c, "set", f);
            }
            return;
        }
        if (G.storm) {
            G.probe_replies++;
            if (G.done < G.n) probe_next();
        }
        return;
    }
    switch (c->state) {
    case ST_AUTH: {
        c->state = ST_OPEN;
        cJSON *f = svc_fields(c, c->svc);
        cJSON_AddStringToObject(f, "mode", "remote");
        send_req(c, "open_service", f);
        break;
    }
    case ST_OPEN: {
        c->state = ST_SUB;
        cJSON *f = svc_fields(c, c->svc);
        cJSON_AddStringToObject(f, "var", "feed");
        send_req(c, "subscribe", f);
        break;
    }
    case ST_SUB:
        c->state = ST_READY;
        if (++G.subscribed == G.n) start_storm();
        break;
    case ST_WRITING:
        c->writes_acked++;
        if (c->writes_acked < G.writes) send_write(c);
        check_done(c);
        break;
    default:
        failf("client %d: a reply in state %d", c->idx, c->state);
    }
}

static void on_frame(client *c)
{
    commy_wire_message m;
    commy_wire_fault f;
    if (commy_wire_message_parse(&m, &f, c->rx, c->rxlen, 1 << 20) != COMMY_OK) {
        failf("client %d: unparsable frame: %s", c->idx, f.message);
        return;
    }
    if (m.is_push) {
        on_push(c, &m);
        check_done(c);
    } else {
        on_reply(c, &m);
    }
    commy_wire_message_free(&m);
}

static void send_auth(client *c)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "tenant", G.tenant);
    cJSON_AddStringToObject(f, "api_key", G.key);
    c->state = ST_AUTH;
    send_req(c, "authenticate", f);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    client *c = lws_get_opaque_user_data(wsi);
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            failf("client %d: connection error: %s", c->idx, in ? (const char *)in : "?");
            c->closed = 1;
            c->wsi = NULL;
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c) return -1;
        G.connected++;
        send_auth(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c) return -1;
        if (lws_is_first_fragment(wsi)) c->rxlen = 0;
        if (c->rxlen + len > c->rxcap) {
            size_t cap = (c->rxlen + len) * 2;
            char *n = realloc(c->rx, cap);
            if (!n) return -1;
            c->rx = n;
            c->rxcap = cap;
        }
        memcpy(c->rx + c->rxlen, in, len);
        c->rxlen += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) on_frame(c);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c) return -1;
        if (c->out) {
            int w = lws_write(wsi, (unsigned char *)c->out + LWS_PRE, c->outlen, LWS_WRITE_TEXT);
            free(c->out);
            c->out = NULL;
            if (w < (int)c->outlen) {
                failf("client %d: write failed", c->idx);
                return -1;
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            if (c->state != ST_DONE && !(c->idx < 0 && G.done == G.n))
                failf("client %d: the server closed the connection in state %d", c->idx, c->state);
            c->closed = 1;
            c->wsi = NULL;
        }
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"commy.v1", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void connect_one(client *c)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = G.ctx;
    ci.address = "127.0.0.1";
    ci.port = G.port;
    ci.path = "/";
    ci.host = "localhost";
    ci.origin = "localhost";
    ci.protocol = "commy.v1";
    ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci)) failf("client %d: cannot start a connection", c->idx);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: load_client PORT CAFILE TENANT APIKEY CLIENTS WRITES SERVICES\n");
        return 2;
    }
    G.port = atoi(argv[1]);
    G.ca = argv[2];
    G.tenant = argv[3];
    G.key = argv[4];
    G.n = atoi(argv[5]);
    G.writes = atoi(argv[6]);
    G.nsvc = atoi(argv[7]);
    if (G.n < 1 || G.writes < 1 || G.nsvc < 1 || G.nsvc > G.n) return 2;
    /* one descriptor per connection, and then some */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)G.n + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = G.ca;
    info.timeout_secs = 60;
    G.ctx = lws_create_context(&info);
    if (!G.ctx) {
        fprintf(stderr, "load_client: cannot create the lws context\n");
        return 1;
    }
    G.cl = calloc((size_t)G.n, sizeof *G.cl);
    for (int i = 0; i < G.n; i++) {
        G.cl[i].idx = i;
        G.cl[i].svc = i % G.nsvc;
        G.cl[i].hash = 1469598103934665603ull;
        G.cl[i].next_k = calloc((size_t)G.n, sizeof(int));
    }
    G.probe.idx = -1;
    double t0 = now_s(), t_connect = 0, t_ready = 0, t_storm = 0;
    connect_one(&G.probe);
    int launched = 0;
    while (!G.failed && G.done < G.n) {
        if (now_s() - t0 > 240) {
            failf("timed out: %d connected, %d subscribed, %d done of %d", G.connected - 1, G.subscribed, G.done, G.n);
            break;
        }
        /* after the probe's setup, connect the clients a few hundred at a
         * time so that handshakes do not queue up behind each other */
        if (G.probe.state == ST_READY && launched < G.n && launched - (G.connected - 1) < 200) {
            int upto = launched + 50 < G.n ? launched + 50 : G.n;
            for (; launched < upto; launched++) connect_one(&G.cl[launched]);
            if (launched == G.n) t_connect = now_s();
        }
        if (!t_ready && G.subscribed == G.n) t_ready = now_s();
        if (lws_service(G.ctx, 0) < 0) break;
        if (G.probe.closed && !G.failed) failf("the probe connection closed");
    }
    t_storm = now_s();
    /* every subscriber of a service saw the same sequence */
    for (int i = 0; i < G.n && !G.failed; i++) {
        client *c = &G.cl[i], *first = &G.cl[c->svc];
        if (c->hash != first->hash)
            failf("clients %d and %d of service s%d saw different orders", first->idx, c->idx, c->svc);
    }
    if (!G.failed && G.probe_replies < 1) failf("the probe got no reply during the storm");
    long total = 0;
    for (int i = 0; i < G.n; i++) total += G.cl[i].pushes;
    printf("load: clients %d services %d writes/client %d: %ld pushes delivered, probe answered %ld times; "
           "connect+auth+subscribe %.1f s, storm %.1f s%s%s\n",
           G.n, G.nsvc, G.writes, total, G.probe_replies, (t_ready ? t_ready : t_storm) - t0,
           t_ready ? t_storm - t_ready : 0.0, G.failed ? "; FAILED: " : "", G.first_error);
    (void)t_connect;
    lws_context_destroy(G.ctx);
    for (int i = 0; i < G.n; i++) {
        free(G.cl[i].next_k);
        free(G.cl[i].out);
        free(G.cl[i].rx);
    }
    free(G.probe.out);
    free(G.probe.rx);
    free(G.cl);
    return G.failed ? 1 : 0;
}
