#pragma once
// The default access-log rules (etc/rules/default.rules), built into the binary.

#include <string_view>

#include "core/rules/matcher.h"

namespace mamori::logwatch {

std::string_view default_rules_text();

// The defaults (unless `with_defaults` is false) followed by `files` in order, compiled.
config::LoadResult<rules::Matcher> load_matcher(const std::vector<std::string>& files,
                                                bool with_defaults = true);

// The same for another built-in set: `defaults` (named `defaults_name` in errors), then
// `files`.
config::LoadResult<rules::Matcher> load_matcher_with(std::string_view defaults,
                                                     std::string_view defaults_name,
                                                     const std::vector<std::string>& files,
                                                     bool with_defaults);

}  // namespace mamori::logwatch
