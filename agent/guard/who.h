#pragma once
// Who-data: what /proc says about the process that made a change. Read at once when
// the event arrives; a process that already exited leaves only its pid.

#include <sys/types.h>

#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/evidence/evidence.h"

namespace mamori::guard {

// uid -> user name, remembered: the lookup reads /etc/passwd (or asks NSS) each time,
// which is too slow for every change. Bounded; a renamed user shows after a restart.
class UserNames {
 public:
  const std::string& name(int64_t uid);

 private:
  static constexpr size_t kMax = 4096;
  std::unordered_map<int64_t, std::string> names_;
};

// `proc` is the procfs mount (tests may point it elsewhere).
evidence::Who who_of(pid_t pid, UserNames& users, const char* proc = "/proc");

// Whether process `pid` runs one of `binaries` (absolute paths here), told by the inode
// its /proc/PID/exe leads to: a server started in another mount namespace or chroot,
// whose executable's path reads differently from here, is still known; a copy is not.
bool runs_one_of(pid_t pid, std::span<const std::string_view> binaries, const char* proc = "/proc");

// ECS `process` of an event: pid, executable, command line, parent; {} without a pid.
nlohmann::json who_json(const evidence::Who& who);

}  // namespace mamori::guard
