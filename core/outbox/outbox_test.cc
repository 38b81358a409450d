#include "core/outbox/outbox.h"

#include <fstream>
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
