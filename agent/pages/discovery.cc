#include "agent/pages/discovery.h"

#include <algorithm>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/logparse/format.h"
#include "core/page/url.h"

namespace mamori::pages {
namespace {

uint64_t random_salt() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// "host" of "scheme://host[:port]", "[v6]" kept whole; lower case.
std::string host_of(std::string_view origin_or_host) {
  std::string h = page::ascii_lower(origin_or_host);
  if (const size_t s = h.find("://"); s != std::string::npos) h.erase(0, s + 3);
  const size_t colon = h.rfind(':');
  if (colon != std::string::npos && h.find(']', colon) == std::string::npos) h.resize(colon);
  while (h.ends_with('.')) h.pop_back();
  return h;
}

}  // namespace

Discoverer::Discoverer(Env& env, const config::Config& config, Log log)
    : env_(env),
      config_(config.page_discovery),
      state_path_(page::discovered_path(config.state_dir)),
      host_(host_of(page::origin_of(config.page_discovery.base_url))),
      log_(std::move(log)),
      table_(random_salt()) {
  for (const auto& l : config.logs)
    if (config_.log.empty() || l.path == config_.log) logs_.push_back(l.path);
  auto saved = page::load_discovered(state_path_);
  if (!saved) {
    log_("pages: " + saved.error().message() + "; discovery starts afresh");
  } else if (*saved && (*saved)->base_url != config_.base_url) {
    log_(fmt::format("pages: {} holds pages of {}, not {}: discovery starts afresh",
                     quote(state_path_), quote((*saved)->base_url), quote(config_.base_url)));
  } else if (*saved) {
    MutexLock lock(mu_);
    set_ = std::move((*saved)->pages);
    if (set_.size() > config_.discover) set_ = page::rank_discovered(set_, {}, config_.discover, 0);
  }
}

void Discoverer::note(const std::string& log_path, const logparse::Entry& e) {
  // The cheap tests first: this runs for every line of the log.
  if (e.status != 200 || e.method != "GET") return;
  if (std::find(logs_.begin(), logs_.end(), log_path) == logs_.end()) return;
  if (!e.host.empty() && host_of(e.host) != host_) return;
  auto path = page::discoverable_target(e.target, config_.keep_query);
  if (!path) return;
  {
    MutexLock lock(mu_);
    const uint32_t clients = table_.note(*path, e.client);
    if (clients == config_.min_clients && set_.size() < config_.discover &&
        std::none_of(set_.begin(), set_.end(),
                     [&](const page::DiscoveredPage& p) { return p.path == *path; })) {
      set_.push_back({*path, table_.clients(*path), env_.clock().now_ns()});
      std::sort(set_.begin(), set_.end(),
                [](const auto& a, const auto& b) { return a.path < b.path; });
      changed_ = unsaved_ = true;
      // Under the lock: the page monitor clears it before it goes (and never calls in
      // here holding its own lock).
      if (on_change_) on_change_();
    }
  }
}

void Discoverer::set_on_change(std::function<void()> f) {
  MutexLock lock(mu_);
  on_change_ = std::move(f);
}

std::optional<std::vector<page::DiscoveredPage>> Discoverer::take_change() {
  std::vector<page::DiscoveredPage> now;
  bool changed = false, save = false;
  {
    MutexLock lock(mu_);
    const auto mono = env_.clock().monotonic();
    if (!ranked_) ranked_ = mono;
    if (mono - *ranked_ >= std::chrono::seconds(config_.rank_every_s)) {
      ranked_ = mono;
      auto next = page::rank_discovered(set_, table_.ranked(config_.min_clients), config_.discover,
                                        env_.clock().now_ns());
      table_.clear();
      const auto same_path = [](const auto& a, const auto& b) { return a.path == b.path; };
      if (!std::equal(next.begin(), next.end(), set_.begin(), set_.end(), same_path))
        changed_ = true;
      set_ = std::move(next);
      unsaved_ = true;  // the counts changed
    }
    changed = std::exchange(changed_, false);
    save = std::exchange(unsaved_, false);
    if (changed || save) now = set_;
  }
  // A path that joins meanwhile sets unsaved_ again: the next call saves it.
  if (save)
    if (auto st = page::save_discovered(env_, state_path_, {config_.base_url, now}); !st)
      log_("pages: " + st.error().message());
  if (!changed) return std::nullopt;
  return now;
}

config::PageConfig Discoverer::page_config(const std::string& path) const {
  config::PageConfig pc = config_.page;
  pc.url = config_.base_url + path;
  return pc;
}

uint64_t Discoverer::dropped() const {
  MutexLock lock(mu_);
  return table_.dropped();
}

}  // namespace mamori::pages
