#pragma once
// Whether a log is read in the right format. A wrong format must never look like a quiet
// log (issue 16): a LogFormat that does not fit refuses every line, and a refused line
// can ban nobody. ParseHealth keeps, per log, the outcome of the last `window` lines and
// says when too many of them were refused:
//
//   unparseable  when the window holds at least `min_lines` lines and more than
//                `percent` of them failed, or when at least `min_all` lines were read
//                and every one of them failed (a quiet log in a wrong format);
//   parseable    again when the window holds at least `min_lines` lines and at most
//                half of `percent` failed (hysteresis: one episode, not a flicker).
//
// What counts as a failure: the line does not fit the format (no-match, truncated,
// bad-address, bad-time). A bad request line is not one: the address and time around
// it were read, so the format fits; a scanner's TLS bytes sent to port 80 must not raise
// the alarm. Over-long lines are judged by their first part and count by how that parsed.
//
// Memory: one byte per window line and one sample line of at most kMaxSample bytes.
// Threads: one owner.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/logparse/format.h"

namespace mamori::logparse {

// Whether `status` says the format does not fit the line (see above).
bool is_format_failure(ParseStatus status);

struct HealthOptions {
  size_t window = 1000;
  size_t min_lines = 100;
  size_t min_all = 10;
  unsigned percent = 10;
};

class ParseHealth {
 public:
  static constexpr size_t kMaxSample = 256;  // bytes of the sample line kept

  explicit ParseHealth(HealthOptions options = {});

  enum class Change : uint8_t { kNone, kUnparseable, kParseable };
  // One line's outcome. Returns the change it made, once per episode each way.
  Change note(ParseStatus status, std::string_view line);

  bool unparseable() const { return unparseable_; }
  // The window: lines in it (at most `window`) and how many of them failed.
  size_t lines() const { return count_; }
  size_t failures() const { return failures_; }
  // The first failing line of the current (or last) episode, at most kMaxSample bytes of
  // it, raw (escape it before showing it), and why it failed.
  const std::string& sample() const { return sample_; }
  ParseStatus sample_status() const { return sample_status_; }
  // The window's lines by outcome (index: ParseStatus).
  size_t in_window(ParseStatus status) const { return by_status_[size_t(status)]; }
  uint64_t episodes() const { return episodes_; }

 private:
  HealthOptions options_;
  std::vector<ParseStatus> ring_;  // the last `window` outcomes
  size_t next_ = 0;
  size_t count_ = 0;
  size_t failures_ = 0;
  uint64_t total_ = 0, total_failed_ = 0;  // since the start: for min_all
  bool unparseable_ = false;
  uint64_t episodes_ = 0;
  std::string sample_;
  std::string candidate_;  // the newest failing line, the sample if an episode begins
  ParseStatus sample_status_ = ParseStatus::kOk, candidate_status_ = ParseStatus::kOk;
  size_t by_status_[kParseStatusCount] = {};
};

}  // namespace mamori::logparse
