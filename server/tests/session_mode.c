/* For the end-to-end tests: opens a service through commy_session_* in the
 * mode given (local, remote or auto) and prints the mode it got, or the error.
 * usage: session_mode URL CA TENANT KEY SERVICE MODE */
#include "commy.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: session_mode URL CA TENANT KEY SERVICE local|remote|auto\n");
        return 2;
    }
    int mode = !strcmp(argv[6], "local") ? COMMY_SERVICE_LOCAL : !strcmp(argv[6], "remote") ? COMMY_SERVICE_REMOTE
                                                                                           : COMMY_SERVICE_AUTO;
    commy_session_options opts;
    commy_session_options_init(&opts);
    opts.ca_file = argv[2];
    commy_session *s = NULL;
    commy_service *svc = NULL;
    if (commy_session_connect(&s, argv[1], &opts) || commy_session_authenticate(s, argv[3], argv[4]) ||
        commy_session_open_service(&svc, s, argv[5], mode)) {
        printf("error %d %s\n", commy_error_last()->code, commy_error_last()->message);
        commy_session_close(s);
        return 1;
    }
    printf("%s\n", commy_service_mode(svc) == COMMY_SERVICE_LOCAL ? "local" : "remote");
    commy_service_close(svc);
    commy_session_close(s);
    return 0;
}
