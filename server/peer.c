/* Who is at the other end of a loopback connection (issue 6: local mode only
 * for a client of the same user). Linux knows the uid of the client's socket:
 * we ask the kernel with sock_diag (NETLINK_SOCK_DIAG, inet_diag_req_v2 with
 * the exact 4-tuple, no dump) and read idiag_uid from its binary reply. Every
 * length in the reply is checked, and the reply must name the very socket we
 * asked for. Anything we cannot establish is a refusal (fail closed). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>

/* An AF_INET6 v4-mapped address becomes the AF_INET one the client's own
 * socket has (a dual-stack server sees ::ffff:127.0.0.1). */
static void unmap(struct sockaddr_storage *ss)
{
    if (ss->ss_family != AF_INET6) return;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return;
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = in6->sin6_port;
    memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof *ss);
    memcpy(ss, &in, sizeof in);
}

static void put_addr(uint32_t out[4], uint16_t *port, const struct sockaddr_storage *ss)
{
    memset(out, 0, 4 * sizeof out[0]);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(out, &in->sin_addr, 4);
        *port = in->sin_port; /* both in network order, as inet_diag wants */
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(out, &in6->sin6_addr, 16);
        *port = in6->sin6_port;
    }
}

static int say(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_peer_uid(unsigned *uid, int fd, char *msg, size_t cap)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    memset(&me, 0, sizeof me);
    memset(&peer, 0, sizeof peer);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&me, &ml) || getpeername(fd, (struct sockaddr *)&peer, &pl))
        return say(msg, cap, "the connection's addresses are unknown (%s)", strerror(errno));
    unmap(&me);
    unmap(&peer);
    if (me.ss_family != peer.ss_family || (me.ss_family != AF_INET && me.ss_family != AF_INET6))
        return say(msg, cap, "the connection is not TCP over IPv4 or IPv6");

    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = sizeof req;
    req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nh.nlmsg_flags = NLM_F_REQUEST; /* one socket, looked up by its 4-tuple: no dump */
    req.nh.nlmsg_seq = 1;
    req.r.sdiag_family = (uint8_t)me.ss_family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    /* the client's socket: its source is our peer, its destination is us */
    put_addr(req.r.id.idiag_src, &req.r.id.idiag_sport, &peer);
    put_addr(req.r.id.idiag_dst, &req.r.id.idiag_dport, &me);
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return say(msg, cap, "sock_diag is unavailable (%s)", strerror(errno));
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int rc = -1;
    if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)sizeof req) {
        say(msg, cap, "sock_diag request failed (%s)", strerror(errno));
        goto out;
    }
    struct pollfd pf = {.fd = nl, .events = POLLIN};
    if (poll(&pf, 1, 1000) != 1) { /* the kernel answers at once; never block the event loop long */
        say(msg, cap, "sock_diag did not answer");
        goto out;
    }
    long buf[1024]; /* aligned for nlmsghdr */
    ssize_t n = recv(nl, buf, sizeof buf, MSG_DONTWAIT);
    if (n < (ssize_t)sizeof(struct nlmsghdr)) {
        say(msg, cap, "sock_diag gave no answer (%s)", n < 0 ? strerror(errno) : "short reply");
        goto out;
    }
    say(msg, cap, "the kernel does not know the client's socket (it may have closed)");
    int len = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != 1) continue;
        if (h->nlmsg_type == NLMSG_ERROR) {
            if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (e->error && e->error != -ENOENT)
                    say(msg, cap, "sock_diag refused the lookup (%s)", strerror(-e->error));
            }
            break;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
        const struct inet_diag_msg *d = NLMSG_DATA(h);
        /* it must be the socket we asked for, not a listener on the same port */
        if (d->idiag_family != req.r.sdiag_family || d->id.idiag_sport != req.r.id.idiag_sport ||
            d->id.idiag_dport != req.r.id.idiag_dport ||
            memcmp(d->id.idiag_src, req.r.id.idiag_src, sizeof d->id.idiag_src) ||
            memcmp(d->id.idiag_dst, req.r.id.idiag_dst, sizeof d->id.idiag_dst))
            continue;
        *uid = d->idiag_uid;
        rc = 0;
        break;
    }
out:
    close(nl);
    return rc;
}

#else

int srv_peer_uid(unsigned *uid, int fd, char *msg, size_t cap)
{
    (void)uid;
    (void)fd;
    snprintf(msg, cap, "this platform does not tell the uid of a TCP peer");
    return -1;
}

#endif

int srv_peer_same_user(int fd, char *msg, size_t cap)
{
    unsigned uid;
    char why[200];
    if (srv_peer_uid(&uid, fd, why, sizeof why)) {
        snprintf(msg, cap, "local mode needs the client's user, which could not be found: %s", why);
        srv_log("warn", "local_refused", "%s", msg);
        return COMMY_EPERM;
    }
    if (uid != (unsigned)geteuid()) {
        snprintf(msg, cap, "local mode is only for clients of the server's user: the client runs as another user (uid %u)",
                 uid);
        srv_log("warn", "local_refused", "%s", msg);
        return COMMY_EPERM;
    }
    return COMMY_OK;
}
