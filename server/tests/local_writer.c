/* A local client for the end-to-end tests: maps a service file with the core
 * API, as a session in local mode does, and sets an i64 box to each value
 * given, 20 ms apart; or removes the variable.
 * usage: local_writer PATH VAR VALUE...   local_writer PATH VAR --remove */
#include "commy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc < 4) return 2;
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0;
    commy_alloc *a;
    commy_box *b;
    if (strcmp(argv[3], "--remove") == 0) {
        if (commy_alloc_open(&a, argv[1], &o) || commy_root_remove(a, argv[2])) {
            fprintf(stderr, "local_writer: %s\n", commy_error_last()->message);
            return 1;
        }
        commy_alloc_close(a);
        return 0;
    }
    if (commy_alloc_open(&a, argv[1], &o) || commy_box_open(&b, a, argv[2], COMMY_T_I64, 0)) {
        fprintf(stderr, "local_writer: %s\n", commy_error_last()->message);
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        int64_t v = strtoll(argv[i], NULL, 10);
        if (commy_box_set(b, &v, sizeof v)) return 1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    commy_box_close(b);
    commy_alloc_close(a);
    return 0;
}
