#pragma once
// Bans in this host's firewall, through libnftables. mamori owns one table and touches
// nothing else:
//
//   table inet mamori {
//     set banned4 { type ipv4_addr; flags timeout; }
//     set banned6 { type ipv6_addr; flags timeout; }
//     set banned4net { type ipv4_addr; flags interval, timeout; }   prefix bans
//     set banned6net { type ipv6_addr; flags interval, timeout; }
//     chain prerouting {
//       type filter hook prerouting priority raw; policy accept;
//       ip saddr @banned4 counter drop
//       ip6 saddr @banned6 counter drop
//       ip saddr @banned4net counter drop
//       ip6 saddr @banned6net counter drop
//     }
// Networks have sets of their own (an interval set) so that a table made by an older
// mamori, whose address sets have no interval flag, keeps working unchanged.
//   }
//
// Prerouting at raw priority (-300) sees every packet from a banned address before
// conntrack and before any accept of the host's own rules (an accept elsewhere does not
// undo a drop here): established connections are cut too, traffic forwarded to
// containers is covered, and a banned flood creates no conntrack entries. Each element
// carries its own timeout, so the kernel lifts a ban on time even if mamori is down.
// docs/bans.md.
//
// Threads: any; calls are serialised (an nft context is not thread-safe).

#include <memory>
#include <string>

#include "agent/ban/backend.h"
#include "core/base/env.h"
#include "core/base/mutex.h"

struct nft_ctx;

namespace mamori::ban {

class NftablesBackend final : public BanBackend {
 public:
  // Creates the table, sets and chain if missing and replaces the chain's rules, in one
  // transaction (so starting twice leaves one copy of each rule, and the sets' elements
  // are kept). `table`: letters, digits and '_', at most 32. Needs CAP_NET_ADMIN.
  static Result<std::unique_ptr<NftablesBackend>> open(const std::string& table,
                                                       const Clock& clock);
  ~NftablesBackend() override;

  Status ban(const IpAddress& ip, std::chrono::seconds ttl, const nlohmann::json& event) override;
  Status unban(const IpAddress& ip, const nlohmann::json& event) override;
  Status ban_prefix(const Cidr& network, std::chrono::seconds ttl,
                    const nlohmann::json& event) override;
  Status unban_prefix(const Cidr& network, const nlohmann::json& event) override;
  Result<std::vector<AppliedBan>> list() override;
  Status sync(const std::vector<AppliedBan>& bans) override;
  std::string_view name() const override { return "nftables"; }

  // Runs nft commands in this backend's context (tests: to inspect or to inject).
  Result<std::string> run_for_test(const std::string& commands, bool json = false) {
    return run(commands, json);
  }

 private:
  NftablesBackend(nft_ctx* ctx, std::string table, const Clock& clock)
      : ctx_(ctx), table_(std::move(table)), clock_(clock) {}
  // One batch (one kernel transaction); returns what nft printed.
  Result<std::string> run(const std::string& commands, bool json = false) MAMORI_EXCLUDES(mu_);
  std::string set_of(const IpAddress& ip) const;
  std::string net_set_of(const Cidr& network) const;

  Mutex mu_;
  nft_ctx* const ctx_ MAMORI_GUARDED_BY(mu_);  // owned; every use of it is serialised
  const std::string table_;
  const Clock& clock_;
};

}  // namespace mamori::ban
