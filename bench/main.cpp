// commy-bench: commy against Boost.Interprocess in one run (bench/README.md).
// The allocator section lives here; the containers are in containers.cpp.
#include "common.hpp"

#include <boost/interprocess/managed_mapped_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sched.h>
#include <sys/stat.h>

namespace bip = boost::interprocess;

namespace bench {

static std::string g_dir;

std::string dir() { return g_dir; }

std::string path(const char *name) { return g_dir + "/" + name; }

static shared_area *g_shared;

shared_area *shared() { return g_shared; }

void start_line(int idx)
{
    shared_area *sh = g_shared;
    sh->ready.fetch_add(1);
    // Yield while waiting: with more processes than cores, a spinning sibling
    // would steal the CPU from one still setting up.
    while (!sh->go.load(std::memory_order_acquire)) sched_yield();
    sh->start_ns[idx] = now_ns();
}

void stop_line(int idx, uint64_t ops)
{
    g_shared->end_ns[idx] = now_ns();
    g_shared->ops[idx] = ops;
}

static std::vector<row> g_rows;

void add_row(const row &r)
{
    g_rows.push_back(r);
    // Print each row as it lands, so a long run shows progress.
    if (r.higher_better)
        fprintf(stderr, "  %-46s commy %12.0f %s   %s %12.0f\n", r.op.c_str(), r.commy, r.unit.c_str(),
                r.peer_name.c_str(), r.peer);
    else
        fprintf(stderr, "  %-46s commy %9.1f %s   %s %9.1f\n", r.op.c_str(), r.commy, r.unit.c_str(),
                r.peer_name.c_str(), r.peer);
}

static int g_failed;

int failed_targets() { return g_failed; }

void print_table()
{
    printf("\n%-46s %14s %14s %-13s %7s %-10s %s\n", "operation", "commy", "peer", "peer is", "ratio", "target",
           "met");
    for (const row &r : g_rows) {
        char c[32], p[32], ratio[16], target[24];
        const char *met = "-";
        if (r.higher_better) {
            snprintf(c, sizeof c, "%.2fM %s", r.commy / 1e6, r.unit.c_str());
            if (r.peer >= 0) snprintf(p, sizeof p, "%.2fM %s", r.peer / 1e6, r.unit.c_str());
            else snprintf(p, sizeof p, "-");
            if (r.peer > 0) snprintf(ratio, sizeof ratio, "%.2fx", r.commy / r.peer);
            else snprintf(ratio, sizeof ratio, "-");
            if (r.target >= 0) {
                snprintf(target, sizeof target, ">= %.1fM", r.target / 1e6);
                met = r.commy >= r.target ? "MET" : "MISSED";
            } else {
                snprintf(target, sizeof target, "-");
            }
        } else {
            snprintf(c, sizeof c, "%.1f %s", r.commy, r.unit.c_str());
            if (r.peer >= 0) snprintf(p, sizeof p, "%.1f %s", r.peer, r.unit.c_str());
            else snprintf(p, sizeof p, "-");
            double q = r.peer > 0 ? r.commy / r.peer : NAN;
            if (r.peer > 0) snprintf(ratio, sizeof ratio, "%.2f", q);
            else snprintf(ratio, sizeof ratio, "-");
            if (r.target >= 0 && r.peer > 0) {
                snprintf(target, sizeof target, "<= %.2f", r.target);
                met = q <= r.target ? "MET" : "MISSED";
            } else {
                snprintf(target, sizeof target, "-");
            }
        }
        if (!strcmp(met, "MISSED")) g_failed++;
        printf("%-46s %14s %14s %-13s %7s %-10s %s\n", r.op.c_str(), c, p, r.peer_name.c_str(), ratio, target, met);
    }
}

commy_alloc *open_commy(const std::string &p, uint64_t initial, uint64_t max)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.initial_size = initial;
    o.max_size = max;
    commy_alloc *a = nullptr;
    int rc = commy_alloc_open(&a, p.c_str(), &o);
    if (rc) die_commy("commy_alloc_open", rc);
    return a;
}

void bench_containers(double scale, bool (*wanted)(const char *));

} // namespace bench

using namespace bench;

// ---- allocate/free ----
//
// Each process keeps a window of live blocks and, per operation, frees a
// random one and allocates a replacement: one "op" is one free plus one
// allocate. Both libraries replay the same seeded sequence of slots and sizes.

static const int WINDOW = 1024;
static const uint64_t ALLOC_FILE = 256ull << 20;

static uint64_t block_size(rng &r, bool mixed) { return mixed ? 16 + r.below(4096 - 16 + 1) : 64; }

static void churn_commy(int idx, const std::string &p, bool mixed, uint64_t n)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    o.flags = 0; // the parent created it
    commy_alloc *a = nullptr;
    int rc = commy_alloc_open(&a, p.c_str(), &o);
    if (rc) die_commy("commy_alloc_open", rc);
    rng r(0x1234 + (uint64_t)idx * 7919);
    std::vector<uint64_t> live(WINDOW);
    for (auto &off : live) COMMY_TRY(commy_alloc_allocate(&off, a, block_size(r, mixed), 0));
    start_line(idx);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t &off = live[r.below(WINDOW)];
        COMMY_TRY(commy_alloc_free(a, off));
        COMMY_TRY(commy_alloc_allocate(&off, a, block_size(r, mixed), 0));
    }
    stop_line(idx, n);
    for (auto off : live) COMMY_TRY(commy_alloc_free(a, off));
    commy_alloc_close(a);
}

static void churn_boost(int idx, const std::string &p, bool mixed, uint64_t n)
{
    bip::managed_mapped_file mf(bip::open_only, p.c_str());
    rng r(0x1234 + (uint64_t)idx * 7919);
    std::vector<void *> live(WINDOW);
    for (auto &ptr : live) ptr = mf.allocate(block_size(r, mixed));
    start_line(idx);
    for (uint64_t k = 0; k < n; k++) {
        void *&ptr = live[r.below(WINDOW)];
        mf.deallocate(ptr);
        ptr = mf.allocate(block_size(r, mixed));
    }
    stop_line(idx, n);
    for (auto ptr : live) mf.deallocate(ptr);
}

static void bench_alloc(double scale)
{
    uint64_t n = (uint64_t)(1000000 * scale);
    if (n < 1000) n = 1000;
    std::string pc = path("alloc.commy"), pb = path("alloc.boost");
    for (int procs = 1; procs <= 2; procs++) {
        for (int mixed = 0; mixed <= 1; mixed++) {
            // Median of 3 alternating trials: load from elsewhere hits both alike.
            std::vector<double> cs, bs;
            for (int t = 0; t < 3; t++) {
                unlink(pc.c_str());
                unlink(pb.c_str());
                commy_alloc_close(open_commy(pc, 64ull << 20, 1ull << 30));
                { bip::managed_mapped_file mf(bip::create_only, pb.c_str(), ALLOC_FILE); }
                cs.push_back(run_procs(procs, [&](int i) { churn_commy(i, pc, mixed, n); }).ns_per_op());
                bs.push_back(run_procs(procs, [&](int i) { churn_boost(i, pb, mixed, n); }).ns_per_op());
            }
            std::sort(cs.begin(), cs.end());
            std::sort(bs.begin(), bs.end());
            char name[96];
            snprintf(name, sizeof name, "alloc+free %s, %d proc%s x %.0fk", mixed ? "16 B..4 KiB" : "64 B", procs,
                     procs > 1 ? "s" : "", (double)n / 1000);
            add_row({name, cs[1], bs[1], "boost rbtree", 0.5, false, "ns"});
        }
    }
    unlink(pc.c_str());
    unlink(pb.c_str());
}

static const char *g_only;

// --only takes a comma-separated list of sections; "containers" means all but alloc.
static bool wanted(const char *section)
{
    if (!g_only) return true;
    std::string list = std::string(",") + g_only + ",";
    if (list.find(std::string(",") + section + ",") != std::string::npos) return true;
    return strcmp(section, "alloc") != 0 && list.find(",containers,") != std::string::npos;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: commy-bench [--only SECTIONS] [--scale X] [--dir DIR]\n"
               "  --only S    comma-separated sections: alloc, containers (all of the next), vec, map,\n"
               "              omap, deque, box, mixed, wake (default: everything)\n"
               "  --scale X   multiply every operation count by X (default 1: 1M operations)\n"
               "  --dir DIR   where the segment files go (default /dev/shm, else /tmp)\n"
               "Exit status: 0 all targets met, 3 some target missed, 1 a benchmark failed.\n");
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--only") && k + 1 < argc) g_only = argv[++k];
        else if (!strcmp(argv[k], "--scale") && k + 1 < argc) scale = atof(argv[++k]);
        else if (!strcmp(argv[k], "--dir") && k + 1 < argc) g_dir = argv[++k];
        else if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!(scale > 0) || scale > 100) {
        fprintf(stderr, "commy-bench: --scale must be in (0, 100]\n");
        return 2;
    }
    if (g_only) {
        static const char *known[] = {"alloc", "containers", "vec", "map", "omap", "deque", "box", "mixed", "wake"};
        std::string list = g_only;
        size_t start = 0;
        while (start <= list.size()) {
            size_t end = list.find(',', start);
            if (end == std::string::npos) end = list.size();
            std::string name = list.substr(start, end - start);
            bool ok = false;
            for (const char *k : known) ok = ok || name == k;
            if (!ok) {
                fprintf(stderr, "commy-bench: unknown section '%s'\n", name.c_str());
                usage(stderr);
                return 2;
            }
            start = end + 1;
        }
    }
    bool own_dir = g_dir.empty();
    if (own_dir) {
        struct stat st;
        g_dir = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) ? "/dev/shm"
                                                                                                      : "/tmp";
        g_dir += "/commy-bench-" + std::to_string(getpid());
    }
    if (mkdir(g_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "commy-bench: cannot create %s: %s\n", g_dir.c_str(), strerror(errno));
        return 1;
    }
    void *m = mmap(nullptr, sizeof(shared_area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("commy-bench: mmap");
        return 1;
    }
    g_shared = new (m) shared_area();

    printf("commy-bench: commy %s vs Boost.Interprocess %d.%d, files in %s, scale %.2f\n", commy_version_string(),
           BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, g_dir.c_str(), scale);
    fflush(stdout);
    uint64_t t0 = now_ns();
    if (wanted("alloc")) bench_alloc(scale);
    bench_containers(scale, wanted);
    print_table();
    printf("\nns figures are per operation: the wall time of all processes divided by all their operations;\n"
           "each is the median of alternating trials of commy and its peer.\n"
           "ratio = commy / peer (lower is better for ns, higher for ops/s). Total run time %.1f s.\n",
           (double)(now_ns() - t0) / 1e9);
    if (own_dir) rmdir(g_dir.c_str());
    int missed = failed_targets();
    if (missed) printf("%d target(s) missed.\n", missed);
    return missed ? 3 : 0;
}
