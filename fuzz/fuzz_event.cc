// File names and command lines in events are the attacker's bytes: whatever they are,
// an event must serialise to exactly one line of valid JSON that keeps every field.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/event/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // First line: a path; the rest: a command line.
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nl = in.find('\n');
  const std::string path(in.substr(0, nl));
  const std::string cmd(nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1));
  mamori::event::Event e("file-restored", mamori::event::Severity::kWarning, 0);
  e.set("file.path", path).set("process.command_line", cmd).message("restored " + path);
  const std::string line = e.to_json_line();
  if (line.find('\n') != std::string::npos) std::abort();
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j["file"]["path"].is_string() ||
      !j["process"]["command_line"].is_string())
    std::abort();
  if (j["event"]["action"] != "file-restored") std::abort();
  return 0;
}
