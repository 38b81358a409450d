#include "core/config/config.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/config/toml_reader.h"
#include "core/fs/glob.h"
#include "core/logparse/eventlog.h"
#include "core/logparse/format.h"
#include "core/logparse/ip.h"
#include "core/page/url.h"
#include "core/proto/actions.h"

namespace mamori::config {
namespace {

// A config file is small; a larger one is a mistake or an attack on the parser.
constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxRoots = 4096;
constexpr size_t kMaxSinks = 64;
constexpr size_t kMaxLogs = 256;
constexpr size_t kMaxPages = 256;

// ECS event.severity names (docs/formats/events.md).
constexpr std::pair<std::string_view, int> kInfo{"info", 1}, kNotice{"notice", 3},
    kWarning{"warning", 5}, kCritical{"critical", 7};

bool is_absolute_clean(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.find('\0') == std::string::npos &&
         path.find("/../") == std::string::npos && !path.ends_with("/..") &&
         path.find("/./") == std::string::npos;
}

// Reads a parsed mamori.toml into a Config; `reader` keeps the first error.
class Loader {
 public:
  explicit Loader(TomlReader& reader) : reader_(reader) {}

  bool load(Config& c) {
    TomlTable top = reader_.top();
    c.source = reader_.file();
    if (!top.only_keys({"state_dir", "jobs", "compression_level", "root", "agent", "sink", "heal",
                        "log", "logwatch", "ban", "manager", "lookup", "opcache", "page",
                        "pages"}) ||
        !top.optional("state_dir", c.state_dir) || !top.optional("jobs", c.jobs, 0u, 1024u) ||
        !top.optional("compression_level", c.compression_level, -7, 19) ||
        !absolute_path(top, "state_dir", c.state_dir))
      return false;

    std::vector<TomlTable> roots;
    if (!top.tables("root", roots, kMaxRoots)) return false;
    for (auto& t : roots) {
      RootConfig r;
      if (!load_root(t, r)) return false;
      c.roots.push_back(std::move(r));
      root_sources_.push_back(t.raw().source());
    }
    if (!check_roots(top, c)) return false;

    std::optional<TomlTable> agent;
    if (!top.table("agent", agent) || (agent && !load_agent(*agent, c.agent))) return false;

    std::vector<TomlTable> sinks;
    if (!top.tables("sink", sinks, kMaxSinks)) return false;
    for (auto& t : sinks) {
      SinkConfig sink;
      if (!load_sink(t, sink)) return false;
      for (const auto& other : c.sinks)
        if (other.name == sink.name)
          return t.fail(
              "name", "value",
              "sink name " + quote(sink.name) + " is used twice: give each [[sink]] its own name");
      c.sinks.push_back(std::move(sink));
    }

    std::vector<TomlTable> logs;
    if (!top.tables("log", logs, kMaxLogs)) return false;
    for (auto& t : logs) {
      LogConfig log;
      if (!load_log(t, log)) return false;
      c.logs.push_back(std::move(log));
    }

    std::vector<TomlTable> pages;
    if (!top.tables("page", pages, kMaxPages)) return false;
    for (auto& t : pages) {
      PageConfig page;
      if (!load_page(t, page)) return false;
      for (const auto& other : c.pages)
        if (other.url == page.url)
          return t.fail("url", "value", "page " + quote(page.url) + " is listed twice");
      c.pages.push_back(std::move(page));
    }
    std::optional<TomlTable> discovery;
    if (!top.table("pages", discovery) || (discovery && !load_discovery(*discovery, c)))
      return false;

    std::optional<TomlTable> logwatch, ban, heal, manager, lookup, opcache;
    if (!top.table("opcache", opcache) || (opcache && !load_opcache(*opcache, c))) return false;
    return top.table("logwatch", logwatch) && (!logwatch || load_logwatch(*logwatch, c.logwatch)) &&
           top.table("ban", ban) && (!ban || load_ban(*ban, c.ban)) && top.table("heal", heal) &&
           (!heal || load_heal(*heal, c)) && top.table("manager", manager) &&
           (!manager || load_manager(*manager, c.manager)) && top.table("lookup", lookup) &&
           (!lookup || load_lookup(*lookup, c.lookup));
  }

  // The key itself is never a config value: a config is often world-readable and
  // copied around; the key lives in its own 0600 file (checked when it is read).
  bool load_lookup(TomlTable& t, LookupConfig& l) {
    if (!t.only_keys({"api_key_file", "base_url", "per_minute", "per_day"}) ||
        !t.optional("api_key_file", l.api_key_file) ||
        (!l.api_key_file.empty() && !absolute_path(t, "api_key_file", l.api_key_file)) ||
        !t.optional("base_url", l.base_url, 1024) ||
        !t.optional("per_minute", l.per_minute, 1u, 100'000u) ||
        !t.optional("per_day", l.per_day, 1u, 100'000'000u))
      return false;
    if (!l.base_url.starts_with("http://") && !l.base_url.starts_with("https://"))
      return t.fail("base_url", "value",
                    "must start with https:// (or http:// for a local test server), not " +
                        quote(l.base_url));
    return true;
  }

  // The helper must lie outside every root: a web request must never reach it, and the
  // guard would take it for a new file.
  bool load_opcache(TomlTable& t, Config& c) {
    OpcacheConfig& o = c.opcache;
    if (!t.only_keys({"mode", "socket", "helper", "pid_file", "timeout"}) ||
        !t.choice("mode", o.mode,
                  {{"off", OpcacheMode::kOff},
                   {"invalidate", OpcacheMode::kInvalidate},
                   {"reload", OpcacheMode::kReload}}) ||
        !t.optional("socket", o.socket, 1024) || !t.optional("helper", o.helper) ||
        !absolute_path(t, "helper", o.helper) || !t.optional("pid_file", o.pid_file) ||
        (!o.pid_file.empty() && !absolute_path(t, "pid_file", o.pid_file)) ||
        !t.optional("timeout", o.timeout_s, 1u, 60u))
      return false;
    if (o.mode == OpcacheMode::kInvalidate && o.socket.empty())
      return t.fail("socket", "value",
                    "mode \"invalidate\" needs the pool's socket: socket = "
                    "\"/run/php/php8.2-fpm.sock\" (or \"127.0.0.1:9000\")");
    if (!o.socket.empty() && o.socket[0] != '/' &&
        (o.socket.find(':') == std::string::npos || o.socket.back() == ':'))
      return t.fail(
          "socket", "value",
          "must be a unix socket's absolute path or ADDRESS:PORT, not " + quote(o.socket));
    if (o.mode == OpcacheMode::kReload && o.pid_file.empty())
      return t.fail("pid_file", "value",
                    "mode \"reload\" needs php-fpm's pid file: pid_file = "
                    "\"/run/php/php8.2-fpm.pid\"");
    if (!o.helper.ends_with(".php"))
      return t.fail(
          "helper", "value",
          "must end in .php (php-fpm runs only security.limit_extensions), not " + quote(o.helper));
    for (const auto& r : c.roots)
      if (o.helper.starts_with(r.path + "/") || r.path == "/")
        return t.fail("helper", "value",
                      "lies inside root " + quote(r.path) +
                          ": the web server could run it; keep it outside every root");
    return true;
  }

 private:
  bool load_root(TomlTable& t, RootConfig& r) {
    return t.only_keys({"path", "mode", "exclude", "allow_new", "deny_new"}) &&
           t.required("path", "every [[root]] needs a path", r.path) &&
           absolute_path(t, "path", r.path) &&
           t.choice("mode", r.mode,
                    {{"alert", Mode::kAlert},
                     {"restore", Mode::kRestore},
                     {"preserve", Mode::kPreserve}}) &&
           patterns(t, "exclude", r.exclude) && patterns(t, "allow_new", r.allow_new) &&
           patterns(t, "deny_new", r.deny_new);
  }

  bool load_agent(TomlTable& t, AgentConfig& a) {
    return t.only_keys({"name", "socket", "event_log", "backend", "verify_interval",
                        "evidence_quota_mb", "evidence_max_file_mb", "storm_changes_per_second",
                        "path_restores_per_second", "allowed_events_per_second", "outbox_quota_mb",
                        "yara", "yara_rules", "yara_max_kb", "honeypot_outbox", "open_gate",
                        "open_gate_timeout_ms"}) &&
           t.optional("name", a.name) && one_line_name(t, a.name) &&
           t.optional("socket", a.socket) && absolute_path(t, "socket", a.socket) &&
           t.optional("event_log", a.event_log) && absolute_path(t, "event_log", a.event_log) &&
           t.choice("backend", a.backend,
                    {{"auto", Backend::kAuto},
                     {"fanotify", Backend::kFanotify},
                     {"inotify", Backend::kInotify}}) &&
           t.optional("verify_interval", a.verify_interval_s, 0u, 7 * 86400u) &&
           t.optional("evidence_quota_mb", a.evidence_quota_mb, 1u, 1u << 24) &&
           // At least four 4 MiB segments: the quota acts on closed segments.
           t.optional("outbox_quota_mb", a.outbox_quota_mb, 16u, 1u << 24) &&
           t.optional("evidence_max_file_mb", a.evidence_max_file_mb, 1u, 1u << 16) &&
           t.optional("storm_changes_per_second", a.storm_changes_per_second, 1u, 1000000u) &&
           t.optional("path_restores_per_second", a.path_restores_per_second, 1u, 1000000u) &&
           t.optional("allowed_events_per_second", a.allowed_events_per_second, 1u, 1000000u) &&
           t.optional("yara", a.yara) && t.optional("yara_rules", a.yara_rules) &&
           std::all_of(a.yara_rules.begin(), a.yara_rules.end(),
                       [&](std::string& d) { return absolute_path(t, "yara_rules", d); }) &&
           t.optional("yara_max_kb", a.yara_max_kb, 1u, 1u << 20) &&
           t.optional("honeypot_outbox", a.honeypot_outbox) &&
           (a.honeypot_outbox.empty() || absolute_path(t, "honeypot_outbox", a.honeypot_outbox)) &&
           t.choice("open_gate", a.open_gate,
                    {{"auto", GateMode::kAuto}, {"on", GateMode::kOn}, {"off", GateMode::kOff}}) &&
           t.optional("open_gate_timeout_ms", a.open_gate_timeout_ms, 10u, 10000u);
  }

  bool load_sink(TomlTable& t, SinkConfig& s) {
    if (!t.require("type", "every [[sink]] needs a type: \"syslog\", \"smtp\" or \"webhook\"") ||
        !t.choice("type", s.type,
                  {{"syslog", SinkType::kSyslog},
                   {"smtp", SinkType::kSmtp},
                   {"webhook", SinkType::kWebhook}}))
      return false;
    // Keys of another type are unknown here: a mail `to` on a syslog sink is a mistake.
    std::vector<std::string_view> keys = {"name",  "type",    "min_severity", "actions",
                                          "roots", "timeout", "digest"};
    switch (s.type) {
      case SinkType::kSyslog:
        keys.insert(keys.end(), {"address", "facility", "app_name", "ca_file", "tls_verify"});
        break;
      case SinkType::kSmtp:
        s.digest_s = 60;  // mail gathers by default
        keys.insert(keys.end(), {"url", "from", "to", "username", "password_file", "starttls",
                                 "ca_file", "tls_verify"});
        break;
      case SinkType::kWebhook:
        keys.insert(keys.end(), {"url", "format", "headers", "ca_file", "tls_verify"});
        break;
    }
    s.name = std::string(sink_type_name(s.type));
    if (!t.only_keys(keys) || !t.optional("name", s.name)) return false;
    if (s.name.empty() || s.name.size() > 64 ||
        s.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            std::string::npos)
      return t.fail("name", "value",
                    "must be 1-64 letters, digits, '-' or '_' (it names the sink's cursor file), "
                    "not " +
                        quote(s.name));
    if (!t.number_or_name("min_severity", s.filter.min_severity, 1, 10,
                          {kInfo, kNotice, kWarning, kCritical}) ||
        !t.optional("actions", s.filter.actions) || !t.optional("roots", s.filter.roots) ||
        !t.optional("timeout", s.timeout_s, 1u, 600u) ||
        !t.optional("digest", s.digest_s, 0u, 86400u))
      return false;
    for (auto& r : s.filter.roots)
      if (!absolute_path(t, "roots", r)) return false;
    switch (s.type) {
      case SinkType::kSyslog:
        return load_syslog(t, s);
      case SinkType::kSmtp:
        return load_smtp(t, s);
      case SinkType::kWebhook:
        return load_webhook(t, s);
    }
    return false;
  }

  bool load_syslog(TomlTable& t, SinkConfig& s) {
    static constexpr std::string_view kFacilities[] = {
        "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
        "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "clock",
        "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};
    std::string facility = "authpriv";
    if (!t.required("address",
                    "a syslog sink needs an address: unix:/dev/log, udp://HOST:PORT, "
                    "tcp://HOST:PORT or tls://HOST:PORT",
                    s.address) ||
        !t.optional("facility", facility) || !t.optional("app_name", s.app_name) || !load_tls(t, s))
      return false;
    const auto* f = std::find(std::begin(kFacilities), std::end(kFacilities), facility);
    if (f == std::end(kFacilities))
      return t.fail("facility", "value",
                    "must be a syslog facility name (auth, authpriv, daemon, local0 ... local7), "
                    "not " +
                        quote(facility));
    s.facility = static_cast<int>(f - std::begin(kFacilities));
    if (!s.address.starts_with("unix:") && !s.address.starts_with("udp://") &&
        !s.address.starts_with("tcp://") && !s.address.starts_with("tls://"))
      return t.fail("address", "value",
                    "must start with unix:, udp://, tcp:// or tls://, not " + quote(s.address));
    return true;
  }

  bool load_tls(TomlTable& t, SinkConfig& s) {
    return t.optional("ca_file", s.ca_file) && t.optional("tls_verify", s.tls_verify) &&
           (s.ca_file.empty() || absolute_path(t, "ca_file", s.ca_file));
  }

  bool load_smtp(TomlTable& t, SinkConfig& s) {
    if (!t.required("url", "an smtp sink needs a url: smtp://HOST:PORT or smtps://HOST:PORT",
                    s.url) ||
        !t.required("from", "an smtp sink needs a from address", s.from) ||
        !t.required("to", "an smtp sink needs at least one recipient in to", s.to) ||
        !load_tls(t, s) || !t.optional("username", s.username) ||
        !t.optional("password_file", s.password_file) ||
        !t.choice("starttls", s.starttls,
                  {{"none", StartTls::kNone},
                   {"try", StartTls::kTry},
                   {"required", StartTls::kRequired}}))
      return false;
    if (!s.url.starts_with("smtp://") && !s.url.starts_with("smtps://"))
      return t.fail("url", "value", "must start with smtp:// or smtps://, not " + quote(s.url));
    if (s.to.empty()) return t.fail("to", "value", "must name at least one recipient");
    return s.password_file.empty() || absolute_path(t, "password_file", s.password_file);
  }

  bool load_webhook(TomlTable& t, SinkConfig& s) {
    if (!t.required("url", "a webhook sink needs a url: http(s)://...", s.url) || !load_tls(t, s) ||
        !t.one_of("format", s.format, {"json", "slack"}) || !t.optional("headers", s.headers))
      return false;
    if (!s.url.starts_with("http://") && !s.url.starts_with("https://"))
      return t.fail("url", "value", "must start with http:// or https://, not " + quote(s.url));
    return true;
  }

  bool load_log(TomlTable& t, LogConfig& l) {
    if (!t.only_keys({"path", "format", "root", "rules", "source"}) ||
        !t.one_of("source", l.source, {"file", "journal"}) || !t.optional("format", l.format) ||
        !t.optional("root", l.root) || !t.optional("rules", l.rules))
      return false;
    if (l.source == "journal") {
      // The journal's trusted fields tell sshd's own messages from forged ones
      // (docs/formats/other-logs.md); no other log is read from it.
      if (l.format != "sshd")
        return t.fail("source", "value",
                      "only sshd's messages are read from the journal, not a " + l.format + " log");
      // `path`, when given, is a journal directory instead of the system journal.
      if (!t.optional("path", l.path) || (!l.path.empty() && !absolute_path(t, "path", l.path)))
        return false;
    } else if (!t.required("path", "every [[log]] needs the path of an access log", l.path) ||
               !absolute_path(t, "path", l.path)) {
      return false;
    }
    // The other logs (docs/formats/other-logs.md) have their own rule sets; an access log's
    // rules are [logwatch] rules.
    if (logparse::event_log_named(l.format)) {
      if (!l.root.empty())
        return t.fail("root", "value", "only an access log has a root, not a " + l.format + " log");
      for (auto& r : l.rules)
        if (!absolute_path(t, "rules", r)) return false;
      return true;
    }
    if (!l.rules.empty())
      return t.fail("rules", "value",
                    "only nginx-error, apache-error and sshd logs have rules of their own; an "
                    "access log's are [logwatch] rules");
    if (auto f = logparse::LogFormat::compile(l.format); !f)
      return t.fail("format", "value", f.error().message());
    return l.root.empty() || absolute_path(t, "root", l.root);
  }

  bool load_page(TomlTable& t, PageConfig& p) {
    if (!t.only_keys({"url", "interval", "user_agents", "allow_origins", "connect_to", "timeout",
                      "max_kb", "root"}) ||
        !t.required("url", "every [[page]] needs the url of a page", p.url))
      return false;
    if ((!p.url.starts_with("http://") && !p.url.starts_with("https://")) || p.url.size() > 2048 ||
        page::origin_of(p.url).size() <= p.url.find("://") + 3 ||
        p.url.find_first_of(" \t\r\n\"<>") != std::string::npos)
      return t.fail(
          "url", "value",
          "must be an http:// or https:// URL of at most 2048 bytes, not " + quote(p.url));
    return load_page_keys(t, p);
  }

  // [pages] (docs/pages.md, Discovery): base_url is an origin, the paths come from a log.
  bool load_discovery(TomlTable& t, Config& c) {
    PageDiscoveryConfig& d = c.page_discovery;
    if (!t.only_keys({"discover", "base_url", "log", "min_clients", "keep_query", "rank_every",
                      "interval", "user_agents", "allow_origins", "connect_to", "timeout", "max_kb",
                      "root"}) ||
        !t.optional("base_url", d.base_url, 1024))
      return false;
    if (!d.base_url.empty()) d.discover = 10;
    if (!t.optional("discover", d.discover, 0u, static_cast<uint32_t>(kMaxPages)) ||
        !t.optional("log", d.log) || !t.optional("min_clients", d.min_clients, 2u, 1000u) ||
        !t.optional("keep_query", d.keep_query, {.max_items = 16, .max_item_bytes = 64}) ||
        !t.optional("rank_every", d.rank_every_s, 60u, 30 * 86400u) || !load_page_keys(t, d.page))
      return false;
    while (d.base_url.ends_with('/')) d.base_url.pop_back();
    if (d.discover > 0 &&
        ((!d.base_url.starts_with("http://") && !d.base_url.starts_with("https://")) ||
         page::origin_of(d.base_url).size() <= d.base_url.find("://") + 3 ||
         d.base_url.find_first_of("/?#@\\ \t\r\n\"<>", d.base_url.find("://") + 3) !=
             std::string::npos))
      return t.fail("base_url", "value",
                    "must be an origin to fetch the discovered paths from, such as "
                    "\"https://www.example.com\" (no path, query or user), not " +
                        quote(d.base_url));
    for (const auto& k : d.keep_query)
      if (k.empty() ||
          k.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        return t.fail(
            "keep_query", "value",
            "names query parameters (lower-case letters, digits, _ and -), not " + quote(k));
    const LogConfig* counted = nullptr;
    for (const auto& l : c.logs)
      if (l.path == d.log || (d.log.empty() && c.logs.size() == 1)) counted = &l;
    if (!d.log.empty() && !counted)
      return t.fail("log", "value", quote(d.log) + " is not the path of a [[log]]");
    if (d.page.root.empty() && counted) d.page.root = counted->root;
    return true;
  }

  // The keys [[page]] and [pages] share: how a page is fetched and judged.
  bool load_page_keys(TomlTable& t, PageConfig& p) {
    if (!t.optional("interval", p.interval_s, 1u, 86400u) ||
        !t.optional("user_agents", p.user_agents) ||
        !t.optional("allow_origins", p.allow_origins) || !t.optional("connect_to", p.connect_to) ||
        !t.optional("timeout", p.timeout_s, 1u, 300u) ||
        !t.optional("max_kb", p.max_kb, 1u, 65536u) || !t.optional("root", p.root) ||
        (!p.root.empty() && !absolute_path(t, "root", p.root)))
      return false;
    if (p.user_agents.empty() || p.user_agents.size() > 4)
      return t.fail("user_agents", "value", "must list 1 to 4 user agents");
    for (const auto& ua : p.user_agents)
      if (!page::preset_user_agent(ua))
        if (auto problem = page::user_agent_problem(ua); !problem.empty())
          return t.fail("user_agents", "value", quote(ua) + ": " + problem);
    if (p.allow_origins.size() > 256)
      return t.fail("allow_origins", "value", "must list at most 256 origins");
    for (const auto& o : p.allow_origins)
      if (auto problem = page::allow_origin_problem(o); !problem.empty())
        return t.fail("allow_origins", "value", quote(o) + ": " + problem);
    const size_t colon = p.connect_to.rfind(':');
    if (!p.connect_to.empty() &&
        (colon == std::string::npos || colon == 0 || colon + 1 == p.connect_to.size() ||
         p.connect_to.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
         p.connect_to.find_first_of(" \t\r\n,") != std::string::npos))
      return t.fail(
          "connect_to", "value",
          "must be HOST:PORT (\"127.0.0.1:80\", \"[::1]:443\"), not " + quote(p.connect_to));
    return true;
  }

  bool load_logwatch(TomlTable& t, LogwatchConfig& w) {
    if (!t.only_keys({"rules", "default_rules", "allowlist", "correlation_window"}) ||
        !t.optional("rules", w.rules) || !t.optional("default_rules", w.default_rules) ||
        !t.optional("allowlist", w.allowlist) ||
        !t.optional("correlation_window", w.correlation_window_s, 0u, 86400u))
      return false;
    for (auto& r : w.rules)
      if (!absolute_path(t, "rules", r)) return false;
    for (const auto& a : w.allowlist)
      if (auto cidr = logparse::Cidr::parse(a); !cidr)
        return t.fail("allowlist", "value", quote(a) + ": " + cidr.error().message());
    return true;
  }

  bool load_ban(TomlTable& t, BanConfig& b) {
    // Prefixes no wider than /32 (IPv6) and /16 (IPv4), no narrower than one address's
    // network: a typo must not ban a continent. At least 2 offenders: one is an address.
    if (!t.only_keys({"backend", "nft_table", "hook", "hook_timeout", "ttl", "ttl_factor",
                      "max_ttl", "prefix_offenders", "prefix_v6", "prefix_v4", "prefix_window",
                      "max_prefix_bans"}) ||
        !t.optional("prefix_offenders", b.prefix_offenders, 0u, 1000000u) ||
        !t.optional("prefix_v6", b.prefix_v6, 32u, 127u) ||
        !t.optional("prefix_v4", b.prefix_v4, 16u, 31u) ||
        !t.optional("prefix_window", b.prefix_window_s, 1u, 86400u) ||
        !t.optional("max_prefix_bans", b.max_prefix_bans, 1u, 100000u))
      return false;
    if (b.prefix_offenders == 1)
      return t.fail("prefix_offenders", "value",
                    "must be 0 (off) or at least 2: one offender is an address, not a network");
    if (!t.one_of("backend", b.backend, {"nftables", "hook", "none"}) ||
        !t.optional("nft_table", b.nft_table) || !t.optional("hook", b.hook) ||
        !t.optional("hook_timeout", b.hook_timeout_s, 1u, 3600u) ||
        !t.optional("ttl", b.ttl_s, 1u, 365 * 86400u) ||
        !t.optional("ttl_factor", b.ttl_factor, 1u, 100u) ||
        !t.optional("max_ttl", b.max_ttl_s, 1u, 365 * 86400u))
      return false;
    if (b.backend == "hook" && (b.hook.empty() || b.hook[0].empty() || b.hook[0][0] != '/'))
      return t.fail("hook", "value", "the hook backend needs hook = [\"/absolute/command\", ...]");
    if (b.nft_table.empty() || b.nft_table.size() > 32 ||
        b.nft_table.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
      return t.fail("nft_table", "value",
                    "must be 1-32 lower-case letters, digits or '_', not " + quote(b.nft_table));
    return true;
  }

  bool load_manager(TomlTable& t, ManagerConfig& m) {
    if (!t.only_keys({"listen", "state_dir", "database", "public_url", "heartbeat", "lost_after",
                      "max_agents", "event_queue_mb", "retention_days", "max_events_per_agent",
                      "never_ban", "max_agent_bans_per_hour", "url", "token_file",
                      "console_dir"}) ||
        !t.optional("listen", m.listen) || !t.optional("state_dir", m.state_dir) ||
        !absolute_path(t, "state_dir", m.state_dir) || !t.optional("database", m.database) ||
        !t.optional("public_url", m.public_url) || !t.optional("console_dir", m.console_dir) ||
        (!m.console_dir.empty() && !absolute_path(t, "console_dir", m.console_dir)) ||
        !t.optional("heartbeat", m.heartbeat_s, 1u, 3600u) ||
        !t.optional("lost_after", m.lost_after_s, 2u, 86400u) ||
        !t.optional("max_agents", m.max_agents, 1u, 1000000u) ||
        !t.optional("event_queue_mb", m.event_queue_mb, 1u, 65536u) ||
        !t.optional("retention_days", m.retention_days, 0u, 36500u) ||
        !t.optional("max_events_per_agent", m.max_events_per_agent, 0u, 1'000'000'000u) ||
        !t.optional("never_ban", m.never_ban) ||
        !t.optional("max_agent_bans_per_hour", m.max_agent_bans_per_hour, 0u, 10'000'000u) ||
        !t.optional("url", m.url) || !t.optional("token_file", m.token_file))
      return false;
    for (const auto& a : m.never_ban)
      if (auto cidr = logparse::Cidr::parse(a); !cidr)
        return t.fail("never_ban", "value", quote(a) + ": " + cidr.error().message());
    const size_t colon = m.listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == m.listen.size() ||
        m.listen.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      return t.fail("listen", "value",
                    "must be HOST:PORT (\"0.0.0.0:8443\", \"[::]:8443\"), not " + quote(m.listen));
    // Not quoted back: a PostgreSQL URL may carry a password.
    if (!m.database.starts_with("sqlite:///") && !m.database.starts_with("postgresql://") &&
        !m.database.starts_with("postgres://"))
      return t.fail("database", "value",
                    "must be sqlite:///ABSOLUTE/PATH.db or postgresql://USER@HOST/DBNAME (a "
                    "libpq URL), not a URL of another scheme");
    if (m.lost_after_s <= m.heartbeat_s)
      return t.fail("lost_after", "value",
                    fmt::format("must be longer than heartbeat ({} s): a live agent would be lost "
                                "between two heartbeats",
                                m.heartbeat_s));
    for (const auto* key : {"public_url", "url"}) {
      const std::string& u = std::string_view(key) == "url" ? m.url : m.public_url;
      if (!u.empty() && (!u.starts_with("https://") || u.size() <= 8 ||
                         u.find_first_of(" \t\r\n\"") != std::string::npos))
        return t.fail(key, "value", "must be https://HOST:PORT, not " + quote(u));
    }
    return m.token_file.empty() || absolute_path(t, "token_file", m.token_file);
  }

  bool load_heal(TomlTable& t, Config& c) {
    HealConfig& h = c.heal;
    if (!t.only_keys({"on", "tamper_count", "tamper_window", "health_file", "health_file_action",
                      "health_listen", "hook", "hook_timeout", "recover_after"}))
      return false;
    if (t.has("on")) {
      std::vector<std::string> on;
      if (!t.optional("on", on)) return false;
      h.on_storm = h.on_restore_failed = h.on_script_quarantined = h.on_state_failed =
          h.on_page_injected = false;
      for (const auto& name : on) {
        if (name == proto::heal_condition::kTamperStorm)
          h.on_storm = true;
        else if (name == proto::heal_condition::kRestoreFailed)
          h.on_restore_failed = true;
        else if (name == proto::heal_condition::kScriptQuarantined)
          h.on_script_quarantined = true;
        else if (name == proto::heal_condition::kStateFailed)
          h.on_state_failed = true;
        else if (name == proto::heal_condition::kPageInjected)
          h.on_page_injected = true;
        else
          return t.fail("on", "value",
                        "conditions are \"tamper-storm\", \"restore-failed\", "
                        "\"script-quarantined\", \"state-failed\" and \"page-injected\", not " +
                            quote(name));
      }
    }
    if (!t.optional("tamper_count", h.tamper_count, 0u, 1000000u) ||
        !t.optional("tamper_window", h.tamper_window_s, 1u, 86400u) ||
        !t.optional("health_file", h.health_file) ||
        !t.choice(
            "health_file_action", h.health_file_action,
            {{"remove", HealthFileAction::kRemove}, {"rewrite", HealthFileAction::kRewrite}}) ||
        !t.optional("health_listen", h.health_listen) || !t.optional("hook", h.hook) ||
        !t.optional("hook_timeout", h.hook_timeout_s, 1u, 3600u) ||
        !t.optional("recover_after", h.recover_after_s, 0u, 30 * 86400u))
      return false;
    if (t.has("hook") && (h.hook.empty() || h.hook[0].empty() || h.hook[0][0] != '/'))
      return t.fail("hook", "value",
                    "must be a command as an array whose first element is an absolute path");
    if (h.health_file.empty()) return true;
    if (!absolute_path(t, "health_file", h.health_file)) return false;
    for (const auto& r : c.roots)
      if (h.health_file.starts_with(r.path + "/") || r.path == "/")
        return t.fail("health_file", "value",
                      "lies inside root " + quote(r.path) +
                          ": the agent would restore it; keep it outside the roots (serve it "
                          "with an alias, see docs/heal.md)");
    return true;
  }

  // An array of glob patterns (core/fs/glob.h), compiled here so a bad one is named.
  bool patterns(TomlTable& t, std::string_view name, std::vector<std::string>& out) {
    if (!t.optional(name, out)) return false;
    if (!t.has(name)) return true;
    if (auto m = fs::PathMatcher::compile(out); !m)
      return t.fail(name, "value", m.error().message());
    return true;
  }

  bool check_roots(TomlTable& top, const Config& c) {
    auto inside = [](const std::string& child, const std::string& parent) {
      return child == parent || parent == "/" ||
             (child.size() > parent.size() && child.starts_with(parent) &&
              child[parent.size()] == '/');
    };
    for (size_t i = 0; i < c.roots.size(); ++i) {
      if (inside(c.state_dir, c.roots[i].path) || inside(c.roots[i].path, c.state_dir))
        return top.fail("state_dir", "value",
                        "state_dir " + quote(c.state_dir) + " overlaps root " +
                            quote(c.roots[i].path) +
                            ": mamori's own writes would look like tampering");
      for (size_t j = 0; j < c.roots.size(); ++j) {
        if (i == j || !inside(c.roots[i].path, c.roots[j].path)) continue;
        // Blame the inner root, or the second listing of a duplicate.
        const bool twice = c.roots[i].path == c.roots[j].path;
        const size_t bad = twice ? std::max(i, j) : i;
        return reader_.fail(
            root_sources_[bad], "value", fmt::format("root[{}].path", bad + 1),
            "root " + quote(c.roots[bad].path) +
                (twice ? " is listed twice" : " lies inside root " + quote(c.roots[j].path)));
      }
    }
    return true;
  }

  // Trailing slashes go; what is left must be absolute, without '.' or '..' components.
  // agent.name goes into every event and every manager's list: one short line.
  bool one_line_name(TomlTable& t, const std::string& name) {
    if (reader_.failed()) return false;
    if (name.size() <= 255 &&
        name.find_first_of(std::string_view("\0\n\r", 3)) == std::string::npos)
      return true;
    return t.fail("name", "value", "must be at most 255 bytes on one line");
  }

  bool absolute_path(TomlTable& t, std::string_view name, std::string& path) {
    if (reader_.failed()) return false;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (is_absolute_clean(path)) return true;
    return t.fail(name, "value",
                  "must be an absolute path without '.' or '..' components, not " + quote(path));
  }

  TomlReader& reader_;
  std::vector<toml::source_region> root_sources_;
};

}  // namespace

std::string log_name(const LogConfig& log) {
  if (log.source != "journal") return log.path;
  return log.path.empty() ? "journal" : "journal:" + log.path;
}

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::kAlert:
      return "alert";
    case Mode::kRestore:
      return "restore";
    case Mode::kPreserve:
      return "preserve";
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view name) {
  if (name == "alert") return Mode::kAlert;
  if (name == "restore") return Mode::kRestore;
  if (name == "preserve") return Mode::kPreserve;
  return std::nullopt;
}

std::string_view backend_name(Backend backend) {
  switch (backend) {
    case Backend::kAuto:
      return "auto";
    case Backend::kFanotify:
      return "fanotify";
    case Backend::kInotify:
      return "inotify";
  }
  return "?";
}

std::string_view opcache_mode_name(OpcacheMode mode) {
  switch (mode) {
    case OpcacheMode::kOff:
      return "off";
    case OpcacheMode::kInvalidate:
      return "invalidate";
    case OpcacheMode::kReload:
      return "reload";
  }
  return "?";
}

std::string_view sink_type_name(SinkType type) {
  switch (type) {
    case SinkType::kSyslog:
      return "syslog";
    case SinkType::kSmtp:
      return "smtp";
    case SinkType::kWebhook:
      return "webhook";
  }
  return "?";
}

bool SinkFilter::passes(int severity, std::string_view action, std::string_view root) const {
  if (severity < min_severity) return false;
  if (!actions.empty() && std::find(actions.begin(), actions.end(), action) == actions.end())
    return false;
  return roots.empty() || root.empty() ||
         std::find(roots.begin(), roots.end(), root) != roots.end();
}

std::vector<std::string> RootConfig::default_deny_new() {
  // What a web server would execute (or include: .inc; or parse: server-side includes),
  // or what reconfigures how it does. Matched case-insensitively: "b.PHP" too.
  return {"*.php",   "*.php[0-9]", "*.phtml",   "*.phtm",   "*.phar", "*.pht",  "*.phps",
          "*.php.*", "*.phtml.*",  "*.inc",     "*.shtml",  "*.shtm", "*.stm",  "*.cgi",
          "*.pl",    "*.py",       "*.sh",      "*.asp",    "*.aspx", "*.ashx", "*.asmx",
          "*.jsp",   "*.jspx",     ".htaccess", ".user.ini"};
}

LoadResult<Config> parse_config(std::string_view text, std::string_view source_name) {
  TomlReader reader("config", std::string(source_name));
  Config c;
  if (!reader.parse(text, kMaxConfigBytes) || !Loader(reader).load(c)) return reader.unexpected();
  return c;
}

LoadResult<Config> load_config(const std::string& path) {
  auto text = read_toml_file("config", path, kMaxConfigBytes);
  if (!text) return tl::unexpected(std::move(text).error());
  return parse_config(*text, path);
}

}  // namespace mamori::config
