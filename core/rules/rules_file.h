#pragma once
// Detection rules for access logs: the file format (docs/formats/rules.md) and its parser.
// A rule set is the shipped defaults followed by the administrator's files; a later file
// adds rules and changes earlier ones by id with [[override]]. Loading reports every
// problem as file:line:col with a stable code, like core/config.
//
// Threads: parsing is pure; a RuleSet is a value, read-only once built.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/config/load_error.h"

namespace mamori::rules {

// What a rule scans. kTarget is the normalised path and query (core/logparse); kRequest is
// the request line as logged ("GET /a%20b HTTP/1.1"), before normalisation.
enum class Field : uint8_t { kTarget, kRequest, kUserAgent, kReferer };
inline constexpr size_t kFieldCount = 4;
std::string_view field_name(Field field);

enum class Kind : uint8_t { kSignature, kThreshold };
enum class Action : uint8_t { kLog, kBan };
std::string_view kind_name(Kind kind);
std::string_view action_name(Action action);

// An inclusive range of HTTP status codes: "404" is {404, 404}, "4xx" is {400, 499}.
struct StatusRange {
  uint16_t lo = 0;
  uint16_t hi = 0;
  bool operator==(const StatusRange&) const = default;
};

struct Rule {
  std::string id;  // unique in the set: [A-Za-z0-9._-], 1-64 bytes
  Kind kind = Kind::kSignature;
  Action action = Action::kLog;
  int severity = 5;  // ECS event.severity 1-10 (info 1 ... critical 7)
  bool enabled = true;
  std::string description;
  std::vector<std::string> tags;
  // The condition. A request matches when the pattern matches one of `fields` (or the rule
  // has no pattern), its method is listed (or none are) and its status is in one of the
  // ranges (or none are given). A signature has at least one of the three.
  std::vector<Field> fields;  // never empty when pattern is set
  std::string pattern;        // Vectorscan regex (PCRE subset), no NUL bytes
  bool case_sensitive = false;
  std::vector<std::string> methods;  // upper case: "POST"
  std::vector<StatusRange> status;
  // Only requests whose line is not "METHOD target [protocol]" (logparse's
  // Entry::malformed_request: TLS bytes sent to port 80, "HELP", an empty request).
  bool malformed = false;
  // Thresholds: `count` matching requests from one address within `window_s` seconds.
  uint32_t count = 0;
  uint32_t window_s = 0;
  // Where the rule was defined (and where the pattern is), for messages.
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  uint32_t pattern_line = 0;
  uint32_t pattern_column = 0;

  bool method_allowed(std::string_view method) const;
  bool status_allowed(int status) const;
  bool malformed_allowed(bool malformed_request) const { return !malformed || malformed_request; }
};

struct RuleSet {
  std::vector<Rule> rules;  // in file order; disabled rules stay, marked
  size_t enabled_count() const;
  // Index of the rule named `id`, or -1.
  int64_t find(std::string_view id) const;
};

// Loading reports the first problem as a config::LoadError (core/config/load_error.h)
// with a code "rules.*" (docs/formats/rules.md).

// Limits on hostile or mistaken input; hitting one is an error (rules.limit), never a
// truncation.
inline constexpr size_t kMaxFileBytes = 1 << 20;
inline constexpr size_t kMaxRules = 4096;  // in the whole set, overrides included
inline constexpr size_t kMaxPatternBytes = 4096;
inline constexpr size_t kMaxFiles = 256;

// Parses one file's text and applies it on top of `base` (empty for the first file):
// its [[rule]] tables are appended, then its [[override]] tables change rules of `base`
// or of this file. Patterns are checked with Vectorscan here (syntax, unsupported
// constructs, empty matches); Matcher::compile() can still refuse a set that is too large.
config::LoadResult<RuleSet> parse_rules(std::string_view text, std::string_view source_name,
                                        RuleSet base = {});

// Reads and applies each file in order (defaults first, then overrides).
config::LoadResult<RuleSet> load_rules(const std::vector<std::string>& paths);

// The *.rules files of a directory (rules.d), sorted by name; none when it does not exist.
Result<std::vector<std::string>> rule_files_in(const std::string& dir);

}  // namespace mamori::rules
