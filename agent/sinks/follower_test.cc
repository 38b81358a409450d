#include "agent/sinks/follower.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "core/event/event.h"
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
  std::vector<std::string> wait_for(size_t n) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, 10s, [&] { return ids_.size() >= n; });
    return ids_;
  }
  int wait_for_attempts(int n) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, 10s, [&] { return attempts_ >= n; });
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
  void append(const std::string& action, int severity = 5, const std::string& path = "") {
    event::Event e(action, static_cast<event::Severity>(severity), 0);
    if (!path.empty()) e.set("mamori.root", path);
    append_raw(e.to_json_line() + "\n");
  }
  void append_raw(const std::string& bytes) {
    std::ofstream out(log_, std::ios::app | std::ios::binary);
    out << bytes;
  }
  std::unique_ptr<Follower> follower(RecordingSink*& sink, config::SinkFilter filter = {},
                                     uint32_t digest_s = 0) {
    auto s = std::make_unique<RecordingSink>();
    sink = s.get();
    FollowerOptions o;
    o.outbox_path = log_;
    o.cursor_path = tmp_.path() + "/test.cursor";
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
  std::string log_ = tmp_.path() + "/events.jsonl";
};

TEST_F(FollowerTest, ANewSinkStartsAtTheEndAndDeliversWhatFollows) {
  append("old");
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  append("b");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"a", "b"}));
}

TEST_F(FollowerTest, ResumesFromItsCursorWithoutLossOrRepeat) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  f->stop();
  append("b");  // written while the sink was stopped
  f = follower(sink);
  append("c");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"b", "c"}));
}

TEST_F(FollowerTest, RetriesAFailedBatchUntilTheSinkIsBack) {
  append_raw("");
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
  append_raw("");
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

TEST_F(FollowerTest, SkipsGarbageAndWaitsForAHalfWrittenLine) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink);
  append_raw("not json\n\x01\x02\xff\n");
  append("x");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  // A line whose end is not written yet is neither garbage nor an event: wait for it.
  const std::string line = event::Event("late", event::Severity::kWarning, 0).to_json_line() + "\n";
  append_raw(line.substr(0, 10));
  f->notify();
  append_raw(line.substr(10));
  append("y");
  f->notify();
  EXPECT_EQ(sink->wait_for(3), (std::vector<std::string>{"x", "late", "y"}));
  f->stop();
  EXPECT_EQ(f->stats().skipped_lines, 2u);
}

TEST_F(FollowerTest, FollowsARotationOnlyAfterTheAgentReopens) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink);
  append("before");
  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  // The agent has not reopened yet: its next batch still lands in the old file.
  std::ofstream(log_ + ".1", std::ios::app)
      << event::Event("late-old", event::Severity::kWarning, 0).to_json_line() << "\n";
  append("new");
  f->notify();
  ASSERT_EQ(sink->wait_for(2).size(), 2u);
  f->outbox_reopened();
  EXPECT_EQ(sink->wait_for(3), (std::vector<std::string>{"before", "late-old", "new"}));
}

TEST_F(FollowerTest, ReadsATruncatedFileFromTheStart) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  std::ofstream(log_, std::ios::trunc).close();  // copytruncate
  append("b");
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"a", "b"}));
}

TEST_F(FollowerTest, FinishesAFileRotatedWhileItWasStopped) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink);
  append("a");
  f->notify();
  ASSERT_EQ(sink->wait_for(1).size(), 1u);
  f->stop();
  append("b");
  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  append("c");
  f = follower(sink);
  f->notify();
  EXPECT_EQ(sink->wait_for(2), (std::vector<std::string>{"b", "c"}));
}

TEST_F(FollowerTest, ADigestGathersEventsIntoOneBatch) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink, {}, /*digest_s=*/1);
  for (int i = 0; i < 50; ++i) append("e" + std::to_string(i));
  f->notify();
  ASSERT_EQ(sink->wait_for(50).size(), 50u);
  EXPECT_EQ(sink->batches().size(), 1u);
}

TEST_F(FollowerTest, StopDeliversWhatADigestIsHolding) {
  append_raw("");
  RecordingSink* sink;
  auto f = follower(sink, {}, /*digest_s=*/3600);
  append("held");
  f->notify();
  f->stop();
  EXPECT_EQ(sink->wait_for(1), (std::vector<std::string>{"held"}));
}

}  // namespace
}  // namespace mamori::sinks
