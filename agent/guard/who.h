#pragma once
// Who-data: what /proc says about the process that made a change. Read at once when
// the event arrives; a process that already exited leaves only its pid.

#include <sys/types.h>

#include "core/evidence/evidence.h"

namespace mamori::guard {

// `proc` is the procfs mount (tests may point it elsewhere).
evidence::Who who_of(pid_t pid, const char* proc = "/proc");

}  // namespace mamori::guard
