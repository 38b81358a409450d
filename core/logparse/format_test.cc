#include "core/logparse/format.h"

#include <algorithm>
#include <deque>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace mamori::logparse {
namespace {

// 10/Oct/2000:13:55:36 -0700
constexpr int64_t kApacheDocTime = 971211336;

LogFormat compiled(std::string_view spec) {
  auto f = LogFormat::compile(spec);
  EXPECT_TRUE(f) << spec << ": " << (f ? "" : f.error().message());
  return std::move(*f);
}

std::string compile_error(std::string_view spec) {
  const auto f = LogFormat::compile(spec);
  return f ? "<compiled>" : f.error().detail;
}

constexpr std::string_view kNginxCombined =
    R"x(203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)")x";

TEST(LogFormat, ParsesCombined) {
  const LogFormat f = compiled("combined");
  Entry e;
  ASSERT_EQ(f.parse(kNginxCombined, e), ParseStatus::kOk);
  EXPECT_EQ(e.client, "203.0.113.9");
  EXPECT_EQ(e.client_ip, *IpAddress::parse("203.0.113.9"));
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.request, "GET /apache_pb.gif?a=1 HTTP/1.0");
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/apache_pb.gif?a=1");
  EXPECT_EQ(e.protocol, "HTTP/1.0");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.bytes, 2326u);
  EXPECT_EQ(e.referer, "http://www.example.com/start.html");
  EXPECT_EQ(e.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
  EXPECT_TRUE(e.host.empty());
}

TEST(LogFormat, TheSameLineThroughEveryWayOfSayingCombined) {
  for (
      const char* spec : {
          "combined",
          R"($remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent")",
          R"(%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\")",
          R"(%a %l %u %t "%r" %s %B "%{referer}i" "%{USER-AGENT}i")",
          R"(  ${remote_addr} - ${remote_user} [${time_local}] \"$request\" $status $bytes_sent "$http_referer" "$http_user_agent"  )",
      }) {
    const LogFormat f = compiled(spec);
    Entry e;
    ASSERT_EQ(f.parse(kNginxCombined, e), ParseStatus::kOk) << spec;
    EXPECT_EQ(e.client, "203.0.113.9") << spec;
    EXPECT_EQ(e.target, "/apache_pb.gif?a=1") << spec;
    EXPECT_EQ(e.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)") << spec;
  }
}

TEST(LogFormat, ParsesCommonAndVhostCombined) {
  Entry e;
  const LogFormat common = compiled("common");
  ASSERT_EQ(common.parse(R"(::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 304 -)", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.client, "::1");
  EXPECT_FALSE(e.client_ip.v4);
  EXPECT_EQ(e.status, 304);
  EXPECT_EQ(e.bytes, 0u);
  EXPECT_TRUE(e.user.empty());
  EXPECT_TRUE(e.user_agent.empty());
  // A common-format reader does not mistake a combined line's extras for the byte count.
  EXPECT_EQ(common.parse(kNginxCombined, e), ParseStatus::kNoMatch);

  const LogFormat vhost = compiled("vhost_combined");
  ASSERT_EQ(
      vhost.parse(
          R"(www.example.org:443 2001:db8::7 - - [10/Mar/2024:00:00:00 +0000] "POST /xmlrpc.php HTTP/2.0" 200 512 "-" "curl/8.0")",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.host, "www.example.org");
  EXPECT_EQ(e.client_ip.to_string(), "2001:db8::7");
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.time, 1710028800);
  EXPECT_TRUE(e.referer.empty());
}

TEST(LogFormat, ParsesCustomNginxFormats) {
  const LogFormat f = compiled(
      R"($remote_addr $host [$time_iso8601] "$request_method $request_uri $server_protocol" )"
      R"($status $body_bytes_sent $request_time "$http_x_forwarded_for" $upstream_response_time )"
      R"("$http_user_agent" $msec)");
  Entry e;
  ASSERT_EQ(
      f.parse(
          R"(2001:db8::1 shop.example [2024-03-10T01:02:03+09:00] "GET /cart?id=7 HTTP/2.0" 404 0 0.003 "198.51.100.1, 10.0.0.1" - "Wget/1.21" 1710000123.456)",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.client, "2001:db8::1");
  EXPECT_EQ(e.host, "shop.example");
  EXPECT_EQ(e.time, 1710000123);  // $msec comes last and wins; both agree here
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/cart?id=7");
  EXPECT_EQ(e.protocol, "HTTP/2.0");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.forwarded_for, "198.51.100.1, 10.0.0.1");
  EXPECT_EQ(e.user_agent, "Wget/1.21");

  const LogFormat split =
      compiled(R"($remote_addr [$time_local] $request_method $uri $args $status)");
  ASSERT_EQ(split.parse("1.2.3.4 [10/Oct/2000:13:55:36 -0700] GET /s.php q=1 200", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.target, "/s.php?q=1");
  ASSERT_EQ(split.parse("1.2.3.4 [10/Oct/2000:13:55:36 -0700] GET /s.php - 200", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.target, "/s.php");
}

TEST(LogFormat, ParsesApacheDirectives) {
  const LogFormat f = compiled(
      R"(%v %a %{X-Forwarded-For}i %u %{sec}t %D "%m %U%%%q %H" %400,501{Host}i %>s %O "%{Cookie}i")");
  Entry e;
  ASSERT_EQ(
      f.parse(
          R"(vhost 198.51.100.2 - bob 971211336 1234 "GET /x%?a=b HTTP/1.1" h.example 500 77 "sid=\"q\"")",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/x?a=b");
  EXPECT_EQ(e.host, "h.example");
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(e.bytes, 77u);
  EXPECT_TRUE(e.forwarded_for.empty());
}

// %t holds a space ("[10/Oct/2000:13:55:36 -0700]"): an unquoted field after it must not
// cut it at the zone (issue 16: every line was bad-time).
TEST(LogFormat, ParsesTimeFollowedByAnUnquotedField) {
  Entry e;
  const LogFormat vhost = compiled(R"(%h %l %u %t %v "%r" %>s %b)");
  ASSERT_EQ(
      vhost.parse(
          R"(203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] www.example.org "GET /wp-login.php HTTP/1.1" 200 512)",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.host, "www.example.org");
  EXPECT_EQ(e.target, "/wp-login.php");
  EXPECT_EQ(e.status, 200);

  const LogFormat duration =
      compiled(R"(%h %l %u %t %D "%r" %>s %b "%{Referer}i" "%{User-Agent}i")");
  ASSERT_EQ(
      duration.parse(
          R"(2001:db8::7 - bob [10/Oct/2000:13:55:36 -0700] 1234 "POST /xmlrpc.php HTTP/1.1" 403 0 "-" "curl/8.0")",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.user, "bob");
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.user_agent, "curl/8.0");

  // %t last but one, and last.
  const LogFormat tail = compiled(R"(%h "%r" %>s %t %D)");
  ASSERT_EQ(tail.parse(R"(192.0.2.1 "GET / HTTP/1.1" 200 [10/Oct/2000:13:55:36 -0700] 77)", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);
  const LogFormat last = compiled(R"(%h "%r" %>s %t)");
  ASSERT_EQ(last.parse(R"(192.0.2.1 "GET / HTTP/1.1" 200 [10/Oct/2000:13:55:36 -0700])", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);

  // nginx's $time_local unbracketed, then an unquoted field.
  const LogFormat nginx = compiled(R"($remote_addr $time_local $host "$request" $status)");
  ASSERT_EQ(
      nginx.parse(R"(192.0.2.1 10/Oct/2000:13:55:36 -0700 shop.example "GET /a HTTP/1.1" 404)", e),
      ParseStatus::kOk);
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.host, "shop.example");

  // A time of the wrong shape is still refused as such, never read as another field.
  EXPECT_EQ(
      vhost.parse(
          R"(203.0.113.9 - - [10/Oct/2000:13:55:36] www.example.org "GET / HTTP/1.1" 200 512)", e),
      ParseStatus::kBadTime);
  EXPECT_EQ(
      vhost.parse(
          R"(203.0.113.9 - - [10/Oct/2000:13:55:36 -0700]x www.example.org "GET / HTTP/1.1" 200 5)",
          e),
      ParseStatus::kBadTime);
  // Cut anywhere, such a line is refused.
  const std::string full =
      R"(203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] www.example.org "GET / HTTP/1.1" 200 512)";
  for (size_t n = 0; n + 3 < full.size(); ++n)
    EXPECT_NE(vhost.parse(full.substr(0, n), e), ParseStatus::kOk) << n;
}

TEST(LogFormat, UnescapesQuotedFields) {
  const LogFormat f = compiled("combined");
  Entry e;
  // nginx (escape=default) writes '"' as \x22 and '\' as \x5C.
  ASSERT_EQ(
      f.parse(
          R"(1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /?q=\x22><script> HTTP/1.1" 200 1 "-" "evil\x22 agent\x5C")",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.target, "/?q=\"><script>");
  EXPECT_EQ(e.user_agent, "evil\" agent\\");
  // Apache writes \" and \\; an escaped quote does not end the field.
  ASSERT_EQ(
      f.parse(
          R"(1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\" b HTTP/1.1" 200 1 "r \"x\" y" "ua \\" z")",
          e),
      ParseStatus::kOk);  // \\ is a backslash, so the quote after it closes the field
  EXPECT_EQ(e.user_agent, "ua \\");
  ASSERT_EQ(
      f.parse(
          R"(1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\" b HTTP/1.1" 200 1 "r \"x\" y" "ua \\\" z")",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.target, "/a\" b");
  EXPECT_EQ(e.referer, "r \"x\" y");
  EXPECT_EQ(e.user_agent, "ua \\\" z");
}

// Servers that do not escape quotes log probes as sent; the request then holds a raw '"'.
TEST(LogFormat, ReadsRawQuotesInsideQuotedFields) {
  const LogFormat f = compiled("combined");
  Entry e;
  ASSERT_EQ(
      f.parse(
          R"x(198.51.100.196 - - [10/Mar/2024:00:08:48 +0000] "GET /news.php?item=1" HTTP/1.1" 403 4641 "-" "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:54.0) Gecko/20100101 Firefox/54.0")x",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.target, "/news.php?item=1\"");
  EXPECT_EQ(e.status, 403);
  ASSERT_EQ(
      f.parse(
          R"x(1.2.3.4 - - [10/Mar/2024:00:08:48 +0000] "GET /?q=" " or "1"="1" HTTP/1.1" 200 1 "-" "ua")x",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.target, "/?q=\" \" or \"1\"=\"1\"");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.user_agent, "ua");
  // A line made of quotes costs a bounded number of retries and is refused.
  std::string quotes = R"(1.2.3.4 - - [10/Mar/2024:00:08:48 +0000] ")";
  for (int k = 0; k < 2000; ++k) quotes += "\" ";
  EXPECT_EQ(f.parse(quotes, e), ParseStatus::kNoMatch);
}

TEST(LogFormat, ToleratesFieldsAppendedToCombined) {
  const LogFormat f = compiled("combined");
  Entry e;
  const std::string line = std::string(kNginxCombined) + R"( "198.51.100.7" rt=0.002)";
  ASSERT_EQ(f.parse(line, e), ParseStatus::kOk);
  EXPECT_EQ(e.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
  EXPECT_EQ(f.parse(std::string(kNginxCombined) + "x", e), ParseStatus::kNoMatch);
}

TEST(LogFormat, HandlesLineEndings) {
  const LogFormat f = compiled("combined");
  Entry e;
  // The entry's views point into the line: each line must outlive its checks.
  const std::string crlf = std::string(kNginxCombined) + "\r\n";
  EXPECT_EQ(f.parse(crlf, e), ParseStatus::kOk);
  EXPECT_EQ(e.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
  const std::string lf = std::string(kNginxCombined) + "\n";
  EXPECT_EQ(f.parse(lf, e), ParseStatus::kOk);
  EXPECT_EQ(e.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
}

TEST(LogFormat, RefusesBadAddresses) {
  const LogFormat f = compiled("combined");
  Entry e;
  const std::string rest = R"( - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "-" "-")";
  for (const char* addr : {"-", "www.example.com", "1.2.3.256", "::ffff:1.2.3", "1.2.3.4,5.6.7.8",
                           "\xff\xfe\xfd", "1.2.3.4\\x20"}) {
    EXPECT_EQ(f.parse(addr + rest, e), ParseStatus::kBadAddress) << addr;
  }
  ASSERT_EQ(f.parse("::ffff:192.0.2.9" + rest, e), ParseStatus::kOk);
  EXPECT_TRUE(e.client_ip.v4);
  EXPECT_EQ(e.client_ip.to_string(), "192.0.2.9");
}

TEST(LogFormat, RefusesBadTimesAndReadsMalformedRequests) {
  const LogFormat f = compiled("combined");
  Entry e;
  // The entry's views point into the line: every line built here lives to the end.
  std::deque<std::string> lines;
  auto line = [&](std::string_view time, std::string_view request) -> std::string_view {
    return lines.emplace_back("1.2.3.4 - - [" + std::string(time) + "] \"" + std::string(request) +
                              "\" 400 0 \"-\" \"-\"");
  };
  EXPECT_EQ(f.parse(line("10/Foo/2000:13:55:36 -0700", "GET / HTTP/1.1"), e),
            ParseStatus::kBadTime);
  EXPECT_EQ(f.parse(line("10/Oct/2000:25:55:36 -0700", "GET / HTTP/1.1"), e),
            ParseStatus::kBadTime);
  EXPECT_EQ(f.parse(line("10/Oct/2000:13:55:36", "GET / HTTP/1.1"), e), ParseStatus::kBadTime);
  // A request line that is none is a line of the format all the same: its address and
  // time are read, so a scanner sending TLS to port 80 can be counted and banned.
  ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", "\\x16\\x03\\x01\\x02\\x00\\x01"), e),
            ParseStatus::kOk);
  EXPECT_TRUE(e.malformed_request);
  EXPECT_EQ(e.request, std::string_view("\x16\x03\x01\x02\x00\x01", 6));
  EXPECT_EQ(e.client_ip.to_string(), "1.2.3.4");
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.status, 400);
  EXPECT_TRUE(e.method.empty());
  EXPECT_TRUE(e.target.empty());
  for (const std::string_view request :
       {"GET", "HELP", "G(T / HTTP/1.1", " / HTTP/1.1", "GET ", "t3 12.2.1\n",
        "GET index.php HTTP/1.1", "\\x03\\x00\\x00/*\\xE0 Cookie: mstshash=Admin"}) {
    ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", request), e), ParseStatus::kOk) << request;
    EXPECT_TRUE(e.malformed_request) << request;
    EXPECT_TRUE(e.method.empty()) << request;
    EXPECT_TRUE(e.target.empty()) << request;
  }
  // No request at all (a client that connected and sent nothing) is malformed too.
  ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", "-"), e), ParseStatus::kOk);
  EXPECT_TRUE(e.malformed_request);
  EXPECT_TRUE(e.request.empty());
  ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", ""), e), ParseStatus::kOk);
  EXPECT_TRUE(e.malformed_request);
  // HTTP/0.9 and targets with spaces are requests.
  ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", "GET /a b c"), e), ParseStatus::kOk);
  EXPECT_FALSE(e.malformed_request);
  EXPECT_EQ(e.target, "/a b c");
  EXPECT_TRUE(e.protocol.empty());
  ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 +0900", "PROPFIND /a b HTTP/1.1"), e),
            ParseStatus::kOk);
  EXPECT_FALSE(e.malformed_request);
  EXPECT_EQ(e.target, "/a b");
  EXPECT_EQ(e.time, kApacheDocTime - 16 * 3600);
  for (const std::string_view request : {"OPTIONS * HTTP/1.1", "GET http://example.com/ HTTP/1.1",
                                         "CONNECT example.com:443 HTTP/1.1"}) {
    ASSERT_EQ(f.parse(line("10/Oct/2000:13:55:36 -0700", request), e), ParseStatus::kOk);
    EXPECT_FALSE(e.malformed_request) << request;
  }
  // A format without the request line has nothing malformed.
  const LogFormat parts = compiled("$remote_addr [$time_local] \"$request_method $uri\" $status");
  ASSERT_EQ(parts.parse("1.2.3.4 [10/Oct/2000:13:55:36 -0700] \"GET /\" 200", e), ParseStatus::kOk);
  EXPECT_FALSE(e.malformed_request);
}

// How the servers themselves log bytes of another protocol: nginx writes \xHH (upper
// case) for '"', '\' and bytes outside 0x20-0x7e; Apache writes \xhh (lower case), \" and
// \\. Both lines below are as nginx 1.22 and Apache 2.4 wrote them for the start of a TLS
// ClientHello (`openssl s_client` to their plain-HTTP port; tests/cases/bad-request-lines),
// with a quote and a backslash added the way each escapes them.
TEST(LogFormat, ReadsServersEscapedBinaryRequests) {
  const LogFormat f = compiled("combined");
  Entry e;
  const std::string nginx =
      R"(192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01\x00\xF4\x01\x00\x00\xF0\x03\x03\x22\x5C" 400 157 "-" "-")";
  ASSERT_EQ(f.parse(nginx, e), ParseStatus::kOk);
  EXPECT_TRUE(e.malformed_request);
  EXPECT_EQ(e.request, std::string_view("\x16\x03\x01\x00\xF4\x01\x00\x00\xF0\x03\x03\"\\", 13));
  EXPECT_EQ(e.status, 400);
  const std::string apache =
      R"(192.0.2.8 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01\x00\xf4\x01\"\\" 400 226 "-" "-")";
  ASSERT_EQ(f.parse(apache, e), ParseStatus::kOk);
  EXPECT_TRUE(e.malformed_request);
  EXPECT_EQ(e.request, std::string_view("\x16\x03\x01\x00\xf4\x01\"\\", 8));
  EXPECT_EQ(e.client_ip.to_string(), "192.0.2.8");
}

TEST(LogFormat, ReportsTruncatedLines) {
  const LogFormat f = compiled("combined");
  Entry e;
  const std::string full(kNginxCombined);
  EXPECT_EQ(f.parse(full.substr(0, full.size() - 1), e), ParseStatus::kTruncated);
  EXPECT_EQ(f.parse(full.substr(0, full.find("HTTP/1.0")), e), ParseStatus::kTruncated);
  // Cut anywhere, a line is refused and never read as something else.
  for (size_t n = 0; n < full.size(); ++n) {
    const ParseStatus st = f.parse(full.substr(0, n), e);
    EXPECT_NE(st, ParseStatus::kOk) << n;
  }
}

TEST(LogFormat, RefusesLongLinesWithoutReadingThem) {
  const LogFormat f = compiled("combined");
  Entry e;
  std::string line(kNginxCombined);
  line.insert(line.rfind('"'), 20000, 'A');  // a very long user agent
  EXPECT_EQ(f.parse(line, e), ParseStatus::kTooLong);
  const std::string megabyte(1 << 20, 'x');
  EXPECT_EQ(f.parse(megabyte, e), ParseStatus::kTooLong);

  const auto big = LogFormat::compile("combined", {.max_line = 64 * 1024});
  ASSERT_TRUE(big);
  ASSERT_EQ(big->parse(line, e), ParseStatus::kOk);
  EXPECT_EQ(e.user_agent.size(),
            std::string_view("Mozilla/4.08 [en] (Win98; I ;Nav)").size() + 20000);
}

// A line longer than the limit is judged on its first max_line bytes (parse_cut): the
// client and the request come first and are read; the field the cut falls in keeps what
// is left of it.
TEST(LogFormat, ParseCutReadsTheFirstPartOfALongLine) {
  const LogFormat f = compiled("combined");
  Entry e;
  std::string line(kNginxCombined);
  line.insert(line.rfind('"'), 20000, 'A');
  ASSERT_EQ(f.parse(line, e), ParseStatus::kTooLong);
  ASSERT_EQ(f.parse_cut(line, e), ParseStatus::kOk);
  EXPECT_EQ(e.client, "203.0.113.9");
  EXPECT_EQ(e.time, kApacheDocTime);
  EXPECT_EQ(e.target, "/apache_pb.gif?a=1");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.referer, "http://www.example.com/start.html");
  EXPECT_TRUE(e.user_agent.starts_with("Mozilla/4.08"));
  EXPECT_LT(e.user_agent.size(), 16u * 1024);
  // The same with the time followed by an unquoted field.
  const LogFormat vhost = compiled(R"(%h %l %u %t %v "%r" %>s %b "%{User-Agent}i")");
  std::string long_vhost =
      R"(203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] h.example "GET /x.php?id=1 HTTP/1.1" 200 5 ")";
  long_vhost += std::string(20000, 'B') + "\"";
  ASSERT_EQ(vhost.parse_cut(long_vhost, e), ParseStatus::kOk);
  EXPECT_EQ(e.target, "/x.php?id=1");
  EXPECT_EQ(e.time, kApacheDocTime);
}

TEST(LogFormat, SurvivesGarbageAndInvalidUtf8) {
  const LogFormat f = compiled("combined");
  Entry e;
  EXPECT_EQ(f.parse("", e), ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", e), ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse(std::string(200, '\0'), e), ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse("\xff\xff\xff \xff \xff [\xff] \"\xff\" 200 1 \"\xff\" \"\xff\"", e),
            ParseStatus::kBadAddress);
  // Invalid UTF-8 in the attacker's fields is kept byte for byte.
  ASSERT_EQ(f.parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET /\xc0\xaf\xff HTTP/1.1\" 200 1 "
                    "\"-\" \"\xed\xa0\x80\xfe\"",
                    e),
            ParseStatus::kOk);
  EXPECT_EQ(e.target, "/\xc0\xaf\xff");
  EXPECT_EQ(e.user_agent, "\xed\xa0\x80\xfe");
}

TEST(LogFormat, ParsesJsonLines) {
  const LogFormat f = compiled("json");
  Entry e;
  ASSERT_EQ(
      f.parse(
          R"({"time_iso8601":"2024-03-10T00:00:00+00:00","remote_addr":"2001:db8::9","request":"GET /wp-login.php?x=\"1\" HTTP/1.1","status":"302","body_bytes_sent":"0","http_referer":"","http_user_agent":"Mozilla\/5.0 \u00e9\ud83d\ude00","upstream":{"a":[1,{"b":"}"}]},"http_x_forwarded_for":null})",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.client_ip.to_string(), "2001:db8::9");
  EXPECT_EQ(e.time, 1710028800);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/wp-login.php?x=\"1\"");
  EXPECT_EQ(e.status, 302);
  EXPECT_EQ(e.user_agent, "Mozilla/5.0 \xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(e.referer.empty());
  EXPECT_TRUE(e.forwarded_for.empty());

  // Numbers, other key names, method + uri + args, a lone surrogate.
  ASSERT_EQ(
      f.parse(
          R"( { "client" : "10.1.2.3", "timestamp": 1710028800.5, "method": "POST", "uri": "/xmlrpc.php", "args": "a=1", "status": 200, "bytes": 12, "user_agent": "x\ud800y" } )",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.client, "10.1.2.3");
  EXPECT_EQ(e.time, 1710028800);
  EXPECT_EQ(e.target, "/xmlrpc.php?a=1");
  EXPECT_EQ(e.bytes, 12u);
  EXPECT_EQ(e.user_agent, "x\xef\xbf\xbdy");

  // remote_addr outranks client wherever it appears; a bad lower-ranked one does not matter.
  ASSERT_EQ(
      f.parse(
          R"({"client":"proxy.local","remote_addr":"192.0.2.5","time_local":"10/Oct/2000:13:55:36 -0700"})",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.client, "192.0.2.5");
  EXPECT_EQ(e.time, kApacheDocTime);
}

TEST(LogFormat, JsonKeysCanBeRenamed) {
  const LogFormat f = compiled("json:client=src,time=@t,user_agent=ua");
  Entry e;
  ASSERT_EQ(
      f.parse(
          R"({"remote_addr":"9.9.9.9","src":"1.1.1.1","@t":"2024-03-10 00:00:00Z","ua":"u","http_user_agent":"no"})",
          e),
      ParseStatus::kOk);
  EXPECT_EQ(e.client, "1.1.1.1");
  EXPECT_EQ(e.time, 1710028800);
  EXPECT_EQ(e.user_agent, "u");
  EXPECT_EQ(f.parse(R"({"remote_addr":"9.9.9.9"})", e), ParseStatus::kBadAddress);
}

TEST(LogFormat, JsonRefusesWhatItCannotRead) {
  const LogFormat f = compiled("json");
  Entry e;
  EXPECT_EQ(f.parse(R"({"remote_addr":"1.2.3.4","request":"GET / HTTP/1.1")", e),
            ParseStatus::kTruncated);
  EXPECT_EQ(f.parse(R"({"remote_addr":"1.2.3.4","request":"GET / HT)", e), ParseStatus::kTruncated);
  EXPECT_EQ(f.parse(R"({"remote_addr":"1.2.3.4"} trailing)", e), ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse(R"(["remote_addr","1.2.3.4"])", e), ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse(R"({"status":"200"})", e), ParseStatus::kBadAddress);
  EXPECT_EQ(f.parse(R"({"remote_addr":"-"})", e), ParseStatus::kBadAddress);
  EXPECT_EQ(f.parse(R"({"remote_addr":"1.2.3.4","time":"yesterday"})", e), ParseStatus::kBadTime);
  EXPECT_EQ(f.parse(R"({"remote_addr":"1.2.3.4","x":)" + std::string(100, '[') + "]}", e),
            ParseStatus::kNoMatch);
  EXPECT_EQ(f.parse(R"({"remote_addr":1.2.3.4})", e), ParseStatus::kOk);  // lenient scalar
  EXPECT_EQ(f.parse("{}", e), ParseStatus::kBadAddress);
  // A count that is not a number does not cost the line.
  ASSERT_EQ(f.parse(R"({"remote_addr":"1.2.3.4","status":"2xx","bytes":"12abc"})", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.status, 0);
  EXPECT_EQ(e.bytes, 0u);
  // Raw invalid UTF-8 passes through: it must not hide a line from the rules.
  ASSERT_EQ(f.parse("{\"remote_addr\":\"1.2.3.4\",\"http_user_agent\":\"sqlmap\xff\"}", e),
            ParseStatus::kOk);
  EXPECT_EQ(e.user_agent, "sqlmap\xff");
}

// Lines written by a real JSON encoder read back field for field.
TEST(LogFormat, JsonAgreesWithNlohmann) {
  const LogFormat f = compiled("json");
  Entry e;
  for (const std::string ua : {"plain", "quote \" back \\ slash / tab \t nl \n", "\x01\x1f",
                               "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80"}) {
    const nlohmann::json j = {{"remote_addr", "192.0.2.1"},
                              {"request", "GET /x HTTP/1.1"},
                              {"http_user_agent", ua},
                              {"status", 200}};
    for (const auto& line : {j.dump(), j.dump(2), j.dump(-1, ' ', true)}) {
      std::string flat = line;
      std::replace(flat.begin(), flat.end(), '\n', ' ');
      ASSERT_EQ(f.parse(flat, e), ParseStatus::kOk) << flat;
      EXPECT_EQ(e.user_agent, ua) << flat;
      EXPECT_EQ(e.status, 200);
    }
  }
}

TEST(LogFormat, EntryViewsSurviveUntilTheNextParse) {
  const LogFormat f = compiled("combined");
  Entry e;
  std::string line =
      R"(1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /\x22a HTTP/1.1" 200 1 "\x22r" "\x22u")";
  ASSERT_EQ(f.parse(line, e), ParseStatus::kOk);
  EXPECT_EQ(e.target, "/\"a");
  EXPECT_EQ(e.referer, "\"r");
  EXPECT_EQ(e.user_agent, "\"u");
  EXPECT_EQ(e.request, "GET /\"a HTTP/1.1");
}

TEST(LogFormat, CompileErrorsNameTheColumn) {
  EXPECT_EQ(compile_error("%h %l %Z"), "column 7: unknown directive %Z");
  EXPECT_EQ(compile_error(R"(%h "%r)"), "column 4: unbalanced quote");
  EXPECT_EQ(compile_error(R"($remote_addr "$request)"), "column 14: unbalanced quote");
  EXPECT_EQ(compile_error("$remote_addr$status"),
            "column 13: two fields with nothing between them cannot be split");
  EXPECT_EQ(compile_error("%h %U%q"),
            "column 6: two fields with nothing between them cannot be split");
  EXPECT_EQ(compile_error("$status $request"),
            "column 1: no client address field ($remote_addr, %h or %a)");
  EXPECT_EQ(compile_error("$remote_addr ${x"), "column 14: unterminated ${");
  EXPECT_EQ(compile_error("%h %{Referer"), "column 4: unterminated %{");
  EXPECT_EQ(compile_error("%h %"), "column 4: '%' without a directive");
  EXPECT_EQ(compile_error(""), "column 1: empty format");
  EXPECT_EQ(compile_error("json:agent=ua"), "column 6: unknown field 'agent'");
  EXPECT_EQ(compile_error("json:client"), "column 6: expected FIELD=KEY");
  const auto f = LogFormat::compile("%h %Q");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message(), "compile log format '%h %Q': column 4: unknown directive %Q");
}

TEST(ParseStatus, HasNamesForCounters) {
  EXPECT_EQ(parse_status_name(ParseStatus::kOk), "ok");
  EXPECT_EQ(parse_status_name(ParseStatus::kBadAddress), "bad-address");
  EXPECT_EQ(parse_status_name(ParseStatus::kNoMatch), "no-match");
}

}  // namespace
}  // namespace mamori::logparse
