#pragma once
// The outbox's on-disk format (docs/formats/outbox.md): segment files named by the
// sequence number of their first record, each a header followed by records, each record
// a fixed header (magic, CRC32C, length, type, severity, sequence) and its payload (one
// event as ECS JSON, no newline). Pure functions over bytes: no I/O here.
//
// The layout is versioned by kSegmentVersion in each segment's header; a reader refuses
// a segment of a later version (it is skipped and reported, never misread).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mamori::outbox {

inline constexpr char kSegmentMagic[8] = {'m', 'a', 'm', 'o', 'r', 'i', 'O', 'B'};
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kSegmentHeaderBytes = 24;
inline constexpr uint32_t kRecordMagic = 0x7e0b5e9a;
inline constexpr size_t kRecordHeaderBytes = 24;
// A record's payload is at most this long; a header that says more is corrupt (a bit
// flipped in the length must not make a reader allocate gigabytes).
inline constexpr uint32_t kMaxPayloadBytes = 16u << 20;

enum class RecordType : uint8_t {
  kEvent = 1,
  // The last record of a segment that was closed on purpose: `seq` is the first sequence
  // number of the next segment. No payload.
  kSeal = 2,
};

// Segment header flags.
inline constexpr uint32_t kSegmentCompacted = 1;  // low-severity records were removed (quota)

// CRC-32C (Castagnoli), as leveldb and ext4 use it.
uint32_t crc32c(uint32_t crc, std::string_view bytes);

// "0000000000000042.seg" for the segment whose first record is sequence 42; nullopt
// for any other name.
std::string segment_name(uint64_t first_seq);
std::optional<uint64_t> parse_segment_name(std::string_view name);

std::string encode_segment_header(uint64_t first_seq, uint32_t flags);
struct SegmentHeader {
  uint32_t version = 0;
  uint32_t flags = 0;
  uint64_t first_seq = 0;
};
// nullopt: not a segment header, or a damaged one.
std::optional<SegmentHeader> decode_segment_header(std::string_view bytes);

struct RecordHeader {
  uint32_t crc = 0;
  uint32_t length = 0;
  RecordType type = RecordType::kEvent;
  uint8_t severity = 0;
  uint64_t seq = 0;
};
// Appends one record to `out`.
void append_record(std::string& out, RecordType type, uint8_t severity, uint64_t seq,
                   std::string_view payload);
// The header at the start of `bytes` (at least kRecordHeaderBytes) when its magic, type
// and length are plausible; the CRC is checked by record_intact().
std::optional<RecordHeader> decode_record_header(std::string_view bytes);
// Whether `payload` is the one the header's CRC covers.
bool record_intact(const RecordHeader& h, std::string_view header_bytes, std::string_view payload);

}  // namespace mamori::outbox
