/* Two processes count in one shared box.
 * Usage: first SEGMENT   (the file is created if it does not exist) */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

/* Opens the segment and the box, adds 1 to it n times. */
static int count(const char *path, int n)
{
    commy_alloc *seg = NULL;
    commy_box *hits = NULL;
    if (commy_alloc_open(&seg, path, NULL)) return fail("open segment");
    if (commy_box_open(&hits, seg, "hits", COMMY_T_I64, 0)) return fail("open box");
    for (int i = 0; i < n; i++)
        if (commy_box_fetch_add(NULL, hits, 1)) return fail("fetch_add"); /* lock-free */
    commy_box_close(hits);
    commy_alloc_close(seg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    pid_t child = fork();
    if (child < 0) return perror("fork"), 1;
    if (child == 0) _exit(count(argv[1], 10000)); /* the second process */
    int rc = count(argv[1], 10000);
    int status = 0;
    waitpid(child, &status, 0);
    if (rc || !WIFEXITED(status) || WEXITSTATUS(status)) return 1;

    /* Both processes are done: read what they left in the file. */
    commy_alloc *seg = NULL;
    commy_box *hits = NULL;
    int64_t total = 0;
    if (commy_alloc_open(&seg, argv[1], NULL)) return fail("open segment");
    if (commy_box_open(&hits, seg, "hits", COMMY_T_I64, COMMY_OPEN_EXISTING)) return fail("open box");
    if (commy_box_get(hits, &total, sizeof total, NULL)) return fail("get");
    printf("hits = %" PRId64 "\n", total);
    commy_box_close(hits);
    commy_alloc_close(seg);
    return 0;
}
