#include "core/scan/lookup.h"

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/fs/admin_files.h"
#include "testing/child_server.h"
#include "testing/refused_port.h"
#include "testing/sim_env.h"
#include "testing/temp_dir.h"

namespace mamori::scan {
namespace {

using Kind = LookupAnswer::Kind;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::string_view kGood = R"({"data": {"type": "file", "id": "x", "attributes": {
  "meaningful_name": "shell.php",
  "popular_threat_classification": {"suggested_threat_label": "trojan.php/webshell"},
  "last_analysis_stats": {"malicious": 31, "suspicious": 2, "undetected": 27,
                          "harmless": 0, "timeout": 1, "type-unsupported": 14}}}})";

hash::Digest digest(int i) { return hash::sha256("sample " + std::to_string(i)); }

TEST(InterpretVtReply, GoodReply) {
  auto a = interpret_vt_reply(200, kGood, false);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(Kind::kVerdict, a->kind);
  EXPECT_TRUE(a->verdict.known);
  EXPECT_EQ((VtStats{31, 2, 27, 0}), a->verdict.stats);
  EXPECT_EQ("shell.php", a->verdict.name);
  EXPECT_EQ("trojan.php/webshell", a->verdict.label);
}

TEST(InterpretVtReply, NamesAreOptionalAndOddCountsAreZero) {
  auto a = interpret_vt_reply(
      200,
      R"({"data": {"attributes": {"last_analysis_stats": {"malicious": -3, "suspicious": "7",
          "undetected": 1e3, "harmless": 4}, "meaningful_name": 12}}})",
      false);
  ASSERT_TRUE(a);
  EXPECT_EQ(Kind::kVerdict, a->kind);
  EXPECT_EQ((VtStats{0, 0, 0, 4}), a->verdict.stats);
  EXPECT_EQ("", a->verdict.name);
  EXPECT_EQ("", a->verdict.label);
}

TEST(InterpretVtReply, NotFoundIsAVerdict) {
  auto a = interpret_vt_reply(404, R"({"error": {"code": "NotFoundError"}})", false);
  ASSERT_TRUE(a);
  EXPECT_EQ(Kind::kVerdict, a->kind);
  EXPECT_FALSE(a->verdict.known);
}

TEST(InterpretVtReply, QuotaAndServerErrorsAreRetriedLater) {
  auto a = interpret_vt_reply(429, R"({"error": {"code": "QuotaExceededError"}})", false);
  ASSERT_TRUE(a);
  EXPECT_EQ(Kind::kRetryLater, a->kind);
  EXPECT_EQ("HTTP 429 QuotaExceededError", a->why);
  auto b = interpret_vt_reply(503, "<html>busy</html>", false);
  ASSERT_TRUE(b);
  EXPECT_EQ(Kind::kRetryLater, b->kind);
  EXPECT_EQ("HTTP 503", b->why);
  // A hostile error code cannot put control characters into a message.
  auto c = interpret_vt_reply(429, "{\"error\": {\"code\": \"a\\u001b[2Jb\"}}", false);
  ASSERT_TRUE(c);
  EXPECT_EQ("HTTP 429", c->why);
}

TEST(InterpretVtReply, RefusedKeyStopsEverything) {
  auto a = interpret_vt_reply(401, R"({"error": {"code": "WrongCredentialsError"}})", false);
  ASSERT_FALSE(a);
  EXPECT_NE(std::string::npos, a.error().message().find("API key was refused (HTTP 401"));
}

TEST(InterpretVtReply, GarbageHugeAndDeepRepliesFail) {
  for (std::string_view body :
       {std::string_view("<html>"), std::string_view(""), std::string_view("[1,2]"),
        std::string_view(R"({"data": 3})"), std::string_view(R"({"data": {"attributes": {}}})")}) {
    auto a = interpret_vt_reply(200, body, false);
    ASSERT_TRUE(a);
    EXPECT_EQ(Kind::kFailed, a->kind) << body;
  }
  auto huge = interpret_vt_reply(200, std::string(100, '{'), true);
  ASSERT_TRUE(huge);
  EXPECT_EQ(Kind::kFailed, huge->kind);
  EXPECT_EQ("reply larger than the cap", huge->why);
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  auto d = interpret_vt_reply(200, deep, false);
  ASSERT_TRUE(d);
  EXPECT_EQ(Kind::kFailed, d->kind);
  auto odd = interpret_vt_reply(302, "", false);
  ASSERT_TRUE(odd);
  EXPECT_EQ(Kind::kFailed, odd->kind);
}

TEST(ApiKeyFile, OwnerOnlyFirstLine) {
  testing::TempDir dir;
  dir.write("key", "secret-key-123\nsecond line\n", 0600);
  auto k = read_api_key_file(dir / "key");
  ASSERT_TRUE(k) << k.error().message();
  EXPECT_EQ("secret-key-123", *k);

  dir.write("open", "secret-key-456\n", 0644);
  auto open = read_api_key_file(dir / "open");
  ASSERT_FALSE(open);
  EXPECT_NE(std::string::npos, open.error().message().find("chmod 600"));
  EXPECT_EQ(std::string::npos, open.error().message().find("secret-key-456"));

  dir.write("bad", "secret key with spaces\n", 0600);
  auto bad = read_api_key_file(dir / "bad");
  ASSERT_FALSE(bad);
  EXPECT_EQ(std::string::npos, bad.error().message().find("secret"));
  EXPECT_FALSE(read_api_key_file(dir / "missing"));
}

TEST(VtClient, RejectsBadSettingsWithoutTheKey) {
  auto bad_url = VtClient::make({.base_url = "ftp://vt.example", .api_key = "k-secret"});
  ASSERT_FALSE(bad_url);
  EXPECT_EQ(std::string::npos, bad_url.error().message().find("k-secret"));
  auto bad_key = VtClient::make({.api_key = "k-secret\r\nX-Injected: 1"});
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(std::string::npos, bad_key.error().message().find("k-secret"));
}

TEST(VtClient, DeadServerIsRetriedLaterAndTheKeyIsNotInTheReason) {
  testing::RefusedPort port;
  auto c = VtClient::make(
      {.base_url = "http://127.0.0.1:" + std::to_string(port.port()), .api_key = "k-secret-789"});
  ASSERT_TRUE(c) << c.error().message();
  auto a = (*c)->lookup(digest(1));
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(Kind::kRetryLater, a->kind);
  EXPECT_EQ(std::string::npos, a->why.find("k-secret-789"));
}

TEST(VtClient, AgainstALocalServerLikeVt) {
  testing::TempDir dir;
  const hash::Digest known = digest(1), unknown = digest(2), huge = digest(3), junk = digest(4);
  dir.write("known", known.hex() + " 5 1 60 2 trojan.php/x\n");
  testing::ChildServer server("vt_server.py",
                              {dir / "out", "--key", "good-key", "--known", dir / "known", "--huge",
                               huge.hex(), "--garbage", junk.hex(), "--status-at", "5:429"});
  ASSERT_NE(0, server.port());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  auto c = VtClient::make({.base_url = base + "/", .api_key = "good-key"});
  ASSERT_TRUE(c);
  auto a = (*c)->lookup(known);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(Kind::kVerdict, a->kind);
  EXPECT_TRUE(a->verdict.known);
  EXPECT_EQ((VtStats{5, 1, 60, 2}), a->verdict.stats);
  EXPECT_EQ("trojan.php/x", a->verdict.label);
  EXPECT_EQ("sample.php", a->verdict.name);
  auto u = (*c)->lookup(unknown);
  ASSERT_TRUE(u);
  EXPECT_EQ(Kind::kVerdict, u->kind);
  EXPECT_FALSE(u->verdict.known);
  auto h = (*c)->lookup(huge);
  ASSERT_TRUE(h);
  EXPECT_EQ(Kind::kFailed, h->kind);
  EXPECT_EQ("reply larger than the cap", h->why);
  auto g = (*c)->lookup(junk);
  ASSERT_TRUE(g);
  EXPECT_EQ(Kind::kFailed, g->kind);
  auto q = (*c)->lookup(known);  // the 5th request: 429
  ASSERT_TRUE(q);
  EXPECT_EQ(Kind::kRetryLater, q->kind);
  EXPECT_EQ("HTTP 429 QuotaExceededError", q->why);

  auto wrong = VtClient::make({.base_url = base, .api_key = "wrong-key-000"});
  ASSERT_TRUE(wrong);
  auto w = (*wrong)->lookup(known);
  ASSERT_FALSE(w);
  EXPECT_EQ(std::string::npos, w.error().message().find("wrong-key-000"));
  EXPECT_NE(std::string::npos, w.error().message().find("WrongCredentialsError"));
  server.stop();
  std::ifstream log(dir / "out/requests.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(log, line)) {
    ++n;
    EXPECT_NE(std::string::npos, line.find("\"method\": \"GET\"")) << line;
    EXPECT_NE(std::string::npos, line.find("\"body_bytes\": 0")) << line;
  }
  EXPECT_EQ(6, n);
}

// A HashLookup that answers from a script and counts.
class FakeLookup : public HashLookup {
 public:
  Result<LookupAnswer> lookup(const hash::Digest& sha256) override {
    asked.push_back(sha256);
    if (!script.empty()) {
      auto a = script.front();
      script.erase(script.begin());
      return a;
    }
    LookupAnswer a;
    a.kind = Kind::kVerdict;
    a.verdict.known = true;
    a.verdict.stats.malicious = 1;
    return a;
  }
  std::vector<hash::Digest> asked;
  std::vector<Result<LookupAnswer>> script;
};

class LookupQueueTest : public ::testing::Test {
 protected:
  Result<LookupQueue> open(LookupLimits limits = {}) {
    return LookupQueue::open(env, dir / "lookup.json", limits);
  }
  testing::TempDir dir;
  testing::SimEnv env;
};

TEST_F(LookupQueueTest, FourAMinuteThenTheRest) {
  auto q = open();
  ASSERT_TRUE(q) << q.error().message();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(q->enqueue(digest(i)));
  EXPECT_FALSE(q->enqueue(digest(3)));  // deduplicated
  FakeLookup vt;
  auto d = q->drain(vt);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(4u, d->sent);
  EXPECT_EQ(6u, q->waiting_count());
  EXPECT_FALSE(q->may_send());
  EXPECT_EQ(env.clock().now() + minutes(1), q->next_slot());
  env.sim().advance(seconds(59));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(4u, vt.asked.size());
  env.sim().advance(seconds(1));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(8u, vt.asked.size());
  env.sim().advance(minutes(1));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(10u, vt.asked.size());
  EXPECT_EQ(0u, q->waiting_count());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(digest(i), vt.asked[static_cast<size_t>(i)]);  // oldest first
    ASSERT_TRUE(q->cached(digest(i)));
  }
}

TEST_F(LookupQueueTest, DailyLimit) {
  auto q = open({.per_minute = 100, .per_day = 500});
  ASSERT_TRUE(q);
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(q->enqueue(digest(i)));
  FakeLookup vt;
  for (int m = 0; m < 10; ++m) {
    ASSERT_TRUE(q->drain(vt));
    env.sim().advance(minutes(1));
  }
  EXPECT_EQ(500u, vt.asked.size());
  EXPECT_EQ(500u, q->sent_last_day());
  env.sim().advance(std::chrono::hours(23));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(500u, vt.asked.size());  // the first requests are 23 h 10 min old
  env.sim().advance(minutes(50));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(600u, vt.asked.size());
}

TEST_F(LookupQueueTest, ARestartKeepsTheCountsTheQueueAndTheVerdicts) {
  FakeLookup vt;
  {
    auto q = open();
    ASSERT_TRUE(q);
    for (int i = 0; i < 6; ++i) q->enqueue(digest(i));
    ASSERT_TRUE(q->drain(vt));
  }
  struct stat st {};
  ASSERT_EQ(0, ::stat((dir / "lookup.json").c_str(), &st));
  EXPECT_EQ(0600u, st.st_mode & 07777);
  env.sim().advance(seconds(30));
  auto q = open();
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(2u, q->waiting_count());
  EXPECT_EQ(4u, q->sent_last_minute());
  EXPECT_FALSE(q->may_send());
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(4u, vt.asked.size());  // the restart did not reset the minute
  auto v = q->cached(digest(0));
  ASSERT_TRUE(v);
  EXPECT_EQ(1u, v->verdict.stats.malicious);
  env.sim().advance(seconds(30));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(6u, vt.asked.size());
}

TEST_F(LookupQueueTest, TheClockGoingBackDoesNotFreeTheBudget) {
  auto q = open();
  ASSERT_TRUE(q);
  for (int i = 0; i < 8; ++i) q->enqueue(digest(i));
  FakeLookup vt;
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(4u, vt.asked.size());
  const auto sent_at = env.clock().now();
  env.sim().set(sent_at - std::chrono::hours(1));  // NTP, or an administrator's `date`
  EXPECT_EQ(4u, q->sent_last_minute());            // requests "in the future" still count
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(4u, vt.asked.size());
  env.sim().set(sent_at + minutes(1));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(8u, vt.asked.size());
}

TEST_F(LookupQueueTest, RetryLaterPausesAndKeepsTheHashFirst) {
  auto q = open({.per_minute = 100});
  ASSERT_TRUE(q);
  for (int i = 0; i < 3; ++i) q->enqueue(digest(i));
  FakeLookup vt;
  LookupAnswer retry;
  retry.kind = Kind::kRetryLater;
  retry.why = "HTTP 429";
  vt.script.push_back(retry);
  auto d = q->drain(vt);
  ASSERT_TRUE(d);
  EXPECT_EQ(1u, d->sent);
  EXPECT_EQ(1u, d->retry);
  EXPECT_EQ(3u, q->waiting_count());
  env.sim().advance(seconds(59));
  ASSERT_TRUE(q->drain(vt));
  EXPECT_EQ(1u, vt.asked.size());
  env.sim().advance(seconds(1));
  ASSERT_TRUE(q->drain(vt));
  ASSERT_EQ(4u, vt.asked.size());
  EXPECT_EQ(digest(0), vt.asked[1]);
}

TEST_F(LookupQueueTest, ARefusedKeyStopsAndKeepsTheHash) {
  auto q = open();
  ASSERT_TRUE(q);
  q->enqueue(digest(0));
  q->enqueue(digest(1));
  FakeLookup vt;
  vt.script.push_back(fail_msg("virustotal look-up", "", "the API key was refused"));
  ASSERT_FALSE(q->drain(vt));
  EXPECT_EQ(2u, q->waiting_count());
  EXPECT_EQ(1u, q->sent_last_minute());
}

TEST_F(LookupQueueTest, FailedRepliesAreCountedAndDropped) {
  auto q = open();
  ASSERT_TRUE(q);
  q->enqueue(digest(0));
  FakeLookup vt;
  LookupAnswer bad;
  bad.kind = Kind::kFailed;
  vt.script.push_back(bad);
  auto d = q->drain(vt);
  ASSERT_TRUE(d);
  EXPECT_EQ(1u, d->failed);
  EXPECT_EQ(1u, q->failed());
  EXPECT_EQ(0u, q->waiting_count());
  EXPECT_FALSE(q->cached(digest(0)));
}

TEST_F(LookupQueueTest, BoundedQueueDropsTheOldest) {
  auto q = open({.max_queue = 3});
  ASSERT_TRUE(q);
  for (int i = 0; i < 5; ++i) q->enqueue(digest(i));
  EXPECT_EQ(3u, q->waiting_count());
  EXPECT_EQ(2u, q->dropped());
  EXPECT_FALSE(q->waiting(digest(0)));
  EXPECT_TRUE(q->waiting(digest(4)));
}

TEST_F(LookupQueueTest, VerdictsExpireAndTheCacheIsBounded) {
  auto q = open({.per_minute = 100, .max_cache = 3});
  ASSERT_TRUE(q);
  FakeLookup vt;
  LookupAnswer unknown;
  unknown.kind = Kind::kVerdict;
  vt.script.push_back(unknown);
  q->enqueue(digest(0));
  ASSERT_TRUE(q->drain(vt));
  q->enqueue(digest(1));
  ASSERT_TRUE(q->drain(vt));
  ASSERT_TRUE(q->cached(digest(0)));
  EXPECT_FALSE(q->cached(digest(0))->verdict.known);
  env.sim().advance(std::chrono::hours(24 * 7));
  EXPECT_FALSE(q->cached(digest(0)));  // unknown: 7 days
  EXPECT_TRUE(q->cached(digest(1)));   // known: 30 days
  env.sim().advance(std::chrono::hours(24 * 23));
  EXPECT_FALSE(q->cached(digest(1)));
  for (int i = 10; i < 15; ++i) {
    q->enqueue(digest(i));
    ASSERT_TRUE(q->drain(vt));
    env.sim().advance(seconds(1));
  }
  EXPECT_FALSE(q->cached(digest(10)));
  EXPECT_FALSE(q->cached(digest(11)));
  EXPECT_TRUE(q->cached(digest(14)));
}

TEST_F(LookupQueueTest, OneProcessAtATime) {
  auto first = open();
  ASSERT_TRUE(first) << first.error().message();
  auto second = open();  // another open file description: the lock conflicts
  ASSERT_FALSE(second);
  EXPECT_NE(std::string::npos, second.error().message().find("lookup.json.lock"));
  EXPECT_EQ(EWOULDBLOCK, second.error().errnum);  // the agent's worker tries again on it
  first = fail_msg("test", "", "closed");         // drops the first queue and its lock
  EXPECT_TRUE(open());
}

TEST_F(LookupQueueTest, ACorruptFileIsRefusedNamingIt) {
  dir.write("lookup.json", "{\"format\": \"mamori-lookup-1\", \"queue\": [1]}", 0600);
  auto q = open();
  ASSERT_FALSE(q);
  EXPECT_NE(std::string::npos, q.error().message().find("lookup.json"));
  dir.write("lookup.json", "garbage", 0600);
  EXPECT_FALSE(open());
  dir.write("lookup.json", std::string(1000, '['), 0600);
  EXPECT_FALSE(open());
}

}  // namespace
}  // namespace mamori::scan

namespace mamori::scan {
namespace {

TEST_F(LookupQueueTest, RelatedIdsAreKeptWithTheHashAcrossARestart) {
  FakeLookup vt;
  {
    auto q = open({.per_minute = 1});
    ASSERT_TRUE(q);
    EXPECT_TRUE(q->enqueue(digest(0), "ev-a"));
    EXPECT_TRUE(q->enqueue(digest(1), "ev-b"));
    EXPECT_FALSE(q->enqueue(digest(1), "ev-c"));  // waits already: the id is added
    EXPECT_FALSE(q->enqueue(digest(1), "ev-c"));  // once
    for (int i = 0; i < 20; ++i) q->enqueue(digest(2), "ev-" + std::to_string(i));
    auto d = q->drain(vt);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->answered_hashes, std::vector<hash::Digest>{digest(0)});
    EXPECT_EQ(q->take_related(digest(0)), std::vector<std::string>{"ev-a"});
    EXPECT_TRUE(q->take_related(digest(0)).empty());
    ASSERT_TRUE(q->save());
  }
  auto q = open({.per_minute = 1});
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->take_related(digest(1)), (std::vector<std::string>{"ev-b", "ev-c"}));
  EXPECT_EQ(q->take_related(digest(2)).size(), LookupQueue::kMaxRelated);
  env.sim().advance(minutes(1));
  auto d = q->drain(vt);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->answered_hashes, std::vector<hash::Digest>{digest(1)});
}

TEST_F(LookupQueueTest, AFileWithoutRelatedIdsStillLoadsAndBadOnesAreRefused) {
  const std::string old = R"({"format": "mamori-lookup-1", "queue": [], "dropped": 0,
      "failed": 0, "retry_at": 0, "requests": [], "cache": []})";
  ASSERT_TRUE(fs::write_file_atomic(env, dir / "lookup.json", old, 0600));
  ASSERT_TRUE(open());
  std::string bad = old;
  bad.insert(bad.size() - 1, R"(, "related": {"zz": ["x"]})");
  ASSERT_TRUE(fs::write_file_atomic(env, dir / "lookup.json", bad, 0600));
  auto q = open();
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message().find("lookup.json"), std::string::npos);
}

}  // namespace
}  // namespace mamori::scan
