#include "core/logparse/normalise.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace mamori::logparse {
namespace {

// Bytes normalisation may change, per part: most targets have none and are copied as is.
constexpr uint8_t kPathWork = 1, kQueryWork = 2;
constexpr std::array<uint8_t, 256> kWork = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kPathWork | kQueryWork;
  for (int c : {int('%'), 0, 0xc0, 0xc1}) t[c] = kPathWork | kQueryWork;
  t['+'] = kQueryWork;
  t['\\'] = kPathWork;
  return t;
}();

// Nothing to decode, fold or resolve: no escape, upper case, '\\', "//", "/." or leading '.'.
bool path_is_clean(std::string_view p) {
  if (!p.empty() && p[0] == '.') return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (kWork[uint8_t(p[i])] & kPathWork) return false;
    if (p[i] == '/' && i + 1 < p.size() && (p[i + 1] == '/' || p[i + 1] == '.')) return false;
  }
  return true;
}

bool query_is_clean(std::string_view q) {
  for (char c : q)
    if (kWork[uint8_t(c)] & kQueryWork) return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX and %uXXXX at s[i] ('%'): the code point and the escape's length, or 0.
size_t escape_at(const char* s, size_t i, size_t end, uint32_t& cp) {
  if (i + 2 < end && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
    cp = uint32_t(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
    return 3;
  }
  if (i + 5 < end && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
    cp = 0;
    for (size_t k = i + 2; k < i + 6; ++k) {
      const int h = hex_value(s[k]);
      if (h < 0) return 0;
      cp = cp << 4 | uint32_t(h);
    }
    return 6;
  }
  return 0;
}

// Appends raw with each NUL written as "%00", so no NUL ever reaches a rule or a C string.
void append_visible(std::string& out, std::string_view raw, TargetInfo& info) {
  while (!raw.empty()) {
    const void* nul = std::memchr(raw.data(), '\0', raw.size());
    const size_t n = nul ? size_t(static_cast<const char*>(nul) - raw.data()) : raw.size();
    out.append(raw.data(), n);
    if (!nul) return;
    out.append("%00");
    info.null_byte = true;
    raw.remove_prefix(n + 1);
  }
}

// One round of decoding s[begin..end) in place (every escape is longer than what it
// decodes to). "%00" stays as it is: it is already the visible form of a NUL.
// Returns the new end; sets `changed` when anything was decoded.
size_t decode_once(char* s, size_t begin, size_t end, bool plus_is_space, bool& changed,
                   TargetInfo& info) {
  size_t w = begin;
  for (size_t r = begin; r < end;) {
    const char c = s[r];
    uint32_t cp;
    size_t len;
    if (c == '+' && plus_is_space) {
      s[w++] = ' ';
      ++r;
      changed = true;
    } else if (c != '%' || (len = escape_at(s, r, end, cp)) == 0) {
      s[w++] = c;
      ++r;
    } else if (cp == 0) {
      info.null_byte = true;
      std::memcpy(s + w, "%00", 3);
      w += 3;
      r += len;
      changed |= len != 3;
    } else {
      r += len;
      changed = true;
      if (len == 3 || cp < 0x80) {
        s[w++] = char(cp);  // %XX is a byte; %uXXXX a code point, written as UTF-8
      } else if (cp < 0x800) {
        s[w++] = char(0xc0 | cp >> 6);
        s[w++] = char(0x80 | (cp & 0x3f));
      } else {
        s[w++] = char(0xe0 | cp >> 12);
        s[w++] = char(0x80 | (cp >> 6 & 0x3f));
        s[w++] = char(0x80 | (cp & 0x3f));
      }
    }
  }
  return w;
}

bool still_encoded(const char* s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    uint32_t cp;
    if (s[i] == '%' && escape_at(s, i, end, cp) && cp != 0) return true;
  }
  return false;
}

// Decodes s[begin..) until nothing changes, at most kMaxDecodeRounds times; returns the end.
size_t decode(std::string& out, size_t begin, bool query, TargetInfo& info) {
  size_t end = out.size();
  const bool has_work = std::memchr(out.data() + begin, '%', end - begin) ||
                        (query && std::memchr(out.data() + begin, '+', end - begin));
  if (!has_work) return end;
  for (int round = 1; round <= kMaxDecodeRounds; ++round) {
    bool changed = false;
    end = decode_once(out.data(), begin, end, query && round == 1, changed, info);
    if (!changed) break;
    info.decode_rounds = std::max(info.decode_rounds, uint8_t(round));
    if (round == kMaxDecodeRounds && still_encoded(out.data(), begin, end))
      info.over_encoded = true;
  }
  return end;
}

// Lower-cases ASCII, folds 2-byte overlong forms of ASCII (C0/C1 xx) and, in the path,
// reads '\' as '/'. In place; returns the new end.
size_t fold(char* s, size_t begin, size_t end, bool path, TargetInfo& info) {
  size_t w = begin;
  for (size_t r = begin; r < end; ++r) {
    auto b = uint8_t(s[r]);
    if ((b == 0xc0 || b == 0xc1) && r + 1 < end && (uint8_t(s[r + 1]) & 0xc0) == 0x80 &&
        (b != 0xc0 || uint8_t(s[r + 1]) != 0x80)) {  // C0 80 (a NUL) is left alone
      b = uint8_t((b & 1) << 6 | (uint8_t(s[r + 1]) & 0x3f));
      info.overlong_utf8 = true;
      ++r;
    }
    if (b >= 'A' && b <= 'Z') b += 'a' - 'A';
    if (path && b == '\\') b = '/';
    s[w++] = char(b);
  }
  return w;
}

// "scheme://authority" at the start of an absolute-form target (a proxy probe): its
// length, which dot-segment removal leaves alone.
size_t authority_prefix(const char* s, size_t end) {
  if (end == 0 || !(s[0] >= 'a' && s[0] <= 'z')) return 0;
  size_t i = 1;
  while (i < end && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
                     s[i] == '.' || s[i] == '-'))
    ++i;
  if (end - i < 3 || std::memcmp(s + i, "://", 3) != 0) return 0;
  const void* slash = std::memchr(s + i + 3, '/', end - i - 3);
  return slash ? size_t(static_cast<const char*>(slash) - s) : end;
}

// RFC 3986 remove_dot_segments, plus collapsing empty segments. In place on s[0..end);
// writing never overtakes reading, since each segment written was preceded by a '/' read.
size_t resolve_segments(char* s, size_t end, TargetInfo& info) {
  const size_t root = authority_prefix(s, end);
  const bool absolute = root < end && s[root] == '/';
  size_t w = root;
  size_t r = root;
  bool trailing_slash = false;
  while (r < end) {
    if (s[r] == '/') {
      trailing_slash = true;
      ++r;
      continue;
    }
    const size_t start = r;
    while (r < end && s[r] != '/') ++r;
    const size_t len = r - start;
    if (len == 1 && s[start] == '.') {
      trailing_slash = true;
      continue;
    }
    if (len == 2 && s[start] == '.' && s[start + 1] == '.') {
      info.traversal = true;
      while (w > root && s[w - 1] != '/') --w;  // drop the last segment
      if (w > root) --w;                        // and its '/'
      trailing_slash = true;
      continue;
    }
    if (absolute || w > root) s[w++] = '/';
    std::memmove(s + w, s + start, len);
    w += len;
    trailing_slash = false;
  }
  if (trailing_slash && (absolute || w > root) && (w == root || s[w - 1] != '/')) s[w++] = '/';
  return w;
}

}  // namespace

TargetInfo normalise_target(std::string_view raw, std::string& out, size_t max_size) {
  TargetInfo info;
  out.clear();
  if (raw.size() > max_size) {
    raw = raw.substr(0, max_size);
    info.truncated = true;
  }
  const size_t q = raw.find('?');

  const std::string_view path = raw.substr(0, q);
  if (path_is_clean(path)) {
    out.append(path);
  } else {
    append_visible(out, path, info);
    size_t end = decode(out, 0, false, info);
    end = fold(out.data(), 0, end, true, info);
    out.resize(resolve_segments(out.data(), end, info));
  }
  if (q != std::string_view::npos) {
    info.query = out.size();
    out.push_back('?');
    const std::string_view query = raw.substr(q + 1);
    if (query_is_clean(query)) {
      out.append(query);
    } else {
      append_visible(out, query, info);
      const size_t end = decode(out, info.query + 1, true, info);
      out.resize(fold(out.data(), info.query + 1, end, false, info));
    }
  }
  if (out.size() > max_size) {
    out.resize(max_size);
    info.truncated = true;
    if (info.query >= max_size) info.query = std::string::npos;
  }
  return info;
}

}  // namespace mamori::logparse
