#include "manager/server/fleet.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/logparse/ip.h"
#include "core/proto/actions.h"
#include "core/proto/control.h"
#include "manager/db/event_columns.h"
#include "manager/server/agent_channel.h"
#include "manager/server/fleet_orders.h"
#include "manager/server/hub.h"

namespace mamori::manager {
namespace {

namespace ch = proto::channel;
using nlohmann::json;

constexpr int64_t kNsPerS = 1'000'000'000;
// Rows read per store call while delivering.
constexpr int64_t kReadBatch = 1000;
// The most active bans sent at one hello (10 commands of kBanBatch).
constexpr int64_t kMaxHelloBans = 10000;
// An agent's refused bans are reported at most this often.
constexpr int64_t kRefusalReportNs = 60 * kNsPerS;

json ban_request(std::vector<std::string> addresses, int64_t ttl_s, std::string reason,
                 std::string origin) {
  return proto::to_json(proto::Request{
      proto::kVersion,
      proto::BanRequest{std::move(addresses), ttl_s, std::move(reason), std::move(origin)}});
}

int64_t remaining_s(int64_t expires_at_ns, int64_t now_ns) {
  if (expires_at_ns == 0) return 0;  // permanent
  return std::max<int64_t>(1, (expires_at_ns - now_ns + kNsPerS - 1) / kNsPerS);
}

}  // namespace

Fleet::Fleet(Hub& hub, boost::asio::io_context& io)
    : hub_(hub), never_ban_(never_ban_networks(hub.m())), timer_(io) {}

void Fleet::start() {
  if (auto v = hub_.store().change_counter()) change_counter_ = *v;
  wake();
  poll();
}

void Fleet::stop() {
  stopped_ = true;
  timer_.cancel();
  report_refusals(hub_.now_ns(), true);
}

void Fleet::poll() {
  if (stopped_) return;
  timer_.expires_after(kPollInterval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    auto v = hub_.store().change_counter();
    if (!v) {
      log_line("fleet: " + v.error().message());
    } else if (*v != change_counter_) {
      change_counter_ = *v;
      wake();
    }
    report_refusals(hub_.now_ns(), false);
    poll();
  });
}

bool Fleet::spend(const std::string& agent_key, int64_t now_ns) {
  const double per_hour = hub_.m().max_agent_bans_per_hour;
  if (per_hour == 0) return false;
  auto [it, fresh] = budgets_.try_emplace(agent_key, Budget{per_hour, now_ns});
  Budget& b = it->second;
  const double refill = static_cast<double>(now_ns - b.at_ns) * per_hour / (3600.0 * kNsPerS);
  b.bans = std::min(per_hour, b.bans + std::max(0.0, refill));
  b.at_ns = now_ns;
  if (b.bans < 1) return false;
  b.bans -= 1;
  return true;
}

void Fleet::refuse(const AgentRow& agent, const std::string& address, bool never_ban) {
  auto [it, fresh] = refused_.try_emplace(agent.agent_key, Refused{agent, address});
  Refused& r = it->second;
  if (!r.never_ban && !r.over_budget) r.first_address = address;
  r.agent = agent;
  ++(never_ban ? r.never_ban : r.over_budget);
}

void Fleet::report_refusals(int64_t now_ns, bool all) {
  for (auto it = refused_.begin(); it != refused_.end();) {
    Refused& r = it->second;
    const bool pending = r.never_ban || r.over_budget;
    const bool due = all || !r.reported_ns || now_ns - r.reported_ns >= kRefusalReportNs;
    if (!pending && due) {  // quiet for a minute: forgotten
      it = refused_.erase(it);
      continue;
    }
    if (pending && due) {
      hub_.report(proto::action::kFleetBanRefused, event::Severity::kWarning,
                  fmt::format("agent {} ({}): {} ban(s) not pushed to the fleet: {} in [manager] "
                              "never_ban, {} beyond max_agent_bans_per_hour ({}); first {}",
                              r.agent.info.name, r.agent.info.hostname, r.never_ban + r.over_budget,
                              r.never_ban, r.over_budget, hub_.m().max_agent_bans_per_hour,
                              r.first_address),
                  &r.agent, "", [&](event::Event& e) {
                    e.set("source.ip", r.first_address)
                        .set("mamori.ban.refused_never_ban", static_cast<int64_t>(r.never_ban))
                        .set("mamori.ban.refused_over_budget", static_cast<int64_t>(r.over_budget));
                  });
      r.never_ban = r.over_budget = 0;
      r.reported_ns = now_ns;
    }
    ++it;
  }
}

void Fleet::command(const std::string& agent_key, AgentChannel* channel, const json& request) {
  NewCommand c{new_uuid(), agent_key, request.dump(), hub_.now_ns()};
  if (auto id = hub_.store().add_command(c); !id) return log_line("fleet: " + id.error().message());
  if (!channel) return;
  channel->deliver(ch::Command{c.command_id, request});
  if (auto s = hub_.store().mark_command_sent(c.command_id, hub_.now_ns()); !s)
    log_line("fleet: " + s.error().message());
}

void Fleet::on_events(const AgentRow& agent, const EventBatch& events) {
  const int64_t now = hub_.now_ns();
  // The new addresses, by (ttl, reason): usually one group, one command per agent.
  std::map<std::pair<int64_t, std::string>, std::vector<std::string>> groups;
  for (const auto& row : events.rows) {
    if (row.action != proto::action::kIpBanned) continue;
    const json e = json::parse(row.json, nullptr, false);
    if (string_at(e, {"event", "outcome"}) != "success") continue;
    // Pushed by the manager (fleet control): not this agent's decision. A prefix ban is
    // this agent's escalation over its own offenders; the others decide their own.
    if (json_at(e, {"mamori", "ban", "origin"}) || json_at(e, {"mamori", "ban", "prefix"}))
      continue;
    auto ip = logparse::IpAddress::parse(string_at(e, {"source", "ip"}));
    if (!ip) continue;
    const json* ttl = json_at(e, {"mamori", "ban", "ttl_s"});
    const int64_t ttl_s =
        ttl && ttl->is_number_integer() ? std::max<int64_t>(0, ttl->get<int64_t>()) : 0;
    // From when the agent decided (a batch sent again, or dropped while the writer was
    // behind and then resent, is the same ban, not a longer one), never from the future.
    const int64_t decided = row.time_ns > 0 ? std::min(row.time_ns, now) : now;
    const int64_t expires = ttl_s ? decided + ttl_s * kNsPerS : 0;
    if (expires && expires <= now) continue;  // over on the deciding agent too
    const std::string address = ip->to_string();
    if (logparse::find_network(never_ban_, *ip)) {
      refuse(agent, address, true);
      continue;
    }
    auto held = hub_.store().find_active_ban(address, now);
    if (!held) {
      log_line("fleet: " + held.error().message());
      continue;
    }
    // Held already, at least as long: every agent has it (or gets it at its hello).
    if (*held && ((*held)->expires_at_ns == 0 || (expires && (*held)->expires_at_ns >= expires)))
      continue;
    if (!spend(agent.agent_key, now)) {
      refuse(agent, address, false);
      continue;
    }
    std::string reason = string_at(e, {"event", "reason"}).substr(0, proto::kMaxBanTextLength);
    auto id = hub_.store().add_ban({address, expires, reason, agent.agent_key, now, true});
    if (!id) {
      log_line("fleet: " + id.error().message());
      continue;
    }
    groups[{ttl_s, reason}].push_back(address);
  }
  report_refusals(now, false);
  if (groups.empty()) return;
  std::vector<json> requests;
  for (const auto& [group, list] : groups)
    for (size_t i = 0; i < list.size(); i += kBanBatch)
      requests.push_back(
          ban_request({list.begin() + i, list.begin() + std::min(list.size(), i + kBanBatch)},
                      group.first, group.second, agent.agent_key));
  // Recorded for the whole fleet in one transaction, then sent: one commit, not two per
  // agent, between the decision and the last agent's nftables set.
  std::vector<std::shared_ptr<AgentChannel>> channels;
  std::vector<NewCommand> commands;
  for (auto& [key, c] : hub_.live_channels()) {
    if (key == agent.agent_key || !c->ready()) continue;
    for (const json& r : requests) commands.push_back({new_uuid(), key, r.dump(), now});
    channels.push_back(std::move(c));
  }
  // A failed record is no reason to keep the ban from the fleet.
  if (auto st = hub_.store().add_sent_commands(commands, now); !st)
    log_line("fleet: " + st.error().message());
  for (size_t i = 0; i < commands.size(); ++i)
    channels[i / requests.size()]->deliver(
        ch::Command{commands[i].command_id, requests[i % requests.size()]});
  const size_t agents = channels.size();
  size_t addresses = 0;
  for (const auto& [group, list] : groups) addresses += list.size();
  log_line(fmt::format("fleet: {} ban(s) decided by agent {} pushed to {} live agent(s)", addresses,
                       agent.agent_key, agents));
}

void Fleet::on_hello(AgentChannel& channel, const std::string& agent_key) {
  const int64_t now = hub_.now_ns();
  auto pending = hub_.store().unanswered_commands(agent_key, kReadBatch);
  if (!pending) return log_line("fleet: " + pending.error().message());
  for (const auto& row : *pending) {
    json request = json::parse(row.request_json, nullptr, false);
    channel.deliver(ch::Command{row.command_id, request});
    if (auto s = hub_.store().mark_command_sent(row.command_id, now); !s)
      log_line("fleet: " + s.error().message());
  }
  auto bans = hub_.store().active_bans(now, kMaxHelloBans);
  if (!bans) return log_line("fleet: " + bans.error().message());
  std::erase_if(*bans, [&](const BanRow& b) { return b.origin == agent_key; });
  if (bans->empty()) return;
  // Batches of close expiries (within a minute, or 5 % of what is left): each batch is
  // one command with the longest of its TTLs. Permanent bans last, together.
  std::sort(bans->begin(), bans->end(), [](const BanRow& a, const BanRow& b) {
    const auto key = [](const BanRow& r) { return r.expires_at_ns ? r.expires_at_ns : INT64_MAX; };
    return key(a) < key(b);
  });
  size_t i = 0, commands = 0;
  while (i < bans->size()) {
    const BanRow& first = (*bans)[i];
    const int64_t slack = std::max<int64_t>(60 * kNsPerS, (first.expires_at_ns - now) / 20);
    std::vector<std::string> addresses;
    std::string reason = first.reason;
    int64_t last_expiry = first.expires_at_ns;
    size_t j = i;
    for (; j < bans->size() && addresses.size() < kBanBatch; ++j) {
      const BanRow& b = (*bans)[j];
      if ((b.expires_at_ns == 0) != (first.expires_at_ns == 0)) break;
      if (first.expires_at_ns && b.expires_at_ns - first.expires_at_ns > slack) break;
      addresses.push_back(b.address);
      last_expiry = b.expires_at_ns;
      if (b.reason != reason) reason = "fleet bans";
    }
    command(agent_key, &channel,
            ban_request(std::move(addresses), remaining_s(last_expiry, now), reason, "manager"));
    ++commands;
    i = j;
  }
  log_line(fmt::format("fleet: agent {} said hello: {} active ban(s) sent in {} command(s)",
                       agent_key, bans->size(), commands));
}

void Fleet::on_result(const std::string& agent_key, const ch::CommandResult& r) {
  const json& a = r.answer;
  CommandState state = CommandState::kFailed;
  if (a.is_object() && a.contains("ok") && a["ok"].is_boolean() && a["ok"].get<bool>()) {
    const json* refused = json_at(a, {"refused"});
    state = refused && refused->is_array() && !refused->empty() ? CommandState::kRefused
                                                                : CommandState::kOk;
  }
  auto known = hub_.store().record_answer(agent_key, r.command_id, a.dump(), state, hub_.now_ns());
  if (!known) return log_line("fleet: " + known.error().message());
  if (!*known || state != CommandState::kOk)
    log_line(fmt::format("agent {}: command {} answered {}", agent_key, r.command_id,
                         a.dump().substr(0, 200)));
}

void Fleet::push(const BanRow& ban, bool lift) {
  const int64_t now = hub_.now_ns();
  const json request = lift ? proto::to_json(proto::Request{
                                  proto::kVersion, proto::UnbanRequest{{ban.address}, "manager"}})
                            : ban_request({ban.address}, remaining_s(ban.expires_at_ns, now),
                                          ban.reason, ban.origin);
  for (const auto& [key, c] : hub_.live_channels()) {
    // A lift reaches the deciding agent too: it holds the ban.
    if ((!lift && key == ban.origin) || !c->ready()) continue;
    command(key, c.get(), request);
  }
}

void Fleet::wake() {
  const int64_t now = hub_.now_ns();
  // Bans and lifts written by `mamori manager ban/unban`.
  while (true) {
    auto todo = hub_.store().unpushed_bans(kReadBatch);
    if (!todo) return log_line("fleet: " + todo.error().message());
    for (const auto& b : *todo) {
      const bool expired = b.expires_at_ns && b.expires_at_ns <= now;
      if (!b.pushed && !b.lifted_at_ns && !expired) push(b, false);
      if (b.lifted_at_ns && !b.lift_pushed) push(b, true);
      if (!b.pushed)
        if (auto s = hub_.store().mark_ban_pushed(b.id, false); !s)
          return log_line("fleet: " + s.error().message());
      if (b.lifted_at_ns && !b.lift_pushed)
        if (auto s = hub_.store().mark_ban_pushed(b.id, true); !s)
          return log_line("fleet: " + s.error().message());
    }
    if (static_cast<int64_t>(todo->size()) < kReadBatch) break;
  }
  // Commands written by `mamori manager command`: the live agents' now, the others' at
  // their hello.
  while (true) {
    auto rows = hub_.store().list_commands(last_command_id_, std::nullopt, kReadBatch);
    if (!rows) return log_line("fleet: " + rows.error().message());
    for (const auto& row : *rows) {
      last_command_id_ = row.id;
      if (row.state != CommandState::kPending) continue;
      auto c = hub_.live(row.agent_key);
      if (!c || !c->ready()) continue;
      c->deliver(ch::Command{row.command_id, json::parse(row.request_json, nullptr, false)});
      if (auto s = hub_.store().mark_command_sent(row.command_id, now); !s)
        log_line("fleet: " + s.error().message());
    }
    if (static_cast<int64_t>(rows->size()) < kReadBatch) break;
  }
}

}  // namespace mamori::manager
