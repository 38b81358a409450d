// bench_honeypot: N concurrent idle SSH sessions against a running mamori-honeypot, and
// what they cost it in memory. Each session is a real libssh client that completes the
// key exchange and then sits at authentication (as a scanner that connected and waits,
// or a slow brute forcer between tries); the honeypot's RSS and PSS (/proc/PID) before
// and after give the cost per idle session. The published anchor is Cowrie's ~10 MB per
// session (issue 14); the target is <= 64 KiB at 10,000 sessions.
//
//   bench_honeypot --port 2222 --pid $(pidof mamori-honeypot) --sessions 2000
//
// bench/honeypot/run.sh starts a honeypot for it and cleans up.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <CLI/CLI.hpp>

#include "core/base/env.h"

namespace {

// kB from /proc/PID/status (VmRSS) or smaps_rollup (Pss).
long proc_kb(int pid, const char* file, const char* field) {
  std::ifstream in(fmt::format("/proc/{}/{}", pid, file));
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

struct Client {
  ssh_session s = nullptr;
  bool done = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_honeypot: idle SSH sessions against mamori-honeypot, its memory per session"};
  int port = 2222, pid = 0, sessions = 1000, concurrency = 64;
  std::string host = "127.0.0.1";
  double settle_s = 2;
  app.add_option("--host", host)->capture_default_str();
  app.add_option("--port", port)->capture_default_str();
  app.add_option("--pid", pid, "the honeypot's pid (its /proc is read)")->required();
  app.add_option("--sessions", sessions)->capture_default_str();
  app.add_option("--concurrency", concurrency, "handshakes in flight")->capture_default_str();
  app.add_option("--settle", settle_s, "seconds to wait before measuring")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  mamori::SystemClock clock;
  const long rss0 = proc_kb(pid, "status", "VmRSS"), pss0 = proc_kb(pid, "smaps_rollup", "Pss");
  if (rss0 < 0) {
    std::fprintf(stderr, "bench_honeypot: cannot read /proc/%d\n", pid);
    return 1;
  }
  std::vector<Client> clients(sessions);
  const int64_t t0 = clock.monotonic_ns();
  int next = 0, in_flight = 0, connected = 0, failed = 0;
  std::vector<int> flying;
  while (connected + failed < sessions) {
    while (in_flight < concurrency && next < sessions) {
      Client& c = clients[next];
      c.s = ssh_new();
      const long timeout = 30;
      bool no = false;
      ssh_options_set(c.s, SSH_OPTIONS_HOST, host.c_str());
      ssh_options_set(c.s, SSH_OPTIONS_PORT, &port);
      ssh_options_set(c.s, SSH_OPTIONS_USER, "root");
      ssh_options_set(c.s, SSH_OPTIONS_TIMEOUT, &timeout);
      ssh_options_set(c.s, SSH_OPTIONS_PROCESS_CONFIG, &no);
      ssh_set_blocking(c.s, 0);
      flying.push_back(next++);
      ++in_flight;
    }
    std::vector<pollfd> fds;
    for (const int i : flying) {
      const int fd = ssh_get_fd(clients[i].s);
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    }
    if (!fds.empty()) poll(fds.data(), fds.size(), 10);
    std::vector<int> still;
    for (const int i : flying) {
      Client& c = clients[i];
      const int rc = ssh_connect(c.s);
      if (rc == SSH_OK) {
        c.done = true;
        ++connected;
        --in_flight;
      } else if (rc == SSH_ERROR) {
        std::fprintf(stderr, "session %d: %s\n", i, ssh_get_error(c.s));
        ++failed;
        --in_flight;
      } else {
        still.push_back(i);
      }
    }
    flying.swap(still);
  }
  const double connect_s = static_cast<double>(clock.monotonic_ns() - t0) / 1e9;
  clock.wait(std::chrono::milliseconds(static_cast<int64_t>(settle_s * 1000)));
  int alive = 0;
  for (auto& c : clients)
    if (c.done && ssh_is_connected(c.s)) ++alive;
  const long rss1 = proc_kb(pid, "status", "VmRSS"), pss1 = proc_kb(pid, "smaps_rollup", "Pss");
  const double per_rss = alive ? static_cast<double>(rss1 - rss0) * 1024 / alive : 0;
  const double per_pss = alive ? static_cast<double>(pss1 - pss0) * 1024 / alive : 0;
  std::printf(
      "sessions: %d requested, %d completed the key exchange, %d failed, %d alive after %.1f s\n",
      sessions, connected, failed, alive, settle_s);
  std::printf("handshakes: %.1f s (%.0f/s, %d in flight)\n", connect_s, connected / connect_s,
              concurrency);
  std::printf("honeypot RSS: %ld KiB before, %ld KiB with the sessions open (PSS %ld -> %ld KiB)\n",
              rss0, rss1, pss0, pss1);
  std::printf(
      "per idle session: %.1f KiB RSS, %.1f KiB PSS (target <= 64 KiB; Cowrie ~10 MB: "
      "%.0fx less)\n",
      per_rss / 1024, per_pss / 1024, per_rss > 0 ? 10.0 * 1024 * 1024 / per_rss : 0.0);
  for (auto& c : clients) {
    if (c.s == nullptr) continue;
    ssh_disconnect(c.s);
    ssh_free(c.s);
  }
  return failed == 0 && alive == connected ? 0 : 1;
}
