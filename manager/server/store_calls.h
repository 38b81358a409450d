#pragma once
// What the server asks of the store (manager/db/store.h), in the server's terms: one
// function per question, so the server reads as its protocol and the store's interface
// can grow without touching it. Every call runs on the server's thread (server.h).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::manager {

class Store;

inline constexpr std::string_view kStatusOnline = "online";
inline constexpr std::string_view kStatusLost = "lost";
inline constexpr std::string_view kStatusStopped = "stopped";
inline constexpr std::string_view kStatusRetired = "retired";

// A new agent is "enrolled" until its first hello.
inline constexpr std::string_view kStatusEnrolled = "enrolled";

struct AgentRow {
  std::string agent_key;
  std::string credential_hash;
  std::string group;
  std::string hostname;
  std::string machine_id;
  std::string agent_id;
  std::string name;
  std::string version;
  std::string roots_json;
  std::string baseline_root_hash;
  std::string status;
  int64_t enrolled_at_ns = 0;
  int64_t last_seen_ns = 0;
};

struct TokenVerdict {
  bool ok = false;
  std::string group;  // ok
  std::string why;    // !ok: unknown, revoked, expired, used up
};

struct TokenRow {
  int64_t id = 0;
  std::string group;
  std::optional<int64_t> uses_left;  // nullopt: unlimited
  std::optional<int64_t> expires_at_ns;
  bool revoked = false;
  int64_t created_at_ns = 0;
};

struct HelloUpdate {
  std::string agent_id, name, version, hostname, roots_json, baseline_root_hash;
  int64_t now_ns = 0;
  std::string address;
};

struct BaselineRow {
  std::string hash;
  int64_t at_ns = 0;
};

// The store is opaque here (defined where it is implemented).
struct StoreDeleter {
  void operator()(Store* s) const;
};
using StorePtr = std::unique_ptr<Store, StoreDeleter>;
Result<StorePtr> open_store_url(Env& env, const std::string& url);

Result<int64_t> create_token(Store& s, const std::string& secret_hash, const std::string& group,
                             std::optional<int64_t> uses, std::optional<int64_t> expires_at_ns,
                             int64_t now_ns);
Result<std::vector<TokenRow>> list_tokens(Store& s);
// False: no such token.
Result<bool> revoke_token(Store& s, int64_t id);
Result<uint64_t> count_events(Store& s, const std::string& agent_key);
Result<TokenVerdict> consume_token(Store& s, const std::string& secret_hash, int64_t now_ns);
Status create_agent(Store& s, const AgentRow& a);
Result<std::optional<AgentRow>> find_agent(Store& s, const std::string& agent_key);
Result<std::vector<AgentRow>> list_agents(Store& s);
Status set_status(Store& s, const std::string& agent_key, std::string_view status, int64_t now_ns);
Status set_last_seen(Store& s, const std::string& agent_key, int64_t now_ns);
Status record_hello(Store& s, const std::string& agent_key, const HelloUpdate& u);
// New events stored (idempotent by event.id), committed when it returns.
Result<size_t> insert_events(Store& s, const std::string& agent_key,
                             const std::vector<nlohmann::json>& events, int64_t now_ns);
Result<std::optional<BaselineRow>> last_baseline(Store& s, const std::string& agent_key);
Status record_baseline(Store& s, const std::string& agent_key, const std::string& hash,
                       int64_t now_ns, bool expected);
// Whether the agent reported a deploy (deploy-started/-ended) or a mode change since.
Result<bool> deploy_or_accept_since(Store& s, const std::string& agent_key, int64_t since_ns);

}  // namespace mamori::manager
