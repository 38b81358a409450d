#include "agent/ban/hook/hook_backend.h"

#include <cerrno>

#include "agent/exec/run_command.h"

namespace mamori::ban {
namespace {

const char* family(const IpAddress& ip) { return ip.v4 ? "ipv4" : "ipv6"; }

}  // namespace

Status HookBackend::call(const nlohmann::json& input, std::vector<std::string> env) {
  // An event may carry bytes from an attacker's request: replaced, never thrown on.
  const std::string line =
      input.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const auto r = exec::run_command(argv_, line, env, timeout_);
  if (r.succeeded()) return ok();
  return fail("ban hook " + input.value("op", std::string()), r.argv0, 0, r.describe());
}

Status HookBackend::ban(const IpAddress& ip, std::chrono::seconds ttl,
                        const nlohmann::json& event) {
  const std::string text = ip.to_string();
  return call({{"op", "ban"},
               {"ip", text},
               {"family", family(ip)},
               {"ttl_s", ttl.count()},
               {"event", event}},
              {"MAMORI_BAN_OP=ban", "MAMORI_BAN_IP=" + text,
               "MAMORI_BAN_TTL=" + std::to_string(ttl.count())});
}

Status HookBackend::unban(const IpAddress& ip, const nlohmann::json& event) {
  const std::string text = ip.to_string();
  return call({{"op", "unban"}, {"ip", text}, {"family", family(ip)}, {"event", event}},
              {"MAMORI_BAN_OP=unban", "MAMORI_BAN_IP=" + text, "MAMORI_BAN_TTL="});
}

Result<std::vector<AppliedBan>> HookBackend::list() {
  return fail("ban hook list", argv_.empty() ? "" : argv_[0], ENOTSUP,
              "a hook cannot be asked what it holds; the ban list is the record");
}

Status HookBackend::sync(const std::vector<AppliedBan>& bans) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  auto all = nlohmann::json::array();
  for (const auto& b : bans) {
    if (b.expires_at != 0 && b.expires_at <= now) continue;
    if (b.prefix) continue;  // the hook protocol has no networks (ban_prefix: ENOTSUP)
    all.push_back({{"ip", b.ip.to_string()},
                   {"family", family(b.ip)},
                   {"ttl_s", b.expires_at == 0 ? 0 : b.expires_at - now}});
  }
  return call({{"op", "sync"}, {"bans", std::move(all)}},
              {"MAMORI_BAN_OP=sync", "MAMORI_BAN_IP=", "MAMORI_BAN_TTL="});
}

}  // namespace mamori::ban
