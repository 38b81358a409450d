#include "core/page/active_content.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <gumbo.h>

#include "core/hash/sha256.h"
#include "core/page/url.h"

namespace mamori::page {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ascii_lower(a) == ascii_lower(b);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
std::string_view trim(std::string_view s) { return trim_url_space(s); }
std::string lowercase(std::string_view s) { return ascii_lower(s); }

// At most `max` bytes of `s`, never cutting a UTF-8 sequence (the record is JSON: a cut
// sequence would read back as U+FFFD, another identity).
std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// An over-long value keeps its identity: a prefix and the hash of the whole.
std::string cap(std::string value, size_t max) {
  constexpr size_t kTail = 8 + 64;  // "#sha256:" + hex
  if (value.size() <= max || max <= kTail) return value;
  const std::string tail = "#sha256:" + hash::sha256(value).hex();
  return std::string(utf8_prefix(value, max - kTail)) + tail;
}

std::string snippet(std::string_view code, size_t max) {
  code = trim(code);
  std::string out;
  for (char c : utf8_prefix(code, max)) out.push_back(is_space(c) ? ' ' : c);
  return out;
}

const std::vector<std::string_view> kScriptTypes = {"",
                                                    "module",
                                                    "importmap",
                                                    "speculationrules",
                                                    "text/javascript",
                                                    "application/javascript",
                                                    "text/ecmascript",
                                                    "application/ecmascript",
                                                    "application/x-javascript",
                                                    "text/x-javascript",
                                                    "text/jscript",
                                                    "text/livescript",
                                                    "text/javascript1.0",
                                                    "text/javascript1.1",
                                                    "text/javascript1.2",
                                                    "text/javascript1.3",
                                                    "text/javascript1.4",
                                                    "text/javascript1.5",
                                                    "text/x-ecmascript"};

bool executable_type(std::string_view type) {
  // "text/javascript; charset=utf-8" runs too.
  type = trim(type.substr(0, type.find(';')));
  return std::any_of(kScriptTypes.begin(), kScriptTypes.end(),
                     [&](std::string_view t) { return iequals(t, type); });
}

bool has_token(std::string_view list, std::string_view token) {
  size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && is_space(list[i])) ++i;
    size_t j = i;
    while (j < list.size() && !is_space(list[j])) ++j;
    if (j > i && iequals(list.substr(i, j - i), token)) return true;
    i = j;
  }
  return false;
}

class Walker {
 public:
  Walker(std::string_view page_url, const Limits& limits)
      : page_url_(page_url), page_origin_(origin_of(page_url)), limits_(limits) {}

  void element(const GumboElement& el) {
    const std::string tag = tag_name(el);
    for (unsigned i = 0; i < el.attributes.length; ++i) {
      const auto* a = static_cast<const GumboAttribute*>(el.attributes.data[i]);
      attribute(tag, a->name, a->value);
    }
    const auto attr = [&](const char* name) -> const char* {
      const GumboAttribute* a = gumbo_get_attribute(&el.attributes, name);
      return a ? a->value : nullptr;
    };
    if (tag == "script") {
      if (const char* src = attr("src"); src && *src) return url(kind::kScript, src, false);
      if (const char* href = attr("href"); href && *href)  // SVG's <script href>
        return url(kind::kScript, href, false);
      if (const char* type = attr("type"); type && !executable_type(type)) return;
      std::string text;
      for (unsigned i = 0; i < el.children.length; ++i) {
        const auto* c = static_cast<const GumboNode*>(el.children.data[i]);
        if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_WHITESPACE ||
            c->type == GUMBO_NODE_CDATA)
          text += c->v.text.text;
      }
      if (!trim(text).empty()) inline_code(kind::kInlineScript, trim(text), trim(text));
    } else if (tag == "iframe" || tag == "frame") {
      if (const char* src = attr("src"); src && *src) url(kind::kIframe, src, false);
      if (const char* doc = attr("srcdoc")) inline_code(kind::kIframeSrcdoc, doc, doc);
    } else if (tag == "object") {
      if (const char* data = attr("data"); data && *data) url(kind::kObject, data, false);
    } else if (tag == "embed") {
      if (const char* src = attr("src"); src && *src) url(kind::kEmbed, src, false);
    } else if (tag == "form") {
      if (const char* action = attr("action"); action && !trim(action).empty())
        url(kind::kFormAction, action, false);
    } else if (tag == "button" || tag == "input") {
      if (const char* action = attr("formaction"); action && !trim(action).empty())
        url(kind::kFormAction, action, false);
    } else if (tag == "meta") {
      const char* equiv = attr("http-equiv");
      const char* content = attr("content");
      if (equiv && content && iequals(trim(equiv), "refresh")) meta_refresh(content);
    } else if (tag == "base") {
      if (const char* href = attr("href"); href && !trim(href).empty())
        url(kind::kBase, href, false);
    } else if (tag == "link") {
      const char* href = attr("href");
      if (!href || trim(href).empty()) return;
      const char* rel = attr("rel");
      const char* as = attr("as");
      if (rel && has_token(rel, "stylesheet"))
        url(kind::kStylesheet, href, false);
      else if (rel && (has_token(rel, "modulepreload") ||
                       (has_token(rel, "preload") && as && iequals(trim(as), "script"))))
        url(kind::kScript, href, false);
      else
        url(kind::kLink, href, true);
    } else if (tag == "a" || tag == "area") {
      if (const char* href = attr("href"); href && !trim(href).empty())
        url(kind::kLink, href, true);
    }
  }

  ActiveContent take() { return std::move(out_); }

 private:
  static std::string tag_name(const GumboElement& el) {
    if (el.tag != GUMBO_TAG_UNKNOWN) return gumbo_normalized_tagname(el.tag);
    GumboStringPiece piece = el.original_tag;
    gumbo_tag_from_original_text(&piece);
    return lowercase(std::string_view(piece.data ? piece.data : "", piece.data ? piece.length : 0));
  }

  // Every attribute: event handlers, and javascript: URLs wherever a URL goes.
  void attribute(const std::string& tag, std::string_view name, std::string_view value) {
    if (name.size() > 2 && name.starts_with("on")) {
      const std::string code = std::string(name) + "=" + std::string(value);
      inline_code(kind::kHandler, "<" + tag + " " + code + ">", code);
      return;
    }
    if (name == "href" || name == "src" || name == "action" || name == "formaction" ||
        name == "data" || name == "xlink:href") {
      const std::string u = clean_url(value);
      if (scheme_of(u) == "javascript") inline_code(kind::kJavascriptUrl, u, u);
    }
  }

  // `what` is hashed; `shown` is what people see of it.
  void inline_code(std::string_view k, std::string_view what, std::string_view shown) {
    add({std::string(k), "sha256:" + hash::sha256(what).hex(), std::string(kInlineOrigin),
         snippet(shown, limits_.snippet_bytes)});
  }

  // A URL-valued element; with `origin_only` (links), only another http(s) origin counts
  // and the origin is the value (a new post's links to a known site are no change).
  void url(std::string_view k, std::string_view ref, bool origin_only) {
    const std::string resolved = resolve_url(page_url_, ref);
    const std::string scheme = scheme_of(resolved);
    if (scheme == "javascript") return;  // attribute() took it
    std::string origin = cap(origin_of(resolved), limits_.max_value_bytes);
    if (origin_only) {
      if ((scheme != "http" && scheme != "https") || origin == page_origin_) return;
      add({std::string(k), origin, origin, {}});
      return;
    }
    add({std::string(k), cap(resolved, limits_.max_value_bytes), std::move(origin), {}});
  }

  void meta_refresh(std::string_view content) {
    // "5; url=https://x/", "0;URL='x'", "url=x": what follows "url=" is the target.
    const std::string lc = lowercase(content);
    const size_t at = lc.find("url");
    if (at == std::string::npos) return;
    size_t i = at + 3;
    while (i < lc.size() && is_space(lc[i])) ++i;
    if (i >= lc.size() || lc[i] != '=') return;
    std::string_view target = trim(content.substr(i + 1));
    if (!target.empty() && (target.front() == '\'' || target.front() == '"')) {
      const char q = target.front();
      target.remove_prefix(1);
      target = target.substr(0, target.find(q));
    }
    if (trim(target).empty()) return;
    url(kind::kMetaRefresh, target, false);
  }

  void add(Element e) {
    if (out_.truncated) return;
    if (out_.elements.size() >= limits_.max_elements) {
      // Only a new identity counts against the cap.
      if (std::binary_search(out_.elements.begin(), out_.elements.end(), e)) return;
      out_.truncated = true;
      return;
    }
    add_element(out_, std::move(e));
  }

  std::string page_url_;
  std::string page_origin_;
  const Limits& limits_;
  ActiveContent out_;
};

struct OutputDeleter {
  void operator()(GumboOutput* o) const { gumbo_destroy_output(&kGumboDefaultOptions, o); }
};

}  // namespace

bool add_element(ActiveContent& content, Element e) {
  auto& v = content.elements;
  const auto at = std::lower_bound(v.begin(), v.end(), e);
  if (at != v.end() && at->same(e)) return false;
  v.insert(at, std::move(e));
  return true;
}

Result<ActiveContent> extract(std::string_view html, std::string_view page_url,
                              const Limits& limits) {
  if (html.size() > limits.max_bytes)
    return fail_msg("parse page", std::string(page_url),
                    std::string(kTooLarge) + ": " + std::to_string(html.size()) +
                        " bytes, more than the limit of " + std::to_string(limits.max_bytes));
  const size_t tags = static_cast<size_t>(std::count(html.begin(), html.end(), '<'));
  if (tags > limits.max_tags)
    return fail_msg("parse page", std::string(page_url),
                    std::string(kTooLarge) + ": " + std::to_string(tags) +
                        " '<', more than the limit of " + std::to_string(limits.max_tags));
  GumboOptions options = kGumboDefaultOptions;
  options.max_errors = 0;  // only the tree is wanted
  std::unique_ptr<GumboOutput, OutputDeleter> out(
      gumbo_parse_with_options(&options, html.data(), html.size()));
  if (!out) return fail_msg("parse page", std::string(page_url), "the HTML parser failed");
  Walker walker(page_url, limits);
  // Iterative, in document order: the attacker chooses the nesting.
  std::vector<const GumboNode*> stack = {out->document};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    const GumboVector* children = nullptr;
    if (n->type == GUMBO_NODE_DOCUMENT) {
      children = &n->v.document.children;
    } else if (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE) {
      walker.element(n->v.element);
      children = &n->v.element.children;
    }
    if (!children) continue;
    for (unsigned i = children->length; i-- > 0;)
      stack.push_back(static_cast<const GumboNode*>(children->data[i]));
  }
  return walker.take();
}

}  // namespace mamori::page
