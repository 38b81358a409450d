#pragma once
// The manager's REST API for people and scripts (docs/manager.md "Users and API access",
// docs/openapi.yaml): login/logout with a session cookie and a CSRF token, API tokens
// (Authorization: Bearer mamori-api-v1....), and JSON endpoints over the store. Every
// route is one row of api_routes(): method, path template, the least role it needs
// (nullopt: no login, e.g. login itself); the OpenAPI test compares that table with
// docs/openapi.yaml. Errors are {"error": {"code", "message"}}: 401 without a valid
// session or token, 403 for a role too weak or a missing/wrong X-CSRF-Token on a
// state-changing request made with a session cookie, 429 for a throttled login.
//
// Threads: the server's io thread (hub.h) owns the Api.
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "manager/db/store.h"
#include "manager/server/drift.h"
#include "manager/server/login_throttle.h"
#include "manager/server/password_checks.h"

namespace mamori::manager {

class Hub;

struct ApiRoute {
  boost::beast::http::verb method;
  std::string_view path;         // a template: /api/v1/agents/{key}
  std::optional<Role> min_role;  // nullopt: no authentication
};
std::span<const ApiRoute> api_routes();

// Sessions end after this long unused, and at the latest this long after the login.
inline constexpr int64_t kSessionIdleNs = 12LL * 3600 * 1'000'000'000;
inline constexpr int64_t kSessionMaxNs = 7LL * 24 * 3600 * 1'000'000'000;

// The API's requests are small JSON objects (the HTTP parser allows the enrollment's
// kMaxMessageBytes; the API refuses more than this with 413).
inline constexpr size_t kMaxApiBodyBytes = 1u << 20;

struct ApiResponse {
  boost::beast::http::status status = boost::beast::http::status::ok;
  nlohmann::json body;
  std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, Retry-After
  bool later = false;  // no answer yet: it comes through Api::handle's `later`
};

// A request's query string, decoded.
using QueryParams = std::map<std::string, std::string, std::less<>>;
QueryParams query_params(std::string_view query);
// GET /api/v1/events' filters and cursor (after, limit 1-1000, default 100).
EventQuery event_query(const QueryParams& params);
// Stored events as the API gives them: [{"row", "agent_key", "event"}...].
nlohmann::json events_json(const std::vector<EventRow>& rows);

class Api {
 public:
  // `post` runs a finished password check on the io thread.
  Api(Hub& hub, PasswordChecks::Post post) : hub_(hub), post_(post), checks_(std::move(post)) {}
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Reply = std::function<void(ApiResponse)>;
  // The answer to `req` from `address` (target starts with /api/v1/), or one marked
  // `later` when it comes through `later` (a login: its password is checked off the io
  // thread).
  ApiResponse handle(const Request& req, const std::string& address, Reply later);

  struct Caller {
    std::string actor;  // user:NAME or apitoken:ID
    Role role = Role::kViewer;
    std::string session_hash;  // "" for an API token
  };
  // Who sent `req` (its session cookie or bearer token), if anyone; `csrf_ok`: its
  // X-CSRF-Token matches the session's (always true for a bearer token).
  std::optional<Caller> authenticate(const Request& req, bool& csrf_ok);

 private:
  ApiResponse login(const Request& req, const std::string& address, Reply later);
  // The rest of a login once its password was checked.
  ApiResponse logged_in(const std::string& name, const std::optional<UserRow>& user, bool matches,
                        const std::string& address);
  ApiResponse logout(const Caller& c, const std::string& address);
  // POST /api/v1/drift: the fleet drift of a group (drift.h), answered through `later`.
  ApiResponse drift(const Request& req, const Caller& caller, const std::string& address,
                    Reply later);
  // Bans and commands (fleet_orders.h): written to the store, delivered at once.
  ApiResponse fleet(std::string_view route, const Request& req, const Caller& caller,
                    const std::string& address, const std::string& param,
                    const QueryParams& params);
  void audit(const std::string& actor, const std::string& address, std::string action,
             std::string target, std::string result);

  Hub& hub_;
  PasswordChecks::Post post_;
  LoginThrottle throttle_;
  PasswordChecks checks_;
  DriftRunner drift_runner_;  // last: its walk posts through post_
};

}  // namespace mamori::manager
