#include <poll.h>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/link/command_queue.h"
#include "agent/link/credentials.h"
#include "agent/link/outflow.h"
#include "core/event/event.h"
#include "core/outbox/cursor.h"
#include "core/outbox/outbox.h"
#include "core/proto/channel.h"
#include "testing/temp_dir.h"

namespace mamori::link {
namespace {

const std::string kFp(64, 'a');
const std::string kSecret = proto::channel::base64url(std::string(32, '\x5a'));

std::string token_of(const nlohmann::json& j) {
  return "mamori-token-v1." + proto::channel::base64url(j.dump());
}
std::string good_token() {
  return token_of({{"url", "https://manager.example:8443"}, {"fp", kFp}, {"secret", kSecret}});
}

// ---- the token -------------------------------------------------------------------------

TEST(Token, DecodesUrlFingerprintAndSecret) {
  auto t = decode_token("  " + good_token() + "\n");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->url, "https://manager.example:8443");
  EXPECT_EQ(t->fp, kFp);
  EXPECT_EQ(t->secret, kSecret);
}

TEST(Token, EachDefectIsNamedAndTheSecretNeverQuoted) {
  const nlohmann::json good = {{"url", "https://m:8443"}, {"fp", kFp}, {"secret", kSecret}};
  auto with = [&](const char* key, nlohmann::json v) {
    auto j = good;
    if (v.is_null())
      j.erase(key);
    else
      j[key] = v;
    return token_of(j);
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mamori-token-v2." + proto::channel::base64url(good.dump()), "mamori-token-v1."},
      {"mamori-token-v1.!!!!", "base64url"},
      {"mamori-token-v1." + proto::channel::base64url("[1,2]"), "token"},
      {with("url", nullptr), "url"},
      {with("fp", 5), "fp"},
      {with("secret", ""), "secret"},
      {with("url", "http://m:8443"), "https://"},
      {with("url", "https://m:8443/x"), "no path"},
      {with("url", "https://user@m:8443"), "no user"},
      {with("url", "https://m:99999"), "bad port"},
      {with("fp", std::string(64, 'A')), "fp"},
      {with("fp", std::string(63, 'a')), "fp"},
      {with("secret", kSecret.substr(1)), "secret"},
      {with("secret", kSecret.substr(1) + "+"), "secret"},
  };
  for (const auto& [text, want] : cases) {
    auto t = decode_token(text);
    ASSERT_FALSE(t) << text;
    EXPECT_NE(t.error().message().find(want), std::string::npos)
        << t.error().message() << " (wanted " << want << ")";
    EXPECT_EQ(t.error().message().find(kSecret), std::string::npos);
  }
}

TEST(Url, SplitsHostAndPortIncludingIpv6) {
  auto a = parse_url("https://10.0.0.1:8443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, "8443");
  auto b = parse_url("https://[::1]:9/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, "9");
  auto c = parse_url("https://m");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, "443");
  EXPECT_FALSE(parse_url("https://m:0"));
  EXPECT_FALSE(parse_url("https://:8443"));
  EXPECT_FALSE(parse_url("https://m x:1"));
}

TEST(TokenFile, OthersMayNotWriteItAndAReadableOneIsUsedWithAWarning) {
  testing::TempDir dir;
  std::string warning;
  dir.write("t600", good_token() + "\n# the first line is the token\n", 0600);
  ASSERT_TRUE(read_token_file(dir / "t600", warning));
  EXPECT_EQ(warning, "");

  dir.write("t644", good_token(), 0644);
  ASSERT_TRUE(read_token_file(dir / "t644", warning));
  EXPECT_NE(warning.find("chmod 0600"), std::string::npos) << warning;

  dir.write("t620", good_token(), 0620);
  ::chmod((dir / "t620").c_str(), 0620);  // past the umask
  auto w = read_token_file(dir / "t620", warning);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("writable by group or others"), std::string::npos);

  dir.write("bad", "mamori-token-v1.@@", 0600);
  auto b = read_token_file(dir / "bad", warning);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find(dir / "bad"), std::string::npos) << b.error().message();

  EXPECT_FALSE(read_token_file(dir / "missing", warning));
  dir.mkdir("adir");
  EXPECT_FALSE(read_token_file(dir / "adir", warning));
}

// ---- STATE/manager.json -------------------------------------------------------------

TEST(Credentials, SavedPrivateAndAtomicallyAndLoadedBack) {
  testing::TempDir dir;
  RealEnv env;
  const std::string path = credentials_path(dir.path());
  auto none = load_credentials(path);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  ::umask(022);
  const Credentials c{"https://m:8443", kFp, "key-1", std::string(43, 'c')};
  ASSERT_TRUE(save_credentials(env, path, c));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto back = load_credentials(path);
  ASSERT_TRUE(back && *back);
  EXPECT_EQ((*back)->agent_key, "key-1");
  EXPECT_EQ((*back)->credential, c.credential);
  EXPECT_EQ((*back)->fp, kFp);

  dir.write("manager.json",
            R"({"url":"https://m:8443","fp":"zz","agent_key":"k","credential":"c"})", 0600);
  auto bad = load_credentials(path);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, EBADMSG);
  dir.write("manager.json", "{not json", 0600);
  EXPECT_FALSE(load_credentials(path));
}

// ---- the command hand-off ------------------------------------------------------------

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(CommandQueue, HandsCommandsToThePollingThreadInOrderAndRefusesPastItsBound) {
  auto q = CommandQueue::create(3);
  ASSERT_TRUE(q);
  auto& queue = **q;
  EXPECT_FALSE(readable(queue.fd()));
  EXPECT_TRUE(queue.push({"c1", {{"v", 2}, {"cmd", "ping"}}}));
  EXPECT_TRUE(readable(queue.fd()));
  EXPECT_TRUE(queue.push({"c2", {{"v", 2}, {"cmd", "verify"}}}));
  EXPECT_TRUE(queue.push({"c3", {{"v", 2}, {"cmd", "status"}}}));
  EXPECT_FALSE(queue.push({"c4", {{"v", 2}, {"cmd", "status"}}}));  // full: refused, not queued
  auto got = queue.take();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, "c1");
  EXPECT_EQ(got[1].request["cmd"], "verify");
  EXPECT_EQ(got[2].id, "c3");
  EXPECT_FALSE(readable(queue.fd()));
  EXPECT_TRUE(queue.take().empty());
  EXPECT_TRUE(queue.push({"c5", {}}));  // room again
  EXPECT_EQ(queue.size(), 1u);
}

TEST(CommandQueue, PushFromAnotherThreadWakesThePoller) {
  auto q = CommandQueue::create();
  ASSERT_TRUE(q);
  std::thread t([&] { (*q)->push({"x", {{"cmd", "ping"}}}); });
  pollfd p{(*q)->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  t.join();
  EXPECT_EQ((*q)->take().size(), 1u);
}

// ---- the events and the cursor -------------------------------------------------------

class OutflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto box = outbox::Outbox::open(env_, {dir_ / "outbox", "", {}, nullptr});
    ASSERT_TRUE(box) << box.error().message();
    box_.emplace(std::move(*box));
  }
  void write(int n) {
    for (int i = 0; i < n; ++i)
      box_->append(event::Event("file-restored", event::Severity::kWarning, 1));
    ASSERT_TRUE(box_->flush());
  }
  OutflowOptions options(size_t max_events = 500, size_t in_flight = 4) {
    OutflowOptions o;
    o.outbox_dir = dir_ / "outbox";
    o.start_sequence = box_->next_sequence();
    o.max_events = max_events;
    o.max_in_flight = in_flight;
    o.save_every_ms = 0;
    return o;
  }
  std::optional<uint64_t> saved() {
    auto c = outbox::load_cursor(dir_ / "outbox", "manager");
    return c && *c ? **c : std::optional<uint64_t>{};
  }
  static std::vector<uint64_t> sequences(const Batch& b) {
    std::vector<uint64_t> out;
    for (const auto& e : nlohmann::json::parse(b.events))
      out.push_back(e["event"]["sequence"].get<uint64_t>());
    return out;
  }

  testing::TempDir dir_;
  RealEnv env_;
  std::optional<outbox::Outbox> box_;
};

TEST_F(OutflowTest, ANewLinkRegistersItsCursorAtTheOutboxHeadAndSendsOnlyWhatComesAfter) {
  write(5);  // before the link: not its business (as a new sink)
  Outflow f(env_, options());
  ASSERT_TRUE(f.open());
  EXPECT_EQ(saved(), 6u);  // registered: the outbox keeps every segment from here
  auto none = f.next_batch();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  write(3);
  auto b = f.next_batch();
  ASSERT_TRUE(b && *b);
  EXPECT_EQ(sequences(**b), (std::vector<uint64_t>{6, 7, 8}));
  EXPECT_EQ((*b)->first, 6u);
  EXPECT_EQ((*b)->last, 8u);
}

TEST_F(OutflowTest, TheCursorMovesOnlyOnAnAckAndUnackedEventsAreSentAgain) {
  Outflow f(env_, options(/*max_events=*/2));
  ASSERT_TRUE(f.open());
  write(5);  // sequences 1..5
  auto b1 = f.next_batch();
  auto b2 = f.next_batch();
  ASSERT_TRUE(b1 && *b1 && b2 && *b2);
  EXPECT_EQ(sequences(**b2), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(f.in_flight(), 2u);
  ASSERT_TRUE(f.save(true));
  EXPECT_EQ(f.cursor(), 1u);  // sent is not stored
  EXPECT_EQ(saved(), 1u);

  EXPECT_FALSE(f.ack(5));  // never sent on this connection: refused, nothing moves
  EXPECT_EQ(f.cursor(), 1u);
  EXPECT_TRUE(f.ack(2));
  EXPECT_EQ(f.cursor(), 3u);
  EXPECT_EQ(f.in_flight(), 1u);
  EXPECT_EQ(f.events_acked(), 2u);
  ASSERT_TRUE(f.save(true));
  EXPECT_EQ(saved(), 3u);
  EXPECT_TRUE(f.ack(1));  // an old ack: harmless
  EXPECT_EQ(f.cursor(), 3u);

  // The connection drops: 3 and 4 were never acknowledged, so they go again, ids unchanged.
  const auto ids_before = nlohmann::json::parse((*b2)->events);
  f.rewind();
  auto again = f.next_batch();
  ASSERT_TRUE(again && *again);
  EXPECT_EQ(sequences(**again), (std::vector<uint64_t>{3, 4}));
  const auto ids_after = nlohmann::json::parse((*again)->events);
  EXPECT_EQ(ids_after[0]["event"]["id"], ids_before[0]["event"]["id"]);

  // A restart resumes at the saved cursor.
  Outflow g(env_, options(2));
  ASSERT_TRUE(g.open());
  EXPECT_EQ(g.cursor(), 3u);
  auto resumed = g.next_batch();
  ASSERT_TRUE(resumed && *resumed);
  EXPECT_EQ((*resumed)->first, 3u);
}

TEST_F(OutflowTest, APartAckedBatchSentAgainIsCountedOnce) {
  Outflow f(env_, options(/*max_events=*/5));
  ASSERT_TRUE(f.open());
  write(5);
  auto b = f.next_batch();
  ASSERT_TRUE(b && *b);
  ASSERT_TRUE(f.ack(3));  // the manager stored 1..3 of the batch
  EXPECT_EQ(f.cursor(), 4u);
  EXPECT_EQ(f.events_acked(), 3u);
  f.rewind();  // it asked for the rest again
  auto rest = f.next_batch();
  ASSERT_TRUE(rest && *rest);
  EXPECT_EQ(sequences(**rest), (std::vector<uint64_t>{4, 5}));
  ASSERT_TRUE(f.ack(5));
  EXPECT_EQ(f.cursor(), 6u);
  EXPECT_EQ(f.events_acked(), 5u);
  EXPECT_EQ(f.events_sent(), 7u);  // resends included
}

TEST_F(OutflowTest, AtMostMaxInFlightBatchesWaitForAnAck) {
  Outflow f(env_, options(/*max_events=*/10, /*in_flight=*/3));
  ASSERT_TRUE(f.open());
  write(100);
  for (int i = 0; i < 3; ++i) {
    auto b = f.next_batch();
    ASSERT_TRUE(b && *b);
    EXPECT_EQ((*b)->count, 10u);
  }
  auto blocked = f.next_batch();
  ASSERT_TRUE(blocked);
  EXPECT_FALSE(*blocked);  // the window is full: a slow manager slows the link only
  EXPECT_EQ(f.sent_through(), 31u);
  ASSERT_TRUE(f.ack(10));
  auto next = f.next_batch();
  ASSERT_TRUE(next && *next);
  EXPECT_EQ((*next)->first, 31u);
  ASSERT_TRUE(f.ack(40));
  EXPECT_EQ(f.cursor(), 41u);
  EXPECT_EQ(f.in_flight(), 0u);
}

TEST_F(OutflowTest, TheEventsFrameIsTheChannelCodecsEventsMessage) {
  Outflow f(env_, options(/*max_events=*/3));
  ASSERT_TRUE(f.open());
  write(3);
  auto b = f.next_batch();
  ASSERT_TRUE(b && *b);
  auto m = proto::channel::decode_agent_message(events_frame(**b));
  ASSERT_TRUE(m) << m.error().message;
  const auto* events = std::get_if<proto::channel::Events>(&*m);
  ASSERT_TRUE(events);
  EXPECT_EQ(events->events.size(), 3u);
  EXPECT_EQ(events->highest_sequence(), 3u);
}

TEST_F(OutflowTest, ABatchStaysUnderItsByteBound) {
  auto o = options();
  o.max_bytes = 4096;
  Outflow f(env_, o);
  ASSERT_TRUE(f.open());
  write(200);
  auto b = f.next_batch();
  ASSERT_TRUE(b && *b);
  EXPECT_LT((*b)->count, 200u);
  EXPECT_LE((*b)->events.size(), 4096u + 1024u);  // at most one record past the bound
}

TEST_F(OutflowTest, ADamagedCursorStartsAtTheOldestEventKept) {
  write(4);
  dir_.mkdir("outbox/cursors", 0700);
  dir_.write("outbox/cursors/manager.cursor", "mamori-outbox-cursor 1 3 0\n", 0600);
  Outflow f(env_, options());
  ASSERT_TRUE(f.open());
  auto b = f.next_batch();
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->first, 1u);  // at least once: again rather than lost
}

}  // namespace
}  // namespace mamori::link
