/* server-bench: commy-server over WSS against redis-server over TLS, both on
 * loopback, in one run (issue 6, Benchmark).
 *
 * One client implementation drives both: the same OpenSSL TLS connections,
 * the same blocking loop for the 1-client round trips and the same epoll loop
 * for the 50-client throughput; only the bytes differ (RESP SET/GET against
 * the WebSocket frames of docs/protocol.md set/get of an i64 box). Every reply
 * is checked (a get must return the value the connection last set), so a
 * broken server cannot produce a figure.
 *
 * usage: server-bench COMMY_SERVER_BINARY [--quick]
 * Starts redis-server (from PATH) and commy-server itself, with a fresh
 * self-signed certificate. Exit status: 0 all targets met, 3 a target missed,
 * 1 a failure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commy.h"
#include "commy/session.h"


static char g_dir[256];
static pid_t g_pids[4];
static int g_npids;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void cleanup(void)
{
    for (int i = 0; i < g_npids; i++)
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGTERM);
            waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
    if (g_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "server-bench: cannot remove %s\n", g_dir);
        g_dir[0] = '\0';
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "server-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    ERR_print_errors_fp(stderr);
    cleanup();
    exit(1);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &l)) die("no free port");
    close(s);
    return ntohs(a.sin_port);
}

static int g_ncpu;

static pid_t spawn(char *const argv[], const char *logname)
{
    char log[512];
    snprintf(log, sizeof log, "%s/%s", g_dir, logname);
    pid_t p = fork();
    if (p < 0) die("fork: %s", strerror(errno));
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    g_pids[g_npids++] = p;
    return p;
}

static void wait_port(int port, pid_t pid, const char *what)
{
    for (int i = 0; i < 400; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok) return;
        if (waitpid(pid, NULL, WNOHANG) == pid) die("%s exited at start; see its log in %s", what, g_dir);
        usleep(25000);
    }
    die("%s did not start listening on port %d", what, port);
}

/* The CPU time a server's main thread has used (ns): it does all the
 * request work of both servers. */
static uint64_t cpu_ns(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(p, "r");
    unsigned long long ns = 0;
    if (!f || fscanf(f, "%llu", &ns) != 1) ns = 0;
    if (f) fclose(f);
    return ns;
}

static uint64_t self_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---- a TLS connection, blocking during setup ---- */

typedef struct tconn {
    int fd;
    SSL *ssl;
    char rb[65536];
    size_t rlen;
    /* the request in flight */
    uint64_t id;
    long long last_set;
    int is_get;
    uint64_t t0;
    int idx;
} tconn;

static SSL_CTX *g_ssl;

static void tconn_open(tconn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a)) die("connect to port %d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = SSL_new(g_ssl);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (SSL_connect(c->ssl) != 1) die("TLS handshake with port %d failed", port);
}

static void tconn_close(tconn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static void send_all(tconn *c, const void *p, size_t n)
{
    for (;;) {
        int w = SSL_write(c->ssl, p, (int)n);
        if (w == (int)n) return;
        int e = SSL_get_error(c->ssl, w);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) die("TLS write failed");
    }
}

/* Reads what is there (blocking: at least one record). 0 = would block. */
static int fill(tconn *c)
{
    if (c->rlen == sizeof c->rb) die("a reply larger than %zu bytes", sizeof c->rb);
    int r = SSL_read(c->ssl, c->rb + c->rlen, (int)(sizeof c->rb - c->rlen));
    if (r > 0) {
        c->rlen += (size_t)r;
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    die("the server closed the connection (TLS error %d)", e);
    return 0;
}

static void consume(tconn *c, size_t n)
{
    memmove(c->rb, c->rb + n, c->rlen - n);
    c->rlen -= n;
}

/* ---- the two protocols ---- */

typedef struct proto {
    const char *name;
    /* writes the request for c (set of value v, or get) */
    void (*send)(tconn *c, int is_get, long long v);
    /* the length of a complete, checked reply at the front of c->rb, 0 if
     * incomplete; dies on a wrong reply */
    size_t (*reply)(tconn *c);
} proto;

static uint64_t g_mask_state = 0x9E3779B97F4A7C15ull;

static void redis_send(tconn *c, int is_get, long long v)
{
    char buf[160];
    int n;
    if (is_get) {
        char key[32];
        int kl = snprintf(key, sizeof key, "bench:k%d", c->idx);
        n = snprintf(buf, sizeof buf, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, key);
    } else {
        char key[32], val[32];
        int kl = snprintf(key, sizeof key, "bench:k%d", c->idx), vl = snprintf(val, sizeof val, "%lld", v);
        n = snprintf(buf, sizeof buf, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl, key, vl, val);
        c->last_set = v;
    }
    c->is_get = is_get;
    send_all(c, buf, (size_t)n);
}

static size_t redis_reply(tconn *c)
{
    char *end = memmem(c->rb, c->rlen, "\r\n", 2);
    if (!end) return 0;
    size_t line = (size_t)(end - c->rb) + 2;
    if (!c->is_get) {
        if (line != 5 || memcmp(c->rb, "+OK", 3) != 0) die("redis: SET answered %.*s", (int)line, c->rb);
        return line;
    }
    if (c->rb[0] != '$') die("redis: GET answered %.*s", (int)line, c->rb);
    long len = atol(c->rb + 1);
    if (len < 0) die("redis: GET found no value");
    if (c->rlen < line + (size_t)len + 2) return 0;
    char want[32];
    int wl = snprintf(want, sizeof want, "%lld", c->last_set);
    if (len != wl || memcmp(c->rb + line, want, (size_t)wl) != 0) die("redis: GET returned a value not set");
    return line + (size_t)len + 2;
}

/* A masked client text frame (RFC 6455 5.3). */
static void ws_send_text(tconn *c, const char *text, size_t n)
{
    unsigned char f[512];
    size_t h = 0;
    if (n + 8 > sizeof f) die("frame too long");
    f[h++] = 0x81;
    if (n < 126) f[h++] = (unsigned char)(0x80 | n);
    else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    g_mask_state ^= g_mask_state << 13;
    g_mask_state ^= g_mask_state >> 7;
    g_mask_state ^= g_mask_state << 17;
    unsigned char m[4];
    memcpy(m, &g_mask_state, 4);
    memcpy(f + h, m, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) f[h + i] = (unsigned char)text[i] ^ m[i & 3];
    send_all(c, f, h + n);
}

/* The next complete server frame: its payload (in c->rb) and total length;
 * 0 if incomplete. Control frames (ping) are skipped. */
static size_t ws_frame(tconn *c, const char **payload, size_t *plen)
{
    for (;;) {
        if (c->rlen < 2) return 0;
        unsigned char *b = (unsigned char *)c->rb;
        size_t h = 2, n = b[1] & 0x7F;
        if (b[1] & 0x80) die("commy: a masked server frame");
        if (n == 126) {
            if (c->rlen < 4) return 0;
            n = (size_t)b[2] << 8 | b[3];
            h = 4;
        } else if (n == 127) {
            die("commy: an unexpectedly large frame");
        }
        if (c->rlen < h + n) return 0;
        int op = b[0] & 0x0F;
        if (op == 9 || op == 10) { /* ping/pong: not ours to count */
            consume(c, h + n);
            continue;
        }
        if (op == 8) die("commy: the server closed the connection: %.*s", (int)(n > 2 ? n - 2 : 0), c->rb + h + 2);
        if (op != 1 || !(b[0] & 0x80)) die("commy: an unexpected frame (opcode %d)", op);
        *payload = c->rb + h;
        *plen = n;
        return h + n;
    }
}

static void commy_send(tconn *c, int is_get, long long v)
{
    char buf[200];
    int n;
    c->id++;
    if (is_get)
        n = snprintf(buf, sizeof buf, "{\"v\":1,\"id\":%llu,\"op\":\"get\",\"service\":\"b\",\"var\":\"k%d\"}",
                     (unsigned long long)c->id, c->idx);
    else {
        n = snprintf(buf, sizeof buf,
                     "{\"v\":1,\"id\":%llu,\"op\":\"set\",\"service\":\"b\",\"var\":\"k%d\",\"kind\":\"box\","
                     "\"value\":{\"t\":\"i64\",\"v\":\"%lld\"}}",
                     (unsigned long long)c->id, c->idx, v);
        c->last_set = v;
    }
    c->is_get = is_get;
    ws_send_text(c, buf, (size_t)n);
}

static size_t commy_reply(tconn *c)
{
    const char *p;
    size_t n, total = ws_frame(c, &p, &n);
    if (!total) return 0;
    char want[64];
    int wl = snprintf(want, sizeof want, "\"id\":%llu,", (unsigned long long)c->id);
    if (!memmem(p, n, want, (size_t)wl) || !memmem(p, n, "\"ok\":true", 9))
        die("commy: reply %.*s to request %llu", (int)n, p, (unsigned long long)c->id);
    if (c->is_get) {
        wl = snprintf(want, sizeof want, "{\"t\":\"i64\",\"v\":\"%lld\"}", c->last_set);
        if (!memmem(p, n, want, (size_t)wl)) die("commy: get returned %.*s, not the value set", (int)n, p);
    }
    return total;
}

static const proto REDIS = {"redis", redis_send, redis_reply};
static const proto COMMY = {"commy", commy_send, commy_reply};

/* Sends a request and waits for its reply (blocking). */
static void roundtrip(const proto *pr, tconn *c, int is_get, long long v)
{
    pr->send(c, is_get, v);
    size_t n;
    while (!(n = pr->reply(c))) fill(c);
    consume(c, n);
}

/* A commy-server connection: WebSocket upgrade, authenticate, open "b". */
static const char *g_api_key;

static void commy_connect(tconn *c, int port, int idx)
{
    tconn_open(c, port);
    c->idx = idx;
    unsigned char raw[16];
    RAND_bytes(raw, sizeof raw);
    char key[32];
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: commy.v1\r\n\r\n",
                     key);
    send_all(c, req, (size_t)n);
    char *end;
    while (!(end = memmem(c->rb, c->rlen, "\r\n\r\n", 4))) fill(c);
    if (memcmp(c->rb, "HTTP/1.1 101", 12) != 0) die("commy: WebSocket upgrade refused: %.40s", c->rb);
    consume(c, (size_t)(end - c->rb) + 4);
    const char *msgs[2] = {"{\"v\":1,\"id\":%llu,\"op\":\"authenticate\",\"tenant\":\"bench\",\"api_key\":\"%s\"}",
                           "{\"v\":1,\"id\":%llu,\"op\":\"open_service\",\"service\":\"b\",\"mode\":\"remote\"}"};
    for (int i = 0; i < 2; i++) {
        c->id++;
        n = snprintf(req, sizeof req, msgs[i], (unsigned long long)c->id, g_api_key);
        ws_send_text(c, req, (size_t)n);
        c->is_get = 0;
        size_t len;
        while (!(len = commy_reply(c))) fill(c);
        consume(c, len);
    }
    roundtrip(&COMMY, c, 0, 0); /* creates the box k<idx> */
}

static void redis_connect(tconn *c, int port, int idx)
{
    tconn_open(c, port);
    c->idx = idx;
    roundtrip(&REDIS, c, 0, 0);
}

/* ---- measurements ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct lat {
    double set50, set99, get50, get99;
} lat;

/* Puts pid (0: this thread) on one CPU, or back on all of them (cpu < 0). */
static void place(pid_t pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < g_ncpu; i++)
        if (cpu < 0 || i == cpu) CPU_SET(i, &set);
    sched_setaffinity(pid, sizeof set, &set);
}

/* One client: n sets and n gets, alternating; each timed. The client and the
 * server's main thread share one CPU meanwhile, for both peers: a round trip
 * across two CPUs costs a cross-CPU wake-up whose price (tens of us in a VM)
 * depends on where the scheduler happened to put the two, and would swamp
 * what is compared. */
static lat latency(const proto *pr, int port, int n, pid_t server)
{
    place(server, 0);
    place(0, 0);
    tconn c;
    if (pr == &COMMY) commy_connect(&c, port, 0);
    else redis_connect(&c, port, 0);
    uint64_t *ts = malloc(sizeof *ts * (size_t)n), *tg = malloc(sizeof *tg * (size_t)n);
    for (int i = 0; i < 200; i++) { /* warm up */
        roundtrip(pr, &c, 0, i);
        roundtrip(pr, &c, 1, 0);
    }
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        roundtrip(pr, &c, 0, (long long)i * 7919);
        uint64_t t1 = now_ns();
        roundtrip(pr, &c, 1, 0);
        uint64_t t2 = now_ns();
        ts[i] = t1 - t0;
        tg[i] = t2 - t1;
    }
    tconn_close(&c);
    place(server, -1);
    place(0, -1);
    qsort(ts, (size_t)n, sizeof *ts, cmp_u64);
    qsort(tg, (size_t)n, sizeof *tg, cmp_u64);
    lat l = {ts[n / 2] / 1e3, ts[(size_t)n * 99 / 100] / 1e3, tg[n / 2] / 1e3, tg[(size_t)n * 99 / 100] / 1e3};
    free(ts);
    free(tg);
    return l;
}

/* k clients, one request outstanding each (set and get alternating), for
 * ms milliseconds: completed requests per second. */
static double throughput(const proto *pr, int port, int k, int ms, pid_t server, double *cpu_per_op,
                         double *client_cpu_per_op)
{
    tconn *cs = calloc((size_t)k, sizeof *cs);
    int ep = epoll_create1(0);
    for (int i = 0; i < k; i++) {
        if (pr == &COMMY) commy_connect(&cs[i], port, i);
        else redis_connect(&cs[i], port, i);
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    uint64_t done = 0, counted = 0, t0 = now_ns(), tend = t0 + (uint64_t)ms * 1000000ull, tcount = 0;
    uint64_t cpu0 = 0, cpu1 = 0, ccpu0 = 0, ccpu1 = 0, counted_end = 0;
    uint64_t warm = t0 + (uint64_t)ms * 1000000ull / 5; /* the first fifth is warm-up */
    int outstanding = k, stopping = 0;
    for (int i = 0; i < k; i++) pr->send(&cs[i], 0, i);
    struct epoll_event evs[64];
    while (outstanding) {
        int n = epoll_wait(ep, evs, 64, 5000);
        if (n <= 0) die("%s: no reply for 5 s", pr->name);
        uint64_t now = now_ns();
        if (!tcount && now >= warm) {
            tcount = now;
            counted = done;
            cpu0 = cpu_ns(server);
            ccpu0 = self_cpu_ns();
        }
        if (now >= tend && !stopping) {
            cpu1 = cpu_ns(server);
            ccpu1 = self_cpu_ns();
            counted_end = done;
        }
        if (now >= tend) stopping = 1;
        for (int e = 0; e < n; e++) {
            tconn *c = &cs[evs[e].data.u32];
            for (;;) {
                size_t len = pr->reply(c);
                if (len) {
                    consume(c, len);
                    done++;
                    outstanding--;
                    if (!stopping) {
                        pr->send(c, !c->is_get, (long long)done);
                        outstanding++;
                    }
                    continue;
                }
                if (!fill(c)) break;
            }
        }
    }
    double rate = (double)(done - counted) / ((double)(now_ns() - tcount) / 1e9);
    *cpu_per_op = counted_end > counted ? (double)(cpu1 - cpu0) / 1e3 / (double)(counted_end - counted) : 0;
    *client_cpu_per_op = counted_end > counted ? (double)(ccpu1 - ccpu0) / 1e3 / (double)(counted_end - counted) : 0;
    for (int i = 0; i < k; i++) tconn_close(&cs[i]);
    close(ep);
    free(cs);
    return rate;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static int g_missed;

/* ---- the local path: a session in local mode against the core alone ---- */

#define LTRY(what, expr)                                                                                    \
    do {                                                                                                    \
        int rc_ = (expr);                                                                                   \
        if (rc_ < 0) die("%s: %s (%s)", what, commy_error_last()->message, commy_strerror(rc_));             \
    } while (0)

/* The containers benchmark's operations, on two segments at once: box
 * fetch_add, map put, map get, vec push, n of each on each. The two sides
 * take turns in chunks of 1,000 operations (which goes first alternates), so
 * that a busy machine slows both alike; ns per operation of each kind into
 * ns[side][0..3]. Fresh roots named with tag, removed afterwards. */
static void container_ops(double ns[2][4], commy_alloc *a2[2], int tag, int n)
{
    enum { CHUNK = 1000 };
    char bn[32], mn[32], vn[32];
    snprintf(bn, sizeof bn, "lb%d", tag);
    snprintf(mn, sizeof mn, "lm%d", tag);
    snprintf(vn, sizeof vn, "lv%d", tag);
    commy_box *b[2];
    commy_map *m[2];
    commy_vec *v[2];
    uint64_t t[2][4] = {{0}};
    for (int s = 0; s < 2; s++) {
        LTRY("commy_box_open", commy_box_open(&b[s], a2[s], bn, COMMY_T_I64, COMMY_OPEN_EXCL));
        LTRY("commy_map_open", commy_map_open(&m[s], a2[s], mn, COMMY_T_I64, COMMY_T_I64, COMMY_OPEN_EXCL));
        LTRY("commy_vec_open", commy_vec_open(&v[s], a2[s], vn, COMMY_T_I64, COMMY_OPEN_EXCL));
    }
    for (int kind = 0; kind < 4; kind++)
        for (int64_t c0 = 0, turn = 0; c0 < n; c0 += CHUNK, turn++)
            for (int k = 0; k < 2; k++) {
                int s = (int)((turn + k) & 1);
                int64_t c1 = c0 + CHUNK < n ? c0 + CHUNK : n;
                uint64_t t0 = now_ns();
                for (int64_t i = c0; i < c1; i++) {
                    int64_t key = i * 2654435761ll, val = i, got = -1;
                    size_t len;
                    switch (kind) {
                    case 0: LTRY("commy_box_fetch_add", commy_box_fetch_add(&got, b[s], 1)); break;
                    case 1: LTRY("commy_map_put", commy_map_put(m[s], &key, sizeof key, &val, sizeof val)); break;
                    case 2:
                        LTRY("commy_map_get", commy_map_get(m[s], &key, sizeof key, &got, sizeof got, &len));
                        if (got != i) die("map_get returned %lld for key %lld", (long long)got, (long long)key);
                        break;
                    default: LTRY("commy_vec_push", commy_vec_push(v[s], &val, sizeof val)); break;
                    }
                }
                t[s][kind] += now_ns() - t0;
            }
    for (int s = 0; s < 2; s++) {
        int64_t got = 0;
        LTRY("commy_box_get", commy_box_get(b[s], &got, sizeof got, NULL));
        if (got != n) die("box fetch_add ended at %lld, not %d", (long long)got, n);
        commy_box_close(b[s]);
        commy_map_close(m[s]);
        commy_vec_close(v[s]);
        LTRY("commy_root_remove", commy_root_remove(a2[s], bn));
        LTRY("commy_root_remove", commy_root_remove(a2[s], mn));
        LTRY("commy_root_remove", commy_root_remove(a2[s], vn));
        for (int kind = 0; kind < 4; kind++) ns[s][kind] = (double)t[s][kind] / n;
    }
}

/* Opens service "l" in local mode through a session and runs container_ops
 * on the session's commy_alloc and on a segment opened directly (same
 * directory, same options), taking turns, 7 rounds; prints the medians. */
static void local_path(int port, const char *cert, int quick)
{
    commy_session_options so;
    commy_session_options_init(&so);
    so.ca_file = cert;
    commy_session *sess;
    commy_service *svc;
    commy_alloc *sa, *da;
    char url[64];
    snprintf(url, sizeof url, "wss://127.0.0.1:%d", port);
    LTRY("commy_session_connect", commy_session_connect(&sess, url, &so));
    LTRY("commy_session_authenticate", commy_session_authenticate(sess, "bench", g_api_key));
    char path[400];
    snprintf(path, sizeof path, "%s/direct.commy", g_dir);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = COMMY_ALLOC_CREATE | COMMY_ALLOC_EXCL; /* what the server does for a service file */
    int rounds = quick ? 1 : 7, n = quick ? 50000 : 100000;
    double s[7][4], d[7][4], ss[7], ds[7], w[2][4];
    for (int r = 0; r < rounds; r++) {
        /* fresh files each round: "l" is a service only this part uses, and it
         * is not persistent, so closing it deletes its file and opening it
         * makes a new one; both files then have the same history. Where the
         * two mappings land moves the figures of one run by up to 4x for the
         * small operations (cache aliasing, it seems): new mappings each
         * round let the median see several placements. */
        LTRY("commy_session_open_service", commy_session_open_service(&svc, sess, "l", COMMY_SERVICE_LOCAL));
        if (commy_service_mode(svc) != COMMY_SERVICE_LOCAL) die("the service did not open in local mode");
        LTRY("commy_service_alloc", commy_service_alloc(&sa, svc));
        LTRY("commy_alloc_open", commy_alloc_open(&da, path, &o));
        commy_alloc *both[2] = {sa, da};
        container_ops(w, both, 99, n / 4); /* not counted: both files grow first */
        container_ops(w, both, r, n);
        memcpy(s[r], w[0], sizeof s[r]);
        memcpy(d[r], w[1], sizeof d[r]);
        ss[r] = s[r][0] + s[r][1] + s[r][2] + s[r][3];
        ds[r] = d[r][0] + d[r][1] + d[r][2] + d[r][3];
        commy_alloc_close(da);
        unlink(path);
        commy_service_close(svc);
    }
    static const char *names[4] = {"box fetch_add (ns/op)", "map put (ns/op)", "map get (ns/op)", "vec push (ns/op)"};
    printf("\n%-34s %12s %12s %8s  %s\n", "local path", "session", "direct", "ratio", "target");
    for (int k = 0; k < 4; k++) {
        double a[7], b[7];
        for (int r = 0; r < rounds; r++) a[r] = s[r][k], b[r] = d[r][k];
        double x = median(a, rounds), y = median(b, rounds);
        printf("%-34s %12.1f %12.1f %8.2f\n", names[k], x, y, x / y);
    }
    double x = median(ss, rounds), y = median(ds, rounds);
    int met = x / y <= 1.1;
    g_missed += !met;
    printf("%-34s %12.1f %12.1f %8.2f  %s\n", "all four, summed (ns)", x, y, x / y, met ? "MET" : "MISSED");
    printf("\nsession: commy_session_open_service(\"l\", COMMY_SERVICE_LOCAL) then commy_service_alloc; direct:\n"
           "commy_alloc_open on a new file in the same directory; both new each round. %d ops of each kind per\n"
           "round on each, taking turns every 1,000; medians of %d rounds; target: session <= 1.1 x direct.\n",
           n, rounds);
    commy_session_close(sess);
}

static void row(const char *what, double commy, double redis, int lower_better, int target)
{
    double ratio = commy / redis;
    const char *verdict = "";
    if (target) {
        int met = lower_better ? ratio <= 1.0 : ratio >= 1.0;
        verdict = met ? "MET" : "MISSED";
        g_missed += !met;
    }
    printf("%-34s %12.1f %12.1f %8.2f  %s\n", what, commy, redis, ratio, verdict);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: server-bench COMMY_SERVER_BINARY [--quick]\n");
        return 2;
    }
    const char *server = argv[1];
    int quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
    signal(SIGPIPE, SIG_IGN);
    g_ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* SERVER_BENCH_ONLY=commy|redis measures one side (for profiling) */
    const char *only = getenv("SERVER_BENCH_ONLY");
    int do_commy = !only || strcmp(only, "redis") != 0, do_redis = !only || strcmp(only, "commy") != 0;
    /* tmpfs when there is one: the service file and the direct segment live
     * here, and neither should pay for disk write-back */
    struct stat st;
    snprintf(g_dir, sizeof g_dir, "%s/commy-server-bench-XXXXXX",
             stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(g_dir)) die("mkdtemp: %s", strerror(errno));
    atexit(cleanup);
    char cert[300], key[300], cmd[1024];
    snprintf(cert, sizeof cert, "%s/cert.pem", g_dir);
    snprintf(key, sizeof key, "%s/key.pem", g_dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s -out %s -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) die("openssl could not make a certificate");

    /* commy-server: one tenant, one service, one key; pings out of the way */
    /* the key's hash in the server's format, with 1,000 PBKDF2 iterations:
     * logins are not what this measures */
    char hash[300];
    const char *secret = "bench-secret-0123456789";
    {
        unsigned char salt[16], dk[32];
        char sx[33], dx[65];
        RAND_bytes(salt, sizeof salt);
        PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sizeof salt, 1000, EVP_sha256(), sizeof dk, dk);
        for (int i = 0; i < 16; i++) sprintf(sx + 2 * i, "%02x", salt[i]);
        for (int i = 0; i < 32; i++) sprintf(dx + 2 * i, "%02x", dk[i]);
        snprintf(hash, sizeof hash, "pbkdf2-sha256$1000$%s$%s", sx, dx);
    }
    int cport = free_port(), rport = free_port();
    char config[300], datadir[300];
    snprintf(config, sizeof config, "%s/commy.json", g_dir);
    snprintf(datadir, sizeof datadir, "%s/data", g_dir);
    FILE *f = fopen(config, "w");
    if (!f) die("cannot write %s", config);
    fprintf(f,
            "{\"listen\":{\"address\":\"127.0.0.1\",\"port\":%d},\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"},"
            "\"data_root\":\"%s\",\"limits\":{\"ping_interval_s\":3600,\"stall_timeout_s\":3600},"
            "\"tenants\":[{\"name\":\"bench\",\"auth\":{\"api_keys\":[{\"id\":\"bench\",\"hash\":\"%s\","
            "\"scopes\":[\"read\",\"write\"]}]},\"services\":[{\"name\":\"b\"},{\"name\":\"l\"}]}]}\n",
            cport, cert, key, datadir, hash);
    fclose(f);
    static char api_key[128];
    snprintf(api_key, sizeof api_key, "bench.%s", secret);
    g_api_key = api_key;
    char *cargv[] = {(char *)server, "--config", config, NULL};
    pid_t cpid = spawn(cargv, "commy-server.log");

    /* redis-server: TLS only, no persistence, the same certificate */
    char rp[16];
    snprintf(rp, sizeof rp, "%d", rport);
    char *rargv[] = {"redis-server", "--port", "0", "--tls-port", rp, "--tls-cert-file", cert, "--tls-key-file", key,
                     "--tls-ca-cert-file", cert, "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
                     "--dir", g_dir, "--bind", "127.0.0.1", NULL};
    pid_t rpid = spawn(rargv, "redis-server.log");
    wait_port(cport, cpid, "commy-server");
    wait_port(rport, rpid, "redis-server");

    g_ssl = SSL_CTX_new(TLS_client_method());
    if (!g_ssl || SSL_CTX_load_verify_locations(g_ssl, cert, NULL) != 1) die("cannot set up TLS");
    SSL_CTX_set_verify(g_ssl, SSL_VERIFY_PEER, NULL);

    int rounds = quick ? 1 : 3, nlat = quick ? 2000 : 10000, ms = quick ? 600 : 2000, k = 50;
    double cs50[3], cs99[3], cg50[3], cg99[3], rs50[3], rs99[3], rg50[3], rg99[3], ct[3], rt[3], cc[3] = {1, 1, 1}, rc[3] = {1, 1, 1}, kc[3] = {1, 1, 1}, kr[3] = {1, 1, 1};
    printf("server-bench: commy-server (WSS) vs redis-server %s(TLS), loopback, %d alternating rounds\n",
           "", rounds);
    fflush(stdout);
    for (int r = 0; r < rounds; r++) {
        lat a = {1, 1, 1, 1}, b = {1, 1, 1, 1};
        if (do_commy) a = latency(&COMMY, cport, nlat, cpid);
        if (do_redis) b = latency(&REDIS, rport, nlat, rpid);
        cs50[r] = a.set50, cs99[r] = a.set99, cg50[r] = a.get50, cg99[r] = a.get99;
        rs50[r] = b.set50, rs99[r] = b.set99, rg50[r] = b.get50, rg99[r] = b.get99;
        rt[r] = do_redis ? throughput(&REDIS, rport, k, ms, rpid, &rc[r], &kr[r]) : 1;
        ct[r] = do_commy ? throughput(&COMMY, cport, k, ms, cpid, &cc[r], &kc[r]) : 1;
    }
    printf("\n%-34s %12s %12s %8s  %s\n", "measure", "commy", "redis", "ratio", "target");
    row("1 client set round trip p50 (us)", median(cs50, rounds), median(rs50, rounds), 1, 1);
    row("1 client get round trip p50 (us)", median(cg50, rounds), median(rg50, rounds), 1, 1);
    row("1 client set round trip p99 (us)", median(cs99, rounds), median(rs99, rounds), 1, 0);
    row("1 client get round trip p99 (us)", median(cg99, rounds), median(rg99, rounds), 1, 0);
    char what[64];
    snprintf(what, sizeof what, "%d clients set+get (ops/s)", k);
    row(what, median(ct, rounds), median(rt, rounds), 0, 1);
    row("server CPU per request (us)", median(cc, rounds), median(rc, rounds), 1, 0);
    row("client CPU per request (us)", median(kc, rounds), median(kr, rounds), 1, 0);
    printf("\nratio = commy / redis; targets: p50 ratio <= 1, throughput ratio >= 1 (p99 shown, no target).\n"
           "Each figure is the median of %d rounds; latency from %d sets and %d gets on one connection,\n"
           "throughput from %d connections with one request outstanding each, for %.1f s.\n",
           rounds, nlat, nlat, k, ms / 1000.0);
    fflush(stdout);
    if (do_commy) local_path(cport, cert, quick);
    cleanup();
    if (g_missed) printf("%d target(s) missed.\n", g_missed);
    return g_missed ? 3 : 0;
}
