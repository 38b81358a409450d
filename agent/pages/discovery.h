#pragma once
// The page monitor's discovery ([pages], docs/pages.md "Discovery"): the most requested
// HTML pages of the [[log]] access logs the agent already reads, watched like [[page]]s
// (base_url + path, the [pages] keys for the rest). Counting and its limits are
// core/page/discovery.h; here the lines are chosen (a GET answered 200, for this site's
// host), the table is locked, the set kept and saved in STATE/pages/discovered.json.
//
// A path joins the set as soon as min_clients addresses requested it while the set has
// room; every rank_every seconds the set is ranked again (the best `discover` of the set
// and the table; the table then starts afresh).
//
// Threads: note() on the logwatch thread (it holds the lock for one table update);
// take_change() and the rest on the page monitor's thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/config/config.h"
#include "core/page/discovery.h"

namespace mamori::logparse {
struct Entry;
}

namespace mamori::pages {

class Discoverer {
 public:
  using Log = std::function<void(const std::string&)>;
  // Counts the lines of `config.page_discovery.log`, or of every [[log]] when it is "".
  // Reads STATE/pages/discovered.json: a set of another base_url, or a damaged file, is
  // said through `log` and discovery starts afresh.
  Discoverer(Env& env, const config::Config& config, Log log);

  // One parsed line of the [[log]] at `log_path` (the log watch's request observer).
  void note(const std::string& log_path, const logparse::Entry& e) MAMORI_EXCLUDES(mu_);
  // Called on the logwatch thread, under the lock, when a path joined the set; must not
  // call back in here.
  void set_on_change(std::function<void()> f) MAMORI_EXCLUDES(mu_);

  // The set when it changed since the last call (the first call: the set read at
  // start), after ranking again when rank_every has passed; saved when it changed.
  std::optional<std::vector<page::DiscoveredPage>> take_change() MAMORI_EXCLUDES(mu_);
  // How a discovered path is fetched: [pages]'s keys, url = base_url + path.
  config::PageConfig page_config(const std::string& path) const;
  uint64_t dropped() const MAMORI_EXCLUDES(mu_);

 private:
  Env& env_;
  const config::PageDiscoveryConfig config_;
  const std::string state_path_;
  std::vector<std::string> logs_;  // counted
  std::string host_;               // base_url's host, lower case, without port
  Log log_;

  mutable Mutex mu_;
  std::function<void()> on_change_ MAMORI_GUARDED_BY(mu_);
  page::RequestTable table_ MAMORI_GUARDED_BY(mu_);
  std::vector<page::DiscoveredPage> set_ MAMORI_GUARDED_BY(mu_);
  bool changed_ MAMORI_GUARDED_BY(mu_) = true;  // the first take_change() gives the set
  bool unsaved_ MAMORI_GUARDED_BY(mu_) = false;
  std::optional<std::chrono::nanoseconds> ranked_ MAMORI_GUARDED_BY(mu_);  // monotonic
};

}  // namespace mamori::pages
