#include "agent/relay/honeypot_relay.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/base/json_depth.h"
#include "core/base/quote.h"
#include "core/event/schema.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/outbox/cursor.h"
#include "core/proto/actions.h"

namespace mamori::relay {
namespace {

using event::Severity;
namespace action = proto::action;

// Each honeypot action and the severity the agent gives it (docs/honeypot.md).
struct ActionSeverity {
  std::string_view action;
  Severity severity;
};
constexpr std::array kActions = {
    ActionSeverity{action::kSshConnection, Severity::kNotice},
    ActionSeverity{action::kSshLoginFailed, Severity::kNotice},
    ActionSeverity{action::kSshLoginSucceeded, Severity::kWarning},
    ActionSeverity{action::kSshCommand, Severity::kWarning},
    ActionSeverity{action::kSshDownloadAttempted, Severity::kWarning},
    ActionSeverity{action::kSshForwardAttempted, Severity::kWarning},
    ActionSeverity{action::kSshLimitReached, Severity::kNotice},
    ActionSeverity{action::kSshSessionEnded, Severity::kNotice},
    // A captured file pruned by the honeypot's downloads quota: pruning is an event.
    ActionSeverity{action::kSshDownloadPruned, Severity::kNotice},
    // The honeypot's outbox saying it dropped events (its quota, a full disk): pruning
    // is an event too. Critical when security events went (below).
    ActionSeverity{action::kOutboxDropped, Severity::kWarning},
    ActionSeverity{action::kEventsDropped, Severity::kWarning},
};

// The fields a honeypot event may carry (docs/honeypot.md, Events); the origin, dataset,
// severity and kind are the agent's to say.
constexpr std::array<std::string_view, 24> kFields = {
    "message",           "event.category",
    "event.type",        "event.outcome",
    "event.duration",    "source.ip",
    "source.port",       "source.bytes",
    "destination.bytes", "destination.address",
    "destination.port",  "user.name",
    "url.original",      "process.command_line",
    "process.exit_code", "mamori.related_event",
    "@timestamp",        "event.id",
    "event.action",      "event.dataset",
    "file.hash.sha256",  "file.size",
    "file.mime_type",    "http.response.status_code"};

bool allowed_field(std::string_view dotted) {
  return dotted.starts_with("mamori.ssh.") || dotted.starts_with("mamori.dropped.") ||
         dotted == "mamori.outbox.quota_bytes" ||
         std::find(kFields.begin(), kFields.end(), dotted) != kFields.end();
}

// 32 lower-case hex digits, as Event ids are.
bool event_id_form(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "2026-12-07T08:00:49.123456Z", as event::iso_time() writes it.
bool timestamp_form(const std::string& s) {
  static constexpr std::string_view kForm = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (s.size() != kForm.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (kForm[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != kForm[i]) return false;
  return true;
}

void copy_leaves(const nlohmann::json& node, const std::string& prefix, event::Event& e,
                 size_t& dropped) {
  for (const auto& [key, value] : node.items()) {
    const std::string dotted = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      copy_leaves(value, dotted, e, dropped);
    } else if (allowed_field(dotted)) {
      // The constructor's own (id, action, @timestamp) and the dataset are not copied.
      if (dotted != "event.id" && dotted != "event.action" && dotted != "@timestamp" &&
          dotted != "event.dataset" && dotted != "mamori.related_event")
        e.set(dotted, value);
    } else {
      ++dropped;
    }
  }
}

}  // namespace

Result<event::Event> relayed_event(std::string_view payload, int64_t now_ns) {
  auto refuse = [](std::string why) { return fail_msg("relay", "honeypot event", why); };
  if (payload.size() > HoneypotRelay::kMaxRecordBytes)
    return refuse(
        fmt::format("{} bytes (at most {})", payload.size(), HoneypotRelay::kMaxRecordBytes));
  if (!json_depth_within(payload)) return refuse("nested too deep");
  const auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return refuse("not a JSON object");
  const auto ev = j.find("event");
  if (ev == j.end() || !ev->is_object()) return refuse("no event object");
  const auto act = ev->find("action");
  const auto id = ev->find("id");
  if (act == ev->end() || !act->is_string()) return refuse("no event.action");
  const auto known = std::find_if(kActions.begin(), kActions.end(), [&](const ActionSeverity& a) {
    return a.action == act->get_ref<const std::string&>();
  });
  if (known == kActions.end()) return refuse("not a honeypot action");
  if (id == ev->end() || !id->is_string() || !event_id_form(id->get<std::string>()))
    return refuse("no event.id of the usual form");
  const bool drop_report =
      known->action == action::kOutboxDropped || known->action == action::kEventsDropped;
  Severity severity = known->severity;
  if (drop_report) {
    const nlohmann::json* security = &j;
    for (const char* key : {"mamori", "dropped", "security"}) {
      const auto it = security->is_object() ? security->find(key) : security->end();
      security = it == security->end() ? nullptr : &*it;
      if (!security) break;
    }
    if (security && security->is_number_unsigned() && security->get<uint64_t>() > 0)
      severity = Severity::kCritical;
  }
  event::Event e(id->get<std::string>(), known->action, severity, now_ns);
  if (const auto ts = j.find("@timestamp");
      ts != j.end() && ts->is_string() && timestamp_form(ts->get<std::string>()))
    e.set("@timestamp", *ts);
  size_t dropped = 0;
  copy_leaves(j, "", e, dropped);
  if (!e.get("message").is_string()) return refuse("no message");
  if (drop_report) {
    // Whose drop it was: the agent's own outbox reports its drops with the same actions.
    e.set("mamori.dropped.outbox", "honeypot");
    e.message("honeypot: " + e.get("message").get<std::string>());
    return e;
  }
  // What the honeypot sets on every event (events.h) but a prune, which no connection
  // made; the rest is checked by the field list.
  if (known->action != action::kSshDownloadPruned && !e.get("source.ip").is_string())
    return refuse("no source.ip");
  return e;
}

std::string honeypot_downloads_dir(const std::string& outbox_dir) {
  std::string dir = outbox_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  if (slash == std::string::npos || dir.substr(slash + 1) != "outbox") return {};
  return dir.substr(0, slash) + "/downloads";
}

Result<UniqueFd> open_capture(const std::string& downloads_dir, std::string_view sha256) {
  const bool hex = sha256.size() == 64 && std::all_of(sha256.begin(), sha256.end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                   });
  if (!hex) return fail_msg("open", downloads_dir, "not a SHA-256 (64 lower-case hex digits)");
  const size_t slash = downloads_dir.rfind('/');
  if (slash == std::string::npos || slash == 0)
    return fail_msg("open", downloads_dir, "not beneath a spool directory");
  // The spool is the administrator's (root's parent directory); below it everything is
  // the honeypot's, so nothing there is followed.
  const std::string spool = downloads_dir.substr(0, slash);
  const std::string sub = downloads_dir.substr(slash + 1);
  auto root = MAMORI_TRY(fs::open_root(spool));
  const auto dir = MAMORI_TRY(fs::stat_beneath(root.get(), sub));
  if (!S_ISDIR(dir.st_mode)) return fail("open", downloads_dir, ENOTDIR);
  const std::string rel = sub + "/" + std::string(sha256);
  auto fd = MAMORI_TRY(fs::open_beneath(root.get(), rel, O_RDONLY | O_NONBLOCK));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return fail_errno("fstat", downloads_dir + "/" + rel);
  const std::string path = downloads_dir + "/" + std::string(sha256);
  if (!S_ISREG(st.st_mode)) return fail_msg("open", path, "not a regular file");
  if (st.st_nlink != 1) return fail_msg("open", path, "more than one link (a hard link)");
  if (st.st_uid != dir.st_uid)
    return fail_msg("open", path, "not owned by the downloads directory's owner");
  if (static_cast<uint64_t>(st.st_size) > HoneypotRelay::kMaxCaptureBytes)
    return fail_msg("open", path, "larger than the honeypot's largest max_kb");
  return fd;
}

const decoy::Decoy* decoy_credential(const std::vector<decoy::Decoy>& decoys, std::string_view user,
                                     std::string_view password) {
  for (const auto& d : decoys)
    if ((!d.password.empty() && password == d.password) || (!d.user.empty() && user == d.user))
      return &d;
  return nullptr;
}

HoneypotRelay::HoneypotRelay(Env& env, RelayOptions options)
    : env_(env), options_(std::move(options)), reader_(options_.outbox_dir) {}

HoneypotRelay::~HoneypotRelay() { stop(); }

void HoneypotRelay::start() {
  if (options_.scanner && !options_.downloads_dir.empty())
    scans_ = std::make_unique<triage::ScanWorker>(*options_.scanner, kMaxScansQueued);
  const auto slash = options_.cursor_path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    if (auto st = fs::make_private_dirs(options_.cursor_path.substr(0, slash)); !st && options_.log)
      options_.log("honeypot relay: " + st.error().message());
  uint64_t next = 1;
  if (auto text = fs::read_small_file(options_.cursor_path, 256)) {
    if (auto n = outbox::decode_cursor(*text))
      next = *n;
    else if (options_.log)
      options_.log("honeypot relay: " + options_.cursor_path +
                   " is damaged: relaying again from the oldest event kept");
  } else if (text.error().errnum != ENOENT && options_.log) {
    options_.log("honeypot relay: " + text.error().message());
  }
  reader_.seek(next);
  saved_ = next;
  {
    MutexLock lock(mu_);
    stats_.next_sequence = next;
  }
  thread_ = std::thread([this] { run(); });
}

void HoneypotRelay::stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  scans_.reset();  // after the thread: it was the only one to submit
}

RelayStats HoneypotRelay::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void HoneypotRelay::run() {
  while (true) {
    const bool more = read_some();
    if (!scanning_.empty()) take_scans();
    MutexLock lock(mu_);
    if (stop_) return;
    // A scan running is looked at again soon; nothing to read and nothing scanning
    // waits the poll interval.
    const int64_t wait_ms =
        scanning_.empty() ? options_.poll_ms : std::min<int64_t>(options_.poll_ms, 10);
    if (!more) wake_.wait_for(mu_, std::chrono::milliseconds(wait_ms));
    if (stop_) return;
  }
}

void HoneypotRelay::scan_capture(const event::Event& download) {
  const auto& result = download.get("mamori.ssh.download_result");
  const auto& sha = download.get("file.hash.sha256");
  if (!scans_ || !result.is_string() || result.get<std::string>() != "fetched" || !sha.is_string())
    return;
  const std::string name = sha.get<std::string>();
  auto fd = open_capture(options_.downloads_dir, name);
  if (!fd || scanning_.size() >= kMaxScansQueued) {
    say(fd ? "captured file " + name + " not scanned: the scan queue is full"
           : "captured file not scanned: " + fd.error().message());
    MutexLock lock(mu_);
    ++stats_.not_scanned;
    return;
  }
  const uint64_t id = next_scan_++;
  if (!scans_->submit({id, std::move(*fd), options_.downloads_dir + "/" + name})) {
    MutexLock lock(mu_);
    ++stats_.not_scanned;
    return;
  }
  scanning_.emplace(id, download);
}

// The scans finished: one ssh-download-scanned each, following its download event.
void HoneypotRelay::take_scans() {
  std::vector<event::Event> out;
  uint64_t scanned = 0, failed = 0;
  for (auto& done : scans_->take_done()) {
    const auto it = scanning_.find(done.id);
    if (it == scanning_.end()) continue;
    const event::Event download = std::move(it->second);
    scanning_.erase(it);
    const std::string named = download.get("file.hash.sha256").get<std::string>();
    if (!done.verdict) {
      ++failed;
      say("captured file " + named + " not scanned: " + done.error);
      continue;
    }
    ++scanned;
    const scan::Verdict& v = *done.verdict;
    std::vector<std::string> rules;
    for (const auto& m : *v.matches) rules.push_back(m.rule);
    event::Event e(action::kSshDownloadScanned,
                   rules.empty() ? Severity::kNotice : Severity::kWarning, env_.clock().now_ns());
    e.set("event.category", nlohmann::json::array({"malware", "file"}))
        .set("event.type", nlohmann::json::array({"info"}))
        .set("file.hash.sha256", v.truncated ? named : v.sha256.hex())
        .set("file.size", v.size)
        .set("mamori.scan.rules", rules)
        .set("mamori.related_event", download.id());
    if (v.truncated) e.set("mamori.scan.truncated", true);
    for (const char* f : {"source.ip", "user.name", "url.original", "mamori.ssh.session"})
      if (download.get(f).is_string()) e.set(f, download.get(f));
    const std::string url = download.get("url.original").is_string()
                                ? download.get("url.original").get<std::string>()
                                : "";
    e.message(fmt::format("honeypot capture {} from {}: {}", named, quote(url.substr(0, 200)),
                          rules.empty() ? std::string("no YARA rule matched")
                                        : "YARA " + fmt::format("{}", fmt::join(rules, ", "))));
    // A whole file whose content is its name: its hash is worth a look-up. A file cut at
    // max_kb has no hash anyone else knows.
    const bool whole = !v.truncated && v.sha256.hex() == named &&
                       !download.get("mamori.ssh.download_truncated").is_boolean();
    if (whole && options_.on_captured) options_.on_captured(v.sha256, download.id());
    out.push_back(std::move(e));
  }
  if (!out.empty() && options_.publish) options_.publish(std::move(out));
  MutexLock lock(mu_);
  stats_.scanned += scanned;
  stats_.not_scanned += failed;
}

bool HoneypotRelay::read_some() {
  const int64_t now_ms = env_.clock().monotonic_ns() / 1'000'000;
  if (now_ms - second_start_ms_ >= 1000) {
    second_start_ms_ = now_ms;
    this_second_ = 0;
  }
  if (this_second_ >= kMaxPerSecond) return false;
  const uint64_t wanted = reader_.next();
  std::vector<outbox::Record> records;
  auto n = reader_.read(records, std::min<size_t>(256, kMaxPerSecond - this_second_), 4u << 20);
  if (!n) {
    say(n.error().message());
    return false;
  }
  if (!last_error_.empty()) say("");
  if (*n == 0) return false;
  this_second_ += *n;
  std::vector<event::Event> out;
  uint64_t expected = wanted, missed = 0, relayed = 0, rejected = 0, credentials = 0;
  for (const auto& r : records) {
    if (r.seq > expected) {
      missed += r.seq - expected;
      out.push_back(gap_event(expected, r.seq - 1));
    }
    expected = r.seq + 1;
    const size_t before = out.size();
    relay(r, out);
    if (out.size() == before) {
      ++rejected;
    } else {
      ++relayed;
      if (out.back().get("mamori.related_event").is_string()) ++credentials;
    }
  }
  if (!out.empty() && options_.publish) options_.publish(std::move(out));
  save_cursor();
  MutexLock lock(mu_);
  stats_.relayed += relayed;
  stats_.rejected += rejected;
  stats_.missed += missed;
  stats_.credentials += credentials;
  stats_.next_sequence = reader_.next();
  return true;
}

// Records first..last were gone before the agent read them (the honeypot's quota).
event::Event HoneypotRelay::gap_event(uint64_t first, uint64_t last) const {
  event::Event gap(action::kSinkGap, Severity::kWarning, env_.clock().now_ns());
  gap.set("event.category", nlohmann::json::array({"process"}))
      .set("mamori.sink", "honeypot")
      .set("mamori.gap.reason", "removed")
      .set("mamori.gap.missed", last - first + 1)
      .set("mamori.gap.first_sequence", first)
      .set("mamori.gap.last_sequence", last);
  gap.message(fmt::format(
      "honeypot relay: {} honeypot events were gone before the agent read them (sequence {}-{})",
      last - first + 1, first, last));
  return gap;
}

// Said once per different error: the relay retries every poll.
void HoneypotRelay::say(const std::string& error) {
  if (error == last_error_) return;
  last_error_ = error;
  if (options_.log)
    options_.log(error.empty() ? "honeypot relay: reading again" : "honeypot relay: " + error);
}

void HoneypotRelay::relay(const outbox::Record& r, std::vector<event::Event>& out) {
  auto e = relayed_event(r.payload, env_.clock().now_ns());
  if (!e) return;
  if (options_.origin) {
    event::Event stamped = *e;
    options_.origin->stamp(stamped);
    stamped.set("event.sequence", 1);  // the outbox's to give
    if (!event::Schema::builtin().check(stamped.fields()).empty()) return;
  }
  const auto& act = e->action();
  if (act == action::kSshLoginFailed || act == action::kSshLoginSucceeded) {
    const auto& user = e->get("user.name");
    const auto& password = e->get("mamori.ssh.password");
    const auto* d =
        decoy_credential(options_.decoys, user.is_string() ? user.get<std::string>() : "",
                         password.is_string() ? password.get<std::string>() : "");
    if (d) {
      CredentialSeen seen{d, e->get("source.ip").get<std::string>(),
                          user.is_string() ? user.get<std::string>() : "", event::Event::new_id(),
                          env_.clock().now_ns()};
      e->set("mamori.related_event", seen.event_id);
      if (options_.on_credential) options_.on_credential(seen);
    }
  }
  if (act == action::kSshDownloadAttempted) scan_capture(*e);
  out.push_back(std::move(*e));
}

void HoneypotRelay::save_cursor() {
  const uint64_t next = reader_.next();
  if (next == saved_) return;
  if (auto st =
          fs::write_file_atomic(env_, options_.cursor_path, outbox::encode_cursor(next), 0600);
      !st) {
    say(st.error().message());
    return;
  }
  saved_ = next;
}

}  // namespace mamori::relay
