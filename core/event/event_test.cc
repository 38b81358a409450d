#include "core/event/event.h"

#include <string>

#include <gtest/gtest.h>

#include "core/base/env.h"

namespace mamori::event {
namespace {

TEST(Event, NestsDottedNamesAndCarriesTheEcsBasics) {
  Event e("file-restored", Severity::kWarning, 1'700'000'000'123'456'789);
  e.set("file.path", "wp/index.php").set("process.pid", 42).outcome("success");
  const auto j = nlohmann::json::parse(e.to_json_line());
  EXPECT_EQ(j["file"]["path"], "wp/index.php");
  EXPECT_EQ(j["process"]["pid"], 42);
  EXPECT_EQ(j["event"]["action"], "file-restored");
  EXPECT_EQ(j["event"]["kind"], "alert");
  EXPECT_EQ(j["event"]["severity"], 5);
  EXPECT_EQ(j["event"]["outcome"], "success");
  EXPECT_EQ(j["@timestamp"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["event"]["id"].get<std::string>().size(), 32u);
  EXPECT_EQ(e.get("file.path"), "wp/index.php");
  EXPECT_TRUE(e.get("file.missing").is_null());
}

TEST(Event, IdsAreUnique) {
  Event a("x", Severity::kInfo, 0), b("x", Severity::kInfo, 0);
  EXPECT_NE(a.id(), b.id());
}

// The manager's unique (agent, id) index takes an agent's new ids next to its last ones.
TEST(Event, IdsGrowWithTimeAndStartWithTheMillisecond) {
  const auto ms = [] { return static_cast<uint64_t>(SystemClock().now_ns() / 1'000'000); };
  const uint64_t before = ms();
  const std::string first = Event::new_id();
  std::string last = first;
  while (last.substr(0, 12) == first.substr(0, 12)) last = Event::new_id();  // the next ms
  const uint64_t after = ms();
  for (const std::string& id : {first, last}) {
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
  const uint64_t stamped = std::stoull(first.substr(0, 12), nullptr, 16);
  EXPECT_GE(stamped, before);
  EXPECT_LE(stamped, after);
  EXPECT_LT(first, last);
}

TEST(Event, InvalidUtf8StillGivesOneLineOfValidJson) {
  Event e("file-created", Severity::kInfo, 0);
  e.set("file.path", std::string("a\nb\xff\xfe.php"));
  const std::string line = e.to_json_line();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace mamori::event
