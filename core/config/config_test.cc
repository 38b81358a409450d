#include "core/config/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace mamori::config {
namespace {

LoadError error_of(std::string_view text) {
  auto c = parse_config(text, "m.toml");
  EXPECT_FALSE(c) << "expected an error for: " << text;
  return c ? LoadError{} : c.error();
}

TEST(Config, LoadsTheDocumentedMinimum) {
  auto c = parse_config(R"(
state_dir = "/var/lib/mamori"
[[root]]
path = "/var/www/html/"
mode = "preserve"
exclude = ["wp-content/cache/**"]
)",
                        "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  ASSERT_EQ(c->roots.size(), 1u);
  EXPECT_EQ(c->roots[0].path, "/var/www/html");
  EXPECT_EQ(c->roots[0].mode, Mode::kPreserve);
  EXPECT_EQ(c->roots[0].exclude.size(), 1u);
}

TEST(Config, UnknownKeyNamesLineColumnAndSuggests) {
  const auto e = error_of("state_dir = \"/s\"\n[[root]]\npath = \"/w\"\nmdoe = \"alert\"\n");
  EXPECT_EQ(e.code, "config.unknown_key");
  EXPECT_EQ(e.key, "root[1].mdoe");
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_NE(e.message.find("did you mean 'mode'"), std::string::npos);
  EXPECT_EQ(e.text().rfind("m.toml:4:1: root[1].mdoe: unknown key", 0), 0u);
}

TEST(Config, WrongTypesAndValues) {
  EXPECT_EQ(error_of("state_dir = 5\n").code, "config.type");
  EXPECT_EQ(error_of("state_dir = 5\n").key, "state_dir");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nmode = \"fix\"\n").code, "config.value");
  EXPECT_EQ(error_of("[[root]]\npath = \"relative\"\n").key, "root[1].path");
  EXPECT_EQ(error_of("[[root]]\nmode = \"alert\"\n").code, "config.missing");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nexclude = \"*.log\"\n").code, "config.type");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nexclude = [\"[x\"]\n").code, "config.value");
  EXPECT_EQ(error_of("jobs = -1\n").code, "config.value");
  EXPECT_EQ(error_of("root = 1\n").code, "config.type");
}

TEST(Config, OutboxQuota) {
  auto c = parse_config("[[root]]\npath = \"/w\"\n", "m.toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->agent.outbox_quota_mb, 1024u);
  c = parse_config("[[root]]\npath = \"/w\"\n[agent]\noutbox_quota_mb = 64\n", "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->agent.outbox_quota_mb, 64u);
  // Fewer than four segments cannot hold a backlog: refused, not silently raised.
  const auto e = error_of("[[root]]\npath = \"/w\"\n[agent]\noutbox_quota_mb = 8\n");
  EXPECT_EQ(e.code, "config.value");
  EXPECT_EQ(e.key, "agent.outbox_quota_mb");
}

TEST(Config, AgentNameIsOneShortLine) {
  const std::string base = "state_dir = \"/s\"\n[[root]]\npath = \"/w\"\n[agent]\n";
  auto c = parse_config(base + "name = \"web-1\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->agent.name, "web-1");
  auto d = parse_config(base, "m.toml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->agent.name, "") << "empty: the host name (core/event/origin.h)";
  EXPECT_EQ(error_of(base + "name = \"a\\nb\"\n").key, "agent.name");
  EXPECT_EQ(error_of(base + "name = \"" + std::string(256, 'x') + "\"\n").code, "config.value");
  EXPECT_EQ(error_of(base + "name = 1\n").code, "config.type");
}

TEST(Config, OverlapsBlameTheInnerOrSecondRoot) {
  const auto inner = error_of("[[root]]\npath = \"/w\"\n\n[[root]]\npath = \"/w/sub\"\n");
  EXPECT_EQ(inner.key, "root[2].path");
  EXPECT_EQ(inner.line, 4u);
  const auto twice = error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w\"\n");
  EXPECT_EQ(twice.key, "root[2].path");
  EXPECT_NE(twice.message.find("listed twice"), std::string::npos);
}

TEST(Config, OverlapsAreRefused) {
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w/sub\"\n").code,
            "config.value");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w\"\n").code, "config.value");
  EXPECT_EQ(error_of("state_dir = \"/w/state\"\n[[root]]\npath = \"/w\"\n").key, "state_dir");
}

TEST(Config, SyntaxErrorsCarryTheirPlace) {
  const auto e = error_of("state_dir = \"/s\"\n[[root]\n");
  EXPECT_EQ(e.code, "config.syntax");
  EXPECT_EQ(e.line, 2u);
}

TEST(Config, MissingFileIsAnIoError) {
  auto c = load_config("/nonexistent/mamori.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "config.io");
  EXPECT_NE(c.error().text().find("No such file"), std::string::npos);
}

TEST(Config, SinksOfEveryType) {
  auto c = parse_config(R"(
[[root]]
path = "/w"
[[sink]]
type = "syslog"
address = "tcp://127.0.0.1:514"
facility = "local3"
min_severity = "warning"
roots = ["/w/"]
[[sink]]
type = "smtp"
name = "ops-mail"
url = "smtp://127.0.0.1:25"
from = "mamori@web1"
to = ["a@x", "b@x"]
starttls = "required"
[[sink]]
type = "webhook"
url = "https://hooks.example/T1"
format = "slack"
actions = ["tamper-storm"]
)",
                        "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  ASSERT_EQ(c->sinks.size(), 3u);
  EXPECT_EQ(c->sinks[0].name, "syslog");
  EXPECT_EQ(c->sinks[0].facility, 19);
  EXPECT_EQ(c->sinks[0].filter.min_severity, 5);
  EXPECT_EQ(c->sinks[0].filter.roots, std::vector<std::string>{"/w"});
  EXPECT_EQ(c->sinks[1].name, "ops-mail");
  EXPECT_EQ(c->sinks[1].to.size(), 2u);
  EXPECT_EQ(c->sinks[1].digest_s, 60u);  // mail gathers by default
  EXPECT_EQ(c->sinks[1].starttls, StartTls::kRequired);
  EXPECT_EQ(c->sinks[2].format, "slack");
  EXPECT_TRUE(c->sinks[2].filter.passes(7, "tamper-storm", ""));
  EXPECT_FALSE(c->sinks[2].filter.passes(7, "file-restored", ""));
  EXPECT_FALSE(c->sinks[0].filter.passes(5, "x", "/other"));
  EXPECT_TRUE(c->sinks[0].filter.passes(5, "x", ""));
  EXPECT_FALSE(c->sinks[0].filter.passes(3, "x", "/w"));
}

TEST(Config, SinkMistakesAreNamed) {
  EXPECT_EQ(error_of("[[sink]]\naddress = \"udp://h:1\"\n").code, "config.missing");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"pager\"\n").key, "sink[1].type");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"syslog\"\n").key, "sink[1].address");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"syslog\"\naddress = \"http://x\"\n").key,
            "sink[1].address");
  // A key of another type is unknown here, with its line.
  const auto e = error_of("[[sink]]\ntype = \"syslog\"\naddress = \"udp://h:1\"\nto = [\"a\"]\n");
  EXPECT_EQ(e.code, "config.unknown_key");
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(error_of("[[sink]]\ntype = \"smtp\"\nurl = \"smtp://h\"\nfrom = \"f\"\nto = []\n").key,
            "sink[1].to");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"webhook\"\nurl = \"https://h\"\nformat = \"xml\"\n").key,
            "sink[1].format");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"webhook\"\nurl = \"https://h\"\nname = \"../x\"\n").key,
            "sink[1].name");
  EXPECT_EQ(error_of("[[sink]]\ntype = \"webhook\"\nurl = \"https://h\"\n"
                     "[[sink]]\ntype = \"webhook\"\nurl = \"https://i\"\n")
                .key,
            "sink[2].name");
  EXPECT_EQ(
      error_of("[[sink]]\ntype = \"webhook\"\nurl = \"https://h\"\nmin_severity = \"loud\"\n").key,
      "sink[1].min_severity");
}

TEST(Config, Heal) {
  auto c = parse_config(R"(
[[root]]
path = "/w"
[heal]
on = ["tamper-storm", "script-quarantined", "page-injected"]
tamper_count = 20
tamper_window = 10
health_file = "/var/lib/mamori-health/ok"
health_file_action = "rewrite"
health_listen = "127.0.0.1:8081"
hook = ["/usr/local/bin/drain", "--now"]
hook_timeout = 5
recover_after = 600
)",
                        "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_TRUE(c->heal.on_storm);
  EXPECT_TRUE(c->heal.on_script_quarantined);
  EXPECT_FALSE(c->heal.on_restore_failed);
  EXPECT_TRUE(c->heal.on_page_injected);
  EXPECT_EQ(c->heal.tamper_count, 20u);
  EXPECT_EQ(c->heal.health_file_action, HealthFileAction::kRewrite);
  EXPECT_EQ(c->heal.hook.size(), 2u);
  EXPECT_EQ(c->heal.recover_after_s, 600u);

  EXPECT_EQ(error_of("[heal]\non = [\"moon\"]\n").key, "heal.on");
  EXPECT_EQ(error_of("[heal]\nhook = [\"drain\"]\n").key, "heal.hook");
  EXPECT_EQ(error_of("[heal]\nhealth_file_action = \"burn\"\n").key, "heal.health_file_action");
  // Inside a root, the agent would restore the file it removes.
  const auto e = error_of("[[root]]\npath = \"/w\"\n[heal]\nhealth_file = \"/w/health\"\n");
  EXPECT_EQ(e.key, "heal.health_file");
  EXPECT_NE(e.message.find("inside root"), std::string::npos);
}

TEST(Config, LogsLogwatchAndBan) {
  auto c = parse_config(R"(
[[root]]
path = "/var/www/html"
[[log]]
path = "/var/log/nginx/access.log"
root = "/var/www/html"
[[log]]
path = "/var/log/apache2/other_vhosts_access.log"
format = "vhost_combined"
[logwatch]
rules = ["/etc/mamori/rules.d"]
allowlist = ["10.0.0.0/8", "2001:db8::/32"]
correlation_window = 30
[ban]
backend = "nftables"
ttl = 300
ttl_factor = 2
max_ttl = 86400
)",
                        "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  ASSERT_EQ(c->logs.size(), 2u);
  EXPECT_EQ(c->logs[0].format, "combined");
  EXPECT_EQ(c->logs[0].root, "/var/www/html");
  EXPECT_EQ(c->logwatch.allowlist.size(), 2u);
  EXPECT_EQ(c->logwatch.correlation_window_s, 30u);
  EXPECT_EQ(c->ban.ttl_s, 300u);

  EXPECT_EQ(error_of("[[log]]\nformat = \"combined\"\n").key, "log[1].path");
  EXPECT_EQ(error_of("[[log]]\npath = \"/l\"\nformat = \"%Q %h\"\n").key, "log[1].format");
  EXPECT_EQ(error_of("[logwatch]\nallowlist = [\"10.0.0.1/8\"]\n").key, "logwatch.allowlist");
  EXPECT_EQ(error_of("[ban]\nbackend = \"iptables\"\n").key, "ban.backend");
  EXPECT_EQ(error_of("[ban]\nbackend = \"hook\"\n").key, "ban.hook");
  EXPECT_EQ(error_of("[ban]\nnft_table = \"Bad Name\"\n").key, "ban.nft_table");
}

TEST(Config, ManagerDefaultsAndKeys) {
  auto c = parse_config("", "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->manager.listen, "0.0.0.0:8443");
  EXPECT_EQ(c->manager.state_dir, "/var/lib/mamori-manager");
  EXPECT_EQ(c->manager.database, "sqlite:///var/lib/mamori-manager/manager.db");
  EXPECT_EQ(c->manager.public_url, "");
  EXPECT_EQ(c->manager.console_dir, "/usr/share/mamori/console");
  EXPECT_EQ(c->manager.heartbeat_s, 2u);
  EXPECT_EQ(c->manager.lost_after_s, 10u);
  EXPECT_EQ(c->manager.max_agents, 20000u);
  EXPECT_EQ(c->manager.event_queue_mb, 64u);
  EXPECT_EQ(c->manager.url, "");
  EXPECT_EQ(c->manager.token_file, "");
  EXPECT_EQ(c->manager.never_ban, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_EQ(c->manager.max_agent_bans_per_hour, 1000u);

  c = parse_config(R"(
[manager]
listen = "127.0.0.1:9443"
state_dir = "/srv/mm/"
database = "sqlite:///srv/mm/m.db"
public_url = "https://mgr.example:9443"
console_dir = "/srv/console/"
heartbeat = 1
lost_after = 3
max_agents = 5
event_queue_mb = 1
url = "https://mgr.example:9443"
token_file = "/etc/mamori/token"
never_ban = ["10.0.0.0/8", "2001:db8::/32"]
max_agent_bans_per_hour = 0
)",
                   "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->manager.listen, "127.0.0.1:9443");
  EXPECT_EQ(c->manager.state_dir, "/srv/mm");
  EXPECT_EQ(c->manager.database, "sqlite:///srv/mm/m.db");
  EXPECT_EQ(c->manager.public_url, "https://mgr.example:9443");
  EXPECT_EQ(c->manager.console_dir, "/srv/console");
  EXPECT_EQ(c->manager.heartbeat_s, 1u);
  EXPECT_EQ(c->manager.lost_after_s, 3u);
  EXPECT_EQ(c->manager.max_agents, 5u);
  EXPECT_EQ(c->manager.event_queue_mb, 1u);
  EXPECT_EQ(c->manager.url, "https://mgr.example:9443");
  EXPECT_EQ(c->manager.token_file, "/etc/mamori/token");
  EXPECT_EQ(c->manager.never_ban, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32"}));
  EXPECT_EQ(c->manager.max_agent_bans_per_hour, 0u);

  for (const char* url : {"postgresql://mamori:pw@db.example:5432/mamori?sslmode=verify-full",
                          "postgres:///mamori?host=/run/postgresql"}) {
    c = parse_config(std::string("[manager]\ndatabase = \"") + url + "\"\n", "m.toml");
    ASSERT_TRUE(c) << c.error().text();
    EXPECT_EQ(c->manager.database, url);
  }
  c = parse_config("[manager]\nconsole_dir = \"\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->manager.console_dir, "") << "no console";
}

TEST(Config, ManagerMistakesAreNamed) {
  EXPECT_EQ(error_of("[manager]\nlisten = \"8443\"\n").key, "manager.listen");
  EXPECT_EQ(error_of("[manager]\nlisten = \"h:x\"\n").key, "manager.listen");
  EXPECT_EQ(error_of("[manager]\ndatabase = \"mysql://x\"\n").key, "manager.database");
  EXPECT_EQ(error_of("[manager]\ndatabase = \"sqlite://rel.db\"\n").key, "manager.database");
  const LoadError e = error_of("[manager]\ndatabase = \"mysql://u:pw-secret@x/db\"\n");
  EXPECT_EQ(e.text().find("pw-secret"), std::string::npos) << "no password echoed: " << e.text();
  EXPECT_EQ(error_of("[manager]\nheartbeat = 5\nlost_after = 5\n").key, "manager.lost_after");
  EXPECT_EQ(error_of("[manager]\nurl = \"http://m:1\"\n").key, "manager.url");
  EXPECT_EQ(error_of("[manager]\npublic_url = \"m:1\"\n").key, "manager.public_url");
  EXPECT_EQ(error_of("[manager]\ntoken_file = \"token\"\n").key, "manager.token_file");
  EXPECT_EQ(error_of("[manager]\nconsole_dir = \"web/dist\"\n").key, "manager.console_dir");
  EXPECT_EQ(error_of("[manager]\nnever_ban = [\"10.0.0.1/8\"]\n").key, "manager.never_ban");
  EXPECT_EQ(error_of("[manager]\nnever_ban = [\"lb\"]\n").key, "manager.never_ban");
  EXPECT_EQ(error_of("[manager]\nstate_dir = \"rel\"\n").key, "manager.state_dir");
  EXPECT_EQ(error_of("[manager]\nmax_agents = 0\n").key, "manager.max_agents");
  EXPECT_EQ(error_of("[manager]\nevent_queue_mb = 0\n").key, "manager.event_queue_mb");
  EXPECT_EQ(error_of("[manager]\nlisen = \"h:1\"\n").code, "config.unknown_key");
}

TEST(Config, Lookup) {
  auto c = parse_config("", "m.toml");
  ASSERT_TRUE(c);
  EXPECT_EQ("", c->lookup.api_key_file);  // off
  EXPECT_EQ("https://www.virustotal.com", c->lookup.base_url);
  EXPECT_EQ(4u, c->lookup.per_minute);
  EXPECT_EQ(500u, c->lookup.per_day);
  c = parse_config(
      "[lookup]\napi_key_file = \"/etc/mamori/vt.key\"\nbase_url = \"http://127.0.0.1:9\"\n"
      "per_minute = 60\nper_day = 20000\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ("/etc/mamori/vt.key", c->lookup.api_key_file);
  EXPECT_EQ("http://127.0.0.1:9", c->lookup.base_url);
  EXPECT_EQ(60u, c->lookup.per_minute);
  EXPECT_EQ(20000u, c->lookup.per_day);
  EXPECT_EQ(error_of("[lookup]\napi_key = \"k\"\n").code, "config.unknown_key");
  EXPECT_EQ(error_of("[lookup]\napi_key_file = \"vt.key\"\n").key, "lookup.api_key_file");
  EXPECT_EQ(error_of("[lookup]\nbase_url = \"ftp://x\"\n").key, "lookup.base_url");
  EXPECT_EQ(error_of("[lookup]\nper_minute = 0\n").key, "lookup.per_minute");
}

TEST(Config, Opcache) {
  auto c = parse_config("", "m.toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(OpcacheMode::kOff, c->opcache.mode);
  EXPECT_EQ("/var/lib/mamori-php/opcache-invalidate.php", c->opcache.helper);
  c = parse_config(
      "[[root]]\npath = \"/srv/www\"\n"
      "[opcache]\nmode = \"invalidate\"\nsocket = \"/run/php/php8.2-fpm.sock\"\n"
      "pid_file = \"/run/php/php8.2-fpm.pid\"\ntimeout = 2\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(OpcacheMode::kInvalidate, c->opcache.mode);
  EXPECT_EQ("/run/php/php8.2-fpm.sock", c->opcache.socket);
  EXPECT_EQ("/run/php/php8.2-fpm.pid", c->opcache.pid_file);
  EXPECT_EQ(2u, c->opcache.timeout_s);
  c = parse_config("[opcache]\nmode = \"invalidate\"\nsocket = \"127.0.0.1:9000\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  c = parse_config("[opcache]\nmode = \"reload\"\npid_file = \"/run/php/fpm.pid\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(error_of("[opcache]\nmode = \"flush\"\n").key, "opcache.mode");
  EXPECT_EQ(error_of("[opcache]\nmode = \"invalidate\"\n").key, "opcache.socket");
  EXPECT_EQ(error_of("[opcache]\nmode = \"invalidate\"\nsocket = \"fpm.sock\"\n").key,
            "opcache.socket");
  EXPECT_EQ(error_of("[opcache]\nmode = \"reload\"\n").key, "opcache.pid_file");
  EXPECT_EQ(error_of("[opcache]\nhelper = \"/opt/h.txt\"\n").key, "opcache.helper");
  EXPECT_EQ(error_of("[opcache]\ntimeout = 0\n").key, "opcache.timeout");
  EXPECT_EQ(error_of("[opcache]\nurl = \"x\"\n").code, "config.unknown_key");
  // Inside a root, the web server could run it.
  EXPECT_EQ(error_of("[[root]]\npath = \"/srv/www\"\n[opcache]\nhelper = \"/srv/www/h.php\"\n").key,
            "opcache.helper");
}

TEST(Config, Pages) {
  auto c = parse_config("[[page]]\nurl = \"https://www.example.com/\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(1u, c->pages.size());
  EXPECT_EQ(300u, c->pages[0].interval_s);
  EXPECT_EQ(std::vector<std::string>{"browser"}, c->pages[0].user_agents);
  EXPECT_TRUE(c->pages[0].allow_origins.empty());
  c = parse_config(
      "[[page]]\nurl = \"http://127.0.0.1:8080/?p=1\"\ninterval = 2\n"
      "user_agents = [\"browser\", \"googlebot\", \"MyBot/1.0 (+https://x)\"]\n"
      "allow_origins = [\"self\", \"https://*.cdn.example\", \"data:\"]\n"
      "connect_to = \"127.0.0.1:80\"\ntimeout = 3\nmax_kb = 512\n"
      "[[page]]\nurl = \"https://www.example.com/shop/\"\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(2u, c->pages.size());
  EXPECT_EQ(2u, c->pages[0].interval_s);
  EXPECT_EQ(3u, c->pages[0].user_agents.size());
  EXPECT_EQ(3u, c->pages[0].allow_origins.size());
  EXPECT_EQ("127.0.0.1:80", c->pages[0].connect_to);
  EXPECT_EQ(512u, c->pages[0].max_kb);
  const auto key = [](const std::string& page) { return error_of("[[page]]\n" + page).key; };
  EXPECT_EQ(error_of("[[page]]\ninterval = 5\n").code, "config.missing");
  EXPECT_EQ(key("url = \"ftp://x/\"\n"), "page[1].url");
  EXPECT_EQ(key("url = \"https:///\"\n"), "page[1].url");
  EXPECT_EQ(key("url = \"https://a/\"\ninterval = 0\n"), "page[1].interval");
  EXPECT_EQ(key("url = \"https://a/\"\nuser_agents = []\n"), "page[1].user_agents");
  EXPECT_EQ(key("url = \"https://a/\"\nuser_agents = [\"bad\\u0001\"]\n"), "page[1].user_agents");
  EXPECT_EQ(key("url = \"https://a/\"\nallow_origins = [\"cdn.example\"]\n"),
            "page[1].allow_origins");
  EXPECT_EQ(key("url = \"https://a/\"\nallow_origins = [\"https://x/path\"]\n"),
            "page[1].allow_origins");
  EXPECT_EQ(key("url = \"https://a/\"\nconnect_to = \"127.0.0.1\"\n"), "page[1].connect_to");
  EXPECT_EQ(error_of("[[page]]\nurl = \"https://a/\"\n[[page]]\nurl = \"https://a/\"\n").key,
            "page[2].url");
  EXPECT_EQ(key("url = \"https://a/\"\nuser_agent = \"x\"\n"), "page[1].user_agent");
  EXPECT_EQ(key("url = \"https://a/\"\nroot = \"srv\"\n"), "page[1].root");
}

TEST(Config, PageDiscovery) {
  auto c = parse_config("[[log]]\npath = \"/var/log/a.log\"\nroot = \"/srv/www\"\n", "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(0u, c->page_discovery.discover);  // off without base_url
  c = parse_config(
      "[[log]]\npath = \"/var/log/a.log\"\nroot = \"/srv/www\"\n"
      "[pages]\nbase_url = \"https://www.example.com/\"\ninterval = 60\n"
      "user_agents = [\"browser\", \"googlebot\"]\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  const auto& d = c->page_discovery;
  EXPECT_EQ(10u, d.discover);
  EXPECT_EQ("https://www.example.com", d.base_url);
  EXPECT_EQ(3u, d.min_clients);
  EXPECT_EQ((std::vector<std::string>{"p", "page_id"}), d.keep_query);
  EXPECT_EQ(60u, d.page.interval_s);
  EXPECT_EQ(2u, d.page.user_agents.size());
  EXPECT_EQ("/srv/www", d.page.root);  // the only [[log]]'s
  c = parse_config(
      "[[log]]\npath = \"/var/log/a.log\"\n[[log]]\npath = \"/var/log/b.log\"\nroot = \"/b\"\n"
      "[pages]\nbase_url = \"http://127.0.0.1:8080\"\ndiscover = 3\nlog = \"/var/log/b.log\"\n"
      "min_clients = 5\nkeep_query = []\nrank_every = 600\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(3u, c->page_discovery.discover);
  EXPECT_EQ("/b", c->page_discovery.page.root);
  EXPECT_EQ(5u, c->page_discovery.min_clients);
  EXPECT_TRUE(c->page_discovery.keep_query.empty());
  const auto key = [](const std::string& t) { return error_of("[pages]\n" + t).key; };
  EXPECT_EQ(key("discover = 5\n"), "pages.base_url");
  for (const char* url : {"ftp://a", "https://a/path", "https://a?x", "https://u@a", "https://"})
    EXPECT_EQ(key(fmt::format("base_url = \"{}\"\n", url)), "pages.base_url") << url;
  EXPECT_EQ(key("base_url = \"https://a\"\nmin_clients = 1\n"), "pages.min_clients");
  EXPECT_EQ(key("base_url = \"https://a\"\ndiscover = 257\n"), "pages.discover");
  EXPECT_EQ(key("base_url = \"https://a\"\nlog = \"/nope.log\"\n"), "pages.log");
  EXPECT_EQ(key("base_url = \"https://a\"\nkeep_query = [\"P=\"]\n"), "pages.keep_query");
  EXPECT_EQ(key("base_url = \"https://a\"\nuser_agents = []\n"), "pages.user_agents");
  EXPECT_EQ(key("base_url = \"https://a\"\nurl = \"https://a/\"\n"), "pages.url");
}

TEST(Config, OtherLogsTakeTheirOwnRules) {
  auto c = parse_config(
      "[[log]]\npath = \"/var/log/auth.log\"\nformat = \"sshd\"\nrules = [\"/etc/m/ssh.rules\"]\n"
      "[[log]]\npath = \"/var/log/nginx/error.log\"\nformat = \"nginx-error\"\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(2u, c->logs.size());
  EXPECT_EQ("sshd", c->logs[0].format);
  EXPECT_EQ(std::vector<std::string>{"/etc/m/ssh.rules"}, c->logs[0].rules);
  // An access log's rules are [logwatch] rules; the other logs have no root.
  EXPECT_EQ(error_of("[[log]]\npath = \"/l\"\nrules = [\"/r\"]\n").key, "log[1].rules");
  EXPECT_EQ(error_of("[[log]]\npath = \"/l\"\nformat = \"sshd\"\nroot = \"/w\"\n").key,
            "log[1].root");
  EXPECT_EQ(error_of("[[log]]\npath = \"/l\"\nformat = \"sshd\"\nrules = [\"r\"]\n").key,
            "log[1].rules");
}

TEST(Config, SshdFromTheJournal) {
  auto c = parse_config(
      "[[log]]\nsource = \"journal\"\nformat = \"sshd\"\n"
      "[[log]]\nsource = \"journal\"\nformat = \"sshd\"\npath = \"/var/log/journal/\"\n",
      "m.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(2u, c->logs.size());
  EXPECT_EQ("journal", c->logs[0].source);
  EXPECT_EQ("", c->logs[0].path);
  EXPECT_EQ("journal", log_name(c->logs[0]));
  EXPECT_EQ("journal:/var/log/journal", log_name(c->logs[1]));
  // Only sshd is read from the journal; a file needs its path; no third source.
  EXPECT_EQ(error_of("[[log]]\nsource = \"journal\"\n").key, "log[1].source");
  EXPECT_EQ(error_of("[[log]]\nsource = \"journal\"\nformat = \"nginx-error\"\n").key,
            "log[1].source");
  EXPECT_EQ(error_of("[[log]]\nsource = \"journald\"\nformat = \"sshd\"\n").key, "log[1].source");
  EXPECT_EQ(error_of("[[log]]\nformat = \"sshd\"\n").key, "log[1].path");
  EXPECT_EQ(error_of("[[log]]\nsource = \"journal\"\nformat = \"sshd\"\npath = \"j\"\n").key,
            "log[1].path");
}

}  // namespace
}  // namespace mamori::config
