#pragma once
// mamori.toml: what to protect and where mamori keeps its state. Loading reports every
// problem as file:line:col with a stable code, so both people and scripts can act on it.
// Format and keys: etc/mamori.toml (commented) and docs/config.md.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/load_error.h"

namespace mamori::config {

enum class Mode { kAlert, kRestore, kPreserve };
std::string_view mode_name(Mode mode);
std::optional<Mode> parse_mode(std::string_view name);

struct RootConfig {
  std::string path;  // absolute, no trailing '/'
  Mode mode = Mode::kRestore;
  std::vector<std::string> exclude;  // glob patterns relative to path (core/fs/glob.h)
  // New files the real-time guard leaves in place (uploads), unless they also match
  // deny_new: a script under an upload directory is a web shell, never an upload.
  std::vector<std::string> allow_new;
  std::vector<std::string> deny_new = default_deny_new();
  static std::vector<std::string> default_deny_new();
};

enum class Backend { kAuto, kFanotify, kInotify };
std::string_view backend_name(Backend backend);

// The real-time agent (`mamori agent`).
enum class GateMode { kAuto, kOn, kOff };

struct AgentConfig {
  // agent.name in every event (ECS); empty = the host name (core/event/origin.h).
  std::string name;
  std::string socket = "/run/mamori/agent.sock";           // control socket, root only
  std::string event_log = "/var/log/mamori/events.jsonl";  // ECS JSON lines
  Backend backend = Backend::kAuto;
  uint32_t verify_interval_s = 3600;  // full verify of every root; 0 = never
  uint64_t evidence_quota_mb = 1024;
  // The event outbox's segments (STATE/outbox) all together; past it, low-severity
  // events of the oldest segments a consumer has not read go first (core/outbox).
  uint64_t outbox_quota_mb = 1024;
  uint64_t evidence_max_file_mb = 64;
  // More changes than this in one second is a storm: per-file events are summarised.
  uint32_t storm_changes_per_second = 200;
  // Restores of one path within one second after which its events are summarised.
  uint32_t path_restores_per_second = 5;
  // file-allowed events per root per second (and per verify) past which the rest go
  // into one file-allowed-summary: an attacker's 100,000 uploads must not bury the
  // security events (or fill the log) one event each.
  uint32_t allowed_events_per_second = 50;
  // YARA triage (core/scan, docs/scan.md): new files in allow_new areas are scanned
  // before they may stay, quarantined files after they left the tree, each up to
  // yara_max_kb; mamori's own rules, then every *.yar/*.yara file of yara_rules' dirs.
  bool yara = true;
  std::vector<std::string> yara_rules;
  uint32_t yara_max_kb = 1024;
  // The SSH honeypot's outbox (docs/honeypot.md), whose events the agent relays into its
  // own (agent/relay); empty: none.
  std::string honeypot_outbox;
  // The open gate (docs/open-gate.md): auto uses it when the kernel offers permission
  // events (and says so when not), on refuses to start without it, off never uses it.
  GateMode open_gate = GateMode::kAuto;
  uint32_t open_gate_timeout_ms = 250;  // the watchdog allows what waits longer
};

// Which events a sink gets. An event passes when it is severe enough, its action is
// listed (or none are) and its root is listed (or none are; events without a root pass).
struct SinkFilter {
  int min_severity = 1;              // ECS event.severity: 1 info, 3 notice, 5 warning, 7 critical
  std::vector<std::string> actions;  // event.action values
  std::vector<std::string> roots;    // mamori.root values
  bool passes(int severity, std::string_view action, std::string_view root) const;
};

enum class SinkType { kSyslog, kSmtp, kWebhook };
std::string_view sink_type_name(SinkType type);
enum class StartTls { kNone, kTry, kRequired };

// One [[sink]]: where events go besides the event log. Keys that do not belong to the
// type are refused when the config is loaded.
struct SinkConfig {
  std::string name;  // unique; names the cursor file and messages
  SinkType type = SinkType::kSyslog;
  SinkFilter filter;
  uint32_t timeout_s = 10;  // per delivery attempt
  uint32_t digest_s = 0;    // gather this long, deliver as one batch (smtp: 60)
  // syslog
  std::string address;  // unix:/dev/log, udp://H:P, tcp://H:P, tls://H:P
  int facility = 10;    // authpriv
  std::string app_name = "mamori";
  // Every type, where TLS is used: the CA of the server's certificate (empty = the
  // system's) and whether to verify the chain and the host name.
  std::string ca_file;
  bool tls_verify = true;
  // smtp, webhook
  std::string url;  // smtp://H:P, smtps://H:P; http(s)://...
  // smtp
  std::string from;
  std::vector<std::string> to;
  std::string username;
  std::string password_file;  // its first line is the password
  StartTls starttls = StartTls::kTry;
  // webhook
  std::string format = "json";       // json | slack
  std::vector<std::string> headers;  // "Name: value"
};

enum class HealthFileAction { kRemove, kRewrite };

// [heal]: when the node stops claiming to be healthy, and what that does.
struct HealConfig {
  // Conditions (heal.on): tamper-storm, restore-failed, script-quarantined, state-failed,
  // page-injected.
  bool on_storm = true;
  bool on_restore_failed = true;
  bool on_script_quarantined = false;
  bool on_state_failed = true;
  bool on_page_injected = false;  // opt-in: the owner's own new script drains the node too
  uint32_t tamper_count = 0;      // this many tampers within tamper_window_s; 0 = off
  uint32_t tamper_window_s = 60;
  // Actions.
  std::string health_file;  // empty = none
  HealthFileAction health_file_action = HealthFileAction::kRemove;
  std::string health_listen;      // HOST:PORT of the health endpoint; empty = none
  std::vector<std::string> hook;  // argv; the event JSON on stdin
  uint32_t hook_timeout_s = 30;
  // Recovery: healthy again once no condition fired for this long and a full verify
  // then finds nothing; 0 = only `mamori heal --clear`.
  uint32_t recover_after_s = 0;
};

// One [[log]]: an access log the agent reads in real time.
struct LogConfig {
  std::string path;  // absolute; may not exist yet
  // core/logparse format spec of an access log, or one of the other logs
  // (core/logparse/eventlog.h: "nginx-error", "apache-error", "sshd").
  std::string format = "combined";
  // The document root its requests are served from: a request for /x.php touched
  // ROOT/x.php, which is how a tampered file leads to the address that requested it.
  std::string root;
  // The other logs only: rule files applied after that kind's built-in rules, in order.
  std::vector<std::string> rules;
  // "file": `path` is the log; "journal" (sshd only): the systemd journal, `path` a
  // journal directory or empty for the system journal.
  std::string source = "file";
};

// What a [[log]] is called in events and status: its path, or "journal" / "journal:DIR".
std::string log_name(const LogConfig& log);

// One [[page]]: a page the agent's page monitor fetches through the web server and
// whose active content (scripts, iframes, forms, origins...) it compares with its
// baseline (docs/pages.md).
struct PageConfig {
  std::string url;            // http:// or https://
  uint32_t interval_s = 300;  // between two fetches
  // Who to fetch as, each a fetch of its own: "browser", "mobile", "googlebot",
  // "bingbot" (core/page/url.h) or a literal User-Agent. Cloaking serves injections to
  // crawlers or phones only.
  std::vector<std::string> user_agents = {"browser"};
  // Origins whose new elements are no alert: "self", "https://cdn.example.com",
  // "https://*.example.com", "data:".
  std::vector<std::string> allow_origins;
  std::string connect_to;  // HOST:PORT to connect to instead of the URL's; "" = its own
  uint32_t timeout_s = 10;
  uint32_t max_kb = 2048;  // a larger page is refused (page-fetch-failed), never judged in part
  // The document root the page is served from: a restore or quarantine under it checks
  // the page at once, and its page-injected events name that guard event. "" = any root.
  std::string root;
};

// [pages]: discovery of the most requested HTML pages from the [[log]] access logs
// (docs/pages.md, Discovery). Off without base_url.
struct PageDiscoveryConfig {
  uint32_t discover = 0;  // the top N pages are watched; 10 once base_url is set; 0 = off
  std::string base_url;   // scheme://host[:port]: what a discovered path is fetched from
  std::string log;        // the [[log]] counted; "" = every [[log]]
  // A path counts once this many distinct client addresses requested it: one attacker
  // cannot make the agent fetch a path of their choosing.
  uint32_t min_clients = 3;
  // A query of one parameter among these, with a numeric value, is kept ("/?p=12");
  // every other query is dropped (it may hold a token).
  std::vector<std::string> keep_query = {"p", "page_id"};
  uint32_t rank_every_s = 3600;  // the discovered set is ranked again this often
  // interval, user_agents, allow_origins, connect_to, timeout, max_kb and root of each
  // discovered page (url is base_url + path; root defaults to the log's).
  PageConfig page;
};

// [logwatch]: how the access logs are judged.
struct LogwatchConfig {
  std::vector<std::string> rules;  // files or directories of *.rules, after the built-ins
  bool default_rules = true;
  std::vector<std::string> allowlist = {"127.0.0.0/8", "::1/128"};  // CIDRs never banned
  uint32_t correlation_window_s = 60;
};

// [ban]: where bans go and how long they last.
struct BanConfig {
  std::string backend = "nftables";  // nftables | hook | none
  std::string nft_table = "mamori";
  std::vector<std::string> hook;  // argv; the ban as JSON on stdin
  uint32_t hook_timeout_s = 30;
  uint32_t ttl_s = 600;     // first ban
  uint32_t ttl_factor = 4;  // each repeat offence multiplies it
  uint32_t max_ttl_s = 7 * 86400;
  // Prefix escalation (opt-in, docs/bans.md): this many distinct addresses banned within
  // prefix_window_s in one IPv6 /prefix_v6 (IPv4 /prefix_v4) ban the whole prefix.
  uint32_t prefix_offenders = 0;  // 0 = off
  uint32_t prefix_v6 = 64;
  uint32_t prefix_v4 = 24;
  uint32_t prefix_window_s = 600;
  uint32_t max_prefix_bans = 1000;
};

// [manager]: the manager's own keys (`mamori manager`) and the agent's link to one.
struct ManagerConfig {
  // The manager (`mamori manager`, docs/manager.md).
  std::string listen = "0.0.0.0:8443";                // HOST:PORT of its HTTPS/WebSocket
  std::string state_dir = "/var/lib/mamori-manager";  // certificate, key, outbox, cursors
  std::string database = "sqlite:///var/lib/mamori-manager/manager.db";
  std::string public_url;       // what tokens carry; empty = https://<host name>:<port>
  uint32_t heartbeat_s = 2;     // the agents' heartbeat interval (told in welcome)
  uint32_t lost_after_s = 10;   // silence after which an agent is lost
  uint32_t max_agents = 20000;  // connections at once
  // Memory for events received and not yet stored; past it, a channel whose batch is
  // waiting stops reading until that batch is stored (its agent keeps the rest).
  uint32_t event_queue_mb = 64;
  // Retention of the agents' events: older than retention_days, or beyond the newest
  // max_events_per_agent of an agent, they are deleted (hourly). 0 = no such limit.
  uint32_t retention_days = 90;
  uint32_t max_events_per_agent = 1'000'000;
  // The web console's built files (web/), served at "/"; "" = no console.
  std::string console_dir = "/usr/share/mamori/console";
  // Fleet bans: what one agent may make every other ban. Never an address in never_ban
  // (CIDRs: the load balancers, the office, monitoring), and at most
  // max_agent_bans_per_hour addresses decided by one agent: a compromised agent must not
  // turn the fleet against the innocent.
  std::vector<std::string> never_ban = {"127.0.0.0/8", "::1/128"};
  uint32_t max_agent_bans_per_hour = 1000;
  // The agent: the manager it reports to and the token it enrolls with (both empty = no
  // manager).
  std::string url;         // https://HOST:PORT
  std::string token_file;  // absolute; its first line is the token
};

// [lookup]: optional VirusTotal look-ups by SHA-256 (docs/scan.md, "Hash look-ups"):
// never an upload, with the user's own key, kept within the public API's limits.
struct LookupConfig {
  std::string api_key_file;  // absolute; 0600; its first line is the key; empty = off
  std::string base_url = "https://www.virustotal.com";
  uint32_t per_minute = 4;
  uint32_t per_day = 500;
};

// [opcache]: after the agent restores or quarantines a file, the PHP-FPM pool drops what
// its opcache compiled of it (docs/opcache.md), off the restore path.
enum class OpcacheMode { kOff, kInvalidate, kReload };
std::string_view opcache_mode_name(OpcacheMode mode);
struct OpcacheConfig {
  OpcacheMode mode = OpcacheMode::kOff;
  // invalidate: the pool's FastCGI socket (a unix socket's absolute path, or a numeric
  // ADDRESS:PORT) and the helper script mamori installs (outside every root) and runs
  // there.
  std::string socket;
  std::string helper = "/var/lib/mamori-php/opcache-invalidate.php";
  // reload (and invalidate's fallback when set): php-fpm's master pid file; SIGUSR2.
  std::string pid_file;
  uint32_t timeout_s = 5;  // one FastCGI exchange, connect to END_REQUEST
};

struct Config {
  std::string source;  // the file it came from, for messages
  std::string state_dir = "/var/lib/mamori";
  unsigned jobs = 0;          // hashing threads; 0 = one per core
  int compression_level = 1;  // zstd level for the content store (-7..19)
  std::vector<RootConfig> roots;
  AgentConfig agent;
  std::vector<SinkConfig> sinks;
  HealConfig heal;
  std::vector<LogConfig> logs;
  std::vector<PageConfig> pages;
  PageDiscoveryConfig page_discovery;
  LogwatchConfig logwatch;
  BanConfig ban;
  ManagerConfig manager;
  LookupConfig lookup;
  OpcacheConfig opcache;
};

// Loading reports the first problem as a LoadError with a code "config.*"
// (docs/formats/config.md); load_config() adds config.io and config.limit for the file.
LoadResult<Config> parse_config(std::string_view text, std::string_view source_name);
LoadResult<Config> load_config(const std::string& path);

}  // namespace mamori::config
