#include "manager/server/store_calls.h"

#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

using nlohmann::json;

json event(uint64_t seq, const std::string& id, const std::string& action = "file-restored") {
  return {{"event", {{"id", id}, {"sequence", seq}, {"action", action}}}};
}

class StoreCalls : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = open_store_url(env_, "sqlite://" + dir_ / "m.db");
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  testing::TempDir dir_;
  RealEnv env_;
  StorePtr store_;
};

TEST_F(StoreCalls, OnlySqliteUrls) {
  EXPECT_FALSE(open_store_url(env_, "postgres://x/y"));
  EXPECT_FALSE(open_store_url(env_, "sqlite://relative.db"));
}

TEST_F(StoreCalls, TokensAreConsumedAtomicallyAndRefusedWithTheirReason) {
  auto once = create_token(*store_, "h1", "web", 1, std::nullopt, 100);
  auto expiring = create_token(*store_, "h2", "db", std::nullopt, 500, 100);
  auto revoked = create_token(*store_, "h3", "x", std::nullopt, std::nullopt, 100);
  ASSERT_TRUE(once && expiring && revoked);
  ASSERT_TRUE(revoke_token(*store_, *revoked).value());
  EXPECT_FALSE(revoke_token(*store_, 999).value());

  auto v = consume_token(*store_, "h1", 200).value();
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.group, "web");
  v = consume_token(*store_, "h1", 200).value();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.why, "the token is used up");
  EXPECT_TRUE(consume_token(*store_, "h2", 499).value().ok);
  EXPECT_EQ(consume_token(*store_, "h2", 500).value().why, "the token expired");
  EXPECT_EQ(consume_token(*store_, "h3", 200).value().why, "the token was revoked");
  EXPECT_EQ(consume_token(*store_, "nope", 200).value().why, "unknown token");

  auto tokens = list_tokens(*store_).value();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0].uses_left, 0);
  EXPECT_EQ(tokens[1].uses_left, std::nullopt);
  EXPECT_EQ(tokens[1].expires_at_ns, 500);
  EXPECT_TRUE(tokens[2].revoked);
}

TEST_F(StoreCalls, EventsAreStoredOncePerId) {
  AgentRow a;
  a.agent_key = "k1";
  a.credential_hash = "c";
  ASSERT_TRUE(create_agent(*store_, a));
  EXPECT_EQ(insert_events(*store_, "k1", {event(1, "a"), event(2, "b")}, 10).value(), 2u);
  EXPECT_EQ(insert_events(*store_, "k1", {event(1, "a"), event(2, "b"), event(3, "c")}, 11).value(),
            1u);
  // The same event.id of another agent is another event.
  EXPECT_EQ(insert_events(*store_, "k2", {event(1, "a")}, 12).value(), 1u);
  EXPECT_EQ(count_events(*store_, "k1").value(), 3u);
  EXPECT_EQ(count_events(*store_, "k2").value(), 1u);
}

TEST_F(StoreCalls, AgentsStatusAndBaselines) {
  AgentRow a;
  a.agent_key = "k1";
  a.credential_hash = "c";
  a.group = "web";
  a.enrolled_at_ns = 5;
  ASSERT_TRUE(create_agent(*store_, a));
  auto found = find_agent(*store_, "k1").value();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, kStatusEnrolled);
  EXPECT_FALSE(find_agent(*store_, "k2").value());
  ASSERT_TRUE(record_hello(*store_, "k1", {"id", "web1", "1.0", "h", "[]", "aa", 20, "1.2.3.4"}));
  EXPECT_EQ(find_agent(*store_, "k1").value()->status, kStatusOnline);
  ASSERT_TRUE(set_status(*store_, "k1", kStatusLost, 30));
  auto agents = list_agents(*store_).value();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].status, kStatusLost);
  EXPECT_EQ(agents[0].last_seen_ns, 30);
  EXPECT_EQ(agents[0].name, "web1");

  EXPECT_FALSE(last_baseline(*store_, "k1").value());
  ASSERT_TRUE(record_baseline(*store_, "k1", "aa", 40, true));
  ASSERT_TRUE(record_baseline(*store_, "k1", "bb", 50, false));
  EXPECT_EQ(last_baseline(*store_, "k1").value()->hash, "bb");
  EXPECT_FALSE(deploy_or_accept_since(*store_, "k1", 50).value());
  ASSERT_TRUE(insert_events(*store_, "k1", {event(9, "d", "deploy-ended")}, 60));
  EXPECT_TRUE(deploy_or_accept_since(*store_, "k1", 50).value());
  EXPECT_FALSE(deploy_or_accept_since(*store_, "k1", 61).value());
}

}  // namespace
}  // namespace mamori::manager
