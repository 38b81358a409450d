#pragma once
// Manual-page text for `mamori --help` (the overview, its COMMANDS section made from the
// table of commands) and `mamori COMMAND --help` (the command's own page, kept in its
// file in cli/commands/).

#include <string>
#include <string_view>

namespace mamori::cli {

// The overview page.
std::string overview_text();
// The page for `command` ("" for the overview); empty when there is none.
std::string help_text(std::string_view command);

}  // namespace mamori::cli
