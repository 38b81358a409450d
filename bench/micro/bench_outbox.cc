// The outbox's cost per event on the hot path: append() alone (serialise, queue; the
// segment outbox also finds where event.sequence goes) and append + flush (records with
// CRC-32C written and fdatasync()ed, then exported to events.jsonl) for batches of 1 and
// 64 events, as the agent's writer thread does. Writes under $MAMORI_BENCH_DIR (default
// /tmp). Built against the line-file outbox with -DMAMORI_BENCH_LINE_OUTBOX, for the
// old-vs-new comparison in docs/performance.md. Run a release build:
//   bench_outbox --benchmark_min_time=2

#include <cstdlib>
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include "core/outbox/outbox.h"

namespace {

using mamori::RealEnv;
using mamori::event::Event;
using mamori::event::Severity;
using mamori::outbox::Outbox;

std::string scratch() {
  const char* base = std::getenv("MAMORI_BENCH_DIR");
  std::string dir = std::string(base ? base : "/tmp") + "/mamori-bench-outbox";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

Outbox open_box(RealEnv& env, const std::string& dir) {
#ifdef MAMORI_BENCH_LINE_OUTBOX
  return Outbox::open(env, dir + "/events.jsonl", {.spill_bytes = 1ull << 40}).value();
#else
  return Outbox::open(env, {dir + "/outbox", dir + "/events.jsonl", {.spill_bytes = 1ull << 40}})
      .value();
#endif
}

// A file-restored event of the usual size (~600 bytes).
Event sample(int i) {
  Event e("file-restored", Severity::kWarning, 1700000000000000000 + i);
  e.set("event.category", nlohmann::json::array({"file"}));
  e.set("file.path", "/var/www/html/wp-content/plugins/akismet/akismet.php");
  e.set("file.hash.sha256", std::string(64, 'a'));
  e.set("mamori.root", "/var/www/html");
  e.set("process.pid", 4242);
  e.set("process.executable", "/usr/sbin/php-fpm8.2");
  e.set("user.name", "www-data");
  e.message("restored /var/www/html/wp-content/plugins/akismet/akismet.php");
  return e;
}

void BM_Append(benchmark::State& state) {
  RealEnv env;
  const std::string dir = scratch();
  auto box = open_box(env, dir);
  const Event e = sample(0);
  int n = 0;
  for (auto _ : state) {
    box.append(e);
    if (++n == 4096) {
      state.PauseTiming();
      (void)box.flush();
      n = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Append);

void BM_AppendFlush(benchmark::State& state) {
  RealEnv env;
  const std::string dir = scratch();
  auto box = open_box(env, dir);
  const Event e = sample(0);
  for (auto _ : state) {
    for (int64_t i = 0; i < state.range(0); ++i) box.append(e);
    if (!box.flush()) state.SkipWithError("flush failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AppendFlush)->Arg(1)->Arg(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
