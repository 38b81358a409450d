#include "cli/commands/manager_fleet.h"

#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "cli/commands/command.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/proto/control.h"
#include "manager/db/store.h"
#include "manager/server/fleet_orders.h"

namespace mamori::cli {
namespace {

using manager::CommandRow;
using manager::CommandState;
using manager::Store;
using nlohmann::json;

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
  auto address = manager::canonical_address(args[0]);
  if (!address) {
    code = app.report(Error{command, "", 0, address.error()}, kExitUsage);
    return std::nullopt;
  }
  return *address;
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
  if (o.args.size() != 1)
    return app.report(Error{"manager ban", "", 0, "give exactly one IP address"}, kExitUsage);
  auto ttl = ttl_of(app, "manager ban", o, code);
  if (!ttl) return code;
  const int64_t now = app.env().clock().now_ns();
  auto ban =
      manager::check_ban({o.args[0], *ttl, o.reason.empty() ? "mamori manager ban" : o.reason},
                         manager::never_ban_networks(app.config().manager), now);
  if (!ban) return app.report(Error{"manager ban", "", 0, ban.error()}, kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto id = (*store)->add_ban(*ban);
  if (!id) return app.report(id.error(), kExitIncomplete);
  if (app.options().json)
    print_json(
        {{"id", *id},
         {"address", ban->address},
         {"expires_at", ban->expires_at_ns ? json(format_time_ns(ban->expires_at_ns)) : json()},
         {"reason", ban->reason}});
  else if (!app.options().quiet)
    std::printf(
        "%s banned fleet-wide (ban %lld, expires %s); the running manager pushes it to "
        "every agent\n",
        ban->address.c_str(), static_cast<long long>(*id), expiry(ban->expires_at_ns).c_str());
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
  // An evidence answer holds the contents (--json has them): say what it holds.
  if (auto e = proto::decode_evidence_answer(a)) {
    const json path = e->item.value("file", json::object()).value("path", json(""));
    return fmt::format("{}: {} kept{}; baseline content: {}",
                       path.is_string() ? path.get<std::string>() : "",
                       human_bytes(e->after.bytes.size()), e->after.complete ? "" : " (a prefix)",
                       e->before ? human_bytes(e->before->bytes.size()) : e->before_missing);
  }
  return "";
}

}  // namespace

int fleet_command(App& app, const FleetOptions& o) {
  const manager::CommandTargets targets{o.agent, o.group, o.all};
  if (auto t = manager::check_targets(targets); !t)
    return app.report(
        Error{"manager command", "", 0, "--agent KEY, --group NAME, --all: " + t.error()},
        kExitUsage);
  int code = kExitOk;
  auto ttl = ttl_of(app, "manager command", o, code);
  if (!ttl) return code;
  auto timeout = parse_duration(o.timeout);
  if (!timeout)
    return app.report(Error{"manager command", o.timeout, 0, "--timeout takes a duration: 30, 2m"},
                      kExitUsage);
  auto request = manager::command_request(o.args, *ttl, o.reason,
                                          manager::never_ban_networks(app.config().manager));
  if (!request) return app.report(Error{"manager command", "", 0, request.error()}, kExitUsage);
  if (auto t = manager::check_command_targets(*request, targets); !t)
    return app.report(Error{"manager command", "", 0, t.error()}, kExitUsage);
  auto store = open_store(app);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto found = manager::command_targets(**store, targets);
  if (!found) return app.report(found.error(), kExitIncomplete);
  std::map<std::string, std::string> names = std::move(*found);  // agent_key → name
  if (names.empty())
    return app.report(Error{"manager command", o.agent.empty() ? o.group : o.agent, ENOENT,
                            "no such agent (or group): see mamori manager agents"},
                      kExitUsage);
  auto queued = manager::queue_command(**store, names, *request, app.env().clock().now_ns());
  if (!queued) return app.report(queued.error(), kExitIncomplete);
  const std::map<int64_t, std::string> ids = std::move(*queued);  // row id → agent_key
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
