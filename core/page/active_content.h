#pragma once
// A page's active content: what in an HTML page runs code, loads code or sends the
// visitor elsewhere (docs/pages.md). Parsed with gumbo (Debian's libgumbo), the HTML5
// parsing algorithm browsers use, so what is found here is what a browser would see,
// however the attacker wrote it (unclosed tags, odd case, attributes without quotes).
//
// Each Element has an identity (kind + value): a script's resolved URL, an inline
// script's SHA-256, a link's origin... Text, images and plain same-origin links are not
// active content: a new post changes none of it.
//
// Pages are the attacker's bytes: the input is capped (Limits), the walk is iterative
// (no recursion on the attacker's nesting) and every string kept is capped. Pure: no
// I/O, no clock, no threads; any thread may call it.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/page/url.h"

namespace mamori::page {

// What an element is (Element::kind).
namespace kind {
inline constexpr std::string_view kScript = "script";                 // <script src>
inline constexpr std::string_view kInlineScript = "inline-script";    // <script>text</script>
inline constexpr std::string_view kHandler = "event-handler";         // onerror="..." etc.
inline constexpr std::string_view kJavascriptUrl = "javascript-url";  // href="javascript:..."
inline constexpr std::string_view kIframe = "iframe";                 // <iframe src>, <frame src>
inline constexpr std::string_view kIframeSrcdoc = "iframe-srcdoc";    // <iframe srcdoc>
inline constexpr std::string_view kObject = "object";                 // <object data>
inline constexpr std::string_view kEmbed = "embed";                   // <embed src>
inline constexpr std::string_view kFormAction = "form-action";        // <form action>, formaction
inline constexpr std::string_view kMetaRefresh = "meta-refresh";      // <meta http-equiv=refresh>
inline constexpr std::string_view kBase = "base";                     // <base href>
inline constexpr std::string_view kStylesheet = "stylesheet";         // <link rel=stylesheet>
inline constexpr std::string_view kLink = "link";          // a link to another origin (origin only)
inline constexpr std::string_view kRedirect = "redirect";  // the response's Location (fetcher)
}  // namespace kind

// Element::origin of content written into the page itself (inline scripts, handlers,
// javascript: URLs, srcdoc): never matched by an allowlist.
inline constexpr std::string_view kInlineOrigin = "inline";

struct Element {
  std::string kind;     // kind::k*
  std::string value;    // a resolved URL, an origin, or "sha256:HEX" for inline code
  std::string origin;   // "https://host[:port]", "data:", kInlineOrigin...
  std::string snippet;  // inline code's first bytes, for people; not part of the identity

  bool same(const Element& o) const { return kind == o.kind && value == o.value; }
  bool operator<(const Element& o) const {
    return kind != o.kind ? kind < o.kind : value < o.value;
  }
};

struct Limits {
  size_t max_bytes = 2 << 20;  // the page: larger is refused (kTooLarge)
  // '<' in the page: more is refused. Bounds gumbo's work: its tree is freed recursively,
  // and its scope checks walk the stack of open elements, so deep nesting costs time
  // more than linearly (20,000 nested <div> parse in 0.7 s, 50,000 in 13 s here).
  size_t max_tags = 20'000;
  size_t max_elements = 2'000;    // active elements kept; past it `truncated` is set
  size_t max_value_bytes = 2048;  // a URL longer than this is cut (and marked "...")
  size_t snippet_bytes = 120;
};

struct ActiveContent {
  std::vector<Element> elements;  // sorted by (kind, value), each identity once
  bool truncated = false;         // max_elements reached: what came after is not seen
};

// Error codes (Error::detail starts with one): the policy when a limit is hit is to
// refuse the page, never to judge a part of it (an injection placed past the limit
// would be missed).
inline constexpr std::string_view kTooLarge = "page too large";

// The active content of `html`, served at `page_url` (absolute http(s) URL: relative
// URLs resolve against it, and its origin is the page's own).
Result<ActiveContent> extract(std::string_view html, std::string_view page_url,
                              const Limits& limits = {});

// Adds `e` to `content` keeping it sorted and unique (for the fetcher's redirect and
// for merging the fetches of several user agents); false when it was there already.
bool add_element(ActiveContent& content, Element e);

}  // namespace mamori::page
