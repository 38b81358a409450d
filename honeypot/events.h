#pragma once
// The honeypot's events (ECS, event.dataset mamori.honeypot; docs/honeypot.md lists each
// action's fields). Every event of one connection carries mamori.ssh.session (the id of
// its ssh-connection event) and source.ip / source.port, so a SIEM groups them.
// Attacker-controlled strings (user names, passwords, commands, URLs) are kept as they
// came: the event model escapes invalid UTF-8 when it serialises them.
//
// Pure builders: time is passed in.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/event/event.h"
#include "honeypot/kexinit.h"

namespace mamori::honeypot {

inline constexpr std::string_view kDataset = "mamori.honeypot";

struct Peer {
  std::string ip;
  uint16_t port = 0;
  std::string session;  // mamori.ssh.session; "" before the connection event
};

// `hello` as far as it was seen (kDone: with HASSH); `libssh_version` is the client's
// version text when libssh read it before the peek did.
event::Event connection_event(const Peer& peer, const ClientHello& hello, bool complete,
                              std::string_view server_banner, int64_t now_ns);

struct LoginAttempt {
  std::string user;
  std::string method;      // "password" or "publickey"
  std::string password;    // password attempts
  std::string key_type;    // publickey attempts: "ssh-ed25519", ...
  std::string key_sha256;  // "SHA256:..." as ssh-keygen -l prints it
  bool success = false;
  uint32_t attempt = 0;  // 1-based within the connection
};
event::Event login_event(const Peer& peer, const LoginAttempt& a, int64_t now_ns);

event::Event command_event(const Peer& peer, std::string_view user, std::string_view line,
                           bool truncated, int exit_status, int64_t now_ns);
// What became of a URL wget/curl named (downloads.h has the results and policies).
struct DownloadResult {
  std::string_view result;  // not-fetched, fetched, refused, failed
  std::string_view policy;  // the policy that refused, cut or failed it; "" none
  std::string error;        // a failure's reason
  std::string sha256;       // fetched: the stored file's name in STATE/downloads
  uint64_t size = 0;        // fetched: bytes stored
  std::string content_type;
  long http_status = 0;
  bool truncated = false;  // cut at max_kb
  bool existed = false;    // the same content was stored already
};
event::Event download_event(const Peer& peer, std::string_view user, std::string_view url,
                            const DownloadResult& d, int64_t now_ns);
// A captured file removed to keep STATE/downloads within quota_mb.
event::Event download_pruned_event(std::string_view sha256, uint64_t size, uint64_t quota_bytes,
                                   int64_t now_ns);
// A port-forwarding request (direct-tcpip: the client asks the server to connect out,
// to use it as a proxy); refused, never connected.
event::Event forward_event(const Peer& peer, std::string_view user, std::string_view host,
                           uint32_t port, std::string_view originator, uint32_t originator_port,
                           int64_t now_ns);
// `value` is the limit's configured value.
event::Event limit_event(const Peer& peer, std::string_view limit, std::string_view policy,
                         uint64_t value, int64_t now_ns);
event::Event session_end_event(const Peer& peer, std::string_view reason, int64_t duration_ns,
                               uint64_t bytes_in, uint64_t bytes_out, uint32_t commands,
                               int64_t now_ns);

}  // namespace mamori::honeypot
