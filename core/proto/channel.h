#pragma once
// The agent-manager protocol as types (docs/formats/manager-channel.md): the enrollment
// token's text, the enrollment request and its answers (HTTPS POST /api/v1/enroll), and
// every message of the WebSocket channel (GET /api/v1/channel), each with its JSON form.
//
// Every message carries "v" (kVersion); a message of another version is refused with
// code "unsupported-version". Receivers ignore fields they do not know. Decoding never
// throws: a malformed message is a DecodeError whose message names the field, and
// decoding a text frame refuses one larger than kMaxMessageBytes before parsing it.
//
// The events of an `events` message stay JSON (ECS objects as the agent's outbox holds
// them): the codec checks each is an object with event.id (a string) and event.sequence
// (a non-negative integer), at most kMaxEventsPerBatch of them, and no more.
//
// Threads: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace mamori::proto::channel {

inline constexpr int kVersion = 1;
inline constexpr size_t kMaxMessageBytes = 4u << 20;  // one WebSocket message or HTTP body
inline constexpr size_t kMaxEventsPerBatch = 1000;
// An agent waits this many lost_after_s for a word (or a pong) from its manager before it
// gives up the channel and reconnects: twice the patience the manager has with a silent
// agent, since a busy manager answers late, and a fleet that reconnects to it at once
// makes it busier still.
inline constexpr int64_t kManagerSilenceFactor = 2;
inline constexpr std::string_view kTokenPrefix = "mamori-token-v1.";

// Stable codes (clients switch on these): the enrollment error's and the channel's.
inline constexpr std::string_view kBadToken = "bad-token";
inline constexpr std::string_view kBadMessage = "bad-message";
inline constexpr std::string_view kUnsupportedVersion = "unsupported-version";
inline constexpr std::string_view kTooLarge = "too-large";
inline constexpr std::string_view kDuplicateIdentity = "duplicate-identity";
inline constexpr std::string_view kUnauthorized = "unauthorized";
inline constexpr std::string_view kTooManyAgents = "too-many-agents";
inline constexpr std::string_view kLost = "lost";
inline constexpr std::string_view kShuttingDown = "shutting-down";
inline constexpr std::string_view kInternal = "internal";

struct DecodeError {
  std::string code = std::string(kBadMessage);  // kBadMessage, kUnsupportedVersion, kTooLarge
  std::string message;                          // names the field
};
template <typename T>
using Decoded = tl::expected<T, DecodeError>;

// ---- base64url (RFC 4648 section 5, no padding) -------------------------------------

std::string base64url(std::string_view bytes);
// nullopt for a character outside the alphabet, padding, or an impossible length.
std::optional<std::string> unbase64url(std::string_view text);

// ---- the token ---------------------------------------------------------------------

// What `mamori manager token create` prints: kTokenPrefix + base64url(JSON).
struct Token {
  std::string url;     // https://HOST:PORT of the manager
  std::string fp;      // SHA-256 of its certificate's DER, 64 lower-case hex digits
  std::string secret;  // 43 characters: base64url of 32 random bytes
};
std::string encode_token(const Token& t);
// Surrounding white space (a token file's newline) is ignored.
Decoded<Token> decode_token(std::string_view text);
bool is_fingerprint(std::string_view s);  // 64 lower-case hex digits
bool is_secret(std::string_view s);       // 43 base64url characters

// ---- enrollment (HTTPS) ------------------------------------------------------------

struct AgentInfo {
  std::string id;  // STATE/agent-id
  std::string name;
  std::string version;
};
struct HostInfo {
  std::string hostname;
  std::string machine_id;  // /etc/machine-id; may be empty
};
struct RootInfo {
  std::string path;
  std::string mode;  // alert, restore, preserve
};

struct EnrollRequest {
  std::string token_secret;
  HostInfo host;
  AgentInfo agent;
  std::vector<RootInfo> roots;
  std::string baseline_root_hash;  // hex, or empty
};
struct EnrollAnswer {
  std::string agent_key;   // a UUID the manager made
  std::string credential;  // 43 characters base64url
  uint32_t heartbeat_s = 2;
  uint32_t lost_after_s = 10;
};
// The body of a refused enrollment (401 bad-token, 400 bad-message, ...).
struct EnrollError {
  std::string code;
  std::string message;
};

nlohmann::json to_json(const EnrollRequest& r);
nlohmann::json to_json(const EnrollAnswer& a);
nlohmann::json to_json(const EnrollError& e);
Decoded<EnrollRequest> decode_enroll_request(std::string_view text);
Decoded<EnrollAnswer> decode_enroll_answer(std::string_view text);
Decoded<EnrollError> decode_enroll_error(std::string_view text);

// ---- the channel: agent -> manager -------------------------------------------------

struct Hello {
  AgentInfo agent;
  HostInfo host;  // hostname only
  std::vector<RootInfo> roots;
  std::string baseline_root_hash;
  uint64_t next_sequence = 0;  // the agent's outbox's next event.sequence
};
struct Events {
  std::vector<nlohmann::json> events;  // ECS objects, each with event.id and event.sequence
  // The first batch after a `resend`: what came before it on this channel and was not
  // acknowledged was dropped by the manager. Sent only when true.
  bool resent = false;
  // The highest event.sequence of the batch (0 when empty).
  uint64_t highest_sequence() const;
};
struct Heartbeat {
  int64_t time_ns = 0;
  bool healthy = true;
};
struct CommandResult {
  std::string command_id;
  nlohmann::json answer;  // the control protocol's answer (core/proto/control.h)
};
struct Bye {
  std::string reason = "stopping";
};
using AgentMessage = std::variant<Hello, Events, Heartbeat, CommandResult, Bye>;

// ---- the channel: manager -> agent -------------------------------------------------

struct Welcome {
  uint32_t heartbeat_s = 2;
  uint32_t lost_after_s = 10;
};
struct Ack {
  uint64_t through_sequence = 0;  // every event with sequence <= this is stored
};
struct Command {
  std::string command_id;  // a UUID
  nlohmann::json request;  // a control-protocol request, e.g. {"v":2,"cmd":"verify"}
};
struct Error {
  std::string code;  // kDuplicateIdentity, kBadMessage, ...; the connection closes after it
  std::string message;
};
// The manager was behind and dropped the events batches it got since its last ack: the
// agent sends again everything not acknowledged, the first batch marked `resent`.
struct Resend {};
using ManagerMessage = std::variant<Welcome, Ack, Command, Error, Resend>;

nlohmann::json to_json(const Hello& m);
nlohmann::json to_json(const Events& m);
nlohmann::json to_json(const Heartbeat& m);
nlohmann::json to_json(const CommandResult& m);
nlohmann::json to_json(const Bye& m);
nlohmann::json to_json(const AgentMessage& m);
nlohmann::json to_json(const Welcome& m);
nlohmann::json to_json(const Ack& m);
nlohmann::json to_json(const Command& m);
nlohmann::json to_json(const Error& m);
nlohmann::json to_json(const Resend& m);
nlohmann::json to_json(const ManagerMessage& m);

// One text frame's JSON (to_json(...).dump()).
template <typename M>
std::string encode(const M& m) {
  return to_json(m).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One text frame: larger than kMaxMessageBytes -> kTooLarge, not JSON or a field wrong
// -> kBadMessage, "v" not kVersion -> kUnsupportedVersion, an unknown "type" -> kBadMessage.
Decoded<AgentMessage> decode_agent_message(std::string_view text);
Decoded<ManagerMessage> decode_manager_message(std::string_view text);
// The same from parsed JSON (no size check).
Decoded<AgentMessage> decode_agent_json(nlohmann::json j);
Decoded<ManagerMessage> decode_manager_json(const nlohmann::json& j);

// The message's "type" ("hello", "ack", ...).
std::string_view type_of(const AgentMessage& m);
std::string_view type_of(const ManagerMessage& m);

// Adds the JSON Schema of every message above to `defs` (protocol.schema.json's $defs;
// Result and Command refer to the control protocol's Answer and Request).
void add_schema_defs(nlohmann::json& defs);

}  // namespace mamori::proto::channel
