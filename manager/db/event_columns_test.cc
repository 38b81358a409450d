#include "manager/db/event_columns.h"

#include <gtest/gtest.h>

namespace mamori::manager {
namespace {

constexpr int64_t kSec = 1'000'000'000;

nlohmann::json event(int64_t seq) {
  nlohmann::json e;
  e["@timestamp"] = "2023-11-14T22:13:20Z";
  e["event"]["id"] = "id-" + std::to_string(seq);
  e["event"]["sequence"] = seq;
  return e;
}

TEST(EventColumnsTest, ParsesRfc3339WithFractionsAndOffsets) {
  EXPECT_EQ(parse_rfc3339_ns("2023-11-14T22:13:20Z"), 1700000000 * kSec);
  EXPECT_EQ(parse_rfc3339_ns("2023-11-14T22:13:20.5Z"), 1700000000 * kSec + 500'000'000);
  EXPECT_EQ(parse_rfc3339_ns("2023-11-14T22:13:20.123456789Z"), 1700000000 * kSec + 123456789);
  EXPECT_EQ(parse_rfc3339_ns("2023-11-15T00:13:20+02:00"), 1700000000 * kSec);
  EXPECT_EQ(parse_rfc3339_ns("2023-11-14T21:43:20-00:30"), 1700000000 * kSec);
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:00Z"), 0);
  for (const char* bad : {"", "yesterday", "2023-11-14 22:13:20Z", "2023-11-14T22:13:20",
                          "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0200"})
    EXPECT_EQ(parse_rfc3339_ns(bad), std::nullopt) << bad;
}

TEST(EventColumnsTest, ExtractsTheIndexedColumns) {
  nlohmann::json e = event(7);
  e["event"]["action"] = "ip-banned";
  e["event"]["severity"] = 7;
  e["file"]["path"] = "/var/www/x.php";
  e["source"]["ip"] = "203.0.113.7";
  nlohmann::json bare = event(3);
  bare.erase("@timestamp");
  bare["event"]["severity"] = "high";  // not an integer: 0
  auto b = extract_event_batch("k", std::vector<nlohmann::json>{e, bare});
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_EQ(b->rows.size(), 2u);
  EXPECT_EQ(b->min_sequence, 3);
  EXPECT_EQ(b->max_sequence, 7);
  const EventColumns& c = b->rows[0];
  EXPECT_EQ(c.id, "id-7");
  EXPECT_EQ(c.sequence, 7);
  EXPECT_EQ(c.time_ns, 1700000000 * kSec);
  EXPECT_EQ(c.action, "ip-banned");
  EXPECT_EQ(c.path, "/var/www/x.php");
  EXPECT_EQ(c.ip, "203.0.113.7");
  EXPECT_EQ(c.severity, 7);
  EXPECT_EQ(nlohmann::json::parse(c.json), e);
  EXPECT_EQ(b->rows[1].time_ns, 0);
  EXPECT_EQ(b->rows[1].severity, 0);
  EXPECT_EQ(b->rows[1].path, "");
  auto empty = extract_event_batch("k", {});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->max_sequence, 0);
}

TEST(EventColumnsTest, RefusesTheWholeBatchNamingTheBadEvent) {
  auto refused = [](nlohmann::json bad) {
    auto b = extract_event_batch("agent-7", std::vector<nlohmann::json>{event(1), std::move(bad)});
    return b ? std::string("accepted") : b.error().message();
  };
  nlohmann::json e = event(2);
  e["event"]["id"] = std::string(129, 'x');
  EXPECT_NE(refused(e).find("event 1: event.id"), std::string::npos) << refused(e);
  e["event"]["id"] = std::string("a\0b", 3);
  EXPECT_NE(refused(e).find("event.id"), std::string::npos) << "a NUL in the id";
  e = event(2);
  e["file"]["path"] = std::string("/var/www/a\0.php", 15);
  EXPECT_NE(refused(e).find("NUL"), std::string::npos) << refused(e);
  e = event(2);
  e["user"]["name"] = "\xff\xfe";  // built in-process: dump() would throw
  EXPECT_NE(refused(e).find("UTF-8"), std::string::npos) << refused(e);
  e = event(2);
  e["event"]["sequence"] = -1;
  EXPECT_NE(refused(e).find("event.sequence"), std::string::npos);
  EXPECT_NE(refused(nlohmann::json::array()).find("not a JSON object"), std::string::npos);
  EXPECT_NE(refused(nlohmann::json{{"@timestamp", 5}, {"event", {{"id", "x"}, {"sequence", 1}}}})
                .find("@timestamp"),
            std::string::npos);
  auto huge =
      extract_event_batch("agent-7", std::vector<nlohmann::json>(kMaxEventBatch + 1, event(1)));
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message().find("at most 10000"), std::string::npos);
  EXPECT_NE(huge.error().message().find("agent-7"), std::string::npos);
}

TEST(EventColumnsTest, ScansAnEventsMessageKeepingEachEventsTextExactly) {
  const std::string e1 =
      R"({ "event" : {"id":"a","sequence":1,"action":"file-restored"},"file":{"path":"/x"}})";
  const std::string e2 =
      R"({"\u0065vent":{"id":"b","sequence":2,"severity":5},"source":{"ip":"192.0.2.1"},"@timestamp":"2023-11-14T22:13:20Z"})";
  const std::string text = R"({"v":1,"type":"events","events":[ )" + e1 + " ,\n" + e2 + "]}";
  auto b = scan_events_message("k", text);
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_TRUE(*b);
  const auto& rows = (*b)->rows;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].json, e1);
  EXPECT_EQ(rows[1].json, e2);
  EXPECT_EQ(rows[0].id, "a");
  EXPECT_EQ(rows[0].action, "file-restored");
  EXPECT_EQ(rows[0].path, "/x");
  EXPECT_EQ(rows[1].id, "b") << "an escaped key is the key";
  EXPECT_EQ(rows[1].severity, 5);
  EXPECT_EQ(rows[1].ip, "192.0.2.1");
  EXPECT_EQ(rows[1].time_ns, 1700000000LL * 1'000'000'000);
  EXPECT_EQ((*b)->min_sequence, 1);
  EXPECT_EQ((*b)->max_sequence, 2);
}

TEST(EventColumnsTest, ScanningCountsDuplicateKeysAsTheParsedObjectDoes) {
  // The last one wins, whole: the second "event" has no sequence, so the event is refused.
  auto b = scan_events_message(
      "k",
      R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1},"event":{"id":"b"}}]})");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("event 0: event.sequence"), std::string::npos);
  b = scan_events_message(
      "k", R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1,"id":"c"}}]})");
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->rows[0].id, "c");
  // A second "events" replaces the first.
  b = scan_events_message(
      "k", R"({"v":1,"type":"events","events":[5],"events":[{"event":{"id":"d","sequence":4}}]})");
  ASSERT_TRUE(b && *b);
  ASSERT_EQ((*b)->rows.size(), 1u);
  EXPECT_EQ((*b)->rows[0].id, "d");
}

TEST(EventColumnsTest, ScanningLeavesOtherMessagesToTheDecoder) {
  for (const char* other :
       {R"({"v":1,"type":"heartbeat","time_ns":1,"healthy":true})",
        R"({"v":2,"type":"events","events":[]})", R"({"v":1,"type":"events","events":{}})",
        R"({"v":1,"type":"events","events":[)", "not json", R"([{"v":1,"type":"events"}])",
        R"({"v":1.0,"type":"events","events":[]})",
        R"({"v":1,"v":2,"type":"events","events":[]})"}) {
    auto b = scan_events_message("k", other);
    ASSERT_TRUE(b) << other;
    EXPECT_FALSE(*b) << other;
  }
  auto bad = scan_events_message(
      "agent-7", R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1}},[]]})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("event 1: not a JSON object"), std::string::npos);
  EXPECT_NE(bad.error().message().find("agent-7"), std::string::npos);
  std::string many = R"({"v":1,"type":"events","events":[)";
  for (int i = 1; i <= 1001; ++i)
    many += (i > 1 ? "," : "") + std::string(R"({"event":{"id":"e)") + std::to_string(i) +
            R"(","sequence":)" + std::to_string(i) + "}}";
  auto too_many = scan_events_message("k", many + "]}");
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message().find("at most 1000"), std::string::npos);
}

TEST(EventColumnsTest, PrefixRangeHoldsExactlyTheStringsWithThePrefix) {
  auto [low, high] = prefix_range("/var/www/");
  for (std::string in : {"/var/www/", "/var/www/a", "/var/www/\xF4\x8F\xBF\xBE", "/var/www/~~"})
    EXPECT_TRUE(in >= low && in < high) << in;
  for (std::string out : {"/var/www", "/var/wwx", "/var/www.", "/srv/"})
    EXPECT_FALSE(out >= low && out < high) << out;
}

}  // namespace
}  // namespace mamori::manager
