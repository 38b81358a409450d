// Cost of matching one access-log request against the full default rule set, and of
// counting it for the threshold rules. Run from a release build:
//   bench_rules --benchmark_min_time=1
// The pipeline's target is 1M lines/s on one core, so match + thresholds must stay well
// under 1 us a line (about 400 ns is the budget).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rules/matcher.h"
#include "core/rules/threshold.h"

namespace mamori::rules {
namespace {

constexpr std::string_view kChrome =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36";

const Matcher& defaults() {
  static const Matcher m = [] {
    auto set = load_rules({std::string(MAMORI_SOURCE_DIR) + "/etc/rules/default.rules"});
    if (!set) {
      std::fprintf(stderr, "%s\n", set.error().text().c_str());
      std::exit(1);
    }
    auto c = Matcher::compile(std::move(*set));
    if (!c) {
      std::fprintf(stderr, "%s\n", c.error().text().c_str());
      std::exit(1);
    }
    return std::move(*c);
  }();
  return m;
}

// A page view with its assets, a feed fetch, an admin's AJAX call: what most lines are.
const std::vector<Request> kBenign = {
    {"GET", "/2023/07/garden-tomato-soup/", "GET /2023/07/garden-tomato-soup/ HTTP/1.1", kChrome,
     "https://www.google.com/", 200},
    {"GET", "/wp-content/themes/kadence/assets/css/global.min.css?ver=1.1.51",
     "GET /wp-content/themes/kadence/assets/css/global.min.css?ver=1.1.51 HTTP/1.1", kChrome,
     "https://www.example.org/2023/07/garden-tomato-soup/", 200},
    {"GET", "/wp-includes/js/jquery/jquery.min.js?ver=3.7.1",
     "GET /wp-includes/js/jquery/jquery.min.js?ver=3.7.1 HTTP/1.1", kChrome,
     "https://www.example.org/2023/07/garden-tomato-soup/", 304},
    {"GET", "/?s=coffee grinder", "GET /?s=coffee+grinder HTTP/1.1", kChrome,
     "https://www.example.org/", 200},
    {"GET", "/feed/", "GET /feed/ HTTP/1.1",
     "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)",
     "", 304},
    {"POST", "/wp-admin/admin-ajax.php", "POST /wp-admin/admin-ajax.php HTTP/1.1", kChrome,
     "https://www.example.org/wp-admin/", 200},
    {"GET", "/wp-json/wp/v2/posts?per_page=10", "GET /wp-json/wp/v2/posts?per_page=10 HTTP/1.1",
     "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "", 200},
    {"GET", "/wp-content/uploads/2024/01/header.webp",
     "GET /wp-content/uploads/2024/01/header.webp HTTP/1.1", kChrome, "https://www.example.org/",
     200},
};

const std::vector<Request> kAttacks = {
    {"GET", "/index.php?id=-1' UNION ALL SELECT username,password FROM users-- -",
     "GET /index.php?id=-1%27%20UNION%20ALL%20SELECT%20username,password%20FROM%20users--%20- "
     "HTTP/1.1",
     "python-requests/2.31.0", "", 200},
    {"GET", "/etc/passwd", "GET /..%2f..%2f..%2f..%2fetc%2fpasswd HTTP/1.1", "curl/7.88.1", "",
     400},
    {"GET", "/.git/config", "GET /.git/config HTTP/1.1", "Go-http-client/1.1", "", 404},
    {"POST", "/wp-login.php", "POST /wp-login.php HTTP/1.1", kChrome,
     "https://www.example.org/wp-login.php", 200},
    {"GET", "/cmd.php?cmd=uname -a", "GET /cmd.php?cmd=uname%20-a HTTP/1.1", kChrome, "", 404},
    {"GET", "/", "GET / HTTP/1.1", "sqlmap/1.7.2#stable (https://sqlmap.org)", "", 200},
};

void BM_Match(benchmark::State& state, const std::vector<Request>& requests) {
  const Matcher& m = defaults();
  auto scratch = m.make_scratch();
  std::vector<uint32_t> matched;
  size_t i = 0;
  for (auto _ : state) {
    if (!m.match(requests[i], *scratch, matched)) state.SkipWithError("hs_scan failed");
    benchmark::DoNotOptimize(matched.data());
    if (++i == requests.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Match, benign, kBenign);
BENCHMARK_CAPTURE(BM_Match, attack, kAttacks);

// Paths the memo has not seen (4096 distinct, 16 times its slots) with the browsers' user
// agents and referers, which recur: the worst case for an ordinary site.
void BM_MatchUnseenPaths(benchmark::State& state) {
  static const std::vector<std::string> targets = [] {
    std::vector<std::string> t;
    for (int i = 0; i < 4096; ++i)
      t.push_back("/20" + std::to_string(10 + i % 15) + "/0" + std::to_string(1 + i % 9) +
                  "/garden-notes-" + std::to_string(i * 7919) +
                  "/?replytocom=" + std::to_string(i));
    return t;
  }();
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> l;
    for (const auto& t : targets) l.push_back("GET " + t + " HTTP/1.1");
    return l;
  }();
  const Matcher& m = defaults();
  auto scratch = m.make_scratch();
  std::vector<uint32_t> matched;
  size_t i = 0;
  for (auto _ : state) {
    const Request& like = kBenign[i % kBenign.size()];
    const Request r{"GET", targets[i], lines[i], like.user_agent, like.referer, 200};
    if (!m.match(r, *scratch, matched)) state.SkipWithError("hs_scan failed");
    benchmark::DoNotOptimize(matched.data());
    if (++i == targets.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MatchUnseenPaths);

// Every field new on every request: an attacker defeating the memo on purpose.
void BM_MatchAllUnseen(benchmark::State& state) {
  static const std::vector<std::string> values = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 4096; ++i)
      v.push_back("/wp-content/uploads/2024/01/photo-" + std::to_string(i * 7919) + ".jpg");
    return v;
  }();
  static const std::vector<std::string> agents = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 4096; ++i) v.push_back(std::string(kChrome) + " r/" + std::to_string(i));
    return v;
  }();
  const Matcher& m = defaults();
  auto scratch = m.make_scratch();
  std::vector<uint32_t> matched;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& v = values[i];
    const std::string& w = values[(i + 1) % values.size()];
    const Request r{"GET", v, w, agents[i], values[(i + 2) % values.size()], 200};
    if (!m.match(r, *scratch, matched)) state.SkipWithError("hs_scan failed");
    benchmark::DoNotOptimize(matched.data());
    if (++i == values.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MatchAllUnseen);

// Match, then count each matched threshold: the whole per-line cost of this module, with
// the address drawn from 20,000 visitors (the benchmark log's benign population).
void BM_MatchAndCount(benchmark::State& state) {
  const Matcher& m = defaults();
  Thresholds thresholds(m.rules());
  auto scratch = m.make_scratch();
  std::vector<uint32_t> matched;
  uint32_t n = 0;
  int64_t t = 1710028800;
  for (auto _ : state) {
    const Request& r = kBenign[n % kBenign.size()];
    if (!m.match(r, *scratch, matched)) state.SkipWithError("hs_scan failed");
    const Ip16 ip = ipv4_mapped(0xc6120000 + (n * 2654435761u) % 20000);
    for (const uint32_t rule : matched)
      benchmark::DoNotOptimize(thresholds.hit(rule, ip, t + n / 25));
    ++n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MatchAndCount);

void BM_Compile(benchmark::State& state) {
  auto set = load_rules({std::string(MAMORI_SOURCE_DIR) + "/etc/rules/default.rules"});
  for (auto _ : state) {
    auto m = Matcher::compile(*set);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_Compile)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace mamori::rules

BENCHMARK_MAIN();
