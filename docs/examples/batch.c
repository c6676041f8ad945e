/* A batch: several calls that other processes and crash recovery see as one change.
 * Usage: batch SEGMENT */
#include <commy.h>

#include <inttypes.h>
#include <stdio.h>

static int fail(const char *what)
{
    const commy_error *e = commy_error_last();
    fprintf(stderr, "%s: %s (%s)\n", what, e->message, commy_strerror(e->code));
    return 1;
}

/* Moves amount from one account to another: both puts happen, or neither. */
static int transfer(commy_alloc *seg, commy_map *accounts, const char *from, const char *to, int64_t amount)
{
    int64_t a = 0, b = 0;
    int rc = commy_alloc_lock(seg, 1000); /* wait at most 1 s for the segment lock */
    if (rc) return rc;
    if ((rc = commy_map_get(accounts, from, 1, &a, sizeof a, NULL)) == COMMY_OK &&
        (rc = commy_map_get(accounts, to, 1, &b, sizeof b, NULL)) == COMMY_OK) {
        a -= amount;
        b += amount;
        if ((rc = commy_map_put(accounts, from, 1, &a, sizeof a)) == COMMY_OK)
            rc = commy_map_put(accounts, to, 1, &b, sizeof b);
    }
    int unlock_rc = commy_alloc_unlock(seg); /* commits; COMMY_EJOURNAL if it was rolled back */
    return rc ? rc : unlock_rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    commy_alloc *seg = NULL;
    commy_map *accounts = NULL;
    if (commy_alloc_open(&seg, argv[1], NULL)) return fail("open segment");
    if (commy_map_open(&accounts, seg, "accounts", COMMY_T_STR, COMMY_T_I64, 0)) return fail("open map");
    int64_t start = 100;
    if (commy_map_put(accounts, "a", 1, &start, sizeof start) ||
        commy_map_put(accounts, "b", 1, &start, sizeof start)) return fail("put");

    if (transfer(seg, accounts, "a", "b", 30)) return fail("transfer");
    int rc = transfer(seg, accounts, "a", "nobody", 30); /* no such account: fails before writing */
    printf("transfer to nobody: %s\n", commy_strerror(rc));

    int64_t a = 0, b = 0;
    if (commy_map_get(accounts, "a", 1, &a, sizeof a, NULL) ||
        commy_map_get(accounts, "b", 1, &b, sizeof b, NULL)) return fail("get");
    printf("a = %" PRId64 ", b = %" PRId64 "\n", a, b);
    commy_map_close(accounts);
    commy_alloc_close(seg);
    return 0;
}
