#include "core/proto/channel.h"

#include <gtest/gtest.h>

#include "core/base/json_depth.h"

namespace mamori::proto::channel {
namespace {

using nlohmann::json;

json event(uint64_t seq, std::string id) {
  return {{"event", {{"id", std::move(id)}, {"sequence", seq}, {"action", "file-restored"}}},
          {"message", "x"}};
}

TEST(Channel, AgentMessagesRoundTrip) {
  const std::vector<AgentMessage> messages = {
      Hello{{"6f1c0c1e-0000-4000-8000-000000000001", "web1", "0.12.0"},
            {"web1", ""},
            {{"/var/www/html", "restore"}},
            "ab12",
            42},
      Events{{event(1, "a"), event(7, "b")}},
      Events{{event(8, "c")}, true},
      Heartbeat{123456789, false},
      CommandResult{"c-1", json{{"v", 2}, {"ok", true}}},
      Bye{"stopping"},
  };
  for (const auto& m : messages) {
    const std::string text = encode(m);
    auto back = decode_agent_message(text);
    ASSERT_TRUE(back) << text << ": " << back.error().message;
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(encode(*back), text);
    EXPECT_EQ(json::parse(text)["type"], type_of(m));
    EXPECT_EQ(json::parse(text)["v"], 1);
  }
  auto ev = decode_agent_message(encode(AgentMessage{Events{{event(9, "a"), event(3, "b")}}}));
  ASSERT_TRUE(ev);
  EXPECT_EQ(std::get<Events>(*ev).highest_sequence(), 9u);
}

TEST(Channel, ManagerMessagesRoundTrip) {
  const std::vector<ManagerMessage> messages = {
      Welcome{2, 10},
      Ack{99},
      Command{"c-2", json{{"v", 2}, {"cmd", "verify"}}},
      Error{std::string(kDuplicateIdentity), "already connected"},
      Resend{},
  };
  for (const auto& m : messages) {
    const std::string text = encode(m);
    auto back = decode_manager_message(text);
    ASSERT_TRUE(back) << text << ": " << back.error().message;
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(encode(*back), text);
    EXPECT_EQ(json::parse(text)["type"], type_of(m));
  }
  // An agent message is not a manager message and the other way round.
  EXPECT_FALSE(decode_manager_message(encode(AgentMessage{Bye{}})));
  EXPECT_FALSE(decode_agent_message(encode(ManagerMessage{Ack{1}})));
}

TEST(Channel, EnrollmentRoundTrip) {
  EnrollRequest r{"s3cret", {"web1", "m-id"}, {"id", "web1", "0.12"}, {{"/w", "alert"}}, ""};
  auto back = decode_enroll_request(to_json(r).dump());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(*back), to_json(r));
  EXPECT_EQ(back->roots[0].mode, "alert");

  EnrollAnswer a{"key", "cred", 3, 12};
  auto a2 = decode_enroll_answer(to_json(a).dump());
  ASSERT_TRUE(a2);
  EXPECT_EQ(to_json(*a2), to_json(a));

  EnrollError e{std::string(kBadToken), "revoked"};
  auto e2 = decode_enroll_error(to_json(e).dump());
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->code, "bad-token");
  EXPECT_EQ(to_json(e)["error"]["message"], "revoked");
}

TEST(Channel, UnknownFieldsAreIgnored) {
  auto m = decode_agent_message(
      R"({"v":1,"type":"heartbeat","time_ns":5,"healthy":true,"colour":"blue"})");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(std::get<Heartbeat>(*m).time_ns, 5);
  auto w = decode_manager_message(
      R"({"v":1,"type":"welcome","heartbeat_s":2,"lost_after_s":10,"extra":{"a":1}})");
  ASSERT_TRUE(w);
  auto r = decode_enroll_request(
      R"({"v":1,"token_secret":"s","host":{"hostname":"h","new":1},"agent":{"id":"i"},)"
      R"("roots":[],"future":[1,2]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->host.hostname, "h");
}

TEST(Channel, MissingAndWrongFieldsAreNamed) {
  const auto message_of = [](std::string_view text) {
    auto m = decode_agent_message(text);
    EXPECT_FALSE(m) << text;
    return m ? std::string() : m.error().message;
  };
  EXPECT_EQ(message_of(R"({"v":1,"type":"heartbeat","healthy":true})"),
            "time_ns must be an integer");
  EXPECT_EQ(message_of(R"({"v":1,"type":"hello","agent":{"id":"x","version":"1"},)"
                       R"("host":{},"roots":[],"next_sequence":1})"),
            "host.hostname must be a string");
  EXPECT_EQ(message_of(R"({"v":1,"type":"hello","agent":{"id":"x","version":"1"},)"
                       R"("host":{"hostname":"h"},"roots":[{"path":"/w"}],"next_sequence":1})"),
            "roots[0].mode must be a string");
  EXPECT_EQ(message_of(R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1}},)"
                       R"({"event":{"id":"b"}}]})"),
            "events[1].event.sequence must be a non-negative integer");
  EXPECT_EQ(message_of(R"({"v":1,"type":"events","events":[{"event":{"sequence":-1,"id":"a"}}]})"),
            "events[0].event.sequence must be a non-negative integer");
  EXPECT_EQ(message_of(R"({"v":1,"type":"events","events":[{"event":{"sequence":1,"id":2}}]})"),
            "events[0].event.id must be a string");
  EXPECT_EQ(message_of(R"({"v":1,"type":"events","events":[7]})"), "events[0] must be an object");
  EXPECT_EQ(message_of(R"({"v":1,"type":"events","events":[],"resent":1})"),
            "resent must be true or false");
  EXPECT_EQ(message_of(R"({"v":1,"type":"result","answer":{}})"), "command_id must be a string");
  EXPECT_EQ(message_of(R"({"v":1,"type":"reboot"})").rfind("type \"reboot\"", 0), 0u);
  EXPECT_EQ(message_of(R"({"type":"bye"})"), "v must be the protocol version (1)");
  EXPECT_EQ(message_of("[1,2]"), "the message must be a JSON object");
  EXPECT_EQ(message_of("{nope"), "the message is not JSON");
  auto v2 = decode_agent_message(R"({"v":2,"type":"bye"})");
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code, kUnsupportedVersion);
  auto ack = decode_manager_message(R"({"v":1,"type":"ack","through_sequence":"7"})");
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().message, "through_sequence must be a non-negative integer");
  auto enroll = decode_enroll_request(R"({"v":1,"host":{"hostname":"h"},"agent":{"id":"i"}})");
  ASSERT_FALSE(enroll);
  EXPECT_EQ(enroll.error().message, "token_secret must be a string");
}

TEST(Channel, LongFieldsAreRefused) {
  Hello h{{"id", std::string(1025, 'n'), "1"}, {"h", ""}, {}, "", 1};
  auto m = decode_agent_message(encode(AgentMessage{h}));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message, "agent.name must be a string of at most 1024 bytes");
  h.agent.name = std::string(1024, 'n');
  h.roots = {{std::string(4096, 'p'), "restore"}};
  EXPECT_TRUE(decode_agent_message(encode(AgentMessage{h})));
  h.roots[0].path += "p";
  EXPECT_EQ(decode_agent_message(encode(AgentMessage{h})).error().message,
            "roots[0].path must be a string of at most 4096 bytes");
}

TEST(Channel, OversizeIsRefusedBeforeParsing) {
  std::string big = R"({"v":1,"type":"bye","reason":")";
  big.append(kMaxMessageBytes, 'x');
  big += "\"}";
  auto m = decode_agent_message(big);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, kTooLarge);
  EXPECT_EQ(decode_enroll_request(big).error().code, kTooLarge);

  json batch = {{"v", 1}, {"type", "events"}, {"events", json::array()}};
  for (uint64_t i = 0; i <= kMaxEventsPerBatch; ++i)
    batch["events"].push_back(event(i, std::to_string(i)));
  auto b = decode_agent_message(batch.dump());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message, "events must be an array of at most 1000");
  batch["events"].erase(0);
  EXPECT_TRUE(decode_agent_message(batch.dump()));
}

// A result's answer nested a million levels deep (2 MB, under kMaxMessageBytes) parses,
// but copying it into the decoded message or printing it would overflow the stack: it is
// refused before it is parsed. What the fleet's commands really answer nests a few levels.
TEST(Channel, DeepNestingIsRefusedBeforeParsing) {
  const auto result_nested = [](size_t levels) {
    return R"({"v":1,"type":"result","command_id":"c","answer":)" + std::string(levels, '[') +
           std::string(levels, ']') + "}";
  };
  auto deep = decode_agent_message(result_nested(1'000'000));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, kBadMessage);
  EXPECT_EQ(deep.error().message, "the message nests deeper than 64 levels");
  EXPECT_FALSE(decode_agent_message(result_nested(kMaxJsonDepth)));  // 1 + 64 levels
  EXPECT_TRUE(decode_agent_message(result_nested(kMaxJsonDepth - 1)));
  auto command = decode_manager_message(R"({"v":1,"type":"command","command_id":"c","request":)" +
                                        std::string(100, '[') + std::string(100, ']') + "}");
  ASSERT_FALSE(command);
  EXPECT_EQ(command.error().message, "the message nests deeper than 64 levels");
}

TEST(Channel, Base64url) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    const std::string e = base64url(s);
    EXPECT_EQ(e.find_first_of("+/="), std::string::npos) << e;
    EXPECT_EQ(unbase64url(e), s);
  }
  EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
  EXPECT_FALSE(unbase64url("Zm9v="));  // padding
  EXPECT_FALSE(unbase64url("Zm9v+"));  // standard alphabet
  EXPECT_FALSE(unbase64url("Z"));      // impossible length
  EXPECT_FALSE(unbase64url("Zh"));     // non-zero leftover bits
}

TEST(Channel, TokenText) {
  const Token t{"https://mgr.example:8443", std::string(64, 'a'),
                base64url(std::string(32, '\x01'))};
  ASSERT_EQ(t.secret.size(), 43u);
  const std::string text = encode_token(t);
  EXPECT_EQ(text.rfind("mamori-token-v1.", 0), 0u);
  EXPECT_EQ(text.find_first_of("+/= \n"), std::string::npos);
  auto back = decode_token(text + "\n");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->url, t.url);
  EXPECT_EQ(back->fp, t.fp);
  EXPECT_EQ(back->secret, t.secret);

  EXPECT_FALSE(decode_token("mamori-token-v2." + text.substr(16)));
  EXPECT_FALSE(decode_token("mamori-token-v1.!!!"));
  EXPECT_FALSE(decode_token("mamori-token-v1." + base64url("not json")));
  Token wrong = t;
  wrong.fp = std::string(64, 'A');
  EXPECT_EQ(decode_token(encode_token(wrong)).error().message,
            "token.fp must be 64 lower-case hex digits");
  wrong = t;
  wrong.secret = "short";
  EXPECT_EQ(decode_token(encode_token(wrong)).error().message,
            "token.secret must be 43 base64url characters");
  wrong = t;
  wrong.url = "http://m:1";
  EXPECT_FALSE(decode_token(encode_token(wrong)));
}

}  // namespace
}  // namespace mamori::proto::channel
