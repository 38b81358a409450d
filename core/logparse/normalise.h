#pragma once
// The request target as rules see it. Attackers hide "../" and "union select" behind
// percent-encoding (twice, thrice), IIS %uXXXX escapes, overlong UTF-8, backslashes, case
// and redundant segments; normalise_target() undoes them all the way a lenient server
// might, so one signature matches every spelling. docs/formats/access-logs.md has the rules.
// Pure function of its input; no allocation once `out` has grown to the largest target.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mamori::logparse {

inline constexpr size_t kMaxNormalisedTarget = 8192;
inline constexpr int kMaxDecodeRounds = 3;

// What normalisation found on the way: evasion signals for rules.
struct TargetInfo {
  size_t query = std::string::npos;  // offset of the '?' in out; npos when there is no query
  uint8_t decode_rounds = 0;         // percent-decoding rounds that changed something (0..3)
  bool over_encoded = false;         // still encoded after kMaxDecodeRounds rounds
  bool traversal = false;            // a ".." segment in the path (resolved, never above the root)
  bool null_byte = false;            // a NUL byte, raw or encoded (kept visible in out as "%00")
  bool overlong_utf8 = false;        // a 2-byte overlong form of ASCII (%c0%af for '/') was folded
  bool truncated = false;            // the input or output was longer than max_size and was cut
};

// out = normalised path, then '?' and the normalised query when raw has one.
//   path:  percent- and %uXXXX-decoded until stable (at most 3 rounds), overlong UTF-8
//          folded to ASCII, ASCII lower-cased, '\' read as '/', "//" collapsed, "/./"
//          dropped, "/../" resolved without going above the root; '+' stays '+'.
//   query: decoded the same way with '+' read as a space in the first round (what the
//          application sees); lower-cased; slashes and dots left alone, so
//          "file=../../etc/passwd" stays visible.
// A NUL is never written: it appears as the three characters "%00". out never exceeds
// max_size bytes. `out` is cleared first; its capacity is reused.
TargetInfo normalise_target(std::string_view raw, std::string& out,
                            size_t max_size = kMaxNormalisedTarget);

}  // namespace mamori::logparse
