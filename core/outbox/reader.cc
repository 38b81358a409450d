#include "core/outbox/reader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/fs/admin_files.h"
#include "core/outbox/format.h"

namespace mamori::outbox {
namespace {

constexpr size_t kReadChunk = 256u << 10;

}  // namespace

Result<std::vector<uint64_t>> list_segments(const std::string& dir) {
  auto fd = MAMORI_TRY(fs::open_admin_read(dir));
  DIR* d = ::fdopendir(fd.get());
  if (!d) return fail_errno("opendir", dir);
  (void)fd.release();  // closedir() closes it
  std::vector<uint64_t> out;
  while (const dirent* e = ::readdir(d)) {
    if (auto seq = parse_segment_name(e->d_name)) out.push_back(*seq);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void SegmentReader::seek(uint64_t next) {
  next_ = next;
  fd_.reset();
  positioned_ = false;
  buf_.clear();
}

// Opens the segment holding next_ (the last one starting at or before it), or with
// `forward` the first one after the open segment.
SegmentReader::Open SegmentReader::open_segment(bool forward) {
  auto list = list_segments(dir_);
  if (!list) return list.error().errnum == ENOENT ? Open::kNone : Open::kError;
  while (true) {
    std::optional<uint64_t> pick;
    if (forward) {
      for (const uint64_t s : *list)
        if (s > seg_first_) {
          pick = s;
          break;
        }
    } else {
      for (const uint64_t s : *list)
        if (s <= next_) pick = s;
      if (!pick && !list->empty()) pick = list->front();
    }
    if (!pick) return Open::kNone;
    auto fd = fs::open_admin_read(dir_ + "/" + segment_name(*pick));
    if (!fd) {
      if (fd.error().errnum != ENOENT) return Open::kError;
      // Deleted since the listing (the quota or the collector): look again.
      list = list_segments(dir_);
      if (!list) return Open::kError;
      continue;
    }
    fd_ = std::move(*fd);
    seg_first_ = *pick;
    buf_.clear();
    off_ = 0;
    const auto head = peek(0, kSegmentHeaderBytes);
    const auto h = decode_segment_header(head);
    if (h && h->version <= kSegmentVersion && h->first_seq == seg_first_) {
      off_ = kSegmentHeaderBytes;
      positioned_ = true;
      return Open::kOpened;
    }
    const bool newest = seg_first_ == list->back();
    if (!h && newest && head.size() < kSegmentHeaderBytes) {
      // Being created: the writer writes the header with the first records.
      fd_.reset();
      return Open::kNone;
    }
    // A later version or a damaged header: skipped whole, never misread.
    ++stats_.bad_segments;
    forward = true;
  }
}

std::string_view SegmentReader::peek(uint64_t off, size_t n) {
  if (off >= buf_off_ && off + n <= buf_off_ + buf_.size())
    return std::string_view(buf_).substr(off - buf_off_, n);
  buf_.resize(std::max(n, kReadChunk));
  size_t got = 0;
  while (got < buf_.size()) {
    const ssize_t r =
        ::pread(fd_.get(), buf_.data() + got, buf_.size() - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  buf_.resize(got);
  buf_off_ = off;
  return std::string_view(buf_).substr(0, std::min(n, got));
}

// At the end of what the open segment holds: goes on with the next segment if there is
// one (whatever is left in this one is a torn tail that will never be finished).
bool SegmentReader::advance() {
  const uint64_t tail = [&] {
    struct stat st {};
    return ::fstat(fd_.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) > off_
               ? static_cast<uint64_t>(st.st_size) - off_
               : 0;
  }();
  const uint64_t was = seg_first_;
  UniqueFd keep = std::move(fd_);
  if (open_segment(/*forward=*/true) != Open::kOpened) {
    fd_ = std::move(keep);
    seg_first_ = was;
    buf_.clear();
    // Off_ is kept: the rest of a record being written is read next time.
    return false;
  }
  if (tail) {
    ++stats_.corrupt_records;
    stats_.corrupt_bytes += tail;
  }
  return true;
}

// A damaged record at off_: looks for the next intact one after it in this segment.
bool SegmentReader::resync() {
  for (uint64_t at = off_ + 1;;) {
    std::string_view window = peek(at, kReadChunk);
    if (window.size() < kRecordHeaderBytes) return false;
    for (size_t i = 0; i + kRecordHeaderBytes <= window.size(); ++i) {
      if (static_cast<uint8_t>(window[i]) != (kRecordMagic & 0xff)) continue;
      const uint64_t cand = at + i;
      const std::string header(peek(cand, kRecordHeaderBytes));
      const auto h = decode_record_header(header);
      if (!h) continue;
      const auto payload = peek(cand + kRecordHeaderBytes, h->length);
      if (!record_intact(*h, header, payload)) {
        window = peek(at, kReadChunk);  // the payload's read may have moved the buffer
        continue;
      }
      ++stats_.corrupt_records;
      stats_.corrupt_bytes += cand - off_;
      off_ = cand;
      return true;
    }
    at += window.size() - kRecordHeaderBytes + 1;
  }
}

Result<size_t> SegmentReader::read(std::vector<Record>& out, size_t max, size_t max_bytes) {
  size_t n = 0, bytes = 0;
  while (n < max && bytes < max_bytes) {
    if (!fd_.valid()) {
      const auto o = open_segment(/*forward=*/positioned_);
      if (o == Open::kError) return fail("read", dir_, EIO, "cannot list the outbox segments");
      if (o == Open::kNone) return n;
    }
    const std::string header(peek(off_, kRecordHeaderBytes));
    const auto h = decode_record_header(header);
    if (header.size() < kRecordHeaderBytes ||
        (h && peek(off_ + kRecordHeaderBytes, h->length).size() < h->length)) {
      // Incomplete: being written, or a torn tail if a newer segment exists.
      if (!advance()) return n;
      continue;
    }
    if (!h || !record_intact(*h, header, peek(off_ + kRecordHeaderBytes, h->length))) {
      if (resync()) continue;
      if (!advance()) return n;  // perhaps a record still being written
      continue;
    }
    if (h->type == RecordType::kSeal) {
      // Closed on purpose: the next segment starts at h->seq.
      off_ += kRecordHeaderBytes;
      if (!advance()) return n;
      continue;
    }
    const std::string_view payload = peek(off_ + kRecordHeaderBytes, h->length);
    off_ += kRecordHeaderBytes + h->length;
    if (h->seq < next_) continue;  // before where the caller wants to start
    out.push_back({h->seq, h->severity, std::string(payload)});
    next_ = h->seq + 1;
    ++n;
    bytes += payload.size();
  }
  return n;
}

}  // namespace mamori::outbox
