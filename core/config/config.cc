#include "core/config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/fs/glob.h"
#include "core/logparse/format.h"
#include "core/logparse/ip.h"

namespace mamori::config {
namespace {

// A config file is small; a larger one is a mistake or an attack on the parser.
constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxRoots = 4096;
constexpr size_t kMaxSinks = 64;
constexpr size_t kMaxLogs = 256;

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

class Loader {
 public:
  explicit Loader(std::string_view source) : source_(source) {}

  ConfigResult<Config> load(const toml::table& top) {
    Config c;
    c.source = source_;
    if (!check_keys(top,
                    {"state_dir", "jobs", "compression_level", "root", "agent", "sink", "heal",
                     "log", "logwatch", "ban"},
                    ""))
      return err();
    if (!get_string(top, "state_dir", "state_dir", c.state_dir)) return err();
    int64_t jobs = 0;
    if (!get_int(top, "jobs", "jobs", jobs, 0, 1024)) return err();
    c.jobs = static_cast<unsigned>(jobs);
    int64_t level = c.compression_level;
    if (!get_int(top, "compression_level", "compression_level", level, -7, 19)) return err();
    c.compression_level = static_cast<int>(level);
    if (!absolute_path(top.get("state_dir"), "state_dir", c.state_dir)) return err();

    if (const auto* node = top.get("root")) {
      const auto* arr = node->as_array();
      if (!arr)
        return fail_at(*node, "config.type", "root", "must be an array of tables: [[root]]");
      if (arr->size() > kMaxRoots) return fail_at(*node, "config.limit", "root", "too many roots");
      for (size_t i = 0; i < arr->size(); ++i) {
        const std::string key = fmt::format("root[{}]", i + 1);
        const auto* t = (*arr)[i].as_table();
        if (!t) return fail_at((*arr)[i], "config.type", key, "must be a table");
        RootConfig r;
        if (!load_root(*t, key, r)) return err();
        c.roots.push_back(std::move(r));
        root_sources_.push_back(t->source());
      }
    }
    if (!check_roots(top, c)) return err();
    if (const auto* node = top.get("agent")) {
      const auto* t = node->as_table();
      if (!t) return fail_at(*node, "config.type", "agent", "must be a table: [agent]");
      if (!load_agent(*t, c.agent)) return err();
    }
    if (const auto* node = top.get("sink")) {
      const auto* arr = node->as_array();
      if (!arr)
        return fail_at(*node, "config.type", "sink", "must be an array of tables: [[sink]]");
      if (arr->size() > kMaxSinks) return fail_at(*node, "config.limit", "sink", "too many sinks");
      for (size_t i = 0; i < arr->size(); ++i) {
        const std::string key = fmt::format("sink[{}]", i + 1);
        const auto* t = (*arr)[i].as_table();
        if (!t) return fail_at((*arr)[i], "config.type", key, "must be a table");
        SinkConfig sink;
        if (!load_sink(*t, key, sink)) return err();
        for (const auto& other : c.sinks)
          if (other.name == sink.name)
            return fail_at(*t, "config.value", key + ".name",
                           "sink name " + quote(sink.name) +
                               " is used twice: give each [[sink]] its own name");
        c.sinks.push_back(std::move(sink));
      }
    }
    if (const auto* node = top.get("log")) {
      const auto* arr = node->as_array();
      if (!arr) return fail_at(*node, "config.type", "log", "must be an array of tables: [[log]]");
      if (arr->size() > kMaxLogs) return fail_at(*node, "config.limit", "log", "too many logs");
      for (size_t i = 0; i < arr->size(); ++i) {
        const std::string key = fmt::format("log[{}]", i + 1);
        const auto* t = (*arr)[i].as_table();
        if (!t) return fail_at((*arr)[i], "config.type", key, "must be a table");
        LogConfig log;
        if (!load_log(*t, key, log)) return err();
        c.logs.push_back(std::move(log));
      }
    }
    if (const auto* node = top.get("logwatch")) {
      const auto* t = node->as_table();
      if (!t) return fail_at(*node, "config.type", "logwatch", "must be a table: [logwatch]");
      if (!load_logwatch(*t, c.logwatch)) return err();
    }
    if (const auto* node = top.get("ban")) {
      const auto* t = node->as_table();
      if (!t) return fail_at(*node, "config.type", "ban", "must be a table: [ban]");
      if (!load_ban(*t, c.ban)) return err();
    }
    if (const auto* node = top.get("heal")) {
      const auto* t = node->as_table();
      if (!t) return fail_at(*node, "config.type", "heal", "must be a table: [heal]");
      if (!load_heal(*t, c)) return err();
    }
    return c;
  }

  ConfigResult<Config> fail_at(const toml::node& node, std::string code, std::string key,
                               std::string message) {
    set(node.source(), std::move(code), std::move(key), std::move(message));
    return err();
  }

  tl::unexpected<ConfigError> err() { return tl::unexpected(error_); }

  void set(const toml::source_region& where, std::string code, std::string key,
           std::string message) {
    error_ = ConfigError{std::string(source_), where.begin.line, where.begin.column,
                         std::move(code),      std::move(key),   std::move(message)};
  }

 private:
  bool load_root(const toml::table& t, const std::string& key, RootConfig& r) {
    if (!check_keys(t, {"path", "mode", "exclude", "allow_new", "deny_new"}, key + "."))
      return false;
    const auto* path = t.get("path");
    if (!path) {
      set(t.source(), "config.missing", key + ".path", "every [[root]] needs a path");
      return false;
    }
    if (!get_string(t, "path", key + ".path", r.path)) return false;
    if (!absolute_path(path, key + ".path", r.path)) return false;
    std::string mode = "restore";
    if (!get_string(t, "mode", key + ".mode", mode)) return false;
    if (auto m = parse_mode(mode))
      r.mode = *m;
    else {
      set(t.get("mode")->source(), "config.value", key + ".mode",
          "must be \"alert\", \"restore\" or \"preserve\", not " + quote(mode));
      return false;
    }
    return get_patterns(t, "exclude", key + ".exclude", r.exclude) &&
           get_patterns(t, "allow_new", key + ".allow_new", r.allow_new) &&
           get_patterns(t, "deny_new", key + ".deny_new", r.deny_new);
  }

  bool load_agent(const toml::table& t, AgentConfig& a) {
    if (!check_keys(t,
                    {"name", "socket", "event_log", "backend", "verify_interval",
                     "evidence_quota_mb", "evidence_max_file_mb", "storm_changes_per_second",
                     "path_restores_per_second", "allowed_events_per_second"},
                    "agent."))
      return false;
    if (!get_string(t, "name", "agent.name", a.name)) return false;
    if (a.name.size() > 255 ||
        a.name.find_first_of(std::string_view("\0\n\r", 3)) != std::string::npos) {
      set(t.get("name")->source(), "config.value", "agent.name",
          "must be at most 255 bytes on one line");
      return false;
    }
    if (!get_string(t, "socket", "agent.socket", a.socket)) return false;
    if (!absolute_path(t.get("socket"), "agent.socket", a.socket)) return false;
    if (!get_string(t, "event_log", "agent.event_log", a.event_log)) return false;
    if (!absolute_path(t.get("event_log"), "agent.event_log", a.event_log)) return false;
    std::string backend = "auto";
    if (!get_string(t, "backend", "agent.backend", backend)) return false;
    if (backend == "auto")
      a.backend = Backend::kAuto;
    else if (backend == "fanotify")
      a.backend = Backend::kFanotify;
    else if (backend == "inotify")
      a.backend = Backend::kInotify;
    else {
      set(t.get("backend")->source(), "config.value", "agent.backend",
          "must be \"auto\", \"fanotify\" or \"inotify\", not " + quote(backend));
      return false;
    }
    auto get_u = [&](std::string_view name, int64_t lo, int64_t hi, auto& out) {
      int64_t v = static_cast<int64_t>(out);
      if (!get_int(t, name, "agent." + std::string(name), v, lo, hi)) return false;
      out = static_cast<std::remove_reference_t<decltype(out)>>(v);
      return true;
    };
    return get_u("verify_interval", 0, 7 * 86400, a.verify_interval_s) &&
           get_u("evidence_quota_mb", 1, 1 << 24, a.evidence_quota_mb) &&
           get_u("evidence_max_file_mb", 1, 1 << 16, a.evidence_max_file_mb) &&
           get_u("storm_changes_per_second", 1, 1000000, a.storm_changes_per_second) &&
           get_u("path_restores_per_second", 1, 1000000, a.path_restores_per_second) &&
           get_u("allowed_events_per_second", 1, 1000000, a.allowed_events_per_second);
  }

  bool load_sink(const toml::table& t, const std::string& key, SinkConfig& s) {
    std::string type;
    if (!t.get("type")) {
      set(t.source(), "config.missing", key + ".type",
          "every [[sink]] needs a type: \"syslog\", \"smtp\" or \"webhook\"");
      return false;
    }
    if (!get_string(t, "type", key + ".type", type)) return false;
    std::vector<std::string_view> keys = {"name",  "type",    "min_severity", "actions",
                                          "roots", "timeout", "digest"};
    if (type == "syslog") {
      s.type = SinkType::kSyslog;
      keys.insert(keys.end(), {"address", "facility", "app_name", "ca_file", "tls_verify"});
    } else if (type == "smtp") {
      s.type = SinkType::kSmtp;
      s.digest_s = 60;
      keys.insert(keys.end(), {"url", "from", "to", "username", "password_file", "starttls",
                               "ca_file", "tls_verify"});
    } else if (type == "webhook") {
      s.type = SinkType::kWebhook;
      keys.insert(keys.end(), {"url", "format", "headers", "ca_file", "tls_verify"});
    } else {
      set(t.get("type")->source(), "config.value", key + ".type",
          "must be \"syslog\", \"smtp\" or \"webhook\", not " + quote(type));
      return false;
    }
    if (!check_keys(t, keys, key + ".")) return false;
    s.name = type;
    if (!get_string(t, "name", key + ".name", s.name)) return false;
    if (s.name.empty() || s.name.size() > 64 ||
        s.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            std::string::npos) {
      set(t.get("name") ? t.get("name")->source() : t.source(), "config.value", key + ".name",
          "must be 1-64 letters, digits, '-' or '_' (it names the sink's cursor file), not " +
              quote(s.name));
      return false;
    }
    if (const auto* sev = t.get("min_severity")) {
      if (const auto* i = sev->as_integer(); i && i->get() >= 1 && i->get() <= 10) {
        s.filter.min_severity = static_cast<int>(i->get());
      } else if (const auto* name = sev->as_string(); name && severity_number(name->get())) {
        s.filter.min_severity = *severity_number(name->get());
      } else {
        set(sev->source(), "config.value", key + ".min_severity",
            "must be \"info\", \"notice\", \"warning\", \"critical\" or a number 1-10");
        return false;
      }
    }
    int64_t timeout = s.timeout_s, digest = s.digest_s;
    if (!get_strings(t, "actions", key + ".actions", s.filter.actions) ||
        !get_strings(t, "roots", key + ".roots", s.filter.roots) ||
        !get_int(t, "timeout", key + ".timeout", timeout, 1, 600) ||
        !get_int(t, "digest", key + ".digest", digest, 0, 86400))
      return false;
    for (auto& r : s.filter.roots)
      if (!absolute_path(t.get("roots"), key + ".roots", r)) return false;
    s.timeout_s = static_cast<uint32_t>(timeout);
    s.digest_s = static_cast<uint32_t>(digest);
    switch (s.type) {
      case SinkType::kSyslog:
        return load_syslog(t, key, s);
      case SinkType::kSmtp:
        return load_smtp(t, key, s);
      case SinkType::kWebhook:
        return load_webhook(t, key, s);
    }
    return false;
  }

  bool require(const toml::table& t, std::string_view name, const std::string& key,
               std::string_view why) {
    if (t.get(name)) return true;
    set(t.source(), "config.missing", key + "." + std::string(name), std::string(why));
    return false;
  }

  bool load_syslog(const toml::table& t, const std::string& key, SinkConfig& s) {
    if (!require(t, "address", key,
                 "a syslog sink needs an address: unix:/dev/log, udp://HOST:PORT, "
                 "tcp://HOST:PORT or tls://HOST:PORT"))
      return false;
    std::string facility = "authpriv";
    if (!get_string(t, "address", key + ".address", s.address) ||
        !get_string(t, "facility", key + ".facility", facility) ||
        !get_string(t, "app_name", key + ".app_name", s.app_name) || !load_tls(t, key, s))
      return false;
    static constexpr std::string_view kFacilities[] = {
        "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
        "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "clock",
        "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7"};
    const auto* f = std::find(std::begin(kFacilities), std::end(kFacilities), facility);
    if (f == std::end(kFacilities)) {
      set(t.get("facility")->source(), "config.value", key + ".facility",
          "must be a syslog facility name (auth, authpriv, daemon, local0 ... local7), not " +
              quote(facility));
      return false;
    }
    s.facility = static_cast<int>(f - std::begin(kFacilities));
    if (!s.address.starts_with("unix:") && !s.address.starts_with("udp://") &&
        !s.address.starts_with("tcp://") && !s.address.starts_with("tls://")) {
      set(t.get("address")->source(), "config.value", key + ".address",
          "must start with unix:, udp://, tcp:// or tls://, not " + quote(s.address));
      return false;
    }
    return true;
  }

  bool load_tls(const toml::table& t, const std::string& key, SinkConfig& s) {
    return get_string(t, "ca_file", key + ".ca_file", s.ca_file) &&
           get_bool(t, "tls_verify", key + ".tls_verify", s.tls_verify) &&
           (s.ca_file.empty() || absolute_path(t.get("ca_file"), key + ".ca_file", s.ca_file));
  }

  bool load_smtp(const toml::table& t, const std::string& key, SinkConfig& s) {
    if (!require(t, "url", key,
                 "an smtp sink needs a url: smtp://HOST:PORT or smtps://HOST:PORT") ||
        !require(t, "from", key, "an smtp sink needs a from address") ||
        !require(t, "to", key, "an smtp sink needs at least one recipient in to"))
      return false;
    std::string starttls = "try";
    if (!load_tls(t, key, s) || !get_string(t, "url", key + ".url", s.url) ||
        !get_string(t, "from", key + ".from", s.from) || !get_strings(t, "to", key + ".to", s.to) ||
        !get_string(t, "username", key + ".username", s.username) ||
        !get_string(t, "password_file", key + ".password_file", s.password_file) ||
        !get_string(t, "starttls", key + ".starttls", starttls))
      return false;
    if (!s.url.starts_with("smtp://") && !s.url.starts_with("smtps://")) {
      set(t.get("url")->source(), "config.value", key + ".url",
          "must start with smtp:// or smtps://, not " + quote(s.url));
      return false;
    }
    if (s.to.empty()) {
      set(t.get("to")->source(), "config.value", key + ".to", "must name at least one recipient");
      return false;
    }
    if (starttls == "none")
      s.starttls = StartTls::kNone;
    else if (starttls == "try")
      s.starttls = StartTls::kTry;
    else if (starttls == "required")
      s.starttls = StartTls::kRequired;
    else {
      set(t.get("starttls")->source(), "config.value", key + ".starttls",
          "must be \"none\", \"try\" or \"required\", not " + quote(starttls));
      return false;
    }
    if (!s.password_file.empty() &&
        !absolute_path(t.get("password_file"), key + ".password_file", s.password_file))
      return false;
    return true;
  }

  bool load_webhook(const toml::table& t, const std::string& key, SinkConfig& s) {
    if (!require(t, "url", key, "a webhook sink needs a url: http(s)://...")) return false;
    if (!load_tls(t, key, s) || !get_string(t, "url", key + ".url", s.url) ||
        !get_string(t, "format", key + ".format", s.format) ||
        !get_strings(t, "headers", key + ".headers", s.headers))
      return false;
    if (!s.url.starts_with("http://") && !s.url.starts_with("https://")) {
      set(t.get("url")->source(), "config.value", key + ".url",
          "must start with http:// or https://, not " + quote(s.url));
      return false;
    }
    if (s.format != "json" && s.format != "slack") {
      set(t.get("format")->source(), "config.value", key + ".format",
          "must be \"json\" or \"slack\", not " + quote(s.format));
      return false;
    }
    return true;
  }

  bool load_log(const toml::table& t, const std::string& key, LogConfig& l) {
    if (!check_keys(t, {"path", "format", "root"}, key + ".")) return false;
    if (!require(t, "path", key, "every [[log]] needs the path of an access log")) return false;
    if (!get_string(t, "path", key + ".path", l.path) ||
        !absolute_path(t.get("path"), key + ".path", l.path) ||
        !get_string(t, "format", key + ".format", l.format) ||
        !get_string(t, "root", key + ".root", l.root))
      return false;
    if (auto f = logparse::LogFormat::compile(l.format); !f) {
      set(t.get("format")->source(), "config.value", key + ".format", f.error().message());
      return false;
    }
    return l.root.empty() || absolute_path(t.get("root"), key + ".root", l.root);
  }

  bool load_logwatch(const toml::table& t, LogwatchConfig& w) {
    if (!check_keys(t, {"rules", "default_rules", "allowlist", "correlation_window"}, "logwatch."))
      return false;
    int64_t window = w.correlation_window_s;
    if (!get_strings(t, "rules", "logwatch.rules", w.rules) ||
        !get_bool(t, "default_rules", "logwatch.default_rules", w.default_rules) ||
        !get_strings(t, "allowlist", "logwatch.allowlist", w.allowlist) ||
        !get_int(t, "correlation_window", "logwatch.correlation_window", window, 0, 86400))
      return false;
    w.correlation_window_s = static_cast<uint32_t>(window);
    for (auto& r : w.rules)
      if (!absolute_path(t.get("rules"), "logwatch.rules", r)) return false;
    for (const auto& a : w.allowlist) {
      if (auto cidr = logparse::Cidr::parse(a); !cidr) {
        set(t.get("allowlist")->source(), "config.value", "logwatch.allowlist",
            quote(a) + ": " + cidr.error().message());
        return false;
      }
    }
    return true;
  }

  bool load_ban(const toml::table& t, BanConfig& b) {
    if (!check_keys(
            t,
            {"backend", "nft_table", "hook", "hook_timeout", "ttl", "ttl_factor", "max_ttl",
             "prefix_offenders", "prefix_v6", "prefix_v4", "prefix_window", "max_prefix_bans"},
            "ban."))
      return false;
    int64_t hook_timeout = b.hook_timeout_s, ttl = b.ttl_s, factor = b.ttl_factor,
            max_ttl = b.max_ttl_s, offenders = b.prefix_offenders, v6 = b.prefix_v6,
            v4 = b.prefix_v4, window = b.prefix_window_s, max_prefix = b.max_prefix_bans;
    // Prefixes no wider than /32 (IPv6) and /16 (IPv4), no narrower than one address's
    // network: a typo must not ban a continent. At least 2 offenders: one is an address.
    if (!get_int(t, "prefix_offenders", "ban.prefix_offenders", offenders, 0, 1000000) ||
        !get_int(t, "prefix_v6", "ban.prefix_v6", v6, 32, 127) ||
        !get_int(t, "prefix_v4", "ban.prefix_v4", v4, 16, 31) ||
        !get_int(t, "prefix_window", "ban.prefix_window", window, 1, 86400) ||
        !get_int(t, "max_prefix_bans", "ban.max_prefix_bans", max_prefix, 1, 100000))
      return false;
    if (offenders == 1) {
      set(t.get("prefix_offenders")->source(), "config.value", "ban.prefix_offenders",
          "must be 0 (off) or at least 2: one offender is an address, not a network");
      return false;
    }
    b.prefix_offenders = static_cast<uint32_t>(offenders);
    b.prefix_v6 = static_cast<uint32_t>(v6);
    b.prefix_v4 = static_cast<uint32_t>(v4);
    b.prefix_window_s = static_cast<uint32_t>(window);
    b.max_prefix_bans = static_cast<uint32_t>(max_prefix);
    if (!get_string(t, "backend", "ban.backend", b.backend) ||
        !get_string(t, "nft_table", "ban.nft_table", b.nft_table) ||
        !get_strings(t, "hook", "ban.hook", b.hook) ||
        !get_int(t, "hook_timeout", "ban.hook_timeout", hook_timeout, 1, 3600) ||
        !get_int(t, "ttl", "ban.ttl", ttl, 1, 365 * 86400) ||
        !get_int(t, "ttl_factor", "ban.ttl_factor", factor, 1, 100) ||
        !get_int(t, "max_ttl", "ban.max_ttl", max_ttl, 1, 365 * 86400))
      return false;
    b.hook_timeout_s = static_cast<uint32_t>(hook_timeout);
    b.ttl_s = static_cast<uint32_t>(ttl);
    b.ttl_factor = static_cast<uint32_t>(factor);
    b.max_ttl_s = static_cast<uint32_t>(max_ttl);
    if (b.backend != "nftables" && b.backend != "hook" && b.backend != "none") {
      set(t.get("backend")->source(), "config.value", "ban.backend",
          "must be \"nftables\", \"hook\" or \"none\", not " + quote(b.backend));
      return false;
    }
    if (b.backend == "hook" && (b.hook.empty() || b.hook[0].empty() || b.hook[0][0] != '/')) {
      set(t.get("hook") ? t.get("hook")->source() : t.source(), "config.value", "ban.hook",
          "the hook backend needs hook = [\"/absolute/command\", ...]");
      return false;
    }
    if (b.nft_table.empty() || b.nft_table.size() > 32 ||
        b.nft_table.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
            std::string::npos) {
      set(t.get("nft_table")->source(), "config.value", "ban.nft_table",
          "must be 1-32 lower-case letters, digits or '_', not " + quote(b.nft_table));
      return false;
    }
    return true;
  }

  bool load_heal(const toml::table& t, Config& c) {
    HealConfig& h = c.heal;
    if (!check_keys(t,
                    {"on", "tamper_count", "tamper_window", "health_file", "health_file_action",
                     "health_listen", "hook", "hook_timeout", "recover_after"},
                    "heal."))
      return false;
    if (t.get("on")) {
      std::vector<std::string> on;
      if (!get_strings(t, "on", "heal.on", on)) return false;
      h.on_storm = h.on_restore_failed = h.on_script_quarantined = h.on_state_failed = false;
      for (const auto& name : on) {
        if (name == "tamper-storm")
          h.on_storm = true;
        else if (name == "restore-failed")
          h.on_restore_failed = true;
        else if (name == "script-quarantined")
          h.on_script_quarantined = true;
        else if (name == "state-failed")
          h.on_state_failed = true;
        else {
          set(t.get("on")->source(), "config.value", "heal.on",
              "conditions are \"tamper-storm\", \"restore-failed\", \"script-quarantined\" "
              "and \"state-failed\", not " +
                  quote(name));
          return false;
        }
      }
    }
    std::string action = "remove";
    int64_t count = h.tamper_count, window = h.tamper_window_s, hook_timeout = h.hook_timeout_s,
            recover = h.recover_after_s;
    if (!get_int(t, "tamper_count", "heal.tamper_count", count, 0, 1000000) ||
        !get_int(t, "tamper_window", "heal.tamper_window", window, 1, 86400) ||
        !get_string(t, "health_file", "heal.health_file", h.health_file) ||
        !get_string(t, "health_file_action", "heal.health_file_action", action) ||
        !get_string(t, "health_listen", "heal.health_listen", h.health_listen) ||
        !get_strings(t, "hook", "heal.hook", h.hook) ||
        !get_int(t, "hook_timeout", "heal.hook_timeout", hook_timeout, 1, 3600) ||
        !get_int(t, "recover_after", "heal.recover_after", recover, 0, 30 * 86400))
      return false;
    h.tamper_count = static_cast<uint32_t>(count);
    h.tamper_window_s = static_cast<uint32_t>(window);
    h.hook_timeout_s = static_cast<uint32_t>(hook_timeout);
    h.recover_after_s = static_cast<uint32_t>(recover);
    if (action == "remove")
      h.health_file_action = HealthFileAction::kRemove;
    else if (action == "rewrite")
      h.health_file_action = HealthFileAction::kRewrite;
    else {
      set(t.get("health_file_action")->source(), "config.value", "heal.health_file_action",
          "must be \"remove\" or \"rewrite\", not " + quote(action));
      return false;
    }
    if (t.get("hook") && (h.hook.empty() || h.hook[0].empty() || h.hook[0][0] != '/')) {
      set(t.get("hook")->source(), "config.value", "heal.hook",
          "must be a command as an array whose first element is an absolute path");
      return false;
    }
    if (h.health_file.empty()) return true;
    if (!absolute_path(t.get("health_file"), "heal.health_file", h.health_file)) return false;
    for (const auto& r : c.roots) {
      if (h.health_file.starts_with(r.path + "/") || r.path == "/") {
        set(t.get("health_file")->source(), "config.value", "heal.health_file",
            "lies inside root " + quote(r.path) +
                ": the agent would restore it; keep it outside the roots (serve it with an "
                "alias, see docs/heal.md)");
        return false;
      }
    }
    return true;
  }

  static std::optional<int> severity_number(std::string_view name) {
    if (name == "info") return 1;
    if (name == "notice") return 3;
    if (name == "warning") return 5;
    if (name == "critical") return 7;
    return std::nullopt;
  }

  bool get_bool(const toml::table& t, std::string_view name, const std::string& key, bool& out) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* b = node->as_boolean();
    if (!b) {
      set(node->source(), "config.type", key,
          fmt::format("must be true or false, not {}", type_name(*node)));
      return false;
    }
    out = b->get();
    return true;
  }

  bool get_strings(const toml::table& t, std::string_view name, const std::string& key,
                   std::vector<std::string>& out) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* arr = node->as_array();
    if (!arr) {
      set(node->source(), "config.type", key, "must be an array of strings");
      return false;
    }
    out.clear();
    for (const auto& item : *arr) {
      const auto* str = item.as_string();
      if (!str) {
        set(item.source(), "config.type", key, "must be an array of strings");
        return false;
      }
      out.push_back(str->get());
    }
    return true;
  }

  bool get_patterns(const toml::table& t, std::string_view name, const std::string& key,
                    std::vector<std::string>& out) {
    const auto* ex = t.get(name);
    if (!ex) return true;
    const auto* arr = ex->as_array();
    if (!arr) {
      set(ex->source(), "config.type", key, "must be an array of strings");
      return false;
    }
    out.clear();
    for (const auto& item : *arr) {
      const auto* s = item.as_string();
      if (!s) {
        set(item.source(), "config.type", key, "must be an array of strings");
        return false;
      }
      out.push_back(s->get());
    }
    if (auto m = fs::PathMatcher::compile(out); !m) {
      set(ex->source(), "config.value", key, m.error().message());
      return false;
    }
    return true;
  }

  bool check_roots(const toml::table& top, const Config& c) {
    const toml::source_region state_where =
        top.get("state_dir") ? top.get("state_dir")->source() : top.source();
    auto inside = [](const std::string& child, const std::string& parent) {
      return child == parent || parent == "/" ||
             (child.size() > parent.size() && child.starts_with(parent) &&
              child[parent.size()] == '/');
    };
    for (size_t i = 0; i < c.roots.size(); ++i) {
      if (inside(c.state_dir, c.roots[i].path) || inside(c.roots[i].path, c.state_dir)) {
        set(state_where, "config.value", "state_dir",
            "state_dir " + quote(c.state_dir) + " overlaps root " + quote(c.roots[i].path) +
                ": mamori's own writes would look like tampering");
        return false;
      }
      for (size_t j = 0; j < c.roots.size(); ++j) {
        if (i == j || !inside(c.roots[i].path, c.roots[j].path)) continue;
        // Blame the inner root, or the second listing of a duplicate.
        const bool twice = c.roots[i].path == c.roots[j].path;
        const size_t bad = twice ? std::max(i, j) : i;
        set(root_sources_[bad], "config.value", fmt::format("root[{}].path", bad + 1),
            "root " + quote(c.roots[bad].path) +
                (twice ? " is listed twice" : " lies inside root " + quote(c.roots[j].path)));
        return false;
      }
    }
    return true;
  }

  bool check_keys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                  const std::string& prefix) {
    return check_keys(t, std::vector<std::string_view>(allowed), prefix);
  }

  bool check_keys(const toml::table& t, const std::vector<std::string_view>& allowed,
                  const std::string& prefix) {
    for (const auto& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
      std::string hint;
      for (auto a : allowed)
        if (edit_distance(k.str(), a) <= 2) hint = fmt::format(" (did you mean '{}'?)", a);
      set(k.source(), "config.unknown_key", prefix + std::string(k.str()),
          "unknown key " + quote(k.str()) + hint);
      return false;
    }
    return true;
  }

  bool get_string(const toml::table& t, std::string_view name, const std::string& key,
                  std::string& out) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* s = node->as_string();
    if (!s) {
      set(node->source(), "config.type", key,
          fmt::format("must be a string, not {}", type_name(*node)));
      return false;
    }
    out = s->get();
    return true;
  }

  bool get_int(const toml::table& t, std::string_view name, const std::string& key, int64_t& out,
               int64_t lo, int64_t hi) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* i = node->as_integer();
    if (!i) {
      set(node->source(), "config.type", key,
          fmt::format("must be an integer, not {}", type_name(*node)));
      return false;
    }
    if (i->get() < lo || i->get() > hi) {
      set(node->source(), "config.value", key, fmt::format("must be between {} and {}", lo, hi));
      return false;
    }
    out = i->get();
    return true;
  }

  bool absolute_path(const toml::node* node, const std::string& key, std::string& path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos ||
        path.find("/../") != std::string::npos || path.ends_with("/..") ||
        path.find("/./") != std::string::npos) {
      set(node ? node->source() : toml::source_region{}, "config.value", key,
          "must be an absolute path without '.' or '..' components, not " + quote(path));
      return false;
    }
    return true;
  }

  static std::string type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      default:
        return "a date or time";
    }
  }

  std::string_view source_;
  ConfigError error_;
  std::vector<toml::source_region> root_sources_;
};

}  // namespace

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

std::string ConfigError::text() const {
  std::string where = escape(file);
  if (line) where += fmt::format(":{}:{}", line, column);
  if (!key.empty()) where += ": " + escape(key);
  return fmt::format("{}: {} [{}]", where, message, code);
}

Error ConfigError::to_error() const { return Error{"config", "", 0, text()}; }

ConfigResult<Config> parse_config(std::string_view text, std::string_view source_name) {
  Loader loader(source_name);
  if (text.size() > kMaxConfigBytes) {
    loader.set({}, "config.limit", "", "larger than 1 MiB");
    return loader.err();
  }
  try {
    const toml::table top = toml::parse(text, source_name);
    return loader.load(top);
  } catch (const toml::parse_error& e) {
    loader.set(e.source(), "config.syntax", "", std::string(e.description()));
    return loader.err();
  }
}

ConfigResult<Config> load_config(const std::string& path) {
  auto text = fs::read_small_file(path, kMaxConfigBytes);
  if (!text) {
    auto e = std::move(text).error();
    return tl::unexpected(ConfigError{path, 0, 0, "config.io", "",
                                      e.detail.empty() ? std::strerror(e.errnum) : e.detail});
  }
  return parse_config(*text, path);
}

}  // namespace mamori::config
