#include "core/rules/rules_file.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/rules/matcher.h"

namespace mamori::rules {
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

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

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

std::optional<int> severity_number(std::string_view name) {
  if (name == "info") return 1;
  if (name == "notice") return 3;
  if (name == "warning") return 5;
  if (name == "critical") return 7;
  return std::nullopt;
}

class Loader {
 public:
  Loader(std::string_view source, RuleSet& set) : source_(source), set_(set) {}

  bool load(const toml::table& top) {
    if (!check_keys(top, {"rule", "override"}, "")) return false;
    const toml::array* rules = nullptr;
    const toml::array* overrides = nullptr;
    if (!get_tables(top, "rule", rules) || !get_tables(top, "override", overrides)) return false;
    if (rules) {
      for (size_t i = 0; i < rules->size(); ++i) {
        if (set_.rules.size() >= kMaxRules) {
          set((*rules)[i].source(), "rules.limit", fmt::format("rule[{}]", i + 1),
              fmt::format("more than {} rules", kMaxRules));
          return false;
        }
        Rule r;
        if (!load_rule(*(*rules)[i].as_table(), i + 1, r)) return false;
        set_.rules.push_back(std::move(r));
      }
    }
    if (overrides) {
      for (size_t i = 0; i < overrides->size(); ++i)
        if (!load_override(*(*overrides)[i].as_table(), i + 1)) return false;
    }
    return true;
  }

  RuleError& error() { return error_; }

 private:
  bool get_tables(const toml::table& top, std::string_view name, const toml::array*& out) {
    const auto* node = top.get(name);
    if (!node) return true;
    const auto* arr = node->as_array();
    const bool tables = arr && std::all_of(arr->begin(), arr->end(),
                                           [](const toml::node& n) { return n.is_table(); });
    if (!tables) {
      set(node->source(), "rules.type", std::string(name),
          fmt::format("must be an array of tables: [[{}]]", name));
      return false;
    }
    out = arr;
    return true;
  }

  bool load_rule(const toml::table& t, size_t index, Rule& r) {
    r.file = std::string(source_);
    r.line = t.source().begin.line;
    r.column = t.source().begin.column;
    std::string key = fmt::format("rule[{}]", index);
    if (!check_keys(t,
                    {"id", "kind", "description", "tags", "field", "pattern", "case_sensitive",
                     "method", "status", "action", "severity", "enabled", "count", "window_s"},
                    key + "."))
      return false;
    if (!load_id(t, key, r.id)) return false;
    if (const int64_t at = set_.find(r.id); at >= 0) {
      const Rule& first = set_.rules[static_cast<size_t>(at)];
      set(t.get("id")->source(), "rules.duplicate_id", r.id + ".id",
          fmt::format("rule {} is already defined at {}:{}{}", quote(r.id), first.file, first.line,
                      first.file == source_ ? "" : "; change it with [[override]]"));
      return false;
    }
    key = r.id;

    std::string kind = "signature";
    if (!get_string(t, "kind", key + ".kind", kind, 16)) return false;
    if (kind == "threshold")
      r.kind = Kind::kThreshold;
    else if (kind != "signature") {
      set(t.get("kind")->source(), "rules.value", key + ".kind",
          "must be \"signature\" or \"threshold\", not " + quote(kind));
      return false;
    }
    if (!t.get("action")) {
      set(t.source(), "rules.missing", key + ".action",
          "every rule needs an action: \"ban\" or \"log\"");
      return false;
    }
    if (!load_action(t, key, r.action) || !load_severity(t, key, r.severity) ||
        !get_bool(t, "enabled", key + ".enabled", r.enabled) ||
        !get_bool(t, "case_sensitive", key + ".case_sensitive", r.case_sensitive) ||
        !get_string(t, "description", key + ".description", r.description, kMaxDescriptionBytes) ||
        !load_tags(t, key, r.tags) || !load_fields(t, key, r.fields) ||
        !load_methods(t, key, r.methods) || !load_status(t, key, r.status) ||
        !load_pattern(t, key, r) || !load_window(t, key, r))
      return false;
    if (r.kind == Kind::kSignature && r.pattern.empty() && r.methods.empty() && r.status.empty()) {
      set(t.source(), "rules.missing", key + ".pattern",
          "a signature needs a pattern, a method or a status");
      return false;
    }
    if (r.pattern.empty() && t.get("field")) {
      set(t.get("field")->source(), "rules.value", key + ".field",
          "a field without a pattern matches nothing; add a pattern or remove the field");
      return false;
    }
    if (!r.pattern.empty() && r.fields.empty()) r.fields.push_back(Field::kTarget);
    return true;
  }

  bool load_override(const toml::table& t, size_t index) {
    std::string key = fmt::format("override[{}]", index);
    if (!check_keys(t, {"id", "enabled", "action", "severity", "count", "window_s"}, key + "."))
      return false;
    std::string id;
    if (!load_id(t, key, id)) return false;
    const int64_t at = set_.find(id);
    if (at < 0) {
      set(t.get("id")->source(), "rules.unknown_rule", key + ".id",
          "no rule " + quote(id) + " is defined before this override");
      return false;
    }
    Rule& r = set_.rules[static_cast<size_t>(at)];
    key = id;
    // Work on a copy so that a failure leaves the rule as it was.
    Rule changed = r;
    if (!get_bool(t, "enabled", key + ".enabled", changed.enabled) ||
        !load_action(t, key, changed.action) || !load_severity(t, key, changed.severity) ||
        !load_window(t, key, changed))
      return false;
    r = std::move(changed);
    return true;
  }

  bool load_id(const toml::table& t, const std::string& key, std::string& id) {
    if (!t.get("id")) {
      set(t.source(), "rules.missing", key + ".id", "needs an id");
      return false;
    }
    if (!get_string(t, "id", key + ".id", id, kMaxIdBytes)) return false;
    if (id.empty() || id.find_first_not_of(kIdChars) != std::string::npos) {
      set(t.get("id")->source(), "rules.value", key + ".id",
          "must be 1-64 letters, digits, '.', '_' or '-', not " + quote(id));
      return false;
    }
    return true;
  }

  bool load_action(const toml::table& t, const std::string& key, Action& action) {
    std::string name;
    if (!get_string(t, "action", key + ".action", name, 16)) return false;
    if (!t.get("action")) return true;
    if (name == "ban")
      action = Action::kBan;
    else if (name == "log")
      action = Action::kLog;
    else {
      set(t.get("action")->source(), "rules.value", key + ".action",
          "must be \"ban\" or \"log\", not " + quote(name));
      return false;
    }
    return true;
  }

  bool load_severity(const toml::table& t, const std::string& key, int& severity) {
    const auto* node = t.get("severity");
    if (!node) return true;
    if (const auto* i = node->as_integer(); i && i->get() >= 1 && i->get() <= 10) {
      severity = static_cast<int>(i->get());
    } else if (const auto* s = node->as_string(); s && severity_number(s->get())) {
      severity = *severity_number(s->get());
    } else {
      set(node->source(), node->is_integer() || node->is_string() ? "rules.value" : "rules.type",
          key + ".severity",
          "must be \"info\", \"notice\", \"warning\", \"critical\" or a number 1-10");
      return false;
    }
    return true;
  }

  bool load_tags(const toml::table& t, const std::string& key, std::vector<std::string>& tags) {
    if (!get_strings(t, "tags", key + ".tags", tags, kMaxTags)) return false;
    for (const auto& tag : tags) {
      if (tag.empty() || tag.size() > kMaxTagBytes ||
          tag.find_first_not_of(kIdChars) != std::string::npos) {
        set(t.get("tags")->source(), "rules.value", key + ".tags",
            "a tag must be 1-64 letters, digits, '.', '_' or '-', not " + quote(tag));
        return false;
      }
    }
    return true;
  }

  bool load_fields(const toml::table& t, const std::string& key, std::vector<Field>& fields) {
    std::vector<std::string> names;
    if (!get_strings(t, "field", key + ".field", names, kMaxListItems)) return false;
    for (const auto& name : names) {
      const auto f = parse_field(name);
      if (!f) {
        set(t.get("field")->source(), "rules.value", key + ".field",
            "fields are \"target\", \"request\", \"user_agent\" and \"referer\", not " +
                quote(name));
        return false;
      }
      if (std::find(fields.begin(), fields.end(), *f) == fields.end()) fields.push_back(*f);
    }
    if (t.get("field") && fields.empty()) {
      set(t.get("field")->source(), "rules.value", key + ".field", "must name a field");
      return false;
    }
    return true;
  }

  bool load_methods(const toml::table& t, const std::string& key,
                    std::vector<std::string>& methods) {
    if (!get_strings(t, "method", key + ".method", methods, kMaxListItems)) return false;
    for (const auto& m : methods) {
      if (m.empty() || m.size() > 16 ||
          m.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) {
        set(t.get("method")->source(), "rules.value", key + ".method",
            "a method is 1-16 upper-case letters (\"POST\"), not " + quote(m));
        return false;
      }
    }
    return true;
  }

  bool load_status(const toml::table& t, const std::string& key, std::vector<StatusRange>& out) {
    const auto* node = t.get("status");
    if (!node) return true;
    auto one = [&](const toml::node& item) {
      std::optional<StatusRange> range;
      if (const auto* i = item.as_integer())
        range = parse_status(std::to_string(std::clamp<int64_t>(i->get(), 0, 1000)));
      else if (const auto* s = item.as_string())
        range = parse_status(s->get());
      if (!range) {
        set(item.source(), "rules.value", key + ".status",
            "a status is a code 100-599 (404) or a class (\"4xx\")");
        return false;
      }
      out.push_back(*range);
      return true;
    };
    if (const auto* arr = node->as_array()) {
      if (arr->size() > kMaxListItems) {
        set(node->source(), "rules.limit", key + ".status",
            fmt::format("more than {} items", kMaxListItems));
        return false;
      }
      for (const auto& item : *arr)
        if (!one(item)) return false;
      return true;
    }
    return one(*node);
  }

  bool load_pattern(const toml::table& t, const std::string& key, Rule& r) {
    const auto* node = t.get("pattern");
    if (!node) return true;
    if (!get_string(t, "pattern", key + ".pattern", r.pattern, kMaxPatternBytes)) return false;
    r.pattern_line = node->source().begin.line;
    r.pattern_column = node->source().begin.column;
    if (r.pattern.empty() || r.pattern.find('\0') != std::string::npos) {
      set(node->source(), "rules.value", key + ".pattern",
          r.pattern.empty() ? "must not be empty"
                            : "contains a NUL byte; write \\x00 to match one");
      return false;
    }
    if (std::string problem = Matcher::check_pattern(r.pattern, r.case_sensitive);
        !problem.empty()) {
      set(node->source(), "rules.pattern", key + ".pattern", std::move(problem));
      return false;
    }
    return true;
  }

  // count and window_s: both on a threshold rule, neither on a signature.
  bool load_window(const toml::table& t, const std::string& key, Rule& r) {
    int64_t count = r.count, window = r.window_s;
    if (!get_int(t, "count", key + ".count", count, 1, kMaxCount) ||
        !get_int(t, "window_s", key + ".window_s", window, 1, kMaxWindowS))
      return false;
    for (const char* name : {"count", "window_s"}) {
      if (r.kind == Kind::kSignature && t.get(name)) {
        set(t.get(name)->source(), "rules.value", key + "." + name,
            "only threshold rules have a count and a window");
        return false;
      }
      if (r.kind == Kind::kThreshold && (name[0] == 'c' ? count : window) == 0) {
        set(t.source(), "rules.missing", key + "." + name,
            "a threshold needs a count and a window_s (count requests in window_s seconds)");
        return false;
      }
    }
    r.count = static_cast<uint32_t>(count);
    r.window_s = static_cast<uint32_t>(window);
    return true;
  }

  bool check_keys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                  const std::string& prefix) {
    for (const auto& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
      std::string hint;
      for (auto a : allowed)
        if (edit_distance(k.str(), a) <= 2) hint = fmt::format(" (did you mean '{}'?)", a);
      set(k.source(), "rules.unknown_key", prefix + escape(k.str()),
          "unknown key " + quote(k.str()) + hint);
      return false;
    }
    return true;
  }

  bool get_string(const toml::table& t, std::string_view name, const std::string& key,
                  std::string& out, size_t limit) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* s = node->as_string();
    if (!s) {
      set(node->source(), "rules.type", key,
          fmt::format("must be a string, not {}", type_name(*node)));
      return false;
    }
    if (s->get().size() > limit) {
      set(node->source(), "rules.limit", key, fmt::format("longer than {} bytes", limit));
      return false;
    }
    out = s->get();
    return true;
  }

  // A string or an array of strings.
  bool get_strings(const toml::table& t, std::string_view name, const std::string& key,
                   std::vector<std::string>& out, size_t limit) {
    const auto* node = t.get(name);
    if (!node) return true;
    if (const auto* s = node->as_string()) {
      out.assign(1, s->get());
      return true;
    }
    const auto* arr = node->as_array();
    if (!arr ||
        !std::all_of(arr->begin(), arr->end(), [](const toml::node& n) { return n.is_string(); })) {
      set(node->source(), "rules.type", key, "must be a string or an array of strings");
      return false;
    }
    if (arr->size() > limit) {
      set(node->source(), "rules.limit", key, fmt::format("more than {} items", limit));
      return false;
    }
    out.clear();
    for (const auto& item : *arr) out.push_back(item.as_string()->get());
    return true;
  }

  bool get_bool(const toml::table& t, std::string_view name, const std::string& key, bool& out) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* b = node->as_boolean();
    if (!b) {
      set(node->source(), "rules.type", key,
          fmt::format("must be true or false, not {}", type_name(*node)));
      return false;
    }
    out = b->get();
    return true;
  }

  bool get_int(const toml::table& t, std::string_view name, const std::string& key, int64_t& out,
               int64_t lo, int64_t hi) {
    const auto* node = t.get(name);
    if (!node) return true;
    const auto* i = node->as_integer();
    if (!i) {
      set(node->source(), "rules.type", key,
          fmt::format("must be an integer, not {}", type_name(*node)));
      return false;
    }
    if (i->get() < lo || i->get() > hi) {
      set(node->source(), "rules.value", key, fmt::format("must be between {} and {}", lo, hi));
      return false;
    }
    out = i->get();
    return true;
  }

  void set(const toml::source_region& where, std::string code, std::string key,
           std::string message) {
    error_ = RuleError{std::string(source_), where.begin.line, where.begin.column,
                       std::move(code),      std::move(key),   std::move(message)};
  }

  std::string_view source_;
  RuleSet& set_;
  RuleError error_;
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

std::string RuleError::text() const {
  std::string where = file;
  if (line) where += fmt::format(":{}:{}", line, column);
  if (!key.empty()) where += ": " + key;
  return fmt::format("{}: {} [{}]", where, message, code);
}

Error RuleError::to_error() const { return Error{"load rules", file, 0, text()}; }

RuleResult<RuleSet> parse_rules(std::string_view text, std::string_view source_name, RuleSet base) {
  if (text.size() > kMaxFileBytes)
    return tl::unexpected(RuleError{std::string(source_name), 0, 0, "rules.limit", "",
                                    fmt::format("larger than {} bytes", kMaxFileBytes)});
  toml::table top;
  try {
    top = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return tl::unexpected(RuleError{std::string(source_name), e.source().begin.line,
                                    e.source().begin.column, "rules.syntax", "",
                                    std::string(e.description())});
  }
  Loader loader(source_name, base);
  if (!loader.load(top)) return tl::unexpected(std::move(loader.error()));
  return base;
}

RuleResult<RuleSet> load_rules(const std::vector<std::string>& paths) {
  if (paths.size() > kMaxFiles)
    return tl::unexpected(
        RuleError{"", 0, 0, "rules.limit", "", fmt::format("more than {} rules files", kMaxFiles)});
  RuleSet set;
  for (const auto& path : paths) {
    auto text = fs::read_small_file(path, kMaxFileBytes);
    if (!text) {
      const bool big = text.error().errnum == EFBIG;
      return tl::unexpected(RuleError{
          path, 0, 0, big ? "rules.limit" : "rules.io", "",
          big ? fmt::format("larger than {} bytes", kMaxFileBytes) : text.error().message()});
    }
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
