/* A bump arena for the cJSON nodes of one request's parse: a request's tree
 * costs some twenty small allocations that all die together a few
 * microseconds later. Install once with srv_json_arena_install (before any
 * cJSON use, on the main thread); bracket commy_wire_request_parse with
 * begin/end on the thread that parses. Outside a bracket, and on every other
 * thread, cJSON allocates with malloc as usual. Nothing allocated inside a
 * bracket may outlive it, and nothing inside may be freed with plain free():
 * so bracket the parse only, not logging or printing. */
#ifndef COMMY_SERVER_JSON_ARENA_H
#define COMMY_SERVER_JSON_ARENA_H

void srv_json_arena_install(void);
void srv_json_arena_begin(void);
void srv_json_arena_end(void);
/* 1 in an AddressSanitizer build: nodes freed, or left from an ended
 * bracket, are poisoned (use after free is reported), and each allocation
 * has a red zone. 0 otherwise. */
int srv_json_arena_checked(void);

#endif
