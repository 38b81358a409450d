#pragma once
// A kernel setting under /proc/sys read or written as a number: the watchers' limits
// (fs.inotify.max_user_watches, fs.fanotify.max_queued_events).

#include <cstdint>
#include <fstream>

namespace mamori::watch {

// 0 when the setting is missing or unreadable.
inline uint64_t read_sysctl(const char* path) {
  std::ifstream in(path);
  uint64_t v = 0;
  in >> v;
  return v;
}

// False when not allowed (no such setting, not root, a value the kernel refuses).
inline bool write_sysctl(const char* path, uint64_t value) {
  std::ofstream out(path);
  out << value;
  out.close();
  return out.good();
}

}  // namespace mamori::watch
