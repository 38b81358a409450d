#include "core/page/url.h"

#include <algorithm>
#include <array>
#include <utility>

namespace mamori::page {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

// Browsers treat '\' as '/' and skip any run of slashes after "scheme:" for these.
bool special(std::string_view scheme) {
  return scheme == "http" || scheme == "https" || scheme == "ws" || scheme == "wss" ||
         scheme == "ftp";
}

std::string_view default_port(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return "80";
  if (scheme == "https" || scheme == "wss") return "443";
  if (scheme == "ftp") return "21";
  return {};
}

// Real browsers' and crawlers' strings: a cloaking script matches on these words.
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kUserAgents = {{
    {"browser",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36"},
    {"mobile",
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36"},
    {"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    {"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"},
}};

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim_url_space(std::string_view s) {
  while (!s.empty() && (is_space(s.front()) || static_cast<unsigned char>(s.front()) < 0x20))
    s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || static_cast<unsigned char>(s.back()) < 0x20))
    s.remove_suffix(1);
  return s;
}

std::string clean_url(std::string_view ref) {
  std::string out;
  for (char c : trim_url_space(ref))
    if (c != '\t' && c != '\n' && c != '\r') out.push_back(c);
  return out;
}

std::string scheme_of(std::string_view url) {
  if (url.empty() || !((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
    return {};
  for (size_t i = 1; i < url.size(); ++i) {
    const char c = url[i];
    if (c == ':') return ascii_lower(url.substr(0, i));
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '-' || c == '.'))
      return {};
  }
  return {};
}

std::string origin_of(std::string_view url) {
  const std::string scheme = scheme_of(url);
  if (scheme.empty()) return {};
  std::string_view rest = url.substr(scheme.size() + 1);
  if (special(scheme)) {
    while (!rest.empty() && (rest.front() == '/' || rest.front() == '\\')) rest.remove_prefix(1);
  } else if (rest.starts_with("//")) {
    rest.remove_prefix(2);
  } else {
    return scheme + ":";
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/\\?#"));
  if (!special(scheme)) authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  std::string host(authority), port;
  // The port follows the last ':' outside an IPv6 literal's brackets.
  const size_t bracket = host.rfind(']');
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    port = host.substr(colon + 1);
    host.resize(colon);
  }
  host = ascii_lower(host);
  std::string out = scheme + "://" + host;
  if (!port.empty() && port != default_port(scheme)) out += ":" + port;
  return out;
}

std::string resolve_url(std::string_view base, std::string_view ref_in) {
  std::string ref = clean_url(ref_in);
  const std::string base_scheme = scheme_of(base);
  std::string scheme = scheme_of(ref);
  // "https:evil.example/x" under an https page is relative in a browser, and
  // "https:/\evil.example" is the host evil.example: the special schemes' rules.
  if (!scheme.empty() && !(special(scheme) && scheme == base_scheme)) return ref;
  if (special(base_scheme)) {
    // '\' is '/' before the query, as browsers read it.
    const size_t end = std::min(ref.find('?'), ref.find('#'));
    for (size_t i = 0; i < ref.size() && i < end; ++i)
      if (ref[i] == '\\') ref[i] = '/';
  }
  if (!scheme.empty()) {
    std::string rest = ref.substr(scheme.size() + 1);
    if (rest.starts_with("/")) {
      size_t n = 0;
      while (n < rest.size() && rest[n] == '/') ++n;
      return scheme + "://" + rest.substr(n);
    }
    ref = rest;  // same scheme, no slash: relative
  }
  if (base_scheme.empty()) return ref;
  if (ref.starts_with("//")) return base_scheme + ":" + ref;
  // The base's parts: scheme://authority, path, query.
  std::string_view b = base;
  const size_t frag = b.find('#');
  if (frag != std::string_view::npos) b = b.substr(0, frag);
  const size_t auth_start = base_scheme.size() + 3;
  if (!b.substr(base_scheme.size()).starts_with("://")) return ref;
  const size_t path_start = std::min(b.find_first_of("/?", auth_start), b.size());
  const std::string_view prefix = b.substr(0, path_start);
  const std::string_view path_query = b.substr(path_start);
  const std::string_view path = path_query.substr(0, path_query.find('?'));
  if (ref.empty()) return std::string(b);
  if (ref.front() == '#') return std::string(b) + ref;
  if (ref.front() == '?') return std::string(prefix) + std::string(path) + ref;
  if (ref.front() == '/') return std::string(prefix) + ref;
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string_view::npos ? "/" : std::string(path.substr(0, slash + 1));
  return std::string(prefix) + dir + ref;
}

std::string allow_origin_problem(std::string_view entry) {
  if (entry == "self") return {};
  std::string e(entry);
  const size_t star = e.find("://*.");
  if (star != std::string::npos) e.replace(star + 3, 2, "wildcard.");
  const std::string origin = origin_of(e);
  if (origin.empty() || e.find('*') != std::string::npos)
    return "must be \"self\", an origin (\"https://cdn.example.com\"), \"https://*.example.com\" "
           "or a scheme (\"data:\")";
  if (origin != e && origin + "/" != e)
    return "must be an origin in lower case without a path, user or default port: \"" + origin +
           "\"";
  return {};
}

std::optional<std::string_view> preset_user_agent(std::string_view name) {
  for (const auto& [n, ua] : kUserAgents)
    if (n == name) return ua;
  return std::nullopt;
}

std::string user_agent_problem(std::string_view ua) {
  if (ua.empty() || ua.size() > 512 ||
      std::any_of(ua.begin(), ua.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
    return "must be \"browser\", \"mobile\", \"googlebot\", \"bingbot\" or a User-Agent of 1-512 "
           "printable ASCII characters";
  return {};
}

}  // namespace mamori::page
