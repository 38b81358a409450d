// Error-log and sshd lines are the attacker's bytes, and so is much inside them (user
// names, paths, headers). Whatever they are, each kind of log must return a status without
// crashing or reading outside the line, and an address it reads must be one written in
// the line, verbatim: never one assembled from pieces.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/logparse/eventlog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::logparse;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  for (EventLog log : {EventLog::kSshd, EventLog::kNginxError, EventLog::kApacheError}) {
    EventEntry e;
    const ParseStatus st = EventLogFormat(log).parse(line, 1796644800, e);
    if (st != ParseStatus::kOk) continue;
    const auto inside = [&](std::string_view v) {
      return v.empty() || (v.data() >= line.data() && v.data() + v.size() <= line.data() + size);
    };
    if (!inside(e.subject) || !inside(e.method) || !inside(e.message)) std::abort();
    if (!e.kind.empty() && !e.has_client) std::abort();  // an attack names its address
    if (e.has_client) {
      // IPv4 addresses print as written (no leading zeros are accepted); IPv6 may be
      // spelled another way, so only v4 is checked verbatim.
      if (e.client_ip.v4 && line.find(e.client_ip.to_string()) == std::string_view::npos)
        std::abort();
    }
  }
  return 0;
}
