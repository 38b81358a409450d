#include "core/logparse/health.h"

#include <algorithm>

namespace mamori::logparse {

bool is_format_failure(ParseStatus status) {
  switch (status) {
    case ParseStatus::kBadAddress:
    case ParseStatus::kBadTime:
    case ParseStatus::kTruncated:
    case ParseStatus::kNoMatch:
      return true;
    case ParseStatus::kOk:
    case ParseStatus::kTooLong:
    case ParseStatus::kBadRequest:
      return false;
  }
  return false;
}

ParseHealth::ParseHealth(HealthOptions options)
    : options_(options), ring_(std::max<size_t>(options.window, 1), ParseStatus::kOk) {
  sample_.reserve(kMaxSample);
  candidate_.reserve(kMaxSample);
}

ParseHealth::Change ParseHealth::note(ParseStatus status, std::string_view line) {
  const bool failed = is_format_failure(status);
  if (count_ == ring_.size()) {
    const ParseStatus old = ring_[next_];
    --by_status_[size_t(old)];
    failures_ -= is_format_failure(old);
  } else {
    ++count_;
  }
  ring_[next_] = status;
  next_ = (next_ + 1) % ring_.size();
  ++by_status_[size_t(status)];
  failures_ += failed;
  ++total_;
  total_failed_ += failed;

  if (!unparseable_) {
    if (failed) {
      // The newest failing line: the sample if this one starts an episode. Its capacity
      // was reserved, so this never allocates.
      candidate_.assign(line.substr(0, kMaxSample));
      candidate_status_ = status;
    }
    const bool share = count_ >= options_.min_lines && failures_ * 100 > options_.percent * count_;
    const bool all = total_ >= options_.min_all && total_failed_ == total_;
    if (!share && !all) return Change::kNone;
    unparseable_ = true;
    ++episodes_;
    sample_.assign(candidate_);
    sample_status_ = candidate_status_;
    return Change::kUnparseable;
  }
  if (count_ >= options_.min_lines && failures_ * 200 <= options_.percent * count_) {
    unparseable_ = false;  // total_failed_ < total_ from now on: "all" cannot fire again
    return Change::kParseable;
  }
  return Change::kNone;
}

}  // namespace mamori::logparse
