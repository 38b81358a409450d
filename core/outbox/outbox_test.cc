#include "core/outbox/outbox.h"

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::outbox {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(Outbox, AppendsOneLinePerEventAndCreatesTheDirectory) {
  testing::TempDir tmp;
  RealEnv env;
  const std::string path = tmp.path() + "/log/dir/events.jsonl";
  auto box = Outbox::open(env, path);
  ASSERT_TRUE(box) << box.error().message();
  box->append(event::Event("a", event::Severity::kInfo, 0));
  box->append(event::Event("b", event::Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["event"]["action"], "b");
  EXPECT_EQ(box->written(), 2u);
}

TEST(Outbox, AFullDiskKeepsTheBatchForTheNextFlush) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(env, path);
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  box->append(event::Event("kept", event::Severity::kWarning, 0));
  auto st = box->flush();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENOSPC);
  EXPECT_EQ(box->queued(), 1u);
  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["event"]["action"], "kept");
}

using event::Event;
using event::Severity;

std::vector<nlohmann::json> events_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const auto& l : lines_of(path)) out.push_back(nlohmann::json::parse(l));  // throws if torn
  return out;
}

// An event about a long path, as an attacker's upload makes them (~1 KiB).
Event file_event(std::string_view action, Severity severity, int i) {
  return std::move(
      Event(action, severity, 0).set("mamori.path", std::to_string(i) + std::string(1000, 'x')));
}

TEST(Outbox, ABurstPastTheSpillSizeIsWrittenNotDropped) {
  testing::TempDir tmp;
  RealEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(env, path, {.spill_bytes = 16 << 10, .max_low_bytes = 32 << 10});
  ASSERT_TRUE(box);
  // 2 MiB of events in one batch, no flush in between: 64 times the memory bound.
  for (int i = 0; i < 2000; ++i) box->append(file_event("file-allowed", Severity::kInfo, i));
  EXPECT_EQ(box->dropped(), 0u);
  EXPECT_LT(box->queued_bytes(), 16u << 10);
  ASSERT_TRUE(box->flush());
  EXPECT_EQ(lines_of(path).size(), 2000u);
}

TEST(Outbox, WhileWritesFailOnlyLowSeverityEventsAreDroppedAndTheDropIsReported) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(env, path, {.spill_bytes = 1 << 20, .max_low_bytes = 16 << 10});
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  // The two security events come first: the oldest, which a FIFO bound dropped first.
  box->append(Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "index.php"));
  box->append(
      Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "wp-blog-header.php"));
  for (int i = 0; i < 200; ++i) {
    box->append(file_event("file-allowed", Severity::kInfo, i));
    if (i % 50 == 0) {
      EXPECT_FALSE(box->flush());
    }
  }
  EXPECT_GT(box->dropped(), 150u);
  EXPECT_EQ(box->dropped_security(), 0u);
  const uint64_t dropped = box->dropped();

  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto events = events_of(path);
  std::set<std::string> repaired;
  uint64_t allowed = 0, reported = 0;
  for (const auto& e : events) {
    const std::string action = e["event"]["action"];
    if (action == "file-repaired") repaired.insert(e["mamori"]["path"].get<std::string>());
    if (action == "file-allowed") ++allowed;
    if (action == "events-dropped") {
      EXPECT_EQ(e["mamori"]["dropped"]["security"], 0);
      EXPECT_EQ(e["event"]["severity"], 5);
      EXPECT_EQ(e["mamori"]["dropped"]["by_action"]["file-allowed"], e["mamori"]["dropped"]["low"]);
      reported += e["mamori"]["dropped"]["low"].get<uint64_t>();
    }
  }
  EXPECT_EQ(repaired, (std::set<std::string>{"index.php", "wp-blog-header.php"}));
  EXPECT_EQ(reported, dropped) << "every drop is reported by an events-dropped event";
  EXPECT_EQ(allowed + dropped, 200u);
  // In order: the security events first, as appended.
  EXPECT_EQ(events.front()["event"]["action"], "file-repaired");
}

TEST(Outbox, SecurityEventsGoOnlyPastTheirOwnLargerBoundAndACriticalEventSaysSo) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(
      env, path,
      {.spill_bytes = 1 << 20, .max_low_bytes = 4 << 10, .max_security_bytes = 64 << 10});
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  for (int i = 0; i < 40; ++i) box->append(file_event("file-restored", Severity::kWarning, i));
  EXPECT_FALSE(box->flush());
  EXPECT_EQ(box->dropped(), 0u) << "40 KiB of security events are kept past the low bound";
  for (int i = 40; i < 100; ++i) box->append(file_event("file-restored", Severity::kWarning, i));
  EXPECT_GT(box->dropped_security(), 0u);
  EXPECT_LE(box->queued_bytes(), 64u << 10);
  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto events = events_of(path);
  const auto& last = events.back();
  ASSERT_EQ(last["event"]["action"], "events-dropped");
  EXPECT_EQ(last["event"]["severity"], 7);
  EXPECT_EQ(last["mamori"]["dropped"]["security"].get<uint64_t>(), box->dropped_security());
  // The newest are kept: the last one appended is there.
  EXPECT_EQ(events[events.size() - 2]["mamori"]["path"].get<std::string>().substr(0, 2), "99");
}

TEST(Outbox, AWriteCutShortByAFullDiskLeavesNoTornLineAndLosesNothing) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(env, path);
  ASSERT_TRUE(box);
  std::set<std::string> ids;
  size_t line_size = 0;
  for (int i = 0; i < 5; ++i) {
    Event e = file_event("file-restored", Severity::kWarning, i);
    line_size = e.to_json_line().size() + 1;
    ids.insert(e.id());
    box->append(e);
  }
  env.room_for_bytes(line_size * 5 / 2);  // two and a half events
  ASSERT_FALSE(box->flush());
  EXPECT_EQ(events_of(path).size(), 2u) << "the torn third line was cut away";
  env.room_for_bytes(~uint64_t{0});
  ASSERT_TRUE(box->flush());
  std::set<std::string> seen;
  for (const auto& e : events_of(path)) seen.insert(e["event"]["id"].get<std::string>());
  EXPECT_EQ(seen, ids);  // the two whole lines appear twice: readers deduplicate on the id
}

TEST(Outbox, ReopenFollowsARotation) {
  testing::TempDir tmp;
  RealEnv env;
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = Outbox::open(env, path);
  ASSERT_TRUE(box);
  box->append(event::Event("old", event::Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  ASSERT_TRUE(box->reopen());
  box->append(event::Event("new", event::Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  EXPECT_EQ(lines_of(path).size(), 1u);
  EXPECT_EQ(lines_of(path + ".1").size(), 1u);
}

}  // namespace
}  // namespace mamori::outbox
