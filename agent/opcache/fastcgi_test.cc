#include "agent/opcache/fastcgi.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "agent/opcache/fake_fastcgi_for_test.h"
#include "core/base/env.h"
#include "testing/temp_dir.h"

namespace mamori::opcache {
namespace {

std::string record(RecordType type, uint16_t id, std::string_view content, uint8_t padding = 0) {
  std::string r;
  r.push_back(1);
  r.push_back(static_cast<char>(type));
  r.push_back(static_cast<char>(id >> 8));
  r.push_back(static_cast<char>(id & 0xff));
  r.push_back(static_cast<char>(content.size() >> 8));
  r.push_back(static_cast<char>(content.size() & 0xff));
  r.push_back(static_cast<char>(padding));
  r.push_back(0);
  r.append(content);
  r.append(padding, 'p');
  return r;
}

std::string end_request(uint16_t id, uint32_t app = 0, uint8_t proto = 0) {
  std::string c(8, '\0');
  c[0] = static_cast<char>(app >> 24);
  c[3] = static_cast<char>(app & 0xff);
  c[4] = static_cast<char>(proto);
  return record(RecordType::kEndRequest, id, c);
}

TEST(FastCgi, EncodesWhatADecoderReadsBack) {
  FcgiRequest req;
  // A PARAMS stream longer than one record (65,535 bytes) and 4-byte lengths.
  req.params = {{"SCRIPT_FILENAME", "/x/h.php"},
                {std::string(200, 'n'), std::string(40000, 'v')},
                {"W", std::string(40000, 'w')}};
  req.body = std::string(150000, 'b');
  auto bytes = encode_request(7, req);
  ASSERT_TRUE(bytes) << bytes.error().message();
  auto decoded = testing_fcgi::decode_request(*bytes);
  ASSERT_TRUE(decoded.complete);
  EXPECT_EQ(decoded.id, 7);
  EXPECT_EQ(decoded.params.at("SCRIPT_FILENAME"), "/x/h.php");
  EXPECT_EQ(decoded.params.at(std::string(200, 'n')), std::string(40000, 'v'));
  EXPECT_EQ(decoded.params.at("W"), std::string(40000, 'w'));
  EXPECT_EQ(decoded.body, req.body);
  // Every record is 8-byte aligned (padded).
  EXPECT_EQ(bytes->size() % 8, 0u);
}

TEST(FastCgi, RefusesAParameterPastItsLimit) {
  FcgiRequest req;
  req.params = {{"X", std::string(70 << 10, 'v')}};
  EXPECT_FALSE(encode_request(1, req));
}

TEST(FastCgi, ParserReadsByteByByteSkipsOthersAndBoundsOutput) {
  std::string s = record(RecordType::kStdout, 2, "not ours") + record(RecordType::kStdout, 0, "x") +
                  record(RecordType::kGetValuesResult, 1, "") +
                  record(RecordType::kStdout, 1, "Status: 200\r\n", 3) +
                  record(RecordType::kStderr, 1, "warn") +
                  record(RecordType::kStdout, 1, "\r\nhello world") + end_request(1, 5) +
                  "trailing garbage";
  ResponseParser p(1, {.max_out = 20, .max_err = 2, .max_records = 100});
  bool done = false;
  for (char c : s) {
    auto r = p.feed(std::string_view(&c, 1));
    ASSERT_TRUE(r) << r.error().message();
    done = *r;
  }
  ASSERT_TRUE(done);
  const auto& resp = p.response();
  EXPECT_EQ(resp.out, std::string("Status: 200\r\n\r\nhello world").substr(0, 20));
  EXPECT_TRUE(resp.out_truncated);
  EXPECT_EQ(resp.err, "wa");
  EXPECT_TRUE(resp.err_truncated);
  EXPECT_EQ(resp.app_status, 5u);
}

TEST(FastCgi, ParserRefusesBadVersionsShortEndsAndEndlessRecords) {
  {
    ResponseParser p(1, {});
    std::string bad = record(RecordType::kStdout, 1, "x");
    bad[0] = 2;
    EXPECT_FALSE(p.feed(bad));
  }
  {
    ResponseParser p(1, {});
    EXPECT_FALSE(p.feed(record(RecordType::kEndRequest, 1, "abc")));
  }
  {
    ResponseParser p(1, {.max_out = 10, .max_err = 10, .max_records = 5});
    std::string many;
    for (int i = 0; i < 6; ++i) many += record(RecordType::kStdout, 1, "");
    EXPECT_FALSE(p.feed(many));
  }
}

TEST(FastCgi, CgiReply) {
  auto r =
      parse_cgi_reply("Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nFile not found.\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->content_type, "text/html");
  EXPECT_EQ(r->body, "File not found.\n");
  auto plain = parse_cgi_reply("Content-Type: text/plain\n\nbody\0with nul");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  EXPECT_FALSE(parse_cgi_reply("Content-Type: text/plain\r\n"));
  EXPECT_FALSE(parse_cgi_reply("no colon here\r\n\r\n"));
  EXPECT_FALSE(parse_cgi_reply("Status: ok\r\n\r\n"));
}

TEST(FastCgi, Endpoints) {
  EXPECT_EQ(parse_endpoint("/run/php/php8.2-fpm.sock")->unix_path, "/run/php/php8.2-fpm.sock");
  auto tcp = parse_endpoint("127.0.0.1:9000");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 9000);
  auto v6 = parse_endpoint("[::1]:9001");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(parse_endpoint("localhost:9000"));  // never resolved
  EXPECT_FALSE(parse_endpoint("127.0.0.1:0"));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:99999"));
  EXPECT_FALSE(parse_endpoint("relative.sock"));
}

TEST(FastCgi, CallsAFakePool) {
  testing::TempDir dir;
  testing_fcgi::FakeServer server(dir / "fpm.sock", [](const testing_fcgi::Request& r) {
    EXPECT_EQ(r.params.at("SCRIPT_FILENAME"), "/opt/h.php");
    return testing_fcgi::reply(1, "Content-Type: text/plain\r\n\r\ngot " + r.body, "a warning");
  });
  RealEnv env;
  FcgiRequest req;
  req.params = {{"SCRIPT_FILENAME", "/opt/h.php"}};
  req.body = "paths";
  auto ep = parse_endpoint(dir / "fpm.sock");
  ASSERT_TRUE(ep);
  CallOptions o;
  o.peer_uid = ::getuid();
  auto resp = call(env, *ep, req, o);
  ASSERT_TRUE(resp) << resp.error().message();
  EXPECT_EQ(parse_cgi_reply(resp->out)->body, "got paths");
  EXPECT_EQ(resp->err, "a warning");
}

TEST(FastCgi, RefusesAListenerOfAnotherUser) {
  testing::TempDir dir;
  testing_fcgi::FakeServer server(dir / "fpm.sock", [](const testing_fcgi::Request&) {
    return testing_fcgi::reply(1, "Status: 200\r\n\r\n", "");
  });
  RealEnv env;
  CallOptions o;
  o.peer_uid = ::getuid() + 1;
  auto resp = call(env, *parse_endpoint(dir / "fpm.sock"), {}, o);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().errnum, EPERM);
}

TEST(FastCgi, TimesOutOnAPoolThatNeverAnswers) {
  testing::TempDir dir;
  testing_fcgi::FakeServer server(dir / "fpm.sock", nullptr);  // reads, never answers
  RealEnv env;
  CallOptions o;
  o.peer_uid = std::nullopt;
  o.timeout = std::chrono::milliseconds(200);
  const auto t0 = env.clock().monotonic();
  auto resp = call(env, *parse_endpoint(dir / "fpm.sock"), {}, o);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().errnum, ETIMEDOUT);
  EXPECT_LT(env.clock().monotonic() - t0, std::chrono::seconds(2));
}

TEST(FastCgi, AConnectionClosedEarlyIsAnError) {
  testing::TempDir dir;
  testing_fcgi::FakeServer server(dir / "fpm.sock", [](const testing_fcgi::Request&) {
    return record(RecordType::kStdout, 1, "Status: 200\r\n");  // no END_REQUEST
  });
  RealEnv env;
  CallOptions o;
  o.peer_uid = std::nullopt;
  auto resp = call(env, *parse_endpoint(dir / "fpm.sock"), {}, o);
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().errnum, EPROTO);
}

TEST(FastCgi, NoListenerIsAnError) {
  testing::TempDir dir;
  RealEnv env;
  auto resp = call(env, *parse_endpoint(dir / "none.sock"), {}, {});
  ASSERT_FALSE(resp);
  EXPECT_EQ(resp.error().errnum, ENOENT);
}

}  // namespace
}  // namespace mamori::opcache
