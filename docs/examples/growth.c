/* The file grows as containers fill, up to max_size; past it, COMMY_ENOSPC
 * and the container is left as it was. Usage: growth SEGMENT */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    commy_alloc_options opts;
    commy_alloc_options_init(&opts);
    opts.initial_size = 512 << 10; /* starts at 512 KiB ... */
    opts.max_size = 4 << 20;       /* ... and may grow to 4 MiB */
    commy_alloc *seg = NULL;
    commy_vec *blobs = NULL;
    commy_heap_stats before, after;
    if (commy_alloc_open(&seg, argv[1], &opts)) return fail("open segment");
    if (commy_vec_open(&blobs, seg, "blobs", COMMY_T_BYTES, 0)) return fail("open vec");
    if (commy_alloc_stats(&before, seg)) return fail("stats");

    static char blob[16384];
    memset(blob, 'x', sizeof blob);
    int rc;
    uint64_t pushed = 0, len = 0;
    while ((rc = commy_vec_push(blobs, blob, sizeof blob)) == COMMY_OK) pushed++;
    printf("push stopped with: %s\n", commy_strerror(rc));
    fprintf(stderr, "%s\n", commy_error_last()->message);
    if (rc != COMMY_ENOSPC) return 1;
    if (commy_vec_len(&len, blobs) || commy_alloc_stats(&after, seg)) return fail("len");
    printf("the failed push left the vec as it was: %s\n", len == pushed ? "yes" : "no");
    printf("the file grew: %s, up to max_size at most: %s\n", after.file_size > before.file_size ? "yes" : "no",
           after.file_size <= opts.max_size ? "yes" : "no");

    /* Freeing makes room again; commy_alloc_shrink_to_fit returns the tail to the file system. */
    if (commy_vec_clear(blobs)) return fail("clear");
    printf("after clear, a push works: %s\n", commy_vec_push(blobs, blob, sizeof blob) == COMMY_OK ? "yes" : "no");
    commy_vec_close(blobs);
    commy_alloc_close(seg);
    return 0;
}
