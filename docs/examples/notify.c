/* Change notification: a process sleeps until another one changes a container.
 * Usage: notify SEGMENT */
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

/* The worker: takes one job from the queue (sleeping until there is one),
 * then waits for the configuration to change from the version it saw. */
static int worker(const char *path, uint32_t seen)
{
    commy_alloc *seg = NULL;
    commy_deque *jobs = NULL;
    commy_box *config = NULL;
    if (commy_alloc_open(&seg, path, NULL) ||
        commy_deque_open(&jobs, seg, "jobs", COMMY_T_STR, COMMY_OPEN_EXISTING) ||
        commy_box_open(&config, seg, "config", COMMY_T_I64, COMMY_OPEN_EXISTING)) return fail("worker open");
    char job[64];
    size_t len = 0;
    if (commy_deque_pop_front_wait(jobs, job, sizeof job, &len, 10000)) return fail("pop_front_wait");
    printf("worker: got job \"%.*s\"\n", (int)len, job);
    if (commy_box_wait(config, seen, 10000)) return fail("box_wait"); /* a futex sleep, no polling */
    int64_t level = 0;
    if (commy_box_get(config, &level, sizeof level, NULL)) return fail("get");
    printf("worker: config changed, level %" PRId64 "\n", level);
    fflush(stdout);
    commy_box_close(config);
    commy_deque_close(jobs);
    commy_alloc_close(seg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    commy_alloc *seg = NULL;
    commy_deque *jobs = NULL;
    commy_box *config = NULL;
    if (commy_alloc_open(&seg, argv[1], NULL) ||
        commy_deque_open(&jobs, seg, "jobs", COMMY_T_STR, 0) ||
        commy_box_open(&config, seg, "config", COMMY_T_I64, 0)) return fail("open");
    /* Read the version before looking at the value: a change made after this
     * read wakes the waiter even if it happens before the wait begins. */
    uint32_t seen = 0;
    if (commy_box_version(&seen, config)) return fail("version");

    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return perror("fork"), 1;
    if (child == 0) _exit(worker(argv[1], seen));

    int64_t level = 3;
    if (commy_deque_push_back(jobs, "resize photo.jpg", 16)) return fail("push_back");
    if (commy_box_set(config, &level, sizeof level)) return fail("set");
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) return 1;
    printf("main: the worker is done\n");
    commy_box_close(config);
    commy_deque_close(jobs);
    commy_alloc_close(seg);
    return 0;
}
