#include "core/proto/channel.h"

#include <array>

#include "core/base/json_depth.h"

namespace mamori::proto::channel {
namespace {

using nlohmann::json;

// Names, host names, versions, hashes, secrets: one short line each. Paths: PATH_MAX.
constexpr size_t kMaxFieldBytes = 1024;
constexpr size_t kMaxPathBytes = 4096;

DecodeError bad(std::string message) {
  return DecodeError{std::string(kBadMessage), std::move(message)};
}

// Reads typed fields out of one JSON object; the first mistake is kept and named
// ("where.field"). Fields it is not asked for are ignored.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) fail("", "an object");
  }
  const json* get(std::string_view k) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(std::string(k));
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  // A string of at most `max` bytes (what a peer sends is stored and shown: bounded).
  std::string string(std::string_view k, bool required = true, size_t max = kMaxFieldBytes) {
    const json* v = get(k);
    if (!v) {
      if (required) fail(k, "a string");
      return "";
    }
    if (!v->is_string()) return fail(k, "a string"), "";
    if (v->get_ref<const std::string&>().size() > max)
      return fail(k, "a string of at most " + std::to_string(max) + " bytes"), "";
    return v->get<std::string>();
  }
  uint64_t count(std::string_view k, uint64_t max = UINT64_MAX) {
    const json* v = get(k);
    if (v && (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0))) {
      const uint64_t n = v->get<uint64_t>();
      if (n <= max) return n;
    }
    fail(k, max == UINT64_MAX ? "a non-negative integer"
                              : "an integer from 0 to " + std::to_string(max));
    return 0;
  }
  int64_t integer(std::string_view k) {
    const json* v = get(k);
    if (!v || !v->is_number_integer()) return fail(k, "an integer"), 0;
    return v->get<int64_t>();
  }
  bool boolean(std::string_view k) {
    const json* v = get(k);
    if (!v || !v->is_boolean()) return fail(k, "true or false"), false;
    return v->get<bool>();
  }
  const json& object(std::string_view k) {
    static const json kEmpty = json::object();
    const json* v = get(k);
    if (!v || !v->is_object()) return fail(k, "an object"), kEmpty;
    return *v;
  }
  const json& any(std::string_view k) {
    static const json kNull;
    const json* v = get(k);
    if (!v) return fail(k, "present"), kNull;
    return *v;
  }
  const json& array(std::string_view k, size_t max) {
    static const json kEmpty = json::array();
    const json* v = get(k);
    if (!v || !v->is_array()) return fail(k, "an array"), kEmpty;
    if (v->size() > max) return fail(k, "an array of at most " + std::to_string(max)), kEmpty;
    return *v;
  }
  std::string field(std::string_view k) const {
    return where_.empty() ? std::string(k) : where_ + "." + std::string(k);
  }
  void fail(std::string_view k, std::string_view what) {
    if (error_) return;
    error_ = bad((k.empty() ? (where_.empty() ? "the message" : where_) : field(k)) + " must be " +
                 std::string(what));
  }
  void absorb(const std::optional<DecodeError>& e) {
    if (!error_ && e) error_ = e;
  }
  const std::optional<DecodeError>& error() const { return error_; }

 private:
  const json& j_;
  std::string where_;
  std::optional<DecodeError> error_;
};

// "v" must be kVersion.
std::optional<DecodeError> check_version(const json& j) {
  if (!j.is_object()) return bad("the message must be a JSON object");
  auto it = j.find("v");
  if (it == j.end()) return bad("v must be the protocol version (1)");
  if (!it->is_number_integer()) return bad("v must be an integer");
  if (it->get<int64_t>() != kVersion)
    return DecodeError{std::string(kUnsupportedVersion),
                       "v " + it->dump() + " is not a version this side speaks (1)"};
  return std::nullopt;
}

Decoded<json> parse(std::string_view text) {
  if (text.size() > kMaxMessageBytes)
    return tl::unexpected(DecodeError{std::string(kTooLarge),
                                      "the message is " + std::to_string(text.size()) +
                                          " bytes, more than " + std::to_string(kMaxMessageBytes)});
  if (!json_depth_within(text))
    return tl::unexpected(
        bad("the message nests deeper than " + std::to_string(kMaxJsonDepth) + " levels"));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return tl::unexpected(bad("the message is not JSON"));
  if (auto e = check_version(j)) return tl::unexpected(*e);
  return j;
}

AgentInfo read_agent(Reader& r, bool need_version) {
  Reader a(r.object("agent"), r.field("agent"));
  AgentInfo out{a.string("id"), a.string("name", false), a.string("version", need_version)};
  r.absorb(a.error());
  return out;
}

HostInfo read_host(Reader& r) {
  Reader h(r.object("host"), r.field("host"));
  HostInfo out{h.string("hostname"), h.string("machine_id", false)};
  r.absorb(h.error());
  return out;
}

constexpr size_t kMaxRoots = 4096;  // the config's limit

std::vector<RootInfo> read_roots(Reader& r) {
  std::vector<RootInfo> out;
  const json& roots = r.array("roots", kMaxRoots);
  for (size_t i = 0; i < roots.size(); ++i) {
    Reader x(roots[i], r.field("roots") + "[" + std::to_string(i) + "]");
    out.push_back({x.string("path", true, kMaxPathBytes), x.string("mode")});
    r.absorb(x.error());
  }
  return out;
}

json roots_json(const std::vector<RootInfo>& roots) {
  json a = json::array();
  for (const auto& r : roots) a.push_back({{"path", r.path}, {"mode", r.mode}});
  return a;
}

json agent_json(const AgentInfo& a) {
  return {{"id", a.id}, {"name", a.name}, {"version", a.version}};
}

json with_type(std::string_view type, json body) {
  body["v"] = kVersion;
  body["type"] = type;
  return body;
}

template <typename T>
Decoded<T> done(Reader& r, T value) {
  if (r.error()) return tl::unexpected(*r.error());
  return value;
}

// event.sequence of one ECS object (validated by decode).
uint64_t sequence_of(const json& e) { return e.at("event").at("sequence").get<uint64_t>(); }

bool is_hex_lower(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

// ---- base64url ----------------------------------------------------------------------

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    if (rest == 2) out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero: one text per byte string.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---- token --------------------------------------------------------------------------

bool is_fingerprint(std::string_view s) { return s.size() == 64 && is_hex_lower(s); }

bool is_secret(std::string_view s) {
  return s.size() == 43 && s.find_first_not_of(kAlphabet) == std::string_view::npos &&
         unbase64url(s).has_value();
}

std::string encode_token(const Token& t) {
  const json j = {{"url", t.url}, {"fp", t.fp}, {"secret", t.secret}};
  return std::string(kTokenPrefix) + base64url(j.dump());
}

Decoded<Token> decode_token(std::string_view text) {
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
    text.remove_prefix(1);
  if (text.size() > 4096) return tl::unexpected(bad("the token is too long to be one"));
  if (!text.starts_with(kTokenPrefix))
    return tl::unexpected(bad("a token starts with " + std::string(kTokenPrefix)));
  const auto body = unbase64url(text.substr(kTokenPrefix.size()));
  if (!body) return tl::unexpected(bad("the token is not base64url after its prefix"));
  const json j = json::parse(*body, nullptr, false);
  if (j.is_discarded()) return tl::unexpected(bad("the token does not hold JSON"));
  Reader r(j, "token");
  Token t{r.string("url"), r.string("fp"), r.string("secret")};
  if (!r.error()) {
    if (!t.url.starts_with("https://")) r.fail("url", "an https:// URL");
    if (!is_fingerprint(t.fp)) r.fail("fp", "64 lower-case hex digits");
    if (!is_secret(t.secret)) r.fail("secret", "43 base64url characters");
  }
  return done(r, std::move(t));
}

// ---- enrollment ---------------------------------------------------------------------

json to_json(const EnrollRequest& r) {
  return {{"v", kVersion},
          {"token_secret", r.token_secret},
          {"host", {{"hostname", r.host.hostname}, {"machine_id", r.host.machine_id}}},
          {"agent", agent_json(r.agent)},
          {"roots", roots_json(r.roots)},
          {"baseline_root_hash", r.baseline_root_hash}};
}

json to_json(const EnrollAnswer& a) {
  return {{"v", kVersion},
          {"agent_key", a.agent_key},
          {"credential", a.credential},
          {"heartbeat_s", a.heartbeat_s},
          {"lost_after_s", a.lost_after_s}};
}

json to_json(const EnrollError& e) {
  return {{"v", kVersion}, {"error", {{"code", e.code}, {"message", e.message}}}};
}

Decoded<EnrollRequest> decode_enroll_request(std::string_view text) {
  auto j = parse(text);
  if (!j) return tl::unexpected(j.error());
  Reader r(*j, "");
  EnrollRequest out;
  out.token_secret = r.string("token_secret");
  out.host = read_host(r);
  out.agent = read_agent(r, false);
  out.roots = read_roots(r);
  out.baseline_root_hash = r.string("baseline_root_hash", false);
  return done(r, std::move(out));
}

Decoded<EnrollAnswer> decode_enroll_answer(std::string_view text) {
  auto j = parse(text);
  if (!j) return tl::unexpected(j.error());
  Reader r(*j, "");
  EnrollAnswer out;
  out.agent_key = r.string("agent_key");
  out.credential = r.string("credential");
  out.heartbeat_s = static_cast<uint32_t>(r.count("heartbeat_s", 86400));
  out.lost_after_s = static_cast<uint32_t>(r.count("lost_after_s", 86400));
  return done(r, std::move(out));
}

Decoded<EnrollError> decode_enroll_error(std::string_view text) {
  auto j = parse(text);
  if (!j) return tl::unexpected(j.error());
  Reader r(*j, "");
  Reader e(r.object("error"), "error");
  EnrollError out{e.string("code"), e.string("message", false)};
  r.absorb(e.error());
  return done(r, std::move(out));
}

// ---- channel ------------------------------------------------------------------------

uint64_t Events::highest_sequence() const {
  uint64_t high = 0;
  for (const auto& e : events) high = std::max(high, sequence_of(e));
  return high;
}

json to_json(const Hello& m) {
  return with_type("hello", {{"agent", agent_json(m.agent)},
                             {"host", {{"hostname", m.host.hostname}}},
                             {"roots", roots_json(m.roots)},
                             {"baseline_root_hash", m.baseline_root_hash},
                             {"next_sequence", m.next_sequence}});
}
json to_json(const Events& m) {
  json j = with_type("events", {{"events", m.events}});
  if (m.resent) j["resent"] = true;
  return j;
}
json to_json(const Heartbeat& m) {
  return with_type("heartbeat", {{"time_ns", m.time_ns}, {"healthy", m.healthy}});
}
json to_json(const CommandResult& m) {
  return with_type("result", {{"command_id", m.command_id}, {"answer", m.answer}});
}
json to_json(const Bye& m) { return with_type("bye", {{"reason", m.reason}}); }
json to_json(const AgentMessage& m) {
  return std::visit([](const auto& x) { return to_json(x); }, m);
}
json to_json(const Welcome& m) {
  return with_type("welcome", {{"heartbeat_s", m.heartbeat_s}, {"lost_after_s", m.lost_after_s}});
}
json to_json(const Ack& m) { return with_type("ack", {{"through_sequence", m.through_sequence}}); }
json to_json(const Command& m) {
  return with_type("command", {{"command_id", m.command_id}, {"request", m.request}});
}
json to_json(const Error& m) {
  return with_type("error", {{"code", m.code}, {"message", m.message}});
}
json to_json(const Resend&) { return with_type("resend", json::object()); }
json to_json(const ManagerMessage& m) {
  return std::visit([](const auto& x) { return to_json(x); }, m);
}

Decoded<AgentMessage> decode_agent_json(json j) {
  if (auto e = check_version(j)) return tl::unexpected(*e);
  Reader r(j, "");
  const std::string type = r.string("type");
  if (r.error()) return tl::unexpected(*r.error());
  if (type == "hello") {
    Hello h;
    h.agent = read_agent(r, true);
    h.host = read_host(r);
    h.roots = read_roots(r);
    h.baseline_root_hash = r.string("baseline_root_hash", false);
    h.next_sequence = r.count("next_sequence");
    return done(r, AgentMessage{std::move(h)});
  }
  if (type == "events") {
    Events ev;
    const json& events = r.array("events", kMaxEventsPerBatch);
    ev.events.reserve(events.size());
    for (size_t i = 0; i < events.size() && !r.error(); ++i) {
      const std::string where = "events[" + std::to_string(i) + "]";
      Reader e(events[i], where);
      Reader inner(e.object("event"), where + ".event");
      inner.string("id");
      inner.count("sequence");
      e.absorb(inner.error());
      r.absorb(e.error());
    }
    if (j.contains("resent")) ev.resent = r.boolean("resent");
    // Moved out, not copied: a batch is up to kMaxMessageBytes of parsed objects.
    if (!r.error()) ev.events = std::move(j["events"].get_ref<json::array_t&>());
    return done(r, AgentMessage{std::move(ev)});
  }
  if (type == "heartbeat") {
    Heartbeat hb;
    hb.time_ns = r.integer("time_ns");
    hb.healthy = r.boolean("healthy");
    return done(r, AgentMessage{hb});
  }
  if (type == "result") {
    CommandResult res;
    res.command_id = r.string("command_id");
    res.answer = r.any("answer");
    return done(r, AgentMessage{std::move(res)});
  }
  if (type == "bye") {
    Bye b;
    b.reason = r.string("reason", false);
    return done(r, AgentMessage{std::move(b)});
  }
  return tl::unexpected(bad("type \"" + type.substr(0, 64) +
                            "\" is not an agent message (hello, events, heartbeat, result, bye)"));
}

Decoded<ManagerMessage> decode_manager_json(const json& j) {
  if (auto e = check_version(j)) return tl::unexpected(*e);
  Reader r(j, "");
  const std::string type = r.string("type");
  if (r.error()) return tl::unexpected(*r.error());
  if (type == "welcome") {
    Welcome w;
    w.heartbeat_s = static_cast<uint32_t>(r.count("heartbeat_s", 86400));
    w.lost_after_s = static_cast<uint32_t>(r.count("lost_after_s", 86400));
    return done(r, ManagerMessage{w});
  }
  if (type == "ack") return done(r, ManagerMessage{Ack{r.count("through_sequence")}});
  if (type == "command") {
    Command c;
    c.command_id = r.string("command_id");
    c.request = r.object("request");
    return done(r, ManagerMessage{std::move(c)});
  }
  if (type == "error") {
    Error e;
    e.code = r.string("code");
    e.message = r.string("message", false);
    return done(r, ManagerMessage{std::move(e)});
  }
  if (type == "resend") return done(r, ManagerMessage{Resend{}});
  return tl::unexpected(bad("type \"" + type.substr(0, 64) +
                            "\" is not a manager message (welcome, ack, command, error, resend)"));
}

Decoded<AgentMessage> decode_agent_message(std::string_view text) {
  auto j = parse(text);
  if (!j) return tl::unexpected(j.error());
  return decode_agent_json(std::move(*j));
}

Decoded<ManagerMessage> decode_manager_message(std::string_view text) {
  auto j = parse(text);
  if (!j) return tl::unexpected(j.error());
  return decode_manager_json(*j);
}

std::string_view type_of(const AgentMessage& m) {
  static constexpr std::array<std::string_view, 5> kTypes = {"hello", "events", "heartbeat",
                                                             "result", "bye"};
  return kTypes[m.index()];
}

std::string_view type_of(const ManagerMessage& m) {
  static constexpr std::array<std::string_view, 5> kTypes = {"welcome", "ack", "command", "error",
                                                             "resend"};
  return kTypes[m.index()];
}

}  // namespace mamori::proto::channel
