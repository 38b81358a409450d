#pragma once
// The PostgreSQL Store (see store.h for the contracts), over libpq: for several managers
// sharing one database. One server connection per object, not thread-safe: one
// PostgresStore per thread; any number of them, in any number of processes, may share
// the database.
//
// Schema version 2 (bans and commands: fleet control), the same tables as the SQLite store's
// (docs/formats/manager-db.md lists the differences: BIGSERIAL ids, BOOLEAN flags, events.row_id,
// COLLATE "C" text). open_postgres_store() creates or migrates it in one transaction under an
// advisory lock (two managers starting together do not both migrate) and refuses a newer version.
//
// Concurrency across connections: a token's use is one conditional UPDATE (PostgreSQL
// re-checks its WHERE on the row a concurrent winner just committed, so the last use goes
// to one of them); batches of one agent key are serialized by a transaction-scoped
// advisory lock on the key, so its gap-free sequence is always computed over every
// committed batch; agent_hello and set_agent_status lock the agent's row.
//
// A lost connection (the server restarted, the backend was terminated, the network
// failed): the call reconnects once. It then runs again when that is safe: it is a read or
// idempotent (insert_events, touch_agent, revoke_token, prune), or the connection broke
// before its COMMIT was sent. Otherwise, or if reconnecting fails, the call fails with an
// error saying so, and the next call tries to reconnect again. The manager above treats
// such an error like any database failure: nothing was acked, the agent sends again later.

#include <memory>
#include <string>

#include "manager/db/store.h"

namespace mamori::manager {

inline constexpr int64_t kPostgresSchemaVersion = 9;

// `url`: postgresql://[user[:password]@][host][:port][/dbname][?param=value&...] (or
// postgres://), as libpq reads it.
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url);

}  // namespace mamori::manager
