#pragma once
// Who may open a connection, and when a limit is worth an event. Pure bookkeeping (no
// sockets), so the policy is tested without a network.
//
// Policies when a limit is hit (docs/honeypot.md, event ssh-limit-reached):
//   sessions, sessions-per-address: "refuse": the new connection is closed at accept(),
//     before a byte of SSH, so a flood costs a socket for microseconds and no memory;
//     one event per episode (the first refusal after the count was last below the
//     limit), so a flood is one event, not one per connection; refused() counts them all.
//   auth-attempts, session-bytes, session-seconds, commands, forwards: "disconnect": that
//     connection is closed; one event for it. (Commands and forwarding requests are
//     events each: their limits bound how many events one connection can make.)
//   descriptors (RLIMIT_NOFILE, not configured): "refuse": the listening socket is not
//     watched for a second, pending connections wait in the kernel's backlog; one event
//     per episode.
//
// Threads: one owner (the server's loop).

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "honeypot/config.h"

namespace mamori::honeypot {

inline constexpr std::string_view kLimitSessions = "sessions";
inline constexpr std::string_view kLimitSessionsPerAddress = "sessions-per-address";
inline constexpr std::string_view kLimitAuthAttempts = "auth-attempts";
inline constexpr std::string_view kLimitSessionBytes = "session-bytes";
inline constexpr std::string_view kLimitSessionSeconds = "session-seconds";
inline constexpr std::string_view kLimitCommands = "commands";
inline constexpr std::string_view kLimitForwards = "forwards";
// Not configured: the process's RLIMIT_NOFILE (or the system's) ran out at accept().
inline constexpr std::string_view kLimitDescriptors = "descriptors";
inline constexpr std::string_view kPolicyRefuse = "refuse";
inline constexpr std::string_view kPolicyDisconnect = "disconnect";

class Admission {
 public:
  explicit Admission(const Limits& limits) : limits_(limits) {}

  struct Decision {
    bool admitted = false;
    std::string_view limit;  // which limit refused it (empty when admitted)
    bool report = false;     // the first refusal of an episode: write an event
  };

  // A new connection from `address` (its text form). Admitted ones must be release()d.
  Decision admit(const std::string& address);
  void release(const std::string& address);

  uint32_t open() const { return open_; }
  uint32_t open_from(const std::string& address) const;
  size_t addresses() const { return per_address_.size(); }
  uint64_t refused() const { return refused_; }

 private:
  struct PerAddress {
    uint32_t open = 0;
    bool over = false;  // an episode is on: refusals are counted, not reported
  };
  Limits limits_;
  uint32_t open_ = 0;
  bool total_over_ = false;
  uint64_t refused_ = 0;
  // Only addresses with an open connection or an episode on: bounded by sessions.
  std::unordered_map<std::string, PerAddress> per_address_;
};

}  // namespace mamori::honeypot
