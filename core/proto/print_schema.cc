// mamori-proto-schema: prints docs/formats/protocol.schema.json from the C++ types
// (core/proto), or with --examples one line per message the code produces, as
// {"def": "<$defs name>", "message": {...}}, for tests/proto/validate.py.
// Build tool only: not installed.

#include <cstdio>
#include <cstring>
#include <string>

#include "core/proto/channel.h"
#include "core/proto/control.h"

namespace {

using mamori::proto::Answer;
using nlohmann::json;
namespace proto = mamori::proto;
namespace config = mamori::config;

void line(std::string_view def, const json& message) {
  std::printf("%s\n", json{{"def", def}, {"message", message}}.dump().c_str());
}

void examples() {
  using proto::Request;
  for (int v : {1, 2}) {
    line("Request", proto::to_json(Request{v, proto::PingRequest{}}));
    line("Request", proto::to_json(Request{v, proto::StatusRequest{}}));
    line("Request",
         proto::to_json(Request{v, proto::ModeRequest{{{"/srv/www"}}, config::Mode::kAlert}}));
    line("Request", proto::to_json(Request{v, proto::PauseRequest{{}, 4242}}));
    line("Request", proto::to_json(Request{v, proto::PauseRequest{{{"/a", "/b"}}, std::nullopt}}));
    line("Request", proto::to_json(Request{v, proto::ResumeRequest{}}));
    line("Request", proto::to_json(Request{v, proto::DeployPathsRequest{}}));
    line("Request", proto::to_json(Request{v, proto::VerifyRequest{{{"/srv/www"}}}}));
    line("Request", proto::to_json(Request{v, proto::HealRequest{}}));
    line("Request",
         proto::to_json(Request{v, proto::HealRequest{proto::HealAction::kClear, "ops", ""}}));
    line("Request", proto::to_json(Request{
                        v, proto::HealRequest{proto::HealAction::kFail, "", "maintenance"}}));
    line("Request",
         proto::to_json(Request{
             v, proto::BanRequest{{"192.0.2.7", "2001:db8::/64"}, 600, "scanner", "agent-key"}}));
    line("Request", proto::to_json(Request{v, proto::UnbanRequest{{"192.0.2.7"}, "manager"}}));
    line("Request", proto::to_json(Request{v, proto::EvidenceRequest{3}}));
    line("Request", proto::to_json(Request{v, proto::SiteRequest{}}));
    line("Request", proto::to_json(Request{v, proto::SiteRequest{"/srv/www", "wp", "\xff"}}));
    line("Request", proto::to_json(Request{v, proto::AcceptRequest{"/srv/www", "index.php", 3}}));
    line("Request", proto::to_json(Request{v, proto::AcceptRequest{"/srv/www", "wp/\xff", 0}}));
    line("Request", proto::to_json(Request{v, proto::RestoreRequest{"/srv/www", ""}}));

    proto::StatusDocument s;
    s.pid = 1;
    s.backend = "fanotify";
    s.roots = {{"/srv/www", config::Mode::kPreserve, true}};
    s.heal.healthy = false;
    s.heal.reason = "tamper-storm";
    s.heal.since = "2026-01-01T00:00:00Z";
    s.heal.endpoint = "127.0.0.1:8081";
    s.heal.action_errors = {"health file: No such file or directory"};
    s.sinks = {{"mail", config::SinkType::kSmtp, 1, 2, 3, 4, 5, 6, 7, true, "connect: refused"}};
    s.outbox = {"/var/lib/mamori/outbox", 7, 1024, 1, 0, 3};
    s.manager = {proto::LinkState::kConnected, "https://manager:8443", "a-key", "", 10, 8, 9, 1};
    s.logwatch = proto::LogwatchStatus{
        {"/var/log/nginx/access.log"},
        100,
        1,
        2,
        0,
        1,
        {{"/var/log/nginx/access.log", true, 100, 100, "203.0.113.9 - - [x]", "bad-time"}}};
    line("StatusAnswer", proto::to_json(Answer{proto::StatusAnswer{s, {}}}, v));
    line("StatusAnswer",
         proto::to_json(Answer{proto::StatusAnswer{s, proto::Attribution::kPid}}, v));
    s.logwatch.reset();
    line("StatusAnswer", proto::to_json(Answer{proto::StatusAnswer{s, {}}}, v));
    line("StatusDocument", proto::to_json(s));
    line("PingAnswer", proto::to_json(Answer{proto::PingAnswer{}}, v));
    line("HealAnswer", proto::to_json(Answer{proto::HealAnswer{s.heal}}, v));
    line("DeployPathsAnswer", proto::to_json(Answer{proto::DeployPathsAnswer{}}, v));
    line("BanAnswer",
         proto::to_json(Answer{proto::BanAnswer{
                            {"192.0.2.7"}, {{"127.0.0.1", "allowlisted", "on the allowlist"}}}},
                        v));
    line("DeployPathsAnswer",
         proto::to_json(
             Answer{proto::DeployPathsAnswer{
                 proto::Attribution::kPid, 7, true, {{"/srv/www", {"index.php"}, {"x.php"}}}}},
             v));
    const json item = {{"file", {{"path", "/srv/www/x.php"}}}};
    line("EvidenceAnswer",
         proto::to_json(
             Answer{proto::EvidenceAnswer{item, {"<?php evil", true}, {{"ok", true}}, ""}}, v));
    line("EvidenceAnswer",
         proto::to_json(Answer{proto::EvidenceAnswer{item, {"x", false}, {}, "unknown"}}, v));
    line("SiteAnswer",
         proto::to_json(Answer{proto::SiteAnswer{
                            {{"/srv/www", "dir", std::string(64, 'a'), 1200}}, false, ""}},
                        v));
    line("SiteAnswer",
         proto::to_json(Answer{proto::SiteAnswer{{{"index.php", "file", std::string(64, 'b'), 1},
                                                  {"\xfe.php", "file", std::string(64, 'c'), 1}},
                                                 true,
                                                 std::string(64, 'd')}},
                        v));
    line("PathAnswer",
         proto::to_json(Answer{proto::PathAnswer{"/srv/www", "index.php", 1, std::string(64, 'e')}},
                        v));
    line("PathAnswer", proto::to_json(Answer{proto::PathAnswer{"/srv/www", "wp/\xff", 12, ""}}, v));
    // Errors, from the decoder itself where it makes them.
    line("ErrorAnswer",
         proto::to_json(Answer{proto::decode_request(json{{"cmd", "reboot"}}).error()}, v));
    line("ErrorAnswer",
         proto::to_json(Answer{proto::decode_request(json{{"v", 9}, {"cmd", "status"}}).error()},
                        v));
    line("ErrorAnswer",
         proto::to_json(Answer{proto::decode_request(json{{"cmd", "mode"}}).error()}, v));
    line("ErrorAnswer", proto::to_json(Answer{proto::decode_request(json::array()).error()}, v));
  }

  // The agent-manager protocol.
  namespace ch = proto::channel;
  const ch::AgentInfo agent{"6f1c0c1e-0000-4000-8000-000000000001", "web1", "0.12.0"};
  const std::vector<ch::RootInfo> roots = {{"/srv/www", "restore"}};
  line("EnrollRequest", ch::to_json(ch::EnrollRequest{"s", {"web1", "m"}, agent, roots, "ab"}));
  line("EnrollAnswer", ch::to_json(ch::EnrollAnswer{"k", "c", 2, 10}));
  line("EnrollError", ch::to_json(ch::EnrollError{std::string(ch::kBadToken), "revoked"}));
  line("AgentMessage", ch::to_json(ch::Hello{agent, {"web1", ""}, roots, "ab", 7}));
  line("AgentMessage", ch::to_json(ch::Events{
                           {json{{"event", {{"id", "e1"}, {"sequence", 7}}}, {"message", "m"}}}}));
  line("AgentMessage", ch::to_json(ch::Heartbeat{1, true}));
  line("AgentMessage",
       ch::to_json(ch::CommandResult{"c1", proto::to_json(Answer{proto::PingAnswer{}}, 2)}));
  line("AgentMessage", ch::to_json(ch::Bye{}));
  line("ManagerMessage", ch::to_json(ch::Welcome{2, 10}));
  line("ManagerMessage", ch::to_json(ch::Ack{7}));
  line("ManagerMessage",
       ch::to_json(ch::Command{"c1", proto::to_json(proto::Request{2, proto::VerifyRequest{}})}));
  line("ManagerMessage", ch::to_json(ch::Error{std::string(ch::kDuplicateIdentity), "x"}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--examples") == 0) {
    examples();
    return 0;
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: mamori-proto-schema [--examples]\n");
    return 2;
  }
  std::printf("%s\n", proto::schema().dump(2).c_str());
  return 0;
}
