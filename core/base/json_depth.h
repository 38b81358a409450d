#pragma once
// How deep a JSON text nests, counted before it is parsed. nlohmann::json parses any depth
// without recursion, but copies a value and dump()s it recursively: one message nested a
// million levels deep (2 MB) overflows the stack of whoever copies or prints it. Every
// JSON that crosses a trust boundary (an agent's message, an API request, a control
// request) is refused past kMaxJsonDepth before it is parsed; nothing mamori exchanges
// nests deeper than a few levels.
//
// Pure function; any thread.

#include <cstddef>
#include <string_view>

namespace mamori {

inline constexpr size_t kMaxJsonDepth = 64;

// Whether no array or object of `text` lies deeper than `max_depth` levels (the top-level
// value is level 1). Brackets inside strings do not count; the text need not be valid
// JSON (the parser says what else is wrong with it).
bool json_depth_within(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace mamori
