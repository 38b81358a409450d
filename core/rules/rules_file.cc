#include "core/rules/rules_file.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/config/toml_reader.h"
#include "core/rules/matcher.h"

namespace mamori::rules {

using config::LoadError;
using config::LoadResult;
using config::read_toml_file;
using config::TomlReader;
using config::TomlTable;

namespace {

constexpr size_t kMaxIdBytes = 64;
constexpr size_t kMaxDescriptionBytes = 1024;
constexpr size_t kMaxTags = 16;
constexpr size_t kMaxTagBytes = 64;
constexpr size_t kMaxListItems = 32;  // fields, methods, status ranges
constexpr int64_t kMaxCount = 65535;  // one bucket of a Thresholds window holds it
constexpr int64_t kMaxWindowS = 86400;

constexpr std::string_view kIdChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

std::optional<Field> parse_field(std::string_view s) {
  if (s == "target") return Field::kTarget;
  if (s == "request") return Field::kRequest;
  if (s == "user_agent") return Field::kUserAgent;
  if (s == "referer") return Field::kReferer;
  return std::nullopt;
}

// "404" or "4xx"; codes 100-599.
std::optional<StatusRange> parse_status(std::string_view s) {
  if (s.size() != 3 || s[0] < '1' || s[0] > '5') return std::nullopt;
  if (s.substr(1) == "xx") {
    const auto c = static_cast<uint16_t>((s[0] - '0') * 100);
    return StatusRange{c, static_cast<uint16_t>(c + 99)};
  }
  if (s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9') return std::nullopt;
  const auto c = static_cast<uint16_t>((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
  return StatusRange{c, c};
}

// ECS event.severity names (docs/formats/events.md).
constexpr std::pair<std::string_view, int> kInfo{"info", 1}, kNotice{"notice", 3},
    kWarning{"warning", 5}, kCritical{"critical", 7};

class Loader {
 public:
  Loader(TomlReader& reader, RuleSet& set) : reader_(reader), set_(set) {}

  bool load() {
    TomlTable top = reader_.top();
    std::vector<TomlTable> rules, overrides;
    if (!top.only_keys({"rule", "override"}) || !top.tables("rule", rules) ||
        !top.tables("override", overrides))
      return false;
    for (auto& t : rules) {
      // The limit is the whole set's, earlier files included.
      if (set_.rules.size() >= kMaxRules)
        return reader_.fail(t.raw().source(), "limit", t.path(),
                            fmt::format("more than {} rules", kMaxRules));
      Rule r;
      if (!load_rule(t, r)) return false;
      set_.rules.push_back(std::move(r));
    }
    for (auto& t : overrides)
      if (!load_override(t)) return false;
    return true;
  }

 private:
  bool load_rule(TomlTable& t, Rule& r) {
    r.file = reader_.file();
    r.line = t.raw().source().begin.line;
    r.column = t.raw().source().begin.column;
    if (!t.only_keys({"id", "kind", "description", "tags", "field", "pattern", "case_sensitive",
                      "method", "status", "malformed", "action", "severity", "enabled", "count",
                      "window_s"}) ||
        !load_id(t, r.id))
      return false;
    if (const int64_t at = set_.find(r.id); at >= 0) {
      const Rule& first = set_.rules[static_cast<size_t>(at)];
      return reader_.fail(
          t.where("id"), "duplicate_id", r.id + ".id",
          fmt::format("rule {} is already defined at {}:{}{}", quote(r.id), first.file, first.line,
                      first.file == reader_.file() ? "" : "; change it with [[override]]"));
    }
    // From here on the rule is named by its id: "sqli-union.pattern".
    TomlTable named(reader_, t.raw(), r.id);
    if (!named.choice("kind", r.kind,
                      {{"signature", Kind::kSignature}, {"threshold", Kind::kThreshold}}) ||
        !named.require("action", "every rule needs an action: \"ban\" or \"log\"") ||
        !load_action(named, r.action) || !load_severity(named, r.severity) ||
        !named.optional("enabled", r.enabled) ||
        !named.optional("case_sensitive", r.case_sensitive) ||
        !named.optional("malformed", r.malformed) ||
        !named.optional("description", r.description, kMaxDescriptionBytes) ||
        !load_tags(named, r.tags) || !load_fields(named, r.fields) ||
        !load_methods(named, r.methods) || !load_status(named, r.status) ||
        !load_pattern(named, r) || !load_window(named, r))
      return false;
    if (r.kind == Kind::kSignature && r.pattern.empty() && r.methods.empty() && r.status.empty() &&
        !r.malformed)
      return reader_.fail(t.raw().source(), "missing", named.key("pattern"),
                          "a signature needs a pattern, a method, a status or malformed");
    if (r.pattern.empty() && t.has("field"))
      return named.fail("field", "value",
                        "a field without a pattern matches nothing; add a pattern or remove the "
                        "field");
    if (!r.pattern.empty() && r.fields.empty()) r.fields.push_back(Field::kTarget);
    return true;
  }

  bool load_override(TomlTable& t) {
    std::string id;
    if (!t.only_keys({"id", "enabled", "action", "severity", "count", "window_s"}) ||
        !load_id(t, id))
      return false;
    const int64_t at = set_.find(id);
    if (at < 0)
      return t.fail("id", "unknown_rule",
                    "no rule " + quote(id) + " is defined before this override");
    Rule& r = set_.rules[static_cast<size_t>(at)];
    TomlTable named(reader_, t.raw(), id);
    // Work on a copy so that a failure leaves the rule as it was.
    Rule changed = r;
    if (!named.optional("enabled", changed.enabled) || !load_action(named, changed.action) ||
        !load_severity(named, changed.severity) || !load_window(named, changed))
      return false;
    r = std::move(changed);
    return true;
  }

  bool load_id(TomlTable& t, std::string& id) {
    if (!t.required("id", "needs an id", id, kMaxIdBytes)) return false;
    if (id.empty() || id.find_first_not_of(kIdChars) != std::string::npos)
      return t.fail("id", "value",
                    "must be 1-64 letters, digits, '.', '_' or '-', not " + quote(id));
    return true;
  }

  bool load_action(TomlTable& t, Action& action) {
    return t.choice("action", action, {{"ban", Action::kBan}, {"log", Action::kLog}});
  }

  bool load_severity(TomlTable& t, int& severity) {
    return t.number_or_name("severity", severity, 1, 10, {kInfo, kNotice, kWarning, kCritical});
  }

  bool load_tags(TomlTable& t, std::vector<std::string>& tags) {
    if (!t.optional("tags", tags, {.max_items = kMaxTags, .lone_string = true})) return false;
    for (const auto& tag : tags)
      if (tag.empty() || tag.size() > kMaxTagBytes ||
          tag.find_first_not_of(kIdChars) != std::string::npos)
        return t.fail("tags", "value",
                      "a tag must be 1-64 letters, digits, '.', '_' or '-', not " + quote(tag));
    return true;
  }

  bool load_fields(TomlTable& t, std::vector<Field>& fields) {
    std::vector<std::string> names;
    if (!t.optional("field", names, {.max_items = kMaxListItems, .lone_string = true}))
      return false;
    for (const auto& name : names) {
      const auto f = parse_field(name);
      if (!f)
        return t.fail("field", "value",
                      "fields are \"target\", \"request\", \"user_agent\" and \"referer\", not " +
                          quote(name));
      if (std::find(fields.begin(), fields.end(), *f) == fields.end()) fields.push_back(*f);
    }
    if (t.has("field") && fields.empty()) return t.fail("field", "value", "must name a field");
    return true;
  }

  bool load_methods(TomlTable& t, std::vector<std::string>& methods) {
    if (!t.optional("method", methods, {.max_items = kMaxListItems, .lone_string = true}))
      return false;
    for (const auto& m : methods)
      if (m.empty() || m.size() > 16 ||
          m.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
        return t.fail("method", "value",
                      "a method is 1-16 upper-case letters (\"POST\"), not " + quote(m));
    return true;
  }

  // One status or a list of them; each a code (404, "404") or a class ("4xx").
  bool load_status(TomlTable& t, std::vector<StatusRange>& out) {
    const auto* node = t.get("status");
    if (!node) return true;
    auto one = [&](const toml::node& item) {
      std::optional<StatusRange> range;
      if (const auto* i = item.as_integer())
        range = parse_status(std::to_string(std::clamp<int64_t>(i->get(), 0, 1000)));
      else if (const auto* s = item.as_string())
        range = parse_status(s->get());
      if (!range)
        return reader_.fail(item.source(), "value", t.key("status"),
                            "a status is a code 100-599 (404) or a class (\"4xx\")");
      out.push_back(*range);
      return true;
    };
    if (const auto* arr = node->as_array()) {
      if (arr->size() > kMaxListItems)
        return t.fail("status", "limit", fmt::format("more than {} items", kMaxListItems));
      for (const auto& item : *arr)
        if (!one(item)) return false;
      return true;
    }
    return one(*node);
  }

  bool load_pattern(TomlTable& t, Rule& r) {
    const auto* node = t.get("pattern");
    if (!node) return true;
    if (!t.optional("pattern", r.pattern, kMaxPatternBytes)) return false;
    r.pattern_line = node->source().begin.line;
    r.pattern_column = node->source().begin.column;
    if (r.pattern.empty() || r.pattern.find('\0') != std::string::npos)
      return t.fail("pattern", "value",
                    r.pattern.empty() ? "must not be empty"
                                      : "contains a NUL byte; write \\x00 to match one");
    if (std::string problem = Matcher::check_pattern(r.pattern, r.case_sensitive); !problem.empty())
      return t.fail("pattern", "pattern", std::move(problem));
    return true;
  }

  // count and window_s: both on a threshold rule, neither on a signature.
  bool load_window(TomlTable& t, Rule& r) {
    if (!t.optional("count", r.count, 1u, static_cast<uint32_t>(kMaxCount)) ||
        !t.optional("window_s", r.window_s, 1u, static_cast<uint32_t>(kMaxWindowS)))
      return false;
    for (const char* name : {"count", "window_s"}) {
      if (r.kind == Kind::kSignature && t.has(name))
        return t.fail(name, "value", "only threshold rules have a count and a window");
      if (r.kind == Kind::kThreshold && (name[0] == 'c' ? r.count : r.window_s) == 0)
        return reader_.fail(t.raw().source(), "missing", t.key(name),
                            "a threshold needs a count and a window_s (count requests in "
                            "window_s seconds)");
    }
    return true;
  }

  TomlReader& reader_;
  RuleSet& set_;
};

}  // namespace

std::string_view field_name(Field field) {
  switch (field) {
    case Field::kTarget:
      return "target";
    case Field::kRequest:
      return "request";
    case Field::kUserAgent:
      return "user_agent";
    case Field::kReferer:
      return "referer";
  }
  return "?";
}

std::string_view kind_name(Kind kind) {
  return kind == Kind::kThreshold ? "threshold" : "signature";
}

std::string_view action_name(Action action) { return action == Action::kBan ? "ban" : "log"; }

bool Rule::method_allowed(std::string_view method) const {
  return methods.empty() || std::find(methods.begin(), methods.end(), method) != methods.end();
}

bool Rule::status_allowed(int code) const {
  return status.empty() || std::any_of(status.begin(), status.end(), [&](const StatusRange& s) {
           return code >= s.lo && code <= s.hi;
         });
}

size_t RuleSet::enabled_count() const {
  return static_cast<size_t>(
      std::count_if(rules.begin(), rules.end(), [](const Rule& r) { return r.enabled; }));
}

int64_t RuleSet::find(std::string_view id) const {
  for (size_t i = 0; i < rules.size(); ++i)
    if (rules[i].id == id) return static_cast<int64_t>(i);
  return -1;
}

LoadResult<RuleSet> parse_rules(std::string_view text, std::string_view source_name, RuleSet base) {
  TomlReader reader("rules", std::string(source_name));
  if (!reader.parse(text, kMaxFileBytes) || !Loader(reader, base).load())
    return reader.unexpected();
  return base;
}

LoadResult<RuleSet> load_rules(const std::vector<std::string>& paths) {
  if (paths.size() > kMaxFiles)
    return tl::unexpected(
        LoadError{"", 0, 0, "rules.limit", "", fmt::format("more than {} rules files", kMaxFiles)});
  RuleSet set;
  for (const auto& path : paths) {
    auto text = read_toml_file("rules", path, kMaxFileBytes);
    if (!text) return tl::unexpected(std::move(text).error());
    auto next = parse_rules(*text, path, std::move(set));
    if (!next) return next;
    set = std::move(*next);
  }
  return set;
}

Result<std::vector<std::string>> rule_files_in(const std::string& dir) {
  namespace sfs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  sfs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return files;
  for (; !ec && it != sfs::directory_iterator(); it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() == ".rules" && p.filename().string()[0] != '.') files.push_back(p.string());
    if (files.size() > kMaxFiles) return fail("list rules", dir, E2BIG, "too many rules files");
  }
  if (ec) return fail("list rules", dir, ec.value());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace mamori::rules
