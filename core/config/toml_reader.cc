#include "core/config/toml_reader.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/fs/admin_files.h"

namespace mamori::config {
namespace {

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

// "1 MiB" for whole mebibytes, else the bytes.
std::string size_text(size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} bytes", bytes);
}

// "\"a\", \"b\" or \"c\""
std::string alternatives(std::span<const std::string_view> names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += fmt::format("\"{}\"", names[i]);
  }
  return out;
}

}  // namespace

std::string LoadError::text() const {
  std::string where = escape(file);
  if (line) where += fmt::format(":{}:{}", line, column);
  if (!key.empty()) where += ": " + escape(key);
  return fmt::format("{}: {} [{}]", where, message, code);
}

Error LoadError::to_error() const {
  return Error{"load " + code.substr(0, code.find('.')), "", 0, text()};
}

LoadResult<std::string> read_toml_file(std::string_view domain, const std::string& path,
                                       size_t max_bytes) {
  auto text = fs::read_small_file(path, max_bytes);
  if (text) return std::move(*text);
  const Error& e = text.error();
  if (e.errnum == EFBIG)
    return tl::unexpected(LoadError{path, 0, 0, fmt::format("{}.limit", domain), "",
                                    "larger than " + size_text(max_bytes)});
  // The file is named by the error's place already; the cause is what is left to say.
  return tl::unexpected(LoadError{path, 0, 0, fmt::format("{}.io", domain), "",
                                  e.detail.empty() ? std::strerror(e.errnum) : e.detail});
}

std::string_view toml_type_name(const toml::node& node) {
  switch (node.type()) {
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

std::string_view closest_key(std::string_view key, std::span<const std::string_view> allowed) {
  std::string_view best;
  size_t best_distance = 3;  // a typo is at most two edits away
  for (const auto a : allowed) {
    const size_t d = edit_distance(key, a);
    if (d < best_distance) {
      best = a;
      best_distance = d;
    }
  }
  return best;
}

// --- TomlReader ---------------------------------------------------------------------

bool TomlReader::parse(std::string_view text, size_t max_bytes) {
  if (failed_) return false;
  if (text.size() > max_bytes) return fail({}, "limit", "", "larger than " + size_text(max_bytes));
  try {
    doc_ = toml::parse(text, file_);
  } catch (const toml::parse_error& e) {
    return fail(e.source(), "syntax", "", std::string(e.description()));
  }
  return true;
}

bool TomlReader::fail(const toml::source_region& where, std::string_view what, std::string key,
                      std::string message) {
  if (failed_) return false;
  failed_ = true;
  error_ = LoadError{
      file_,          where.begin.line,  where.begin.column, fmt::format("{}.{}", domain_, what),
      std::move(key), std::move(message)};
  return false;
}

// --- TomlTable ----------------------------------------------------------------------

std::string TomlTable::key(std::string_view name) const {
  if (path_.empty()) return std::string(name);
  return fmt::format("{}.{}", path_, name);
}

toml::source_region TomlTable::where(std::string_view name) const {
  const auto* node = get(name);
  return node ? node->source() : table_->source();
}

bool TomlTable::fail(std::string_view name, std::string_view what, std::string message) {
  return reader_->fail(where(name), what, key(name), std::move(message));
}

bool TomlTable::only_keys(std::initializer_list<std::string_view> allowed) {
  return only_keys(std::span<const std::string_view>(allowed.begin(), allowed.size()));
}

bool TomlTable::only_keys(std::span<const std::string_view> allowed) {
  if (reader_->failed()) return false;
  for (const auto& [k, v] : *table_) {
    if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
    const std::string_view hint = closest_key(k.str(), allowed);
    return reader_->fail(
        k.source(), "unknown_key", key(k.str()),
        "unknown key " + quote(k.str()) +
            (hint.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", hint)));
  }
  return true;
}

bool TomlTable::require(std::string_view name, std::string_view why) {
  if (reader_->failed()) return false;
  if (has(name)) return true;
  return reader_->fail(table_->source(), "missing", key(name), std::string(why));
}

bool TomlTable::optional(std::string_view name, std::string& out, size_t max_bytes) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  const auto* s = node->as_string();
  if (!s) return fail(name, "type", fmt::format("must be a string, not {}", toml_type_name(*node)));
  if (s->get().size() > max_bytes)
    return fail(name, "limit", fmt::format("longer than {} bytes", max_bytes));
  out = s->get();
  return true;
}

bool TomlTable::optional(std::string_view name, bool& out) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  const auto* b = node->as_boolean();
  if (!b)
    return fail(name, "type", fmt::format("must be true or false, not {}", toml_type_name(*node)));
  out = b->get();
  return true;
}

std::optional<int64_t> TomlTable::integer(std::string_view name, int64_t lo, int64_t hi, bool& ok) {
  ok = !reader_->failed();
  const auto* node = ok ? get(name) : nullptr;
  if (!node) return std::nullopt;
  const auto* i = node->as_integer();
  if (!i) {
    ok = fail(name, "type", fmt::format("must be an integer, not {}", toml_type_name(*node)));
    return std::nullopt;
  }
  if (i->get() < lo || i->get() > hi) {
    ok = fail(name, "value", fmt::format("must be between {} and {}", lo, hi));
    return std::nullopt;
  }
  return i->get();
}

bool TomlTable::optional(std::string_view name, std::vector<std::string>& out, ListLimits limits) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  const std::string expected = limits.lone_string ? "must be a string or an array of strings"
                                                  : "must be an array of strings";
  std::vector<std::string> items;
  if (const auto* s = node->as_string(); s && limits.lone_string) {
    items.push_back(s->get());
  } else if (const auto* arr = node->as_array()) {
    if (arr->size() > limits.max_items)
      return fail(name, "limit", fmt::format("more than {} items", limits.max_items));
    for (const auto& item : *arr) {
      const auto* str = item.as_string();
      if (!str) return reader_->fail(item.source(), "type", key(name), expected);
      items.push_back(str->get());
    }
  } else {
    return fail(name, "type", fmt::format("{}, not {}", expected, toml_type_name(*node)));
  }
  for (const auto& item : items)
    if (item.size() > limits.max_item_bytes)
      return fail(name, "limit",
                  fmt::format("an item is longer than {} bytes", limits.max_item_bytes));
  out = std::move(items);
  return true;
}

std::optional<std::string> TomlTable::choice_string(std::string_view name, bool& ok) {
  std::string s;
  ok = !reader_->failed() && optional(name, s);
  if (!ok || !has(name)) return std::nullopt;
  return s;
}

bool TomlTable::bad_choice(std::string_view name, const std::string& got,
                           std::span<const std::string_view> names) {
  return fail(name, "value", fmt::format("must be {}, not {}", alternatives(names), quote(got)));
}

bool TomlTable::one_of(std::string_view name, std::string& out,
                       std::initializer_list<std::string_view> names) {
  bool ok = true;
  auto got = choice_string(name, ok);
  if (!got) return ok;
  if (std::find(names.begin(), names.end(), *got) == names.end())
    return bad_choice(name, *got, std::span<const std::string_view>(names.begin(), names.size()));
  out = std::move(*got);
  return true;
}

bool TomlTable::number_or_name(std::string_view name, int& out, int lo, int hi,
                               Choices<int> names) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  if (const auto* i = node->as_integer(); i && i->get() >= lo && i->get() <= hi) {
    out = static_cast<int>(i->get());
    return true;
  }
  if (const auto* s = node->as_string()) {
    for (const auto& [text, value] : names) {
      if (text == s->get()) {
        out = value;
        return true;
      }
    }
  }
  std::string list;
  for (const auto& n : names) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", n.first);
  const bool right_type = node->is_integer() || node->is_string();
  return fail(name, right_type ? "value" : "type",
              fmt::format("must be {} or a number {}-{}", list, lo, hi));
}

bool TomlTable::table(std::string_view name, std::optional<TomlTable>& out) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  const auto* t = node->as_table();
  if (!t) return fail(name, "type", fmt::format("must be a table: [{}]", key(name)));
  out.emplace(*reader_, *t, key(name));
  return true;
}

bool TomlTable::tables(std::string_view name, std::vector<TomlTable>& out, size_t max_items) {
  if (reader_->failed()) return false;
  const auto* node = get(name);
  if (!node) return true;
  const auto* arr = node->as_array();
  if (!arr) return fail(name, "type", fmt::format("must be an array of tables: [[{}]]", key(name)));
  if (arr->size() > max_items)
    return fail(name, "limit", fmt::format("more than {} [[{}]] tables", max_items, key(name)));
  out.clear();
  for (size_t i = 0; i < arr->size(); ++i) {
    const std::string item_key = fmt::format("{}[{}]", key(name), i + 1);
    const auto* t = (*arr)[i].as_table();
    if (!t)
      return reader_->fail((*arr)[i].source(), "type", item_key,
                           fmt::format("must be a table: [[{}]]", key(name)));
    out.emplace_back(*reader_, *t, item_key);
  }
  return true;
}

}  // namespace mamori::config
