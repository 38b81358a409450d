#pragma once
// The SQLite Store (see store.h for the contracts). One connection per object, not
// thread-safe: one SqliteStore per thread; several may share the file (WAL, busy timeout).
//
// Schema version 1 (table schema_version): tokens, agents, events (UNIQUE(agent_key,
// event_id), indexed columns extracted from the ECS JSON plus the raw JSON), event_seq
// (per-agent sequence high-water marks), baselines. Version 2: bans and commands (fleet
// control). migrate() brings an older schema up
// step by step and refuses a newer one.

#include <memory>
#include <string>

#include "core/db/sqlite.h"
#include "manager/db/store.h"

namespace mamori::manager {

inline constexpr int64_t kSqliteSchemaVersion = 9;

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace mamori::manager
