#include "agent/logwatch/default_rules.h"

#include "core/config/toml_reader.h"

namespace mamori::logwatch {

config::LoadResult<rules::Matcher> load_matcher(const std::vector<std::string>& files,
                                                bool with_defaults) {
  return load_matcher_with(default_rules_text(), "default.rules (built in)", files, with_defaults);
}

config::LoadResult<rules::Matcher> load_matcher_with(std::string_view defaults_text,
                                                     std::string_view defaults_name,
                                                     const std::vector<std::string>& files,
                                                     bool with_defaults) {
  rules::RuleSet set;
  if (with_defaults) {
    auto defaults = rules::parse_rules(defaults_text, defaults_name);
    if (!defaults) return tl::unexpected(std::move(defaults).error());
    set = std::move(*defaults);
  }
  for (const auto& file : files) {
    auto text = config::read_toml_file("rules", file, rules::kMaxFileBytes);
    if (!text) return tl::unexpected(std::move(text).error());
    auto next = rules::parse_rules(*text, file, std::move(set));
    if (!next) return tl::unexpected(std::move(next).error());
    set = std::move(*next);
  }
  return rules::Matcher::compile(std::move(set));
}

}  // namespace mamori::logwatch
