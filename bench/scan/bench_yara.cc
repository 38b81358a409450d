// bench_yara: how fast core/scan gives a verdict, against the peer a user would pick
// (the `yara` command-line tool, Debian's package), on the same files with the same
// rules, in the same run.
//
//   1. A new PHP file of ~1 MB (WordPress's own code, so the rules' atoms hit as they
//      would on a real site; a different first line each time so no verdict is cached):
//      written, opened and scanned by descriptor, N times: p50, p99, worst (target:
//      p99 <= 50 ms). The peer: one `yara RULES FILE` per new file (what an
//      inotifywait + yara script does), spawned the same number of times.
//   2. Every regular file of a tree (default /usr/share/wordpress; symlinks skipped):
//      one thread, cold cache; then `yara -r -N -p 1 -f RULES TREE`; then a second
//      pass of ours over the same tree (every verdict from the SHA-256 cache).
//
//   bench_yara [--tree DIR] [--iterations N] [--peer-iterations N] [--yara PATH]

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "core/base/env.h"
#include "core/base/unique_fd.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/fs/remove_tree.h"
#include "core/fs/walk.h"
#include "core/scan/scanner.h"

extern char** environ;

namespace {

using namespace mamori;

const std::string kRuleDir = MAMORI_SOURCE_DIR "/rules/yara";

double ms_since(const Clock& clock, std::chrono::nanoseconds start) {
  return std::chrono::duration<double, std::milli>(clock.monotonic() - start).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Runs argv with stdout and stderr on /dev/null; returns the exit status (-1: not run).
int run_quiet(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> rule_files() {
  std::vector<std::string> files;
  for (const auto& f : scan::builtin_rules()) files.push_back(kRuleDir + "/" + std::string(f.name));
  return files;
}

struct TreeFile {
  std::string path;
  uint64_t size;
};

std::vector<TreeFile> list_tree(const std::string& tree) {
  std::vector<TreeFile> files;
  auto root = fs::open_root(tree);
  if (!root) return files;
  (void)fs::walk(  // unreadable entries are left out of both sides alike
      root->get(), "", {},
      [&](fs::WalkEntry&& e) {
        if (S_ISREG(e.st.st_mode))
          files.push_back({tree + "/" + e.path, static_cast<uint64_t>(e.st.st_size)});
      },
      [](Error&&) {});
  return files;
}

// ~1 MB of PHP from the tree's own .php files, for the "new file" case.
std::string php_megabyte(const std::vector<TreeFile>& files) {
  std::string out = "<?php\n";
  for (const auto& f : files) {
    if (!f.path.ends_with(".php") || out.size() > 1'000'000) continue;
    auto text = fs::read_small_file(f.path, 4 << 20);
    if (!text) continue;
    std::string body = *text;
    if (body.starts_with("<?php")) body.erase(0, 5);
    out += "?><?php\n" + body;
  }
  if (out.size() > 1'000'000) out.resize(1'000'000);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tree = "/usr/share/wordpress";
  std::string yara = "yara";
  unsigned iterations = 200, peer_iterations = 30;
  CLI::App cli("bench_yara");
  cli.add_option("--tree", tree);
  cli.add_option("--yara", yara);
  cli.add_option("--iterations", iterations);
  cli.add_option("--peer-iterations", peer_iterations);
  CLI11_PARSE(cli, argc, argv);

  SystemClock clock;
  auto compile_start = clock.monotonic();
  auto rules = scan::RuleSet::compile({});
  if (!rules) {
    std::fprintf(stderr, "bench_yara: %s\n", rules.error().message().c_str());
    return 2;
  }
  const double compile_ms = ms_since(clock, compile_start);
  const auto files = list_tree(tree);
  if (files.empty()) {
    std::fprintf(stderr, "bench_yara: no files under %s\n", tree.c_str());
    return 2;
  }
  const bool have_peer = run_quiet({yara, "--version"}) == 0;
  fmt::print("rules: {} (mamori's rule set, compiled in {:.1f} ms); peer: {}\n",
             (*rules)->rule_count(), compile_ms, have_peer ? yara : "(not installed)");

  // 1. New ~1 MB PHP files, one at a time.
  const std::string php = php_megabyte(files);
  char dir_template[] = "/tmp/bench_yara.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return 2;
  const std::string dir = dir_template;
  auto dir_fd = fs::open_root(dir);
  if (!dir_fd) return 2;
  scan::Scanner scanner(*rules, {});
  std::vector<double> ours;
  bool any_match = false;
  for (unsigned i = 0; i < iterations; ++i) {
    const std::string name = fmt::format("new{}.php", i % 4);
    const std::string content = fmt::format("<?php // upload {}\n", i) + php;
    auto fd = fs::open_beneath(dir_fd->get(), name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!fd || ::write(fd->get(), content.data(), content.size()) != ssize_t(content.size()))
      return 2;
    fd->reset();
    const auto start = clock.monotonic();
    auto rfd = fs::open_beneath(dir_fd->get(), name, O_RDONLY);
    if (!rfd) return 2;
    auto v = scanner.scan_fd(rfd->get(), name);
    ours.push_back(ms_since(clock, start));
    if (!v || v->cached) {
      std::fprintf(stderr, "bench_yara: %s\n",
                   v ? "unexpected cache hit" : v.error().message().c_str());
      return 2;
    }
    any_match |= v->matched();
  }
  fmt::print("\nnew PHP file of {:.2f} MB, {} scans (open + read + SHA-256 + YARA):\n",
             static_cast<double>(php.size()) / 1e6, iterations);
  fmt::print("  mamori scan_fd   p50 {:.2f} ms  p99 {:.2f} ms  worst {:.2f} ms{}\n",
             percentile(ours, 0.5), percentile(ours, 0.99), percentile(ours, 1.0),
             any_match ? "  (some matched!)" : "");
  std::vector<double> peer;
  if (have_peer) {
    std::vector<std::string> args = {yara, "-f", "-w"};
    for (const auto& r : rule_files()) args.push_back(r);
    args.push_back(dir + "/new0.php");
    for (unsigned i = 0; i < peer_iterations; ++i) {
      const auto start = clock.monotonic();
      if (run_quiet(args) != 0) return 2;
      peer.push_back(ms_since(clock, start));
    }
    fmt::print("  yara per file    p50 {:.2f} ms  p99 {:.2f} ms  worst {:.2f} ms  ({} runs)\n",
               percentile(peer, 0.5), percentile(peer, 0.99), percentile(peer, 1.0),
               peer_iterations);
    fmt::print("  ratio (yara / mamori): p50 {:.1f}x  p99 {:.1f}x\n",
               percentile(peer, 0.5) / percentile(ours, 0.5),
               percentile(peer, 0.99) / percentile(ours, 0.99));
  }
  if (auto tmp = fs::open_root("/tmp")) {
    fs::RemoveTreeReport removed;
    (void)fs::remove_tree(tmp->get(), dir.substr(5), dir, {}, removed);  // best effort
  }

  // 2. The whole tree, one thread.
  uint64_t bytes = 0, matched = 0;
  scan::Scanner cold(*rules, {});
  auto start = clock.monotonic();
  for (const auto& f : files) {
    auto fd = fs::open_admin_read(f.path);
    if (!fd) continue;
    auto v = cold.scan_fd(fd->get(), f.path);
    if (!v) continue;
    bytes += v->scanned;
    matched += v->matched();
  }
  const double tree_ms = ms_since(clock, start);
  const uint64_t identical = cold.stats().cache_hits;  // the same content twice in the tree
  start = clock.monotonic();
  for (const auto& f : files) {
    auto fd = fs::open_admin_read(f.path);
    if (fd) (void)cold.scan_fd(fd->get(), f.path);  // counted in stats()
  }
  const double cached_ms = ms_since(clock, start);
  fmt::print("\ntree {}: {} files, {:.1f} MB, one thread:\n", tree, files.size(),
             static_cast<double>(bytes) / 1e6);
  fmt::print(
      "  mamori cold      {:.0f} ms  {:.0f} files/s  {:.0f} MB/s  ({} matched; {} identical "
      "contents given from the cache)\n",
      tree_ms, static_cast<double>(files.size()) / tree_ms * 1e3,
      static_cast<double>(bytes) / tree_ms / 1e3, matched, identical);
  fmt::print("  mamori cached    {:.0f} ms  {:.0f} files/s  ({} cache hits)\n", cached_ms,
             static_cast<double>(files.size()) / cached_ms * 1e3,
             cold.stats().cache_hits - identical);
  if (have_peer) {
    std::vector<std::string> args = {yara, "-r", "-N", "-p", "1", "-f", "-w"};
    for (const auto& r : rule_files()) args.push_back(r);
    args.push_back(tree);
    start = clock.monotonic();
    const int rc = run_quiet(args);
    const double peer_ms = ms_since(clock, start);
    fmt::print("  yara -r -p 1     {:.0f} ms  {:.0f} files/s  (exit {})\n", peer_ms,
               static_cast<double>(files.size()) / peer_ms * 1e3, rc);
    fmt::print("  ratio (yara / mamori cold): {:.2f}x\n", peer_ms / tree_ms);
  }
  return 0;
}
