// bench_scan: how fast the manager reads a channel `events` message into rows, its way
// (scan_events_message, manager/db/event_columns.h) against the decoder's way
// (decode_agent_message, which parses the message into nlohmann::json objects, then
// extract_event_batch), on the same message in the same process. The message is what
// bench_manager's agents send (bench/manager/fleet.cc: ~1.2 KB ECS events, file changes
// and, one in ten, an ip-banned), made here with a fixed seed so every run reads the same
// bytes. Before timing, both ways must give the same rows.
//
//   bench_scan [EVENTS_PER_MESSAGE (500)] [SECONDS_PER_ROUND (1)] [ROUNDS (5)]
//
// Each round reads the message again and again for at least SECONDS_PER_ROUND of this
// thread's CPU time; the figures are the median round's (CPU time, so another process on
// the machine slows the run, not the figures: the wall time is printed beside it).

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/base/env.h"
#include "core/proto/channel.h"
#include "manager/db/event_columns.h"

namespace {

namespace ch = mamori::proto::channel;
using mamori::manager::EventBatch;

constexpr const char* kRoot = "/var/www/html";
constexpr const char* kAgentKey = "6f1c2d9e-8a47-4b3e-9c1d-2e5f7a8b9c0d";
// Paths a WordPress site's tampering touches (as fleet.cc's).
constexpr const char* kPaths[] = {
    "index.php",
    "wp-login.php",
    "wp-config.php",
    "xmlrpc.php",
    "wp-includes/version.php",
    "wp-includes/js/jquery/jquery.min.js",
    "wp-admin/admin-ajax.php",
    "wp-content/plugins/contact-form-7/wp-contact-form-7.php",
    "wp-content/themes/twentytwentyfour/functions.php",
    "wp-content/uploads/2024/05/shell.php",
    ".htaccess",
};

std::string hex(std::mt19937_64& rng, size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned>(rng() & 0xff);
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

// One event of the shape bench_manager's agents send.
std::string event_text(std::mt19937_64& rng, uint64_t seq) {
  const int64_t ms = 1'796'000'000'000 + static_cast<int64_t>(seq) * 7;
  const std::string t = fmt::format("2026-11-29T{:02}:{:02}:{:02}.{:03}Z", ms / 3'600'000 % 24,
                                    ms / 60'000 % 60, ms / 1000 % 60, ms % 1000);
  const std::string id = fmt::format("{:012x}", ms) + hex(rng, 10);
  const std::string agent = "0b5e7c1a-3d2f-4e6a-9b8c-7d6e5f4a3b2c";
  const std::string host = "web-0042.example.net";
  const std::string head = fmt::format(
      R"({{"@timestamp":"{}","agent":{{"id":"{}","name":"{}","type":"mamori","version":"0.12.0"}},)"
      R"("ecs":{{"version":"8.11.0"}},)",
      t, agent, host);
  if (seq % 10 == 0) {
    const std::string ip = fmt::format("203.0.113.{}", rng() % 254 + 1);
    return head +
           fmt::format(
               R"("event":{{"action":"ip-banned","category":["network","intrusion_detection"],)"
               R"("created":"{t}","dataset":"mamori.logwatch","id":"{id}","kind":"alert",)"
               R"("module":"mamori","outcome":"success","reason":"decoy path requested",)"
               R"("sequence":{seq},"severity":7,"type":["denied"]}},)"
               R"("host":{{"hostname":"{h}","name":"{h}"}},"message":"ip-banned {ip}",)"
               R"("rule":{{"name":"decoy-url"}},"source":{{"ip":"{ip}"}},)"
               R"("url":{{"original":"/wp-admin/backup.zip"}}}})",
               fmt::arg("t", t), fmt::arg("id", id), fmt::arg("seq", seq), fmt::arg("h", host),
               fmt::arg("ip", ip));
  }
  const std::string rel = kPaths[rng() % std::size(kPaths)];
  const std::string name = rel.substr(rel.rfind('/') + 1);  // npos + 1 is 0
  const size_t dot = name.rfind('.');
  const char* action = seq % 3 == 0 ? "file-restored" : "file-changed";
  return head +
         fmt::format(
             R"("event":{{"action":"{action}","category":["file","intrusion_detection"],)"
             R"("created":"{t}","dataset":"mamori.file","id":"{id}","kind":"alert",)"
             R"("module":"mamori","outcome":"success","sequence":{seq},"severity":5,)"
             R"("type":["change"]}},"file":{{"extension":"{ext}","hash":{{"sha256":"{sha}"}},)"
             R"("name":"{name}","path":"{root}/{rel}"}},"host":{{"hostname":"{h}","name":"{h}"}},)"
             R"("mamori":{{"baseline":{{"sha256":"{base}"}},"change":"modified","mode":"restore",)"
             R"("path":"{rel}","root":"{root}","trigger":"realtime"}},)"
             R"("message":"{action} '{root}/{rel}'","process":{{"command_line":"php-fpm: pool www",)"
             R"("executable":"/usr/sbin/php-fpm8.2","parent":{{"executable":"/usr/sbin/php-fpm8.2",)"
             R"("pid":812}},"pid":{pid}}},"user":{{"id":"33","name":"www-data"}}}})",
             fmt::arg("action", action), fmt::arg("t", t), fmt::arg("id", id), fmt::arg("seq", seq),
             fmt::arg("ext", dot == std::string::npos ? "" : name.substr(dot + 1)),
             fmt::arg("sha", hex(rng, 32)), fmt::arg("name", name), fmt::arg("root", kRoot),
             fmt::arg("rel", rel), fmt::arg("h", host), fmt::arg("base", hex(rng, 32)),
             fmt::arg("pid", 1000 + rng() % 30000));
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench_scan: %s\n", why.c_str());
  std::exit(1);
}

EventBatch by_scan(const std::string& text) {
  auto b = mamori::manager::scan_events_message(kAgentKey, text);
  if (!b) die("the scan refused the message: " + b.error().message());
  if (!*b) die("the scan did not take the message for an events message");
  return std::move(**b);
}

EventBatch by_decoder(const std::string& text) {
  auto m = ch::decode_agent_message(text);
  if (!m) die("the decoder refused the message: " + m.error().message);
  const auto* ev = std::get_if<ch::Events>(&*m);
  if (!ev) die("the decoder did not read an events message");
  auto b = mamori::manager::extract_event_batch(kAgentKey, ev->events);
  if (!b) die("extract_event_batch refused the events: " + b.error().message());
  return std::move(*b);
}

void check_same(const EventBatch& a, const EventBatch& b) {
  if (a.rows.size() != b.rows.size() || a.min_sequence != b.min_sequence ||
      a.max_sequence != b.max_sequence)
    die("the two ways read different batches");
  for (size_t i = 0; i < a.rows.size(); ++i) {
    const auto& x = a.rows[i];
    const auto& y = b.rows[i];
    if (x.id != y.id || x.sequence != y.sequence || x.action != y.action || x.path != y.path ||
        x.ip != y.ip || x.time_ns != y.time_ns || x.severity != y.severity ||
        nlohmann::json::parse(x.json) != nlohmann::json::parse(y.json))
      die("the two ways read event " + std::to_string(i) + " differently");
  }
}

int64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Round {
  double cpu_s = 0;
  double wall_s = 0;
  uint64_t messages = 0;
};

struct Figures {
  double mb_per_s = 0;      // MB (10^6 bytes) of message text per CPU second
  double events_per_s = 0;  // per CPU second
  double wall_mb_per_s = 0;
};

Figures measure(const char* name, const std::string& text, size_t events, double seconds,
                int rounds, const std::function<EventBatch(const std::string&)>& read) {
  const mamori::SystemClock clock;
  std::vector<Round> all;
  uint64_t rows = 0;
  for (int r = 0; r < rounds; ++r) {
    Round round;
    const int64_t wall0 = clock.monotonic_ns();
    const int64_t cpu0 = cpu_ns();
    do {
      rows += read(text).rows.size();
      ++round.messages;
      round.cpu_s = static_cast<double>(cpu_ns() - cpu0) / 1e9;
    } while (round.cpu_s < seconds);
    round.wall_s = static_cast<double>(clock.monotonic_ns() - wall0) / 1e9;
    all.push_back(round);
  }
  uint64_t messages = 0;
  for (const Round& r : all) messages += r.messages;
  if (rows != messages * events) die(std::string(name) + " lost rows");
  std::sort(all.begin(), all.end(), [](const Round& a, const Round& b) {
    return a.messages / a.cpu_s > b.messages / b.cpu_s;
  });
  const Round& m = all[all.size() / 2];
  Figures f;
  const double bytes = static_cast<double>(text.size()) * static_cast<double>(m.messages);
  f.mb_per_s = bytes / m.cpu_s / 1e6;
  f.events_per_s = static_cast<double>(events) * static_cast<double>(m.messages) / m.cpu_s;
  f.wall_mb_per_s = bytes / m.wall_s / 1e6;
  std::printf(
      "%-28s %9.1f MB/s %12.0f events/s %9.0f ns/event   (wall: %.1f MB/s; %d rounds, "
      "range %.1f-%.1f MB/s)\n",
      name, f.mb_per_s, f.events_per_s, 1e9 / f.events_per_s, f.wall_mb_per_s, rounds,
      static_cast<double>(text.size()) * all.back().messages / all.back().cpu_s / 1e6,
      static_cast<double>(text.size()) * all.front().messages / all.front().cpu_s / 1e6);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t events = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 500;
  const double seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 1.0;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  if (events == 0 || events > ch::kMaxEventsPerBatch || !(seconds > 0) || rounds < 1)
    die("usage: bench_scan [EVENTS_PER_MESSAGE 1..1000] [SECONDS_PER_ROUND] [ROUNDS]");

  std::mt19937_64 rng(42);
  std::vector<std::string> texts;
  for (size_t i = 1; i <= events; ++i) texts.push_back(event_text(rng, 1000 + i));
  // The keys in the order ch::encode writes them, as the agents send the message.
  const std::string text = fmt::format(R"({{"events":[{}],"type":"events","v":{}}})",
                                       fmt::join(texts, ","), ch::kVersion);
  check_same(by_scan(text), by_decoder(text));
  std::printf("one message: %zu events, %zu bytes (%.0f bytes an event)\n", events, text.size(),
              static_cast<double>(text.size()) / static_cast<double>(events));

  const Figures dec =
      measure("decoder + extract_event_batch", text, events, seconds, rounds, by_decoder);
  const Figures scan = measure("scan_events_message", text, events, seconds, rounds, by_scan);
  std::printf("scan / decoder: %.2fx\n", scan.mb_per_s / dec.mb_per_s);
  return 0;
}
