#include "manager/db/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/db/sqlite.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

constexpr int64_t kSec = 1'000'000'000;

nlohmann::json event(int64_t seq, std::string action = "file-restored",
                     std::string path = "/var/www/index.php", std::string ip = "",
                     int64_t severity = 3) {
  nlohmann::json e;
  e["@timestamp"] = "2023-11-14T22:13:" + std::to_string(10 + seq % 40) + ".500000Z";
  e["event"]["id"] = "id-" + std::to_string(seq);
  e["event"]["sequence"] = seq;
  e["event"]["action"] = action;
  e["event"]["severity"] = severity;
  e["file"]["path"] = path;
  if (!ip.empty()) e["source"]["ip"] = ip;
  return e;
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_store(env_, url());
    EXPECT_TRUE(s) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }
  std::string url() const { return "sqlite://" + dir_ / "manager.db"; }
  NewAgent agent(std::string key) {
    NewAgent a;
    a.agent_key = std::move(key);
    a.credential_hash = sha256_hex("cred-" + a.agent_key);
    a.group = "web";
    a.info.hostname = "h1";
    a.info.roots_json = R"([{"path":"/var/www","mode":"restore"}])";
    a.enrolled_at_ns = 100;
    return a;
  }
  RealEnv env_;
  testing::TempDir dir_;
};

TEST_F(StoreTest, Sha256HexIsTheDigestOfTheSecret) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(StoreTest, InsertIsIdempotentEvenReplayedOutOfOrder) {
  auto s = open();
  std::vector<nlohmann::json> batch;
  for (int64_t i = 1; i <= 10; ++i) batch.push_back(event(i));
  auto r = s->insert_events("k1", batch, 5);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->inserted, 10);
  EXPECT_EQ(r->max_sequence, 10);
  auto again = s->insert_events("k1", batch, 6);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->inserted, 0);
  EXPECT_EQ(again->duplicates, 10);
  std::reverse(batch.begin(), batch.end());
  batch.push_back(event(11));
  auto rev = s->insert_events("k1", batch, 7);
  ASSERT_TRUE(rev);
  EXPECT_EQ(rev->inserted, 1);
  EXPECT_EQ(rev->duplicates, 10);
  EXPECT_EQ(s->query_events({})->size(), 11u);
  // The same event id under another agent key is another event.
  EXPECT_EQ(s->insert_events("k2", {event(1)}, 8)->inserted, 1);
}

TEST_F(StoreTest, ContiguousSequenceWaitsForTheGap) {
  auto s = open();
  ASSERT_TRUE(s->insert_events("k", {event(1), event(2)}, 1));
  ASSERT_TRUE(s->insert_events("k", {event(5), event(6)}, 1));
  auto q = s->sequences("k");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->max_sequence, 6);
  EXPECT_EQ(q->contiguous_through, 2);
  ASSERT_TRUE(s->insert_events("k", {event(4), event(3)}, 1));
  EXPECT_EQ(s->sequences("k")->contiguous_through, 6);
  EXPECT_EQ(s->sequences("none")->max_sequence, 0);
}

TEST_F(StoreTest, MalformedEventFailsTheWholeBatch) {
  auto s = open();
  nlohmann::json no_id = event(2);
  no_id["event"].erase("id");
  auto r = s->insert_events("k", {event(1), no_id}, 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("event 1: event.id"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(s->query_events({})->empty()) << "nothing of the batch stored";
  nlohmann::json bad_time = event(3);
  bad_time["@timestamp"] = "yesterday";
  EXPECT_FALSE(s->insert_events("k", {bad_time}, 1));
  nlohmann::json zero_seq = event(3);
  zero_seq["event"]["sequence"] = 0;
  EXPECT_FALSE(s->insert_events("k", {zero_seq}, 1));
  std::vector<nlohmann::json> huge(10001, event(1));
  EXPECT_FALSE(s->insert_events("k", huge, 1)) << "a batch is capped";
}

TEST_F(StoreTest, TokenConsumeRefusesRevokedExpiredUsedUp) {
  auto s = open();
  auto once = s->create_token({sha256_hex("once"), "web", 1, std::nullopt, 1});
  auto expiring = s->create_token({sha256_hex("exp"), "db", std::nullopt, 50 * kSec, 1});
  auto revoked = s->create_token({sha256_hex("rev"), "web", std::nullopt, std::nullopt, 1});
  ASSERT_TRUE(once && expiring && revoked);
  ASSERT_TRUE(*s->revoke_token(*revoked));
  EXPECT_FALSE(*s->revoke_token(9999));

  auto v = s->consume_token(sha256_hex("once"), 10 * kSec);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->accepted());
  EXPECT_EQ(v->group, "web");
  EXPECT_EQ(v->token_id, *once);
  EXPECT_EQ(s->consume_token(sha256_hex("once"), 10 * kSec)->refusal, TokenRefusal::kUsedUp);
  EXPECT_TRUE(s->consume_token(sha256_hex("exp"), 49 * kSec)->accepted());
  EXPECT_EQ(s->consume_token(sha256_hex("exp"), 50 * kSec)->refusal, TokenRefusal::kExpired);
  EXPECT_EQ(s->consume_token(sha256_hex("rev"), 1)->refusal, TokenRefusal::kRevoked);
  EXPECT_EQ(s->consume_token(sha256_hex("nope"), 1)->refusal, TokenRefusal::kUnknown);
  EXPECT_EQ(to_string(TokenRefusal::kUsedUp), "used-up");

  auto list = s->list_tokens();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].uses_left, 0);
  EXPECT_EQ((*list)[0].used, 1);
  EXPECT_EQ((*list)[1].uses_left, std::nullopt);
  EXPECT_TRUE((*list)[2].revoked);
}

TEST_F(StoreTest, OneUseTokenRacedFromTwoConnectionsHasOneWinner) {
  { ASSERT_TRUE(open()->create_token({sha256_hex("t"), "g", 1, std::nullopt, 1})); }
  for (int round = 0; round < 20; ++round) {
    if (round > 0) {
      ASSERT_TRUE(
          open()->create_token({sha256_hex("t" + std::to_string(round)), "g", 1, std::nullopt, 1}));
    }
    const std::string secret = round == 0 ? "t" : "t" + std::to_string(round);
    auto a = open(), b = open();
    std::atomic<int> wins{0}, errors{0};
    std::atomic<bool> go{false};
    auto race = [&](Store* st, std::string key) {
      while (!go.load()) {
      }
      NewAgent na = agent(key);
      auto v = st->enroll(sha256_hex(secret), na, 10);
      if (!v)
        ++errors;
      else if (v->accepted())
        ++wins;
    };
    std::thread ta(race, a.get(), "a" + std::to_string(round));
    std::thread tb(race, b.get(), "b" + std::to_string(round));
    go = true;
    ta.join();
    tb.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(wins.load(), 1) << "round " << round;
  }
  EXPECT_EQ(open()->list_agents()->size(), 20u);
}

TEST_F(StoreTest, EnrollRefusedCreatesNoAgent) {
  auto s = open();
  auto v = s->enroll(sha256_hex("unknown"), agent("k"), 1);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->refusal, TokenRefusal::kUnknown);
  EXPECT_FALSE(s->find_agent("k")->has_value());
}

TEST_F(StoreTest, AgentStatusTransitions) {
  auto s = open();
  ASSERT_TRUE(s->create_token({sha256_hex("t"), "web", std::nullopt, std::nullopt, 1}));
  auto v = s->enroll(sha256_hex("t"), agent("k"), 100);
  ASSERT_TRUE(v && v->accepted());
  EXPECT_FALSE(s->create_agent(agent("k"))) << "agent_key is unique";
  auto row = s->find_agent("k");
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->status, AgentStatus::kEnrolled);
  EXPECT_EQ((*row)->group, "web");
  EXPECT_EQ((*row)->credential_hash, sha256_hex("cred-k"));

  AgentInfo info = agent("k").info;
  info.version = "0.2";
  EXPECT_EQ(*s->agent_hello("k", info, 200), AgentStatus::kEnrolled);
  ASSERT_TRUE(s->touch_agent("k", 250));
  EXPECT_EQ(*s->set_agent_status("k", AgentStatus::kLost, 300), AgentStatus::kOnline);
  EXPECT_EQ(*s->agent_hello("k", info, 400), AgentStatus::kLost) << "a recovery";
  EXPECT_EQ(*s->set_agent_status("k", AgentStatus::kStopped, 500), AgentStatus::kOnline);
  row = s->find_agent("k");
  EXPECT_EQ((*row)->status, AgentStatus::kStopped);
  EXPECT_EQ((*row)->status_since_ns, 500);
  EXPECT_EQ((*row)->last_seen_ns, 400);
  EXPECT_EQ((*row)->last_hello_ns, 400);
  EXPECT_EQ((*row)->info.version, "0.2");

  auto missing = s->touch_agent("zz", 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errnum, ENOENT);
  EXPECT_FALSE(s->set_agent_status("zz", AgentStatus::kLost, 1));
  EXPECT_FALSE(s->agent_hello("zz", info, 1));
  EXPECT_EQ(parse_agent_status("retired"), AgentStatus::kRetired);
  EXPECT_EQ(parse_agent_status("bogus"), std::nullopt);
}

TEST_F(StoreTest, QueryFilters) {
  auto s = open();
  ASSERT_TRUE(s->insert_events(
      "a",
      {event(1, "file-restored", "/var/www/a.php"), event(2, "ip-banned", "", "203.0.113.7", 7),
       event(3, "file-restored", "/srv/x")},
      1));
  ASSERT_TRUE(s->insert_events("b", {event(1, "file-restored", "/var/www/b.php")}, 1));
  auto n = [&](EventQuery q) {
    auto r = s->query_events(q);
    EXPECT_TRUE(r);
    return r ? r->size() : 999u;
  };
  EXPECT_EQ(n({.agent_key = "a"}), 3u);
  EXPECT_EQ(n({.action = "file-restored"}), 3u);
  EXPECT_EQ(n({.path_prefix = "/var/www/"}), 2u);
  EXPECT_EQ(n({.path_prefix = "/var/www/%"}), 0u) << "the prefix is literal";
  EXPECT_EQ(n({.source_ip = "203.0.113.7"}), 1u);
  EXPECT_EQ(n({.min_severity = 5}), 1u);
  EXPECT_EQ(n({.agent_key = "a", .action = "file-restored"}), 2u);
  EXPECT_EQ(n({.agent_key = "a", .min_sequence = 2}), 2u);
  EXPECT_EQ(n({.agent_key = "a", .min_sequence = 4}), 0u);
  // event(2)'s @timestamp is 22:13:12.5 on 2023-11-14.
  const int64_t t2 = 1700000000LL * kSec - 8 * kSec + 500'000'000;
  auto at = s->query_events({.agent_key = "a", .since_ns = t2, .until_ns = t2 + 1});
  ASSERT_TRUE(at);
  ASSERT_EQ(at->size(), 1u);
  EXPECT_EQ((*at)[0].sequence, 2);
  EXPECT_EQ((*at)[0].time_ns, t2);
  EXPECT_EQ(nlohmann::json::parse((*at)[0].json)["source"]["ip"], "203.0.113.7");
  auto page = s->query_events({.limit = 2});
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ(n({.after_row = (*page)[1].row}), 2u);
}

TEST_F(StoreTest, ReopenKeepsData) {
  {
    auto s = open();
    ASSERT_TRUE(s->create_agent(agent("k")));
    ASSERT_TRUE(s->insert_events("k", {event(1), event(2)}, 1));
    ASSERT_TRUE(s->record_baseline({"k", "aa", 5, true}));
    ASSERT_TRUE(s->record_baseline({"k", "bb", 6, false}));
  }
  auto s = open();
  EXPECT_TRUE(s->find_agent("k")->has_value());
  EXPECT_EQ(s->query_events({})->size(), 2u);
  EXPECT_EQ(s->sequences("k")->contiguous_through, 2);
  auto h = s->baseline_history("k");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[1].root_hash, "bb");
  EXPECT_FALSE((*h)[1].expected);
}

TEST_F(StoreTest, RetentionCapsAndUsage) {
  auto s = open();
  std::vector<nlohmann::json> old, recent;
  for (int64_t i = 1; i <= 5; ++i) old.push_back(event(i));
  for (int64_t i = 6; i <= 10; ++i) recent.push_back(event(i));
  ASSERT_TRUE(s->insert_events("a", old, 100 * kSec));
  ASSERT_TRUE(s->insert_events("a", recent, 200 * kSec));
  ASSERT_TRUE(s->insert_events("b", {event(1)}, 100 * kSec));
  auto u = s->usage();
  ASSERT_TRUE(u);
  ASSERT_EQ(u->size(), 2u);
  EXPECT_EQ((*u)[0].events, 10);
  EXPECT_GT((*u)[0].json_bytes, 10 * 50);

  EXPECT_EQ(*s->prune({.max_age_ns = 50 * kSec}, 210 * kSec), 6) << "a's 5 old and b's 1";
  EXPECT_EQ(*s->prune({.max_events_per_agent = 3}, 210 * kSec), 2);
  auto left = s->query_events({});
  ASSERT_EQ(left->size(), 3u);
  EXPECT_EQ((*left)[0].sequence, 8) << "the newest stay";
  EXPECT_EQ(s->sequences("a")->contiguous_through, 10) << "retention keeps the high-water mark";
}

TEST_F(StoreTest, NotAnSqliteFileIsAClearError) {
  dir_.write("manager.db", std::string(8192, 'x'), 0600);
  auto s = open_store(env_, url());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not an SQLite database"), std::string::npos)
      << s.error().message();
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  { ASSERT_TRUE(open()); }
  {
    auto db = db::Db::open(dir_ / "manager.db", db::Db::Mode::kReadWrite);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("UPDATE schema_version SET version = 99"));
  }
  auto s = open_store(env_, url());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("schema version 99 is newer"), std::string::npos)
      << s.error().message();
}

TEST_F(StoreTest, BadUrlsAreRefused) {
  EXPECT_FALSE(open_store(env_, "postgres://x/y"));
  EXPECT_FALSE(open_store(env_, "sqlite://relative.db"));
  EXPECT_FALSE(open_store(env_, dir_ / "manager.db"));
}

TEST_F(StoreTest, BansArePushedOnceAndLiftedOnce) {
  auto s = open();
  // The manager's own record of an agent's ban: pushed already.
  auto a = s->add_ban({"192.0.2.7", 100 * kSec, "scanner", "agent-1", 10 * kSec, true});
  ASSERT_TRUE(a);
  // `mamori manager ban`: for the manager to push.
  auto b = s->add_ban({"192.0.2.8", 0, "by hand", "manager", 11 * kSec, false});
  ASSERT_TRUE(b);
  auto todo = s->unpushed_bans(100);
  ASSERT_TRUE(todo);
  ASSERT_EQ(todo->size(), 1u);
  EXPECT_EQ((*todo)[0].id, *b);
  EXPECT_EQ((*todo)[0].address, "192.0.2.8");
  ASSERT_TRUE(s->mark_ban_pushed(*b, false));
  EXPECT_TRUE(s->unpushed_bans(100)->empty());

  auto active = s->active_bans(50 * kSec, 100);
  ASSERT_TRUE(active);
  EXPECT_EQ(active->size(), 2u);
  EXPECT_EQ(s->active_bans(200 * kSec, 100)->size(), 1u);  // the first expired; b is permanent

  auto held = s->find_active_ban("192.0.2.8", 50 * kSec);
  ASSERT_TRUE(held && *held);
  EXPECT_EQ((*held)->id, *b);
  EXPECT_FALSE(*s->find_active_ban("192.0.2.7", 200 * kSec));  // expired

  EXPECT_EQ(*s->lift_bans("192.0.2.8", 60 * kSec), 1);
  EXPECT_FALSE(*s->find_active_ban("192.0.2.8", 61 * kSec));
  EXPECT_EQ(*s->lift_bans("192.0.2.8", 61 * kSec), 0);  // lifted already
  todo = s->unpushed_bans(100);
  ASSERT_EQ(todo->size(), 1u);
  EXPECT_EQ((*todo)[0].lifted_at_ns, 60 * kSec);
  ASSERT_TRUE(s->mark_ban_pushed(*b, true));
  EXPECT_TRUE(s->unpushed_bans(100)->empty());
  EXPECT_EQ(s->active_bans(60 * kSec, 100)->size(), 1u);
}

TEST_F(StoreTest, CommandsGoPendingSentAnswered) {
  auto s = open();
  auto id = s->add_command({"c-1", "agent-1", R"({"v":2,"cmd":"verify"})", 5});
  ASSERT_TRUE(id);
  ASSERT_TRUE(s->add_command({"c-2", "agent-2", R"({"v":2,"cmd":"verify"})", 6}));
  EXPECT_EQ(s->pending_commands(std::nullopt, 100)->size(), 2u);
  auto mine = s->pending_commands(std::string("agent-1"), 100);
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].command_id, "c-1");
  ASSERT_TRUE(s->mark_command_sent("c-1", 7));
  EXPECT_TRUE(s->pending_commands(std::string("agent-1"), 100)->empty());
  // Another agent cannot answer for agent-1.
  EXPECT_FALSE(*s->record_answer("agent-2", "c-1", "{}", CommandState::kOk, 8));
  EXPECT_TRUE(*s->record_answer("agent-1", "c-1", R"({"ok":true})", CommandState::kOk, 9));
  auto row = s->find_command(*id);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->state, CommandState::kOk);
  EXPECT_EQ((*row)->sent_at_ns, 7);
  EXPECT_EQ((*row)->answered_at_ns, 9);
  EXPECT_EQ((*row)->answer_json, R"({"ok":true})");
  EXPECT_EQ(s->list_commands(*id, std::nullopt, 100)->size(), 1u);  // after c-1: c-2
  EXPECT_EQ(s->list_commands(0, std::string("agent-2"), 100)->size(), 1u);
}

TEST_F(StoreTest, ChangeCounterMovesWithAnotherConnectionsCommits) {
  auto manager = open();
  auto cli = open();
  const int64_t before = *manager->change_counter();
  ASSERT_TRUE(manager->add_ban({"192.0.2.1", 0, "", "manager", 1, true}));
  EXPECT_EQ(*manager->change_counter(), before);  // its own write: nothing to read
  ASSERT_TRUE(cli->add_ban({"192.0.2.2", 0, "", "manager", 2, false}));
  EXPECT_NE(*manager->change_counter(), before);
}

}  // namespace
}  // namespace mamori::manager
