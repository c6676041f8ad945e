/* commy: shared-memory data structures. Common definitions for every module.
 * Includes only C standard headers; safe to compile as C99 or C++. */
#ifndef COMMY_COMMON_H
#define COMMY_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  define COMMY_API
#elif defined(COMMY_BUILDING_LIBRARY)
#  define COMMY_API __attribute__((visibility("default")))
#else
#  define COMMY_API
#endif

#ifdef __cplusplus
#  define COMMY_BEGIN_DECLS extern "C" {
#  define COMMY_END_DECLS }
#else
#  define COMMY_BEGIN_DECLS
#  define COMMY_END_DECLS
#endif

#endif
