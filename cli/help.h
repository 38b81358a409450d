#pragma once
// Manual-page text for `mamori --help` and `mamori COMMAND --help`.

#include <string_view>

namespace mamori::cli {

// The page for `command` ("" for the overview); empty when there is none.
std::string_view help_text(std::string_view command);

}  // namespace mamori::cli
