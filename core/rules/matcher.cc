#include "core/rules/matcher.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include <fmt/format.h>
#include <hs/hs.h>

namespace mamori::rules {
namespace {

// DOTALL: a decoded %0a must not let "union.*select" slip past. SINGLEMATCH: one report per
// rule and scan is all match() needs, and it lets Vectorscan stop tracking the pattern.
unsigned flags_for(bool case_sensitive) {
  return HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH | (case_sensitive ? 0u : HS_FLAG_CASELESS);
}

struct FreeCompileError {
  void operator()(hs_compile_error_t* e) const { hs_free_compile_error(e); }
};
using CompileError = std::unique_ptr<hs_compile_error_t, FreeCompileError>;

std::string_view field_value(const Request& r, Field field) {
  switch (field) {
    case Field::kTarget:
      return r.target;
    case Field::kRequest:
      return r.request;
    case Field::kUserAgent:
      return r.user_agent;
    case Field::kReferer:
      return r.referer;
  }
  return {};
}

}  // namespace

void Matcher::Scratch::Free::operator()(hs_scratch* s) const { hs_free_scratch(s); }
void Matcher::FreeDatabase::operator()(hs_database* db) const { hs_free_database(db); }

std::string Matcher::check_pattern(const std::string& pattern, bool case_sensitive) {
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* raw_error = nullptr;
  if (hs_expression_info(pattern.c_str(), flags_for(case_sensitive), &info, &raw_error) !=
      HS_SUCCESS) {
    CompileError error(raw_error);
    return error ? error->message : "refused by Vectorscan";
  }
  const bool empty = info->min_width == 0;
  std::free(info);  // allocated by Vectorscan's default misc allocator, malloc
  if (empty) return "can match the empty string, so it would match every request";
  return {};
}

config::LoadResult<Matcher> Matcher::compile(RuleSet rules) {
  Matcher m;
  m.rules_ = std::move(rules);
  const auto& all = m.rules_.rules;
  for (size_t f = 0; f < kFieldCount; ++f) {
    std::vector<const char*> patterns;
    std::vector<unsigned> flags, ids;
    for (uint32_t i = 0; i < all.size(); ++i) {
      const Rule& r = all[i];
      if (!r.enabled || r.pattern.empty()) continue;
      if (std::find(r.fields.begin(), r.fields.end(), static_cast<Field>(f)) == r.fields.end())
        continue;
      patterns.push_back(r.pattern.c_str());
      flags.push_back(flags_for(r.case_sensitive));
      ids.push_back(i);
    }
    if (patterns.empty()) continue;
    hs_database_t* db = nullptr;
    hs_compile_error_t* raw_error = nullptr;
    if (hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                         static_cast<unsigned>(patterns.size()), HS_MODE_BLOCK, nullptr, &db,
                         &raw_error) != HS_SUCCESS) {
      CompileError error(raw_error);
      const std::string message = error ? error->message : "refused by Vectorscan";
      if (error && error->expression >= 0) {
        const Rule& r = all[ids[static_cast<size_t>(error->expression)]];
        return tl::unexpected(config::LoadError{r.file, r.pattern_line, r.pattern_column,
                                                "rules.pattern", r.id + ".pattern", message});
      }
      return tl::unexpected(
          config::LoadError{"", 0, 0, "rules.compile", "",
                            fmt::format("the {} patterns on field {}: {}", patterns.size(),
                                        field_name(static_cast<Field>(f)), message)});
    }
    m.databases_[f].reset(db);
  }
  for (uint32_t i = 0; i < all.size(); ++i)
    if (all[i].enabled && all[i].pattern.empty()) m.without_pattern_.push_back(i);
  return m;
}

// The first database stays at the same address when a Matcher is moved.
const hs_database* Matcher::identity() const {
  for (const auto& db : databases_)
    if (db) return db.get();
  return nullptr;
}

Result<Matcher::Scratch> Matcher::make_scratch() const {
  Scratch s;
  s.owner_ = identity();
  for (const auto& db : databases_) {
    if (!db) continue;
    // Grows the scratch to fit every database; on failure the old one stays valid.
    hs_scratch_t* raw = s.scratch_.release();
    const hs_error_t e = hs_alloc_scratch(db.get(), &raw);
    s.scratch_.reset(raw);
    if (e != HS_SUCCESS) return fail_msg("hs_alloc_scratch", "", fmt::format("error {}", e));
  }
  return s;
}

int Matcher::on_match(unsigned id, unsigned long long, unsigned long long, unsigned, void* hits) {
  // SINGLEMATCH: each rule at most once per scan.
  static_cast<std::vector<uint32_t>*>(hits)->push_back(id);
  return 0;
}

Status Matcher::scan(size_t field, std::string_view value, Scratch& scratch,
                     std::vector<uint32_t>& hits) const {
  hits.clear();
  // hs_scan takes an unsigned length; a longer field is a broken parser, not a log line.
  if (value.size() > UINT32_MAX) return fail_msg("hs_scan", "", "field longer than 4 GiB");
  const hs_error_t e =
      hs_scan(databases_[field].get(), value.data(), static_cast<unsigned>(value.size()), 0,
              scratch.scratch_.get(), &Matcher::on_match, &hits);
  if (e != HS_SUCCESS) {
    hits.clear();
    return fail_msg("hs_scan", "", fmt::format("error {}", e));
  }
  return ok();
}

Status Matcher::match(const Request& r, Scratch& scratch, std::vector<uint32_t>& matched) const {
  matched.clear();
  if (scratch.owner_ != identity())
    return fail_msg("match request", "", "the scratch belongs to another matcher");
  if (scratch.memo_.empty()) scratch.memo_.resize(kFieldCount * kMemoSlots);
  for (size_t f = 0; f < kFieldCount; ++f) {
    const std::string_view value = field_value(r, static_cast<Field>(f));
    if (!databases_[f] || value.empty()) continue;
    const std::vector<uint32_t>* hits = &scratch.hits_;
    if (value.size() <= kMemoMaxBytes) {
      auto& memo =
          scratch.memo_[f * kMemoSlots + std::hash<std::string_view>{}(value) % kMemoSlots];
      if (!memo.valid || memo.value != value) {
        memo.valid = false;
        if (auto st = scan(f, value, scratch, memo.hits); !st) {
          matched.clear();
          return st;
        }
        memo.value.assign(value);
        memo.valid = true;
      }
      hits = &memo.hits;
    } else if (auto st = scan(f, value, scratch, scratch.hits_); !st) {
      matched.clear();
      return st;
    }
    for (const uint32_t id : *hits) {
      const Rule& rule = rules_.rules[id];
      if (rule.method_allowed(r.method) && rule.status_allowed(r.status) &&
          rule.malformed_allowed(r.malformed) &&
          std::find(matched.begin(), matched.end(), id) == matched.end())
        matched.push_back(id);
    }
  }
  for (const uint32_t i : without_pattern_) {
    const Rule& rule = rules_.rules[i];
    if (rule.method_allowed(r.method) && rule.status_allowed(r.status) &&
        rule.malformed_allowed(r.malformed))
      matched.push_back(i);
  }
  if (matched.size() > 1) std::sort(matched.begin(), matched.end());
  return ok();
}

}  // namespace mamori::rules
