#include "core/event/schema.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "core/event/origin.h"
#include "core/proto/actions.h"

namespace mamori::event {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

constexpr std::string_view kTypes[] = {
    "keyword", "wildcard", "match_only_text", "text", "date", "long", "boolean", "ip", "flattened"};

// "2026-12-04T16:15:15.123456Z": what iso_time() writes (ECS accepts more; mamori writes this).
bool is_iso_time(std::string_view s) {
  if (s.size() != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[26] != 'Z')
    return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25})
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// Empty when `v` is a value of `type`; else what it should have been.
std::string type_problem(const nlohmann::json& v, std::string_view type) {
  if (type == "long") return v.is_number_integer() ? "" : "an integer";
  if (type == "boolean") return v.is_boolean() ? "" : "true or false";
  if (type == "flattened") return v.is_object() ? "" : "an object";
  if (!v.is_string()) return "a string";
  if (type == "date" && !is_iso_time(v.get_ref<const std::string&>()))
    return "a UTC time as YYYY-MM-DDTHH:MM:SS.ffffffZ";
  if (type == "ip" && !is_ip(v.get<std::string>())) return "an IPv4 or IPv6 address";
  return "";
}

std::string json_kind(const nlohmann::json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

}  // namespace

Result<Schema> Schema::parse(std::string_view tsv) {
  Schema s;
  size_t line_no = 0;
  bool header = false;
  for (auto line : split(tsv, '\n')) {
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto cols = split(line, '\t');
    auto bad = [&](std::string what) {
      return fail("ecs fields", fmt::format("line {}", line_no), EINVAL, std::move(what));
    };
    if (cols.size() != 6) return bad(fmt::format("{} columns, expected 6", cols.size()));
    if (!header) {  // the column names
      header = true;
      continue;
    }
    FieldSpec f;
    f.name = std::string(cols[0]);
    f.type = std::string(cols[1]);
    if (std::find(std::begin(kTypes), std::end(kTypes), f.type) == std::end(kTypes))
      return bad("unknown type " + f.type);
    if (cols[2] != "yes" && cols[2] != "no") return bad("array must be yes or no");
    f.array = cols[2] == "yes";
    f.level = std::string(cols[3]);
    if (f.level != "core" && f.level != "extended" && f.level != "custom")
      return bad("level must be core, extended or custom");
    if ((f.level == "custom") != f.name.starts_with("mamori."))
      return bad(f.name + ": mamori.* fields, and only they, are custom");
    if (cols[4] != "yes" && cols[4] != "no") return bad("required must be yes or no");
    f.required = cols[4] == "yes";
    f.description = std::string(cols[5]);
    const std::string name = f.name;
    if (!s.fields_.emplace(name, std::move(f)).second) return bad(name + " is listed twice");
  }
  return s;
}

const Schema& Schema::builtin() {
  static const Schema kSchema = [] {
    auto s = parse(builtin_text());
    if (!s) std::abort();  // a build input: schema_test parses it
    return std::move(*s);
  }();
  return kSchema;
}

void Schema::walk(const nlohmann::json& node, const std::string& prefix,
                  std::vector<std::string>& problems) const {
  for (const auto& [key, value] : node.items()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    auto it = fields_.find(name);
    if (it == fields_.end()) {
      if (value.is_object() && !value.empty()) {
        walk(value, name, problems);
        continue;
      }
      problems.push_back(fmt::format("{}: not a listed field (docs/formats/ecs-fields.tsv)", name));
      continue;
    }
    const FieldSpec& f = it->second;
    if (f.array) {
      if (!value.is_array()) {
        problems.push_back(fmt::format("{}: {} is an array of {}, not {}", name, f.type, f.type,
                                       json_kind(value)));
        continue;
      }
      for (const auto& v : value)
        if (auto want = type_problem(v, f.type); !want.empty())
          problems.push_back(fmt::format("{}: each element must be {} ({}), not {}", name, want,
                                         f.type, json_kind(v)));
    } else if (auto want = type_problem(value, f.type); !want.empty()) {
      problems.push_back(
          fmt::format("{}: must be {} ({}), not {}", name, want, f.type, json_kind(value)));
    }
  }
}

std::vector<std::string> Schema::check(const nlohmann::json& event) const {
  std::vector<std::string> problems;
  if (!event.is_object()) return {"not a JSON object"};
  walk(event, "", problems);
  const auto get = [&](std::string_view dotted) -> const nlohmann::json* {
    const nlohmann::json* node = &event;
    for (auto part : split(dotted, '.')) {
      if (!node->is_object()) return nullptr;
      auto it = node->find(std::string(part));
      if (it == node->end()) return nullptr;
      node = &*it;
    }
    return node;
  };
  for (const auto& [name, f] : fields_)
    if (f.required && !get(name)) problems.push_back(name + ": required, missing");
  const auto* action = get("event.action");
  const auto* dataset = get("event.dataset");
  if (action && action->is_string()) {
    const auto want = dataset_for(action->get<std::string>());
    if (want.empty()) {
      problems.push_back(
          fmt::format("event.action: {} is not a known action (core/event/origin.cc)",
                      action->get<std::string>()));
    } else if (dataset && dataset->is_string() &&
               !dataset_allowed(action->get<std::string>(), dataset->get<std::string>())) {
      problems.push_back(fmt::format("event.dataset: {} is not the dataset of {} ({})",
                                     dataset->get<std::string>(), action->get<std::string>(),
                                     want));
    }
  }
  return problems;
}

}  // namespace mamori::event
