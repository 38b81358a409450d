#include "core/event/schema.h"

#include <gtest/gtest.h>

#include "core/event/origin.h"
#include "testing/sim_clock.h"

namespace mamori::event {
namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

class SchemaTest : public ::testing::Test {
 protected:
  // As an event leaves the outbox: stamped with the origin and numbered.
  nlohmann::json stamped(Event e) {
    origin_.stamp(e);
    e.set("event.sequence", ++sequence_);
    return nlohmann::json::parse(e.to_json_line());
  }
  uint64_t sequence_ = 0;
  testing::SimClock clock_;
  Origin origin_{{"0e0a1b2c-0000-4000-8000-000000000000", "web-1", "0.1.0", "web-1", "Web-1"},
                 clock_};
};

TEST_F(SchemaTest, TheCompiledInListParsesAndNamesTheOriginFieldsRequired) {
  const auto& s = Schema::builtin();
  for (const char* f : {"agent.id", "agent.name", "agent.version", "host.name", "host.hostname",
                        "event.dataset", "event.created", "@timestamp", "event.sequence"}) {
    auto it = s.fields().find(f);
    ASSERT_NE(it, s.fields().end()) << f;
    EXPECT_TRUE(it->second.required) << f;
  }
  EXPECT_EQ(s.fields().at("source.ip").type, "ip");
  EXPECT_EQ(s.fields().at("mamori.related_event").level, "custom");
}

TEST_F(SchemaTest, AStampedEventOfEveryShapePasses) {
  Event e("file-quarantined", Severity::kWarning, 1'700'000'000'000'000'000);
  e.set("event.category", nlohmann::json::array({"file", "intrusion_detection"}))
      .set("file.path", "/w/u/s.php")
      .set("process.pid", 12)
      .set("process.parent.pid", 1)
      .set("mamori.attrs", nlohmann::json::array({"content"}))
      .set("mamori.evidence.id", 3)
      .message("quarantined");
  EXPECT_EQ(joined(Schema::builtin().check(stamped(std::move(e)))), "");
  Event ban("ip-banned", Severity::kWarning, 0);
  ban.set("source.ip", "2001:db8::1").set("event.dataset", "mamori.ban").message("b");
  EXPECT_EQ(joined(Schema::builtin().check(stamped(std::move(ban)))), "");
}

TEST_F(SchemaTest, AnUnlistedFieldAWrongTypeAMissingOriginAndAnUnknownActionFail) {
  auto problems = [&](Event e) { return joined(Schema::builtin().check(stamped(std::move(e)))); };
  Event a("file-restored", Severity::kWarning, 0);
  a.set("mamori.new_thing", 1).message("x");
  EXPECT_NE(problems(std::move(a)).find("mamori.new_thing: not a listed field"), std::string::npos);

  Event b("file-restored", Severity::kWarning, 0);
  b.set("process.pid", "12").set("event.type", "change").set("source.ip", "nope").message("x");
  const auto pb = problems(std::move(b));
  EXPECT_NE(pb.find("process.pid: must be an integer"), std::string::npos) << pb;
  EXPECT_NE(pb.find("event.type: keyword is an array"), std::string::npos) << pb;
  EXPECT_NE(pb.find("source.ip: must be an IPv4 or IPv6 address"), std::string::npos) << pb;

  Event c("no-such-action", Severity::kInfo, 0);
  c.message("x");
  EXPECT_NE(problems(std::move(c)).find("not a known action"), std::string::npos);

  Event d("file-restored", Severity::kInfo, 0);
  d.set("event.dataset", "mamori.heal").message("x");
  EXPECT_NE(problems(std::move(d)).find("event.dataset: mamori.heal is not the dataset"),
            std::string::npos);

  Event unstamped("file-restored", Severity::kInfo, 0);
  unstamped.message("x");
  const auto pu = joined(Schema::builtin().check(nlohmann::json::parse(unstamped.to_json_line())));
  EXPECT_NE(pu.find("agent.id: required, missing"), std::string::npos) << pu;
}

TEST_F(SchemaTest, ABadListIsRefusedWithItsLine) {
  EXPECT_FALSE(Schema::parse(
      "field\ttype\tarray\tlevel\trequired\tdescription\nx\tnope\tno\tcore\tno\td\n"));
  EXPECT_FALSE(Schema::parse(
      "field\ttype\tarray\tlevel\trequired\tdescription\nmamori.x\tlong\tno\tcore\tno\td\n"));
  auto dup = Schema::parse(
      "field\ttype\tarray\tlevel\trequired\tdescription\na\tlong\tno\tcore\tno\td\na\tlong\tno\tcor"
      "e\tno\td\n");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("line 3"), std::string::npos) << dup.error().message();
}

}  // namespace
}  // namespace mamori::event
