// Access-log lines are the attacker's bytes. Whatever they are, every format must return a
// status without crashing or reading outside the line, a line it accepts must carry a
// valid client address taken verbatim from the line, and normalising any target must give
// a bounded, NUL-free result with no dot segments left in an absolute path.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/logparse/format.h"
#include "core/logparse/normalise.h"

namespace {

using mamori::logparse::Entry;
using mamori::logparse::LogFormat;
using mamori::logparse::ParseStatus;

const std::vector<LogFormat>& formats() {
  static const std::vector<LogFormat> all = [] {
    std::vector<LogFormat> v;
    for (
        const char* spec : {
            "combined",
            "common",
            "vhost_combined",
            "json",
            R"($remote_addr $host [$time_iso8601] "$request_method $uri $args" $status $msec "$http_x_forwarded_for")",
            R"(%a %{sec}t "%m %U %q %H" %>s %B "%{User-Agent}i" %D)",
            // %t (it holds a space) before unquoted fields (issue 16).
            R"(%h %l %u %t %v "%r" %>s %b)",
            R"(%h %t %D "%r" %>s %b "%{User-Agent}i")",
        }) {
      auto f = LogFormat::compile(spec);
      if (!f) std::abort();
      v.push_back(std::move(*f));
    }
    return v;
  }();
  return all;
}

void check_normalised(std::string_view raw) {
  static std::string out;
  const auto info = mamori::logparse::normalise_target(raw, out);
  if (out.size() > mamori::logparse::kMaxNormalisedTarget) std::abort();
  if (out.find('\0') != std::string::npos) std::abort();
  if (info.query != std::string::npos && (info.query >= out.size() || out[info.query] != '?'))
    std::abort();
  const std::string_view path = std::string_view(out).substr(0, info.query);
  if (!info.truncated && path.starts_with('/')) {
    if (path.find("//") != path.npos || path.find("/./") != path.npos ||
        path.find("/../") != path.npos || path.ends_with("/.") || path.ends_with("/.."))
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  static Entry entry;  // reused, as a log reader does
  for (const LogFormat& format : formats()) {
    const ParseStatus st = format.parse(line, entry);
    if (st != ParseStatus::kOk) continue;
    // The client is never unescaped: it must be bytes of the line, and a valid address.
    if (entry.client.data() < line.data() ||
        entry.client.data() + entry.client.size() > line.data() + line.size())
      std::abort();
    const auto again = mamori::logparse::IpAddress::parse(entry.client);
    if (!again || *again != entry.client_ip) std::abort();
    check_normalised(entry.target);
  }
  // The same lines read as cut (an over-long line's start): never outside the line,
  // never too-long or truncated, and a client only when it is an exact address.
  for (const LogFormat& format : formats()) {
    const ParseStatus st = format.parse_cut(line, entry);
    if (st == ParseStatus::kTooLong || st == ParseStatus::kTruncated) std::abort();
    if (st != ParseStatus::kOk) continue;
    const auto again = mamori::logparse::IpAddress::parse(entry.client);
    if (!again || *again != entry.client_ip) std::abort();
    check_normalised(entry.target);
  }
  check_normalised(line);

  // A line any JSON parser accepts as an object must not be refused as malformed.
  // (nlohmann stops reading at a NUL byte; this reader does not.)
  if (size <= 16 * 1024 && line.find('\0') == std::string_view::npos) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    size_t depth = 0;
    for (char c : line) depth += c == '{' || c == '[';
    if (!j.is_discarded() && j.is_object() && depth <= 32) {
      const ParseStatus st = formats()[3].parse(line, entry);
      if (st == ParseStatus::kNoMatch || st == ParseStatus::kTruncated) std::abort();
      const auto addr = j.find("remote_addr");
      if (st == ParseStatus::kOk && addr != j.end() && addr->is_string() &&
          line.find("remote_addr") == line.rfind("remote_addr") &&
          entry.client != addr->get<std::string>())
        std::abort();
    }
  }
  return 0;
}
