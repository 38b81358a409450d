#include "agent/triage/scan_worker.h"

#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <memory>

#include <gtest/gtest.h>

namespace mamori::triage {
namespace {

constexpr std::string_view kRule = R"(
rule test_eval_decoded { strings: $a = "eval(base64_decode(" condition: $a }
)";

UniqueFd file_with(std::string_view content) {
  UniqueFd fd(::memfd_create("scanned", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::write(fd.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  return fd;
}

scan::Scanner make_scanner(scan::Limits limits = {}) {
  return scan::Scanner(scan::RuleSet::compile_text(kRule, "test.yar").value(), limits);
}

TEST(ScanWorker, VerdictsComeBackByIdOffTheCallersThread) {
  auto scanner = make_scanner();
  ScanWorker w(scanner);
  ASSERT_TRUE(w.submit({1, file_with("<?php eval(base64_decode('aWQ=')); ?>"), "shell.php"}));
  ASSERT_TRUE(w.submit({2, file_with("<?php echo 'hello'; ?>"), "clean.php"}));
  UniqueFd pipe_fds[2];
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pipe_fds[0].reset(p[0]);
  pipe_fds[1].reset(p[1]);
  ASSERT_TRUE(w.submit({3, std::move(pipe_fds[0]), "a-fifo"}));  // not a regular file
  EXPECT_EQ(w.outstanding(), 3u);
  w.wait_idle();
  auto done = w.take_done();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(w.outstanding(), 0u);
  std::map<uint64_t, ScanDone*> by_id;
  for (auto& d : done) by_id[d.id] = &d;
  ASSERT_TRUE(by_id[1]->verdict);
  ASSERT_EQ(by_id[1]->verdict->matches->size(), 1u);
  EXPECT_EQ(by_id[1]->verdict->matches->front().rule, "test_eval_decoded");
  ASSERT_TRUE(by_id[2]->verdict);
  EXPECT_FALSE(by_id[2]->verdict->matched());
  EXPECT_FALSE(by_id[3]->verdict);
  EXPECT_NE(by_id[3]->error.find("a-fifo"), std::string::npos) << by_id[3]->error;
  EXPECT_TRUE(w.take_done().empty());
}

TEST(ScanWorker, IsBoundedUntilResultsAreTaken) {
  auto scanner = make_scanner();
  ScanWorker w(scanner, /*max_queued=*/2);
  ASSERT_TRUE(w.submit({1, file_with("a"), "a"}));
  ASSERT_TRUE(w.submit({2, file_with("b"), "b"}));
  // Queued, running or finished but not taken: each holds its place.
  EXPECT_FALSE(w.submit({3, file_with("c"), "c"}));
  EXPECT_EQ(w.refused(), 1u);
  w.wait_idle();
  EXPECT_FALSE(w.submit({4, file_with("d"), "d"}));
  EXPECT_EQ(w.take_done().size(), 2u);
  EXPECT_TRUE(w.submit({5, file_with("e"), "e"}));
  w.wait_idle();
  EXPECT_EQ(w.take_done().size(), 1u);
}

TEST(ScanWorker, StopsWithJobsStillQueued) {
  auto scanner = make_scanner();
  auto w = std::make_unique<ScanWorker>(scanner);
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(w->submit({i, file_with("x"), "x"}));
  w.reset();  // joins after the scan in progress; the rest are dropped, fds closed
}

}  // namespace
}  // namespace mamori::triage
