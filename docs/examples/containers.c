/* Every container kind, one short example each, in one segment.
 * Usage: containers SEGMENT   (use a new file: the output assumes empty containers) */
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

/* Every call returns COMMY_OK (0), a count such as COMMY_ROW (1), or a negative COMMY_E* code. */
#define TRY(call) do { if ((call) < 0) return fail(#call); } while (0)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    commy_alloc *seg = NULL;
    TRY(commy_alloc_open(&seg, argv[1], NULL));
    int rc;

    /* [box] */
    commy_box *price = NULL;
    TRY(commy_box_open(&price, seg, "price", COMMY_T_F64, 0));
    double p = 101.25, got = 0;
    TRY(commy_box_set(price, &p, sizeof p));
    TRY(commy_box_get(price, &got, sizeof got, NULL));
    printf("price %.2f\n", got);
    commy_box_close(price);
    /* [/box] */

    /* [vec] */
    commy_vec *samples = NULL;
    TRY(commy_vec_open(&samples, seg, "samples", COMMY_T_I32, 0));
    for (int32_t i = 1; i <= 5; i++) TRY(commy_vec_push(samples, &i, sizeof i));
    int32_t third = 0;
    TRY(commy_vec_get(samples, 2, &third, sizeof third, NULL));
    void *data = NULL; /* fixed-size elements can be read in place, without copying */
    uint64_t n = 0;
    TRY(commy_vec_data(&data, &n, samples));
    int32_t sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += ((const int32_t *)data)[i];
    printf("samples: %" PRIu64 " elements, the third is %" PRId32 ", the sum %" PRId32 "\n", n, third, sum);
    commy_vec_close(samples);
    /* [/vec] */

    /* [str] */
    commy_str *motd = NULL;
    TRY(commy_str_open(&motd, seg, "motd", 0));
    TRY(commy_str_set(motd, "hello", 5));
    TRY(commy_str_append(motd, ", w\xc3\xb6rld", 8)); /* UTF-8 for ", wörld" */
    char text[64];
    size_t len = 0;
    TRY(commy_str_get(motd, text, sizeof text, &len)); /* NUL-terminated when it fits */
    printf("motd \"%s\" (%zu bytes)\n", text, len);
    rc = commy_str_append(motd, "\xff", 1); /* not UTF-8: refused, the string is unchanged */
    printf("appending 0xff: %s\n", commy_strerror(rc));
    commy_str_close(motd);
    /* [/str] */

    /* [deque] */
    commy_deque *tasks = NULL;
    TRY(commy_deque_open(&tasks, seg, "tasks", COMMY_T_STR, 0));
    TRY(commy_deque_push_back(tasks, "resize", 6));
    TRY(commy_deque_push_back(tasks, "upload", 6));
    TRY(commy_deque_push_front(tasks, "urgent", 6));
    char task[32];
    size_t tlen = 0;
    while ((rc = commy_deque_pop_front(tasks, task, sizeof task, &tlen)) == COMMY_OK)
        printf("task %.*s\n", (int)tlen, task);
    if (rc != COMMY_EEMPTY) return fail("pop_front");
    commy_deque_close(tasks);
    /* [/deque] */

    /* [map] */
    commy_map *stock = NULL;
    TRY(commy_map_open(&stock, seg, "stock", COMMY_T_STR, COMMY_T_I64, 0));
    int64_t apples = 12, pears = 7, v = 0;
    TRY(commy_map_put(stock, "apples", 6, &apples, sizeof apples)); /* keys: bytes, no NUL */
    TRY(commy_map_put(stock, "pears", 5, &pears, sizeof pears));
    TRY(commy_map_get(stock, "pears", 5, &v, sizeof v, NULL));
    printf("pears: %" PRId64 "\n", v);
    rc = commy_map_get(stock, "plums", 5, &v, sizeof v, NULL);
    printf("plums: %s\n", commy_strerror(rc));
    commy_map_close(stock);
    /* [/map] */

    /* [set] */
    commy_set *seen = NULL;
    TRY(commy_set_open(&seen, seg, "seen", COMMY_T_U64, 0));
    uint64_t ids[] = {42, 7, 42};
    for (int i = 0; i < 3; i++) {
        int added = 0;
        TRY(commy_set_add(&added, seen, &ids[i], sizeof ids[i]));
        printf("id %" PRIu64 ": %s\n", ids[i], added ? "new" : "seen before");
    }
    commy_set_close(seen);
    /* [/set] */

    /* [omap] */
    commy_omap *events = NULL;
    TRY(commy_omap_open(&events, seg, "events", COMMY_T_I64, COMMY_T_STR, 0));
    const int64_t at[] = {30, 10, 20};
    const char *what[] = {"stop", "start", "pause"};
    for (int i = 0; i < 3; i++) TRY(commy_omap_put(events, &at[i], sizeof at[i], what[i], strlen(what[i])));
    int64_t from = 15, t = 0; /* every event at t >= 15, in key order */
    commy_cursor c = COMMY_CURSOR_INIT;
    TRY(commy_omap_seek(&c, events, &from, sizeof from, 1));
    char name[16];
    size_t nlen = 0;
    while ((rc = commy_omap_next(events, &c, &t, sizeof t, NULL, name, sizeof name, &nlen)) == COMMY_ROW)
        printf("t=%" PRId64 " %.*s\n", t, (int)nlen, name);
    if (rc < 0) return fail("omap_next");
    commy_omap_close(events);
    /* [/omap] */

    /* [oset] */
    commy_oset *names = NULL;
    TRY(commy_oset_open(&names, seg, "names", COMMY_T_STR, 0));
    const char *people[] = {"carol", "alice", "bob"};
    for (int i = 0; i < 3; i++) TRY(commy_oset_add(NULL, names, people[i], strlen(people[i])));
    char first[16], after[16];
    size_t flen = 0, alen = 0;
    TRY(commy_oset_first(names, first, sizeof first, &flen));
    TRY(commy_oset_upper_bound(names, "alice", 5, after, sizeof after, &alen)); /* first key > "alice" */
    printf("names: first %.*s, then %.*s\n", (int)flen, first, (int)alen, after);
    commy_oset_close(names);
    /* [/oset] */

    /* [roots] */
    uint64_t count = 0;
    TRY(commy_root_count(&count, seg));
    for (uint64_t i = 0; i < count; i++) {
        commy_root_info ri;
        char kt[32], vt[32];
        TRY(commy_root_at(&ri, seg, i)); /* in creation order */
        commy_type_name(kt, sizeof kt, ri.key_type);
        commy_type_name(vt, sizeof vt, ri.value_type);
        printf("root %-8s %-5s %-4s %-4s len %" PRIu64 "\n", ri.name, commy_kind_name(ri.kind), kt,
               ri.value_type != COMMY_T_ANY ? vt : "", ri.len);
    }
    /* [/roots] */

    /* [types] */
    commy_box *wrong = NULL;
    rc = commy_box_open(&wrong, seg, "price", COMMY_T_I64, 0); /* "price" holds an f64 */
    printf("open \"price\" as an i64 box: %s\n", commy_strerror(rc));
    fprintf(stderr, "%s\n", commy_error_last()->message); /* names the root and both types */
    commy_map *any = NULL; /* COMMY_T_ANY: take the types the map was created with */
    commy_type key_type = 0, value_type = 0;
    TRY(commy_map_open(&any, seg, "stock", COMMY_T_ANY, COMMY_T_ANY, COMMY_OPEN_EXISTING));
    TRY(commy_map_types(&key_type, &value_type, any));
    printf("stock maps %s to %s\n", commy_type_name(text, sizeof text, key_type),
           commy_type_name(name, sizeof name, value_type));
    commy_map_close(any);
    /* [/types] */

    commy_alloc_close(seg);
    return 0;
}
