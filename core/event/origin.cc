#include "core/event/origin.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "core/base/version.h"
#include "core/fs/admin_files.h"
#include "core/proto/actions.h"

namespace mamori::event {
namespace {

constexpr std::string_view kIdFile = "agent-id";

Result<std::string> new_uuid() {
  uint8_t b[16] = {};
  size_t got = 0;
  while (got < sizeof b) {
    const ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail_errno("getrandom", "agent id");
    got += static_cast<size_t>(n);
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4 (random)
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string s;
  for (size_t i = 0; i < sizeof b; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", b[i]);
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

bool is_agent_id(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> load_or_create_agent_id(Env& env, const std::string& state_dir) {
  const std::string path = state_dir + "/" + std::string(kIdFile);
  auto text = fs::read_small_file(path, 4096);
  if (!text && text.error().errnum == ENOENT) {
    const std::string id = MAMORI_TRY(new_uuid());
    MAMORI_TRY(fs::create_file_exclusive(env, path, id + "\n", 0600));
    text = fs::read_small_file(path, 4096);  // ours, or the one a concurrent start made
  }
  if (!text) {
    Error e = std::move(text).error();
    return fail("read agent id", path, e.errnum,
                e.message() +
                    " (every event carries this id: fix the file's access, or delete "
                    "it and a new id is made)");
  }
  std::string_view id = *text;
  if (id.ends_with('\n')) id.remove_suffix(1);
  if (!is_agent_id(id))
    return fail("read agent id", path, EINVAL,
                "is not an agent id (one line holding a UUID); it is never replaced silently: "
                "delete it to make a new id (SIEMs and the manager then see a new agent)");
  return std::string(id);
}

std::string system_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

Result<Origin> Origin::load(Env& env, const std::string& state_dir, std::string agent_name) {
  Fields f;
  f.agent_id = MAMORI_TRY(load_or_create_agent_id(env, state_dir));
  f.host_hostname = system_hostname();
  f.host_name = lower(f.host_hostname);
  f.agent_name = agent_name.empty() ? f.host_hostname : std::move(agent_name);
  f.agent_version = std::string(kVersion);
  return Origin(std::move(f), env.clock());
}

std::string_view file_name_of(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view file_extension_of(std::string_view name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return {};
  return name.substr(dot + 1);
}

void Origin::stamp(Event& e) const {
  e.set("agent.id", fields_.agent_id)
      .set("agent.name", fields_.agent_name)
      .set("agent.version", fields_.agent_version)
      .set("agent.type", "mamori")
      .set("host.name", fields_.host_name)
      .set("host.hostname", fields_.host_hostname)
      .set("event.created", iso_time(clock_->now_ns()));
  if (!e.get("event.dataset").is_string()) {
    const auto ds = dataset_for(e.action());
    e.set("event.dataset", std::string(ds.empty() ? "mamori.agent" : ds));
  }
  if (const auto& p = e.get("file.path"); p.is_string()) {
    const std::string path = p.get<std::string>();
    const std::string_view name = file_name_of(path);
    if (!name.empty() && name != "/") {
      e.set("file.name", std::string(name));
      if (auto ext = file_extension_of(name); !ext.empty())
        e.set("file.extension", std::string(ext));
    }
  }
}

const std::vector<ActionInfo>& known_actions() {
  namespace action = proto::action;
  static const std::vector<ActionInfo> kActions = {
      // The guard (agent/guard): files, evidence, storms.
      {action::kFileRestored, "mamori.guard"},
      {action::kFileRepaired, "mamori.guard"},
      {action::kFileReplaced, "mamori.guard"},
      {action::kFileQuarantined, "mamori.guard"},
      {action::kFileAllowed, "mamori.guard"},
      {action::kFileAllowedSummary, "mamori.guard"},
      {action::kFileChanged, "mamori.guard"},
      {action::kFileCreated, "mamori.guard"},
      {action::kFileDeleted, "mamori.guard"},
      {action::kFileRestoreFailed, "mamori.guard"},
      {action::kFileRestoreRepeated, "mamori.guard"},
      {action::kFileUnreadable, "mamori.guard"},
      {action::kWatchOverflow, "mamori.guard"},
      {action::kEvidencePruned, "mamori.guard"},
      {action::kEvidenceFailed, "mamori.guard"},
      {action::kTamperStorm, "mamori.guard"},
      {action::kTamperStormSummary, "mamori.guard"},
      {action::kTamperStormEnded, "mamori.guard"},
      {action::kDecoyOpened, "mamori.guard"},
      // Triage (agent/triage): VirusTotal look-ups by hash.
      {action::kFileLookup, "mamori.triage"},
      // PHP's opcache after a restore (agent/opcache).
      {action::kOpcacheInvalidated, "mamori.opcache"},
      {action::kOpcacheFailed, "mamori.opcache"},
      // The open gate (agent/gate): what it refused, and when it could not judge.
      {action::kOpenDenied, "mamori.gate"},
      {action::kOpenGateTimeout, "mamori.gate"},
      {action::kOpenGateUnavailable, "mamori.gate"},
      // The agent itself (agent/app): lifecycle, control commands, its own state.
      {action::kAgentStarted, "mamori.agent"},
      {action::kAgentStopped, "mamori.agent"},
      {action::kModeChanged, "mamori.agent"},
      {action::kDeployStarted, "mamori.agent"},
      {action::kDeployEnded, "mamori.agent"},
      {action::kDeployAbandoned, "mamori.agent"},
      {action::kBaselineAccepted, "mamori.agent"},
      {action::kStateFailed, "mamori.agent"},
      // The event log and its readers (core/outbox, agent/sinks).
      {action::kEventsDropped, "mamori.outbox"},
      {action::kOutboxDropped, "mamori.outbox"},
      {action::kSinkGap, "mamori.outbox"},
      // Self-healing (agent/heal).
      {action::kNodeUnhealthy, "mamori.heal"},
      {action::kNodeHealthy, "mamori.heal"},
      {action::kHookRan, "mamori.heal"},
      {action::kHookFailed, "mamori.heal"},
      {action::kHealthActionFailed, "mamori.heal"},
      // The access-log defense (agent/logwatch); `mamori bans` sets mamori.ban itself.
      {action::kIpBanned, "mamori.logwatch"},
      {action::kIpUnbanned, "mamori.logwatch"},
      {action::kTamperAttributed, "mamori.logwatch"},
      {action::kLogUnparseable, "mamori.logwatch"},
      {action::kLogForged, "mamori.logwatch"},
      {action::kLogParseable, "mamori.logwatch"},
      {action::kDecoyCredentialUsed, "mamori.logwatch"},
      // The page monitor (agent/pages).
      {action::kPageInjected, "mamori.pages"},
      {action::kPageFetchFailed, "mamori.pages"},
      // The SSH honeypot (honeypot/), relayed by the agent (agent/relay).
      {action::kSshConnection, "mamori.honeypot"},
      {action::kSshLoginFailed, "mamori.honeypot"},
      {action::kSshLoginSucceeded, "mamori.honeypot"},
      {action::kSshCommand, "mamori.honeypot"},
      {action::kSshDownloadAttempted, "mamori.honeypot"},
      {action::kSshLimitReached, "mamori.honeypot"},
      {action::kSshSessionEnded, "mamori.honeypot"},
      {action::kSshForwardAttempted, "mamori.honeypot"},
      {action::kSshDownloadPruned, "mamori.honeypot"},
      {action::kSshDownloadScanned, "mamori.honeypot"},
      // The manager (manager/server) about its agents; it also reports an agent's
      // orderly stop as agent-stopped with dataset mamori.manager (dataset_allowed()).
      {action::kAgentEnrolled, "mamori.manager"},
      {action::kAgentLost, "mamori.manager"},
      {action::kAgentRecovered, "mamori.manager"},
      {action::kAgentDuplicate, "mamori.manager"},
      {action::kFleetBanRefused, "mamori.manager"},
      {action::kAgentRetired, "mamori.manager"},
      {action::kBaselineChangedUnexpectedly, "mamori.manager"},
      {action::kSinkTest, "mamori.manager"},
  };
  return kActions;
}

std::string_view dataset_for(std::string_view action) {
  for (const auto& a : known_actions())
    if (a.action == action) return a.dataset;
  return {};
}

bool dataset_allowed(std::string_view action, std::string_view dataset) {
  if (dataset == dataset_for(action)) return true;
  // Made by hand (`mamori bans`); the manager's record of an agent's `bye`.
  if (dataset == "mamori.ban")
    return action == proto::action::kIpBanned || action == proto::action::kIpUnbanned;
  if (dataset == "mamori.manager") return action == proto::action::kAgentStopped;
  return false;
}

const std::vector<std::string_view>& known_datasets() {
  static const std::vector<std::string_view> kDatasets = [] {
    std::vector<std::string_view> out;
    for (const auto& a : known_actions())
      if (std::find(out.begin(), out.end(), a.dataset) == out.end()) out.push_back(a.dataset);
    out.push_back("mamori.ban");
    return out;
  }();
  return kDatasets;
}

}  // namespace mamori::event
