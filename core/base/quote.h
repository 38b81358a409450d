#pragma once
// File names come from attackers: they may hold newlines, escape sequences or invalid
// UTF-8. Everything printed for a human goes through quote() first.

#include <string>
#include <string_view>

namespace mamori {

// 'name' with control bytes, quotes, backslashes and invalid UTF-8 escaped (\n, \xNN).
std::string quote(std::string_view s);
// The same escaping without the surrounding quotes.
std::string escape(std::string_view s);
// Text shown whole on a terminal (a diff of an attacker's file): lines and tabs stay as
// they are, while everything a terminal would act on instead of showing is escaped: other
// C0 controls and DEL (\r, ESC...) and invalid UTF-8 bytes as \xNN, C1 controls and
// bidirectional overrides (which reorder what is shown) as \u{NNNN}. Backslashes stay.
std::string escape_for_terminal(std::string_view s);
// True when s is valid UTF-8 (JSON output needs to know).
bool is_valid_utf8(std::string_view s);

}  // namespace mamori
