#include "agent/app/async_publisher.h"

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::agent {
namespace {

using event::Event;
using event::Severity;

std::vector<nlohmann::json> events_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Counts on_written calls; wait_for() blocks until the writer says so (the deadline
// only turns a hang into a failure).
struct Written {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0;
  std::vector<std::string> errors;
  void hit() {
    std::lock_guard lock(mu);
    ++n;
    cv.notify_all();
  }
  bool wait_for(int at_least) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return n >= at_least; });
  }
};

TEST(AsyncPublisher, AFloodOfLowSeverityEventsIsWrittenWholeInOrderBehindTheSecurityOnes) {
  testing::TempDir tmp;
  RealEnv env;
  const event::Origin origin({"0e0a1b2c-0000-4000-8000-000000000000", "test", "0.0.0", "h", "h"},
                             env.clock());
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = outbox::Outbox::open(env, {tmp.path() + "/outbox", path, {}});
  ASSERT_TRUE(box);
  Written written;
  {
    AsyncPublisher pub(
        *box, origin, [&](const Error& e) { written.errors.push_back(e.message()); },
        [&] { written.hit(); });
    std::vector<Event> first;
    first.push_back(
        std::move(Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "a")));
    ASSERT_TRUE(pub.publish(std::move(first), {}));
    // 24,000 events of ~4 KiB: ~100 MiB, past the outbox's 64 MiB bound for them, in
    // batches as the guard's verify publishes them.
    const std::string long_path(4000, 'x');
    for (int b = 0; b < 24; ++b) {
      std::vector<Event> batch;
      for (int i = 0; i < 1000; ++i)
        batch.push_back(
            std::move(Event("file-allowed", Severity::kInfo, 0)
                          .set("mamori.path", std::to_string(b * 1000 + i) + long_path)));
      ASSERT_TRUE(pub.publish(std::move(batch), {}));
    }
    pub.drain();
    EXPECT_EQ(pub.dropped(), 0u);
  }
  EXPECT_TRUE(written.errors.empty());
  const auto events = events_of(path);
  ASSERT_EQ(events.size(), 24001u);
  EXPECT_EQ(events[0]["event"]["action"], "file-repaired");
  for (size_t i = 1; i < events.size(); ++i)
    ASSERT_EQ(
        events[i]["mamori"]["path"].get<std::string>().substr(0, std::to_string(i - 1).size()),
        std::to_string(i - 1));
}

TEST(AsyncPublisher, EventsKeptThroughAFullDiskAreWrittenOnceSpaceReturnsWithoutANewEvent) {
  testing::TempDir tmp;
  testing::FaultEnv env;
  const event::Origin origin({"0e0a1b2c-0000-4000-8000-000000000000", "test", "0.0.0", "h", "h"},
                             env.clock());
  const std::string path = tmp.path() + "/events.jsonl";
  auto box = outbox::Outbox::open(env, {tmp.path() + "/outbox", path, {}});
  ASSERT_TRUE(box);
  Written written;
  std::mutex errors_mu;
  std::condition_variable failed_cv;
  int failures = 0;
  env.fail_write_from(1, ENOSPC);
  AsyncPublisher pub(
      *box, origin,
      [&](const Error&) {
        std::lock_guard lock(errors_mu);
        ++failures;
        failed_cv.notify_all();
      },
      [&] { written.hit(); });
  std::vector<Event> batch;
  batch.push_back(Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "index.php"));
  ASSERT_TRUE(pub.publish(std::move(batch), {}));
  {
    std::unique_lock lock(errors_mu);
    ASSERT_TRUE(failed_cv.wait_for(lock, std::chrono::seconds(30), [&] { return failures > 0; }));
  }
  EXPECT_TRUE(events_of(path).empty());
  env.fail_write_from(0);  // space again; nothing else is published
  ASSERT_TRUE(written.wait_for(1)) << "the kept event was never retried";
  const auto events = events_of(path);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["mamori"]["path"], "index.php");
  EXPECT_EQ(failures, 1) << "one error per outage, not one per retry";
}

}  // namespace
}  // namespace mamori::agent
