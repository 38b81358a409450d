#include "agent/sinks/follower.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "core/event/event.h"
#include "core/fs/admin_files.h"
#include "core/outbox/cursor.h"
#include "core/proto/actions.h"

namespace mamori::sinks {
namespace {

constexpr int64_t kCursorSaveEveryMs = 1000;
// Without news, look again this often anyway: records written by another writer (the
// CLI) come without a notify().
constexpr int64_t kIdleRecheckMs = 1000;

}  // namespace

int64_t Follower::now_ms() const { return env_.clock().monotonic_ns() / 1'000'000; }

Follower::Follower(Env& env, std::unique_ptr<Sink> sink, FollowerOptions options)
    : env_(env),
      sink_(std::move(sink)),
      options_(std::move(options)),
      cursor_(cursor_name(sink_->name())),
      reader_(options_.outbox_dir) {}

Follower::~Follower() { stop(); }

void Follower::start() {
  // On the caller's thread: a new sink's cursor is registered at the outbox's head
  // before the caller writes anything more to it.
  open_cursor();
  thread_ = std::thread([this] { run(); });
}

void Follower::open_cursor() {
  auto saved = outbox::load_cursor(options_.outbox_dir, cursor_);
  if (!saved) {
    // Damaged: from the oldest record still there (at least once, never a silent loss).
    if (options_.on_state)
      options_.on_state(sink_->name(), "sink " + sink_->name() + ": " + saved.error().message() +
                                           ": reading again from the oldest event kept");
    at_ = 0;
    gap_known_ = false;
  } else if (*saved) {
    at_ = **saved;
  } else {
    at_ = options_.start_sequence;
    migrate_legacy();
  }
  committed_ = at_;
  reader_.seek(at_);
  save_cursor();  // registers it
}

void Follower::migrate_legacy() {
  if (options_.legacy_cursor_path.empty()) return;
  auto text = fs::read_small_file(options_.legacy_cursor_path, 256);
  if (!text) return;
  unsigned long long dev = 0, ino = 0, offset = 0, len = 0, hash = 0;
  if (std::sscanf(text->c_str(), "mamori-cursor 1 %llu %llu %llu %llu %llu", &dev, &ino, &offset,
                  &len, &hash) == 5) {
    // Lines of the old log after the old cursor were never delivered, and the segment
    // stream does not hold them: say how many instead of losing them silently.
    int64_t undelivered = -1;
    if (auto fd = fs::open_admin_read(options_.legacy_log_path)) {
      struct stat st {};
      if (::fstat(fd->get(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
        undelivered = 0;
        std::string buf(1 << 16, '\0');
        for (uint64_t off = offset;;) {
          const ssize_t n = ::pread(fd->get(), buf.data(), buf.size(), static_cast<off_t>(off));
          if (n <= 0) break;
          undelivered += std::count(buf.data(), buf.data() + n, '\n');
          off += static_cast<uint64_t>(n);
        }
      }
    }
    if (undelivered != 0) add_gap(0, 0, "upgrade", undelivered);
  }
  (void)fs::remove_file(options_.legacy_cursor_path);
}

void Follower::notify() {
  {
    MutexLock lock(mu_);
    dirty_ = true;
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
  int64_t last_save_ms = now_ms();
  MutexLock lock(mu_);
  while (true) {
    const bool stopping = stop_;
    dirty_ = false;
    lock.unlock();

    if (batch_.size() < kMaxBatch) read_available();
    const bool delivered = !batch_.empty() && deliver_due(stopping);
    if (batch_.empty()) committed_ = at_;
    if (committed_ != saved_ && (stopping || now_ms() - last_save_ms >= kCursorSaveEveryMs)) {
      save_cursor();
      last_save_ms = now_ms();
    }

    lock.lock();
    stats_.pending = batch_.size();
    stats_.next_sequence = at_;
    if (stopping) return;
    if (delivered) continue;  // more may be waiting behind a full batch
    int64_t wait_ms = kIdleRecheckMs;
    if (!batch_.empty()) {
      const int64_t due = std::max(next_attempt_ms_, batch_started_ms_ + options_.digest_s * 1000);
      wait_ms = std::clamp<int64_t>(due - now_ms(), 1, kIdleRecheckMs);
    }
    wake_.wait_for(mu_, std::chrono::milliseconds(wait_ms),
                   [&]() MAMORI_REQUIRES(mu_) { return stop_ || dirty_; });
  }
}

void Follower::add_gap(uint64_t first, uint64_t last, const char* reason, int64_t count) {
  event::Event e(proto::action::kSinkGap, event::Severity::kWarning, env_.clock().now_ns());
  e.set("event.category", nlohmann::json::array({"process"}));
  e.set("mamori.sink", sink_->name());
  e.set("mamori.gap.reason", reason);
  if (count >= 0) e.set("mamori.gap.missed", count);
  if (last) {
    e.set("mamori.gap.first_sequence", first);
    e.set("mamori.gap.last_sequence", last);
  }
  e.message(count < 0 ? fmt::format("sink {}: events of the previous release's log were not "
                                    "delivered (how many is unknown: the log was rotated)",
                                    sink_->name())
            : last    ? fmt::format("sink {} missed {} event(s), sequences {}..{}: removed ({}) "
                                       "before it could deliver them",
                                    sink_->name(), count, first, last, reason)
                      : fmt::format("sink {} missed {} event(s) of the previous release's log "
                                       "({})",
                                    sink_->name(), count, reason));
  if (options_.origin) options_.origin->stamp(e);
  if (batch_.empty()) batch_started_ms_ = now_ms();
  batch_.push_back(e.fields());
  MutexLock lock(mu_);
  stats_.missed += count > 0 ? static_cast<uint64_t>(count) : 0;
}

void Follower::read_available() {
  std::vector<outbox::Record> records;
  const uint64_t corrupt_before = reader_.stats().corrupt_records;
  auto n = reader_.read(records, kMaxBatch - batch_.size());
  if (!n) {
    MutexLock lock(mu_);
    stats_.last_error = n.error().message();
    return;
  }
  // Every jump in this read, summed into one sink-gap: a compacted segment may have
  // hundreds of holes, the sink is told once.
  uint64_t gap_first = 0, gap_last = 0, missed = 0;
  uint64_t filtered = 0, skipped = reader_.stats().corrupt_records - corrupt_before;
  std::vector<nlohmann::json> events;
  for (auto& r : records) {
    if (r.seq > at_ && gap_known_) {
      if (!missed) gap_first = at_;
      gap_last = r.seq - 1;
      missed += r.seq - at_;
    }
    gap_known_ = true;
    at_ = r.seq + 1;
    nlohmann::json event = nlohmann::json::parse(r.payload, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object()) {
      ++skipped;
      continue;
    }
    const auto& severity = field(event, "event.severity");
    if (!options_.filter.passes(severity.is_number_integer() ? severity.get<int>() : 0,
                                text(event, "event.action"), text(event, "mamori.root"))) {
      ++filtered;
      continue;
    }
    events.push_back(std::move(event));
  }
  if (missed) add_gap(gap_first, gap_last, "removed", static_cast<int64_t>(missed));
  if (!events.empty() && batch_.empty()) batch_started_ms_ = now_ms();
  for (auto& e : events) batch_.push_back(std::move(e));
  MutexLock lock(mu_);
  stats_.filtered += filtered;
  stats_.skipped_lines += skipped;
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

void Follower::save_cursor() {
  if (auto st = outbox::save_cursor(env_, options_.outbox_dir, cursor_, committed_); !st) {
    MutexLock lock(mu_);
    stats_.last_error = st.error().message();
    return;
  }
  saved_ = committed_;
}

}  // namespace mamori::sinks
