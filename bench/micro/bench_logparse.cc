// Parse and normalise cost per access-log line. Reads the lines of $MAMORI_ACCESS_LOG (e.g.
// from bench/tools/make_access_log.py 100000 --out /tmp/access.log), else a few
// built-in ones. Run a release build:
//   MAMORI_ACCESS_LOG=/tmp/access.log bench_logparse --benchmark_min_time=2

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/logparse/format.h"
#include "core/logparse/normalise.h"

namespace {

using mamori::logparse::Entry;
using mamori::logparse::LogFormat;
using mamori::logparse::ParseStatus;

const std::vector<std::string>& combined_lines() {
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> v;
    if (const char* path = std::getenv("MAMORI_ACCESS_LOG")) {
      std::ifstream in(path);
      for (std::string line; std::getline(in, line);) v.push_back(line);
    }
    if (v.empty()) {
      v = {
          R"(198.19.105.169 - - [10/Mar/2024:00:00:00 +0000] "GET /2024/11/guide-tomato-hiking-recipe/ HTTP/1.1" 200 36301 "https://duckduckgo.com/" "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1")",
          R"(198.18.9.38 - - [10/Mar/2024:00:00:00 +0000] "GET /wp-content/themes/kadence/assets/js/navigation.min.js?ver=1.1.51 HTTP/1.1" 200 6210 "https://www.example.org/2023/01/bike-coffee-camera-weekend/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36")",
          R"x(2001:db8::7 - - [10/Mar/2024:00:00:01 +0000] "GET /index.php?id=1%27%20UNION%20SELECT%201,2--%20- HTTP/1.1" 404 0 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)")x",
          R"x(203.0.113.9 - - [10/Mar/2024:00:00:03 +0000] "POST /wp-login.php HTTP/1.1" 200 4523 "https://www.example.org/wp-login.php" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")x",
      };
    }
    return v;
  }();
  return lines;
}

void escape_json(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
}

// The same traffic as nginx would log it with escape=json.
const std::vector<std::string>& json_lines() {
  static const std::vector<std::string> lines = [] {
    const auto combined = LogFormat::compile("combined");
    std::vector<std::string> v;
    Entry e;
    for (const auto& line : combined_lines()) {
      if (combined->parse(line, e) != ParseStatus::kOk) continue;
      std::string j = R"({"time_local":")" + std::string(line.substr(line.find('[') + 1, 26));
      j += R"(","remote_addr":")" + std::string(e.client) + R"(","request":")";
      escape_json(j, e.request);
      j += R"(","status":)" + std::to_string(e.status) + R"(,"body_bytes_sent":)" +
           std::to_string(e.bytes) + R"(,"http_referer":")";
      escape_json(j, e.referer);
      j += R"(","http_user_agent":")";
      escape_json(j, e.user_agent);
      j += R"("})";
      v.push_back(std::move(j));
    }
    return v;
  }();
  return lines;
}

void run_parse(benchmark::State& state, const char* spec, const std::vector<std::string>& lines) {
  const auto format = LogFormat::compile(spec);
  if (!format) {
    state.SkipWithError(format.error().message().c_str());
    return;
  }
  Entry e;
  size_t i = 0, ok = 0;
  for (auto _ : state) {
    ok += format->parse(lines[i], e) == ParseStatus::kOk;
    benchmark::DoNotOptimize(e.client_ip);
    if (++i == lines.size()) i = 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.counters["ok_ratio"] = double(ok) / double(std::max<int64_t>(1, state.iterations()));
}

void BM_ParseCombined(benchmark::State& state) { run_parse(state, "combined", combined_lines()); }
BENCHMARK(BM_ParseCombined);

void BM_ParseNginxLogFormat(benchmark::State& state) {
  run_parse(
      state,
      R"($remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent")",
      combined_lines());
}
BENCHMARK(BM_ParseNginxLogFormat);

void BM_ParseJson(benchmark::State& state) { run_parse(state, "json", json_lines()); }
BENCHMARK(BM_ParseJson);

void BM_NormaliseTarget(benchmark::State& state) {
  const auto format = LogFormat::compile("combined");
  std::vector<std::string> targets;
  Entry e;
  for (const auto& line : combined_lines())
    if (format->parse(line, e) == ParseStatus::kOk) targets.emplace_back(e.target);
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(mamori::logparse::normalise_target(targets[i], out));
    if (++i == targets.size()) i = 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_NormaliseTarget);

void BM_ParseAndNormalise(benchmark::State& state) {
  const auto format = LogFormat::compile("combined");
  const auto& lines = combined_lines();
  Entry e;
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    if (format->parse(lines[i], e) == ParseStatus::kOk)
      benchmark::DoNotOptimize(mamori::logparse::normalise_target(e.target, out));
    if (++i == lines.size()) i = 0;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_ParseAndNormalise);

}  // namespace

BENCHMARK_MAIN();
