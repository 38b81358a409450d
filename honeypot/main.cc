// mamori-honeypot: the SSH honeypot (docs/honeypot.md). Parses its arguments and runs
// the start-up steps in order; the server does the rest.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <libssh/libssh.h>
#include <CLI/CLI.hpp>

#include "core/base/env.h"
#include "core/base/quote.h"
#include "core/base/version.h"
#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/outbox/cursor.h"
#include "core/outbox/outbox.h"
#include "honeypot/banner.h"
#include "honeypot/config.h"
#include "honeypot/downloads.h"
#include "honeypot/fetch.h"
#include "honeypot/server.h"
#include "honeypot/setup.h"

namespace mamori::honeypot {
namespace {

constexpr int kExitConfig = 2;
constexpr int kExitFailed = 1;
constexpr const char* kRelayHold = "agent-relay";

void on_signal(int) { Server::request_stop(); }
void on_hangup(int) { Server::request_reopen(); }

int failed(const Error& e) {
  std::fprintf(stderr, "mamori-honeypot: %s\n", e.message().c_str());
  return kExitFailed;
}

int run(const Config& config) {
  RealEnv env;
  const std::string outbox_dir =
      config.outbox_dir.empty() ? outbox::outbox_dir(config.state_dir) : config.outbox_dir;
  const std::string event_log =
      config.event_log.empty() ? config.state_dir + "/events.jsonl" : config.event_log;
  const std::string key_dir =
      config.host_key_dir.empty() ? config.state_dir + "/host-keys" : config.host_key_dir;
  const std::string downloads_dir = config.state_dir + "/downloads";

  // load_config -> banner -> state dirs -> host keys -> listen -> drop -> origin, seed,
  // outbox -> serve.
  std::string why_default;
  const std::string banner = resolve_banner(config.banner, config.sshd_path, &why_default);
  if (!why_default.empty())
    std::fprintf(stderr, "mamori-honeypot: banner %s (host sshd unusable: %s)\n",
                 quote(banner).c_str(), why_default.c_str());
  for (const auto& dir : {config.state_dir, outbox_dir})
    if (auto st = fs::make_private_dir(dir); !st) return failed(st.error());
  // [downloads] fetch: the fetch child is this very binary, exec'd by descriptor (the
  // dropped user may not reach its path); captures go to STATE/downloads.
  Server::Fetching fetching;
  if (config.downloads.fetch) {
    if (auto st = fs::make_private_dir(downloads_dir); !st) return failed(st.error());
    char* self = realpath("/proc/self/exe", nullptr);
    if (self == nullptr) return failed(Error{"realpath", "/proc/self/exe", errno, {}});
    auto exe = fs::open_admin_read(self);
    std::free(self);
    if (!exe) return failed(exe.error());
    fetching.exe = std::move(*exe);
  }
  auto keys = load_or_create_host_keys(env, key_dir);
  if (!keys) return failed(keys.error());
  for (const auto& k : *keys)
    if (k.created)
      std::fprintf(stderr, "mamori-honeypot: made host key %s\n", quote(k.path).c_str());
  auto listen_fd = listen_on(config.listen_address, config.listen_port, 1024);
  if (!listen_fd) {
    for (auto& k : *keys) ssh_key_free(k.key);
    return failed(listen_fd.error());
  }

  // Each connection holds a descriptor; a few more are the outbox's and libssh's.
  if (const uint64_t fds = raise_fd_limit(); fds < uint64_t{config.limits.sessions} + 64)
    std::fprintf(stderr,
                 "mamori-honeypot: warning: %llu open files allowed (RLIMIT_NOFILE) for up to %u "
                 "sessions: past it new connections wait (LimitNOFILE=, ulimit -n)\n",
                 static_cast<unsigned long long>(fds), config.limits.sessions);
  if (geteuid() == 0) {
    auto target = lookup_user(config.user);
    Status st =
        target ? give_dir_to(config.state_dir, *target) : Status(tl::unexpected(target.error()));
    if (st) st = give_dir_to(outbox_dir, *target);
    if (st && config.downloads.fetch) st = give_dir_to(downloads_dir, *target, /*files=*/false);
    if (st) st = drop_privileges(*target);
    if (!st) {
      for (auto& k : *keys) ssh_key_free(k.key);
      return failed(st.error());
    }
  } else if (auto st = drop_capabilities(); !st) {
    for (auto& k : *keys) ssh_key_free(k.key);
    return failed(st.error());
  }

  auto origin = event::Origin::load(env, config.state_dir, "");
  if (!origin) return failed(origin.error());
  auto seed = load_or_create_node_seed(env, config.state_dir);
  if (!seed) return failed(seed.error());
  outbox::Limits quota;
  quota.quota_bytes = uint64_t{config.limits.outbox_mb} << 20;
  auto box = outbox::Outbox::open(env, {outbox_dir, event_log, quota, &*origin});
  if (!box) return failed(box.error());
  // The agent relays these events from a cursor in its own state (agent/relay): it never
  // writes here. This cursor, which never moves, keeps every segment for it until the
  // quota (outbox_mb) drops the oldest: the honeypot's events have a fixed disk budget.
  if (auto held = outbox::load_cursor(outbox_dir, kRelayHold); held && !*held)
    if (auto st = outbox::save_cursor(env, outbox_dir, kRelayHold, 1); !st)
      return failed(st.error());

  if (config.downloads.fetch) {
    auto store = DownloadStore::open(downloads_dir, uint64_t{config.downloads.quota_mb} << 20);
    if (!store) return failed(store.error());
    fetching.store.emplace(std::move(*store));
  }
  auto server =
      Server::create(env, config, banner, make_fake_system(*seed, config.hostname),
                     std::move(*keys), std::move(*listen_fd), *box, *origin, std::move(fetching));
  if (!server) return failed(server.error());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  sigaction(SIGHUP, &hup, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::fprintf(stderr, "mamori-honeypot: ready: listening on %s port %u as uid %u, banner %s\n",
               config.listen_address.c_str(), config.listen_port, geteuid(),
               quote("SSH-2.0-" + banner).c_str());
  if (auto st = (*server)->run(); !st) return failed(st.error());
  std::fprintf(stderr, "mamori-honeypot: stopped\n");
  return 0;
}

}  // namespace
}  // namespace mamori::honeypot

int main(int argc, char** argv) {
  // The fetch child (honeypot/fetch.h): exec'd by the honeypot itself with exactly these
  // arguments, never by a user.
  if (argc == 6 && std::string_view(argv[1]) == "--fetch-child") {
    mamori::honeypot::FetchRequest req;
    req.url = argv[2];
    req.max_bytes = std::strtoull(argv[3], nullptr, 10);
    req.timeout_s = static_cast<uint32_t>(std::strtoul(argv[4], nullptr, 10));
    req.allow_private = std::string_view(argv[5]) == "1";
    mamori::honeypot::fetch_child_main(req);
  }
  CLI::App app{
      "mamori-honeypot: a low-interaction SSH honeypot that records attackers as "
      "ECS events in its own outbox (docs/honeypot.md)"};
  std::string config_path = "/etc/mamori/honeypot.toml";
  bool check_only = false;
  app.add_option("--config", config_path, "the honeypot's TOML config")->capture_default_str();
  app.add_flag("--check-config", check_only, "parse the config, print problems, and exit");
  app.set_version_flag("--version", std::string(mamori::kVersion));
  CLI11_PARSE(app, argc, argv);
  auto config = mamori::honeypot::load_config(config_path);
  if (!config) {
    std::fprintf(stderr, "mamori-honeypot: %s\n", config.error().text().c_str());
    return mamori::honeypot::kExitConfig;
  }
  if (check_only) return 0;
  return mamori::honeypot::run(*config);
}
