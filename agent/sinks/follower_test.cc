#include "agent/sinks/follower.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "core/event/event.h"
#include "core/outbox/cursor.h"
#include "core/outbox/format.h"
#include "core/outbox/outbox.h"
#include "testing/temp_dir.h"

namespace mamori::sinks {
namespace {

using namespace std::chrono_literals;

// Records what it is given; fails while `failing` is set. Tests wait on it, not on time.
class RecordingSink final : public Sink {
 public:
  const std::string& name() const override { return name_; }
  Status deliver(std::span<const nlohmann::json> events) override {
    std::lock_guard lock(mu_);
    ++attempts_;
    if (failing_) {
      changed_.notify_all();
      return fail_msg("deliver", "test", "receiver down");
    }
    batches_.emplace_back();
    for (const auto& e : events) {
      ids_.push_back(e["event"]["action"].get<std::string>());
      batches_.back().push_back(ids_.back());
    }
    changed_.notify_all();
    return ok();
  }
  void set_failing(bool failing) {
    std::lock_guard lock(mu_);
    failing_ = failing;
  }
  // Waits (at most 10 s) until `n` events were delivered; returns what was.
  // Deadlines, not delays: generous, since a loaded machine (a CI beside other work) once
  // took more than 10 s for a retry's backoff plus 5,000 deliveries.
  std::vector<std::string> wait_for(size_t n) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, 60s, [&] { return ids_.size() >= n; });
    return ids_;
  }
  int wait_for_attempts(int n) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, 60s, [&] { return attempts_ >= n; });
    return attempts_;
  }
  std::vector<std::vector<std::string>> batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  std::string name_ = "test";
  std::mutex mu_;
  std::condition_variable changed_;
  bool failing_ = false;
  int attempts_ = 0;
  std::vector<std::string> ids_;
  std::vector<std::vector<std::string>> batches_;
};

class FollowerTest : public ::testing::Test {
 protected:
  FollowerTest() { reopen_box(); }
  void reopen_box(outbox::Limits limits = {}) {
    box_.reset();
    box_.emplace(outbox::Outbox::open(env_, {dir_, "", limits}).value());
  }
  void append(const std::string& action, int severity = 5, const std::string& path = "") {
    event::Event e(action, static_cast<event::Severity>(severity), 0);
    if (!path.empty()) e.set("mamori.root", path);
    box_->append(e);
    ASSERT_TRUE(box_->flush());
  }
  std::unique_ptr<Follower> follower(RecordingSink*& sink, config::SinkFilter filter = {},
                                     uint32_t digest_s = 0) {
    auto s = std::make_unique<RecordingSink>();
    sink = s.get();
    FollowerOptions o;
    o.outbox_dir = dir_;
    o.start_sequence = box_->next_sequence();
    o.legacy_cursor_path = tmp_.path() + "/sinks/test.cursor";
    o.legacy_log_path = tmp_.path() + "/events.jsonl";
    o.filter = std::move(filter);
    o.digest_s = digest_s;
    o.first_backoff_ms = 5;
    o.max_backoff_ms = 20;
    auto f = std::make_unique<Follower>(env_, std::move(s), std::move(o));
    f->start();
    return f;
  }

  testing::TempDir tmp_;
  RealEnv env_;
  std::string dir_ = tmp_.path() + "/outbox";
  std::optional<outbox::Outbox> box_;
};

TEST_F(FollowerTest, ANewSinkStartsAtTheEndAndDeliversWhatFollows) {
  append("old");
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  append("b");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(outbox::load_cursor(dir_, "sink.test").value(), 2u) << "registered at start";
}

TEST_F(FollowerTest, ResumesFromItsCursorWithoutLossOrRepeat) {
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  f->stop();
  append("b");   // written while the sink was stopped
  reopen_box();  // and the agent restarted
  f = follower(sink);
  append("c");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"b", "c"}));
}

TEST_F(FollowerTest, RetriesAFailedBatchUntilTheSinkIsBack) {
  RecordingSink* sink;
  auto f = follower(sink);
  sink->set_failing(true);
  append("a");
  f->notify();
  sink->wait_for_attempts(3);
  EXPECT_TRUE(f->stats().failing);
  sink->set_failing(false);
  EXPECT_EQ(sink->wait_for(1), (std::vector<std::string>{"a"}));
  f->stop();
  EXPECT_FALSE(f->stats().failing);
  EXPECT_EQ(f->stats().delivered, 1u);
}

TEST_F(FollowerTest, FiltersBySeverityActionAndRoot) {
  RecordingSink* sink;
  config::SinkFilter filter;
  filter.min_severity = 5;
  filter.roots = {"/www"};
  auto f = follower(sink, filter);
  append("info", 1, "/www");
  append("other-root", 7, "/srv");
  append("no-root", 7);
  append("kept", 5, "/www");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"no-root", "kept"}));
  f->stop();
  EXPECT_EQ(f->stats().filtered, 2u);
}

TEST_F(FollowerTest, WaitsForARecordStillBeingWritten) {
  RecordingSink* sink;
  auto f = follower(sink);
  append("x");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  // The first half of a record, as a reader may see a write in progress.
  std::string record;
  const std::string json = event::Event("late", event::Severity::kWarning, 0).to_json_line();
  outbox::append_record(record, outbox::RecordType::kEvent, 5, 2, json);
  const std::string seg = dir_ + "/" + outbox::segment_name(1);
  std::ofstream(seg, std::ios::app | std::ios::binary) << record.substr(0, 30);
  f->notify();
  std::ofstream(seg, std::ios::app | std::ios::binary) << record.substr(30);
  reopen_box();  // takes the record in: the next is 3
  append("y");
  f->notify();
  EXPECT_EQ(sink->wait_for(3), (std::vector<std::string>{"x", "late", "y"}));
  f->stop();
  EXPECT_EQ(f->stats().skipped_lines, 0u);
  EXPECT_EQ(f->stats().missed, 0u);
}

TEST_F(FollowerTest, ASinkDownForAWeekUnderTheQuotaGetsEveryEventInOrder) {
  reopen_box({.segment_bytes = 64 << 10, .quota_bytes = 64 << 20});
  RecordingSink* sink;
  auto f = follower(sink);
  sink->set_failing(true);
  // A week of events (5,000 of ~1 KiB over ~80 segments) while the receiver is down.
  for (int i = 0; i < 5000; ++i) {
    box_->append(std::move(event::Event("e" + std::to_string(i), event::Severity::kWarning, 0)
                               .set("mamori.path", std::string(1000, 'p'))));
    if (i % 10 == 0) {
      ASSERT_TRUE(box_->flush());
    }
  }
  ASSERT_TRUE(box_->flush());
  f->notify();
  sink->wait_for_attempts(2);
  EXPECT_GT(outbox::list_segments(dir_).value().size(), 50u) << "kept for the cursor";
  sink->set_failing(false);
  const auto got = sink->wait_for(5000);
  ASSERT_EQ(got.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(got[i], "e" + std::to_string(i));
  f->stop();
  EXPECT_EQ(f->stats().missed, 0u);
  // Once delivered, the segments go at the next roll (100 KiB: past one 64 KiB segment).
  for (int i = 0; i < 100; ++i) append("after", 5, std::string(1000, 'p'));
  EXPECT_LE(outbox::list_segments(dir_).value().size(), 3u);
}

TEST_F(FollowerTest, ASinkDownBeyondTheQuotaGetsASinkGapNamingWhatItMissed) {
  reopen_box({.segment_bytes = 16 << 10, .quota_bytes = 64 << 10});
  RecordingSink* sink;
  auto f = follower(sink);
  sink->set_failing(true);
  f->stop();  // down
  for (int i = 0; i < 400; ++i) {
    box_->append(std::move(event::Event("e", event::Severity::kWarning, 0)
                               .set("mamori.path", std::string(1000, 'p'))));
    ASSERT_TRUE(box_->flush());
  }
  ASSERT_GT(box_->quota_dropped(), 0u);
  f = follower(sink);
  f->notify();
  const auto got = sink->wait_for(2);
  ASSERT_FALSE(got.empty());
  f->stop();
  EXPECT_EQ(got.front(), "sink-gap");
  EXPECT_EQ(f->stats().missed, box_->quota_dropped());
  EXPECT_EQ(f->stats().delivered - 1 + f->stats().missed, box_->next_sequence() - 1)
      << "every event is either delivered or counted as missed";
}

TEST_F(FollowerTest, TheCursorOfTheReleaseBeforeIsMigratedWithoutASilentLoss) {
  // The old follower's cursor stood two lines before the end of the old log.
  const std::string log = tmp_.path() + "/events.jsonl";
  std::ofstream(log) << "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  std::filesystem::create_directories(tmp_.path() + "/sinks");
  std::ofstream(tmp_.path() + "/sinks/test.cursor")
      << "mamori-cursor 1 " << st.st_dev << " " << st.st_ino << " 8 8 0\n";
  RecordingSink* sink;
  auto f = follower(sink);
  append("new");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"sink-gap", "new"}));
  f->stop();
  EXPECT_EQ(f->stats().missed, 2u);
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/sinks/test.cursor"));
  // Up to date: no gap at the next upgrade-free start.
  f = follower(sink);
  append("next");
  f->notify();
  EXPECT_EQ(sink->wait_for(1), (std::vector<std::string>{"next"})) << "no second gap";
}

TEST_F(FollowerTest, ADamagedCursorReadsAgainFromTheOldestEvent) {
  append("a");
  append("b");
  std::filesystem::create_directories(dir_ + "/cursors");
  std::ofstream(outbox::cursor_path(dir_, "sink.test")) << "garbage\n";
  RecordingSink* sink;
  auto f = follower(sink);
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"a", "b"}));
  f->stop();
  EXPECT_EQ(f->stats().missed, 0u) << "no gap invented before the first record";
}

TEST_F(FollowerTest, ADigestGathersEventsIntoOneBatch) {
  RecordingSink* sink;
  auto f = follower(sink, {}, /*digest_s=*/1);
  for (int i = 0; i < 50; ++i) append("e" + std::to_string(i));
  f->notify();
  ASSERT_EQ(sink->wait_for(50).size(), 50u);
  EXPECT_EQ(sink->batches().size(), 1u);
}

TEST_F(FollowerTest, StopDeliversWhatADigestIsHolding) {
  RecordingSink* sink;
  auto f = follower(sink, {}, /*digest_s=*/3600);
  append("held");
  f->notify();
  f->stop();
  EXPECT_EQ(sink->wait_for(1), (std::vector<std::string>{"held"}));
}

}  // namespace
}  // namespace mamori::sinks
