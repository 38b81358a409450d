#pragma once
// A strict JSON reader that builds nothing: it walks one JSON text in place, checking it
// as it goes, and hands out keys and strings as views of the text, so a caller that wants
// a few fields of a large text pays an allocation only for those it keeps.
//
// It accepts exactly the texts nlohmann::json::parse accepts (fuzz/fuzz_channel.cc holds
// them to it): RFC 8259 with a UTF-8 byte order mark allowed at the very start; strings
// of well-formed UTF-8 without raw control characters, their escapes complete and their
// \u surrogates paired; numbers of the RFC's grammar, refused where nlohmann refuses them
// (a value beyond a double's range, 1e400, is an error); nesting of any depth, read
// without recursion; nothing but white space after the value, up to the end or a NUL
// byte (nlohmann's lexer takes a NUL where a token would start for the end of the input,
// and reads nothing after it). Numbers are typed as nlohmann types them: without a
// fraction or an exponent, an unsigned integer if it fits in uint64_t (no minus sign) or
// a signed one if it fits in int64_t (a minus sign), otherwise a float.
//
// The caller reads the text top down: peek() says what the next value is, and the caller
// takes it (enter_object(), string(), ...) or passes over it whole (skip()). The first
// error makes every later call fail (return false, or kNone), so a reading loop simply
// ends; ok() and at_end() tell afterwards whether the text was right.
//
// Threads: one scanner, one thread; the text must outlive it and the views it gives.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::manager {

// A string (or a key) of a checked text, as written between its quotes.
struct JsonString {
  std::string_view raw;  // escapes not decoded
  bool escaped = false;  // raw holds a backslash

  // Whether the decoded string is `s`: compared in place unless escaped. `s` is at most
  // kMaxCompared bytes (the names the caller looks for).
  static constexpr size_t kMaxCompared = 32;
  bool equals(std::string_view s) const;
  // The decoded string (UTF-8; \u0000 becomes a NUL byte), replacing what `out` held.
  void decode_to(std::string& out) const;
};

// A number's type and value as nlohmann::json reads it.
struct JsonNumber {
  enum class Kind { kUnsigned, kInteger, kFloat };
  Kind kind = Kind::kFloat;
  uint64_t magnitude = 0;  // kUnsigned: the value; kInteger: minus the value (2^63 fits)

  // An integer as nlohmann's get<int64_t>() converts it (an unsigned one above INT64_MAX
  // wraps); nothing for a float.
  bool is_integer() const { return kind != Kind::kFloat; }
  int64_t as_int64() const;
};

class JsonScanner {
 public:
  enum class Type { kObject, kArray, kString, kNumber, kLiteral, kNone };

  explicit JsonScanner(std::string_view text);
  JsonScanner(const JsonScanner&) = delete;
  JsonScanner& operator=(const JsonScanner&) = delete;

  // The type of the next value, from its first character (white space passed over);
  // kNone where no value can start, or after an error. Consumes nothing else.
  Type peek();

  // Takes the '{' of an object, then its members: next_member() reads a key and its ':'
  // (true) or the closing '}' (false); the caller then takes or skips the member's value.
  bool enter_object();
  bool next_member(JsonString& key);
  // The same for an array: next_element() is true before each value, false at the ']'.
  bool enter_array();
  bool next_element();

  bool string(JsonString& out);
  bool number(JsonNumber& out);
  // Any value, whole, checked (true, false and null too).
  bool skip();

  // No error so far, and nothing but white space after the value, up to the end or a NUL
  // byte (a whole text read, as nlohmann reads one).
  bool at_end();
  bool ok() const { return !failed_; }
  // The offset in the text of the next character to read: after peek(), the value's first
  // character; after a value, the character after it.
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  // How deep the arrays and objects read so far nest (the top-level one is 1), for a
  // caller that refuses what nests too deep to copy safely (core/base/json_depth.h).
  size_t max_depth() const { return max_depth_; }

 private:
  bool fail();
  void skip_space();
  bool scan_string(JsonString* out);
  bool scan_escape(const char*& p);
  bool scan_number(JsonNumber* out);
  bool scan_literal();
  bool member_key(JsonString* key);  // at a key: the key, white space and ':'
  bool enter(char bracket);          // '{' or '['
  // Inside a container opened by enter_*(): its closing `bracket` (true), or else the ','
  // before the next value, none before the first (false).
  bool close(char bracket);

  // Whether the containers skip() is inside are arrays (1) or objects (0), one bit a
  // level: the first 1024 levels in place, deeper ones (a text may nest millions deep)
  // in a vector grown as the depth needs.
  void set_level(size_t depth, bool array);
  bool level_is_array(size_t depth) const;

  const char* begin_;
  const char* p_;
  const char* end_;
  bool failed_ = false;
  bool first_ = false;  // just inside a '{' or '[': no ',' before the next member
  size_t depth_ = 0;    // the containers entered (enter_*) and not yet closed
  size_t max_depth_ = 0;
  void note_depth(size_t d) {
    if (d > max_depth_) max_depth_ = d;
  }
  std::array<uint64_t, 16> levels_{};
  std::vector<uint64_t> deep_levels_;
};

// Whether `text` is one JSON text, as nlohmann::json::accept(text) says.
bool is_json(std::string_view text);

}  // namespace mamori::manager
