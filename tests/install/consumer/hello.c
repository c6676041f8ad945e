/* A user's first program, built against an installed commy. */
#include <commy.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    commy_alloc *seg = NULL;
    if (commy_alloc_open(&seg, argv[1], NULL) != COMMY_OK) {
        fprintf(stderr, "open: %s\n", commy_error_last()->message);
        return 1;
    }
    commy_box *hits = NULL;
    int64_t before = 0;
    if (commy_box_open(&hits, seg, "hits", COMMY_T_I64, 0) != COMMY_OK ||
        commy_box_fetch_add(&before, hits, 1) != COMMY_OK) {
        fprintf(stderr, "box: %s\n", commy_error_last()->message);
        return 1;
    }
    printf("commy %s: hits was %lld\n", commy_version_string(), (long long)before);
    commy_box_close(hits);
    commy_alloc_close(seg);
    return 0;
}
