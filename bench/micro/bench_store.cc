// The manager store's ingest rate: insert_events() of batches of 500 ECS events (~600
// bytes each, as an agent sends them), one transaction and fsync per batch as the manager
// does before acking. Also the replay of an already-stored batch (all duplicates). Writes
// under $MAMORI_BENCH_DIR (default /tmp). Run:
//   bench_store --benchmark_min_time=2
// The target: >= 20,000 events/s (items_per_second, wall-clock time).

#include <cstdlib>
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "manager/db/store.h"

namespace {

using mamori::RealEnv;
using mamori::manager::Store;

std::string scratch() {
  const char* base = std::getenv("MAMORI_BENCH_DIR");
  std::string dir = std::string(base ? base : "/tmp") + "/mamori-bench-store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

nlohmann::json sample(int64_t seq) {
  nlohmann::json e;
  e["@timestamp"] = "2023-11-14T22:13:20.123456Z";
  e["event"] = {{"id", "e" + std::to_string(seq) + "-0123456789abcdef0123456789"},
                {"sequence", seq},
                {"action", "file-restored"},
                {"severity", 5},
                {"dataset", "mamori.file"},
                {"category", {"file"}}};
  e["file"] = {{"path", "/var/www/html/wp-content/plugins/akismet/akismet.php"},
               {"hash", {{"sha256", std::string(64, 'a')}}}};
  e["mamori"] = {{"root", "/var/www/html"}};
  e["process"] = {{"pid", 4242}, {"executable", "/usr/sbin/php-fpm8.2"}};
  e["user"] = {{"name", "www-data"}};
  e["host"] = {{"hostname", "web-01.example.com"}};
  e["agent"] = {{"id", std::string(32, 'b')}, {"version", "0.1.0"}};
  return e;
}

constexpr int kBatch = 500;

void BM_InsertBatch500(benchmark::State& state) {
  RealEnv env;
  auto store = mamori::manager::open_store(env, "sqlite://" + scratch() + "/m.db").value();
  int64_t seq = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<nlohmann::json> batch;
    for (int i = 0; i < kBatch; ++i) batch.push_back(sample(++seq));
    state.ResumeTiming();
    auto r = store->insert_events("agent-1", batch, 1);
    if (!r || r->inserted != kBatch) state.SkipWithError("insert failed");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_InsertBatch500)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReplayBatch500(benchmark::State& state) {
  RealEnv env;
  auto store = mamori::manager::open_store(env, "sqlite://" + scratch() + "/m.db").value();
  std::vector<nlohmann::json> batch;
  for (int i = 0; i < kBatch; ++i) batch.push_back(sample(i + 1));
  (void)store->insert_events("agent-1", batch, 1).value();
  for (auto _ : state) {
    auto r = store->insert_events("agent-1", batch, 1);
    if (!r || r->duplicates != kBatch) state.SkipWithError("replay failed");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ReplayBatch500)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
