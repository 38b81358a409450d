#include "honeypot/config.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <optional>

#include "core/base/quote.h"
#include "core/config/toml_reader.h"

namespace mamori::honeypot {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxAccepted = 256;
constexpr size_t kMaxCredentialBytes = 256;

bool is_absolute_clean(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.find('\0') == std::string::npos &&
         path.find("/../") == std::string::npos && !path.ends_with("/..") &&
         path.find("/./") == std::string::npos;
}

bool absolute_path(config::TomlTable& t, std::string_view name, std::string& path,
                   bool may_be_empty) {
  if (!t.optional(name, path, 4096)) return false;
  if (may_be_empty && path.empty()) return true;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (is_absolute_clean(path)) return true;
  return t.fail(name, "value",
                "must be an absolute path without '.' or '..' components, not " + quote(path));
}

// The banner goes on the wire after "SSH-2.0-": printable ASCII, a software version
// without '-' or spaces, then an optional " comment" (RFC 4253 4.2); at most 200 bytes.
bool valid_banner(std::string_view b) {
  if (b.empty() || b.size() > 200) return false;
  for (const char c : b)
    if (c < 0x20 || c > 0x7e) return false;
  const std::string_view version = b.substr(0, b.find(' '));
  return !version.empty() && version.find('-') == std::string_view::npos;
}

bool load_limits(config::TomlTable& t, Limits& l) {
  return t.only_keys({"sessions", "sessions_per_address", "auth_attempts", "session_bytes",
                      "session_seconds", "command_bytes", "output_bytes", "outbox_mb", "commands",
                      "forwards"}) &&
         t.optional("sessions", l.sessions, 1u, 1000000u) &&
         t.optional("sessions_per_address", l.sessions_per_address, 1u, 1000000u) &&
         t.optional("auth_attempts", l.auth_attempts, 1u, 1000u) &&
         t.optional("session_bytes", l.session_bytes, uint64_t{4096}, uint64_t{1} << 40) &&
         t.optional("session_seconds", l.session_seconds, 1u, 7u * 86400u) &&
         t.optional("command_bytes", l.command_bytes, 64u, 1u << 20) &&
         t.optional("output_bytes", l.output_bytes, 256u, 1u << 20) &&
         t.optional("outbox_mb", l.outbox_mb, 16u, 1u << 20) &&
         t.optional("commands", l.commands, 1u, 1000000u) &&
         t.optional("forwards", l.forwards, 0u, 10000u);
}

bool load_downloads(config::TomlTable& t, Downloads& d) {
  if (!t.only_keys({"fetch", "max_kb", "timeout", "quota_mb", "per_session", "per_hour",
                    "concurrent", "allow_private"}) ||
      !t.optional("fetch", d.fetch) || !t.optional("max_kb", d.max_kb, 1u, 1u << 20) ||
      !t.optional("timeout", d.timeout, 1u, 3600u) ||
      !t.optional("quota_mb", d.quota_mb, 1u, 1u << 20) ||
      !t.optional("per_session", d.per_session, 0u, 10000u) ||
      !t.optional("per_hour", d.per_hour, 0u, 1000000u) ||
      !t.optional("concurrent", d.concurrent, 1u, 64u) ||
      !t.optional("allow_private", d.allow_private))
    return false;
  // One file must fit the quota, or storing it would prune everything else.
  if (uint64_t{d.max_kb} << 10 > uint64_t{d.quota_mb} << 20)
    return t.fail("max_kb", "value",
                  "must not exceed quota_mb (" + std::to_string(d.quota_mb) + " MiB)");
  return true;
}

bool load(config::TomlReader& reader, Config& c) {
  config::TomlTable top = reader.top();
  c.source = reader.file();
  std::string listen;
  if (!top.only_keys({"listen", "state_dir", "outbox_dir", "event_log", "host_key_dir", "user",
                      "banner", "sshd_path", "hostname", "limits", "downloads", "accepted"}) ||
      !top.optional("listen", listen, 256) ||
      !absolute_path(top, "state_dir", c.state_dir, false) ||
      !absolute_path(top, "outbox_dir", c.outbox_dir, true) ||
      !absolute_path(top, "event_log", c.event_log, true) ||
      !absolute_path(top, "host_key_dir", c.host_key_dir, true) ||
      !top.optional("user", c.user, 64) || !top.optional("banner", c.banner, 256) ||
      !absolute_path(top, "sshd_path", c.sshd_path, false) ||
      !top.optional("hostname", c.hostname, 64))
    return false;
  if (top.has("listen") && !split_listen(listen, c.listen_address, c.listen_port))
    return top.fail("listen", "value",
                    "must be ADDRESS:PORT (\"0.0.0.0:2222\", \"[::]:22\"), not " + quote(listen));
  if (c.user.empty()) return top.fail("user", "value", "must name a user");
  if (c.banner != "auto" && !valid_banner(c.banner))
    return top.fail("banner", "value",
                    "must be \"auto\" or a version text as sshd sends it after \"SSH-2.0-\" "
                    "(\"OpenSSH_9.2p1 Debian-2+deb12u3\": printable ASCII, no '-' before the "
                    "first space), not " +
                        quote(c.banner));
  for (const char ch : c.hostname)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.'))
      return top.fail("hostname", "value", "must be a host name, not " + quote(c.hostname));

  std::optional<config::TomlTable> limits;
  if (!top.table("limits", limits) || (limits && !load_limits(*limits, c.limits))) return false;

  std::optional<config::TomlTable> downloads;
  if (!top.table("downloads", downloads) || (downloads && !load_downloads(*downloads, c.downloads)))
    return false;

  std::vector<config::TomlTable> accepted;
  if (!top.tables("accepted", accepted, kMaxAccepted)) return false;
  for (auto& t : accepted) {
    Credential cred;
    if (!t.only_keys({"user", "password"}) ||
        !t.required("user", "every [[accepted]] needs a user", cred.user, kMaxCredentialBytes) ||
        !t.required("password", "every [[accepted]] needs a password", cred.password,
                    kMaxCredentialBytes))
      return false;
    if (cred.user.empty()) return t.fail("user", "value", "must not be empty");
    c.accepted.push_back(std::move(cred));
  }
  return true;
}

}  // namespace

bool split_listen(std::string_view text, std::string& address, uint16_t& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || p == 0 || p > 65535)
    return false;
  if (host.empty()) host = "0.0.0.0";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1) return false;
  } else {
    in_addr a4{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) return false;
  }
  address = std::string(host);
  port = static_cast<uint16_t>(p);
  return true;
}

config::LoadResult<Config> parse_config(std::string_view text, std::string_view source_name) {
  config::TomlReader reader("honeypot", std::string(source_name));
  Config c;
  if (!reader.parse(text, kMaxConfigBytes) || !load(reader, c)) return reader.unexpected();
  return c;
}

config::LoadResult<Config> load_config(const std::string& path) {
  auto text = config::read_toml_file("honeypot", path, kMaxConfigBytes);
  if (!text) return tl::unexpected(text.error());
  return parse_config(*text, path);
}

}  // namespace mamori::honeypot
