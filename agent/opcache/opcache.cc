#include "agent/opcache/opcache.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/fs/atomic_replace.h"
#include "core/fs/beneath.h"
#include "core/proto/actions.h"

namespace mamori::opcache {
namespace {

constexpr std::string_view kHelper = R"php(<?php
// mamori's opcache helper (protocol 1; docs/opcache.md). Written by mamori's agent, which
// runs it over FastCGI in this pool after it restored or quarantined files: every script
// the opcache holds at or under the paths posted (each ended by NUL) is dropped, so
// the attacker's compiled code never runs again. Not for the web: it lies outside every
// document root, and without the MAMORI_OPCACHE parameter (which no web request can
// set: theirs all start with HTTP_) it answers 403 and does nothing.
if (PHP_SAPI !== 'fpm-fcgi' || ($_SERVER['MAMORI_OPCACHE'] ?? '') !== '1') {
    http_response_code(403);
    exit;
}
header('Content-Type: text/plain');
echo "mamori-opcache 1\n";
if (!function_exists('opcache_get_status')) {
    echo "off the opcache extension is not loaded\0done 0\0";
    exit;
}
$status = @opcache_get_status(true);
if (!is_array($status)) {
    echo "off opcache is disabled in this pool (or opcache.restrict_api excludes this helper)\0done 0\0";
    exit;
}
$want = [];
foreach (explode("\0", (string) file_get_contents('php://input', false, null, 0, 1 << 21)) as $p) {
    if ($p !== '' && $p[0] === '/') {
        $want[$p === '/' ? '/' : rtrim($p, '/')] = true;
    }
}
$scripts = isset($status['scripts']) && is_array($status['scripts']) ? array_keys($status['scripts']) : [];
foreach ($scripts as $s) {
    for ($d = $s; ; $d = dirname($d)) {
        if (isset($want[$d])) {
            if (opcache_invalidate($s, true)) {
                echo "dropped $s\0";
            }
            break;
        }
        if ($d === '/' || $d === '.' || $d === '') {
            break;
        }
    }
}
// A name not listed (an include by a relative path resolves to the same script): dropping
// what is not cached costs a look-up.
foreach (array_keys($want) as $p) {
    @opcache_invalidate($p, true);
}
echo 'done ', count($scripts), "\0";
)php";

constexpr std::string_view kProtocolLine = "mamori-opcache 1\n";

bool is_under(std::string_view path, std::string_view dir) {
  return path == dir || dir == "/" ||
         (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::string_view helper_source() { return kHelper; }

Status install_helper(Env& env, const std::string& path) {
  if (path.empty() || path[0] != '/' || path.back() == '/')
    return fail("opcache helper", path, EINVAL, "not an absolute file path");
  const std::string dir = dir_of(path);
  const std::string parent = dir_of(dir);
  const std::string dir_name = dir.substr(dir.rfind('/') + 1);
  // Its directory: made 0755 when missing (in a parent that must exist).
  if (!dir_name.empty()) {
    auto p = MAMORI_TRY(fs::open_root(parent));
    struct stat st {};
    if (::fstatat(p.get(), dir_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return fail_errno("fstatat", dir);
      fs::InodeMeta meta;
      meta.mode = 0755;
      MAMORI_TRY(fs::ensure_directory(p.get(), dir_name, meta, dir));
    }
  }
  auto d = MAMORI_TRY(fs::open_root(dir));
  struct stat st {};
  if (::fstat(d.get(), &st) != 0) return fail_errno("fstat", dir);
  if (st.st_uid != 0 || (st.st_mode & 022))
    return fail("opcache helper", dir, EPERM,
                fmt::format("its directory is uid {}'s with mode {:04o}: only root may write "
                            "there (whoever replaces the helper runs code in the pool)",
                            st.st_uid, static_cast<unsigned>(st.st_mode & 07777)));
  const std::string name = path.substr(path.rfind('/') + 1);
  struct stat fst {};
  if (::fstatat(d.get(), name.c_str(), &fst, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISREG(fst.st_mode) && fst.st_uid == 0 && (fst.st_mode & 07777) == 0644)
      if (auto now = fs::read_small_file(path, kHelper.size() + 1); now && *now == kHelper)
        return ok();
  } else if (errno != ENOENT) {
    return fail_errno("fstatat", path);
  }
  return fs::write_file_atomic(env, path, kHelper, 0644);
}

Result<HelperReply> parse_helper_reply(std::string_view body) {
  if (!body.starts_with(kProtocolLine))
    return fail(
        "opcache helper", "", EPROTO,
        "the answer is not the helper's (protocol 1): " + escape(std::string(body.substr(0, 120))));
  body.remove_prefix(kProtocolLine.size());
  HelperReply r;
  while (!body.empty() && !r.complete) {
    const size_t end = body.find('\0');
    if (end == std::string_view::npos) break;  // cut short
    const std::string_view rec = body.substr(0, end);
    body.remove_prefix(end + 1);
    if (rec.starts_with("dropped /")) {
      r.dropped.emplace_back(rec.substr(8));
    } else if (rec.starts_with("off ")) {
      r.enabled = false;
      r.off_reason = std::string(rec.substr(4, 512));
    } else if (rec.starts_with("done ")) {
      uint64_t n = 0;
      for (char c : rec.substr(5)) {
        if (c < '0' || c > '9' || n > (uint64_t{1} << 40))
          return fail("opcache helper", "", EPROTO, "a bad count after done");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      r.cached = n;
      r.complete = true;
    } else {
      return fail("opcache helper", "", EPROTO,
                  "an unknown record: " + escape(std::string(rec.substr(0, 120))));
    }
  }
  return r;
}

Worker::Worker(Env& env, WorkerOptions options)
    : env_(env), options_(std::move(options)), thread_([this] { run(); }) {}

Worker::~Worker() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Worker::acted(const std::string& root, const std::string& rel, std::string_view /*action*/,
                   const std::string& event_id) {
  const auto real = options_.roots.find(root);
  if (real == options_.roots.end()) return;
  Target t{event_id, root, rel.empty() ? real->second : real->second + "/" + rel,
           env_.clock().monotonic_ns()};
  {
    MutexLock lock(mu_);
    if (inbox_.size() >= kMaxInbox) {
      ++counters_.overflows;
      overflowed_ = true;
      return;
    }
    inbox_.push_back(std::move(t));
  }
  wake_.notify_one();
}

Worker::Counters Worker::counters() const {
  MutexLock lock(mu_);
  return counters_;
}

void Worker::wait_idle_for_test() {
  MutexLock lock(mu_);
  idle_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) {
    return inbox_.empty() && !overflowed_ && !running_ && second_.empty();
  });
}

void Worker::run() {
  MutexLock lock(mu_);
  while (true) {
    const auto ready = [&]() MAMORI_REQUIRES(mu_) {
      return stop_ || !inbox_.empty() || overflowed_ ||
             (!second_.empty() && env_.clock().monotonic_ns() >= second_due_ns_);
    };
    while (!ready()) {
      idle_.notify_all();
      if (second_.empty()) {
        wake_.wait(mu_, ready);
      } else {
        const int64_t left = second_due_ns_ - env_.clock().monotonic_ns();
        (void)wake_.wait_for(mu_, std::chrono::nanoseconds(std::max<int64_t>(left, 0)), ready);
      }
    }
    if (stop_) return;
    running_ = true;
    std::vector<Target> batch;
    int pass = 1;
    bool all = false;
    if (!inbox_.empty() || overflowed_) {
      batch = std::exchange(inbox_, {});
      all = std::exchange(overflowed_, false);
    } else {
      batch = std::exchange(second_, {});
      pass = 2;
    }
    lock.unlock();
    round(batch, all, pass);
    lock.lock();
    if (pass == 1 && options_.second_pass.count() > 0 &&
        options_.mode == config::OpcacheMode::kInvalidate) {
      if (second_.empty())
        second_due_ns_ =
            env_.clock().monotonic_ns() + std::chrono::nanoseconds(options_.second_pass).count();
      for (auto& t : batch)
        if (second_.size() < kMaxInbox) second_.push_back(std::move(t));
    }
    running_ = false;
  }
}

Result<HelperReply> Worker::invalidate(const std::vector<std::string>& paths) {
  std::string body;
  for (const auto& p : paths) {
    body += p;
    body.push_back('\0');
  }
  FcgiRequest req;
  const std::string& h = options_.helper_path;
  req.params = {{"GATEWAY_INTERFACE", "CGI/1.1"},
                {"SERVER_PROTOCOL", "HTTP/1.1"},
                {"SERVER_SOFTWARE", "mamori"},
                {"REQUEST_METHOD", "POST"},
                {"CONTENT_TYPE", "application/octet-stream"},
                {"CONTENT_LENGTH", std::to_string(body.size())},
                {"SCRIPT_FILENAME", h},
                {"SCRIPT_NAME", h.substr(h.rfind('/'))},
                {"REQUEST_URI", h.substr(h.rfind('/'))},
                {"DOCUMENT_ROOT", dir_of(h)},
                {"QUERY_STRING", ""},
                {"MAMORI_OPCACHE", "1"}};
  req.body = std::move(body);
  auto resp = MAMORI_TRY(call(env_, options_.endpoint, req, options_.call));
  auto reply = parse_cgi_reply(resp.out);
  const std::string err = escape(resp.err.substr(0, 300));
  if (!reply)
    return fail("opcache helper", options_.endpoint.text, EPROTO,
                reply.error().detail + (err.empty() ? "" : "; php said: " + err));
  if (reply->status != 200)
    return fail("opcache helper", options_.endpoint.text, EPROTO,
                fmt::format("HTTP {} from {}{}", reply->status, quote(h),
                            err.empty() ? std::string(" (is the helper inside open_basedir?)")
                                        : "; php said: " + err));
  auto parsed = MAMORI_TRY(parse_helper_reply(reply->body));
  if (!parsed.complete)
    return fail("opcache helper", options_.endpoint.text, EPROTO,
                "the helper stopped before its end" + (err.empty() ? "" : "; php said: " + err));
  return parsed;
}

Result<pid_t> Worker::reload() {
  const std::string& pf = options_.pid_file;
  auto text = MAMORI_TRY(fs::read_small_file(pf, 64));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  pid_t pid = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || pid > 4'000'000) return fail("pid file", pf, EINVAL, "not a pid");
    pid = pid * 10 + (c - '0');
  }
  if (pid <= 1) return fail("pid file", pf, EINVAL, "not a pid");
  // The pid file may be stale and the pid someone else's now: only php-fpm's master (its
  // title says so, and it is root's) gets the signal.
  const std::string proc = fmt::format("/proc/{}", pid);
  auto cmdline = MAMORI_TRY(fs::read_small_file(proc + "/cmdline", 4096));
  if (!cmdline.starts_with("php-fpm: master process"))
    return fail(
        "reload", pf, ESRCH,
        fmt::format("pid {} is not php-fpm's master ({})", pid, escape(cmdline.substr(0, 80))));
  auto p = MAMORI_TRY(fs::open_root(proc));
  struct stat st {};
  if (::fstat(p.get(), &st) != 0) return fail_errno("fstat", proc);
  if (st.st_uid != 0)
    return fail("reload", pf, EPERM, fmt::format("pid {} is uid {}'s, not root's", pid, st.st_uid));
  if (::kill(pid, SIGUSR2) != 0) return fail_errno("kill SIGUSR2", proc);
  return pid;
}

void Worker::round(std::vector<Target>& targets, bool all, int pass) {
  const auto say = [&](const std::string& line) {
    if (options_.log) options_.log(line);
  };
  // What to ask for: the targets' paths, or every root when there are too many (or the
  // inbox overflowed, and some were never seen).
  std::vector<std::string> paths;
  {
    std::set<std::string> unique;
    size_t bytes = 0;
    for (const auto& t : targets)
      if (unique.insert(t.path).second) bytes += t.path.size() + 1;
    if (all || unique.size() > kMaxRequestPaths || bytes > kMaxRequestBytes) {
      all = true;
      for (const auto& [_, real] : options_.roots) paths.push_back(real);
    } else {
      paths.assign(unique.begin(), unique.end());
    }
  }
  if (paths.empty()) return;
  const bool reload_mode = options_.mode == config::OpcacheMode::kReload;
  std::string method = reload_mode ? "reload" : "invalidate";
  Result<HelperReply> reply = HelperReply{};
  std::optional<pid_t> reloaded;
  std::string fallback_error;
  const auto do_reload = [&]() -> Status {
    // A storm of restores is one reload a second, not one each.
    const int64_t now = env_.clock().monotonic_ns();
    const int64_t gap = std::chrono::nanoseconds(options_.min_reload_interval).count();
    if (last_reload_ns_ && now - last_reload_ns_ < gap)
      env_.clock().wait(std::chrono::nanoseconds(gap - (now - last_reload_ns_)));
    reloaded = MAMORI_TRY(reload());
    last_reload_ns_ = env_.clock().monotonic_ns();
    return ok();
  };
  if (reload_mode) {
    if (auto st = do_reload(); !st) reply = tl::unexpected(st.error());
  } else {
    reply = invalidate(paths);
    if (!reply && !options_.pid_file.empty() && pass == 1) {
      fallback_error = reply.error().message();
      say("opcache: " + fallback_error + "; reloading php-fpm instead");
      method = "reload";
      if (auto st = do_reload(); st)
        reply = HelperReply{};
      else
        reply = tl::unexpected(st.error());
    }
  }
  {
    MutexLock lock(mu_);
    ++counters_.rounds;
    if (!reply) ++counters_.failures;
    if (reply) counters_.dropped += reply->dropped.size();
  }
  if (!reply)
    say(std::string(pass == 2 ? "opcache (second pass): " : "opcache: ") + reply.error().message());
  // The second pass is never reported: it cannot tell code compiled from the tampered
  // file before the restore from code compiled from the restored file after the first
  // pass (both are dropped; the second costs a compile).
  if (pass == 2) return;

  // One event per guard event ("" for a summary's paths: one per root).
  std::map<std::pair<std::string, std::string>, std::vector<const Target*>> by_event;
  for (const auto& t : targets) by_event[{t.related_event, t.root}].push_back(&t);
  if (by_event.empty())  // the inbox overflowed with nothing else
    for (const auto& [root, _] : options_.roots) by_event[{"", root}];
  std::vector<event::Event> events;
  const int64_t now_mono = env_.clock().monotonic_ns();
  for (const auto& [key, ts] : by_event) {
    const auto& [related, root] = key;
    const bool good = reply.has_value();
    event::Event e(good ? proto::action::kOpcacheInvalidated : proto::action::kOpcacheFailed,
                   good ? event::Severity::kInfo : event::Severity::kCritical,
                   env_.clock().now_ns());
    e.set("event.category", nlohmann::json::array({"file"}));
    e.set("event.type", nlohmann::json::array({"change"}));
    e.outcome(good ? "success" : "failure");
    if (!related.empty()) e.set("mamori.related_event", related);
    e.set("mamori.root", root);
    e.set("mamori.opcache.method", method);
    if (method == "invalidate" || !fallback_error.empty())
      e.set("mamori.opcache.socket", options_.endpoint.text);
    if (reloaded) e.set("mamori.opcache.pid", *reloaded);
    if (!fallback_error.empty()) e.set("mamori.opcache.fallback_from", fallback_error);
    nlohmann::json asked = nlohmann::json::array();
    std::vector<std::string> mine;
    int64_t first_seen = now_mono;
    if (all) {
      const auto real = options_.roots.find(root);
      if (real != options_.roots.end()) mine.push_back(real->second);
      e.set("mamori.opcache.whole_root", true);
    }
    for (const Target* t : ts) {
      first_seen = std::min(first_seen, t->seen_ns);
      if (!all) mine.push_back(t->path);
    }
    for (size_t i = 0; i < mine.size() && i < kMaxEventPaths; ++i) asked.push_back(mine[i]);
    e.set("mamori.opcache.paths", asked);
    e.set("mamori.opcache.path_count", mine.size());
    if (!ts.empty()) e.set("event.duration", now_mono - first_seen);
    std::string what = mine.size() == 1 ? quote(mine[0]) : fmt::format("{} paths", mine.size());
    if (good) {
      nlohmann::json dropped = nlohmann::json::array();
      size_t count = 0;
      for (const auto& s : reply->dropped)
        if (std::any_of(mine.begin(), mine.end(), [&](const auto& m) { return is_under(s, m); })) {
          if (count < kMaxEventPaths) dropped.push_back(s);
          ++count;
        }
      if (method == "invalidate") {
        e.set("mamori.opcache.enabled", reply->enabled);
        e.set("mamori.opcache.dropped", dropped);
        e.set("mamori.opcache.dropped_count", count);
        e.set("mamori.opcache.cached", reply->cached);
      }
      if (method == "reload")
        e.message(fmt::format("php-fpm (pid {}) reloaded: its opcache starts empty after {}",
                              reloaded.value_or(0), what));
      else if (!reply->enabled)
        e.message(fmt::format("php-fpm at {} runs without opcache ({}): nothing of {} to drop",
                              quote(options_.endpoint.text), escape(reply->off_reason), what));
      else
        e.message(fmt::format("opcache at {} dropped {} compiled script(s) of {}",
                              quote(options_.endpoint.text), count, what));
    } else {
      e.set("error.message", reply.error().message());
      e.message(
          fmt::format("the compiled code of {} may still run: {}", what, reply.error().message()));
    }
    events.push_back(std::move(e));
  }
  if (options_.publish) options_.publish(std::move(events));
}

}  // namespace mamori::opcache
