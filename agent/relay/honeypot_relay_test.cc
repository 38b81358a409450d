#include "agent/relay/honeypot_relay.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/event/schema.h"
#include "core/outbox/cursor.h"
#include "core/outbox/format.h"
#include "core/outbox/outbox.h"
#include "core/outbox/reader.h"
#include "core/proto/actions.h"
#include "testing/temp_dir.h"

namespace mamori::relay {
namespace {

using namespace std::chrono_literals;
namespace action = proto::action;

// An event as the honeypot writes it (honeypot/events.cc).
event::Event honeypot_event(std::string_view act, const std::string& ip = "203.0.113.9") {
  event::Event e(act, event::Severity::kNotice, 1'700'000'000'000'000'000);
  e.set("event.dataset", "mamori.honeypot")
      .set("event.category", nlohmann::json::array({"network"}))
      .set("event.type", nlohmann::json::array({"connection"}))
      .set("source.ip", ip)
      .set("source.port", 40000)
      .set("mamori.ssh.session", std::string(32, 'a'));
  e.message("SSH honeypot event");
  return e;
}

event::Event login(const std::string& user, const std::string& password,
                   const std::string& ip = "203.0.113.9") {
  auto e = honeypot_event(action::kSshLoginFailed, ip);
  e.set("user.name", user)
      .set("event.outcome", "failure")
      .set("mamori.ssh.auth_method", "password")
      .set("mamori.ssh.password", password)
      .set("mamori.ssh.attempt", 1);
  return e;
}

decoy::Decoy a_decoy() {
  decoy::Decoy d;
  d.root = "/srv/www";
  d.rel = "backup.sql";
  d.token = "k3v9x0q2m7aa";
  d.user = "wp_h8q2zz";
  d.password = "p0a9s8s7w6o5r4d3x2y1";
  return d;
}

TEST(RelayedEventTest, KeepsTheHoneypotsFieldsAndStampsTheRest) {
  auto in = login("root", "123456");
  in.set("agent.id", "forged").set("mamori.root", "/etc").set("event.severity", 7);
  in.set("mamori.related_event", std::string(32, 'b'));
  auto e = relayed_event(in.to_json_line(), 5);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->id(), in.id());
  EXPECT_EQ(e->action(), action::kSshLoginFailed);
  EXPECT_EQ(e->severity(), event::Severity::kNotice);
  EXPECT_EQ(e->get("@timestamp"), in.get("@timestamp"));
  EXPECT_EQ(e->get("mamori.ssh.password"), "123456");
  EXPECT_EQ(e->get("user.name"), "root");
  EXPECT_EQ(e->get("source.port"), 40000);
  // Not the honeypot's to say: who the agent is, a guarded root, an incident link.
  EXPECT_TRUE(e->get("agent.id").is_null());
  EXPECT_TRUE(e->get("mamori.root").is_null());
  EXPECT_TRUE(e->get("mamori.related_event").is_null());

  // What the agent relays passes the field list once stamped with its origin.
  RealEnv env;
  const event::Origin origin(
      {"0b8f2b9e-3f4c-4d7e-9a1b-2c3d4e5f6a7b", "web-1", "1.0", "web-1", "web-1"}, env.clock());
  event::Event stamped = *e;
  origin.stamp(stamped);
  stamped.set("event.sequence", 1);
  EXPECT_EQ(event::Schema::builtin().check(stamped.fields()), std::vector<std::string>{});
  EXPECT_EQ(stamped.get("event.dataset"), "mamori.honeypot");

  // A success is a warning whatever the record claims.
  auto ok = honeypot_event(action::kSshLoginSucceeded);
  auto out = relayed_event(ok.to_json_line(), 5);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->severity(), event::Severity::kWarning);
}

TEST(RelayedEventTest, RefusesWhatIsNotAHoneypotEvent) {
  auto refused = [](const std::string& payload) { return !relayed_event(payload, 5); };
  EXPECT_TRUE(refused("not json"));
  EXPECT_TRUE(refused("[1,2]"));
  EXPECT_TRUE(refused(event::Event(action::kFileRestored, event::Severity::kCritical, 5)
                          .set("source.ip", "1.2.3.4")
                          .message("x")
                          .to_json_line()));
  auto bad_id = nlohmann::json::parse(honeypot_event(action::kSshCommand).to_json_line());
  bad_id["event"]["id"] = "../../x";
  EXPECT_TRUE(refused(bad_id.dump()));
  auto no_ip = nlohmann::json::parse(honeypot_event(action::kSshCommand).to_json_line());
  no_ip.erase("source");
  EXPECT_TRUE(refused(no_ip.dump()));
  auto big = honeypot_event(action::kSshCommand);
  big.set("process.command_line", std::string(HoneypotRelay::kMaxRecordBytes, 'x'));
  EXPECT_TRUE(refused(big.to_json_line()));
  std::string deep = honeypot_event(action::kSshCommand).to_json_line();
  deep.pop_back();
  deep += ",\"mamori\":{\"ssh\":{\"x\":" + std::string(100, '[') + std::string(100, ']') + "}}}";
  EXPECT_TRUE(refused(deep));
  // A bad @timestamp is replaced by the relay's time, not refused.
  auto ts = nlohmann::json::parse(honeypot_event(action::kSshCommand).to_json_line());
  ts["@timestamp"] = "yesterday";
  auto e = relayed_event(ts.dump(), 1'000'000'000);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->get("@timestamp"), event::iso_time(1'000'000'000));
}

TEST(RelayedEventTest, TheHoneypotsDropReportsSayWhose) {
  event::Event drop(action::kOutboxDropped, event::Severity::kWarning, 5);
  drop.set("event.category", nlohmann::json::array({"process"}))
      .set("mamori.dropped.reason", "quota")
      .set("mamori.dropped.low", 10)
      .set("mamori.dropped.security", 2)
      .set("mamori.dropped.outbox", "agent")
      .message("outbox quota: 12 events dropped");
  auto e = relayed_event(drop.to_json_line(), 5);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->severity(), event::Severity::kCritical);  // security events went
  EXPECT_EQ(e->get("mamori.dropped.outbox"), "honeypot");
  EXPECT_EQ(e->get("mamori.dropped.low"), 10);
  EXPECT_EQ(e->get("message"), "honeypot: outbox quota: 12 events dropped");
  drop.set("mamori.dropped.security", 0).set("mamori", "not an object");
  auto low = relayed_event(drop.to_json_line(), 5);
  ASSERT_TRUE(low);
  EXPECT_EQ(low->severity(), event::Severity::kWarning);
}

TEST(DecoyCredentialTest, UserOrPassword) {
  const std::vector<decoy::Decoy> decoys = {a_decoy()};
  EXPECT_EQ(decoy_credential(decoys, "root", "p0a9s8s7w6o5r4d3x2y1"), &decoys[0]);
  EXPECT_EQ(decoy_credential(decoys, "wp_h8q2zz", "guess"), &decoys[0]);
  EXPECT_EQ(decoy_credential(decoys, "root", "123456"), nullptr);
  EXPECT_EQ(decoy_credential(decoys, "", ""), nullptr);
}

class RelayTest : public ::testing::Test {
 protected:
  RelayTest() { box_.emplace(outbox::Outbox::open(env_, {dir_, "", {}}).value()); }

  void write(const event::Event& e) {
    box_->append(e);
    ASSERT_TRUE(box_->flush());
  }

  std::unique_ptr<HoneypotRelay> relay() {
    RelayOptions o;
    o.outbox_dir = dir_;
    o.cursor_path = tmp_.path() + "/state/relay/honeypot.cursor";
    o.decoys = {a_decoy()};
    o.origin = &origin_;
    o.poll_ms = 5;
    o.publish = [this](std::vector<event::Event>&& events) {
      std::lock_guard lock(mu_);
      for (auto& e : events) published_.push_back(std::move(e));
      cv_.notify_all();
    };
    o.on_credential = [this](const CredentialSeen& c) {
      std::lock_guard lock(mu_);
      seen_.push_back(c);
    };
    auto r = std::make_unique<HoneypotRelay>(env_, std::move(o));
    r->start();
    return r;
  }

  std::vector<event::Event> wait_for(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return published_.size() >= n; });
    return published_;
  }

  testing::TempDir tmp_;
  RealEnv env_;
  const event::Origin origin_{
      {"0b8f2b9e-3f4c-4d7e-9a1b-2c3d4e5f6a7b", "web-1", "1.0", "web-1", "web-1"}, env_.clock()};
  std::string dir_ = tmp_.path() + "/honeypot-outbox";
  std::optional<outbox::Outbox> box_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<event::Event> published_;
  std::vector<CredentialSeen> seen_;
};

TEST_F(RelayTest, RelaysOnceAcrossRestartsAndLinksDecoyCredentials) {
  write(honeypot_event(action::kSshConnection));
  write(login("root", "123456"));
  {
    auto r = relay();
    ASSERT_EQ(wait_for(2).size(), 2u);
    // Something that is not a honeypot event is skipped, and counted.
    write(event::Event(action::kIpBanned, event::Severity::kCritical, 5)
              .set("source.ip", "192.0.2.1")
              .message("forged"));
    write(login("root", a_decoy().password, "198.51.100.4"));
    const auto all = wait_for(3);
    ASSERT_EQ(all.size(), 3u);
    r->stop();
    EXPECT_EQ(r->stats().rejected, 1u);
    EXPECT_EQ(r->stats().credentials, 1u);
    std::lock_guard lock(mu_);
    ASSERT_EQ(seen_.size(), 1u);
    EXPECT_EQ(seen_[0].decoy->token, "k3v9x0q2m7aa");
    EXPECT_EQ(seen_[0].ip, "198.51.100.4");
    EXPECT_EQ(seen_[0].user, "root");
    EXPECT_EQ(all[2].get("mamori.related_event"), seen_[0].event_id);
  }
  // From the saved cursor: the new events only (a relay that started over would publish
  // the old ones first).
  write(honeypot_event(action::kSshSessionEnded));
  auto r = relay();
  ASSERT_EQ(wait_for(4).size(), 4u);
  write(honeypot_event(action::kSshCommand));
  const auto all = wait_for(5);
  r->stop();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[3].action(), action::kSshSessionEnded);
  EXPECT_EQ(all[4].action(), action::kSshCommand);
  EXPECT_EQ(r->stats().relayed, 2u);
}

TEST_F(RelayTest, RecordsGoneBeforeTheAgentReadThemAreOneGapEvent) {
  // A segment per record, the middle one gone (the honeypot's quota removed it).
  outbox::Limits one_each;
  one_each.segment_bytes = 1;
  box_.reset();
  box_.emplace(outbox::Outbox::open(env_, {dir_, "", one_each}).value());
  // The honeypot's hold (honeypot/main.cc): without a cursor, closed segments go at once.
  ASSERT_TRUE(outbox::save_cursor(env_, dir_, "agent-relay", 1));
  write(honeypot_event(action::kSshConnection));
  write(honeypot_event(action::kSshCommand));
  write(honeypot_event(action::kSshSessionEnded));
  auto segments = outbox::list_segments(dir_);
  ASSERT_TRUE(segments);
  ASSERT_GE(segments->size(), 3u);
  ASSERT_EQ(std::remove(fmt::format("{}/{}", dir_, outbox::segment_name((*segments)[1])).c_str()),
            0);
  auto r = relay();
  const auto all = wait_for(3);
  r->stop();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].action(), action::kSshConnection);
  EXPECT_EQ(all[1].action(), action::kSinkGap);
  EXPECT_EQ(all[1].get("mamori.gap.missed"), 1);
  EXPECT_EQ(all[1].get("mamori.sink"), "honeypot");
  EXPECT_EQ(all[2].action(), action::kSshSessionEnded);
  EXPECT_EQ(r->stats().missed, 1u);
  EXPECT_EQ(r->stats().relayed, 2u);
}

}  // namespace
}  // namespace mamori::relay
