#include "core/proto/control.h"

#include "core/base/quote.h"
#include "core/proto/channel.h"

#include <array>

namespace mamori::proto {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<Command, std::string_view>, 14> kCommands = {{
    {Command::kPing, "ping"},
    {Command::kStatus, "status"},
    {Command::kMode, "mode"},
    {Command::kPause, "pause"},
    {Command::kResume, "resume"},
    {Command::kDeployPaths, "deploy-paths"},
    {Command::kVerify, "verify"},
    {Command::kHeal, "heal"},
    {Command::kBan, "ban"},
    {Command::kUnban, "unban"},
    {Command::kEvidence, "evidence"},
    {Command::kSite, "site"},
    {Command::kAccept, "accept"},
    {Command::kRestore, "restore"},
}};

constexpr std::array<config::Mode, 3> kModes = {config::Mode::kAlert, config::Mode::kRestore,
                                                config::Mode::kPreserve};
constexpr std::array<config::SinkType, 3> kSinkTypes = {
    config::SinkType::kSyslog, config::SinkType::kSmtp, config::SinkType::kWebhook};
constexpr std::array<HealAction, 3> kHealActions = {HealAction::kStatus, HealAction::kClear,
                                                    HealAction::kFail};
constexpr std::array<LinkState, 4> kLinkStates = {LinkState::kDisabled, LinkState::kEnrolling,
                                                  LinkState::kConnecting, LinkState::kConnected};
constexpr std::array<ErrorCode, 7> kErrorCodes = {
    ErrorCode::kBadRequest,  ErrorCode::kUnsupportedVersion, ErrorCode::kUnknownCommand,
    ErrorCode::kBadArgument, ErrorCode::kUnknownRoot,        ErrorCode::kForbidden,
    ErrorCode::kFailed};

// Bytes that are not UTF-8 cannot be a JSON string: they go as hex under k + "_hex".
void put_bytes(json& j, std::string_view k, std::string_view s) {
  if (is_valid_utf8(s)) {
    j[std::string(k)] = s;
    return;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : s) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  j[std::string(k) + "_hex"] = hex;
}

bool unhex(std::string_view hex, std::string& out) {
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out.clear();
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

// A path below a root as the catalog names it: "" (the root itself) or components joined
// by single slashes, none of them empty, "." or "..", and no NUL.
bool relative_path(std::string_view p) {
  if (p.empty()) return true;
  if (p.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (true) {
    const size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == p.size()) return true;
    start = end + 1;
  }
}

// A list of byte strings: the UTF-8 ones under k, the others in hex under k + "_hex"
// (present only when there are some: a reader that predates it sees the same list).
void put_byte_list(json& j, std::string_view k, const std::vector<std::string>& list) {
  json text = json::array(), hex = json::array();
  for (const auto& s : list) {
    json one;
    put_bytes(one, "s", s);
    if (one.contains("s"))
      text.push_back(one["s"]);
    else
      hex.push_back(one["s_hex"]);
  }
  j[std::string(k)] = std::move(text);
  if (!hex.empty()) j[std::string(k) + "_hex"] = std::move(hex);
}

ErrorAnswer bad(ErrorCode code, std::string message) {
  return ErrorAnswer{code, std::move(message), {}, {}};
}

// Reads typed fields out of one JSON object; the first mistake is kept and named.
// Fields it is not asked for are ignored (the protocol's rule for unknown fields).
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) fail("", "an object");
  }
  bool has(std::string_view k) const {
    return j_.is_object() && j_.contains(k) && !j_[std::string(k)].is_null();
  }
  const json* get(std::string_view k) const { return has(k) ? &j_[std::string(k)] : nullptr; }

  std::string string(std::string_view k, bool required = true) {
    std::optional<std::string> s = opt_string(k);
    if (!s && required && !has(k)) fail(k, "a string");
    return s.value_or("");
  }
  std::optional<std::string> opt_string(std::string_view k) {
    const json* v = get(k);
    if (!v) return std::nullopt;
    if (!v->is_string()) return fail(k, "a string"), std::nullopt;
    return v->get<std::string>();
  }
  bool boolean(std::string_view k) {
    const json* v = get(k);
    if (!v || !v->is_boolean()) return fail(k, "true or false"), false;
    return v->get<bool>();
  }
  // put_bytes' field: k, or k + "_hex"; "" when neither is there.
  std::string bytes(std::string_view k, size_t max) {
    std::string out;
    const std::string hex_key = std::string(k) + "_hex";
    if (auto s = opt_string(k)) {
      out = std::move(*s);
    } else if (auto h = opt_string(hex_key)) {
      if (h->size() % 2 != 0 || !unhex(*h, out)) return fail(hex_key, "hex digits"), "";
    }
    if (out.size() > max) return fail(k, "at most " + std::to_string(max) + " bytes"), "";
    return out;
  }
  uint64_t count(std::string_view k) {
    const json* v = get(k);
    if (!v || !v->is_number_unsigned()) {
      // nlohmann keeps 0 and positive literals unsigned; a negative number is an error.
      if (v && v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<uint64_t>();
      return fail(k, "a non-negative integer"), 0;
    }
    return v->get<uint64_t>();
  }
  std::optional<int64_t> opt_integer(std::string_view k) {
    const json* v = get(k);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) return fail(k, "an integer"), std::nullopt;
    return v->get<int64_t>();
  }
  int64_t integer(std::string_view k) {
    if (!has(k)) return fail(k, "an integer"), 0;
    return opt_integer(k).value_or(0);
  }
  std::vector<std::string> strings(std::string_view k) {
    std::vector<std::string> out;
    const json* v = get(k);
    if (!v || !v->is_array()) return fail(k, "an array of strings"), out;
    for (const auto& s : *v) {
      if (!s.is_string()) return fail(k, "an array of strings"), out;
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  // put_byte_list's lists: k's strings, then k + "_hex"'s (absent: none).
  std::vector<std::string> byte_list(std::string_view k) {
    std::vector<std::string> out = strings(k);
    const std::string hex_key = std::string(k) + "_hex";
    if (!has(hex_key)) return out;
    for (const auto& h : strings(hex_key)) {
      std::string bytes;
      if (h.size() % 2 != 0 || !unhex(h, bytes)) return fail(hex_key, "hex digits"), out;
      out.push_back(std::move(bytes));
    }
    return out;
  }
  template <typename T, size_t N, typename NameOf>
  T one_of(std::string_view k, const std::array<T, N>& values, NameOf name_of, T fallback) {
    auto s = opt_string(k);
    if (s)
      for (T v : values)
        if (name_of(v) == *s) return v;
    std::string names;
    for (T v : values) names += (names.empty() ? "" : ", ") + std::string(name_of(v));
    fail(k, "one of " + names);
    return fallback;
  }
  const json& object(std::string_view k) {
    static const json kEmpty = json::object();
    const json* v = get(k);
    if (!v || !v->is_object()) return fail(k, "an object"), kEmpty;
    return *v;
  }
  void fail(std::string_view k, std::string_view what) {
    if (error_) return;
    error_ = bad(ErrorCode::kBadArgument, k.empty() ? where_ + " must be " + std::string(what)
                                                    : "\"" + std::string(k) + "\"" +
                                                          (where_.empty() ? "" : " of " + where_) +
                                                          " must be " + std::string(what));
  }
  void absorb(const std::optional<ErrorAnswer>& e) {
    if (!error_ && e) error_ = e;
  }
  const std::optional<ErrorAnswer>& error() const { return error_; }

 private:
  const json& j_;
  std::string where_;
  std::optional<ErrorAnswer> error_;
};

json or_null(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

// "roots": [...] | "*", "root": "..." (version 1 and mode): their union.
Roots read_roots(Reader& r) {
  Roots out;
  if (const json* v = r.get("roots")) {
    if (v->is_string() && v->get<std::string>() == "*") {
    } else if (v->is_array()) {
      out.paths = r.strings("roots");
    } else {
      r.fail("roots", "an array of root paths or \"*\"");
    }
  }
  if (auto one = r.opt_string("root"); one && *one != "*") out.paths.push_back(*one);
  if (out.paths.size() == 1 && out.paths[0] == "*") out.paths.clear();
  return out;
}

// "addresses": 1 to kMaxBanAddresses strings, each 1 to kMaxAddressLength characters
// (what they mean is the agent's to judge, address by address).
std::vector<std::string> read_addresses(Reader& r) {
  std::vector<std::string> out;
  const json* v = r.get("addresses");
  if (!v || !v->is_array() || v->empty() || v->size() > kMaxBanAddresses) {
    r.fail("addresses", "an array of 1 to 1000 addresses");
    return out;
  }
  out = r.strings("addresses");
  for (const auto& a : out)
    if (a.empty() || a.size() > kMaxAddressLength)
      r.fail("addresses", "addresses of 1 to 64 characters");
  return out;
}

json roots_json(const Roots& roots) { return roots.all() ? json("*") : json(roots.paths); }

}  // namespace

std::string_view error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::kBadRequest:
      return "bad-request";
    case ErrorCode::kUnsupportedVersion:
      return "unsupported-version";
    case ErrorCode::kUnknownCommand:
      return "unknown-command";
    case ErrorCode::kBadArgument:
      return "bad-argument";
    case ErrorCode::kUnknownRoot:
      return "unknown-root";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kFailed:
      return "failed";
  }
  return "failed";
}

std::string_view command_name(Command c) {
  for (const auto& [cmd, name] : kCommands)
    if (cmd == c) return name;
  return "";
}

std::optional<Command> parse_command(std::string_view name) {
  for (const auto& [cmd, n] : kCommands)
    if (n == name) return cmd;
  return std::nullopt;
}

std::vector<std::string> command_names() {
  std::vector<std::string> out;
  for (const auto& [cmd, name] : kCommands) out.emplace_back(name);
  return out;
}

std::string_view heal_action_name(HealAction a) {
  switch (a) {
    case HealAction::kStatus:
      return "status";
    case HealAction::kClear:
      return "clear";
    case HealAction::kFail:
      return "fail";
  }
  return "status";
}

std::string_view link_state_name(LinkState s) {
  switch (s) {
    case LinkState::kDisabled:
      return "disabled";
    case LinkState::kEnrolling:
      return "enrolling";
    case LinkState::kConnecting:
      return "connecting";
    case LinkState::kConnected:
      return "connected";
  }
  return "disabled";
}

std::string_view attribution_name(Attribution a) { return a == Attribution::kPid ? "pid" : "none"; }

Command Request::command() const {
  return std::visit(
      [](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, PingRequest>) return Command::kPing;
        if constexpr (std::is_same_v<T, StatusRequest>) return Command::kStatus;
        if constexpr (std::is_same_v<T, ModeRequest>) return Command::kMode;
        if constexpr (std::is_same_v<T, PauseRequest>) return Command::kPause;
        if constexpr (std::is_same_v<T, ResumeRequest>) return Command::kResume;
        if constexpr (std::is_same_v<T, DeployPathsRequest>) return Command::kDeployPaths;
        if constexpr (std::is_same_v<T, VerifyRequest>) return Command::kVerify;
        if constexpr (std::is_same_v<T, HealRequest>) return Command::kHeal;
        if constexpr (std::is_same_v<T, BanRequest>) return Command::kBan;
        if constexpr (std::is_same_v<T, UnbanRequest>) return Command::kUnban;
        if constexpr (std::is_same_v<T, EvidenceRequest>) return Command::kEvidence;
        if constexpr (std::is_same_v<T, SiteRequest>) return Command::kSite;
        if constexpr (std::is_same_v<T, AcceptRequest>) return Command::kAccept;
        if constexpr (std::is_same_v<T, RestoreRequest>) return Command::kRestore;
      },
      body);
}

json to_json(const Request& r) {
  json j = {{"v", r.v}, {"cmd", std::string(command_name(r.command()))}};
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, ModeRequest>) {
          j["roots"] = roots_json(b.roots);
          j["mode"] = std::string(config::mode_name(b.mode));
        } else if constexpr (std::is_same_v<T, PauseRequest>) {
          j["roots"] = roots_json(b.roots);
          if (b.pid) j["pid"] = *b.pid;
        } else if constexpr (std::is_same_v<T, ResumeRequest> || std::is_same_v<T, VerifyRequest>) {
          j["roots"] = roots_json(b.roots);
        } else if constexpr (std::is_same_v<T, HealRequest>) {
          j["action"] = std::string(heal_action_name(b.action));
          if (!b.by.empty()) j["by"] = b.by;
          if (!b.reason.empty()) j["reason"] = b.reason;
        } else if constexpr (std::is_same_v<T, BanRequest>) {
          j["addresses"] = b.addresses;
          j["ttl_s"] = b.ttl_s;
          j["reason"] = b.reason;
          j["origin"] = b.origin;
        } else if constexpr (std::is_same_v<T, UnbanRequest>) {
          j["addresses"] = b.addresses;
          j["origin"] = b.origin;
        } else if constexpr (std::is_same_v<T, EvidenceRequest>) {
          j["id"] = b.id;
        } else if constexpr (std::is_same_v<T, SiteRequest>) {
          if (!b.root.empty()) put_bytes(j, "root", b.root);
          if (!b.dir.empty()) put_bytes(j, "dir", b.dir);
          if (!b.after.empty()) put_bytes(j, "after", b.after);
        } else if constexpr (std::is_same_v<T, AcceptRequest>) {
          put_bytes(j, "root", b.root);
          put_bytes(j, "path", b.path);
          if (b.evidence) j["evidence"] = b.evidence;
        } else if constexpr (std::is_same_v<T, RestoreRequest>) {
          put_bytes(j, "root", b.root);
          put_bytes(j, "path", b.path);
        }
      },
      r.body);
  return j;
}

Decoded<Request> decode_request(const json& j) {
  if (!j.is_object() || !j.contains("cmd") || !j["cmd"].is_string())
    return tl::unexpected(
        bad(ErrorCode::kBadRequest, "a request is one JSON object with a \"cmd\" string"));
  const std::string cmd = j["cmd"].get<std::string>();
  Request req;
  // Version 1 had no "v": its requests are answered as version 1.
  req.v = kOldestVersion;
  if (j.contains("v")) {
    if (!j["v"].is_number_integer() || j["v"].get<int64_t>() < kOldestVersion ||
        j["v"].get<int64_t>() > kVersion) {
      ErrorAnswer e =
          bad(ErrorCode::kUnsupportedVersion,
              "protocol version " + j["v"].dump() + " is not one this agent speaks (" +
                  std::to_string(kOldestVersion) + " to " + std::to_string(kVersion) + ")");
      e.command = cmd;
      return tl::unexpected(std::move(e));
    }
    req.v = static_cast<int>(j["v"].get<int64_t>());
  }
  const auto command = parse_command(cmd);
  if (!command) {
    std::string list;
    for (const auto& n : command_names()) list += (list.empty() ? "" : ", ") + n;
    ErrorAnswer e = bad(ErrorCode::kUnknownCommand,
                        "unknown command \"" + cmd + "\"; this agent serves " + list);
    e.command = cmd;
    e.supported = command_names();
    return tl::unexpected(std::move(e));
  }
  Reader r(j, "");
  switch (*command) {
    case Command::kPing:
      req.body = PingRequest{};
      break;
    case Command::kStatus:
      req.body = StatusRequest{};
      break;
    case Command::kDeployPaths:
      req.body = DeployPathsRequest{};
      break;
    case Command::kMode: {
      ModeRequest m;
      m.roots = read_roots(r);
      m.mode = r.one_of("mode", kModes, config::mode_name, config::Mode::kRestore);
      req.body = std::move(m);
      break;
    }
    case Command::kPause: {
      PauseRequest p;
      p.roots = read_roots(r);
      p.pid = r.opt_integer("pid");
      if (p.pid && *p.pid <= 0) r.fail("pid", "a process id");
      req.body = std::move(p);
      break;
    }
    case Command::kResume:
      req.body = ResumeRequest{read_roots(r)};
      break;
    case Command::kVerify:
      req.body = VerifyRequest{read_roots(r)};
      break;
    case Command::kHeal: {
      HealRequest h;
      if (r.has("action"))
        h.action = r.one_of("action", kHealActions, heal_action_name, HealAction::kStatus);
      h.by = r.opt_string("by").value_or("");
      h.reason = r.opt_string("reason").value_or("");
      if (h.action == HealAction::kFail && h.reason.empty()) r.fail("reason", "a non-empty string");
      req.body = std::move(h);
      break;
    }
    case Command::kBan: {
      BanRequest b;
      b.addresses = read_addresses(r);
      if (r.has("ttl_s")) b.ttl_s = static_cast<int64_t>(r.count("ttl_s"));
      b.reason = r.opt_string("reason").value_or("");
      b.origin = r.opt_string("origin").value_or("");
      if (b.reason.size() > kMaxBanTextLength) r.fail("reason", "at most 1024 characters");
      if (b.origin.size() > kMaxBanTextLength) r.fail("origin", "at most 1024 characters");
      req.body = std::move(b);
      break;
    }
    case Command::kEvidence: {
      EvidenceRequest e;
      e.id = r.integer("id");
      if (e.id <= 0) r.fail("id", "an evidence id (a positive integer)");
      req.body = e;
      break;
    }
    case Command::kSite: {
      SiteRequest q;
      q.root = r.bytes("root", kMaxSitePathBytes);
      q.dir = r.bytes("dir", kMaxSitePathBytes);
      q.after = r.bytes("after", kMaxSitePathBytes);
      if (q.root.empty() && (!q.dir.empty() || !q.after.empty()))
        r.fail("root", "the root whose directory to list");
      if (!relative_path(q.dir))
        r.fail("dir", "a path relative to the root: no leading or trailing /, no . or ..");
      req.body = std::move(q);
      break;
    }
    case Command::kAccept:
    case Command::kRestore: {
      std::string root = r.bytes("root", kMaxSitePathBytes);
      std::string path = r.bytes("path", kMaxSitePathBytes);
      if (root.empty()) r.fail("root", "the root the path is in");
      if (!relative_path(path))
        r.fail("path", "a path relative to the root: no leading or trailing /, no . or ..");
      if (*command == Command::kRestore) {
        req.body = RestoreRequest{std::move(root), std::move(path)};
        break;
      }
      AcceptRequest a{std::move(root), std::move(path), 0};
      if (r.has("evidence")) {
        a.evidence = r.integer("evidence");
        if (a.evidence <= 0) r.fail("evidence", "an evidence id (a positive integer)");
      }
      req.body = std::move(a);
      break;
    }
    case Command::kUnban: {
      UnbanRequest u;
      u.addresses = read_addresses(r);
      u.origin = r.opt_string("origin").value_or("");
      if (u.origin.size() > kMaxBanTextLength) r.fail("origin", "at most 1024 characters");
      req.body = std::move(u);
      break;
    }
  }
  if (auto e = r.error()) {
    ErrorAnswer out = *e;
    out.command = cmd;
    return tl::unexpected(std::move(out));
  }
  return req;
}

// ---- answers -----------------------------------------------------------------------

json to_json(const HealStatus& h) {
  return {{"healthy", h.healthy},
          {"reason", or_null(h.reason)},
          {"manual", h.manual},
          {"since", h.since},
          {"trigger_event_id", or_null(h.trigger_event_id)},
          {"trigger_action", or_null(h.trigger_action)},
          {"recover_at", or_null(h.recover_at)},
          {"health_file", or_null(h.health_file)},
          {"endpoint", or_null(h.endpoint)},
          {"hooks_running", h.hooks_running},
          {"action_errors", h.action_errors}};
}

json to_json(const SinkStatus& s) {
  return {{"name", s.name},
          {"type", std::string(config::sink_type_name(s.type))},
          {"delivered", s.delivered},
          {"filtered", s.filtered},
          {"failures", s.failures},
          {"skipped_lines", s.skipped_lines},
          {"pending", s.pending},
          {"missed", s.missed},
          {"next_sequence", s.next_sequence},
          {"failing", s.failing},
          {"last_error", s.last_error}};
}

namespace {

json to_json(const LogwatchStatus& l) {
  json parsing = json::array();
  for (const auto& p : l.parsing)
    parsing.push_back({{"path", p.path},
                       {"unparseable", p.unparseable},
                       {"lines", p.lines},
                       {"unparsed", p.unparsed},
                       {"sample", p.sample},
                       {"sample_reason", p.sample_reason}});
  return {{"logs", l.logs},
          {"lines", l.lines},
          {"lines_truncated", l.lines_truncated},
          {"bans", l.bans},
          {"ban_failures", l.ban_failures},
          {"unbans", l.unbans},
          {"parsing", std::move(parsing)}};
}

json to_json(const ManagerLinkStatus& m) {
  return {{"state", std::string(link_state_name(m.state))},
          {"url", m.url},
          {"agent_key", m.agent_key},
          {"last_error", m.last_error},
          {"events_sent", m.events_sent},
          {"events_acked", m.events_acked},
          {"cursor", m.cursor},
          {"commands", m.commands}};
}

json to_json(const OpenGateStatus& g) {
  return {{"state", g.state},
          {"reason", g.reason},
          {"read_check", g.read_check},
          {"directories", g.directories},
          {"reads_unasked", g.reads_unasked},
          {"opens_unasked", g.opens_unasked},
          {"mark_failures", g.mark_failures},
          {"events", g.events},
          {"verified", g.verified},
          {"denied", g.denied},
          {"takeovers", g.takeovers},
          {"unchecked", g.unchecked},
          {"watchdog", g.watchdog}};
}

json to_json(const OutboxStatus& o) {
  return {{"dir", o.dir},
          {"next_sequence", o.next_sequence},
          {"quota_mb", o.quota_mb},
          {"dropped_by_quota", o.dropped_by_quota},
          {"dropped_by_quota_security", o.dropped_by_quota_security},
          {"export_behind", o.export_behind}};
}

json to_json(const Counters& c) {
  return {{"changes", c.changes},
          {"restored", c.restored},
          {"quarantined", c.quarantined},
          {"evidence", c.evidence},
          {"failures", c.failures},
          {"events", c.events},
          {"summarised", c.summarised},
          {"storms", c.storms},
          {"verifies", c.verifies},
          {"overflows", c.overflows},
          {"events_dropped", c.events_dropped},
          {"events_dropped_security", c.events_dropped_security},
          {"event_writer_waits", c.event_writer_waits}};
}

HealStatus read_heal(Reader& r) {
  HealStatus h;
  h.healthy = r.boolean("healthy");
  h.reason = r.opt_string("reason");
  h.manual = r.boolean("manual");
  h.since = r.string("since");
  h.trigger_event_id = r.opt_string("trigger_event_id");
  h.trigger_action = r.opt_string("trigger_action");
  h.recover_at = r.opt_string("recover_at");
  h.health_file = r.opt_string("health_file");
  h.endpoint = r.opt_string("endpoint");
  h.hooks_running = r.count("hooks_running");
  h.action_errors = r.strings("action_errors");
  return h;
}

template <typename T, typename F>
std::vector<T> read_list(Reader& outer, std::string_view key, F read_one) {
  std::vector<T> out;
  const json* v = outer.get(key);
  if (!v || !v->is_array()) return outer.fail(key, "an array"), out;
  for (const auto& item : *v) {
    Reader r(item, std::string(key) + "[]");
    out.push_back(read_one(r));
    outer.absorb(r.error());
  }
  return out;
}

template <typename T, typename F>
T read_nested(Reader& outer, std::string_view key, F read_one) {
  Reader r(outer.object(key), std::string(key));
  T out = read_one(r);
  outer.absorb(r.error());
  return out;
}

StatusDocument read_status(Reader& r) {
  StatusDocument s;
  s.pid = r.integer("pid");
  s.backend = r.string("backend");
  s.started_at_ns = r.integer("started_at_ns");
  s.roots = read_list<RootStatus>(r, "roots", [](Reader& x) {
    RootStatus rs;
    rs.path = x.string("path");
    rs.mode = x.one_of("mode", kModes, config::mode_name, config::Mode::kRestore);
    rs.paused = x.boolean("paused");
    rs.rescanning = x.has("rescanning") && x.boolean("rescanning");  // an older agent's: none
    return rs;
  });
  s.event_log = r.string("event_log");
  s.in_storm = r.boolean("in_storm");
  s.heal = read_nested<HealStatus>(r, "heal", read_heal);
  s.sinks = read_list<SinkStatus>(r, "sinks", [](Reader& x) {
    SinkStatus k;
    k.name = x.string("name");
    k.type = x.one_of("type", kSinkTypes, config::sink_type_name, config::SinkType::kSyslog);
    k.delivered = x.count("delivered");
    k.filtered = x.count("filtered");
    k.failures = x.count("failures");
    k.skipped_lines = x.count("skipped_lines");
    k.pending = x.count("pending");
    // Absent from an agent older than the outbox (an upgrade with the old agent running).
    if (x.has("missed")) k.missed = x.count("missed");
    if (x.has("next_sequence")) k.next_sequence = x.count("next_sequence");
    k.failing = x.boolean("failing");
    k.last_error = x.string("last_error");
    return k;
  });
  if (r.has("logwatch"))
    s.logwatch = read_nested<LogwatchStatus>(r, "logwatch", [](Reader& x) {
      LogwatchStatus l;
      l.logs = x.strings("logs");
      l.lines = x.count("lines");
      l.lines_truncated = x.count("lines_truncated");
      l.bans = x.count("bans");
      l.ban_failures = x.count("ban_failures");
      l.unbans = x.count("unbans");
      // Absent from an agent older than issue 16's log health.
      if (x.has("parsing"))
        l.parsing = read_list<LogParsing>(x, "parsing", [](Reader& y) {
          LogParsing p;
          p.path = y.string("path");
          p.unparseable = y.boolean("unparseable");
          p.lines = y.count("lines");
          p.unparsed = y.count("unparsed");
          p.sample = y.string("sample");
          p.sample_reason = y.string("sample_reason");
          return p;
        });
      return l;
    });
  s.counters = read_nested<Counters>(r, "counters", [](Reader& x) {
    Counters c;
    c.changes = x.count("changes");
    c.restored = x.count("restored");
    c.quarantined = x.count("quarantined");
    c.evidence = x.count("evidence");
    c.failures = x.count("failures");
    c.events = x.count("events");
    c.summarised = x.count("summarised");
    c.storms = x.count("storms");
    c.verifies = x.count("verifies");
    c.overflows = x.count("overflows");
    c.events_dropped = x.count("events_dropped");
    c.events_dropped_security = x.count("events_dropped_security");
    c.event_writer_waits = x.count("event_writer_waits");
    return c;
  });
  if (r.has("outbox"))
    s.outbox = read_nested<OutboxStatus>(r, "outbox", [](Reader& x) {
      OutboxStatus o;
      o.dir = x.string("dir");
      o.next_sequence = x.count("next_sequence");
      o.quota_mb = x.count("quota_mb");
      o.dropped_by_quota = x.count("dropped_by_quota");
      o.dropped_by_quota_security = x.count("dropped_by_quota_security");
      o.export_behind = x.count("export_behind");
      return o;
    });
  // Absent from an agent older than the manager link.
  if (r.has("manager"))
    s.manager = read_nested<ManagerLinkStatus>(r, "manager", [](Reader& x) {
      ManagerLinkStatus m;
      m.state = x.one_of("state", kLinkStates, link_state_name, LinkState::kDisabled);
      m.url = x.string("url");
      m.agent_key = x.string("agent_key");
      m.last_error = x.string("last_error");
      m.events_sent = x.count("events_sent");
      m.events_acked = x.count("events_acked");
      m.cursor = x.count("cursor");
      m.commands = x.count("commands");
      return m;
    });
  // Absent from an agent older than the open gate.
  if (r.has("gate"))
    s.gate = read_nested<OpenGateStatus>(r, "gate", [](Reader& x) {
      OpenGateStatus g;
      g.state = x.string("state");
      g.reason = x.string("reason");
      g.read_check = x.string("read_check");
      g.directories = x.count("directories");
      g.reads_unasked = x.count("reads_unasked");
      g.opens_unasked = x.count("opens_unasked");
      g.mark_failures = x.count("mark_failures");
      g.events = x.count("events");
      g.verified = x.count("verified");
      g.denied = x.count("denied");
      g.takeovers = x.count("takeovers");
      g.unchecked = x.count("unchecked");
      g.watchdog = x.boolean("watchdog");
      return g;
    });
  return s;
}

// An answer's error, in either version's form; nullopt when it says ok.
std::optional<ErrorAnswer> answer_error(const json& j) {
  if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean())
    return bad(ErrorCode::kBadRequest, "the agent's answer has no \"ok\"");
  if (j["ok"].get<bool>()) return std::nullopt;
  const json& e = j.contains("error") ? j["error"] : json();
  if (e.is_string()) return bad(ErrorCode::kFailed, e.get<std::string>());  // version 1
  if (e.is_object()) {
    Reader r(e, "error");
    ErrorAnswer out;
    out.message = r.string("message");
    out.code = r.one_of("code", kErrorCodes, error_code_name, ErrorCode::kFailed);
    out.command = r.opt_string("command").value_or("");
    if (r.has("supported")) out.supported = r.strings("supported");
    if (!r.error()) return out;
  }
  return bad(ErrorCode::kFailed, "the agent refused the request");
}

template <typename T, typename F>
Decoded<T> decode_answer(const json& j, F read) {
  if (auto e = answer_error(j)) return tl::unexpected(std::move(*e));
  Reader r(j, "answer");
  T out = read(r);
  if (auto e = r.error()) {
    ErrorAnswer err = *e;
    err.code = ErrorCode::kBadRequest;
    err.message = "the agent's answer does not parse: " + err.message;
    return tl::unexpected(std::move(err));
  }
  return out;
}

}  // namespace

json to_json(const StatusDocument& s) {
  json roots = json::array();
  for (const auto& r : s.roots)
    roots.push_back({{"path", r.path},
                     {"mode", std::string(config::mode_name(r.mode))},
                     {"paused", r.paused},
                     {"rescanning", r.rescanning}});
  json sinks = json::array();
  for (const auto& k : s.sinks) sinks.push_back(to_json(k));
  return {{"pid", s.pid},
          {"backend", s.backend},
          {"started_at_ns", s.started_at_ns},
          {"roots", roots},
          {"event_log", s.event_log},
          {"in_storm", s.in_storm},
          {"heal", to_json(s.heal)},
          {"sinks", sinks},
          {"logwatch", s.logwatch ? to_json(*s.logwatch) : json(nullptr)},
          {"counters", to_json(s.counters)},
          {"outbox", to_json(s.outbox)},
          {"manager", to_json(s.manager)},
          {"gate", to_json(s.gate)}};
}

namespace {

json to_json(const EvidenceContent& c) {
  return {{"base64url", channel::base64url(c.bytes)}, {"complete", c.complete}};
}

EvidenceContent read_evidence_content(Reader& r) {
  EvidenceContent c;
  const std::string text = r.string("base64url");
  if (auto bytes = channel::unbase64url(text))
    c.bytes = std::move(*bytes);
  else
    r.fail("base64url", "base64url text");
  c.complete = r.boolean("complete");
  return c;
}

}  // namespace

json to_json(const Answer& a, int v) {
  json j = {{"v", v}};
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, ErrorAnswer>) {
          j["ok"] = false;
          if (v <= 1) {
            j["error"] = b.message;
          } else {
            j["error"] = {{"code", std::string(error_code_name(b.code))}, {"message", b.message}};
            if (!b.command.empty()) j["error"]["command"] = b.command;
            if (!b.supported.empty()) j["error"]["supported"] = b.supported;
          }
        } else {
          j["ok"] = true;
          if constexpr (std::is_same_v<T, StatusAnswer>) {
            j.update(to_json(b.status));
            if (b.attribution) j["attribution"] = std::string(attribution_name(*b.attribution));
          } else if constexpr (std::is_same_v<T, DeployPathsAnswer>) {
            j["attribution"] = std::string(attribution_name(b.attribution));
            if (b.attribution == Attribution::kPid) {
              json roots = json::array();
              for (const auto& r : b.roots) {
                json x = {{"path", r.path}};
                put_byte_list(x, "deploy", r.deploy);
                put_byte_list(x, "foreign", r.foreign);
                roots.push_back(std::move(x));
              }
              j["pid"] = b.pid;
              j["complete"] = b.complete;
              j["roots"] = roots;
            }
          } else if constexpr (std::is_same_v<T, HealAnswer>) {
            j["heal"] = to_json(b.heal);
          } else if constexpr (std::is_same_v<T, BanAnswer>) {
            json refused = json::array();
            for (const auto& x : b.refused)
              refused.push_back({{"address", x.address}, {"code", x.code}, {"message", x.message}});
            j["applied"] = b.applied;
            j["refused"] = std::move(refused);
          } else if constexpr (std::is_same_v<T, SiteAnswer>) {
            json parts = json::array();
            for (const auto& p : b.parts) {
              json x = {{"type", p.type}, {"digest", p.digest}, {"entries", p.entries}};
              put_bytes(x, "name", p.name);
              parts.push_back(std::move(x));
            }
            j["parts"] = std::move(parts);
            j["more"] = b.more;
            if (!b.self.empty()) j["self"] = b.self;
          } else if constexpr (std::is_same_v<T, PathAnswer>) {
            put_bytes(j, "root", b.root);
            put_bytes(j, "path", b.path);
            j["entries"] = b.entries;
            if (!b.root_hash.empty()) j["root_hash"] = b.root_hash;
          } else if constexpr (std::is_same_v<T, EvidenceAnswer>) {
            j["item"] = b.item;
            j["after"] = to_json(b.after);
            if (b.before)
              j["before"] = to_json(*b.before);
            else
              j["before_missing"] = b.before_missing;
          }
        }
      },
      a);
  return j;
}

Decoded<StatusDocument> decode_status(const json& j) {
  Reader r(j, "status");
  StatusDocument s = read_status(r);
  if (auto e = r.error()) return tl::unexpected(*e);
  return s;
}

Decoded<StatusAnswer> decode_status_answer(const json& j) {
  return decode_answer<StatusAnswer>(j, [](Reader& r) {
    StatusAnswer a;
    a.status = read_status(r);
    if (r.has("attribution"))
      a.attribution = r.one_of("attribution", std::array{Attribution::kPid, Attribution::kNone},
                               attribution_name, Attribution::kNone);
    return a;
  });
}

Decoded<DeployPathsAnswer> decode_deploy_paths_answer(const json& j) {
  return decode_answer<DeployPathsAnswer>(j, [](Reader& r) {
    DeployPathsAnswer a;
    a.attribution = r.one_of("attribution", std::array{Attribution::kPid, Attribution::kNone},
                             attribution_name, Attribution::kNone);
    if (a.attribution != Attribution::kPid) return a;
    a.pid = r.integer("pid");
    a.complete = r.boolean("complete");
    a.roots = read_list<DeployRootPaths>(r, "roots", [](Reader& x) {
      DeployRootPaths d;
      d.path = x.string("path");
      d.deploy = x.byte_list("deploy");
      d.foreign = x.byte_list("foreign");
      return d;
    });
    return a;
  });
}

Decoded<BanAnswer> decode_ban_answer(const json& j) {
  return decode_answer<BanAnswer>(j, [](Reader& r) {
    BanAnswer a;
    a.applied = r.strings("applied");
    a.refused = read_list<RefusedAddress>(r, "refused", [](Reader& x) {
      return RefusedAddress{x.string("address"), x.string("code"), x.string("message")};
    });
    return a;
  });
}

Decoded<EvidenceAnswer> decode_evidence_answer(const json& j) {
  return decode_answer<EvidenceAnswer>(j, [](Reader& r) {
    EvidenceAnswer a;
    a.item = r.object("item");
    a.after = read_nested<EvidenceContent>(r, "after", read_evidence_content);
    if (r.has("before"))
      a.before = read_nested<EvidenceContent>(r, "before", read_evidence_content);
    else
      a.before_missing = r.string("before_missing");
    return a;
  });
}

Decoded<PathAnswer> decode_path_answer(const json& j) {
  return decode_answer<PathAnswer>(j, [](Reader& r) {
    PathAnswer a;
    a.root = r.bytes("root", kMaxSitePathBytes);
    a.path = r.bytes("path", kMaxSitePathBytes);
    a.entries = r.count("entries");
    a.root_hash = r.opt_string("root_hash").value_or("");
    if (!a.root_hash.empty() && !channel::is_fingerprint(a.root_hash))
      r.fail("root_hash", "64 lower-case hex digits");
    return a;
  });
}

Decoded<SiteAnswer> decode_site_answer(const json& j) {
  return decode_answer<SiteAnswer>(j, [](Reader& r) {
    SiteAnswer a;
    a.parts = read_list<SitePart>(r, "parts", [](Reader& x) {
      SitePart p;
      p.name = x.bytes("name", kMaxSitePathBytes);
      p.type = x.string("type");
      p.digest = x.string("digest");
      p.entries = x.count("entries");
      if (p.name.empty()) x.fail("name", "a non-empty name");
      if (!channel::is_fingerprint(p.digest)) x.fail("digest", "64 lower-case hex digits");
      return p;
    });
    if (a.parts.size() > kMaxSiteParts)
      r.fail("parts", "at most " + std::to_string(kMaxSiteParts) + " parts");
    a.more = r.boolean("more");
    a.self = r.opt_string("self").value_or("");
    if (!a.self.empty() && !channel::is_fingerprint(a.self)) r.fail("self", "64 hex digits");
    return a;
  });
}

Decoded<HealAnswer> decode_heal_answer(const json& j) {
  return decode_answer<HealAnswer>(
      j, [](Reader& r) { return HealAnswer{read_nested<HealStatus>(r, "heal", read_heal)}; });
}

}  // namespace mamori::proto
