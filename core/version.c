#include "internal.h"

int commy_version_number(void) { return COMMY_VERSION_NUMBER; }

const char *commy_version_string(void) { return COMMY_VERSION_STRING; }
