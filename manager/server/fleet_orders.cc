#include "manager/server/fleet_orders.h"

#include <charconv>

#include "core/base/quote.h"
#include "core/config/config.h"
#include "core/logparse/ip.h"
#include "manager/server/hub.h"

namespace mamori::manager {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
// Ten years: a longer ban is a permanent one, said so (ttl 0).
constexpr int64_t kMaxTtlS = 3660LL * 86400;

Checked<bool> check_ttl(int64_t ttl_s) {
  if (ttl_s < 0 || ttl_s > kMaxTtlS)
    return tl::unexpected(std::string("a ban lasts 1 s to 10 years, or 0 for ever"));
  return true;
}

// The address of a ban, canonical, or why it may not be banned.
Checked<std::string> bannable(std::string_view text, std::span<const logparse::Cidr> never_ban) {
  auto ip = logparse::IpAddress::parse(text);
  if (!ip) return tl::unexpected(quote(text) + " is not an IPv4 or IPv6 address");
  if (const auto* held = logparse::find_network(never_ban, *ip))
    return tl::unexpected(ip->to_string() + " is in " + held->to_string() +
                          ", which [manager] never_ban keeps from being banned");
  return ip->to_string();
}

std::optional<int64_t> evidence_id(const std::string& w) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), id);
  if (ec != std::errc() || end != w.data() + w.size() || id <= 0) return std::nullopt;
  return id;
}

}  // namespace

std::vector<logparse::Cidr> never_ban_networks(const config::ManagerConfig& m) {
  std::vector<logparse::Cidr> out;
  for (const auto& text : m.never_ban)
    if (auto cidr = logparse::Cidr::parse(text)) out.push_back(*cidr);
  return out;
}

Checked<std::string> canonical_address(std::string_view text) { return bannable(text, {}); }

Checked<NewBan> check_ban(const BanOrder& order, std::span<const logparse::Cidr> never_ban,
                          int64_t now_ns) {
  auto address = bannable(order.address, never_ban);
  if (!address) return tl::unexpected(address.error());
  if (auto ttl = check_ttl(order.ttl_s); !ttl) return tl::unexpected(ttl.error());
  if (order.reason.size() > proto::kMaxBanTextLength)
    return tl::unexpected(std::string("the reason is at most 1024 characters"));
  return NewBan{*address,     order.ttl_s ? now_ns + order.ttl_s * kNsPerS : 0,
                order.reason, "manager",
                now_ns,       false};
}

Checked<proto::Request> command_request(std::span<const std::string> words, int64_t ttl_s,
                                        std::string_view reason,
                                        std::span<const logparse::Cidr> never_ban) {
  if (words.empty())
    return tl::unexpected(
        std::string("give a command: verify, mode, heal-clear, ban, unban, evidence, site, accept "
                    "or restore"));
  const std::string& what = words[0];
  auto arity = [&](size_t n, const char* usage) -> std::optional<std::string> {
    if (words.size() != n + 1) return std::string(usage);
    return std::nullopt;
  };
  if (what == "verify") {
    if (auto e = arity(0, "verify takes no arguments")) return tl::unexpected(*e);
    return proto::Request{proto::kVersion, proto::VerifyRequest{}};
  }
  if (what == "mode") {
    if (auto e = arity(2, "mode ROOT MODE (ROOT \"*\": every root)")) return tl::unexpected(*e);
    auto mode = config::parse_mode(words[2]);
    if (!mode) return tl::unexpected(std::string("MODE is alert, restore or preserve"));
    proto::Roots roots;
    if (words[1] != "*") roots.paths.push_back(words[1]);
    return proto::Request{proto::kVersion, proto::ModeRequest{roots, *mode}};
  }
  if (what == "heal-clear") {
    if (auto e = arity(0, "heal-clear takes no arguments")) return tl::unexpected(*e);
    return proto::Request{proto::kVersion, proto::HealRequest{proto::HealAction::kClear,
                                                              "mamori manager command", ""}};
  }
  if (what == "ban" || what == "unban") {
    if (auto e = arity(1, "ban ADDRESS / unban ADDRESS")) return tl::unexpected(*e);
    // An unban is always allowed: it may lift a ban made before never_ban listed it.
    auto address = what == "unban" ? canonical_address(words[1]) : bannable(words[1], never_ban);
    if (!address) return tl::unexpected(address.error());
    if (what == "unban")
      return proto::Request{proto::kVersion, proto::UnbanRequest{{*address}, "manager"}};
    if (auto ttl = check_ttl(ttl_s); !ttl) return tl::unexpected(ttl.error());
    if (reason.size() > proto::kMaxBanTextLength)
      return tl::unexpected(std::string("the reason is at most 1024 characters"));
    return proto::Request{
        proto::kVersion,
        proto::BanRequest{{*address},
                          ttl_s,
                          reason.empty() ? "mamori manager command" : std::string(reason),
                          "manager"}};
  }
  if (what == "evidence") {
    if (auto e = arity(1, "evidence ID (an evidence id of that agent)")) return tl::unexpected(*e);
    auto id = evidence_id(words[1]);
    if (!id) return tl::unexpected(std::string("evidence ID: ID is a positive integer"));
    return proto::Request{proto::kVersion, proto::EvidenceRequest{*id}};
  }
  if (what == "accept" || what == "restore") {
    const bool accept = what == "accept";
    if (words.size() != 3 && !(accept && words.size() == 4))
      return tl::unexpected(
          std::string(accept ? "accept ROOT PATH [EVIDENCE_ID]" : "restore ROOT PATH"));
    // The agent checks the path as it checks any request's: encode, then decode here.
    nlohmann::json j = {
        {"v", proto::kVersion}, {"cmd", what}, {"root", words[1]}, {"path", words[2]}};
    if (words.size() == 4) {
      auto id = evidence_id(words[3]);
      if (!id) return tl::unexpected(std::string("accept: EVIDENCE_ID is a positive integer"));
      j["evidence"] = *id;
    }
    auto decoded = proto::decode_request(j);
    if (!decoded) return tl::unexpected(decoded.error().message);
    return *decoded;
  }
  if (what == "site") {
    if (auto e = arity(0, "site takes no arguments")) return tl::unexpected(*e);
    return proto::Request{proto::kVersion, proto::SiteRequest{}};
  }
  return tl::unexpected(quote(what) +
                        " is not a command: verify, mode, heal-clear, ban, unban, evidence, site, "
                        "accept, restore");
}

Checked<bool> check_targets(const CommandTargets& t) {
  const int chosen = (t.agent_key.empty() ? 0 : 1) + (t.group.empty() ? 0 : 1) + (t.all ? 1 : 0);
  if (chosen != 1) return tl::unexpected(std::string("give one of an agent, a group, or all"));
  return true;
}

Checked<bool> check_command_targets(const proto::Request& r, const CommandTargets& t) {
  if (std::holds_alternative<proto::EvidenceRequest>(r.body) && t.agent_key.empty())
    return tl::unexpected(std::string("evidence goes to one agent: its ids are its own"));
  if (std::holds_alternative<proto::AcceptRequest>(r.body) && t.agent_key.empty())
    return tl::unexpected(
        std::string("accept goes to one agent: a verdict on one incident, not a fleet's"));
  return true;
}

Result<std::map<std::string, std::string>> command_targets(Store& store, const CommandTargets& t) {
  std::map<std::string, std::string> out;
  for (const auto& a : MAMORI_TRY(store.list_agents())) {
    // A retired agent's node is gone (churn): a fleet command for it would wait for ever.
    if (a.status == AgentStatus::kRevoked) continue;
    if (a.status == AgentStatus::kRetired && a.agent_key != t.agent_key) continue;
    if (t.all || a.agent_key == t.agent_key || (!t.group.empty() && a.group == t.group))
      out[a.agent_key] = a.info.name;
  }
  return out;
}

Result<std::map<int64_t, std::string>> queue_command(
    Store& store, const std::map<std::string, std::string>& targets, const proto::Request& request,
    int64_t now_ns) {
  const std::string text = proto::to_json(request).dump();
  std::map<int64_t, std::string> ids;
  for (const auto& [key, name] : targets)
    ids[MAMORI_TRY(store.add_command({new_uuid(), key, text, now_ns}))] = key;
  return ids;
}

}  // namespace mamori::manager
