#pragma once
// Bans as the agent and `mamori bans` make them: decided and recorded by the ban list
// (ban_list.h), then applied by a backend (backend.h). The list is written first: if the
// backend fails, the ban stays recorded and the next sync() applies it.
//
// Threads: the owner's (the list's connection is not shared). Events are the caller's to
// emit; the ones passed in go to the backend (a hook gets them on stdin).

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/ban/backend.h"
#include "agent/ban/ban_list.h"
#include "core/base/env.h"

namespace mamori::ban {

// The backend `options` name, ready to use (nftables: its table is created; "none":
// one that applies nothing).
Result<std::unique_ptr<BanBackend>> open_backend(const BanOptions& options, const Clock& clock);

class Banner {
 public:
  // All three outlive the Banner.
  Banner(BanList& list, BanBackend& backend, const Clock& clock)
      : list_(list), backend_(backend), clock_(clock) {}

  // Decides and records, then applies (nothing to apply when already banned). An error
  // from the backend comes back after the ban was recorded.
  Result<BanDecision> ban(const IpAddress& ip, const BanRequest& request,
                          const nlohmann::json& event);
  // Removes from the list, then from the backend (whether or not the list had it, so a
  // stray firewall element can be lifted too). True when the list had it.
  Result<bool> unban(const IpAddress& ip, const nlohmann::json& event);

  struct Expired {
    std::vector<BanEntry> entries;  // removed from the list
    std::vector<Error> errors;      // lifting some of them failed in the backend
  };
  // Removes the expired bans and lifts them in the backend (a hook has no timeouts; for
  // nftables the kernel already dropped them and this is a no-op).
  Result<Expired> expire();
  // Applies the whole list again: at start-up, and after the firewall lost it.
  Status sync();

  int64_t now() const;

 private:
  BanList& list_;
  BanBackend& backend_;
  const Clock& clock_;
};

}  // namespace mamori::ban
