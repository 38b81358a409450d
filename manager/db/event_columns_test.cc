#include "manager/db/event_columns.h"

#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/json_depth.h"
#include "core/proto/channel.h"
#include "manager/db/json_scan.h"

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
  EXPECT_EQ(parse_rfc3339_ns("2023-11-14T22:13:20." + std::string(100, '5') + "Z"),
            1700000000 * kSec + 555555555);
  for (const char* bad : {"", "yesterday", "2023-11-14 22:13:20Z", "2023-11-14T22:13:20",
                          "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0200",
                          // beyond int64 nanoseconds (found by fuzz_channel)
                          "1495-01-01T00:00:01.5+01:00", "9999-12-31T23:59:59Z"})
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
        R"({"v":1.0,"type":"events","events":[]})", R"({"v":1,"v":2,"type":"events","events":[]})",
        R"({"v":1,"type":"events","events":[],"resent":"yes"})",
        R"({"v":1,"type":"events","events":[],"resent":null})",
        R"({"v":1,"type":"events","events":[],"resent":true,"resent":0})"}) {
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

TEST(EventColumnsTest, ScanningReadsTheResentFlag) {
  bool resent = false;
  auto b =
      scan_events_message("k", R"({"v":1,"type":"events","resent": true,"events":[]})", &resent);
  ASSERT_TRUE(b && *b);
  EXPECT_TRUE(resent);
  b = scan_events_message("k", R"({"v":1,"type":"events","events":[],"resent":false})", &resent);
  ASSERT_TRUE(b && *b);
  EXPECT_FALSE(resent);
  b = scan_events_message(
      "k", R"({"resent":true,"v":1,"type":"events","events":[],"resent":false})", &resent);
  ASSERT_TRUE(b && *b);
  EXPECT_FALSE(resent) << "the last one wins";
  b = scan_events_message("k", R"({"v":1,"type":"events","events":[]})", &resent);
  ASSERT_TRUE(b && *b);
  EXPECT_FALSE(resent);
}

// ---- the scan's JSON: exactly nlohmann's -------------------------------------------

// 2^1024 - 2^970: the least number strtod rounds to infinity (nlohmann refuses it).
const std::string kOverflow =
    "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017"
    "977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273"
    "854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704"
    "342711559699508093042880177904174497792";
// The same less one.
const std::string kBelowOverflow = kOverflow.substr(0, kOverflow.size() - 1) + "1";

void expect_as_nlohmann(const std::vector<std::string>& texts, bool valid) {
  for (const std::string& t : texts) {
    EXPECT_EQ(nlohmann::json::accept(t), valid) << "the test's own premise: " << t;
    EXPECT_EQ(is_json(t), valid) << t;
  }
}

TEST(JsonScanTest, AcceptsAndRefusesTheTextsNlohmannDoes) {
  using namespace std::string_literals;
  // Structure, white space, the byte order mark, the end (a NUL ends the input for nlohmann).
  expect_as_nlohmann(
      {"{}", "[]", " \t\r\n{} \n", "\xEF\xBB\xBF{}", "\xEF\xBB\xBF 1", "true", "false", "null",
       R"(["a",{"b":[null,{}]},[],""])", R"({"a":1,"a":2})", "{}\0"s, "{} \0 junk"s, "1\0x"s},
      true);
  expect_as_nlohmann(
      {"", " ", "{} x", "{}{}", "1 2", "{}\f", "\v{}", "\0"s, "\0{}"s, "[\0]"s, "[1\0"s,
       "\xEF\xBB\xBF", "\xEF\xBB{}", " \xEF\xBB\xBF{}", "{}\xEF\xBB\xBF", "\xEF\xBB\xBF\0"s},
      false);
  expect_as_nlohmann({"[1,]", R"({"a":1,})", "[,1]", "{,}", "[1 2]", R"({"a" 1})", R"({"a":})",
                      "{1:2}", "{'a':1}", "[}", "{]", "[[]", "[]]", "tru", "nul", "True", "null1"},
                     false);
  // Numbers: the grammar, and a double's range (strtod's rounding at its edge).
  expect_as_nlohmann({"0", "-0", "-0.0", "1.5e-3", "1E+2", "1e0001", "18446744073709551616",
                      "-9223372036854775809", "1e-400", "0e999999999999999999999", "0.000e400",
                      "1.7976931348623157e308", "1.7976931348623158e308", kBelowOverflow,
                      "0." + kBelowOverflow + "e309", "0.00" + kBelowOverflow + "e311",
                      "1" + std::string(308, '0')},
                     true);
  expect_as_nlohmann({"01", "-01", "-", "1.", ".5", "1.e5", "1e", "1e+", "+1", "0x10", "NaN",
                      "Infinity", "-Infinity"},
                     false);
  expect_as_nlohmann(
      {"1e400", "-1e400", "1e309", "1.7976931348623159e308", kOverflow, "-" + kOverflow,
       "0." + kOverflow + "e309", kBelowOverflow + "0", "1" + std::string(309, '0')},
      false);
  // Strings: escapes, surrogates, control characters, UTF-8.
  expect_as_nlohmann(
      {R"("\u0000")", "\"\x7f\"", R"("\ud83d\ude00\u00e9\/\b\f\n\r\t\"\\")", R"("\uDBFF\uDFFF")",
       "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF\""},
      true);
  expect_as_nlohmann(
      {"\"abc", R"("\")", "\"\x01\"", "\"\x1f\"", "\"a\nb\"", "\"\0\""s, R"("\ud800")",
       R"("\udc00")", R"("\ud800\u0041")", R"("\ud800\n")", R"("\udc00\ud800")", R"("\u12")",
       R"("\u12G4")", R"("\x41")", R"("\'")", R"("\U0041")"},
      false);
  expect_as_nlohmann({"\"\xC0\xAF\"", "\"\xC1\xBF\"", "\"\xE0\x80\xAF\"", "\"\xED\xA0\x80\"",
                      "\"\xF0\x80\x80\xAF\"", "\"\xF4\x90\x80\x80\"", "\"\xF5\x80\x80\x80\"",
                      "\"\xFF\"", "\"\x80\"", "\"\xE2\x82\"", "\"\xE2\x82", "\"\xC3\xA9\xC3\""},
                     false);
}

TEST(JsonScanTest, ChecksEveryByteOfAStringWhereverItFallsInAWord) {
  // The scan takes plain characters eight at a time: each kind of stop at each offset.
  const std::vector<std::string> inner = {
      "\"",           "\\n",     "\\u00e9",          "\x01", "\x7f", "\xC3\xA9", "\xC3",
      "\xED\xA0\x80", "\\ud800", "\xF0\x9F\x98\x80", "\\",   "\x1f"};
  for (size_t before = 0; before < 17; ++before)
    for (const std::string& x : inner)
      for (size_t after : {0, 1, 7, 8, 9}) {
        const std::string t =
            "[\"" + std::string(before, 'a') + x + std::string(after, 'b') + "\"]";
        EXPECT_EQ(is_json(t), nlohmann::json::accept(t)) << t;
      }
}

TEST(JsonScanTest, NestsAsDeepAsTheTextDoesWithoutRecursion) {
  const size_t depth = 1'000'000;
  std::string deep = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_TRUE(is_json(deep));
  deep[depth + 5] = '}';
  EXPECT_FALSE(is_json(deep));
  std::string objects;
  for (int i = 0; i < 5000; ++i) objects += R"({"a":[)";
  for (int i = 0; i < 5000; ++i) objects += "]}";
  EXPECT_TRUE(is_json(objects));
  EXPECT_FALSE(is_json(objects.substr(0, objects.size() - 1)));
}

TEST(JsonScanTest, DecodesStringsAndComparesKeysAsNlohmannReadsThem) {
  for (const char* text : {R"("plain")", R"("a\u0000b")", R"("\u0065vent")",
                           R"("\ud83d\ude00 \u00e9\u20ac \/\b\f\n\r\t\"\\")", "\"\xC3\xA9\""}) {
    JsonScanner s(text);
    JsonString v;
    ASSERT_TRUE(s.string(v)) << text;
    std::string decoded = "junk";
    v.decode_to(decoded);
    EXPECT_EQ(decoded, nlohmann::json::parse(text).get<std::string>()) << text;
    if (decoded.size() <= JsonString::kMaxCompared) {
      EXPECT_TRUE(v.equals(decoded)) << text;
    }
  }
  JsonScanner s(R"("\u0065vent")");
  JsonString key;
  ASSERT_TRUE(s.string(key));
  EXPECT_TRUE(key.escaped);
  EXPECT_TRUE(key.equals("event"));
  EXPECT_FALSE(key.equals("even"));
  EXPECT_FALSE(key.equals("events"));
}

TEST(JsonScanTest, TypesNumbersAsNlohmannDoes) {
  struct Case {
    const char* text;
    bool integer;
    int64_t value;
  };
  for (const Case& c :
       {Case{"0", true, 0}, Case{"-0", true, 0}, Case{"42", true, 42},
        Case{"-9223372036854775808", true, INT64_MIN},
        Case{"9223372036854775808", true, INT64_MIN},  // unsigned, wraps
        Case{"18446744073709551615", true, -1}, Case{"18446744073709551616", false, 0},
        Case{"1.0", false, 0}, Case{"1e3", false, 0}, Case{"-9223372036854775809", false, 0}}) {
    JsonScanner s(c.text);
    JsonNumber n;
    ASSERT_TRUE(s.number(n) && s.at_end()) << c.text;
    const nlohmann::json j = nlohmann::json::parse(c.text);
    EXPECT_EQ(n.is_integer(), c.integer) << c.text;
    EXPECT_EQ(n.is_integer(), j.is_number_integer()) << c.text;
    if (c.integer) {
      EXPECT_EQ(n.as_int64(), c.value) << c.text;
      EXPECT_EQ(n.as_int64(), j.get<int64_t>()) << c.text;
    }
  }
}

// ---- scan_events_message against the decoder --------------------------------------

// What the channel's decoder and extract_event_batch make of `text`, in the scan's terms.
Result<std::optional<EventBatch>> decoded(std::string_view text) {
  auto m = proto::channel::decode_agent_message(text);
  const auto* ev = m ? std::get_if<proto::channel::Events>(&*m) : nullptr;
  if (!ev) return std::nullopt;
  auto b = extract_event_batch("k", ev->events);
  if (!b) return tl::unexpected(b.error());
  return std::optional<EventBatch>(std::move(*b));
}

// The scan of `text`, checked against the decoder's reading: both refuse it, or both read
// it as the same rows (a text the decoder does not take as an events message may be
// either not one for the scan, or refused).
Result<std::optional<EventBatch>> scanned(const std::string& text) {
  auto s = scan_events_message("k", text);
  auto d = decoded(text);
  if (s && *s) {
    EXPECT_TRUE(d && *d) << "the scan took what the decoder refused: " << text;
    if (d && *d) {
      EXPECT_EQ((*s)->rows.size(), (*d)->rows.size()) << text;
      for (size_t i = 0; i < std::min((*s)->rows.size(), (*d)->rows.size()); ++i) {
        const EventColumns& a = (*s)->rows[i];
        const EventColumns& b = (*d)->rows[i];
        EXPECT_EQ(std::tie(a.id, a.action, a.path, a.ip, a.sequence, a.time_ns, a.severity),
                  std::tie(b.id, b.action, b.path, b.ip, b.sequence, b.time_ns, b.severity))
            << text;
        EXPECT_EQ(nlohmann::json::parse(a.json), nlohmann::json::parse(b.json)) << text;
      }
    }
  } else if (s) {
    EXPECT_FALSE(d && *d) << "the scan did not see the decoder's events message: " << text;
  } else {
    EXPECT_FALSE(d && *d) << "the scan refused what the decoder took: " << text;
  }
  return s;
}

// A message of one good event with `member` added to it.
std::string message_with(const std::string& member) {
  return R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1},)" + member + "}]}";
}

bool is_batch(const Result<std::optional<EventBatch>>& r) { return r && *r; }
bool not_json(const Result<std::optional<EventBatch>>& r) { return r && !*r; }

TEST(EventColumnsTest, ScanningComparesEscapedKeysAsTheirUnescapedForm) {
  auto b = scanned(
      R"({"\u0076":1,"typ\u0065":"\u0065vents","\u0065vents":[{"ev\u0065nt":{"\u0069d":"x\u00e9\n","s\u0065quence":3,)"
      R"("\u0061ction":"a\/b","severity":2},"fil\u0065":{"pa\u0074h":"\/var\\www"},)"
      R"("sourc\u0065":{"i\u0070":"192.0.2.\u0031"},"\u0040timestamp":"2023-11-14T22:13:20\u005a"}]})");
  ASSERT_TRUE(is_batch(b));
  const EventColumns& r = (*b)->rows.at(0);
  EXPECT_EQ(r.id, "x\xC3\xA9\n");
  EXPECT_EQ(r.sequence, 3);
  EXPECT_EQ(r.action, "a/b");
  EXPECT_EQ(r.severity, 2);
  EXPECT_EQ(r.path, "/var\\www");
  EXPECT_EQ(r.ip, "192.0.2.1");
  EXPECT_EQ(r.time_ns, 1700000000 * kSec);
  // Keys that only look alike are other keys.
  b = scanned(
      message_with(R"("file":{"path\u0000":"/x","Path":"/y","pat":"/z"},"even":{"id":"q"})"));
  ASSERT_TRUE(is_batch(b));
  EXPECT_EQ((*b)->rows.at(0).path, "");
  EXPECT_EQ((*b)->rows.at(0).id, "a");
}

TEST(EventColumnsTest, ScanningTakesTheLastOfDuplicateKeysWhole) {
  auto b = scanned(message_with(
      R"("@timestamp":"2023-11-14T22:13:20Z","@timestamp":"2023-11-14T22:13:21Z","file":{"path":"/a"},)"
      R"("file":{"name":"x"},"source":{"ip":"192.0.2.1","ip":"192.0.2.2"},"event":{"id":"b","sequence":2,)"
      R"("action":"x","severity":4,"action":"y","severity":"high","sequence":5})"));
  ASSERT_TRUE(is_batch(b));
  const EventColumns& r = (*b)->rows.at(0);
  EXPECT_EQ(r.time_ns, 1700000001 * kSec);
  EXPECT_EQ(r.path, "") << "the second file object has no path";
  EXPECT_EQ(r.ip, "192.0.2.2");
  EXPECT_EQ(r.id, "b");
  EXPECT_EQ(r.action, "y");
  EXPECT_EQ(r.severity, 0) << "the last severity is not an integer";
  EXPECT_EQ(r.sequence, 5);
  b = scanned(message_with(
      R"("@timestamp":"2023-11-14T22:13:2\u0031Z","@timestamp":"2023-11-14T22:13:2\u0032Z")"));
  ASSERT_TRUE(is_batch(b));
  EXPECT_EQ((*b)->rows.at(0).time_ns, 1700000002 * kSec);
  // A valid @timestamp, then one that is not a string: refused.
  EXPECT_FALSE(scanned(message_with(R"("@timestamp":"2023-11-14T22:13:20Z","@timestamp":null)")));
  EXPECT_TRUE(
      is_batch(scanned(message_with(R"("@timestamp":5,"@timestamp":"2023-11-14T22:13:20Z")"))));
  // The envelope's keys too.
  EXPECT_TRUE(not_json(scanned(R"({"v":1,"type":"events","events":[],"type":"hello"})")));
  EXPECT_TRUE(
      is_batch(scanned(R"({"v":2,"type":"x","events":7,"v":1,"type":"events","events":[]})")));
}

TEST(EventColumnsTest, ScanningRefusesTextThatIsNotJsonAnywhere) {
  // Wherever the fault is, in a value the scan looks at or one it passes over, the
  // message is not JSON (nullopt, for the decoder to name), even after a bad event.
  std::vector<std::string> faults = {
      "\"x\":\"\xff\"",  "\"x\":\"\xC0\xAF\"",    "\"x\":\"\xED\xA0\x80\"",
      R"("x":"\ud800")", R"("x":"\udc00\ud800")", "\"x\":\"a\x01\"",
      "\"x\":\"a\tb\"",  R"("x":"\q")",           "\"\xff\":1"};
  for (const char* f : {R"("x":1e400)", R"("x":-1e400)", R"("x":01)", R"("x":-)", R"("x":1.)",
                        R"("x":[1,])", R"("x":{"a":1,})", R"("x":[1}])", R"("x":tru)", R"("x":NaN)",
                        R"("event":{"id":"\ud800","sequence":1})"})
    faults.emplace_back(f);
  faults.emplace_back("\"file\":{\"path\":\"\xff\"}");
  for (const std::string& bad : faults) {
    EXPECT_TRUE(not_json(scanned(message_with(bad)))) << bad;
    EXPECT_TRUE(not_json(scanned(
        R"({"v":1,"type":"events","events":[[],{"event":{"id":"a","sequence":1},)" + bad + "}]}")))
        << "after a bad event: " << bad;
  }
  const std::string good = message_with(R"("x":1)");
  ASSERT_TRUE(is_batch(scanned(good)));
  for (const std::string& bad : std::vector<std::string>{
           "", " ", good + ",", good + "}", good + "x", good + good,
           good.substr(0, good.size() - 1), "\xEF\xBB" + good, good + "\xEF\xBB\xBF",
           R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1}},]})",
           R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1},}]})",
           R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":1}}],})"})
    EXPECT_TRUE(not_json(scanned(bad))) << bad;
  EXPECT_TRUE(is_batch(scanned("\xEF\xBB\xBF" + good))) << "a byte order mark at the start";
  EXPECT_TRUE(is_batch(scanned(" \r\n\t" + good + " \n")));
  EXPECT_TRUE(is_batch(scanned(good + std::string(" \0 }junk", 8))))
      << "nlohmann reads nothing after a NUL where a token would start";
  EXPECT_TRUE(is_batch(scanned(message_with(R"("x":"\u0000\ud83d\ude00\u00e9)"
                                            "\xC3\xA9\""))));
  EXPECT_TRUE(is_batch(scanned(message_with(R"("x":[-0,0.5e-400,18446744073709551616,1E+2])"))));
}

TEST(EventColumnsTest, ScanningLeavesTooDeepMessagesToTheDecoder) {
  // Stored, an event nested a million levels deep would overflow the stack of whatever
  // copies or prints it later (the API, the live stream): the scan takes no message past
  // kMaxJsonDepth and the decoder refuses it (json_depth.h); the JSON scanner itself reads
  // any depth (JsonScanTest).
  const size_t depth = 1'000'000;  // within kMaxMessageBytes
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_TRUE(not_json(scan_events_message("k", message_with(R"("x":)" + deep))));
  auto d = proto::channel::decode_agent_message(message_with(R"("x":)" + deep));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message, "the message nests deeper than 64 levels");
  // The envelope, the events array and the event are 3 levels: 61 more are taken.
  const std::string at_limit =
      std::string(kMaxJsonDepth - 3, '[') + std::string(kMaxJsonDepth - 3, ']');
  EXPECT_TRUE(is_batch(scanned(message_with(R"("x":)" + at_limit))));
  EXPECT_TRUE(not_json(scanned(message_with(R"("x":[)" + at_limit + "]"))));
  // An events message nested in an event is only a value of it.
  auto b = scanned(message_with(
      R"("nested":{"v":1,"type":"events","events":[{"event":{"id":"no","sequence":9}}]})"));
  ASSERT_TRUE(is_batch(b));
  ASSERT_EQ((*b)->rows.size(), 1u);
  EXPECT_EQ((*b)->rows[0].id, "a");
}

TEST(EventColumnsTest, ScanningTypesNumbersAsTheDecoderDoes) {
  auto with_sequence = [](const std::string& n) {
    return scanned(R"({"v":1,"type":"events","events":[{"event":{"id":"a","sequence":)" + n +
                   "}}]}");
  };
  EXPECT_TRUE(is_batch(with_sequence("9223372036854775807")));
  EXPECT_TRUE(is_batch(with_sequence("1 ")));
  for (const char* refused : {"-0", "0", "-1", "1.0", "1e3", "18446744073709551615",
                              "18446744073709551616", "9223372036854775808", "\"1\""}) {
    auto b = with_sequence(refused);
    ASSERT_FALSE(b) << refused;
    EXPECT_NE(b.error().message().find("event.sequence"), std::string::npos) << refused;
  }
  for (const char* not_json_at_all : {"01", "1e400", "+1", "1.", "-"})
    EXPECT_TRUE(not_json(with_sequence(not_json_at_all))) << not_json_at_all;
  // "v" is 1 only as an integer.
  EXPECT_TRUE(is_batch(scanned(R"({"v":1,"type":"events","events":[]})")));
  for (const char* v : {"1.0", "1e0", "-1", "18446744073709551617", "\"1\"", "true"})
    EXPECT_TRUE(not_json(scanned(R"({"v":)" + std::string(v) + R"(,"type":"events","events":[]})")))
        << v;
}

TEST(EventColumnsTest, ScanningRefusesControlCharactersAndNulInColumns) {
  // Raw control characters are not JSON; escaped ones are, and a NUL in a column is refused.
  EXPECT_TRUE(not_json(scanned(message_with("\"file\":{\"path\":\"/a\nb\"}"))));
  auto b = scanned(message_with(R"("file":{"path":"/a\u0000b"})"));
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("NUL"), std::string::npos);
  b = scanned(R"({"v":1,"type":"events","events":[{"event":{"id":"a\u0000","sequence":1}}]})");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("event.id"), std::string::npos);
  b = scanned(message_with(R"("file":{"path":"/a\nb\u001f"})"));
  ASSERT_TRUE(is_batch(b));
  EXPECT_EQ((*b)->rows[0].path, "/a\nb\x1f");
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
