#pragma once
// YARA rules compiled once and shared read-only by every scan (core/scan/scanner.h).
//
// libyara keeps process-global state (yr_initialize/yr_finalize: its module tables and
// thread-local keys) that is neither reference-counted safely nor thread-safe to set up.
// YaraRuntime is the one owner: each RuleSet holds a handle, the first handle
// initialises the library and the last one finalises it, under one lock.
//
// Threads: a RuleSet is immutable after compile() and may be used from any number of
// threads at once (each scan takes its own YR_SCANNER, scanner.h).

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/result.h"

struct YR_RULES;

namespace mamori::scan {

// A handle on libyara's process-global state; move-only. While any handle lives, the
// library is initialised.
class YaraRuntime {
 public:
  static Result<YaraRuntime> acquire();
  YaraRuntime(YaraRuntime&& other) noexcept : held_(std::exchange(other.held_, false)) {}
  YaraRuntime& operator=(YaraRuntime&&) = delete;
  YaraRuntime(const YaraRuntime&) = delete;
  ~YaraRuntime();

 private:
  YaraRuntime() = default;
  bool held_ = false;
};

// One rule file of mamori's own rule set (rules/yara/), compiled into the binary so the
// agent and the CLI carry the rules they were tested with.
struct BuiltinRuleFile {
  std::string_view name;  // "webshells.yar"
  std::string_view text;
};
std::span<const BuiltinRuleFile> builtin_rules();

// Limits on what a user rule directory may make the compiler read: it is the
// administrator's, but a wrong path (a directory of logs) must fail fast, not eat memory.
inline constexpr size_t kMaxRuleFileBytes = 32 << 20;
inline constexpr size_t kMaxRuleFilesPerDir = 20'000;

struct RuleOptions {
  bool builtin = true;            // mamori's own rules (namespace "mamori")
  std::vector<std::string> dirs;  // every *.yar / *.yara file directly inside, sorted
  std::vector<std::string> files;
};

class RuleSet {
 public:
  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  // Compiles the builtin rules and the user files. Each user file gets its own namespace
  // (its path), so two rule sets that reuse a rule name still load. The externals that
  // rule sets written for other scanners use (filename, filepath, extension, filetype,
  // owner) are defined as empty strings: such rules compile, and a verdict depends on
  // the content alone, which is what the SHA-256 cache needs. A file that does not
  // compile fails the whole set with "compile YARA rules 'FILE': line N: MESSAGE" (every
  // error of that file, the first few); no rule at all is an error too.
  static Result<std::shared_ptr<const RuleSet>> compile(const RuleOptions& options);
  // The same from text (tests, benchmarks); `name` stands for the file in errors.
  static Result<std::shared_ptr<const RuleSet>> compile_text(std::string_view text,
                                                             std::string_view name);

  size_t rule_count() const { return rule_count_; }
  // The files compiled, in order: builtin ones as "builtin:NAME".
  const std::vector<std::string>& sources() const { return sources_; }
  YR_RULES* get() const { return rules_; }

 private:
  RuleSet(YaraRuntime runtime, YR_RULES* rules, std::vector<std::string> sources);
  // Owns `rules` from the call on, whatever it returns.
  static Result<std::shared_ptr<const RuleSet>> take_rules(YaraRuntime runtime, YR_RULES* rules,
                                                           std::vector<std::string> sources);

  YaraRuntime runtime_;  // first member: destroyed last, after the rules are gone
  YR_RULES* rules_ = nullptr;
  size_t rule_count_ = 0;
  std::vector<std::string> sources_;
};

}  // namespace mamori::scan
