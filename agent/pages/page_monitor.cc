#include "agent/pages/page_monitor.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "agent/pages/discovery.h"
#include "agent/sinks/curl_easy.h"
#include "core/base/quote.h"
#include "core/base/thread_name.h"
#include "core/fs/admin_files.h"
#include "core/page/url.h"
#include "core/proto/actions.h"

namespace mamori::pages {
namespace {

struct Transfer {
  FetchResult* out;
  size_t max_bytes;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->out->body.size() + bytes > t->max_bytes) {
    t->out->too_large = true;
    return 0;  // stops the transfer: past max_kb nothing more is read
  }
  t->out->body.append(data, bytes);
  return bytes;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) t->out->location.clear();  // a new response (after a 100)
  if (line.size() > 9 && page::ascii_lower(line.substr(0, 9)) == "location:")
    t->out->location = std::string(page::trim_url_space(line.substr(9)));
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel && cancel->load() ? 1 : 0;
}

// Longest a wait lasts before the clock is read again.
constexpr std::chrono::seconds kMaxWait{60};

std::string identity(const page::Element& e) { return e.kind + '\n' + e.value; }

}  // namespace

Result<FetchResult> fetch_with_curl(const FetchRequest& request) {
  auto easy = MAMORI_TRY(sinks::CurlEasy::make("http,https"));
  FetchResult out;
  Transfer transfer{&out, request.max_bytes};
  sinks::CurlList connect_to;
  easy.set(CURLOPT_URL, request.url);
  easy.set(CURLOPT_USERAGENT, request.user_agent);
  easy.set(CURLOPT_TIMEOUT, static_cast<long>(request.timeout_s));
  easy.set(CURLOPT_CONNECTTIMEOUT, static_cast<long>(request.timeout_s));
  // What the server compresses is counted decompressed: a bomb stops at max_bytes.
  easy.set(CURLOPT_ACCEPT_ENCODING, std::string());
  easy.set(CURLOPT_WRITEFUNCTION, on_body);
  easy.set(CURLOPT_WRITEDATA, static_cast<const void*>(&transfer));
  easy.set(CURLOPT_HEADERFUNCTION, on_header);
  easy.set(CURLOPT_HEADERDATA, static_cast<const void*>(&transfer));
  if (request.cancel) {
    easy.set(CURLOPT_NOPROGRESS, 0L);
    easy.set(CURLOPT_XFERINFOFUNCTION, on_progress);
    easy.set(CURLOPT_XFERINFODATA, static_cast<const void*>(request.cancel));
  }
  if (!request.connect_to.empty()) {
    // "::HOST:PORT": whatever host and port the URL names.
    MAMORI_TRY(connect_to.append("::" + request.connect_to));
    easy.set(CURLOPT_CONNECT_TO, connect_to.get());
  }
  auto st = easy.perform("fetch " + quote(request.url));
  out.status = easy.response_code();
  if (!st && !out.too_large) return tl::unexpected(std::move(st).error());
  return out;
}

PageMonitor::PageMonitor(Env& env, PageMonitorOptions options)
    : env_(env), options_(std::move(options)) {
  if (!options_.fetch) options_.fetch = fetch_with_curl;
  for (auto& pc : options_.pages) {
    Page p;
    p.record_path = page::record_path(options_.state_dir, pc.url);
    p.config = std::move(pc);
    pages_.push_back(std::move(p));
  }
  options_.pages.clear();
  if (options_.discovery) options_.discovery->set_on_change([this] { refresh(); });
  MutexLock lock(mu_);
  for (const auto& p : pages_) urls_.push_back(p.config.url);
}

PageMonitor::~PageMonitor() {
  if (options_.discovery) options_.discovery->set_on_change({});
  cancel_ = true;
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PageMonitor::start() {
  sinks::init_curl_once();  // before the thread: libcurl's rule
  thread_ = std::thread([this] {
    name_this_thread("mamori-pages");
    run();
  });
}

void PageMonitor::poke(GuardPoke poke) {
  {
    MutexLock lock(mu_);
    if (pokes_.size() < kMaxPokes)
      pokes_.push_back(std::move(poke));
    else
      poke_all_ = true;
  }
  wake_.notify_all();
}

void PageMonitor::refresh() {
  {
    MutexLock lock(mu_);
    refresh_ = true;
  }
  wake_.notify_all();
}

uint64_t PageMonitor::checks() const {
  MutexLock lock(mu_);
  return checks_;
}

std::vector<event::Event> PageMonitor::take_injected() {
  MutexLock lock(mu_);
  return std::exchange(injected_events_, {});
}

bool PageMonitor::injected() const {
  MutexLock lock(mu_);
  return injected_pages_ > 0;
}

std::vector<std::string> PageMonitor::urls_for_test() const {
  MutexLock lock(mu_);
  return urls_;
}

void PageMonitor::check_all() {
  sync_discovered();
  {
    MutexLock lock(mu_);
    take_pokes(env_.clock().monotonic());
  }
  for (auto& p : pages_) check(p);
}

bool PageMonitor::under(const config::PageConfig& page, const GuardPoke& poke) {
  if (page.root.empty()) return true;
  const std::string file = poke.path.empty() ? poke.root : poke.root + "/" + poke.path;
  return file == page.root || file.starts_with(page.root + "/");
}

void PageMonitor::take_pokes(std::chrono::nanoseconds now) {
  for (auto& p : pages_) {
    for (const auto& poke : pokes_) {
      if (!under(p.config, poke)) continue;
      p.due = std::min(p.due, now);
      if (p.related.empty()) p.related = poke.event_id;  // the first: what started it
    }
    if (poke_all_) p.due = std::min(p.due, now);
  }
  pokes_.clear();
  poke_all_ = false;
}

void PageMonitor::sync_discovered() {
  if (!options_.discovery) return;
  auto set = options_.discovery->take_change();
  if (!set) return;
  std::map<std::string, const page::DiscoveredPage*> want;  // url → the discovered page
  for (const auto& d : *set) {
    const std::string url = options_.discovery->page_config(d.path).url;
    if (std::none_of(pages_.begin(), pages_.end(),
                     [&](const Page& p) { return !p.discovered && p.config.url == url; }))
      want.emplace(url, &d);
  }
  std::erase_if(pages_, [&](const Page& p) {
    if (!p.discovered || want.contains(p.config.url)) return false;
    // Its record goes with it: the discovered pages that come and go stay bounded.
    if (auto lock = page::lock_records(options_.state_dir); lock)
      if (auto st = fs::remove_file(p.record_path); !st)
        options_.log("pages: " + st.error().message());
    options_.log(fmt::format("page {}: no longer among the most requested: not watched",
                             quote(p.config.url)));
    return true;
  });
  for (const auto& [wanted, d] : want) {
    const std::string& url = wanted;  // clang 14 cannot capture a structured binding
    if (std::any_of(pages_.begin(), pages_.end(),
                    [&](const Page& p) { return p.config.url == url; }))
      continue;
    Page p;
    p.config = options_.discovery->page_config(d->path);
    p.record_path = page::record_path(options_.state_dir, url);
    p.discovered = true;
    options_.log(
        fmt::format("page {} discovered from the access log (~{:.0f} addresses asked "
                    "for it): watched",
                    quote(url), d->clients));
    pages_.push_back(std::move(p));
  }
  MutexLock lock(mu_);
  urls_.clear();
  for (const auto& p : pages_) urls_.push_back(p.config.url);
  injected_pages_ = static_cast<size_t>(
      std::count_if(pages_.begin(), pages_.end(), [](const Page& p) { return p.injected; }));
}

void PageMonitor::run() {
  const auto woken = [&]() MAMORI_REQUIRES(mu_) {
    return stop_ || refresh_ || poke_all_ || !pokes_.empty();
  };
  MutexLock lock(mu_);
  while (!stop_) {
    refresh_ = false;
    if (options_.discovery) {
      // Cheap when nothing changed; ranks again when it is time.
      lock.unlock();
      sync_discovered();
      lock.lock();
    }
    const auto now = env_.clock().monotonic();
    take_pokes(now);
    Page* due = nullptr;
    for (auto& p : pages_)
      if (!due || p.due < due->due) due = &p;
    if (!due) {
      wake_.wait_for(mu_, kMaxWait, woken);
      continue;
    }
    if (due->due > now) {
      wake_.wait_for(mu_, std::min<std::chrono::nanoseconds>(due->due - now, kMaxWait), woken);
      continue;
    }
    lock.unlock();
    check(*due);
    due->due = env_.clock().monotonic() + std::chrono::seconds(due->config.interval_s);
    lock.lock();
    ++checks_;
  }
}

void PageMonitor::failed(Page& page, const std::string& why, long status) {
  if (page.failing) return;
  page.failing = true;
  event::Event e(proto::action::kPageFetchFailed, event::Severity::kWarning, env_.clock().now_ns());
  e.set("event.category", nlohmann::json::array({"web"}));
  e.set("url.full", page.config.url);
  e.set("error.message", why);
  if (status) e.set("http.response.status_code", status);
  e.message(fmt::format("page {} could not be checked: {}", quote(page.config.url), why));
  options_.publish({std::move(e)});
}

void PageMonitor::check(Page& page) {
  const config::PageConfig& pc = page.config;
  // The guard event that asked for this check: its events follow from it.
  const std::string related = std::exchange(page.related, {});
  page::Limits limits;
  limits.max_bytes = size_t{pc.max_kb} << 10;
  page::ActiveContent merged;
  std::map<std::string, std::string> seen_by;  // identity → the first user agent's name
  std::string failure;
  long failure_status = 0;
  for (const auto& name : pc.user_agents) {
    if (cancel_) return;  // stopping: nothing is judged from a cut fetch
    const std::string ua(page::preset_user_agent(name).value_or(name));
    auto r = options_.fetch({pc.url, ua, pc.connect_to, pc.timeout_s, limits.max_bytes, &cancel_});
    std::string why;
    std::optional<page::ActiveContent> content;
    if (!r) {
      why = r.error().message();
    } else if (r->too_large) {
      why = fmt::format("{}: more than max_kb ({} KiB)", page::kTooLarge, pc.max_kb);
    } else if (r->status >= 300 && r->status < 400 && !r->location.empty()) {
      const std::string to = page::resolve_url(pc.url, r->location);
      content.emplace();
      page::add_element(*content, {std::string(page::kind::kRedirect),
                                   to.substr(0, limits.max_value_bytes),
                                   page::origin_of(to).substr(0, limits.max_value_bytes),
                                   {}});
    } else if (r->status < 200 || r->status >= 300) {
      why = fmt::format("HTTP status {}", r->status);
    } else if (auto c = page::extract(r->body, pc.url, limits); !c) {
      why = c.error().detail;
    } else {
      content = std::move(*c);
    }
    if (!why.empty()) {
      failure = why + " (as " + name + ")";
      failure_status = r ? r->status : 0;
      continue;
    }
    merged.truncated = merged.truncated || content->truncated;
    for (auto& e : content->elements) {
      const std::string id = identity(e);
      if (page::add_element(merged, std::move(e))) seen_by.emplace(id, ua);
    }
  }

  if (cancel_) return;
  const int64_t now_ns = env_.clock().now_ns();
  std::vector<event::Event> events;
  {
    auto lock = page::lock_records(options_.state_dir);
    if (!lock) return options_.log("pages: " + lock.error().message());
    auto loaded = page::load_record(page.record_path);
    if (!loaded) {
      // Never a new baseline over a damaged one: that would accept whatever is there now.
      failed(page, loaded.error().message() + "; remove it to take a new baseline", 0);
      return;
    }
    if (!*loaded && !failure.empty()) return failed(page, failure, failure_status);
    page::PageRecord record;
    if (!*loaded) {
      record.url = pc.url;
      record.baseline = merged;
      record.baseline_ns = now_ns;
      record.baseline_by = "first-fetch";
      record.current = merged;
      record.current_ns = now_ns;
      if (auto st = page::save_record(env_, page.record_path, record); !st)
        return options_.log("pages: " + st.error().message());
      options_.log(fmt::format("page {}: baseline taken ({} active elements{})", quote(pc.url),
                               merged.elements.size(), merged.truncated ? ", truncated" : ""));
      page.failing = false;
      return;
    }
    record = std::move(**loaded);
    auto allow = page::OriginAllowlist::compile(pc.allow_origins, pc.url);
    if (!allow) return options_.log("pages: " + allow.error().message());  // checked by config
    // What was reported and is gone may come back: it is reported again then. (Not
    // after a partial fetch: a user agent's content is missing from `merged`.)
    if (failure.empty())
      std::erase_if(record.reported, [&](const page::Element& e) {
        return !std::binary_search(merged.elements.begin(), merged.elements.end(), e);
      });
    bool injected = false;
    for (const auto& e : page::new_elements(record.baseline, merged)) {
      if (!allow->allows(e)) injected = true;
      if (allow->allows(e) || std::any_of(record.reported.begin(), record.reported.end(),
                                          [&](const page::Element& r) { return r.same(e); }))
        continue;
      if (events.size() == kMaxEventsPerCheck) break;  // the rest at the next check
      record.reported.push_back(e);
      const std::string& ua = seen_by[identity(e)];
      event::Event ev(proto::action::kPageInjected, event::Severity::kCritical, now_ns);
      ev.set("event.category", nlohmann::json::array({"web", "intrusion_detection"}));
      ev.set("url.full", pc.url);
      ev.set("user_agent.original", ua);
      ev.set("mamori.page.element", e.kind);
      ev.set("mamori.page.value", e.value);
      ev.set("mamori.page.origin", e.origin);
      if (!e.snippet.empty()) ev.set("mamori.page.snippet", e.snippet);
      if (merged.truncated) ev.set("mamori.page.truncated", true);
      if (page.discovered) ev.set("mamori.page.discovered", true);
      if (!related.empty()) ev.set("mamori.related_event", related);
      ev.message(fmt::format("page {} has a new {} ({}): {}", quote(pc.url), e.kind, e.origin,
                             escape(e.snippet.empty() ? e.value : e.snippet)));
      events.push_back(std::move(ev));
    }
    if (failure.empty()) {
      record.current = merged;
      record.current_ns = now_ns;
      page.injected = injected;
    }
    record.error = failure;
    record.error_ns = failure.empty() ? 0 : now_ns;
    if (auto st = page::save_record(env_, page.record_path, record); !st)
      options_.log("pages: " + st.error().message());
  }
  {
    MutexLock lock(mu_);
    injected_pages_ = static_cast<size_t>(
        std::count_if(pages_.begin(), pages_.end(), [](const Page& p) { return p.injected; }));
    for (const auto& e : events)
      if (injected_events_.size() < kMaxInjectedKept) injected_events_.push_back(e);
  }
  if (!events.empty()) options_.publish(std::move(events));
  if (!failure.empty()) {
    failed(page, failure, failure_status);
  } else if (page.failing) {
    page.failing = false;
    options_.log(fmt::format("page {}: checked again", quote(pc.url)));
  }
}

}  // namespace mamori::pages
