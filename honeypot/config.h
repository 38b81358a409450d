#pragma once
// The honeypot's configuration: a TOML file of its own (`mamori-honeypot --config FILE`,
// docs/honeypot.md), read with core/config/toml_reader.h so mistakes are reported as
// file:line:col with a stable code ("honeypot.value", ...) like mamori.toml's.
//
// Every quantity an attacker drives has a limit here; limits.h says what happens when
// one is hit.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/load_error.h"

namespace mamori::honeypot {

struct Limits {
  uint32_t sessions = 10000;            // open connections, all addresses together
  uint32_t sessions_per_address = 16;   // open connections from one source address
  uint32_t auth_attempts = 6;           // password and public-key tries per connection
  uint64_t session_bytes = 1ull << 20;  // bytes in and out of one connection (TCP payload)
  uint32_t session_seconds = 600;       // a connection's whole life
  uint32_t command_bytes = 4096;        // one command line (longer: cut, and recorded cut)
  uint32_t output_bytes = 4096;         // what one emulated command may print
  uint32_t commands = 1000;             // command lines per connection (each is an event)
  uint32_t forwards = 16;               // port-forwarding requests per connection
  // The outbox's disk quota (all segments); past it the oldest records go first, each
  // drop reported by an outbox-dropped event (core/outbox/outbox.h), so the honeypot
  // runs for months on a fixed budget.
  uint32_t outbox_mb = 1024;
};

// [downloads]: what `wget`/`curl URL` in the emulated shell does (docs/honeypot.md,
// "Downloads"). Off by default: the URL is only recorded. On, each URL is fetched by a
// sandboxed child process (honeypot/fetch.h) within these limits and kept in
// STATE/downloads/<sha256> for the agent's YARA scan.
struct Downloads {
  bool fetch = false;
  uint32_t max_kb = 1024;    // a file is cut here (and recorded cut: policy max_kb)
  uint32_t timeout = 30;     // seconds one fetch may take, redirects included
  uint32_t quota_mb = 256;   // STATE/downloads; past it the oldest files are pruned
  uint32_t per_session = 4;  // fetches one connection may start
  uint32_t per_hour = 120;   // fetches the honeypot starts in any hour, all sessions
  uint32_t concurrent = 4;   // fetch processes at a time
  // Loopback, private, link-local, CGNAT, multicast and reserved addresses are refused
  // (an attacker must not make the honeypot fetch from the host's own or its network's
  // internal services: SSRF). Tests on loopback turn this on.
  bool allow_private = false;
};

struct Credential {
  std::string user;
  std::string password;
};

struct Config {
  std::string source;                      // the file it came from
  std::string listen_address = "0.0.0.0";  // IPv4 or IPv6 text
  uint16_t listen_port = 2222;
  std::string state_dir = "/var/lib/mamori-honeypot";  // agent-id, node seed, outbox
  std::string outbox_dir;                              // "" = STATE/outbox
  std::string event_log;                 // JSON-lines export of the outbox; "" = STATE/events.jsonl
  std::string host_key_dir;              // "" = STATE/host-keys (made by root, 0700)
  std::string user = "mamori-honeypot";  // the user it drops to when started as root
  // The SSH version text after "SSH-2.0-"; "auto" reads the host's sshd (sshd_path) so
  // the banner is the one a scanner expects from this host.
  std::string banner = "auto";
  std::string sshd_path = "/usr/sbin/sshd";
  std::string hostname;  // the fake system's host name; "" = made from the node seed
  Limits limits;
  Downloads downloads;
  std::vector<Credential> accepted;  // user/password pairs that get the emulated shell
};

// Parses the text of a config; `source_name` names it in errors.
config::LoadResult<Config> parse_config(std::string_view text, std::string_view source_name);
// Reads and parses `path` (honeypot.io when unreadable, honeypot.limit past 1 MiB).
config::LoadResult<Config> load_config(const std::string& path);

// "host:port", "[v6]:port" or ":port" into address and port; false when malformed.
bool split_listen(std::string_view text, std::string& address, uint16_t& port);

}  // namespace mamori::honeypot
