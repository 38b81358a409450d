// The manager store's ingest rate, on SQLite and (given a server) PostgreSQL:
// insert_events() of batches of 500 ECS events (~600 bytes each, as an agent sends
// them), one committed transaction per batch as the manager does before acking; the same
// with two connections storing two agents' batches at once (two manager threads, or two
// managers on one PostgreSQL); and the replay of an already-stored batch (all
// duplicates). Run:
//   bench_store --benchmark_min_time=2                                  SQLite only
//   bench_store --postgres=postgresql://USER:PW@HOST:PORT/DB --benchmark_min_time=2
//   MAMORI_BENCH_POSTGRES_URL=postgresql://... bench_store              (the same)
// SQLite writes under $MAMORI_BENCH_DIR (default /tmp). PostgreSQL works in a schema of
// its own, mamori_bench_<pid>, made afresh for each benchmark and dropped at the end (the
// URL's user needs CREATE on the database). The target: >= 20,000 events/s on
// SQLite (items_per_second, wall-clock time).

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include <benchmark/benchmark.h>

#include "manager/db/pg.h"
#include "manager/db/store.h"

namespace {

using mamori::RealEnv;
using mamori::manager::Store;

std::string g_postgres;  // the server's URL; empty: SQLite only
std::string g_url;       // the database of the benchmark being run (set by its Setup)

std::string schema() { return "mamori_bench_" + std::to_string(getpid()); }

[[noreturn]] void die(const std::string& what) {
  std::cerr << "bench_store: " << what << "\n";
  std::exit(1);
}

void admin(const std::string& sql) {
  auto c = mamori::manager::pg::Conn::connect(g_postgres);
  if (!c) die(c.error().message());
  if (auto r = c->exec(sql); !r) die(r.error().message());
}

void fresh_sqlite(const benchmark::State&) {
  const char* base = std::getenv("MAMORI_BENCH_DIR");
  std::string dir = std::string(base ? base : "/tmp") + "/mamori-bench-store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  g_url = "sqlite://" + dir + "/m.db";
}

void fresh_postgres(const benchmark::State&) {
  admin("DROP SCHEMA IF EXISTS " + schema() + " CASCADE; CREATE SCHEMA " + schema());
  g_url = g_postgres + (g_postgres.find('?') == std::string::npos ? "?" : "&") +
          "options=-csearch_path%3D" + schema();
}

std::unique_ptr<Store> open_db() {
  RealEnv env;
  auto s = mamori::manager::open_store(env, g_url);
  if (!s) die(s.error().message());
  return std::move(*s);
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

// One agent per thread, each thread with its own connection.
void insert_batches(benchmark::State& state) {
  auto store = open_db();
  const std::string agent = "agent-" + std::to_string(state.thread_index());
  int64_t seq = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<nlohmann::json> batch;
    for (int i = 0; i < kBatch; ++i) batch.push_back(sample(++seq));
    state.ResumeTiming();
    auto r = store->insert_events(agent, batch, 1);
    if (!r || r->inserted != kBatch) {
      state.SkipWithError(r ? "not all inserted" : r.error().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void replay_batch(benchmark::State& state) {
  auto store = open_db();
  std::vector<nlohmann::json> batch;
  for (int i = 0; i < kBatch; ++i) batch.push_back(sample(i + 1));
  if (!store->insert_events("agent-1", batch, 1)) die("the first insert failed");
  for (auto _ : state) {
    auto r = store->insert_events("agent-1", batch, 1);
    if (!r || r->duplicates != kBatch) {
      state.SkipWithError("replay failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void register_all(const std::string& db, void (*fresh)(const benchmark::State&)) {
  benchmark::RegisterBenchmark(("InsertBatch500/" + db).c_str(), insert_batches)
      ->Setup(fresh)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("InsertBatch500/" + db).c_str(), insert_batches)
      ->Setup(fresh)
      ->Threads(2)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("ReplayBatch500/" + db).c_str(), replay_batch)
      ->Setup(fresh)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* u = std::getenv("MAMORI_BENCH_POSTGRES_URL")) g_postgres = u;
  // --postgres=URL is ours; the rest goes to Google Benchmark.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--postgres=", 11) == 0)
      g_postgres = argv[i] + 11;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all("sqlite", fresh_sqlite);
  if (!g_postgres.empty()) register_all("postgresql", fresh_postgres);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!g_postgres.empty()) admin("DROP SCHEMA IF EXISTS " + schema() + " CASCADE");
  return 0;
}
