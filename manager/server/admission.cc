#include "manager/server/admission.h"

#include <cassert>
#include <utility>

namespace mamori::manager {

void Admission::wait(Wake wake, size_t reserve) { waiting_.push_back({std::move(wake), reserve}); }

void Admission::release(size_t reserve) {
  assert(reserve <= reserved_);
  reserved_ -= reserve;
}

bool Admission::hold(size_t bytes) {
  if (held_ + bytes > limit_) return false;
  held_ += bytes;
  return true;
}

void Admission::unhold(size_t bytes) {
  assert(bytes <= held_);
  held_ -= bytes;
}

void Admission::let_in(size_t queued_bytes) {
  while (!waiting_.empty()) {
    const size_t in_use = queued_bytes + reserved_;
    const Waiting& next = waiting_.front();
    if (in_use > 0 && in_use + next.reserve > limit_) return;
    Waiting w = std::move(waiting_.front());
    waiting_.pop_front();
    if (w.wake()) reserved_ += w.reserve;
  }
}

}  // namespace mamori::manager
