#include "core/outbox/outbox.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/outbox/cursor.h"
#include "core/outbox/format.h"
#include "core/outbox/reader.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::outbox {
namespace {

using event::Event;
using event::Severity;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<nlohmann::json> events_of(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (const auto& l : lines_of(path)) out.push_back(nlohmann::json::parse(l));  // throws if torn
  return out;
}

// Everything in the segments, in order.
std::vector<Record> records_of(const std::string& dir, uint64_t from = 0,
                               ReaderStats* stats = nullptr) {
  SegmentReader r(dir);
  r.seek(from);
  std::vector<Record> out;
  while (true) {
    auto n = r.read(out, 1000);
    EXPECT_TRUE(n) << n.error().message();
    if (!n || *n == 0) break;
  }
  if (stats) *stats = r.stats();
  return out;
}

std::vector<uint64_t> seqs(const std::vector<Record>& rs) {
  std::vector<uint64_t> out;
  for (const auto& r : rs) out.push_back(r.seq);
  return out;
}

std::vector<uint64_t> range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// An event about a long path, as an attacker's upload makes them (~1 KiB).
Event file_event(std::string_view action, Severity severity, int i) {
  return std::move(
      Event(action, severity, 0).set("mamori.path", std::to_string(i) + std::string(1000, 'x')));
}

struct Paths {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/state/outbox";
  std::string log = tmp.path() + "/log/events.jsonl";
  Options options(Limits l = {}) const { return {dir, log, l}; }
};

TEST(Outbox, StampsContiguousSequencesAndExportsEachEventAsOneLine) {
  Paths p;
  RealEnv env;
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box) << box.error().message();
  box->append(Event("a", Severity::kInfo, 0));
  box->append(Event("b", Severity::kWarning, 0));
  ASSERT_TRUE(box->flush());
  const auto records = records_of(p.dir);
  EXPECT_EQ(seqs(records), range(1, 2));
  EXPECT_EQ(records[1].severity, 5);
  const auto payload = nlohmann::json::parse(records[1].payload);
  EXPECT_EQ(payload["event"]["action"], "b");
  EXPECT_EQ(payload["event"]["sequence"], 2);
  const auto lines = events_of(p.log);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"]["sequence"], 1);
  EXPECT_EQ(lines[1].dump(), payload.dump()) << "the export is the record, byte for byte";
  EXPECT_EQ(box->written(), 2u);
  EXPECT_EQ(box->export_behind(), 0u);
}

TEST(Outbox, TheSequenceSurvivesARestart) {
  Paths p;
  RealEnv env;
  {
    auto box = Outbox::open(env, p.options());
    ASSERT_TRUE(box);
    for (int i = 0; i < 3; ++i) box->append(Event("a", Severity::kInfo, 0));
    ASSERT_TRUE(box->flush());
  }
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box);
  EXPECT_EQ(box->next_sequence(), 4u);
  box->append(Event("b", Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  EXPECT_EQ(seqs(records_of(p.dir)), range(1, 4));
  EXPECT_EQ(events_of(p.log).size(), 4u) << "nothing exported twice after the restart";
}

TEST(Outbox, SequenceInsertPointIsTheTopLevelEventObjectOnly) {
  const std::string j = R"({"a":{"event":{"x":1}},"event":{"action":"q\"event\":{"},"z":1})";
  const size_t at = sequence_insert_point(j);
  ASSERT_NE(at, std::string::npos);
  const auto stamped = nlohmann::json::parse(stamp_sequence(j, at, 7));
  EXPECT_EQ(stamped["event"]["sequence"], 7);
  EXPECT_FALSE(stamped["a"]["event"].contains("sequence"));
  EXPECT_EQ(sequence_insert_point(R"({"x":"\"event\":{"})"), std::string::npos);
}

TEST(Outbox, AFullDiskKeepsTheBatchForTheNextFlush) {
  Paths p;
  testing::FaultEnv env;
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  box->append(Event("kept", Severity::kWarning, 0));
  auto st = box->flush();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENOSPC);
  EXPECT_EQ(box->queued(), 1u);
  EXPECT_TRUE(box->failing());
  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto lines = events_of(p.log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["event"]["action"], "kept");
  EXPECT_EQ(lines[0]["event"]["sequence"], 1) << "a failed write uses no sequence number";
}

TEST(Outbox, ABurstPastTheSpillSizeIsWrittenNotDropped) {
  Paths p;
  RealEnv env;
  auto box = Outbox::open(env, p.options({.spill_bytes = 16 << 10, .max_low_bytes = 32 << 10}));
  ASSERT_TRUE(box);
  // 2 MiB of events in one batch, no flush in between: 64 times the memory bound.
  for (int i = 0; i < 2000; ++i) box->append(file_event("file-allowed", Severity::kInfo, i));
  EXPECT_EQ(box->dropped(), 0u);
  EXPECT_LT(box->queued_bytes(), 16u << 10);
  ASSERT_TRUE(box->flush());
  EXPECT_EQ(lines_of(p.log).size(), 2000u);
  EXPECT_EQ(seqs(records_of(p.dir)), range(1, 2000));
}

TEST(Outbox, WhileWritesFailOnlyLowSeverityEventsAreDroppedAndTheDropIsReported) {
  Paths p;
  testing::FaultEnv env;
  auto box = Outbox::open(env, p.options({.spill_bytes = 1 << 20, .max_low_bytes = 16 << 10}));
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  box->append(Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "index.php"));
  box->append(
      Event("file-repaired", Severity::kWarning, 0).set("mamori.path", "wp-blog-header.php"));
  for (int i = 0; i < 200; ++i) {
    box->append(file_event("file-allowed", Severity::kInfo, i));
    if (i % 50 == 0) {
      EXPECT_FALSE(box->flush());
    }
  }
  EXPECT_GT(box->dropped(), 150u);
  EXPECT_EQ(box->dropped_security(), 0u);
  const uint64_t dropped = box->dropped();

  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto events = events_of(p.log);
  std::set<std::string> repaired;
  uint64_t allowed = 0, reported = 0;
  for (const auto& e : events) {
    const std::string action = e["event"]["action"];
    if (action == "file-repaired") repaired.insert(e["mamori"]["path"].get<std::string>());
    if (action == "file-allowed") ++allowed;
    if (action == "events-dropped") {
      EXPECT_EQ(e["mamori"]["dropped"]["security"], 0);
      EXPECT_EQ(e["event"]["severity"], 5);
      EXPECT_EQ(e["mamori"]["dropped"]["by_action"]["file-allowed"], e["mamori"]["dropped"]["low"]);
      reported += e["mamori"]["dropped"]["low"].get<uint64_t>();
    }
  }
  EXPECT_EQ(repaired, (std::set<std::string>{"index.php", "wp-blog-header.php"}));
  EXPECT_EQ(reported, dropped) << "every drop is reported by an events-dropped event";
  EXPECT_EQ(allowed + dropped, 200u);
  EXPECT_EQ(events.front()["event"]["action"], "file-repaired");
  EXPECT_EQ(seqs(records_of(p.dir)), range(1, events.size())) << "memory drops leave no gap";
}

TEST(Outbox, SecurityEventsGoOnlyPastTheirOwnLargerBoundAndACriticalEventSaysSo) {
  Paths p;
  testing::FaultEnv env;
  auto box = Outbox::open(
      env, p.options(
               {.spill_bytes = 1 << 20, .max_low_bytes = 4 << 10, .max_security_bytes = 64 << 10}));
  ASSERT_TRUE(box);
  env.fail_write_from(1, ENOSPC);
  for (int i = 0; i < 40; ++i) box->append(file_event("file-restored", Severity::kWarning, i));
  EXPECT_FALSE(box->flush());
  EXPECT_EQ(box->dropped(), 0u) << "40 KiB of security events are kept past the low bound";
  for (int i = 40; i < 100; ++i) box->append(file_event("file-restored", Severity::kWarning, i));
  EXPECT_GT(box->dropped_security(), 0u);
  EXPECT_LE(box->queued_bytes(), 64u << 10);
  env.fail_write_from(0);
  ASSERT_TRUE(box->flush());
  const auto events = events_of(p.log);
  const auto& last = events.back();
  ASSERT_EQ(last["event"]["action"], "events-dropped");
  EXPECT_EQ(last["event"]["severity"], 7);
  EXPECT_EQ(last["mamori"]["dropped"]["security"].get<uint64_t>(), box->dropped_security());
  EXPECT_EQ(events[events.size() - 2]["mamori"]["path"].get<std::string>().substr(0, 2), "99");
}

TEST(Outbox, AWriteCutShortByAFullDiskLeavesNoTornRecordAndLosesNothing) {
  Paths p;
  testing::FaultEnv env;
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box);
  std::set<std::string> ids;
  size_t record_size = 0;
  for (int i = 0; i < 5; ++i) {
    Event e = file_event("file-restored", Severity::kWarning, i);
    record_size = kRecordHeaderBytes + e.to_json_line().size() + 14;  // "sequence":N,
    ids.insert(e.id());
    box->append(e);
  }
  env.room_for_bytes(record_size * 5 / 2);  // two and a half records
  ASSERT_FALSE(box->flush());
  ReaderStats stats;
  EXPECT_EQ(seqs(records_of(p.dir, 0, &stats)), range(1, 2)) << "the torn third was cut away";
  EXPECT_EQ(stats.corrupt_records, 0u);
  env.room_for_bytes(~uint64_t{0});
  ASSERT_TRUE(box->flush());
  std::set<std::string> seen;
  for (const auto& r : records_of(p.dir))
    seen.insert(nlohmann::json::parse(r.payload)["event"]["id"].get<std::string>());
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(seqs(records_of(p.dir)), range(1, 5)) << "each exactly once";
  EXPECT_EQ(events_of(p.log).size(), 5u);
}

TEST(Outbox, ReopenFollowsARotationOfTheExport) {
  Paths p;
  RealEnv env;
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box);
  box->append(Event("old", Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  ASSERT_EQ(::rename(p.log.c_str(), (p.log + ".1").c_str()), 0);
  ASSERT_TRUE(box->reopen());
  box->append(Event("new", Severity::kInfo, 0));
  ASSERT_TRUE(box->flush());
  EXPECT_EQ(lines_of(p.log).size(), 1u);
  EXPECT_EQ(lines_of(p.log + ".1").size(), 1u);
}

TEST(Outbox, AnExportThatCannotBeWrittenCatchesUpFromTheSegments) {
  Paths p;
  RealEnv env;
  {
    auto box = Outbox::open(env, p.options());
    ASSERT_TRUE(box);
    box->append(Event("a", Severity::kInfo, 0));
    ASSERT_TRUE(box->flush());
  }
  // Written without an export (as if its disk were full), then with it again.
  {
    auto box = Outbox::open(env, {p.dir, "", {}});
    ASSERT_TRUE(box);
    for (int i = 0; i < 3; ++i) box->append(Event("b", Severity::kInfo, 0));
    ASSERT_TRUE(box->flush());
  }
  auto box = Outbox::open(env, p.options());
  ASSERT_TRUE(box);
  EXPECT_EQ(box->export_behind(), 3u) << "it resumes after the last sequence in the file";
  ASSERT_TRUE(box->flush());
  const auto lines = events_of(p.log);
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i]["event"]["sequence"], i + 1);
}

// --- segments, cursors, quota ---

std::vector<uint64_t> segments_of(const std::string& dir) { return list_segments(dir).value(); }

TEST(Outbox, SegmentsRollAndAreDeletedOnlyOnceEveryCursorPassedThem) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "sink-a", 1));
  auto box = Outbox::open(env, p.options({.segment_bytes = 8 << 10}));
  ASSERT_TRUE(box);
  for (int i = 0; i < 40; ++i) {
    box->append(file_event("file-restored", Severity::kWarning, i));
    ASSERT_TRUE(box->flush());
  }
  const auto all = segments_of(p.dir);
  ASSERT_GT(all.size(), 4u) << "about seven records a segment";
  EXPECT_EQ(seqs(records_of(p.dir)), range(1, 40)) << "read across the seals";
  // The cursor moves past the first three segments: they go at the next roll.
  ASSERT_TRUE(save_cursor(env, p.dir, "sink-a", all[3]));
  for (int i = 40; i < 50; ++i) {
    box->append(file_event("file-restored", Severity::kWarning, i));
    ASSERT_TRUE(box->flush());
  }
  const auto now = segments_of(p.dir);
  EXPECT_EQ(now.front(), all[3]);
  EXPECT_EQ(seqs(records_of(p.dir, all[3])), range(all[3], 50));
}

TEST(Outbox, OverTheQuotaLowSeverityGoesFirstThenTheOldestAndEachDropIsReported) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "down", 1));  // a sink that never reads
  auto box = Outbox::open(env, p.options({.segment_bytes = 16 << 10, .quota_bytes = 64 << 10}));
  ASSERT_TRUE(box);
  // One security event in five.
  for (int i = 0; i < 100; ++i) {
    box->append(file_event(i % 5 ? "file-allowed" : "file-restored",
                           i % 5 ? Severity::kInfo : Severity::kWarning, i));
    ASSERT_TRUE(box->flush());
  }
  EXPECT_GT(box->quota_dropped(), 0u);
  EXPECT_EQ(box->quota_dropped_security(), 0u) << "compaction was enough";
  uint64_t total = 0;
  for (const auto s : segments_of(p.dir))
    total += std::filesystem::file_size(p.dir + "/" + segment_name(s));
  EXPECT_LE(total, (64u << 10) + (16u << 10) + 2048) << "the quota, plus the segment being written";
  // Every security event is still there; the reader sees the gaps as sequence jumps.
  uint64_t restored = 0, reported = 0;
  for (const auto& r : records_of(p.dir, 1)) {
    const auto j = nlohmann::json::parse(r.payload);
    if (j["event"]["action"] == "file-restored") ++restored;
    if (j["event"]["action"] == "outbox-dropped") {
      reported += j["mamori"]["dropped"]["low"].get<uint64_t>();
      EXPECT_EQ(j["mamori"]["dropped"]["reason"], "quota");
    }
  }
  EXPECT_EQ(restored, 20u);
  EXPECT_EQ(reported, box->quota_dropped());

  // Security events alone past the quota: the oldest segments go whole.
  for (int i = 0; i < 100; ++i) {
    box->append(file_event("file-restored", Severity::kWarning, i));
    ASSERT_TRUE(box->flush());
  }
  EXPECT_GT(box->quota_dropped_security(), 0u);
  const auto rest = records_of(p.dir, 1);
  EXPECT_EQ(rest.back().seq, box->next_sequence() - 1) << "the newest are kept";
}

// --- corruption ---

std::string segment_path(const Paths& p, uint64_t first) {
  return p.dir + "/" + segment_name(first);
}

void write_some(const Paths& p, int n, Limits l = {}) {
  RealEnv env;
  auto box = Outbox::open(env, p.options(l));
  ASSERT_TRUE(box);
  for (int i = 0; i < n; ++i) {
    box->append(file_event("file-restored", Severity::kWarning, i));
    ASSERT_TRUE(box->flush());
  }
}

TEST(OutboxCorruption, ATornTailIsNotTrustedAndTheWriterCutsItAtOpen) {
  Paths p;
  write_some(p, 5);
  const std::string seg = segment_path(p, 1);
  const auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 100);  // the fifth record cut short by a crash
  ReaderStats stats;
  EXPECT_EQ(seqs(records_of(p.dir, 0, &stats)), range(1, 4));
  write_some(p, 2);
  EXPECT_EQ(seqs(records_of(p.dir, 0, &stats)), range(1, 6))
      << "the sequence goes on after the last intact record";
  EXPECT_EQ(stats.corrupt_records, 0u);
}

TEST(OutboxCorruption, AFlippedBitCostsThatRecordOnlyAndIsReported) {
  Paths p;
  write_some(p, 5);
  const std::string seg = segment_path(p, 1);
  const auto size = std::filesystem::file_size(seg);
  for (const uint64_t at : {uint64_t{kSegmentHeaderBytes + 9}, size / 2}) {  // a length, a payload
    SCOPED_TRACE(at);
    Paths q;
    write_some(q, 5);
    const std::string s = segment_path(q, 1);
    const int fd = ::open(s.c_str(), O_RDWR);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(at)), 1);
    c ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(at)), 1);
    ::close(fd);
    ReaderStats stats;
    const auto got = seqs(records_of(q.dir, 0, &stats));
    EXPECT_EQ(got.size(), 4u);
    EXPECT_EQ(got.back(), 5u) << "the records after the damage are read";
    EXPECT_EQ(stats.corrupt_records, 1u);
    EXPECT_GT(stats.corrupt_bytes, 0u);
    // The writer does not cut intact records behind damage, and goes on after them.
    write_some(q, 1);
    EXPECT_EQ(seqs(records_of(q.dir)).back(), 6u);
  }
}

TEST(OutboxCorruption, AMissingSegmentIsAGapInTheSequence) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "hold", 1));  // keeps every segment
  write_some(p, 30, {.segment_bytes = 8 << 10});
  const auto segs = segments_of(p.dir);
  ASSERT_GE(segs.size(), 3u);
  std::filesystem::remove(segment_path(p, segs[1]));
  const auto got = seqs(records_of(p.dir, 1));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front(), 1u);
  // The records of the missing segment are absent, and the reader goes on after them.
  EXPECT_EQ(got.size(), 30u - (segs[2] - segs[1]));
  EXPECT_EQ(got.back(), 30u);
  EXPECT_EQ(std::find(got.begin(), got.end(), segs[1]), got.end());
}

TEST(OutboxCorruption, AReaderAtASealWaitsForTheNextSegmentAndTheWriterMakesIt) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "hold", 1));
  write_some(p, 12, {.segment_bytes = 8 << 10});
  auto segs = segments_of(p.dir);
  ASSERT_GE(segs.size(), 2u);
  // A crash between the seal and the creation of the next segment.
  std::filesystem::remove(segment_path(p, segs.back()));
  SegmentReader r(p.dir);
  r.seek(1);
  std::vector<Record> got;
  ASSERT_TRUE(r.read(got, 1000));
  EXPECT_EQ(seqs(got), range(1, segs.back() - 1));
  write_some(p, 1, {.segment_bytes = 8 << 10});
  EXPECT_EQ(segments_of(p.dir).back(), segs.back()) << "made again, named by the seal";
  got.clear();
  ASSERT_TRUE(r.read(got, 1000));
  EXPECT_EQ(seqs(got), range(segs.back(), segs.back())) << "the sequence goes on from the seal";
  EXPECT_EQ(r.stats().corrupt_records, 0u);
}

TEST(OutboxCorruption, ADamagedCursorIsReportedAndHoldsEverything) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "s", 5));
  EXPECT_EQ(**load_cursor(p.dir, "s"), 5u);
  {
    std::ofstream out(cursor_path(p.dir, "s"));
    out << "mamori-outbox-cursor 1 9 123\n";  // wrong CRC
  }
  auto c = load_cursor(p.dir, "s");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().errnum, EBADMSG);
  EXPECT_FALSE(decode_cursor("mamori-outbox-cursor 1 \n").has_value());
  EXPECT_FALSE(decode_cursor(encode_cursor(17).substr(0, 20)).has_value());
  EXPECT_EQ(decode_cursor(encode_cursor(17)), 17u);
  // The writer keeps every segment for it (until the quota).
  write_some(p, 30, {.segment_bytes = 8 << 10});
  EXPECT_EQ(segments_of(p.dir).front(), 1u);
  EXPECT_FALSE(valid_cursor_name("../x"));
  EXPECT_FALSE(valid_cursor_name(""));
  EXPECT_TRUE(valid_cursor_name("webhook-1.x"));
}

TEST(OutboxCorruption, ASegmentOfALaterVersionIsSkippedNotMisread) {
  Paths p;
  write_some(p, 3);
  const int fd = ::open(segment_path(p, 1).c_str(), O_RDWR);
  const char v = 9;
  ASSERT_EQ(::pwrite(fd, &v, 1, 8), 1);
  ::close(fd);
  ReaderStats stats;
  EXPECT_TRUE(records_of(p.dir, 0, &stats).empty());
  EXPECT_EQ(stats.bad_segments, 1u);
  RealEnv env;
  auto box = Outbox::open(env, p.options());
  ASSERT_FALSE(box);
  EXPECT_EQ(box.error().errnum, EPROTO);
}

// --- several writers ---

TEST(Outbox, TwoWritersKeepTheSequenceUniqueAndContiguous) {
  Paths p;
  RealEnv env;
  ASSERT_TRUE(save_cursor(env, p.dir, "hold", 1));  // keeps every segment
  auto writer = [&](const char* action) {
    RealEnv e;
    auto box = Outbox::open(e, p.options({.segment_bytes = 32 << 10}));
    ASSERT_TRUE(box);
    for (int i = 0; i < 300; ++i) {
      box->append(file_event(action, Severity::kWarning, i));
      if (i % 3 == 0) {
        ASSERT_TRUE(box->flush());
      }
    }
    ASSERT_TRUE(box->flush());
  };
  std::thread a(writer, "a"), b(writer, "b");
  a.join();
  b.join();
  const auto records = records_of(p.dir);
  EXPECT_EQ(seqs(records), range(1, 600));
  std::multiset<uint64_t> exported;
  for (const auto& e : events_of(p.log)) exported.insert(e["event"]["sequence"].get<uint64_t>());
  EXPECT_EQ(exported.size(), 600u);
  EXPECT_EQ(std::set<uint64_t>(exported.begin(), exported.end()).size(), 600u)
      << "each writer exports what the other wrote exactly once";
}

}  // namespace
}  // namespace mamori::outbox
