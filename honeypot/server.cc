#include "honeypot/server.h"

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <list>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "honeypot/events.h"
#include "honeypot/fetch.h"
#include "honeypot/kexinit.h"
#include "honeypot/limits.h"
#include "honeypot/line_editor.h"

namespace mamori::honeypot {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reopen{false};

// OpenSSH 9.2's server offer, in its order, less what libssh 0.10 lacks
// (sntrup761x25519-sha512@openssh.com, umac-*): scanners compare the lists.
constexpr const char* kKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
constexpr const char* kKexNoGex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
    "diffie-hellman-group14-sha256";
constexpr const char* kCiphers =
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
    "aes256-gcm@openssh.com";
constexpr const char* kMacs =
    "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,"
    "hmac-sha2-256,hmac-sha2-512,hmac-sha1";
constexpr const char* kHostKeyAlgorithms =
    "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256";

// How long the peek waits for a client's KEXINIT before handing the connection to libssh
// without a HASSH (a client that waits for the server's KEXINIT first).
constexpr int64_t kPeekNs = 5'000'000'000;
// Closed connections are found by a status sweep (libssh has no server-side "gone"
// callback): every 50 ms, so a client that reconnects at once is not refused by its own
// previous connection. Deadlines and byte counts (a syscall each) once a second.
constexpr int64_t kReapNs = 50'000'000;
constexpr int64_t kSweepNs = 1'000'000'000;
constexpr int kPollMs = 50;
constexpr int64_t kFlushNs = 100'000'000;

struct TcpBytes {
  uint64_t in = 0, out = 0;
};
TcpBytes tcp_bytes(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return {};
  return {info.tcpi_bytes_received, info.tcpi_bytes_acked};
}

}  // namespace

struct Server::Conn {
  Impl* server = nullptr;
  ssh_session session = nullptr;
  int fd = -1;
  Peer peer;
  int64_t start_mono = 0;
  bool peeking = true;
  bool dead = false;  // to be reaped after the current poll round
  std::string end_reason;
  uint32_t auth_attempts = 0;
  bool authenticated = false;
  std::string user;
  ssh_channel channel = nullptr;
  bool pty = false;
  bool close_channel = false;
  bool logged_out = false;  // the channel was closed by `exit` or the end of an exec
  int exit_status = 0;
  std::unique_ptr<LineEditor> editor;  // the shell channel's line discipline
  uint32_t commands = 0;
  uint32_t forwards = 0;
  uint32_t fetches = 0;  // [downloads] per_session
  TcpBytes bytes;
  std::unique_ptr<Shell> shell;
  ssh_server_callbacks_struct server_cb{};
  ssh_channel_callbacks_struct channel_cb{};
  std::list<Conn>::iterator self;
};

// A fetch child running for a URL; its event is written when it is over.
struct RunningFetch {
  FetchProcess process;
  Peer peer;
  std::string user, url;
  int64_t started_mono = 0;
};

struct Server::Impl {
  Env* env;
  Config config;
  std::string banner;
  FakeSystem system;
  UniqueFd listen_fd;
  outbox::Outbox* outbox;
  const event::Origin* origin;
  Admission admission;
  ssh_bind bind = nullptr;
  ssh_event loop = nullptr;
  std::list<Conn> conns;
  bool accept_ready = false;
  bool accept_paused = false;  // out of descriptors: the listening socket is not watched
  int64_t accept_paused_at = 0;
  bool descriptors_over = false;
  std::vector<Conn*> peek_ready;
  std::vector<Conn*> flagged;
  int64_t last_reap = 0, last_sweep = 0, last_flush = 0;
  bool unflushed = false;
  bool flush_failing = false;
  Fetching fetching;  // [downloads] fetch = true
  FetchBudget budget;
  std::list<RunningFetch> running_fetches;

  Impl(Env& e, const Config& c, outbox::Outbox& o, const event::Origin& org)
      : env(&e), config(c), outbox(&o), origin(&org), admission(c.limits), budget(c.downloads) {}

  int64_t mono() const { return env->clock().monotonic_ns(); }
  int64_t now() const { return env->clock().now_ns(); }

  void emit(event::Event e) {
    origin->stamp(e);
    outbox->append(e);
    unflushed = true;
  }

  void flag(Conn& c, std::string_view reason) {
    if (c.dead) return;
    c.dead = true;
    c.end_reason = std::string(reason);
    flagged.push_back(&c);
  }

  void limit(Conn& c, std::string_view which, uint64_t value) {
    emit(limit_event(c.peer, which, kPolicyDisconnect, value, now()));
    flag(c, which);
  }

  // --- accept and peek ------------------------------------------------------------------
  void accept_all();
  void peek(Conn& c);
  void hand_over(Conn& c, const HelloParse& parse);
  void reap(Conn& c);
  void find_closed();
  void sweep();
  // --- the SSH side ---------------------------------------------------------------------
  void run_line(Conn& c, std::string_view line, bool cut);
  void finish_channel(Conn& c);
  // --- [downloads] ----------------------------------------------------------------------
  void download(Conn& c, const std::string& url);
  void check_fetches(bool stopping);
  void fetch_over(RunningFetch& f, FetchOutcome o);
};

namespace {

using Conn = Server::Conn;

int on_listen_ready(socket_t, int, void* userdata) {
  static_cast<Server::Impl*>(userdata)->accept_ready = true;
  return 0;
}

int on_peek_ready(socket_t, int, void* userdata) {
  auto* c = static_cast<Conn*>(userdata);
  c->server->peek_ready.push_back(c);
  return 0;
}

void record_login(Conn& c, LoginAttempt a) {
  a.attempt = ++c.auth_attempts;
  c.server->emit(login_event(c.peer, a, c.server->now()));
}

int on_password(ssh_session, const char* user, const char* password, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (c.dead) return SSH_AUTH_DENIED;
  LoginAttempt a;
  a.user = user;
  a.method = "password";
  a.password = password;
  for (const auto& cred : c.server->config.accepted)
    if (cred.user == a.user && cred.password == a.password) a.success = true;
  record_login(c, a);
  if (a.success) {
    c.authenticated = true;
    c.user = a.user;
    c.shell =
        std::make_unique<Shell>(c.server->system, c.user, c.server->config.limits.command_bytes,
                                c.server->config.limits.output_bytes);
    return SSH_AUTH_SUCCESS;
  }
  if (c.auth_attempts >= c.server->config.limits.auth_attempts)
    c.server->limit(c, kLimitAuthAttempts, c.server->config.limits.auth_attempts);
  return SSH_AUTH_DENIED;
}

int on_pubkey(ssh_session, const char* user, ssh_key_struct* pubkey, char signature_state,
              void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (c.dead) return SSH_AUTH_DENIED;
  LoginAttempt a;
  a.user = user;
  a.method = "publickey";
  if (const char* type = ssh_key_type_to_char(ssh_key_type(pubkey))) a.key_type = type;
  unsigned char* hash = nullptr;
  size_t hlen = 0;
  if (ssh_get_publickey_hash(pubkey, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == SSH_OK) {
    char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    if (fp) a.key_sha256 = fp;
    ssh_string_free_char(fp);
    ssh_clean_pubkey_hash(&hash);
  }
  // A probe (no signature) and the signed retry that would follow are one attempt; the
  // probe is refused, so a client never signs.
  if (signature_state == SSH_PUBLICKEY_STATE_NONE || signature_state == SSH_PUBLICKEY_STATE_VALID)
    record_login(c, a);
  if (c.auth_attempts >= c.server->config.limits.auth_attempts)
    c.server->limit(c, kLimitAuthAttempts, c.server->config.limits.auth_attempts);
  return SSH_AUTH_DENIED;
}

int on_pty(ssh_session, ssh_channel, const char*, int, int, int, int, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  c.pty = true;
  if (c.editor) c.editor->set_pty(true);
  return 0;
}

int on_shell(ssh_session, ssh_channel channel, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  const std::string prompt = c.shell->prompt();
  ssh_channel_write(channel, prompt.data(), static_cast<uint32_t>(prompt.size()));
  return 0;
}

int on_exec(ssh_session, ssh_channel, const char* command, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  c.server->run_line(c, command, false);
  c.close_channel = true;
  c.server->flagged.push_back(&c);  // closed after this poll round
  return 0;
}

int on_env(ssh_session, ssh_channel, const char*, const char*, void*) { return 0; }
int on_subsystem(ssh_session, ssh_channel, const char*, void*) { return 1; }  // no sftp

int on_data(ssh_session, ssh_channel channel, void* data, uint32_t len, int is_stderr,
            void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (c.dead || c.close_channel || is_stderr || !c.editor) return static_cast<int>(len);
  const auto write = [&](std::string_view text) {
    if (!text.empty()) ssh_channel_write(channel, text.data(), static_cast<uint32_t>(text.size()));
  };
  for (auto& step : c.editor->feed({static_cast<const char*>(data), len})) {
    if (c.close_channel || c.dead) break;  // `exit` ran or a limit: the rest is not typed
    switch (step.kind) {
      case EditStep::Kind::kEcho:
        write(step.text);
        break;
      case EditStep::Kind::kLine:
        c.server->run_line(c, step.text, step.cut);
        if (!c.close_channel && c.pty) write(c.shell->prompt());
        break;
      case EditStep::Kind::kInterrupt:
        if (c.pty) write("^C\r\n" + c.shell->prompt());
        break;
      case EditStep::Kind::kEof:
        c.close_channel = true;
        c.server->flagged.push_back(&c);
        break;
    }
  }
  c.bytes = tcp_bytes(c.fd);
  if (c.bytes.in + c.bytes.out > c.server->config.limits.session_bytes)
    c.server->limit(c, kLimitSessionBytes, c.server->config.limits.session_bytes);
  return static_cast<int>(len);
}

void on_channel_eof(ssh_session, ssh_channel, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  c.close_channel = true;
  c.server->flagged.push_back(&c);
}

void on_channel_close(ssh_session, ssh_channel, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  c.close_channel = true;
  c.server->flagged.push_back(&c);
}

// What libssh's server callbacks do not take (libssh answers each with its default
// refusal once this returns 1): port-forwarding requests are recorded.
int on_message(ssh_session, ssh_message msg, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  if (c.dead || !c.authenticated || ssh_message_type(msg) != SSH_REQUEST_CHANNEL_OPEN ||
      ssh_message_subtype(msg) != SSH_CHANNEL_DIRECT_TCPIP)
    return 1;
  const uint32_t max = c.server->config.limits.forwards;
  if (++c.forwards > max) {
    c.server->limit(c, kLimitForwards, max);
    return 1;
  }
  const char* host = ssh_message_channel_request_open_destination(msg);
  const char* from = ssh_message_channel_request_open_originator(msg);
  c.server->emit(
      forward_event(c.peer, c.user, host ? host : "",
                    static_cast<uint32_t>(ssh_message_channel_request_open_destination_port(msg)),
                    from ? from : "",
                    static_cast<uint32_t>(ssh_message_channel_request_open_originator_port(msg)),
                    c.server->now()));
  return 1;
}

ssh_channel on_channel_open(ssh_session session, void* userdata) {
  auto& c = *static_cast<Conn*>(userdata);
  // One session channel per connection, and only after an accepted login.
  if (!c.authenticated || c.channel != nullptr || c.dead) return nullptr;
  c.channel = ssh_channel_new(session);
  if (c.channel == nullptr) return nullptr;
  c.editor = std::make_unique<LineEditor>(c.pty, c.server->config.limits.command_bytes);
  c.channel_cb = {};
  c.channel_cb.userdata = &c;
  c.channel_cb.channel_data_function = on_data;
  c.channel_cb.channel_pty_request_function = on_pty;
  c.channel_cb.channel_shell_request_function = on_shell;
  c.channel_cb.channel_exec_request_function = on_exec;
  c.channel_cb.channel_env_request_function = on_env;
  c.channel_cb.channel_subsystem_request_function = on_subsystem;
  c.channel_cb.channel_eof_function = on_channel_eof;
  c.channel_cb.channel_close_function = on_channel_close;
  ssh_callbacks_init(&c.channel_cb);
  ssh_set_channel_callbacks(c.channel, &c.channel_cb);
  return c.channel;
}

std::string peer_text(const sockaddr_storage& ss, uint16_t& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
    }
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    port = ntohs(a->sin_port);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
  }
  return buf;
}

}  // namespace

void Server::Impl::accept_all() {
  // Bounded per round so a connection flood cannot starve the sessions already open.
  for (int n = 0; n < 256; ++n) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    const int fd = accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        accept_ready = false;
      } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the pending connection stays in the backlog and
        // the listening socket stays readable. Stop watching it for a moment instead of
        // spinning on it (sweep() watches it again); one event per episode.
        accept_ready = false;
        if (!accept_paused) {
          accept_paused = true;
          accept_paused_at = mono();
          ssh_event_remove_fd(loop, listen_fd.get());
        }
        if (!descriptors_over) {  // the episode lasts until an accept() succeeds again
          descriptors_over = true;
          emit(limit_event(Peer{}, kLimitDescriptors, kPolicyRefuse, 0, now()));
        }
      }
      return;
    }
    descriptors_over = false;
    Peer peer;
    peer.ip = peer_text(ss, peer.port);
    const auto d = admission.admit(peer.ip);
    if (!d.admitted) {
      ::close(fd);
      if (d.report) {
        const uint64_t value =
            d.limit == kLimitSessions ? config.limits.sessions : config.limits.sessions_per_address;
        emit(limit_event(peer, d.limit, kPolicyRefuse, value, now()));
      }
      continue;
    }
    ssh_session s = ssh_new();
    if (s == nullptr || ssh_bind_accept_fd(bind, s, fd) != SSH_OK) {
      if (s) ssh_free(s);
      ::close(fd);
      admission.release(peer.ip);
      continue;
    }
    Conn& c = conns.emplace_back();
    c.self = std::prev(conns.end());
    c.server = this;
    c.session = s;
    c.fd = fd;
    c.peer = std::move(peer);
    c.start_mono = mono();
    ssh_set_blocking(s, 0);
    ssh_options_set(s, SSH_OPTIONS_COMPRESSION_S_C, "none,zlib@openssh.com");
    ssh_options_set(s, SSH_OPTIONS_COMPRESSION_C_S, "none,zlib@openssh.com");
    c.server_cb = {};
    c.server_cb.userdata = &c;
    c.server_cb.auth_password_function = on_password;
    c.server_cb.auth_pubkey_function = on_pubkey;
    c.server_cb.channel_open_request_session_function = on_channel_open;
    ssh_callbacks_init(&c.server_cb);
    ssh_set_server_callbacks(s, &c.server_cb);
    ssh_set_auth_methods(s, SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_PASSWORD);
    ssh_set_message_callback(s, on_message, &c);
    // Sends the banner and sets the key exchange up; the rest runs in the event loop.
    const int rc = ssh_handle_key_exchange(s);
    if (rc == SSH_ERROR) {
      c.peeking = false;  // never added to the loop
      flag(c, "handshake-failed");
      continue;
    }
    ssh_event_add_fd(loop, fd, POLLIN, on_peek_ready, &c);
  }
}

void Server::Impl::peek(Conn& c) {
  if (c.dead || !c.peeking) return;
  static std::array<char, kMaxVersionLine + kMaxKexinitPacket> buf;
  const ssize_t n = recv(c.fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    hand_over(c, HelloParse{HelloStatus::kInvalid, 0, {}});
    flag(c, "peer-closed");
    return;
  }
  if (n == 0) {  // gone before a key exchange (a banner grab)
    hand_over(c, HelloParse{HelloStatus::kInvalid, 0, {}});
    flag(c, "peer-closed");
    return;
  }
  const HelloParse parse = parse_client_hello({buf.data(), static_cast<size_t>(n)});
  if (parse.status == HelloStatus::kNeedMore && parse.need <= buf.size()) {
    // Woken again only when that much is there: no spinning on bytes we do not consume.
    const int want = static_cast<int>(parse.need);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want));
    return;
  }
  hand_over(c, parse);
}

void Server::Impl::hand_over(Conn& c, const HelloParse& parse) {
  if (!c.peeking) return;
  c.peeking = false;
  ssh_event_remove_fd(loop, c.fd);
  const int one = 1;
  setsockopt(c.fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
  ClientHello hello = parse.hello;
  if (hello.version.empty())
    if (const char* v = ssh_get_clientbanner(c.session)) hello.version = v;
  event::Event e =
      connection_event(c.peer, hello, parse.status == HelloStatus::kDone, banner, now());
  c.peer.session = e.id();
  emit(std::move(e));
  ssh_event_add_session(loop, c.session);
}

void Server::Impl::run_line(Conn& c, std::string_view line, bool line_cut) {
  if (!c.shell || c.dead) return;
  const std::string_view recorded = line.substr(0, config.limits.command_bytes);
  // Blank lines are typing, not commands.
  const bool blank = recorded.find_first_not_of(" \t") == std::string_view::npos;
  if (!blank && ++c.commands > config.limits.commands) {
    limit(c, kLimitCommands, config.limits.commands);
    return;
  }
  const ShellResult r = c.shell->run(line);
  const bool cut = r.truncated || line_cut;
  if (!blank) emit(command_event(c.peer, c.user, recorded, cut, r.exit_status, now()));
  for (const auto& url : r.downloads) download(c, url);
  if (!r.output.empty() && c.channel)
    ssh_channel_write(c.channel, r.output.data(), static_cast<uint32_t>(r.output.size()));
  c.exit_status = r.exit_status;
  if (r.exit) {
    c.close_channel = true;
    flagged.push_back(&c);
  }
}

void Server::Impl::download(Conn& c, const std::string& url) {
  const Downloads& d = config.downloads;
  DownloadResult res;
  if (!d.fetch || !fetching.store || !fetching.exe.valid()) {
    res.result = kResultNotFetched;
    emit(download_event(c.peer, c.user, url, res, now()));
    return;
  }
  res.result = kResultRefused;
  res.policy = url_refusal(url, d.allow_private);
  if (res.policy.empty()) res.policy = budget.start(c.fetches, mono());
  if (!res.policy.empty()) {
    emit(download_event(c.peer, c.user, url, res, now()));
    return;
  }
  FetchRequest req{url, uint64_t{d.max_kb} << 10, d.timeout, d.allow_private};
  auto p = FetchProcess::spawn(fetching.exe.get(), req);
  if (!p) {
    budget.finished();
    res.result = kResultFailed;
    res.error = p.error().message();
    emit(download_event(c.peer, c.user, url, res, now()));
    return;
  }
  running_fetches.push_back({std::move(*p), c.peer, c.user, url, mono()});
}

// Each loop round: a finished child's outcome, or a child past its time killed.
void Server::Impl::check_fetches(bool stopping) {
  const int64_t grace = (int64_t{config.downloads.timeout} + 2) * 1'000'000'000;
  for (auto it = running_fetches.begin(); it != running_fetches.end();) {
    std::optional<FetchOutcome> o = it->process.poll();
    if (!o && stopping) o = it->process.kill("", "the honeypot stopped");
    if (!o && mono() - it->started_mono > grace)
      o = it->process.kill(kPolicyTimeout, "the fetch process ran past its time and was killed");
    if (!o) {
      ++it;
      continue;
    }
    fetch_over(*it, std::move(*o));
    it = running_fetches.erase(it);
  }
}

void Server::Impl::fetch_over(RunningFetch& f, FetchOutcome o) {
  budget.finished();
  DownloadResult res;
  res.result = o.result == kResultFetched   ? kResultFetched
               : o.result == kResultRefused ? kResultRefused
                                            : kResultFailed;
  res.policy = o.policy;
  res.error = o.error;
  res.content_type = o.content_type;
  res.http_status = o.http_status;
  res.truncated = o.truncated;
  if (res.result == kResultFetched) {
    auto stored = fetching.store->store(o.body, now());
    if (!stored) {
      res.result = kResultFailed;
      res.error = "not stored: " + stored.error().message();
    } else {
      res.sha256 = stored->sha256;
      res.size = o.body.size();
      res.existed = stored->existed;
      const uint64_t quota = uint64_t{config.downloads.quota_mb} << 20;
      for (const auto& p : stored->pruned)
        emit(download_pruned_event(p.sha256, p.size, quota, now()));
    }
  }
  emit(download_event(f.peer, f.user, f.url, res, now()));
}

void Server::Impl::finish_channel(Conn& c) {
  if (c.channel == nullptr || !ssh_channel_is_open(c.channel)) return;
  ssh_channel_request_send_exit_status(c.channel, c.exit_status);
  ssh_channel_send_eof(c.channel);
  ssh_channel_close(c.channel);
}

void Server::Impl::reap(Conn& c) {
  if (c.peeking) {
    ssh_event_remove_fd(loop, c.fd);
    c.peeking = false;
  } else {
    ssh_event_remove_session(loop, c.session);
  }
  const TcpBytes b = tcp_bytes(ssh_get_fd(c.session));
  if (b.in || b.out) c.bytes = b;
  const int64_t duration = mono() - c.start_mono;
  emit(session_end_event(c.peer, c.end_reason, duration, c.bytes.in, c.bytes.out, c.commands,
                         now()));
  if (c.channel && ssh_channel_is_open(c.channel)) finish_channel(c);
  // As OpenSSH's sshd: "Too many authentication failures" past the tries, a silent close
  // otherwise (libssh's own disconnect text would name it).
  if (c.end_reason == kLimitAuthAttempts) {
    ssh_session_set_disconnect_message(c.session, "Too many authentication failures");
    ssh_disconnect(c.session);
  } else {
    ssh_silent_disconnect(c.session);
  }
  ssh_free(c.session);
  admission.release(c.peer.ip);
  conns.erase(c.self);
}

void Server::Impl::find_closed() {
  for (Conn& c : conns) {
    if (c.dead || c.peeking) continue;
    const int status = ssh_get_status(c.session);
    if ((status & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 || !ssh_is_connected(c.session))
      flag(c, c.logged_out ? "logout" : "peer-closed");
  }
}

void Server::Impl::sweep() {
  const int64_t t = mono();
  if (accept_paused && t - accept_paused_at >= kSweepNs) {
    accept_paused = false;
    ssh_event_add_fd(loop, listen_fd.get(), POLLIN, on_listen_ready, this);
  }
  const int64_t max_ns = int64_t{config.limits.session_seconds} * 1'000'000'000;
  for (Conn& c : conns) {
    if (c.dead) continue;
    if (c.peeking && t - c.start_mono > kPeekNs) {
      hand_over(c, HelloParse{HelloStatus::kInvalid, 0, {}});
    }
    if (t - c.start_mono > max_ns) {
      limit(c, kLimitSessionSeconds, config.limits.session_seconds);
      continue;
    }
    if (!c.peeking) {
      c.bytes = tcp_bytes(c.fd);
      if (c.bytes.in + c.bytes.out > config.limits.session_bytes)
        limit(c, kLimitSessionBytes, config.limits.session_bytes);
    }
  }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (!impl_) return;
  for (Conn& c : impl_->conns) {
    if (c.session) ssh_free(c.session);
    impl_->admission.release(c.peer.ip);
  }
  if (impl_->loop) ssh_event_free(impl_->loop);
  if (impl_->bind) ssh_bind_free(impl_->bind);
}

void Server::request_stop() { g_stop.store(true); }
void Server::request_reopen() { g_reopen.store(true); }

Result<std::unique_ptr<Server>> Server::create(Env& env, const Config& config, std::string banner,
                                               FakeSystem system, std::vector<HostKey> keys,
                                               UniqueFd listen_fd, outbox::Outbox& outbox,
                                               const event::Origin& origin, Fetching fetching) {
  auto impl = std::make_unique<Impl>(env, config, outbox, origin);
  impl->fetching = std::move(fetching);
  impl->banner = std::move(banner);
  impl->system = std::move(system);
  impl->listen_fd = std::move(listen_fd);
  impl->bind = ssh_bind_new();
  impl->loop = ssh_event_new();
  // Frees the bind, the loop and the keys not yet given to the bind on every return below.
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  Impl& s = *server->impl_;
  if (s.bind == nullptr || s.loop == nullptr) return fail_msg("libssh", "", "out of memory");
  bool process_config = false;
  ssh_bind_options_set(s.bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config);
  for (auto& k : keys) {
    // The bind owns each key from here.
    ssh_key key = std::exchange(k.key, nullptr);
    if (ssh_bind_options_set(s.bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
      ssh_key_free(key);
      for (auto& rest : keys) ssh_key_free(std::exchange(rest.key, nullptr));
      return fail_msg("libssh import key", k.path, ssh_get_error(s.bind));
    }
  }
  if (ssh_bind_options_set(s.bind, SSH_BIND_OPTIONS_BANNER, s.banner.c_str()) != SSH_OK)
    return fail_msg("libssh banner", s.banner, ssh_get_error(s.bind));
  if (ssh_bind_options_set(s.bind, SSH_BIND_OPTIONS_KEY_EXCHANGE, kKex) != SSH_OK &&
      ssh_bind_options_set(s.bind, SSH_BIND_OPTIONS_KEY_EXCHANGE, kKexNoGex) != SSH_OK)
    return fail_msg("libssh key exchange", kKexNoGex, ssh_get_error(s.bind));
  const std::pair<ssh_bind_options_e, const char*> lists[] = {
      {SSH_BIND_OPTIONS_CIPHERS_C_S, kCiphers},
      {SSH_BIND_OPTIONS_CIPHERS_S_C, kCiphers},
      {SSH_BIND_OPTIONS_HMAC_C_S, kMacs},
      {SSH_BIND_OPTIONS_HMAC_S_C, kMacs},
      {SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, kHostKeyAlgorithms},
  };
  for (const auto& [option, value] : lists)
    if (ssh_bind_options_set(s.bind, option, value) != SSH_OK)
      return fail_msg("libssh algorithms", value, ssh_get_error(s.bind));
  if (ssh_event_add_fd(s.loop, s.listen_fd.get(), POLLIN, on_listen_ready, &s) != SSH_OK)
    return fail_msg("libssh event", "", "cannot watch the listening socket");
  return server;
}

Status Server::run() {
  Impl& s = *impl_;
  s.last_reap = s.last_sweep = s.last_flush = s.mono();
  while (!g_stop.load()) {
    if (g_reopen.exchange(false)) {  // SIGHUP: logrotate moved the export away
      if (const Status st = s.outbox->reopen(); !st)
        std::fprintf(stderr, "mamori-honeypot: reopen %s\n", st.error().message().c_str());
    }
    // The poll timeout bounds how late a closed connection or a deadline is noticed.
    ssh_event_dopoll(s.loop, kPollMs);
    if (s.accept_ready) s.accept_all();
    if (!s.running_fetches.empty()) s.check_fetches(false);
    auto ready = std::move(s.peek_ready);
    s.peek_ready.clear();
    for (Conn* c : ready) s.peek(*c);
    const int64_t t = s.mono();
    if (t - s.last_reap >= kReapNs) {
      s.last_reap = t;
      s.find_closed();
    }
    if (t - s.last_sweep >= kSweepNs) {
      s.last_sweep = t;
      s.sweep();
    }
    // Channels to close and connections to end, found by callbacks during the poll:
    // never freed inside libssh's own callbacks.
    auto flagged = std::move(s.flagged);
    s.flagged.clear();
    for (Conn* c : flagged) {
      // The client closes the connection once it has the exit status and the close;
      // one that does not is ended by session_seconds.
      if (c->close_channel && !c->dead && c->channel && !c->logged_out) {
        s.finish_channel(*c);
        c->logged_out = true;
      }
    }
    // flag() above appended to s.flagged: take both lists' dead connections.
    for (Conn* c : s.flagged) flagged.push_back(c);
    s.flagged.clear();
    std::sort(flagged.begin(), flagged.end());
    flagged.erase(std::unique(flagged.begin(), flagged.end()), flagged.end());
    for (Conn* c : flagged)
      if (c->dead) s.reap(*c);
    if (s.unflushed && t - s.last_flush >= kFlushNs) {
      s.last_flush = t;
      s.unflushed = false;
      // A failed flush keeps the events queued for the next one (the outbox's drop policy
      // bounds them); said once when it starts failing and once when it recovers.
      const Status st = s.outbox->flush();
      if (!st && !s.flush_failing)
        std::fprintf(stderr, "mamori-honeypot: events not written, kept for a retry: %s\n",
                     st.error().message().c_str());
      else if (st && s.flush_failing)
        std::fprintf(stderr, "mamori-honeypot: events written again\n");
      s.flush_failing = !st;
      if (!st) s.unflushed = true;
    }
  }
  std::vector<Conn*> open;
  for (Conn& c : s.conns) open.push_back(&c);
  for (Conn* c : open) {
    if (!c->dead) {
      c->dead = true;
      c->end_reason = "shutdown";
    }
    s.reap(*c);
  }
  s.check_fetches(true);
  return s.outbox->flush();
}

}  // namespace mamori::honeypot
