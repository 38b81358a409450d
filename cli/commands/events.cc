// mamori events: the event log (agent.event_log, and PATH.1 when --since reaches back)
// as a timeline grouped by incident (events linked by mamori.related_event and
// mamori.heal.trigger.id: docs/formats/events.md, Incidents), filtered by time, path and
// address; --json for scripts; --follow for new events; --check against the field list.
//
// Memory: two passes over the files, keeping only the events shown (at most
// kMaxShown; past it the oldest are left out and the output says how many).

#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/event/event.h"
#include "core/event/schema.h"
#include "core/fs/admin_files.h"
#include "core/logparse/ip.h"
#include "core/proto/actions.h"

namespace mamori::cli {
namespace {

constexpr size_t kMaxShown = 100'000;
constexpr size_t kMaxLine = 64ull << 20;  // a summary of 10,000 long paths fits easily

// Reads complete lines ('\n'-terminated) from an fd, from `offset` on; a torn tail (a
// write cut short) is left for the next read.
class LineReader {
 public:
  explicit LineReader(UniqueFd fd) : fd_(std::move(fd)) {}
  // Calls f(line) for each complete line now in the file; false on a read error.
  template <typename F>
  Status each(F&& f) {
    char buf[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read", "event log");
      }
      if (n == 0) return ok();
      offset_ += static_cast<uint64_t>(n);
      pending_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1)
        f(std::string_view(pending_).substr(start, nl - start), ++line_no_);
      pending_.erase(0, start);
      if (pending_.size() > kMaxLine) pending_.clear();  // not an event line: skipped
    }
  }
  int fd() const { return fd_.get(); }
  uint64_t offset() const { return offset_; }

 private:
  UniqueFd fd_;
  std::string pending_;
  uint64_t offset_ = 0;
  uint64_t line_no_ = 0;
};

Result<std::string> parse_since(const std::string& text, int64_t now_ns) {
  // A duration back from now: 30s, 10m, 2h, 7d.
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front())) &&
      std::string_view("smhd").find(text.back()) != std::string_view::npos) {
    const std::string digits = text.substr(0, text.size() - 1);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 9) {
      const int64_t mult = text.back() == 's'   ? 1
                           : text.back() == 'm' ? 60
                           : text.back() == 'h' ? 3600
                                                : 86400;
      return event::iso_time(now_ns - std::stoll(digits) * mult * 1'000'000'000);
    }
  }
  // A UTC time: 2026-12-04, 2026-12-04T16:00, 2026-12-04T16:00:05[Z].
  struct tm tm {};
  std::string t = text;
  if (!t.empty() && t.back() == 'Z') t.pop_back();
  for (const char* fmt : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"}) {
    tm = {};
    const char* end = ::strptime(t.c_str(), fmt, &tm);
    if (end && *end == '\0')
      return event::iso_time(static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000);
  }
  return fail("events", text, EINVAL,
              "--since takes a UTC time (2026-12-04T16:00:00) or a duration back from now (30s, "
              "10m, 2h, 7d)");
}

struct Filter {
  std::string since;  // ISO text; events at or after it
  std::string path;   // glob or prefix over file.path
  std::string ip;     // canonical text
  bool matches(const nlohmann::json& e) const {
    if (!since.empty()) {
      const auto& ts = e.value("@timestamp", std::string());
      if (ts < since) return false;
    }
    if (!ip.empty()) {
      const auto src = e.contains("source") && e["source"].is_object()
                           ? e["source"].value("ip", std::string())
                           : std::string();
      if (src != ip) return false;
    }
    if (!path.empty()) {
      const auto fp = e.contains("file") && e["file"].is_object()
                          ? e["file"].value("path", std::string())
                          : std::string();
      if (fp.empty()) return false;
      if (path.find_first_of("*?[") != std::string::npos) {
        if (::fnmatch(path.c_str(), fp.c_str(), 0) != 0) return false;
      } else {
        std::string p = path;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        if (fp != p && !fp.starts_with(p == "/" ? p : p + "/")) return false;
      }
    }
    return true;
  }
};

std::string str_at(const nlohmann::json& e, std::initializer_list<const char*> keys) {
  const nlohmann::json* n = &e;
  for (const char* k : keys) {
    if (!n->is_object()) return {};
    auto it = n->find(k);
    if (it == n->end()) return {};
    n = &*it;
  }
  return n->is_string() ? n->get<std::string>() : std::string();
}

// The ids an event links to (docs/formats/events.md, Incidents).
std::vector<std::string> links_of(const nlohmann::json& e) {
  std::vector<std::string> out;
  for (auto id :
       {str_at(e, {"mamori", "related_event"}), str_at(e, {"mamori", "heal", "trigger", "id"})})
    if (!id.empty()) out.push_back(std::move(id));
  return out;
}

struct Shown {
  std::string line;  // as written
  nlohmann::json e;
  std::string id, time;
};

// The last 8 digits: an id starts with its time in ms (core/event/event.h), so the first
// ones are the same for every event of a minute; the end is random.
std::string short_id(const std::string& id) {
  return id.size() > 8 ? id.substr(id.size() - 8) : id;
}

// An attacker's string on one terminal line: what a terminal would act on is escaped
// (escape_for_terminal), and so are the line breaks and tabs it keeps.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : escape_for_terminal(s)) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out;
}

std::string describe(const nlohmann::json& e) {
  const std::string action = str_at(e, {"event", "action"});
  std::string what = str_at(e, {"message"});
  if (action == proto::action::kTamperAttributed) {
    const auto status = e.contains("http") ? e["http"]["response"].value("status_code", 0) : 0;
    what = fmt::format("request from {}: {} -> {} ({} {})", str_at(e, {"source", "ip"}),
                       str_at(e, {"url", "original"}), status, str_at(e, {"mamori", "attribution"}),
                       str_at(e, {"file", "path"}));
  }
  return one_line(what);
}

void print_line(const Shown& s, bool indent) {
  std::string links;
  for (const auto& l : links_of(s.e)) links += " <- " + short_id(l);
  std::printf("%s%s  %-20s %s  [%s%s]\n", indent ? "  " : "", s.time.c_str(),
              one_line(str_at(s.e, {"event", "action"})).c_str(), describe(s.e).c_str(),
              one_line(short_id(s.id)).c_str(), one_line(links).c_str());
}

struct Reader {
  App& app;
  const Filter& filter;
  // Every complete line of each file, in order; a line that is not JSON is skipped.
  template <typename F>
  Status each_event(const std::vector<std::string>& files, F&& f) {
    for (const auto& path : files) {
      auto fd = fs::open_admin_read(path);
      if (!fd) {
        if (fd.error().errnum == ENOENT && path.ends_with(".1")) continue;
        return tl::unexpected(std::move(fd).error());
      }
      LineReader r(std::move(*fd));
      MAMORI_TRY(r.each([&](std::string_view line, uint64_t) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object()) f(line, std::move(j));
      }));
    }
    return ok();
  }
};

int check_events(App& app, const std::vector<std::string>& files) {
  const auto& schema = event::Schema::builtin();
  uint64_t events = 0, bad = 0;
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& path : files) {
    auto fd = fs::open_admin_read(path);
    if (!fd) return app.report(fd.error(), kExitIncomplete);
    LineReader r(std::move(*fd));
    auto st = r.each([&](std::string_view line, uint64_t no) {
      ++events;
      auto j = nlohmann::json::parse(line, nullptr, false);
      std::vector<std::string> found =
          j.is_discarded() ? std::vector<std::string>{"not JSON"} : schema.check(j);
      if (found.empty()) return;
      ++bad;
      for (const auto& p : found) {
        if (app.options().json)
          problems.push_back({{"file", path}, {"line", no}, {"problem", p}});
        else
          std::printf("%s:%llu: %s\n", escape(path).c_str(), static_cast<unsigned long long>(no),
                      escape(p).c_str());
      }
    });
    if (!st) return app.report(st.error(), kExitIncomplete);
  }
  if (app.options().json)
    print_json({{"events", events}, {"invalid", bad}, {"problems", problems}});
  else if (!app.options().quiet)
    std::printf("%llu events, %llu invalid\n", static_cast<unsigned long long>(events),
                static_cast<unsigned long long>(bad));
  return bad ? kExitChanges : kExitOk;
}

volatile sig_atomic_t g_stop = 0;

// Prints what is appended to `path` from its current end (or `from` bytes in), following
// a rotation (a new file at the path once the old one is read to its end) and a
// copytruncate (the file shorter than what was read: read from its start).
int follow(App& app, const std::string& path, const Filter& filter,
           std::unordered_set<std::string> shown_ids, uint64_t from) {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  const auto dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  UniqueFd ino(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!ino.valid() || ::inotify_add_watch(ino.get(), dir.empty() ? "." : dir.c_str(),
                                          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |
                                              IN_DELETE | IN_CLOSE_WRITE) < 0)
    return app.report(Error{"inotify_add_watch", dir, errno, ""}, kExitIncomplete);
  std::optional<LineReader> reader;
  auto open_at = [&](uint64_t skip) -> Status {
    auto fd = MAMORI_TRY(fs::open_admin_read(path));
    if (skip && ::lseek(fd.get(), static_cast<off_t>(skip), SEEK_SET) < 0)
      return fail_errno("lseek", path);
    reader.emplace(std::move(fd));
    return ok();
  };
  if (auto st = open_at(from); !st && st.error().errnum != ENOENT)
    return app.report(st.error(), kExitIncomplete);
  uint64_t base = from;
  auto emit = [&](std::string_view line, uint64_t) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) return;
    bool linked = false;
    for (const auto& l : links_of(j)) linked = linked || shown_ids.contains(l);
    if (!filter.matches(j) && !linked) return;
    Shown s{std::string(line), j, str_at(j, {"event", "id"}), str_at(j, {"@timestamp"})};
    if (shown_ids.size() < kMaxShown) shown_ids.insert(s.id);
    if (app.options().json)
      std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    else
      print_line(s, false);
    std::fflush(stdout);
  };
  while (!g_stop) {
    if (reader) {
      if (auto st = reader->each(emit); !st) return app.report(st.error(), kExitIncomplete);
      struct stat at_path {
      }, ours{};
      const bool exists = ::stat(path.c_str(), &at_path) == 0;
      ::fstat(reader->fd(), &ours);
      if (exists && (at_path.st_ino != ours.st_ino || at_path.st_dev != ours.st_dev)) {
        if (auto st = open_at(0); !st) return app.report(st.error(), kExitIncomplete);  // rotated
        base = 0;
        continue;
      }
      if (static_cast<uint64_t>(ours.st_size) < base + reader->offset()) {  // copytruncate
        if (auto st = open_at(0); !st) return app.report(st.error(), kExitIncomplete);
        base = 0;
        continue;
      }
    } else if (auto st = open_at(0); st) {
      base = 0;
      continue;
    }
    pollfd p{ino.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) {
      char buf[4096];
      while (::read(ino.get(), buf, sizeof buf) > 0) {
      }
    }
  }
  return kExitOk;
}

}  // namespace

int run_events(App& app, const EventsOptions& options) {
  const std::string& log = app.config().agent.event_log;
  if (options.check) {
    std::vector<std::string> files = options.files;
    if (files.empty()) files.push_back(log);
    return check_events(app, files);
  }
  Filter filter;
  if (!options.since.empty()) {
    auto since = parse_since(options.since, app.env().clock().now_ns());
    if (!since) return app.report(since.error(), kExitUsage);
    filter.since = *since;
  }
  if (!options.ip.empty()) {
    auto ip = logparse::IpAddress::parse(options.ip);
    if (!ip)
      return app.report(Error{"events", options.ip, EINVAL, "--ip takes an IPv4 or IPv6 address"},
                        kExitUsage);
    filter.ip = ip->to_string();
  }
  filter.path = options.path;

  // Which files: the rotated one first when --since reaches before the current file's
  // first event (or the current file is missing or empty).
  std::vector<std::string> files;
  if (!filter.since.empty()) {
    std::string first;
    if (auto fd = fs::open_admin_read(log)) {
      LineReader r(std::move(*fd));
      (void)r.each([&](std::string_view line, uint64_t) {
        if (!first.empty()) return;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object()) first = j.value("@timestamp", std::string());
      });
    }
    if (first.empty() || filter.since < first) files.push_back(log + ".1");
  }
  files.push_back(log);

  // Pass 1: the events that match, and the ids they are or link to.
  Reader reader{app, filter};
  std::unordered_set<std::string> wanted;
  size_t matched = 0;
  auto st = reader.each_event(files, [&](std::string_view, nlohmann::json&& e) {
    if (!filter.matches(e)) return;
    ++matched;
    if (wanted.size() >= 4 * kMaxShown) return;
    wanted.insert(str_at(e, {"event", "id"}));
    for (auto& l : links_of(e)) wanted.insert(std::move(l));
  });
  if (!st) return app.report(st.error(), kExitIncomplete);
  // Pass 2: those, and every event linked with them (the rest of their incidents).
  std::deque<Shown> shown;
  size_t left_out = 0;
  st = reader.each_event(files, [&](std::string_view line, nlohmann::json&& e) {
    const std::string id = str_at(e, {"event", "id"});
    bool in = filter.matches(e) || wanted.contains(id);
    for (const auto& l : links_of(e)) in = in || wanted.contains(l);
    if (!in) return;
    if (shown.size() >= kMaxShown) {
      shown.pop_front();
      ++left_out;
    }
    shown.push_back({std::string(line), std::move(e), id, ""});
    shown.back().time = str_at(shown.back().e, {"@timestamp"});
  });
  if (!st) return app.report(st.error(), kExitIncomplete);

  // Incidents: connected by links (union-find over ids).
  std::unordered_map<std::string, std::string> parent;
  std::function<std::string(const std::string&)> find = [&](const std::string& x) -> std::string {
    auto it = parent.find(x);
    if (it == parent.end() || it->second == x) return x;
    return it->second = find(it->second);
  };
  for (const auto& s : shown) {
    parent.try_emplace(s.id, s.id);
    for (const auto& l : links_of(s.e)) {
      parent.try_emplace(l, l);
      parent[find(l)] = find(s.id);
    }
  }
  std::map<std::string, std::vector<const Shown*>> groups;  // root id -> events
  for (const auto& s : shown) groups[find(s.id)].push_back(&s);
  std::vector<std::vector<const Shown*>> ordered;
  for (auto& [root, g] : groups) {
    std::stable_sort(g.begin(), g.end(),
                     [](const Shown* a, const Shown* b) { return a->time < b->time; });
    ordered.push_back(std::move(g));
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.front()->time < b.front()->time; });

  if (!options.follow || !shown.empty()) {
    if (left_out && !app.options().quiet)
      std::fprintf(stderr, "mamori: %zu earlier events not shown (at most %zu)\n", left_out,
                   kMaxShown);
    for (const auto& g : ordered) {
      if (app.options().json) {
        for (const auto* s : g) std::printf("%s\n", s->line.c_str());
        continue;
      }
      if (g.size() == 1) {
        print_line(*g.front(), false);
        continue;
      }
      std::set<std::string> ips, paths;
      for (const auto* s : g) {
        if (auto ip = str_at(s->e, {"source", "ip"}); !ip.empty()) ips.insert(ip);
        if (auto p = str_at(s->e, {"file", "path"}); !p.empty()) paths.insert(p);
      }
      std::string about;
      for (const auto& ip : ips) about += " " + ip;
      for (const auto& p : paths) about += " " + one_line(p);
      // Named by the event the others link to (the file event), else the first.
      const Shown* head = g.front();
      for (const auto* s : g)
        if (links_of(s->e).empty()) {
          head = s;
          break;
        }
      std::printf("incident %s (%zu events):%s\n", one_line(short_id(head->id)).c_str(), g.size(),
                  about.c_str());
      for (const auto* s : g) print_line(*s, true);
    }
  }
  std::fflush(stdout);
  if (options.follow) {
    std::unordered_set<std::string> ids;
    for (const auto& s : shown) ids.insert(s.id);
    struct stat now {};
    const uint64_t end = ::stat(log.c_str(), &now) == 0 ? static_cast<uint64_t>(now.st_size) : 0;
    return follow(app, log, filter, std::move(ids), end);
  }
  return matched ? kExitOk : kExitChanges;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori events - the agent's events as a timeline of incidents

SYNOPSIS
    mamori events [--since TIME|DURATION] [--path GLOB|PREFIX] [--ip IP] [--follow]
    mamori events --check [FILE...]

DESCRIPTION
    Reads the event log (agent.event_log, default /var/log/mamori/events.jsonl; its
    rotated PATH.1 too when --since reaches back before the log's first event) and
    shows the events that match every filter given, grouped by incident: events
    linked by their ids (mamori.related_event, mamori.heal.trigger.id;
    docs/formats/events.md, Incidents) are shown together, in time order, with the
    events they link to even when those do not match. One incident: the request
    that wrote or called a file (tamper-attributed), the guard's restore or
    quarantine of it, the ban of the address that made it.

    Each line: @timestamp, event.action, what happened, [the event id's first 8
    digits <- the ids it links to]. Attackers' strings are shown escaped.

OPTIONS
    --since TIME|DURATION  events at or after a UTC time (2026-12-04T16:00:00,
                           2026-12-04) or that long ago (30s, 10m, 2h, 7d)
    --path GLOB|PREFIX     events whose file.path matches a glob (* crosses /) or
                           is PREFIX or under it
    --ip IP                events whose source.ip is IP
    -f, --follow           then print each new matching event (or one linked to an
                           event shown) as it is written, across log rotations,
                           until interrupted (SIGINT, SIGTERM: exit 0)
    --json                 the events as written, one JSON object per line, in the
                           same order (the links are in the events)
    --check [FILE...]      check every event of the log (or of FILEs) against the
                           fields mamori may write (docs/formats/ecs-fields.tsv):
                           each problem as FILE:LINE: FIELD: what is wrong

EXAMPLES
    mamori events --ip 203.0.113.7
    mamori events --since 1h --path '/var/www/html/wp-content/uploads/*'
    mamori events --json --since 1d | jq -c 'select(.event.dataset == "mamori.ban")'
    mamori events --follow

EXIT STATUS
    0 some event matched (--check: every event is valid; --follow: interrupted);
    1 no event matched (--check: some event is invalid); 2 usage error or invalid
    config; 3 the event log could not be read.)TXT";

Run setup(CLI::App& cmd) {
  auto options = std::make_shared<EventsOptions>();
  cmd.add_option("--since", options->since);
  cmd.add_option("--path", options->path);
  cmd.add_option("--ip", options->ip);
  cmd.add_flag("-f,--follow", options->follow);
  cmd.add_flag("--check", options->check);
  cmd.add_option("files", options->files);
  return [options](App& app) {
    if (!options->files.empty() && !options->check)
      return usage_error("events", "events takes FILE only with --check");
    return run_events(app, *options);
  };
}

}  // namespace

Command events_command() {
  return {"events",
          "events [--since T] [--path P] [--ip IP] [--follow]",
          "\nthe event log as a timeline of incidents",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
