/* What a kill -9 leaves: a process dies in the middle of a batch; the next
 * process to take the segment lock rolls the half-done change back.
 * Usage: crash SEGMENT */
#include <commy.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

/* Commits one order, then dies holding the lock halfway through a batch of 100. */
static int doomed(const char *path)
{
    commy_alloc *seg = NULL;
    commy_map *orders = NULL;
    if (commy_alloc_open(&seg, path, NULL) ||
        commy_map_open(&orders, seg, "orders", COMMY_T_U64, COMMY_T_STR, 0)) return fail("open");
    uint64_t id = 1;
    if (commy_map_put(orders, &id, sizeof id, "committed", 9)) return fail("put");
    if (commy_alloc_lock(seg, 0)) return fail("lock");
    for (id = 2; id <= 100; id++)
        if (commy_map_put(orders, &id, sizeof id, "half-done", 9)) return fail("put");
    raise(SIGKILL); /* as if kill -9 arrived here: no unlock, no close */
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return perror("fork"), 1;
    if (child == 0) _exit(doomed(argv[1]));
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFSIGNALED(status)) return fprintf(stderr, "the child was not killed\n"), 1;
    printf("child killed by signal %d\n", WTERMSIG(status));

    commy_alloc *seg = NULL;
    commy_map *orders = NULL;
    uint64_t len = 0;
    commy_heap_stats st;
    if (commy_alloc_open(&seg, argv[1], NULL)) return fail("open segment");
    if (commy_map_open(&orders, seg, "orders", COMMY_T_U64, COMMY_T_STR, COMMY_OPEN_EXISTING))
        return fail("open map"); /* the first locked call recovers the dead holder's change */
    if (commy_map_len(&len, orders)) return fail("len");
    if (commy_alloc_stats(&st, seg)) return fail("stats");
    printf("orders: %" PRIu64 " (the batch was rolled back)\n", len);
    printf("recoveries: %" PRIu64 "\n", st.recoveries);
    printf("check: %s\n", commy_alloc_check(seg) == COMMY_OK ? "consistent" : commy_error_last()->message);
    commy_map_close(orders);
    commy_alloc_close(seg);
    return 0;
}
