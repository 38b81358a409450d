#include "manager/db/decoys.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/proto/actions.h"
#include "manager/db/event_columns.h"

namespace mamori::manager {
namespace {

constexpr std::string_view kDecoyPrefix = "decoy-";
constexpr std::string_view kCredentialUsed = "decoy-credential-used";
constexpr std::string_view kCredentialRulePrefix = "decoy-credential-";

// At most `max` bytes of `s`, never ending inside a UTF-8 character (PostgreSQL's text
// refuses invalid UTF-8).
std::string cut(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
  return s;
}

std::string decoy_of(const nlohmann::json& e, const std::string& path) {
  const std::string token = string_at(e, {"mamori", "decoy", "token"});
  if (!token.empty()) return cut(std::string(kDecoyPrefix) + token, 256);
  return path.empty() ? std::string() : cut("file:" + path, kMaxDecoyUrl);
}

}  // namespace

std::string_view to_string(DecoyKind k) {
  switch (k) {
    case DecoyKind::kHit:
      return "hit";
    case DecoyKind::kOpened:
      return "opened";
    case DecoyKind::kCredential:
      return "credential";
    case DecoyKind::kLift:
      return "lift";
  }
  return "hit";
}

std::optional<DecoyKind> parse_decoy_kind(std::string_view s) {
  for (DecoyKind k :
       {DecoyKind::kHit, DecoyKind::kOpened, DecoyKind::kCredential, DecoyKind::kLift})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

std::optional<DecoyEvent> classify_decoy_event(const EventColumns& row) {
  const bool banned = row.action == proto::action::kIpBanned;
  const bool unbanned = row.action == proto::action::kIpUnbanned;
  const bool opened = row.action == proto::action::kDecoyOpened;
  const bool used = row.action == kCredentialUsed;
  if (!banned && !unbanned && !opened && !used) return std::nullopt;
  // Most bans are not a decoy's, and most unbans expiries: a look at the text spares
  // parsing them on the store's write path.
  const std::string_view text(row.json);
  if (banned && text.find("\"decoy-") == std::string_view::npos) return std::nullopt;
  if (unbanned && text.find("\"manual\"") == std::string_view::npos &&
      text.find("\"fleet\"") == std::string_view::npos)
    return std::nullopt;
  const nlohmann::json e = nlohmann::json::parse(text, nullptr, false);
  if (!e.is_object()) return std::nullopt;
  DecoyEvent d;
  d.time_ns = row.time_ns;
  d.address = row.ip;
  const std::string rule = string_at(e, {"rule", "name"});
  const std::string outcome = string_at(e, {"event", "outcome"});
  if (banned) {
    // Not hits: a prefix escalation; a credential's use (counted by its
    // decoy-credential-used); a fetcher banned again because its loot was used (linked to
    // that use by mamori.related_event, which an access-log hit of a decoy never has).
    if (!rule.starts_with(kDecoyPrefix) || rule.starts_with(kCredentialRulePrefix) ||
        json_at(e, {"mamori", "ban", "prefix"}) || json_at(e, {"mamori", "related_event"}) ||
        row.ip.empty())
      return std::nullopt;
    d.kind = DecoyKind::kHit;
    d.decoy = cut(rule, 256);
    d.url = cut(string_at(e, {"url", "original"}), kMaxDecoyUrl);
    if (outcome == "success") {
      const nlohmann::json* ttl = json_at(e, {"mamori", "ban", "ttl_s"});
      d.ttl_s = ttl && ttl->is_number_integer() ? std::max<int64_t>(0, ttl->get<int64_t>()) : 0;
    }
    return d;
  }
  if (unbanned) {
    if ((rule != "manual" && rule != "fleet") || outcome == "failure" || row.ip.empty())
      return std::nullopt;
    d.kind = DecoyKind::kLift;
    return d;
  }
  if (opened) {
    d.kind = DecoyKind::kOpened;
    d.url = cut(row.path, kMaxDecoyUrl);
    d.decoy = decoy_of(e, row.path);
  } else {
    d.kind = DecoyKind::kCredential;
    const std::string path = string_at(e, {"mamori", "decoy", "path"});
    d.url = cut(path, kMaxDecoyUrl);
    d.decoy = decoy_of(e, path);
  }
  if (d.decoy.empty()) return std::nullopt;
  return d;
}

DecoyReport aggregate_decoys(std::span<const DecoyEvent> events, std::span<const DecoyLift> lifts) {
  std::map<std::string, std::vector<int64_t>, std::less<>> lifted;  // address → times, sorted
  for (const auto& l : lifts) lifted[l.address].push_back(l.at_ns);
  for (auto& [address, times] : lifted) std::sort(times.begin(), times.end());
  // A hit is a false positive when its address was unbanned in [hit, end of its ban).
  auto lifted_during = [&](const DecoyEvent& hit) {
    if (hit.ttl_s < 0) return false;
    auto it = lifted.find(hit.address);
    if (it == lifted.end()) return false;
    auto first = std::lower_bound(it->second.begin(), it->second.end(), hit.time_ns);
    if (first == it->second.end()) return false;
    if (hit.ttl_s == 0) return true;
    int64_t end = 0;
    if (__builtin_mul_overflow(hit.ttl_s, int64_t{1'000'000'000}, &end) ||
        __builtin_add_overflow(end, hit.time_ns, &end))
      return true;  // beyond any time: as long as permanent
    return *first < end;
  };
  struct Acc {
    DecoyStats s;
    std::set<std::string, std::less<>> addresses;
    bool hit_url = false;  // s.url is a hit's
  };
  std::map<std::string, Acc, std::less<>> by_decoy;
  std::vector<std::string> order;  // by newest event
  for (const auto& e : events) {
    if (e.kind == DecoyKind::kLift || e.decoy.empty()) continue;
    auto [it, fresh] = by_decoy.try_emplace(e.decoy);
    DecoyStats& s = it->second.s;
    if (fresh) {
      s.decoy = e.decoy;
      s.first_ns = s.last_ns = e.time_ns;
      s.latest_agent = e.agent_key;
      s.latest_row = e.row;
      order.push_back(e.decoy);
    }
    // Newest first, mostly: an agent's clock may disagree, so compare anyway.
    if (e.time_ns > s.last_ns) {
      s.last_ns = e.time_ns;
      s.latest_agent = e.agent_key;
      s.latest_row = e.row;
    }
    s.first_ns = std::min(s.first_ns, e.time_ns);
    // The newest hit's request names it best; a file's path when none was requested.
    if (e.kind == DecoyKind::kHit && !e.url.empty() && !it->second.hit_url) {
      s.url = e.url;
      it->second.hit_url = true;
    } else if (s.url.empty()) {
      s.url = e.url;
    }
    if (std::find(s.agents.begin(), s.agents.end(), e.agent_key) == s.agents.end() &&
        s.agents.size() < kMaxDecoyAgents)
      s.agents.push_back(e.agent_key);
    if (!e.address.empty()) it->second.addresses.insert(e.address);
    switch (e.kind) {
      case DecoyKind::kHit:
        ++s.hits;
        if (lifted_during(e)) ++s.false_positives;
        break;
      case DecoyKind::kOpened:
        ++s.opened;
        break;
      case DecoyKind::kCredential:
        ++s.credential_uses;
        break;
      case DecoyKind::kLift:
        break;
    }
  }
  DecoyReport r;
  for (auto& [name, acc] : by_decoy) acc.s.addresses = static_cast<int64_t>(acc.addresses.size());
  for (const auto& name : order) r.decoys.push_back(std::move(by_decoy.find(name)->second.s));
  std::stable_sort(r.decoys.begin(), r.decoys.end(),
                   [](const DecoyStats& a, const DecoyStats& b) { return a.last_ns > b.last_ns; });
  return r;
}

Result<DecoyReport> decoy_report(Store& store, int64_t since_ns, int64_t until_ns,
                                 int64_t max_events, int64_t max_lifts) {
  const auto events = MAMORI_TRY(store.decoy_events(since_ns, until_ns, max_events + 1));
  const auto lifts = MAMORI_TRY(store.decoy_lifts(since_ns, max_lifts + 1));
  const bool events_whole = static_cast<int64_t>(events.size()) <= max_events;
  const bool lifts_whole = static_cast<int64_t>(lifts.size()) <= max_lifts;
  DecoyReport r = aggregate_decoys(
      std::span(events).first(std::min<size_t>(events.size(), static_cast<size_t>(max_events))),
      std::span(lifts).first(std::min<size_t>(lifts.size(), static_cast<size_t>(max_lifts))));
  r.since_ns = since_ns;
  r.until_ns = until_ns;
  r.complete = events_whole && lifts_whole;
  return r;
}

}  // namespace mamori::manager
