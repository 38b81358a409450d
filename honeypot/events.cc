#include "honeypot/events.h"

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/proto/actions.h"

namespace mamori::honeypot {
namespace {

namespace action = proto::action;
constexpr std::string_view kPolicyQuotaName = "quota_mb";  // downloads.h kPolicyQuota
using event::Severity;
using nlohmann::json;

event::Event base(std::string_view act, Severity sev, const Peer& peer, int64_t now_ns,
                  json categories, json types) {
  event::Event e(act, sev, now_ns);
  e.set("event.dataset", std::string(kDataset))
      .set("event.category", std::move(categories))
      .set("event.type", std::move(types));
  if (!peer.ip.empty()) e.set("source.ip", peer.ip).set("source.port", peer.port);
  if (!peer.session.empty()) e.set("mamori.ssh.session", peer.session);
  return e;
}

}  // namespace

event::Event connection_event(const Peer& peer, const ClientHello& hello, bool complete,
                              std::string_view server_banner, int64_t now_ns) {
  event::Event e = base(action::kSshConnection, Severity::kNotice, peer, now_ns,
                        json::array({"network", "intrusion_detection"}), json::array({"start"}));
  e.set("mamori.ssh.server_version", "SSH-2.0-" + std::string(server_banner));
  if (!hello.version.empty()) e.set("mamori.ssh.client_version", hello.version);
  if (complete) {
    e.set("mamori.ssh.hassh", hello.hassh)
        .set("mamori.ssh.hassh_algorithms", hello.hassh_algorithms)
        .set("mamori.ssh.kex_algorithms", hello.kex)
        .set("mamori.ssh.host_key_algorithms", hello.host_keys);
  }
  e.message(fmt::format("SSH connection from {} port {}{}", peer.ip, peer.port,
                        hello.version.empty() ? "" : ", client " + quote(hello.version)));
  // The session id is this event's id: the connection's later events point at it.
  e.set("mamori.ssh.session", e.id());
  return e;
}

event::Event login_event(const Peer& peer, const LoginAttempt& a, int64_t now_ns) {
  event::Event e = base(a.success ? action::kSshLoginSucceeded : action::kSshLoginFailed,
                        a.success ? Severity::kWarning : Severity::kNotice, peer, now_ns,
                        json::array({"authentication", "intrusion_detection"}),
                        json::array({a.success ? "start" : "denied"}));
  e.outcome(a.success ? "success" : "failure")
      .set("user.name", a.user)
      .set("mamori.ssh.auth_method", a.method)
      .set("mamori.ssh.attempt", a.attempt);
  if (a.method == "password") e.set("mamori.ssh.password", a.password);
  if (!a.key_type.empty()) e.set("mamori.ssh.key_type", a.key_type);
  if (!a.key_sha256.empty()) e.set("mamori.ssh.key_fingerprint", a.key_sha256);
  e.message(fmt::format("SSH {} login {} for {} from {}", a.method,
                        a.success ? "accepted (honeypot shell)" : "refused", quote(a.user),
                        peer.ip));
  return e;
}

event::Event command_event(const Peer& peer, std::string_view user, std::string_view line,
                           bool truncated, int exit_status, int64_t now_ns) {
  event::Event e = base(action::kSshCommand, Severity::kWarning, peer, now_ns,
                        json::array({"process", "intrusion_detection"}), json::array({"start"}));
  e.set("user.name", std::string(user))
      .set("process.command_line", std::string(line))
      .set("process.exit_code", exit_status);
  if (truncated) e.set("mamori.ssh.truncated", true);
  e.message(fmt::format("SSH honeypot command from {}: {}", peer.ip, quote(line.substr(0, 200))));
  return e;
}

event::Event download_event(const Peer& peer, std::string_view user, std::string_view url,
                            const DownloadResult& d, int64_t now_ns) {
  event::Event e = base(action::kSshDownloadAttempted, Severity::kWarning, peer, now_ns,
                        json::array({"malware", "intrusion_detection"}),
                        json::array({d.result == "fetched" ? "creation" : "info"}));
  e.set("user.name", std::string(user))
      .set("url.original", std::string(url))
      .set("mamori.ssh.download_result", std::string(d.result));
  if (!d.policy.empty()) e.set("mamori.ssh.download_policy", std::string(d.policy));
  if (!d.error.empty()) e.set("mamori.ssh.download_error", d.error);
  if (d.http_status > 0) e.set("http.response.status_code", d.http_status);
  if (!d.content_type.empty()) e.set("file.mime_type", d.content_type);
  std::string what;
  if (d.result == "fetched") {
    e.set("file.hash.sha256", d.sha256).set("file.size", d.size);
    if (d.truncated) e.set("mamori.ssh.download_truncated", true);
    what = fmt::format("fetched, {} bytes{}, sha256 {}{}", d.size,
                       d.truncated ? " (cut at max_kb)" : "", d.sha256,
                       d.existed ? " (stored already)" : "");
  } else if (d.result == "not-fetched") {
    what = "not fetched";
  } else {
    what = fmt::format("{}{}{}", d.result, d.policy.empty() ? "" : " by " + std::string(d.policy),
                       d.error.empty() ? "" : ": " + d.error.substr(0, 200));
  }
  e.message(fmt::format("SSH honeypot download attempted from {}: {} ({})", peer.ip,
                        quote(url.substr(0, 200)), what));
  return e;
}

event::Event download_pruned_event(std::string_view sha256, uint64_t size, uint64_t quota_bytes,
                                   int64_t now_ns) {
  event::Event e = base(action::kSshDownloadPruned, Severity::kNotice, Peer{}, now_ns,
                        json::array({"file"}), json::array({"deletion"}));
  e.set("file.hash.sha256", std::string(sha256))
      .set("file.size", size)
      .set("mamori.ssh.download_policy", std::string(kPolicyQuotaName))
      .set("mamori.ssh.limit_value", quota_bytes);
  e.message(
      fmt::format("SSH honeypot: captured file {} ({} bytes) pruned: downloads over quota_mb "
                  "({} MiB)",
                  sha256, size, quota_bytes >> 20));
  return e;
}

event::Event forward_event(const Peer& peer, std::string_view user, std::string_view host,
                           uint32_t port, std::string_view originator, uint32_t originator_port,
                           int64_t now_ns) {
  event::Event e = base(action::kSshForwardAttempted, Severity::kWarning, peer, now_ns,
                        json::array({"network", "intrusion_detection"}), json::array({"denied"}));
  e.set("user.name", std::string(user))
      .set("destination.address", std::string(host))
      .set("destination.port", port)
      .set("mamori.ssh.forward_originator", std::string(originator))
      .set("mamori.ssh.forward_originator_port", originator_port);
  e.message(fmt::format("SSH honeypot port forwarding to {} port {} asked by {} (refused)",
                        quote(host.substr(0, 200)), port, peer.ip));
  return e;
}

event::Event limit_event(const Peer& peer, std::string_view limit, std::string_view policy,
                         uint64_t value, int64_t now_ns) {
  event::Event e = base(action::kSshLimitReached, Severity::kNotice, peer, now_ns,
                        json::array({"network", "intrusion_detection"}), json::array({"denied"}));
  e.set("mamori.ssh.limit", std::string(limit))
      .set("mamori.ssh.limit_value", value)
      .set("mamori.ssh.policy", std::string(policy));
  e.message(fmt::format("SSH honeypot limit {} ({}) reached by {}: {}", limit, value, peer.ip,
                        policy == "refuse" ? "new connections refused" : "connection closed"));
  return e;
}

event::Event session_end_event(const Peer& peer, std::string_view reason, int64_t duration_ns,
                               uint64_t bytes_in, uint64_t bytes_out, uint32_t commands,
                               int64_t now_ns) {
  event::Event e = base(action::kSshSessionEnded, Severity::kNotice, peer, now_ns,
                        json::array({"network"}), json::array({"end"}));
  e.set("event.duration", duration_ns)
      .set("source.bytes", bytes_in)
      .set("destination.bytes", bytes_out)
      .set("mamori.ssh.commands", commands)
      .set("mamori.ssh.end_reason", std::string(reason));
  e.message(fmt::format("SSH honeypot session from {} ended ({}) after {:.1f} s, {} bytes in",
                        peer.ip, reason, static_cast<double>(duration_ns) / 1e9, bytes_in));
  return e;
}

}  // namespace mamori::honeypot
