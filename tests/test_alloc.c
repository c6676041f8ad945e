/* The segment and its allocator through the public ABI: creation, validation
 * of foreign and damaged files, allocation against a model, growth, bad
 * frees, read-only mode, batches, the process table. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static commy_alloc *open_new(const char *name, uint64_t initial, uint64_t max)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = initial;
    o.max_size = max;
    o.journal_size = 64 << 10;
    commy_alloc *a = NULL;
    unlink(harness_path(name));
    int rc = commy_alloc_open(&a, harness_path(name), &o);
    REQUIRE(rc == COMMY_OK);
    return a;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void test_create_reopen(void)
{
    commy_alloc *a = open_new("basic.seg", 1 << 20, 64 << 20);
    commy_segment_info info;
    CHECK_OK(commy_alloc_info(&info, a));
    CHECK(info.layout_major == COMMY_LAYOUT_MAJOR && info.header_size == 4096);
    CHECK(info.size == 1 << 20 && info.max_size == 64 << 20);
    uint64_t off = 0;
    CHECK_OK(commy_alloc_allocate(&off, a, 100, 0));
    CHECK(off % 16 == 0);
    char *p = commy_alloc_ptr(a, off);
    REQUIRE(p != NULL);
    strcpy(p, "hello, segment");
    CHECK(commy_alloc_offset(a, p) == off);
    commy_alloc_close(a);

    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0; /* must exist */
    CHECK_OK(commy_alloc_open(&a, harness_path("basic.seg"), &o));
    p = commy_alloc_ptr(a, off);
    CHECK(p && strcmp(p, "hello, segment") == 0);
    uint64_t bs = 0;
    CHECK_OK(commy_alloc_block_size(&bs, a, off));
    CHECK(bs >= 100);
    CHECK_OK(commy_alloc_free(a, off));
    CHECK_OK(commy_alloc_check(a));
    commy_heap_stats st;
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 0 && st.used == 0 && st.free_blocks == 1);
    CHECK(st.attached == 1);
    commy_alloc_close(a);
    commy_alloc_close(NULL);
}

static void test_bad_files(void)
{
    commy_alloc *a = NULL;
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0;
    CHECK_RC(commy_alloc_open(&a, harness_path("missing.seg"), &o), COMMY_ENOTFOUND);
    CHECK(a == NULL);

    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7 + 3);
    write_file(harness_path("foreign.bin"), junk, sizeof junk);
    CHECK_RC(commy_alloc_open(&a, harness_path("foreign.bin"), NULL), COMMY_ECORRUPT);
    CHECK(strstr(commy_error_last()->message, "not a commy segment") != NULL);
    /* The foreign file was not overwritten. */
    struct stat sb;
    CHECK(stat(harness_path("foreign.bin"), &sb) == 0 && sb.st_size == (off_t)sizeof junk);

    write_file(harness_path("tiny.bin"), "COMMYSEG", 8);
    CHECK_RC(commy_alloc_open(&a, harness_path("tiny.bin"), NULL), COMMY_ECORRUPT);

    CHECK_RC(commy_alloc_open(&a, harness_dir(), NULL), COMMY_EINVAL);

    /* A valid file, then a future major version. */
    commy_alloc *v = open_new("future.seg", 1 << 20, 8 << 20);
    commy_alloc_close(v);
    int fd = open(harness_path("future.seg"), O_RDWR);
    uint16_t major = 2, minor = 5;
    CHECK(pwrite(fd, &major, 2, 8) == 2 && pwrite(fd, &minor, 2, 10) == 2);
    close(fd);
    CHECK_RC(commy_alloc_open(&a, harness_path("future.seg"), NULL), COMMY_ELAYOUT);
    CHECK(strstr(commy_error_last()->message, "layout 2.5") && strstr(commy_error_last()->message, "layout 1.x"));

    /* Truncated: the header says more than the file has. */
    v = open_new("trunc.seg", 1 << 20, 8 << 20);
    commy_alloc_close(v);
    CHECK(truncate(harness_path("trunc.seg"), 300000) == 0);
    CHECK_RC(commy_alloc_open(&a, harness_path("trunc.seg"), NULL), COMMY_ECORRUPT);
    CHECK(strstr(commy_error_last()->message, "truncated") != NULL);

    /* A header offset pointing outside the file. */
    v = open_new("badoff.seg", 1 << 20, 8 << 20);
    commy_alloc_close(v);
    fd = open(harness_path("badoff.seg"), O_RDWR);
    uint64_t root = 1ull << 40;
    CHECK(pwrite(fd, &root, 8, 64) == 8);
    close(fd);
    CHECK_RC(commy_alloc_open(&a, harness_path("badoff.seg"), NULL), COMMY_ECORRUPT);

    /* Bad options. */
    commy_alloc_options bad;
    commy_alloc_options_init(&bad);
    bad.version = 99;
    CHECK_RC(commy_alloc_open(&a, harness_path("x.seg"), &bad), COMMY_EINVAL);
    commy_alloc_options_init(&bad);
    bad.initial_size = 10 << 20;
    bad.max_size = 1 << 20;
    CHECK_RC(commy_alloc_open(&a, harness_path("x.seg"), &bad), COMMY_EINVAL);
    CHECK_RC(commy_alloc_open(NULL, harness_path("x.seg"), NULL), COMMY_EINVAL);
    CHECK_RC(commy_alloc_open(&a, NULL, NULL), COMMY_EINVAL);

    /* EXCL on an existing file. */
    commy_alloc_options_init(&bad);
    bad.flags = COMMY_ALLOC_CREATE | COMMY_ALLOC_EXCL;
    CHECK_RC(commy_alloc_open(&a, harness_path("trunc.seg"), &bad), COMMY_EEXISTS);
}

static void test_half_initialised(void)
{
    /* A creator killed after writing its "initialising" magic left this behind. */
    char buf[4096] = "COMMYINI";
    write_file(harness_path("half.seg"), buf, sizeof buf);
    commy_alloc *a = NULL;
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0;
    CHECK_RC(commy_alloc_open(&a, harness_path("half.seg"), &o), COMMY_ECORRUPT);
    CHECK_OK(commy_alloc_open(&a, harness_path("half.seg"), NULL));
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
    /* An empty file is initialised too. */
    write_file(harness_path("empty.seg"), "", 0);
    CHECK_OK(commy_alloc_open(&a, harness_path("empty.seg"), NULL));
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

/* Random allocations and frees against a model of live blocks, each filled
 * with a pattern that must survive everything else. */
struct live {
    uint64_t off, size;
    uint8_t fill;
};

static void test_model(void)
{
    commy_alloc *a = open_new("model.seg", 256 << 10, 256 << 20);
    enum { MAX_LIVE = 2000 };
    static struct live live[MAX_LIVE];
    size_t n = 0;
    uint64_t expect_used_min = 0;
    for (int step = 0; step < 60000; step++) {
        int do_alloc = n == 0 || (n < MAX_LIVE && harness_below(100) < 55);
        if (do_alloc) {
            uint64_t size = harness_below(4) == 0 ? harness_below(70000) : harness_below(300);
            uint64_t align = 1ull << (3 + harness_below(10)); /* 8 .. 4096 */
            uint64_t off = 0;
            int rc = commy_alloc_allocate(&off, a, size, align);
            CHECK_OK(rc);
            if (rc) break;
            CHECK(off % align == 0);
            uint8_t *p = commy_alloc_ptr(a, off);
            REQUIRE(p != NULL);
            live[n].off = off;
            live[n].size = size;
            live[n].fill = (uint8_t)(step * 31 + 1);
            memset(p, live[n].fill, size);
            n++;
            expect_used_min += size;
        } else {
            size_t i = harness_below(n);
            uint8_t *p = commy_alloc_ptr(a, live[i].off);
            int intact = 1;
            for (uint64_t k = 0; k < live[i].size; k++) intact &= p[k] == live[i].fill;
            CHECK(intact);
            CHECK_OK(commy_alloc_free(a, live[i].off));
            expect_used_min -= live[i].size;
            live[i] = live[--n];
        }
        if (step % 5000 == 0) {
            CHECK_OK(commy_alloc_check(a));
            commy_heap_stats st;
            CHECK_OK(commy_alloc_stats(&st, a));
            CHECK(st.live_allocs == n);
            CHECK(st.used >= expect_used_min);
            CHECK(st.used + st.free + 16 == st.heap_size);
        }
    }
    for (size_t i = 0; i < n; i++) CHECK_OK(commy_alloc_free(a, live[i].off));
    CHECK_OK(commy_alloc_check(a));
    commy_heap_stats st;
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 0 && st.used == 0);
    /* Shrinking first returns the small blocks cached by size to the coalescing heap. */
    CHECK_OK(commy_alloc_shrink_to_fit(a));
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 0 && st.free_blocks == 1);
    /* Everything was returned and coalesced: the one free block is the whole heap. */
    CHECK(st.largest_free + 16 + 16 == st.heap_size);
    commy_alloc_close(a);
}

static void test_growth_and_enospc(void)
{
    commy_alloc *a = open_new("grow.seg", 128 << 10, 4 << 20);
    commy_alloc *b = NULL;
    CHECK_OK(commy_alloc_open(&b, harness_path("grow.seg"), NULL));
    uint64_t offs[64];
    int n = 0;
    for (; n < 64; n++) {
        int rc = commy_alloc_allocate(&offs[n], a, 100000, 0);
        if (rc == COMMY_ENOSPC) break;
        CHECK_OK(rc);
        memset(commy_alloc_ptr(a, offs[n]), n + 1, 100000);
    }
    CHECK(n > 20 && n < 64); /* grew many times, then hit the 4 MiB maximum */
    CHECK(strstr(commy_error_last()->message, "maximum size") != NULL);
    commy_heap_stats before, after;
    CHECK_OK(commy_alloc_stats(&before, a));
    uint64_t off;
    CHECK_RC(commy_alloc_allocate(&off, a, 1 << 20, 0), COMMY_ENOSPC);
    CHECK_OK(commy_alloc_stats(&after, a));
    CHECK(before.used == after.used && before.live_allocs == after.live_allocs);
    CHECK_OK(commy_alloc_check(a));
    /* The other handle sees the grown file and the data, at stable addresses. */
    for (int i = 0; i < n; i++) {
        unsigned char *p = commy_alloc_ptr(b, offs[i]);
        REQUIRE(p != NULL);
        CHECK(p[0] == i + 1 && p[99999] == i + 1);
    }
    CHECK_OK(commy_alloc_check(b));
    /* Free everything and give the tail back. */
    for (int i = 0; i < n; i++) CHECK_OK(commy_alloc_free(b, offs[i]));
    struct stat sb;
    stat(harness_path("grow.seg"), &sb);
    off_t big = sb.st_size;
    CHECK_OK(commy_alloc_shrink_to_fit(a));
    stat(harness_path("grow.seg"), &sb);
    CHECK(sb.st_size < big && sb.st_size <= (off_t)(512 << 10));
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_alloc_check(b));
    CHECK_OK(commy_alloc_allocate(&off, b, 200000, 0)); /* grows again from b */
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_alloc_free(a, off));
    commy_alloc_close(a);
    commy_alloc_close(b);
}

/* Requests of every size up to 64 MiB, each larger than the whole free heap,
 * with odd sizes and alignments between: growth must always make room that
 * the size-class search then finds. */
static void test_growth_classes(void)
{
    commy_alloc *a = open_new("classes.seg", 256 << 10, 512 << 20);
    uint64_t prev = 0, off;
    for (uint64_t sz = 4096; sz <= (64u << 20); sz = sz * 2 + 16) {
        int rc = commy_alloc_allocate(&off, a, sz, 0);
        CHECK_OK(rc);
        if (rc) break;
        if (prev) CHECK_OK(commy_alloc_free(a, prev));
        prev = off;
        for (uint64_t odd = sz + 1000; odd < sz + 5000; odd += 977) {
            uint64_t o;
            CHECK_OK(commy_alloc_allocate(&o, a, odd, 64));
            CHECK_OK(commy_alloc_free(a, o));
        }
    }
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

static void test_bad_free(void)
{
    commy_alloc *a = open_new("badfree.seg", 1 << 20, 8 << 20);
    uint64_t x, y;
    CHECK_OK(commy_alloc_allocate(&x, a, 256, 0));
    CHECK_OK(commy_alloc_allocate(&y, a, 256, 0));
    /* Make x's payload look like headers, to tempt an interior-offset free. */
    memset(commy_alloc_ptr(a, x), 0x41, 256);
    CHECK_RC(commy_alloc_free(a, x + 16), COMMY_EBADFREE);
    CHECK_RC(commy_alloc_free(a, x + 8), COMMY_EBADFREE);
    CHECK_RC(commy_alloc_free(a, 0), COMMY_EBADFREE);
    CHECK_RC(commy_alloc_free(a, 12345678901ull), COMMY_EBADFREE);
    CHECK_RC(commy_alloc_free(a, 100), COMMY_EBADFREE);
    CHECK_OK(commy_alloc_free(a, x));
    CHECK_RC(commy_alloc_free(a, x), COMMY_EBADFREE);
    CHECK(strstr(commy_error_last()->message, "double free") != NULL);
    uint64_t bs;
    CHECK_RC(commy_alloc_block_size(&bs, a, x), COMMY_EBADFREE);
    CHECK_OK(commy_alloc_check(a));
    CHECK_RC(commy_alloc_allocate(&x, a, 10, 3), COMMY_EINVAL);
    CHECK_RC(commy_alloc_allocate(&x, a, 10, 8192), COMMY_EINVAL);
    CHECK_RC(commy_alloc_allocate(NULL, a, 10, 0), COMMY_EINVAL);
    CHECK_OK(commy_alloc_free(a, y));
    CHECK_OK(commy_alloc_check(a));
    commy_alloc_close(a);
}

static void test_readonly(void)
{
    commy_alloc *a = open_new("ro.seg", 1 << 20, 8 << 20);
    uint64_t off;
    CHECK_OK(commy_alloc_allocate(&off, a, 64, 0));
    strcpy(commy_alloc_ptr(a, off), "read me");
    commy_alloc_close(a);
    chmod(harness_path("ro.seg"), 0400);
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = COMMY_ALLOC_READONLY;
    CHECK_OK(commy_alloc_open(&a, harness_path("ro.seg"), &o));
    CHECK(strcmp(commy_alloc_ptr(a, off), "read me") == 0);
    uint64_t x;
    CHECK_RC(commy_alloc_allocate(&x, a, 64, 0), COMMY_EPERM);
    CHECK_RC(commy_alloc_free(a, off), COMMY_EPERM);
    CHECK_RC(commy_alloc_lock(a, 0), COMMY_EPERM);
    CHECK_OK(commy_alloc_check(a));
    commy_segment_info info;
    CHECK_OK(commy_alloc_info(&info, a));
    CHECK(info.readonly == 1);
    commy_alloc_close(a);
    chmod(harness_path("ro.seg"), 0600);
}

static void test_batches(void)
{
    commy_alloc *a = open_new("batch.seg", 1 << 20, 64 << 20);
    uint64_t x, y;
    CHECK_OK(commy_alloc_lock(a, 0));
    CHECK_OK(commy_alloc_lock(a, 0)); /* nests */
    CHECK_OK(commy_alloc_allocate(&x, a, 100, 0));
    CHECK_OK(commy_alloc_allocate(&y, a, 100, 0));
    CHECK_OK(commy_alloc_unlock(a));
    CHECK_OK(commy_alloc_unlock(a));
    CHECK_RC(commy_alloc_unlock(a), COMMY_EINVAL);
    commy_heap_stats st;
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 2);
    /* A failing operation inside a batch undoes only itself. */
    CHECK_OK(commy_alloc_lock(a, 0));
    uint64_t z;
    CHECK_OK(commy_alloc_free(a, x));
    CHECK_RC(commy_alloc_allocate(&z, a, 1ull << 30, 0), COMMY_ENOSPC);
    CHECK_OK(commy_alloc_unlock(a));
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 1);
    /* A batch larger than the 64 KiB journal is rolled back whole. */
    CHECK_OK(commy_alloc_lock(a, 0));
    int rc = 0, i;
    for (i = 0; i < 100000 && rc == 0; i++) rc = commy_alloc_allocate(&z, a, 64, 0);
    CHECK_RC(rc, COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_allocate(&z, a, 64, 0), COMMY_EJOURNAL);
    CHECK_RC(commy_alloc_unlock(a), COMMY_EJOURNAL);
    CHECK_OK(commy_alloc_stats(&st, a));
    CHECK(st.live_allocs == 1);
    CHECK_OK(commy_alloc_check(a));
    CHECK_OK(commy_alloc_free(a, y));
    commy_alloc_close(a);
}

static void test_process_table(void)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.stale_after_ms = 150;
    commy_alloc *a = NULL;
    unlink(harness_path("procs.seg"));
    REQUIRE(commy_alloc_open(&a, harness_path("procs.seg"), &o) == COMMY_OK);
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    pid_t quiet = fork();
    if (quiet == 0) {
        /* Attaches and dies without closing: its slot must be reclaimed. */
        commy_alloc *c = NULL;
        int ok = commy_alloc_open(&c, harness_path("procs.seg"), NULL) == COMMY_OK;
        if (harness_valgrind()) raise(SIGKILL); /* see harness_valgrind */
        _exit(ok ? 0 : 1);
    }
    int status;
    waitpid(quiet, &status, 0);
    CHECK(harness_valgrind() || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    int found_quiet = 0;
    for (uint32_t i = 0; i < 32; i++) {
        commy_process_info pi;
        CHECK_OK(commy_alloc_process(&pi, a, i));
        if (pi.pid == (uint32_t)quiet) {
            found_quiet = 1;
            CHECK(pi.alive == 0);
        }
    }
    CHECK(found_quiet);
    pid_t silent = fork();
    if (silent == 0) {
        /* Heartbeats once, then falls silent while alive. */
        commy_alloc *c = NULL;
        if (commy_alloc_open(&c, harness_path("procs.seg"), &o) != COMMY_OK) _exit(1);
        commy_alloc_heartbeat(c);
        if (write(pipefd[1], "x", 1) != 1) _exit(1);
        sleep(5);
        _exit(0);
    }
    char ch;
    CHECK(read(pipefd[0], &ch, 1) == 1);
    int silent_alive = -1;
    for (uint32_t i = 0; i < 32; i++) {
        commy_process_info pi;
        CHECK_OK(commy_alloc_process(&pi, a, i));
        if (pi.pid == (uint32_t)silent) silent_alive = (int)pi.alive;
    }
    CHECK(silent_alive == 1);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    uint32_t live = 0;
    CHECK_OK(commy_alloc_reap(&live, a));
    CHECK(live == 1); /* only this process: the quiet one is gone, the silent one is stale */
    for (uint32_t i = 0; i < 32; i++) {
        commy_process_info pi;
        CHECK_OK(commy_alloc_process(&pi, a, i));
        CHECK(pi.pid != (uint32_t)quiet && pi.pid != (uint32_t)silent);
    }
    commy_process_info pi;
    CHECK_RC(commy_alloc_process(&pi, a, 32), COMMY_ERANGE);
    kill(silent, SIGKILL);
    waitpid(silent, &status, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    commy_alloc_close(a);
}

static void test_heartbeat_thread(void)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags |= COMMY_ALLOC_HEARTBEAT_THREAD;
    o.heartbeat_interval_ms = 20;
    commy_alloc *a = NULL;
    unlink(harness_path("hb.seg"));
    REQUIRE(commy_alloc_open(&a, harness_path("hb.seg"), &o) == COMMY_OK);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    int seen = 0;
    for (uint32_t i = 0; i < 32; i++) {
        commy_process_info pi;
        commy_alloc_process(&pi, a, i);
        if (pi.pid == (uint32_t)getpid()) {
            seen = 1;
            CHECK(pi.heartbeat_age_ms < 1000 && pi.alive);
        }
    }
    CHECK(seen);
    commy_alloc_close(a);
}

/* Many processes open-or-create one new path at the same instant: one
 * creates, all attach to the same segment. */
static void test_create_race(void)
{
    for (int round = 0; round < 5; round++) {
        const char *path = harness_path("race.seg");
        unlink(path);
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        enum { N = 8 };
        pid_t kids[N];
        for (int i = 0; i < N; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                char go;
                if (read(fds[0], &go, 1) != 1) _exit(2);
                commy_alloc *c = NULL;
                if (commy_alloc_open(&c, path, NULL) != COMMY_OK) _exit(3);
                uint64_t off;
                if (commy_alloc_allocate(&off, c, 64, 0) != COMMY_OK) _exit(4);
                commy_segment_info info;
                commy_alloc_info(&info, c);
                /* Report the creation stamp so the parent can tell all saw one segment. */
                FILE *f = fopen(harness_path("race.stamps"), "a");
                if (f) {
                    fprintf(f, "%llu\n", (unsigned long long)info.created_ns);
                    fclose(f);
                }
                commy_alloc_close(c);
                _exit(0);
            }
        }
        unlink(harness_path("race.stamps"));
        CHECK(write(fds[1], "gggggggg", N) == N);
        int ok = 1;
        for (int i = 0; i < N; i++) {
            int status;
            waitpid(kids[i], &status, 0);
            ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        CHECK(ok);
        close(fds[0]);
        close(fds[1]);
        FILE *f = fopen(harness_path("race.stamps"), "r");
        unsigned long long first = 0, v;
        int count = 0, same = 1;
        while (f && fscanf(f, "%llu", &v) == 1) {
            if (count++ == 0) first = v;
            same &= v == first;
        }
        if (f) fclose(f);
        CHECK(count == N && same);
        commy_alloc *a = NULL;
        CHECK_OK(commy_alloc_open(&a, path, NULL));
        commy_heap_stats st;
        CHECK_OK(commy_alloc_stats(&st, a));
        CHECK(st.live_allocs == N);
        CHECK_OK(commy_alloc_check(a));
        commy_alloc_close(a);
    }
}

static void test_errors_api(void)
{
    CHECK(strcmp(commy_strerror(COMMY_ENOSPC), "no space left in segment") == 0);
    CHECK(strcmp(commy_strerror(-999), "unknown error") == 0);
    CHECK(commy_version_number() == COMMY_VERSION_NUMBER);
    CHECK(strcmp(commy_version_string(), COMMY_VERSION_STRING) == 0);
    commy_error_clear();
    CHECK(commy_error_last()->code == COMMY_OK);
    CHECK_RC(commy_alloc_check(NULL), COMMY_EINVAL);
    CHECK(commy_error_last()->code == COMMY_EINVAL);
    CHECK(commy_alloc_ptr(NULL, 4096) == NULL);
}

int main(void)
{
    harness_seed();
    harness_run("create_reopen", test_create_reopen);
    harness_run("bad_files", test_bad_files);
    harness_run("half_initialised", test_half_initialised);
    harness_run("model", test_model);
    harness_run("growth_and_enospc", test_growth_and_enospc);
    harness_run("growth_classes", test_growth_classes);
    harness_run("bad_free", test_bad_free);
    harness_run("readonly", test_readonly);
    harness_run("batches", test_batches);
    /* Forked children with a segment mapped hang in valgrind's exit scan (see harness_valgrind). */
    if (!harness_valgrind()) harness_run("process_table", test_process_table);
    harness_run("heartbeat_thread", test_heartbeat_thread);
    if (!harness_valgrind()) harness_run("create_race", test_create_race);
    harness_run("errors_api", test_errors_api);
    return harness_finish();
}
