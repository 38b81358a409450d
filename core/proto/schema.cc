// The JSON Schema of the control protocol, from the same enums and name tables the
// encoders use (modes, sink types, commands, error codes, event actions), so an enum
// value added in C++ appears in the schema; a field added to an encoder and not here
// fails proto_schema_test (real messages are validated with additionalProperties false).

#include "core/proto/actions.h"
#include "core/proto/channel.h"
#include "core/proto/control.h"

namespace mamori::proto {
namespace {

using nlohmann::json;

json ref(std::string_view def) { return {{"$ref", "#/$defs/" + std::string(def)}}; }
json str() { return {{"type", "string"}}; }
json str_or_null() { return {{"type", json::array({"string", "null"})}}; }
json boolean() { return {{"type", "boolean"}}; }
json count() { return {{"type", "integer"}, {"minimum", 0}}; }
json integer() { return {{"type", "integer"}}; }
json strings() { return {{"type", "array"}, {"items", str()}}; }
json array_of(json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
json konst(std::string_view v) { return {{"const", std::string(v)}}; }

template <typename Range>
json enum_of(const Range& names, std::string description = "") {
  json e = json::array();
  for (const auto& n : names) e.push_back(std::string(n));
  json j = {{"type", "string"}, {"enum", e}};
  if (!description.empty()) j["description"] = std::move(description);
  return j;
}

// An object with exactly these properties; `required` lists the ones always present.
json object(json properties, std::vector<std::string> required, std::string description = "") {
  json j = {{"type", "object"},
            {"properties", std::move(properties)},
            {"required", required},
            {"additionalProperties", false}};
  if (!description.empty()) j["description"] = std::move(description);
  return j;
}

json request(std::string_view cmd, json extra, std::vector<std::string> required,
             std::string description) {
  json props = {{"v", ref("Version")}, {"cmd", konst(cmd)}};
  props.update(extra);
  required.insert(required.begin(), "cmd");
  return object(std::move(props), std::move(required), std::move(description));
}

// An answer with "ok": true and these fields.
json answer(json fields, std::vector<std::string> required, std::string description) {
  json props = {{"v", ref("Version")}, {"ok", {{"const", true}}}};
  props.update(fields);
  required.insert(required.begin(), {"v", "ok"});
  return object(std::move(props), std::move(required), std::move(description));
}

json status_fields() {
  return {{"pid", integer()},
          {"backend", {{"type", "string"}, {"description", "fanotify, inotify or replay"}}},
          {"started_at_ns", integer()},
          {"roots", array_of(ref("RootStatus"))},
          {"event_log", str()},
          {"in_storm", boolean()},
          {"heal", ref("HealStatus")},
          {"sinks", array_of(ref("SinkStatus"))},
          {"logwatch", {{"oneOf", json::array({ref("LogwatchStatus"), {{"type", "null"}}})}}},
          {"counters", ref("Counters")},
          {"outbox", ref("OutboxStatus")},
          {"manager", ref("ManagerLinkStatus")},
          {"gate", ref("OpenGateStatus")}};
}
const std::vector<std::string> kStatusRequired = {
    "pid",  "backend", "started_at_ns", "roots",    "event_log", "in_storm",
    "heal", "sinks",   "logwatch",      "counters", "outbox",    "manager"};

}  // namespace

json schema() {
  std::vector<std::string_view> modes, sink_types, heal_actions, codes;
  for (auto m : {config::Mode::kAlert, config::Mode::kRestore, config::Mode::kPreserve})
    modes.push_back(config::mode_name(m));
  for (auto t : {config::SinkType::kSyslog, config::SinkType::kSmtp, config::SinkType::kWebhook})
    sink_types.push_back(config::sink_type_name(t));
  for (auto a : {HealAction::kStatus, HealAction::kClear, HealAction::kFail})
    heal_actions.push_back(heal_action_name(a));
  for (auto c : {ErrorCode::kBadRequest, ErrorCode::kUnsupportedVersion, ErrorCode::kUnknownCommand,
                 ErrorCode::kBadArgument, ErrorCode::kUnknownRoot, ErrorCode::kForbidden,
                 ErrorCode::kFailed})
    codes.push_back(error_code_name(c));

  json defs;
  defs["Version"] = {{"type", "integer"},
                     {"minimum", kOldestVersion},
                     {"maximum", kVersion},
                     {"description",
                      "protocol version; a request without it is version 1 and is answered "
                      "as version 1"}};
  defs["Mode"] = enum_of(modes);
  defs["SinkType"] = enum_of(sink_types);
  defs["Attribution"] =
      enum_of(std::array{attribution_name(Attribution::kPid), attribution_name(Attribution::kNone)},
              "pid: the agent tells the deploy's writes from others'; none: its backend names no "
              "writer");
  defs["ErrorCode"] = enum_of(codes);
  defs["EventAction"] = enum_of(action::kAllActions, "event.action of every event mamori writes");
  defs["Roots"] = {{"oneOf", json::array({konst("*"), strings()})},
                   {"description", "root paths, or \"*\" (the default) for every root"}};

  // Requests.
  const json roots = {{"roots", ref("Roots")}, {"root", str()}};
  defs["PingRequest"] = request("ping", json::object(), {}, "is an agent listening?");
  defs["StatusRequest"] = request("status", json::object(), {}, "the status document");
  json mode = roots;
  mode["mode"] = ref("Mode");
  defs["ModeRequest"] =
      request("mode", mode, {"mode"}, "sets the mode of roots until the agent restarts");
  json pause = roots;
  pause["pid"] = {{"type", "integer"}, {"minimum", 1}};
  defs["PauseRequest"] = request("pause", pause, {},
                                 "a deploy starts: process pid's tree may write; others' "
                                 "changes are tampers");
  defs["ResumeRequest"] =
      request("resume", roots, {}, "the deploy ended: verify the roots, then guard them");
  defs["DeployPathsRequest"] =
      request("deploy-paths", json::object(), {}, "what the deploy and others wrote");
  defs["VerifyRequest"] = request("verify", roots, {}, "verify the roots now");
  defs["HealRequest"] = request("heal",
                                {{"action", enum_of(heal_actions)},
                                 {"by", str()},
                                 {"reason", {{"type", "string"}, {"minLength", 1}}}},
                                {}, "the node's health; clear it, or mark it failed");
  const json addresses = {{"type", "array"},
                          {"minItems", 1},
                          {"maxItems", kMaxBanAddresses},
                          {"items",
                           {{"type", "string"},
                            {"minLength", 1},
                            {"maxLength", kMaxAddressLength},
                            {"description", "an IPv4 or IPv6 address, or a network (CIDR)"}}}};
  const json text = {{"type", "string"}, {"maxLength", kMaxBanTextLength}};
  defs["BanRequest"] =
      request("ban",
              {{"addresses", addresses},
               {"ttl_s", {{"type", "integer"}, {"minimum", 0}, {"description", "0: permanent"}}},
               {"reason", text},
               {"origin", text}},
              {"addresses"},
              "ban addresses on this host (fleet control); origin: who decided (an agent_key "
              "or \"manager\"), carried by the ip-banned event as mamori.ban.origin");
  defs["UnbanRequest"] = request("unban", {{"addresses", addresses}, {"origin", text}},
                                 {"addresses"}, "lift bans on this host (fleet control)");
  defs["EvidenceRequest"] =
      request("evidence", {{"id", {{"type", "integer"}, {"minimum", 1}}}}, {"id"},
              "one evidence item: what was kept, and what the baseline holds for its path");
  const json path_bytes = {{"type", "string"}, {"maxLength", kMaxSitePathBytes}};
  const json hex_bytes = {{"type", "string"},
                          {"pattern", "^([0-9a-f]{2})*$"},
                          {"description", "the bytes in hex, for a name that is not UTF-8"}};
  defs["SiteRequest"] =
      request("site",
              {{"root", path_bytes},
               {"root_hex", hex_bytes},
               {"dir", path_bytes},
               {"dir_hex", hex_bytes},
               {"after", path_bytes},
               {"after_hex", hex_bytes}},
              {},
              "what a root serves, to compare nodes: no root, each root's site digest; a root, the "
              "digests of the children of dir (relative, \"\" the root) named after `after`");
  const json root_path = {
      {"root", path_bytes}, {"root_hex", hex_bytes}, {"path", path_bytes}, {"path_hex", hex_bytes}};
  json accept = root_path;
  accept["evidence"] = {{"type", "integer"}, {"minimum", 1}};
  defs["AcceptRequest"] =
      request("accept", accept, {},
              "take a path (relative to root, \"\" the root) into the baseline as it is now; with "
              "evidence, that item's content is first written at the path");
  defs["RestoreRequest"] = request(
      "restore", root_path, {},
      "put a path back to its baseline now, whatever the root's mode, keeping what it replaces");
  json any_request = json::array();
  for (const char* r :
       {"PingRequest", "StatusRequest", "ModeRequest", "PauseRequest", "ResumeRequest",
        "DeployPathsRequest", "VerifyRequest", "HealRequest", "BanRequest", "UnbanRequest",
        "EvidenceRequest", "SiteRequest", "AcceptRequest", "RestoreRequest"})
    any_request.push_back(ref(r));
  defs["Request"] = {{"oneOf", any_request}};

  // The status document and its parts.
  defs["RootStatus"] = object(
      {{"path", str()}, {"mode", ref("Mode")}, {"paused", boolean()}, {"rescanning", boolean()}},
      {"path", "mode", "paused"});
  defs["HealStatus"] =
      object({{"healthy", boolean()},
              {"reason", str_or_null()},
              {"manual", boolean()},
              {"since", str()},
              {"trigger_event_id", str_or_null()},
              {"trigger_action", str_or_null()},
              {"recover_at", str_or_null()},
              {"health_file", str_or_null()},
              {"endpoint", str_or_null()},
              {"hooks_running", count()},
              {"action_errors", strings()}},
             {"healthy", "reason", "manual", "since", "trigger_event_id", "trigger_action",
              "recover_at", "health_file", "endpoint", "hooks_running", "action_errors"});
  defs["SinkStatus"] = object({{"name", str()},
                               {"type", ref("SinkType")},
                               {"delivered", count()},
                               {"filtered", count()},
                               {"failures", count()},
                               {"skipped_lines", count()},
                               {"pending", count()},
                               {"missed", count()},
                               {"next_sequence", count()},
                               {"failing", boolean()},
                               {"last_error", str()}},
                              {"name", "type", "delivered", "filtered", "failures", "skipped_lines",
                               "pending", "missed", "next_sequence", "failing", "last_error"});
  defs["OutboxStatus"] = object({{"dir", str()},
                                 {"next_sequence", count()},
                                 {"quota_mb", count()},
                                 {"dropped_by_quota", count()},
                                 {"dropped_by_quota_security", count()},
                                 {"export_behind", count()}},
                                {"dir", "next_sequence", "quota_mb", "dropped_by_quota",
                                 "dropped_by_quota_security", "export_behind"},
                                "the event outbox (STATE/outbox)");
  defs["ManagerLinkStatus"] =
      object({{"state", enum_of(std::array{link_state_name(LinkState::kDisabled),
                                           link_state_name(LinkState::kEnrolling),
                                           link_state_name(LinkState::kConnecting),
                                           link_state_name(LinkState::kConnected)})},
              {"url", str()},
              {"agent_key", str()},
              {"last_error", str()},
              {"events_sent", count()},
              {"events_acked", count()},
              {"cursor", count()},
              {"commands", count()}},
             {"state", "url", "agent_key", "last_error", "events_sent", "events_acked", "cursor",
              "commands"},
             "the agent's link to its manager (docs/manager.md)");
  defs["OpenGateStatus"] = object(
      {{"state", enum_of(std::array{"on", "off", "unavailable"})},
       {"reason", str()},
       {"read_check", str()},
       {"directories", count()},
       {"reads_unasked", count()},
       {"opens_unasked", count()},
       {"mark_failures", count()},
       {"events", count()},
       {"verified", count()},
       {"denied", count()},
       {"takeovers", count()},
       {"unchecked", count()},
       {"watchdog", boolean()}},
      {"state", "reason", "read_check", "directories", "reads_unasked", "opens_unasked",
       "mark_failures", "events", "verified", "denied", "takeovers", "unchecked", "watchdog"},
      "the open gate: tampered content refused to readers (docs/open-gate.md)");
  defs["LogParsing"] =
      object({{"path", str()},
              {"unparseable", boolean()},
              {"lines", count()},
              {"unparsed", count()},
              {"sample", str()},
              {"sample_reason", str()}},
             {"path", "unparseable", "lines", "unparsed", "sample", "sample_reason"},
             "whether a [[log]] reads in its format (docs/bans.md)");
  defs["LogwatchStatus"] =
      object({{"logs", strings()},
              {"lines", count()},
              {"lines_truncated", count()},
              {"bans", count()},
              {"ban_failures", count()},
              {"unbans", count()},
              {"parsing", {{"type", "array"}, {"items", ref("LogParsing")}}}},
             {"logs", "lines", "lines_truncated", "bans", "ban_failures", "unbans"});
  json counters = json::object();
  std::vector<std::string> counter_names;
  // The names the encoder writes: a counter added there is in the schema.
  const json sample = to_json(StatusDocument{})["counters"];
  for (const auto& item : sample.items()) {
    counters[item.key()] = count();
    counter_names.push_back(item.key());
  }
  defs["Counters"] = object(counters, counter_names);
  defs["StatusDocument"] = object(status_fields(), kStatusRequired);

  // Answers.
  json status_answer = status_fields();
  status_answer["attribution"] = ref("Attribution");
  defs["StatusAnswer"] = answer(status_answer, kStatusRequired,
                                "to status, mode, resume, verify; pause adds attribution");
  defs["PingAnswer"] = answer(json::object(), {}, "to ping");
  defs["HealAnswer"] = answer({{"heal", ref("HealStatus")}}, {"heal"}, "to heal");
  defs["RefusedAddress"] =
      object({{"address", str()},
              {"code", enum_of(std::array{"allowlisted", "invalid", "network", "full", "failed"})},
              {"message", str()}},
             {"address", "code", "message"});
  defs["BanAnswer"] = answer({{"applied", strings()}, {"refused", array_of(ref("RefusedAddress"))}},
                             {"applied", "refused"},
                             "to ban and unban: what was applied, what was refused and why");
  const json hex_paths = {{"type", "array"},
                          {"items", {{"type", "string"}, {"pattern", "^([0-9a-f]{2})*$"}}},
                          {"description", "paths that are not UTF-8, their bytes in hex"}};
  defs["DeployRootPaths"] = object({{"path", str()},
                                    {"deploy", strings()},
                                    {"deploy_hex", hex_paths},
                                    {"foreign", strings()},
                                    {"foreign_hex", hex_paths}},
                                   {"path", "deploy", "foreign"});
  defs["DeployPathsAnswer"] = {
      {"oneOf", json::array({answer({{"attribution", konst("none")}}, {"attribution"},
                                    "the backend names no writer: nothing is attributed"),
                             answer({{"attribution", konst("pid")},
                                     {"pid", integer()},
                                     {"complete", boolean()},
                                     {"roots", array_of(ref("DeployRootPaths"))}},
                                    {"attribution", "pid", "complete", "roots"},
                                    "the paused roots' paths, by writer")})}};
  defs["EvidenceContent"] = object(
      {{"base64url", {{"type", "string"}, {"description", "the bytes, base64url without padding"}}},
       {"complete", {{"type", "boolean"}, {"description", "false: a prefix of the content"}}}},
      {"base64url", "complete"});
  defs["EvidenceAnswer"] = answer(
      {{"item",
        {{"type", "object"}, {"description", "as 'mamori evidence show --json' prints it"}}},
       {"after", ref("EvidenceContent")},
       {"before", ref("EvidenceContent")},
       {"before_missing",
        enum_of(std::array{"unknown", "gone", "same"},
                "no baseline content for the path, no longer in the store, or the kept content")}},
      {"item", "after"},
      "to evidence: before is the baseline's content, or before_missing says why not");
  defs["SitePart"] = object(
      {{"name", {{"type", "string"}, {"description", "a root's path, or a child's name"}}},
       {"name_hex", hex_bytes},
       {"type",
        enum_of(std::array{"file", "dir", "symlink", "fifo", "socket", "chardev", "blockdev"},
                "the entry's type")},
       {"digest", {{"type", "string"}, {"pattern", "^[0-9a-f]{64}$"}}},
       {"entries", {{"type", "integer"}, {"minimum", 0}}}},
      {"type", "digest", "entries"});
  defs["SiteAnswer"] = answer(
      {{"parts", {{"type", "array"}, {"items", ref("SitePart")}, {"maxItems", kMaxSiteParts}}},
       {"more", {{"type", "boolean"}, {"description", "ask again with after = the last name"}}},
       {"self",
        {{"type", "string"},
         {"pattern", "^[0-9a-f]{64}$"},
         {"description", "with a root: the digest of dir's own entry alone"}}}},
      {"parts", "more"}, "to site: the roots', or a directory's children's, site digests");
  defs["PathAnswer"] = answer(
      {{"root", path_bytes},
       {"root_hex", hex_bytes},
       {"path", path_bytes},
       {"path_hex", hex_bytes},
       {"entries", {{"type", "integer"}, {"minimum", 0}}},
       {"root_hash",
        {{"type", "string"},
         {"pattern", "^[0-9a-f]{64}$"},
         {"description", "accept: the baseline's new root hash"}}}},
      {"entries"}, "to accept and restore: the path acted on, the baseline entries it covered");
  defs["ErrorAnswer"] = {
      {"oneOf",
       json::array({object({{"v", {{"const", 1}}}, {"ok", {{"const", false}}}, {"error", str()}},
                           {"v", "ok", "error"}, "version 1: the error is its text"),
                    object({{"v", {{"const", 2}}},
                            {"ok", {{"const", false}}},
                            {"error", object({{"code", ref("ErrorCode")},
                                              {"message", str()},
                                              {"command", str()},
                                              {"supported", strings()}},
                                             {"code", "message"})}},
                           {"v", "ok", "error"}, "version 2: a stable code and the text")})}};
  defs["Answer"] = {
      {"anyOf", json::array({ref("ErrorAnswer"), ref("PingAnswer"), ref("StatusAnswer"),
                             ref("DeployPathsAnswer"), ref("HealAnswer"), ref("BanAnswer"),
                             ref("EvidenceAnswer"), ref("SiteAnswer"), ref("PathAnswer")})}};
  // The agent-manager protocol (its own version, docs/formats/manager-channel.md).
  channel::add_schema_defs(defs);

  return {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
          {"$id", "urn:mamori:control-protocol"},
          {"title", "mamori control protocol"},
          {"description",
           "Requests to the mamori agent and its answers (docs/formats/control.md), and the "
           "names of its event actions (docs/formats/events.md). Generated by "
           "'mamori proto-schema'; do not edit."},
          {"x-protocol-version", kVersion},
          {"anyOf", json::array({ref("Request"), ref("Answer")})},
          {"$defs", defs}};
}

}  // namespace mamori::proto
