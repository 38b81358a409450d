#include "agent/opcache/opcache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "agent/opcache/fake_fastcgi_for_test.h"
#include "core/fs/admin_files.h"
#include "core/proto/actions.h"
#include "testing/temp_dir.h"

namespace mamori::opcache {
namespace {

using namespace std::string_literals;

std::vector<std::string> split_nul(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find('\0', at);
    if (end == std::string::npos) break;
    out.push_back(body.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::string helper_answer(const std::vector<std::string>& dropped, int cached = 10) {
  std::string body = "mamori-opcache 1\n";
  for (const auto& d : dropped) body += "dropped " + d + '\0';
  body += "done " + std::to_string(cached) + '\0';
  return testing_fcgi::reply(1, "Content-Type: text/plain\r\n\r\n" + body, "");
}

TEST(HelperReply, Reads) {
  auto r =
      parse_helper_reply("mamori-opcache 1\ndropped /a/b.php\0dropped /a/c\nd.php\0done 42\0"s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->complete);
  EXPECT_TRUE(r->enabled);
  EXPECT_EQ(r->cached, 42u);
  EXPECT_EQ(r->dropped, (std::vector<std::string>{"/a/b.php", "/a/c\nd.php"}));
  auto off = parse_helper_reply("mamori-opcache 1\noff disabled\0done 0\0"s);
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->enabled);
  EXPECT_EQ(off->off_reason, "disabled");
  // Cut short: not complete (the call fails it).
  auto cut = parse_helper_reply("mamori-opcache 1\ndropped /a.php\0dro"s);
  ASSERT_TRUE(cut);
  EXPECT_FALSE(cut->complete);
  EXPECT_FALSE(parse_helper_reply("<html>File not found.</html>"));
  EXPECT_FALSE(parse_helper_reply("mamori-opcache 1\nrm -rf /\0"s));
  EXPECT_FALSE(parse_helper_reply("mamori-opcache 1\ndone x\0"s));
}

class Events {
 public:
  void add(std::vector<event::Event>&& es) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& e : es) events_.push_back(std::move(e));
  }
  std::vector<event::Event> all() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<event::Event> events_;
};

struct Fixture {
  testing::TempDir dir;
  RealEnv env;
  Events events;
  WorkerOptions options(const std::string& sock) {
    WorkerOptions o;
    o.mode = config::OpcacheMode::kInvalidate;
    o.endpoint = *parse_endpoint(sock);
    o.helper_path = "/opt/mamori-php/opcache-invalidate.php";
    o.call.peer_uid = ::getuid();
    o.call.timeout = std::chrono::milliseconds(2000);
    o.roots = {{"/srv/www", "/real/www"}};
    o.second_pass = std::chrono::milliseconds(0);
    o.publish = [this](std::vector<event::Event>&& es) { events.add(std::move(es)); };
    return o;
  }
};

TEST(OpcacheWorker, DropsARestoredScriptAndLinksTheGuardsEvent) {
  Fixture f;
  std::vector<std::string> asked;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", [&](const testing_fcgi::Request& r) {
    EXPECT_EQ(r.params.at("SCRIPT_FILENAME"), "/opt/mamori-php/opcache-invalidate.php");
    EXPECT_EQ(r.params.at("MAMORI_OPCACHE"), "1");
    EXPECT_EQ(r.params.at("REQUEST_METHOD"), "POST");
    EXPECT_EQ(r.params.at("CONTENT_LENGTH"), std::to_string(r.body.size()));
    asked = split_nul(r.body);
    return helper_answer({"/real/www/index.php", "/real/www/other.php"});
  });
  {
    Worker w(f.env, f.options(f.dir / "fpm.sock"));
    w.acted("/srv/www", "index.php", proto::action::kFileRestored, "ev-1");
    w.acted("/elsewhere", "x.php", proto::action::kFileRestored, "ev-2");  // not a root
    w.wait_idle_for_test();
    EXPECT_EQ(w.counters().rounds, 1u);
  }
  EXPECT_EQ(asked, std::vector<std::string>{"/real/www/index.php"});
  auto es = f.events.all();
  ASSERT_EQ(es.size(), 1u);
  const auto& e = es[0];
  EXPECT_EQ(e.action(), proto::action::kOpcacheInvalidated);
  EXPECT_EQ(e.get("mamori.related_event"), "ev-1");
  EXPECT_EQ(e.get("mamori.root"), "/srv/www");
  EXPECT_EQ(e.get("mamori.opcache.method"), "invalidate");
  EXPECT_EQ(e.get("mamori.opcache.dropped"), nlohmann::json::array({"/real/www/index.php"}));
  EXPECT_EQ(e.get("mamori.opcache.dropped_count"), 1);
  EXPECT_EQ(e.get("mamori.opcache.cached"), 10);
  EXPECT_EQ(e.get("event.outcome"), "success");
  EXPECT_TRUE(e.get("event.duration").is_number_integer());
}

TEST(OpcacheWorker, AQuarantinedDirectoryDropsWhatIsUnderIt) {
  Fixture f;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", [&](const testing_fcgi::Request& r) {
    EXPECT_EQ(split_nul(r.body), (std::vector<std::string>{"/real/www/up/sh"}));
    return helper_answer({"/real/www/up/sh/a.php", "/real/www/up/sh/b/c.inc"});
  });
  {
    Worker w(f.env, f.options(f.dir / "fpm.sock"));
    w.acted("/srv/www", "up/sh", proto::action::kFileQuarantined, "ev-q");
    w.wait_idle_for_test();
  }
  auto es = f.events.all();
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].get("mamori.opcache.dropped_count"), 2);
}

TEST(OpcacheWorker, APoolThatRefusesIsAFailedEventNamingWhy) {
  Fixture f;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", [&](const testing_fcgi::Request&) {
    return testing_fcgi::reply(
        1, "Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nFile not found.\n",
        "Primary script unknown");
  });
  {
    Worker w(f.env, f.options(f.dir / "fpm.sock"));
    w.acted("/srv/www", "a.php", proto::action::kFileRestored, "ev-1");
    w.acted("/srv/www", "b.php", proto::action::kFileRestored, "");  // a summary's
    w.wait_idle_for_test();
    EXPECT_GE(w.counters().failures, 1u);  // one round, or two
  }
  auto es = f.events.all();
  ASSERT_GE(es.size(), 1u);
  for (const auto& e : es) {
    EXPECT_EQ(e.action(), proto::action::kOpcacheFailed);
    EXPECT_EQ(e.severity(), event::Severity::kCritical);
    EXPECT_NE(e.get("error.message").get<std::string>().find("Primary script unknown"),
              std::string::npos);
  }
}

TEST(OpcacheWorker, APoolWithoutOpcacheIsNothingToDrop) {
  Fixture f;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", [&](const testing_fcgi::Request&) {
    return testing_fcgi::reply(1, "\r\nmamori-opcache 1\noff opcache is disabled\0done 0\0"s, "");
  });
  {
    Worker w(f.env, f.options(f.dir / "fpm.sock"));
    w.acted("/srv/www", "a.php", proto::action::kFileRestored, "ev-1");
    w.wait_idle_for_test();
  }
  auto es = f.events.all();
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].action(), proto::action::kOpcacheInvalidated);
  EXPECT_EQ(es[0].get("mamori.opcache.enabled"), false);
}

TEST(OpcacheWorker, ASecondPassDropsWhatRacedTheFirstAndIsNotReported) {
  Fixture f;
  int calls = 0;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", [&](const testing_fcgi::Request&) {
    // The first pass finds nothing; a compile that read the tampered file before the
    // restore stored it after: the second pass drops it.
    return ++calls == 1 ? helper_answer({}) : helper_answer({"/real/www/a.php"});
  });
  {
    auto o = f.options(f.dir / "fpm.sock");
    o.second_pass = std::chrono::milliseconds(20);
    Worker w(f.env, std::move(o));
    w.acted("/srv/www", "a.php", proto::action::kFileRestored, "ev-1");
    w.wait_idle_for_test();
    EXPECT_EQ(w.counters().rounds, 2u);
    EXPECT_EQ(w.counters().dropped, 1u);
  }
  // One event: the second pass cannot tell a raced compile from a fresh one.
  auto es = f.events.all();
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].get("mamori.opcache.dropped_count"), 0);
}

TEST(OpcacheWorker, ABusyPoolTimesOutAndTheGuardNeverWaits) {
  Fixture f;
  testing_fcgi::FakeServer server(f.dir / "fpm.sock", nullptr);  // never answers
  auto o = f.options(f.dir / "fpm.sock");
  o.call.timeout = std::chrono::milliseconds(300);
  {
    Worker w(f.env, std::move(o));
    const auto t0 = f.env.clock().monotonic();
    for (int i = 0; i < 100; ++i)
      w.acted("/srv/www", "a" + std::to_string(i) + ".php", proto::action::kFileRestored, "ev");
    // acted() only queues: 100 calls take far less than one exchange's timeout.
    EXPECT_LT(f.env.clock().monotonic() - t0, std::chrono::milliseconds(100));
    w.wait_idle_for_test();
  }
  auto es = f.events.all();
  ASSERT_FALSE(es.empty());
  EXPECT_EQ(es.back().action(), proto::action::kOpcacheFailed);
}

TEST(OpcacheWorker, ReloadRefusesAPidThatIsNotPhpFpmsMaster) {
  Fixture f;
  f.dir.write("fpm.pid", std::to_string(::getpid()) + "\n");
  auto o = f.options(f.dir / "none.sock");
  o.mode = config::OpcacheMode::kReload;
  o.pid_file = f.dir / "fpm.pid";
  {
    Worker w(f.env, std::move(o));
    w.acted("/srv/www", "a.php", proto::action::kFileRestored, "ev-1");
    w.wait_idle_for_test();
  }
  auto es = f.events.all();
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].action(), proto::action::kOpcacheFailed);
  EXPECT_NE(es[0].get("error.message").get<std::string>().find("not php-fpm's master"),
            std::string::npos);
}

TEST(Helper, InstalledRootsOwnedReadableAndRefusedInAnUnsafeDirectory) {
  ASSERT_EQ(::geteuid(), 0u) << "run as root: the helper's directory must be root's";
  testing::TempDir dir;
  RealEnv env;
  const std::string path = dir / "php/opcache-invalidate.php";
  ASSERT_TRUE(install_helper(env, path));
  struct stat st {};
  ASSERT_EQ(::stat((dir / "php").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(dir.read("php/opcache-invalidate.php"), helper_source());
  // Changed by someone: put back.
  dir.write("php/opcache-invalidate.php", "<?php system($_GET['c']);");
  ASSERT_TRUE(install_helper(env, path));
  EXPECT_EQ(dir.read("php/opcache-invalidate.php"), helper_source());
  // A directory others may write: whoever could replace the helper runs code in the pool.
  dir.mkdir("open", 0777);
  ASSERT_EQ(::chmod((dir / "open").c_str(), 0777), 0);
  auto refused = install_helper(env, dir / "open/h.php");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().errnum, EPERM);
}

}  // namespace
}  // namespace mamori::opcache
