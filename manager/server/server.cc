#include "manager/server/server.h"

#include <openssl/ssl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/proto/actions.h"
#include "manager/server/agent_channel.h"
#include "manager/server/api.h"
#include "manager/server/fleet.h"
#include "manager/server/http_connection.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Splits "HOST:PORT" / "[V6]:PORT".
Result<tcp::endpoint> parse_listen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec)
    return fail("parse [manager] listen", listen, EINVAL,
                "the host must be an IP address (0.0.0.0, ::, 127.0.0.1 ...)");
  const unsigned long port = std::stoul(listen.substr(colon + 1));
  if (port > 65535) return fail("parse [manager] listen", listen, EINVAL, "port out of range");
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

}  // namespace

void log_line(const std::string& s) { std::fprintf(stderr, "mamori manager: %s\n", s.c_str()); }

std::string new_uuid() {
  auto b = random_bytes(16);
  // Never a made-up value: two agents or commands would share one key. getrandom fails
  // only without a kernel CSPRNG, where nothing the manager does is safe.
  if (!b) {
    log_line("no randomness for an id: " + b.error().message());
    std::abort();
  }
  std::string r = std::move(*b);
  r[6] = static_cast<char>((r[6] & 0x0f) | 0x40);
  r[8] = static_cast<char>((r[8] & 0x3f) | 0x80);
  std::string s;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", static_cast<uint8_t>(r[i]));
  }
  return s;
}

std::string public_url_of(const config::ManagerConfig& m, const std::string& host_name) {
  if (!m.public_url.empty()) return m.public_url;
  return "https://" + host_name + ":" + m.listen.substr(m.listen.rfind(':') + 1);
}

// ---- the hub --------------------------------------------------------------------------

Hub::Hub(Env& env, const config::Config& config, std::unique_ptr<Store> store,
         std::unique_ptr<Store> writer_store, std::unique_ptr<Store> chores_store,
         Identity identity, std::unique_ptr<Reporter> reporter)
    : env_(env),
      config_(config),
      m_(config.manager),
      store_(std::move(store)),
      identity_(std::move(identity)),
      reporter_(std::move(reporter)),
      host_name_(event::system_hostname()),
      manager_id_(new_uuid()) {
  fleet_ = std::make_unique<Fleet>(*this, io_);
  api_ = std::make_unique<Api>(*this,
                               [this](std::function<void()> f) { asio::post(io_, std::move(f)); });
  writer_ = std::make_unique<EventWriter>(
      std::move(writer_store), [this] { return now_ns(); },
      [this](std::function<void()> f) { asio::post(io_, std::move(f)); },
      [](const Error& e) { log_line("store: " + e.message()); });
  chores_ = std::make_unique<StoreWorker>(std::move(chores_store));
}

Hub::~Hub() {
  admission_.clear();  // the channels it holds close their sockets while io_ exists
  // The worker finishes what it holds first; the reporter's last copy then runs here.
  chores_.reset();
  reporter_->set_store_runner({});
}

Status Hub::bind() {
  ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ssl_.native_handle(), TLS1_2_VERSION);
  error_code ec;
  ssl_.use_certificate_chain(asio::buffer(identity_.cert_pem), ec);
  if (!ec) ssl_.use_private_key(asio::buffer(identity_.key_pem), ssl::context::pem, ec);
  if (ec) return fail_msg("load the manager's certificate", identity_.cert_path, ec.message());

  const tcp::endpoint ep = MAMORI_TRY(parse_listen(m_.listen));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen", m_.listen, ec.value(), ec.message());
  return load_console();
}

Status Hub::load_console() {
  if (m_.console_dir.empty()) return {};
  auto files = ConsoleFiles::load(m_.console_dir);
  // Not installed (a build tree, a manager without the console package): the API alone.
  if (!files && files.error().errnum == ENOENT) {
    log_line("no console: " + files.error().message());
    return {};
  }
  if (!files) return tl::unexpected(files.error());
  log_line(fmt::format("console: {} files from {}", files->file_count(), m_.console_dir));
  console_ = std::move(*files);
  return {};
}

Status Hub::run(bool handle_signals) {
  reporter_->set_poster([this](std::function<void()> f) { asio::post(io_, std::move(f)); });
  reporter_->set_store_runner(
      [this](std::function<void(Store&)> job) { chores_->run(std::move(job)); });
  if (handle_signals) {
    signals_.emplace(io_, SIGTERM, SIGINT);
    signals_->async_wait([this](const error_code& ec, int) {
      if (!ec) shutdown();
    });
  }
  started_ns_ = now_ns();
  tick();
  prune();
  fleet_->start();
  accept();
  io_.run();
  return {};
}

void Hub::stop() {
  asio::post(io_, [this] { shutdown(); });
}

std::string Hub::local_address() const {
  error_code ec;
  const auto ep = acceptor_.local_endpoint(ec);
  if (ec) return "";
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

std::string Hub::public_url() const {
  config::ManagerConfig m = m_;
  if (m.public_url.empty()) {
    const std::string bound = local_address();
    if (!bound.empty()) m.listen = bound;
  }
  return public_url_of(m, host_name_);
}

std::shared_ptr<AgentChannel> Hub::live(const std::string& key) {
  auto it = live_.find(key);
  return it == live_.end() ? nullptr : it->second.lock();
}

void Hub::set_live(const std::string& key, const std::shared_ptr<AgentChannel>& c) {
  live_[key] = c;
}

void Hub::drop_live(const std::string& key, const AgentChannel* c) {
  auto it = live_.find(key);
  if (it != live_.end() && (it->second.expired() || it->second.lock().get() == c)) live_.erase(it);
}

std::vector<std::pair<std::string, std::shared_ptr<AgentChannel>>> Hub::live_channels() {
  std::vector<std::pair<std::string, std::shared_ptr<AgentChannel>>> out;
  for (const auto& [key, w] : live_)
    if (auto c = w.lock()) out.emplace_back(key, std::move(c));
  return out;
}

void Hub::release(const std::string& key, AgentStatus s, Released done) {
  releases_.push_back({key, s});
  released_.push_back(std::move(done));
  if (std::exchange(releases_posted_, true)) return;
  asio::post(io_, [this] { flush_releases(); });
}

void Hub::flush_releases() {
  releases_posted_ = false;
  if (releases_.empty()) return;
  const auto releases = std::exchange(releases_, {});
  const auto done = std::exchange(released_, {});
  auto results = store_->release_agents(releases, manager_id_, now_ns());
  if (!results) log_line("release: " + results.error().message());
  for (size_t i = 0; i < done.size(); ++i)
    done[i](results ? (*results)[i]
                    : Result<std::optional<AgentStatus>>(tl::unexpected(results.error())));
}

void Hub::report(std::string_view action, event::Severity sev, const std::string& message,
                 const AgentRow* agent, const std::string& address,
                 const std::function<void(event::Event&)>& more) {
  event::Event e(action, sev, now_ns());
  e.set("event.dataset", "mamori.manager").message(message);
  if (agent) {
    e.set("mamori.managed_agent.key", agent->agent_key)
        .set("mamori.managed_agent.id", agent->info.agent_id)
        .set("mamori.managed_agent.name", agent->info.name)
        .set("mamori.managed_agent.hostname", agent->info.hostname)
        .set("mamori.managed_agent.group", agent->group);
  }
  if (!address.empty()) e.set("mamori.managed_agent.address", address);
  if (more) more(e);
  reporter_->report(e);
}

void Hub::accept() {
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (stopping_) return;
    if (!ec) on_accept(std::move(socket));
    accept();
  });
}

void Hub::on_accept(tcp::socket socket) {
  if (connections_ >= m_.max_agents) {
    error_code ec;
    socket.close(ec);  // over the limit: no TLS, no parsing, nothing
    return;
  }
  ++connections_;
  // Answers are written whole: Nagle's wait for the peer's delayed ACK only held the last
  // segment of every answer larger than one back (40 ms for a page of events).
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::make_shared<HttpConnection>(*this, std::move(socket))->start();
}

void Hub::tick() {
  tick_.expires_after(std::chrono::seconds(1));
  tick_.async_wait([this](const error_code& ec) {
    if (!ec) tick();
  });
  if (ticking_) return;
  ticking_ = true;
  const int64_t now = now_ns();
  // The agents of a manager that stopped (this one's previous run included) had
  // lost_after to reconnect somewhere; the others' heartbeats are as old as lost_after at
  // most. Before lost_after has passed since this start, they may be on their way here.
  const int64_t lost_after_ns = int64_t{m_.lost_after_s} * 1'000'000'000;
  const bool reap = now - started_ns_ >= lost_after_ns;
  chores_->run([this, now, reap, lost_after_ns](Store& store) {
    if (auto s = store.manager_heartbeat(manager_id_, host_name_, now); !s)
      log_line("heartbeat: " + s.error().message());
    TickAnswers a;
    if (reap) {
      auto reaped = store.reap_agents(manager_id_, now - lost_after_ns, now);
      if (!reaped) log_line("reap: " + reaped.error().message());
      if (reaped) a.reaped = std::move(*reaped);
    }
    // Hellos of the last lost_after count: the managers' clocks may differ by seconds.
    auto moved = store.hellos_elsewhere(manager_id_, now - lost_after_ns);
    if (!moved) log_line("hellos elsewhere: " + moved.error().message());
    if (moved) a.moved = std::move(*moved);
    asio::post(io_, [this, a = std::move(a)] { ticked(a); });
  });
}

void Hub::ticked(const TickAnswers& a) {
  ticking_ = false;
  for (const auto& r : a.reaped) {
    const bool retired = r.status == AgentStatus::kRetired;
    report(retired ? proto::action::kAgentRetired : proto::action::kAgentLost,
           retired ? event::Severity::kInfo : event::Severity::kWarning,
           fmt::format("agent {} ({}): its manager stopped and it did not come back within {} s",
                       r.info.name, r.info.hostname, m_.lost_after_s),
           &r, "", [](event::Event& e) { e.set("mamori.reason", "manager-gone"); });
  }
  // A hello elsewhere for an agent whose channel is here: it moved (this connection is
  // dead and the kernel does not know yet) or a clone holds its identity there.
  for (const std::string& key : a.moved)
    if (auto c = live(key)) c->claimed_elsewhere();
}

void Hub::prune() {
  // At start here, before any connection is taken; then on the store worker.
  if (!prune_started_) {
    prune_started_ = true;
    prune_store(*store_);
  } else {
    chores_->run([this](Store& store) { prune_store(store); });
  }
  prune_.expires_after(std::chrono::hours(1));
  prune_.async_wait([this](const error_code& ec) {
    if (!ec) prune();
  });
}

void Hub::prune_store(Store& store) {
  const RetentionPolicy policy{int64_t{m_.max_events_per_agent},
                               int64_t{m_.retention_days} * 86400 * 1'000'000'000};
  if (policy.max_events_per_agent > 0 || policy.max_age_ns > 0) {
    auto deleted = store.prune(policy, now_ns());
    if (!deleted)
      log_line("retention: " + deleted.error().message());
    else if (*deleted > 0)
      log_line(fmt::format("retention: {} events deleted", *deleted));
  }
  if (policy.max_age_ns > 0) {
    auto deleted = store.prune_fleet(now_ns() - policy.max_age_ns);
    if (!deleted)
      log_line("retention: " + deleted.error().message());
    else if (*deleted > 0)
      log_line(fmt::format("retention: {} ban and command rows deleted", *deleted));
  }
  // Sessions idle or past their limit: refused already, deleted here.
  if (auto s = store.prune_sessions(now_ns(), kSessionIdleNs); !s)
    log_line("sessions: " + s.error().message());
}

void Hub::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  error_code ec;
  acceptor_.close(ec);
  tick_.cancel();
  prune_.cancel();
  fleet_->stop();
  if (signals_) signals_->cancel();
  // shut() ends the channel, which removes it from live_: walk a copy (iterating live_
  // itself looped forever or crashed when an agent was connected).
  const auto live = std::exchange(live_, {});
  for (const auto& [key, w] : live)
    if (auto c = w.lock()) c->shut();
  // The agents' connections end with the manager: they are not lost (the next start gives
  // them lost_after to come back). What is left to write gets a second.
  auto grace = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
  grace->async_wait([this, grace](const error_code&) { io_.stop(); });
}

// ---- Server ---------------------------------------------------------------------------

Server::Server(std::unique_ptr<Hub> hub) : hub_(std::move(hub)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::start(Env& env, const config::Config& config) {
  const auto& m = config.manager;
  MAMORI_TRY(fs::make_private_dir(m.state_dir));
  Identity identity =
      MAMORI_TRY(load_or_create_identity(env, m.state_dir, event::system_hostname()));
  if (identity.created)
    log_line(fmt::format("made the certificate {} (fingerprint {})", identity.cert_path,
                         identity.fingerprint));
  std::unique_ptr<Store> store = MAMORI_TRY(open_store(env, m.database));
  std::unique_ptr<Store> writer_store = MAMORI_TRY(open_store(env, m.database));
  std::unique_ptr<Store> chores_store = MAMORI_TRY(open_store(env, m.database));
  auto reporter = MAMORI_TRY(Reporter::open(env, config, *store));
  auto hub =
      std::make_unique<Hub>(env, config, std::move(store), std::move(writer_store),
                            std::move(chores_store), std::move(identity), std::move(reporter));
  MAMORI_TRY(hub->bind());
  return std::unique_ptr<Server>(new Server(std::move(hub)));
}

Status Server::run(bool handle_signals) { return hub_->run(handle_signals); }
void Server::stop() { hub_->stop(); }
const Identity& Server::identity() const { return hub_->identity(); }
std::string Server::local_address() const { return hub_->local_address(); }
std::string Server::public_url() const { return hub_->public_url(); }
const std::string& Server::manager_id() const { return hub_->manager_id(); }

}  // namespace mamori::manager
