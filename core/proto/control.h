#pragma once
// The agent's control protocol as types: every request the control socket serves (and,
// later, the manager channel), every answer, and the status document, with their JSON
// form. docs/formats/control.md describes the protocol; docs/formats/protocol.schema.json
// is printed from schema() below (`mamori proto-schema`) and a test fails when the two
// drift.
//
// Versions: every message carries "v". 1 is the protocol before versioning: a request
// without "v" is version 1, and its answer is a version-1 answer (the error is a string).
// 2 (kVersion) adds "v" to every message and makes the error an object with a stable
// code. A request newer than kVersion is refused with code "unsupported-version".
// Receivers ignore fields they do not know; senders never depend on that for meaning.
//
// Decoding never throws: a malformed message is an error value naming the field.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "core/config/config.h"

namespace mamori::proto {

inline constexpr int kVersion = 2;
inline constexpr int kOldestVersion = 1;

// ---- errors ------------------------------------------------------------------------

// Stable codes: clients switch on these, never on the text.
enum class ErrorCode {
  kBadRequest,          // not a JSON object with a "cmd" string, too long, not UTF-8
  kUnsupportedVersion,  // "v" is not a version this agent speaks
  kUnknownCommand,      // "cmd" names no command (the answer lists the supported ones)
  kBadArgument,         // a field has the wrong type or value
  kUnknownRoot,         // a root the agent does not guard
  kForbidden,           // the peer is not root
  kFailed,              // the command ran and failed (the message says why)
};
std::string_view error_code_name(ErrorCode c);

struct ErrorAnswer {
  ErrorCode code = ErrorCode::kFailed;
  std::string message;
  std::string command;                 // the request's "cmd", when there was one
  std::vector<std::string> supported;  // with kUnknownCommand: every command
};

template <typename T>
using Decoded = tl::expected<T, ErrorAnswer>;

// ---- requests ----------------------------------------------------------------------

enum class Command {
  kPing,
  kStatus,
  kMode,
  kPause,
  kResume,
  kDeployPaths,
  kVerify,
  kHeal,
  kBan,
  kUnban,
  kEvidence,
  kSite,
  kAccept,
  kRestore
};
std::string_view command_name(Command c);
std::optional<Command> parse_command(std::string_view name);
std::vector<std::string> command_names();

// The roots a request names: "roots": [...] or "*", or (version 1) "root": "...".
// Empty = every root the agent guards.
struct Roots {
  std::vector<std::string> paths;
  bool all() const { return paths.empty(); }
};

struct PingRequest {};
struct StatusRequest {};
struct ModeRequest {
  Roots roots;
  config::Mode mode = config::Mode::kRestore;
};
// A deploy starts: process `pid`'s tree may write; other writers' changes are tampers.
struct PauseRequest {
  Roots roots;
  std::optional<int64_t> pid;
};
struct ResumeRequest {
  Roots roots;
};
struct DeployPathsRequest {};
struct VerifyRequest {
  Roots roots;
};
enum class HealAction { kStatus, kClear, kFail };
std::string_view heal_action_name(HealAction a);
struct HealRequest {
  HealAction action = HealAction::kStatus;
  std::string by;      // with kClear: who cleared (default "mamori heal --clear")
  std::string reason;  // with kFail: required, non-empty
};

// Fleet control (docs/manager.md): addresses banned on this host because another agent or
// the manager decided it. Each address is an IP ("192.0.2.7") or a CIDR; a CIDR of full
// length (/32, /128) is the address. At most kMaxBanAddresses per request, each at most
// kMaxAddressLength characters. The agent refuses, address by address, what its
// allowlist protects and what its ban list cannot hold (the answer says which and why).
inline constexpr size_t kMaxBanAddresses = 1000;
inline constexpr size_t kMaxAddressLength = 64;
inline constexpr size_t kMaxBanTextLength = 1024;  // reason, origin
struct BanRequest {
  std::vector<std::string> addresses;
  int64_t ttl_s = 0;  // from now; 0: permanent
  std::string reason;
  // Who decided: the agent_key of the agent whose ban it was, or "manager" (by hand). The
  // agent's ip-banned event carries it as mamori.ban.origin, so the manager knows the
  // event for an echo of its own push and does not push it again.
  std::string origin;
};
struct UnbanRequest {
  std::vector<std::string> addresses;
  std::string origin;
};

// One evidence item (docs/agent.md, Evidence) for the manager's console: what was kept
// and what the baseline held, each up to kMaxEvidenceBytes (a prefix beyond), so that
// the answer fits one channel message.
inline constexpr size_t kMaxEvidenceBytes = 1u << 20;
struct EvidenceRequest {
  int64_t id = 0;  // > 0
};

// What a root serves, to compare nodes (core/baseline/site.h): with no root, each root's
// site digest; with a root, the digests of the children of `dir` ("" the root itself)
// whose names sort after `after`, at most kMaxSiteParts per answer. Names are bytes: in
// JSON a name that is not UTF-8 travels as "<field>_hex" instead of "<field>".
inline constexpr size_t kMaxSiteParts = 1000;
inline constexpr size_t kMaxSitePathBytes = 4096;  // PATH_MAX
struct SiteRequest {
  std::string root;
  std::string dir;
  std::string after;
};

// An operator's verdict on one path of a root ("" the whole root), from the incident page.
// accept: the path's current state becomes its baseline, as `mamori accept` does; with
// `evidence`, the content of that evidence item (a tampered file the guard put back) is
// first written at the path, so what the incident showed is what is accepted. restore:
// the path is put back to its baseline now, whatever the root's mode, the content it
// replaces kept as evidence.
struct AcceptRequest {
  std::string root;
  std::string path;
  int64_t evidence = 0;  // 0: none
};
struct RestoreRequest {
  std::string root;
  std::string path;
};

using RequestBody =
    std::variant<PingRequest, StatusRequest, ModeRequest, PauseRequest, ResumeRequest,
                 DeployPathsRequest, VerifyRequest, HealRequest, BanRequest, UnbanRequest,
                 EvidenceRequest, SiteRequest, AcceptRequest, RestoreRequest>;

struct Request {
  int v = kVersion;
  RequestBody body;
  Command command() const;
};

nlohmann::json to_json(const Request& r);
// Unknown fields are ignored; a missing "v" is version 1. The error names the field.
Decoded<Request> decode_request(const nlohmann::json& j);

// ---- answers -----------------------------------------------------------------------

struct RootStatus {
  std::string path;
  config::Mode mode = config::Mode::kRestore;
  bool paused = false;
  // Events were lost (a queue overflow) or a storm ended: the root is being compared with
  // its baseline in slices, between the real-time work.
  bool rescanning = false;
};

struct HealStatus {
  bool healthy = true;
  std::optional<std::string> reason;
  bool manual = false;
  std::string since;  // ISO 8601, UTC
  std::optional<std::string> trigger_event_id;
  std::optional<std::string> trigger_action;
  std::optional<std::string> recover_at;  // ISO 8601: the next recovery verify
  std::optional<std::string> health_file;
  std::optional<std::string> endpoint;  // host:port of the health endpoint
  uint64_t hooks_running = 0;
  std::vector<std::string> action_errors;  // the health actions failing now, why
};

struct SinkStatus {
  std::string name;
  config::SinkType type = config::SinkType::kSyslog;
  uint64_t delivered = 0;
  uint64_t filtered = 0;
  uint64_t failures = 0;
  uint64_t skipped_lines = 0;
  uint64_t pending = 0;
  uint64_t missed = 0;         // events removed (quota) before this sink read them
  uint64_t next_sequence = 0;  // the next event.sequence it will read
  bool failing = false;
  std::string last_error;
};

// The event outbox (STATE/outbox, docs/formats/outbox.md).
struct OutboxStatus {
  std::string dir;
  uint64_t next_sequence = 0;
  uint64_t quota_mb = 0;
  uint64_t dropped_by_quota = 0;
  uint64_t dropped_by_quota_security = 0;
  uint64_t export_behind = 0;  // records not yet in agent.event_log
};

// The agent's link to its manager (agent/link/link.h, docs/manager.md).
enum class LinkState { kDisabled, kEnrolling, kConnecting, kConnected };
std::string_view link_state_name(LinkState s);
struct ManagerLinkStatus {
  LinkState state = LinkState::kDisabled;  // disabled: no [manager] url/token_file
  std::string url;                         // the manager's, "" until known
  std::string agent_key;                   // this agent's identity there, "" before enrolling
  std::string last_error;                  // why the last attempt failed, "" when none did
  uint64_t events_sent = 0;                // since the agent started, resends included
  uint64_t events_acked = 0;               // acknowledged as stored by the manager
  uint64_t cursor = 0;    // the next event.sequence the manager has not acknowledged
  uint64_t commands = 0;  // commands received from the manager
};

// Whether one [[log]] reads in its format (core/logparse/health.h; docs/bans.md).
struct LogParsing {
  std::string path;
  bool unparseable = false;
  uint64_t lines = 0;         // in the window (the last 1,000 lines at most)
  uint64_t unparsed = 0;      // of them, refused as not fitting the format
  std::string sample;         // a refused line of the episode, escaped; "" when none
  std::string sample_reason;  // why it was refused (logparse::parse_status_name)
};

struct LogwatchStatus {
  std::vector<std::string> logs;
  uint64_t lines = 0;
  uint64_t lines_truncated = 0;
  uint64_t bans = 0;
  uint64_t ban_failures = 0;
  uint64_t unbans = 0;
  std::vector<LogParsing> parsing;  // per log, in `logs` order; empty from older agents
};

struct Counters {
  uint64_t changes = 0, restored = 0, quarantined = 0, evidence = 0, failures = 0, events = 0,
           summarised = 0, storms = 0, verifies = 0, overflows = 0, events_dropped = 0,
           events_dropped_security = 0, event_writer_waits = 0;
};

// What `mamori status` shows of a running agent.
// The open gate (agent/gate, docs/open-gate.md): whether tampered content is refused to
// readers, and what it did since the agent started.
struct OpenGateStatus {
  std::string state = "off";   // on | off (config) | unavailable (the kernel would not)
  std::string reason;          // why not on, "" when on
  std::string read_check;      // how reads are checked (FAN_ACCESS_PERM), "" when not on
  uint64_t directories = 0;    // directories marked
  uint64_t reads_unasked = 0;  // files whose reads are not asked about until written
  uint64_t opens_unasked = 0;  // of them, files only root can change: opens neither
  uint64_t mark_failures = 0;
  uint64_t events = 0;  // permission events answered (mamori's own included)
  uint64_t verified = 0;
  uint64_t denied = 0;
  uint64_t takeovers = 0;  // times the watchdog answered for a gate that did not in time
  uint64_t unchecked = 0;  // opens the watchdog allowed unjudged
  bool watchdog = false;   // its process is alive
};

struct StatusDocument {
  int64_t pid = 0;
  std::string backend;  // fanotify, inotify, replay
  int64_t started_at_ns = 0;
  std::vector<RootStatus> roots;
  std::string event_log;
  bool in_storm = false;
  HealStatus heal;
  std::vector<SinkStatus> sinks;
  std::optional<LogwatchStatus> logwatch;  // null without [[log]]
  Counters counters;
  OutboxStatus outbox;
  ManagerLinkStatus manager;  // absent from older agents: disabled
  OpenGateStatus gate;        // absent from older agents: off
};

// Whether the agent can tell a deploy's writes from others' (its backend names writers).
enum class Attribution { kPid, kNone };
std::string_view attribution_name(Attribution a);

// status, mode, verify, resume: the status document; pause adds the attribution.
struct StatusAnswer {
  StatusDocument status;
  std::optional<Attribution> attribution;
};

struct DeployRootPaths {
  std::string path;
  std::vector<std::string> deploy;   // written by the deploy's process tree
  std::vector<std::string> foreign;  // written by anyone else
};
struct DeployPathsAnswer {
  Attribution attribution = Attribution::kNone;
  // With kPid only:
  int64_t pid = 0;
  bool complete = false;  // false: too many paths to list, the lists are partial
  std::vector<DeployRootPaths> roots;
};

struct HealAnswer {
  HealStatus heal;
};
struct PingAnswer {};

// To ban and unban: what was done and what was refused, address by address (an answer
// with refusals is still "ok": the others were applied).
struct RefusedAddress {
  std::string address;
  std::string code;  // "allowlisted", "invalid", "network", "full", "failed"
  std::string message;
};
struct BanAnswer {
  std::vector<std::string> applied;  // banned (or, to unban, lifted)
  std::vector<RefusedAddress> refused;
};

// Bytes an attacker wrote travel as base64url (no padding): JSON strings are UTF-8.
struct EvidenceContent {
  std::string bytes;
  bool complete = false;  // false: a prefix (the content is longer, or only a prefix was kept)
};
struct EvidenceAnswer {
  nlohmann::json item;    // as `mamori evidence show --json` prints it
  EvidenceContent after;  // the tampered content kept
  // The content the baseline holds for the path, when it knows one and still has it;
  // else why not: "unknown" (no baseline content: a new file), "gone" (no longer in the
  // content store), "same" (the kept content is the baseline's).
  std::optional<EvidenceContent> before;
  std::string before_missing;
};

struct SitePart {
  std::string name;    // a root's path, or a child's name
  std::string type;    // baseline::type_name: file, dir, symlink, ...
  std::string digest;  // 64 hex digits
  uint64_t entries = 0;
};
struct SiteAnswer {
  std::vector<SitePart> parts;
  bool more = false;  // children beyond the last part: ask again with after = its name
  std::string self;   // with a root: the digest of dir's own entry alone ("" without a root)
};

// accept and restore: the path acted on and how many baseline entries that covered; accept
// adds the baseline's new root hash.
struct PathAnswer {
  std::string root;
  std::string path;
  uint64_t entries = 0;
  std::string root_hash;  // accept only
};

using Answer = std::variant<ErrorAnswer, PingAnswer, StatusAnswer, DeployPathsAnswer, HealAnswer,
                            BanAnswer, EvidenceAnswer, SiteAnswer, PathAnswer>;

// The answer to a request of version `v`: {"v":v,"ok":true,...} or {"v":v,"ok":false,
// "error":...}, the error a string for version 1 and an object for version 2.
nlohmann::json to_json(const Answer& a, int v = kVersion);

// The client side: the agent's answer to `command`, typed. An error answer (either
// version) decodes into the ErrorAnswer; so does an answer that does not parse
// (code kBadRequest, naming the field).
Decoded<StatusAnswer> decode_status_answer(const nlohmann::json& j);
Decoded<DeployPathsAnswer> decode_deploy_paths_answer(const nlohmann::json& j);
Decoded<HealAnswer> decode_heal_answer(const nlohmann::json& j);
Decoded<BanAnswer> decode_ban_answer(const nlohmann::json& j);
Decoded<EvidenceAnswer> decode_evidence_answer(const nlohmann::json& j);
Decoded<SiteAnswer> decode_site_answer(const nlohmann::json& j);
Decoded<PathAnswer> decode_path_answer(const nlohmann::json& j);

nlohmann::json to_json(const StatusDocument& s);
nlohmann::json to_json(const HealStatus& h);
nlohmann::json to_json(const SinkStatus& s);  // also the manager's own (GET /api/v1/sinks)
Decoded<StatusDocument> decode_status(const nlohmann::json& j);

// ---- schema ------------------------------------------------------------------------

// The JSON Schema (draft 2020-12) of every message above and of the event actions:
// docs/formats/protocol.schema.json is this, pretty-printed.
nlohmann::json schema();

}  // namespace mamori::proto
