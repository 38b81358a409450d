#include "agent/sinks/follower.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/fs/admin_files.h"

namespace mamori::sinks {
namespace {

constexpr size_t kReadChunk = 64 << 10;
constexpr int64_t kCursorSaveEveryMs = 1000;
// Without news, look again this often anyway: appends by another writer (a test, a
// second agent) and copytruncate come without a notify().
constexpr int64_t kIdleRecheckMs = 1000;

uint64_t fnv1a(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

int64_t Follower::now_ms() const { return env_.clock().monotonic_ns() / 1'000'000; }

Follower::Follower(Env& env, std::unique_ptr<Sink> sink, FollowerOptions options)
    : env_(env), sink_(std::move(sink)), options_(std::move(options)) {}

Follower::~Follower() { stop(); }

void Follower::start() {
  // On the caller's thread: a new sink's cursor is placed at the end of the log before
  // the caller writes anything more to it.
  open_at_cursor();
  thread_ = std::thread([this] { run(); });
}

void Follower::notify() {
  {
    MutexLock lock(mu_);
    dirty_ = true;
  }
  wake_.notify_one();
}

void Follower::outbox_reopened() {
  {
    MutexLock lock(mu_);
    ++reopen_generation_;
  }
  wake_.notify_one();
}

void Follower::request_stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
}

void Follower::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

FollowerStats Follower::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void Follower::run() {
  int64_t last_save_ms = 0;
  MutexLock lock(mu_);
  while (true) {
    const bool stopping = stop_;
    const uint64_t generation = reopen_generation_;
    dirty_ = false;
    lock.unlock();

    if (!fd_.valid()) open_at_cursor();
    if (fd_.valid()) read_available();
    if (generation != seen_generation_ && batch_.empty()) {
      seen_generation_ = generation;
      finish_rotation();
      read_available();
    }
    const bool delivered = !batch_.empty() && deliver_due(stopping);
    const Cursor before = committed_;
    if (batch_.empty()) committed_ = at_;
    if ((committed_.offset != before.offset || committed_.ino != before.ino || stopping) &&
        (stopping || now_ms() - last_save_ms >= kCursorSaveEveryMs)) {
      save_cursor();
      last_save_ms = now_ms();
    }

    lock.lock();
    stats_.pending = batch_.size();
    if (stopping) return;
    if (delivered) continue;  // more may be waiting behind a full batch
    int64_t wait_ms = kIdleRecheckMs;
    if (!batch_.empty()) {
      const int64_t due = std::max(next_attempt_ms_, batch_started_ms_ + options_.digest_s * 1000);
      wait_ms = std::clamp<int64_t>(due - now_ms(), 1, kIdleRecheckMs);
    }
    wake_.wait_for(mu_, std::chrono::milliseconds(wait_ms), [&]() MAMORI_REQUIRES(mu_) {
      return stop_ || dirty_ || reopen_generation_ != generation;
    });
  }
}

bool Follower::open_at_cursor() {
  auto fd = fs::open_admin_read(options_.outbox_path);
  if (!fd) return false;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return false;
  const Cursor current{st.st_dev, st.st_ino, 0};

  Cursor saved;
  bool have_saved = false;
  if (auto text = fs::read_small_file(options_.cursor_path, 256)) {
    unsigned long long dev = 0, ino = 0, offset = 0, len = 0, hash = 0;
    if (std::sscanf(text->c_str(), "mamori-cursor 1 %llu %llu %llu %llu %llu", &dev, &ino, &offset,
                    &len, &hash) == 5) {
      saved = {dev, ino, offset, len, hash};
      have_saved = true;
    }
  }
  if (!have_saved) {
    // A sink new to this machine starts with what is written from now on, not with the
    // whole history (the agent starts its sinks before it writes anything).
    at_ = {current.dev, current.ino, static_cast<uint64_t>(st.st_size)};
    fd_ = std::move(*fd);
  } else if (saved.dev == current.dev && saved.ino == current.ino) {
    fd_ = std::move(*fd);
    at_ = still_there(saved) ? saved : current;
  } else if (auto old = fs::open_admin_read(options_.outbox_path + ".1"); old) {
    // Rotated while we were down: finish the old file first, then switch.
    struct stat ost {};
    if (::fstat(old->get(), &ost) == 0 && ost.st_dev == saved.dev && ost.st_ino == saved.ino) {
      fd_ = std::move(*old);
      at_ = still_there(saved) ? saved : Cursor{saved.dev, saved.ino, 0};
      seen_generation_ = ~0ull;  // forces finish_rotation() once this file is read
    } else {
      at_ = current;
      fd_ = std::move(*fd);
    }
  } else {
    // The cursor's file is gone: everything in the current one is new to this sink.
    at_ = current;
    fd_ = std::move(*fd);
  }
  committed_ = at_;
  return true;
}

bool Follower::still_there(const Cursor& c) const {
  if (c.last_len == 0 || c.last_len > c.offset || c.last_len > kMaxLineBytes)
    return c.last_len == 0;
  std::string line(c.last_len, '\0');
  const ssize_t n =
      ::pread(fd_.get(), line.data(), line.size(), static_cast<off_t>(c.offset - c.last_len));
  return n == static_cast<ssize_t>(line.size()) && fnv1a(line) == c.last_hash;
}

void Follower::read_available() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return;
  if (static_cast<uint64_t>(st.st_size) < at_.offset || !still_there(at_)) {
    // Truncated in place (copytruncate): what is there now is new.
    at_ = {at_.dev, at_.ino, 0};
  }
  std::string buf;
  uint64_t last_len = 0, last_hash = 0;
  while (batch_.size() < kMaxBatch) {
    const size_t want = std::max(kReadChunk, buf.size() * 2);
    buf.resize(want);
    const ssize_t n = ::pread(fd_.get(), buf.data(), want, static_cast<off_t>(at_.offset));
    if (n <= 0) return;
    buf.resize(static_cast<size_t>(n));
    size_t start = 0;
    if (skipping_long_line_) {
      const size_t nl = buf.find('\n');
      at_.last_len = 0;  // the end of a skipped line is no fingerprint
      if (nl == std::string::npos) {
        at_.offset += buf.size();
        buf.clear();
        continue;
      }
      skipping_long_line_ = false;
      start = nl + 1;
    }
    size_t nl;
    while (batch_.size() < kMaxBatch && (nl = buf.find('\n', start)) != std::string::npos) {
      const std::string_view line(buf.data() + start, nl - start);
      start = nl + 1;
      last_len = line.size() + 1;
      last_hash = fnv1a(std::string_view(line.data(), last_len));
      nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!event.is_object()) {
        MutexLock lock(mu_);
        ++stats_.skipped_lines;
      } else {
        const auto& severity = field(event, "event.severity");
        const bool pass =
            options_.filter.passes(severity.is_number_integer() ? severity.get<int>() : 0,
                                   text(event, "event.action"), text(event, "mamori.root"));
        if (pass) {
          if (batch_.empty()) batch_started_ms_ = now_ms();
          batch_.push_back(std::move(event));
        } else {
          MutexLock lock(mu_);
          ++stats_.filtered;
        }
      }
    }
    at_.offset += start;
    if (last_len) {
      at_.last_len = last_len;
      at_.last_hash = last_hash;
      last_len = 0;
    }
    if (start == 0) {
      // No complete line in the buffer: wait for the rest of it, unless it is too long
      // to be an event.
      if (buf.size() >= kMaxLineBytes) {
        skipping_long_line_ = true;
        at_.offset += buf.size();
        at_.last_len = 0;
        MutexLock lock(mu_);
        ++stats_.skipped_lines;
      } else if (static_cast<size_t>(n) < want) {
        return;  // the end of the file: a line being written, or a torn tail
      }
      continue;  // grow the buffer and read again
    }
    buf.clear();
  }
}

bool Follower::deliver_due(bool stopping) {
  if (batch_.empty()) return true;
  const int64_t now = now_ms();
  if (now < next_attempt_ms_ && !(stopping && backoff_ms_ == 0)) return false;
  if (!stopping && batch_.size() < kMaxBatch && now < batch_started_ms_ + options_.digest_s * 1000)
    return false;
  auto st = sink_->deliver(batch_);
  MutexLock lock(mu_);
  if (!st) {
    ++stats_.failures;
    backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, options_.max_backoff_ms)
                              : options_.first_backoff_ms;
    next_attempt_ms_ = now + backoff_ms_;
    const std::string message = st.error().message();
    if (!stats_.failing || message != stats_.last_error) {
      if (options_.on_state) options_.on_state(sink_->name(), message);
    }
    stats_.failing = true;
    stats_.last_error = message;
    return false;
  }
  stats_.delivered += batch_.size();
  if (stats_.failing && options_.on_state) options_.on_state(sink_->name(), "");
  stats_.failing = false;
  backoff_ms_ = 0;
  next_attempt_ms_ = 0;
  batch_.clear();
  return true;
}

void Follower::finish_rotation() {
  auto fd = fs::open_admin_read(options_.outbox_path);
  if (!fd) return;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return;
  if (st.st_dev == at_.dev && st.st_ino == at_.ino) return;  // reopened, not rotated
  // Everything before the reopen went to the old file, and it has been read; a line
  // without its newline there is a torn tail that will never be finished.
  fd_ = std::move(*fd);
  at_ = {st.st_dev, st.st_ino, 0};
  committed_ = at_;
  skipping_long_line_ = false;
  save_cursor();
}

void Follower::save_cursor() {
  const auto text = fmt::format("mamori-cursor 1 {} {} {} {} {}\n", committed_.dev, committed_.ino,
                                committed_.offset, committed_.last_len, committed_.last_hash);
  if (auto st = fs::write_file_atomic(env_, options_.cursor_path, text, 0600); !st) {
    MutexLock lock(mu_);
    stats_.last_error = st.error().message();
  }
}

}  // namespace mamori::sinks
