#include "manager/db/store.h"

#include "core/hash/sha256.h"
#include "manager/db/sqlite_store.h"

namespace mamori::manager {

std::string sha256_hex(std::string_view secret) { return hash::sha256(secret).hex(); }

std::string_view to_string(TokenRefusal r) {
  switch (r) {
    case TokenRefusal::kNone:
      return "accepted";
    case TokenRefusal::kUnknown:
      return "unknown";
    case TokenRefusal::kRevoked:
      return "revoked";
    case TokenRefusal::kExpired:
      return "expired";
    case TokenRefusal::kUsedUp:
      return "used-up";
  }
  return "unknown";
}

std::string_view to_string(AgentStatus s) {
  switch (s) {
    case AgentStatus::kEnrolled:
      return "enrolled";
    case AgentStatus::kOnline:
      return "online";
    case AgentStatus::kLost:
      return "lost";
    case AgentStatus::kStopped:
      return "stopped";
    case AgentStatus::kRetired:
      return "retired";
  }
  return "enrolled";
}

std::optional<AgentStatus> parse_agent_status(std::string_view s) {
  for (AgentStatus a : {AgentStatus::kEnrolled, AgentStatus::kOnline, AgentStatus::kLost,
                        AgentStatus::kStopped, AgentStatus::kRetired})
    if (to_string(a) == s) return a;
  return std::nullopt;
}

Result<std::unique_ptr<Store>> open_store(Env&, const std::string& url) {
  constexpr std::string_view kScheme = "sqlite://";
  if (!url.starts_with(kScheme))
    return fail_msg("open store", url, "unsupported database URL: only sqlite:///abs/path.db");
  const std::string path = url.substr(kScheme.size());
  if (path.empty() || path[0] != '/')
    return fail_msg("open store", url, "the SQLite path must be absolute: sqlite:///abs/path.db");
  return open_sqlite_store(path);
}

std::string_view to_string(CommandState s) {
  switch (s) {
    case CommandState::kPending:
      return "pending";
    case CommandState::kSent:
      return "sent";
    case CommandState::kOk:
      return "ok";
    case CommandState::kRefused:
      return "refused";
    case CommandState::kFailed:
      return "failed";
  }
  return "pending";
}

std::optional<CommandState> parse_command_state(std::string_view s) {
  for (auto c : {CommandState::kPending, CommandState::kSent, CommandState::kOk,
                 CommandState::kRefused, CommandState::kFailed})
    if (to_string(c) == s) return c;
  return std::nullopt;
}

}  // namespace mamori::manager
