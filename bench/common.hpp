// Shared pieces of the benchmarks: clocks, a seeded PRNG, fork-based
// multi-process runs with a start barrier, and the result table.
#pragma once

#include "commy.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace bench {

inline uint64_t now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// xorshift64*: the same seed gives commy and Boost the same operation sequence.
struct rng {
    uint64_t s;
    explicit rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
    uint64_t next()
    {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    uint64_t below(uint64_t n) { return next() % n; }
};

[[noreturn]] inline void die_commy(const char *what, int rc)
{
    fprintf(stderr, "bench: %s failed: %s (%s)\n", what, commy_error_last()->message, commy_strerror(rc));
    _exit(1);
}

#define COMMY_TRY(expr)                                                                                               \
    do {                                                                                                              \
        int rc_ = (expr);                                                                                             \
        if (rc_ < 0) bench::die_commy(#expr, rc_);                                                                    \
    } while (0)

// The directory for segment files: tmpfs when there is one, so neither
// library pays for disk write-back in the middle of a timing.
std::string dir();
std::string path(const char *name);

// Shared between the parent and the children it forks: a start barrier and
// one result slot per child.
struct shared_area {
    std::atomic<uint32_t> ready;
    std::atomic<uint32_t> go;
    uint64_t go_ns;
    uint64_t start_ns[64]; // when each child passed the barrier
    uint64_t end_ns[64];   // when each child stopped its clock (before tear-down)
    uint64_t ops[64];      // each child's operation count
    int64_t aux[64];       // a child-defined result (a checksum, a final value)
};

shared_area *shared();

// Called by a child when its set-up is done: waits for every sibling, then
// starts its clock.
void start_line(int idx);
// Called by a child when the timed part is done.
void stop_line(int idx, uint64_t ops);

struct run_result {
    uint64_t wall_ns; // from the common start to the last stop_line
    uint64_t ops;     // all children's operations
    double ns_per_op() const { return ops ? (double)wall_ns / (double)ops : 0; }
    double ops_per_s() const { return wall_ns ? (double)ops * 1e9 / (double)wall_ns : 0; }
};

// Runs fn(child_index) in n forked processes; each calls start_line after
// its set-up and stop_line after its timed work. A failing child aborts the
// benchmark: a figure from a broken run would be a lie.
template <class F> run_result run_procs(int n, F fn)
{
    shared_area *sh = shared();
    sh->ready = 0;
    sh->go = 0;
    std::vector<pid_t> kids;
    for (int i = 0; i < n; i++) {
        sh->start_ns[i] = sh->end_ns[i] = sh->ops[i] = 0;
        sh->aux[i] = 0;
        fflush(nullptr);
        pid_t p = fork();
        if (p < 0) {
            perror("bench: fork");
            exit(1);
        }
        if (p == 0) {
            fn(i);
            fflush(nullptr);
            _exit(0);
        }
        kids.push_back(p);
    }
    // Children that die before the barrier must not hang the parent.
    int bad = 0;
    size_t reaped = 0;
    while (sh->ready.load() != (uint32_t)n) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            reaped++;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "bench: a child process failed during set-up\n");
                exit(1);
            }
        }
        usleep(200);
    }
    sh->go_ns = now_ns();
    sh->go.store(1, std::memory_order_release);
    for (size_t k = reaped; k < kids.size(); k++) {
        int st;
        if (waitpid(-1, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    if (bad) {
        fprintf(stderr, "bench: %d child process(es) failed\n", bad);
        exit(1);
    }
    run_result r{0, 0};
    for (int i = 0; i < n; i++) {
        if (sh->end_ns[i] - sh->go_ns > r.wall_ns) r.wall_ns = sh->end_ns[i] - sh->go_ns;
        r.ops += sh->ops[i];
    }
    return r;
}

// One row of the results table.
struct row {
    std::string op;
    double commy;    // ns/op (or ops/s when higher_better)
    double peer;     // the peer's figure in the same unit, or < 0 for none
    std::string peer_name;
    double target;   // max ratio commy/peer (or min absolute for higher_better), < 0 for none
    bool higher_better;
    std::string unit;
};

void add_row(const row &r);
void print_table();
int failed_targets();

commy_alloc *open_commy(const std::string &p, uint64_t initial, uint64_t max);

} // namespace bench
