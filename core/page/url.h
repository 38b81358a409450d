#pragma once
// URLs as a browser reads them, for the page monitor (docs/pages.md): resolving a
// reference against the page, a URL's origin, and the checks of [[page]]'s
// allow_origins and user_agents. No gumbo here: the config loader uses it.

#include <optional>
#include <string>
#include <string_view>

namespace mamori::page {

// "scheme://host[:port]" of an absolute URL, lower case, default port dropped, user
// info dropped; "scheme:" for URLs without an authority (data:, blob:); "" when `url`
// has no scheme. For http(s) any run of '/' and '\' after "scheme:" is skipped, as
// browsers do ("https:/\evil.example" is evil.example).
std::string origin_of(std::string_view url);

// `ref` resolved against the absolute `base` (scheme-relative, absolute-path, query,
// fragment and relative references; "." and ".." segments are kept as written). Tabs
// and newlines are removed and surrounding spaces trimmed first, and '\' is '/' under
// an http(s) base, as browsers do.
std::string resolve_url(std::string_view base, std::string_view ref);

// The lower-case scheme of `url`, or "" when it has none.
std::string scheme_of(std::string_view url);
// `ref` as a browser's URL parser takes it: tabs and newlines anywhere dropped, leading
// and trailing C0 controls and spaces trimmed.
std::string clean_url(std::string_view ref);
std::string_view trim_url_space(std::string_view s);
std::string ascii_lower(std::string_view s);

// [[page]] allow_origins: the text of the problem with one entry, "" when it is valid:
// "self", an origin ("https://cdn.example.com"), subdomains ("https://*.example.com")
// or a scheme alone ("data:").
std::string allow_origin_problem(std::string_view entry);

// [[page]] user_agents: the built-in user agents by name ("browser", "mobile",
// "googlebot", "bingbot"); nullopt for any other name (taken as a literal User-Agent).
std::optional<std::string_view> preset_user_agent(std::string_view name);
// The problem with a literal User-Agent ("" when fine): 1-512 printable ASCII bytes.
std::string user_agent_problem(std::string_view ua);

}  // namespace mamori::page
