#include "manager/server/event_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "core/db/sqlite.h"
#include "manager/db/event_columns.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

using namespace std::chrono_literals;

// A batch of the one event `seq`, as the channel hands it over.
EventBatch event(int64_t seq) {
  nlohmann::json e;
  e["@timestamp"] = "2026-12-05T01:00:00Z";
  e["event"]["id"] = "id-" + std::to_string(seq);
  e["event"]["sequence"] = seq;
  e["event"]["action"] = "file-restored";
  auto batch = extract_event_batch("k", std::vector<nlohmann::json>{e});
  EXPECT_TRUE(batch) << batch.error().message();
  return batch ? *batch : EventBatch{};
}

// The writer's results, as the io thread would run them (one post may carry many).
class Results {
 public:
  EventWriter::Poster poster() {
    return [](std::function<void()> f) { f(); };
  }
  EventWriter::Done collect(std::vector<Result<InsertResult>>& into) {
    return [this, &into](Result<InsertResult> r) {
      MutexLock lock(mu_);
      into.push_back(std::move(r));
      ++count_;
      cv_.notify_all();
    };
  }
  bool wait_for(size_t n) {
    MutexLock lock(mu_);
    return cv_.wait_for(mu_, 20s, [&]() MAMORI_REQUIRES(mu_) { return count_ >= n; });
  }

 private:
  Mutex mu_;
  CondVar cv_;
  size_t count_ MAMORI_GUARDED_BY(mu_) = 0;
};

class EventWriterTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_store(env_, "sqlite://" + dir_ / "manager.db");
    EXPECT_TRUE(s) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }
  std::unique_ptr<EventWriter> writer(Results& results) {
    return std::make_unique<EventWriter>(
        open(), [this] { return env_.clock().now_ns(); }, results.poster(),
        [](const Error& e) { ADD_FAILURE() << e.message(); });
  }

  RealEnv env_;
  testing::TempDir dir_;
};

TEST_F(EventWriterTest, BatchesWaitingTogetherShareOneCommit) {
  auto reader = open();
  Results results;
  std::vector<Result<InsertResult>> got;
  {
    auto w = writer(results);
    // Another connection holds the write lock: the writer's first transaction waits for
    // it (the busy timeout) while the other 99 batches queue behind.
    auto blocker = db::Db::open(dir_ / "manager.db", db::Db::Mode::kReadWrite);
    ASSERT_TRUE(blocker) << blocker.error().message();
    ASSERT_TRUE(blocker->begin());
    for (int64_t i = 1; i <= 100; ++i)
      w->submit("agent-" + std::to_string(i % 7), event(i), results.collect(got));
    EXPECT_EQ(w->queued().events, 100u);
    EXPECT_GT(w->queued().bytes, 100 * sizeof(EventColumns));
    ASSERT_TRUE(blocker->commit());
    ASSERT_TRUE(results.wait_for(100));
    EXPECT_LE(w->commits(), 2u) << "one commit per group, not per batch";
    EXPECT_EQ(w->queued().events, 0u);
    EXPECT_EQ(w->queued().bytes, 0u) << "counted out as it was counted in";
  }
  ASSERT_EQ(got.size(), 100u);
  for (const auto& r : got) EXPECT_TRUE(r && r->inserted == 1);
  EXPECT_EQ(reader->query_events({})->size(), 100u);
}

TEST_F(EventWriterTest, WhatIsQueuedAtTheEndIsStoredBeforeItReturns) {
  auto reader = open();
  Results results;
  std::vector<Result<InsertResult>> got;
  {
    auto w = writer(results);
    for (int64_t i = 1; i <= 50; ++i) w->submit("a", event(i), results.collect(got));
  }
  EXPECT_EQ(got.size(), 50u);
  EXPECT_EQ(reader->sequences("a")->contiguous_through, 50);
}

TEST_F(EventWriterTest, LastSeenMarksAreWrittenWithoutBatches) {
  auto reader = open();
  NewAgent a;
  a.agent_key = "a";
  a.credential_hash = sha256_hex("c");
  a.info.roots_json = "[]";
  ASSERT_TRUE(reader->create_agent(a));
  Results results;
  auto w = writer(results);
  w->note_seen("a", 5'000);
  w->note_seen("a", 7'000);
  w->note_seen("a", 6'000);  // late: never moves it back
  const int64_t deadline = env_.clock().monotonic_ns() + 10'000'000'000;
  while ((*reader->find_agent("a"))->last_seen_ns == 0 && env_.clock().monotonic_ns() < deadline)
    env_.clock().wait(10ms);
  EXPECT_EQ((*reader->find_agent("a"))->last_seen_ns, 7'000);
  EXPECT_EQ(w->commits(), 1u);
}

}  // namespace
}  // namespace mamori::manager
