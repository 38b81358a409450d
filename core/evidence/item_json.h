#pragma once
// An evidence item (evidence.h) as JSON: the form `mamori evidence show --json` prints and
// the agent's answer to the manager's `evidence` command carries, so a script and the
// console read one shape. Elastic Common Schema names, as events use; what ECS has no
// field for goes under "mamori". The helpers are the CLI's too.
//
// Threads: pure functions.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/evidence/evidence.h"

namespace mamori::evidence {

nlohmann::json item_json(const Item& it);

// JSON strings must be UTF-8; bytes an attacker chose may not be: escaped when not.
std::string json_text(const std::string& s);
// root + "/" + rel ("/" alone for the root "/" and an empty rel: the root itself).
std::string absolute(const std::string& root, const std::string& rel);
// {"path": ...}: the path itself when UTF-8, else escaped plus "path_hex", its bytes.
nlohmann::json path_json(const std::string& root, const std::string& rel);
// RFC 3339 in UTC with nanoseconds: 2026-12-05T20:14:29.123456789Z.
std::string format_time_ns(int64_t ns);

}  // namespace mamori::evidence
