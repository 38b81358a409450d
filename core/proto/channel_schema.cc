// The JSON Schema ($defs) of the agent-manager protocol (core/proto/channel.h,
// docs/formats/manager-channel.md), added to protocol.schema.json by schema(). Events in
// an `events` message are ECS objects (docs/formats/ecs-fields.tsv): only event.id and
// event.sequence are the protocol's.

#include "core/proto/channel.h"

namespace mamori::proto::channel {
namespace {

using nlohmann::json;

json ref(std::string_view def) { return {{"$ref", "#/$defs/" + std::string(def)}}; }
json str() { return {{"type", "string"}}; }
json count() { return {{"type", "integer"}, {"minimum", 0}}; }

json object(json properties, std::vector<std::string> required, std::string description = "") {
  json j = {{"type", "object"},
            {"properties", std::move(properties)},
            {"required", required},
            {"additionalProperties", false}};
  if (!description.empty()) j["description"] = std::move(description);
  return j;
}

// A channel message: "v": 1, "type": TYPE and these fields.
json message(std::string_view type, json fields, std::vector<std::string> required,
             std::string description) {
  json props = {{"v", ref("ChannelVersion")}, {"type", {{"const", std::string(type)}}}};
  props.update(fields);
  required.insert(required.begin(), {"v", "type"});
  return object(std::move(props), std::move(required), std::move(description));
}

}  // namespace

void add_schema_defs(json& defs) {
  defs["ChannelVersion"] = {{"const", kVersion}, {"description", "the agent-manager protocol"}};
  defs["ChannelAgent"] = object({{"id", str()}, {"name", str()}, {"version", str()}}, {"id"});
  defs["ChannelRoot"] = object({{"path", str()}, {"mode", str()}}, {"path", "mode"});
  defs["ChannelEvent"] = {{"type", "object"},
                          {"description", "an ECS event as the agent's outbox holds it"},
                          {"required", {"event"}},
                          {"properties",
                           {{"event",
                             {{"type", "object"},
                              {"required", {"id", "sequence"}},
                              {"properties", {{"id", str()}, {"sequence", count()}}}}}}}};
  defs["EnrollRequest"] =
      object({{"v", ref("ChannelVersion")},
              {"token_secret", str()},
              {"host", object({{"hostname", str()}, {"machine_id", str()}}, {"hostname"})},
              {"agent", ref("ChannelAgent")},
              {"roots", {{"type", "array"}, {"items", ref("ChannelRoot")}}},
              {"baseline_root_hash", str()}},
             {"v", "token_secret", "host", "agent", "roots"}, "POST /api/v1/enroll");
  defs["EnrollAnswer"] = object({{"v", ref("ChannelVersion")},
                                 {"agent_key", str()},
                                 {"credential", str()},
                                 {"heartbeat_s", count()},
                                 {"lost_after_s", count()}},
                                {"v", "agent_key", "credential", "heartbeat_s", "lost_after_s"},
                                "200 to an enrollment");
  defs["EnrollError"] = object(
      {{"v", ref("ChannelVersion")},
       {"error", object({{"code", str()}, {"message", str()}}, {"code", "message"})}},
      {"v", "error"}, "401 bad-token, 400 bad-message, ... (also a refused channel upgrade)");
  defs["Hello"] = message("hello",
                          {{"agent", ref("ChannelAgent")},
                           {"host", object({{"hostname", str()}}, {"hostname"})},
                           {"roots", {{"type", "array"}, {"items", ref("ChannelRoot")}}},
                           {"baseline_root_hash", str()},
                           {"next_sequence", count()}},
                          {"agent", "host", "roots", "next_sequence"}, "the agent's first message");
  defs["Events"] = message(
      "events",
      {{"events",
        {{"type", "array"}, {"maxItems", kMaxEventsPerBatch}, {"items", ref("ChannelEvent")}}},
       {"resent", {{"type", "boolean"}}}},
      {"events"}, "a batch of the agent's events (resent: the first after a resend)");
  defs["Heartbeat"] =
      message("heartbeat", {{"time_ns", {{"type", "integer"}}}, {"healthy", {{"type", "boolean"}}}},
              {"time_ns", "healthy"}, "every heartbeat_s");
  defs["Result"] = message("result", {{"command_id", str()}, {"answer", ref("Answer")}},
                           {"command_id", "answer"}, "the control answer to a command");
  defs["Bye"] = message("bye", {{"reason", str()}}, {}, "an orderly stop");
  defs["AgentMessage"] = {{"oneOf", json::array({ref("Hello"), ref("Events"), ref("Heartbeat"),
                                                 ref("Result"), ref("Bye")})}};
  defs["Welcome"] = message("welcome", {{"heartbeat_s", count()}, {"lost_after_s", count()}},
                            {"heartbeat_s", "lost_after_s"}, "the answer to hello");
  defs["Ack"] = message("ack", {{"through_sequence", count()}}, {"through_sequence"},
                        "every event with sequence <= through_sequence is stored");
  defs["Command"] = message("command", {{"command_id", str()}, {"request", ref("Request")}},
                            {"command_id", "request"}, "a control request for the agent");
  defs["ChannelError"] = message("error", {{"code", str()}, {"message", str()}},
                                 {"code", "message"}, "then the manager closes the channel");
  defs["Resend"] = message("resend", json::object(), {},
                           "the batches since the last ack were dropped: send them again");
  defs["ManagerMessage"] = {{"oneOf", json::array({ref("Welcome"), ref("Ack"), ref("Command"),
                                                   ref("ChannelError"), ref("Resend")})}};
}

}  // namespace mamori::proto::channel
