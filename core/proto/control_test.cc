#include "core/proto/control.h"

#include <gtest/gtest.h>

#include "core/proto/actions.h"

namespace mamori::proto {
namespace {

using nlohmann::json;

TEST(Proto, RequestsRoundTrip) {
  const std::vector<Request> requests = {
      {kVersion, PingRequest{}},
      {kVersion, StatusRequest{}},
      {kVersion, ModeRequest{Roots{{"/var/www/html"}}, config::Mode::kAlert}},
      {kVersion, PauseRequest{Roots{}, 1234}},
      {kVersion, ResumeRequest{Roots{{"/a", "/b"}}}},
      {kVersion, DeployPathsRequest{}},
      {kVersion, VerifyRequest{}},
      {kVersion, HealRequest{HealAction::kFail, "", "maintenance"}},
      {kVersion, BanRequest{{"192.0.2.7", "2001:db8::/64"}, 600, "scanner", "agent-1"}},
      {kVersion, UnbanRequest{{"192.0.2.7"}, "manager"}},
      {kVersion, EvidenceRequest{42}},
      {kVersion, SiteRequest{}},
      {kVersion, SiteRequest{"/srv/www", "wp-content/\xff\xfe", "a\x80"}},
      {kVersion, AcceptRequest{"/srv/www", "index.php", 7}},
      {kVersion, AcceptRequest{"/srv/www", "", 0}},
      {kVersion, RestoreRequest{"/srv/www", "wp/\xff.php"}},
  };
  for (const auto& r : requests) {
    const json j = to_json(r);
    auto back = decode_request(j);
    ASSERT_TRUE(back) << j.dump() << ": " << back.error().message;
    EXPECT_EQ(back->command(), r.command());
    EXPECT_EQ(back->v, kVersion);
    EXPECT_EQ(to_json(*back), j);
  }
}

TEST(Proto, VersionOneRequestsHaveNoVersion) {
  // What the CLI sent before versioning, byte for byte.
  auto r = decode_request(json::parse(R"({"cmd":"mode","root":"/var/www/html","mode":"alert"})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->v, 1);
  const auto& m = std::get<ModeRequest>(r->body);
  EXPECT_EQ(m.roots.paths, std::vector<std::string>{"/var/www/html"});
  EXPECT_EQ(m.mode, config::Mode::kAlert);

  r = decode_request(json::parse(R"({"cmd":"pause","roots":"*","pid":42})"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(std::get<PauseRequest>(r->body).roots.all());
  EXPECT_EQ(std::get<PauseRequest>(r->body).pid, 42);

  r = decode_request(json::parse(R"({"cmd":"heal"})"));  // no action: status
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<HealRequest>(r->body).action, HealAction::kStatus);
}

TEST(Proto, BanRequestsAreBounded) {
  auto r = decode_request(json::parse(R"({"v":2,"cmd":"ban","addresses":[]})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kBadArgument);
  EXPECT_NE(r.error().message.find("addresses"), std::string::npos);
  json many = {{"v", 2}, {"cmd", "ban"}, {"addresses", json::array()}};
  for (int i = 0; i <= 1000; ++i) many["addresses"].push_back("192.0.2.1");
  EXPECT_FALSE(decode_request(many));
  many["addresses"].erase(0);
  EXPECT_TRUE(decode_request(many));
  EXPECT_FALSE(decode_request(json::parse(R"({"v":2,"cmd":"ban","addresses":[7]})")));
  EXPECT_FALSE(
      decode_request(json::parse(R"({"v":2,"cmd":"ban","addresses":["192.0.2.1"],"ttl_s":-1})")));
  EXPECT_FALSE(decode_request(
      {{"v", 2}, {"cmd", "unban"}, {"addresses", json::array({std::string(65, '1')})}}));
  r = decode_request(json::parse(R"({"v":2,"cmd":"ban","addresses":["192.0.2.1"]})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<BanRequest>(r->body).ttl_s, 0);  // permanent
}

TEST(Proto, BanAnswerRoundTrip) {
  const BanAnswer a{{"192.0.2.7"}, {{"127.0.0.1", "allowlisted", "on the allowlist"}}};
  auto back = decode_ban_answer(to_json(Answer{a}));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->applied, a.applied);
  ASSERT_EQ(back->refused.size(), 1u);
  EXPECT_EQ(back->refused[0].code, "allowlisted");
}

// The bytes are an attacker's (any byte, NUL, invalid UTF-8): they travel as base64url.
TEST(Proto, EvidenceAnswerRoundTripsAnyBytes) {
  const char raw[] = "<?php \xff\xfe\0 eval($_GET[1]);";
  const std::string bytes(raw, sizeof raw - 1);
  const json item = {{"file", {{"path", "/srv/www/x.php"}}}};
  for (const auto& before :
       {std::optional<EvidenceContent>{{"<?php ok", true}}, std::optional<EvidenceContent>{}}) {
    EvidenceAnswer a{item, {bytes, false}, before, before ? "" : "gone"};
    const json j = to_json(Answer{a});
    EXPECT_NO_THROW((void)j.dump()) << "valid UTF-8 all through";
    auto back = decode_evidence_answer(j);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->item, item);
    EXPECT_EQ(back->after.bytes, bytes);
    EXPECT_FALSE(back->after.complete);
    EXPECT_EQ(back->before.has_value(), before.has_value());
    if (before) {
      EXPECT_EQ(back->before->bytes, "<?php ok");
    }
    EXPECT_EQ(back->before_missing, before ? "" : "gone");
  }
  json bad = to_json(Answer{EvidenceAnswer{item, {"x", true}, {}, "unknown"}});
  bad["after"]["base64url"] = "not base64!";
  EXPECT_FALSE(decode_evidence_answer(bad));
  for (const json& r :
       {json{{"v", 2}, {"cmd", "evidence"}}, json{{"v", 2}, {"cmd", "evidence"}, {"id", 0}},
        json{{"v", 2}, {"cmd", "evidence"}, {"id", "7"}}}) {
    auto d = decode_request(r);
    ASSERT_FALSE(d) << r.dump();
    EXPECT_NE(d.error().message.find("id"), std::string::npos) << d.error().message;
  }
}

// accept and restore act on a path below a root: nothing that could climb out of it, and
// an evidence id only when it is one.
TEST(Proto, AcceptAndRestoreNameAPathBelowTheRoot) {
  for (const char* cmd : {"accept", "restore"}) {
    for (const char* path :
         {"/etc/passwd", "../x", "a/../../x", "a/..", "a//b", "a/", "./a", "a/./b"}) {
      auto d = decode_request(json{{"v", 2}, {"cmd", cmd}, {"root", "/srv/www"}, {"path", path}});
      ASSERT_FALSE(d) << cmd << " " << path;
      EXPECT_EQ(d.error().code, ErrorCode::kBadArgument);
      EXPECT_NE(d.error().message.find("path"), std::string::npos) << d.error().message;
    }
    auto no_root = decode_request(json{{"v", 2}, {"cmd", cmd}, {"path", "x"}});
    ASSERT_FALSE(no_root);
    EXPECT_NE(no_root.error().message.find("root"), std::string::npos);
    auto ok =
        decode_request(json{{"v", 2}, {"cmd", cmd}, {"root", "/srv/www"}, {"path", "a..b/.c"}});
    EXPECT_TRUE(ok) << ok.error().message;
  }
  for (const json& id : {json(0), json(-3), json("7")}) {
    auto d = decode_request(
        json{{"v", 2}, {"cmd", "accept"}, {"root", "/srv/www"}, {"path", "x"}, {"evidence", id}});
    ASSERT_FALSE(d) << id.dump();
    EXPECT_NE(d.error().message.find("evidence"), std::string::npos);
  }
  const PathAnswer a{"/srv/www", "wp/\xff", 3, std::string(64, 'a')};
  auto back = decode_path_answer(to_json(Answer{a}));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->path, a.path);
  EXPECT_EQ(back->entries, 3u);
  EXPECT_EQ(back->root_hash, a.root_hash);
}

// Names are bytes a deploy chose: one that is not UTF-8 travels as hex, exactly.
TEST(Proto, SiteNamesRoundTripAnyBytes) {
  const std::string odd = "x\xff\n\"y";
  const SiteRequest q{"/srv/www", "wp/" + odd, odd};
  const json jq = to_json(Request{kVersion, q});
  EXPECT_NO_THROW((void)jq.dump());
  EXPECT_TRUE(jq.contains("dir_hex"));
  auto back = decode_request(jq);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(std::get<SiteRequest>(back->body).dir, q.dir);
  EXPECT_EQ(std::get<SiteRequest>(back->body).after, odd);

  SiteAnswer a{{{odd, "file", std::string(64, 'e'), 1}, {"ok.php", "dir", std::string(64, '0'), 3}},
               true,
               std::string(64, 'f')};
  const json ja = to_json(Answer{a});
  EXPECT_NO_THROW((void)ja.dump());
  auto ab = decode_site_answer(ja);
  ASSERT_TRUE(ab) << ab.error().message;
  ASSERT_EQ(ab->parts.size(), 2u);
  EXPECT_EQ(ab->parts[0].name, odd);
  EXPECT_EQ(ab->parts[1].entries, 3u);
  EXPECT_TRUE(ab->more);
  EXPECT_EQ(ab->self, std::string(64, 'f'));

  for (const json& bad : {json{{"v", 2}, {"cmd", "site"}, {"dir", "wp"}},
                          json{{"v", 2}, {"cmd", "site"}, {"root", "/r"}, {"dir", "/etc"}},
                          json{{"v", 2}, {"cmd", "site"}, {"root", "/r"}, {"dir", "a//b"}},
                          json{{"v", 2}, {"cmd", "site"}, {"root", "/r"}, {"dir_hex", "abc"}},
                          json{{"v", 2}, {"cmd", "site"}, {"root", "/r"}, {"after_hex", "zz"}},
                          json{{"v", 2}, {"cmd", "site"}, {"root", std::string(5000, 'r')}}})
    EXPECT_FALSE(decode_request(bad)) << bad.dump();
  json wrong = ja;
  wrong["parts"][1]["digest"] = "ABC";
  EXPECT_FALSE(decode_site_answer(wrong));
  wrong = ja;
  wrong["parts"][1].erase("name");
  EXPECT_FALSE(decode_site_answer(wrong));
}

TEST(Proto, UnknownFieldsAreIgnored) {
  auto r = decode_request(json::parse(R"({"v":2,"cmd":"verify","colour":"blue","roots":["/x"]})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<VerifyRequest>(r->body).roots.paths, std::vector<std::string>{"/x"});
}

TEST(Proto, UnknownCommandNamesItAndTheSupportedOnes) {
  auto r = decode_request(json::parse(R"({"v":2,"cmd":"reboot"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnknownCommand);
  EXPECT_EQ(r.error().command, "reboot");
  EXPECT_NE(r.error().message.find("\"reboot\""), std::string::npos);
  EXPECT_NE(r.error().message.find("deploy-paths"), std::string::npos);
  EXPECT_EQ(r.error().supported, command_names());
  const json a = to_json(Answer{r.error()}, 2);
  EXPECT_EQ(a["ok"], false);
  EXPECT_EQ(a["error"]["code"], "unknown-command");
  EXPECT_EQ(a["error"]["supported"].size(), 14u);
  // Version 1 clients read the error as text.
  const json a1 = to_json(Answer{r.error()}, 1);
  EXPECT_TRUE(a1["error"].is_string());
}

TEST(Proto, FutureVersionIsRefused) {
  auto r = decode_request(json::parse(R"({"v":3,"cmd":"status"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedVersion);
  EXPECT_NE(r.error().message.find("1 to 2"), std::string::npos);
  EXPECT_FALSE(decode_request(json::parse(R"({"v":"2","cmd":"status"})")));
  EXPECT_FALSE(decode_request(json::parse(R"({"v":0,"cmd":"status"})")));
}

TEST(Proto, BadArgumentsNameTheField) {
  auto r = decode_request(json::parse(R"({"v":2,"cmd":"mode","mode":"loud"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kBadArgument);
  EXPECT_EQ(r.error().message, "\"mode\" must be one of alert, restore, preserve");
  r = decode_request(json::parse(R"({"cmd":"pause","pid":"me"})"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("\"pid\""), std::string::npos);
  r = decode_request(json::parse(R"({"cmd":"pause","pid":-1})"));
  ASSERT_FALSE(r);
  r = decode_request(json::parse(R"({"cmd":"heal","action":"fail"})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "\"reason\" must be a non-empty string");
  r = decode_request(json::parse(R"({"cmd":"verify","roots":[1]})"));
  ASSERT_FALSE(r);
  r = decode_request(json::parse(R"({"cmd":"verify","roots":{}})"));
  ASSERT_FALSE(r);
  EXPECT_FALSE(decode_request(json::parse(R"(["status"])")));
  EXPECT_FALSE(decode_request(json::parse(R"({"cmd":7})")));
}

StatusDocument sample_status() {
  StatusDocument s;
  s.pid = 77;
  s.backend = "fanotify";
  s.started_at_ns = 1;
  s.roots = {{"/var/www/html", config::Mode::kRestore, false, false},
             {"/srv/app", config::Mode::kPreserve, false, true}};
  s.event_log = "/var/log/mamori/events.jsonl";
  s.heal.since = "2026-01-01T00:00:00Z";
  s.heal.reason = "tamper-storm";
  s.sinks = {{"siem", config::SinkType::kWebhook, 3, 0, 1, 0, 0, 2, 40, false, ""}};
  s.outbox = {"/var/lib/mamori/outbox", 42, 1024, 0, 0, 0};
  s.logwatch = LogwatchStatus{{"/var/log/nginx/access.log"}, 10, 0, 1, 0, 0, {}};
  s.logwatch->parsing = {{"/var/log/nginx/access.log", true, 120, 120, "1.2.3.4 x", "no-match"}};
  s.counters.restored = 5;
  return s;
}

TEST(Proto, StatusAnswerRoundTripsInBothVersions) {
  for (int v : {1, 2}) {
    const json j = to_json(Answer{StatusAnswer{sample_status(), Attribution::kPid}}, v);
    EXPECT_EQ(j["v"], v);
    EXPECT_EQ(j["ok"], true);
    auto back = decode_status_answer(j);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(to_json(back->status), to_json(sample_status()));
    EXPECT_EQ(back->attribution, Attribution::kPid);
  }
  StatusDocument no_logs = sample_status();
  no_logs.logwatch.reset();
  auto back = decode_status(to_json(no_logs));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->logwatch);
  // An agent older than the log health sends no "parsing".
  json old = to_json(sample_status());
  old["logwatch"].erase("parsing");
  back = decode_status(old);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_TRUE(back->logwatch);
  EXPECT_TRUE(back->logwatch->parsing.empty());
  // Nor one older than the sliced rescans "rescanning".
  old["roots"][1].erase("rescanning");
  back = decode_status(old);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_FALSE(back->roots[1].rescanning);
}

TEST(Proto, ErrorAnswersDecodeInBothVersions) {
  ErrorAnswer e{ErrorCode::kUnknownRoot, "'/x' is not a root the agent guards", "verify", {}};
  for (int v : {1, 2}) {
    auto d = decode_status_answer(to_json(Answer{e}, v));
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().message, e.message);
    EXPECT_EQ(d.error().code, v == 1 ? ErrorCode::kFailed : ErrorCode::kUnknownRoot);
  }
  // An answer missing a field is an error naming it, not a crash.
  json broken = to_json(Answer{StatusAnswer{sample_status(), {}}});
  broken["counters"].erase("restored");
  auto d = decode_status_answer(broken);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("\"restored\""), std::string::npos);
  EXPECT_FALSE(decode_heal_answer(json::parse(R"({"v":2})")));
}

TEST(Proto, DeployPathsAnswer) {
  DeployPathsAnswer a{Attribution::kPid, 9, true, {{"/r", {"a.php"}, {"b.php"}}}};
  auto back = decode_deploy_paths_answer(to_json(Answer{a}));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->roots[0].foreign, std::vector<std::string>{"b.php"});
  const json none = to_json(Answer{DeployPathsAnswer{}});
  EXPECT_FALSE(none.contains("roots"));
  EXPECT_EQ(decode_deploy_paths_answer(none)->attribution, Attribution::kNone);
}

// A deploy may write any name: one that is not UTF-8 comes back byte for byte (before,
// it came back as U+FFFD, was accepted as a path that does not exist, and the file the
// deploy wrote was quarantined at resume).
TEST(Proto, DeployPathsAnswerKeepsNamesThatAreNotUtf8) {
  const std::string odd = "caf\xe9.php";
  DeployPathsAnswer a{Attribution::kPid, 9, true, {{"/r", {"a.php", odd}, {odd + "x"}}}};
  const json j = to_json(Answer{a});
  EXPECT_NO_THROW((void)j.dump());
  EXPECT_EQ(j["roots"][0]["deploy"], json({"a.php"}));
  EXPECT_FALSE(j["roots"][0].contains("foreign") && j["roots"][0]["foreign"].size() > 0);
  auto back = decode_deploy_paths_answer(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->roots[0].deploy, (std::vector<std::string>{"a.php", odd}));
  EXPECT_EQ(back->roots[0].foreign, std::vector<std::string>{odd + "x"});
  json bad = j;
  bad["roots"][0]["deploy_hex"] = json({"e"});
  EXPECT_FALSE(decode_deploy_paths_answer(bad));
}

TEST(Proto, SchemaEnumsComeFromTheCode) {
  const json s = schema();
  EXPECT_EQ(s["$defs"]["EventAction"]["enum"].size(), action::kAllActions.size());
  EXPECT_EQ(s["$defs"]["Mode"]["enum"], json({"alert", "restore", "preserve"}));
  EXPECT_EQ(s["$defs"]["Request"]["oneOf"].size(), command_names().size());
  EXPECT_EQ(s["$defs"]["Counters"]["required"].size(), 13u);
}

TEST(Proto, ActionsAreUnique) {
  std::set<std::string_view> seen(action::kAllActions.begin(), action::kAllActions.end());
  EXPECT_EQ(seen.size(), action::kAllActions.size());
}

}  // namespace
}  // namespace mamori::proto
