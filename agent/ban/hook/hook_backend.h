#pragma once
// Bans applied by the administrator's command: for a cloud network ACL (AWS, GCP, ...) or
// any firewall mamori has no backend for. docs/bans.md has the protocol and an AWS
// Network ACL example.
//
// Each call runs the command once (exec::run_command: an argv, its own process group,
// SIGTERM at the timeout, output kept up to 4 KiB) with one JSON line on stdin:
//   {"op":"ban","ip":"192.0.2.7","family":"ipv4","ttl_s":600,"event":{...}}
//   {"op":"unban","ip":"192.0.2.7","family":"ipv4","event":{...}}
//   {"op":"sync","bans":[{"ip":"192.0.2.7","family":"ipv4","ttl_s":540},...]}
// ttl_s 0 is a permanent ban. The command also gets MAMORI_BAN_OP, MAMORI_BAN_IP and
// MAMORI_BAN_TTL in its environment. Exit 0 is success; anything else fails the call
// with the command's output in the error.
//
// The command cannot be asked what it holds (list() is ENOTSUP) and has no timeouts of
// its own: the agent unbans what BanList::expire() returns.
//
// Threads: any; each call blocks its caller until the command ends (at most the timeout
// plus exec::kKillGrace). Calls may run at the same time.

#include <chrono>
#include <string>
#include <vector>

#include "agent/ban/backend.h"
#include "core/base/env.h"

namespace mamori::ban {

class HookBackend final : public BanBackend {
 public:
  // `argv` must not be empty; argv[0] is a path (no PATH search).
  HookBackend(std::vector<std::string> argv, std::chrono::milliseconds timeout, const Clock& clock)
      : argv_(std::move(argv)), timeout_(timeout), clock_(clock) {}

  Status ban(const IpAddress& ip, std::chrono::seconds ttl, const nlohmann::json& event) override;
  Status unban(const IpAddress& ip, const nlohmann::json& event) override;
  Result<std::vector<AppliedBan>> list() override;
  Status sync(const std::vector<AppliedBan>& bans) override;
  std::string_view name() const override { return "hook"; }

 private:
  Status call(const nlohmann::json& input, std::vector<std::string> env);

  const std::vector<std::string> argv_;
  const std::chrono::milliseconds timeout_;
  const Clock& clock_;
};

}  // namespace mamori::ban
