#pragma once

#include <pthread.h>

namespace mamori {

// Names the calling thread for `top -H`, `ps -L`, perf and gdb. Linux keeps 15 bytes: a
// longer name is cut there rather than refused.
inline void name_this_thread(const char* name) {
  char kept[16] = {};
  for (int i = 0; i < 15 && name[i] != '\0'; ++i) kept[i] = name[i];
  pthread_setname_np(pthread_self(), kept);
}

}  // namespace mamori
