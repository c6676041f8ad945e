/* Blocking Redis client over a socket or TLS (see redis.h). */
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct srv_redis {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    redisReader *reader;
    int timeout_ms;
    char *obuf; /* pipelined commands not yet written */
    size_t olen, ocap;
};

static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return COMMY_EIO;
}

static void set_timeout(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int dial(const char *host, int port, int timeout_ms, char *err, size_t cap)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) return fail(err, cap, "cannot resolve %s: %s", host, gai_strerror(rc)), -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr)
                break;
            errno = soerr ? soerr : ETIMEDOUT;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return fail(err, cap, "cannot connect to %s:%d: %s", host, port, strerror(errno)), -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeout(fd, timeout_ms);
    return fd;
}

void srv_redis_close(srv_redis *r)
{
    if (!r) return;
    if (r->ssl) SSL_free(r->ssl);
    if (r->ctx) SSL_CTX_free(r->ctx);
    if (r->fd >= 0) close(r->fd);
    if (r->reader) redisReaderFree(r->reader);
    free(r->obuf);
    free(r);
}

static int tls_start(srv_redis *r, const srv_mirror_conf *mc, char *err, size_t cap)
{
    char why[256];
    r->ctx = SSL_CTX_new(TLS_client_method());
    if (!r->ctx) return fail(err, cap, "mirror: no TLS context");
    SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(r->ctx, mc->tls_ca, NULL) != 1) goto ssl_fail;
    if (mc->tls_cert[0] && (SSL_CTX_use_certificate_chain_file(r->ctx, mc->tls_cert) != 1 ||
                            SSL_CTX_use_PrivateKey_file(r->ctx, mc->tls_key, SSL_FILETYPE_PEM) != 1))
        goto ssl_fail;
    r->ssl = SSL_new(r->ctx);
    if (!r->ssl) goto ssl_fail;
    SSL_set_fd(r->ssl, r->fd);
    /* the certificate must name the address we dialled: an IP SAN for an
     * address, the host name otherwise */
    unsigned char ipbuf[16];
    if (inet_pton(AF_INET, mc->host, ipbuf) == 1 || inet_pton(AF_INET6, mc->host, ipbuf) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), mc->host);
    } else {
        SSL_set_tlsext_host_name(r->ssl, mc->host);
        SSL_set1_host(r->ssl, mc->host);
    }
    if (SSL_connect(r->ssl) != 1) goto ssl_fail;
    return COMMY_OK;
ssl_fail:
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    return fail(err, cap, "mirror: TLS with %s:%d failed: %s", mc->host, mc->port, why);
}

int srv_redis_open(srv_redis **out, const srv_mirror_conf *mc, char *err, size_t cap)
{
    *out = NULL;
    srv_redis *r = calloc(1, sizeof *r);
    if (!r) return fail(err, cap, "out of memory");
    r->timeout_ms = mc->timeout_ms;
    r->reader = redisReaderCreate();
    r->fd = dial(mc->host, mc->port, mc->timeout_ms, err, cap);
    if (r->fd < 0 || !r->reader || (mc->tls && tls_start(r, mc, err, cap))) {
        srv_redis_close(r);
        return COMMY_EIO;
    }
    if (mc->password[0]) {
        redisReply *rep = mc->username[0] ? srv_redis_cmd(r, "AUTH %s %s", mc->username, mc->password)
                                          : srv_redis_cmd(r, "AUTH %s", mc->password);
        int good = rep && rep->type == REDIS_REPLY_STATUS;
        if (!good) fail(err, cap, "mirror: AUTH refused: %s", rep && rep->str ? rep->str : "no answer");
        if (rep) freeReplyObject(rep);
        if (!good) {
            srv_redis_close(r);
            return COMMY_EPERM;
        }
    }
    *out = r;
    return COMMY_OK;
}

static int write_all(srv_redis *r, const char *p, size_t n)
{
    while (n) {
        ssize_t w = r->ssl ? SSL_write(r->ssl, p, (int)n) : send(r->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (!r->ssl && w < 0 && errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static redisReply *read_reply(srv_redis *r, int extra_ms)
{
    if (extra_ms) set_timeout(r->fd, r->timeout_ms + extra_ms);
    void *reply = NULL;
    char buf[16384];
    for (;;) {
        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) break;
        if (reply) break;
        ssize_t n = r->ssl ? SSL_read(r->ssl, buf, sizeof buf) : recv(r->fd, buf, sizeof buf, 0);
        if (n < 0 && !r->ssl && errno == EINTR) continue;
        if (n <= 0) break;
        if (redisReaderFeed(r->reader, buf, (size_t)n) != REDIS_OK) break;
    }
    if (extra_ms) set_timeout(r->fd, r->timeout_ms);
    return reply;
}

redisReply *srv_redis_argv(srv_redis *r, int argc, const char **argv, const size_t *lens, int extra_ms)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || !cmd) return NULL;
    int w = write_all(r, cmd, (size_t)n);
    free(cmd);
    return w ? NULL : read_reply(r, extra_ms);
}

int srv_redis_append(srv_redis *r, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || !cmd) return -1;
    if (r->olen + (size_t)n > r->ocap) {
        size_t cap = (r->olen + (size_t)n) * 2;
        char *b = realloc(r->obuf, cap);
        if (!b) {
            free(cmd);
            return -1;
        }
        r->obuf = b;
        r->ocap = cap;
    }
    memcpy(r->obuf + r->olen, cmd, (size_t)n);
    r->olen += (size_t)n;
    free(cmd);
    return 0;
}

int srv_redis_flush(srv_redis *r)
{
    int w = r->olen ? write_all(r, r->obuf, r->olen) : 0;
    r->olen = 0;
    return w;
}

redisReply *srv_redis_read(srv_redis *r)
{
    return read_reply(r, 0);
}

redisReply *srv_redis_cmd(srv_redis *r, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || !cmd) return NULL;
    int w = write_all(r, cmd, (size_t)n);
    free(cmd);
    return w ? NULL : read_reply(r, 0);
}
