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
//
// --sources N spreads the sessions over N loopback addresses (127.1.0.1, 127.1.0.2, ...,
// session i from address i % N), as a flood from many hosts, each under the honeypot's
// sessions_per_address. --hold keeps the sessions open after the report and takes lines
// on stdin: "close N" closes N of them (the last opened first) and answers "held M";
// end of input closes the rest and exits. tests/integration/honeypot_flood_test.sh
// drives it so.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
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

// Loopback source address number k (0-based): 127.1.0.1 ... 127.1.0.254, 127.1.1.1, ...
std::string source_address(int k) { return fmt::format("127.1.{}.{}", k / 254, k % 254 + 1); }

void close_client(Client& c) {
  if (c.s == nullptr) return;
  ssh_disconnect(c.s);
  ssh_free(c.s);
  c.s = nullptr;
}

// --hold: "close N" lines until end of input; the sessions stay open meanwhile.
void hold(std::vector<Client>& clients) {
  size_t open = clients.size();
  std::printf("holding %zu sessions\n", open);
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    size_t n = 0;
    if (std::sscanf(line.c_str(), "close %zu", &n) != 1) {
      std::printf("unknown command '%s'\n", line.c_str());
    } else {
      for (; n > 0 && open > 0; --n) close_client(clients[--open]);
      std::printf("held %zu\n", open);
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_honeypot: idle SSH sessions against mamori-honeypot, its memory per session"};
  int port = 2222, pid = 0, sessions = 1000, concurrency = 64, sources = 1;
  bool hold_open = false;
  std::string host = "127.0.0.1";
  double settle_s = 2;
  app.add_option("--host", host)->capture_default_str();
  app.add_option("--port", port)->capture_default_str();
  app.add_option("--pid", pid, "the honeypot's pid (its /proc is read)")->required();
  app.add_option("--sessions", sessions)->capture_default_str();
  app.add_option("--concurrency", concurrency, "handshakes in flight")->capture_default_str();
  app.add_option("--settle", settle_s, "seconds to wait before measuring")->capture_default_str();
  app.add_option("--sources", sources,
                 "loopback source addresses 127.1.x.y (1: the kernel's choice)")
      ->check(CLI::Range(1, 254 * 256))
      ->capture_default_str();
  app.add_flag("--hold", hold_open, "keep the sessions open; 'close N' lines on stdin, EOF ends");
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
      if (sources > 1)
        ssh_options_set(c.s, SSH_OPTIONS_BINDADDR, source_address(next % sources).c_str());
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
  const bool ok = failed == 0 && alive == connected;
  if (hold_open && ok) hold(clients);
  for (auto& c : clients) close_client(c);
  return ok ? 0 : 1;
}
