/* Error handling: return codes, commy_error_last, buffers that are too small.
 * Usage: errors SEGMENT */
#include <commy.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    /* A binding or plug-in checks that the library it loaded is the one it was built for. */
    if (commy_version_number() / 1000000 != COMMY_VERSION_MAJOR) {
        fprintf(stderr, "built for commy %s, loaded %s\n", COMMY_VERSION_STRING, commy_version_string());
        return 1;
    }

    /* A failing call returns a negative code; commy_error_last says what happened. */
    commy_alloc *seg = NULL;
    commy_alloc_options opts;
    commy_alloc_options_init(&opts);
    opts.flags = 0; /* no COMMY_ALLOC_CREATE: the file must exist */
    int rc = commy_alloc_open(&seg, argv[1], &opts);
    const commy_error *e = commy_error_last();
    printf("open without CREATE: %d %s\n", rc, commy_strerror(rc));
    fprintf(stderr, "  %s\n", e->message); /* a sentence naming the file */
    if (rc != COMMY_ENOTFOUND || e->code != rc) return 1;

    if (commy_alloc_open(&seg, argv[1], NULL)) return 1;
    commy_str *s = NULL;
    if (commy_str_open(&s, seg, "greeting", 0) || commy_str_set(s, "a longer greeting", 17)) return 1;

    /* Too small a buffer: COMMY_ETOOSMALL, nothing copied, the length needed stored. */
    char small[8];
    size_t need = 0;
    rc = commy_str_get(s, small, sizeof small, &need);
    printf("get into 8 bytes: %s, needs %zu\n", commy_strerror(rc), need);
    if (rc == COMMY_ETOOSMALL) {
        char *buf = malloc(need + 1);
        if (!buf || commy_str_get(s, buf, need + 1, &need)) return 1;
        printf("get into %zu bytes: \"%s\"\n", need + 1, buf);
        free(buf);
    }

    /* Bad arguments are errors too, never crashes. */
    commy_box *b = NULL;
    rc = commy_box_open(&b, seg, "no spaces allowed", COMMY_T_I64, 0);
    printf("a root name with spaces: %s\n", commy_strerror(rc));
    rc = commy_box_open(&b, seg, "greeting", COMMY_T_I64, 0);
    printf("a box where a str lives: %s\n", commy_strerror(rc));

    commy_str_close(s);
    commy_alloc_close(seg);
    return 0;
}
