#pragma once
// Reads a TOML file into typed values, reporting each problem as a LoadError a person and
// a script can act on: file:line:column, the dotted key, a stable code. mamori.toml
// (core/config/config.cc) and the rules files (core/rules/rules_file.cc) are read with it;
// so is any new file format, so that every format reports mistakes the same way.
//
//   TomlReader reader("config", "/etc/mamori/mamori.toml");
//   if (!reader.parse(text, kMaxBytes)) return reader.unexpected();
//   TomlTable top = reader.top();
//   std::optional<TomlTable> agent;
//   if (!top.only_keys({"state_dir", "agent"}) || !top.optional("state_dir", c.state_dir) ||
//       !top.table("agent", agent))
//     return reader.unexpected();
//   if (agent && !agent->optional("verify_interval", c.verify_s, 0u, 604800u)) ...
//
// Codes are "<domain>.<what>" with the domain given to the reader ("config", "rules"):
//   .syntax       not TOML (toml++'s message and place)
//   .limit        the text, a string or a list is larger than the caller allows
//   .unknown_key  a key the format does not have; the message suggests the closest one
//   .type         a value of the wrong TOML type ("must be an integer, not a string")
//   .value        a value of the right type out of range or not among the choices
//   .missing      a required key is absent (placed at its table)
//   .io           read_toml_file() could not read the file (line 0)
// Callers add codes of their own through fail() (rules.duplicate_id, ...).
//
// Errors are sticky: the first one is kept and every later call returns false without
// looking, so a loader may chain calls with && and return reader.unexpected() once.
// Optional getters leave `out` untouched when the key is absent: defaults live in the
// caller's struct. Nothing here throws (toml++'s exceptions stop at parse()).
//
// Threads: a TomlReader and its tables are one loader's scratch, used by one thread.
// A TomlTable refers into its reader: it must not outlive it.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "core/config/load_error.h"

namespace mamori::config {

inline constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

// Reads `path` for a loader of `domain`: a file that cannot be opened or is not a
// regular file is "<domain>.io", one larger than `max_bytes` "<domain>.limit".
LoadResult<std::string> read_toml_file(std::string_view domain, const std::string& path,
                                       size_t max_bytes);

// The name a value of a TOML type goes by in messages: "an integer", "a table", ...
std::string_view toml_type_name(const toml::node& node);

// The allowed key closest to `key` within an edit distance of 2 (a typo), or "".
std::string_view closest_key(std::string_view key, std::span<const std::string_view> allowed);

class TomlReader;

// What a list of strings may hold.
struct ListLimits {
  size_t max_items = kUnlimited;
  size_t max_item_bytes = kUnlimited;
  // A lone string stands for a list of one (`method = "POST"`).
  bool lone_string = false;
};

// One table of the document with its key path ("" for the top, "agent", "root[2]").
class TomlTable {
 public:
  template <class T>
  using Choices = std::initializer_list<std::pair<std::string_view, std::type_identity_t<T>>>;

  TomlTable(TomlReader& reader, const toml::table& table, std::string path)
      : reader_(&reader), table_(&table), path_(std::move(path)) {}

  const toml::table& raw() const { return *table_; }
  const std::string& path() const { return path_; }
  // The dotted key of `name` in this table: "root[2].mode".
  std::string key(std::string_view name) const;
  const toml::node* get(std::string_view name) const { return table_->get(name); }
  bool has(std::string_view name) const { return get(name) != nullptr; }
  // Where `name` is written, or where the table starts when it is absent.
  toml::source_region where(std::string_view name) const;

  // Refuses the first key not in `allowed` (.unknown_key, at the key).
  bool only_keys(std::initializer_list<std::string_view> allowed);
  bool only_keys(std::span<const std::string_view> allowed);
  // .missing, at the table, with `why` as the message ("every [[root]] needs a path").
  bool require(std::string_view name, std::string_view why);

  // Optional values: absent leaves `out` as it was. `max_bytes` limits a string (.limit).
  bool optional(std::string_view name, std::string& out, size_t max_bytes = kUnlimited);
  bool optional(std::string_view name, bool& out);
  template <std::integral T>
  requires(!std::same_as<T, bool>) bool optional(std::string_view name, T& out,
                                                 std::type_identity_t<T> lo,
                                                 std::type_identity_t<T> hi);
  bool optional(std::string_view name, std::vector<std::string>& out, ListLimits limits = {});
  // A string that must be one of `choices` ("must be \"a\", \"b\" or \"c\", not 'x'").
  template <class T>
  bool choice(std::string_view name, T& out, Choices<T> choices);
  // A string that must be one of `names`, kept as the string.
  bool one_of(std::string_view name, std::string& out,
              std::initializer_list<std::string_view> names);
  // An integer lo..hi, or one of the names standing for one ("warning" for 5).
  bool number_or_name(std::string_view name, int& out, int lo, int hi, Choices<int> names);

  // Required values: .missing with `why` when absent, else as the optional getter.
  template <class T, class... Args>
  bool required(std::string_view name, std::string_view why, T& out, Args&&... args) {
    return require(name, why) && optional(name, out, std::forward<Args>(args)...);
  }

  // [name]: `out` is left empty when absent; anything but a table is .type.
  bool table(std::string_view name, std::optional<TomlTable>& out);
  // [[name]]: its tables keyed "name[1]", "name[2]", ...; anything but an array of tables
  // is .type, more than `max_items` .limit.
  bool tables(std::string_view name, std::vector<TomlTable>& out, size_t max_items = kUnlimited);

  // Reports a problem with `name`'s value (at it, or at the table when absent) under
  // code "<domain>.<what>"; returns false. The first error wins.
  bool fail(std::string_view name, std::string_view what, std::string message);

 private:
  // The integer at `name` checked against [lo, hi]; nullopt when absent or failed.
  std::optional<int64_t> integer(std::string_view name, int64_t lo, int64_t hi, bool& ok);
  // The string at `name` for choice(): nullopt when absent or failed.
  std::optional<std::string> choice_string(std::string_view name, bool& ok);
  bool bad_choice(std::string_view name, const std::string& got,
                  std::span<const std::string_view> names);

  TomlReader* reader_;
  const toml::table* table_;
  std::string path_;
};

class TomlReader {
 public:
  // `domain` prefixes every code ("config" -> "config.type"); `file` names the source.
  TomlReader(std::string domain, std::string file)
      : domain_(std::move(domain)), file_(std::move(file)) {}
  TomlReader(const TomlReader&) = delete;  // tables point at it
  TomlReader& operator=(const TomlReader&) = delete;

  // Parses `text`: larger than `max_bytes` is .limit, invalid TOML .syntax.
  bool parse(std::string_view text, size_t max_bytes);
  // The document's top table (empty before parse()).
  TomlTable top() { return TomlTable(*this, doc_, ""); }

  // Records an error at `where` (a default region: no place) under "<domain>.<what>"
  // unless one is already recorded; returns false.
  bool fail(const toml::source_region& where, std::string_view what, std::string key,
            std::string message);
  bool failed() const { return failed_; }
  const LoadError& error() const { return error_; }
  // The recorded error, for `return reader.unexpected();` from a LoadResult function.
  tl::unexpected<LoadError> unexpected() const { return tl::unexpected(error_); }
  const std::string& domain() const { return domain_; }
  const std::string& file() const { return file_; }

 private:
  std::string domain_;
  std::string file_;
  toml::table doc_;
  LoadError error_;
  bool failed_ = false;
};

template <std::integral T>
requires(!std::same_as<T, bool>) bool TomlTable::optional(std::string_view name, T& out,
                                                          std::type_identity_t<T> lo,
                                                          std::type_identity_t<T> hi) {
  // TOML integers are 64-bit signed: an unsigned bound past INT64_MAX is INT64_MAX.
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const auto i64 = [&](std::type_identity_t<T> v) {
    if constexpr (std::is_unsigned_v<T>)
      return static_cast<int64_t>(std::min<uint64_t>(v, kMax));
    else
      return static_cast<int64_t>(v);
  };
  bool ok = true;
  const auto v = integer(name, i64(lo), i64(hi), ok);
  if (v) out = static_cast<T>(*v);
  return ok;
}

template <class T>
bool TomlTable::choice(std::string_view name, T& out, Choices<T> choices) {
  bool ok = true;
  const auto got = choice_string(name, ok);
  if (!got) return ok;
  for (const auto& [text, value] : choices) {
    if (text == *got) {
      out = value;
      return true;
    }
  }
  std::vector<std::string_view> names;
  for (const auto& c : choices) names.push_back(c.first);
  return bad_choice(name, *got, names);
}

}  // namespace mamori::config
