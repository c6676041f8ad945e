/* A commy-server client: counts its runs in a box of a service, locally when
 * the server allows it and remotely otherwise, with the same container calls.
 * usage: session_counter URL CA_FILE TENANT API_KEY SERVICE
 *   e.g. session_counter wss://127.0.0.1:8443 cert.pem demo demo.SECRET demo */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s URL CA_FILE TENANT API_KEY SERVICE\n", argv[0]);
        return 2;
    }
    commy_session_options opts;
    commy_session_options_init(&opts);
    opts.ca_file = argv[2];

    commy_session *s = NULL;
    if (commy_session_connect(&s, argv[1], &opts)) return fail("connect");
    if (commy_session_authenticate(s, argv[3], argv[4])) return fail("authenticate");

    commy_service *svc = NULL;
    if (commy_session_open_service(&svc, s, argv[5], COMMY_SERVICE_AUTO)) return fail("open_service");
    commy_alloc *a = NULL;
    commy_service_alloc(&a, svc); /* borrowed: the service owns it */

    /* from here on, the ordinary core calls */
    commy_box *hits = NULL;
    if (commy_box_open(&hits, a, "hits", COMMY_T_I64, 0)) return fail("box_open");
    uint32_t seen = 0;
    commy_box_version(&seen, hits);
    int64_t before = 0;
    if (commy_box_fetch_add(&before, hits, 1)) return fail("fetch_add");
    /* returns at once here: the version moved (remote: as the server reported it) */
    if (commy_box_wait(hits, seen, 5000)) return fail("wait");
    printf("hits was %" PRId64 " (%s)\n", before,
           commy_service_mode(svc) == COMMY_SERVICE_LOCAL ? "local" : "remote");

    commy_box_close(hits);
    commy_service_close(svc);
    commy_session_close(s);
    return 0;
}
