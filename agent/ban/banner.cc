#include "agent/ban/banner.h"

#include <cerrno>

#include <fmt/format.h>

#include "agent/ban/hook/hook_backend.h"
#include "agent/ban/nftables/nftables_backend.h"
#include "core/proto/actions.h"

namespace mamori::ban {
namespace {

// backend = "none": bans are decided and recorded (and reported as events) but applied
// nowhere; for a dry run in production, or where another tool reads STATE/bans.db.
class RecordOnlyBackend final : public BanBackend {
 public:
  Status ban(const IpAddress&, std::chrono::seconds, const nlohmann::json&) override {
    return ok();
  }
  Status unban(const IpAddress&, const nlohmann::json&) override { return ok(); }
  Status ban_prefix(const Cidr&, std::chrono::seconds, const nlohmann::json&) override {
    return ok();
  }
  Status unban_prefix(const Cidr&, const nlohmann::json&) override { return ok(); }
  Result<std::vector<AppliedBan>> list() override { return std::vector<AppliedBan>(); }
  Status sync(const std::vector<AppliedBan>&) override { return ok(); }
  std::string_view name() const override { return "none"; }
};

}  // namespace

Status BanBackend::ban_prefix(const Cidr& network, std::chrono::seconds, const nlohmann::json&) {
  return fail("ban", network.to_string(), ENOTSUP,
              fmt::format("the {} backend cannot ban a network", name()));
}

Status BanBackend::unban_prefix(const Cidr& network, const nlohmann::json&) {
  return fail("unban", network.to_string(), ENOTSUP,
              fmt::format("the {} backend cannot ban a network", name()));
}

Result<std::unique_ptr<BanBackend>> open_backend(const BanOptions& options, const Clock& clock) {
  if (options.backend == "nftables") {
    auto nft = MAMORI_TRY(NftablesBackend::open(options.nft_table, clock));
    return std::unique_ptr<BanBackend>(std::move(nft));
  }
  if (options.backend == "hook") {
    if (options.hook.empty())
      return fail("ban backend", "hook", EINVAL, "ban.hook must name the command to run");
    return std::unique_ptr<BanBackend>(std::make_unique<HookBackend>(
        options.hook, std::chrono::seconds(options.hook_timeout_s), clock));
  }
  if (options.backend == "none")
    return std::unique_ptr<BanBackend>(std::make_unique<RecordOnlyBackend>());
  return fail("ban backend", options.backend, EINVAL, "must be \"nftables\", \"hook\" or \"none\"");
}

int64_t Banner::now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
}

Result<BanDecision> Banner::ban(const IpAddress& ip, const BanRequest& request,
                                const nlohmann::json& event) {
  auto decision = MAMORI_TRY(list_.ban(ip, request, now()));
  if (decision.prefix_ban) {
    // Recorded either way; a failure here is the prefix's, reported with it, and the
    // next sync applies it.
    auto& p = *decision.prefix_ban;
    if (auto st = backend_.ban_prefix(p.entry.network(), p.ttl, event); !st)
      p.error = std::move(st).error();
  }
  if (decision.outcome != BanOutcome::kAlreadyBanned)
    MAMORI_TRY(backend_.ban(ip, decision.ttl, event));
  return decision;
}

Result<bool> Banner::unban(const IpAddress& ip, const nlohmann::json& event) {
  const bool had = MAMORI_TRY(list_.unban(ip));
  MAMORI_TRY(backend_.unban(ip, event));
  return had;
}

Result<Banner::Expired> Banner::expire() {
  Expired out;
  out.entries = MAMORI_TRY(list_.expire(now()));
  for (const auto& e : out.entries) {
    nlohmann::json event = {{"event", {{"action", proto::action::kBanExpired}}},
                            {"source", {{"ip", e.ip.to_string()}}},
                            {"rule", {{"name", e.rule}}}};
    if (e.is_prefix()) event["mamori"] = {{"ban", {{"prefix", e.key()}}}};
    if (auto st =
            e.is_prefix() ? backend_.unban_prefix(e.network(), event) : backend_.unban(e.ip, event);
        !st)
      out.errors.push_back(std::move(st).error());
  }
  return out;
}

Status Banner::sync() {
  const auto entries = MAMORI_TRY(list_.list());
  return backend_.sync(BanList::applied(entries));
}

}  // namespace mamori::ban
