// The Store contract, run against every implementation (a value-parameterized suite
// over the backend). SQLite always runs. PostgreSQL runs only when
// MAMORI_TEST_POSTGRES_URL names a server (postgresql://user:password@HOST:PORT/db, TCP
// with a password, the user owning db and not a superuser):
// tests/integration/manager_postgres_store_test.sh starts a throwaway one and sets it.
// Without the variable the PostgreSQL instances are not generated at all (not skipped),
// so they cannot pass without having run; that script fails if none ran. Each
// PostgreSQL test works in a schema of its own, dropped afterwards.

#include "manager/db/store.h"
#include "manager/db/decoys.h"
#include "manager/db/event_columns.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <thread>

#include "core/db/sqlite.h"
#include "manager/db/pg.h"
#include "manager/db/postgres_store.h"
#include "manager/db/sqlite_store.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr char kPostgresUrlVar[] = "MAMORI_TEST_POSTGRES_URL";

std::string postgres_base_url() {
  const char* u = std::getenv(kPostgresUrlVar);
  return u ? u : "";
}

std::vector<std::string> postgres_backends() {
  if (postgres_base_url().empty()) return {};
  return {"postgresql"};
}

// `url` with more query parameters.
std::string with_params(const std::string& url, const std::string& params) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + params;
}

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

std::vector<nlohmann::json> events(int64_t from, int64_t through) {
  std::vector<nlohmann::json> out;
  for (int64_t i = from; i <= through; ++i) out.push_back(event(i));
  return out;
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!postgres()) return;
    static std::atomic<int> n{0};
    schema_ = "mamori_test_" + std::to_string(getpid()) + "_" + std::to_string(++n);
    auto c = pg::Conn::connect(postgres_base_url());
    ASSERT_TRUE(c) << c.error().message();
    admin_.emplace(std::move(*c));
    admin("CREATE SCHEMA " + schema_);
    admin("SET search_path TO " + schema_);
  }
  void TearDown() override {
    if (admin_) admin("DROP SCHEMA " + schema_ + " CASCADE");
  }

  bool postgres() const { return GetParam() == "postgresql"; }
  // The test's own database: a file in a temporary directory, or a schema of its own
  // (also the application_name of its connections, to find them in pg_stat_activity).
  std::string url() const {
    if (!postgres()) return "sqlite://" + dir_ / "manager.db";
    return with_params(postgres_base_url(),
                       "options=-csearch_path%3D" + schema_ + "&application_name=" + schema_);
  }
  std::unique_ptr<Store> open() {
    auto s = open_store(env_, url());
    EXPECT_TRUE(s) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }
  // SQL behind the store's back (no values in it: test-made names only).
  void raw_exec(const std::string& sql) {
    if (postgres()) return admin(sql);
    auto db = db::Db::open(dir_ / "manager.db", db::Db::Mode::kReadWrite);
    ASSERT_TRUE(db) << db.error().message();
    ASSERT_TRUE(db->exec(sql));
  }
  // Puts back schema 7's duplicate key where migration 8 cannot simply run again:
  // PostgreSQL swaps constraints (SQLite rebuilds the table whatever its key was).
  void restore_schema_7_event_key() {
    if (!postgres()) return;
    raw_exec(
        "ALTER TABLE events DROP CONSTRAINT events_event_id_agent_key_key; "
        "ALTER TABLE events ADD CONSTRAINT events_agent_key_event_id_key "
        "UNIQUE (agent_key, event_id)");
  }
  // Takes away what schema 9 added, for a test that goes back to an older schema.
  void drop_schema_9() {
    raw_exec("DROP TABLE decoy_events");
    raw_exec("DROP INDEX bans_lifted_at");
  }
  void admin(const std::string& sql) {
    auto r = admin_->exec(sql);
    ASSERT_TRUE(r) << sql << ": " << r.error().message();
  }
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
  std::string schema_;
  std::optional<pg::Conn> admin_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreTest, ::testing::Values("sqlite"), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, StoreTest, ::testing::ValuesIn(postgres_backends()),
                         backend_name);

TEST_P(StoreTest, InsertIsIdempotentEvenReplayedOutOfOrder) {
  auto s = open();
  std::vector<nlohmann::json> batch = events(1, 10);
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
  batch.push_back(event(11));  // twice in one batch: stored once
  auto rev = s->insert_events("k1", batch, 7);
  ASSERT_TRUE(rev);
  EXPECT_EQ(rev->inserted, 1);
  EXPECT_EQ(rev->duplicates, 11);
  auto all = s->query_events({});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 11u);
  EXPECT_EQ((*all)[0].received_at_ns, 5) << "the first copy stays";
  EXPECT_EQ((*all)[10].sequence, 11);
  // The same event id under another agent key is another event.
  EXPECT_EQ(s->insert_events("k2", {event(1)}, 8)->inserted, 1);
}

TEST_P(StoreTest, RowsAreInArrivalOrder) {
  auto s = open();
  std::vector<nlohmann::json> batch;
  for (int64_t seq : {5, 3, 9, 1}) batch.push_back(event(seq));
  ASSERT_TRUE(s->insert_events("k", batch, 1));
  ASSERT_TRUE(s->insert_events("k", {event(2)}, 2));
  auto rows = s->query_events({});
  ASSERT_TRUE(rows);
  std::vector<int64_t> seqs;
  for (const EventRow& r : *rows) seqs.push_back(r.sequence);
  EXPECT_EQ(seqs, (std::vector<int64_t>{5, 3, 9, 1, 2}));
  for (size_t i = 1; i < rows->size(); ++i) EXPECT_GT((*rows)[i].row, (*rows)[i - 1].row);
}

TEST_P(StoreTest, ContiguousSequenceWaitsForTheGap) {
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
  // A key whose first batch starts high counts from there.
  ASSERT_TRUE(s->insert_events("late", events(100, 102), 1));
  EXPECT_EQ(s->sequences("late")->contiguous_through, 102);
}

TEST_P(StoreTest, MalformedEventFailsTheWholeBatch) {
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
  nlohmann::json nul_path = event(3);
  nul_path["file"]["path"] = std::string("/a\0b", 4);
  EXPECT_FALSE(s->insert_events("k", {nul_path}, 1));
  std::vector<nlohmann::json> huge(10001, event(1));
  EXPECT_FALSE(s->insert_events("k", huge, 1)) << "a batch is capped";
  EXPECT_EQ(s->sequences("k")->max_sequence, 0);
  EXPECT_TRUE(s->query_events({})->empty());
}

TEST_P(StoreTest, GroupCommitStoresEveryBatchAndMarksLastSeen) {
  auto s = open();
  ASSERT_TRUE(s->create_agent(agent("a")));
  ASSERT_TRUE(s->create_agent(agent("b")));
  auto rows = [](const std::vector<nlohmann::json>& e) {
    auto b = extract_event_batch("k", e);
    EXPECT_TRUE(b) << b.error().message();
    return b ? *b : EventBatch{};
  };
  const EventBatch a1 = rows(events(1, 3)), b1 = rows(events(1, 2)), a2 = rows(events(4, 5)),
                   a_again = rows(events(2, 4)), none;
  const std::vector<AgentBatch> batches{
      {"b", &b1}, {"a", &a1}, {"a", &a2}, {"a", &a_again}, {"b", &none}};
  const std::vector<SeenMark> seen{{"a", 50 * kSec}, {"b", 60 * kSec}, {"nobody", 1}};
  auto r = s->store_batches(batches, seen, 7);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), batches.size());
  EXPECT_EQ((*r)[0].inserted, 2);
  EXPECT_EQ((*r)[1].inserted, 3);
  EXPECT_EQ((*r)[2].inserted, 2);
  EXPECT_EQ((*r)[2].max_sequence, 5);
  EXPECT_EQ((*r)[3].inserted, 0) << "a replay within the group stores nothing twice";
  EXPECT_EQ((*r)[3].duplicates, 3);
  EXPECT_EQ((*r)[4].inserted, 0);
  EXPECT_EQ(s->sequences("a")->contiguous_through, 5);
  EXPECT_EQ(s->sequences("b")->contiguous_through, 2);
  EXPECT_EQ(s->query_events({})->size(), 7u);
  EXPECT_EQ((*s->find_agent("a"))->last_seen_ns, 50 * kSec);
  EXPECT_EQ((*s->find_agent("b"))->last_seen_ns, 60 * kSec);
  // A mark older than what is stored never moves last_seen back.
  const std::vector<SeenMark> older{{"a", 40 * kSec}};
  ASSERT_TRUE(s->store_batches({}, older, 8));
  EXPECT_EQ((*s->find_agent("a"))->last_seen_ns, 50 * kSec);
}

TEST_P(StoreTest, StrangeTextIsStoredExactly) {
  auto s = open();
  nlohmann::json e = event(1, "file-restored", "/var/www/\"q\"\\{a,b}'; DROP TABLE events;--");
  e["user"]["name"] = "NULL";
  e["note"] = std::string("é 😀 \\u0000 \x01 \0 end", 22);
  ASSERT_TRUE(s->insert_events("k", {e}, 1));
  auto rows = s->query_events({});
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].path, "/var/www/\"q\"\\{a,b}'; DROP TABLE events;--");
  EXPECT_EQ(nlohmann::json::parse((*rows)[0].json), e);
}

TEST_P(StoreTest, TokenConsumeRefusesRevokedExpiredUsedUp) {
  auto s = open();
  auto once = s->create_token({sha256_hex("once"), "web", 1, std::nullopt, 1});
  auto expiring = s->create_token({sha256_hex("exp"), "db", std::nullopt, 50 * kSec, 1});
  auto revoked = s->create_token({sha256_hex("rev"), "web", std::nullopt, std::nullopt, 1});
  ASSERT_TRUE(once && expiring && revoked);
  ASSERT_TRUE(*s->revoke_token(*revoked));
  EXPECT_TRUE(*s->revoke_token(*revoked)) << "revoking twice is not an error";
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
  EXPECT_EQ((*list)[0].group, "web");
  EXPECT_EQ((*list)[1].uses_left, std::nullopt);
  EXPECT_EQ((*list)[1].expires_at_ns, 50 * kSec);
  EXPECT_EQ((*list)[1].used, 1);
  EXPECT_TRUE((*list)[2].revoked);
  EXPECT_FALSE((*list)[1].revoked);
  EXPECT_FALSE(s->create_token({sha256_hex("once"), "web", 1, std::nullopt, 1}))
      << "a secret hash is unique";
}

TEST_P(StoreTest, OneUseTokenRacedFromTwoConnectionsHasOneWinner) {
  for (int round = 0; round < 20; ++round) {
    const std::string secret = "t" + std::to_string(round);
    ASSERT_TRUE(open()->create_token({sha256_hex(secret), "g", 1, std::nullopt, 1}));
    auto a = open(), b = open();
    std::atomic<int> wins{0}, errors{0};
    std::atomic<bool> go{false};
    auto race = [&](Store* st, std::string key) {
      while (!go.load()) {
      }
      auto v = st->enroll(sha256_hex(secret), agent(key), 10);
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
  auto s = open();
  EXPECT_EQ(s->list_agents()->size(), 20u);
  auto tokens = s->list_tokens();
  ASSERT_TRUE(tokens);
  for (const TokenRow& t : *tokens) {
    EXPECT_EQ(t.used, 1);
    EXPECT_EQ(t.uses_left, 0);
  }
}

TEST_P(StoreTest, MultiUseTokenRacedFromFourConnectionsNeverOverspends) {
  constexpr int kUses = 25, kThreads = 4, kTries = 15;  // 60 tries for 25 uses
  ASSERT_TRUE(open()->create_token({sha256_hex("group"), "asg", kUses, std::nullopt, 1}));
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kThreads; ++i) stores.push_back(open());
  std::atomic<int> wins{0}, used_up{0}, errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) {
      }
      for (int j = 0; j < kTries; ++j) {
        auto v = stores[i]->enroll(sha256_hex("group"),
                                   agent("a" + std::to_string(i) + "-" + std::to_string(j)), 10);
        if (!v)
          ++errors;
        else if (v->accepted())
          ++wins;
        else if (v->refusal == TokenRefusal::kUsedUp)
          ++used_up;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), kUses);
  EXPECT_EQ(used_up.load(), kThreads * kTries - kUses);
  auto s = open();
  EXPECT_EQ(s->list_agents()->size(), static_cast<size_t>(kUses));
  auto tokens = s->list_tokens();
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].used, kUses);
  EXPECT_EQ((*tokens)[0].uses_left, 0);
}

TEST_P(StoreTest, ConcurrentBatchesOfOneAgentKeepTheSequenceGapFree) {
  // Two connections (two managers the agent reconnected between) store interleaved
  // batches of one agent at once: whichever commits last must see the other's rows.
  constexpr int kBatches = 40, kPerBatch = 25;
  auto a = open(), b = open();
  std::atomic<bool> go{false};
  std::atomic<int> errors{0};
  auto feed = [&](Store* st, int parity) {
    while (!go.load()) {
    }
    for (int i = parity; i < kBatches; i += 2)
      if (!st->insert_events("k", events(i * kPerBatch + 1, (i + 1) * kPerBatch), 1)) ++errors;
  };
  std::thread ta(feed, a.get(), 0), tb(feed, b.get(), 1);
  go = true;
  ta.join();
  tb.join();
  EXPECT_EQ(errors.load(), 0);
  auto q = open()->sequences("k");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->max_sequence, kBatches * kPerBatch);
  EXPECT_EQ(q->contiguous_through, kBatches * kPerBatch);
}

TEST_P(StoreTest, ConcurrentOpensOfAFreshDatabaseMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      if (auto s = open_store(env_, url()); !s) {
        ++failures;
        ADD_FAILURE() << s.error().message();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = open();
  ASSERT_TRUE(s->insert_events("k", {event(1)}, 1));
  EXPECT_EQ(s->query_events({})->size(), 1u);
}

TEST_P(StoreTest, EnrollRefusedCreatesNoAgent) {
  auto s = open();
  auto v = s->enroll(sha256_hex("unknown"), agent("k"), 1);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->refusal, TokenRefusal::kUnknown);
  EXPECT_FALSE(s->find_agent("k")->has_value());
}

TEST_P(StoreTest, EnrollThatFailsGivesTheTokenUseBack) {
  auto s = open();
  ASSERT_TRUE(s->create_token({sha256_hex("t"), "web", 1, std::nullopt, 1}));
  ASSERT_TRUE(s->create_agent(agent("k")));
  EXPECT_FALSE(s->enroll(sha256_hex("t"), agent("k"), 1)) << "agent_key taken: a failure";
  auto t = s->list_tokens();
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)[0].used, 0);
  EXPECT_EQ((*t)[0].uses_left, 1);
  auto v = s->enroll(sha256_hex("t"), agent("k2"), 1);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->accepted()) << "the use is still there";
}

TEST_P(StoreTest, AgentStatusTransitions) {
  auto s = open();
  ASSERT_TRUE(s->create_token({sha256_hex("t"), "web", std::nullopt, std::nullopt, 1}));
  NewAgent na = agent("k");
  na.group = "ignored";  // enroll takes the token's group
  auto v = s->enroll(sha256_hex("t"), na, 100);
  ASSERT_TRUE(v && v->accepted());
  EXPECT_FALSE(s->create_agent(agent("k"))) << "agent_key is unique";
  auto row = s->find_agent("k");
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->status, AgentStatus::kEnrolled);
  EXPECT_EQ((*row)->group, "web");
  EXPECT_EQ((*row)->token_id, v->token_id);
  EXPECT_EQ((*row)->credential_hash, sha256_hex("cred-k"));
  EXPECT_EQ((*row)->info.roots_json, R"([{"path":"/var/www","mode":"restore"}])");
  EXPECT_EQ((*row)->status_since_ns, 100);

  AgentInfo info = agent("k").info;
  info.version = "0.2";
  info.hostname = "web-01 é";
  EXPECT_EQ(*s->agent_hello("k", info, 200, "m1"), AgentStatus::kEnrolled);
  ASSERT_TRUE(s->touch_agent("k", 250));
  EXPECT_EQ(*s->set_agent_status("k", AgentStatus::kLost, 300), AgentStatus::kOnline);
  EXPECT_EQ(*s->agent_hello("k", info, 400, "m1"), AgentStatus::kLost) << "a recovery";
  EXPECT_EQ(*s->agent_hello("k", info, 450, "m1"), AgentStatus::kOnline);
  row = s->find_agent("k");
  EXPECT_EQ((*row)->status_since_ns, 400) << "a hello while online changes no status";
  EXPECT_EQ(*s->set_agent_status("k", AgentStatus::kStopped, 500), AgentStatus::kOnline);
  EXPECT_EQ(*s->set_agent_status("k", AgentStatus::kStopped, 600), AgentStatus::kStopped);
  row = s->find_agent("k");
  EXPECT_EQ((*row)->status, AgentStatus::kStopped);
  EXPECT_EQ((*row)->status_since_ns, 500);
  EXPECT_EQ((*row)->last_seen_ns, 450);
  EXPECT_EQ((*row)->last_hello_ns, 450);
  EXPECT_EQ((*row)->info.version, "0.2");
  EXPECT_EQ((*row)->info.hostname, "web-01 é");

  auto missing = s->touch_agent("zz", 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errnum, ENOENT);
  auto missing_status = s->set_agent_status("zz", AgentStatus::kLost, 1);
  ASSERT_FALSE(missing_status);
  EXPECT_EQ(missing_status.error().errnum, ENOENT);
  auto missing_hello = s->agent_hello("zz", info, 1, "m1");
  ASSERT_FALSE(missing_hello);
  EXPECT_EQ(missing_hello.error().errnum, ENOENT);
  EXPECT_EQ(parse_agent_status("retired"), AgentStatus::kRetired);
  EXPECT_EQ(parse_agent_status("revoked"), AgentStatus::kRevoked);
  EXPECT_EQ(parse_agent_status("unhealthy"), AgentStatus::kUnhealthy);
  EXPECT_EQ(parse_agent_status("bogus"), std::nullopt);
}

TEST_P(StoreTest, HellosElsewhereNameTheAgentsAnotherManagerTookLately) {
  auto s = open();
  ASSERT_TRUE(s->create_token({sha256_hex("t"), "web", std::nullopt, std::nullopt, 1}));
  for (const char* key : {"a", "b", "c"})
    ASSERT_TRUE(s->enroll(sha256_hex("t"), agent(key), 1)->accepted());
  AgentInfo info = agent("a").info;
  ASSERT_TRUE(s->agent_hello("a", info, 100, "m1"));
  ASSERT_TRUE(s->agent_hello("b", info, 200, "m2"));
  ASSERT_TRUE(s->agent_hello("c", info, 300, "m1"));
  ASSERT_TRUE(s->agent_hello("c", info, 400, "m2")) << "c moved, or a copy of it said hello";
  using Keys = std::vector<std::string>;
  auto sorted = [](Result<Keys> k) {
    EXPECT_TRUE(k) << k.error().message();
    Keys out = k ? *k : Keys{};
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(sorted(s->hellos_elsewhere("m1", 0)), (Keys{"b", "c"}));
  EXPECT_EQ(sorted(s->hellos_elsewhere("m1", 250)), (Keys{"c"})) << "only hellos since";
  EXPECT_EQ(sorted(s->hellos_elsewhere("m2", 0)), (Keys{"a"}));
  EXPECT_EQ(sorted(s->hellos_elsewhere("m2", 150)), Keys{});
  ASSERT_TRUE(s->release_agent("a", "m1", AgentStatus::kLost, 500));
  EXPECT_EQ(sorted(s->hellos_elsewhere("m2", 0)), Keys{}) << "an agent no manager holds";
}

// Several managers on one database: each agent is held by the manager of its channel;
// a manager releases only its own agents; the agents of a manager that stopped
// heartbeating are reaped once, by one manager.
TEST_P(StoreTest, ManagersHoldReleaseAndReapAgents) {
  auto s = open();
  ASSERT_TRUE(s->create_token({sha256_hex("t"), "web", std::nullopt, std::nullopt, 1}));
  for (const char* key : {"a", "b", "c", "d"}) {
    NewAgent na = agent(key);
    ASSERT_TRUE(s->enroll(sha256_hex("t"), na, 1)->accepted());
  }
  AgentInfo info = agent("a").info;
  ASSERT_TRUE(s->manager_heartbeat("m1", "host1", 100));
  ASSERT_TRUE(s->manager_heartbeat("m2", "host2", 100));
  ASSERT_TRUE(s->agent_hello("a", info, 100, "m1"));
  ASSERT_TRUE(s->agent_hello("b", info, 100, "m1"));
  ASSERT_TRUE(s->agent_hello("c", info, 100, "m2"));
  ASSERT_TRUE(s->agent_hello("d", info, 100, "m2"));
  ASSERT_TRUE(s->set_agent_status("d", AgentStatus::kUnhealthy, 110));
  EXPECT_EQ((*s->find_agent("a"))->manager_id, "m1");

  // "b" moved to m2 before m1 noticed its old channel died: m1's release changes nothing.
  ASSERT_TRUE(s->agent_hello("b", info, 150, "m2"));
  auto released = s->release_agent("b", "m1", AgentStatus::kLost, 160);
  ASSERT_TRUE(released);
  EXPECT_EQ(*released, std::nullopt);
  EXPECT_EQ((*s->find_agent("b"))->status, AgentStatus::kOnline);
  released = s->release_agent("a", "m1", AgentStatus::kStopped, 170);
  ASSERT_TRUE(released && *released);
  EXPECT_EQ(**released, AgentStatus::kOnline);
  auto a = *s->find_agent("a");
  EXPECT_EQ(a->status, AgentStatus::kStopped);
  EXPECT_EQ(a->manager_id, "");
  EXPECT_EQ(a->status_since_ns, 170);
  EXPECT_FALSE(s->release_agent("zz", "m1", AgentStatus::kLost, 1));
  // Several at once, in one transaction, each answered on its own.
  ASSERT_TRUE(s->agent_hello("a", info, 180, "m1"));
  const std::vector<Store::Release> many{
      {"a", AgentStatus::kLost}, {"zz", AgentStatus::kLost}, {"c", AgentStatus::kLost}};
  auto all = s->release_agents(many, "m1", 190);
  ASSERT_TRUE(all) << all.error().message();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].value(), AgentStatus::kOnline);
  EXPECT_FALSE((*all)[1]) << "an unknown agent";
  EXPECT_EQ((*all)[2].value(), std::nullopt) << "m2's agent";
  EXPECT_EQ((*s->find_agent("a"))->status, AgentStatus::kLost);
  EXPECT_EQ((*s->find_agent("c"))->status, AgentStatus::kOnline);

  // m2 stops heartbeating; m1 still does. Nothing is reaped while m2's heartbeat is recent.
  ASSERT_TRUE(s->manager_heartbeat("m1", "host1", 200));
  EXPECT_TRUE(s->reap_agents("m1", 100, 200)->empty());
  auto reaped = s->reap_agents("m1", 150, 210);
  ASSERT_TRUE(reaped);
  std::vector<std::string> keys;
  for (const auto& r : *reaped)
    keys.push_back(r.agent_key + "=" + std::string(to_string(r.status)));
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"b=lost", "c=lost", "d=retired"}));
  EXPECT_EQ((*s->find_agent("c"))->manager_id, "");
  EXPECT_EQ((*s->find_agent("c"))->status_since_ns, 210);
  EXPECT_TRUE(s->reap_agents("m1", 150, 220)->empty()) << "reaped once";
  // A manager never reaps its own agents (its channels say whether they are alive).
  ASSERT_TRUE(s->agent_hello("c", info, 230, "m1"));
  EXPECT_TRUE(s->reap_agents("m1", 1000, 240)->empty());
  EXPECT_EQ(s->reap_agents("m3", 1000, 240)->size(), 1u) << "m1 stopped too, for m3";
}

TEST_P(StoreTest, ListsAreInByteOrder) {
  // Byte order whatever the database's locale (the PostgreSQL test database is created
  // with an ICU en-US collation, where "a" sorts before "B").
  auto s = open();
  for (const char* key : {"a", "B", "é", "_"}) {
    ASSERT_TRUE(s->insert_events(key, {event(1)}, 1));
    NewAgent na = agent(key);
    ASSERT_TRUE(s->create_agent(na));
  }
  auto u = s->usage();
  ASSERT_TRUE(u);
  std::vector<std::string> keys;
  for (const AgentUsage& a : *u) keys.push_back(a.agent_key);
  EXPECT_EQ(keys, (std::vector<std::string>{"B", "_", "a", "é"}));
  keys.clear();
  auto agents = s->list_agents();
  ASSERT_TRUE(agents);
  for (const AgentRow& a : *agents) keys.push_back(a.agent_key);
  EXPECT_EQ(keys, (std::vector<std::string>{"B", "_", "a", "é"}));
}

TEST_P(StoreTest, EventHistogram) {
  auto s = open();
  ASSERT_TRUE(s->insert_events("a",
                               {event(1), event(2, "ip-banned", "", "203.0.113.7", 7), event(3),
                                event(4), event(5), event(6)},
                               1));
  ASSERT_TRUE(s->insert_events("b", {event(1)}, 1));
  const int64_t t1 = 1700000000LL * kSec - 9 * kSec + 500'000'000;  // event(1)'s @timestamp
  auto h = s->event_histogram({.since_ns = t1, .until_ns = t1 + 6 * kSec}, 3);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->since_ns, t1);
  EXPECT_EQ(h->width_ns, 2 * kSec);
  EXPECT_EQ(h->counts, (std::vector<int64_t>{3, 2, 2}));
  EXPECT_EQ(h->max_severity, (std::vector<int64_t>{7, 3, 3}));
  // The filters apply; with no start, the oldest minute with an event starts the buckets.
  const int64_t minute = 1700000000LL * kSec - 20 * kSec;  // 22:13:00, every event's minute
  h = s->event_histogram({.agent_key = "a", .until_ns = t1 + 6 * kSec, .action = "file-restored"},
                         1);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->since_ns, minute);
  EXPECT_EQ(h->counts, (std::vector<int64_t>{5}));
  EXPECT_TRUE(h->complete);
  // Past the row limit, the counts are a floor, and say so.
  h = s->event_histogram({.agent_key = "a", .since_ns = t1, .until_ns = t1 + 6 * kSec}, 3, 2);
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->complete);
  EXPECT_EQ(h->counts[0] + h->counts[1] + h->counts[2], 3);
  // A span that does not divide: the last bucket still reaches the end.
  h = s->event_histogram({.since_ns = t1, .until_ns = t1 + 7 * kSec}, 2);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->width_ns, 3 * kSec + 500'000'000);
  EXPECT_EQ(h->counts, (std::vector<int64_t>{5, 2}));
  // Nothing matches: zeros.
  h = s->event_histogram({.agent_key = "nobody", .until_ns = t1}, 4);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->counts, (std::vector<int64_t>{0, 0, 0, 0}));
  // No end, no bucket, too many, an end before the start, times that would overflow.
  EXPECT_FALSE(s->event_histogram({.since_ns = t1}, 3));
  EXPECT_FALSE(s->event_histogram({.until_ns = t1}, 0));
  EXPECT_FALSE(s->event_histogram({.until_ns = t1}, kMaxHistogramBuckets + 1));
  EXPECT_FALSE(s->event_histogram({.since_ns = t1, .until_ns = t1}, 3));
  EXPECT_FALSE(
      s->event_histogram({.since_ns = std::numeric_limits<int64_t>::min(), .until_ns = t1}, 3));

  // Buckets of a minute or more with no agent, path or address: the per-minute rollup.
  const int64_t from = minute - 3 * 60 * kSec;
  h = s->event_histogram({.since_ns = from, .until_ns = from + 10 * 60 * kSec}, 10);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->counts, (std::vector<int64_t>{0, 0, 0, 7, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(h->max_severity[3], 7);
  h = s->event_histogram({.since_ns = from, .until_ns = from + 10 * 60 * kSec, .min_severity = 5},
                         10);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->counts[3], 1);
  h = s->event_histogram({.until_ns = from + 10 * 60 * kSec, .action = "ip-banned"}, 7);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->since_ns, minute);  // the oldest minute with one
  EXPECT_EQ(h->counts[0], 1);
  // The same batch again adds nothing; a prune takes off what it deleted.
  ASSERT_TRUE(s->insert_events("b", {event(1)}, 1));
  ASSERT_TRUE(s->prune({.max_events_per_agent = 2}, 2));
  h = s->event_histogram({.since_ns = from, .until_ns = from + 10 * 60 * kSec}, 10);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->counts[3], 3);
  EXPECT_EQ(h->max_severity[3], 3);  // the severity-7 event was pruned
}

TEST_P(StoreTest, QueryFilters) {
  auto s = open();
  ASSERT_TRUE(s->insert_events(
      "a",
      {event(1, "file-restored", "/var/www/a.php"), event(2, "ip-banned", "", "203.0.113.7", 7),
       event(3, "file-restored", "/srv/x"), event(4, "file-restored", "/var/www/é/Z.php"),
       event(5, "file-restored", "/var/www0"), event(6, "file-restored", "/var/wwW/b")},
      1));
  ASSERT_TRUE(s->insert_events("b", {event(1, "file-restored", "/var/www/b.php")}, 1));
  auto n = [&](EventQuery q) {
    auto r = s->query_events(q);
    EXPECT_TRUE(r) << r.error().message();
    return r ? r->size() : 999u;
  };
  EXPECT_EQ(n({.agent_key = "a"}), 6u);
  EXPECT_EQ(n({.action = "file-restored"}), 6u);
  EXPECT_EQ(n({.path_prefix = "/var/www/"}), 3u);
  EXPECT_EQ(n({.path_prefix = "/var/www/%"}), 0u) << "the prefix is literal";
  EXPECT_EQ(n({.path_prefix = "/var/www/_.php"}), 0u);
  EXPECT_EQ(n({.path_prefix = "/var/www/é/"}), 1u);
  EXPECT_EQ(n({.path_prefix = "/var/www"}), 4u) << "not /var/wwW";
  EXPECT_EQ(n({.source_ip = "203.0.113.7"}), 1u);
  EXPECT_EQ(n({.min_severity = 5}), 1u);
  EXPECT_EQ(n({.agent_key = "a", .action = "file-restored"}), 5u);
  EXPECT_EQ(n({.agent_key = "b", .path_prefix = "/var/www/", .min_severity = 3}), 1u);
  EXPECT_EQ(n({.agent_key = "a", .min_sequence = 2}), 5u);
  EXPECT_EQ(n({.agent_key = "a", .min_sequence = 7}), 0u);
  // A group: the events of the agents enrolled in it.
  ASSERT_TRUE(s->create_agent(agent("a")));
  NewAgent b = agent("b");
  b.group = "db";
  ASSERT_TRUE(s->create_agent(b));
  EXPECT_EQ(n({.group = "web"}), 6u);
  EXPECT_EQ(n({.group = "db"}), 1u);
  EXPECT_EQ(n({.group = "mail"}), 0u);
  EXPECT_EQ(n({.group = "web", .action = "ip-banned"}), 1u);
  auto by_group =
      s->event_histogram({.group = "web", .since_ns = 0, .until_ns = 1800000000LL * kSec}, 1);
  ASSERT_TRUE(by_group) << by_group.error().message();
  EXPECT_EQ(by_group->counts, (std::vector<int64_t>{6}));
  // event(2)'s @timestamp is 22:13:12.5 on 2023-11-14.
  const int64_t t2 = 1700000000LL * kSec - 8 * kSec + 500'000'000;
  auto at = s->query_events({.agent_key = "a", .since_ns = t2, .until_ns = t2 + 1});
  ASSERT_TRUE(at);
  ASSERT_EQ(at->size(), 1u);
  EXPECT_EQ((*at)[0].sequence, 2);
  EXPECT_EQ((*at)[0].time_ns, t2);
  EXPECT_EQ((*at)[0].action, "ip-banned");
  EXPECT_EQ((*at)[0].source_ip, "203.0.113.7");
  EXPECT_EQ((*at)[0].severity, 7);
  EXPECT_EQ((*at)[0].event_id, "id-2");
  EXPECT_EQ((*at)[0].agent_key, "a");
  EXPECT_EQ(nlohmann::json::parse((*at)[0].json)["source"]["ip"], "203.0.113.7");
  auto page = s->query_events({.limit = 2});
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ(n({.after_row = (*page)[1].row}), 5u);
  EXPECT_EQ(n({.limit = -5}), 0u);

  // Newest first, paged down with before_row; the filters apply as well.
  auto all = s->query_events({});
  ASSERT_TRUE(all);
  auto newest = s->query_events({.newest_first = true, .limit = 3});
  ASSERT_TRUE(newest);
  ASSERT_EQ(newest->size(), 3u);
  EXPECT_EQ((*newest)[0].row, all->back().row);
  EXPECT_GT((*newest)[0].row, (*newest)[1].row);
  auto older = s->query_events({.newest_first = true, .before_row = newest->back().row});
  ASSERT_TRUE(older);
  EXPECT_EQ(newest->size() + older->size(), all->size());
  EXPECT_EQ(older->back().row, all->front().row);
  EXPECT_LT(older->front().row, newest->back().row);
  auto a_newest = s->query_events({.agent_key = "a", .newest_first = true, .limit = 1});
  ASSERT_TRUE(a_newest);
  ASSERT_EQ(a_newest->size(), 1u);
  EXPECT_EQ((*a_newest)[0].agent_key, "a");
}

TEST_P(StoreTest, EventsSinceAreCountedPerAgent) {
  auto s = open();
  ASSERT_TRUE(s->insert_events("a", events(1, 6), 1));
  ASSERT_TRUE(s->insert_events("b", events(1, 2), 1));
  // event(n)'s @timestamp is 22:13:(10 + n).5 on 2023-11-14.
  const int64_t t3 = 1700000000LL * kSec - 7 * kSec + 500'000'000;
  auto all = s->count_events_since(t3, std::nullopt);
  ASSERT_TRUE(all) << all.error().message();
  EXPECT_EQ(*all, (std::map<std::string, int64_t>{{"a", 4}}));
  auto earlier = s->count_events_since(0, std::nullopt);
  EXPECT_EQ(*earlier, (std::map<std::string, int64_t>{{"a", 6}, {"b", 2}}));
  auto one = s->count_events_since(0, "b");
  EXPECT_EQ(*one, (std::map<std::string, int64_t>{{"b", 2}}));
  EXPECT_TRUE(s->count_events_since(0, "nobody")->empty());
}

TEST_P(StoreTest, ReopenKeepsData) {
  {
    auto s = open();
    ASSERT_TRUE(s->create_agent(agent("k")));
    ASSERT_TRUE(s->insert_events("k", {event(1), event(2)}, 1));
    ASSERT_TRUE(s->record_baseline({"k", "aa", 5, true}));
    ASSERT_TRUE(s->record_baseline({"k", "bb", 6, false, 42}));
  }
  auto s = open();
  EXPECT_TRUE(s->find_agent("k")->has_value());
  EXPECT_EQ(s->query_events({})->size(), 2u);
  EXPECT_EQ(s->sequences("k")->contiguous_through, 2);
  auto h = s->baseline_history("k");
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].root_hash, "aa");
  EXPECT_TRUE((*h)[0].expected);
  EXPECT_EQ((*h)[1].root_hash, "bb");
  EXPECT_EQ((*h)[1].at_ns, 6);
  EXPECT_EQ((*h)[1].next_sequence, 42);
  EXPECT_EQ((*h)[0].next_sequence, 0);
  EXPECT_FALSE((*h)[1].expected);
  EXPECT_TRUE(s->baseline_history("other")->empty());
  // The latest recorded hash is the agent's current one (a console accept reports one).
  EXPECT_EQ((*s->find_agent("k"))->info.baseline_root_hash, "bb");
}

TEST_P(StoreTest, RetentionCapsAndUsage) {
  auto s = open();
  ASSERT_TRUE(s->insert_events("a", events(1, 5), 100 * kSec));
  ASSERT_TRUE(s->insert_events("a", events(6, 10), 200 * kSec));
  ASSERT_TRUE(s->insert_events("b", {event(1)}, 100 * kSec));
  auto u = s->usage();
  ASSERT_TRUE(u);
  ASSERT_EQ(u->size(), 2u);
  EXPECT_EQ((*u)[0].agent_key, "a");
  EXPECT_EQ((*u)[0].events, 10);
  EXPECT_GT((*u)[0].json_bytes, 10 * 50);
  EXPECT_EQ((*u)[1].events, 1);
  EXPECT_EQ((*u)[1].json_bytes, static_cast<int64_t>(event(1).dump().size()));

  RetentionPolicy by_age, by_count;
  by_age.max_age_ns = 50 * kSec;
  by_count.max_events_per_agent = 3;
  EXPECT_EQ(*s->prune(by_age, 210 * kSec), 6) << "a's 5 old and b's 1";
  EXPECT_EQ(*s->prune(by_count, 210 * kSec), 2);
  EXPECT_EQ(*s->prune({}, 210 * kSec), 0) << "0 disables both caps";
  auto left = s->query_events({});
  ASSERT_EQ(left->size(), 3u);
  EXPECT_EQ((*left)[0].sequence, 8) << "the newest stay";
  EXPECT_EQ(s->sequences("a")->contiguous_through, 10) << "retention keeps the high-water mark";
  EXPECT_EQ(s->usage()->size(), 1u);
}

// The console pages a filter by row: the page must come from an index in row order, not
// from sorting every matching event (millions on a busy fleet) for each page.
TEST_P(StoreTest, FilteredPagesReadAnIndexInRowOrder) {
  { ASSERT_TRUE(open()); }
  const std::string row = postgres() ? "row_id" : "row";
  for (const std::string column : {"action", "source_ip"}) {
    const std::string sql = "SELECT json FROM events WHERE " + row + " > 5 AND " + column +
                            " = 'x' ORDER BY " + row + " LIMIT 100";
    std::string plan;
    if (postgres()) {
      admin("SET enable_seqscan = off");  // the table is empty: ask which index it would use
      auto r = admin_->exec("EXPLAIN " + sql);
      ASSERT_TRUE(r) << r.error().message();
      for (int i = 0; i < r->size(); ++i) plan += r->str(i, 0) + "\n";
    } else {
      auto db = db::Db::open(dir_ / "manager.db", db::Db::Mode::kReadWrite);
      ASSERT_TRUE(db) << db.error().message();
      auto q = db->prepare("EXPLAIN QUERY PLAN " + sql);
      ASSERT_TRUE(q) << q.error().message();
      while (*q->step()) plan += std::string(q->blob(3)) + "\n";
    }
    EXPECT_NE(plan.find("events_" + column), std::string::npos) << plan;
    EXPECT_EQ(plan.find(postgres() ? "Sort" : "TEMP B-TREE"), std::string::npos) << plan;
  }
}

TEST_P(StoreTest, TheChartsRollupIsFilledFromTheEventsAnOlderSchemaStored) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_events("a", {event(1), event(2, "ip-banned", "", "203.0.113.7", 7)}, 1));
  }
  // Schema 6 had no rollup: the events were there, the counts were not.
  raw_exec("DROP TABLE event_minutes");
  drop_schema_9();
  restore_schema_7_event_key();
  raw_exec("UPDATE schema_version SET version = 6");
  auto s = open_store(env_, url());
  ASSERT_TRUE(s) << s.error().message();
  const int64_t minute = 1700000000LL * kSec - 20 * kSec;
  auto h = (*s)->event_histogram({.since_ns = minute, .until_ns = minute + 60 * kSec}, 1);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->counts, (std::vector<int64_t>{2}));
  EXPECT_EQ(h->max_severity, (std::vector<int64_t>{7}));
}

TEST_P(StoreTest, EventsAnOlderSchemaStoredStayStoredOnceAfterTheKeyIsReordered) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_events("a", {event(1), event(2)}, 1));
  }
  // Schema 7 keyed the duplicate check (agent_key, event_id); 8 keys it (event_id, agent_key).
  drop_schema_9();
  restore_schema_7_event_key();
  raw_exec("UPDATE schema_version SET version = 7");
  auto s = open_store(env_, url());
  ASSERT_TRUE(s) << s.error().message();
  auto again = (*s)->insert_events("a", {event(2), event(3)}, 2);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->inserted, 1);
  EXPECT_EQ(again->duplicates, 1);
  auto other = (*s)->insert_events("b", {event(2)}, 3);  // same id, another agent: its own
  ASSERT_TRUE(other) << other.error().message();
  EXPECT_EQ(other->inserted, 1);
  auto all = (*s)->query_events({});
  ASSERT_TRUE(all) << all.error().message();
  EXPECT_EQ(all->size(), 4u);
}

// ---- decoys (decoys.h) ----

constexpr int64_t kT0 = 1'700'000'000;  // seconds: 2023-11-14T22:13:20Z

std::string iso(int64_t s) {
  const time_t t = static_cast<time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// An event at kT0 + at_s.
nlohmann::json at_event(int64_t seq, std::string action, int64_t at_s, std::string ip = "") {
  nlohmann::json e;
  e["@timestamp"] = iso(kT0 + at_s);
  e["event"]["id"] = "d-" + std::to_string(seq);
  e["event"]["sequence"] = seq;
  e["event"]["action"] = action;
  e["event"]["severity"] = 7;
  if (!ip.empty()) e["source"]["ip"] = ip;
  return e;
}

// An agent's ban by `rule`: ttl_s -1 for a ban that failed.
nlohmann::json ban_event(int64_t seq, std::string rule, std::string ip, int64_t at_s, int64_t ttl_s,
                         std::string url = "GET /wp-config.php.bak HTTP/1.1") {
  nlohmann::json e = at_event(seq, "ip-banned", at_s, ip);
  e["rule"]["name"] = rule;
  e["url"]["original"] = url;
  e["event"]["outcome"] = ttl_s < 0 ? "failure" : "success";
  if (ttl_s >= 0) e["mamori"]["ban"]["ttl_s"] = ttl_s;
  return e;
}

nlohmann::json unban_event(int64_t seq, std::string rule, std::string ip, int64_t at_s) {
  nlohmann::json e = at_event(seq, "ip-unbanned", at_s, ip);
  e["rule"]["name"] = rule;
  e["event"]["outcome"] = "success";
  return e;
}

// Two decoys over a day: what each event is, and what the report must say of it.
std::vector<nlohmann::json> decoy_day() {
  std::vector<nlohmann::json> v;
  // decoy-aaa: two scanners; .1 banned for an hour, .2 for an hour and lifted by an
  // operator within it (a false positive); .1 again after its ban ended; .3's ban failed.
  v.push_back(ban_event(1, "decoy-aaa", "198.51.100.1", 1000, 3600));
  v.push_back(ban_event(2, "decoy-aaa", "198.51.100.2", 1100, 3600));
  v.push_back(ban_event(3, "decoy-aaa", "198.51.100.1", 9000, 7200));
  v.push_back(ban_event(4, "decoy-aaa", "198.51.100.3", 9100, -1));
  // .1's first ban expired (its rule's name: no lift); then `mamori bans del` of .1 at
  // 5000, after that ban's end and before the next hit: no false positive either.
  v.push_back(unban_event(5, "decoy-aaa", "198.51.100.1", 4600));
  v.push_back(unban_event(6, "manual", "198.51.100.1", 5000));
  // decoy-bbb: banned for good, the ban lifted by a manager's unban order a day later.
  v.push_back(ban_event(7, "decoy-bbb", "203.0.113.5", 2000, 0, "GET /backup.sql HTTP/1.1"));
  v.push_back(unban_event(8, "fleet", "203.0.113.5", 90000));
  // Opens on the host: one naming its decoy's token, one a path alone.
  nlohmann::json o1 = at_event(9, "decoy-opened", 9500);
  o1["file"]["path"] = "/var/www/wp-config.php.bak";
  o1["mamori"]["decoy"]["token"] = "aaa";
  v.push_back(o1);
  nlohmann::json o2 = at_event(10, "decoy-opened", 9600);
  o2["file"]["path"] = "/var/www/.env";
  v.push_back(o2);
  // bbb's credential used from another address.
  nlohmann::json c = at_event(11, "decoy-credential-used", 3000, "192.0.2.7");
  c["mamori"]["decoy"]["token"] = "bbb";
  c["mamori"]["decoy"]["path"] = "/var/www/backup.sql";
  v.push_back(c);
  // Not a decoy's: another rule's ban, a prefix escalation by the decoy's rule, a ban
  // the manager pushed.
  v.push_back(ban_event(12, "sqli-union", "198.51.100.9", 1200, 600));
  nlohmann::json prefix = ban_event(13, "decoy-aaa", "198.51.100.0", 1300, 600);
  prefix["mamori"]["ban"]["prefix"] = "198.51.100.0/24";
  v.push_back(prefix);
  v.push_back(ban_event(14, "fleet", "198.51.100.1", 1001, 3600));
  // bbb's credential used on the honeypot: its user banned by the credential's rule, and
  // bbb's fetcher banned again, linked to the use. Counted by the use, not as hits.
  v.push_back(ban_event(15, "decoy-credential-bbb", "192.0.2.7", 3000, 600, ""));
  nlohmann::json linked = ban_event(16, "decoy-bbb", "203.0.113.5", 3000, 600, "");
  linked["mamori"]["related_event"] = "d-11";
  v.push_back(linked);
  return v;
}

TEST(DecoyClassify, WhatIsADecoysEvent) {
  auto rows = extract_event_batch("a", decoy_day());
  ASSERT_TRUE(rows) << rows.error().message();
  std::vector<std::string> kinds;
  for (const auto& r : rows->rows) {
    auto d = classify_decoy_event(r);
    kinds.push_back(d ? std::string(to_string(d->kind)) + " " + d->decoy : "-");
  }
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"hit decoy-aaa", "hit decoy-aaa", "hit decoy-aaa",
                                      "hit decoy-aaa", "-", "lift ", "hit decoy-bbb", "lift ",
                                      "opened decoy-aaa", "opened file:/var/www/.env",
                                      "credential decoy-bbb", "-", "-", "-", "-", "-"}));
  auto failed = classify_decoy_event(rows->rows[3]);
  EXPECT_EQ(failed->ttl_s, -1);
  EXPECT_EQ(classify_decoy_event(rows->rows[6])->ttl_s, 0);
  EXPECT_EQ(classify_decoy_event(rows->rows[6])->url, "GET /backup.sql HTTP/1.1");
}

TEST_P(StoreTest, DecoysAreCountedWithTheirFalsePositives) {
  auto s = open();
  ASSERT_TRUE(s->insert_events("agent-1", decoy_day(), 1));
  // The fleet's ban of .2, lifted by an operator 400 s into its hour: a false positive.
  ASSERT_TRUE(s->add_ban({"198.51.100.2", 0, "decoy", "agent-1", (kT0 + 1100) * kSec, true}));
  ASSERT_EQ(*s->lift_bans("198.51.100.2", (kT0 + 1500) * kSec), 1);

  auto r = decoy_report(*s, kT0 * kSec, (kT0 + 100000) * kSec);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(r->decoys.size(), 3u);
  const DecoyStats& env = r->decoys[0];  // newest activity first
  EXPECT_EQ(env.decoy, "file:/var/www/.env");
  EXPECT_EQ(env.opened, 1);
  EXPECT_EQ(env.hits, 0);
  const DecoyStats& a = r->decoys[1];
  EXPECT_EQ(a.decoy, "decoy-aaa");
  EXPECT_EQ(a.hits, 4);
  EXPECT_EQ(a.addresses, 3);
  EXPECT_EQ(a.opened, 1);
  EXPECT_EQ(a.false_positives, 1);
  EXPECT_EQ(a.first_ns, (kT0 + 1000) * kSec);
  EXPECT_EQ(a.last_ns, (kT0 + 9500) * kSec);
  EXPECT_EQ(a.url, "GET /wp-config.php.bak HTTP/1.1");
  EXPECT_EQ(a.agents, (std::vector<std::string>{"agent-1"}));
  EXPECT_EQ(a.latest_agent, "agent-1");
  const DecoyStats& b = r->decoys[2];
  EXPECT_EQ(b.decoy, "decoy-bbb");
  EXPECT_EQ(b.hits, 1);
  EXPECT_EQ(b.credential_uses, 1);
  EXPECT_EQ(b.addresses, 2);
  EXPECT_EQ(b.false_positives, 1);               // permanent: lifted whenever
  EXPECT_EQ(b.url, "GET /backup.sql HTTP/1.1");  // the hit's request (newest with one)

  // The newest event is the incident: its row holds the open.
  auto latest =
      s->query_events({.agent_key = "agent-1", .after_row = a.latest_row - 1, .limit = 1});
  ASSERT_TRUE(latest && latest->size() == 1u);
  EXPECT_EQ(latest->front().action, "decoy-opened");

  // A window from 1500 s: aaa's first two hits are before it (and so is .2's lift).
  r = decoy_report(*s, (kT0 + 1500) * kSec, (kT0 + 100000) * kSec);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->decoys.size(), 3u);
  EXPECT_EQ(r->decoys[1].hits, 2);
  EXPECT_EQ(r->decoys[1].false_positives, 0);
  // Bounded: two events read, the report says it is not whole.
  r = decoy_report(*s, kT0 * kSec, (kT0 + 100000) * kSec, 2);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(r->decoys.size(), 2u);

  // The events page's filter: the decoy's hits and opens.
  auto of_a = s->query_events({.decoy = "decoy-aaa"});
  ASSERT_TRUE(of_a) << of_a.error().message();
  EXPECT_EQ(of_a->size(), 5u);
  auto h = s->event_histogram(
      {.since_ns = kT0 * kSec, .until_ns = (kT0 + 100000) * kSec, .decoy = "decoy-bbb"}, 1);
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->counts, (std::vector<int64_t>{2}));

  // A replayed batch adds nothing.
  ASSERT_TRUE(s->insert_events("agent-1", decoy_day(), 2));
  r = decoy_report(*s, kT0 * kSec, (kT0 + 100000) * kSec);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->decoys[1].hits, 4);

  // Retention takes a decoy's rows with its events.
  ASSERT_EQ(*s->prune({.max_age_ns = 1}, 10), 16);
  r = decoy_report(*s, kT0 * kSec, (kT0 + 100000) * kSec);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->decoys.empty());
}

TEST_P(StoreTest, DecoysAreFoundInTheEventsAnOlderSchemaStored) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_events("agent-1", decoy_day(), 1));
  }
  // Schema 8 had no decoy table.
  drop_schema_9();
  raw_exec("UPDATE schema_version SET version = 8");
  auto s = open_store(env_, url());
  ASSERT_TRUE(s) << s.error().message();
  auto r = decoy_report(**s, kT0 * kSec, (kT0 + 100000) * kSec);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->decoys.size(), 3u);
  EXPECT_EQ(r->decoys[1].hits, 4);
  EXPECT_EQ(r->decoys[2].false_positives, 1);
}

TEST_P(StoreTest, NewerSchemaIsRefused) {
  { ASSERT_TRUE(open()); }
  raw_exec("UPDATE schema_version SET version = 99");
  auto s = open_store(env_, url());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("schema version 99 is newer"), std::string::npos)
      << s.error().message();
  raw_exec("UPDATE schema_version SET version = " +
           std::to_string(postgres() ? kPostgresSchemaVersion : kSqliteSchemaVersion));
  EXPECT_TRUE(open_store(env_, url())) << "the refusal changed nothing";
}

// ---- PostgreSQL only ----

class PostgresStoreTest : public StoreTest {
 protected:
  // A connection parameter of the URL ("password", "user", "host", "port", "dbname").
  static std::string url_option(std::string_view key) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(postgres_base_url().c_str(), &err);
    PQfreemem(err);
    std::string value;
    for (PQconninfoOption* o = opts; o && o->keyword; ++o)
      if (key == o->keyword && o->val) value = o->val;
    PQconninfoFree(opts);
    return value;
  }
  static std::string password() { return url_option("password"); }
  // How errors name the database: user@host:port/dbname.
  static std::string database_name() {
    return url_option("user") + "@" + url_option("host") + ":" + url_option("port") + "/" +
           url_option("dbname");
  }
  // The server pids of this test's store connections.
  std::vector<int64_t> store_backends() {
    auto r = admin_->query("SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                           pg::Params().add(schema_));
    EXPECT_TRUE(r) << r.error().message();
    std::vector<int64_t> pids;
    for (int i = 0; r && i < r->size(); ++i) pids.push_back(r->int64(i, 0));
    return pids;
  }
  void terminate_store_backends() {
    for (int64_t pid : store_backends()) {
      // Waits (up to 5 s) until the backend is gone.
      auto r = admin_->query("SELECT pg_terminate_backend($1, 5000)", pg::Params().add(pid));
      ASSERT_TRUE(r && r->boolean(0, 0)) << "pid " << pid;
    }
  }
};
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PostgresStoreTest);
INSTANTIATE_TEST_SUITE_P(Postgres, PostgresStoreTest, ::testing::ValuesIn(postgres_backends()),
                         backend_name);

// Two managers store events at once: a reader paging by row id (the console's cursor, the
// live stream) must never pass a row that commits later. A trigger holds the first writer's
// transaction open after its row got its id (on a lock the test holds); a second writer
// starts meanwhile; the reader reads once the second is stored or waiting, then the first
// is let go.
TEST_P(PostgresStoreTest, ARowCommittedLateIsNotPassedByAReaderOfRowIds) {
  auto a = open();
  auto b = open();
  auto reader = open();
  const std::string hold = std::to_string(0x686f6c64'00000000LL + getpid());  // "hold" + pid
  admin("SELECT pg_advisory_lock(" + hold + ")");
  admin(
      "CREATE FUNCTION hold_first() RETURNS trigger AS $$ BEGIN IF NEW.event_id = 'id-1' "
      "THEN PERFORM pg_advisory_xact_lock(" +
      hold +
      "); END IF; RETURN NEW; END $$ "
      "LANGUAGE plpgsql");
  admin(
      "CREATE TRIGGER hold_first AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION "
      "hold_first()");
  // How many of this test's store connections wait for a lock.
  auto waiting = [&] {
    auto r = admin_->query(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.application_name = $1",
        pg::Params().add(schema_));
    EXPECT_TRUE(r) << r.error().message();
    return r ? r->int64(0, 0) : -1;
  };
  // Each try asks the server (a round trip): 100,000 of them are tens of seconds.
  auto wait_until = [](const std::function<bool()>& done) {
    for (int i = 0; i < 100'000; ++i)
      if (done()) return true;
    return false;
  };
  std::thread first([&] { EXPECT_TRUE(a->insert_events("a", {event(1)}, 1)); });
  EXPECT_TRUE(wait_until([&] { return waiting() == 1; })) << "the first writer holds its row";
  std::atomic<bool> second_done{false};
  std::thread second([&] {
    EXPECT_TRUE(b->insert_events("b", {event(2)}, 2));
    second_done = true;
  });
  EXPECT_TRUE(wait_until([&] { return second_done || waiting() == 2; }));

  std::vector<std::string> seen;
  EventQuery q;
  auto read = [&] {
    auto page = reader->query_events(q);
    ASSERT_TRUE(page) << page.error().message();
    for (const EventRow& r : *page) {
      seen.push_back(r.event_id);
      q.after_row = r.row;
    }
  };
  read();
  admin("SELECT pg_advisory_unlock(" + hold + ")");
  first.join();
  second.join();
  read();
  EXPECT_EQ(seen, (std::vector<std::string>{"id-1", "id-2"}));
}

TEST_P(PostgresStoreTest, WrongPasswordIsAnAuthenticationError) {
  const std::string pw = password();
  ASSERT_FALSE(pw.empty()) << kPostgresUrlVar << " must carry a password";
  std::string bad = url();
  bad.replace(bad.find(":" + pw + "@"), pw.size() + 2, ":wrong-" + pw + "@");
  auto s = open_store(env_, bad);
  ASSERT_FALSE(s);
  const std::string msg = s.error().message();
  EXPECT_NE(msg.find("authentication failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find(database_name()), std::string::npos) << "names the database: " << msg;
  EXPECT_EQ(msg.find(pw), std::string::npos) << "shows no password: " << msg;
}

TEST_P(PostgresStoreTest, LostConnectionIsReconnectedAndTheCallRunsAgain) {
  auto s = open();
  ASSERT_TRUE(s->create_agent(agent("k")));
  const std::vector<int64_t> before = store_backends();
  ASSERT_EQ(before.size(), 1u);

  terminate_store_backends();
  ASSERT_TRUE(s->touch_agent("k", 5)) << "an idempotent write";
  EXPECT_EQ((*s->find_agent("k"))->last_seen_ns, 5);
  const std::vector<int64_t> after = store_backends();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]) << "a new connection";

  terminate_store_backends();
  auto id = s->create_token({sha256_hex("t"), "web", 1, std::nullopt, 1});
  ASSERT_TRUE(id) << "lost before its BEGIN went through: safe to run again: "
                  << id.error().message();
  terminate_store_backends();
  auto v = s->enroll(sha256_hex("t"), agent("k2"), 1);
  ASSERT_TRUE(v && v->accepted());
  terminate_store_backends();
  auto r = s->insert_events("k", events(1, 3), 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->inserted, 3);
  EXPECT_EQ((*s->list_tokens())[0].used, 1) << "the enrollment counted once";
}

TEST_P(PostgresStoreTest, ReconnectingOnceThenAnErrorAndTheNextCallRecovers) {
  auto s = open();
  ASSERT_TRUE(s->create_agent(agent("k")));
  auto db = admin_->query("SELECT quote_ident(current_database())", pg::Params());
  ASSERT_TRUE(db);
  const std::string name = db->str(0, 0);
  // No new connection to the database for a non-superuser until the limit is lifted.
  admin("ALTER DATABASE " + name + " CONNECTION LIMIT 0");
  struct Lift {
    pg::Conn* admin;
    std::string name;
    ~Lift() { (void)admin->exec("ALTER DATABASE " + name + " CONNECTION LIMIT -1"); }
  } lift{&*admin_, name};
  terminate_store_backends();

  auto r = s->touch_agent("k", 5);
  ASSERT_FALSE(r);
  std::string msg = r.error().message();
  EXPECT_NE(msg.find("reconnecting failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("too many connections"), std::string::npos) << msg;
  EXPECT_NE(msg.find(database_name()), std::string::npos) << msg;
  EXPECT_EQ(msg.find(password()), std::string::npos) << msg;
  auto again = s->find_agent("k");
  ASSERT_FALSE(again) << "each call tries once more";
  EXPECT_NE(again.error().message().find("cannot connect"), std::string::npos)
      << again.error().message();

  admin("ALTER DATABASE " + name + " CONNECTION LIMIT -1");
  ASSERT_TRUE(s->touch_agent("k", 6));
  EXPECT_EQ((*s->find_agent("k"))->last_seen_ns, 6);
}

TEST_P(PostgresStoreTest, NulInTextIsRefusedNotCut) {
  auto s = open();
  NewAgent a = agent("k");
  a.info.hostname = std::string("web\0evil", 8);
  auto r = s->create_agent(a);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, EINVAL);
  EXPECT_FALSE(s->find_agent("k")->has_value());
  EXPECT_FALSE(s->find_agent(std::string("k\0x", 3))) << "not looked up as \"k\"";
}

// ---- no server needed ----

TEST(StoreUrlTest, Sha256HexIsTheDigestOfTheSecret) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(StoreUrlTest, NotAnSqliteFileIsAClearError) {
  RealEnv env;
  testing::TempDir dir;
  dir.write("manager.db", std::string(8192, 'x'), 0600);
  auto s = open_store(env, "sqlite://" + dir / "manager.db");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not an SQLite database"), std::string::npos)
      << s.error().message();
}

TEST(StoreUrlTest, BadUrlsAreRefused) {
  RealEnv env;
  testing::TempDir dir;
  auto mysql = open_store(env, "mysql://u:pw-secret-9@x/y");
  ASSERT_FALSE(mysql);
  EXPECT_EQ(mysql.error().message().find("pw-secret-9"), std::string::npos);
  EXPECT_FALSE(open_store(env, "sqlite://relative.db"));
  EXPECT_FALSE(open_store(env, dir / "manager.db"));
  for (const char* url : {"postgresql://u:pw-secret-9@[::1/db", "postgres://u:pw-secret-9@h/db?x=1",
                          "postgresql://u:pw-secret-9@h:port/db"}) {
    auto s = open_store(env, url);
    ASSERT_FALSE(s) << url;
    EXPECT_EQ(s.error().message().find("pw-secret-9"), std::string::npos) << s.error().message();
  }
}

TEST(StoreUrlTest, UnreachablePostgresIsACannotConnectNamingTheDatabase) {
  RealEnv env;
  testing::TempDir dir;  // a socket directory with no server in it
  auto s = open_store(env, "postgresql://mamori:pw-secret-9@/fleet?host=" + dir.path());
  ASSERT_FALSE(s);
  const std::string msg = s.error().message();
  EXPECT_NE(msg.find("cannot connect"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mamori@" + dir.path() + ":5432/fleet"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("pw-secret-9"), std::string::npos) << msg;
}

TEST_P(StoreTest, FleetHistoryIsPrunedOnceOver) {
  auto s = open();
  auto expired = s->add_ban({"192.0.2.1", 100 * kSec, "", "agent-1", 1 * kSec, true});
  auto lifted = s->add_ban({"192.0.2.2", 0, "", "manager", 1 * kSec, true});
  auto active = s->add_ban({"192.0.2.3", 0, "", "manager", 1 * kSec, true});
  auto unpushed_lift = s->add_ban({"192.0.2.4", 0, "", "manager", 1 * kSec, true});
  auto later = s->add_ban({"192.0.2.5", 1000 * kSec, "", "agent-1", 1 * kSec, true});
  ASSERT_TRUE(expired && lifted && active && unpushed_lift && later);
  ASSERT_TRUE(s->lift_bans("192.0.2.2", 60 * kSec));
  ASSERT_TRUE(s->mark_ban_pushed(*lifted, true));
  ASSERT_TRUE(s->lift_bans("192.0.2.4", 70 * kSec));  // its lift still to push: kept
  ASSERT_TRUE(s->add_command({"c-old", "agent-1", "{}", 5 * kSec}));
  ASSERT_TRUE(s->add_command({"c-new", "agent-1", "{}", 300 * kSec}));

  EXPECT_EQ(*s->prune_fleet(200 * kSec), 3);  // the expired, the lifted, c-old
  EXPECT_EQ(*s->prune_fleet(200 * kSec), 0);
  auto left = s->active_bans(200 * kSec, 100);
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].id, *active);
  EXPECT_EQ((*left)[1].id, *later);
  auto todo = s->unpushed_bans(100);
  ASSERT_EQ(todo->size(), 1u);
  EXPECT_EQ((*todo)[0].id, *unpushed_lift);
  auto commands = s->list_commands(0, std::nullopt, 100);
  ASSERT_EQ(commands->size(), 1u);
  EXPECT_EQ((*commands)[0].command_id, "c-new");
}

TEST_P(StoreTest, BansArePushedOnceAndLiftedOnce) {
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
  // The history: b lifted at 60 s; a expired at 100 s, so past only from then.
  auto past = s->past_bans(60 * kSec, 100);
  ASSERT_TRUE(past);
  ASSERT_EQ(past->size(), 1u);
  EXPECT_EQ((*past)[0].id, *b);
  past = s->past_bans(200 * kSec, 100);
  ASSERT_EQ(past->size(), 2u);
  EXPECT_EQ((*past)[0].id, *b);  // newest first
  EXPECT_EQ((*past)[1].id, *a);
  EXPECT_EQ(s->past_bans(200 * kSec, 1)->size(), 1u);
}

TEST_P(StoreTest, CommandsSentAtOnceAreRecordedSent) {
  auto s = open();
  const std::vector<NewCommand> cs{{"c-1", "agent-1", R"({"v":2,"cmd":"ban"})", 5},
                                   {"c-2", "agent-2", R"({"v":2,"cmd":"ban"})", 5}};
  ASSERT_TRUE(s->add_sent_commands(cs, 6));
  // Sent, not answered: sent again at the agent's next hello.
  EXPECT_EQ(s->unanswered_commands(std::nullopt, 100)->size(), 2u);
  auto all = s->list_commands(0, std::nullopt, 100);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].agent_key, "agent-2");
  EXPECT_EQ((*all)[1].state, CommandState::kSent);
  EXPECT_EQ((*all)[1].sent_at_ns, 6);
  EXPECT_TRUE(*s->record_answer("agent-2", "c-2", R"({"ok":true})", CommandState::kOk, 9));
  auto left = s->unanswered_commands(std::nullopt, 100);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].command_id, "c-1");
  ASSERT_TRUE(s->add_sent_commands({}, 7));
}

TEST_P(StoreTest, CommandsGoPendingSentAnswered) {
  auto s = open();
  auto id = s->add_command({"c-1", "agent-1", R"({"v":2,"cmd":"verify"})", 5});
  ASSERT_TRUE(id);
  ASSERT_TRUE(s->add_command({"c-2", "agent-2", R"({"v":2,"cmd":"verify"})", 6}));
  EXPECT_EQ(s->unanswered_commands(std::nullopt, 100)->size(), 2u);
  auto mine = s->unanswered_commands(std::string("agent-1"), 100);
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].command_id, "c-1");
  ASSERT_TRUE(s->mark_command_sent("c-1", 3));
  ASSERT_TRUE(s->mark_command_sent("c-1", 7));  // sent again (a new channel): the last time
  EXPECT_EQ(s->unanswered_commands(std::string("agent-1"), 100)->size(), 1u);
  // Another agent cannot answer for agent-1.
  EXPECT_FALSE(*s->record_answer("agent-2", "c-1", "{}", CommandState::kOk, 8));
  EXPECT_TRUE(*s->record_answer("agent-1", "c-1", R"({"ok":true})", CommandState::kOk, 9));
  auto row = s->find_command(*id);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->state, CommandState::kOk);
  EXPECT_EQ((*row)->sent_at_ns, 7);
  EXPECT_EQ((*row)->answered_at_ns, 9);
  EXPECT_EQ((*row)->answer_json, R"({"ok":true})");
  EXPECT_TRUE(s->unanswered_commands(std::string("agent-1"), 100)->empty());
  ASSERT_TRUE(s->mark_command_sent("c-1", 10));  // answered: stays so
  EXPECT_EQ((*s->find_command(*id))->state, CommandState::kOk);
  EXPECT_EQ(s->list_commands(*id, std::nullopt, 100)->size(), 1u);  // after c-1: c-2
  EXPECT_EQ(s->list_commands(0, std::string("agent-2"), 100)->size(), 1u);
}

TEST_P(StoreTest, ChangeCounterMovesWithAnotherConnectionsCommits) {
  auto manager = open();
  auto cli = open();
  const int64_t before = *manager->change_counter();
  if (!postgres()) {  // PostgreSQL's counter moves with the reader's own writes too
    ASSERT_TRUE(manager->add_ban({"192.0.2.1", 0, "", "manager", 1, true}));
    EXPECT_EQ(*manager->change_counter(), before);  // its own write: nothing to read
  }
  ASSERT_TRUE(cli->add_ban({"192.0.2.2", 0, "", "manager", 2, false}));
  const int64_t after_ban = *manager->change_counter();
  EXPECT_NE(after_ban, before);
  ASSERT_TRUE(cli->lift_bans("192.0.2.2", 3));  // an UPDATE moves it too
  EXPECT_NE(*manager->change_counter(), after_ban);
  const int64_t after_lift = *manager->change_counter();
  ASSERT_TRUE(cli->add_command({"c-9", "agent-1", "{}", 4}));
  EXPECT_NE(*manager->change_counter(), after_lift);
}

TEST_P(StoreTest, UsersAreUniqueAndTheirChangesEndTheirSessions) {
  auto s = open();
  ASSERT_TRUE(s->create_user({"alice", Role::kAdmin, "$argon2id$a", 1}));
  ASSERT_TRUE(s->create_user({"bob", Role::kViewer, "$argon2id$b", 2}));
  auto dup = s->create_user({"alice", Role::kViewer, "x", 3});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().errnum, EEXIST);
  auto alice = s->find_user("alice");
  ASSERT_TRUE(alice && *alice);
  EXPECT_EQ((*alice)->role, Role::kAdmin);
  EXPECT_EQ((*alice)->password_hash, "$argon2id$a");
  EXPECT_FALSE(*s->find_user("carol"));
  auto list = s->list_users();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].name, "bob");

  ASSERT_TRUE(s->create_session({sha256_hex("s1"), sha256_hex("c1"), "alice", 10, 10, 1000}));
  ASSERT_TRUE(s->create_session({sha256_hex("s2"), sha256_hex("c2"), "bob", 10, 10, 1000}));
  EXPECT_TRUE(*s->use_session(sha256_hex("s1"), 20, 100));
  EXPECT_TRUE(*s->set_password("alice", "$argon2id$new"));
  EXPECT_EQ((*s->find_user("alice"))->password_hash, "$argon2id$new");
  EXPECT_FALSE(*s->use_session(sha256_hex("s1"), 21, 100)) << "a new password ends sessions";
  EXPECT_TRUE(*s->use_session(sha256_hex("s2"), 21, 100));
  EXPECT_TRUE(*s->delete_user("bob"));
  EXPECT_FALSE(*s->delete_user("bob"));
  EXPECT_FALSE(*s->set_password("bob", "x"));
  EXPECT_FALSE(*s->use_session(sha256_hex("s2"), 22, 100)) << "deleting a user ends sessions";
  EXPECT_EQ(to_string(Role::kOperator), "operator");
  EXPECT_EQ(parse_role("admin"), Role::kAdmin);
  EXPECT_EQ(parse_role("root"), std::nullopt);
}

TEST_P(StoreTest, SessionsExpireIdleOrAtTheirLimit) {
  auto s = open();
  ASSERT_TRUE(s->create_session({sha256_hex("a"), sha256_hex("ca"), "u", 0, 0, 1000}));
  ASSERT_TRUE(s->create_session({sha256_hex("b"), sha256_hex("cb"), "u", 0, 0, 1000}));
  auto a = s->use_session(sha256_hex("a"), 90, 100);
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->csrf_hash, sha256_hex("ca"));
  EXPECT_EQ((*a)->last_used_ns, 90);
  EXPECT_TRUE(*s->use_session(sha256_hex("a"), 180, 100)) << "each use restarts the idle time";
  EXPECT_FALSE(*s->use_session(sha256_hex("b"), 180, 100)) << "idle too long";
  EXPECT_FALSE(*s->use_session(sha256_hex("a"), 1000, 2000)) << "past its absolute limit";
  EXPECT_FALSE(*s->use_session(sha256_hex("zz"), 1, 100));
  EXPECT_EQ(*s->prune_sessions(1000, 2000), 2);
  ASSERT_TRUE(s->create_session({sha256_hex("c"), sha256_hex("cc"), "u", 0, 0, 1000}));
  EXPECT_TRUE(*s->delete_session(sha256_hex("c")));
  EXPECT_FALSE(*s->delete_session(sha256_hex("c")));
}

TEST_P(StoreTest, ApiTokensWorkUntilRevoked) {
  auto s = open();
  auto id = s->create_api_token({sha256_hex("t1"), "ci", Role::kOperator, "alice", 5});
  ASSERT_TRUE(id);
  auto t = s->use_api_token(sha256_hex("t1"), 50);
  ASSERT_TRUE(t && *t);
  EXPECT_EQ((*t)->id, *id);
  EXPECT_EQ((*t)->role, Role::kOperator);
  EXPECT_EQ((*t)->name, "ci");
  EXPECT_EQ((*t)->last_used_ns, 50);
  EXPECT_FALSE(*s->use_api_token(sha256_hex("t2"), 50));
  EXPECT_TRUE(*s->revoke_api_token(*id));
  EXPECT_FALSE(*s->revoke_api_token(*id + 100));
  EXPECT_FALSE(*s->use_api_token(sha256_hex("t1"), 60)) << "revoked";
  auto list = s->list_api_tokens();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].revoked);
  EXPECT_EQ((*list)[0].created_by, "alice");
  EXPECT_FALSE(s->create_api_token({sha256_hex("t1"), "again", Role::kViewer, "a", 6}))
      << "a secret hash is unique";
}

TEST_P(StoreTest, AuditIsAppendOnlyInOrderAndPaged) {
  auto s = open();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(s->append_audit(
        {0, i, "user:alice", "192.0.2.1", "login", "", i == 2 ? "bad-password" : "ok"}));
  auto first = s->list_audit(0, 3);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[2].result, "bad-password");
  EXPECT_EQ((*first)[0].address, "192.0.2.1");
  auto rest = s->list_audit((*first)[2].id, 100);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].at_ns, 4);
  auto newest = s->list_audit_newest(0, 2);
  ASSERT_TRUE(newest);
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].id, (*rest)[1].id);
  EXPECT_EQ((*newest)[1].id, (*rest)[0].id);
  auto older = s->list_audit_newest((*newest)[1].id, 100);
  ASSERT_TRUE(older);
  ASSERT_EQ(older->size(), 3u);
  EXPECT_EQ((*older)[0].id, (*first)[2].id);
  EXPECT_EQ((*older)[2].id, (*first)[0].id);
}

}  // namespace
}  // namespace mamori::manager
