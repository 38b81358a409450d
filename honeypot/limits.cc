#include "honeypot/limits.h"

namespace mamori::honeypot {

Admission::Decision Admission::admit(const std::string& address) {
  Decision d;
  if (open_ >= limits_.sessions) {
    ++refused_;
    d.limit = kLimitSessions;
    d.report = !total_over_;
    total_over_ = true;
    return d;
  }
  auto it = per_address_.find(address);
  if (it != per_address_.end() && it->second.open >= limits_.sessions_per_address) {
    ++refused_;
    PerAddress& a = it->second;
    d.limit = kLimitSessionsPerAddress;
    d.report = !a.over;
    a.over = true;
    return d;
  }
  // An address that is not over its limit has no state beyond its open count; the total
  // episode ends once a connection fits again.
  total_over_ = false;
  ++open_;
  ++per_address_[address].open;
  d.admitted = true;
  return d;
}

void Admission::release(const std::string& address) {
  auto it = per_address_.find(address);
  if (it == per_address_.end() || it->second.open == 0) return;  // not ours: nothing to undo
  --open_;
  PerAddress& a = it->second;
  --a.open;
  // The episode ends when the address is below its limit again: its next refusal is news.
  if (a.open < limits_.sessions_per_address) a.over = false;
  if (a.open == 0) per_address_.erase(it);
}

uint32_t Admission::open_from(const std::string& address) const {
  const auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second.open;
}

}  // namespace mamori::honeypot
