#include "manager/server/login_throttle.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

namespace mamori::manager {

std::string LoginThrottle::address_key(std::string_view address) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(address, ec);
  if (ec || !a.is_v6() || a.to_v6().is_v4_mapped()) return std::string(address);
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

int64_t LoginThrottle::wait_in(const Table& t, std::string_view key, int64_t max_delay,
                               int64_t now_ns) {
  auto it = t.find(key);
  if (it == t.end() || now_ns - it->second.last_ns >= kForgetAfter) return 0;
  const int over = it->second.failures - kFreeFailures;
  if (over < 0) return 0;
  const int64_t delay = over >= 30 ? max_delay : std::min(max_delay, kSecond << over);
  return std::max<int64_t>(0, it->second.last_ns + delay - now_ns);
}

int64_t LoginThrottle::wait_ns(std::string_view user, std::string_view address, int64_t now_ns) {
  return std::max(wait_in(users_, user, kMaxUserDelay, now_ns),
                  wait_in(addresses_, address_key(address), kMaxAddressDelay, now_ns));
}

void LoginThrottle::record(Table& t, std::string key, int64_t now_ns) {
  auto it = t.find(key);
  if (it == t.end()) {
    if (t.size() >= kMaxEntries) {
      // Forgotten entries first, else the one whose last failure is oldest. O(n) only
      // when full, and n is bounded.
      auto oldest = std::min_element(t.begin(), t.end(), [](const auto& a, const auto& b) {
        return a.second.last_ns < b.second.last_ns;
      });
      t.erase(oldest);
    }
    it = t.emplace(std::move(key), Entry{}).first;
  } else if (now_ns - it->second.last_ns >= kForgetAfter) {
    it->second.failures = 0;
  }
  ++it->second.failures;
  it->second.last_ns = now_ns;
}

void LoginThrottle::failed(std::string_view user, std::string_view address, int64_t now_ns) {
  // Names are bounded by the caller (the API refuses names over 64 bytes).
  record(users_, std::string(user), now_ns);
  record(addresses_, address_key(address), now_ns);
}

void LoginThrottle::succeeded(std::string_view user) {
  auto it = users_.find(user);
  if (it != users_.end()) users_.erase(it);
}

}  // namespace mamori::manager
