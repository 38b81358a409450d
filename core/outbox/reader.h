#pragma once
// Reads the outbox's segments (format.h) in sequence order from any position, for the
// consumers that follow it: each sink's follower, the events.jsonl export, later the
// manager link. A reader never writes and never deletes; the writer (outbox.h) may append,
// roll to a new segment, compact or delete old ones while it reads: a segment already
// open is read to its end (the kernel keeps a deleted file until it is closed).
//
// What it does with damage (each counted in stats()):
//   - a record whose magic, length or CRC is wrong: skipped; reading resumes at the next
//     intact record found after it in the segment (a bit flip costs that record only);
//   - an incomplete record at the end of the newest segment: not damage, but a record
//     being written: read() stops there and returns it once it is whole;
//   - an incomplete or damaged tail of an older segment (a crash cut it short): the rest
//     of it is skipped and reading goes on with the next segment;
//   - a segment missing, or deleted by the quota: reading goes on with the next one.
// Lost records show as a jump in the sequence: a record whose seq is above the next()
// the caller had is preceded by a gap of seq - next() records, which the caller reports
// (a follower sends its sink a sink-gap event).
//
// Threads: one owner.

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::outbox {

struct Record {
  uint64_t seq = 0;
  uint8_t severity = 0;
  std::string payload;  // one event as JSON, no newline
};

struct ReaderStats {
  uint64_t corrupt_records = 0;  // damaged records or tails skipped
  uint64_t corrupt_bytes = 0;    // bytes skipped with them
  uint64_t bad_segments = 0;     // segments whose header was unreadable (skipped whole)
};

// The first sequence numbers of the segments in `dir`, ascending (ENOENT: none yet).
Result<std::vector<uint64_t>> list_segments(const std::string& dir);

class SegmentReader {
 public:
  explicit SegmentReader(std::string dir) : dir_(std::move(dir)) {}

  // Reading resumes at the first record whose sequence is >= `next` (at the oldest
  // segment when everything before `next` is gone).
  void seek(uint64_t next);
  // Appends up to `max` records (and not much more than `max_bytes` of payload) in
  // sequence order; returns how many. 0: nothing complete yet (or no segment at all).
  Result<size_t> read(std::vector<Record>& out, size_t max, size_t max_bytes = 8u << 20);
  // The sequence number the reader looks for next: one past the last record returned.
  uint64_t next() const { return next_; }
  const ReaderStats& stats() const { return stats_; }

 private:
  enum class Open { kOpened, kNone, kError };
  Open open_segment(bool forward);
  std::string_view peek(uint64_t off, size_t n);
  bool advance();
  bool resync();

  std::string dir_;
  UniqueFd fd_;
  uint64_t seg_first_ = 0;
  uint64_t off_ = 0;  // of the next record in the open segment
  uint64_t next_ = 0;
  bool positioned_ = false;  // seek() done, or reading went on from a segment
  std::string buf_;
  uint64_t buf_off_ = 0;
  ReaderStats stats_;
};

}  // namespace mamori::outbox
