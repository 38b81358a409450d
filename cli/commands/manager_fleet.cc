#include "cli/commands/manager_fleet.h"

#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "cli/commands/command.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/logparse/ip.h"
#include "core/proto/control.h"
#include "manager/db/store.h"
#include "manager/server/hub.h"

namespace mamori::cli {
namespace {

using manager::CommandRow;
using manager::CommandState;
using manager::Store;
using nlohmann::json;

constexpr int64_t kNsPerS = 1'000'000'000;
// How often --wait reads the answers.
constexpr auto kWaitPoll = std::chrono::milliseconds(100);

Result<std::unique_ptr<Store>> open_store(App& app) {
  const auto& m = app.config().manager;
  MAMORI_TRY(fs::make_private_dir(m.state_dir));
  return manager::open_store(app.env(), m.database);
}

// The one ADDRESS argument, as the agents will read it ("192.0.2.7", "2001:db8::1").
std::optional<std::string> one_address(App& app, const std::string& command,
                                       const std::vector<std::string>& args, int& code) {
  if (args.size() != 1) {
    code = app.report(Error{command, "", 0, "give exactly one IP address"}, kExitUsage);
    return std::nullopt;
  }
  auto ip = logparse::IpAddress::parse(args[0]);
  if (!ip) {
    code = app.report(Error{command, args[0], 0, "is not an IPv4 or IPv6 address"}, kExitUsage);
    return std::nullopt;
  }
  return ip->to_string();
}

std::optional<int64_t> ttl_of(App& app, const std::string& command, const FleetOptions& o,
                              int& code) {
  if (o.ttl.empty()) return 0;  // permanent
  auto s = parse_duration(o.ttl);
  if (!s)
    code = app.report(Error{command, o.ttl, 0, "--ttl takes a duration: 600, 30m, 12h, 7d"},
                      kExitUsage);
  return s;
}

std::string expiry(int64_t expires_at_ns) {
  return expires_at_ns ? format_time_ns(expires_at_ns) : "never";
}

}  // namespace

int fleet_ban(App& app, const FleetOptions& o) {
  int code = kExitOk;
  auto address = one_address(app, "manager ban", o.args, code);
  if (!address) return code;
  auto ttl = ttl_of(app, "manager ban", o, code);
  if (!ttl) return code;
  if (o.reason.size() > proto::kMaxBanTextLength)
    return app.report(Error{"manager ban", "", 0, "--reason: at most 1024 characters"}, kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  const int64_t now = app.env().clock().now_ns();
  const int64_t expires = *ttl ? now + *ttl * kNsPerS : 0;
  const std::string reason = o.reason.empty() ? "mamori manager ban" : o.reason;
  auto id = (*store)->add_ban({*address, expires, reason, "manager", now, false});
  if (!id) return app.report(id.error(), kExitIncomplete);
  if (app.options().json)
    print_json({{"id", *id},
                {"address", *address},
                {"expires_at", expires ? json(format_time_ns(expires)) : json()},
                {"reason", reason}});
  else if (!app.options().quiet)
    std::printf(
        "%s banned fleet-wide (ban %lld, expires %s); the running manager pushes it to "
        "every agent\n",
        address->c_str(), static_cast<long long>(*id), expiry(expires).c_str());
  return kExitOk;
}

int fleet_unban(App& app, const FleetOptions& o) {
  int code = kExitOk;
  auto address = one_address(app, "manager unban", o.args, code);
  if (!address) return code;
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto n = (*store)->lift_bans(*address, app.env().clock().now_ns());
  if (!n) return app.report(n.error(), kExitIncomplete);
  if (app.options().json)
    print_json({{"address", *address}, {"lifted", *n}});
  else if (!app.options().quiet)
    std::printf(*n ? "%s unbanned fleet-wide; the running manager lifts it on every agent\n"
                   : "%s is not banned by the fleet\n",
                address->c_str());
  return kExitOk;
}

int fleet_bans(App& app) {
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto bans = (*store)->active_bans(app.env().clock().now_ns(), 10000);
  if (!bans) return app.report(bans.error(), kExitIncomplete);
  if (app.options().json) {
    auto a = json::array();
    for (const auto& b : *bans)
      a.push_back({{"id", b.id},
                   {"address", b.address},
                   {"expires_at", b.expires_at_ns ? json(format_time_ns(b.expires_at_ns)) : json()},
                   {"origin", b.origin},
                   {"reason", b.reason},
                   {"created_at", format_time_ns(b.created_at_ns)},
                   {"pushed", b.pushed}});
    print_json({{"bans", a}, {"count", bans->size()}});
    return kExitOk;
  }
  std::printf("%-6s  %-39s  %-30s  %-36s  %s\n", "ID", "ADDRESS", "EXPIRES", "ORIGIN", "REASON");
  for (const auto& b : *bans)
    std::printf("%-6lld  %-39s  %-30s  %-36s  %s\n", static_cast<long long>(b.id),
                b.address.c_str(), expiry(b.expires_at_ns).c_str(), escape(b.origin).c_str(),
                escape(b.reason).c_str());
  return kExitOk;
}

namespace {

// The control-protocol request of `command ACTION ARGS...`.
tl::expected<proto::Request, std::string> request_of(const FleetOptions& o, int64_t ttl_s) {
  const auto& a = o.args;
  if (a.empty())
    return tl::unexpected(std::string("give a command: verify, mode, heal-clear, ban or unban"));
  const std::string& what = a[0];
  auto arity = [&](size_t n, const char* usage) -> std::optional<std::string> {
    if (a.size() != n + 1) return std::string(usage);
    return std::nullopt;
  };
  if (what == "verify") {
    if (auto e = arity(0, "verify takes no arguments")) return tl::unexpected(*e);
    return proto::Request{proto::kVersion, proto::VerifyRequest{}};
  }
  if (what == "mode") {
    if (auto e = arity(2, "mode ROOT MODE (ROOT \"*\": every root)")) return tl::unexpected(*e);
    auto mode = config::parse_mode(a[2]);
    if (!mode) return tl::unexpected(std::string("MODE is alert, restore or preserve"));
    proto::Roots roots;
    if (a[1] != "*") roots.paths.push_back(a[1]);
    return proto::Request{proto::kVersion, proto::ModeRequest{roots, *mode}};
  }
  if (what == "heal-clear") {
    if (auto e = arity(0, "heal-clear takes no arguments")) return tl::unexpected(*e);
    return proto::Request{proto::kVersion, proto::HealRequest{proto::HealAction::kClear,
                                                              "mamori manager command", ""}};
  }
  if (what == "ban" || what == "unban") {
    if (auto e = arity(1, "ban ADDRESS / unban ADDRESS")) return tl::unexpected(*e);
    auto ip = logparse::IpAddress::parse(a[1]);
    if (!ip) return tl::unexpected(quote(a[1]) + " is not an IPv4 or IPv6 address");
    if (what == "unban")
      return proto::Request{proto::kVersion, proto::UnbanRequest{{ip->to_string()}, "manager"}};
    return proto::Request{proto::kVersion,
                          proto::BanRequest{{ip->to_string()},
                                            ttl_s,
                                            o.reason.empty() ? "mamori manager command" : o.reason,
                                            "manager"}};
  }
  return tl::unexpected(quote(what) + " is not a command: verify, mode, heal-clear, ban, unban");
}

std::string summary(const CommandRow& r) {
  json a = json::parse(r.answer_json, nullptr, false);
  if (r.state == CommandState::kFailed) {
    if (a.is_object() && a.contains("error") && a["error"].is_object() &&
        a["error"].contains("message"))
      return a["error"]["message"].dump();
    return a.dump().substr(0, 200);
  }
  if (r.state == CommandState::kRefused && a.contains("refused")) {
    std::string out;
    for (const auto& x : a["refused"])
      out += (out.empty() ? "" : "; ") + x.value("address", "") + ": " + x.value("message", "");
    return "refused " + out;
  }
  return "";
}

}  // namespace

int fleet_command(App& app, const FleetOptions& o) {
  const int chosen = (o.agent.empty() ? 0 : 1) + (o.group.empty() ? 0 : 1) + (o.all ? 1 : 0);
  if (chosen != 1)
    return app.report(
        Error{"manager command", "", 0, "give one of --agent KEY, --group NAME, --all"},
        kExitUsage);
  int code = kExitOk;
  auto ttl = ttl_of(app, "manager command", o, code);
  if (!ttl) return code;
  auto timeout = parse_duration(o.timeout);
  if (!timeout)
    return app.report(Error{"manager command", o.timeout, 0, "--timeout takes a duration: 30, 2m"},
                      kExitUsage);
  auto request = request_of(o, *ttl);
  if (!request) return app.report(Error{"manager command", "", 0, request.error()}, kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto agents = (*store)->list_agents();
  if (!agents) return app.report(agents.error(), kExitIncomplete);
  std::map<std::string, std::string> names;  // agent_key → name
  for (const auto& a : *agents) {
    // A revoked agent is refused; a retired one's node is gone (churn): a fleet command
    // for it would wait forever. By key, a retired agent may be asked all the same.
    if (a.status == manager::AgentStatus::kRevoked) continue;
    if (a.status == manager::AgentStatus::kRetired && a.agent_key != o.agent) continue;
    if (o.all || a.agent_key == o.agent || (!o.group.empty() && a.group == o.group))
      names[a.agent_key] = a.info.name;
  }
  if (names.empty())
    return app.report(Error{"manager command", o.agent.empty() ? o.group : o.agent, ENOENT,
                            "no such agent (or group): see mamori manager agents"},
                      kExitUsage);
  const std::string text = proto::to_json(*request).dump();
  const int64_t now = app.env().clock().now_ns();
  std::map<int64_t, std::string> ids;  // command row id → agent_key
  for (const auto& [key, name] : names) {
    auto id = (*store)->add_command({manager::new_uuid(), key, text, now});
    if (!id) return app.report(id.error(), kExitIncomplete);
    ids[*id] = key;
  }
  if (!o.wait) {
    if (app.options().json) {
      auto a = json::array();
      for (const auto& [id, key] : ids) a.push_back({{"id", id}, {"agent_key", key}});
      print_json({{"commands", a}, {"count", ids.size()}});
    } else if (!app.options().quiet) {
      std::printf(
          "%s queued for %zu agent(s); delivered now to those connected, at their next "
          "hello to the others\n",
          std::string(proto::command_name(request->command())).c_str(), ids.size());
    }
    return kExitOk;
  }
  // --wait: each answer as it is stored, until all are in or the timeout.
  const auto deadline = app.env().clock().monotonic() + std::chrono::seconds(*timeout);
  std::map<int64_t, CommandRow> done;
  auto results = json::array();
  while (done.size() < ids.size() && app.env().clock().monotonic() < deadline) {
    for (const auto& [id, key] : ids) {
      if (done.count(id)) continue;
      auto row = (*store)->find_command(id);
      if (!row) return app.report(row.error(), kExitIncomplete);
      if (!*row || (*row)->answered_at_ns == 0) continue;
      const CommandRow& r = **row;
      if (app.options().json)
        results.push_back({{"id", id},
                           {"agent_key", key},
                           {"name", names[key]},
                           {"state", std::string(manager::to_string(r.state))},
                           {"answer", json::parse(r.answer_json, nullptr, false)}});
      else
        std::printf("%-20s  %s  %s %s\n", escape(names[key]).c_str(), key.c_str(),
                    std::string(manager::to_string(r.state)).c_str(), escape(summary(r)).c_str());
      std::fflush(stdout);
      done.emplace(id, r);
    }
    if (done.size() < ids.size()) app.env().clock().wait(kWaitPoll);
  }
  bool all_ok = done.size() == ids.size();
  for (const auto& [id, r] : done) all_ok = all_ok && r.state == CommandState::kOk;
  for (const auto& [id, key] : ids) {
    if (done.count(id)) continue;
    if (app.options().json)
      results.push_back(
          {{"id", id}, {"agent_key", key}, {"name", names[key]}, {"state", "timeout"}});
    else
      std::printf("%-20s  %s  no answer within %s (delivered at its next hello)\n",
                  escape(names[key]).c_str(), key.c_str(), o.timeout.c_str());
  }
  if (app.options().json) print_json({{"results", results}, {"ok", all_ok}});
  return all_ok ? kExitOk : kExitIncomplete;
}

}  // namespace mamori::cli
