/* commy-demo-worker: the processes scripts/demo.sh starts.
 *
 *   alloc-worker PATH SECONDS ID      allocate, write a pattern, verify, free, in a loop
 *   producer PATH TASKS CONSUMERS     push tasks 1..TASKS on deque "tasks", then one stop mark per consumer
 *   consumer PATH ID                  pop tasks (sleeping on the deque's futex), count them in box "done"
 *   monitor PATH TOTAL [SECONDS]      sleep on box "done"'s futex and report progress until it reaches TOTAL
 *
 * Every command prints a one-line summary and exits 0 on success, 1 on a
 * failure (a corrupted pattern, a commy error), 2 on bad usage. */
#include "commy.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STOP_MARK (-1)
#define SLOTS 256

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int die(const char *who, const char *what, int rc)
{
    fprintf(stderr, "%s: %s failed: %s (%s)\n", who, what, commy_error_last()->message, commy_strerror(rc));
    return 1;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int open_segment(commy_alloc **out, const char *path)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    /* A heartbeat lets survivors tell a hung worker from a live one. */
    o.flags = COMMY_ALLOC_CREATE | COMMY_ALLOC_HEARTBEAT_THREAD;
    o.max_size = 256u << 20;
    return commy_alloc_open(out, path, &o);
}

/* The pattern depends on the block's seed and position, so a block
 * overwritten by another process, or handed out twice, fails verification. */
static void fill(uint8_t *p, uint64_t len, uint64_t seed)
{
    for (uint64_t i = 0; i < len; i++) p[i] = (uint8_t)(seed + i * 131u + (i >> 8));
}

static uint64_t verify(const uint8_t *p, uint64_t len, uint64_t seed)
{
    uint64_t bad = 0;
    for (uint64_t i = 0; i < len; i++) bad += p[i] != (uint8_t)(seed + i * 131u + (i >> 8));
    return bad;
}

struct block {
    uint64_t off, len, seed;
};

static int cmd_alloc_worker(const char *path, double seconds, unsigned id)
{
    char who[32];
    snprintf(who, sizeof who, "worker %u", id);
    commy_alloc *a;
    int rc = open_segment(&a, path);
    if (rc) return die(who, "opening the segment", rc);

    struct block live[SLOTS];
    memset(live, 0, sizeof live);
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)id << 32) ^ (uint64_t)getpid();
    uint64_t allocs = 0, frees = 0, bytes = 0, corrupt = 0, full = 0;
    double t0 = now_s(), end = t0 + seconds;
    int status = 0;

    while (!stop_requested) {
        if ((allocs & 1023) == 0 && now_s() >= end) break;
        unsigned k = (unsigned)(rng_next(&rng) % SLOTS);
        struct block *b = &live[k];
        if (b->off) {
            uint8_t *p = commy_alloc_ptr(a, b->off);
            uint64_t bad = p ? verify(p, b->len, b->seed) : b->len;
            if (bad) {
                fprintf(stderr, "%s: block at offset %" PRIu64 " (%" PRIu64 " bytes) has %" PRIu64 " wrong bytes\n",
                        who, b->off, b->len, bad);
                corrupt++;
            }
            bytes += b->len;
            rc = commy_alloc_free(a, b->off);
            if (rc) {
                status = die(who, "free", rc);
                break;
            }
            frees++;
            b->off = 0;
        } else {
            uint64_t len = 16 + rng_next(&rng) % (4096 - 16 + 1);
            rc = commy_alloc_allocate(&b->off, a, len, 0);
            if (rc == COMMY_ENOSPC) { /* a full segment is a state, not a failure: free and go on */
                full++;
                b->off = 0;
                continue;
            }
            if (rc) {
                b->off = 0;
                status = die(who, "allocate", rc);
                break;
            }
            b->len = len;
            b->seed = rng_next(&rng);
            uint8_t *p = commy_alloc_ptr(a, b->off);
            if (!p) {
                fprintf(stderr, "%s: offset %" PRIu64 " lies outside the mapping\n", who, b->off);
                status = 1;
                break;
            }
            fill(p, len, b->seed);
            allocs++;
        }
    }
    /* Verify and give back whatever is still held, so the segment ends empty of this worker's blocks. */
    for (unsigned k = 0; k < SLOTS; k++) {
        struct block *b = &live[k];
        if (!b->off) continue;
        uint8_t *p = commy_alloc_ptr(a, b->off);
        if (!p || verify(p, b->len, b->seed)) corrupt++;
        bytes += b->len;
        if ((rc = commy_alloc_free(a, b->off)) != 0) status = die(who, "free", rc);
        else frees++;
    }
    double dt = now_s() - t0;
    printf("%s (pid %d): %" PRIu64 " allocations, %" PRIu64 " frees, %.1f MiB verified, %" PRIu64
           " corrupt blocks, %" PRIu64 " full, %.1f s, %.0f ops/s\n",
           who, (int)getpid(), allocs, frees, (double)bytes / (1 << 20), corrupt, full, dt,
           (double)(allocs + frees) / (dt > 0 ? dt : 1));
    fflush(stdout);
    commy_alloc_close(a);
    return status || corrupt ? 1 : 0;
}

/* The shared state of the task demo: a deque of i64 tasks, a box counting
 * done tasks, a box summing their results, and a config map (str -> i64)
 * whose "multiplier" the consumers apply. */
struct tasks {
    commy_alloc *a;
    commy_deque *queue;
    commy_box *done;
    commy_box *sum;
    commy_map *config;
};

static void tasks_close(struct tasks *t)
{
    commy_deque_close(t->queue);
    commy_box_close(t->done);
    commy_box_close(t->sum);
    commy_map_close(t->config);
    commy_alloc_close(t->a);
}

static int tasks_open(struct tasks *t, const char *path, const char *who)
{
    memset(t, 0, sizeof *t);
    int rc = open_segment(&t->a, path);
    if (rc) return die(who, "opening the segment", rc);
    if ((rc = commy_deque_open(&t->queue, t->a, "tasks", COMMY_T_I64, 0)) != 0) goto fail;
    if ((rc = commy_box_open(&t->done, t->a, "done", COMMY_T_I64, 0)) != 0) goto fail;
    if ((rc = commy_box_open(&t->sum, t->a, "sum", COMMY_T_I64, 0)) != 0) goto fail;
    if ((rc = commy_map_open(&t->config, t->a, "config", COMMY_T_STR, COMMY_T_I64, 0)) != 0) goto fail;
    return 0;
fail:
    die(who, "opening the containers", rc);
    tasks_close(t);
    return 1;
}

static int cmd_producer(const char *path, int64_t ntasks, unsigned consumers)
{
    const char *who = "producer";
    struct tasks t;
    if (tasks_open(&t, path, who)) return 1;
    int rc;
    int64_t mult = 3;
    if ((rc = commy_map_put(t.config, "multiplier", 10, &mult, sizeof mult)) != 0) {
        tasks_close(&t);
        return die(who, "setting config 'multiplier'", rc);
    }
    double t0 = now_s();
    for (int64_t v = 1; v <= ntasks && !stop_requested; v++) {
        if ((rc = commy_deque_push_back(t.queue, &v, sizeof v)) != 0) {
            tasks_close(&t);
            return die(who, "push_back", rc);
        }
    }
    int64_t stop = STOP_MARK;
    for (unsigned k = 0; k < consumers; k++) {
        if ((rc = commy_deque_push_back(t.queue, &stop, sizeof stop)) != 0) {
            tasks_close(&t);
            return die(who, "push_back of a stop mark", rc);
        }
    }
    /* Every task v contributes v * multiplier: the consumers' sum must equal this. */
    int64_t expected = mult * ntasks * (ntasks + 1) / 2;
    printf("producer (pid %d): pushed %" PRId64 " tasks and %u stop marks in %.3f s; expected sum %" PRId64 "\n",
           (int)getpid(), ntasks, consumers, now_s() - t0, expected);
    fflush(stdout);
    tasks_close(&t);
    return 0;
}

static int cmd_consumer(const char *path, unsigned id)
{
    char who[32];
    snprintf(who, sizeof who, "consumer %u", id);
    struct tasks t;
    if (tasks_open(&t, path, who)) return 1;
    uint64_t processed = 0, empty_waits = 0;
    int64_t local_sum = 0, mult = 1;
    uint32_t config_seen = UINT32_MAX;
    int status = 0;
    for (;;) {
        int64_t v;
        size_t len;
        /* Sleeps on the deque's futex until the producer pushes: no polling. */
        int rc = commy_deque_pop_front_wait(t.queue, &v, sizeof v, &len, 1000);
        if (rc == COMMY_ETIMEDOUT) {
            empty_waits++;
            if (stop_requested || empty_waits > 30) {
                fprintf(stderr, "%s: no task and no stop mark for %" PRIu64 " s in a row; giving up\n", who, empty_waits);
                status = 1;
                break;
            }
            continue;
        }
        if (rc) {
            status = die(who, "pop_front_wait", rc);
            break;
        }
        empty_waits = 0;
        if (v == STOP_MARK) break;
        /* Re-read the config only when its version says it changed. */
        uint32_t ver;
        if (commy_map_version(&ver, t.config) == 0 && ver != config_seen) {
            int64_t m;
            if (commy_map_get(t.config, "multiplier", 10, &m, sizeof m, &len) == 0) mult = m;
            config_seen = ver;
        }
        int64_t r = v * mult;
        /* A task takes a little while, as real work does; the consumers share the queue. */
        struct timespec work = {0, 200000};
        nanosleep(&work, NULL);
        if ((rc = commy_box_fetch_add(NULL, t.sum, r)) != 0 || (rc = commy_box_fetch_add(NULL, t.done, 1)) != 0) {
            status = die(who, "fetch_add", rc);
            break;
        }
        local_sum += r;
        processed++;
    }
    printf("%s (pid %d): processed %" PRIu64 " tasks, sum of results %" PRId64 " (multiplier %" PRId64 ")\n", who,
           (int)getpid(), processed, local_sum, mult);
    fflush(stdout);
    tasks_close(&t);
    return status;
}

static int cmd_monitor(const char *path, int64_t total, double seconds)
{
    const char *who = "monitor";
    struct tasks t;
    if (tasks_open(&t, path, who)) return 1;
    double t0 = now_s(), deadline = t0 + seconds;
    uint64_t wakeups = 0;
    int64_t done = 0;
    int status = 0;
    for (;;) {
        uint32_t seen;
        size_t len;
        int rc = commy_box_version(&seen, t.done);
        if (rc == 0) rc = commy_box_get(t.done, &done, sizeof done, &len);
        if (rc) {
            status = die(who, "reading box 'done'", rc);
            break;
        }
        if (done >= total) break;
        double left = deadline - now_s();
        if (left <= 0 || stop_requested) {
            fprintf(stderr, "monitor: only %" PRId64 " of %" PRId64 " tasks done after %.1f s\n", done, total, seconds);
            status = 1;
            break;
        }
        /* Sleeps on the box's futex; a consumer's fetch-add wakes it. */
        rc = commy_box_wait(t.done, seen, (int32_t)(left * 1000) + 1);
        if (rc == 0) wakeups++;
        else if (rc != COMMY_ETIMEDOUT) {
            status = die(who, "box_wait", rc);
            break;
        }
    }
    int64_t sum = 0;
    size_t len;
    commy_box_get(t.sum, &sum, sizeof sum, &len);
    printf("monitor (pid %d): %" PRId64 " of %" PRId64 " tasks done, sum %" PRId64 ", woken %" PRIu64
           " times by change notification in %.3f s\n",
           (int)getpid(), done, total, sum, wakeups, now_s() - t0);
    fflush(stdout);
    tasks_close(&t);
    return status;
}


/* The C side of the three-language demo: writes a few containers that the
 * Python and C# readers then print. */
static int cmd_shared_write(const char *path)
{
    commy_alloc *a = NULL;
    commy_box *visits = NULL;
    commy_map *prices = NULL;
    commy_omap *scores = NULL;
    commy_deque *log = NULL;
    int rc = commy_alloc_open(&a, path, NULL);
    if (rc == COMMY_OK) rc = commy_box_open(&visits, a, "visits", COMMY_T_I64, 0);
    if (rc == COMMY_OK) rc = commy_map_open(&prices, a, "prices", COMMY_T_STR, COMMY_T_F64, 0);
    if (rc == COMMY_OK) rc = commy_omap_open(&scores, a, "scores", COMMY_T_I64, COMMY_T_STR, 0);
    if (rc == COMMY_OK) rc = commy_deque_open(&log, a, "log", COMMY_T_STR, 0);
    static const struct {
        const char *name;
        double price;
    } fruit[] = {{"apple", 1.25}, {"pear", 0.8}, {"kiwi", 0.35}};
    static const struct {
        int64_t score;
        const char *who;
    } board[] = {{42, "ada"}, {7, "bob"}, {99, "cy"}, {63, "dee"}};
    for (size_t i = 0; rc == COMMY_OK && i < sizeof fruit / sizeof fruit[0]; i++)
        rc = commy_map_put(prices, fruit[i].name, strlen(fruit[i].name), &fruit[i].price, sizeof(double));
    for (size_t i = 0; rc == COMMY_OK && i < sizeof board / sizeof board[0]; i++)
        rc = commy_omap_put(scores, &board[i].score, 8, board[i].who, strlen(board[i].who));
    if (rc == COMMY_OK) rc = commy_deque_push_back(log, "written by C", 12);
    int64_t before = 0;
    if (rc == COMMY_OK) rc = commy_box_fetch_add(&before, visits, 1);
    if (rc != COMMY_OK) fprintf(stderr, "commy-demo-worker: %s\n", commy_error_last()->message);
    else
        printf("C writer (pid %d): 3 prices, 4 scores, 1 log line, visits %lld -> %lld\n", (int)getpid(),
               (long long)before, (long long)before + 1);
    commy_deque_close(log);
    commy_omap_close(scores);
    commy_map_close(prices);
    commy_box_close(visits);
    commy_alloc_close(a);
    return rc == COMMY_OK ? 0 : 1;
}

/* Removes the root NAME (the CLI tests check that `commy inspect` then shows
 * its memory back in the heap). */
static int cmd_remove_root(const char *path, const char *name)
{
    commy_alloc *a = NULL;
    int rc = commy_alloc_open(&a, path, NULL);
    if (rc == COMMY_OK) {
        rc = commy_root_remove(a, name);
        if (rc) fprintf(stderr, "commy-demo-worker: remove-root: %s\n", commy_error_last()->message);
        commy_alloc_close(a);
    } else {
        fprintf(stderr, "commy-demo-worker: remove-root: %s\n", commy_error_last()->message);
    }
    return rc ? 1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: commy-demo-worker alloc-worker PATH SECONDS ID\n"
               "       commy-demo-worker producer PATH TASKS CONSUMERS\n"
               "       commy-demo-worker consumer PATH ID\n"
               "       commy-demo-worker monitor PATH TOTAL [SECONDS]\n"
               "       commy-demo-worker shared-write PATH\n"
               "       commy-demo-worker remove-root PATH NAME\n");
}

static int parse_i64(int64_t *out, const char *s, int64_t lo, int64_t hi, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "commy-demo-worker: %s must be an integer from %" PRId64 " to %" PRId64 ", got '%s'\n", what,
                lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    int64_t x, y;
    if (argc == 5 && !strcmp(argv[1], "alloc-worker")) {
        if (parse_i64(&x, argv[3], 0, 86400, "SECONDS") || parse_i64(&y, argv[4], 0, 1 << 20, "ID")) return 2;
        return cmd_alloc_worker(argv[2], (double)x, (unsigned)y);
    }
    if (argc == 5 && !strcmp(argv[1], "producer")) {
        if (parse_i64(&x, argv[3], 0, 100000000, "TASKS") || parse_i64(&y, argv[4], 0, 1024, "CONSUMERS")) return 2;
        return cmd_producer(argv[2], x, (unsigned)y);
    }
    if (argc == 4 && !strcmp(argv[1], "consumer")) {
        if (parse_i64(&x, argv[3], 0, 1 << 20, "ID")) return 2;
        return cmd_consumer(argv[2], (unsigned)x);
    }
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "monitor")) {
        y = 60;
        if (parse_i64(&x, argv[3], 0, INT64_MAX, "TOTAL") || (argc == 5 && parse_i64(&y, argv[4], 1, 86400, "SECONDS")))
            return 2;
        return cmd_monitor(argv[2], x, (double)y);
    }
    if (argc == 3 && !strcmp(argv[1], "shared-write")) return cmd_shared_write(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "remove-root")) return cmd_remove_root(argv[2], argv[3]);
    usage(stderr);
    return 2;
}
