#include "core/outbox/outbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <utility>

#include <fmt/format.h>

#include "core/fs/admin_files.h"
#include "core/outbox/cursor.h"
#include "core/outbox/format.h"
#include "core/outbox/reader.h"
#include "core/proto/actions.h"

namespace mamori::outbox {
namespace {

constexpr size_t kChunk = 1u << 20;             // bytes per write()
constexpr size_t kMaxExportBuf = 8u << 20;      // past this the export reads the segments
constexpr size_t kExportTailBytes = 64u << 10;  // read at open to find the last sequence

// Calls `f` on each line of both queues in append order, until it returns false.
template <typename Line>
void in_order(const std::deque<Line>& a, const std::deque<Line>& b,
              const std::function<bool(const Line&)>& f) {
  auto i = a.begin(), j = b.begin();
  while (i != a.end() || j != b.end()) {
    const Line& l = (j == b.end() || (i != a.end() && i->order < j->order)) ? *i++ : *j++;
    if (!f(l)) return;
  }
}

// Holds the outbox's flock() for one scope.
class DirLock {
 public:
  explicit DirLock(int fd) : fd_(fd) {}
  Status take(const std::string& path) {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return fail_errno("flock", path);
    }
    held_ = true;
    return ok();
  }
  ~DirLock() {
    if (held_) ::flock(fd_, LOCK_UN);
  }

 private:
  int fd_;
  bool held_ = false;
};

bool security(uint8_t severity) {
  return severity >= static_cast<uint8_t>(event::Severity::kNotice);
}

// The whole of a segment (they are a few MiB).
Result<std::string> read_whole(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("fstat", path);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("pread", path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// Walks the intact records of a segment's bytes (after its header), skipping damage the
// way the reader does. `f(header, payload, end_offset)`.
template <typename F>
void walk_records(std::string_view bytes, F&& f) {
  size_t at = kSegmentHeaderBytes;
  while (at + kRecordHeaderBytes <= bytes.size()) {
    const auto header = bytes.substr(at, kRecordHeaderBytes);
    const auto h = decode_record_header(header);
    if (h && at + kRecordHeaderBytes + h->length <= bytes.size()) {
      const auto payload = bytes.substr(at + kRecordHeaderBytes, h->length);
      if (record_intact(*h, header, payload)) {
        at += kRecordHeaderBytes + h->length;
        f(*h, payload, at);
        continue;
      }
    }
    ++at;  // damaged: look for the next record
    const auto next = bytes.find(static_cast<char>(kRecordMagic & 0xff), at);
    if (next == std::string_view::npos) return;
    at = next;
  }
}

}  // namespace

size_t sequence_insert_point(std::string_view json) {
  // A depth-1 key "event" whose value is an object. Inside a string a '"' is always
  // escaped, so outside one a '"' at depth 1 followed by event":{ is that key.
  constexpr std::string_view kKey = "\"event\":{";
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == '"') {
      if (depth == 1 && json.substr(i, kKey.size()) == kKey) return i + kKey.size();
      in_string = true;
    }
  }
  return std::string_view::npos;
}

std::string stamp_sequence(std::string_view json, size_t at, uint64_t seq) {
  if (at == std::string_view::npos || at > json.size()) return std::string(json);
  std::string out;
  out.reserve(json.size() + 32);
  out.append(json.substr(0, at));
  out += "\"sequence\":";
  out += std::to_string(seq);
  if (at < json.size() && json[at] != '}') out += ',';
  out.append(json.substr(at));
  return out;
}

Result<Outbox> Outbox::open(Env& env, Options options) {
  Outbox box(env, std::move(options));
  MAMORI_TRY(fs::make_private_dirs(box.options_.dir));
  box.dir_fd_ = MAMORI_TRY(fs::open_admin_read(box.options_.dir));
  box.lock_fd_ = MAMORI_TRY(fs::open_private_append(box.options_.dir + "/lock"));
  {
    DirLock lock(box.lock_fd_.get());
    MAMORI_TRY(lock.take(box.options_.dir));
    MAMORI_TRY(box.recover());
    if (!box.options_.export_path.empty()) {
      box.export_fd_ = MAMORI_TRY(fs::open_private_append(box.options_.export_path));
      box.export_next_ = box.export_position_from_file();
    } else {
      box.export_next_ = box.next_seq_;
    }
  }
  return box;
}

// Under the lock: finds the newest segment, cuts a torn tail, and recovers the sequence.
Status Outbox::recover() {
  seg_fd_.reset();
  auto list = MAMORI_TRY(list_segments(options_.dir));
  auto create = [&](uint64_t first) -> Status {
    const std::string name = segment_name(first);
    const int fd = ::openat(dir_fd_.get(), name.c_str(),
                            O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail_errno("create", options_.dir + "/" + name);
    seg_fd_.reset(fd);
    const std::string header = encode_segment_header(first, 0);
    MAMORI_TRY(write_all(*env_, fd,
                         {reinterpret_cast<const uint8_t*>(header.data()), header.size()},
                         options_.dir + "/" + name));
    if (::fdatasync(fd) != 0) return fail_errno("fdatasync", options_.dir + "/" + name);
    if (::fsync(dir_fd_.get()) != 0) return fail_errno("fsync", options_.dir);
    seg_first_ = first;
    seg_end_ = kSegmentHeaderBytes;
    next_seq_ = first;
    return ok();
  };
  if (list.empty()) return create(1);
  const uint64_t first = list.back();
  const std::string path = options_.dir + "/" + segment_name(first);
  const int fd = ::openat(dir_fd_.get(), segment_name(first).c_str(),
                          O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail_errno("open", path);
  UniqueFd owned(fd);
  const std::string bytes = MAMORI_TRY(read_whole(fd, path));
  const auto h = decode_segment_header(bytes);
  if (!h || h->first_seq != first) {
    // Created but its header never landed (a crash), or damaged: start it again. What
    // a damaged one held cannot be trusted anyway; readers report the gap.
    if (h && h->version > kSegmentVersion)
      return fail("open", path, EPROTO, "segment of a later mamori version");
    return create(first);
  }
  if (h->version > kSegmentVersion)
    return fail("open", path, EPROTO, "segment of a later mamori version");
  uint64_t end = kSegmentHeaderBytes, next = first;
  std::optional<uint64_t> sealed;
  walk_records(bytes, [&](const RecordHeader& r, std::string_view, size_t at) {
    end = at;
    if (r.type == RecordType::kSeal) {
      sealed = r.seq;
    } else {
      next = std::max(next, r.seq + 1);
    }
  });
  if (sealed) {
    // Closed, but the next segment was never made (a crash between the two).
    return create(std::max(*sealed, next));
  }
  if (end < bytes.size()) {
    // A torn tail (a crash mid-write): cut, so the next record does not follow garbage.
    if (::ftruncate(fd, static_cast<off_t>(end)) != 0) return fail_errno("ftruncate", path);
    if (::fdatasync(fd) != 0) return fail_errno("fdatasync", path);
  }
  seg_fd_ = std::move(owned);
  seg_first_ = first;
  seg_end_ = end;
  next_seq_ = next;
  return ok();
}

uint64_t Outbox::export_position_from_file() {
  // The file's last whole line names the last record exported; when the file has none
  // (new, rotated, or written by an older release) the saved cursor does; with neither,
  // the export starts with the events written from now on.
  uint64_t pos = next_seq_;
  if (auto c = load_cursor(options_.dir, kExportCursor); c && *c) pos = **c;
  struct stat st {};
  if (::fstat(export_fd_.get(), &st) == 0 && st.st_size > 0) {
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const uint64_t from = size > kExportTailBytes ? size - kExportTailBytes : 0;
    auto fd = fs::open_admin_read(options_.export_path);
    std::string tail(size - from, '\0');
    if (fd && ::pread(fd->get(), tail.data(), tail.size(), static_cast<off_t>(from)) ==
                  static_cast<ssize_t>(tail.size())) {
      auto end = tail.rfind('\n');
      while (end != std::string::npos && end > 0) {
        const auto start = tail.rfind('\n', end - 1);
        const std::string_view line =
            std::string_view(tail).substr(start == std::string::npos ? 0 : start + 1,
                                          end - (start == std::string::npos ? 0 : start + 1));
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object()) {
          const auto it = j.find("event");
          if (it != j.end() && it->is_object() && it->contains("sequence") &&
              (*it)["sequence"].is_number_unsigned())
            pos = (*it)["sequence"].get<uint64_t>() + 1;
          break;
        }
        if (start == std::string::npos) break;
        end = start;
      }
    }
  }
  return std::min(pos, next_seq_);
}

void Outbox::append(const event::Event& e) {
  std::string text = e.to_json_line();
  const size_t at = sequence_insert_point(text);
  const bool sec = e.severity() >= event::Severity::kNotice;
  (sec ? security_bytes_ : low_bytes_) += text.size() + 1;
  (sec ? security_ : low_)
      .push_back(
          {next_order_++, std::move(text), at, static_cast<uint8_t>(e.severity()), e.action()});
  // While writes work the queue never grows past spill_bytes; after a failure only the
  // caller's flush() retries, so a dead disk costs one failed write per batch, not one
  // per event.
  if (!failing_ && queued_bytes() >= options_.limits.spill_bytes) (void)flush();
  while (low_bytes_ > options_.limits.max_low_bytes && !low_.empty())
    drop_oldest(low_, low_bytes_, false);
  while (security_bytes_ > options_.limits.max_security_bytes && !security_.empty())
    drop_oldest(security_, security_bytes_, true);
}

void Outbox::drop_oldest(std::deque<Line>& q, uint64_t& bytes, bool sec) {
  bytes -= q.front().text.size() + 1;
  if (unreported_low_ + unreported_security_ == 0) first_unreported_ns_ = env_->clock().now_ns();
  ++unreported_by_action_[q.front().action];
  ++(sec ? unreported_security_ : unreported_low_);
  ++(sec ? dropped_security_ : dropped_low_);
  q.pop_front();
}

void Outbox::queue_report(event::Event e) {
  if (options_.origin) options_.origin->stamp(e);
  std::string text = e.to_json_line();
  const size_t at = sequence_insert_point(text);
  const bool sec = e.severity() >= event::Severity::kNotice;
  (sec ? security_bytes_ : low_bytes_) += text.size() + 1;
  (sec ? security_ : low_)
      .push_back(
          {next_order_++, std::move(text), at, static_cast<uint8_t>(e.severity()), e.action()});
}

void Outbox::queue_drop_report() {
  if (unreported_low_ + unreported_security_ == 0) return;
  const uint64_t low = std::exchange(unreported_low_, 0);
  const uint64_t sec = std::exchange(unreported_security_, 0);
  nlohmann::json by_action = nlohmann::json::object();
  for (const auto& [action, n] : std::exchange(unreported_by_action_, {})) by_action[action] = n;
  event::Event e(proto::action::kEventsDropped,
                 sec ? event::Severity::kCritical : event::Severity::kWarning,
                 env_->clock().now_ns());
  e.set("event.category", nlohmann::json::array({"process"}));
  e.set("mamori.dropped.low", low);
  e.set("mamori.dropped.security", sec);
  e.set("mamori.dropped.by_action", by_action);
  e.set("mamori.dropped.since_ns", first_unreported_ns_);
  e.message(std::to_string(low + sec) + " event(s) dropped (" + std::to_string(sec) +
            " security) while the event log could not be written; counted in mamori status");
  queue_report(std::move(e));
}

// Under the lock: another writer may have appended (or closed the segment) since our
// last flush. Then we take the outbox in again from disk.
Status Outbox::resync_if_changed() {
  struct stat st {};
  if (seg_fd_.valid() && ::fstat(seg_fd_.get(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) == seg_end_ && st.st_nlink > 0)
    return ok();
  const uint64_t before = next_seq_;
  MAMORI_TRY(recover());
  // The other writer exported its records (and ours before them) itself.
  if (export_fd_.valid() && next_seq_ != before) export_next_ = export_position_from_file();
  return ok();
}

Status Outbox::write_chunk(std::string& chunk, const std::vector<size_t>& ends) {
  const std::string path = options_.dir + "/" + segment_name(seg_first_);
  auto st = write_all(*env_, seg_fd_.get(),
                      {reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()}, path);
  size_t whole = ends.size();
  uint64_t landed = chunk.size();
  if (!st) {
    // Cut short: keep the records that landed whole, cut the torn one away.
    struct stat s {};
    landed = (::fstat(seg_fd_.get(), &s) == 0 && static_cast<uint64_t>(s.st_size) > seg_end_)
                 ? static_cast<uint64_t>(s.st_size) - seg_end_
                 : 0;
    whole = 0;
    while (whole < ends.size() && ends[whole] <= landed) ++whole;
    const uint64_t keep = whole ? ends[whole - 1] : 0;
    if (keep < landed) (void)!::ftruncate(seg_fd_.get(), static_cast<off_t>(seg_end_ + keep));
    landed = keep;
  }
  if (landed) unsynced_ = true;
  seg_end_ += landed;
  // The records written leave the queues: they are in the segment with their sequence.
  for (size_t k = 0; k < whole; ++k) {
    const bool from_low =
        security_.empty() || (!low_.empty() && low_.front().order < security_.front().order);
    auto& q = from_low ? low_ : security_;
    (from_low ? low_bytes_ : security_bytes_) -= q.front().text.size() + 1;
    q.pop_front();
    ++next_seq_;
    ++written_;
  }
  chunk.clear();
  return st;
}

Status Outbox::write_queued() {
  std::string chunk;
  std::vector<size_t> ends;
  std::vector<std::string> stamped;
  while (!low_.empty() || !security_.empty()) {
    // One chunk: records in append order, up to kChunk bytes or the segment's end.
    uint64_t seq = next_seq_;
    bool roll_due = false;
    in_order<Line>(low_, security_, [&](const Line& l) {
      std::string json = stamp_sequence(l.text, l.seq_at, seq);
      const uint64_t size = kRecordHeaderBytes + json.size();
      if (!chunk.empty() && chunk.size() + size > kChunk) return false;
      if (seg_end_ > kSegmentHeaderBytes || !chunk.empty()) {
        if (seg_end_ + chunk.size() + size > options_.limits.segment_bytes) {
          roll_due = true;
          return false;
        }
      }
      append_record(chunk, RecordType::kEvent, l.severity, seq, json);
      ends.push_back(chunk.size());
      if (export_buf_complete_) {
        if (export_buf_.size() + json.size() < kMaxExportBuf) {
          if (export_buf_.empty()) export_buf_first_ = seq;
          export_buf_ += json;
          export_buf_ += '\n';
        } else {
          export_buf_complete_ = false;
        }
      }
      ++seq;
      return true;
    });
    if (!chunk.empty()) {
      const uint64_t expected = seq;
      auto st = write_chunk(chunk, ends);
      ends.clear();
      if (!st) {
        // Whatever did not land is exported from the segments later, not from here.
        if (next_seq_ != expected) export_buf_complete_ = false;
        return st;
      }
    }
    if (roll_due) MAMORI_TRY(roll());
  }
  return ok();
}

Status Outbox::roll() {
  auto st = roll_once();
  // Half-way (sealed, the next segment not made): the next flush recovers from disk,
  // never appending behind the seal.
  if (!st) seg_fd_.reset();
  return st;
}

Status Outbox::roll_once() {
  std::string seal;
  append_record(seal, RecordType::kSeal, 0, next_seq_, {});
  const std::string path = options_.dir + "/" + segment_name(seg_first_);
  MAMORI_TRY(write_all(*env_, seg_fd_.get(),
                       {reinterpret_cast<const uint8_t*>(seal.data()), seal.size()}, path));
  seg_end_ += seal.size();
  if (::fdatasync(seg_fd_.get()) != 0) return fail_errno("fdatasync", path);
  unsynced_ = false;
  const std::string name = segment_name(next_seq_);
  const int fd = ::openat(dir_fd_.get(), name.c_str(),
                          O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail_errno("create", options_.dir + "/" + name);
  UniqueFd owned(fd);
  const std::string header = encode_segment_header(next_seq_, 0);
  MAMORI_TRY(write_all(*env_, fd, {reinterpret_cast<const uint8_t*>(header.data()), header.size()},
                       options_.dir + "/" + name));
  if (::fsync(dir_fd_.get()) != 0) return fail_errno("fsync", options_.dir);
  seg_fd_ = std::move(owned);
  seg_first_ = next_seq_;
  seg_end_ = kSegmentHeaderBytes;
  unsynced_ = true;  // the header
  collect_due_ = true;
  return ok();
}

// Under the lock, after a segment was closed: deletes the segments every cursor has
// passed, then applies the quota.
Status Outbox::collect() {
  auto segments = MAMORI_TRY(list_segments(options_.dir));
  auto cursors = MAMORI_TRY(list_cursors(options_.dir));
  uint64_t low_water = export_fd_.valid() ? export_next_ : next_seq_;
  for (const auto& c : cursors) {
    if (c.name == kExportCursor) continue;                // ours is the one in memory
    low_water = std::min(low_water, c.next.value_or(0));  // damaged: holds everything
  }
  std::vector<uint64_t> kept;
  uint64_t total = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool newest = i + 1 == segments.size() || segments[i] >= seg_first_;
    // Segment i holds sequences below segments[i + 1]; passed once every cursor is there.
    if (!newest && segments[i + 1] <= low_water) {
      (void)::unlinkat(dir_fd_.get(), segment_name(segments[i]).c_str(), 0);
      continue;
    }
    struct stat st {};
    if (::fstatat(dir_fd_.get(), segment_name(segments[i]).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      total += static_cast<uint64_t>(st.st_size);
    kept.push_back(segments[i]);
  }
  if (export_fd_.valid() && save_cursor(*env_, options_.dir, kExportCursor, export_next_))
    export_saved_ = export_next_;
  if (total > options_.limits.quota_bytes) MAMORI_TRY(enforce_quota(kept, total));
  return ok();
}

Status Outbox::enforce_quota(std::vector<uint64_t>& segments, uint64_t total) {
  uint64_t low = 0, sec = 0, first_dropped = UINT64_MAX, last_dropped = 0;
  auto note = [&](uint64_t seq, bool is_sec) {
    ++(is_sec ? sec : low);
    first_dropped = std::min(first_dropped, seq);
    last_dropped = std::max(last_dropped, seq);
  };
  // The newest segment (being written) is never touched.
  const size_t closed = segments.empty() ? 0 : segments.size() - 1;
  // First pass: the oldest segments lose their low-severity records.
  for (size_t i = 0; i < closed && total > options_.limits.quota_bytes; ++i) {
    const std::string name = segment_name(segments[i]);
    const std::string path = options_.dir + "/" + name;
    auto fd = fs::open_admin_read(path);
    if (!fd) continue;
    auto bytes = read_whole(fd->get(), path);
    if (!bytes) continue;
    const auto h = decode_segment_header(*bytes);
    if (!h || (h->flags & kSegmentCompacted)) continue;
    std::string out = encode_segment_header(segments[i], h->flags | kSegmentCompacted);
    walk_records(*bytes, [&](const RecordHeader& r, std::string_view payload, size_t) {
      if (r.type == RecordType::kEvent && !security(r.severity)) {
        note(r.seq, false);
        return;
      }
      append_record(out, r.type, r.severity, r.seq, payload);
    });
    if (out.size() >= bytes->size()) continue;
    MAMORI_TRY(fs::write_file_atomic(*env_, path, out, 0600));
    total -= bytes->size() - out.size();
  }
  // Then whole segments, oldest first.
  size_t i = 0;
  for (; i < closed && total > options_.limits.quota_bytes; ++i) {
    const std::string path = options_.dir + "/" + segment_name(segments[i]);
    auto fd = fs::open_admin_read(path);
    if (!fd) continue;
    auto bytes = read_whole(fd->get(), path);
    if (!bytes) continue;
    walk_records(*bytes, [&](const RecordHeader& r, std::string_view, size_t) {
      if (r.type == RecordType::kEvent) note(r.seq, security(r.severity));
    });
    MAMORI_TRY(fs::remove_file(path));
    total -= bytes->size();
  }
  if (low + sec == 0) return ok();
  quota_low_ += low;
  quota_security_ += sec;
  event::Event e(proto::action::kOutboxDropped,
                 sec ? event::Severity::kCritical : event::Severity::kWarning,
                 env_->clock().now_ns());
  e.set("event.category", nlohmann::json::array({"process"}));
  e.set("mamori.dropped.low", low);
  e.set("mamori.dropped.security", sec);
  e.set("mamori.dropped.first_sequence", first_dropped);
  e.set("mamori.dropped.last_sequence", last_dropped);
  e.set("mamori.dropped.reason", "quota");
  e.set("mamori.outbox.quota_bytes", options_.limits.quota_bytes);
  e.message(fmt::format(
      "outbox over its quota of {} MiB (a consumer is behind): {} event(s) removed from disk "
      "({} security), sequences {}..{}; counted in mamori status",
      options_.limits.quota_bytes >> 20, low + sec, sec, first_dropped, last_dropped));
  queue_report(std::move(e));
  return ok();
}

Status Outbox::export_pending() {
  while (export_fd_.valid() && export_next_ < next_seq_) {
    const uint64_t before = export_next_;
    MAMORI_TRY(export_some());
    if (export_next_ == before) break;
  }
  return ok();
}

Status Outbox::export_some() {
  std::string out;
  if (export_buf_complete_ && !export_buf_.empty() && export_buf_first_ == export_next_) {
    out = std::move(export_buf_);
  } else {
    // Behind (its disk was full, or a large burst): from the segments.
    SegmentReader reader(options_.dir);
    reader.seek(export_next_);
    std::vector<Record> records;
    while (reader.next() < next_seq_) {
      records.clear();
      const size_t n = MAMORI_TRY(reader.read(records, 100000, kMaxExportBuf));
      if (n == 0) break;
      for (const auto& r : records) {
        if (r.seq >= next_seq_) break;
        out += r.payload;
        out += '\n';
      }
      if (out.size() >= kMaxExportBuf) break;
    }
    if (out.empty()) {
      export_next_ = next_seq_;  // nothing left on disk to export (dropped by the quota)
      return ok();
    }
  }
  const uint64_t upto = [&] {
    // The sequence after the last line in `out`.
    const auto end = out.rfind('\n', out.size() - 2);
    const std::string_view last(out.data() + (end == std::string::npos ? 0 : end + 1),
                                out.size() - (end == std::string::npos ? 0 : end + 1) - 1);
    const auto j = nlohmann::json::parse(last, nullptr, false);
    if (j.is_object() && j.contains("event") && j["event"].contains("sequence"))
      return j["event"]["sequence"].get<uint64_t>() + 1;
    return next_seq_;
  }();
  struct stat before {};
  if (::fstat(export_fd_.get(), &before) != 0) return fail_errno("fstat", options_.export_path);
  auto st =
      write_all(*env_, export_fd_.get(), {reinterpret_cast<const uint8_t*>(out.data()), out.size()},
                options_.export_path);
  if (!st) {
    // Cut short: no torn line is left; the whole batch is written again later (a
    // shipper that read its first lines meanwhile sees them twice: dedupe on event.id).
    (void)!::ftruncate(export_fd_.get(), before.st_size);
    return st;
  }
  export_next_ = upto;
  return ok();
}

Status Outbox::flush() {
  queue_drop_report();
  const bool nothing =
      low_.empty() && security_.empty() && !unsynced_ && export_next_ >= next_seq_ && !collect_due_;
  if (nothing) {
    failing_ = false;
    return ok();
  }
  auto attempt = [&]() -> Status {
    DirLock lock(lock_fd_.get());
    MAMORI_TRY(lock.take(options_.dir));
    MAMORI_TRY(resync_if_changed());
    export_buf_.clear();
    export_buf_complete_ = export_next_ == next_seq_;
    MAMORI_TRY(write_queued());
    if (unsynced_) {
      if (::fdatasync(seg_fd_.get()) != 0)
        return fail_errno("fdatasync", options_.dir + "/" + segment_name(seg_first_));
      unsynced_ = false;
    }
    if (collect_due_) {
      collect_due_ = false;
      MAMORI_TRY(collect());
      if (!low_.empty() || !security_.empty()) {  // the quota's report
        MAMORI_TRY(write_queued());
        if (::fdatasync(seg_fd_.get()) != 0)
          return fail_errno("fdatasync", options_.dir + "/" + segment_name(seg_first_));
        unsynced_ = false;
      }
    }
    return export_pending();
  };
  auto st = attempt();
  export_buf_.clear();
  // The export's position, about once a second: at open it counts only when the file
  // has no sequence of its own (new, rotated, another path), so a second's events at
  // most are exported twice after a crash.
  const int64_t now = env_->clock().now_ns();
  if (export_fd_.valid() && export_saved_ != export_next_ &&
      now - export_saved_ns_ >= 1'000'000'000) {
    if (save_cursor(*env_, options_.dir, kExportCursor, export_next_)) export_saved_ = export_next_;
    export_saved_ns_ = now;
  }
  failing_ = !st;
  return st;
}

Outbox::~Outbox() {
  if (export_fd_.valid() && export_saved_ != export_next_)
    (void)save_cursor(*env_, options_.dir, kExportCursor, export_next_);
}

Status Outbox::reopen() {
  if (options_.export_path.empty()) return ok();
  export_fd_.reset();
  export_fd_ = MAMORI_TRY(fs::open_private_append(options_.export_path));
  return ok();
}

}  // namespace mamori::outbox
