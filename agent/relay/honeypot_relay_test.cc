#include "agent/relay/honeypot_relay.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/event/schema.h"
#include "core/hash/sha256.h"
#include "core/outbox/cursor.h"
#include "core/outbox/format.h"
#include "core/outbox/outbox.h"
#include "core/outbox/reader.h"
#include "core/proto/actions.h"
#include "core/scan/rules.h"
#include "core/scan/scanner.h"
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

  std::unique_ptr<HoneypotRelay> relay(scan::Scanner* scanner = nullptr) {
    RelayOptions o;
    o.scanner = scanner;
    o.downloads_dir = scanner ? tmp_.path() + "/downloads" : "";
    o.on_captured = [this](const hash::Digest& d, const std::string& id) {
      std::lock_guard lock(mu_);
      captured_.emplace_back(d.hex(), id);
    };
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
  std::vector<std::pair<std::string, std::string>> captured_;
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

namespace mamori::relay {
namespace {

// A download event as the honeypot writes it when [downloads] fetch fetched the file.
event::Event fetched(const std::string& sha256, const std::string& ip = "203.0.113.9") {
  auto e = honeypot_event(action::kSshDownloadAttempted, ip);
  e.set("user.name", "root")
      .set("url.original", "http://malware.example/shell.php")
      .set("mamori.ssh.download_result", "fetched")
      .set("file.hash.sha256", sha256)
      .set("file.size", 10);
  return e;
}

std::string sample(const std::string& rel) {
  std::ifstream in(std::string(MAMORI_SOURCE_DIR) + "/core/scan/testdata/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(CaptureTest, DownloadsDirBesideTheOutbox) {
  EXPECT_EQ(honeypot_downloads_dir("/var/lib/mamori-honeypot/outbox"),
            "/var/lib/mamori-honeypot/downloads");
  EXPECT_EQ(honeypot_downloads_dir("/var/lib/mamori-honeypot/outbox/"),
            "/var/lib/mamori-honeypot/downloads");
  EXPECT_EQ(honeypot_downloads_dir("/srv/hp-events"), "");
}

// Hostile names and files: the agent (root) opens a capture of the honeypot's only.
TEST(CaptureTest, OpensOnlyAWholeFileOfTheHoneypotsNamedByItsHash) {
  testing::TempDir t;
  t.mkdir("spool", 0755);
  t.mkdir("spool/downloads", 0700);
  t.write("secret", "root's secret", 0600);
  const std::string dir = t / "spool/downloads";
  const std::string good = std::string(64, 'a');
  t.write("spool/downloads/" + good, "<?php eval(base64_decode($_POST['x']));");
  auto fd = open_capture(dir, good);
  ASSERT_TRUE(fd) << fd.error().message();
  for (const std::string& bad :
       {std::string("../../secret"), std::string("../secret"), std::string(64, 'A'),
        std::string(63, 'a'), std::string(65, 'a'), std::string(62, 'a') + "/x",
        std::string(64, 'a') + std::string(1, '\0'), std::string("")})
    EXPECT_FALSE(open_capture(dir, bad)) << bad;
  // A symlink, a hard link, a FIFO and a directory under a hash's name.
  const std::string sym = std::string(64, 'b'), hard = std::string(64, 'c'),
                    fifo = std::string(64, 'd'), sub = std::string(64, 'e');
  ASSERT_EQ(symlink((t / "secret").c_str(), (dir + "/" + sym).c_str()), 0);
  ASSERT_EQ(link((t / "secret").c_str(), (dir + "/" + hard).c_str()), 0);
  ASSERT_EQ(mkfifo((dir + "/" + fifo).c_str(), 0600), 0);
  t.mkdir("spool/downloads/" + sub);
  for (const auto& name : {sym, hard, fifo, sub}) EXPECT_FALSE(open_capture(dir, name)) << name;
  // The downloads directory itself swapped for a symlink to somewhere else.
  t.mkdir("spool2", 0755);
  t.mkdir("elsewhere", 0700);
  t.write("elsewhere/" + good, "x");
  ASSERT_EQ(symlink((t / "elsewhere").c_str(), (t / "spool2/downloads").c_str()), 0);
  EXPECT_FALSE(open_capture(t / "spool2/downloads", good));
}

TEST_F(RelayTest, ACapturedFileIsScannedAndItsHashLookedUp) {
  scan::RuleOptions ro;
  auto rules = scan::RuleSet::compile(ro);
  ASSERT_TRUE(rules) << rules.error().message();
  scan::Scanner scanner(std::move(*rules), scan::Limits{});
  tmp_.mkdir("downloads", 0700);
  const std::string shell = sample("match/eval_base64.php");
  ASSERT_FALSE(shell.empty());
  const std::string sha = hash::sha256(shell).hex();
  tmp_.write("downloads/" + sha, shell, 0600);
  // Hostile records first: a path for a hash, a hash that is not there, not fetched.
  auto hostile = fetched("../../../etc/shadow");
  write(hostile);
  write(fetched(std::string(64, 'f')));
  auto not_fetched = fetched(sha);
  not_fetched.set("mamori.ssh.download_result", "refused");
  write(not_fetched);
  const auto download = fetched(sha, "198.51.100.7");
  write(download);
  auto r = relay(&scanner);
  // Four relayed (the hostile one too: only its scan is refused), one scan event.
  const auto all = wait_for(4 + 1);
  r->stop();
  ASSERT_EQ(all.size(), 5u);
  const auto& scanned = all.back();
  EXPECT_EQ(scanned.action(), action::kSshDownloadScanned);
  EXPECT_EQ(scanned.get("file.hash.sha256"), sha);
  EXPECT_EQ(scanned.get("mamori.scan.rules"), nlohmann::json::array({"mamori_php_eval_decoded"}));
  EXPECT_EQ(scanned.get("mamori.related_event"), download.id());
  EXPECT_EQ(scanned.get("source.ip"), "198.51.100.7");
  EXPECT_EQ(scanned.severity(), event::Severity::kWarning);
  event::Event stamped = scanned;
  origin_.stamp(stamped);
  stamped.set("event.sequence", 1);
  EXPECT_TRUE(event::Schema::builtin().check(stamped.fields()).empty()) << stamped.to_json_line();
  const auto stats = r->stats();
  EXPECT_EQ(stats.scanned, 1u);
  EXPECT_EQ(stats.not_scanned, 2u) << "the path and the missing file";
  std::lock_guard lock(mu_);
  ASSERT_EQ(captured_.size(), 1u);
  EXPECT_EQ(captured_[0].first, sha);
  EXPECT_EQ(captured_[0].second, download.id());
}

TEST(RelayedEventTest, APruneNeedsNoAddress) {
  event::Event p(action::kSshDownloadPruned, event::Severity::kNotice, 5);
  p.set("event.category", nlohmann::json::array({"file"}))
      .set("file.hash.sha256", std::string(64, 'a'))
      .set("file.size", 10)
      .set("mamori.ssh.download_policy", "quota_mb")
      .set("mamori.ssh.limit_value", 1 << 20)
      .message("pruned");
  auto e = relayed_event(p.to_json_line(), 5);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->get("file.hash.sha256"), std::string(64, 'a'));
}

}  // namespace
}  // namespace mamori::relay
