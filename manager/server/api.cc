#include "manager/server/api.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>

#include <fmt/format.h>

#include "core/base/json_depth.h"
#include "core/base/quote.h"
#include "core/hash/sha256.h"
#include "core/proto/actions.h"
#include "core/proto/channel.h"
#include "manager/db/decoys.h"
#include "manager/db/event_columns.h"
#include "manager/server/fleet.h"
#include "manager/server/fleet_orders.h"
#include "manager/server/hub.h"
#include "manager/server/password.h"

namespace mamori::manager {
namespace {

namespace http = boost::beast::http;
using http::status;
using http::verb;
using nlohmann::json;

constexpr std::string_view kCookie = "mamori_session";
constexpr std::string_view kApiTokenPrefix = "mamori-api-v1.";
constexpr int64_t kDayNs = 24LL * 3600 * 1'000'000'000;

// A request's JSON body; discarded when it is not JSON or nests too deep to copy or print
// safely (json_depth.h).
json parse_body(std::string_view text) {
  if (!json_depth_within(text)) return json(json::value_t::discarded);
  return json::parse(text, nullptr, false);
}

constexpr ApiRoute kRoutes[] = {
    {verb::post, "/api/v1/enroll", std::nullopt},
    {verb::get, "/api/v1/channel", std::nullopt},
    {verb::post, "/api/v1/login", std::nullopt},
    {verb::post, "/api/v1/logout", Role::kViewer},
    {verb::get, "/api/v1/agents", Role::kViewer},
    {verb::get, "/api/v1/agents/{key}", Role::kViewer},
    {verb::get, "/api/v1/events", Role::kViewer},
    {verb::get, "/api/v1/events/live", Role::kViewer},  // a WebSocket (event_stream.h)
    {verb::get, "/api/v1/events/histogram", Role::kViewer},
    {verb::get, "/api/v1/tokens", Role::kViewer},
    {verb::post, "/api/v1/tokens", Role::kOperator},
    {verb::delete_, "/api/v1/tokens/{id}", Role::kOperator},
    {verb::get, "/api/v1/users", Role::kAdmin},
    {verb::post, "/api/v1/users", Role::kAdmin},
    {verb::delete_, "/api/v1/users/{name}", Role::kAdmin},
    {verb::get, "/api/v1/audit", Role::kAdmin},
    {verb::get, "/api/v1/bans", Role::kViewer},
    {verb::post, "/api/v1/bans", Role::kOperator},
    {verb::delete_, "/api/v1/bans/{address}", Role::kOperator},
    {verb::get, "/api/v1/commands", Role::kViewer},
    {verb::post, "/api/v1/commands", Role::kOperator},
    {verb::post, "/api/v1/drift", Role::kViewer},  // answered later (drift.h)
    {verb::get, "/api/v1/decoys", Role::kViewer},
    {verb::get, "/api/v1/sinks", Role::kViewer},
    {verb::post, "/api/v1/sinks/test", Role::kOperator},
};

ApiResponse error(status s, std::string_view code, std::string message) {
  return {s, json{{"error", {{"code", code}, {"message", std::move(message)}}}}, {}};
}

// The store failed: logged, and the client told no more.
ApiResponse internal(const Error& e) {
  log_line("api: " + e.message());
  return error(status::internal_server_error, "internal", "the store failed");
}

// Matches `path` against a template; the {param} part (one segment) goes to `param`.
bool match(std::string_view tmpl, std::string_view path, std::string& param) {
  const size_t brace = tmpl.find('{');
  if (brace == std::string_view::npos) return tmpl == path;
  if (!path.starts_with(tmpl.substr(0, brace))) return false;
  std::string_view rest = path.substr(brace);
  if (rest.empty() || rest.size() > 128 || rest.find('/') != std::string_view::npos) return false;
  param = std::string(rest);
  return true;
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string header(const Api::Request& req, http::field f) {
  auto it = req.find(f);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string cookie_value(const Api::Request& req) {
  const std::string all = header(req, http::field::cookie);
  std::string_view v(all);
  while (!v.empty()) {
    const size_t semi = v.find(';');
    std::string_view c = v.substr(0, semi);
    while (c.starts_with(' ')) c.remove_prefix(1);
    if (c.starts_with(kCookie) && c.size() > kCookie.size() && c[kCookie.size()] == '=')
      return std::string(c.substr(kCookie.size() + 1));
    if (semi == std::string_view::npos) break;
    v.remove_prefix(semi + 1);
  }
  return {};
}

std::optional<int64_t> int_param(const QueryParams& params, std::string_view key) {
  auto it = params.find(key);
  return it == params.end() ? std::nullopt : to_int(it->second);
}

// A page's `limit`: 1-1000, 100 by default.
int64_t page_limit(const QueryParams& params) {
  return std::clamp<int64_t>(int_param(params, "limit").value_or(100), 1, 1000);
}

json ban_json(const BanRow& b) {
  return {{"id", b.id},
          {"address", b.address},
          {"expires_at_ns", b.expires_at_ns ? json(b.expires_at_ns) : json()},
          {"reason", b.reason},
          {"origin", b.origin},
          {"created_at_ns", b.created_at_ns},
          {"pushed", b.pushed},
          {"lifted_at_ns", b.lifted_at_ns ? json(b.lifted_at_ns) : json()}};
}

// GET /api/v1/decoys's window: ?days=1-366, 30 by default.
constexpr int64_t kDecoyDaysDefault = 30;
constexpr int64_t kDecoyDaysMax = 366;

json decoys_json(const DecoyReport& r, int64_t days) {
  json arr = json::array();
  for (const auto& d : r.decoys) {
    json rate = d.hits ? json(static_cast<double>(d.false_positives) / static_cast<double>(d.hits))
                       : json();
    arr.push_back({{"decoy", d.decoy},
                   {"url", d.url},
                   {"agents", d.agents},
                   {"hits", d.hits},
                   {"addresses", d.addresses},
                   {"opened", d.opened},
                   {"credential_uses", d.credential_uses},
                   {"false_positives", d.false_positives},
                   {"false_positive_rate", std::move(rate)},
                   {"first_ns", d.first_ns},
                   {"last_ns", d.last_ns},
                   {"latest", {{"agent_key", d.latest_agent}, {"row", d.latest_row}}}});
  }
  return {{"since", r.since_ns},    {"until", r.until_ns}, {"days", days},
          {"complete", r.complete}, {"decoys", arr},       {"count", arr.size()}};
}

json command_json(const CommandRow& c) {
  auto parsed = [](const std::string& text) {
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json() : j;
  };
  return {{"id", c.id},
          {"command_id", c.command_id},
          {"agent_key", c.agent_key},
          {"request", parsed(c.request_json)},
          {"state", to_string(c.state)},
          {"created_at_ns", c.created_at_ns},
          {"sent_at_ns", c.sent_at_ns ? json(c.sent_at_ns) : json()},
          {"answered_at_ns", c.answered_at_ns ? json(c.answered_at_ns) : json()},
          {"answer", parsed(c.answer_json)}};
}

json agent_json(const AgentRow& a, int64_t events_24h) {
  json roots = json::parse(a.info.roots_json, nullptr, false);
  return {{"agent_key", a.agent_key},
          {"name", a.info.name},
          {"hostname", a.info.hostname},
          {"group", a.group},
          {"status", to_string(a.status)},
          {"status_since_ns", a.status_since_ns},
          {"last_seen_ns", a.last_seen_ns},
          {"enrolled_at_ns", a.enrolled_at_ns},
          {"version", a.info.version},
          {"roots", roots.is_discarded() ? json::array() : roots},
          {"baseline_root_hash", a.info.baseline_root_hash},
          {"events_24h", events_24h}};
}

}  // namespace

std::span<const ApiRoute> api_routes() { return kRoutes; }

// The query string's parameters (no percent-decoding beyond %2F and %3A, which paths and
// times hold).
QueryParams query_params(std::string_view q) {
  QueryParams out;
  while (!q.empty() && out.size() < 32) {
    const size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string v;
    for (size_t i = eq + 1; i < kv.size(); ++i) {
      if (kv[i] == '%' && i + 2 < kv.size()) {
        const auto hex = kv.substr(i + 1, 2);
        int c = 0;
        if (std::from_chars(hex.data(), hex.data() + 2, c, 16).ec == std::errc()) {
          v += static_cast<char>(c);
          i += 2;
          continue;
        }
      }
      v += kv[i] == '+' ? ' ' : kv[i];
    }
    out.emplace(std::string(kv.substr(0, eq)), std::move(v));
  }
  return out;
}

EventQuery event_query(const QueryParams& params) {
  auto str = [&](std::string_view k) -> std::optional<std::string> {
    auto it = params.find(k);
    return it == params.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  EventQuery q;
  q.since_ns = int_param(params, "since");
  q.until_ns = int_param(params, "until");
  q.agent_key = str("agent");
  q.group = str("group");
  q.action = str("action");
  q.path_prefix = str("path_prefix");
  q.source_ip = str("source_ip");
  q.min_severity = int_param(params, "min_severity");
  q.decoy = str("decoy");
  q.after_row = int_param(params, "after").value_or(0);
  q.limit = page_limit(params);
  return q;
}

json events_json(const std::vector<EventRow>& rows) {
  json arr = json::array();
  for (const auto& r : rows) {
    json e = json::parse(r.json, nullptr, false);
    if (e.is_discarded()) e = nullptr;  // never dumped: it would print "<discarded>"
    arr.push_back({{"row", r.row}, {"agent_key", r.agent_key}, {"event", std::move(e)}});
  }
  return arr;
}

void Api::audit(const std::string& actor, const std::string& address, std::string action,
                std::string target, std::string result) {
  auto r = hub_.store().append_audit(
      {0, hub_.now_ns(), actor, address, std::move(action), std::move(target), std::move(result)});
  if (!r) log_line("audit: " + r.error().message());
}

std::optional<Api::Caller> Api::authenticate(const Request& req, bool& csrf_ok) {
  const int64_t now = hub_.now_ns();
  const std::string auth = header(req, http::field::authorization);
  if (auth.starts_with("Bearer ")) {
    const std::string_view tok = std::string_view(auth).substr(7);
    if (!tok.starts_with(kApiTokenPrefix) || tok.size() > 128) return std::nullopt;
    auto t = hub_.store().use_api_token(sha256_hex(tok), now);
    if (!t || !*t) return std::nullopt;
    csrf_ok = true;  // a bearer token is not sent by browsers on their own
    return Caller{"apitoken:" + std::to_string((*t)->id), (*t)->role, ""};
  }
  const std::string cookie = cookie_value(req);
  if (cookie.empty() || cookie.size() > 128) return std::nullopt;
  const std::string id_hash = sha256_hex(cookie);
  auto s = hub_.store().use_session(id_hash, now, kSessionIdleNs);
  if (!s || !*s) return std::nullopt;
  auto u = hub_.store().find_user((*s)->user);
  if (!u || !*u) return std::nullopt;
  const std::string csrf(req["X-CSRF-Token"]);
  csrf_ok = !csrf.empty() && csrf.size() <= 128 &&
            hash::equal_constant_time(sha256_hex(csrf), (*s)->csrf_hash);
  return Caller{"user:" + (*u)->name, (*u)->role, id_hash};
}

ApiResponse Api::handle(const Request& req, const std::string& address, Reply later) {
  const std::string_view target(req.target().data(), req.target().size());
  const size_t qm = target.find('?');
  const std::string_view path = target.substr(0, qm);
  const auto params =
      query_params(qm == std::string_view::npos ? std::string_view() : target.substr(qm + 1));
  const ApiRoute* route = nullptr;
  bool path_known = false;
  std::string param;
  for (const auto& r : kRoutes) {
    if (!match(r.path, path, param)) continue;
    path_known = true;
    if (r.method == req.method()) {
      route = &r;
      break;
    }
  }
  if (!route)
    return path_known ? error(status::method_not_allowed, "method", "method not allowed here")
                      : error(status::not_found, "not-found", "no such endpoint");
  if (req.body().size() > kMaxApiBodyBytes)
    return error(status::payload_too_large, "too-large", "the body is over 1 MiB");
  if (route->path == "/api/v1/login") return login(req, address, std::move(later));
  bool csrf_ok = false;
  auto caller = authenticate(req, csrf_ok);
  if (!caller)
    return error(status::unauthorized, "unauthorized",
                 "log in (POST /api/v1/login) or send Authorization: Bearer TOKEN");
  if (caller->role < *route->min_role)
    return error(status::forbidden, "forbidden",
                 std::string("needs the ") + std::string(to_string(*route->min_role)) + " role");
  if (req.method() != verb::get && !csrf_ok)
    return error(status::forbidden, "csrf", "X-CSRF-Token is missing or wrong");
  Store& st = hub_.store();
  const int64_t now = hub_.now_ns();
  const std::string_view p = route->path;
  if (p == "/api/v1/logout") return logout(*caller, address);
  if (p == "/api/v1/drift") return drift(req, *caller, address, std::move(later));
  if (p.starts_with("/api/v1/bans") || p == "/api/v1/commands")
    return fleet(p, req, *caller, address, param, params);
  if (p == "/api/v1/sinks" || p == "/api/v1/sinks/test") {
    if (p == "/api/v1/sinks/test") {
      hub_.report(proto::action::kSinkTest, event::Severity::kWarning,
                  fmt::format("a test alert, asked for by {}: nothing happened", caller->actor),
                  nullptr, "",
                  [&](event::Event& e) { e.set("mamori.requested_by", caller->actor); });
      audit(caller->actor, address, "sink-test", "*", "ok");
    }
    json arr = json::array();
    for (const auto& s : hub_.sink_status()) arr.push_back(proto::to_json(s));
    return {status::ok, json{{"sinks", arr}}, {}};
  }
  if (p == "/api/v1/agents" || p == "/api/v1/agents/{key}") {
    const bool one = p != "/api/v1/agents";
    auto agents = st.list_agents();
    if (!agents) return internal(agents.error());
    auto counts = st.count_events_since(
        now - kDayNs, one ? std::optional<std::string_view>(param) : std::nullopt);
    if (!counts) return internal(counts.error());
    json arr = json::array();
    for (const auto& a : *agents) {
      if (one && a.agent_key != param) continue;
      auto n = counts->find(a.agent_key);
      arr.push_back(agent_json(a, n == counts->end() ? 0 : n->second));
    }
    if (p == "/api/v1/agents")
      return {status::ok, json{{"agents", arr}, {"count", arr.size()}}, {}};
    if (arr.empty()) return error(status::not_found, "not-found", "no such agent");
    return {status::ok, arr[0], {}};
  }
  if (p == "/api/v1/events") {
    EventQuery q = event_query(params);
    if (auto order = params.find("order"); order != params.end() && order->second == "newest") {
      q.newest_first = true;
      q.before_row = int_param(params, "before").value_or(0);
    }
    auto rows = st.query_events(q);
    if (!rows) return internal(rows.error());
    json arr = events_json(*rows);
    json body{{"events", arr}, {"count", arr.size()}};
    if (static_cast<int64_t>(rows->size()) == q.limit) body["next"] = rows->back().row;
    return {status::ok, body, {}};
  }
  if (p == "/api/v1/events/histogram") {
    EventQuery q = event_query(params);
    q.after_row = 0;
    if (!q.until_ns) q.until_ns = hub_.now_ns();
    if ((q.since_ns && *q.since_ns < 0) || *q.until_ns < 0)
      return error(status::bad_request, "bad-request", "since and until are times since 1970");
    auto h = st.event_histogram(q, int_param(params, "buckets").value_or(60));
    if (!h && h.error().errnum == EINVAL)
      return error(status::bad_request, "bad-request", h.error().detail);
    if (!h) return internal(h.error());
    return {status::ok,
            json{{"since", h->since_ns},
                 {"width_ns", h->width_ns},
                 {"complete", h->complete},
                 {"counts", h->counts},
                 {"max_severity", h->max_severity}},
            {}};
  }
  if (p == "/api/v1/decoys") {
    int64_t days = kDecoyDaysDefault;
    if (auto it = params.find("days"); it != params.end()) {
      auto d = to_int(it->second);
      if (!d || *d < 1 || *d > kDecoyDaysMax)
        return error(status::bad_request, "bad-request", "days: 1 to 366");
      days = *d;
    }
    auto r = decoy_report(st, now - days * kDayNs, now);
    if (!r) return internal(r.error());
    return {status::ok, decoys_json(*r, days), {}};
  }
  if (p == "/api/v1/tokens" && req.method() == verb::get) {
    auto tokens = st.list_tokens();
    if (!tokens) return internal(tokens.error());
    json arr = json::array();
    for (const auto& t : *tokens)
      arr.push_back({{"id", t.id},
                     {"group", t.group},
                     {"uses_left", t.uses_left ? json(*t.uses_left) : json()},
                     {"expires_at_ns", t.expires_at_ns ? json(*t.expires_at_ns) : json()},
                     {"created_at_ns", t.created_at_ns},
                     {"used", t.used},
                     {"revoked", t.revoked}});
    return {status::ok, json{{"tokens", arr}, {"count", arr.size()}}, {}};
  }
  if (p == "/api/v1/tokens/{id}") {
    auto id = to_int(param);
    auto had = id ? st.revoke_token(*id) : Result<bool>(false);
    if (!had) return internal(had.error());
    audit(caller->actor, address, "token-revoke", param, *had ? "ok" : "no-such-token");
    if (!*had) return error(status::not_found, "not-found", "no such token");
    return {status::ok, json{{"id", *id}, {"revoked", true}}, {}};
  }
  if (p == "/api/v1/users" && req.method() == verb::get) {
    auto users = st.list_users();
    if (!users) return internal(users.error());
    json arr = json::array();
    for (const auto& u : *users)
      arr.push_back(
          {{"name", u.name}, {"role", to_string(u.role)}, {"created_at_ns", u.created_at_ns}});
    return {status::ok, json{{"users", arr}, {"count", arr.size()}}, {}};
  }
  if (p == "/api/v1/users/{name}") {
    // The last admin stays: without one, no one could manage users from the console or
    // the API again (root on the manager's host still can: mamori manager user add).
    auto users = st.list_users();
    if (!users) return internal(users.error());
    size_t admins = 0;
    bool last = false;
    for (const auto& u : *users) {
      if (u.role != Role::kAdmin) continue;
      ++admins;
      last = last || u.name == param;
    }
    if (last && admins == 1) {
      audit(caller->actor, address, "user-del", param, "last-admin");
      return error(status::conflict, "last-admin", "the last admin cannot be deleted");
    }
    auto had = st.delete_user(param);
    if (!had) return internal(had.error());
    audit(caller->actor, address, "user-del", param, *had ? "ok" : "no-such-user");
    if (!*had) return error(status::not_found, "not-found", "no such user");
    return {status::ok, json{{"name", param}, {"deleted", true}}, {}};
  }
  if (p == "/api/v1/audit") {
    auto after = params.find("after");
    auto limit = params.find("limit");
    const int64_t n = limit == params.end()
                          ? 100
                          : std::clamp<int64_t>(to_int(limit->second).value_or(100), 1, 1000);
    auto order = params.find("order");
    auto rows =
        order != params.end() && order->second == "newest"
            ? st.list_audit_newest(int_param(params, "before").value_or(0), n)
            : st.list_audit(after == params.end() ? 0 : to_int(after->second).value_or(0), n);
    if (!rows) return internal(rows.error());
    json arr = json::array();
    for (const auto& a : *rows)
      arr.push_back({{"id", a.id},
                     {"at_ns", a.at_ns},
                     {"actor", a.actor},
                     {"address", a.address},
                     {"action", a.action},
                     {"target", a.target},
                     {"result", a.result}});
    json body{{"audit", arr}, {"count", arr.size()}};
    if (static_cast<int64_t>(rows->size()) == n) body["next"] = rows->back().id;
    return {status::ok, body, {}};
  }
  json in = parse_body(req.body());
  if (!in.is_object()) return error(status::bad_request, "bad-request", "expects a JSON object");
  if (p == "/api/v1/tokens") {  // POST
    const std::string group = in.value("group", std::string("default"));
    if (group.empty() || group.size() > 64 ||
        group.find_first_of(std::string_view("\0\n\r\"", 4)) != std::string::npos)
      return error(status::bad_request, "bad-request", "group: 1-64 characters");
    std::optional<int64_t> uses, expires_at;
    if (in.contains("uses") && !in["uses"].is_null()) {
      if (!in["uses"].is_number_integer() || in["uses"].get<int64_t>() < 1)
        return error(status::bad_request, "bad-request", "uses: an integer >= 1");
      uses = in["uses"].get<int64_t>();
    }
    if (in.contains("expires_in_s") && !in["expires_in_s"].is_null()) {
      if (!in["expires_in_s"].is_number_integer() || in["expires_in_s"].get<int64_t>() < 1 ||
          in["expires_in_s"].get<int64_t>() > 3660LL * 86400)
        return error(status::bad_request, "bad-request", "expires_in_s: 1 s to 10 years");
      expires_at = now + in["expires_in_s"].get<int64_t>() * 1'000'000'000;
    }
    auto secret = random_bytes(32);
    if (!secret) return internal(secret.error());
    const proto::channel::Token token{hub_.public_url(), hub_.identity().fingerprint,
                                      proto::channel::base64url(*secret)};
    auto id = st.create_token({sha256_hex(token.secret), group, uses, expires_at, now});
    if (!id) return internal(id.error());
    audit(caller->actor, address, "token-create", std::to_string(*id) + " " + group, "ok");
    return {status::created,
            json{{"id", *id}, {"token", proto::channel::encode_token(token)}, {"group", group}},
            {}};
  }
  // POST /api/v1/users
  if (!in.contains("name") || !in["name"].is_string() || !in.contains("password") ||
      !in["password"].is_string() || !in.contains("role") || !in["role"].is_string())
    return error(status::bad_request, "bad-request", "expects {\"name\", \"password\", \"role\"}");
  const std::string name = in["name"];
  const auto role = parse_role(in["role"].get<std::string>());
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") !=
          std::string::npos)
    return error(status::bad_request, "bad-request", "name: 1-64 of A-Z a-z 0-9 . _ @ -");
  if (!role) return error(status::bad_request, "bad-request", "role: viewer, operator or admin");
  auto hash = hash_password(in["password"].get<std::string>());
  if (!hash) return error(status::bad_request, "bad-password", hash.error().detail);
  auto made = st.create_user({name, *role, *hash, now});
  if (!made && made.error().errnum == EEXIST) {
    audit(caller->actor, address, "user-add", name, "exists");
    return error(status::conflict, "exists", "a user has this name");
  }
  if (!made) return internal(made.error());
  audit(caller->actor, address, "user-add", name + " (" + std::string(to_string(*role)) + ")",
        "ok");
  return {status::created, json{{"name", name}, {"role", to_string(*role)}}, {}};
}

ApiResponse Api::fleet(std::string_view p, const Request& req, const Caller& caller,
                       const std::string& address, const std::string& param,
                       const QueryParams& params) {
  Store& st = hub_.store();
  const int64_t now = hub_.now_ns();
  auto bad = [](std::string why) { return error(status::bad_request, "bad-request", why); };
  if (p == "/api/v1/bans" && req.method() == verb::get) {
    // ?state=past: the history (lifted or expired), newest first; else the active ones.
    auto state = params.find("state");
    const bool past = state != params.end() && state->second == "past";
    if (state != params.end() && !past && state->second != "active")
      return bad("state: active (the default) or past");
    auto bans = past ? st.past_bans(now, kMaxQueryLimit) : st.active_bans(now, kMaxQueryLimit);
    if (!bans) return internal(bans.error());
    json arr = json::array();
    for (const auto& b : *bans) arr.push_back(ban_json(b));
    return {status::ok, json{{"bans", arr}, {"count", arr.size()}}, {}};
  }
  if (p == "/api/v1/bans/{address}") {
    auto ip = canonical_address(param);
    if (!ip) return bad(ip.error());
    auto lifted = st.lift_bans(*ip, now);
    if (!lifted) return internal(lifted.error());
    audit(caller.actor, address, "unban", *ip, *lifted ? "ok" : "not-banned");
    if (!*lifted) return error(status::not_found, "not-found", *ip + " is not banned by the fleet");
    hub_.fleet().wake();
    return {status::ok, json{{"address", *ip}, {"lifted", *lifted}}, {}};
  }
  if (p == "/api/v1/commands" && req.method() == verb::get) {
    auto agent = params.find("agent");
    const int64_t limit = page_limit(params);
    auto rows = st.list_commands(
        int_param(params, "after").value_or(0),
        agent == params.end() ? std::nullopt : std::optional<std::string>(agent->second), limit);
    if (!rows) return internal(rows.error());
    json arr = json::array();
    for (const auto& c : *rows) arr.push_back(command_json(c));
    json body{{"commands", arr}, {"count", arr.size()}};
    if (static_cast<int64_t>(rows->size()) == limit) body["next"] = rows->back().id;
    return {status::ok, body, {}};
  }
  json in = parse_body(req.body());
  if (!in.is_object()) return bad("expects a JSON object");
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = in.find(key);
    if (it == in.end() || it->is_null()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<int64_t> ttl_s = 0;
  if (auto it = in.find("ttl_s"); it != in.end() && !it->is_null())
    ttl_s = it->is_number_integer() ? std::optional(it->get<int64_t>()) : std::nullopt;
  const auto reason = text("reason");
  if (!ttl_s) return bad("ttl_s: an integer number of seconds (0: permanent)");
  if (!reason) return bad("reason: a string");
  if (p == "/api/v1/bans") {  // POST
    const auto ip = text("address");
    if (!ip || ip->empty()) return bad("expects {\"address\", \"ttl_s\", \"reason\"}");
    auto ban = check_ban({*ip, *ttl_s, reason->empty() ? "banned through the API" : *reason},
                         hub_.fleet().never_ban(), now);
    if (!ban) return bad(ban.error());
    auto id = st.add_ban(*ban);
    if (!id) return internal(id.error());
    audit(caller.actor, address, "ban", ban->address, "ok");
    hub_.fleet().wake();
    json body{{"id", *id}, {"address", ban->address}, {"reason", ban->reason}};
    body["expires_at_ns"] = ban->expires_at_ns ? json(ban->expires_at_ns) : json();
    return {status::created, body, {}};
  }
  // POST /api/v1/commands
  const auto command = text("command"), agent = text("agent"), group = text("group");
  if (!command || !agent || !group) return bad("command, agent and group are strings");
  std::vector<std::string> words{*command};
  if (auto it = in.find("args"); it != in.end()) {
    if (!it->is_array() || it->size() > 8) return bad("args: an array of at most 8 strings");
    for (const auto& a : *it) {
      if (!a.is_string()) return bad("args: an array of at most 8 strings");
      words.push_back(a.get<std::string>());
    }
  }
  const auto all = in.find("all");
  const CommandTargets targets{*agent, *group,
                               all != in.end() && all->is_boolean() && all->get<bool>()};
  if (auto t = check_targets(targets); !t) return bad("agent, group or all: " + t.error());
  auto request = command_request(words, *ttl_s, *reason, hub_.fleet().never_ban());
  if (!request) return bad(request.error());
  if (auto t = check_command_targets(*request, targets); !t) return bad(t.error());
  auto names = command_targets(st, targets);
  if (!names) return internal(names.error());
  if (names->empty()) return error(status::not_found, "not-found", "no such agent or group");
  auto ids = queue_command(st, *names, *request, now);
  if (!ids) return internal(ids.error());
  const std::string target = targets.all             ? std::string("all")
                             : targets.group.empty() ? targets.agent_key
                                                     : "group " + targets.group;
  // What was asked, words and all (an accept's path and evidence id), bounded.
  std::string asked;
  for (const auto& w : words)
    asked += (asked.empty() ? "" : " ") +
             (w.empty() || w.find(' ') != std::string::npos ? quote(w) : escape(w));
  if (asked.size() > 512) asked = asked.substr(0, 509) + "...";
  audit(caller.actor, address, "command", asked + " to " + target, "ok");
  hub_.fleet().wake();
  json arr = json::array();
  for (const auto& [id, key] : *ids) arr.push_back({{"id", id}, {"agent_key", key}});
  return {status::created, json{{"commands", arr}, {"count", arr.size()}}, {}};
}

// A walk asks the agents through the store for seconds: on the runner's thread, with a
// store connection of its own; one at a time per manager (429 meanwhile).
ApiResponse Api::drift(const Request& req, const Caller& caller, const std::string& address,
                       Reply later) {
  const json body = parse_body(req.body().empty() ? "{}" : req.body());
  if (!body.is_object())
    return error(status::bad_request, "bad-request", "expects {\"group\"} or {\"all\": true}");
  const std::string group =
      body.contains("group") && body["group"].is_string() ? body["group"].get<std::string>() : "";
  const bool all = body.value("all", false);
  if (group.empty() == !all || group.size() > 255)
    return error(status::bad_request, "bad-request", "give one of \"group\" or \"all\": true");
  int64_t timeout_s = 30;
  if (body.contains("timeout_s")) {
    if (!body["timeout_s"].is_number_integer() || body["timeout_s"].get<int64_t>() < 1 ||
        body["timeout_s"].get<int64_t>() > 120)
      return error(status::bad_request, "bad-request", "timeout_s: 1 to 120");
    timeout_s = body["timeout_s"].get<int64_t>();
  }
  audit(caller.actor, address, "drift", all ? "*" : group, "ok");
  Env& env = hub_.env();
  const std::string url = hub_.m().database;
  const bool taken =
      drift_runner_.submit([&env, url, group, timeout_s, post = post_, later = std::move(later)](
                               const std::function<bool()>& cancelled) mutable {
        ApiResponse r;
        auto store = open_store(env, url);
        auto d = store ? group_drift(**store, env.clock(), group, timeout_s, cancelled)
                       : Result<std::optional<json>>(tl::unexpected(store.error()));
        if (!d) {
          log_line("drift: " + d.error().message());
          r = error(status::internal_server_error, "internal", "the walk failed");
        } else if (!*d) {
          r = error(status::not_found, "not-found", "no such group");
        } else {
          r = {status::ok, std::move(**d), {}};
        }
        // `later` holds the connection: moved, so its last reference is dropped on the io
        // thread, never on this one.
        post([later = std::move(later), r = std::move(r)]() mutable { later(std::move(r)); });
      });
  if (!taken) return error(status::too_many_requests, "busy", "a drift walk is running: try again");
  ApiResponse pending;
  pending.later = true;
  return pending;
}

ApiResponse Api::login(const Request& req, const std::string& address, Reply later) {
  json body = parse_body(req.body());
  if (!body.is_object() || !body.contains("name") || !body["name"].is_string() ||
      !body.contains("password") || !body["password"].is_string())
    return error(status::bad_request, "bad-request", "expects {\"name\", \"password\"}");
  const std::string name = body["name"];
  std::string password = body["password"];
  if (name.empty() || name.size() > 64)
    return error(status::bad_request, "bad-request", "name: 1-64 characters");
  auto throttled = [&](int64_t wait_ns, const char* why) {
    audit(name, address, "login-failed", name, why);
    auto r = error(status::too_many_requests, "throttled", "too many failed logins: wait");
    r.headers.emplace_back("Retry-After", std::to_string((wait_ns + 999'999'999) / 1'000'000'000));
    return r;
  };
  if (int64_t wait = throttle_.wait_ns(name, address, hub_.now_ns()); wait > 0)
    return throttled(wait, "throttled");
  auto user = hub_.store().find_user(name);
  if (!user) return error(status::internal_server_error, "internal", "the store failed");
  // An unknown name costs the same argon2id verification as a known one.
  std::string phc = *user ? (*user)->password_hash : decoy_password_hash();
  if (!checks_.submit(address, std::move(phc), std::move(password),
                      [this, name, found = std::move(*user), address, later = std::move(later)](
                          bool matches) { later(logged_in(name, found, matches, address)); }))
    return throttled(1'000'000'000, "busy");  // too many checks waiting (PasswordChecks)
  ApiResponse pending;
  pending.later = true;
  return pending;
}

ApiResponse Api::logged_in(const std::string& name, const std::optional<UserRow>& user,
                           bool matches, const std::string& address) {
  const int64_t now = hub_.now_ns();
  if (!matches || !user) {
    throttle_.failed(name, address, now);
    audit(name, address, "login-failed", name, "bad-credentials");
    return error(status::unauthorized, "bad-credentials", "wrong name or password");
  }
  throttle_.succeeded(name);
  auto secret = random_bytes(32);
  auto csrf_raw = random_bytes(32);
  if (!secret || !csrf_raw)
    return error(status::internal_server_error, "internal", "no randomness");
  const std::string cookie = proto::channel::base64url(*secret);
  const std::string csrf = proto::channel::base64url(*csrf_raw);
  auto s = hub_.store().create_session(
      {sha256_hex(cookie), sha256_hex(csrf), name, now, now, now + kSessionMaxNs});
  if (!s) return error(status::internal_server_error, "internal", "the store failed");
  audit("user:" + name, address, "login", name, "ok");
  ApiResponse r{
      status::ok, json{{"name", name}, {"role", to_string(user->role)}, {"csrf_token", csrf}}, {}};
  r.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + cookie +
                                           "; Path=/api; Secure; HttpOnly; SameSite=Strict");
  return r;
}

ApiResponse Api::logout(const Caller& c, const std::string& address) {
  if (!c.session_hash.empty()) {
    auto r = hub_.store().delete_session(c.session_hash);
    if (!r) log_line("logout: " + r.error().message());
  }
  audit(c.actor, address, "logout", "", "ok");
  ApiResponse r{status::ok, json{{"logged_out", true}}, {}};
  r.headers.emplace_back("Set-Cookie", std::string(kCookie) +
                                           "=; Path=/api; Secure; HttpOnly; SameSite=Strict; "
                                           "Max-Age=0");
  return r;
}

}  // namespace mamori::manager
