/* The commy command-line tool: looks into a segment file through the public
 * ABI only, so what it shows is exactly what any user program would see.
 *
 *   commy inspect FILE [--json] [--locked]   header, process table, heap stats, check, roots
 *   commy check FILE [--locked]   consistency walk; exit 0 if consistent, 1 if not */
#include "commy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 2

static const char *prog = "commy";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s <command> [options]\n"
            "\n"
            "commands:\n"
            "  inspect FILE [--json] [--locked]\n"
            "                          show a segment: header, process table, heap statistics,\n"
            "                          consistency check and named roots (--json: one JSON document)\n"
            "  check FILE [--locked]   walk the whole segment; exit 0 if consistent, 1 if not\n"
            "\n"
            "options:\n"
            "  -h, --help              show this help (also: %s <command> --help)\n"
            "  -V, --version           print the library version\n"
            "\n"
            "exit status: 0 success, 1 the file cannot be read or is inconsistent, 2 bad usage\n",
            prog, prog);
}

static void usage_inspect(FILE *f)
{
    fprintf(f,
            "usage: %s inspect FILE [--json] [--locked]\n"
            "\n"
            "Opens FILE read-only (no lock, no process slot) and prints its header fields, the\n"
            "process table with each used slot's liveness, the allocator statistics, the result\n"
            "of the consistency check and the named roots (kind, types, length, bytes).\n"
            "  --json    print the same as one JSON document on stdout\n"
            "  --locked  run the consistency check through a read-write handle holding the\n"
            "            segment lock (exact while others write; rolls back a dead writer's\n"
            "            change first). Without it FILE is never modified.\n"
            "The read-only walk takes no lock, so a live writer can make it see a change\n"
            "half-made: it is retried, and a fault seen only while processes are attached\n"
            "is reported as 'not confirmed' rather than as a failure.\n"
            "Exit status: 0 shown (and not confirmed inconsistent), 1 unreadable or\n"
            "inconsistent, 2 bad usage.\n",
            prog);
}

static void usage_check(FILE *f)
{
    fprintf(f,
            "usage: %s check FILE [--locked]\n"
            "\n"
            "Walks FILE's header, every heap block, the free lists, the journal, the root\n"
            "directory and every container. Prints one line; exit 0 if consistent, 1 if not.\n"
            "  --locked  open read-write and hold the segment lock during the walk (exact\n"
            "            while other processes write; rolls back a dead writer's change first).\n"
            "            Without it the file is opened read-only and never modified.\n",
            prog);
}

/* Prints "commy: FILE: reason" from the last commy error: one line on stderr. */
static int fail_file(const char *path, int rc)
{
    const commy_error *e = commy_error_last();
    const char *msg = (e->code == rc && e->message && *e->message) ? e->message : commy_strerror(rc);
    fprintf(stderr, "%s: %s: %s (%s)\n", prog, path, msg, commy_strerror(rc));
    return 1;
}

static int open_segment(commy_alloc **out, const char *path, int readonly)
{
    commy_alloc_options o;
    commy_alloc_options_init(&o);
    /* Never create: looking at a path must not leave a file behind. */
    o.flags = readonly ? COMMY_ALLOC_READONLY : 0;
    o.lock_timeout_ms = 10000;
    return commy_alloc_open(out, path, &o);
}

/* ---- JSON output, written by hand: the tool needs only objects, arrays,
 * integers and escaped strings. ---- */

typedef struct json {
    FILE *f;
    int depth;
    int first; /* no comma is needed before the next member */
} json;

static void json_indent(json *j)
{
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 if it is not one. */
static int utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
    if (n == 0 || (n == 3 && p[0] > 0xef)) return 0;
    for (int k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80) return 0;
    if (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))) return 0; /* overlong, surrogate */
    if (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))) return 0; /* overlong, > U+10FFFF */
    return n;
}

static void json_str(json *j, const char *s)
{
    fputc('"', j->f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            /* A path need not be UTF-8, but JSON must be: a stray byte becomes U+FFFD. */
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", j->f);
            } else {
                fwrite(p, 1, (size_t)n, j->f);
                p += n - 1;
            }
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", j->f); break;
        case '\\': fputs("\\\\", j->f); break;
        case '\n': fputs("\\n", j->f); break;
        case '\r': fputs("\\r", j->f); break;
        case '\t': fputs("\\t", j->f); break;
        case '\b': fputs("\\b", j->f); break;
        case '\f': fputs("\\f", j->f); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fprintf(j->f, "\\u%04x", *p);
            else fputc(*p, j->f);
        }
    }
    fputc('"', j->f);
}

static void json_key(json *j, const char *key)
{
    if (!j->first) fputc(',', j->f);
    j->first = 0;
    json_indent(j);
    if (key) {
        json_str(j, key);
        fputs(": ", j->f);
    }
}

static void json_open(json *j, const char *key, char brace)
{
    json_key(j, key);
    fputc(brace, j->f);
    j->depth++;
    j->first = 1;
}

static void json_close(json *j, char brace)
{
    j->depth--;
    if (!j->first) json_indent(j);
    fputc(brace, j->f);
    j->first = 0;
}

static void json_u64(json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    fprintf(j->f, "%" PRIu64, v);
}

static void json_bool(json *j, const char *key, int v)
{
    json_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

static void json_null(json *j, const char *key)
{
    json_key(j, key);
    fputs("null", j->f);
}

static void json_kstr(json *j, const char *key, const char *v)
{
    json_key(j, key);
    json_str(j, v);
}

/* ---- what inspect gathers before printing, so both formats show the same ---- */

typedef struct report {
    const char *path;
    commy_segment_info info;
    commy_heap_stats stats;
    int stats_rc;
    char stats_msg[512];
    commy_process_info *procs; /* used slots only */
    uint32_t nprocs;
    int locked;          /* --locked: the check runs under the segment lock */
    int check_rc;
    int check_confirmed; /* 0: every read-only walk raced a writer; the fault may be transient */
    char check_msg[512];
    commy_root_info *roots;
    uint64_t nroots;
    int roots_rc;
    char roots_msg[512];
} report;

static void save_msg(char *dst, size_t cap, int rc)
{
    const commy_error *e = commy_error_last();
    snprintf(dst, cap, "%s", (e->code == rc && e->message && *e->message) ? e->message : commy_strerror(rc));
}

/* Checks the segment through a read-write handle (never creating the file)
 * under one hold of the segment lock, so no writer can move the heap during
 * the walk. Opening read-write first rolls back a dead writer's change. */
static int check_locked(const char *path)
{
    commy_alloc *a = NULL;
    int rc = open_segment(&a, path, 0);
    if (rc) return rc;
    rc = commy_alloc_lock(a, 10000);
    if (rc == 0) {
        rc = commy_alloc_check(a);
        int urc = commy_alloc_unlock(a);
        if (rc == 0) rc = urc;
    }
    /* Keep the check's message: closing must not replace it. */
    commy_alloc_close(a);
    return rc;
}

static int gather(report *r, commy_alloc *a)
{
    int rc = commy_alloc_info(&r->info, a);
    if (rc) return rc;

    r->stats_rc = commy_alloc_stats(&r->stats, a);
    if (r->stats_rc) save_msg(r->stats_msg, sizeof r->stats_msg, r->stats_rc);

    if (r->info.process_slots) {
        r->procs = calloc(r->info.process_slots, sizeof *r->procs);
        if (!r->procs) return COMMY_ENOMEM;
    }
    for (uint32_t s = 0; s < r->info.process_slots; s++) {
        commy_process_info p;
        rc = commy_alloc_process(&p, a, s);
        if (rc) return rc;
        if (p.state != 0 || p.pid != 0) r->procs[r->nprocs++] = p;
    }

    /* A read-only handle walks the heap without the lock, so a process
     * writing meanwhile can make one walk see a change half-made. Only a
     * fault that persists across walks is reported. */
    uint32_t live = 0;
    for (uint32_t k = 0; k < r->nprocs; k++) live += r->procs[k].alive;
    r->check_confirmed = 1;
    if (r->locked) {
        r->check_rc = check_locked(r->path);
    } else {
        for (int attempt = 0;; attempt++) {
            r->check_rc = commy_alloc_check(a);
            if (r->check_rc == 0 || live == 0 || attempt == 20) break;
            struct timespec pause = {0, 2 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        if (r->check_rc && live) r->check_confirmed = 0;
    }
    if (r->check_rc) save_msg(r->check_msg, sizeof r->check_msg, r->check_rc);

    uint64_t n = 0;
    r->roots_rc = commy_root_count(&n, a);
    if (r->roots_rc == 0 && n) {
        /* A damaged directory could claim any count: list what can be read. */
        if (n > (1u << 20)) n = 1u << 20;
        r->roots = calloc((size_t)n, sizeof *r->roots);
        if (!r->roots) return COMMY_ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
            int rr = commy_root_at(&r->roots[i], a, i);
            if (rr) {
                r->roots_rc = rr;
                break;
            }
            r->nroots++;
        }
    }
    if (r->roots_rc) save_msg(r->roots_msg, sizeof r->roots_msg, r->roots_rc);
    return COMMY_OK;
}

static void fmt_version(char *buf, size_t cap, uint32_t v)
{
    snprintf(buf, cap, "%u.%u.%u", v / 1000000, v / 1000 % 1000, v % 1000);
}

static void fmt_time(char *buf, size_t cap, uint64_t ns)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (ns == 0 || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(buf, cap, "-");
}

/* 1536 -> "1.5 KiB": tables show sizes for people, JSON keeps exact bytes. */
static void fmt_bytes(char *buf, size_t cap, uint64_t v)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%" PRIu64 " B", v);
    else snprintf(buf, cap, "%.1f %s (%" PRIu64 ")", d, unit[u], v);
}

static void fmt_age(char *buf, size_t cap, uint64_t ms)
{
    if (ms == UINT64_MAX) snprintf(buf, cap, "never");
    else snprintf(buf, cap, "%" PRIu64 " ms", ms);
}

static const char *kind_name(uint32_t kind) { return commy_kind_name(kind); }

static void print_text(const report *r)
{
    const commy_segment_info *i = &r->info;
    char b1[64], b2[64];
    printf("segment %s\n\n", r->path);

    printf("header\n");
    printf("  %-16s %u.%u\n", "layout", i->layout_major, i->layout_minor);
    printf("  %-16s %u\n", "header size", i->header_size);
    printf("  %-16s 0x%x\n", "flags", i->flags);
    fmt_version(b1, sizeof b1, i->creator_version);
    printf("  %-16s %s\n", "created by", b1);
    fmt_time(b1, sizeof b1, i->created_ns);
    printf("  %-16s %s\n", "created at", b1);
    fmt_bytes(b1, sizeof b1, i->size);
    printf("  %-16s %s\n", "size", b1);
    fmt_bytes(b1, sizeof b1, i->max_size);
    printf("  %-16s %s\n", "max size", b1);
    printf("  %-16s %" PRIu64 "\n", "journal offset", i->journal_offset);
    fmt_bytes(b1, sizeof b1, i->journal_size);
    printf("  %-16s %s\n", "journal size", b1);
    printf("  %-16s %" PRIu64 "%s\n", "journal used", i->journal_used,
           i->journal_used ? "  (a change is in flight or was cut short)" : "");
    printf("  %-16s %" PRIu64 "\n", "heap offset", i->heap_offset);
    printf("  %-16s %" PRIu64 "%s\n", "root offset", i->root_offset, i->root_offset ? "" : "  (no roots yet)");
    printf("  %-16s %" PRIu64 "\n", "recoveries", i->recoveries);
    printf("  %-16s %u\n", "process slots", i->process_slots);

    printf("\nprocesses (%u of %u slots used)\n", r->nprocs, i->process_slots);
    if (r->nprocs) {
        printf("  %5s  %8s  %-8s  %-5s  %14s  %14s\n", "slot", "pid", "state", "alive", "start time", "heartbeat age");
        for (uint32_t k = 0; k < r->nprocs; k++) {
            const commy_process_info *p = &r->procs[k];
            fmt_age(b1, sizeof b1, p->heartbeat_age_ms);
            printf("  %5u  %8u  %-8s  %-5s  %14" PRIu64 "  %14s\n", p->slot, p->pid,
                   p->state == 1 ? "attached" : p->state == 0 ? "free" : "?", p->alive ? "yes" : "no", p->start_time,
                   b1);
        }
    }

    printf("\nheap\n");
    if (r->stats_rc) {
        printf("  unavailable: %s\n", r->stats_msg);
    } else {
        const commy_heap_stats *s = &r->stats;
        fmt_bytes(b1, sizeof b1, s->file_size);
        printf("  %-16s %s\n", "file size", b1);
        fmt_bytes(b1, sizeof b1, s->heap_size);
        printf("  %-16s %s\n", "heap size", b1);
        fmt_bytes(b1, sizeof b1, s->used);
        printf("  %-16s %s\n", "used", b1);
        fmt_bytes(b1, sizeof b1, s->free);
        printf("  %-16s %s\n", "free", b1);
        fmt_bytes(b2, sizeof b2, s->largest_free);
        printf("  %-16s %s\n", "largest free", b2);
        printf("  %-16s %" PRIu64 "\n", "live allocs", s->live_allocs);
        printf("  %-16s %" PRIu64 "\n", "free blocks", s->free_blocks);
        printf("  %-16s %u\n", "attached", s->attached);
    }

    if (r->check_rc == 0)
        printf("\nconsistency: ok%s\n", r->locked ? " (checked under the segment lock)" : "");
    else if (r->check_confirmed)
        printf("\nconsistency: FAILED: %s\n", r->check_msg);
    else
        printf("\nconsistency: not confirmed: %s\n"
               "  (every read-only walk raced a live writer, which can show a change half-made;\n"
               "   'commy inspect --locked' or 'commy check --locked' gives the exact answer)\n",
               r->check_msg);

    printf("\nroots (%" PRIu64 ")\n", r->nroots);
    if (r->nroots) {
        int w = 4;
        for (uint64_t k = 0; k < r->nroots; k++) {
            int l = (int)strlen(r->roots[k].name);
            if (l > w) w = l;
        }
        printf("  %-*s  %-5s  %-10s  %-10s  %12s  %12s\n", w, "name", "kind", "key/elem", "value", "length", "bytes");
        for (uint64_t k = 0; k < r->nroots; k++) {
            const commy_root_info *ri = &r->roots[k];
            char kt[32], vt[32];
            commy_type_name(kt, sizeof kt, ri->key_type);
            if (ri->kind == COMMY_KIND_MAP || ri->kind == COMMY_KIND_OMAP) commy_type_name(vt, sizeof vt, ri->value_type);
            else snprintf(vt, sizeof vt, "-");
            printf("  %-*s  %-5s  %-10s  %-10s  %12" PRIu64 "  %12" PRIu64 "\n", w, ri->name, kind_name(ri->kind), kt,
                   vt, ri->len, ri->bytes);
        }
    }
    if (r->roots_rc) printf("  roots unreadable: %s\n", r->roots_msg);
}

static void print_json(const report *r)
{
    const commy_segment_info *i = &r->info;
    char b[64];
    json j = {stdout, 0, 1};
    json_open(&j, NULL, '{');
    json_kstr(&j, "path", r->path);

    json_open(&j, "header", '{');
    snprintf(b, sizeof b, "%u.%u", i->layout_major, i->layout_minor);
    json_kstr(&j, "layout", b);
    json_u64(&j, "layout_major", i->layout_major);
    json_u64(&j, "layout_minor", i->layout_minor);
    json_u64(&j, "header_size", i->header_size);
    json_u64(&j, "flags", i->flags);
    json_u64(&j, "creator_version", i->creator_version);
    json_u64(&j, "created_ns", i->created_ns);
    json_u64(&j, "size", i->size);
    json_u64(&j, "max_size", i->max_size);
    json_u64(&j, "journal_offset", i->journal_offset);
    json_u64(&j, "journal_size", i->journal_size);
    json_u64(&j, "journal_used", i->journal_used);
    json_u64(&j, "heap_offset", i->heap_offset);
    json_u64(&j, "root_offset", i->root_offset);
    json_u64(&j, "recoveries", i->recoveries);
    json_u64(&j, "process_slots", i->process_slots);
    json_close(&j, '}');

    json_open(&j, "processes", '[');
    for (uint32_t k = 0; k < r->nprocs; k++) {
        const commy_process_info *p = &r->procs[k];
        json_open(&j, NULL, '{');
        json_u64(&j, "slot", p->slot);
        json_u64(&j, "pid", p->pid);
        json_kstr(&j, "state", p->state == 1 ? "attached" : p->state == 0 ? "free" : "unknown");
        json_bool(&j, "alive", (int)p->alive);
        json_u64(&j, "start_time", p->start_time);
        if (p->heartbeat_age_ms == UINT64_MAX) json_null(&j, "heartbeat_age_ms");
        else json_u64(&j, "heartbeat_age_ms", p->heartbeat_age_ms);
        json_close(&j, '}');
    }
    json_close(&j, ']');

    if (r->stats_rc) {
        json_open(&j, "heap", '{');
        json_kstr(&j, "error", r->stats_msg);
        json_close(&j, '}');
    } else {
        const commy_heap_stats *s = &r->stats;
        json_open(&j, "heap", '{');
        json_u64(&j, "file_size", s->file_size);
        json_u64(&j, "max_size", s->max_size);
        json_u64(&j, "heap_size", s->heap_size);
        json_u64(&j, "used", s->used);
        json_u64(&j, "free", s->free);
        json_u64(&j, "largest_free", s->largest_free);
        json_u64(&j, "live_allocs", s->live_allocs);
        json_u64(&j, "free_blocks", s->free_blocks);
        json_u64(&j, "recoveries", s->recoveries);
        json_u64(&j, "attached", s->attached);
        json_close(&j, '}');
    }

    json_open(&j, "check", '{');
    json_bool(&j, "ok", r->check_rc == 0);
    json_bool(&j, "confirmed", r->check_confirmed);
    json_bool(&j, "locked", r->locked);
    if (r->check_rc) {
        json_u64(&j, "code", (uint64_t)(-r->check_rc));
        json_kstr(&j, "error", r->check_msg);
    }
    json_close(&j, '}');

    json_open(&j, "roots", '[');
    for (uint64_t k = 0; k < r->nroots; k++) {
        const commy_root_info *ri = &r->roots[k];
        char t[32];
        json_open(&j, NULL, '{');
        json_kstr(&j, "name", ri->name);
        json_kstr(&j, "kind", kind_name(ri->kind));
        json_kstr(&j, "key_type", commy_type_name(t, sizeof t, ri->key_type));
        if (ri->kind == COMMY_KIND_MAP || ri->kind == COMMY_KIND_OMAP)
            json_kstr(&j, "value_type", commy_type_name(t, sizeof t, ri->value_type));
        else json_null(&j, "value_type");
        json_u64(&j, "len", ri->len);
        json_u64(&j, "bytes", ri->bytes);
        json_close(&j, '}');
    }
    json_close(&j, ']');
    if (r->roots_rc) json_kstr(&j, "roots_error", r->roots_msg);
    json_close(&j, '}');
    fputc('\n', j.f);
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int as_json = 0, locked = 0;
    for (int k = 0; k < argc; k++) {
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            usage_inspect(stdout);
            return 0;
        } else if (!strcmp(argv[k], "--json")) {
            as_json = 1;
        } else if (!strcmp(argv[k], "--locked")) {
            locked = 1;
        } else if (argv[k][0] == '-' && argv[k][1] && strcmp(argv[k], "--")) {
            fprintf(stderr, "%s: inspect: unknown option '%s'\n", prog, argv[k]);
            usage_inspect(stderr);
            return EXIT_USAGE;
        } else if (!strcmp(argv[k], "--") && k + 1 < argc && !path) {
            path = argv[++k];
        } else if (!path) {
            path = argv[k];
        } else {
            fprintf(stderr, "%s: inspect: one FILE only, got '%s' too\n", prog, argv[k]);
            usage_inspect(stderr);
            return EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "%s: inspect: missing FILE\n", prog);
        usage_inspect(stderr);
        return EXIT_USAGE;
    }

    commy_alloc *a = NULL;
    int rc = open_segment(&a, path, 1);
    if (rc) return fail_file(path, rc);
    report r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.locked = locked;
    rc = gather(&r, a);
    int status;
    if (rc) {
        status = fail_file(path, rc);
    } else {
        if (as_json) print_json(&r);
        else print_text(&r);
        status = ((r.check_rc && r.check_confirmed) || r.roots_rc) ? 1 : 0;
    }
    free(r.procs);
    free(r.roots);
    commy_alloc_close(a);
    if (fflush(stdout) != 0) {
        perror("commy: writing output");
        return 1;
    }
    return status;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    int locked = 0;
    for (int k = 0; k < argc; k++) {
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            usage_check(stdout);
            return 0;
        } else if (!strcmp(argv[k], "--locked")) {
            locked = 1;
        } else if (argv[k][0] == '-' && argv[k][1]) {
            fprintf(stderr, "%s: check: unknown option '%s'\n", prog, argv[k]);
            usage_check(stderr);
            return EXIT_USAGE;
        } else if (!path) {
            path = argv[k];
        } else {
            fprintf(stderr, "%s: check: one FILE only, got '%s' too\n", prog, argv[k]);
            usage_check(stderr);
            return EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "%s: check: missing FILE\n", prog);
        usage_check(stderr);
        return EXIT_USAGE;
    }
    int rc;
    if (locked) {
        rc = check_locked(path);
    } else {
        commy_alloc *a = NULL;
        rc = open_segment(&a, path, 1);
        if (rc == 0) {
            rc = commy_alloc_check(a);
            /* Keep the check's message across close. */
            if (rc) fail_file(path, rc);
            commy_alloc_close(a);
            if (rc) return 1;
        }
    }
    if (rc) return fail_file(path, rc);
    printf("%s: consistent\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("commy %s (segment layout %d.%d)\n", commy_version_string(), COMMY_LAYOUT_MAJOR, COMMY_LAYOUT_MINOR);
        return 0;
    }
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (cmd[0] == '-') fprintf(stderr, "%s: unknown option '%s'\n", prog, cmd);
    else fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
