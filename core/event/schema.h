#pragma once
// The list of fields mamori's events may carry, with their types
// (docs/formats/ecs-fields.tsv, compiled in), and a check of one event against it: every
// field listed, of its JSON type, the required ones present, event.action known and
// event.dataset the one of its emitting module (origin.h). `mamori events --check` and
// the tests run it over real event logs, so an unlisted field or a wrong type fails.
//
// Threads: a Schema is immutable; builtin() is safe from any thread.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/result.h"

namespace mamori::event {

struct FieldSpec {
  std::string name;  // dotted: "file.hash.sha256"
  std::string type;  // ECS type: keyword, long, date, boolean, ip, flattened, ...
  bool array = false;
  std::string level;  // core, extended, custom
  bool required = false;
  std::string description;
};

class Schema {
 public:
  // The TSV format of docs/formats/ecs-fields.tsv; errors name the line.
  static Result<Schema> parse(std::string_view tsv);
  // docs/formats/ecs-fields.tsv as compiled in.
  static const Schema& builtin();
  static std::string_view builtin_text();

  // What is wrong with one event (empty: nothing), one sentence each, naming the field.
  std::vector<std::string> check(const nlohmann::json& event) const;

  const std::map<std::string, FieldSpec, std::less<>>& fields() const { return fields_; }

 private:
  void walk(const nlohmann::json& node, const std::string& prefix,
            std::vector<std::string>& problems) const;
  std::map<std::string, FieldSpec, std::less<>> fields_;
};

}  // namespace mamori::event
