#pragma once
// Slows password guessing at POST /api/v1/login without letting a remote client lock
// everybody out, in bounded memory.
//
// Two tables of recent failures: by user name, and by client address (an IPv6 address by
// its /64, what one client usually holds). After kFreeFailures failures of a key, each
// further attempt of that key must wait: 1 s, 2 s, 4 s, ... capped at kMaxUserDelay for a
// name and kMaxAddressDelay for an address. An attacker can therefore slow the logins of a
// name to one try per kMaxUserDelay but not lock it: the legitimate user's next try after
// the delay goes through, and a success clears the name's failures. An address's delay
// grows much longer (one attacker, one address). Failures are forgotten kForgetAfter
// after the last one. Each table holds at most kMaxEntries keys; when full, the entry
// whose last failure is oldest goes (an attacker spraying addresses evicts its own).
//
// Threads: not thread-safe; the manager's one network thread owns it.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace mamori::manager {

class LoginThrottle {
 public:
  static constexpr int kFreeFailures = 5;
  static constexpr int64_t kSecond = 1'000'000'000;
  static constexpr int64_t kMaxUserDelay = 60 * kSecond;
  static constexpr int64_t kMaxAddressDelay = 15 * 60 * kSecond;
  static constexpr int64_t kForgetAfter = 60 * 60 * kSecond;
  static constexpr size_t kMaxEntries = 10000;

  // 0 when a login of `user` from `address` may be tried now, else the nanoseconds to wait
  // (the caller answers 429 with Retry-After, and does not verify the password).
  int64_t wait_ns(std::string_view user, std::string_view address, int64_t now_ns);
  void failed(std::string_view user, std::string_view address, int64_t now_ns);
  void succeeded(std::string_view user);

  size_t size() const { return users_.size() + addresses_.size(); }  // for tests

  // The key of an address: itself for IPv4, the first four groups (the /64) for IPv6.
  static std::string address_key(std::string_view address);

 private:
  struct Entry {
    int failures = 0;
    int64_t last_ns = 0;
  };
  using Table = std::map<std::string, Entry, std::less<>>;
  static int64_t wait_in(const Table& t, std::string_view key, int64_t max_delay, int64_t now_ns);
  static void record(Table& t, std::string key, int64_t now_ns);

  Table users_;
  Table addresses_;
};

}  // namespace mamori::manager
