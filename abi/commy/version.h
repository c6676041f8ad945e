/* Library version. Bindings compare commy_version_number() with the
 * COMMY_VERSION_NUMBER they were generated against. */
#ifndef COMMY_VERSION_H
#define COMMY_VERSION_H

#include "common.h"

#define COMMY_VERSION_MAJOR 1
#define COMMY_VERSION_MINOR 0
#define COMMY_VERSION_PATCH 0
/* major * 1000000 + minor * 1000 + patch */
#define COMMY_VERSION_NUMBER (COMMY_VERSION_MAJOR * 1000000 + COMMY_VERSION_MINOR * 1000 + COMMY_VERSION_PATCH)
#define COMMY_VERSION_STRING "1.0.0"

/* The segment layout this library writes (docs/format.md). A reader refuses
 * another major; it reads any minor of its own major. */
#define COMMY_LAYOUT_MAJOR 1
#define COMMY_LAYOUT_MINOR 0

COMMY_BEGIN_DECLS

/* The version of the library loaded at run time, as COMMY_VERSION_NUMBER. Never fails. */
COMMY_API int commy_version_number(void);

/* The same as a static string, e.g. "1.0.0". Never fails. */
COMMY_API const char *commy_version_string(void);

COMMY_END_DECLS

#endif
