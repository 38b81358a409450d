#include "agent/logwatch/default_rules.h"

#include "core/fs/admin_files.h"

namespace mamori::logwatch {

rules::RuleResult<rules::Matcher> load_matcher(const std::vector<std::string>& files,
                                               bool with_defaults) {
  rules::RuleSet set;
  if (with_defaults) {
    auto defaults = rules::parse_rules(default_rules_text(), "default.rules (built in)");
    if (!defaults) return tl::unexpected(std::move(defaults).error());
    set = std::move(*defaults);
  }
  for (const auto& file : files) {
    auto text = fs::read_small_file(file, rules::kMaxFileBytes);
    if (!text)
      return tl::unexpected(rules::RuleError{file, 0, 0, "rules.io", "", text.error().message()});
    auto next = rules::parse_rules(*text, file, std::move(set));
    if (!next) return tl::unexpected(std::move(next).error());
    set = std::move(*next);
  }
  return rules::Matcher::compile(std::move(set));
}

}  // namespace mamori::logwatch
