/* commy: live data structures shared between processes through a
 * memory-mapped file. Include this header; link with -lcommy. */
#ifndef COMMY_H
#define COMMY_H

#include "commy/common.h"
#include "commy/version.h"
#include "commy/errors.h"
#include "commy/alloc.h"
#include "commy/types.h"
#include "commy/root.h"
#include "commy/box.h"
#include "commy/vec.h"
#include "commy/str.h"
#include "commy/deque.h"
#include "commy/map.h"
#include "commy/set.h"
#include "commy/omap.h"
#include "commy/oset.h"
#include "commy/session.h"

#endif
