#pragma once
// Matches requests against a rule set with Vectorscan. All patterns on one field are
// compiled once into one database, so each field of a request is scanned once whatever
// the number of rules.
//
// Threads: a Matcher is immutable after compile() and may be shared by any number of
// threads; each thread needs its own Scratch (make_scratch()). A Scratch must not be used
// by two threads at once.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/rules/rules_file.h"

struct hs_database;
struct hs_scratch;

namespace mamori::rules {

// One access-log request, as core/logparse hands it over. The views must stay valid for
// the call only. Matching is byte-wise: no field needs to be valid UTF-8.
struct Request {
  std::string_view method;      // "POST"
  std::string_view target;      // normalised path and query: percent-decoded, no "//", "/./"
  std::string_view request;     // the request line as logged, before normalisation
  std::string_view user_agent;  // empty when the log has none ("-")
  std::string_view referer;
  int status = 0;          // 0 when unknown
  bool malformed = false;  // the request line is none (logparse Entry::malformed_request)
};

class Matcher {
 public:
  // Per-thread working memory for match(), and a memo of recent field values: a user
  // agent, a referer or an asset's path recurs on thousands of lines and is scanned once
  // while it stays in the memo (direct-mapped, kMemoSlots per field, values up to
  // kMemoMaxBytes; a miss only costs the scan it would have cost anyway).
  class Scratch {
   public:
    Scratch() = default;

   private:
    friend class Matcher;
    struct Free {
      void operator()(hs_scratch* s) const;
    };
    struct Memo {
      std::string value;
      std::vector<uint32_t> hits;  // rules whose pattern matched `value`, before filters
      bool valid = false;
    };
    std::unique_ptr<hs_scratch, Free> scratch_;
    const hs_database* owner_ = nullptr;  // identifies the matcher the memo belongs to
    std::vector<Memo> memo_;              // kFieldCount * kMemoSlots
    std::vector<uint32_t> hits_;
  };
  static constexpr size_t kMemoSlots = 256;
  static constexpr size_t kMemoMaxBytes = 512;

  // Compiles the enabled rules. Fails when Vectorscan refuses a pattern (the error names
  // the rule's file:line:col, code rules.pattern) or the set (rules.compile).
  static config::LoadResult<Matcher> compile(RuleSet rules);

  // Why Vectorscan would refuse `pattern` (its own message), or empty when it would
  // compile. Patterns that can match the empty string are refused: they match everything.
  static std::string check_pattern(const std::string& pattern, bool case_sensitive);

  Result<Scratch> make_scratch() const;

  // Sets `matched` to the indexes (into rules().rules, ascending, each at most once) of the
  // enabled rules whose condition holds for `r`: signatures that fired and thresholds whose
  // request condition holds (the caller counts those, see threshold.h). Fails when
  // `scratch` is another matcher's, or Vectorscan fails; `matched` is then empty.
  Status match(const Request& r, Scratch& scratch, std::vector<uint32_t>& matched) const;

  const RuleSet& rules() const { return rules_; }

 private:
  struct FreeDatabase {
    void operator()(hs_database* db) const;
  };
  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                      void* hits);
  const hs_database* identity() const;
  Status scan(size_t field, std::string_view value, Scratch& scratch,
              std::vector<uint32_t>& hits) const;

  RuleSet rules_;
  std::array<std::unique_ptr<hs_database, FreeDatabase>, kFieldCount> databases_;  // null: none
  std::vector<uint32_t> without_pattern_;  // enabled rules decided by method and status alone
};

}  // namespace mamori::rules
