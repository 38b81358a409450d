#include "agent/logwatch/decoy_links.h"

#include <algorithm>

namespace mamori::logwatch {
namespace {

constexpr std::string_view kDecoyPrefix = "decoy-";
constexpr std::string_view kCredentialPrefix = "decoy-credential-";

}  // namespace

DecoyRule decoy_rule(std::string_view rule_id, std::string* token) {
  if (rule_id.starts_with(kCredentialPrefix) && rule_id.size() > kCredentialPrefix.size()) {
    *token = std::string(rule_id.substr(kCredentialPrefix.size()));
    return DecoyRule::kCredential;
  }
  if (rule_id.starts_with(kDecoyPrefix) && rule_id.size() > kDecoyPrefix.size()) {
    *token = std::string(rule_id.substr(kDecoyPrefix.size()));
    return DecoyRule::kFetch;
  }
  return DecoyRule::kNone;
}

std::string credential_rule_id(std::string_view token) {
  return std::string(kCredentialPrefix) + std::string(token);
}

void DecoyLinks::fetched(std::string_view token, const logparse::IpAddress& ip,
                         std::string event_id, int64_t time_ns) {
  auto it = by_token_.find(std::string(token));
  if (it == by_token_.end()) {
    if (by_token_.size() >= kMaxTokens) return;
    it = by_token_.emplace(std::string(token), std::deque<DecoyFetch>{}).first;
  }
  auto& q = it->second;
  auto same = std::find_if(q.begin(), q.end(), [&](const DecoyFetch& f) { return f.ip == ip; });
  DecoyFetch f{ip, std::move(event_id), time_ns};
  // A repeated fetch by an already banned address has no event of its own: keep the link
  // to the ban that has one.
  if (same != q.end()) {
    if (f.event_id.empty()) f.event_id = same->event_id;
    q.erase(same);
  }
  q.push_front(std::move(f));
  if (q.size() > kPerToken) q.pop_back();
}

std::vector<DecoyFetch> DecoyLinks::fetchers(std::string_view token) const {
  auto it = by_token_.find(std::string(token));
  if (it == by_token_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

bool DecoyLinks::first_use(std::string_view token, const logparse::IpAddress& ip, int64_t now_ns) {
  const std::string key = std::string(token) + " " + ip.to_string();
  auto it = last_use_ns_.find(key);
  if (it != last_use_ns_.end() && now_ns - it->second < kUseQuietNs) return false;
  if (it == last_use_ns_.end() && last_use_ns_.size() >= kMaxTokens) {
    std::erase_if(last_use_ns_, [&](const auto& kv) { return now_ns - kv.second >= kUseQuietNs; });
    if (last_use_ns_.size() >= kMaxTokens) last_use_ns_.clear();
  }
  last_use_ns_[key] = now_ns;
  return true;
}

}  // namespace mamori::logwatch
