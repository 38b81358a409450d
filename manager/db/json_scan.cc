#include "manager/db/json_scan.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace mamori::manager {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr uint64_t kOnes = 0x0101010101010101;
constexpr uint64_t kHighs = 0x8080808080808080;

// The high bit of each byte of `w` that cannot go on a run of plain string characters:
// below 0x20, '"', '\\', or not ASCII. Borrows run towards the high bytes only, so a
// false mark can follow a true one but never precede it: the lowest mark is exact.
uint64_t stops(uint64_t w) {
  const uint64_t quote = w ^ (kOnes * '"');
  const uint64_t backslash = w ^ (kOnes * '\\');
  return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) |
          ((backslash - kOnes) & ~backslash) | w) &
         kHighs;
}

// Four hex digits, either case.
bool hex4(const char* p, uint32_t& value) {
  value = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = p[i];
    uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value << 4 | d;
  }
  return true;
}

// One well-formed UTF-8 sequence of two to four bytes at p (whose first byte is not
// ASCII), as RFC 3629 and nlohmann's lexer allow them: no overlong form, no surrogate,
// nothing above U+10FFFF. Moves p past it.
bool scan_utf8(const char*& p, const char* end) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(p[i]); };
  const unsigned lead = byte(0);
  size_t more = 0;
  unsigned low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    more = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    more = 2;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    more = 3;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return false;
  }
  if (static_cast<size_t>(end - p) <= more) return false;
  if (byte(1) < low || byte(1) > high) return false;
  for (size_t i = 2; i <= more; ++i)
    if ((byte(i) & 0xC0) != 0x80) return false;
  p += more + 1;
  return true;
}

// The decoded form of the checked string `raw` into out[0, cap): its length, or cap + 1
// as soon as it is longer than cap. Escapes only shorten a string, so cap = raw.size()
// always holds it.
size_t decode(std::string_view raw, char* out, size_t cap) {
  size_t n = 0;
  size_t i = 0;
  while (i < raw.size()) {
    if (raw[i] != '\\') {
      const size_t stop = std::min(raw.find('\\', i), raw.size());
      if (n + (stop - i) > cap) return cap + 1;
      std::memcpy(out + n, raw.data() + i, stop - i);
      n += stop - i;
      i = stop;
      continue;
    }
    uint32_t cp = 0;
    switch (raw[i + 1]) {
      case 'b':
        cp = '\b';
        break;
      case 'f':
        cp = '\f';
        break;
      case 'n':
        cp = '\n';
        break;
      case 'r':
        cp = '\r';
        break;
      case 't':
        cp = '\t';
        break;
      case 'u': {
        (void)hex4(raw.data() + i + 2, cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // checked: its low half follows
          uint32_t second = 0;
          (void)hex4(raw.data() + i + 8, second);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (second - 0xDC00);
          i += 6;
        }
        i += 4;
        break;
      }
      default:
        cp = static_cast<unsigned char>(raw[i + 1]);
        break;  // " \ /
    }
    i += 2;
    char bytes[4];
    size_t len = 0;
    if (cp < 0x80) {
      bytes[len++] = static_cast<char>(cp);
    } else if (cp < 0x800) {
      bytes[len++] = static_cast<char>(0xC0 | cp >> 6);
      bytes[len++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      bytes[len++] = static_cast<char>(0xE0 | cp >> 12);
      bytes[len++] = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      bytes[len++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      bytes[len++] = static_cast<char>(0xF0 | cp >> 18);
      bytes[len++] = static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      bytes[len++] = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      bytes[len++] = static_cast<char>(0x80 | (cp & 0x3F));
    }
    if (n + len > cap) return cap + 1;
    std::memcpy(out + n, bytes, len);
    n += len;
  }
  return n;
}

// 2^1024 - 2^970, the least real number a double rounds to infinity (half-way between
// DBL_MAX and 2^1024, and ties go to the even 2^1024): nlohmann converts a number with
// strtod, correctly rounded, and refuses the text when that gives infinity.
constexpr std::string_view kOverflow =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017"
    "977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273"
    "854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704"
    "342711559699508093042880177904174497792";
static_assert(kOverflow.size() == 309);

// An exponent this large already decides whether any number of the 4 MiB a message
// holds is a finite double, and keeps the arithmetic below far from overflowing.
constexpr int64_t kExponentCap = 1'000'000'000;

// Whether the number of integer digits `whole` (without leading zeros, or "0"), fraction
// digits `fraction` and exponent `exponent` converts to a finite double.
bool finite_double(std::string_view whole, std::string_view fraction, int64_t exponent) {
  // The value is 0.d1d2d3... x 10^magnitude, d1 its first significant digit: at least
  // 10^(magnitude - 1), less than 10^magnitude.
  int64_t magnitude = 0;
  if (whole != "0") {
    magnitude = static_cast<int64_t>(whole.size()) + exponent;
  } else {
    const size_t zeros = fraction.find_first_not_of('0');
    if (zeros == std::string_view::npos) return true;  // zero
    magnitude = exponent - static_cast<int64_t>(zeros);
    whole = {};
    fraction.remove_prefix(zeros);
  }
  if (magnitude <= 308) return true;   // below 10^308
  if (magnitude >= 310) return false;  // at least 10^309
  for (size_t k = 0; k < kOverflow.size(); ++k) {
    const char d = k < whole.size()                     ? whole[k]
                   : k - whole.size() < fraction.size() ? fraction[k - whole.size()]
                                                        : '0';
    if (d != kOverflow[k]) return d < kOverflow[k];
  }
  return false;  // the threshold itself, or above it in later digits
}

}  // namespace

bool JsonString::equals(std::string_view s) const {
  if (!escaped) return raw == s;
  assert(s.size() <= kMaxCompared);
  std::array<char, kMaxCompared> decoded;
  const size_t n = decode(raw, decoded.data(), s.size());
  return n == s.size() && std::memcmp(decoded.data(), s.data(), n) == 0;
}

void JsonString::decode_to(std::string& out) const {
  if (!escaped) {
    out.assign(raw);
    return;
  }
  out.resize(raw.size());
  out.resize(decode(raw, out.data(), raw.size()));
}

int64_t JsonNumber::as_int64() const {
  switch (kind) {
    case Kind::kUnsigned:
      return static_cast<int64_t>(magnitude);
    case Kind::kInteger:
      return static_cast<int64_t>(0 - magnitude);
    case Kind::kFloat:
      break;
  }
  return 0;
}

JsonScanner::JsonScanner(std::string_view text)
    : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {
  // A byte order mark is passed over at the very start only; a broken one is an error.
  if (!text.empty() && static_cast<unsigned char>(text[0]) == 0xEF) {
    if (text.size() >= 3 && static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF)
      p_ += 3;
    else
      fail();
  }
}

bool JsonScanner::fail() {
  failed_ = true;
  p_ = end_;
  return false;
}

void JsonScanner::skip_space() {
  while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
}

JsonScanner::Type JsonScanner::peek() {
  skip_space();
  if (p_ == end_) return Type::kNone;
  switch (*p_) {
    case '{':
      return Type::kObject;
    case '[':
      return Type::kArray;
    case '"':
      return Type::kString;
    case 't':
    case 'f':
    case 'n':
      return Type::kLiteral;
    default:
      return *p_ == '-' || is_digit(*p_) ? Type::kNumber : Type::kNone;
  }
}

bool JsonScanner::enter_object() { return enter('{'); }

bool JsonScanner::enter_array() { return enter('['); }

bool JsonScanner::enter(char bracket) {
  skip_space();
  if (p_ == end_ || *p_ != bracket) return fail();
  ++p_;
  note_depth(++depth_);
  first_ = true;
  return true;
}

bool JsonScanner::close(char bracket) {
  skip_space();
  if (p_ == end_) return fail();
  if (*p_ == bracket) {
    ++p_;
    --depth_;
    first_ = false;  // the container is a value read: a ',' comes before the next one
    return true;
  }
  if (!first_) {
    if (*p_ != ',') return fail();
    ++p_;
  }
  first_ = false;
  return false;
}

bool JsonScanner::next_member(JsonString& key) {
  if (close('}') || failed_) return false;
  return member_key(&key);
}

bool JsonScanner::next_element() { return !close(']') && !failed_; }

bool JsonScanner::member_key(JsonString* key) {
  skip_space();
  if (p_ == end_ || *p_ != '"') return fail();
  if (!scan_string(key)) return false;
  skip_space();
  if (p_ == end_ || *p_ != ':') return fail();
  ++p_;
  return true;
}

bool JsonScanner::string(JsonString& out) {
  skip_space();
  if (p_ == end_ || *p_ != '"') return fail();
  return scan_string(&out);
}

bool JsonScanner::number(JsonNumber& out) {
  skip_space();
  return scan_number(&out);
}

bool JsonScanner::scan_string(JsonString* out) {
  const char* p = p_ + 1;
  const char* const start = p;
  bool escaped = false;
  for (;;) {
    // Plain characters eight at a time; at the first other one, byte by byte.
    while (end_ - p >= 8) {
      uint64_t w = 0;
      std::memcpy(&w, p, sizeof w);
      if (const uint64_t t = stops(w); t != 0) {
        if constexpr (std::endian::native == std::endian::little) p += std::countr_zero(t) / 8;
        break;
      }
      p += 8;
    }
    if (p == end_) return fail();
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') break;
    if (c == '\\') {
      escaped = true;
      if (!scan_escape(p)) return fail();
    } else if (c < 0x20) {
      return fail();
    } else if (c < 0x80) {
      ++p;
    } else if (!scan_utf8(p, end_)) {
      return fail();
    }
  }
  if (out) *out = JsonString{std::string_view(start, static_cast<size_t>(p - start)), escaped};
  p_ = p + 1;
  return true;
}

bool JsonScanner::scan_escape(const char*& p) {
  if (end_ - p < 2) return false;
  switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      p += 2;
      return true;
    case 'u':
      break;
    default:
      return false;
  }
  uint32_t cp = 0;
  if (end_ - p < 6 || !hex4(p + 2, cp)) return false;
  p += 6;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low half alone
  if (cp >= 0xD800 && cp <= 0xDBFF) {              // a high half: its low half must follow
    uint32_t second = 0;
    if (end_ - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, second) || second < 0xDC00 ||
        second > 0xDFFF)
      return false;
    p += 6;
  }
  return true;
}

bool JsonScanner::scan_number(JsonNumber* out) {
  const char* p = p_;
  const bool minus = p != end_ && *p == '-';
  if (minus) ++p;
  const char* const whole = p;
  if (p == end_ || !is_digit(*p)) return fail();
  if (*p == '0') {
    ++p;  // no leading zeros: what follows is not part of the number
  } else {
    while (p != end_ && is_digit(*p)) ++p;
  }
  const std::string_view whole_digits(whole, static_cast<size_t>(p - whole));
  std::string_view fraction;
  bool is_float = false;
  if (p != end_ && *p == '.') {
    const char* const first = ++p;
    while (p != end_ && is_digit(*p)) ++p;
    if (p == first) return fail();
    fraction = std::string_view(first, static_cast<size_t>(p - first));
    is_float = true;
  }
  int64_t exponent = 0;
  if (p != end_ && (*p == 'e' || *p == 'E')) {
    ++p;
    const bool negative = p != end_ && *p == '-';
    if (p != end_ && (*p == '-' || *p == '+')) ++p;
    const char* const first = p;
    for (; p != end_ && is_digit(*p); ++p)
      exponent = std::min(exponent * 10 + (*p - '0'), kExponentCap);
    if (p == first) return fail();
    if (negative) exponent = -exponent;
    is_float = true;
  }
  JsonNumber n;
  if (!is_float && whole_digits.size() <= 20) {
    uint64_t v = 0;
    bool fits = true;
    for (const char c : whole_digits) {
      const auto d = static_cast<uint64_t>(c - '0');
      if (v > (UINT64_MAX - d) / 10) {
        fits = false;
        break;
      }
      v = v * 10 + d;
    }
    if (fits && (!minus || v <= uint64_t{1} << 63)) {
      n.kind = minus ? JsonNumber::Kind::kInteger : JsonNumber::Kind::kUnsigned;
      n.magnitude = v;
    }
  }
  // Not an integer, or one too large for its type: a double, as nlohmann falls back to.
  if (!n.is_integer() && !finite_double(whole_digits, fraction, exponent)) return fail();
  p_ = p;
  if (out) *out = n;
  return true;
}

bool JsonScanner::scan_literal() {
  const std::string_view rest(p_, static_cast<size_t>(end_ - p_));
  for (const std::string_view literal : {"true", "false", "null"}) {
    if (rest.starts_with(literal)) {
      p_ += literal.size();
      return true;
    }
  }
  return fail();
}

void JsonScanner::set_level(size_t depth, bool array) {
  uint64_t* word = nullptr;
  if (depth < levels_.size() * 64) {
    word = &levels_[depth / 64];
  } else {
    const size_t i = depth / 64 - levels_.size();
    if (i >= deep_levels_.size()) deep_levels_.resize(i + 1);
    word = &deep_levels_[i];
  }
  const uint64_t bit = uint64_t{1} << (depth % 64);
  *word = array ? *word | bit : *word & ~bit;
}

bool JsonScanner::level_is_array(size_t depth) const {
  const uint64_t word =
      depth < levels_.size() * 64 ? levels_[depth / 64] : deep_levels_[depth / 64 - levels_.size()];
  return (word >> (depth % 64) & 1) != 0;
}

bool JsonScanner::skip() {
  size_t depth = 0;  // the containers this call has opened and not closed
  for (;;) {
    // A value.
    skip_space();
    if (p_ == end_) return fail();
    switch (*p_) {
      case '{':
      case '[': {
        const bool array = *p_++ == '[';
        skip_space();
        if (p_ != end_ && *p_ == (array ? ']' : '}')) {  // empty: a value read
          ++p_;
          note_depth(depth_ + depth + 1);
          break;
        }
        set_level(depth++, array);
        note_depth(depth_ + depth);
        if (!array && !member_key(nullptr)) return false;
        continue;
      }
      case '"':
        if (!scan_string(nullptr)) return false;
        break;
      case 't':
      case 'f':
      case 'n':
        if (!scan_literal()) return false;
        break;
      default:
        if (!scan_number(nullptr)) return false;
        break;
    }
    // After a value: close the containers that end here, then on to the next value.
    for (;;) {
      if (depth == 0) return true;
      skip_space();
      if (p_ == end_) return fail();
      const char c = *p_++;
      const bool array = level_is_array(depth - 1);
      if (c == ',') {
        if (!array && !member_key(nullptr)) return false;
        break;
      }
      if (c != (array ? ']' : '}')) return fail();
      --depth;
    }
  }
}

bool JsonScanner::at_end() {
  skip_space();
  // nlohmann's lexer takes a NUL byte where a token would start for the end of the input
  // (what follows it is never read).
  return !failed_ && (p_ == end_ || *p_ == '\0');
}

bool is_json(std::string_view text) {
  JsonScanner s(text);
  return s.skip() && s.at_end();
}

}  // namespace mamori::manager
