#include "agent/control/handlers.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <variant>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/baseline/site.h"
#include "core/evidence/item_json.h"
#include "core/proto/actions.h"

namespace mamori::control {
namespace {

using proto::ErrorAnswer;
using proto::ErrorCode;

// Up to proto::kMaxEvidenceBytes of what `read` streams; complete when it all fit.
// Reading stops at the limit (a 64 MiB item is not decompressed for its first MiB).
Result<proto::EvidenceContent> prefix(
    const std::function<Status(const std::function<Status(std::span<const uint8_t>)>&)>& read) {
  proto::EvidenceContent c;
  c.complete = true;
  auto st = read([&](std::span<const uint8_t> chunk) -> Status {
    const size_t room = proto::kMaxEvidenceBytes - c.bytes.size();
    c.bytes.append(reinterpret_cast<const char*>(chunk.data()), std::min(room, chunk.size()));
    if (chunk.size() <= room) return ok();
    c.complete = false;
    return tl::unexpected(Error{"read", "evidence", ECANCELED, "enough"});
  });
  if (!st && !(st.error().errnum == ECANCELED && !c.complete)) return tl::unexpected(st.error());
  return c;
}

}  // namespace

ErrorAnswer failed(const Error& e) { return ErrorAnswer{ErrorCode::kFailed, e.message(), {}, {}}; }

int answer_version(const nlohmann::json& request) {
  if (!request.is_object() || !request.contains("v")) return proto::kOldestVersion;
  const auto& v = request["v"];
  if (v.is_number_integer() && v.get<int64_t>() >= proto::kOldestVersion &&
      v.get<int64_t>() <= proto::kVersion)
    return static_cast<int>(v.get<int64_t>());
  return proto::kVersion;
}

nlohmann::json Handlers::serve(const nlohmann::json& request) {
  const int v = answer_version(request);
  auto decoded = proto::decode_request(request);
  if (!decoded) return proto::to_json(proto::Answer{std::move(decoded).error()}, v);
  proto::Answer answer = handle(*decoded);
  if (auto* e = std::get_if<ErrorAnswer>(&answer); e && e->command.empty())
    e->command = std::string(proto::command_name(decoded->command()));
  return proto::to_json(answer, v);
}

proto::Answer Handlers::handle(const proto::Request& request) {
  return std::visit(
      [&](const auto& b) -> proto::Answer {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, proto::PingRequest>) return proto::PingAnswer{};
        if constexpr (std::is_same_v<T, proto::StatusRequest>)
          return proto::StatusAnswer{status(), {}};
        if constexpr (std::is_same_v<T, proto::ModeRequest>) return mode(b);
        if constexpr (std::is_same_v<T, proto::PauseRequest>) return pause(b);
        if constexpr (std::is_same_v<T, proto::ResumeRequest>) return resume(b);
        if constexpr (std::is_same_v<T, proto::VerifyRequest>) return verify(b);
        if constexpr (std::is_same_v<T, proto::DeployPathsRequest>) return deploy_paths();
        if constexpr (std::is_same_v<T, proto::HealRequest>) return heal(b);
        if constexpr (std::is_same_v<T, proto::BanRequest>) return ban(b);
        if constexpr (std::is_same_v<T, proto::UnbanRequest>) return unban(b);
        if constexpr (std::is_same_v<T, proto::EvidenceRequest>) return evidence(b);
        if constexpr (std::is_same_v<T, proto::SiteRequest>) return site(b);
        if constexpr (std::is_same_v<T, proto::AcceptRequest>) return accept(b);
        if constexpr (std::is_same_v<T, proto::RestoreRequest>) return restore(b);
      },
      request.body);
}

proto::StatusDocument Handlers::status() const {
  proto::StatusDocument d;
  d.pid = ::getpid();
  d.backend = std::string(s_.watcher.name());
  d.started_at_ns = s_.started_ns;
  for (size_t i = 0; i < s_.guard.root_count(); ++i) {
    const auto& r = s_.guard.root(i);
    d.roots.push_back({r.path, r.mode, r.paused, s_.guard.rescanning(i)});
  }
  d.event_log = s_.event_log;
  d.in_storm = s_.guard.in_storm();
  d.heal = s_.healer.status();
  d.sinks = s_.sinks.status();
  if (s_.logwatch) d.logwatch = s_.logwatch->status();
  const auto& c = s_.guard.counters();
  const EventLogStats log = s_.event_log_stats ? s_.event_log_stats() : EventLogStats{};
  d.counters = {
      c.changes,   c.restored,           c.quarantined,   c.evidence, c.failures,
      c.events,    c.summarised,         c.storms,        c.verifies, s_.watcher.overflows(),
      log.dropped, log.dropped_security, log.writer_waits};
  d.outbox = log.outbox;
  if (s_.manager_link) d.manager = s_.manager_link();
  if (s_.gate) d.gate = s_.gate();
  return d;
}

tl::expected<std::vector<size_t>, ErrorAnswer> Handlers::chosen(const proto::Roots& roots) const {
  std::vector<size_t> out;
  if (roots.all()) {
    for (size_t i = 0; i < s_.guard.root_count(); ++i) out.push_back(i);
    return out;
  }
  for (std::string p : roots.paths) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    size_t i = 0;
    while (i < s_.guard.root_count() && s_.guard.root(i).path != p) ++i;
    if (i == s_.guard.root_count())
      return tl::unexpected(ErrorAnswer{
          ErrorCode::kUnknownRoot, quote(p) + " is not a root the agent guards", {}, {}});
    out.push_back(i);
  }
  return out;
}

proto::Answer Handlers::mode(const proto::ModeRequest& r) {
  auto roots = chosen(r.roots);
  if (!roots) return roots.error();
  for (size_t i : *roots) {
    const auto before = s_.guard.root(i).mode;
    s_.guard.set_mode(i, r.mode);
    s_.guard.emit(std::move(
        event::Event(proto::action::kModeChanged, event::Severity::kNotice, s_.env.clock().now_ns())
            .set("mamori.root", s_.guard.root(i).path)
            .set("mamori.mode", std::string(config::mode_name(r.mode)))
            .set("mamori.previous_mode", std::string(config::mode_name(before)))
            .message(fmt::format("mode of {} changed from {} to {}", quote(s_.guard.root(i).path),
                                 config::mode_name(before), config::mode_name(r.mode)))));
    // Leaving alert: what alert only reported is repaired now.
    if (before == config::Mode::kAlert && r.mode != config::Mode::kAlert)
      if (auto st = s_.guard.verify(i, guard::Trigger::kResume); !st) return failed(st.error());
  }
  s_.flush();
  return proto::StatusAnswer{status(), {}};
}

proto::Answer Handlers::pause(const proto::PauseRequest& r) {
  auto roots = chosen(r.roots);
  if (!roots) return roots.error();
  // A deploy names its process (the CLI running the command): only that tree's writes
  // are the deploy's. Backends that name no writer (inotify) cannot tell: the answer
  // says so ("attribution": "none") and the CLI applies its policy.
  if (r.pid && s_.watcher.name() != "inotify")
    if (auto st = s_.guard.begin_deploy(static_cast<pid_t>(*r.pid)); !st) return failed(st.error());
  for (size_t i : *roots) {
    s_.guard.set_paused(i, true);
    auto e = event::Event(proto::action::kDeployStarted, event::Severity::kNotice,
                          s_.env.clock().now_ns());
    e.set("mamori.root", s_.guard.root(i).path);
    if (const auto* d = s_.guard.deploy()) {
      e.set("mamori.deploy.pid", d->root());
      e.set("mamori.deploy.following_forks", d->following_forks());
    }
    e.message(s_.guard.deploy() ? "deploy started: its own writes are recorded; any other "
                                  "writer's change is handled as a tamper"
                                : "restoring paused for a deploy; changes are recorded");
    s_.guard.emit(std::move(e));
  }
  s_.flush();
  return proto::StatusAnswer{
      status(), s_.guard.deploy() ? proto::Attribution::kPid : proto::Attribution::kNone};
}

proto::Answer Handlers::resume(const proto::ResumeRequest& r) {
  auto roots = chosen(r.roots);
  if (!roots) return roots.error();
  s_.guard.end_deploy();
  for (size_t i : *roots) {
    s_.guard.set_paused(i, false);
    s_.guard.emit(std::move(
        event::Event(proto::action::kDeployEnded, event::Severity::kNotice, s_.env.clock().now_ns())
            .set("mamori.root", s_.guard.root(i).path)
            .message("deploy over; guarding again")));
    if (auto st = s_.guard.verify(i, guard::Trigger::kResume); !st) return failed(st.error());
  }
  s_.flush();
  // Version 1 answered resume with the attribution too; it is always "none" now.
  return proto::StatusAnswer{status(), proto::Attribution::kNone};
}

proto::Answer Handlers::verify(const proto::VerifyRequest& r) {
  auto roots = chosen(r.roots);
  if (!roots) return roots.error();
  for (size_t i : *roots)
    if (auto st = s_.guard.verify(i, guard::Trigger::kScheduled); !st) return failed(st.error());
  s_.flush();
  return proto::StatusAnswer{status(), {}};
}

// What the running deploy changed, by writer: the CLI accepts only the deploy's own.
// Changes the kernel has queued are judged first, so a foreign write made before the
// deploy's command exited is not missing from the answer.
proto::Answer Handlers::deploy_paths() {
  std::vector<watch::Change> pending;
  if (auto st = s_.watcher.read(pending); !st) s_.log(st.error().message());
  s_.guard.handle(pending);
  s_.flush();
  const auto* d = s_.guard.deploy();
  if (!d) return proto::DeployPathsAnswer{};
  const auto& paths = s_.guard.deploy_paths();
  proto::DeployPathsAnswer a;
  a.attribution = proto::Attribution::kPid;
  a.pid = d->root();
  a.complete = paths.complete;
  for (size_t i = 0; i < s_.guard.root_count(); ++i) {
    if (!s_.guard.root(i).paused) continue;
    auto list = [&](const std::map<size_t, std::set<std::string>>& m) {
      std::vector<std::string> out;
      if (auto it = m.find(i); it != m.end()) out.assign(it->second.begin(), it->second.end());
      return out;
    };
    a.roots.push_back({s_.guard.root(i).path, list(paths.deploy), list(paths.foreign)});
  }
  return a;
}

proto::Answer Handlers::heal(const proto::HealRequest& r) {
  Status st;
  if (r.action == proto::HealAction::kClear)
    st = s_.healer.clear(r.by.empty() ? "mamori heal --clear" : r.by);
  else if (r.action == proto::HealAction::kFail)
    st = s_.healer.fail(r.reason);
  s_.flush();
  if (!st) return failed(st.error());
  return proto::HealAnswer{s_.healer.status()};
}

Status Handlers::open_bans() {
  if (banner_) return ok();
  ban_list_.emplace(MAMORI_TRY(ban::BanList::open(s_.ban_list_path, s_.ban_options)));
  ban_backend_ = MAMORI_TRY(ban::open_backend(s_.ban_options, s_.env.clock()));
  banner_ = std::make_unique<ban::Banner>(*ban_list_, *ban_backend_, s_.env.clock());
  // The log watch applies the whole list at its start; without one, nothing did since
  // this boot, and a ban the list holds (skipped below) might not be in force.
  if (!s_.logwatch) MAMORI_TRY(banner_->sync());
  return ok();
}

namespace {

// One address of a fleet ban: an IP, or a CIDR of full length (the same). A network is
// refused: the ban list holds networks only as prefix escalation decides them.
std::variant<ban::IpAddress, proto::RefusedAddress> fleet_address(const std::string& text) {
  if (auto ip = ban::IpAddress::parse(text)) return *ip;
  if (auto net = ban::Cidr::parse(text)) {
    if (net->prefix == (net->base.v4 ? 32 : 128)) return net->base;
    return proto::RefusedAddress{text, "network",
                                 "networks are not banned by command yet: ban its addresses"};
  }
  return proto::RefusedAddress{text, "invalid", "is not an IPv4 or IPv6 address"};
}

event::Event fleet_event(Env& env, std::string_view action, const std::string& ip,
                         const std::string& reason, const std::string& origin) {
  event::Event e(action, event::Severity::kNotice, env.clock().now_ns());
  const bool banned = action == proto::action::kIpBanned;
  e.set("event.category", nlohmann::json::array({"network"}))
      .set("event.type", nlohmann::json::array({banned ? "denied" : "allowed"}))
      .set("event.dataset", "mamori.ban")
      .set("source.ip", ip)
      .set("rule.name", "fleet")
      .set("event.reason", reason)
      .set("mamori.ban.origin", origin);
  return e;
}

}  // namespace

proto::Answer Handlers::ban(const proto::BanRequest& r) {
  if (auto st = open_bans(); !st) return failed(st.error());
  proto::BanAnswer a;
  const std::string origin = r.origin.empty() ? "manager" : r.origin;
  for (const auto& text : r.addresses) {
    auto parsed = fleet_address(text);
    if (auto* refused = std::get_if<proto::RefusedAddress>(&parsed)) {
      a.refused.push_back(std::move(*refused));
      continue;
    }
    const auto& ip = std::get<ban::IpAddress>(parsed);
    // The allowlist wins over any other host's decision: a shared proxy, a monitor.
    if (ban_list_->allowlisted(ip)) {
      a.refused.push_back({text, "allowlisted", "is on this agent's ban allowlist"});
      continue;
    }
    // Held already, about as long (the manager sends every active ban at each hello, the
    // TTLs of a batch rounded up to its longest, within 5 % or a minute): applied, with
    // no new event.
    const int64_t now = banner_->now();
    if (auto held = ban_list_->get(ip); held && *held) {
      const int64_t until = (*held)->expires_at;
      const int64_t slack = std::max<int64_t>(60, r.ttl_s / 20);
      if (until == 0 || (r.ttl_s && until + slack >= now + r.ttl_s)) {
        a.applied.push_back(text);
        continue;
      }
    }
    auto e = fleet_event(s_.env, proto::action::kIpBanned, ip.to_string(), r.reason, origin);
    ban::BanRequest request{"fleet", r.reason, "fleet",
                            r.ttl_s ? std::chrono::seconds(r.ttl_s) : ban::kPermanent, false};
    auto d = banner_->ban(ip, request, e.fields());
    if (!d) {
      const bool full = d.error().errnum == ENOSPC;
      a.refused.push_back({text, full ? "full" : "failed", d.error().message()});
      continue;
    }
    a.applied.push_back(text);
    e.outcome("success")
        .set("mamori.ban.ttl_s", static_cast<int64_t>(d->ttl.count()))
        .set("mamori.ban.backend", std::string(ban_backend_->name()))
        .message(fmt::format(
            "banned {} for {}: decided by {}: {}", ip.to_string(),
            d->ttl == ban::kPermanent ? std::string("ever") : fmt::format("{} s", d->ttl.count()),
            origin, r.reason));
    s_.guard.emit(std::move(e));
  }
  s_.flush();
  return a;
}

proto::Answer Handlers::unban(const proto::UnbanRequest& r) {
  if (auto st = open_bans(); !st) return failed(st.error());
  proto::BanAnswer a;
  const std::string origin = r.origin.empty() ? "manager" : r.origin;
  for (const auto& text : r.addresses) {
    auto parsed = fleet_address(text);
    if (auto* refused = std::get_if<proto::RefusedAddress>(&parsed)) {
      a.refused.push_back(std::move(*refused));
      continue;
    }
    const auto& ip = std::get<ban::IpAddress>(parsed);
    auto e = fleet_event(s_.env, proto::action::kIpUnbanned, ip.to_string(),
                         "unbanned by the fleet", origin);
    auto had = banner_->unban(ip, e.fields());
    if (!had) {
      a.refused.push_back({text, "failed", had.error().message()});
      continue;
    }
    a.applied.push_back(text);
    if (*had)
      s_.guard.emit(std::move(e.outcome("success").message(
          fmt::format("unbanned {}: decided by {}", ip.to_string(), origin))));
  }
  s_.flush();
  return a;
}

proto::Answer Handlers::evidence(const proto::EvidenceRequest& r) {
  if (!s_.evidence) return ErrorAnswer{ErrorCode::kFailed, "this agent keeps no evidence", {}, {}};
  auto found = s_.evidence->get(r.id);
  if (!found) return failed(found.error());
  if (!*found)
    return ErrorAnswer{ErrorCode::kBadArgument,
                       fmt::format("no evidence item {} (never kept, or pruned)", r.id),
                       {},
                       {}};
  const evidence::Item& item = **found;
  proto::EvidenceAnswer a;
  a.item = evidence::item_json(item);
  auto after = prefix([&](const auto& sink) { return s_.evidence->read(item.id, sink); });
  if (!after) return failed(after.error());
  a.after = std::move(*after);
  a.after.complete = a.after.complete && !item.truncated;
  if (!item.baseline_sha256 || !s_.state) {
    a.before_missing = "unknown";
  } else if (*item.baseline_sha256 == item.sha256) {
    a.before_missing = "same";
  } else {
    auto before = prefix(
        [&](const auto& sink) { return s_.state->store->read(*item.baseline_sha256, sink); });
    if (before)
      a.before = std::move(*before);
    else if (before.error().errnum == ENOENT)
      a.before_missing = "gone";
    else
      return failed(before.error());
  }
  return a;
}

proto::Answer Handlers::site(const proto::SiteRequest& r) {
  if (!s_.state) return ErrorAnswer{ErrorCode::kFailed, "this agent has no baseline open", {}, {}};
  auto& catalog = s_.state->catalog;
  auto row_of = [&](size_t i) -> Result<baseline::RootRow> {
    const std::string& path = s_.guard.root(i).path;
    auto row = MAMORI_TRY(catalog.find_root(path));
    if (!row) return fail("site", path, ENOENT, "the root has no baseline");
    return *row;
  };
  proto::SiteAnswer a;
  if (r.root.empty()) {
    for (size_t i = 0; i < s_.guard.root_count(); ++i) {
      auto row = row_of(i);
      if (!row) return failed(row.error());
      auto part = baseline::site_digest(catalog, *row);
      if (!part) return failed(part.error());
      a.parts.push_back({part->name, "dir", part->digest.hex(), part->entries});
    }
    return a;
  }
  auto chosen_root = chosen(proto::Roots{{r.root}});
  if (!chosen_root) return chosen_root.error();
  auto row = row_of(chosen_root->front());
  if (!row) return failed(row.error());
  auto children = baseline::site_children(catalog, *row, r.dir, r.after, proto::kMaxSiteParts);
  if (!children) return failed(children.error());
  for (auto& p : children->parts)
    a.parts.push_back(
        {std::move(p.name), std::string(baseline::type_name(p.type)), p.digest.hex(), p.entries});
  a.more = children->more;
  a.self = children->self.hex();
  return a;
}

}  // namespace mamori::control
